//! Anthropic Messages response → OpenAI Chat Completions response, for OpenAI clients of an
//! Anthropic upstream. Also owns the usage mapping and the small content helpers (tool
//! arguments, thinking text) that the Anthropic → OpenAI stream machine reuses, so a streamed
//! and a whole response of the same message say the same thing.

use serde_json::Value;

use super::losses::escape_pointer;
use super::{vocab, ConvertError, Losses, ResponseContext};
use crate::protocol::anthropic::{self, ContentBlock};
use crate::protocol::openai;

/// Converts a whole Anthropic response; see the `convert` module docs for the conventions.
pub fn response(
    resp: anthropic::MessagesResponse,
    ctx: &ResponseContext,
    losses: &mut Losses,
) -> Result<openai::ChatResponse, ConvertError> {
    // `type` is always "message" and `role` always "assistant": both are implied by the
    // OpenAI shape, so there is nothing to carry.
    let anthropic::MessagesResponse {
        id,
        kind: _,
        role: _,
        model,
        content,
        stop_reason,
        stop_sequence,
        usage: source_usage,
        extra,
    } = resp;

    let message = message(content, ctx, losses);
    let has_tool_calls = message.tool_calls.is_some();
    let finish_reason = finish_reason(
        stop_reason.as_deref(),
        stop_sequence.as_deref(),
        has_tool_calls,
        losses,
    );
    let model = model_or_requested(model, ctx, losses);
    let usage = usage(&source_usage, losses, "/usage");
    losses.dropped_extra("", &extra, "OpenAI");

    Ok(openai::ChatResponse {
        id,
        object: "chat.completion".to_owned(),
        created: ctx.created_or_now(),
        model,
        choices: vec![openai::Choice {
            index: 0,
            message,
            finish_reason: Some(finish_reason.to_owned()),
            logprobs: None,
            extra: Default::default(),
        }],
        usage: Some(usage),
        system_fingerprint: None,
        service_tier: None,
        extra: Default::default(),
    })
}

/// Anthropic usage → OpenAI usage: `prompt_tokens` = input + cache read + cache creation, so
/// it counts the whole prompt as OpenAI does, and `cached_tokens` = cache read.
///
/// A missing `input_tokens` or `output_tokens` counts as 0 and is reported as synthesized; a
/// stream machine should merge `message_start` and `message_delta` usage before calling this.
pub fn usage(usage: &anthropic::Usage, losses: &mut Losses, path: &str) -> openai::Usage {
    let anthropic::Usage {
        input_tokens,
        cache_creation_input_tokens,
        cache_read_input_tokens,
        output_tokens,
        extra,
    } = usage;
    let input = input_tokens.unwrap_or_else(|| {
        losses.synthesized(
            format!("{path}/input_tokens"),
            "no `input_tokens`; counted as 0",
        );
        0
    });
    let output = output_tokens.unwrap_or_else(|| {
        losses.synthesized(
            format!("{path}/output_tokens"),
            "no `output_tokens`; counted as 0",
        );
        0
    });
    let cache_read = cache_read_input_tokens.unwrap_or(0);
    let cache_creation = cache_creation_input_tokens.unwrap_or(0);
    if cache_creation > 0 {
        losses.approximated(
            format!("{path}/cache_creation_input_tokens"),
            format!("{cache_creation} cache-write tokens are counted in `prompt_tokens`; OpenAI has no cache-write count"),
        );
    }
    // Newer responses split output tokens; thinking tokens are OpenAI's reasoning tokens.
    let mut reasoning_tokens = None;
    for (key, value) in extra {
        let key_path = format!("{path}/{}", escape_pointer(key));
        match key.as_str() {
            "output_tokens_details" => {
                let details = value.as_object();
                reasoning_tokens = details.and_then(|d| d.get("thinking_tokens")).and_then(Value::as_u64);
                for (detail, detail_value) in details.into_iter().flatten() {
                    if detail != "thinking_tokens" && carries_information(detail_value) {
                        losses.dropped(
                            format!("{key_path}/{}", escape_pointer(detail)),
                            format!("usage `{key}.{detail}` ({detail_value}) has no OpenAI equivalent"),
                        );
                    }
                }
                if details.is_none() && carries_information(value) {
                    losses.dropped(key_path, format!("usage `{key}` ({value}) has no OpenAI equivalent"));
                }
            }
            // "standard" is what every ordinary request gets, so it says nothing.
            "service_tier" if value.as_str() == Some("standard") || value.is_null() => {}
            "cache_creation" | "server_tool_use" | "inference_geo" | "service_tier" if !carries_information(value) => {}
            "cache_creation" => losses.dropped(
                key_path,
                format!("cache writes by lifetime ({value}) have no OpenAI equivalent; their total is in `prompt_tokens`"),
            ),
            _ => losses.dropped(key_path, format!("usage `{key}` ({value}) has no OpenAI equivalent")),
        }
    }
    let prompt = input
        .saturating_add(cache_read)
        .saturating_add(cache_creation);
    let prompt_tokens_details = (cache_read_input_tokens.is_some()
        || cache_creation_input_tokens.is_some())
    .then(|| openai::PromptTokensDetails {
        cached_tokens: Some(cache_read),
        extra: Default::default(),
    });
    openai::Usage {
        prompt_tokens: prompt,
        completion_tokens: output,
        total_tokens: prompt.saturating_add(output),
        prompt_tokens_details,
        completion_tokens_details: reasoning_tokens.map(|tokens| openai::CompletionTokensDetails {
            reasoning_tokens: Some(tokens),
            extra: Default::default(),
        }),
        extra: Default::default(),
    }
}

/// Whether a usage value says anything beyond "nothing happened": null, zero, false, empty
/// strings and containers of such values carry no information, so dropping them is no loss.
pub fn carries_information(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64() != Some(0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => items.iter().any(carries_information),
        Value::Object(fields) => fields.values().any(carries_information),
    }
}

/// A tool call's `arguments` for a `tool_use` input: compact JSON text. An absent input
/// (`null`) becomes `{}`, which is what a tool without parameters receives.
pub fn tool_arguments(input: &Value, losses: &mut Losses, path: &str) -> String {
    if input.is_null() {
        losses.synthesized(
            format!("{path}/input"),
            "tool_use without `input`; sent arguments `{}`",
        );
        return "{}".to_owned();
    }
    input.to_string()
}

/// `reasoning_content` for a message's thinking texts: the non-empty ones joined by a blank
/// line, or `None` when there are none (signature-only and redacted blocks have no text).
pub fn reasoning_text<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let texts: Vec<&str> = texts.into_iter().filter(|text| !text.is_empty()).collect();
    (!texts.is_empty()).then(|| texts.join("\n\n"))
}

/// A thinking or redacted_thinking block as the JSON carried in `thinking_blocks`.
pub fn thinking_block_value(block: &ContentBlock) -> Value {
    // Serialising a block cannot fail: it holds only JSON values and string-keyed maps.
    serde_json::to_value(block).unwrap_or(Value::Null)
}

fn message(
    content: Vec<ContentBlock>,
    ctx: &ResponseContext,
    losses: &mut Losses,
) -> openai::ResponseMessage {
    let mut text: Option<String> = None;
    let mut thinking_texts: Vec<String> = Vec::new();
    let mut thinking_blocks: Vec<Value> = Vec::new();
    let mut tool_calls: Vec<openai::ToolCall> = Vec::new();

    for (index, block) in content.into_iter().enumerate() {
        let path = format!("/content/{index}");
        match block {
            ContentBlock::Text(anthropic::TextBlock {
                text: block_text,
                citations,
                cache_control,
                extra,
            }) => {
                text.get_or_insert_with(String::new).push_str(&block_text);
                if citations.is_some() {
                    losses.dropped(
                        format!("{path}/citations"),
                        "OpenAI chat messages have no citations",
                    );
                }
                if cache_control.is_some() {
                    losses.dropped(
                        format!("{path}/cache_control"),
                        "OpenAI responses have no cache_control",
                    );
                }
                losses.dropped_extra(&path, &extra, "OpenAI");
            }
            ContentBlock::Thinking(block) => {
                thinking_texts.push(block.thinking.clone());
                thinking_blocks.push(thinking_block_value(&ContentBlock::Thinking(block)));
            }
            block @ ContentBlock::RedactedThinking(_) => {
                thinking_blocks.push(thinking_block_value(&block))
            }
            ContentBlock::ToolUse(anthropic::ToolUseBlock {
                id,
                name,
                input,
                cache_control,
                extra,
            }) => {
                if cache_control.is_some() {
                    losses.dropped(
                        format!("{path}/cache_control"),
                        "OpenAI tool calls have no cache_control",
                    );
                }
                losses.dropped_extra(&path, &extra, "OpenAI");
                tool_calls.push(openai::ToolCall {
                    id,
                    kind: "function".to_owned(),
                    function: openai::FunctionCall {
                        name: ctx.tool_names.restore(&name).to_owned(),
                        arguments: tool_arguments(&input, losses, &path),
                        extra: Default::default(),
                    },
                    extra: Default::default(),
                });
            }
            // Server tools (web search, code execution…) ran upstream; their calls, results and
            // any block a response should not contain have no place in an OpenAI message.
            other => {
                let kind = other.type_name().to_owned();
                losses.dropped(path, format!("`{kind}` block has no OpenAI equivalent"));
            }
        }
    }

    openai::ResponseMessage {
        role: "assistant".to_owned(),
        content: text,
        refusal: None,
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        reasoning_content: reasoning_text(thinking_texts.iter().map(String::as_str)),
        thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
        annotations: None,
        extra: Default::default(),
    }
}

fn finish_reason(
    stop_reason: Option<&str>,
    stop_sequence: Option<&str>,
    has_tool_calls: bool,
    losses: &mut Losses,
) -> &'static str {
    let finish = stop_reason_to_finish(stop_reason, has_tool_calls, losses);
    if let Some(sequence) = stop_sequence {
        losses.dropped(
            "/stop_sequence",
            format!("OpenAI cannot say which stop sequence matched ({sequence:?})"),
        );
    }
    finish
}

fn stop_reason_to_finish(
    stop_reason: Option<&str>,
    has_tool_calls: bool,
    losses: &mut Losses,
) -> &'static str {
    let Some(stop_reason) = stop_reason else {
        let finish = if has_tool_calls { "tool_calls" } else { "stop" };
        losses.synthesized(
            "/stop_reason",
            format!("no `stop_reason`; sent finish_reason `{finish}`"),
        );
        return finish;
    };
    let (finish, exact) = vocab::finish_reason_for(stop_reason);
    // A client that sees tool calls must be told to run them, whatever stopped the turn.
    if has_tool_calls && finish != "tool_calls" {
        losses.approximated(
            "/stop_reason",
            format!("`{stop_reason}` sent as finish_reason `tool_calls` because the message calls tools"),
        );
        return "tool_calls";
    }
    // And one that sees none must not be told to run any (the calls were of block types
    // OpenAI cannot carry): the SDKs' tool loops would find nothing to run.
    if !has_tool_calls && finish == "tool_calls" {
        losses.approximated(
            "/stop_reason",
            format!("`{stop_reason}` sent as finish_reason `stop` because no tool call could be carried"),
        );
        return "stop";
    }
    if !exact {
        losses.approximated(
            "/stop_reason",
            format!(
                "`{stop_reason}` has no exact OpenAI equivalent; sent finish_reason `{finish}`"
            ),
        );
    }
    finish
}

fn model_or_requested(model: String, ctx: &ResponseContext, losses: &mut Losses) -> String {
    if let Some(client) = &ctx.client_model {
        return client.clone();
    }
    match &ctx.requested_model {
        Some(requested) if model.is_empty() => {
            losses.synthesized("/model", "upstream named no model; sent the requested one");
            requested.clone()
        }
        _ => model,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::convert::{LossKind, ToolNames};

    fn ctx() -> ResponseContext {
        ResponseContext {
            created: Some(1_700_000_000),
            ..Default::default()
        }
    }

    fn convert_with(source: Value, ctx: &ResponseContext) -> (Value, Losses) {
        let resp: anthropic::MessagesResponse =
            serde_json::from_value(source).expect("valid response");
        let mut losses = Losses::new();
        let out = response(resp, ctx, &mut losses).expect("converts");
        (serde_json::to_value(out).expect("serialises"), losses)
    }

    fn convert(source: Value) -> (Value, Losses) {
        convert_with(source, &ctx())
    }

    fn kinds(losses: &Losses) -> Vec<(String, LossKind)> {
        losses
            .iter()
            .map(|loss| (loss.path.clone(), loss.kind))
            .collect()
    }

    fn anthropic_response(content: Value, stop_reason: &str) -> Value {
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 5}
        })
    }

    #[test]
    fn text_response() {
        let (out, losses) = convert(anthropic_response(
            json!([{"type": "text", "text": "Hello."}]),
            "end_turn",
        ));
        assert_eq!(
            out,
            json!({
                "id": "msg_1", "object": "chat.completion", "created": 1_700_000_000, "model": "claude-sonnet-4-5",
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello.", "refusal": null},
                    "finish_reason": "stop",
                    "logprobs": null
                }],
                "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
            })
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn text_blocks_are_concatenated_and_citations_dropped() {
        let (out, losses) = convert(anthropic_response(
            json!([
                {"type": "text", "text": "The weather: "},
                {"type": "text", "text": "sunny", "citations": [{"type": "web_search_result_location", "url": "https://x"}]},
                {"type": "text", "text": "."}
            ]),
            "end_turn",
        ));
        assert_eq!(
            out["choices"][0]["message"]["content"],
            "The weather: sunny."
        );
        assert_eq!(
            kinds(&losses),
            [("/content/1/citations".to_owned(), LossKind::Dropped)]
        );
    }

    #[test]
    fn no_text_means_null_content() {
        let (out, _) = convert(anthropic_response(
            json!([{"type": "tool_use", "id": "toolu_1", "name": "noop", "input": {}}]),
            "tool_use",
        ));
        assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
    }

    #[test]
    fn thinking_and_redacted_thinking_are_carried_verbatim() {
        let thinking =
            json!({"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIBxgC"});
        let signature_only =
            json!({"type": "thinking", "thinking": "", "signature": "EpwBCkYIBxgD"});
        let redacted = json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"});
        let second = json!({"type": "thinking", "thinking": "And again.", "signature": "sig2"});
        let (out, losses) = convert(anthropic_response(
            json!([thinking, signature_only, redacted, second, {"type": "text", "text": "Answer."}]),
            "end_turn",
        ));
        let message = &out["choices"][0]["message"];
        assert_eq!(message["reasoning_content"], "Let me think.\n\nAnd again.");
        assert_eq!(
            message["thinking_blocks"],
            json!([thinking, signature_only, redacted, second])
        );
        assert_eq!(message["content"], "Answer.");
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn tool_calls_restore_shortened_names() {
        let long = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_here";
        let short = vocab::target_tool_name(long).into_owned();
        let ctx = ResponseContext {
            tool_names: ToolNames::from_names([long, "files.read"]),
            ..ctx()
        };
        let dotted = vocab::target_tool_name("files.read").into_owned();
        let (out, losses) = convert_with(
            anthropic_response(
                json!([
                    {"type": "text", "text": "Calling tools."},
                    {"type": "tool_use", "id": "toolu_1", "name": short, "input": {"q": "a \"quoted\" ünï", "n": 2}},
                    {"type": "tool_use", "id": "toolu_2", "name": dotted, "input": {"path": "/tmp"}},
                    {"type": "tool_use", "id": "toolu_3", "name": "plain", "input": {}}
                ]),
                "tool_use",
            ),
            &ctx,
        );
        let message = &out["choices"][0]["message"];
        assert_eq!(message["content"], "Calling tools.");
        assert_eq!(
            message["tool_calls"],
            json!([
                {"id": "toolu_1", "type": "function", "function": {"name": long, "arguments": "{\"q\":\"a \\\"quoted\\\" ünï\",\"n\":2}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": "files.read", "arguments": "{\"path\":\"/tmp\"}"}},
                {"id": "toolu_3", "type": "function", "function": {"name": "plain", "arguments": "{}"}}
            ])
        );
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn every_stop_reason() {
        let cases = [
            ("end_turn", "stop", None),
            ("max_tokens", "length", None),
            // The content here is text only: with no tool call to run, `tool_use` is `stop`.
            ("tool_use", "stop", Some(LossKind::Approximated)),
            ("refusal", "content_filter", None),
            ("pause_turn", "stop", Some(LossKind::Approximated)),
            (
                "model_context_window_exceeded",
                "length",
                Some(LossKind::Approximated),
            ),
            ("something_new", "stop", Some(LossKind::Approximated)),
        ];
        for (stop_reason, finish, loss) in cases {
            let (out, losses) = convert(anthropic_response(
                json!([{"type": "text", "text": "x"}]),
                stop_reason,
            ));
            assert_eq!(out["choices"][0]["finish_reason"], finish, "{stop_reason}");
            let expected: Vec<_> = loss
                .map(|kind| ("/stop_reason".to_owned(), kind))
                .into_iter()
                .collect();
            assert_eq!(kinds(&losses), expected, "{stop_reason}");
        }
    }

    #[test]
    fn stop_sequence_is_reported() {
        let mut source = anthropic_response(
            json!([{"type": "text", "text": "The capital is "}]),
            "stop_sequence",
        );
        source["stop_sequence"] = json!("Paris");
        let (out, losses) = convert(source);
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            kinds(&losses),
            [("/stop_sequence".to_owned(), LossKind::Dropped)]
        );
        assert!(losses
            .iter()
            .next()
            .is_some_and(|loss| loss.reason.contains("\"Paris\"")));
    }

    #[test]
    fn tool_use_wins_over_other_stop_reasons() {
        let (out, losses) = convert(anthropic_response(
            json!([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]),
            "max_tokens",
        ));
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            kinds(&losses),
            [("/stop_reason".to_owned(), LossKind::Approximated)]
        );
    }

    #[test]
    fn usage_with_cache_tokens() {
        let mut losses = Losses::new();
        let source: anthropic::Usage = serde_json::from_value(json!({
            "input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 50, "output_tokens": 5,
            "cache_creation": {"ephemeral_5m_input_tokens": 50, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard",
            "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0}
        }))
        .expect("usage");
        let out = serde_json::to_value(usage(&source, &mut losses, "/usage")).expect("serialises");
        assert_eq!(
            out,
            json!({"prompt_tokens": 160, "completion_tokens": 5, "total_tokens": 165, "prompt_tokens_details": {"cached_tokens": 100}})
        );
        assert_eq!(
            kinds(&losses),
            [
                (
                    "/usage/cache_creation_input_tokens".to_owned(),
                    LossKind::Approximated
                ),
                ("/usage/cache_creation".to_owned(), LossKind::Dropped),
            ]
        );
    }

    #[test]
    fn usage_extras_are_reported_only_when_informative() {
        let mut losses = Losses::new();
        let source: anthropic::Usage = serde_json::from_value(json!({
            "input_tokens": 19859, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 544,
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
            "server_tool_use": {"web_fetch_requests": 0, "web_search_requests": 1},
            "service_tier": "priority",
            "inference_geo": null,
            "brand_new": 0
        }))
        .expect("usage");
        let out = usage(&source, &mut losses, "/usage");
        assert_eq!(
            (out.prompt_tokens, out.completion_tokens, out.total_tokens),
            (19859, 544, 20403)
        );
        assert_eq!(
            out.prompt_tokens_details.and_then(|d| d.cached_tokens),
            Some(0)
        );
        assert_eq!(
            kinds(&losses),
            [
                ("/usage/server_tool_use".to_owned(), LossKind::Dropped),
                ("/usage/service_tier".to_owned(), LossKind::Dropped),
                ("/usage/brand_new".to_owned(), LossKind::Dropped),
            ]
        );
    }

    #[test]
    fn usage_without_cache_fields_has_no_details() {
        let mut losses = Losses::new();
        let source = anthropic::Usage {
            output_tokens: Some(3),
            ..Default::default()
        };
        let out = usage(&source, &mut losses, "/usage");
        assert_eq!(
            (
                out.prompt_tokens,
                out.completion_tokens,
                out.prompt_tokens_details
            ),
            (0, 3, None)
        );
        assert_eq!(
            kinds(&losses),
            [("/usage/input_tokens".to_owned(), LossKind::Synthesized)]
        );
    }

    #[test]
    fn server_tool_blocks_and_extras_are_dropped() {
        let mut source = anthropic_response(
            json!([
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "weather"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "text", "text": "Sunny."}
            ]),
            "end_turn",
        );
        source["container"] = json!({"id": "container_1"});
        let (out, losses) = convert(source);
        assert_eq!(out["choices"][0]["message"]["content"], "Sunny.");
        assert_eq!(
            kinds(&losses),
            [
                ("/content/0".to_owned(), LossKind::Dropped),
                ("/content/1".to_owned(), LossKind::Dropped),
                ("/container".to_owned(), LossKind::Dropped),
            ]
        );
        let reasons: Vec<&str> = losses.iter().map(|loss| loss.reason.as_str()).collect();
        assert!(
            reasons[0].contains("server_tool_use") && reasons[1].contains("web_search_tool_result"),
            "{reasons:?}"
        );
    }

    #[test]
    fn empty_model_falls_back_to_the_requested_one() {
        let mut source = anthropic_response(json!([]), "end_turn");
        source["model"] = json!("");
        let ctx = ResponseContext {
            requested_model: Some("gpt-4o".to_owned()),
            ..ctx()
        };
        let (out, losses) = convert_with(source, &ctx);
        assert_eq!(out["model"], "gpt-4o");
        assert_eq!(
            kinds(&losses),
            [("/model".to_owned(), LossKind::Synthesized)]
        );
    }
}
