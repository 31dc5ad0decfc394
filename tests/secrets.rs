//! Secrets through `a2o serve`: distinctive test keys never show up in logs (text and JSON,
//! with `--log-bodies`), in error bodies, in upstream errors relayed to clients or in metrics;
//! a client cannot steer where a2o connects (Host, forwarding headers, absolute-URI request
//! targets, body fields); stored upstream keys never make an open relay; and proxy keys are
//! matched exactly.
//!
//! `a2o check` is covered where tests/check.rs is not: keys a relay echoes back in an error
//! body, in a response header and in a stream, for a key pool, through reports and recordings.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use a2o::cli::{Cli, Command};
use a2o::protocol::Dialect;
use a2o::server::log::LogFormat;
use a2o::server::{settings, ServeConfig};
use clap::Parser;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock as WireMock, MockServer, ResponseTemplate};

mod common;
use common::{http, start, start_mock, Proxy};

const CALL_LIMIT: Duration = Duration::from_secs(20);

/// Keys distinctive enough that any appearance is a leak, not a coincidence.
const CLIENT_KEY: &str = "sk-client-SECRET-7c1f9e";
const CLIENT_KEY_2: &str = "sk-client-SECRET-2b8d40";
const SERVER_KEY: &str = "sk-server-SECRET-a93e55";
const PROXY_KEY: &str = "sk-proxy-SECRET-d02c77";
/// A key the mock refuses (`mock:fail_key:sk-public-failing`), put first in pools so requests
/// fail over to the secret keys behind it.
const FAILING_KEY: &str = "sk-public-failing";

// ---------------------------------------------------------------------------------------------
// Harness

fn config(upstream: &str, protocol: Dialect) -> ServeConfig {
    ServeConfig {
        host: "127.0.0.1".into(),
        anthropic_port: 0,
        openai_port: 0,
        upstream: upstream.trim_end_matches('/').into(),
        upstream_protocol: protocol,
        http_timeout: Duration::from_secs(2),
        max_retry_wait: Duration::from_millis(20),
        shutdown_grace: Duration::from_secs(2),
        ..ServeConfig::default()
    }
}

/// Starts a2o from command-line arguments, as `a2o serve` would (config file included).
async fn start_args(args: &[&str]) -> Proxy {
    let mut argv = vec![
        "a2o",
        "serve",
        "--no-dotenv",
        "--host",
        "127.0.0.1",
        "--anthropic-port",
        "0",
        "--openai-port",
        "0",
    ];
    argv.extend_from_slice(args);
    let Command::Serve(serve_args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let effective = settings::resolve(&serve_args).expect("settings");
    start(effective.config).await
}

/// A self-deleting config file.
struct ConfigFile(std::path::PathBuf);

impl ConfigFile {
    fn new(text: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("a2o-secrets-{}-{n}.yaml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        ConfigFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A loopback listener that should never be contacted; counts connections.
async fn canary() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr.to_string(), hits)
}

fn request_body(text: &str, stream: bool) -> Value {
    json!({"model": "m", "max_tokens": 20, "stream": stream,
           "messages": [{"role": "user", "content": text}]})
}

/// Posts in `client`'s dialect with `key` in that dialect's header; returns the status, the
/// headers and the body as text.
async fn call(proxy: &Proxy, client: Dialect, key: &str, body: &Value) -> (u16, String, String) {
    let front = proxy.front(client);
    let req = match client {
        Dialect::OpenAi => http()
            .post(format!("{front}/v1/chat/completions"))
            .header("authorization", format!("Bearer {key}")),
        Dialect::Anthropic => http()
            .post(format!("{front}/v1/messages"))
            .header("x-api-key", key),
    };
    let resp = tokio::time::timeout(CALL_LIMIT, req.json(body).send())
        .await
        .expect("answer within the call limit")
        .expect("answer");
    let status = resp.status().as_u16();
    let headers = format!("{:?}", resp.headers());
    let text = tokio::time::timeout(CALL_LIMIT, resp.text())
        .await
        .expect("body within the call limit")
        .unwrap_or_default();
    (status, headers, text)
}

fn assert_no_secret(place: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{place} contains {secret}:\n{text}");
        // A distinctive fragment is a leak too (masked forms such as `sk-cli***9e`).
        let fragment = secret.rsplit('-').next().unwrap();
        assert!(
            !text.contains(fragment),
            "{place} contains the fragment {fragment} of {secret}:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Logs, error bodies, metrics

/// Scenarios that exercise every logging path: success, streams, failover, every kind of
/// upstream failure, and refusals of the key itself.
const SCENARIOS: &[(&str, bool)] = &[
    ("hello", false),
    ("hello", true),
    ("mock:tool", true),
    ("mock:error:401", false),
    ("mock:error:429", false),
    ("mock:error:529", true),
    ("mock:error:500", false),
    // The refused key is a public one put first in the pool (see FAILING_KEY): the body is
    // logged with --log-bodies, so it must not name a secret key itself.
    ("mock:fail_key:sk-public-failing", false),
    ("mock:fail_key_529:sk-public-failing", true),
    ("mock:reset", false),
    ("mock:truncate", true),
    ("mock:truncate", false),
    ("mock:midstream_error", true),
    ("mock:html", false),
    ("mock:bad_json", true),
    ("mock:stall", true),
];

#[tokio::test]
async fn keys_never_appear_in_logs_error_bodies_or_headers() {
    let mock = start_mock().await;
    for format in [LogFormat::Text, LogFormat::Json] {
        for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
            let mut cfg = config(&mock.url, upstream);
            cfg.log_format = format;
            cfg.log_bodies = true;
            cfg.http_timeout = Duration::from_millis(300);
            let proxy = start(cfg).await;
            let pool = format!("{FAILING_KEY},{CLIENT_KEY},{CLIENT_KEY_2}");
            for client in [Dialect::Anthropic, Dialect::OpenAi] {
                for (text, stream) in SCENARIOS {
                    for key in [CLIENT_KEY, pool.as_str()] {
                        let (status, headers, body) =
                            call(&proxy, client, key, &request_body(text, *stream)).await;
                        let place = format!("{client:?}->{upstream:?} {text} answer ({status})");
                        assert_no_secret(&place, &headers, &[CLIENT_KEY, CLIENT_KEY_2]);
                        assert_no_secret(&place, &body, &[CLIENT_KEY, CLIENT_KEY_2]);
                    }
                }
                // Keys a2o refuses: too many, too long, bad characters.
                let too_many = (0..70)
                    .map(|i| format!("{CLIENT_KEY}{i}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let too_long = format!("{CLIENT_KEY}{}", "x".repeat(2000));
                for key in [
                    too_many.as_str(),
                    too_long.as_str(),
                    "sk-client-SECRET-7c1f9e\u{7f}",
                ] {
                    let Ok(value) = reqwest::header::HeaderValue::from_str(key) else {
                        continue;
                    };
                    let front = proxy.front(client);
                    let resp = http()
                        .post(format!("{front}/v1/messages"))
                        .header("x-api-key", value)
                        .json(&request_body("hi", false))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 400);
                    assert_no_secret("refusal", &resp.text().await.unwrap(), &[CLIENT_KEY]);
                }
                // The other endpoints.
                let front = proxy.front(client);
                let models = http()
                    .get(format!("{front}/v1/models"))
                    .bearer_auth(CLIENT_KEY)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert_no_secret("models", &models, &[CLIENT_KEY]);
                let count = http()
                    .post(format!("{front}/v1/messages/count_tokens"))
                    .header("x-api-key", CLIENT_KEY)
                    .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert_no_secret("count_tokens", &count, &[CLIENT_KEY]);
            }
            let logs = proxy.shutdown().await;
            assert!(
                logs.contains("key:"),
                "logs name keys by fingerprint: {logs}"
            );
            assert!(logs.contains("body"), "--log-bodies logged bodies: {logs}");
            assert_no_secret(
                &format!("{format:?} logs"),
                &logs,
                &[CLIENT_KEY, CLIENT_KEY_2],
            );
        }
    }
}

#[tokio::test]
async fn unreachable_upstreams_do_not_leak_keys_either() {
    let (closed, _) = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (listener.local_addr().unwrap(), drop(listener))
    };
    for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
        let mut cfg = config(&format!("http://{closed}"), upstream);
        cfg.log_bodies = true;
        let proxy = start(cfg).await;
        for client in [Dialect::Anthropic, Dialect::OpenAi] {
            let (status, headers, body) = call(
                &proxy,
                client,
                &format!("{CLIENT_KEY},{CLIENT_KEY_2}"),
                &request_body("hi", false),
            )
            .await;
            assert_eq!(status, 502);
            assert_no_secret(
                "answer",
                &format!("{headers}{body}"),
                &[CLIENT_KEY, CLIENT_KEY_2],
            );
        }
        let logs = proxy.shutdown().await;
        assert_no_secret("logs", &logs, &[CLIENT_KEY, CLIENT_KEY_2]);
    }
}

#[tokio::test]
async fn metrics_name_keys_only_by_fingerprint() {
    let mock = start_mock().await;
    let mut cfg = config(&mock.url, Dialect::Anthropic);
    cfg.metrics = true;
    let proxy = start(cfg).await;
    let pool = format!("{FAILING_KEY},{CLIENT_KEY},{CLIENT_KEY_2}");
    for text in ["mock:fail_key:sk-public-failing", "mock:error:429", "hi"] {
        let _ = call(&proxy, Dialect::OpenAi, &pool, &request_body(text, false)).await;
    }
    let metrics = http()
        .get(format!("{}/metrics", proxy.openai))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("a2o_key_failovers_total"), "{metrics}");
    assert_no_secret("metrics", &metrics, &[CLIENT_KEY, CLIENT_KEY_2]);
    proxy.shutdown().await;
}

fn mapping_config(upstream: &str, dialect: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: m
    litellm_params:
      model: {dialect}/real-model
      api_base: {upstream}
      api_key: {SERVER_KEY}
general_settings:
  master_key: {PROXY_KEY}
"#
    )
}

#[tokio::test]
async fn server_keys_and_the_proxy_key_stay_out_of_logs_and_answers() {
    let mock = start_mock().await;
    for dialect in ["anthropic", "openai"] {
        let config = ConfigFile::new(&mapping_config(&mock.url, dialect));
        let proxy = start_args(&[
            "--config",
            config.path(),
            "--log-bodies",
            "--http-timeout",
            "0.3",
        ])
        .await;
        for client in [Dialect::Anthropic, Dialect::OpenAi] {
            for (text, stream) in SCENARIOS {
                let (status, headers, body) =
                    call(&proxy, client, PROXY_KEY, &request_body(text, *stream)).await;
                let place = format!("{client:?}->{dialect} {text} answer ({status})");
                assert_no_secret(
                    &place,
                    &format!("{headers}{body}"),
                    &[SERVER_KEY, PROXY_KEY],
                );
            }
        }
        let logs = proxy.shutdown().await;
        assert_no_secret("logs", &logs, &[SERVER_KEY, PROXY_KEY]);
        // The upstream got the server key, never the proxy key.
        for request in mock.state.requests() {
            let text = format!("{:?}", request.headers);
            assert!(!text.contains(PROXY_KEY), "{text}");
        }
        mock.state.clear();
    }
}

#[tokio::test]

async fn upstream_errors_quoting_a_server_key_are_redacted() {
    let upstream = MockServer::start().await;
    WireMock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "type": "error",
            "error": {"type": "authentication_error", "message": format!("invalid x-api-key: {SERVER_KEY}")},
            "detail": SERVER_KEY
        })))
        .mount(&upstream)
        .await;
    let config = ConfigFile::new(&mapping_config(&upstream.uri(), "anthropic"));
    let proxy = start_args(&["--config", config.path()]).await;
    for client in [Dialect::Anthropic, Dialect::OpenAi] {
        let (status, headers, body) =
            call(&proxy, client, PROXY_KEY, &request_body("hi", false)).await;
        assert_eq!(status, 401, "{body}");
        assert_no_secret(
            &format!("{client:?} answer"),
            &format!("{headers}{body}"),
            &[SERVER_KEY],
        );
    }
    proxy.shutdown().await;
}

#[tokio::test]

async fn html_pages_quoting_a_server_key_are_redacted() {
    let upstream = MockServer::start().await;
    WireMock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!("<html>key {SERVER_KEY} is blocked</html>"),
            "text/html",
        ))
        .mount(&upstream)
        .await;
    let config = ConfigFile::new(&mapping_config(&upstream.uri(), "openai"));
    let proxy = start_args(&["--config", config.path()]).await;
    for client in [Dialect::Anthropic, Dialect::OpenAi] {
        let (status, headers, body) =
            call(&proxy, client, PROXY_KEY, &request_body("hi", false)).await;
        assert_eq!(status, 502, "{body}");
        assert_no_secret(
            &format!("{client:?} answer"),
            &format!("{headers}{body}"),
            &[SERVER_KEY],
        );
    }
    let logs = proxy.shutdown().await;
    assert_no_secret("logs", &logs, &[SERVER_KEY]);
}

// ---------------------------------------------------------------------------------------------
// No steering the upstream (SSRF)

#[tokio::test]
async fn headers_cannot_steer_the_upstream() {
    let mock = start_mock().await;
    let (evil, hits) = canary().await;
    let mock_authority = mock.url.trim_start_matches("http://").to_owned();
    for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
        let proxy = start(config(&mock.url, upstream)).await;
        for client in [Dialect::Anthropic, Dialect::OpenAi] {
            for (name, value) in [
                ("host", evil.clone()),
                ("x-forwarded-host", evil.clone()),
                ("x-forwarded-proto", "https".to_owned()),
                ("forwarded", format!("host={evil};proto=http")),
                ("x-original-url", format!("http://{evil}/v1/messages")),
                ("x-rewrite-url", format!("http://{evil}/v1/messages")),
                ("x-upstream", format!("http://{evil}")),
                ("x-a2o-upstream", format!("http://{evil}")),
                ("x-base-url", format!("http://{evil}")),
                ("anthropic-base-url", format!("http://{evil}")),
                ("openai-base-url", format!("http://{evil}")),
                ("proxy-authorization", "Basic ZXZpbDpldmls".to_owned()),
            ] {
                mock.state.clear();
                let front = proxy.front(client);
                let path = match client {
                    Dialect::OpenAi => "/v1/chat/completions",
                    Dialect::Anthropic => "/v1/messages",
                };
                let resp = http()
                    .post(format!("{front}{path}"))
                    .header("x-api-key", "k")
                    .bearer_auth("k")
                    .header(name, value.as_str())
                    .json(&request_body("hi", false))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "{name}");
                let received = mock.state.requests();
                assert_eq!(received.len(), 1, "{name}: the configured upstream got it");
                let host = received[0]
                    .headers
                    .iter()
                    .find(|(n, _)| n == "host")
                    .map(|(_, v)| v.clone());
                assert_eq!(host.as_deref(), Some(mock_authority.as_str()), "{name}");
                assert!(
                    !received[0]
                        .headers
                        .iter()
                        .any(|(n, _)| n == "proxy-authorization"),
                    "proxy credentials are not forwarded"
                );
            }
        }
        proxy.shutdown().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the canary was contacted");
}

/// Sends raw bytes to `front` and returns the start of the answer.
async fn raw_exchange(front: &str, bytes: &[u8]) -> String {
    let mut socket = TcpStream::connect(front.trim_start_matches("http://"))
        .await
        .unwrap();
    socket.write_all(bytes).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn request_targets_cannot_steer_the_upstream() {
    let mock = start_mock().await;
    let (evil, hits) = canary().await;
    let body = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
        let proxy = start(config(&mock.url, upstream)).await;
        for target in [
            format!("http://{evil}/v1/messages"),
            format!("http://{evil}/v1/chat/completions"),
            format!("//{evil}/v1/messages"),
            "/v1/messages?url=http://EVIL/".replace("EVIL", &evil),
            "/v1/chat/completions?@EVIL".replace("EVIL", &evil),
            "/v1/messages/../../../v1/messages".to_owned(),
            "/%2e%2e/v1/messages".to_owned(),
            evil.clone(),
        ] {
            mock.state.clear();
            let request = format!(
                "POST {target} HTTP/1.1\r\nhost: {evil}\r\nx-api-key: k\r\nauthorization: Bearer k\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let answer = raw_exchange(&proxy.anthropic, request.as_bytes()).await;
            let status = answer.get(9..12).unwrap_or("");
            assert!(
                status == "200" || status.starts_with('4'),
                "{target}: {answer}"
            );
            for received in mock.state.requests() {
                let host = received.headers.iter().find(|(n, _)| n == "host").unwrap();
                assert_eq!(&host.1, mock.url.trim_start_matches("http://"), "{target}");
            }
        }
        let connect = format!("CONNECT {evil} HTTP/1.1\r\nhost: {evil}\r\n\r\n");
        let answer = raw_exchange(&proxy.openai, connect.as_bytes()).await;
        assert!(!answer.starts_with("HTTP/1.1 2"), "CONNECT: {answer}");
        proxy.shutdown().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the canary was contacted");
}

#[tokio::test]
async fn body_fields_cannot_steer_the_upstream() {
    let mock = start_mock().await;
    let (evil, hits) = canary().await;
    let url = format!("http://{evil}");
    for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
        let proxy = start(config(&mock.url, upstream)).await;
        for client in [Dialect::Anthropic, Dialect::OpenAi] {
            let mut body = request_body("hi", false);
            for field in [
                "api_base",
                "base_url",
                "upstream",
                "url",
                "endpoint",
                "host",
                "proxy",
                "extra_headers",
                "extra_body",
                "custom_llm_provider",
                "litellm_params",
            ] {
                body[field] = json!(url);
            }
            body["model"] = json!(format!("openai/{url}/v1"));
            body["metadata"] = json!({"api_base": url, "user_id": url});
            body["messages"][0]["content"] = json!([
                {"type": "image_url", "image_url": {"url": format!("{url}/image.png")}},
                {"type": "image", "source": {"type": "url", "url": format!("{url}/image.png")}},
                {"type": "document", "source": {"type": "url", "url": format!("{url}/doc.pdf")}},
                {"type": "text", "text": "hi"}
            ]);
            mock.state.clear();
            let (status, _, answer) = call(&proxy, client, "k", &body).await;
            assert!(status < 500, "{client:?}->{upstream:?}: {status} {answer}");
            assert!(mock.state.requests().len() <= 1);
        }
        proxy.shutdown().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a2o fetched something a request body named"
    );
}

// ---------------------------------------------------------------------------------------------
// Never an open relay

#[tokio::test]
async fn stored_keys_are_never_an_open_relay() {
    let mock = start_mock().await;
    for dialect in ["anthropic", "openai"] {
        let config = ConfigFile::new(&mapping_config(&mock.url, dialect));
        let proxy = start_args(&["--config", config.path()]).await;
        let near_misses = [
            String::new(),
            " ".to_owned(),
            CLIENT_KEY.to_owned(),
            SERVER_KEY.to_owned(),
            PROXY_KEY.to_uppercase(),
            PROXY_KEY[..PROXY_KEY.len() - 1].to_owned(),
            format!("{PROXY_KEY}x"),
            format!("{PROXY_KEY},{PROXY_KEY}"),
            format!("x{PROXY_KEY}"),
            format!("{PROXY_KEY}\u{0}").replace('\u{0}', ""),
        ];
        for client in [Dialect::Anthropic, Dialect::OpenAi] {
            let front = proxy.front(client);
            for path in [
                "/v1/messages",
                "/v1/chat/completions",
                "/v1/messages/count_tokens",
            ] {
                // No key at all.
                let resp = http()
                    .post(format!("{front}{path}"))
                    .json(&request_body("hi", false))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 401, "{path} without a key");
                for key in &near_misses {
                    if key == PROXY_KEY {
                        continue;
                    }
                    for header in ["x-api-key", "authorization"] {
                        let value = if header == "authorization" {
                            format!("Bearer {key}")
                        } else {
                            key.clone()
                        };
                        let resp = http()
                            .post(format!("{front}{path}"))
                            .header(header, value)
                            .json(&request_body("hi", false))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(resp.status(), 401, "{path} with {header} {key:?}");
                    }
                }
            }
            let models = http()
                .get(format!("{front}/v1/models"))
                .bearer_auth(CLIENT_KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(models.status(), 401, "the model list needs the proxy key");
        }
        assert!(
            mock.state.requests().is_empty(),
            "nothing reached the upstream without the proxy key: {:?}",
            mock.state.requests()
        );
        // With the proxy key, a model outside model_list has no key to use: still refused,
        // and the client's own header is never forwarded.
        let (status, _, _) = call(
            &proxy,
            Dialect::OpenAi,
            PROXY_KEY,
            &json!({"model": "other", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        assert_eq!(status, 401);
        assert!(mock.state.requests().is_empty());
        // The right key works, and the upstream sees only the server key.
        let (status, _, _) = call(
            &proxy,
            Dialect::OpenAi,
            PROXY_KEY,
            &request_body("hi", false),
        )
        .await;
        assert_eq!(status, 200);
        let received = mock.state.requests();
        assert_eq!(received.len(), 1);
        let keys: Vec<&String> = received[0]
            .headers
            .iter()
            .filter(|(n, _)| n == "x-api-key" || n == "authorization")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(keys[0].ends_with(SERVER_KEY), "{keys:?}");
        mock.state.clear();
        proxy.shutdown().await;
    }
}

#[tokio::test]

async fn an_empty_master_key_does_not_open_the_relay() {
    let mock = start_mock().await;
    let config = ConfigFile::new(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/x, api_base: '{}', api_key: {SERVER_KEY}}}\ngeneral_settings:\n  master_key: \"\"\n",
        mock.url
    ));
    let Command::Serve(args) = Cli::try_parse_from([
        "a2o",
        "serve",
        "--no-dotenv",
        "--host",
        "0.0.0.0",
        "--config",
        config.path(),
    ])
    .unwrap()
    .command
    else {
        unreachable!()
    };
    // Refusing to start is a fine answer; starting and letting an empty key in is not.
    let Ok(effective) = settings::resolve(&args) else {
        return;
    };
    let mut cfg = effective.config;
    cfg.host = "127.0.0.1".into();
    cfg.anthropic_port = 0;
    cfg.openai_port = 0;
    let proxy = start(cfg).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", proxy.openai))
        .header("authorization", "Bearer ")
        .json(&request_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http()
        .post(format!("{}/v1/messages", proxy.anthropic))
        .header("x-api-key", "")
        .json(&request_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        mock.state.requests().is_empty(),
        "the server key was used for an empty proxy key"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn proxy_keys_match_exactly_in_either_header_and_either_dialect() {
    // `constant_time_eq` is crate-private; its contract is tested through behaviour: only the
    // exact key passes, whatever the length or position of a difference.
    let mock = start_mock().await;
    let config = ConfigFile::new(&format!(
        "general_settings:\n  master_key: {PROXY_KEY}\na2o:\n  client_keys: [sk-second-proxy-key]\n  upstream: {}\n",
        mock.url
    ));
    let proxy = start_args(&["--config", config.path()]).await;
    let mut wrong: Vec<String> = Vec::new();
    for i in 0..PROXY_KEY.len() {
        let mut bytes = PROXY_KEY.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
        wrong.push(String::from_utf8(bytes).unwrap());
        wrong.push(PROXY_KEY[..i].to_owned());
    }
    wrong.push(format!("{PROXY_KEY}{PROXY_KEY}"));
    wrong.push("sk-second-proxy-ke".to_owned());
    for key in wrong.iter().filter(|k| !k.is_empty()) {
        let (status, _, _) =
            call(&proxy, Dialect::Anthropic, key, &request_body("hi", false)).await;
        assert_eq!(status, 401, "{key}");
    }
    for key in [PROXY_KEY, "sk-second-proxy-key"] {
        for client in [Dialect::Anthropic, Dialect::OpenAi] {
            let (status, _, body) = call(&proxy, client, key, &request_body("hi", false)).await;
            // Proxy keys are not upstream keys: with no stored key the client has none to give.
            assert_eq!(status, 401, "{body}");
            assert!(body.contains("no upstream key"), "{body}");
        }
    }
    assert!(mock.state.requests().is_empty());
    proxy.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// `a2o check`: reports and recordings

const CHECK_KEY_1: &str = "sk-check-SECRET-51d0aa";
const CHECK_KEY_2: &str = "sk-check-SECRET-c7e9b3";

fn all_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(all_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn check_hides_keys_a_relay_echoes_in_errors_headers_and_streams() {
    // A "relay" that quotes the key it was given everywhere it can: in a 401 body, in a
    // response header, and in the text of a stream.
    let relay = MockServer::start().await;
    let echoed = format!("{CHECK_KEY_1},{CHECK_KEY_2}");
    WireMock::given(method("POST"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-echo-key", CHECK_KEY_2)
                .set_body_raw(
                    format!(
                        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"your key {CHECK_KEY_2}\"}},\"finish_reason\":null}}]}}\n\n\
                         data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n"
                    ),
                    "text/event-stream",
                ),
        )
        .mount(&relay)
        .await;
    WireMock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("x-echo-key", echoed.as_str())
                .set_body_json(json!({"error": {
                    "message": format!("Incorrect API key provided: {echoed} ({CHECK_KEY_1})"),
                    "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})),
        )
        .mount(&relay)
        .await;
    let dir = std::env::temp_dir().join(format!("a2o-secrets-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cases")).unwrap();
    for (name, stream) in [("error", false), ("stream", true)] {
        let case = json!({
            "id": format!("secrets/{name}"),
            "description": "A relay that echoes the key.",
            "requirement": "The key never shows.",
            "level": "must",
            "tags": ["secrets"],
            "request": {
                "method": "POST",
                "path": "/v1/chat/completions",
                "headers": {"authorization": "Bearer ${A2O_CHECK_API_KEY}"},
                "body": {"model": "m", "stream": stream,
                         "messages": [{"role": "user", "content": "Hi"}]}
            },
            "expect": {"status": 200, "body": {"unexpected": true}},
            "match": "exact"
        });
        std::fs::write(
            dir.join(format!("cases/{name}.json")),
            serde_json::to_vec_pretty(&case).unwrap(),
        )
        .unwrap();
    }
    let run = |extra: &[&str]| {
        let output = assert_cmd::Command::cargo_bin("a2o")
            .unwrap()
            .arg("check")
            .arg(dir.join("cases"))
            .args(["--target", &relay.uri()])
            .args(extra)
            .env("A2O_CHECK_API_KEY", &echoed)
            .env("CI", "true")
            .output()
            .unwrap();
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let reports = dir.join("reports");
    let json_report = reports.join("r.json");
    let junit_report = reports.join("r.xml");
    let mut everything = vec![
        run(&[
            "--report",
            "json",
            json_report.to_str().unwrap(),
            "--report",
            "junit",
            junit_report.to_str().unwrap(),
        ]),
        run(&["--record", dir.join("recorded").to_str().unwrap()]),
    ];
    assert_eq!(
        relay.received_requests().await.unwrap().len(),
        4,
        "{everything:?}"
    );
    for file in all_files(&dir.join("reports"))
        .into_iter()
        .chain(all_files(&dir.join("recorded")))
    {
        everything.push(std::fs::read_to_string(&file).unwrap());
    }
    assert!(
        everything.len() >= 4,
        "reports and recordings were written: {everything:?}"
    );
    for text in &everything {
        assert_no_secret("a2o check output", text, &[CHECK_KEY_1, CHECK_KEY_2]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
