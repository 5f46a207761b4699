//! TLS for the admission port: a rustls `ServerConfig` limited to TLS 1.2/1.3 with AEAD
//! suites (ring provider), and a certificate resolver whose current certificate is swapped
//! atomically by a task that re-reads `--tls-cert` / `--tls-key` on an interval. Kubelet
//! replaces Secret volumes by a symlink swap that file watchers miss, so the task compares
//! file contents rather than watching files or trusting mtimes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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
    /// `notAfter` of the served leaf certificate in Unix seconds; `i64::MIN` while unknown.
    expires: AtomicI64,
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
            expires: AtomicI64::new(i64::MIN),
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
        let expires = certified
            .cert
            .first()
            .and_then(|leaf| not_after(leaf))
            .unwrap_or(i64::MIN);
        self.expires.store(expires, Ordering::Relaxed);
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

    /// When the served leaf certificate expires (`notAfter`, Unix seconds), once one is
    /// loaded and its validity could be read.
    pub fn expires_at(&self) -> Option<i64> {
        Some(self.expires.load(Ordering::Relaxed)).filter(|t| *t != i64::MIN)
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

/// `notAfter` of an X.509 certificate (DER) in Unix seconds, read with just enough DER to
/// reach it: Certificate, tbsCertificate, then past the optional version, the serial number,
/// the signature algorithm and the issuer to the validity's second time. `None` for anything
/// that is not shaped like that (rustls has accepted the certificate by then, so only an
/// exotic one).
pub fn not_after(der: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    let (certificate, _) = tlv(der, SEQUENCE)?;
    let (mut tbs, _) = tlv(certificate, SEQUENCE)?;
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs, 0xa0)?.1; // [0] EXPLICIT version
    }
    let rest = tlv(tbs, 0x02)?.1; // serialNumber
    let rest = tlv(rest, SEQUENCE)?.1; // signature
    let rest = tlv(rest, SEQUENCE)?.1; // issuer
    let (validity, _) = tlv(rest, SEQUENCE)?;
    let not_before_tag = *validity.first()?;
    let rest = tlv(validity, not_before_tag)?.1;
    match rest.first()? {
        0x17 => x509_time(tlv(rest, 0x17)?.0, false),
        0x18 => x509_time(tlv(rest, 0x18)?.0, true),
        _ => None,
    }
}

/// One DER value with tag `tag` at the start of `input`: (its contents, what follows).
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, mut rest) = rest.split_first()?;
    let len = if len < 0x80 {
        usize::from(len)
    } else {
        let count = usize::from(len & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (digits, after) = rest.split_at(count);
        rest = after;
        digits.iter().fold(0usize, |n, d| n << 8 | usize::from(*d))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// UTCTime `YYMMDDHHMMSSZ` (years 1950-2049, RFC 5280) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, in Unix seconds.
fn x509_time(text: &[u8], generalized: bool) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, at) = if generalized {
        (digits(0..4)?, 4)
    } else {
        let yy = digits(0..2)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
    };
    if text.len() != at + 10 {
        return None;
    }
    let month = digits(at..at + 2)?;
    let day = digits(at + 2..at + 4)?;
    let (hour, minute, second) = (
        digits(at + 4..at + 6)?,
        digits(at + 6..at + 8)?,
        digits(at + 8..at + 10)?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    fn certificate_until(year: i32, month: u8, day: u8) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["a.example".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_not_after_in_both_time_encodings() {
        // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
        assert_eq!(
            not_after(&certificate_until(2049, 12, 31)),
            Some(2_524_521_600)
        );
        assert_eq!(
            not_after(&certificate_until(2050, 1, 1)),
            Some(2_524_608_000)
        );
        assert_eq!(
            not_after(&certificate_until(2027, 3, 1)),
            Some(1_803_859_200)
        );
        assert_eq!(x509_time(b"000229000000Z", false), Some(951_782_400));
        assert_eq!(x509_time(b"20000229000000Z", true), Some(951_782_400));
        // Not a certificate, cut short, or a time that is not one.
        let der = certificate_until(2049, 12, 31);
        assert_eq!(not_after(&der[..der.len() / 2]), None);
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(x509_time(b"491331000000Z", false), None);
        assert_eq!(x509_time(b"4912310000Z", false), None);
        assert_eq!(x509_time(b"491231000000", false), None);
    }

    #[test]
    fn the_served_certificate_says_when_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = CertResolver::new(dir.path().join("tls.crt"), dir.path().join("tls.key"));
        assert_eq!(resolver.expires_at(), None);
        let (cert, key) = pair("a.example");
        write(dir.path(), &cert, &key);
        resolver.reload().unwrap();
        let expires = resolver.expires_at().expect("known once loaded");
        assert_eq!(Some(expires), not_after(&leaf(&resolver)));
        // A bad rotation keeps serving, and reporting, the old certificate.
        write(dir.path(), "not a certificate", &key);
        assert!(resolver.reload().is_err());
        assert_eq!(resolver.expires_at(), Some(expires));
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
