//! Fault injection through `a2o serve`: upstreams that reset, go silent, never answer, answer
//! garbage, cut streams short or refuse every key, and clients that leave mid-stream or
//! trickle their request. Each test asserts what the client sees in its own dialect (status
//! and body shape, or a stream that ends with the dialect's in-band error and passes the
//! dialect's grammar validator) and that nothing hangs: every wait is bounded.
//!
//! The upstreams are the project's mock (`a2o::mock`, in-process, for its scenarios and its
//! open-stream counter) and raw TCP listeners for faults no HTTP server will produce.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use a2o::protocol::Dialect;
use a2o::server::ServeConfig;
use a2o::stream::validate::{validate_anthropic_bytes, validate_openai_bytes};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

mod common;
use common::{http, start, start_mock, Proxy};

/// Upper bound on any single client call in these tests; a hang fails instead of blocking.
const CALL_LIMIT: Duration = Duration::from_secs(20);

const ROUTES: [(Dialect, Dialect); 4] = [
    (Dialect::OpenAi, Dialect::Anthropic),
    (Dialect::Anthropic, Dialect::OpenAi),
    (Dialect::Anthropic, Dialect::Anthropic),
    (Dialect::OpenAi, Dialect::OpenAi),
];

// ---------------------------------------------------------------------------------------------
// Harness

fn config(upstream: &str, protocol: Dialect) -> ServeConfig {
    ServeConfig {
        host: "127.0.0.1".into(),
        anthropic_port: 0,
        openai_port: 0,
        upstream: upstream.trim_end_matches('/').into(),
        upstream_protocol: protocol,
        http_timeout: Duration::from_secs(5),
        max_retry_wait: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(2),
        ..ServeConfig::default()
    }
}

/// A request in the client's dialect, on its own path, with the key in its own header.
fn request(
    proxy: &Proxy,
    client: Dialect,
    key: &str,
    text: &str,
    stream: bool,
) -> reqwest::RequestBuilder {
    let front = proxy.front(client);
    match client {
        Dialect::OpenAi => http()
            .post(format!("{front}/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model": "m", "max_tokens": 20, "stream": stream,
                           "messages": [{"role": "user", "content": text}]})),
        Dialect::Anthropic => http()
            .post(format!("{front}/v1/messages"))
            .header("x-api-key", key)
            .json(&json!({"model": "m", "max_tokens": 20, "stream": stream,
                           "messages": [{"role": "user", "content": text}]})),
    }
}

async fn send(req: reqwest::RequestBuilder) -> reqwest::Response {
    tokio::time::timeout(CALL_LIMIT, req.send())
        .await
        .expect("a2o answers within the call limit")
        .expect("a2o answers")
}

/// Asserts an error answer in `client`'s dialect and returns status and message.
async fn error_of(client: Dialect, resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = tokio::time::timeout(CALL_LIMIT, resp.text())
        .await
        .expect("the error body arrives")
        .unwrap();
    assert!(
        content_type.contains("json"),
        "{status} {content_type}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_error_shape(client, &body);
    (
        status,
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

fn assert_error_shape(client: Dialect, body: &Value) {
    match client {
        Dialect::OpenAi => {
            let error = &body["error"];
            assert!(error["message"].is_string(), "{body}");
            assert!(error.get("type").is_some(), "{body}");
            assert!(error.get("param").is_some(), "{body}");
            assert!(error.get("code").is_some(), "{body}");
        }
        Dialect::Anthropic => {
            assert_eq!(body["type"], "error", "{body}");
            assert!(body["error"]["type"].is_string(), "{body}");
            assert!(body["error"]["message"].is_string(), "{body}");
        }
    }
}

/// Reads a whole streamed answer within the call limit.
async fn stream_text(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 200);
    let bytes = tokio::time::timeout(CALL_LIMIT, resp.bytes())
        .await
        .expect("the stream ends within the call limit")
        .expect("the stream ends cleanly at the HTTP level");
    String::from_utf8(bytes.to_vec()).expect("a2o sends UTF-8")
}

/// Asserts a stream that ends with the client dialect's in-band error and is otherwise
/// well-formed for that dialect's SDKs; returns the error message.
fn assert_in_band_error(client: Dialect, text: &str) -> String {
    match client {
        Dialect::OpenAi => {
            // The validator insists on `[DONE]` or an in-band error as the last word.
            validate_openai_bytes(text.as_bytes()).unwrap_or_else(|v| panic!("{v}: {text}"));
            let error = text
                .split("\n\n")
                .filter_map(|block| block.trim().strip_prefix("data: "))
                .filter_map(|data| serde_json::from_str::<Value>(data).ok())
                .find(|v| v.get("error").is_some())
                .unwrap_or_else(|| panic!("no in-band error: {text}"));
            error["error"]["message"].as_str().unwrap().to_owned()
        }
        Dialect::Anthropic => {
            validate_anthropic_bytes(text.as_bytes()).unwrap_or_else(|v| panic!("{v}: {text}"));
            let error = text
                .split("\n\n")
                .filter(|block| block.contains("event: error"))
                .filter_map(|block| block.lines().find_map(|l| l.strip_prefix("data: ")))
                .filter_map(|data| serde_json::from_str::<Value>(data).ok())
                .last()
                .unwrap_or_else(|| panic!("no error event: {text}"));
            assert_eq!(error["type"], "error", "{text}");
            error["error"]["message"].as_str().unwrap().to_owned()
        }
    }
}

/// Polls `done` every 10 ms until it holds or `limit` passes.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

// ---------------------------------------------------------------------------------------------
// Raw TCP upstreams

/// Reads one HTTP/1.1 request (headers and Content-Length body) from `socket`.
async fn read_request(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if seen.len() >= end + 4 + len {
                return Some(seen);
            }
        }
    }
}

#[derive(Clone)]
enum RawReply {
    /// Read the request, then answer nothing until the peer leaves.
    Silent,
    /// A 200 SSE head and `body` (close-delimited), then reset the connection (RST).
    SseThenReset(Vec<u8>),
    /// A 200 SSE head and `body` (close-delimited), then a clean close.
    SseThenClose(Vec<u8>),
    /// A 307 redirect to `location`.
    Redirect(&'static str),
    /// A 301 redirect to `location` whose body is a JSON error, as some gateways send.
    RedirectJson(&'static str),
}

/// A loopback upstream that answers every connection with `reply`; counts connections.
async fn raw_upstream(reply: RawReply) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let reply = reply.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await.is_none() {
                    return;
                }
                let head: &[u8] =
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                match reply {
                    RawReply::Silent => {
                        let mut buf = [0u8; 1024];
                        while let Ok(n) = socket.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                        }
                    }
                    RawReply::SseThenReset(body) => {
                        let _ = socket.write_all(head).await;
                        let _ = socket.write_all(&body).await;
                        let _ = socket.flush().await;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        // Linger 0 turns the close into a RST.
                        let _ = socket.set_zero_linger();
                        drop(socket);
                    }
                    RawReply::SseThenClose(body) => {
                        let _ = socket.write_all(head).await;
                        let _ = socket.write_all(&body).await;
                        let _ = socket.shutdown().await;
                    }
                    RawReply::Redirect(location) => {
                        let reply = format!(
                            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                        let _ = socket.write_all(reply.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                    RawReply::RedirectJson(location) => {
                        let body = r#"{"error":{"type":"moved","message":"moved"}}"#;
                        let reply = format!(
                            "HTTP/1.1 301 Moved Permanently\r\nlocation: {location}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(reply.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), connections)
}

/// The start of a well-formed stream in `upstream`'s dialect: one text delta, no ending.
fn stream_start(upstream: Dialect) -> Vec<u8> {
    match upstream {
        Dialect::Anthropic => concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        )
        .as_bytes()
        .to_vec(),
        Dialect::OpenAi => concat!(
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
        )
        .as_bytes()
        .to_vec(),
    }
}

/// One more text delta carrying `text` (raw bytes: may be invalid UTF-8).
fn text_delta(upstream: Dialect, text: &[u8]) -> Vec<u8> {
    let (before, after): (&[u8], &[u8]) = match upstream {
        Dialect::Anthropic => (
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"",
            b"\"}}\n\n",
        ),
        Dialect::OpenAi => (
            b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
            b"\"},\"finish_reason\":null}]}\n\n",
        ),
    };
    [before, text, after].concat()
}

/// The end of a well-formed stream (after `stream_start`).
fn stream_end(upstream: Dialect) -> Vec<u8> {
    match upstream {
        Dialect::Anthropic => concat!(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        )
        .as_bytes()
        .to_vec(),
        Dialect::OpenAi => concat!(
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        )
        .as_bytes()
        .to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// Resets

#[tokio::test]
async fn reset_before_the_headers_is_a_502_in_the_callers_dialect() {
    let mock = start_mock().await;
    for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
        let proxy = start(config(&mock.url, upstream)).await;
        for (client, _) in ROUTES.iter().filter(|(_, u)| *u == upstream) {
            for stream in [false, true] {
                let started = Instant::now();
                let resp = send(request(&proxy, *client, "k", "mock:reset", stream)).await;
                let (status, message) = error_of(*client, resp).await;
                assert_eq!(
                    status, 502,
                    "{client:?}->{upstream:?} stream={stream}: {message}"
                );
                assert!(message.contains("upstream"), "{message}");
                assert!(started.elapsed() < Duration::from_secs(5));
            }
        }
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn connection_cut_mid_stream_ends_with_an_in_band_error() {
    // The mock's `truncate`: one text delta, then the connection drops.
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        let resp = send(request(&proxy, client, "k", "mock:truncate", true)).await;
        let text = stream_text(resp).await;
        assert!(
            text.contains("Hello"),
            "the delta before the cut arrives: {text}"
        );
        let message = assert_in_band_error(client, &text);
        assert!(message.contains("upstream"), "{message}");
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn tcp_reset_mid_stream_ends_with_an_in_band_error() {
    for (client, upstream) in ROUTES {
        let (url, _) = raw_upstream(RawReply::SseThenReset(stream_start(upstream))).await;
        let proxy = start(config(&url, upstream)).await;
        let resp = send(request(&proxy, client, "k", "hi", true)).await;
        let text = stream_text(resp).await;
        assert!(text.contains("Hel"), "{client:?}->{upstream:?}: {text}");
        let message = assert_in_band_error(client, &text);
        assert!(message.contains("upstream"), "{message}");
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn truncated_non_streaming_body_is_a_502() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        let resp = send(request(&proxy, client, "k", "mock:truncate", false)).await;
        let (status, message) = error_of(client, resp).await;
        assert_eq!(status, 502, "{client:?}->{upstream:?}: {message}");
        proxy.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Silence and timeouts

#[tokio::test]
async fn headers_then_silence_ends_within_the_idle_timeout() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let mut cfg = config(&mock.url, upstream);
        cfg.http_timeout = Duration::from_millis(400);
        let proxy = start(cfg).await;

        let started = Instant::now();
        let resp = send(request(&proxy, client, "k", "mock:stall", true)).await;
        let text = stream_text(resp).await;
        let message = assert_in_band_error(client, &text);
        assert!(message.contains("sent nothing"), "{message}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );

        // Not streaming: the head arrives, the body never does.
        let started = Instant::now();
        let resp = send(request(&proxy, client, "k", "mock:stall", false)).await;
        let (status, message) = error_of(client, resp).await;
        assert_eq!(status, 504, "{client:?}->{upstream:?}: {message}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        proxy.shutdown().await;
        assert!(
            eventually(Duration::from_secs(5), || mock.state.open_streams() == 0).await,
            "the stalled upstream bodies were dropped"
        );
    }
}

#[tokio::test]
async fn upstream_that_accepts_and_never_answers_hits_the_header_timeout() {
    let (url, connections) = raw_upstream(RawReply::Silent).await;
    for (client, upstream) in ROUTES {
        let mut cfg = config(&url, upstream);
        cfg.http_timeout = Duration::from_millis(300);
        let proxy = start(cfg).await;
        for stream in [false, true] {
            let started = Instant::now();
            let resp = send(request(&proxy, client, "k", "hi", stream)).await;
            let (status, message) = error_of(client, resp).await;
            assert_eq!(status, 504, "{client:?}->{upstream:?}: {message}");
            assert!(message.contains("did not answer"), "{message}");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{:?}",
                started.elapsed()
            );
        }
        proxy.shutdown().await;
    }
    assert!(connections.load(Ordering::SeqCst) >= 8);
}

/// A listener whose accept queue is full and never drained: the kernel drops further SYNs,
/// so connecting hangs until the connect timeout. The listener and the connections filling
/// its queue are returned so they live as long as the test.
async fn black_hole() -> (String, TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(0).unwrap();
    // Backlog 0 still admits a connection or two; fill the queue with ones nobody accepts.
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    (format!("http://{addr}"), listener, fillers)
}

#[tokio::test]
async fn upstream_that_never_accepts_hits_the_connect_timeout() {
    let (url, _listener, fillers) = black_hole().await;
    assert!(!fillers.is_empty(), "the accept queue was filled");
    for (client, upstream) in ROUTES {
        let mut cfg = config(&url, upstream);
        cfg.http_timeout = Duration::from_millis(300);
        let proxy = start(cfg).await;
        let started = Instant::now();
        let resp = send(request(&proxy, client, "k", "hi", false)).await;
        let (status, message) = error_of(client, resp).await;
        assert!(
            status == 504 || status == 502,
            "{client:?}->{upstream:?}: {status} {message}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        proxy.shutdown().await;
    }
}

#[tokio::test]

async fn timeout_messages_name_sub_second_timeouts_correctly() {
    let (url, _) = raw_upstream(RawReply::Silent).await;
    let mut cfg = config(&url, Dialect::Anthropic);
    cfg.http_timeout = Duration::from_millis(300);
    let proxy = start(cfg).await;
    let resp = send(request(&proxy, Dialect::Anthropic, "k", "hi", false)).await;
    let (_, message) = error_of(Dialect::Anthropic, resp).await;
    assert!(!message.contains("within 0 s"), "{message}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn redirects_are_not_followed_and_the_error_says_where_they_point() {
    const LOCATION: &str = "https://api.elsewhere.example/v1/messages";
    for (client, upstream) in ROUTES {
        // A redirect with a JSON error body is no more an answer than one without.
        let (url, _) = raw_upstream(RawReply::RedirectJson(LOCATION)).await;
        let proxy = start(config(&url, upstream)).await;
        let resp = send(request(&proxy, client, "k", "hi", false)).await;
        let (status, message) = error_of(client, resp).await;
        assert_eq!(status, 502, "{client:?}->{upstream:?}: {message}");
        assert!(
            message.contains("301") && message.contains(LOCATION),
            "{message}"
        );
        proxy.shutdown().await;

        let (url, connections) = raw_upstream(RawReply::Redirect(LOCATION)).await;
        let proxy = start(config(&url, upstream)).await;
        for stream in [false, true] {
            let resp = send(request(&proxy, client, "k", "hi", stream)).await;
            let (status, message) = error_of(client, resp).await;
            assert_eq!(status, 502, "{client:?}->{upstream:?}: {message}");
            assert!(message.contains("307"), "{message}");
            assert!(message.contains(LOCATION), "{message}");
            assert!(message.contains("does not follow redirects"), "{message}");
        }
        assert_eq!(
            connections.load(Ordering::SeqCst),
            2,
            "one request each, never re-sent"
        );
        proxy.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Garbage with a 200

#[tokio::test]
async fn html_and_truncated_json_200s_are_502s_that_say_so() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        for stream in [false, true] {
            let resp = send(request(&proxy, client, "k", "mock:html", stream)).await;
            let (status, message) = error_of(client, resp).await;
            assert_eq!(status, 502, "{client:?}->{upstream:?}: {message}");
            assert!(message.contains("text/html"), "{message}");

            let resp = send(request(&proxy, client, "k", "mock:bad_json", stream)).await;
            let (status, message) = error_of(client, resp).await;
            assert_eq!(status, 502, "{client:?}->{upstream:?}: {message}");
            assert!(message.contains("JSON"), "{message}");
        }
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn in_band_upstream_error_reaches_the_client_in_its_dialect() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        let resp = send(request(&proxy, client, "k", "mock:midstream_error", true)).await;
        let text = stream_text(resp).await;
        assert_in_band_error(client, &text);
        proxy.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Streams that end wrong

#[tokio::test]
async fn translated_stream_ending_without_its_terminator_gets_an_error_and_an_ending() {
    for (client, upstream) in ROUTES.into_iter().filter(|(c, u)| c != u) {
        let (url, _) = raw_upstream(RawReply::SseThenClose(stream_start(upstream))).await;
        let proxy = start(config(&url, upstream)).await;
        let resp = send(request(&proxy, client, "k", "hi", true)).await;
        let text = stream_text(resp).await;
        assert!(text.contains("Hel"), "{text}");
        assert_in_band_error(client, &text);
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn passed_through_stream_ending_without_its_terminator_gets_an_error() {
    for dialect in [Dialect::Anthropic, Dialect::OpenAi] {
        let (url, _) = raw_upstream(RawReply::SseThenClose(stream_start(dialect))).await;
        let proxy = start(config(&url, dialect)).await;
        let resp = send(request(&proxy, dialect, "k", "hi", true)).await;
        let text = stream_text(resp).await;
        assert!(text.contains("Hel"), "{text}");
        assert_in_band_error(dialect, &text);
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn passed_through_complete_stream_is_relayed_byte_for_byte() {
    // The control for the test above: a complete stream gets nothing added.
    for dialect in [Dialect::Anthropic, Dialect::OpenAi] {
        let body = [stream_start(dialect), stream_end(dialect)].concat();
        let (url, _) = raw_upstream(RawReply::SseThenClose(body.clone())).await;
        let proxy = start(config(&url, dialect)).await;
        let resp = send(request(&proxy, dialect, "k", "hi", true)).await;
        let text = stream_text(resp).await;
        assert_eq!(text.as_bytes(), &body[..]);
        proxy.shutdown().await;
    }
}

#[tokio::test]

async fn tool_use_stop_without_a_carried_tool_call_is_not_tool_calls() {
    // A well-formed Anthropic stream (unknown block types are allowed) whose only call is of a
    // block type OpenAI cannot carry.
    let body = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"future_tool_use\",\"id\":\"x_1\",\"name\":\"f\",\"input\":{}}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    validate_anthropic_bytes(body.as_bytes()).expect("the upstream stream is well-formed");
    let (url, _) = raw_upstream(RawReply::SseThenClose(body.as_bytes().to_vec())).await;
    let proxy = start(config(&url, Dialect::Anthropic)).await;
    let resp = send(request(&proxy, Dialect::OpenAi, "k", "hi", true)).await;
    let text = stream_text(resp).await;
    validate_openai_bytes(text.as_bytes()).unwrap_or_else(|v| panic!("{v}: {text}"));
    proxy.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_in_upstream_events_never_reaches_a_translated_client_raw() {
    for (client, upstream) in ROUTES.into_iter().filter(|(c, u)| c != u) {
        let body = [
            stream_start(upstream),
            text_delta(upstream, b"caf\xc3 \xff\xfe \xe2\x82"),
            stream_end(upstream),
        ]
        .concat();
        let (url, _) = raw_upstream(RawReply::SseThenClose(body)).await;
        let proxy = start(config(&url, upstream)).await;
        let resp = send(request(&proxy, client, "k", "hi", true)).await;
        // stream_text insists on UTF-8.
        let text = stream_text(resp).await;
        assert!(text.contains('\u{fffd}'), "replacement characters: {text}");
        match client {
            Dialect::OpenAi => validate_openai_bytes(text.as_bytes()),
            Dialect::Anthropic => validate_anthropic_bytes(text.as_bytes()),
        }
        .unwrap_or_else(|v| panic!("{v}: {text}"));
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_passed_through_stream_is_relayed_unchanged() {
    for dialect in [Dialect::Anthropic, Dialect::OpenAi] {
        let body = [
            stream_start(dialect),
            text_delta(dialect, b"\xff\xfe"),
            stream_end(dialect),
        ]
        .concat();
        let (url, _) = raw_upstream(RawReply::SseThenClose(body.clone())).await;
        let proxy = start(config(&url, dialect)).await;
        let resp = send(request(&proxy, dialect, "k", "hi", true)).await;
        let bytes = tokio::time::timeout(CALL_LIMIT, resp.bytes())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&bytes[..], &body[..], "pass-through is byte for byte");
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn oversized_upstream_sse_line_ends_a_translated_stream_with_an_error() {
    // Larger than the decoder's 16 MiB line limit, so a2o must refuse to buffer it.
    let huge = vec![b'a'; 17 * 1024 * 1024];
    for (client, upstream) in ROUTES.into_iter().filter(|(c, u)| c != u) {
        let body = [
            stream_start(upstream),
            text_delta(upstream, &huge),
            stream_end(upstream),
        ]
        .concat();
        let (url, _) = raw_upstream(RawReply::SseThenClose(body)).await;
        let proxy = start(config(&url, upstream)).await;
        let resp = send(request(&proxy, client, "k", "hi", true)).await;
        let text = stream_text(resp).await;
        assert!(text.len() < 1024 * 1024, "the huge line is not relayed");
        let message = assert_in_band_error(client, &text);
        assert!(message.contains("longer than"), "{message}");
        proxy.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Every key refused

#[tokio::test]
async fn every_key_rate_limited_or_overloaded_gives_a_bounded_final_error() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        for (scenario, anthropic_status, openai_status) in [
            // The mock's 429/529 carry `retry-after: 0`; the 30 s one must be capped.
            ("mock:error:429", 429, 429),
            ("mock:error:529", 529, 503),
            ("mock:error:429:30", 429, 429),
        ] {
            mock.state.clear();
            let started = Instant::now();
            let resp = send(request(&proxy, client, "k1,k2,k3", scenario, false)).await;
            let elapsed = started.elapsed();
            let (status, message) = error_of(client, resp).await;
            // Pass-through keeps the upstream's own status; a translated 529 becomes
            // OpenAI's 503.
            let expected = match (client, upstream) {
                (Dialect::OpenAi, Dialect::Anthropic) => openai_status,
                _ => anthropic_status,
            };
            assert_eq!(
                status, expected,
                "{client:?}->{upstream:?} {scenario}: {message}"
            );
            assert_eq!(mock.state.requests().len(), 3, "one try per key, no more");
            // Two waits of at most max_retry_wait (200 ms) between three tries.
            assert!(elapsed < Duration::from_secs(3), "{scenario}: {elapsed:?}");
        }
        proxy.shutdown().await;
    }
}

#[tokio::test]

async fn every_key_refused_says_so_in_the_final_error() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        let resp = send(request(&proxy, client, "k1,k2,k3", "mock:error:429", false)).await;
        let (_, message) = error_of(client, resp).await;
        assert!(
            message.contains("3 keys"),
            "{client:?}->{upstream:?}: {message}"
        );
        assert!(
            !message.contains("k1") && !message.contains("k2"),
            "{message}"
        );
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn streaming_requests_with_every_key_refused_get_the_real_status() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        let resp = send(request(&proxy, client, "k1,k2", "mock:error:529", true)).await;
        let (status, _) = error_of(client, resp).await;
        let expected = match (client, upstream) {
            (Dialect::OpenAi, Dialect::Anthropic) => 503,
            _ => 529,
        };
        assert_eq!(
            status, expected,
            "before the first byte the real status is sent"
        );
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn every_key_resetting_is_bounded_too() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        mock.state.clear();
        let started = Instant::now();
        let resp = send(request(&proxy, client, "k1,k2,k3,k4", "mock:reset", false)).await;
        let (status, message) = error_of(client, resp).await;
        assert_eq!(status, 502, "{message}");
        assert!(message.contains("4 keys"), "{message}");
        assert_eq!(mock.state.requests().len(), 4);
        assert!(started.elapsed() < Duration::from_secs(3));
        proxy.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Clients that misbehave

#[tokio::test]
async fn client_leaving_mid_stream_drops_the_upstream_stream() {
    let mock = start_mock().await;
    for (client, upstream) in ROUTES {
        let proxy = start(config(&mock.url, upstream)).await;
        for scenario in ["mock:stall", "mock:slow:200"] {
            let mut resp = send(request(&proxy, client, "k", scenario, true)).await;
            assert_eq!(resp.status(), 200);
            let first = tokio::time::timeout(CALL_LIMIT, resp.chunk())
                .await
                .expect("the first event is relayed")
                .unwrap();
            assert!(first.is_some());
            assert_eq!(mock.state.open_streams(), 1, "{scenario}");
            drop(resp);
            assert!(
                eventually(Duration::from_secs(3), || mock.state.open_streams() == 0).await,
                "{client:?}->{upstream:?} {scenario}: the upstream stream is still open"
            );
        }
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn many_clients_leaving_at_once_leave_no_upstream_stream_open() {
    let mock = start_mock().await;
    let proxy = start(config(&mock.url, Dialect::Anthropic)).await;
    let mut open = Vec::new();
    for i in 0..50 {
        let client = if i % 2 == 0 {
            Dialect::OpenAi
        } else {
            Dialect::Anthropic
        };
        let mut resp = send(request(&proxy, client, "k", "mock:stall", true)).await;
        let _ = tokio::time::timeout(CALL_LIMIT, resp.chunk())
            .await
            .unwrap();
        open.push(resp);
    }
    assert_eq!(mock.state.open_streams(), 50);
    drop(open);
    assert!(
        eventually(Duration::from_secs(5), || mock.state.open_streams() == 0).await,
        "{} upstream streams still open",
        mock.state.open_streams()
    );
    proxy.shutdown().await;
}

/// Opens a raw connection to `front` and sends `head` (and nothing more).
async fn raw_client(front: &str, head: &[u8]) -> TcpStream {
    let addr = front.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(head).await.unwrap();
    socket
}

/// Reads until the peer closes or `limit` passes; returns what arrived and whether it closed.
async fn read_until_close(socket: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&seen).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&seen).into_owned(), true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_loris_body_gets_a_408_in_the_callers_dialect() {
    let mock = start_mock().await;
    let mut cfg = config(&mock.url, Dialect::Anthropic);
    cfg.http_timeout = Duration::from_millis(500);
    let proxy = start(cfg).await;
    for (front, path, client, auth) in [
        (
            &proxy.openai,
            "/v1/chat/completions",
            Dialect::OpenAi,
            "authorization: Bearer k",
        ),
        (
            &proxy.anthropic,
            "/v1/messages",
            Dialect::Anthropic,
            "x-api-key: k",
        ),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: a2o\r\ncontent-type: application/json\r\n{auth}\r\ncontent-length: 1000\r\n\r\n{{\"model\""
        );
        let started = Instant::now();
        let mut socket = raw_client(front, head.as_bytes()).await;
        // Trickle a byte now and then, never finishing the body.
        let trickle = async {
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if socket.write_all(b" ").await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(700), trickle).await;
        let (answer, _) = read_until_close(&mut socket, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
        let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
        assert_error_shape(client, &body);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(
        mock.state.requests().is_empty(),
        "nothing reached the upstream"
    );
    proxy.shutdown().await;
}

#[tokio::test]

async fn slow_loris_headers_are_cut_off() {
    let mock = start_mock().await;
    let mut cfg = config(&mock.url, Dialect::Anthropic);
    cfg.http_timeout = Duration::from_millis(500);
    let proxy = start(cfg).await;
    let mut socket = raw_client(
        &proxy.anthropic,
        b"POST /v1/messages HTTP/1.1\r\nhost: a2o\r\n",
    )
    .await;
    let trickle = async {
        for i in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if socket
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
        }
        false
    };
    // Either the writes start failing or the read side sees the close.
    let cut = tokio::time::timeout(Duration::from_secs(4), trickle)
        .await
        .unwrap_or(false);
    let closed = cut
        || read_until_close(&mut socket, Duration::from_secs(1))
            .await
            .1;
    assert!(
        closed,
        "a2o still holds a connection whose headers never end"
    );
    proxy.shutdown().await;
}

#[tokio::test]

async fn idle_connections_that_send_nothing_are_closed() {
    let mock = start_mock().await;
    let mut cfg = config(&mock.url, Dialect::Anthropic);
    cfg.http_timeout = Duration::from_millis(500);
    let proxy = start(cfg).await;
    let mut socket = raw_client(&proxy.openai, b"").await;
    let (_, closed) = read_until_close(&mut socket, Duration::from_secs(4)).await;
    assert!(
        closed,
        "a2o still holds a connection that never sent a byte"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_failed_stream_is_logged_with_its_error() {
    let mock = start_mock().await;
    let proxy = start(config(&mock.url, Dialect::OpenAi)).await;
    let resp = send(request(
        &proxy,
        Dialect::Anthropic,
        "k",
        "mock:truncate",
        true,
    ))
    .await;
    let _ = stream_text(resp).await;
    assert!(
        eventually(Duration::from_secs(3), || proxy.logs().contains("error=")).await,
        "{}",
        proxy.logs()
    );
    proxy.shutdown().await;
}
