//! Guards against latency regressions that no functional test notices: a proxy that holds the
//! first streamed token back (Nagle, a buffering body, a converter that waits for more input)
//! and a FORCE_NON_STREAM path that waits for the upstream connection to close.
//!
//! Nothing here depends on machine speed. Each upstream is a raw TCP listener that sends its
//! first token and then waits on a gate that only the test opens, after the client has seen
//! that token; so the client sees it while the upstream is still waiting, or never. The 20 s
//! ceiling is only there to turn a hold-back into a failure instead of a hang, and a2o's own
//! idle timeout is set well above it so that a timeout cannot release a held-back event.

use std::sync::Arc;
use std::time::Duration;

use a2o::protocol::Dialect;
use a2o::server::log::{LogFormat, Logger};
use a2o::server::{self, ServeConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Only a held-back event or a hung response can take this long.
const CEILING: Duration = Duration::from_secs(20);
/// a2o's idle timeout: above the ceiling, so it cannot end a held-back stream in time.
const PROXY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The token the upstream sends first; the client must see it (translated or not).
const TOKEN: &str = "Hi";

const ANTHROPIC_FIRST: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
const ANTHROPIC_REST: &str = "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
const OPENAI_FIRST: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n";
const OPENAI_REST: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-x\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\ndata: [DONE]\n\n";

fn anthropic_message() -> String {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": TOKEN}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 3, "output_tokens": 1}
    })
    .to_string()
}

fn openai_completion() -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": TOKEN}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    })
    .to_string()
}

/// What the gated upstream does with its one request.
enum Answer {
    /// SSE: `first` at once, then `rest` and the end of the body only when the gate opens.
    Stream {
        first: &'static str,
        rest: &'static str,
    },
    /// A complete JSON response with Content-Length; the connection then stays open (idle
    /// keep-alive) until the gate opens, as a pooled upstream connection would.
    Whole(String),
}

/// A one-request upstream. `gate` releases it; `request` yields the request body it got.
struct GatedUpstream {
    url: String,
    gate: Option<oneshot::Sender<()>>,
    request: oneshot::Receiver<Value>,
}

impl GatedUpstream {
    async fn start(answer: Answer) -> GatedUpstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let url = format!("http://{}", listener.local_addr().expect("upstream addr"));
        let (gate_tx, gate_rx) = oneshot::channel::<()>();
        let (request_tx, request_rx) = oneshot::channel::<Value>();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            socket.set_nodelay(true).expect("nodelay");
            let body = read_request(&mut socket).await;
            let _ = request_tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
            match answer {
                Answer::Stream { first, rest } => {
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                    let chunk = |data: &str| format!("{:x}\r\n{data}\r\n", data.len());
                    write(&mut socket, &format!("{head}{}", chunk(first))).await;
                    let _ = gate_rx.await;
                    write(&mut socket, &format!("{}0\r\n\r\n", chunk(rest))).await;
                }
                Answer::Whole(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    write(&mut socket, &format!("{head}{body}")).await;
                    let _ = gate_rx.await;
                }
            }
        });
        GatedUpstream {
            url,
            gate: Some(gate_tx),
            request: request_rx,
        }
    }

    /// Lets the upstream finish; true if it was still waiting, i.e. nothing released it early.
    fn release(&mut self) -> bool {
        self.gate.take().is_some_and(|gate| gate.send(()).is_ok())
    }
}

async fn write(socket: &mut TcpStream, text: &str) {
    // The proxy may have gone already when a test fails; the assertion says why.
    let _ = socket.write_all(text.as_bytes()).await;
}

/// Reads one HTTP/1.1 request (headers, then Content-Length bytes) and returns its body.
async fn read_request(socket: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return Vec::new();
        }
        seen.extend_from_slice(&buf[..n]);
        let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if seen.len() >= end + 4 + length {
            return seen[end + 4..end + 4 + length].to_vec();
        }
    }
}

struct Proxy {
    anthropic: String,
    openai: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Proxy {
    async fn start(upstream: &str, protocol: Dialect, force_non_stream: bool) -> Proxy {
        let config = ServeConfig {
            host: "127.0.0.1".into(),
            anthropic_port: 0,
            openai_port: 0,
            upstream: upstream.to_owned(),
            upstream_protocol: protocol,
            http_timeout: PROXY_IDLE_TIMEOUT,
            force_non_stream,
            shutdown_grace: Duration::from_secs(1),
            ..ServeConfig::default()
        };
        let logger = Logger {
            format: LogFormat::Text,
            sink: Arc::new(|_line: &str| {}),
        };
        let bound = server::bind(config, logger).await.expect("bind a2o");
        let anthropic = format!("http://{}", bound.anthropic_addr);
        let openai = format!("http://{}", bound.openai_addr);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.run(async move {
            let _ = stopped.await;
        }));
        Proxy {
            anthropic,
            openai,
            stop: Some(stop),
            task,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(CEILING, self.task).await;
    }
}

/// A streaming request from a client of `client` dialect, to its own front.
fn client_request(proxy: &Proxy, client: Dialect) -> reqwest::RequestBuilder {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    match client {
        Dialect::OpenAi => http
            .post(format!("{}/v1/chat/completions", proxy.openai))
            .bearer_auth("k")
            .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Hello"}]})),
        Dialect::Anthropic => http
            .post(format!("{}/v1/messages", proxy.anthropic))
            .header("x-api-key", "k")
            .json(&json!({"model": "m", "max_tokens": 16, "stream": true, "messages": [{"role": "user", "content": "Hello"}]})),
    }
}

/// The first upstream token must reach the client while the upstream still holds the rest.
async fn first_token_is_not_held_back(client: Dialect, upstream: Dialect) {
    let (first, rest) = match upstream {
        Dialect::Anthropic => (ANTHROPIC_FIRST, ANTHROPIC_REST),
        Dialect::OpenAi => (OPENAI_FIRST, OPENAI_REST),
    };
    let mut gated = GatedUpstream::start(Answer::Stream { first, rest }).await;
    let proxy = Proxy::start(&gated.url, upstream, false).await;
    let route = format!("{} client -> {} upstream", client.name(), upstream.name());

    let mut response = client_request(&proxy, client)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{route}: request failed: {e}"));
    assert_eq!(response.status(), 200, "{route}");
    let mut received = Vec::new();
    let saw_token = tokio::time::timeout(CEILING, async {
        while !String::from_utf8_lossy(&received).contains(TOKEN) {
            match response.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) | Err(_) => return false,
            }
        }
        true
    })
    .await;
    let received_text = String::from_utf8_lossy(&received).into_owned();
    assert_eq!(
        saw_token,
        Ok(true),
        "{route}: the first token was held back (got so far: {received_text:?})"
    );
    // Nothing but the test can open the gate: the token arrived while the upstream waited.
    assert!(gated.release(), "{route}: the upstream was released early");

    let rest = tokio::time::timeout(CEILING, response.bytes())
        .await
        .unwrap_or_else(|_| panic!("{route}: the stream did not end after the upstream did"))
        .unwrap_or_else(|e| panic!("{route}: the stream broke: {e}"));
    received.extend_from_slice(&rest);
    let validated = match client {
        Dialect::Anthropic => a2o::stream::validate::validate_anthropic_bytes(&received),
        Dialect::OpenAi => a2o::stream::validate::validate_openai_bytes(&received),
    };
    if let Err(violation) = validated {
        panic!(
            "{route}: invalid stream: {violation}\n{}",
            String::from_utf8_lossy(&received)
        );
    }
    let sent = gated.request.await.expect("the upstream got a request");
    assert_eq!(
        sent["stream"],
        json!(true),
        "{route}: upstream not streamed"
    );
    proxy.shutdown().await;
}

/// FORCE_NON_STREAM: the whole synthesised stream arrives and ends as soon as the upstream's
/// complete JSON has, although the upstream keeps its connection open.
async fn forced_non_stream_ends_with_the_upstream_body(client: Dialect, upstream: Dialect) {
    let whole = match upstream {
        Dialect::Anthropic => anthropic_message(),
        Dialect::OpenAi => openai_completion(),
    };
    let mut gated = GatedUpstream::start(Answer::Whole(whole)).await;
    let proxy = Proxy::start(&gated.url, upstream, true).await;
    let route = format!(
        "FORCE_NON_STREAM, {} client -> {} upstream",
        client.name(),
        upstream.name()
    );

    let body = tokio::time::timeout(CEILING, async {
        let response = client_request(&proxy, client).send().await?;
        let status = response.status();
        response.bytes().await.map(|bytes| (status, bytes))
    })
    .await
    .unwrap_or_else(|_| {
        panic!("{route}: the synthesised stream did not end while the upstream connection idled")
    });
    let (status, body) = body.unwrap_or_else(|e| panic!("{route}: request failed: {e}"));
    assert!(gated.release(), "{route}: the upstream was released early");
    assert_eq!(status, 200, "{route}: {}", String::from_utf8_lossy(&body));
    let validated = match client {
        Dialect::Anthropic => a2o::stream::validate::validate_anthropic_bytes(&body),
        Dialect::OpenAi => a2o::stream::validate::validate_openai_bytes(&body),
    };
    if let Err(violation) = validated {
        panic!(
            "{route}: invalid stream: {violation}\n{}",
            String::from_utf8_lossy(&body)
        );
    }
    assert!(
        String::from_utf8_lossy(&body).contains(TOKEN),
        "{route}: the answer is missing"
    );
    let sent = gated.request.await.expect("the upstream got a request");
    assert_ne!(
        sent.get("stream"),
        Some(&json!(true)),
        "{route}: FORCE_NON_STREAM must not stream upstream"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn translated_first_token_openai_client_anthropic_upstream() {
    first_token_is_not_held_back(Dialect::OpenAi, Dialect::Anthropic).await;
}

#[tokio::test]
async fn translated_first_token_anthropic_client_openai_upstream() {
    first_token_is_not_held_back(Dialect::Anthropic, Dialect::OpenAi).await;
}

#[tokio::test]
async fn passthrough_first_token_anthropic() {
    first_token_is_not_held_back(Dialect::Anthropic, Dialect::Anthropic).await;
}

#[tokio::test]
async fn passthrough_first_token_openai() {
    first_token_is_not_held_back(Dialect::OpenAi, Dialect::OpenAi).await;
}

#[tokio::test]
async fn force_non_stream_translated_openai_client_anthropic_upstream() {
    forced_non_stream_ends_with_the_upstream_body(Dialect::OpenAi, Dialect::Anthropic).await;
}

#[tokio::test]
async fn force_non_stream_translated_anthropic_client_openai_upstream() {
    forced_non_stream_ends_with_the_upstream_body(Dialect::Anthropic, Dialect::OpenAi).await;
}

#[tokio::test]
async fn force_non_stream_passthrough_anthropic() {
    forced_non_stream_ends_with_the_upstream_body(Dialect::Anthropic, Dialect::Anthropic).await;
}

#[tokio::test]
async fn force_non_stream_passthrough_openai() {
    forced_non_stream_ends_with_the_upstream_body(Dialect::OpenAi, Dialect::OpenAi).await;
}
