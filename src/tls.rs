//! TLS for the admission port: a rustls `ServerConfig` limited to TLS 1.2/1.3 with AEAD
//! suites (ring provider), and a certificate resolver whose current certificate is swapped
//! atomically by a task that re-reads `--tls-cert` / `--tls-key` on an interval. Kubelet
//! replaces Secret volumes by a symlink swap that file watchers miss, so the task compares
//! file contents rather than watching files or trusting mtimes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as ring_provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

/// Why a certificate, key or CA bundle could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no PEM certificate in {0}")]
    NoCertificate(PathBuf),
    #[error("no PEM private key in {0}")]
    NoKey(PathBuf),
    #[error("invalid PEM in {path}: {source}")]
    Pem {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unusable certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("unusable client CA bundle: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

/// The ring provider reduced to AEAD suites with forward secrecy. rustls implements no CBC or
/// static-RSA suites anyway; listing the suites makes the policy explicit and keeps it from
/// widening silently when rustls adds suites.
pub fn provider() -> CryptoProvider {
    use ring_provider::cipher_suite as cs;
    CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..ring_provider::default_provider()
    }
}

/// Builds the admission port's TLS configuration around `resolver`. With `client_ca`, clients
/// must present a certificate that CA signed (the bundle is read once, at start).
pub fn server_config(
    resolver: Arc<CertResolver>,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca {
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    // The API server speaks HTTP/1.1 only; advertising h2 would invite a protocol we don't serve.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn client_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let pem = read(path)?;
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(path, &pem)? {
        roots.add(cert)?;
    }
    Ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?)
}

/// Serves the current certificate to every handshake and swaps it when the files change.
pub struct CertResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: CryptoProvider,
    /// Read on every handshake, written only on a swap: an `RwLock` read is uncontended.
    current: RwLock<Option<Arc<CertifiedKey>>>,
    /// The last file contents tried, good or bad, so an unchanged bad pair is reported once.
    seen: Mutex<Option<Tried>>,
    reloads: AtomicU64,
    errors: AtomicU64,
    /// The files hold what cannot be served (unreadable, or a pair that did not load): true
    /// until they hold a usable pair again, however often the same bad pair is seen.
    failing: AtomicBool,
}

/// File contents a reload read, and whether they made a usable pair.
struct Tried {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    usable: bool,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

impl CertResolver {
    /// A resolver with no certificate yet: handshakes fail until [`Self::reload`] succeeds.
    pub fn new(cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        Self {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
            provider: provider(),
            current: RwLock::new(None),
            seen: Mutex::new(None),
            reloads: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    /// Re-reads both files; swaps the certificate when their content changed and the new pair
    /// is usable. Returns whether it swapped. On error the previous certificate stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let result = self.try_reload();
        if result.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.failing.store(true, Ordering::Relaxed);
        }
        result
    }

    fn try_reload(&self) -> Result<bool, TlsError> {
        let cert_pem = read(&self.cert_path)?;
        let key_pem = read(&self.key_path)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tried) = seen.as_ref()
            && tried.cert_pem == cert_pem
            && tried.key_pem == key_pem
        {
            self.failing.store(!tried.usable, Ordering::Relaxed);
            return Ok(false);
        }
        let certified = self.parse_pair(&cert_pem, &key_pem);
        *seen = Some(Tried {
            cert_pem,
            key_pem,
            usable: certified.is_ok(),
        });
        drop(seen);
        let certified = certified?;
        self.failing.store(false, Ordering::Relaxed);
        let previous = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Arc::new(certified));
        if previous.is_some() {
            self.reloads.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    fn parse_pair(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
        let chain = parse_certs(&self.cert_path, cert_pem)?;
        let key = parse_key(&self.key_path, key_pem)?;
        // from_der checks that the key matches the leaf certificate's public key.
        Ok(CertifiedKey::from_der(chain, key, &self.provider)?)
    }

    /// The certificate handshakes get now, if any.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True once a certificate has been loaded (readiness).
    pub fn is_loaded(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Certificates swapped in after the first one.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reload attempts that failed (unreadable files, bad PEM, key not matching).
    pub fn reload_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Whether the files on disk hold what cannot be served, as of the last reload: a
    /// rotation that failed and is still failing (the previous certificate, if any, is
    /// served meanwhile).
    pub fn reload_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Re-reads the files every `interval` until the returned task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let resolver = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is immediate; the caller loaded already
            loop {
                ticks.tick().await;
                let worker = Arc::clone(&resolver);
                // File reads block; keep them off the runtime's worker threads.
                match tokio::task::spawn_blocking(move || worker.reload()).await {
                    Ok(Ok(true)) => tracing::info!(
                        cert = %resolver.cert_path.display(),
                        reloads = resolver.reloads(),
                        "serving certificate loaded"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(error)) => tracing::error!(
                        %error,
                        cert = %resolver.cert_path.display(),
                        key = %resolver.key_path.display(),
                        kept_previous = resolver.is_loaded(),
                        "serving certificate not reloaded"
                    ),
                    Err(error) => tracing::error!(%error, "certificate reload task failed"),
                }
            }
        })
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (cert.pem(), signing_key.serialize_pem())
    }

    fn write(dir: &Path, cert: &str, key: &str) {
        std::fs::write(dir.join("tls.crt"), cert).unwrap();
        std::fs::write(dir.join("tls.key"), key).unwrap();
    }

    fn leaf(resolver: &CertResolver) -> Vec<u8> {
        resolver.current().unwrap().cert[0].to_vec()
    }

    #[test]
    fn offers_only_aead_suites_with_forward_secrecy() {
        for suite in provider().cipher_suites {
            let name = format!("{:?}", suite.suite());
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name}"
            );
            assert!(
                name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_"),
                "{name}"
            );
        }
    }

    #[test]
    fn swaps_only_when_content_changes_and_keeps_the_old_pair_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = CertResolver::new(dir.path().join("tls.crt"), dir.path().join("tls.key"));
        assert!(matches!(resolver.reload(), Err(TlsError::Read { .. })));
        assert!(!resolver.is_loaded());

        let (cert_a, key_a) = pair("a.example");
        write(dir.path(), &cert_a, &key_a);
        assert!(resolver.reload().unwrap());
        assert!(resolver.is_loaded());
        let first = leaf(&resolver);
        assert!(!resolver.reload().unwrap(), "same bytes must not swap");
        assert_eq!(resolver.reloads(), 0);

        // A key that does not belong to the certificate is refused; the old pair stays.
        let (cert_b, key_b) = pair("b.example");
        write(dir.path(), &cert_b, &key_a);
        assert!(matches!(resolver.reload(), Err(TlsError::Rustls(_))));
        assert_eq!(leaf(&resolver), first);
        assert!(resolver.reload_failing());
        // The same bad pair is not retried (and not re-reported) until it changes, but it is
        // still failing.
        assert!(!resolver.reload().unwrap());
        assert!(resolver.reload_failing());

        write(dir.path(), "garbage", &key_b);
        assert!(matches!(resolver.reload(), Err(TlsError::NoCertificate(_))));
        write(dir.path(), &cert_b, "garbage");
        assert!(matches!(resolver.reload(), Err(TlsError::NoKey(_))));
        assert_eq!(leaf(&resolver), first);
        assert_eq!(resolver.reload_errors(), 4);

        write(dir.path(), &cert_b, &key_b);
        assert!(resolver.reload().unwrap());
        assert_ne!(leaf(&resolver), first);
        assert_eq!(resolver.reloads(), 1);
        assert!(!resolver.reload_failing());

        // Files that vanish for a moment and come back unchanged: failing, then not.
        std::fs::remove_file(dir.path().join("tls.key")).unwrap();
        assert!(matches!(resolver.reload(), Err(TlsError::Read { .. })));
        assert!(resolver.reload_failing());
        write(dir.path(), &cert_b, &key_b);
        assert!(
            !resolver.reload().unwrap(),
            "the pair being served: no swap"
        );
        assert!(!resolver.reload_failing());
    }

    #[test]
    fn refuses_a_client_ca_file_without_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "not pem").unwrap();
        let resolver = Arc::new(CertResolver::new(
            dir.path().join("c"),
            dir.path().join("k"),
        ));
        assert!(matches!(
            server_config(resolver, Some(&ca)),
            Err(TlsError::NoCertificate(_))
        ));
    }
}
