//! `a2o serve` behind an outbound proxy from the environment (`HTTP_PROXY`): requests to the
//! upstream go to the proxy, in absolute form, and the answer comes back to the client. Runs
//! the binary as a child process, because the proxy is read from the process environment.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

mod common;
use common::{post_raw, ServeProcess};

const ANSWER: &str = r#"{"id":"msg_proxy","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"via the proxy"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}"#;

/// A proxy that answers the first request itself and reports its head.
fn fake_proxy() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let (head, _) = read_request_with_body(&mut stream).expect("a request");
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{ANSWER}",
            ANSWER.len()
        );
        stream.write_all(reply.as_bytes()).expect("answer");
        let _ = tx.send(head);
    });
    (port, rx)
}

#[test]
fn requests_go_through_the_proxy_from_the_environment() {
    let (proxy_port, heads) = fake_proxy();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let serve = ServeProcess::start(
        &[
            "--upstream",
            "http://upstream.invalid",
            "--upstream-protocol",
            "anthropic",
        ],
        &[("HTTP_PROXY", proxy.as_ref())],
    );
    // The banner says the proxy is in use.
    assert!(
        serve
            .banner
            .iter()
            .any(|line| line.trim().starts_with("via proxy:")),
        "{:?}",
        serve.banner
    );
    let response = post_raw(
        &serve.front("openai"),
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-test-0123456789")],
        r#"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hi"}]}"#,
    );

    let head = heads
        .recv_timeout(Duration::from_secs(20))
        .expect("the proxy got the upstream request");
    assert!(
        head.starts_with("POST http://upstream.invalid/v1/messages HTTP/1.1"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("x-api-key: sk-test-0123456789"),
        "{head}"
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("via the proxy"), "{response}");
    drop(serve);
}

/// A proxy that answers every request itself: 500 for `failing_host`, a chat completion for
/// any other. Reports (request line, body) of each request.
fn answering_proxy(failing_host: &'static str) -> (u16, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let tx = tx.clone();
            std::thread::spawn(move || loop {
                let Some((head, body)) = read_request_with_body(&mut stream) else {
                    return;
                };
                let line = head.lines().next().unwrap_or("").to_owned();
                let (status, answer) = if line.contains(failing_host) {
                    (
                        "500 Internal Server Error",
                        r#"{"error":{"message":"down","type":"server_error","param":null,"code":null}}"#,
                    )
                } else {
                    (
                        "200 OK",
                        r#"{"id":"chatcmpl-p","object":"chat.completion","created":1,"model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"via deepseek"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
                    )
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                if stream.write_all(reply.as_bytes()).is_err() || tx.send((line, body)).is_err() {
                    return;
                }
            });
        }
    });
    (port, rx)
}

/// One request (head and content-length body) from a keep-alive connection; None at its end.
fn read_request_with_body(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            let len = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&seen[end + 4..end + 4 + len]).into_owned();
                return Some((head, body));
            }
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn each_deployment_gets_the_output_limit_field_its_host_needs_on_failover() {
    let (proxy_port, requests) = answering_proxy("api.openai.example");
    let config = std::env::temp_dir().join(format!("a2o-failover-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        "model_list:\n  - model_name: chat\n    litellm_params:\n      model: openai/gpt-x\n      api_base: http://api.openai.example/v1\n      api_key: sk-server-openai-0123\n  - model_name: chat\n    litellm_params:\n      model: openai/deepseek-chat\n      api_base: http://api.deepseek.com/v1\n      api_key: sk-server-deepseek-0123\ngeneral_settings:\n  master_key: sk-proxy-master-0123\n",
    )
    .unwrap();
    let proxy = format!("http://127.0.0.1:{proxy_port}");
    let config_path = config.to_str().unwrap();
    let serve = ServeProcess::start(
        &["--max-retry-wait", "0.01", "--config", config_path],
        &[("HTTP_PROXY", proxy.as_ref())],
    );

    // Round robin puts each deployment first once in two requests.
    for _ in 0..2 {
        let response = post_raw(
            &serve.front("anthropic"),
            "/v1/messages",
            &[("x-api-key", "sk-proxy-master-0123")],
            r#"{"model":"chat","max_tokens":33,"messages":[{"role":"user","content":"Hi"}]}"#,
        );
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("via deepseek"), "{response}");
    }
    drop(serve);
    let _ = std::fs::remove_file(&config);

    let seen: Vec<(String, String)> = requests.try_iter().collect();
    let mut hosts = std::collections::BTreeSet::new();
    for (line, body) in &seen {
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        if line.contains("api.deepseek.com") {
            hosts.insert("deepseek");
            assert_eq!(body["max_tokens"], 33, "{line}: {body}");
            assert!(
                body.get("max_completion_tokens").is_none(),
                "{line}: {body}"
            );
        } else {
            hosts.insert("openai");
            assert_eq!(body["max_completion_tokens"], 33, "{line}: {body}");
            assert!(body.get("max_tokens").is_none(), "{line}: {body}");
        }
    }
    assert_eq!(
        hosts.into_iter().collect::<Vec<_>>(),
        ["deepseek", "openai"],
        "{seen:?}"
    );
}
