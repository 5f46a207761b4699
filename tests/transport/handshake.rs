//! TLS policy on the wire: versions, suites, ALPN and client certificates.

use std::sync::Arc;

use rollout_guard::review::NullReviewer;
use rustls::crypto::ring::cipher_suite as cs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls12_only_and_tls13_only_clients_both_complete_a_review() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let server = TestServer::start(&serve_args(&certs, &[]), Arc::new(NullReviewer)).await;
        for (version, expected) in [
            (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
            (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        ] {
            let stream = connect_tls(server.https, pki.client_config(&[version]))
                .await
                .unwrap();
            let (_, session) = stream.get_ref();
            assert_eq!(session.protocol_version(), Some(expected));
            assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
            let mut conn = HttpConn::new(stream);
            let response = conn.post("/validate", GKE_REVIEW).await.unwrap();
            assert_eq!(response.status, 200, "{}", response.text());
            assert_eq!(response.header("content-type"), Some("application/json"));
            let review = response.json();
            assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(review["kind"], "AdmissionReview");
            assert_eq!(review["response"]["uid"], GKE_UID);
            assert_eq!(review["response"]["allowed"], true);
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_aead_suite_negotiates_on_its_version() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let server = TestServer::start(&serve_args(&certs, &[]), Arc::new(NullReviewer)).await;
        // The test certificate is ECDSA, so the TLS 1.2 suites are the ECDHE-ECDSA ones.
        let cases = [
            (
                &rustls::version::TLS12,
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                &rustls::version::TLS12,
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ),
            (
                &rustls::version::TLS12,
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
            (&rustls::version::TLS13, cs::TLS13_AES_128_GCM_SHA256),
            (&rustls::version::TLS13, cs::TLS13_AES_256_GCM_SHA384),
            (&rustls::version::TLS13, cs::TLS13_CHACHA20_POLY1305_SHA256),
        ];
        for (version, suite) in cases {
            let config = pki.client_config_with(&[version], Some(vec![suite]), None);
            let stream = connect_tls(server.https, config).await.unwrap();
            assert_eq!(stream.get_ref().1.negotiated_cipher_suite(), Some(suite));
        }
        server.shutdown().await;
    })
    .await;
}

/// A ClientHello record built by hand, for what rustls clients cannot send.
fn client_hello(version: [u8; 2], suites: &[u16], extensions: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        body.extend_from_slice(&suite.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // null compression only
    if !extensions.is_empty() {
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend_from_slice(extensions);
    }
    let mut handshake = vec![1u8]; // client_hello
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// Sends `hello` and returns the alert description the server answers with.
async fn alert_for(addr: std::net::SocketAddr, hello: &[u8]) -> u8 {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(hello).await.unwrap();
    let mut answer = [0u8; 7];
    tcp.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[0], 0x15, "expected an alert record, got {answer:?}");
    assert_eq!(answer[5], 2, "expected a fatal alert, got {answer:?}");
    // The server hangs up after the alert.
    let mut rest = [0u8; 1];
    assert!(matches!(tcp.read(&mut rest).await, Ok(0) | Err(_)));
    answer[6]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refuses_tls10_and_cbc_only_client_hellos() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let server = TestServer::start(&serve_args(&certs, &[]), Arc::new(NullReviewer)).await;

        let extensions = [
            0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x1d, // supported_groups: x25519
            0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
            0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signature_algorithms
        ];
        const ECDHE_ECDSA_AES128_GCM: u16 = 0xc02b;
        const ECDHE_ECDSA_AES128_CBC: u16 = 0xc009;
        const ECDHE_RSA_AES128_CBC: u16 = 0xc013;
        const RSA_AES128_CBC: u16 = 0x002f;

        // An otherwise acceptable hello that tops out at TLS 1.0 or 1.1 is refused for its
        // version alone: alert protocol_version.
        for legacy in [[3, 1], [3, 2]] {
            let hello = client_hello(legacy, &[ECDHE_ECDSA_AES128_GCM], &extensions);
            assert_eq!(alert_for(server.https, &hello).await, 70, "{legacy:?}");
        }

        // TLS 1.2 offering only CBC suites is refused: alert handshake_failure.
        let cbc_only = client_hello(
            [3, 3],
            &[ECDHE_ECDSA_AES128_CBC, ECDHE_RSA_AES128_CBC, RSA_AES128_CBC],
            &extensions,
        );
        assert_eq!(alert_for(server.https, &cbc_only).await, 40);

        // The same hello with an AEAD suite added gets a ServerHello, not an alert.
        let with_gcm = client_hello(
            [3, 3],
            &[ECDHE_ECDSA_AES128_CBC, ECDHE_ECDSA_AES128_GCM],
            &extensions,
        );
        let mut tcp = TcpStream::connect(server.https).await.unwrap();
        tcp.write_all(&with_gcm).await.unwrap();
        let mut first = [0u8; 6];
        tcp.read_exact(&mut first).await.unwrap();
        assert_eq!(first[0], 0x16, "handshake record");
        assert_eq!(first[5], 2, "server_hello");
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_ca_requires_a_client_certificate_it_signed() {
    bounded(async {
        let pki = Pki::new();
        let certs = CertDir::with(&pki.server_leaf());
        let ca_path = certs.dir.path().join("client-ca.crt");
        std::fs::write(&ca_path, pki.ca_pem()).unwrap();
        let args = serve_args(&certs, &["--tls-client-ca", ca_path.to_str().unwrap()]);
        let server = TestServer::start(&args, Arc::new(NullReviewer)).await;

        let client = pki.client_leaf();
        let config = pki.client_config_with(rustls::ALL_VERSIONS, None, Some(&client));
        let mut conn = HttpConn::new(connect_tls(server.https, config).await.unwrap());
        let response = conn.post("/validate", GKE_REVIEW).await.unwrap();
        assert_eq!(response.status, 200);

        // Without a certificate: TLS 1.3 clients learn it on the first read.
        let anonymous = pki.client_config(rustls::ALL_VERSIONS);
        let refused = match connect_tls(server.https, anonymous).await {
            Err(_) => true,
            Ok(stream) => HttpConn::new(stream)
                .post("/validate", GKE_REVIEW)
                .await
                .is_err(),
        };
        assert!(refused, "a client without a certificate got an answer");

        // A certificate from another CA is refused too.
        let stranger = Pki::new().client_leaf();
        let config = pki.client_config_with(rustls::ALL_VERSIONS, None, Some(&stranger));
        let refused = match connect_tls(server.https, config).await {
            Err(_) => true,
            Ok(stream) => HttpConn::new(stream)
                .post("/validate", GKE_REVIEW)
                .await
                .is_err(),
        };
        assert!(refused, "a client certificate from another CA was accepted");
        server.shutdown().await;
    })
    .await;
}
