//! Hostile and malformed client input through `a2o serve`, on both fronts and both dialect
//! paths, pass-through and translated: oversized bodies, deep nesting, huge strings, every
//! field of a valid request replaced by every wrong JSON type, invalid UTF-8, duplicate keys,
//! numbers out of range, empty and odd conversations, and hostile key headers (sent over raw
//! TCP where HTTP clients refuse to). a2o must answer each with a 4xx in the caller's dialect
//! (or pass it to the upstream to judge, in pass-through), never a 5xx, a panic or a hang.

use std::time::{Duration, Instant};

use a2o::protocol::Dialect;
use a2o::server::ServeConfig;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::{start, start_mock, Mock, Proxy};

const CALL_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Harness

fn config(upstream: &str, protocol: Dialect) -> ServeConfig {
    ServeConfig {
        host: "127.0.0.1".into(),
        anthropic_port: 0,
        openai_port: 0,
        upstream: upstream.into(),
        upstream_protocol: protocol,
        http_timeout: Duration::from_secs(10),
        max_retry_wait: Duration::from_millis(50),
        shutdown_grace: Duration::from_secs(2),
        ..ServeConfig::default()
    }
}

/// Both upstream dialects behind one mock: `proxies[0]` talks Anthropic upstream,
/// `proxies[1]` OpenAI.
struct Bench {
    mock: Mock,
    anthropic_upstream: Proxy,
    openai_upstream: Proxy,
    client: reqwest::Client,
}

impl Bench {
    async fn new(tune: impl Fn(&mut ServeConfig)) -> Bench {
        let mock = start_mock().await;
        let mut a = config(&mock.url, Dialect::Anthropic);
        tune(&mut a);
        let mut o = config(&mock.url, Dialect::OpenAi);
        tune(&mut o);
        Bench {
            anthropic_upstream: start(a).await,
            openai_upstream: start(o).await,
            mock,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    fn proxy(&self, upstream: Dialect) -> &Proxy {
        match upstream {
            Dialect::Anthropic => &self.anthropic_upstream,
            Dialect::OpenAi => &self.openai_upstream,
        }
    }

    /// Every (front, client dialect, upstream dialect) combination.
    fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
            for front in [Dialect::Anthropic, Dialect::OpenAi] {
                for client in [Dialect::Anthropic, Dialect::OpenAi] {
                    targets.push(Target {
                        base: self.proxy(upstream).front(front).to_owned(),
                        front,
                        client,
                        upstream,
                    });
                }
            }
        }
        targets
    }

    async fn shutdown(self) {
        self.anthropic_upstream.shutdown().await;
        self.openai_upstream.shutdown().await;
    }
}

#[derive(Clone, Debug)]
struct Target {
    base: String,
    front: Dialect,
    client: Dialect,
    upstream: Dialect,
}

impl Target {
    fn url(&self) -> String {
        match self.client {
            Dialect::OpenAi => format!("{}/v1/chat/completions", self.base),
            Dialect::Anthropic => format!("{}/v1/messages", self.base),
        }
    }

    fn passthrough(&self) -> bool {
        self.client == self.upstream
    }

    fn post(
        &self,
        http: &reqwest::Client,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::RequestBuilder {
        http.post(self.url())
            .header("content-type", "application/json")
            .header("x-api-key", "sk-hostile")
            .header("authorization", "Bearer sk-hostile")
            .body(body)
    }
}

/// What came back for one request.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

async fn answer(req: reqwest::RequestBuilder) -> Result<Answer, String> {
    let resp = tokio::time::timeout(CALL_LIMIT, req.send())
        .await
        .map_err(|_| "no answer within the call limit (hang?)".to_owned())?
        .map_err(|e| format!("connection failed (panic?): {e}"))?;
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(CALL_LIMIT, resp.bytes())
        .await
        .map_err(|_| "body never ended".to_owned())?
        .map_err(|e| format!("body failed: {e}"))?;
    Ok(Answer {
        status,
        body: body.to_vec(),
    })
}

/// Why an answer breaks the rules (no 5xx; errors in the caller's dialect), if it does.
fn judge(client: Dialect, answer: &Answer) -> Option<String> {
    let text = String::from_utf8_lossy(&answer.body);
    if answer.status >= 500 {
        return Some(format!("{} {}", answer.status, text));
    }
    if answer.status >= 400 {
        let body: Value = match serde_json::from_slice(&answer.body) {
            Ok(body) => body,
            Err(_) => return Some(format!("{} with a non-JSON body: {text}", answer.status)),
        };
        let shaped = match client {
            Dialect::OpenAi => {
                body["error"]["message"].is_string()
                    && body["error"].get("type").is_some()
                    && body["error"].get("code").is_some()
            }
            Dialect::Anthropic => {
                body["type"] == "error"
                    && body["error"]["type"].is_string()
                    && body["error"]["message"].is_string()
            }
        };
        if !shaped {
            return Some(format!(
                "{} not in the {client:?} error shape: {text}",
                answer.status
            ));
        }
    }
    None
}

fn error_message(answer: &Answer) -> String {
    serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|b| b["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Sends every body to every target that `filter` keeps; returns the answers that broke the
/// rules, and prints how many answers of each status class there were.
async fn sweep(
    bench: &Bench,
    bodies: &[(String, Vec<u8>)],
    filter: impl Fn(&Target) -> bool,
) -> Vec<String> {
    let mut jobs = Vec::new();
    for target in bench.targets().into_iter().filter(|t| filter(t)) {
        for (label, body) in bodies {
            jobs.push((target.clone(), label.clone(), body.clone()));
        }
    }
    let tried = jobs.len();
    let http = &bench.client;
    let verdicts: Vec<(u16, Option<String>)> = futures_util::stream::iter(jobs)
        .map(|(target, label, body)| async move {
            let (status, verdict) = match answer(target.post(http, body)).await {
                Ok(answer) => (answer.status, judge(target.client, &answer)),
                Err(failure) => (0, Some(failure)),
            };
            let verdict = verdict.map(|v| {
                format!(
                    "{label} via {:?} front, {:?}->{:?}: {v}",
                    target.front, target.client, target.upstream
                )
            });
            (status, verdict)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let count = |range: std::ops::Range<u16>| {
        verdicts
            .iter()
            .filter(|(status, _)| range.contains(status))
            .count()
    };
    eprintln!(
        "sweep: {tried} requests: {} 2xx, {} 4xx, {} 5xx, {} no answer",
        count(200..300),
        count(400..500),
        count(500..600),
        count(0..1)
    );
    verdicts.into_iter().filter_map(|(_, v)| v).collect()
}

fn report(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Valid requests to mutate

fn valid_openai() -> Value {
    json!({
        "model": "m",
        "max_tokens": 50,
        "temperature": 0.5,
        "top_p": 0.9,
        "stream": false,
        "stop": ["END"],
        "user": "u1",
        "metadata": {"k": "v"},
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": "thanks"}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": true,
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "stream_options": {"include_usage": true}
    })
}

fn valid_anthropic() -> Value {
    json!({
        "model": "m",
        "max_tokens": 2048,
        "system": [{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        "temperature": 1,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "get_weather", "description": "d",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "auto"},
        "stream": false,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny", "is_error": false}
            ]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "thanks"}
        ]
    })
}

/// Every path (as JSON pointer segments) in `value`, the root included.
fn paths(value: &Value) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                for mut tail in paths(child) {
                    tail.insert(0, key.clone());
                    out.push(tail);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                for mut tail in paths(child) {
                    tail.insert(0, i.to_string());
                    out.push(tail);
                }
            }
        }
        _ => {}
    }
    out
}

/// `value` with the node at `path` replaced by `with`, or removed when `with` is `None`.
fn mutate(value: &Value, path: &[String], with: Option<&Value>) -> Value {
    let mut doc = value.clone();
    let Some((last, parents)) = path.split_last() else {
        return with.cloned().unwrap_or(Value::Null);
    };
    let mut node = &mut doc;
    for segment in parents {
        node = match node {
            Value::Object(map) => map.get_mut(segment).unwrap(),
            Value::Array(items) => &mut items[segment.parse::<usize>().unwrap()],
            _ => unreachable!(),
        };
    }
    match (node, with) {
        (Value::Object(map), Some(with)) => {
            map.insert(last.clone(), with.clone());
        }
        (Value::Object(map), None) => {
            map.shift_remove(last);
        }
        (Value::Array(items), Some(with)) => items[last.parse::<usize>().unwrap()] = with.clone(),
        (Value::Array(items), None) => {
            items.remove(last.parse::<usize>().unwrap());
        }
        _ => unreachable!(),
    }
    doc
}

fn wrong_values() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("null", Some(Value::Null)),
        ("number", Some(json!(42))),
        ("negative", Some(json!(-1))),
        ("float", Some(json!(0.5))),
        ("string", Some(json!("x"))),
        ("bool", Some(json!(true))),
        ("array", Some(json!([]))),
        ("array of junk", Some(json!([1, "a", null]))),
        ("object", Some(json!({}))),
        ("object of junk", Some(json!({"type": 1, "a": []}))),
        ("removed", None),
    ]
}

fn every_mutation(valid: &Value) -> Vec<(String, Vec<u8>)> {
    let mut bodies = Vec::new();
    for path in paths(valid) {
        for (kind, with) in wrong_values() {
            if path.is_empty() && with.is_none() {
                continue;
            }
            let doc = mutate(valid, &path, with.as_ref());
            bodies.push((
                format!("/{} := {kind}", path.join("/")),
                serde_json::to_vec(&doc).unwrap(),
            ));
        }
    }
    bodies
}

// ---------------------------------------------------------------------------------------------
// Wrong types everywhere

#[tokio::test]
async fn the_valid_requests_are_accepted_on_every_route() {
    let bench = Bench::new(|_| {}).await;
    let bodies = [
        (
            "openai".to_owned(),
            serde_json::to_vec(&valid_openai()).unwrap(),
        ),
        (
            "anthropic".to_owned(),
            serde_json::to_vec(&valid_anthropic()).unwrap(),
        ),
    ];
    for target in bench.targets() {
        let body = match target.client {
            Dialect::OpenAi => &bodies[0].1,
            Dialect::Anthropic => &bodies[1].1,
        };
        let answer = answer(target.post(&bench.client, body.clone()))
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            200,
            "{target:?}: {}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn every_field_of_an_openai_request_with_every_wrong_type() {
    let bench = Bench::new(|_| {}).await;
    let bodies = every_mutation(&valid_openai());
    let failures = sweep(&bench, &bodies, |t| t.client == Dialect::OpenAi).await;
    eprintln!(
        "openai mutations tried: {} bodies x 4 targets",
        bodies.len()
    );
    report(&failures);
    bench.shutdown().await;
}

#[tokio::test]
async fn every_field_of_an_anthropic_request_with_every_wrong_type() {
    let bench = Bench::new(|_| {}).await;
    let bodies = every_mutation(&valid_anthropic());
    let failures = sweep(&bench, &bodies, |t| t.client == Dialect::Anthropic).await;
    eprintln!(
        "anthropic mutations tried: {} bodies x 4 targets",
        bodies.len()
    );
    report(&failures);
    bench.shutdown().await;
}

#[tokio::test]
async fn streaming_variants_with_every_wrong_type_on_the_messages() {
    // The same sweep over `messages` with `stream: true`, where the answer is a stream.
    let bench = Bench::new(|_| {}).await;
    for (valid, client) in [
        (valid_openai(), Dialect::OpenAi),
        (valid_anthropic(), Dialect::Anthropic),
    ] {
        let streaming = mutate(&valid, &["stream".to_owned()], Some(&json!(true)));
        let bodies: Vec<_> = every_mutation(&streaming)
            .into_iter()
            .filter(|(label, _)| label.starts_with("/messages"))
            .collect();
        let failures = sweep(&bench, &bodies, |t| t.client == client).await;
        report(&failures);
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn wrong_types_are_refused_with_a_400_that_names_the_field_when_translated() {
    let bench = Bench::new(|_| {}).await;
    let cases = [
        (Dialect::OpenAi, "/messages", json!("hello")),
        (Dialect::OpenAi, "/model", json!(7)),
        (Dialect::OpenAi, "/max_tokens", json!("many")),
        (Dialect::OpenAi, "/messages/1/content", json!(5)),
        (Dialect::OpenAi, "/tools/0/function/name", json!([])),
        (Dialect::Anthropic, "/messages", json!({})),
        (Dialect::Anthropic, "/max_tokens", json!(-1)),
        (
            Dialect::Anthropic,
            "/messages/0/content/0/text",
            json!(null),
        ),
        (Dialect::Anthropic, "/tools/0/name", json!(1)),
        (Dialect::Anthropic, "/thinking/budget_tokens", json!("lots")),
    ];
    for (client, pointer, with) in cases {
        let valid = match client {
            Dialect::OpenAi => valid_openai(),
            Dialect::Anthropic => valid_anthropic(),
        };
        let path: Vec<String> = pointer.split('/').skip(1).map(str::to_owned).collect();
        let body = serde_json::to_vec(&mutate(&valid, &path, Some(&with))).unwrap();
        let field = path
            .iter()
            .rev()
            .find(|s| s.parse::<usize>().is_err())
            .unwrap()
            .clone();
        for target in bench
            .targets()
            .into_iter()
            .filter(|t| t.client == client && !t.passthrough())
        {
            let answer = answer(target.post(&bench.client, body.clone()))
                .await
                .unwrap();
            assert_eq!(answer.status, 400, "{pointer} := {with}: {target:?}");
            assert_eq!(judge(client, &answer), None);
            let message = error_message(&answer);
            assert!(message.contains(&field), "{pointer}: {message}");
        }
    }
    assert!(
        bench.mock.state.requests().is_empty(),
        "refused requests never reach the upstream"
    );
    bench.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Size, depth, encoding

#[tokio::test]
async fn bodies_over_the_limit_are_413_with_or_without_a_length() {
    let bench = Bench::new(|c| c.body_limit = 64 * 1024).await;
    let big = format!(
        "{{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "a".repeat(100 * 1024)
    );
    for target in bench.targets() {
        // With Content-Length: refused before reading.
        let answer_sized = answer(target.post(&bench.client, big.clone()))
            .await
            .unwrap();
        assert_eq!(answer_sized.status, 413, "{target:?}");
        assert_eq!(judge(target.client, &answer_sized), None);
        // Chunked, no length: refused once the limit is crossed.
        let chunks = futures_util::stream::iter(
            big.clone()
                .into_bytes()
                .chunks(8192)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        );
        let answer_chunked = answer(target.post(&bench.client, reqwest::Body::wrap_stream(chunks)))
            .await
            .unwrap();
        assert_eq!(answer_chunked.status, 413, "{target:?}");
        assert_eq!(judge(target.client, &answer_chunked), None);
        assert!(error_message(&answer_chunked).contains("limit"));
    }
    // count_tokens reads bodies the same way.
    let resp = answer(
        bench
            .client
            .post(format!(
                "{}/v1/messages/count_tokens",
                bench.anthropic_upstream.anthropic
            ))
            .header("x-api-key", "k")
            .header("content-type", "application/json")
            .body(big.clone()),
    )
    .await
    .unwrap();
    assert_eq!(resp.status, 413);
    assert!(bench.mock.state.requests().is_empty());
    bench.shutdown().await;
}

#[tokio::test]
async fn a_lying_content_length_is_not_trusted() {
    // Declares 10 bytes, sends more: hyper reads 10, the rest is the next "request".
    let bench = Bench::new(|c| c.body_limit = 1024).await;
    let front = bench
        .anthropic_upstream
        .anthropic
        .trim_start_matches("http://")
        .to_owned();
    let mut socket = TcpStream::connect(&front).await.unwrap();
    socket
        .write_all(b"POST /v1/messages HTTP/1.1\r\nhost: a\r\nx-api-key: k\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{\"model\":\"m\",\"messages\":[]}")
        .await
        .unwrap();
    let text = read_some(&mut socket, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    assert!(bench.mock.state.requests().is_empty());
    bench.shutdown().await;
}

#[tokio::test]
async fn deeply_nested_json_is_a_400_not_a_stack_overflow() {
    let bench = Bench::new(|_| {}).await;
    let depth = 100_000;
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let unclosed = "[".repeat(depth);
    let mut bodies = vec![
        ("100k [ as the body".to_owned(), arrays.clone().into_bytes()),
        ("100k unclosed [".to_owned(), unclosed.into_bytes()),
        (
            "100k objects as the body".to_owned(),
            objects.clone().into_bytes(),
        ),
    ];
    for field in [
        "metadata",
        "future_field",
        "messages",
        "model",
        "tools",
        "stream",
    ] {
        bodies.push((
            format!("100k [ in {field}"),
            format!("{{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":\"x\"}}],\"{field}\":{arrays}}}").into_bytes(),
        ));
    }
    bodies.push((
        "100k objects in a tool input".to_owned(),
        format!("{{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{{\"role\":\"assistant\",\"content\":[{{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{objects}}}]}}]}}").into_bytes(),
    ));
    let failures = sweep(&bench, &bodies, |_| true).await;
    report(&failures);
    // And every one of them is a 400 (nothing to forward: it is not JSON a parser accepts).
    for target in bench.targets() {
        let answer = answer(target.post(&bench.client, arrays.clone()))
            .await
            .unwrap();
        assert_eq!(answer.status, 400, "{target:?}");
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn nesting_just_under_the_parser_limit_does_not_overflow_any_stack() {
    // serde_json stops at 128 levels; 120 is legal JSON, so every converter and serialiser
    // walks it. Debug builds have large frames: this is where a recursion would blow up.
    let bench = Bench::new(|_| {}).await;
    let depth = 120;
    let deep_object = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let deep_array = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let openai = format!(
        r#"{{"model":"m","max_tokens":5,"metadata":{deep_object},"x_future":{deep_array},
        "messages":[{{"role":"user","content":"hi"}},{{"role":"assistant","tool_calls":[{{"id":"c","type":"function","function":{{"name":"f","arguments":"{{}}"}}}}]}},{{"role":"tool","tool_call_id":"c","content":"r"}}],
        "tools":[{{"type":"function","function":{{"name":"f","parameters":{deep_object}}}}}],
        "response_format":{{"type":"json_schema","json_schema":{{"name":"s","schema":{deep_object}}}}}}}"#
    );
    let anthropic = format!(
        r#"{{"model":"m","max_tokens":5,"metadata":{deep_object},"x_future":{deep_array},
        "messages":[{{"role":"user","content":"hi"}},{{"role":"assistant","content":[{{"type":"tool_use","id":"t","name":"f","input":{deep_object}}}]}},
        {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t","content":"r"}}]}}],
        "tools":[{{"name":"f","input_schema":{deep_object}}}]}}"#
    );
    for (client, body) in [(Dialect::OpenAi, openai), (Dialect::Anthropic, anthropic)] {
        let bodies = [(format!("{client:?} 120 deep"), body.into_bytes())];
        let failures = sweep(&bench, &bodies, |t| t.client == client).await;
        report(&failures);
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn huge_strings_within_the_limit_are_carried() {
    let bench = Bench::new(|_| {}).await;
    let huge = "é".repeat(4 * 1024 * 1024); // 8 MiB of two-byte characters
    for target in bench.targets() {
        let body = match target.client {
            Dialect::OpenAi => {
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": huge}]})
            }
            Dialect::Anthropic => {
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": huge}]})
            }
        };
        let started = Instant::now();
        let answer = answer(target.post(&bench.client, serde_json::to_vec(&body).unwrap()))
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{target:?}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    // Huge strings where short ones are expected: the model name, a tool name, a stop sequence.
    let long = "m".repeat(1024 * 1024);
    let bodies = vec![
        (
            "1 MiB model name".to_owned(),
            serde_json::to_vec(&json!({"model": long, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})).unwrap(),
        ),
        (
            "1 MiB tool name (openai)".to_owned(),
            serde_json::to_vec(&json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": long, "parameters": {"type": "object"}}}]})).unwrap(),
        ),
        (
            "1 MiB tool name (anthropic)".to_owned(),
            serde_json::to_vec(&json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                "tools": [{"name": long, "input_schema": {"type": "object"}}]})).unwrap(),
        ),
        (
            "100k stop sequences".to_owned(),
            serde_json::to_vec(&json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                "stop": vec!["s"; 100_000], "stop_sequences": vec!["s"; 100_000]})).unwrap(),
        ),
        (
            "100k messages".to_owned(),
            serde_json::to_vec(&json!({"model": "m", "max_tokens": 5,
                "messages": (0..100_000).map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "x"})).collect::<Vec<_>>()})).unwrap(),
        ),
    ];
    let failures = sweep(&bench, &bodies, |_| true).await;
    report(&failures);
    bench.shutdown().await;
}

#[tokio::test]
async fn invalid_utf8_and_bad_escapes_are_400s() {
    let bench = Bench::new(|_| {}).await;
    let prefix = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":""#;
    let suffix = br#""}]}"#;
    let mut bodies: Vec<(String, Vec<u8>)> = [
        ("0xff in a string", &b"caf\xff"[..]),
        ("truncated 3-byte sequence", b"\xe2\x82"),
        ("overlong encoding", b"\xc0\xaf"),
        ("UTF-16 surrogate encoded as UTF-8", b"\xed\xa0\x80"),
        ("lone surrogate escape", br"\ud800"),
        ("bad escape", br"\q"),
        ("raw control character", b"\x01"),
        ("NUL", b"\x00"),
    ]
    .into_iter()
    .map(|(label, middle)| {
        (
            label.to_owned(),
            [&prefix[..], middle, &suffix[..]].concat(),
        )
    })
    .collect();
    bodies.push((
        "invalid UTF-8 in a key".to_owned(),
        b"{\"model\":\"m\",\"max_tokens\":5,\"\xff\xfe\":1,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}".to_vec(),
    ));
    bodies.push((
        "invalid UTF-8 in the model".to_owned(),
        b"{\"model\":\"m\xff\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}".to_vec(),
    ));
    bodies.push((
        "UTF-16 body".to_owned(),
        "{\"model\":\"m\"}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect(),
    ));
    bodies.push((
        "BOM then JSON".to_owned(),
        [&b"\xef\xbb\xbf"[..], &prefix[..], b"x", &suffix[..]].concat(),
    ));
    let failures = sweep(&bench, &bodies, |_| true).await;
    report(&failures);
    // Where a2o parses the body itself (translation), each is its own 400.
    for target in bench.targets().into_iter().filter(|t| !t.passthrough()) {
        for (label, body) in &bodies {
            let answer = answer(target.post(&bench.client, body.clone()))
                .await
                .unwrap();
            assert_eq!(
                answer.status,
                400,
                "{label}: {target:?} {}",
                String::from_utf8_lossy(&answer.body)
            );
        }
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn duplicate_keys_are_refused_or_read_one_way() {
    let bench = Bench::new(|_| {}).await;
    let bodies: Vec<(String, Vec<u8>)> = [
        ("model twice", r#"{"model":"a","model":"b","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#),
        ("stream twice", r#"{"model":"m","stream":false,"stream":true,"max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#),
        ("max_tokens twice", r#"{"model":"m","max_tokens":5,"max_tokens":6,"messages":[{"role":"user","content":"x"}]}"#),
        ("messages twice", r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"messages":[]}"#),
        ("role twice", r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","role":"assistant","content":"x"}]}"#),
        ("unknown field twice", r#"{"model":"m","max_tokens":5,"x":1,"x":2,"messages":[{"role":"user","content":"x"}]}"#),
    ]
    .into_iter()
    .map(|(l, b)| (l.to_owned(), b.as_bytes().to_vec()))
    .collect();
    let failures = sweep(&bench, &bodies, |_| true).await;
    report(&failures);
    // The fields a2o routes and streams by must not be read one way by a2o and another by
    // the upstream: a duplicate there is a 400 on every route.
    for target in bench.targets() {
        for (label, body) in &bodies[..4] {
            let answer = answer(target.post(&bench.client, body.clone()))
                .await
                .unwrap();
            assert_eq!(answer.status, 400, "{label}: {target:?}");
            assert!(error_message(&answer).contains("duplicate"), "{label}");
        }
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn numbers_out_of_range_never_cause_a_5xx() {
    let bench = Bench::new(|_| {}).await;
    let template = |field: &str, value: &str| {
        format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"max_tokens":5,"{field}":{value}}}"#)
            .replacen(r#""max_tokens":5,"max_tokens""#, r#""max_tokens""#, 1)
            .into_bytes()
    };
    let mut bodies = Vec::new();
    for value in [
        "1e30",
        "-1",
        "18446744073709551616",
        "18446744073709551615",
        "1.5",
        "1e400",
        "-0",
        "0",
        "340282366920938463463374607431768211456",
    ] {
        for field in [
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "top_p",
            "top_k",
            "n",
            "seed",
        ] {
            bodies.push((format!("{field}={value}"), template(field, value)));
        }
    }
    // Arithmetic on extremes: thinking budgets and efforts against huge max_tokens.
    let extremes = [
        r#"{"model":"m","max_tokens":18446744073709551615,"thinking":{"type":"enabled","budget_tokens":18446744073709551615},"messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"m","max_tokens":1,"thinking":{"type":"enabled","budget_tokens":18446744073709551615},"messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"m","max_tokens":18446744073709551615,"reasoning_effort":"high","messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"m","max_completion_tokens":18446744073709551615,"reasoning_effort":"xhigh","messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"m","max_tokens":0,"reasoning_effort":"high","messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1e400"}}]}]}"#,
    ];
    for (i, body) in extremes.iter().enumerate() {
        bodies.push((format!("extreme {i}"), body.as_bytes().to_vec()));
    }
    for client in [Dialect::OpenAi, Dialect::Anthropic] {
        let failures = sweep(&bench, &bodies, |t| t.client == client).await;
        report(&failures);
    }
    // max_tokens that no u64 holds is the translator's 400.
    for target in bench.targets().into_iter().filter(|t| !t.passthrough()) {
        for value in ["1e30", "-1", "18446744073709551616", "1.5"] {
            let answer = answer(target.post(&bench.client, template("max_tokens", value)))
                .await
                .unwrap();
            assert_eq!(answer.status, 400, "max_tokens={value}: {target:?}");
        }
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn odd_conversations_never_cause_a_5xx() {
    let bench = Bench::new(|_| {}).await;
    let bodies: Vec<(String, Vec<u8>)> = [
        ("empty messages", json!({"model": "m", "max_tokens": 5, "messages": []})),
        ("no messages", json!({"model": "m", "max_tokens": 5})),
        ("empty object", json!({})),
        ("empty model", json!({"model": "", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})),
        ("unknown role", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "wizard", "content": "x"}]})),
        ("role missing", json!({"model": "m", "max_tokens": 5, "messages": [{"content": "x"}]})),
        ("only system", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]})),
        ("only assistant", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]})),
        ("empty content", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": ""}]})),
        ("empty parts", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": []}]})),
        ("unknown part type", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "hologram", "data": 1}]}]})),
        ("part without type", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "x"}]}]})),
        ("part type not a string", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": 7, "text": "x"}]}]})),
        ("tool result for no call", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}]})),
        ("tool message for no call", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]})),
        ("tool call with junk arguments", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]})),
        ("unknown tool type", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "teleport"}]})),
        ("unknown tool_choice", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "psychic"}})),
        ("tool_choice naming no tool", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "tool", "name": "ghost"}})),
        ("unknown thinking type", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "thinking": {"type": "maybe"}})),
        ("unknown reasoning effort", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "galactic"})),
        ("unknown response format", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}})),
        ("image with a bad data URL", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:;base64"}}]}]})),
        ("image source of unknown type", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "carrier-pigeon"}}]}]})),
        ("a thousand tool calls", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": (0..1000).map(|i| json!({"id": format!("c{i}"), "type": "function", "function": {"name": "f", "arguments": "{}"}})).collect::<Vec<_>>()}]})),
        ("tool names that collide when shortened", json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "tools": (0..50).map(|i| json!({"type": "function", "function": {"name": format!("{}{i}", "ü".repeat(80)), "parameters": {"type": "object"}}})).collect::<Vec<_>>()})),
    ]
    .into_iter()
    .map(|(l, b)| (l.to_owned(), serde_json::to_vec(&b).unwrap()))
    .collect();
    let failures = sweep(&bench, &bodies, |_| true).await;
    report(&failures);
    bench.shutdown().await;
}

#[tokio::test]
async fn conversations_a2o_cannot_translate_are_400s_that_say_why() {
    // Where the translator has nothing sensible to send, the client hears why, in its own
    // dialect, and the upstream is not bothered. (Requests it can translate but the upstream
    // may still refuse, such as an empty model name, are the upstream's to judge.)
    let bench = Bench::new(|_| {}).await;
    let cases = [
        ("empty messages", json!([]), "messages"),
        (
            "unknown role",
            json!([{"role": "wizard", "content": "x"}]),
            "role",
        ),
        (
            "unknown part type",
            json!([{"role": "user", "content": [{"type": "hologram", "data": 1}]}]),
            "type",
        ),
        (
            "part without type",
            json!([{"role": "user", "content": [{"text": "x"}]}]),
            "type",
        ),
    ];
    for (label, messages, field) in cases {
        let body =
            serde_json::to_vec(&json!({"model": "m", "max_tokens": 5, "messages": messages}))
                .unwrap();
        for target in bench.targets().into_iter().filter(|t| !t.passthrough()) {
            let answer = answer(target.post(&bench.client, body.clone()))
                .await
                .unwrap();
            assert_eq!(answer.status, 400, "{label}: {target:?}");
            assert_eq!(judge(target.client, &answer), None, "{label}");
            let message = error_message(&answer);
            assert!(message.contains(field), "{label}: {message}");
        }
    }
    assert!(bench.mock.state.requests().is_empty());
    bench.shutdown().await;
}

#[tokio::test]

async fn malformed_thinking_blocks_are_refused_before_the_upstream() {
    let bench = Bench::new(|_| {}).await;
    let body = serde_json::to_vec(&json!({"model": "m", "max_tokens": 50, "messages": [
        {"role": "user", "content": "What is 17 * 23?"},
        {"role": "assistant", "content": "391.", "thinking_blocks": [
            {"type": "thinking", "thinking": "17 * 23 = 391", "signature": "c2ln"},
            {"type": "redacted_thinking", "dawa": "EmwKAhgB"}
        ]},
        {"role": "user", "content": "And 17 * 24?"}
    ]}))
    .unwrap();
    for target in bench
        .targets()
        .into_iter()
        .filter(|t| t.client == Dialect::OpenAi && !t.passthrough())
    {
        let answer = answer(target.post(&bench.client, body.clone()))
            .await
            .unwrap();
        assert_eq!(answer.status, 400, "{target:?}");
        assert_eq!(judge(Dialect::OpenAi, &answer), None);
        assert!(error_message(&answer).contains("thinking_blocks"));
    }
    assert!(bench.mock.state.requests().is_empty());
    bench.shutdown().await;
}

#[tokio::test]
async fn non_object_bodies_and_wrong_content_types_are_4xx() {
    // `[]` is left to `an_array_body_is_not_read_as_a_request_on_pass_through`.
    let bench = Bench::new(|_| {}).await;
    let bodies: Vec<(String, Vec<u8>)> = [
        "",
        " ",
        "null",
        "42",
        "\"x\"",
        "true",
        "{",
        "}",
        "{}{}",
        "{} trailing",
        "\u{0}",
    ]
    .into_iter()
    .map(|b| (format!("body {b:?}"), b.as_bytes().to_vec()))
    .collect();
    let failures = sweep(&bench, &bodies, |_| true).await;
    report(&failures);
    for target in bench.targets() {
        for (label, body) in &bodies {
            let answer = answer(target.post(&bench.client, body.clone()))
                .await
                .unwrap();
            assert!(
                (400..500).contains(&answer.status),
                "{label}: {target:?} {}",
                answer.status
            );
        }
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "\u{7f}",
        ] {
            let Ok(value) = reqwest::header::HeaderValue::from_str(content_type) else {
                continue;
            };
            let answer = answer(
                bench
                    .client
                    .post(target.url())
                    .header("x-api-key", "k")
                    .header("content-type", value)
                    .body("{}"),
            )
            .await
            .unwrap();
            assert_eq!(answer.status, 415, "{content_type}");
            assert_eq!(judge(target.client, &answer), None);
        }
    }
    assert!(bench.mock.state.requests().is_empty());
    bench.shutdown().await;
}

#[tokio::test]

async fn an_array_body_is_not_read_as_a_request_on_pass_through() {
    let bench = Bench::new(|_| {}).await;
    for body in ["[]", r#"["gpt-x", true]"#] {
        for target in bench.targets().into_iter().filter(Target::passthrough) {
            bench.mock.state.clear();
            let answer = answer(target.post(&bench.client, body)).await.unwrap();
            assert_eq!(answer.status, 400, "{body}: {target:?}");
            assert_eq!(judge(target.client, &answer), None);
            assert!(
                bench.mock.state.requests().is_empty(),
                "{body} reached the upstream"
            );
        }
    }
    bench.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Hostile key headers

/// Sends raw bytes to `base` (an `http://host:port`) and returns what arrives within `limit`.
async fn raw_exchange(base: &str, bytes: &[u8], limit: Duration) -> String {
    let mut socket = TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    socket.write_all(bytes).await.unwrap();
    read_some(&mut socket, limit).await
}

/// Reads until one whole response (or a close) arrives, within `limit`.
async fn read_some(socket: &mut TcpStream, limit: Duration) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) | Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
        let text = String::from_utf8_lossy(&seen);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if seen.len() >= end + 4 + len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn raw_request(path: &str, key_header: &[u8]) -> Vec<u8> {
    let body = br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#;
    [
        format!("POST {path} HTTP/1.1\r\nhost: a2o\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n", body.len()).as_bytes(),
        key_header,
        b"\r\n\r\n",
        body,
    ]
    .concat()
}

#[tokio::test]
async fn header_injection_in_keys_is_refused_before_the_upstream() {
    let bench = Bench::new(|_| {}).await;
    let attempts: Vec<(&str, Vec<u8>)> = vec![
        // httparse takes a bare LF as a line end (RFC 9112 allows it): these two are two
        // clean headers on the wire, not an injection.
        (
            "CR LF then a header",
            b"x-api-key: sk-a\r\nx-injected: 1".to_vec(),
        ),
        ("bare CR", b"x-api-key: sk-a\rx-injected: 1".to_vec()),
        ("bare LF", b"x-api-key: sk-a\nx-injected: 1".to_vec()),
        ("NUL", b"x-api-key: sk-a\x00b".to_vec()),
        (
            "obs-fold continuation",
            b"x-api-key: sk-a\r\n x-injected: 1".to_vec(),
        ),
        (
            "bearer with CR LF",
            b"authorization: Bearer sk-a\r\n\r\nGET /evil HTTP/1.1".to_vec(),
        ),
        ("non-ASCII bytes", b"x-api-key: sk-\xff\xfe".to_vec()),
        ("space inside", b"x-api-key: sk-a sk-b".to_vec()),
        ("tab inside", b"x-api-key: sk-a\tsk-b".to_vec()),
        ("DEL inside", b"x-api-key: sk-a\x7fb".to_vec()),
    ];
    for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
        let proxy = bench.proxy(upstream);
        for front in [Dialect::Anthropic, Dialect::OpenAi] {
            for path in ["/v1/messages", "/v1/chat/completions"] {
                for (label, header) in &attempts {
                    bench.mock.state.clear();
                    let answer = raw_exchange(
                        proxy.front(front),
                        &raw_request(path, header),
                        Duration::from_secs(5),
                    )
                    .await;
                    let status = answer.get(9..12).unwrap_or("");
                    let clean_split = matches!(*label, "CR LF then a header" | "bare LF");
                    assert!(
                        status.starts_with('4') || (clean_split && status == "200"),
                        "{label} on {path}: {answer}"
                    );
                    for request in bench.mock.state.requests() {
                        for (name, value) in &request.headers {
                            assert!(
                                !value.contains('\r')
                                    && !value.contains('\n')
                                    && !value.contains('\0'),
                                "{label}: upstream got {name}: {value:?}"
                            );
                            if name == "x-api-key" || name == "authorization" {
                                assert!(
                                    value.ends_with("sk-a"),
                                    "{label}: upstream got {name}: {value:?}"
                                );
                            }
                        }
                    }
                    if !clean_split {
                        assert!(
                            bench.mock.state.requests().is_empty(),
                            "{label} on {path} reached the upstream"
                        );
                    }
                }
            }
        }
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn very_long_keys_and_huge_key_lists_are_400s_in_the_callers_dialect() {
    let bench = Bench::new(|_| {}).await;
    let long_key = format!("sk-{}", "a".repeat(5000));
    let many_keys = (0..500)
        .map(|i| format!("sk-{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let commas = ",".repeat(10_000);
    for target in bench.targets() {
        for (label, key, expected) in [
            ("5000-byte key", long_key.as_str(), 400),
            ("500 keys", many_keys.as_str(), 400),
            ("only commas", commas.as_str(), 401),
        ] {
            bench.mock.state.clear();
            let req = match target.client {
                Dialect::OpenAi => bench.client.post(target.url()).bearer_auth(key),
                Dialect::Anthropic => bench.client.post(target.url()).header("x-api-key", key),
            };
            let answer = answer(req.json(&json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})))
                .await
                .unwrap();
            assert_eq!(answer.status, expected, "{label}: {target:?}");
            assert_eq!(judge(target.client, &answer), None, "{label}");
            assert!(
                !String::from_utf8_lossy(&answer.body).contains("sk-1,"),
                "keys are not echoed"
            );
            assert!(
                bench.mock.state.requests().is_empty(),
                "{label} reached the upstream"
            );
        }
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn the_largest_allowed_key_pool_failing_everywhere_is_bounded() {
    let bench = Bench::new(|c| c.max_retry_wait = Duration::from_millis(5)).await;
    let keys = (0..a2o::keys::MAX_KEYS)
        .map(|i| format!("sk-{i}"))
        .collect::<Vec<_>>()
        .join(",");
    for target in bench.targets().into_iter().filter(|t| t.front == t.client) {
        bench.mock.state.clear();
        let started = Instant::now();
        let req = match target.client {
            Dialect::OpenAi => bench.client.post(target.url()).bearer_auth(&keys),
            Dialect::Anthropic => bench.client.post(target.url()).header("x-api-key", &keys),
        };
        let answer = answer(req.json(&json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "mock:error:429"}]})))
            .await
            .unwrap();
        assert_eq!(answer.status, 429, "{target:?}");
        assert_eq!(judge(target.client, &answer), None);
        assert_eq!(bench.mock.state.requests().len(), a2o::keys::MAX_KEYS);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn oversized_headers_are_refused_by_the_http_layer() {
    let bench = Bench::new(|_| {}).await;
    let huge = format!("x-api-key: sk-{}", "a".repeat(2 * 1024 * 1024));
    let answer = raw_exchange(
        &bench.anthropic_upstream.anthropic,
        &raw_request("/v1/messages", huge.as_bytes()),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    let many = (0..10_000)
        .map(|i| format!("x-h{i}: v"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let answer = raw_exchange(
        &bench.anthropic_upstream.anthropic,
        &raw_request("/v1/messages", many.as_bytes()),
        Duration::from_secs(10),
    )
    .await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    assert!(bench.mock.state.requests().is_empty());
    // Still serving afterwards.
    let health = bench
        .client
        .get(format!("{}/health", bench.anthropic_upstream.anthropic))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    bench.shutdown().await;
}

#[tokio::test]
async fn count_tokens_and_models_take_hostile_input_too() {
    let bench = Bench::new(|_| {}).await;
    for upstream in [Dialect::Anthropic, Dialect::OpenAi] {
        let proxy = bench.proxy(upstream);
        let url = format!("{}/v1/messages/count_tokens", proxy.anthropic);
        let mut bodies: Vec<(String, Vec<u8>)> = every_mutation(
            &json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}], "system": "s", "tools": [{"name": "f", "input_schema": {"type": "object"}}]}),
        );
        bodies.push(("deep".to_owned(), "[".repeat(100_000).into_bytes()));
        bodies.push(("invalid utf8".to_owned(), b"{\"model\":\"\xff\"}".to_vec()));
        for (label, body) in bodies {
            let answer = answer(
                bench
                    .client
                    .post(&url)
                    .header("x-api-key", "k")
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await
            .unwrap();
            assert_eq!(
                judge(Dialect::Anthropic, &answer),
                None,
                "count_tokens {label} ({upstream:?})"
            );
        }
        for key in [
            "a".repeat(5000),
            (0..100)
                .map(|i| format!("k{i}"))
                .collect::<Vec<_>>()
                .join(","),
        ] {
            let answer = answer(
                bench
                    .client
                    .get(format!("{}/v1/models", proxy.openai))
                    .bearer_auth(&key),
            )
            .await
            .unwrap();
            assert_eq!(answer.status, 400);
            assert_eq!(judge(Dialect::OpenAi, &answer), None);
        }
    }
    bench.shutdown().await;
}

#[tokio::test]
async fn a2o_keeps_serving_after_all_of_it() {
    // A sanity check that the hostile sweeps above leave the process healthy: run a small
    // sweep, then a normal request on every route.
    let bench = Bench::new(|_| {}).await;
    let bodies =
        every_mutation(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
    let failures = sweep(&bench, &bodies, |_| true).await;
    report(&failures);
    for target in bench.targets() {
        let answer = answer(target.post(&bench.client, serde_json::to_vec(&json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})).unwrap()))
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{target:?}");
    }
    let logs = bench.anthropic_upstream.logs.lock().unwrap().join("\n");
    assert!(!logs.contains("panicked"), "{logs}");
    bench.shutdown().await;
}
