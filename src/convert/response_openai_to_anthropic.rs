//! OpenAI Chat Completions response → Anthropic Messages response, for Anthropic clients of an
//! OpenAI upstream. Also owns the usage mapping and the content helpers (tool arguments to
//! `input`, `thinking_blocks` entries to blocks) that the OpenAI → Anthropic stream machine
//! reuses.

use serde::Deserialize;
use serde_json::Value;

use super::losses::escape_pointer;
use super::response_anthropic_to_openai::{carries_information, reasoning_text};
use super::{vocab, ConvertError, Losses, ResponseContext};
use crate::protocol::anthropic::{self, ContentBlock};
use crate::protocol::{openai, Extra};

/// Key under which tool arguments that are not a JSON object reach the client, unparsed.
pub const RAW_ARGUMENTS_KEY: &str = "_a2o_raw_arguments";

/// Converts a whole OpenAI response; see the `convert` module docs for the conventions.
pub fn response(
    resp: openai::ChatResponse,
    ctx: &ResponseContext,
    losses: &mut Losses,
) -> Result<anthropic::MessagesResponse, ConvertError> {
    // `object` is implied by the shape, and an Anthropic message has no timestamp: the client's
    // clock is as good as `created`, so neither is worth a loss on every response.
    let openai::ChatResponse {
        id,
        object: _,
        created: _,
        model,
        choices,
        usage: source_usage,
        system_fingerprint,
        service_tier,
        extra,
    } = resp;

    let mut choices = choices.into_iter();
    let Some(first) = choices.next() else {
        return Err(ConvertError::new("choices", "the response has no choices"));
    };
    for index in 1..=choices.len() {
        losses.dropped(
            format!("/choices/{index}"),
            "an Anthropic message holds one answer; only choice 0 is kept",
        );
    }
    let (content, stop_reason, stop_sequence) = choice(first, &id, ctx, losses);

    let usage = match &source_usage {
        Some(source) => usage(source, losses, "/usage"),
        None => {
            losses.synthesized("/usage", "upstream sent no usage; token counts are 0");
            anthropic::Usage {
                input_tokens: Some(0),
                cache_creation_input_tokens: Some(0),
                cache_read_input_tokens: Some(0),
                output_tokens: Some(0),
                extra: Extra::new(),
            }
        }
    };
    if let Some(fingerprint) = system_fingerprint {
        losses.dropped(
            "/system_fingerprint",
            format!("Anthropic has no system fingerprint ({fingerprint:?})"),
        );
    }
    // "default" is what every ordinary request gets, so it says nothing.
    if let Some(tier) = service_tier.filter(|tier| tier != "default") {
        losses.dropped(
            "/service_tier",
            format!("service tier {tier:?} has no Anthropic response field"),
        );
    }
    losses.dropped_extra("", &extra, "Anthropic");

    let model = match (&ctx.client_model, &ctx.requested_model) {
        (Some(client), _) => client.clone(),
        (None, Some(requested)) if model.is_empty() => {
            losses.synthesized("/model", "upstream named no model; sent the requested one");
            requested.clone()
        }
        (None, _) => model,
    };

    Ok(anthropic::MessagesResponse {
        id,
        kind: "message".to_owned(),
        role: "assistant".to_owned(),
        model,
        content,
        stop_reason: Some(stop_reason.to_owned()),
        stop_sequence,
        usage,
        extra: Extra::new(),
    })
}

/// OpenAI usage → Anthropic usage: `input_tokens` = prompt − cached (OpenAI's prompt count
/// includes the cached part), `cache_read_input_tokens` = cached, no cache writes.
///
/// Extra counters (audio, predictions, providers' own) are reported only when non-zero.
pub fn usage(usage: &openai::Usage, losses: &mut Losses, path: &str) -> anthropic::Usage {
    // `total_tokens` is prompt + completion, which Anthropic clients add up themselves.
    let openai::Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: _,
        prompt_tokens_details,
        completion_tokens_details,
        extra,
    } = usage;
    let mut cached = 0;
    if let Some(openai::PromptTokensDetails {
        cached_tokens,
        extra,
    }) = prompt_tokens_details
    {
        let details_path = format!("{path}/prompt_tokens_details");
        cached = cached_tokens.unwrap_or(0);
        if cached > *prompt_tokens {
            losses.approximated(
                format!("{details_path}/cached_tokens"),
                format!("{cached} cached tokens exceed {prompt_tokens} prompt tokens; input_tokens is 0"),
            );
        }
        drop_informative(extra, losses, &details_path);
    }
    if let Some(openai::CompletionTokensDetails {
        reasoning_tokens,
        extra,
    }) = completion_tokens_details
    {
        let details_path = format!("{path}/completion_tokens_details");
        if let Some(reasoning) = reasoning_tokens.filter(|&n| n > 0) {
            losses.dropped(
                format!("{details_path}/reasoning_tokens"),
                format!("Anthropic has no reasoning token count; the {reasoning} reasoning tokens are included in output_tokens"),
            );
        }
        drop_informative(extra, losses, &details_path);
    }
    drop_informative(extra, losses, path);
    anthropic::Usage {
        input_tokens: Some(prompt_tokens.saturating_sub(cached)),
        cache_creation_input_tokens: Some(0),
        cache_read_input_tokens: Some(cached),
        output_tokens: Some(*completion_tokens),
        extra: Extra::new(),
    }
}

/// A `tool_use` input for a tool call's `arguments`: the parsed JSON object. Empty arguments
/// become `{}`; anything else that is not a JSON object is kept as text under
/// [`RAW_ARGUMENTS_KEY`], because dropping the call would orphan it (Anthropic rejects a turn
/// whose `tool_use` has no `tool_result`).
pub fn tool_input(arguments: &str, losses: &mut Losses, path: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Extra::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        parsed => {
            let problem = if parsed.is_ok() {
                "are not a JSON object"
            } else {
                "are not valid JSON"
            };
            losses.approximated(
                format!("{path}/arguments"),
                format!("tool arguments {problem}; passed as text under `{RAW_ARGUMENTS_KEY}`"),
            );
            let mut raw = Extra::new();
            raw.insert(
                RAW_ARGUMENTS_KEY.to_owned(),
                Value::String(arguments.to_owned()),
            );
            Value::Object(raw)
        }
    }
}

/// One `thinking_blocks` entry as an Anthropic block. Only thinking and redacted_thinking
/// blocks are accepted; anything else is reported and skipped.
pub fn thinking_block(value: &Value, losses: &mut Losses, path: &str) -> Option<ContentBlock> {
    let block = match value.get("index") {
        Some(_) => ContentBlock::deserialize(super::without_entry_index(value.clone())),
        None => ContentBlock::deserialize(value),
    };
    match block {
        Ok(block @ (ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_))) => Some(block),
        Ok(other) => {
            losses.dropped(
                path,
                format!("`{}` is not a thinking block", other.type_name()),
            );
            None
        }
        Err(err) => {
            losses.dropped(path, format!("not a valid thinking block: {err}"));
            None
        }
    }
}

/// An id for a tool call the upstream left without one: stable for the same response, and
/// distinct per call.
pub fn synthesized_tool_id(response_id: &str, index: usize) -> String {
    let hash = vocab::stable_hash(format!("{response_id}\u{0}{index}").as_bytes());
    format!("toolu_a2o_{hash:016x}")
}

/// The content blocks, stop reason and stop sequence of choice 0.
fn choice(
    choice: openai::Choice,
    response_id: &str,
    ctx: &ResponseContext,
    losses: &mut Losses,
) -> (Vec<ContentBlock>, &'static str, Option<String>) {
    const BASE: &str = "/choices/0";
    let openai::Choice {
        index: _,
        message,
        finish_reason,
        logprobs,
        extra,
    } = choice;
    if logprobs.as_ref().is_some_and(|value| !value.is_null()) {
        losses.dropped(
            format!("{BASE}/logprobs"),
            "Anthropic responses have no log probabilities",
        );
    }

    let mut matched_stop: Option<String> = None;
    for (key, value) in &extra {
        let key_path = format!("{BASE}/{}", escape_pointer(key));
        match (key.as_str(), value) {
            // vLLM (`stop_reason`) and SGLang (`matched_stop`) name the stop string that ended
            // the turn; null means the model simply finished.
            ("stop_reason" | "matched_stop", Value::Null) => {}
            ("stop_reason" | "matched_stop", Value::String(sequence))
                if ctx.stop_sequences.contains(sequence) =>
            {
                matched_stop = Some(sequence.clone());
            }
            ("stop_reason" | "matched_stop", other) => {
                losses.dropped(
                    key_path,
                    format!("stopped on {other}, which is not one of the request's stop sequences"),
                );
            }
            _ => losses.dropped(key_path, format!("`{key}` has no Anthropic equivalent")),
        }
    }

    let (content, refused) = message_content(message, response_id, ctx, losses);
    let has_tool_use = content
        .iter()
        .any(|block| matches!(block, ContentBlock::ToolUse(_)));

    let finish = finish_reason.unwrap_or_else(|| {
        losses.synthesized(
            format!("{BASE}/finish_reason"),
            "no finish_reason; taken as `stop`",
        );
        "stop".to_owned()
    });
    let (mapped, exact) = vocab::stop_reason_for(&finish, has_tool_use);
    if !exact {
        losses.approximated(
            format!("{BASE}/finish_reason"),
            format!("`{finish}` has no exact Anthropic equivalent; sent stop_reason `{mapped}`"),
        );
    }
    let (stop_reason, stop_sequence) = match (mapped, matched_stop) {
        // Tool calls win over a refusal: a client that is not told to run them would leave
        // the `tool_use` blocks without results, which Anthropic rejects on the next turn.
        (_, _) if refused && !has_tool_use => ("refusal", None),
        ("end_turn", Some(sequence)) if finish == "stop" => ("stop_sequence", Some(sequence)),
        (mapped, _) => (mapped, None),
    };
    (content, stop_reason, stop_sequence)
}

/// The message's blocks in Anthropic order (thinking, text, refusal, tool calls), and whether
/// the message was a refusal.
fn message_content(
    message: openai::ResponseMessage,
    response_id: &str,
    ctx: &ResponseContext,
    losses: &mut Losses,
) -> (Vec<ContentBlock>, bool) {
    const BASE: &str = "/choices/0/message";
    // `role` is always "assistant".
    let openai::ResponseMessage {
        role: _,
        content,
        refusal,
        tool_calls,
        reasoning_content,
        thinking_blocks,
        annotations,
        mut extra,
    } = message;
    let reasoning_field = if reasoning_content.is_some() {
        "reasoning_content"
    } else {
        "reasoning"
    };
    let reasoning_content = super::take_reasoning(reasoning_content, &mut extra, BASE, losses);
    let mut blocks = Vec::new();

    match thinking_blocks.filter(|entries| !entries.is_empty()) {
        Some(entries) => {
            for (index, entry) in entries.iter().enumerate() {
                if let Some(block) =
                    thinking_block(entry, losses, &format!("{BASE}/thinking_blocks/{index}"))
                {
                    blocks.push(block);
                }
            }
            let carried = reasoning_text(blocks.iter().filter_map(|block| match block {
                ContentBlock::Thinking(thinking) => Some(thinking.thinking.as_str()),
                _ => None,
            }));
            if let Some(reasoning) = reasoning_content.filter(|text| !text.is_empty()) {
                if carried.as_deref() != Some(reasoning.as_str()) {
                    losses.dropped(
                        format!("{BASE}/{reasoning_field}"),
                        "the reasoning differs from the thinking_blocks' text; the blocks were kept",
                    );
                }
            }
        }
        None => {
            if let Some(reasoning) = reasoning_content.filter(|text| !text.is_empty()) {
                losses.approximated(
                    format!("{BASE}/{reasoning_field}"),
                    "the reasoning has no signature; sent as a thinking block with an empty signature",
                );
                blocks.push(ContentBlock::Thinking(anthropic::ThinkingBlock {
                    thinking: reasoning,
                    signature: String::new(),
                    extra: Extra::new(),
                }));
            }
        }
    }

    if let Some(text) = content.filter(|text| !text.is_empty()) {
        blocks.push(text_block(text));
    }
    if annotations.as_ref().is_some_and(|list| !list.is_empty()) {
        losses.dropped(
            format!("{BASE}/annotations"),
            "Anthropic text blocks carry no OpenAI annotations",
        );
    }
    let refusal = refusal.filter(|text| !text.is_empty());
    let refused = refusal.is_some();
    if let Some(refusal) = refusal {
        losses.approximated(
            format!("{BASE}/refusal"),
            "the refusal is sent as a text block",
        );
        blocks.push(text_block(refusal));
    }

    for (index, call) in tool_calls.into_iter().flatten().enumerate() {
        let path = format!("{BASE}/tool_calls/{index}");
        // `type` is "function" for every call that parsed into this shape.
        let openai::ToolCall {
            id,
            kind: _,
            function,
            extra,
        } = call;
        let openai::FunctionCall {
            name,
            arguments,
            extra: function_extra,
        } = function;
        losses.dropped_extra(&path, &extra, "Anthropic");
        losses.dropped_extra(&format!("{path}/function"), &function_extra, "Anthropic");
        let id = if id.is_empty() {
            losses.synthesized(
                format!("{path}/id"),
                "tool call without an id; one was made up",
            );
            synthesized_tool_id(response_id, index)
        } else {
            id
        };
        blocks.push(tool_use_block(
            id,
            &name,
            tool_input(&arguments, losses, &format!("{path}/function")),
            ctx,
        ));
    }

    for (key, value) in &extra {
        let key_path = format!("{BASE}/{}", escape_pointer(key));
        match (key.as_str(), legacy_function_call(value)) {
            // The pre-tools `function_call` is one tool call by another name.
            ("function_call", Some((name, arguments))) => {
                losses.synthesized(
                    format!("{key_path}/id"),
                    "legacy function_call has no id; one was made up",
                );
                let id = synthesized_tool_id(response_id, usize::MAX);
                let input = tool_input(arguments, losses, &key_path);
                blocks.push(tool_use_block(id, name, input, ctx));
            }
            ("function_call", None) if value.is_null() => {}
            _ => losses.dropped(key_path, format!("`{key}` has no Anthropic equivalent")),
        }
    }
    (blocks, refused)
}

fn legacy_function_call(value: &Value) -> Option<(&str, &str)> {
    let name = value.get("name")?.as_str()?;
    let arguments = value.get("arguments").and_then(Value::as_str).unwrap_or("");
    Some((name, arguments))
}

fn text_block(text: String) -> ContentBlock {
    ContentBlock::Text(anthropic::TextBlock {
        text,
        citations: None,
        cache_control: None,
        extra: Extra::new(),
    })
}

fn tool_use_block(id: String, name: &str, input: Value, ctx: &ResponseContext) -> ContentBlock {
    ContentBlock::ToolUse(anthropic::ToolUseBlock {
        id,
        name: ctx.tool_names.restore(name).to_owned(),
        input,
        cache_control: None,
        extra: Extra::new(),
    })
}

fn drop_informative(extra: &Extra, losses: &mut Losses, base: &str) {
    for (key, value) in extra.iter().filter(|(_, value)| carries_information(value)) {
        losses.dropped(
            format!("{base}/{}", escape_pointer(key)),
            format!("usage `{key}` ({value}) has no Anthropic equivalent"),
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::convert::{response_anthropic_to_openai, LossKind, ToolNames};

    fn ctx() -> ResponseContext {
        ResponseContext {
            created: Some(1_700_000_000),
            ..Default::default()
        }
    }

    fn convert_with(source: Value, ctx: &ResponseContext) -> (Value, Losses) {
        let resp: openai::ChatResponse = serde_json::from_value(source).expect("valid response");
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

    fn openai_response(message: Value, finish_reason: &str) -> Value {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_731_368_630, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        })
    }

    #[test]
    fn text_response() {
        let (out, losses) = convert(openai_response(
            json!({"role": "assistant", "content": "This is a test.", "refusal": null, "annotations": []}),
            "stop",
        ));
        assert_eq!(
            out,
            json!({
                "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o-mini",
                "content": [{"type": "text", "text": "This is a test."}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 5}
            })
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn thinking_blocks_win_over_reasoning_content() {
        let thinking =
            json!({"type": "thinking", "thinking": "Step one.", "signature": "EqQBCkYIBxgC"});
        let redacted = json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"});
        let (out, losses) = convert(openai_response(
            json!({
                "role": "assistant", "content": "Done.", "reasoning_content": "Step one.",
                "thinking_blocks": [thinking, redacted, {"type": "text", "text": "stray"}]
            }),
            "stop",
        ));
        assert_eq!(
            out["content"],
            json!([thinking, redacted, {"type": "text", "text": "Done."}])
        );
        assert_eq!(
            kinds(&losses),
            [(
                "/choices/0/message/thinking_blocks/2".to_owned(),
                LossKind::Dropped
            )]
        );
    }

    #[test]
    fn reasoning_content_alone_becomes_an_unsigned_thinking_block() {
        let (out, losses) = convert(openai_response(
            json!({"role": "assistant", "content": "42", "reasoning_content": "Think hard."}),
            "stop",
        ));
        assert_eq!(
            out["content"],
            json!([{"type": "thinking", "thinking": "Think hard.", "signature": ""}, {"type": "text", "text": "42"}])
        );
        assert_eq!(
            kinds(&losses),
            [(
                "/choices/0/message/reasoning_content".to_owned(),
                LossKind::Approximated
            )]
        );
        assert!(losses
            .iter()
            .next()
            .is_some_and(|loss| loss.reason.contains("signature")));
    }

    #[test]
    fn vllm_and_openrouter_reasoning_field_is_reasoning_too() {
        // vLLM (after renaming the field) and OpenRouter send `reasoning`.
        let (out, losses) = convert(openai_response(
            json!({"role": "assistant", "content": "42", "reasoning": "Think hard."}),
            "stop",
        ));
        assert_eq!(
            out["content"],
            json!([{"type": "thinking", "thinking": "Think hard.", "signature": ""}, {"type": "text", "text": "42"}])
        );
        assert_eq!(
            kinds(&losses),
            [(
                "/choices/0/message/reasoning".to_owned(),
                LossKind::Approximated
            )]
        );
        // vLLM's compatibility mode sends both, with the same text: one thinking block.
        let (out, losses) = convert(openai_response(
            json!({"role": "assistant", "content": "42", "reasoning": "Same.", "reasoning_content": "Same."}),
            "stop",
        ));
        assert_eq!(out["content"][0]["thinking"], "Same.");
        assert_eq!(out["content"].as_array().map(Vec::len), Some(2));
        assert_eq!(kinds(&losses).len(), 1, "only the missing signature");
        // Different texts: reasoning_content wins, and the other is reported.
        let (out, losses) = convert(openai_response(
            json!({"role": "assistant", "content": "42", "reasoning": "B", "reasoning_content": "A"}),
            "stop",
        ));
        assert_eq!(out["content"][0]["thinking"], "A");
        assert!(kinds(&losses)
            .contains(&("/choices/0/message/reasoning".to_owned(), LossKind::Dropped)));
    }

    #[test]
    fn tool_calls_become_tool_use_with_restored_names() {
        let long = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_here";
        let short = vocab::target_tool_name(long).into_owned();
        let ctx = ResponseContext {
            tool_names: ToolNames::from_names([long]),
            ..ctx()
        };
        let (out, losses) = convert_with(
            openai_response(
                json!({
                    "role": "assistant", "content": "", "refusal": null,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": short, "arguments": "{\"location\": \"Boston\"}"}},
                        {"id": "call_2", "type": "function", "function": {"name": "noop", "arguments": ""}},
                        {"id": "call_3", "type": "function", "function": {"name": "broken", "arguments": "{\"a\": "}},
                        {"id": "call_4", "type": "function", "function": {"name": "listy", "arguments": "[1]"}}
                    ]
                }),
                "tool_calls",
            ),
            &ctx,
        );
        assert_eq!(
            out["content"],
            json!([
                {"type": "tool_use", "id": "call_1", "name": long, "input": {"location": "Boston"}},
                {"type": "tool_use", "id": "call_2", "name": "noop", "input": {}},
                {"type": "tool_use", "id": "call_3", "name": "broken", "input": {"_a2o_raw_arguments": "{\"a\": "}},
                {"type": "tool_use", "id": "call_4", "name": "listy", "input": {"_a2o_raw_arguments": "[1]"}}
            ])
        );
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(
            kinds(&losses),
            [
                (
                    "/choices/0/message/tool_calls/2/function/arguments".to_owned(),
                    LossKind::Approximated
                ),
                (
                    "/choices/0/message/tool_calls/3/function/arguments".to_owned(),
                    LossKind::Approximated
                ),
            ]
        );
    }

    #[test]
    fn stop_with_tool_calls_is_tool_use() {
        let (out, losses) = convert(openai_response(
            json!({"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]}),
            "stop",
        ));
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(
            out["content"][0],
            json!({"type": "text", "text": "Let me check."})
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn every_finish_reason() {
        let cases = [
            ("stop", "end_turn", None),
            ("length", "max_tokens", None),
            ("tool_calls", "tool_use", None),
            ("function_call", "tool_use", None),
            ("content_filter", "refusal", None),
            (
                "insufficient_system_resource",
                "end_turn",
                Some(LossKind::Approximated),
            ),
        ];
        for (finish, stop_reason, loss) in cases {
            let (out, losses) = convert(openai_response(
                json!({"role": "assistant", "content": "x"}),
                finish,
            ));
            assert_eq!(out["stop_reason"], stop_reason, "{finish}");
            let expected: Vec<_> = loss
                .map(|kind| ("/choices/0/finish_reason".to_owned(), kind))
                .into_iter()
                .collect();
            assert_eq!(kinds(&losses), expected, "{finish}");
        }
    }

    #[test]
    fn vllm_stop_reason_names_the_stop_sequence() {
        let ctx = ResponseContext {
            stop_sequences: vec!["Paris".to_owned(), "END".to_owned()],
            ..ctx()
        };
        let mut source = openai_response(
            json!({"role": "assistant", "content": "The capital is "}),
            "stop",
        );
        source["choices"][0]["stop_reason"] = json!("Paris");
        let (out, losses) = convert_with(source.clone(), &ctx);
        assert_eq!(
            (&out["stop_reason"], &out["stop_sequence"]),
            (&json!("stop_sequence"), &json!("Paris"))
        );
        assert!(losses.is_empty(), "{losses:?}");

        source["choices"][0]["stop_reason"] = json!(128_001);
        let (out, losses) = convert_with(source.clone(), &ctx);
        assert_eq!(
            (&out["stop_reason"], &out["stop_sequence"]),
            (&json!("end_turn"), &Value::Null)
        );
        assert_eq!(
            kinds(&losses),
            [("/choices/0/stop_reason".to_owned(), LossKind::Dropped)]
        );

        source["choices"][0]["stop_reason"] = Value::Null;
        let (out, losses) = convert_with(source, &ctx);
        assert_eq!(out["stop_reason"], "end_turn");
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn refusal_becomes_text_with_stop_reason_refusal() {
        let (out, losses) = convert(openai_response(
            json!({"role": "assistant", "content": "", "refusal": "I'm very sorry, but I can't assist with that request.", "annotations": []}),
            "stop",
        ));
        assert_eq!(
            out["content"],
            json!([{"type": "text", "text": "I'm very sorry, but I can't assist with that request."}])
        );
        assert_eq!(out["stop_reason"], "refusal");
        assert_eq!(
            kinds(&losses),
            [(
                "/choices/0/message/refusal".to_owned(),
                LossKind::Approximated
            )]
        );
    }

    #[test]
    fn extra_choices_are_dropped() {
        let mut source = openai_response(json!({"role": "assistant", "content": "A"}), "stop");
        let second = json!({"index": 1, "message": {"role": "assistant", "content": "B"}, "finish_reason": "stop"});
        let third = json!({"index": 2, "message": {"role": "assistant", "content": "C"}, "finish_reason": "stop"});
        source["choices"]
            .as_array_mut()
            .expect("array")
            .extend([second, third]);
        let (out, losses) = convert(source);
        assert_eq!(out["content"], json!([{"type": "text", "text": "A"}]));
        assert_eq!(
            kinds(&losses),
            [
                ("/choices/1".to_owned(), LossKind::Dropped),
                ("/choices/2".to_owned(), LossKind::Dropped)
            ]
        );
    }

    #[test]
    fn no_choices_is_an_error() {
        let mut source = openai_response(json!({}), "stop");
        source["choices"] = json!([]);
        let resp: openai::ChatResponse = serde_json::from_value(source).expect("valid response");
        let err = response(resp, &ctx(), &mut Losses::new()).expect_err("no choices");
        assert_eq!(err.path, "choices");
    }

    #[test]
    fn usage_with_cached_and_reasoning_tokens() {
        let source: openai::Usage = serde_json::from_value(json!({
            "prompt_tokens": 160, "completion_tokens": 228, "total_tokens": 388,
            "prompt_tokens_details": {"cached_tokens": 100, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 3}
        }))
        .expect("usage");
        let mut losses = Losses::new();
        let out = serde_json::to_value(usage(&source, &mut losses, "/usage")).expect("serialises");
        assert_eq!(
            out,
            json!({"input_tokens": 60, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 228})
        );
        assert_eq!(
            kinds(&losses),
            [
                (
                    "/usage/completion_tokens_details/reasoning_tokens".to_owned(),
                    LossKind::Dropped
                ),
                (
                    "/usage/completion_tokens_details/rejected_prediction_tokens".to_owned(),
                    LossKind::Dropped
                ),
            ]
        );
        assert!(losses
            .iter()
            .next()
            .is_some_and(|loss| loss.reason.contains("included in output_tokens")));
    }

    #[test]
    fn cached_beyond_prompt_saturates() {
        let source = openai::Usage {
            prompt_tokens: 10,
            completion_tokens: 1,
            prompt_tokens_details: Some(openai::PromptTokensDetails {
                cached_tokens: Some(20),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut losses = Losses::new();
        let out = usage(&source, &mut losses, "/usage");
        assert_eq!(
            (out.input_tokens, out.cache_read_input_tokens),
            (Some(0), Some(20))
        );
        assert_eq!(
            kinds(&losses),
            [(
                "/usage/prompt_tokens_details/cached_tokens".to_owned(),
                LossKind::Approximated
            )]
        );
    }

    #[test]
    fn missing_usage_is_synthesized_and_extras_dropped() {
        let mut source = openai_response(
            json!({"role": "assistant", "content": "x", "annotations": [{"type": "url_citation"}], "audio": null}),
            "stop",
        );
        source.as_object_mut().expect("object").remove("usage");
        source["system_fingerprint"] = json!("fp_0ba0d124f1");
        source["service_tier"] = json!("flex");
        source["choices"][0]["logprobs"] = json!({"content": []});
        source["prompt_filter_results"] = json!([]);
        let (out, losses) = convert(source);
        assert_eq!(
            out["usage"],
            json!({"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0})
        );
        assert_eq!(
            kinds(&losses),
            [
                ("/choices/0/logprobs".to_owned(), LossKind::Dropped),
                (
                    "/choices/0/message/annotations".to_owned(),
                    LossKind::Dropped
                ),
                ("/choices/0/message/audio".to_owned(), LossKind::Dropped),
                ("/usage".to_owned(), LossKind::Synthesized),
                ("/system_fingerprint".to_owned(), LossKind::Dropped),
                ("/service_tier".to_owned(), LossKind::Dropped),
                ("/prompt_filter_results".to_owned(), LossKind::Dropped),
            ]
        );
    }

    #[test]
    fn missing_tool_call_id_and_legacy_function_call() {
        let (out, losses) = convert(openai_response(
            json!({
                "role": "assistant", "content": null,
                "tool_calls": [{"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                "function_call": {"name": "g", "arguments": "{\"x\":1}"}
            }),
            "function_call",
        ));
        let content = out["content"].as_array().expect("array");
        assert_eq!(content.len(), 2);
        assert!(content[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("toolu_a2o_")));
        assert_eq!(
            (&content[1]["name"], &content[1]["input"]),
            (&json!("g"), &json!({"x": 1}))
        );
        assert_ne!(content[0]["id"], content[1]["id"]);
        assert_eq!(out["stop_reason"], "tool_use");
        assert_eq!(
            kinds(&losses),
            [
                (
                    "/choices/0/message/tool_calls/0/id".to_owned(),
                    LossKind::Synthesized
                ),
                (
                    "/choices/0/message/function_call/id".to_owned(),
                    LossKind::Synthesized
                ),
            ]
        );
    }

    /// Anthropic → OpenAI → Anthropic keeps text, thinking (signature included),
    /// redacted_thinking and tool_use blocks byte for byte.
    #[test]
    fn anthropic_round_trip_keeps_blocks() {
        let content = json!([
            {"type": "thinking", "thinking": "Weather needs a tool.\n\"Quoted\" ü", "signature": "EqQBCkYIBxgCKkBm+/=="},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/=="},
            {"type": "text", "text": "Let me check the weather."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "Paris", "days": 3, "units": {"t": "C"}, "f": 1.5}}
        ]);
        let source = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": content,
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 5}
        });
        let original: anthropic::MessagesResponse = serde_json::from_value(source).expect("valid");
        let mut losses = Losses::new();
        let openai = response_anthropic_to_openai::response(original.clone(), &ctx(), &mut losses)
            .expect("to openai");
        let back = response(openai, &ctx(), &mut losses).expect("back");
        assert!(losses.is_empty(), "{losses:?}");
        assert_eq!(
            serde_json::to_string(&back.content).expect("json"),
            serde_json::to_string(&original.content).expect("json")
        );
        assert_eq!(
            (back.stop_reason.as_deref(), back.id.as_str()),
            (Some("tool_use"), "msg_1")
        );
        assert_eq!(back.usage, original.usage);
    }

    /// OpenAI → Anthropic → OpenAI keeps text, tool calls and usage.
    #[test]
    fn openai_round_trip_keeps_text_tool_calls_and_usage() {
        let message = json!({
            "role": "assistant", "content": "Checking both.", "refusal": null,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Seattle, WA\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\"}"}}
            ]
        });
        let mut source = openai_response(message.clone(), "tool_calls");
        source["created"] = json!(1_700_000_000);
        source["usage"] = json!({
            "prompt_tokens": 160, "completion_tokens": 5, "total_tokens": 165,
            "prompt_tokens_details": {"cached_tokens": 100}
        });
        let original: openai::ChatResponse = serde_json::from_value(source.clone()).expect("valid");
        let mut losses = Losses::new();
        let anthropic = response(original, &ctx(), &mut losses).expect("to anthropic");
        assert_eq!(
            (
                anthropic.usage.input_tokens,
                anthropic.usage.cache_read_input_tokens
            ),
            (Some(60), Some(100))
        );
        let back =
            response_anthropic_to_openai::response(anthropic, &ctx(), &mut losses).expect("back");
        assert!(losses.is_empty(), "{losses:?}");
        let back = serde_json::to_value(back).expect("json");
        assert_eq!(back["choices"][0]["message"], message);
        assert_eq!(back["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(back["usage"], source["usage"]);
    }
}
