//! A small load generator for the admission transport: starts `serve` in process with the
//! [`NullReviewer`] on 127.0.0.1 (or targets a running server with `--target`), drives it over
//! keep-alive TLS connections, and prints throughput and latency percentiles to stderr.
//!
//! ```text
//! cargo run --release --example load -- --rate 2000 --seconds 10 --connections 16
//! cargo run --release --example load -- --rate 0 --seconds 10            # saturation
//! cargo run --release --example load -- --target 127.0.0.1:8443 --ca certs/ca.crt
//! ```
//! `--log` turns on the JSON review log (to stdout: redirect it to /dev/null) to include its
//! cost; `--body FILE` posts another review body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser as _;
use rollout_guard::cli::{Cli, Command, LogFormat};
use rollout_guard::review::NullReviewer;
use rollout_guard::server::Server;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEFAULT_BODY: &[u8] =
    include_bytes!("../tests/fixtures/admission-reviews/gke_pod_create_admissionreview_v1.json");

struct Options {
    rate: u64,
    seconds: u64,
    connections: usize,
    target: Option<SocketAddr>,
    ca: Option<String>,
    body: Vec<u8>,
    log: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        rate: 2000,
        seconds: 10,
        connections: 16,
        target: None,
        ca: None,
        body: DEFAULT_BODY.to_vec(),
        log: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--rate" => o.rate = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--connections" => o.connections = value()?.parse()?,
            "--target" => o.target = Some(value()?.parse()?),
            "--ca" => o.ca = Some(value()?),
            "--body" => o.body = std::fs::read(value()?)?,
            "--log" => o.log = true,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let o = options()?;
    let dir = tempfile::tempdir()?;
    let (addr, ca_pem) = match o.target {
        Some(addr) => {
            let ca = o.ca.as_deref().context("--target needs --ca")?;
            (addr, std::fs::read(ca)?)
        }
        None => {
            let ca = start_server(&dir, o.log)?;
            (ca.0, ca.1)
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(cert?)?;
    }
    let config = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );

    // The client gets its own runtime so it does not share worker threads with the server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let body = Arc::new(o.body);
    let (latencies, errors, elapsed) = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(o.seconds);
        let mut tasks = Vec::new();
        for i in 0..o.connections {
            let (config, body) = (config.clone(), body.clone());
            // Spread the fixed rate over the connections, offset so they don't fire together.
            let period =
                (o.rate > 0).then(|| Duration::from_secs_f64(o.connections as f64 / o.rate as f64));
            let offset = period.map(|p| p.mul_f64(i as f64 / o.connections as f64));
            tasks.push(tokio::spawn(async move {
                drive(addr, config, body, deadline, period, offset).await
            }));
        }
        let started = Instant::now();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await.expect("client task");
            latencies.extend(l);
            errors += e;
        }
        (latencies, errors, started.elapsed())
    });

    let mut latencies = latencies;
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    eprintln!(
        "requests {} errors {} rps {:.0} p50 {:.3} ms p90 {:.3} ms p99 {:.3} ms p99.9 {:.3} ms max {:.3} ms",
        latencies.len(),
        errors,
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0),
    );
    Ok(())
}

/// Starts the server on its own 2-thread runtime in a background thread; returns its address
/// and the PEM of the CA to trust.
fn start_server(dir: &tempfile::TempDir, log: bool) -> anyhow::Result<(SocketAddr, Vec<u8>)> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert_path = dir.path().join("tls.crt");
    let key_path = dir.path().join("tls.key");
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, signing_key.serialize_pem())?;
    let argv = [
        "rollout-guard",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
        "--tls-cert",
        cert_path.to_str().context("utf-8 path")?,
        "--tls-key",
        key_path.to_str().context("utf-8 path")?,
    ];
    let Command::Serve(args) = Cli::try_parse_from(argv)?.command else {
        anyhow::bail!("not serve");
    };
    if log {
        rollout_guard::logging::init_logging(LogFormat::Json, "info")?;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            let server = Server::bind(&args, Arc::new(NullReviewer))
                .await
                .expect("bind");
            tx.send(server.https_addr()).expect("report address");
            server
                .run(std::future::pending())
                .await
                .expect("server run");
        });
    });
    Ok((rx.recv()?, cert.pem().into_bytes()))
}

async fn drive(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    body: Arc<Vec<u8>>,
    deadline: Instant,
    period: Option<Duration>,
    offset: Option<Duration>,
) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut errors = 0;
    let head = format!(
        "POST /validate?timeout=10s HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(&body);
    let mut ticks = period.map(|p| {
        let mut t =
            tokio::time::interval_at(tokio::time::Instant::now() + offset.unwrap_or_default(), p);
        // Late ticks fire at once (and count their wait) rather than silently thinning the load.
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    let mut buffer = vec![0u8; 64 * 1024];
    'connection: while Instant::now() < deadline {
        let Ok(tcp) = TcpStream::connect(addr).await else {
            errors += 1;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let connector = tokio_rustls::TlsConnector::from(config.clone());
        let Ok(mut tls) = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
        else {
            errors += 1;
            continue;
        };
        while Instant::now() < deadline {
            if let Some(t) = ticks.as_mut() {
                t.tick().await;
            }
            // Measured from the send: tokio's timer fires on a 1 ms wheel, so measuring from
            // the scheduled tick would add up to a millisecond of timer lag to every sample.
            let sent = Instant::now();
            if tls.write_all(&request).await.is_err() {
                errors += 1;
                continue 'connection;
            }
            // Read one response: headers, then content-length bytes.
            let mut filled = 0;
            let complete = loop {
                match tls.read(&mut buffer[filled..]).await {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => filled += n,
                }
                if let Some(end) = buffer[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if filled >= end + 4 + length {
                        break head.starts_with("http/1.1 200");
                    }
                }
            };
            if !complete {
                errors += 1;
                continue 'connection;
            }
            latencies.push(sent.elapsed());
        }
    }
    (latencies, errors)
}
