//! `a2o serve` against wiremock and raw TCP upstreams on loopback: every route, exact upstream
//! requests, key rotation and failover, timeouts, streaming, errors in the caller's dialect,
//! logs without keys, and graceful shutdown.

use std::time::{Duration, Instant};

use a2o::protocol::Dialect;
use a2o::server::ServeConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod common;
use common::{http, start};

fn config(upstream: &str, protocol: Dialect) -> ServeConfig {
    ServeConfig {
        host: "127.0.0.1".into(),
        anthropic_port: 0,
        openai_port: 0,
        upstream: upstream.trim_end_matches('/').into(),
        upstream_protocol: protocol,
        http_timeout: Duration::from_secs(5),
        max_retry_wait: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(5),
        ..ServeConfig::default()
    }
}

fn anthropic_message() -> Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 3}
    })
}

fn openai_completion() -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "gpt-x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!", "refusal": null}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    })
}

const ANTHROPIC_SSE: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

const OPENAI_SSE: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"gpt-x\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}\n\ndata: [DONE]\n\n";

fn sse(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/event-stream")
}

// ---------------------------------------------------------------------------------------------
// The four routes

#[tokio::test]
async fn openai_front_translates_to_anthropic_upstream() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "sk-ant-test"))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_json(json!({"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 50})))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_message()))
        .expect(1)
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", proxy.openai))
        .bearer_auth("sk-ant-test")
        .json(&json!({"model": "claude-x", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello!");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 10);
    assert!(!proxy.logs().contains("sk-ant-test"), "{}", proxy.logs());
    proxy.shutdown().await;
}

#[tokio::test]
async fn anthropic_passthrough_forwards_bytes_query_and_headers() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/messages"))
        .and(query_param("beta", "true"))
        .and(header("x-api-key", "k1"))
        .and(header("anthropic-beta", "tools-2024"))
        .and(header("anthropic-version", "2023-01-01"))
        .and(header("x-app", "cli"))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_message()))
        .mount(&upstream)
        .await;
    let proxy = start(config(
        &format!("{}/api", upstream.uri()),
        Dialect::Anthropic,
    ))
    .await;
    let raw = "{\"model\":\"claude-x\",  \"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"future_field\":{\"x\":1}}";
    let resp = http()
        .post(format!("{}/v1/messages?beta=true", proxy.anthropic))
        .header("x-api-key", "k1")
        .header("anthropic-beta", "tools-2024")
        .header("anthropic-version", "2023-01-01")
        .header("x-app", "cli")
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let received = upstream.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&received[0].body),
        raw,
        "pass-through must forward the exact bytes"
    );
    assert!(received[0].headers.get("authorization").is_none());
    proxy.shutdown().await;
}

#[tokio::test]
async fn anthropic_passthrough_applies_default_max_tokens() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_message()))
        .mount(&upstream)
        .await;
    let mut cfg = config(&upstream.uri(), Dialect::Anthropic);
    cfg.default_max_tokens = 1234;
    let proxy = start(cfg).await;
    let resp = http()
        .post(format!("{}/v1/messages", proxy.openai))
        .header("x-api-key", "k1")
        .json(&json!({"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let received = upstream.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(sent["max_tokens"], 1234);
    proxy.shutdown().await;
}

#[tokio::test]
async fn openai_passthrough_uses_bearer_and_drops_anthropic_headers() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-oa"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_completion()))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::OpenAi)).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", proxy.anthropic))
        .header("x-api-key", "sk-oa")
        .header("anthropic-beta", "x")
        .json(&json!({"model": "gpt-x", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), openai_completion());
    let received = upstream.received_requests().await.unwrap();
    assert!(received[0].headers.get("anthropic-beta").is_none());
    assert!(received[0].headers.get("x-api-key").is_none());
    proxy.shutdown().await;
}

#[tokio::test]
async fn anthropic_front_translates_to_openai_upstream_and_always_asks_for_usage() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-oa"))
        .respond_with(sse(OPENAI_SSE))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::OpenAi)).await;
    let resp = http()
        .post(format!("{}/v1/messages", proxy.anthropic))
        .header("x-api-key", "sk-oa")
        .header("anthropic-beta", "secret-beta")
        .json(&json!({"model": "gpt-x", "max_tokens": 20, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    a2o::stream::validate::validate_anthropic_bytes(text.as_bytes())
        .unwrap_or_else(|v| panic!("{v}\n{text}"));
    assert!(text.contains("\"text\":\"Hello\""), "{text}");
    assert!(text.contains("\"output_tokens\":2"), "{text}");
    let received = upstream.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(sent["max_completion_tokens"], 20);
    assert!(received[0].headers.get("anthropic-beta").is_none());
    proxy.shutdown().await;
}

#[tokio::test]
async fn max_tokens_field_follows_the_setting() {
    use a2o::cli::MaxTokensField;
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(openai_completion()))
        .mount(&upstream)
        .await;
    for (setting, field, other) in [
        (
            MaxTokensField::MaxTokens,
            "max_tokens",
            "max_completion_tokens",
        ),
        (
            MaxTokensField::MaxCompletionTokens,
            "max_completion_tokens",
            "max_tokens",
        ),
        // A loopback upstream is not one known to ignore max_completion_tokens.
        (MaxTokensField::Auto, "max_completion_tokens", "max_tokens"),
    ] {
        let mut cfg = config(&upstream.uri(), Dialect::OpenAi);
        cfg.max_tokens_field = setting;
        let proxy = start(cfg).await;
        let resp = http()
            .post(format!("{}/v1/messages", proxy.anthropic))
            .header("x-api-key", "sk-oa")
            .json(&json!({"model": "gpt-x", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{setting:?}");
        let received = upstream.received_requests().await.unwrap();
        let sent: Value = serde_json::from_slice(&received.last().unwrap().body).unwrap();
        assert_eq!(sent[field], 20, "{setting:?}: {sent}");
        assert!(sent.get(other).is_none(), "{setting:?}: {sent}");
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn openai_front_streams_from_anthropic_upstream() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse(ANTHROPIC_SSE))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    for include_usage in [false, true] {
        let resp = http()
            .post(format!("{}/v1/chat/completions", proxy.openai))
            .bearer_auth("k")
            .json(&json!({"model": "claude-x", "stream": true, "stream_options": {"include_usage": include_usage},
                          "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        assert_eq!(resp.headers()["x-accel-buffering"], "no");
        let text = resp.text().await.unwrap();
        a2o::stream::validate::validate_openai_bytes(text.as_bytes())
            .unwrap_or_else(|v| panic!("{v}\n{text}"));
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        assert_eq!(text.contains("\"usage\":{"), include_usage, "{text}");
    }
    let received = upstream.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(sent["stream"], true);
    assert_eq!(
        sent["max_tokens"], 8192,
        "DEFAULT_MAX_TOKENS applies to translated requests"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn force_non_stream_synthesises_the_stream() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_message()))
        .mount(&upstream)
        .await;
    let mut cfg = config(&upstream.uri(), Dialect::Anthropic);
    cfg.force_non_stream = true;
    let proxy = start(cfg).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", proxy.openai))
        .bearer_auth("k")
        .json(&json!({"model": "claude-x", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    a2o::stream::validate::validate_openai_bytes(text.as_bytes())
        .unwrap_or_else(|v| panic!("{v}\n{text}"));
    assert!(text.contains("Hello!"), "{text}");
    let resp = http()
        .post(format!("{}/v1/messages", proxy.anthropic))
        .header("x-api-key", "k")
        .json(&json!({"model": "claude-x", "max_tokens": 9, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    a2o::stream::validate::validate_anthropic_bytes(text.as_bytes())
        .unwrap_or_else(|v| panic!("{v}\n{text}"));
    for request in upstream.received_requests().await.unwrap() {
        let sent: Value = serde_json::from_slice(&request.body).unwrap();
        assert_ne!(
            sent.get("stream"),
            Some(&json!(true)),
            "FORCE_NON_STREAM must not stream upstream: {sent}"
        );
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn missing_stream_means_false() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_message()))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", proxy.openai))
        .bearer_auth("k")
        .json(&json!({"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let sent: Value =
        serde_json::from_slice(&upstream.received_requests().await.unwrap()[0].body).unwrap();
    assert!(
        sent.get("stream").is_none() || sent["stream"] == false,
        "{sent}"
    );
    proxy.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Keys

async fn keys_seen(upstream: &MockServer, header_name: &str) -> Vec<String> {
    upstream
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.headers
                .get(header_name)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn key_pool_rotates_round_robin_across_requests() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_message()))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    for _ in 0..4 {
        let resp = http()
            .post(format!("{}/v1/chat/completions", proxy.openai))
            .bearer_auth("k1,k2,k3")
            .json(&json!({"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(
        keys_seen(&upstream, "x-api-key").await,
        ["k1", "k2", "k3", "k1"]
    );
    let logs = proxy.logs();
    for key in ["k1", "k2", "k3"] {
        assert!(
            !logs.contains(&format!("={key}")) && !logs.contains(&format!("\"{key}\"")),
            "{logs}"
        );
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn failover_on_429_and_529_before_the_first_byte() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-api-key", "k1"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0").set_body_json(
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
        ))
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(header("x-api-key", "k2"))
        .respond_with(ResponseTemplate::new(529).set_body_json(
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ))
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(header("x-api-key", "k3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_message()))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let resp = http()
        .post(format!("{}/v1/messages", proxy.anthropic))
        .header("x-api-key", "k1,k2,k3")
        .json(&json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(keys_seen(&upstream, "x-api-key").await, ["k1", "k2", "k3"]);
    proxy.shutdown().await;
}

#[tokio::test]
async fn all_keys_failing_gives_the_last_error_in_the_callers_dialect() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(529).set_body_json(
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", proxy.openai))
        .bearer_auth("k1,k2")
        .json(&json!({"model": "claude-x", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        503,
        "529 overloaded is 503 for OpenAI clients"
    );
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("all 2 keys failed") && message.ends_with("Overloaded"),
        "the client is told every key failed, and the last answer: {message}"
    );
    assert_eq!(upstream.received_requests().await.unwrap().len(), 2);
    assert!(
        proxy.logs().contains("all 2 keys failed"),
        "{}",
        proxy.logs()
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured_within_the_bound() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("x-api-key", "k1"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
        ))
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .and(header("x-api-key", "k2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(anthropic_message()))
        .mount(&upstream)
        .await;
    let mut cfg = config(&upstream.uri(), Dialect::Anthropic);
    cfg.max_retry_wait = Duration::from_millis(300);
    let proxy = start(cfg).await;
    let started = Instant::now();
    let resp = http()
        .post(format!("{}/v1/messages", proxy.anthropic))
        .header("x-api-key", "k1,k2")
        .json(&json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let elapsed = started.elapsed();
    // Waited for Retry-After, but only up to the 300 ms bound, never the full second.
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn no_failover_after_the_first_byte() {
    let upstream = MockServer::start().await;
    let truncated = &ANTHROPIC_SSE[..ANTHROPIC_SSE.find("event: content_block_stop").unwrap()];
    Mock::given(method("POST"))
        .respond_with(sse(truncated))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", proxy.openai))
        .bearer_auth("k1,k2")
        .json(&json!({"model": "claude-x", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("\"error\""),
        "a stream cut short ends with an in-band error: {text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1);
    proxy.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// a2o's own errors, in both dialects

async fn error_of(url: String, dialect: Dialect, req: reqwest::RequestBuilder) -> (u16, Value) {
    let _ = url;
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    match dialect {
        Dialect::OpenAi => {
            assert!(body["error"]["message"].is_string(), "{body}");
            assert!(
                body["error"].get("type").is_some() && body["error"].get("code").is_some(),
                "{body}"
            );
        }
        Dialect::Anthropic => {
            assert_eq!(body["type"], "error", "{body}");
            assert!(
                body["error"]["type"].is_string() && body["error"]["message"].is_string(),
                "{body}"
            );
        }
    }
    assert!(body.get("detail").is_none(), "{body}");
    (status, body)
}

#[tokio::test]
async fn own_errors_come_in_the_callers_dialect_with_real_statuses() {
    let upstream = MockServer::start().await;
    let mut cfg = config(&upstream.uri(), Dialect::Anthropic);
    cfg.body_limit = 1000;
    let proxy = start(cfg).await;
    for (base, path, dialect) in [
        (&proxy.openai, "/v1/chat/completions", Dialect::OpenAi),
        (&proxy.anthropic, "/v1/messages", Dialect::Anthropic),
    ] {
        let url = format!("{base}{path}");
        let c = http();
        let (status, _) = error_of(
            url.clone(),
            dialect,
            c.post(&url).json(&json!({"model": "m", "messages": []})),
        )
        .await;
        assert_eq!(status, 401, "missing key");
        let (status, body) = error_of(
            url.clone(),
            dialect,
            c.post(&url)
                .header("x-api-key", "k")
                .header("authorization", "Bearer k")
                .header("content-type", "application/json")
                .body("{\"model\": 3}"),
        )
        .await;
        assert_eq!(status, 400, "malformed body");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("model"), "names the field: {message}");
        let (status, _) = error_of(
            url.clone(),
            dialect,
            c.post(&url)
                .header("x-api-key", "k")
                .header("authorization", "Bearer k")
                .header("content-type", "application/json")
                .body("{nope"),
        )
        .await;
        assert_eq!(status, 400, "not JSON");
        let (status, _) = error_of(
            url.clone(),
            dialect,
            c.post(&url)
                .header("x-api-key", "k")
                .header("authorization", "Bearer k")
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
        assert_eq!(status, 415, "wrong content type");
        let (status, _) = error_of(
            url.clone(),
            dialect,
            c.post(&url)
                .header("x-api-key", "k")
                .header("authorization", "Bearer k")
                .header("content-type", "application/json")
                .body(vec![b' '; 5000]),
        )
        .await;
        assert_eq!(status, 413, "over the body limit");
        let (status, _) = error_of(url.clone(), dialect, c.get(format!("{base}/v2/nothing"))).await;
        assert_eq!(status, 404, "unknown route");
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_slow_upstream_is_504() {
    // A port that was free a moment ago: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = start(config(&format!("http://{closed}"), Dialect::Anthropic)).await;
    let url = format!("{}/v1/chat/completions", proxy.openai);
    let (status, body) = error_of(
        url.clone(),
        Dialect::OpenAi,
        http()
            .post(&url)
            .bearer_auth("sk-secret-key")
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})),
    )
    .await;
    assert_eq!(status, 502);
    assert!(!body.to_string().contains("sk-secret-key"));
    proxy.shutdown().await;

    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(anthropic_message())
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&upstream)
        .await;
    let mut cfg = config(&upstream.uri(), Dialect::Anthropic);
    cfg.http_timeout = Duration::from_millis(300);
    let proxy = start(cfg).await;
    let url = format!("{}/v1/messages", proxy.anthropic);
    let (status, _) = error_of(
        url.clone(),
        Dialect::Anthropic,
        http().post(&url).header("x-api-key", "k").json(
            &json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}),
        ),
    )
    .await;
    assert_eq!(status, 504);
    proxy.shutdown().await;
}

#[tokio::test]
async fn upstream_html_200_is_a_502_that_says_so() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("<html><body>Blocked by firewall</body></html>", "text/html"),
        )
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    for (url, dialect) in [
        (
            format!("{}/v1/chat/completions", proxy.openai),
            Dialect::OpenAi,
        ),
        (
            format!("{}/v1/messages", proxy.anthropic),
            Dialect::Anthropic,
        ),
    ] {
        let (status, body) = error_of(
            url.clone(),
            dialect,
            http().post(&url).header("x-api-key", "k").bearer_auth("k").json(&json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]})),
        )
        .await;
        assert_eq!(status, 502);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("text/html"),
            "{body}"
        );
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn upstream_errors_are_converted_with_status() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too big"}}),
        ))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let url = format!("{}/v1/chat/completions", proxy.openai);
    let (status, body) = error_of(
        url.clone(),
        Dialect::OpenAi,
        http()
            .post(&url)
            .bearer_auth("k")
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "max_tokens: too big");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    proxy.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Other endpoints

#[tokio::test]
async fn count_tokens_passes_through_or_estimates() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages/count_tokens"))
        .and(header("x-api-key", "k"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"input_tokens": 42})))
        .mount(&upstream)
        .await;
    let request = json!({"model": "m", "system": "You are terse.", "messages": [{"role": "user", "content": "Hello there"}]});
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let resp = http()
        .post(format!("{}/v1/messages/count_tokens", proxy.anthropic))
        .header("x-api-key", "k")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"input_tokens": 42})
    );
    proxy.shutdown().await;

    let proxy = start(config(&upstream.uri(), Dialect::OpenAi)).await;
    let resp = http()
        .post(format!("{}/v1/messages/count_tokens", proxy.openai))
        .header("x-api-key", "k")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let estimate = resp.json::<Value>().await.unwrap()["input_tokens"]
        .as_u64()
        .unwrap();
    assert!((5..50).contains(&estimate), "{estimate}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn models_health_root_and_head() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"type": "model", "id": "claude-a", "display_name": "Claude A", "created_at": "2025-01-01T00:00:00Z"}],
            "has_more": false, "first_id": "claude-a", "last_id": "claude-a"
        })))
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let list: Value = http()
        .get(format!("{}/v1/models", proxy.openai))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"][0]["id"], "claude-a");
    let list: Value = http()
        .get(format!("{}/v1/models", proxy.anthropic))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["display_name"], "Claude A");

    // `models.retrieve`: one model from the same list, in the client's dialect, or a 404.
    let model: Value = http()
        .get(format!("{}/v1/models/claude-a", proxy.openai))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        model,
        json!({"id": "claude-a", "object": "model", "created": 0, "owned_by": "a2o"})
    );
    let model: Value = http()
        .get(format!("{}/v1/models/claude-a", proxy.anthropic))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(model["type"], "model");
    assert_eq!(model["display_name"], "Claude A");
    assert_eq!(
        model["created_at"], "2025-01-01T00:00:00Z",
        "the upstream's own object"
    );
    for (front, dialect) in [
        (&proxy.openai, Dialect::OpenAi),
        (&proxy.anthropic, Dialect::Anthropic),
    ] {
        let resp = http()
            .get(format!("{front}/v1/models/no-such-model"))
            .header("x-api-key", "k")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        let body: Value = resp.json().await.unwrap();
        let message = match dialect {
            Dialect::OpenAi => body["error"]["message"].as_str(),
            Dialect::Anthropic => {
                assert_eq!(body["type"], "error");
                body["error"]["message"].as_str()
            }
        };
        assert!(
            message.is_some_and(|m| m.contains("no-such-model")),
            "{body}"
        );
    }
    let health = http()
        .get(format!("{}/health", proxy.anthropic))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let root: Value = http()
        .get(format!("{}/", proxy.openai))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["name"], "a2o");
    assert_eq!(root["front"], "openai");
    let head = http()
        .head(format!("{}/", proxy.anthropic))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    // Two lists and four retrievals asked the upstream's list; /health never reaches it.
    assert_eq!(upstream.received_requests().await.unwrap().len(), 6);
    proxy.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Raw upstreams: stalls, disconnects, shutdown

/// An upstream that answers one request with SSE headers and `first` and then holds the
/// connection open. It reports when the proxy closes that connection.
async fn stalling_upstream(first: &'static str) -> (String, tokio::sync::oneshot::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 65536];
        let mut seen = Vec::new();
        // Read the whole request: headers, then Content-Length bytes of body.
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if seen.len() >= end + 4 + len {
                    break;
                }
            }
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n",
            first.len()
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        // Hold the connection until the proxy drops it.
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = closed_tx.send(());
    });
    (format!("http://{addr}"), closed_rx)
}

const FIRST_EVENT: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";

#[tokio::test]
async fn idle_upstream_stream_ends_with_an_in_band_error() {
    let (url, _closed) = stalling_upstream(FIRST_EVENT).await;
    let mut cfg = config(&url, Dialect::Anthropic);
    cfg.http_timeout = Duration::from_millis(400);
    let proxy = start(cfg).await;
    let resp = http()
        .post(format!("{}/v1/chat/completions", proxy.openai))
        .bearer_auth("k")
        .json(&json!({"model": "claude-x", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(30), resp.text())
        .await
        .expect("the stream ends")
        .unwrap();
    assert!(text.contains("sent nothing"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn first_event_is_forwarded_before_the_upstream_finishes() {
    let (url, _closed) = stalling_upstream(FIRST_EVENT).await;
    let proxy = start(config(&url, Dialect::Anthropic)).await;
    let mut resp = http()
        .post(format!("{}/v1/messages", proxy.anthropic))
        .header("x-api-key", "k")
        .json(&json!({"model": "claude-x", "max_tokens": 5, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    // The upstream holds the rest back for as long as the connection lives: this only passes
    // if the first event is relayed without waiting for more.
    let chunk = tokio::time::timeout(Duration::from_secs(4), resp.chunk())
        .await
        .expect("first event relayed")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&chunk).contains("message_start"));
    drop(resp);
    proxy.shutdown().await;
}

#[tokio::test]
async fn client_disconnect_closes_the_upstream_connection() {
    let (url, closed) = stalling_upstream(FIRST_EVENT).await;
    let proxy = start(config(&url, Dialect::Anthropic)).await;
    let mut resp = http()
        .post(format!("{}/v1/chat/completions", proxy.openai))
        .bearer_auth("k")
        .json(&json!({"model": "claude-x", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let _ = resp.chunk().await.unwrap();
    drop(resp);
    tokio::time::timeout(Duration::from_secs(1), closed)
        .await
        .expect("upstream closed within 1 s")
        .unwrap();
    proxy.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(anthropic_message())
                .set_delay(Duration::from_millis(500)),
        )
        .mount(&upstream)
        .await;
    let proxy = start(config(&upstream.uri(), Dialect::Anthropic)).await;
    let url = format!("{}/v1/messages", proxy.anthropic);
    let in_flight = tokio::spawn(async move {
        http()
            .post(url)
            .header("x-api-key", "k")
            .json(&json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    // Shut down once the request has reached the upstream.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.received_requests().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "request never arrived");
        tokio::task::yield_now().await;
    }
    let anthropic = proxy.anthropic.clone();
    proxy.shutdown().await;
    assert_eq!(
        in_flight
            .await
            .unwrap()
            .expect("in-flight request completed"),
        200
    );
    assert!(
        http()
            .get(format!("{anthropic}/health"))
            .send()
            .await
            .is_err(),
        "no longer listening"
    );
}
