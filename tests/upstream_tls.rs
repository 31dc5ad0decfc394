//! `a2o serve` against an HTTPS upstream on loopback: the certificate is checked against the
//! system store (`SSL_CERT_FILE` names a test CA here), HTTP/2 is negotiated by ALPN, and an
//! untrusted certificate is a 502 that says why. Runs the binary as a child process, because
//! the trust store is read from the process environment.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_rustls::rustls;

mod common;
use common::{post_raw, ServeProcess};

const ANSWER: &str = r#"{"id":"msg_tls","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"over TLS"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}"#;

/// A CA, and a certificate for `localhost` signed by it: (CA PEM, server chain, server key).
fn certificates() -> (
    String,
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    (ca.pem(), vec![server.der().clone()], key)
}

/// An HTTPS upstream on a free loopback port that answers every request with [`ANSWER`] and
/// records the ALPN protocol of each connection. Runs on its own thread and runtime.
fn https_upstream(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let protocols = Arc::new(Mutex::new(Vec::new()));
    let seen = protocols.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    // A client that rejects the certificate ends the handshake here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let protocol = tls
                        .get_ref()
                        .1
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .unwrap_or_else(|| "none".to_owned());
                    seen.lock().unwrap().push(protocol);
                    let service = service_fn(|_request| async {
                        let mut response =
                            hyper::Response::new(Full::new(Bytes::from_static(ANSWER.as_bytes())));
                        response.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, std::convert::Infallible>(response)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    let port = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("upstream binds");
    (port, protocols)
}

/// `a2o serve` in front of `upstream`, trusting only what `ca_file` holds (`SSL_CERT_FILE`).
fn serve(upstream: &str, ca_file: &std::path::Path) -> ServeProcess {
    ServeProcess::start(
        &["--upstream", upstream, "--upstream-protocol", "anthropic"],
        &[("SSL_CERT_FILE", ca_file.as_os_str())],
    )
}

/// One Anthropic request to the Anthropic front; the raw HTTP response.
fn ask(serve: &ServeProcess) -> String {
    post_raw(
        &serve.front("anthropic"),
        "/v1/messages",
        &[("x-api-key", "sk-test-0123456789")],
        r#"{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi"}]}"#,
    )
}

#[test]
fn https_upstream_is_trusted_through_the_system_store_and_speaks_http2() {
    let (ca_pem, chain, key) = certificates();
    let dir = std::env::temp_dir().join(format!("a2o-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trusted = dir.join("ca.pem");
    std::fs::write(&trusted, &ca_pem).unwrap();
    let (port, protocols) = https_upstream(chain, key);

    let serve_trusting = serve(&format!("https://localhost:{port}"), &trusted);
    let response = ask(&serve_trusting);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("over TLS"), "{response}");
    assert_eq!(
        protocols.lock().unwrap().as_slice(),
        ["h2"],
        "one connection, HTTP/2 by ALPN"
    );
    drop(serve_trusting);

    // The same upstream with a trust store that lacks its CA: refused, and the client is told.
    let other_ca = dir.join("other-ca.pem");
    std::fs::write(&other_ca, certificates().0).unwrap();
    let serve_distrusting = serve(&format!("https://localhost:{port}"), &other_ca);
    let response = ask(&serve_distrusting);
    assert!(response.starts_with("HTTP/1.1 502"), "{response}");
    assert!(response.contains("certificate"), "{response}");
    let _ = std::fs::remove_dir_all(&dir);
}
