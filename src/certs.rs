//! Development certificates: a throw-away CA and a serving certificate it signs, for the names
//! the API server dials (`<service>.<namespace>.svc`) and for a webhook running on this machine.
//!
//! Production installs get their certificates from cert-manager or an existing Secret (see the
//! Helm chart); this module is for `rollout-guard certs`, for `serve` on a fresh clone, and for
//! tests. It uses rcgen only (ECDSA P-256), so no openssl is needed anywhere.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::cli::CertsArgs;

/// File names inside `--out-dir`.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
pub const TLS_CERT_FILE: &str = "tls.crt";
pub const TLS_KEY_FILE: &str = "tls.key";

/// Service and namespace the serving certificate names when `serve` creates it on its own.
const DEV_SERVICE: &str = "rollout-guard";
const DEV_NAMESPACE: &str = "rollout-guard";
const DEV_DAYS: u32 = 365;

/// The CA outlives the serving certificates it signs, so a serving certificate can be renewed
/// without touching the `caBundle` already registered with the API server.
const CA_DAYS: u64 = 10 * 365;

/// Clock skew between this machine and the API server (or a kind node) that a fresh
/// certificate must tolerate.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

const DAY: u64 = 24 * 60 * 60;

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Base64 of the PEM CA certificate: the `caBundle` of a webhook configuration.
    pub ca_bundle: String,
    /// DNS names and IP addresses of the serving certificate.
    pub sans: Vec<String>,
}

/// Where the four files go.
struct Paths {
    ca_cert: PathBuf,
    ca_key: PathBuf,
    tls_cert: PathBuf,
    tls_key: PathBuf,
}

impl Paths {
    fn in_dir(dir: &Path) -> Self {
        Self {
            ca_cert: dir.join(CA_CERT_FILE),
            ca_key: dir.join(CA_KEY_FILE),
            tls_cert: dir.join(TLS_CERT_FILE),
            tls_key: dir.join(TLS_KEY_FILE),
        }
    }

    fn all(&self) -> [&Path; 4] {
        [&self.ca_cert, &self.ca_key, &self.tls_cert, &self.tls_key]
    }
}

/// The subject alternative names the API server and local clients may dial.
pub fn subject_alt_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ]
}

/// Writes `ca.crt`, `ca.key`, `tls.crt` and `tls.key` into `--out-dir`.
///
/// Refuses to overwrite any of them unless `--force` is given: replacing the CA silently would
/// break every webhook configuration that already carries its `caBundle`.
pub fn generate(args: &CertsArgs) -> anyhow::Result<Generated> {
    if args.days == 0 {
        bail!("--days must be at least 1");
    }
    fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create directory {}", args.out_dir.display()))?;
    let paths = Paths::in_dir(&args.out_dir);
    if !args.force {
        for path in paths.all() {
            if path.exists() {
                bail!(
                    "{} already exists; pass --force to replace the CA and serving certificate",
                    path.display()
                );
            }
        }
    }
    write_set(&paths, &args.service, &args.namespace, args.days)
}

/// Creates a development CA and serving certificate when neither `cert` nor `key` exists, so
/// `serve` works on a fresh clone. The CA goes next to `cert` (and replaces an older one there,
/// which could not have signed the missing certificate anyway).
///
/// Returns whether it created them. One of the two without the other is an error: generating
/// a new pair would destroy whatever the remaining file belongs to.
pub fn ensure_dev_certs(cert: &Path, key: &Path) -> anyhow::Result<bool> {
    match (cert.exists(), key.exists()) {
        (true, true) => return Ok(false),
        (true, false) => bail!(
            "{} exists but its key {} does not; restore the key or delete both",
            cert.display(),
            key.display()
        ),
        (false, true) => bail!(
            "{} exists but its certificate {} does not; restore the certificate or delete both",
            key.display(),
            cert.display()
        ),
        (false, false) => {}
    }
    let dir = match cert.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    for file in [cert, key] {
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create directory {}", parent.display()))?;
        }
    }
    let paths = Paths {
        ca_cert: dir.join(CA_CERT_FILE),
        ca_key: dir.join(CA_KEY_FILE),
        tls_cert: cert.to_path_buf(),
        tls_key: key.to_path_buf(),
    };
    write_set(&paths, DEV_SERVICE, DEV_NAMESPACE, DEV_DAYS)?;
    Ok(true)
}

/// `rollout-guard certs`: generates and says what it wrote and how to use it.
pub fn run(args: &CertsArgs) -> anyhow::Result<()> {
    let generated = generate(args)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "wrote {}", generated.ca_cert.display())?;
    writeln!(
        out,
        "wrote {} (private, mode 0600)",
        generated.ca_key.display()
    )?;
    writeln!(out, "wrote {}", generated.tls_cert.display())?;
    writeln!(
        out,
        "wrote {} (private, mode 0600)",
        generated.tls_key.display()
    )?;
    writeln!(
        out,
        "serving certificate names: {}",
        generated.sans.join(", ")
    )?;
    writeln!(out, "valid for {} days", args.days)?;
    writeln!(out)?;
    writeln!(out, "caBundle: {}", generated.ca_bundle)?;
    Ok(())
}

/// Base64 of a PEM CA file, as `caBundle` wants it; errors name the file.
pub fn ca_bundle_from_file(path: &Path) -> anyhow::Result<String> {
    Ok(base64::engine::general_purpose::STANDARD.encode(read_ca_pem(path)?))
}

/// The bytes of a PEM file holding at least one certificate; errors name the file.
pub fn read_ca_pem(path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = fs::read(path).with_context(|| {
        format!(
            "cannot read CA file {} (create one with `rollout-guard certs`)",
            path.display()
        )
    })?;
    let mut reader = pem.as_slice();
    let mut certificates = 0;
    for item in rustls_pemfile::certs(&mut reader) {
        item.with_context(|| format!("CA file {} is not valid PEM", path.display()))?;
        certificates += 1;
    }
    if certificates == 0 {
        bail!(
            "CA file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(pem)
}

fn write_set(
    paths: &Paths,
    service: &str,
    namespace: &str,
    days: u32,
) -> anyhow::Result<Generated> {
    let now = SystemTime::now();
    let not_before = now - BACKDATE;

    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name(&format!("rollout-guard development CA ({namespace})"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = not_before.into();
    ca_params.not_after = (now + Duration::from_secs(CA_DAYS.max(u64::from(days)) * DAY)).into();
    let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)
        .context("cannot sign the CA certificate")?;

    let sans = subject_alt_names(service, namespace);
    let mut tls_params = CertificateParams::new(sans.clone()).with_context(|| {
        format!("service {service:?} or namespace {namespace:?} is not a DNS name")
    })?;
    tls_params.distinguished_name = name(&format!("{service}.{namespace}.svc"));
    tls_params.is_ca = IsCa::ExplicitNoCa;
    // ECDSA keys sign the handshake; keyEncipherment only applies to RSA key transport.
    tls_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    tls_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    tls_params.use_authority_key_identifier_extension = true;
    tls_params.not_before = not_before.into();
    tls_params.not_after = (now + Duration::from_secs(u64::from(days) * DAY)).into();
    let tls_key = KeyPair::generate().context("cannot generate the serving key")?;
    let tls = tls_params
        .signed_by(&tls_key, &ca)
        .context("cannot sign the serving certificate")?;

    let ca_pem = ca.pem();
    write_file(&paths.ca_cert, ca_pem.as_bytes(), false)?;
    write_file(&paths.ca_key, ca.key().serialize_pem().as_bytes(), true)?;
    write_file(&paths.tls_cert, tls.pem().as_bytes(), false)?;
    write_file(&paths.tls_key, tls_key.serialize_pem().as_bytes(), true)?;

    Ok(Generated {
        ca_cert: paths.ca_cert.clone(),
        ca_key: paths.ca_key.clone(),
        tls_cert: paths.tls_cert.clone(),
        tls_key: paths.tls_key.clone(),
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes()),
        sans,
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "rollout-guard");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Writes a whole file; private keys get mode 0600 from creation on (never world-readable,
/// not even for a moment), and a replaced key file is tightened too.
fn write_file(path: &Path, contents: &[u8], private: bool) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
    }
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::RootCertStore;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    use super::*;

    fn args(dir: &Path) -> CertsArgs {
        CertsArgs {
            out_dir: dir.to_path_buf(),
            service: "guard".to_owned(),
            namespace: "ops".to_owned(),
            days: 30,
            force: false,
        }
    }

    fn read_certs(path: &Path) -> Vec<CertificateDer<'static>> {
        let pem = fs::read(path).unwrap();
        rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A verifier that trusts exactly the generated CA, as the API server does with `caBundle`.
    fn verifier(ca: &Path) -> Arc<WebPkiServerVerifier> {
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca) {
            roots.add(cert).unwrap();
        }
        WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap()
    }

    fn verify_at(generated: &Generated, name: &str, at: SystemTime) -> Result<(), rustls::Error> {
        let leaf = read_certs(&generated.tls_cert).remove(0);
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        let now = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap());
        verifier(&generated.ca_cert)
            .verify_server_cert(&leaf, &[], &server_name, &[], now)
            .map(|_| ())
    }

    #[test]
    fn serving_certificate_chains_to_the_ca_for_every_name() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(&args(dir.path())).unwrap();
        let expected = [
            "guard",
            "guard.ops",
            "guard.ops.svc",
            "guard.ops.svc.cluster.local",
            "localhost",
            "127.0.0.1",
            "::1",
        ];
        assert_eq!(generated.sans, expected);
        for name in expected {
            verify_at(&generated, name, SystemTime::now())
                .unwrap_or_else(|e| panic!("{name} does not verify: {e}"));
        }
    }

    #[test]
    fn serving_certificate_rejects_other_names() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(&args(dir.path())).unwrap();
        for name in ["guard.other.svc", "rollout-guard.ops.svc", "10.0.0.1"] {
            let err = verify_at(&generated, name, SystemTime::now()).unwrap_err();
            assert!(
                matches!(err, rustls::Error::InvalidCertificate(_)),
                "{name}: {err:?}"
            );
        }
    }

    #[test]
    fn serving_certificate_does_not_chain_to_another_ca() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let a = generate(&args(first.path())).unwrap();
        let b = generate(&args(second.path())).unwrap();
        let leaf = read_certs(&a.tls_cert).remove(0);
        let err = verifier(&b.ca_cert)
            .verify_server_cert(
                &leaf,
                &[],
                &ServerName::try_from("guard.ops.svc").unwrap(),
                &[],
                UnixTime::now(),
            )
            .unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }

    #[test]
    fn validity_window_follows_days() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(&args(dir.path())).unwrap();
        let now = SystemTime::now();
        // Tolerates a little clock skew backwards, and lasts `--days`.
        verify_at(&generated, "guard.ops.svc", now - Duration::from_secs(60)).unwrap();
        verify_at(
            &generated,
            "guard.ops.svc",
            now + Duration::from_secs(29 * DAY),
        )
        .unwrap();
        let expired = verify_at(
            &generated,
            "guard.ops.svc",
            now + Duration::from_secs(31 * DAY),
        );
        assert!(
            matches!(
                expired,
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired
                        | rustls::CertificateError::ExpiredContext { .. }
                ))
            ),
            "{expired:?}"
        );
        let early = verify_at(&generated, "guard.ops.svc", now - Duration::from_secs(DAY));
        assert!(
            matches!(
                early,
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidYet
                        | rustls::CertificateError::NotValidYetContext { .. }
                ))
            ),
            "{early:?}"
        );
    }

    #[test]
    fn key_matches_certificate_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(&args(dir.path())).unwrap();
        let cert = read_certs(&generated.tls_cert);
        let key_pem = fs::read(&generated.tls_key).unwrap();
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .unwrap()
            .unwrap();
        // Builds a server config exactly as `serve` would; rustls checks the key against the
        // certificate's public key.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing_key = provider.key_provider.load_private_key(key).unwrap();
        let certified = rustls::sign::CertifiedKey::new(cert, signing_key);
        certified.keys_match().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [&generated.ca_key, &generated.tls_key] {
                let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", path.display());
            }
        }
    }

    /// Runs a real TLS 1.3 handshake in memory: a rustls server loading `tls.crt`/`tls.key` the
    /// way `serve` does, a client trusting only `ca.crt` and dialling the in-cluster name, as
    /// the API server does.
    #[test]
    fn api_server_like_client_completes_a_handshake() {
        use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

        let dir = tempfile::tempdir().unwrap();
        let generated = generate(&args(dir.path())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key_pem = fs::read(&generated.tls_key).unwrap();
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .unwrap()
            .unwrap();
        let server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(read_certs(&generated.tls_cert), key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(read_certs(&generated.ca_cert).remove(0)).unwrap();
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut server = ServerConnection::new(Arc::new(server_config)).unwrap();
        let name = ServerName::try_from("guard.ops.svc").unwrap();
        let mut client = ClientConnection::new(Arc::new(client_config), name).unwrap();
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets().unwrap();
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert_eq!(server.server_name(), Some("guard.ops.svc"));
    }

    #[test]
    fn ca_bundle_is_base64_of_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let generated = generate(&args(dir.path())).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&generated.ca_bundle)
            .unwrap();
        assert_eq!(decoded, fs::read(&generated.ca_cert).unwrap());
        assert_eq!(
            ca_bundle_from_file(&generated.ca_cert).unwrap(),
            generated.ca_bundle
        );
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(&args(dir.path())).unwrap();
        let before = fs::read(&first.ca_cert).unwrap();
        let err = generate(&args(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("already exists") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(fs::read(&first.ca_cert).unwrap(), before, "CA was touched");

        let forced = generate(&CertsArgs {
            force: true,
            ..args(dir.path())
        })
        .unwrap();
        assert_ne!(fs::read(&forced.ca_cert).unwrap(), before);
    }

    #[test]
    fn refuses_when_only_one_file_is_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TLS_KEY_FILE), "keep me").unwrap();
        let err = generate(&args(dir.path())).unwrap_err().to_string();
        assert!(err.contains("tls.key"), "{err}");
        assert!(!dir.path().join(CA_CERT_FILE).exists());
    }

    #[test]
    fn ensure_dev_certs_creates_once() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("nested/tls.crt");
        let key = dir.path().join("nested/tls.key");
        assert!(ensure_dev_certs(&cert, &key).unwrap());
        let first = fs::read(&cert).unwrap();
        assert!(dir.path().join("nested/ca.crt").exists());
        assert!(!ensure_dev_certs(&cert, &key).unwrap());
        assert_eq!(
            fs::read(&cert).unwrap(),
            first,
            "existing certificate replaced"
        );

        let generated = Generated {
            ca_cert: dir.path().join("nested/ca.crt"),
            ca_key: dir.path().join("nested/ca.key"),
            tls_cert: cert.clone(),
            tls_key: key.clone(),
            ca_bundle: String::new(),
            sans: Vec::new(),
        };
        verify_at(
            &generated,
            "rollout-guard.rollout-guard.svc",
            SystemTime::now(),
        )
        .unwrap();
        verify_at(&generated, "localhost", SystemTime::now()).unwrap();
    }

    #[test]
    fn ensure_dev_certs_refuses_a_lone_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        fs::write(&key, "orphan").unwrap();
        let err = ensure_dev_certs(&cert, &key).unwrap_err().to_string();
        assert!(err.contains("tls.crt") && err.contains("tls.key"), "{err}");
        assert_eq!(fs::read_to_string(&key).unwrap(), "orphan");
    }

    #[test]
    fn ca_bundle_from_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.crt");
        let err = format!("{:#}", ca_bundle_from_file(&missing).unwrap_err());
        assert!(err.contains("absent.crt"), "{err}");
        let garbage = dir.path().join("garbage.crt");
        fs::write(&garbage, "not a certificate\n").unwrap();
        let err = format!("{:#}", ca_bundle_from_file(&garbage).unwrap_err());
        assert!(
            err.contains("garbage.crt") && err.contains("no PEM"),
            "{err}"
        );
    }
}
