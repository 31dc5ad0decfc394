//! The mock upstream, run in-process on loopback: every scenario in both dialects, streaming
//! and not, checked for status, body shape and stream grammar; the request log; scenario
//! selection; key faults; and that a stream a client abandons is really dropped.

use std::time::{Duration, Instant};

use a2o::mock::{self, MockOptions, MockState};
use serde_json::{json, Value};

const ANSWER: &str = "Hello from the mock upstream.";

struct Mock {
    base: String,
    state: MockState,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start() -> Mock {
    let (addr, server) = mock::bind(&MockOptions {
        host: "127.0.0.1".into(),
        port: 0,
    })
    .await
    .expect("bind");
    let state = server.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    Mock {
        base: format!("http://{addr}"),
        state,
        client,
        stop: Some(stop),
        task,
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dialect {
    Anthropic,
    OpenAi,
}

const BOTH: [Dialect; 2] = [Dialect::Anthropic, Dialect::OpenAi];

impl Mock {
    fn request(&self, dialect: Dialect, body: &Value) -> reqwest::RequestBuilder {
        match dialect {
            Dialect::Anthropic => self
                .client
                .post(format!("{}/v1/messages", self.base))
                .header("x-api-key", "sk-test")
                .header("anthropic-version", "2023-06-01")
                .json(body),
            Dialect::OpenAi => self
                .client
                .post(format!("{}/v1/chat/completions", self.base))
                .bearer_auth("sk-test")
                .json(body),
        }
    }

    async fn send(&self, dialect: Dialect, body: &Value) -> reqwest::Response {
        self.request(dialect, body).send().await.expect("response")
    }

    async fn json(&self, dialect: Dialect, body: &Value) -> Value {
        let response = self.send(dialect, body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "application/json");
        response.json::<Value>().await.expect("JSON body")
    }

    async fn stream(&self, dialect: Dialect, body: &Value) -> String {
        let response = self.send(dialect, body).await;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "content-type").starts_with("text/event-stream"));
        response.text().await.expect("stream body")
    }

    async fn wait_for_no_open_streams(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.state.open_streams() != 0 {
            assert!(
                Instant::now() < deadline,
                "the mock still holds {} open stream(s)",
                self.state.open_streams()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the mock stops promptly")
            .expect("server task")
            .expect("server ran");
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn body(dialect: Dialect, text: &str, stream: bool) -> Value {
    let mut body = json!({
        "model": if dialect == Dialect::Anthropic { "claude-test" } else { "gpt-test" },
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    });
    if dialect == Dialect::Anthropic {
        body["max_tokens"] = json!(100);
    }
    body
}

/// `(event name, data)` of every SSE event.
fn sse(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let mut name = None;
            let mut data = String::new();
            for line in event.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            (name, data)
        })
        .collect()
}

/// Checks Anthropic's event grammar and returns the event data. `complete` says whether the
/// stream must end with message_delta and message_stop.
fn anthropic_events(text: &str, complete: bool) -> Vec<Value> {
    let events: Vec<Value> = sse(text)
        .into_iter()
        .map(|(name, data)| {
            let value: Value = serde_json::from_str(&data).expect("event data is JSON");
            assert_eq!(
                name.as_deref(),
                value["type"].as_str(),
                "the event line names the data type"
            );
            value
        })
        .collect();
    assert_eq!(
        events.first().map(|event| &event["type"]),
        Some(&json!("message_start"))
    );
    let mut open: Option<(u64, String)> = None;
    let mut next_index = 0;
    let mut pinged = false;
    let mut ended = false;
    for event in &events[1..] {
        assert!(!ended, "nothing may follow message_stop");
        match event["type"].as_str().unwrap_or_default() {
            "content_block_start" => {
                assert!(open.is_none(), "blocks never overlap");
                assert_eq!(
                    event["index"],
                    json!(next_index),
                    "block indices count up from 0"
                );
                open = Some((
                    next_index,
                    event["content_block"]["type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
                next_index += 1;
            }
            "ping" => {
                assert!(
                    next_index > 0 && !pinged,
                    "one ping, after the first block starts"
                );
                pinged = true;
            }
            "content_block_delta" => {
                let (index, kind) = open.as_ref().expect("a delta inside an open block");
                assert_eq!(event["index"], json!(index));
                let delta = event["delta"]["type"].as_str().unwrap_or_default();
                let allowed: &[&str] = match kind.as_str() {
                    "text" => &["text_delta"],
                    "tool_use" => &["input_json_delta"],
                    "thinking" => &["thinking_delta", "signature_delta"],
                    _ => &[],
                };
                assert!(allowed.contains(&delta), "{delta} inside a {kind} block");
            }
            "content_block_stop" => {
                let (index, _) = open.take().expect("stop of an open block");
                assert_eq!(event["index"], json!(index));
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta after every block stopped");
                assert!(event["delta"]["stop_reason"].is_string());
                assert!(event["usage"]["output_tokens"].is_u64());
            }
            "message_stop" => ended = true,
            "error" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    if complete {
        assert!(ended, "a complete stream ends with message_stop");
        assert_eq!(events[events.len() - 2]["type"], "message_delta");
    }
    events
}

/// Concatenates the text deltas of an Anthropic stream.
fn anthropic_text(events: &[Value], delta_type: &str, field: &str) -> String {
    events
        .iter()
        .filter(|event| {
            event["type"] == "content_block_delta" && event["delta"]["type"] == delta_type
        })
        .filter_map(|event| event["delta"][field].as_str())
        .collect()
}

/// Checks OpenAI's chunk grammar and returns the chunks (without `[DONE]`).
fn openai_chunks(text: &str, model: &str, include_usage: bool) -> Vec<Value> {
    let events = sse(text);
    assert!(
        events.iter().all(|(name, _)| name.is_none()),
        "OpenAI streams have no event lines"
    );
    assert_eq!(
        events.last().map(|(_, data)| data.as_str()),
        Some("[DONE]"),
        "the stream ends with [DONE]"
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, data)| serde_json::from_str(data).expect("chunk is JSON"))
        .collect();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], model);
        assert_eq!(chunk["created"], 1700000000);
        assert!(chunk["id"]
            .as_str()
            .unwrap_or_default()
            .starts_with("chatcmpl-mock-"));
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "the role chunk comes first"
    );
    let finish_at = chunks
        .iter()
        .position(|chunk| chunk["choices"][0]["finish_reason"].is_string())
        .expect("a finish chunk");
    let after_finish = &chunks[finish_at + 1..];
    if include_usage {
        assert_eq!(
            after_finish.len(),
            1,
            "only the usage chunk follows the finish chunk"
        );
        assert_eq!(after_finish[0]["choices"], json!([]));
        assert!(after_finish[0]["usage"]["total_tokens"].is_u64());
        assert!(chunks[..=finish_at]
            .iter()
            .all(|chunk| chunk["usage"].is_null()));
    } else {
        assert!(after_finish.is_empty(), "no usage chunk unless asked");
        assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
    }
    // Tool-call fragments: the first of each index names the call, the rest only add arguments.
    let mut seen = Vec::new();
    for chunk in &chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().expect("tool call index");
            if !seen.contains(&index) {
                assert_eq!(index, seen.len() as u64, "tool indices count up from 0");
                assert!(
                    call["id"].is_string()
                        && call["type"] == "function"
                        && call["function"]["name"].is_string()
                );
                seen.push(index);
            } else {
                assert!(call.get("id").is_none() && call["function"].get("name").is_none());
            }
        }
    }
    chunks
}

fn openai_field(chunks: &[Value], field: &str) -> String {
    chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"][field].as_str())
        .collect()
}

/// Arguments of every streamed tool call, by index.
fn openai_tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for chunk in chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap_or_default() as usize;
            if index == calls.len() {
                calls.push((
                    call["id"].as_str().unwrap_or_default().to_owned(),
                    call["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    String::new(),
                ));
            }
            calls[index]
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    calls
}

fn finish_reason(chunks: &[Value]) -> String {
    chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["finish_reason"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn text_in_both_dialects_streamed_and_not() {
    let mock = start().await;
    let message = mock
        .json(Dialect::Anthropic, &body(Dialect::Anthropic, "hi", false))
        .await;
    assert_eq!(message["type"], "message");
    assert_eq!(message["model"], "claude-test");
    assert!(message["id"]
        .as_str()
        .unwrap_or_default()
        .starts_with("msg_mock_"));
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": ANSWER}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 7})
    );

    let text = mock
        .stream(Dialect::Anthropic, &body(Dialect::Anthropic, "hi", true))
        .await;
    let events = anthropic_events(&text, true);
    assert_eq!(events[0]["message"]["model"], "claude-test");
    assert_eq!(anthropic_text(&events, "text_delta", "text"), ANSWER);
    assert!(
        events
            .iter()
            .filter(|event| event["type"] == "content_block_delta")
            .count()
            >= 3,
        "several deltas"
    );
    assert_eq!(events[events.len() - 2]["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[events.len() - 2]["usage"]["output_tokens"], 7);

    let completion = mock
        .json(Dialect::OpenAi, &body(Dialect::OpenAi, "hi", false))
        .await;
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "gpt-test");
    assert_eq!(completion["created"], 1700000000);
    assert_eq!(completion["choices"][0]["message"]["content"], ANSWER);
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert_eq!(completion["usage"]["prompt_tokens"], 12);
    assert_eq!(completion["usage"]["completion_tokens"], 7);
    assert_eq!(completion["usage"]["total_tokens"], 19);

    for include_usage in [false, true] {
        let mut request = body(Dialect::OpenAi, "hi", true);
        if include_usage {
            request["stream_options"] = json!({"include_usage": true});
        }
        let chunks = openai_chunks(
            &mock.stream(Dialect::OpenAi, &request).await,
            "gpt-test",
            include_usage,
        );
        assert_eq!(openai_field(&chunks, "content"), ANSWER);
        assert_eq!(finish_reason(&chunks), "stop");
        if include_usage {
            let usage = &chunks[chunks.len() - 1]["usage"];
            assert_eq!(
                (
                    usage["prompt_tokens"].as_u64(),
                    usage["total_tokens"].as_u64()
                ),
                (Some(12), Some(19))
            );
        }
    }
    assert_eq!(mock.state.open_streams(), 0);
    mock.shutdown().await;
}

#[tokio::test]
async fn echo_answers_with_the_received_body() {
    let mock = start().await;
    for dialect in BOTH {
        let sent = body(dialect, "say mock:echo please", false);
        let answer = mock.json(dialect, &sent).await;
        let text = match dialect {
            Dialect::Anthropic => answer["content"][0]["text"].as_str(),
            Dialect::OpenAi => answer["choices"][0]["message"]["content"].as_str(),
        };
        let echoed: Value = serde_json::from_str(text.expect("text answer")).expect("echo is JSON");
        assert_eq!(echoed, sent);

        let sent = body(dialect, "mock:echo", true);
        let text = mock.stream(dialect, &sent).await;
        let echoed = match dialect {
            Dialect::Anthropic => {
                anthropic_text(&anthropic_events(&text, true), "text_delta", "text")
            }
            Dialect::OpenAi => openai_field(&openai_chunks(&text, "gpt-test", false), "content"),
        };
        assert_eq!(
            serde_json::from_str::<Value>(&echoed).expect("echo is JSON"),
            sent
        );
    }
    mock.shutdown().await;
}

#[tokio::test]
async fn tool_calls_name_the_declared_tool() {
    let mock = start().await;
    // Without tools in the request, the default name.
    let message = mock
        .json(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:tool", false),
        )
        .await;
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(message["content"][0]["type"], "tool_use");
    assert_eq!(message["content"][0]["name"], "get_weather");
    assert_eq!(message["content"][0]["input"], json!({"city": "Paris"}));

    let mut request = body(Dialect::Anthropic, "mock:tool", true);
    request["tools"] = json!([{"name": "lookup", "input_schema": {"type": "object"}}]);
    let events = anthropic_events(&mock.stream(Dialect::Anthropic, &request).await, true);
    let start = events
        .iter()
        .find(|event| event["type"] == "content_block_start")
        .expect("block");
    assert_eq!(start["content_block"]["type"], "tool_use");
    assert_eq!(start["content_block"]["name"], "lookup");
    assert_eq!(start["content_block"]["input"], json!({}));
    let arguments = anthropic_text(&events, "input_json_delta", "partial_json");
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).expect("arguments"),
        json!({"city": "Paris"})
    );
    let fragments = events
        .iter()
        .filter(|event| {
            event["delta"]["partial_json"]
                .as_str()
                .is_some_and(|fragment| !fragment.is_empty())
        })
        .count();
    assert_eq!(fragments, 3);
    assert_eq!(events[events.len() - 2]["delta"]["stop_reason"], "tool_use");

    let mut request = body(Dialect::OpenAi, "mock:tool", false);
    request["tools"] =
        json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
    let completion = mock.json(Dialect::OpenAi, &request).await;
    assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
    let call = &completion["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "lookup");
    assert_eq!(call["function"]["arguments"], r#"{"city":"Paris"}"#);

    request["stream"] = json!(true);
    let chunks = openai_chunks(
        &mock.stream(Dialect::OpenAi, &request).await,
        "gpt-test",
        false,
    );
    let calls = openai_tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].1.as_str(), calls[0].2.as_str()),
        ("lookup", r#"{"city":"Paris"}"#)
    );
    assert_eq!(finish_reason(&chunks), "tool_calls");
    mock.shutdown().await;
}

#[tokio::test]
async fn parallel_tool_calls_have_distinct_ids_and_indices() {
    let mock = start().await;
    let tools = json!([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"name": "d"}]);
    let mut request = body(Dialect::Anthropic, "mock:parallel_tools", false);
    request["tools"] = tools.clone();
    let message = mock.json(Dialect::Anthropic, &request).await;
    let content = message["content"].as_array().expect("content");
    assert_eq!(content[0], json!({"type": "text", "text": "Let me check."}));
    let names: Vec<&str> = content[1..]
        .iter()
        .filter_map(|block| block["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    let mut ids: Vec<&str> = content[1..]
        .iter()
        .filter_map(|block| block["id"].as_str())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);

    request["stream"] = json!(true);
    let events = anthropic_events(&mock.stream(Dialect::Anthropic, &request).await, true);
    let starts: Vec<&Value> = events
        .iter()
        .filter(|event| event["type"] == "content_block_start")
        .collect();
    assert_eq!(starts.len(), 4);
    assert_eq!(starts[0]["content_block"]["type"], "text");
    for (index, name) in [(1, "a"), (2, "b"), (3, "c")] {
        assert_eq!(starts[index]["content_block"]["name"], name);
        let arguments: String = events
            .iter()
            .filter(|event| event["index"] == index && event["delta"]["type"] == "input_json_delta")
            .filter_map(|event| event["delta"]["partial_json"].as_str())
            .collect();
        assert!(serde_json::from_str::<Value>(&arguments)
            .expect("arguments")
            .is_object());
    }

    // No tools declared: the default names.
    let chunks = openai_chunks(
        &mock
            .stream(
                Dialect::OpenAi,
                &body(Dialect::OpenAi, "mock:parallel_tools", true),
            )
            .await,
        "gpt-test",
        false,
    );
    assert_eq!(openai_field(&chunks, "content"), "Let me check.");
    let calls = openai_tool_calls(&chunks);
    let names: Vec<&str> = calls.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(names, ["get_weather", "get_time", "get_news"]);
    let mut ids: Vec<&str> = calls.iter().map(|(id, _, _)| id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    assert!(calls
        .iter()
        .all(|(_, _, arguments)| serde_json::from_str::<Value>(arguments).is_ok()));
    assert_eq!(finish_reason(&chunks), "tool_calls");

    let completion = mock
        .json(
            Dialect::OpenAi,
            &body(Dialect::OpenAi, "mock:parallel_tools", false),
        )
        .await;
    assert_eq!(
        completion["choices"][0]["message"]["tool_calls"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn thinking_blocks_and_reasoning_content() {
    let mock = start().await;
    let message = mock
        .json(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:thinking", false),
        )
        .await;
    assert_eq!(
        message["content"][0],
        json!({"type": "thinking", "thinking": "Let me think about this.", "signature": "mock-signature-0123456789"})
    );
    assert_eq!(
        message["content"][1],
        json!({"type": "text", "text": ANSWER})
    );

    let message = mock
        .json(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:thinking_redacted", false),
        )
        .await;
    assert_eq!(message["content"][1]["type"], "redacted_thinking");
    assert!(message["content"][1]["data"].is_string());
    assert_eq!(message["content"][2]["type"], "text");

    let text = mock
        .stream(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:thinking_redacted", true),
        )
        .await;
    let events = anthropic_events(&text, true);
    assert_eq!(
        anthropic_text(&events, "thinking_delta", "thinking"),
        "Let me think about this."
    );
    assert_eq!(
        anthropic_text(&events, "signature_delta", "signature"),
        "mock-signature-0123456789"
    );
    let kinds: Vec<&str> = events
        .iter()
        .filter(|event| event["type"] == "content_block_start")
        .filter_map(|event| event["content_block"]["type"].as_str())
        .collect();
    assert_eq!(kinds, ["thinking", "redacted_thinking", "text"]);
    assert_eq!(anthropic_text(&events, "text_delta", "text"), ANSWER);

    let completion = mock
        .json(
            Dialect::OpenAi,
            &body(Dialect::OpenAi, "mock:thinking", false),
        )
        .await;
    assert_eq!(
        completion["choices"][0]["message"]["reasoning_content"],
        "Let me think about this."
    );
    assert_eq!(completion["choices"][0]["message"]["content"], ANSWER);
    let chunks = openai_chunks(
        &mock
            .stream(
                Dialect::OpenAi,
                &body(Dialect::OpenAi, "mock:thinking", true),
            )
            .await,
        "gpt-test",
        false,
    );
    assert_eq!(
        openai_field(&chunks, "reasoning_content"),
        "Let me think about this."
    );
    assert_eq!(openai_field(&chunks, "content"), ANSWER);
    let first_content = chunks.iter().position(|chunk| {
        chunk["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    });
    let last_reasoning = chunks
        .iter()
        .rposition(|chunk| chunk["choices"][0]["delta"]["reasoning_content"].is_string());
    assert!(
        last_reasoning < first_content,
        "reasoning comes before the answer"
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn cache_usage_in_both_dialects() {
    let mock = start().await;
    let message = mock
        .json(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:cache", false),
        )
        .await;
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 10, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 100, "output_tokens": 5})
    );
    let events = anthropic_events(
        &mock
            .stream(
                Dialect::Anthropic,
                &body(Dialect::Anthropic, "mock:cache", true),
            )
            .await,
        true,
    );
    assert_eq!(
        events[0]["message"]["usage"]["cache_read_input_tokens"],
        100
    );
    assert_eq!(
        events[events.len() - 2]["usage"]["cache_creation_input_tokens"],
        50
    );

    let completion = mock
        .json(Dialect::OpenAi, &body(Dialect::OpenAi, "mock:cache", false))
        .await;
    let usage = &completion["usage"];
    assert_eq!(usage["prompt_tokens"], 160);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 100);
    assert_eq!(usage["completion_tokens"], 5);
    assert_eq!(usage["total_tokens"], 165);
    let mut request = body(Dialect::OpenAi, "mock:cache", true);
    request["stream_options"] = json!({"include_usage": true});
    let chunks = openai_chunks(
        &mock.stream(Dialect::OpenAi, &request).await,
        "gpt-test",
        true,
    );
    assert_eq!(
        chunks[chunks.len() - 1]["usage"]["prompt_tokens_details"]["cached_tokens"],
        100
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn max_tokens_and_stop_sequence() {
    let mock = start().await;
    let message = mock
        .json(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:max_tokens", false),
        )
        .await;
    assert_eq!(
        (
            message["stop_reason"].as_str(),
            message["content"][0]["text"].as_str()
        ),
        (Some("max_tokens"), Some("Hello"))
    );
    let events = anthropic_events(
        &mock
            .stream(
                Dialect::Anthropic,
                &body(Dialect::Anthropic, "mock:max_tokens", true),
            )
            .await,
        true,
    );
    assert_eq!(anthropic_text(&events, "text_delta", "text"), "Hello");
    assert_eq!(
        events[events.len() - 2]["delta"]["stop_reason"],
        "max_tokens"
    );
    let completion = mock
        .json(
            Dialect::OpenAi,
            &body(Dialect::OpenAi, "mock:max_tokens", false),
        )
        .await;
    assert_eq!(completion["choices"][0]["finish_reason"], "length");
    let chunks = openai_chunks(
        &mock
            .stream(
                Dialect::OpenAi,
                &body(Dialect::OpenAi, "mock:max_tokens", true),
            )
            .await,
        "gpt-test",
        false,
    );
    assert_eq!(finish_reason(&chunks), "length");

    let message = mock
        .json(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:stop_sequence", false),
        )
        .await;
    assert_eq!(
        (
            message["stop_reason"].as_str(),
            message["stop_sequence"].as_str()
        ),
        (Some("stop_sequence"), Some("STOP"))
    );
    let mut request = body(Dialect::Anthropic, "mock:stop_sequence", true);
    request["stop_sequences"] = json!(["END", "OTHER"]);
    let events = anthropic_events(&mock.stream(Dialect::Anthropic, &request).await, true);
    assert_eq!(
        events[events.len() - 2]["delta"]["stop_reason"],
        "stop_sequence"
    );
    assert_eq!(events[events.len() - 2]["delta"]["stop_sequence"], "END");
    let completion = mock
        .json(
            Dialect::OpenAi,
            &body(Dialect::OpenAi, "mock:stop_sequence", false),
        )
        .await;
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    mock.shutdown().await;
}

#[tokio::test]
async fn error_scenarios_answer_in_the_routes_dialect() {
    let mock = start().await;
    let anthropic_types = [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ];
    for (status, anthropic_type) in anthropic_types {
        for dialect in BOTH {
            for stream in [false, true] {
                let response = mock
                    .send(
                        dialect,
                        &body(dialect, &format!("mock:error:{status}"), stream),
                    )
                    .await;
                assert_eq!(response.status().as_u16(), status);
                let retry_after = header(&response, "retry-after");
                assert_eq!(
                    retry_after == "0",
                    matches!(status, 429 | 503 | 529),
                    "retry-after on {status}"
                );
                let error: Value = response.json::<Value>().await.expect("error body");
                match dialect {
                    Dialect::Anthropic => {
                        assert_eq!(error["type"], "error");
                        assert_eq!(error["error"]["type"], anthropic_type);
                        assert!(error["error"]["message"].is_string());
                        assert_eq!(error["request_id"], "req_mock");
                    }
                    Dialect::OpenAi => {
                        let error = &error["error"];
                        assert!(error["message"].is_string() && error["type"].is_string());
                        assert!(error["param"].is_null());
                        assert!(error.get("code").is_some());
                    }
                }
            }
        }
    }
    let response = mock
        .send(
            Dialect::OpenAi,
            &body(Dialect::OpenAi, "mock:error:429:2", false),
        )
        .await;
    assert_eq!(
        (response.status().as_u16(), header(&response, "retry-after")),
        (429, "2".to_owned())
    );
    let error: Value = response.json::<Value>().await.expect("error body");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    mock.shutdown().await;
}

#[tokio::test]
async fn fail_key_fails_only_that_key() {
    let mock = start().await;
    let request = body(Dialect::Anthropic, "mock:fail_key:sk-bad", false);
    let response = mock
        .client
        .post(format!("{}/v1/messages", mock.base))
        .header("x-api-key", "sk-bad")
        .json(&request)
        .send()
        .await
        .expect("response");
    assert_eq!(
        (response.status().as_u16(), header(&response, "retry-after")),
        (429, "0".to_owned())
    );
    let response = mock.send(Dialect::Anthropic, &request).await;
    assert_eq!(response.status(), 200);

    let request = body(Dialect::OpenAi, "mock:fail_key_529:sk-bad", true);
    let response = mock
        .client
        .post(format!("{}/v1/chat/completions", mock.base))
        .bearer_auth("sk-bad")
        .json(&request)
        .send()
        .await
        .expect("response");
    assert_eq!(
        (response.status().as_u16(), header(&response, "retry-after")),
        (529, "0".to_owned())
    );
    let text = mock.stream(Dialect::OpenAi, &request).await;
    assert_eq!(
        openai_field(&openai_chunks(&text, "gpt-test", false), "content"),
        ANSWER
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn a_request_without_a_key_gets_401_and_is_recorded() {
    let mock = start().await;
    let response = mock
        .client
        .post(format!("{}/v1/messages", mock.base))
        .json(&body(Dialect::Anthropic, "hi", false))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 401);
    let error: Value = response.json::<Value>().await.expect("body");
    assert_eq!(error["error"]["type"], "authentication_error");
    let response = mock
        .client
        .post(format!("{}/v1/chat/completions", mock.base))
        .header("authorization", "Bearer ")
        .json(&body(Dialect::OpenAi, "hi", false))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 401);
    let error: Value = response.json::<Value>().await.expect("body");
    assert_eq!(error["error"]["code"], "invalid_api_key");
    assert_eq!(mock.state.requests().len(), 2);
    mock.shutdown().await;
}

#[tokio::test]
async fn midstream_error_and_truncate_cut_streams_short() {
    let mock = start().await;
    let text = mock
        .stream(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:midstream_error", true),
        )
        .await;
    let events = anthropic_events(&text, false);
    assert!(anthropic_text(&events, "text_delta", "text").starts_with("Hello"));
    assert_eq!(
        events.last(),
        Some(
            &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
    );
    assert!(events.iter().all(|event| event["type"] != "message_stop"));

    let text = mock
        .stream(
            Dialect::OpenAi,
            &body(Dialect::OpenAi, "mock:midstream_error", true),
        )
        .await;
    let events = sse(&text);
    assert!(events.iter().all(|(_, data)| data != "[DONE]"));
    let last: Value = serde_json::from_str(&events[events.len() - 1].1).expect("JSON");
    assert_eq!(
        last,
        json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": null}})
    );
    let first_content: Value = serde_json::from_str(&events[1].1).expect("JSON");
    assert_eq!(first_content["choices"][0]["delta"]["content"], "Hello");

    let response = mock
        .send(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:midstream_error", false),
        )
        .await;
    assert_eq!(response.status(), 529);
    let response = mock
        .send(
            Dialect::OpenAi,
            &body(Dialect::OpenAi, "mock:midstream_error", false),
        )
        .await;
    assert_eq!(response.status(), 503);

    for dialect in BOTH {
        let mut response = mock
            .send(dialect, &body(dialect, "mock:truncate", true))
            .await;
        assert_eq!(response.status(), 200);
        let mut received = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => received.extend_from_slice(&chunk),
                Ok(None) => panic!("a truncated stream must not end cleanly"),
                Err(_) => break,
            }
        }
        let received = String::from_utf8(received).expect("utf-8");
        assert!(
            received.contains("Hello"),
            "the first delta arrives: {received}"
        );
        assert!(!received.contains("message_stop") && !received.contains("[DONE]"));

        let response = mock
            .send(dialect, &body(dialect, "mock:truncate", false))
            .await;
        assert_eq!(response.status(), 200);
        assert!(
            response.bytes().await.is_err(),
            "a truncated JSON body fails to read"
        );
    }
    mock.wait_for_no_open_streams().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn slow_and_gap_pace_the_events() {
    let mock = start().await;
    let started = Instant::now();
    let mut response = mock
        .send(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:slow:20", true),
        )
        .await;
    let first = response.chunk().await.expect("chunk").expect("first event");
    let first = String::from_utf8(first.to_vec()).expect("utf-8");
    assert!(
        first.starts_with("event: message_start") && first.matches("event:").count() == 1,
        "{first}"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        rest.extend_from_slice(&chunk);
    }
    let text = first + std::str::from_utf8(&rest).expect("utf-8");
    let events = anthropic_events(&text, true);
    let gaps = events.len() as u32 - 1;
    assert!(
        started.elapsed() >= Duration::from_millis(20) * gaps,
        "{gaps} gaps of 20 ms"
    );

    let started = Instant::now();
    let request = body(Dialect::OpenAi, "hi", true);
    let response = mock
        .request(Dialect::OpenAi, &request)
        .header("x-mock-gap-ms", "15")
        .send()
        .await
        .expect("response");
    let chunks = openai_chunks(&response.text().await.expect("body"), "gpt-test", false);
    assert_eq!(openai_field(&chunks, "content"), ANSWER);
    assert!(started.elapsed() >= Duration::from_millis(15) * chunks.len() as u32);

    let started = Instant::now();
    let completion = mock
        .json(
            Dialect::OpenAi,
            &body(Dialect::OpenAi, "mock:slow:30", false),
        )
        .await;
    assert_eq!(completion["choices"][0]["message"]["content"], ANSWER);
    assert!(started.elapsed() >= Duration::from_millis(30));
    mock.shutdown().await;
}

#[tokio::test]
async fn a_stalled_stream_is_dropped_when_the_client_leaves() {
    let mock = start().await;
    for dialect in BOTH {
        let mut response = mock.send(dialect, &body(dialect, "mock:stall", true)).await;
        assert_eq!(response.status(), 200);
        let first = response.chunk().await.expect("chunk").expect("first event");
        let first = String::from_utf8(first.to_vec()).expect("utf-8");
        match dialect {
            Dialect::Anthropic => assert!(first.starts_with("event: message_start")),
            Dialect::OpenAi => assert!(first.contains("\"role\":\"assistant\"")),
        }
        assert_eq!(first.matches("\n\n").count(), 1, "exactly one event");
        let next = tokio::time::timeout(Duration::from_millis(200), response.chunk()).await;
        assert!(next.is_err(), "nothing follows the first event");
        assert_eq!(mock.state.open_streams(), 1);
        drop(response);
        mock.wait_for_no_open_streams().await;
    }

    // Non-streaming: the status line arrives, the body never does.
    let response = mock
        .send(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:stall", false),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(mock.state.open_streams(), 1);
    drop(response);
    mock.wait_for_no_open_streams().await;
    mock.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_held_streams() {
    let mock = start().await;
    let mut response = mock
        .send(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:stall", true),
        )
        .await;
    assert!(response.chunk().await.expect("chunk").is_some());
    let state = mock.state.clone();
    mock.shutdown().await;
    // The held body ends with the server, and the client sees its end.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(rest.is_ok());
    assert_eq!(state.open_streams(), 0);
}

#[tokio::test]
async fn html_bad_json_and_reset() {
    let mock = start().await;
    for dialect in BOTH {
        for stream in [false, true] {
            let response = mock
                .send(dialect, &body(dialect, "mock:html", stream))
                .await;
            assert_eq!(response.status(), 200);
            assert!(header(&response, "content-type").starts_with("text/html"));
            assert_eq!(
                response.text().await.expect("body"),
                "<html><body>Blocked by firewall</body></html>"
            );

            let response = mock
                .send(dialect, &body(dialect, "mock:bad_json", stream))
                .await;
            assert_eq!(response.status(), 200);
            assert_eq!(header(&response, "content-type"), "application/json");
            assert_eq!(
                response.text().await.expect("body"),
                r#"{"id":"msg_mock","type":"mess"#
            );

            let result = mock
                .request(dialect, &body(dialect, "mock:reset", stream))
                .send()
                .await;
            let err = result.expect_err("no response at all");
            assert!(!err.is_timeout(), "{err:?}");
        }
    }
    // The mock still serves after resets.
    mock.json(Dialect::Anthropic, &body(Dialect::Anthropic, "hi", false))
        .await;
    mock.shutdown().await;
}

#[tokio::test]
async fn requests_are_recorded_with_prefix_query_headers_and_body() {
    let mock = start().await;
    let request = json!({"model": "claude-test", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let response = mock
        .client
        .post(format!("{}/api/v1/messages?beta=true", mock.base))
        .header("x-api-key", "sk-recorded")
        .header("anthropic-beta", "tools-2024")
        .json(&request)
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    let response = mock
        .client
        .post(format!("{}/v1/chat/completions", mock.base))
        .bearer_auth("sk-openai")
        .body("not json")
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 400);

    let recorded = mock.state.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        (recorded[0].method.as_str(), recorded[0].path.as_str()),
        ("POST", "/api/v1/messages")
    );
    assert_eq!(recorded[0].query.as_deref(), Some("beta=true"));
    let has = |index: usize, name: &str, value: &str| {
        recorded[index]
            .headers
            .iter()
            .any(|(n, v)| n == name && v == value)
    };
    assert!(has(0, "x-api-key", "sk-recorded") && has(0, "anthropic-beta", "tools-2024"));
    assert!(has(1, "authorization", "Bearer sk-openai"));
    assert_eq!(recorded[0].body, request);
    assert_eq!(recorded[1].body, Value::Null);

    let listed: Value = mock
        .client
        .get(format!("{}/_mock/requests", mock.base))
        .send()
        .await
        .expect("response")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(listed[0]["path"], "/api/v1/messages");
    assert_eq!(listed[0]["body"], request);
    assert_eq!(listed[1]["query"], Value::Null);

    let cleared = mock
        .client
        .delete(format!("{}/_mock/requests", mock.base))
        .send()
        .await
        .expect("response");
    assert_eq!(cleared.status(), 200);
    assert!(mock.state.requests().is_empty());
    mock.state.clear();
    mock.shutdown().await;
}

#[tokio::test]
async fn scenario_comes_from_the_last_user_message_then_the_header() {
    let mock = start().await;
    let request = body(Dialect::Anthropic, "hi", false);
    let message: Value = mock
        .request(Dialect::Anthropic, &request)
        .header("x-mock-scenario", "tool")
        .send()
        .await
        .expect("response")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(message["stop_reason"], "tool_use");

    // The message's token wins over the header.
    let request = body(Dialect::OpenAi, "please mock:max_tokens.", false);
    let completion: Value = mock
        .request(Dialect::OpenAi, &request)
        .header("x-mock-scenario", "tool")
        .send()
        .await
        .expect("response")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(completion["choices"][0]["finish_reason"], "length");

    // Only the last user message counts, and text parts are searched.
    let request = json!({
        "model": "gpt-test",
        "messages": [
            {"role": "user", "content": "mock:error:500"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "user", "content": [{"type": "text", "text": "now mock:cache"}]}
        ]
    });
    let completion = mock.json(Dialect::OpenAi, &request).await;
    assert_eq!(completion["usage"]["total_tokens"], 165);

    let response = mock
        .send(
            Dialect::Anthropic,
            &body(Dialect::Anthropic, "mock:no_such_thing", false),
        )
        .await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json::<Value>().await.expect("JSON");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("no_such_thing"));
    mock.shutdown().await;
}

#[tokio::test]
async fn models_count_tokens_and_health() {
    let mock = start().await;
    let models: Value = mock
        .client
        .get(format!("{}/api/v1/models", mock.base))
        .header("x-api-key", "sk-test")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("response")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(models["data"][0]["id"], "claude-mock-1");
    assert_eq!(models["data"][0]["type"], "model");
    assert_eq!(
        (models["has_more"].as_bool(), models["first_id"].as_str()),
        (Some(false), Some("claude-mock-1"))
    );

    let models: Value = mock
        .client
        .get(format!("{}/v1/models", mock.base))
        .bearer_auth("sk-test")
        .send()
        .await
        .expect("response")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(
        models,
        json!({"object": "list", "data": [{"id": "gpt-mock-1", "object": "model", "created": 1700000000, "owned_by": "a2o-mock"}]})
    );

    let request = body(Dialect::Anthropic, "count these tokens", false);
    let length = serde_json::to_vec(&request).expect("JSON").len();
    let count: Value = mock
        .client
        .post(format!("{}/v1/messages/count_tokens", mock.base))
        .header("x-api-key", "sk-test")
        .json(&request)
        .send()
        .await
        .expect("response")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(count, json!({"input_tokens": length / 4}));
    let failing = mock
        .client
        .post(format!("{}/v1/messages/count_tokens", mock.base))
        .header("x-api-key", "sk-test")
        .header("x-mock-scenario", "error:500")
        .json(&request)
        .send()
        .await
        .expect("response");
    assert_eq!(failing.status(), 500);

    let health = mock
        .client
        .get(format!("{}/health", mock.base))
        .send()
        .await
        .expect("response");
    assert_eq!(health.status(), 200);
    let missing = mock
        .client
        .get(format!("{}/v2/other", mock.base))
        .send()
        .await
        .expect("response");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        mock.state.requests().len(),
        4,
        "model routes are recorded, health is not"
    );
    mock.shutdown().await;
}
