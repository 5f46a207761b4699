//! Helpers: a throwaway PKI from rcgen, kubelet-style certificate directories, a server on
//! ephemeral 127.0.0.1 ports, a configurable test reviewer and a minimal HTTP/1.1 client.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::Duration;

use clap::Parser as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rollout_guard::cli::{Cli, Command, ServeArgs};
use rollout_guard::review::{Endpoint, NullReviewer, Outcome, Reply, Reviewer, Summary};
use rollout_guard::server::Server;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub const GKE_REVIEW: &[u8] =
    include_bytes!("../fixtures/admission-reviews/gke_pod_create_admissionreview_v1.json");
pub const GKE_UID: &str = "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4";

/// Every test gets this long before it fails instead of hanging.
pub const TEST_BOUND: Duration = Duration::from_secs(15);

pub async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("test exceeded its time bound")
}

pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another test binary path may have installed it already; either way ring is in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A CA that signs serving and client certificates.
pub struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: PrivateKeyDer<'static>,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "rollout-guard test ca");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { ca }
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    fn issue(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }

    /// A serving certificate for `localhost`.
    pub fn server_leaf(&self) -> Leaf {
        self.issue("localhost", ExtendedKeyUsagePurpose::ServerAuth)
    }

    pub fn client_leaf(&self) -> Leaf {
        self.issue("kube-apiserver", ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// A client configuration trusting this CA, limited to `versions`.
    pub fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        self.client_config_with(versions, None, None)
    }

    pub fn client_config_with(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        suites: Option<Vec<rustls::SupportedCipherSuite>>,
        client_cert: Option<&Leaf>,
    ) -> rustls::ClientConfig {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(suites) = suites {
            provider.cipher_suites = suites;
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match client_cert {
            Some(leaf) => builder
                .with_client_auth_cert(vec![leaf.cert_der.clone()], leaf.key_der.clone_key())
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        // What Go's HTTP/1.1-only transports offer.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }
}

/// A directory laid out like a kubelet Secret volume: `tls.crt -> ..data/tls.crt`,
/// `..data -> ..<version>`; [`CertDir::swap`] replaces `..data` atomically, as kubelet does.
pub struct CertDir {
    pub dir: tempfile::TempDir,
    version: usize,
}

impl CertDir {
    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            version: 0,
        }
    }

    pub fn with(leaf: &Leaf) -> Self {
        let mut dir = Self::empty();
        dir.swap(leaf);
        dir
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    pub fn swap(&mut self, leaf: &Leaf) {
        self.swap_raw(&leaf.cert_pem, &leaf.key_pem);
    }

    pub fn swap_raw(&mut self, cert_pem: &str, key_pem: &str) {
        use std::os::unix::fs::symlink;
        self.version += 1;
        let root = self.dir.path();
        let version = format!("..2026_11_26_{:04}", self.version);
        std::fs::create_dir(root.join(&version)).unwrap();
        std::fs::write(root.join(&version).join("tls.crt"), cert_pem).unwrap();
        std::fs::write(root.join(&version).join("tls.key"), key_pem).unwrap();
        symlink(&version, root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        for file in ["tls.crt", "tls.key"] {
            if !root.join(file).exists() {
                symlink(Path::new("..data").join(file), root.join(file)).unwrap();
            }
        }
    }
}

/// Where reviews wait while it is shut, so a test decides when they end instead of racing a
/// delay against a loaded machine. Open by default. A wait ends after 20 s in any case, so a
/// test that fails before opening it does not hang its runtime.
#[derive(Default)]
pub struct Gate {
    shut: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    pub fn shut(&self) {
        *self.shut.lock().unwrap() = true;
    }

    pub fn open(&self) {
        *self.shut.lock().unwrap() = false;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let shut = self.shut.lock().unwrap();
        let _ = self
            .opened
            .wait_timeout_while(shut, Duration::from_secs(20), |shut| *shut)
            .unwrap();
    }
}

/// A reviewer with knobs: a delay (blocking, like a CPU-bound review), a gate, readiness,
/// rules to report, and a call counter. It answers like [`NullReviewer`] otherwise.
#[derive(Default)]
pub struct TestReviewer {
    pub delay: Duration,
    pub gate: Gate,
    pub not_ready: AtomicBool,
    pub rules: Vec<&'static str>,
    pub panic_on: Option<&'static str>,
    /// Bodies holding the marker are declined inline, then take this long on the blocking pool.
    pub decline_inline_on: Option<(&'static str, Duration)>,
    pub calls: AtomicUsize,
    /// Reviews running now, and the most that ever ran at once.
    pub active: AtomicUsize,
    pub peak: AtomicUsize,
}

fn holds(body: &[u8], marker: &str) -> bool {
    body.windows(marker.len()).any(|w| w == marker.as_bytes())
}

impl TestReviewer {
    fn answer(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        if let Some(marker) = self.panic_on
            && holds(body, marker)
        {
            panic!("test reviewer asked to panic");
        }
        if let Some((marker, delay)) = self.decline_inline_on
            && holds(body, marker)
        {
            std::thread::sleep(delay);
        }
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        self.gate.pass();
        let mut reply = NullReviewer.review(endpoint, body);
        if let Some(summary) = &mut reply.summary {
            *summary = Summary {
                uid: std::mem::take(&mut summary.uid),
                kind: "Pod".into(),
                namespace: "colin-coder".into(),
                name: "echo-pod".into(),
                operation: "CREATE".into(),
                sub_resource: Default::default(),
                dry_run: false,
                rules: self.rules.clone(),
            };
            if !self.rules.is_empty() {
                reply.outcome = Outcome::Warned;
            }
        }
        reply
    }
}

impl Reviewer for TestReviewer {
    fn review(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let reply = self.answer(endpoint, body);
        self.active.fetch_sub(1, Ordering::SeqCst);
        reply
    }

    fn review_inline(&self, endpoint: Endpoint, body: &[u8]) -> Option<Reply> {
        match self.decline_inline_on {
            Some((marker, _)) if holds(body, marker) => None,
            _ => Some(self.review(endpoint, body)),
        }
    }

    fn overloaded(&self, endpoint: Endpoint, body: &[u8]) -> Reply {
        NullReviewer.overloaded(endpoint, body)
    }

    fn ready(&self) -> bool {
        !self.not_ready.load(Ordering::SeqCst)
    }

    fn cache_sizes(&self) -> Vec<(&'static str, usize)> {
        vec![("analysistemplates", 3), ("clusteranalysistemplates", 1)]
    }
}

/// `serve` arguments on ephemeral ports with the given certificate files and extra flags.
pub fn serve_args(certs: &CertDir, extra: &[&str]) -> ServeArgs {
    let cert = certs.cert_path();
    let key = certs.key_path();
    let mut argv = vec![
        "rollout-guard",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    // Test defaults, unless the test sets them (clap refuses a flag given twice).
    for (flag, value) in [
        ("--tls-reload-interval", "100ms"),
        ("--header-timeout", "2s"),
        ("--shutdown-timeout", "5s"),
    ] {
        if !extra.contains(&flag) {
            argv.extend_from_slice(&[flag, value]);
        }
    }
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Serve(args) => *args,
        _ => unreachable!("parsed serve"),
    }
}

/// A running server; [`TestServer::shutdown`] stops it and returns what `run` returned.
pub struct TestServer {
    pub https: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    pub async fn start(args: &ServeArgs, reviewer: Arc<dyn Reviewer>) -> Self {
        Self::start_with(args, reviewer, |server| server).await
    }

    /// Starts a server set up by `configure` beyond its flags (`Server::with_*`).
    pub async fn start_with(
        args: &ServeArgs,
        reviewer: Arc<dyn Reviewer>,
        configure: impl FnOnce(Server) -> Server,
    ) -> Self {
        install_provider();
        Self::run(configure(Server::bind(args, reviewer).await.unwrap()))
    }

    fn run(server: Server) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let https = server.https_addr();
        let admin = server.admin_addr();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Self {
            https,
            admin,
            stop: Some(stop),
            task,
        }
    }

    /// Signals shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        self.task.await.unwrap().unwrap();
    }

    pub async fn wait_stopped(self) {
        self.task.await.unwrap().unwrap();
    }
}

pub async fn connect_tls(
    addr: SocketAddr,
    config: rustls::ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    tls_over(TcpStream::connect(addr).await?, config).await
}

/// A TLS client connection for `localhost` over a TCP connection set up by the caller.
pub async fn tls_over(
    tcp: TcpStream,
    config: rustls::ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// A request as written on the wire; `content-length` from the body unless given.
pub fn wire_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: localhost\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut wire = head.into_bytes();
    wire.extend_from_slice(body);
    wire
}

/// One HTTP/1.1 response as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 client over any stream; keeps the connection for further requests.
pub struct HttpConn<S> {
    pub stream: S,
    buffer: Vec<u8>,
}

impl<S> HttpConn<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> HttpConn<S> {
    pub async fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let wire = wire_request(method, target, headers, body);
        self.stream.write_all(&wire).await?;
        self.stream.flush().await?;
        self.read_response().await
    }

    pub async fn post(&mut self, path: &str, body: &[u8]) -> std::io::Result<Response> {
        self.request("POST", path, &[("content-type", "application/json")], body)
            .await
    }
}

/// Reading needs only the read side, so a test can read answers from one half of a split
/// stream while another task is still writing the request.
impl<S: AsyncRead + Unpin> HttpConn<S> {
    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    pub async fn read_response(&mut self) -> std::io::Result<Response> {
        let head_end = loop {
            if let Some(i) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while self.buffer.len() < body_start + length {
            self.fill().await?;
        }
        let body = self.buffer[body_start..body_start + length].to_vec();
        self.buffer.drain(..body_start + length);
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// True when the peer closed the connection (EOF or reset) within `within`.
    pub async fn closed_within(&mut self, within: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(within, self.stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Opens a TLS connection (TLS 1.2 or 1.3) and sends one POST.
pub async fn post_once(
    pki: &Pki,
    addr: SocketAddr,
    path: &str,
    body: &[u8],
) -> std::io::Result<Response> {
    let config = pki.client_config(rustls::ALL_VERSIONS);
    let mut conn = HttpConn::new(connect_tls(addr, config).await?);
    conn.post(path, body).await
}

/// A plain-HTTP GET to the admin port.
pub async fn admin_get(addr: SocketAddr, path: &str) -> Response {
    let mut conn = HttpConn::new(TcpStream::connect(addr).await.unwrap());
    conn.request("GET", path, &[], b"").await.unwrap()
}

/// The value of the metric line that starts with `prefix` (name and labels).
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {prefix} in\n{text}"))
}
