//! Is a response well-formed for its dialect, whatever was expected of it? Streams go through
//! the stream validators (`crate::stream::validate`); JSON bodies are checked here for the
//! keys and types each dialect's API reference makes required (an error body has the
//! dialect's error shape, a message or completion has its required keys, and so on). Every
//! finding names the JSON path and says what was wanted, because this is what a user reads
//! when an SDK chokes.

use serde_json::{Map, Value};

use crate::protocol::Dialect;
use crate::stream::validate::{validate_anthropic_bytes, validate_openai_bytes};

/// What a 2xx JSON body should be, from the request's route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A chat completion or a message, by dialect.
    Response,
    CountTokens,
    Models,
    /// A route whose success body has no dialect grammar (`/health`, `/`).
    Other,
}

impl BodyKind {
    pub fn for_route(route: &str) -> BodyKind {
        match route {
            "/v1/chat/completions" | "/v1/messages" => BodyKind::Response,
            "/v1/messages/count_tokens" => BodyKind::CountTokens,
            "/v1/models" => BodyKind::Models,
            _ => BodyKind::Other,
        }
    }
}

/// Whether a content type announces an SSE stream.
pub fn is_event_stream(content_type: &str) -> bool {
    content_type
        .to_ascii_lowercase()
        .contains("text/event-stream")
}

/// Checks a whole response. The error is one sentence naming the first problem.
pub fn check_response(
    dialect: Dialect,
    kind: BodyKind,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    if is_event_stream(content_type) {
        return check_stream(dialect, body);
    }
    let error = status >= 400;
    if !error && (kind == BodyKind::Other || status == 204 || body.is_empty() && status < 300) {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let what = if error { "error body" } else { "body" };
        let ct = if content_type.is_empty() {
            "no content type".to_owned()
        } else {
            format!("`{content_type}`")
        };
        format!("the {what} is not JSON ({ct}: {e}); the SDKs cannot parse it")
    })?;
    if error {
        check_error(dialect, &value)
    } else {
        check_body(dialect, kind, &value)
    }
}

/// Checks an SSE stream with the dialect's stream validator.
pub fn check_stream(dialect: Dialect, body: &[u8]) -> Result<(), String> {
    let result = match dialect {
        Dialect::OpenAi => validate_openai_bytes(body),
        Dialect::Anthropic => validate_anthropic_bytes(body),
    };
    result.map_err(|violation| violation.to_string())
}

/// Checks a 2xx JSON body.
pub fn check_body(dialect: Dialect, kind: BodyKind, value: &Value) -> Result<(), String> {
    match (dialect, kind) {
        (_, BodyKind::Other) => Ok(()),
        (Dialect::OpenAi, BodyKind::Response) => check_chat_completion(value),
        (Dialect::Anthropic, BodyKind::Response) => check_message(value),
        (_, BodyKind::CountTokens) => {
            let body = object(value, "")?;
            integer(body, "", "input_tokens").map(drop)
        }
        (Dialect::OpenAi, BodyKind::Models) => check_openai_models(value),
        (Dialect::Anthropic, BodyKind::Models) => check_anthropic_models(value),
    }
}

/// Checks an error body: `{"error":{"message","type","param","code"}}` for OpenAI,
/// `{"type":"error","error":{"type","message"}}` for Anthropic.
pub fn check_error(dialect: Dialect, value: &Value) -> Result<(), String> {
    let body = object(value, "").map_err(|e| format!("error {e}"))?;
    match dialect {
        Dialect::OpenAi => {
            let error = object_field(body, "", "error")?;
            string(error, "error", "message")?;
            string(error, "error", "type")?;
            nullable(error, "error", "param", &["string"])?;
            nullable(error, "error", "code", &["string", "number"])?;
        }
        Dialect::Anthropic => {
            constant(body, "", "type", "error")?;
            let error = object_field(body, "", "error")?;
            string(error, "error", "type")?;
            string(error, "error", "message")?;
        }
    }
    Ok(())
}

const FINISH_REASONS: &[&str] = &[
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
];

const STOP_REASONS: &[&str] = &[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
];

fn check_chat_completion(value: &Value) -> Result<(), String> {
    let body = object(value, "")?;
    string(body, "", "id")?;
    constant(body, "", "object", "chat.completion")?;
    integer(body, "", "created")?;
    string(body, "", "model")?;
    let choices = array_field(body, "", "choices")?;
    for (i, choice) in choices.iter().enumerate() {
        let at = format!("choices[{i}]");
        let choice = object(choice, &at)?;
        integer(choice, &at, "index")?;
        one_of(choice, &at, "finish_reason", FINISH_REASONS)?;
        nullable(choice, &at, "logprobs", &["object"])?;
        let message = object_field(choice, &at, "message")?;
        let at = format!("{at}.message");
        constant(message, &at, "role", "assistant")?;
        nullable(message, &at, "content", &["string"])?;
        nullable(message, &at, "refusal", &["string"])?;
        if let Some(calls) = message.get("tool_calls") {
            let calls = as_array(calls, &format!("{at}.tool_calls"))?;
            for (j, call) in calls.iter().enumerate() {
                let at = format!("{at}.tool_calls[{j}]");
                let call = object(call, &at)?;
                string(call, &at, "id")?;
                constant(call, &at, "type", "function")?;
                let function = object_field(call, &at, "function")?;
                let at = format!("{at}.function");
                string(function, &at, "name")?;
                let arguments = string(function, &at, "arguments")?;
                if serde_json::from_str::<Value>(arguments).is_err() {
                    return Err(format!(
                        "`{at}.arguments` is not valid JSON; the tool's caller cannot parse it"
                    ));
                }
            }
        }
    }
    if let Some(usage) = body.get("usage").filter(|u| !u.is_null()) {
        let usage = object(usage, "usage")?;
        for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
            integer(usage, "usage", key)?;
        }
    }
    Ok(())
}

fn check_message(value: &Value) -> Result<(), String> {
    let body = object(value, "")?;
    string(body, "", "id")?;
    constant(body, "", "type", "message")?;
    constant(body, "", "role", "assistant")?;
    string(body, "", "model")?;
    match body.get("stop_reason") {
        None => return Err("`stop_reason` is missing".to_owned()),
        Some(Value::Null) => {}
        Some(_) => one_of(body, "", "stop_reason", STOP_REASONS)?,
    }
    nullable(body, "", "stop_sequence", &["string"])?;
    let usage = object_field(body, "", "usage")?;
    integer(usage, "usage", "input_tokens")?;
    integer(usage, "usage", "output_tokens")?;
    let content = array_field(body, "", "content")?;
    for (i, block) in content.iter().enumerate() {
        let at = format!("content[{i}]");
        let block = object(block, &at)?;
        match string(block, &at, "type")? {
            "text" => string(block, &at, "text").map(drop)?,
            "thinking" => {
                string(block, &at, "thinking")?;
                string(block, &at, "signature").map_err(|e| {
                    format!("{e}; without it the next turn fails with \"Invalid signature\"")
                })?;
            }
            "redacted_thinking" => string(block, &at, "data").map(drop)?,
            "tool_use" | "server_tool_use" => {
                string(block, &at, "id")?;
                string(block, &at, "name")?;
                object_field(block, &at, "input")?;
            }
            // Anthropic asks clients to tolerate block types they don't know.
            _ => {}
        }
    }
    Ok(())
}

fn check_openai_models(value: &Value) -> Result<(), String> {
    let body = object(value, "")?;
    constant(body, "", "object", "list")?;
    let data = array_field(body, "", "data")?;
    for (i, model) in data.iter().enumerate() {
        let at = format!("data[{i}]");
        let model = object(model, &at)?;
        string(model, &at, "id")?;
        constant(model, &at, "object", "model")?;
        integer(model, &at, "created")?;
        string(model, &at, "owned_by")?;
    }
    Ok(())
}

fn check_anthropic_models(value: &Value) -> Result<(), String> {
    let body = object(value, "")?;
    let data = array_field(body, "", "data")?;
    for (i, model) in data.iter().enumerate() {
        let at = format!("data[{i}]");
        let model = object(model, &at)?;
        constant(model, &at, "type", "model")?;
        string(model, &at, "id")?;
        string(model, &at, "display_name")?;
        string(model, &at, "created_at")?;
    }
    match body.get("has_more") {
        Some(Value::Bool(_)) => {}
        Some(other) => {
            return Err(format!(
                "`has_more` is {}, expected a boolean",
                describe(other)
            ))
        }
        None => return Err("`has_more` is missing".to_owned()),
    }
    nullable(body, "", "first_id", &["string"])?;
    nullable(body, "", "last_id", &["string"])?;
    Ok(())
}

/// Validates one saved response for `--validate`: an SSE transcript or a JSON document
/// (a response, an error body, a `count_tokens` answer or a model list, told apart by their
/// keys). Returns a one-line description of what was found valid.
pub fn validate_transcript(dialect: Dialect, bytes: &[u8], sse: bool) -> Result<String, String> {
    let dialect_name = match dialect {
        Dialect::OpenAi => "OpenAI Chat Completions",
        Dialect::Anthropic => "Anthropic Messages",
    };
    if sse {
        check_stream(dialect, bytes)?;
        let (events, _) = super::case::events_from_sse(bytes);
        return Ok(format!("{dialect_name} stream, {} events", events.len()));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("the file is neither an SSE stream nor valid JSON: {e}"))?;
    let has = |key: &str| value.get(key).is_some();
    let type_is = |name: &str| value.get("type").and_then(Value::as_str) == Some(name);
    let is_error = match dialect {
        Dialect::OpenAi => has("error"),
        Dialect::Anthropic => type_is("error") || has("error"),
    };
    if is_error {
        check_error(dialect, &value)?;
        return Ok(format!("{dialect_name} error body"));
    }
    let kind = guess_kind(dialect, &value);
    let looks_like_success = match dialect {
        Dialect::OpenAi => has("choices") || has("object"),
        Dialect::Anthropic => type_is("message") || kind != BodyKind::Response,
    };
    if let Err(as_body) = check_body(dialect, kind, &value) {
        if looks_like_success {
            return Err(as_body);
        }
        let as_error = check_error(dialect, &value)
            .err()
            .unwrap_or_else(|| "it is one".to_owned());
        return Err(format!(
            "neither a valid response ({as_body}) nor a valid {dialect_name} error body ({as_error})"
        ));
    }
    let what = match (kind, dialect) {
        (BodyKind::CountTokens, _) => "count_tokens answer",
        (BodyKind::Models, _) => "model list",
        (_, Dialect::OpenAi) => "chat completion",
        (_, Dialect::Anthropic) => "message",
    };
    Ok(format!("{dialect_name} {what}"))
}

fn guess_kind(dialect: Dialect, value: &Value) -> BodyKind {
    let has = |key: &str| value.get(key).is_some();
    match dialect {
        Dialect::OpenAi if value.get("object").and_then(Value::as_str) == Some("list") => {
            BodyKind::Models
        }
        Dialect::Anthropic if has("input_tokens") && !has("type") => BodyKind::CountTokens,
        Dialect::Anthropic if has("data") && !has("type") => BodyKind::Models,
        _ => BodyKind::Response,
    }
}

// ---------------------------------------------------------------------------------------------
// Field helpers: each names the path of what is wrong.

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("the boolean {flag}"),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) if text.chars().count() <= 40 => format!("the string {text:?}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, String> {
    value.as_object().ok_or_else(|| {
        if at.is_empty() {
            format!("body is {}, not a JSON object", describe(value))
        } else {
            format!("`{at}` is {}, expected an object", describe(value))
        }
    })
}

fn get<'a>(map: &'a Map<String, Value>, at: &str, key: &str) -> Result<&'a Value, String> {
    map.get(key)
        .ok_or_else(|| format!("`{}` is missing", join(at, key)))
}

fn object_field<'a>(
    map: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<&'a Map<String, Value>, String> {
    object(get(map, at, key)?, &join(at, key))
}

fn as_array<'a>(value: &'a Value, at: &str) -> Result<&'a Vec<Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("`{at}` is {}, expected an array", describe(value)))
}

fn array_field<'a>(
    map: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<&'a Vec<Value>, String> {
    as_array(get(map, at, key)?, &join(at, key))
}

fn string<'a>(map: &'a Map<String, Value>, at: &str, key: &str) -> Result<&'a str, String> {
    let value = get(map, at, key)?;
    value.as_str().ok_or_else(|| {
        format!(
            "`{}` is {}, expected a string",
            join(at, key),
            describe(value)
        )
    })
}

fn integer(map: &Map<String, Value>, at: &str, key: &str) -> Result<u64, String> {
    let value = get(map, at, key)?;
    value.as_u64().ok_or_else(|| {
        format!(
            "`{}` is {}, expected a non-negative integer",
            join(at, key),
            describe(value)
        )
    })
}

fn constant(map: &Map<String, Value>, at: &str, key: &str, expected: &str) -> Result<(), String> {
    let value = get(map, at, key)?;
    if value.as_str() == Some(expected) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is {}, expected \"{expected}\"",
            join(at, key),
            describe(value)
        ))
    }
}

fn one_of(map: &Map<String, Value>, at: &str, key: &str, allowed: &[&str]) -> Result<(), String> {
    let value = get(map, at, key)?;
    match value.as_str() {
        Some(text) if allowed.contains(&text) => Ok(()),
        _ => Err(format!(
            "`{}` is {}, expected one of {}",
            join(at, key),
            describe(value),
            allowed.join(", ")
        )),
    }
}

/// The key must be present, and `null` or of one of the JSON types named.
fn nullable(map: &Map<String, Value>, at: &str, key: &str, types: &[&str]) -> Result<(), String> {
    let value = get(map, at, key)?;
    let kind = match value {
        Value::Null => return Ok(()),
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if types.contains(&kind) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is {}, expected {} or null",
            join(at, key),
            describe(value),
            types.join(" or ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_need_their_dialects_shape() {
        let openai = json!({"error": {"message": "m", "type": "t", "param": null, "code": null}});
        assert_eq!(check_error(Dialect::OpenAi, &openai), Ok(()));
        let anthropic = json!({"type": "error", "error": {"type": "t", "message": "m"}});
        assert_eq!(check_error(Dialect::Anthropic, &anthropic), Ok(()));
        assert_eq!(
            check_error(Dialect::OpenAi, &anthropic),
            Err("`error.param` is missing".to_owned())
        );
        assert_eq!(
            check_error(Dialect::Anthropic, &json!({"detail": "x"})),
            Err("`type` is missing".to_owned())
        );
    }

    #[test]
    fn messages_and_completions_need_their_required_keys() {
        let message = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": [{"type": "thinking", "thinking": "t"}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 1, "output_tokens": 2}
        });
        let err = check_body(Dialect::Anthropic, BodyKind::Response, &message).unwrap_err();
        assert!(
            err.starts_with("`content[0].signature` is missing"),
            "{err}"
        );
        let completion = json!({
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
                         "message": {"role": "assistant", "content": "x", "refusal": null,
                                     "tool_calls": [{"id": "call_1", "type": "function",
                                                     "function": {"name": "f", "arguments": "{\"a\""}}]}}]
        });
        let err = check_body(Dialect::OpenAi, BodyKind::Response, &completion).unwrap_err();
        assert!(
            err.contains("choices[0].message.tool_calls[0].function.arguments"),
            "{err}"
        );
    }

    #[test]
    fn non_json_error_bodies_are_reported() {
        let err = check_response(
            Dialect::OpenAi,
            BodyKind::Response,
            502,
            "text/html",
            b"<html>",
        )
        .unwrap_err();
        assert!(
            err.starts_with("the error body is not JSON (`text/html`"),
            "{err}"
        );
    }

    #[test]
    fn transcripts_are_told_apart() {
        let ok = validate_transcript(Dialect::Anthropic, br#"{"input_tokens": 3}"#, false);
        assert_eq!(ok, Ok("Anthropic Messages count_tokens answer".to_owned()));
        let err = validate_transcript(Dialect::OpenAi, b"data: {\"x\":1}\n\n", true).unwrap_err();
        assert!(err.starts_with("event 0: "), "{err}");
        let err =
            validate_transcript(Dialect::Anthropic, br#"{"detail":"boom"}"#, false).unwrap_err();
        assert_eq!(
            err,
            "neither a valid response (`id` is missing) nor a valid Anthropic Messages error body \
             (`type` is missing)"
        );
    }
}
