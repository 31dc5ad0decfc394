//! Streams made from whole responses, for `FORCE_NON_STREAM`: a2o asks the upstream for a
//! complete response, then replays it as the event sequence the upstream would have streamed,
//! so the rest of the pipeline (pass-through encoding or a stream machine) is the same as for
//! a real stream.

use serde_json::{Map, Value};

use super::OpenAiStreamItem;
use crate::protocol::anthropic::{
    self, BlockDelta, ContentBlock, ContentBlockDelta, ContentBlockStart, ContentBlockStop,
    MessageDelta, MessageDeltaBody, MessageStart, StreamEvent,
};
use crate::protocol::openai;

/// The Anthropic events that stream `response`: `message_start` with empty content, each block
/// started empty, filled by one delta and stopped, then `message_delta` and `message_stop`.
pub fn anthropic_events(response: anthropic::MessagesResponse) -> Vec<StreamEvent> {
    let anthropic::MessagesResponse {
        id,
        kind,
        role,
        model,
        content,
        stop_reason,
        stop_sequence,
        usage,
        extra,
    } = response;
    let start_usage = anthropic::Usage {
        output_tokens: Some(0),
        ..usage.clone()
    };
    let mut events = vec![StreamEvent::MessageStart(MessageStart {
        message: anthropic::MessagesResponse {
            id,
            kind,
            role,
            model,
            content: Vec::new(),
            stop_reason: None,
            stop_sequence: None,
            usage: start_usage,
            extra,
        },
        extra: Map::new(),
    })];
    for (index, block) in content.into_iter().enumerate() {
        let index = index as u64;
        let (start, delta) = split_block(block);
        events.push(StreamEvent::ContentBlockStart(ContentBlockStart {
            index,
            content_block: start,
            extra: Map::new(),
        }));
        for delta in delta {
            events.push(StreamEvent::ContentBlockDelta(ContentBlockDelta {
                index,
                delta,
                extra: Map::new(),
            }));
        }
        events.push(StreamEvent::ContentBlockStop(ContentBlockStop {
            index,
            extra: Map::new(),
        }));
    }
    events.push(StreamEvent::MessageDelta(MessageDelta {
        delta: MessageDeltaBody {
            stop_reason,
            stop_sequence,
            extra: Map::new(),
        },
        usage,
        extra: Map::new(),
    }));
    events.push(StreamEvent::MessageStop(anthropic::Empty::default()));
    events
}

/// A block as its `content_block_start` (emptied) plus the deltas that fill it.
fn split_block(block: ContentBlock) -> (ContentBlock, Vec<BlockDelta>) {
    match block {
        ContentBlock::Text(mut text) => {
            let full = std::mem::take(&mut text.text);
            let citations = text.citations.take();
            let mut deltas = Vec::new();
            if !full.is_empty() {
                deltas.push(BlockDelta::TextDelta(anthropic::TextDelta {
                    text: full,
                    extra: Map::new(),
                }));
            }
            for citation in citations
                .and_then(|c| c.as_array().cloned())
                .unwrap_or_default()
            {
                deltas.push(BlockDelta::CitationsDelta(anthropic::CitationsDelta {
                    citation,
                    extra: Map::new(),
                }));
            }
            (ContentBlock::Text(text), deltas)
        }
        ContentBlock::ToolUse(mut tool) => {
            let input = std::mem::replace(&mut tool.input, Value::Object(Map::new()));
            let partial_json = serde_json::to_string(&input).unwrap_or_else(|_| "{}".to_owned());
            (
                ContentBlock::ToolUse(tool),
                vec![BlockDelta::InputJsonDelta(anthropic::InputJsonDelta {
                    partial_json,
                    extra: Map::new(),
                })],
            )
        }
        ContentBlock::Thinking(mut thinking) => {
            let text = std::mem::take(&mut thinking.thinking);
            let signature = std::mem::take(&mut thinking.signature);
            let mut deltas = Vec::new();
            if !text.is_empty() {
                deltas.push(BlockDelta::ThinkingDelta(anthropic::ThinkingDelta {
                    thinking: text,
                    extra: Map::new(),
                }));
            }
            deltas.push(BlockDelta::SignatureDelta(anthropic::SignatureDelta {
                signature,
                extra: Map::new(),
            }));
            (ContentBlock::Thinking(thinking), deltas)
        }
        // Redacted thinking, server tools and anything unknown stream whole in their start.
        other => (other, Vec::new()),
    }
}

/// The OpenAI items that stream `response` (choice 0 and any others): a role chunk, one
/// content / reasoning / tool-call chunk each, the finish chunk, the usage chunk, `[DONE]`.
pub fn openai_items(response: openai::ChatResponse) -> Vec<OpenAiStreamItem> {
    let openai::ChatResponse {
        id,
        object: _,
        created,
        model,
        choices,
        usage,
        system_fingerprint,
        service_tier,
        extra: _,
    } = response;
    let chunk = |choices: Vec<openai::ChunkChoice>, usage: Option<openai::Usage>| {
        OpenAiStreamItem::Chunk(openai::ChatChunk {
            id: id.clone(),
            object: openai::chunk_object(),
            created,
            model: model.clone(),
            choices,
            usage,
            system_fingerprint: system_fingerprint.clone(),
            service_tier: service_tier.clone(),
            extra: Map::new(),
        })
    };
    let choice =
        |index: u64, delta: openai::Delta, finish_reason: Option<String>| openai::ChunkChoice {
            index,
            delta,
            finish_reason,
            logprobs: None,
            extra: Map::new(),
        };
    let mut items = Vec::new();
    for c in choices {
        let openai::Choice {
            index,
            message,
            finish_reason,
            logprobs: _,
            extra: _,
        } = c;
        let openai::ResponseMessage {
            role,
            content,
            refusal,
            tool_calls,
            reasoning_content,
            thinking_blocks,
            annotations: _,
            mut extra,
        } = message;
        // vLLM's and OpenRouter's name for reasoning travels with the reasoning; any other
        // field of the message goes with the role, so a replayed stream keeps it.
        let mut reasoning_extra = Map::new();
        if let Some(reasoning) = extra.shift_remove("reasoning").filter(|r| !r.is_null()) {
            reasoning_extra.insert("reasoning".to_owned(), reasoning);
        }
        items.push(chunk(
            vec![choice(
                index,
                openai::Delta {
                    role: Some(role),
                    content: Some(String::new()),
                    extra,
                    ..Default::default()
                },
                None,
            )],
            None,
        ));
        if reasoning_content.is_some() || thinking_blocks.is_some() || !reasoning_extra.is_empty() {
            // Each whole block is one entry, indexed like a live stream's entries.
            let thinking_blocks = thinking_blocks.map(|entries| {
                entries
                    .into_iter()
                    .enumerate()
                    .map(|(position, entry)| with_entry_index(entry, position as u64))
                    .collect()
            });
            let delta = openai::Delta {
                reasoning_content,
                thinking_blocks,
                extra: reasoning_extra,
                ..Default::default()
            };
            items.push(chunk(vec![choice(index, delta, None)], None));
        }
        if content.as_deref().is_some_and(|c| !c.is_empty()) || refusal.is_some() {
            let delta = openai::Delta {
                content: content.filter(|c| !c.is_empty()),
                refusal,
                ..Default::default()
            };
            items.push(chunk(vec![choice(index, delta, None)], None));
        }
        for (i, call) in tool_calls.into_iter().flatten().enumerate() {
            let delta = openai::Delta {
                tool_calls: Some(vec![openai::ToolCallDelta {
                    index: i as u64,
                    id: Some(call.id),
                    kind: Some(call.kind),
                    function: Some(openai::FunctionCallDelta {
                        name: Some(call.function.name),
                        arguments: Some(call.function.arguments),
                        extra: Map::new(),
                    }),
                    extra: Map::new(),
                }]),
                ..Default::default()
            };
            items.push(chunk(vec![choice(index, delta, None)], None));
        }
        items.push(chunk(
            vec![choice(
                index,
                openai::Delta::default(),
                finish_reason.or(Some("stop".to_owned())),
            )],
            None,
        ));
    }
    if usage.is_some() {
        items.push(chunk(Vec::new(), usage));
    }
    items.push(OpenAiStreamItem::Done);
    items
}

/// A whole `thinking_blocks` entry with its stream `index` first, as the stream machines
/// write them.
fn with_entry_index(entry: Value, index: u64) -> Value {
    match entry {
        Value::Object(fields) => {
            let mut indexed = Map::with_capacity(fields.len() + 1);
            indexed.insert("index".to_owned(), Value::from(index));
            indexed.extend(fields.into_iter().filter(|(key, _)| key != "index"));
            Value::Object(indexed)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::stream::write_openai_items;

    /// The `delta`s of a synthesized stream, as JSON.
    fn deltas(response: Value) -> Vec<Value> {
        let response: openai::ChatResponse = serde_json::from_value(response).unwrap();
        let mut items = openai_items(response);
        let mut out = Vec::new();
        write_openai_items(&mut items, &mut out);
        String::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter_map(|event| event.strip_prefix("data: "))
            .filter(|data| *data != "[DONE]")
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .filter_map(|chunk| chunk["choices"].get(0).map(|c| c["delta"].clone()))
            .collect()
    }

    #[test]
    fn reasoning_and_unknown_message_fields_survive_a_synthesized_stream() {
        let deltas = deltas(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "qwen3",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "42", "reasoning": "Think.",
                "provider_specific": {"x": 1}
            }}]
        }));
        assert_eq!(
            deltas[0],
            json!({"role": "assistant", "content": "", "provider_specific": {"x": 1}})
        );
        assert_eq!(deltas[1], json!({"reasoning": "Think."}));
        assert_eq!(deltas[2], json!({"content": "42"}));
    }

    #[test]
    fn whole_thinking_blocks_get_their_stream_index() {
        let deltas = deltas(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "A", "reasoning_content": "R",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "R", "signature": "S"},
                    {"type": "redacted_thinking", "data": "D"}
                ]
            }}]
        }));
        assert_eq!(
            deltas[1]["thinking_blocks"],
            json!([
                {"index": 0, "type": "thinking", "thinking": "R", "signature": "S"},
                {"index": 1, "type": "redacted_thinking", "data": "D"}
            ])
        );
    }
}
