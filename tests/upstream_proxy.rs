//! `a2o serve` behind an outbound proxy from the environment (`HTTP_PROXY`): requests to the
//! upstream go to the proxy, in absolute form, and the answer comes back to the client. Runs
//! the binary as a child process, because the proxy is read from the process environment.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

const ANSWER: &str = r#"{"id":"msg_proxy","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"via the proxy"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":2}}"#;

/// Reads one HTTP request (head and content-length body) and returns its head.
fn read_request(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("read request");
        assert!(n > 0, "connection closed mid-request");
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            let len = head
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(str::trim)
                        .map(str::to_owned)
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + len {
                return head;
            }
        }
    }
}

/// A proxy that answers the first request itself and reports its head.
fn fake_proxy() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let head = read_request(&mut stream);
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{ANSWER}",
            ANSWER.len()
        );
        stream.write_all(reply.as_bytes()).expect("answer");
        let _ = tx.send(head);
    });
    (port, rx)
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn requests_go_through_the_proxy_from_the_environment() {
    let (proxy_port, heads) = fake_proxy();
    let mut child = Command::cargo_bin("a2o")
        .expect("binary builds")
        .args([
            "serve",
            "--no-dotenv",
            "--host",
            "127.0.0.1",
            "--anthropic-port",
            "0",
            "--openai-port",
            "0",
            "--upstream",
            "http://upstream.invalid",
            "--upstream-protocol",
            "anthropic",
        ])
        .env("HTTP_PROXY", format!("http://127.0.0.1:{proxy_port}"))
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("a2o serve starts");
    let stdout = child.stdout.take().unwrap();
    let serve = Serve(child);
    // The banner ends with the thread count; it says the proxy is in use.
    let banner: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.trim().starts_with("threads:"))
        .collect();
    assert!(
        banner
            .iter()
            .any(|line| line.trim().starts_with("via proxy:")),
        "{banner:?}"
    );
    let front = banner
        .iter()
        .find_map(|line| {
            line.trim()
                .strip_prefix("openai front:")
                .map(|rest| rest.trim().trim_start_matches("http://").to_owned())
        })
        .expect("the OpenAI front's address on stdout");

    let body = r#"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Hi"}]}"#;
    let mut client = TcpStream::connect(&front).expect("connect to a2o");
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        client,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: a2o\r\nauthorization: Bearer sk-test-0123456789\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    client.read_to_string(&mut response).expect("a2o answers");

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
    let mut child = Command::cargo_bin("a2o")
        .expect("binary builds")
        .args([
            "serve",
            "--no-dotenv",
            "--host",
            "127.0.0.1",
            "--anthropic-port",
            "0",
            "--openai-port",
            "0",
            "--max-retry-wait",
            "0.01",
            "--config",
        ])
        .arg(&config)
        .env("HTTP_PROXY", format!("http://127.0.0.1:{proxy_port}"))
        .env_remove("A2O_MAX_TOKENS_FIELD")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("a2o serve starts");
    let stdout = child.stdout.take().unwrap();
    let serve = Serve(child);
    let front = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.trim()
                .strip_prefix("anthropic front:")
                .map(|rest| rest.trim().trim_start_matches("http://").to_owned())
        })
        .expect("the Anthropic front's address on stdout");

    // Round robin puts each deployment first once in two requests.
    let body = r#"{"model":"chat","max_tokens":33,"messages":[{"role":"user","content":"Hi"}]}"#;
    for _ in 0..2 {
        let mut client = TcpStream::connect(&front).expect("connect to a2o");
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            client,
            "POST /v1/messages HTTP/1.1\r\nhost: a2o\r\nx-api-key: sk-proxy-master-0123\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        client.read_to_string(&mut response).expect("a2o answers");
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
