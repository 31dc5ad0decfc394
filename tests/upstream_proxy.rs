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
    let front = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
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
