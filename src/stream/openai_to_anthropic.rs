//! The OpenAI → Anthropic stream machine: OpenAI Chat Completions chunks (plus an in-band error
//! and `[DONE]`) in, Anthropic Messages stream events out. It owns every decision about how one
//! stream dialect becomes the other; SSE framing and JSON parsing live in `crate::stream`.
//!
//! # Output shape
//! 1. `message_start` on the first chunk: the chunk's `id` and `model`, empty `content`, and
//!    usage with the best input figure available (the chunk's own usage, else the local
//!    estimate of the request, else 0), because Claude Code's context meter reads it there.
//! 2. Content blocks, strictly one after the other (`content_block_start` k, deltas,
//!    `content_block_stop` k, then k + 1), each delta matching its block's type:
//!    `reasoning_content` → `thinking` blocks, `content` and `refusal` → `text` blocks,
//!    `tool_calls` → one `tool_use` block per call, `thinking_blocks` → thinking text,
//!    signatures and `redacted_thinking` blocks (the `crate::convert` convention: an entry
//!    `{"index":k,"type":"thinking","thinking":T,"signature":S}` adds `T` to the current
//!    thinking block and, when `S` is not empty, signs and ends it; an entry whose `index`
//!    differs from the open thinking block's starts a new block). When a chunk's entries carry
//!    thinking text, they are its text and the chunk's `reasoning_content` is the same text
//!    for flat-reasoning clients (a2o and LiteLLM both send it twice), so it adds nothing.
//!    Within one chunk, reasoning comes before text and text before tool calls.
//! 3. On `[DONE]`: `message_delta` with the stop reason and the complete usage (from the
//!    chunk that carried `usage`), then `message_stop`.
//!
//! An in-band `{"error":…}`, or input that ends before any `finish_reason`, ends the stream with
//! an Anthropic `error` event instead of steps 3 (as Anthropic's own error streams do). Input
//! that ends after a `finish_reason` but without `[DONE]` ends normally.
//!
//! # Tool calls
//! OpenAI streams calls by `tool_calls[].index`, and deltas of different calls may interleave;
//! Anthropic blocks may not overlap. The first call streams live. A call that appears while
//! another call's block is open and that block's arguments are not yet a complete JSON object
//! is buffered (id, name and arguments kept, nothing emitted); once the open call's arguments
//! are complete, it is closed and the buffered calls follow in order of first appearance:
//! complete ones as start, one `input_json_delta` and stop, the first incomplete one live.
//! Text or thinking that needs a block closes the open call and flushes the buffered ones, as
//! does the choice's `finish_reason`. A call is started only once its id and name are known;
//! at the end of the choice, missing ones are made up. A call that never got arguments ends
//! with `input_json_delta` `{}`, so SDK accumulators parse `{}`. A different id under the
//! index of a call whose arguments are complete is a new call (upstreams that stream every
//! parallel call as index 0).
//!
//! # Losses
//! Paths are `/events/<n>/…`, `n` counting pushed items from 0; a loss at the end of input
//! uses the number the next item would have had. Fields that repeat on every chunk
//! (`obfuscation` and other unknown keys, `system_fingerprint`, `service_tier`, `logprobs`) are
//! reported once per stream per key, at their first occurrence. Unknown fields whose value is
//! `null` carry nothing and are not reported.

use std::collections::HashSet;

use serde_json::Value;

use crate::convert::losses::{child_path, escape_pointer, indexed_path};
use crate::convert::response_anthropic_to_openai::reasoning_text;
use crate::convert::response_openai_to_anthropic::{
    synthesized_tool_id, thinking_block, tool_input, usage as convert_usage,
};
use crate::convert::{error as error_body, vocab, Losses, ResponseContext, ToolNames};
use crate::protocol::anthropic::{self, BlockDelta, ContentBlock, StreamEvent};
use crate::protocol::{openai, Extra};
use crate::stream::OpenAiStreamItem;

/// Message id used when the upstream's chunks carry none.
const SYNTHESIZED_ID: &str = "msg_a2o_synthesized";

/// Message of the `error` event that replaces a missing ending.
const TRUNCATED_MESSAGE: &str =
    "upstream stream ended before the response finished; the response is incomplete";

/// Tool name used when the upstream never named a call.
const UNKNOWN_TOOL_NAME: &str = "unknown";

const UNSIGNED_THINKING: &str =
    "the reasoning has no signature; sent as a thinking block with an empty signature";

/// The OpenAI → Anthropic stream state machine. Build one per stream, `push` each upstream
/// item, then call `finish` once the input ends.
#[derive(Debug)]
pub struct OpenAiToAnthropic {
    /// Tool names the request shortened, to restore in `tool_use` blocks.
    tool_names: ToolNames,
    /// The client's model, for a `message_start` whose chunk names none.
    /// The client's own name for a mapped model, reported instead of the upstream's.
    client_model: Option<String>,
    requested_model: Option<String>,
    /// The client's stop sequences, to recognise the one a vLLM/SGLang upstream stopped on.
    stop_sequences: Vec<String>,
    /// Local estimate of the prompt's tokens, for usage the upstream has not sent (yet).
    input_tokens_estimate: Option<u64>,
    /// `message_start` was sent.
    started: bool,
    /// The message id sent in `message_start`; seeds made-up tool ids.
    message_id: String,
    /// Index the next content block gets.
    next_index: u64,
    /// The block between its start and its stop, if any. At most one exists at a time.
    open: Option<OpenBlock>,
    /// Every tool call of choice 0, in order of first appearance. Searched by OpenAI index
    /// rather than indexed by it, so a huge index allocates nothing.
    calls: Vec<ToolCall>,
    /// Choice 0 sent a non-empty `refusal`.
    refused: bool,
    /// The first `finish_reason` of choice 0, and the path of the chunk choice that carried it.
    finish_reason: Option<(String, String)>,
    /// The request's stop sequence the upstream says it stopped on.
    matched_stop: Option<String>,
    /// The latest `usage` seen (counts are cumulative), and its path.
    usage: Option<(openai::Usage, String)>,
    /// The stream has ended (`message_stop` or `error` sent); later items are ignored.
    finished: bool,
    /// An item arrived after the end and was reported (once).
    after_finish_reported: bool,
    /// Keys of once-per-stream losses already recorded (`"chunk/obfuscation"`, `"choice/1"`, …).
    reported: HashSet<String>,
    /// Items pushed so far; the next item's number for loss paths.
    items_seen: u64,
}

/// The content block currently open.
#[derive(Debug)]
struct OpenBlock {
    index: u64,
    kind: OpenKind,
}

#[derive(Debug)]
enum OpenKind {
    Text,
    Thinking {
        /// A `signature_delta` was sent.
        signed: bool,
        /// The `thinking_blocks[].index` of the entries that fed the block, when they had one.
        entry_index: Option<u64>,
        /// Where the block's content came from, for the unsigned-thinking loss.
        source: String,
    },
    /// A live tool call: position in `calls`.
    Tool {
        call: usize,
    },
}

/// One OpenAI tool call as the machine tracks it.
#[derive(Debug)]
struct ToolCall {
    /// `tool_calls[].index` in the upstream deltas.
    openai_index: u64,
    id: Option<String>,
    /// The upstream's name (restored only when the block starts).
    name: Option<String>,
    /// Every argument fragment received so far, concatenated.
    arguments: String,
    phase: CallPhase,
    /// Path of the delta that first mentioned the call.
    path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallPhase {
    /// Nothing emitted yet: waiting for its id and name, or for the open block to end.
    Buffered,
    /// Its block is the open one; argument fragments stream through.
    Live,
    /// Its block was stopped.
    Done,
}

impl OpenAiToAnthropic {
    pub fn new(ctx: ResponseContext) -> Self {
        // `include_usage` and `created` serve OpenAI clients only: an Anthropic stream always
        // reports usage and has no timestamp.
        let ResponseContext {
            tool_names,
            requested_model,
            stop_sequences,
            include_usage: _,
            created: _,
            input_tokens_estimate,
            client_model,
        } = ctx;
        Self {
            tool_names,
            requested_model,
            client_model,
            stop_sequences,
            input_tokens_estimate,
            started: false,
            message_id: SYNTHESIZED_ID.to_owned(),
            next_index: 0,
            open: None,
            calls: Vec::new(),
            refused: false,
            finish_reason: None,
            matched_stop: None,
            usage: None,
            finished: false,
            after_finish_reported: false,
            reported: HashSet::new(),
            items_seen: 0,
        }
    }

    /// One upstream item in; zero or more Anthropic events appended to `out`.
    pub fn push(
        &mut self,
        item: OpenAiStreamItem,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        let path = indexed_path("", "/events/", self.items_seen);
        self.items_seen += 1;
        if self.finished {
            if !self.after_finish_reported {
                self.after_finish_reported = true;
                losses.dropped(
                    path,
                    "upstream sent more after the stream had ended; ignored",
                );
            }
            return;
        }
        match item {
            OpenAiStreamItem::Chunk(chunk) => self.on_chunk(chunk, &path, losses, out),
            OpenAiStreamItem::Error(body) => self.on_error(body, &path, losses, out),
            OpenAiStreamItem::Done => self.end_message(&path, losses, out),
        }
    }

    /// End of upstream input (clean or not): always leaves a well-formed ending.
    pub fn finish(&mut self, losses: &mut Losses, out: &mut Vec<StreamEvent>) {
        if self.finished {
            return;
        }
        let path = indexed_path("", "/events/", self.items_seen);
        if self.finish_reason.is_some() {
            losses.approximated(
                &path,
                "upstream stream ended without [DONE] after its finish_reason; ended normally",
            );
            self.end_message(&path, losses, out);
            return;
        }
        losses.dropped(
            &path,
            "upstream stream ended before a finish_reason (truncated); the client gets an error",
        );
        self.abort_open(out);
        out.push(StreamEvent::Error(anthropic::ErrorEvent {
            error: anthropic::ErrorDetail {
                kind: "api_error".to_owned(),
                message: TRUNCATED_MESSAGE.to_owned(),
                extra: Extra::new(),
            },
            request_id: None,
            extra: Extra::new(),
        }));
        self.finished = true;
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn on_chunk(
        &mut self,
        chunk: openai::ChatChunk,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        // `object` is implied, and Anthropic events have no timestamp. A changing `id` or
        // `model` mid-stream is not something a client could use.
        let openai::ChatChunk {
            id,
            object: _,
            created: _,
            model,
            choices,
            usage,
            system_fingerprint,
            service_tier,
            extra,
        } = chunk;
        if let Some(fingerprint) = system_fingerprint {
            if self.first_time("chunk/system_fingerprint") {
                losses.dropped(
                    format!("{path}/system_fingerprint"),
                    format!("Anthropic has no system fingerprint ({fingerprint:?})"),
                );
            }
        }
        // "default" is what every ordinary request gets, so it says nothing.
        if let Some(tier) = service_tier.filter(|tier| tier != "default") {
            if self.first_time("chunk/service_tier") {
                losses.dropped(
                    format!("{path}/service_tier"),
                    format!("service tier {tier:?} has no Anthropic stream field"),
                );
            }
        }
        self.drop_extra_once("chunk", path, &extra, losses);

        if !self.started {
            self.start(&id, &model, usage.as_ref(), path, losses, out);
        }
        if let Some(usage) = usage {
            self.usage = Some((usage, format!("{path}/usage")));
        }
        for (position, choice) in choices.into_iter().enumerate() {
            let choice_path = indexed_path(path, "/choices/", position as u64);
            if choice.index != 0 {
                if self.first_time(&format!("choice/{}", choice.index)) {
                    losses.dropped(
                        choice_path,
                        format!(
                            "an Anthropic message holds one answer; choice {} is dropped",
                            choice.index
                        ),
                    );
                }
                continue;
            }
            self.on_choice(choice, &choice_path, losses, out);
        }
    }

    fn start(
        &mut self,
        id: &str,
        model: &str,
        usage: Option<&openai::Usage>,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        self.started = true;
        if id.is_empty() {
            losses.synthesized(
                format!("{path}/id"),
                format!("upstream sent no id; the message is `{SYNTHESIZED_ID}`"),
            );
        } else {
            id.clone_into(&mut self.message_id);
        }
        let model = match (&self.client_model, &self.requested_model) {
            (Some(client), _) => client.clone(),
            (None, Some(requested)) if model.is_empty() => {
                losses.synthesized(
                    format!("{path}/model"),
                    "upstream named no model; sent the requested one",
                );
                requested.clone()
            }
            (None, _) => model.to_owned(),
        };
        // The final `message_delta` carries the real usage and reports its losses; this is
        // only the best figure known now.
        let (input_tokens, cache_read_input_tokens) = match usage {
            Some(usage) => {
                let converted = convert_usage(usage, &mut Losses::new(), "");
                (converted.input_tokens, converted.cache_read_input_tokens)
            }
            None => (self.input_tokens_estimate, None),
        };
        out.push(StreamEvent::MessageStart(anthropic::MessageStart {
            message: anthropic::MessagesResponse {
                id: self.message_id.clone(),
                kind: "message".to_owned(),
                role: "assistant".to_owned(),
                model,
                content: Vec::new(),
                stop_reason: None,
                stop_sequence: None,
                usage: anthropic::Usage {
                    input_tokens: Some(input_tokens.unwrap_or(0)),
                    cache_creation_input_tokens: Some(0),
                    cache_read_input_tokens: Some(cache_read_input_tokens.unwrap_or(0)),
                    output_tokens: Some(0),
                    extra: Extra::new(),
                },
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }));
    }

    fn on_choice(
        &mut self,
        choice: openai::ChunkChoice,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        let openai::ChunkChoice {
            index: _,
            delta,
            finish_reason,
            logprobs,
            extra,
        } = choice;
        if logprobs.as_ref().is_some_and(|value| !value.is_null())
            && self.first_time("choice/logprobs")
        {
            losses.dropped(
                format!("{path}/logprobs"),
                "Anthropic streams have no log probabilities",
            );
        }
        for (key, value) in &extra {
            let key_path = format!("{path}/{}", escape_pointer(key));
            match (key.as_str(), value) {
                (_, Value::Null) => {}
                // vLLM (`stop_reason`) and SGLang (`matched_stop`) name the stop string that
                // ended the turn.
                ("stop_reason" | "matched_stop", Value::String(sequence))
                    if self.stop_sequences.contains(sequence) =>
                {
                    self.matched_stop = Some(sequence.clone());
                }
                ("stop_reason" | "matched_stop", other) => losses.dropped(
                    key_path,
                    format!("stopped on {other}, which is not one of the request's stop sequences"),
                ),
                _ => {
                    if self.first_time(&format!("choice/{key}")) {
                        losses.dropped(key_path, format!("`{key}` has no Anthropic equivalent"));
                    }
                }
            }
        }
        self.on_delta(delta, &child_path(path, "/delta"), losses, out);
        if let Some(reason) = finish_reason {
            self.close_choice(losses, out);
            if self.finish_reason.is_none() {
                self.finish_reason = Some((reason, format!("{path}/finish_reason")));
            }
        }
    }

    fn on_delta(
        &mut self,
        delta: openai::Delta,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        // `role` is always "assistant", which `message_start` already says.
        let openai::Delta {
            role: _,
            content,
            refusal,
            tool_calls,
            reasoning_content,
            thinking_blocks,
            mut extra,
        } = delta;
        let reasoning_field = if reasoning_content.is_some() {
            "/reasoning_content"
        } else {
            "/reasoning"
        };
        let reasoning_content =
            crate::convert::take_reasoning(reasoning_content, &mut extra, path, losses);
        self.drop_extra_once("delta", path, &extra, losses);

        let entries = thinking_blocks.unwrap_or_default();
        let reasoning = reasoning_content.filter(|text| !text.is_empty());
        let carried: Vec<&str> = entries
            .iter()
            .filter(|entry| entry.get("type").and_then(Value::as_str) == Some("thinking"))
            .filter_map(|entry| entry.get("thinking").and_then(Value::as_str))
            .filter(|text| !text.is_empty())
            .collect();
        if let Some(reasoning) = reasoning {
            let source = child_path(path, reasoning_field);
            if carried.is_empty() {
                self.thinking_text(reasoning, &source, None, losses, out);
            } else if reasoning != carried.concat()
                && reasoning_text(carried.iter().copied()).as_deref() != Some(reasoning.as_str())
            {
                losses.dropped(
                    source,
                    "reasoning_content differs from the thinking_blocks' text; the blocks were kept",
                );
            }
        }
        for (position, entry) in entries.iter().enumerate() {
            let entry_path = format!("{path}/thinking_blocks/{position}");
            self.on_thinking_entry(entry, &entry_path, losses, out);
        }
        if let Some(text) = content.filter(|text| !text.is_empty()) {
            self.text(text, losses, out);
        }
        if let Some(refusal) = refusal.filter(|text| !text.is_empty()) {
            if !self.refused {
                losses.approximated(
                    format!("{path}/refusal"),
                    "the refusal is sent as a text block",
                );
            }
            self.refused = true;
            self.text(refusal, losses, out);
        }
        if let Some(calls) = tool_calls {
            for (position, call) in calls.into_iter().enumerate() {
                let call_path = indexed_path(path, "/tool_calls/", position as u64);
                self.on_tool_delta(call, &call_path, losses, out);
            }
            self.advance_calls(losses, out);
        }
    }

    fn text(&mut self, text: String, losses: &mut Losses, out: &mut Vec<StreamEvent>) {
        let index = match &self.open {
            Some(OpenBlock {
                index,
                kind: OpenKind::Text,
            }) => *index,
            _ => {
                self.make_room(losses, out);
                self.start_block(
                    ContentBlock::Text(anthropic::TextBlock {
                        text: String::new(),
                        citations: None,
                        cache_control: None,
                        extra: Extra::new(),
                    }),
                    OpenKind::Text,
                    out,
                )
            }
        };
        push_delta(index, text_delta(text), out);
    }

    /// Thinking text into the open thinking block, or a new one.
    fn thinking_text(
        &mut self,
        text: String,
        source: &str,
        entry_index: Option<u64>,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        let index = self.thinking_block_index(source, entry_index, losses, out);
        push_delta(
            index,
            BlockDelta::ThinkingDelta(anthropic::ThinkingDelta {
                thinking: text,
                extra: Extra::new(),
            }),
            out,
        );
    }

    /// The open thinking block's index, opening one if another kind (or none) is open, or if
    /// the open one was fed by entries of another `thinking_blocks[].index` than `entry_index`.
    fn thinking_block_index(
        &mut self,
        source: &str,
        entry_index: Option<u64>,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) -> u64 {
        if let Some(OpenBlock {
            index,
            kind:
                OpenKind::Thinking {
                    entry_index: open_entry,
                    ..
                },
        }) = &mut self.open
        {
            match (*open_entry, entry_index) {
                (Some(open), Some(new)) if open != new => {}
                (None, Some(new)) => {
                    *open_entry = Some(new);
                    return *index;
                }
                _ => return *index,
            }
        }
        self.make_room(losses, out);
        self.start_block(
            ContentBlock::Thinking(anthropic::ThinkingBlock {
                thinking: String::new(),
                signature: String::new(),
                extra: Extra::new(),
            }),
            OpenKind::Thinking {
                signed: false,
                entry_index,
                source: source.to_owned(),
            },
            out,
        )
    }

    /// One `thinking_blocks` entry: thinking text, a signature that ends the current thinking
    /// block (with any text it carries), or a whole redacted block.
    fn on_thinking_entry(
        &mut self,
        entry: &Value,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        // LiteLLM writes `"signature": null` on entries that carry text only.
        let without_null_signature;
        let entry = match entry {
            Value::Object(fields) if fields.get("signature").is_some_and(Value::is_null) => {
                let mut fields = fields.clone();
                fields.shift_remove("signature");
                without_null_signature = Value::Object(fields);
                &without_null_signature
            }
            _ => entry,
        };
        match thinking_block(entry, losses, path) {
            Some(ContentBlock::Thinking(anthropic::ThinkingBlock {
                thinking,
                signature,
                extra,
            })) => {
                losses.dropped_extra(path, &extra, "Anthropic stream");
                let entry_index = entry.get("index").and_then(Value::as_u64);
                if !thinking.is_empty() {
                    self.thinking_text(thinking, path, entry_index, losses, out);
                }
                // Only a signature ends the block: unsigned entries are text carriers.
                if signature.is_empty() {
                    return;
                }
                let index = self.thinking_block_index(path, entry_index, losses, out);
                push_delta(
                    index,
                    BlockDelta::SignatureDelta(anthropic::SignatureDelta {
                        signature,
                        extra: Extra::new(),
                    }),
                    out,
                );
                if let Some(OpenBlock {
                    kind: OpenKind::Thinking { signed, .. },
                    ..
                }) = &mut self.open
                {
                    *signed = true;
                }
                self.close_open(losses, out);
            }
            Some(ContentBlock::RedactedThinking(anthropic::RedactedThinkingBlock {
                data,
                extra,
            })) => {
                losses.dropped_extra(path, &extra, "Anthropic stream");
                self.make_room(losses, out);
                let index = self.emit_start(
                    ContentBlock::RedactedThinking(anthropic::RedactedThinkingBlock {
                        data,
                        extra: Extra::new(),
                    }),
                    out,
                );
                push_stop(index, out);
            }
            // `thinking_block` reported whatever else it was.
            _ => {}
        }
    }

    fn on_tool_delta(
        &mut self,
        delta: openai::ToolCallDelta,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        let openai::ToolCallDelta {
            index,
            id,
            kind,
            function,
            extra,
        } = delta;
        if let Some(kind) = kind.filter(|kind| kind != "function") {
            if self.first_time(&format!("tool_call/type/{kind}")) {
                losses.dropped(
                    format!("{path}/type"),
                    format!("tool call type `{kind}` treated as a function call"),
                );
            }
        }
        self.drop_extra_once("tool_call", path, &extra, losses);
        let (name, arguments) = match function {
            Some(openai::FunctionCallDelta {
                name,
                arguments,
                extra,
            }) => {
                self.drop_extra_once(
                    "tool_call/function",
                    &format!("{path}/function"),
                    &extra,
                    losses,
                );
                (name, arguments)
            }
            None => (None, None),
        };
        let id = id.filter(|id| !id.is_empty());
        let name = name.filter(|name| !name.is_empty());

        let existing = self
            .calls
            .iter()
            .rposition(|call| call.openai_index == index);
        let position = match existing {
            Some(position) if !starts_new_call(&self.calls[position], id.as_deref()) => position,
            _ => {
                self.calls.push(ToolCall {
                    openai_index: index,
                    id: None,
                    name: None,
                    arguments: String::new(),
                    phase: CallPhase::Buffered,
                    path: path.to_owned(),
                });
                self.calls.len() - 1
            }
        };
        let Some(call) = self.calls.get_mut(position) else {
            return;
        };
        // Some upstreams repeat id and name on every delta; the first ones are kept.
        if call.id.is_none() {
            call.id = id;
        }
        if call.name.is_none() {
            call.name = name;
        }
        let Some(fragment) = arguments.filter(|fragment| !fragment.is_empty()) else {
            return;
        };
        match call.phase {
            CallPhase::Buffered => call.arguments.push_str(&fragment),
            CallPhase::Live => {
                call.arguments.push_str(&fragment);
                if let Some(OpenBlock { index, .. }) = &self.open {
                    push_delta(*index, input_json_delta(fragment), out);
                }
            }
            CallPhase::Done => {
                if !fragment.trim().is_empty() {
                    losses.dropped(
                        format!("{path}/function/arguments"),
                        format!(
                            "arguments for tool call {index} arrived after its block was closed"
                        ),
                    );
                }
            }
        }
    }

    /// Starts what buffered calls can start now: closes the open block when a ready call
    /// waits (an open call only once its arguments are complete), then flushes complete
    /// calls and opens the first incomplete one live.
    fn advance_calls(&mut self, losses: &mut Losses, out: &mut Vec<StreamEvent>) {
        while let Some(next) = self.calls.iter().position(|call| {
            call.phase == CallPhase::Buffered && call.id.is_some() && call.name.is_some()
        }) {
            match &self.open {
                Some(OpenBlock {
                    kind: OpenKind::Tool { call },
                    ..
                }) => {
                    let complete = self
                        .calls
                        .get(*call)
                        .is_some_and(|call| arguments_complete(&call.arguments));
                    if !complete {
                        return;
                    }
                    self.close_open(losses, out);
                }
                Some(_) => self.close_open(losses, out),
                None => {}
            }
            let complete = arguments_complete(&self.calls[next].arguments);
            if complete {
                self.flush_call(next, losses, out);
            } else {
                self.open_live(next, out);
                return;
            }
        }
    }

    /// Closes the open block so another kind can start, and flushes the buffered calls that
    /// are ready, so they keep their place before what comes next.
    fn make_room(&mut self, losses: &mut Losses, out: &mut Vec<StreamEvent>) {
        let closing_a_call = matches!(
            self.open,
            Some(OpenBlock {
                kind: OpenKind::Tool { .. },
                ..
            })
        );
        self.close_open(losses, out);
        if closing_a_call {
            for position in 0..self.calls.len() {
                let call = &self.calls[position];
                if call.phase == CallPhase::Buffered && call.id.is_some() && call.name.is_some() {
                    self.flush_call(position, losses, out);
                }
            }
        }
    }

    /// The choice is over: every block is closed and every buffered call emitted, with a
    /// made-up id or name where the upstream never sent one.
    fn close_choice(&mut self, losses: &mut Losses, out: &mut Vec<StreamEvent>) {
        self.close_open(losses, out);
        for position in 0..self.calls.len() {
            if self.calls[position].phase != CallPhase::Buffered {
                continue;
            }
            let message_id = &self.message_id;
            let call = &mut self.calls[position];
            if call.id.is_none() {
                losses.synthesized(
                    format!("{}/id", call.path),
                    "tool call without an id; one was made up",
                );
                call.id = Some(synthesized_tool_id(message_id, position));
            }
            if call.name.is_none() {
                losses.synthesized(
                    format!("{}/function/name", call.path),
                    format!("tool call without a name; named `{UNKNOWN_TOOL_NAME}`"),
                );
                call.name = Some(UNKNOWN_TOOL_NAME.to_owned());
            }
            self.flush_call(position, losses, out);
        }
    }

    /// Emits a buffered call whole: start, one `input_json_delta`, stop.
    fn flush_call(&mut self, position: usize, losses: &mut Losses, out: &mut Vec<StreamEvent>) {
        let Some(call) = self.calls.get_mut(position) else {
            return;
        };
        call.phase = CallPhase::Done;
        let partial_json = if call.arguments.trim().is_empty() {
            "{}".to_owned()
        } else if is_json_object(&call.arguments) {
            call.arguments.clone()
        } else {
            tool_input(&call.arguments, losses, &format!("{}/function", call.path)).to_string()
        };
        let block = self.tool_use_block(position);
        let index = self.emit_start(block, out);
        push_delta(index, input_json_delta(partial_json), out);
        push_stop(index, out);
    }

    /// Starts the call's `tool_use` block as the open one and sends the arguments buffered so
    /// far; later fragments stream through.
    fn open_live(&mut self, position: usize, out: &mut Vec<StreamEvent>) {
        let block = self.tool_use_block(position);
        let index = self.start_block(block, OpenKind::Tool { call: position }, out);
        if let Some(call) = self.calls.get_mut(position) {
            call.phase = CallPhase::Live;
            if !call.arguments.is_empty() {
                push_delta(index, input_json_delta(call.arguments.clone()), out);
            }
        }
    }

    /// The `content_block_start` block of a call, its name restored to the client's.
    fn tool_use_block(&self, position: usize) -> ContentBlock {
        let (id, name) = match self.calls.get(position) {
            Some(call) => (call.id.as_deref(), call.name.as_deref()),
            None => (None, None),
        };
        ContentBlock::ToolUse(anthropic::ToolUseBlock {
            id: id.unwrap_or_default().to_owned(),
            name: self
                .tool_names
                .restore(name.unwrap_or(UNKNOWN_TOOL_NAME))
                .to_owned(),
            input: Value::Object(Extra::new()),
            cache_control: None,
            extra: Extra::new(),
        })
    }

    /// Starts a block that stays open for deltas.
    fn start_block(
        &mut self,
        block: ContentBlock,
        kind: OpenKind,
        out: &mut Vec<StreamEvent>,
    ) -> u64 {
        let index = self.emit_start(block, out);
        self.open = Some(OpenBlock { index, kind });
        index
    }

    /// Sends `content_block_start` with the next index; the caller opens or stops the block.
    fn emit_start(&mut self, block: ContentBlock, out: &mut Vec<StreamEvent>) -> u64 {
        let index = self.next_index;
        self.next_index += 1;
        out.push(StreamEvent::ContentBlockStart(
            anthropic::ContentBlockStart {
                index,
                content_block: block,
                extra: Extra::new(),
            },
        ));
        index
    }

    /// Stops the open block, if any, reporting what it ends up lacking.
    fn close_open(&mut self, losses: &mut Losses, out: &mut Vec<StreamEvent>) {
        let Some(OpenBlock { index, kind }) = self.open.take() else {
            return;
        };
        match kind {
            OpenKind::Text => {}
            OpenKind::Thinking { signed, source, .. } => {
                if !signed {
                    losses.approximated(source, UNSIGNED_THINKING);
                }
            }
            OpenKind::Tool { call } => {
                if let Some(call) = self.calls.get_mut(call) {
                    call.phase = CallPhase::Done;
                    if call.arguments.trim().is_empty() {
                        push_delta(index, input_json_delta("{}".to_owned()), out);
                    } else if !is_json_object(&call.arguments) {
                        losses.approximated(
                            format!("{}/function/arguments", call.path),
                            "the streamed tool arguments are not a JSON object; clients may reject the call",
                        );
                    }
                }
            }
        }
        push_stop(index, out);
    }

    /// Stops the open block before an `error` event, unless it is a call whose arguments are
    /// incomplete: a stop would invite the client to run a call the upstream never finished.
    fn abort_open(&mut self, out: &mut Vec<StreamEvent>) {
        let Some(OpenBlock { index, kind }) = self.open.take() else {
            return;
        };
        if let OpenKind::Tool { call } = kind {
            let complete = self
                .calls
                .get(call)
                .is_some_and(|call| is_json_object(&call.arguments));
            if !complete {
                return;
            }
        }
        push_stop(index, out);
    }

    fn on_error(
        &mut self,
        body: openai::ErrorBody,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<StreamEvent>,
    ) {
        self.abort_open(out);
        // Status 0: an in-band error has no HTTP status, so its type decides. The converter's
        // paths are relative to the body, which is this item.
        let mut body_losses = Losses::new();
        let (_status, body) = error_body::openai_to_anthropic(0, body, &mut body_losses);
        for loss in body_losses.into_vec() {
            losses.push(format!("{path}{}", loss.path), loss.kind, loss.reason);
        }
        let anthropic::ErrorBody {
            kind: _,
            error,
            request_id,
            extra,
        } = body;
        out.push(StreamEvent::Error(anthropic::ErrorEvent {
            error,
            request_id,
            extra,
        }));
        self.finished = true;
    }

    /// The normal ending: blocks closed, calls flushed, `message_delta` and `message_stop`.
    fn end_message(&mut self, path: &str, losses: &mut Losses, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.start("", "", None, path, losses, out);
        }
        self.close_choice(losses, out);

        let has_tool_use = !self.calls.is_empty();
        let (finish, finish_path) = match &self.finish_reason {
            Some((reason, reason_path)) => (reason.clone(), reason_path.clone()),
            None => {
                losses.synthesized(path, "no finish_reason; taken as `stop`");
                ("stop".to_owned(), path.to_owned())
            }
        };
        let (mapped, exact) = vocab::stop_reason_for(&finish, has_tool_use);
        if !exact {
            losses.approximated(
                finish_path,
                format!(
                    "`{finish}` has no exact Anthropic equivalent; sent stop_reason `{mapped}`"
                ),
            );
        }
        let (stop_reason, stop_sequence) = match (mapped, self.matched_stop.take()) {
            // Tool calls win over a refusal: a client not told to run them would leave the
            // `tool_use` blocks without results, which Anthropic rejects on the next turn.
            _ if self.refused && !has_tool_use => ("refusal", None),
            ("end_turn", Some(sequence)) if finish == "stop" => ("stop_sequence", Some(sequence)),
            (mapped, _) => (mapped, None),
        };

        let usage = match self.usage.take() {
            Some((usage, usage_path)) => convert_usage(&usage, losses, &usage_path),
            None => {
                losses.synthesized(
                    path,
                    "upstream sent no usage; input_tokens is the local estimate (or 0) and output_tokens 0",
                );
                anthropic::Usage {
                    input_tokens: Some(self.input_tokens_estimate.unwrap_or(0)),
                    cache_creation_input_tokens: Some(0),
                    cache_read_input_tokens: Some(0),
                    output_tokens: Some(0),
                    extra: Extra::new(),
                }
            }
        };
        out.push(StreamEvent::MessageDelta(anthropic::MessageDelta {
            delta: anthropic::MessageDeltaBody {
                stop_reason: Some(stop_reason.to_owned()),
                stop_sequence,
                extra: Extra::new(),
            },
            usage,
            extra: Extra::new(),
        }));
        out.push(StreamEvent::MessageStop(anthropic::Empty::default()));
        self.finished = true;
    }

    /// True the first time `key` is asked for in this stream.
    fn first_time(&mut self, key: &str) -> bool {
        self.reported.insert(key.to_owned())
    }

    /// Reports each non-null key of `extra` once per stream (keys repeat on every chunk).
    fn drop_extra_once(&mut self, scope: &str, base: &str, extra: &Extra, losses: &mut Losses) {
        for (key, value) in extra {
            if value.is_null() || !self.first_time(&format!("{scope}/{key}")) {
                continue;
            }
            losses.dropped(
                format!("{base}/{}", escape_pointer(key)),
                format!("`{key}` has no Anthropic equivalent"),
            );
        }
    }
}

/// Whether a delta with `id` under the index of `call` begins another call: some upstreams
/// stream every parallel call as index 0, each with its own id. Only a call whose arguments
/// are complete can be followed this way, so a call is never split mid-arguments.
fn starts_new_call(call: &ToolCall, id: Option<&str>) -> bool {
    match (call.id.as_deref(), id) {
        (Some(known), Some(id)) => known != id && arguments_complete(&call.arguments),
        _ => false,
    }
}

/// The arguments form a whole JSON object, so no more fragments can follow. The cheap test on
/// the last byte keeps interleaved streams from re-parsing on every delta.
fn arguments_complete(arguments: &str) -> bool {
    arguments.trim_end().ends_with('}') && is_json_object(arguments)
}

fn is_json_object(text: &str) -> bool {
    matches!(serde_json::from_str::<Value>(text), Ok(Value::Object(_)))
}

fn text_delta(text: String) -> BlockDelta {
    BlockDelta::TextDelta(anthropic::TextDelta {
        text,
        extra: Extra::new(),
    })
}

fn input_json_delta(partial_json: String) -> BlockDelta {
    BlockDelta::InputJsonDelta(anthropic::InputJsonDelta {
        partial_json,
        extra: Extra::new(),
    })
}

fn push_delta(index: u64, delta: BlockDelta, out: &mut Vec<StreamEvent>) {
    out.push(StreamEvent::ContentBlockDelta(
        anthropic::ContentBlockDelta {
            index,
            delta,
            extra: Extra::new(),
        },
    ));
}

fn push_stop(index: u64, out: &mut Vec<StreamEvent>) {
    out.push(StreamEvent::ContentBlockStop(anthropic::ContentBlockStop {
        index,
        extra: Extra::new(),
    }));
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::convert::LossKind;
    use crate::stream::validate::validate_anthropic_bytes;
    use crate::stream::write_anthropic_events;

    fn chunk(value: Value) -> OpenAiStreamItem {
        OpenAiStreamItem::Chunk(serde_json::from_value(value).expect("valid chunk"))
    }

    fn choice_chunk(delta: Value, finish_reason: Value) -> OpenAiStreamItem {
        chunk(json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-test",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        }))
    }

    fn delta(delta: Value) -> OpenAiStreamItem {
        choice_chunk(delta, Value::Null)
    }

    fn finish(reason: &str) -> OpenAiStreamItem {
        choice_chunk(json!({}), json!(reason))
    }

    fn usage_chunk(prompt: u64, cached: u64, completion: u64) -> OpenAiStreamItem {
        chunk(json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-test",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        }))
    }

    fn tool(index: u64, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
        let mut function = json!({"arguments": arguments});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut call = json!({"index": index, "function": function});
        if let Some(id) = id {
            call["id"] = json!(id);
            call["type"] = json!("function");
        }
        call
    }

    fn tools(calls: Vec<Value>) -> OpenAiStreamItem {
        delta(json!({ "tool_calls": calls }))
    }

    struct Run {
        events: Vec<Value>,
        losses: Losses,
    }

    impl Run {
        fn losses_at(&self, prefix: &str) -> Vec<(String, LossKind)> {
            self.losses
                .iter()
                .filter(|loss| loss.path.starts_with(prefix))
                .map(|loss| (loss.path.clone(), loss.kind))
                .collect()
        }

        fn kinds(&self) -> Vec<String> {
            self.events.iter().map(describe).collect()
        }

        fn message_delta(&self) -> &Value {
            self.events
                .iter()
                .find(|event| event["type"] == "message_delta")
                .expect("a message_delta")
        }
    }

    fn run(items: Vec<OpenAiStreamItem>) -> Run {
        run_with(ResponseContext::default(), items)
    }

    /// Pushes every item, finishes, and checks the output against the stream grammar (the
    /// crate's validator and the nesting helper) before returning it.
    fn run_with(ctx: ResponseContext, items: Vec<OpenAiStreamItem>) -> Run {
        let run = run_unchecked(ctx, items);
        assert_well_nested(&run.events);
        let mut bytes = Vec::new();
        let mut typed: Vec<StreamEvent> = run
            .events
            .iter()
            .map(|event| serde_json::from_value(event.clone()).expect("typed event"))
            .collect();
        write_anthropic_events(&mut typed, &mut bytes);
        if let Err(violation) = validate_anthropic_bytes(&bytes) {
            panic!("{violation}\n{}", String::from_utf8_lossy(&bytes));
        }
        run
    }

    fn run_unchecked(ctx: ResponseContext, items: Vec<OpenAiStreamItem>) -> Run {
        let mut machine = OpenAiToAnthropic::new(ctx);
        let mut losses = Losses::new();
        let mut out = Vec::new();
        for item in items {
            machine.push(item, &mut losses, &mut out);
        }
        machine.finish(&mut losses, &mut out);
        assert!(machine.is_finished());
        let events = out
            .iter()
            .map(|event| serde_json::to_value(event).expect("serializable"))
            .collect();
        Run { events, losses }
    }

    /// `message_start`, `start:text`, `delta:text_delta`, `stop`, …
    fn describe(event: &Value) -> String {
        let kind = event["type"].as_str().unwrap_or("?");
        match kind {
            "content_block_start" => format!(
                "start:{}",
                event["content_block"]["type"].as_str().unwrap_or("?")
            ),
            "content_block_delta" => {
                format!("delta:{}", event["delta"]["type"].as_str().unwrap_or("?"))
            }
            "content_block_stop" => "stop".to_owned(),
            other => other.to_owned(),
        }
    }

    /// Blocks start at 0 and go up by one, never overlap, deltas go to the open block and match
    /// its type, and the stream ends with `message_stop` or `error`.
    fn assert_well_nested(events: &[Value]) {
        let mut open: Option<(u64, String)> = None;
        let mut next = 0;
        for (position, event) in events.iter().enumerate() {
            let index = event["index"].as_u64();
            match event["type"].as_str().unwrap_or_default() {
                "message_start" => assert_eq!(position, 0, "message_start comes first"),
                "content_block_start" => {
                    assert!(
                        open.is_none(),
                        "block started while {open:?} is open: {events:#?}"
                    );
                    assert_eq!(index, Some(next), "block indices go up by one");
                    next += 1;
                    let kind = event["content_block"]["type"].as_str().unwrap_or_default();
                    open = Some((next - 1, kind.to_owned()));
                }
                "content_block_delta" => {
                    let (open_index, kind) = open.clone().expect("delta outside a block");
                    assert_eq!(
                        index,
                        Some(open_index),
                        "delta for a block that is not open"
                    );
                    let allowed: &[&str] = match kind.as_str() {
                        "text" => &["text_delta"],
                        "thinking" => &["thinking_delta", "signature_delta"],
                        "tool_use" => &["input_json_delta"],
                        _ => &[],
                    };
                    let delta_kind = event["delta"]["type"].as_str().unwrap_or_default();
                    assert!(
                        allowed.contains(&delta_kind),
                        "{delta_kind} in a {kind} block"
                    );
                }
                "content_block_stop" => {
                    let (open_index, _) = open.take().expect("stop outside a block");
                    assert_eq!(index, Some(open_index), "stop for a block that is not open");
                }
                "message_delta" | "message_stop" => assert!(open.is_none(), "{events:#?}"),
                "error" => assert_eq!(position + 1, events.len(), "error is the last event"),
                other => panic!("unexpected event type {other}"),
            }
        }
        let last = events.last().map(|event| event["type"].clone());
        assert!(
            last == Some(json!("message_stop")) || last == Some(json!("error")),
            "stream ends with {last:?}"
        );
    }

    /// The final content, accumulated the way the SDK stream helpers do it.
    fn content(events: &[Value]) -> Vec<Value> {
        let mut blocks: Vec<Value> = Vec::new();
        let mut json_text: Vec<String> = Vec::new();
        for event in events {
            match event["type"].as_str().unwrap_or_default() {
                "content_block_start" => {
                    blocks.push(event["content_block"].clone());
                    json_text.push(String::new());
                }
                "content_block_delta" => {
                    let index = event["index"].as_u64().expect("index") as usize;
                    let block = &mut blocks[index];
                    let delta = &event["delta"];
                    match delta["type"].as_str().unwrap_or_default() {
                        "text_delta" => append(&mut block["text"], &delta["text"]),
                        "thinking_delta" => append(&mut block["thinking"], &delta["thinking"]),
                        "signature_delta" => block["signature"] = delta["signature"].clone(),
                        "input_json_delta" => json_text[index]
                            .push_str(delta["partial_json"].as_str().expect("string")),
                        other => panic!("unexpected delta {other}"),
                    }
                }
                "content_block_stop" => {
                    let index = event["index"].as_u64().expect("index") as usize;
                    if blocks[index]["type"] == "tool_use" {
                        blocks[index]["input"] = serde_json::from_str(&json_text[index])
                            .unwrap_or_else(|err| {
                                panic!("tool input {:?}: {err}", json_text[index])
                            });
                    }
                }
                _ => {}
            }
        }
        blocks
    }

    fn append(target: &mut Value, fragment: &Value) {
        let joined = format!(
            "{}{}",
            target.as_str().unwrap_or_default(),
            fragment.as_str().unwrap_or_default()
        );
        *target = Value::String(joined);
    }

    fn partial_json_of(events: &[Value], block: u64) -> String {
        events
            .iter()
            .filter(|event| event["type"] == "content_block_delta" && event["index"] == block)
            .filter_map(|event| event["delta"]["partial_json"].as_str())
            .collect()
    }

    #[test]
    fn plain_text_stream_is_exact() {
        let run = run(vec![
            delta(json!({"role": "assistant", "content": "", "refusal": null})),
            delta(json!({"content": "Hel"})),
            delta(json!({"content": "lo"})),
            finish("stop"),
            usage_chunk(12, 0, 2),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            run.events,
            vec![
                json!({"type": "message_start", "message": {
                    "id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-test",
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0},
                }}),
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
                json!({"type": "content_block_stop", "index": 0}),
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 2}}),
                json!({"type": "message_stop"}),
            ]
        );
        assert!(run.losses.is_empty(), "{:?}", run.losses);
    }

    #[test]
    fn long_arguments_split_at_every_character_arrive_intact() {
        // PITFALLS 1: escaped quotes, backslashes and multi-byte characters, one per delta.
        let arguments = serde_json::to_string(&json!({
            "command": "echo \"héllo wörld\" | grep -E '^\\s+' > C:\\tmp\\out.txt",
            "note": "日本語 🎉 \u{2028} tab\tend",
            "nested": {"list": [1, 2.5, null, true, "\\\""]},
        }))
        .expect("json");
        let mut items = vec![tools(vec![tool(0, Some("call_1"), Some("bash"), "")])];
        for character in arguments.chars() {
            items.push(tools(vec![tool(0, None, None, &character.to_string())]));
        }
        items.extend([finish("tool_calls"), OpenAiStreamItem::Done]);
        let run = run(items);
        assert_eq!(partial_json_of(&run.events, 0), arguments, "byte for byte");
        let blocks = content(&run.events);
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            blocks[0]["input"],
            serde_json::from_str::<Value>(&arguments).expect("json")
        );
        assert_eq!(run.message_delta()["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn arguments_only_in_the_last_chunk() {
        let run = run(vec![
            tools(vec![tool(0, Some("call_1"), Some("read"), "")]),
            tools(vec![tool(0, None, None, "")]),
            choice_chunk(
                json!({"tool_calls": [tool(0, None, None, "{\"path\":\"/a b\"}")]}),
                json!("tool_calls"),
            ),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(content(&run.events)[0]["input"], json!({"path": "/a b"}));
    }

    #[test]
    fn a_tool_without_arguments_ends_as_empty_object() {
        let run = run(vec![
            tools(vec![tool(0, Some("call_1"), Some("now"), "")]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            run.kinds(),
            [
                "message_start",
                "start:tool_use",
                "delta:input_json_delta",
                "stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(partial_json_of(&run.events, 0), "{}");
        assert_eq!(content(&run.events)[0]["input"], json!({}));
    }

    #[test]
    fn three_parallel_calls_become_three_blocks_in_order() {
        // PITFALLS 2, after thinking and text blocks.
        let mut items = vec![
            delta(json!({"reasoning_content": "Three cities."})),
            delta(json!({"content": "Checking."})),
        ];
        for (index, city) in ["Paris", "Oslo", "Lima"].iter().enumerate() {
            let index = index as u64;
            items.push(tools(vec![tool(
                index,
                Some(&format!("call_{index}")),
                Some("weather"),
                "",
            )]));
            items.push(tools(vec![tool(index, None, None, "{\"city\":")]));
            items.push(tools(vec![tool(
                index,
                None,
                None,
                &format!("\"{city}\"}}"),
            )]));
        }
        items.extend([finish("tool_calls"), OpenAiStreamItem::Done]);
        let run = run(items);
        let blocks = content(&run.events);
        let summary: Vec<(Value, Value, Value)> = blocks
            .iter()
            .filter(|block| block["type"] == "tool_use")
            .map(|block| {
                (
                    block["id"].clone(),
                    block["name"].clone(),
                    block["input"].clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (json!("call_0"), json!("weather"), json!({"city": "Paris"})),
                (json!("call_1"), json!("weather"), json!({"city": "Oslo"})),
                (json!("call_2"), json!("weather"), json!({"city": "Lima"})),
            ]
        );
        assert_eq!(blocks[0]["type"], "thinking");
        assert_eq!(blocks[1]["text"], "Checking.");
    }

    #[test]
    fn interleaved_argument_deltas_land_in_the_right_block() {
        // PITFALLS 3: both calls open before either's arguments are complete.
        let run = run(vec![
            tools(vec![tool(0, Some("call_a"), Some("read"), "")]),
            tools(vec![tool(1, Some("call_b"), Some("write"), "")]),
            tools(vec![tool(0, None, None, "{\"path\":")]),
            tools(vec![tool(1, None, None, "{\"path\":\"b.txt\",")]),
            tools(vec![
                tool(0, None, None, "\"a.txt\"}"),
                tool(1, None, None, "\"text\":\"hi\""),
            ]),
            tools(vec![tool(1, None, None, "}")]),
            tools(vec![tool(2, Some("call_c"), Some("list"), "{}")]),
            finish("tool_calls"),
            usage_chunk(10, 0, 10),
            OpenAiStreamItem::Done,
        ]);
        let blocks = content(&run.events);
        let inputs: Vec<(&Value, &Value)> = blocks
            .iter()
            .map(|block| (&block["id"], &block["input"]))
            .collect();
        assert_eq!(
            inputs,
            vec![
                (&json!("call_a"), &json!({"path": "a.txt"})),
                (&json!("call_b"), &json!({"path": "b.txt", "text": "hi"})),
                (&json!("call_c"), &json!({})),
            ]
        );
        assert!(run.losses.is_empty(), "{:?}", run.losses);
    }

    #[test]
    fn a_buffered_call_whose_first_call_never_completes_is_flushed_at_the_end() {
        let run = run(vec![
            tools(vec![tool(0, Some("call_a"), Some("read"), "{\"path\":")]),
            tools(vec![tool(
                1,
                Some("call_b"),
                Some("read"),
                "{\"path\":\"b\"}",
            )]),
            tools(vec![tool(0, None, None, "\"a\"}")]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        let inputs: Vec<Value> = content(&run.events)
            .iter()
            .map(|block| block["input"].clone())
            .collect();
        assert_eq!(inputs, vec![json!({"path": "a"}), json!({"path": "b"})]);
    }

    #[test]
    fn parallel_calls_all_at_index_zero_are_kept_apart() {
        let run = run(vec![
            tools(vec![tool(
                0,
                Some("call_a"),
                Some("read"),
                "{\"path\":\"a\"}",
            )]),
            tools(vec![tool(
                0,
                Some("call_b"),
                Some("read"),
                "{\"path\":\"b\"}",
            )]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        let ids: Vec<Value> = content(&run.events)
            .iter()
            .map(|block| block["id"].clone())
            .collect();
        assert_eq!(ids, vec![json!("call_a"), json!("call_b")]);
    }

    #[test]
    fn a_repeated_id_does_not_split_a_call() {
        let run = run(vec![
            tools(vec![tool(0, Some("call_a"), Some("read"), "{\"path\":")]),
            tools(vec![tool(0, Some("call_a"), Some("read"), "\"a\"}")]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        let blocks = content(&run.events);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0]["input"], json!({"path": "a"}));
    }

    #[test]
    fn finish_stop_with_tool_calls_is_tool_use() {
        // PITFALLS 4.
        let run = run(vec![
            delta(json!({"content": "Let me look."})),
            tools(vec![tool(
                0,
                Some("call_1"),
                Some("read"),
                "{\"path\":\"x\"}",
            )]),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(run.message_delta()["delta"]["stop_reason"], "tool_use");
        assert_eq!(
            run.kinds()[1..7],
            [
                "start:text",
                "delta:text_delta",
                "stop",
                "start:tool_use",
                "delta:input_json_delta",
                "stop"
            ]
        );
    }

    #[test]
    fn reasoning_and_content_in_one_chunk_and_reasoning_after_text() {
        // PITFALLS 5.
        let run = run(vec![
            delta(json!({"reasoning_content": "think", "content": "say"})),
            delta(json!({"content": " more"})),
            delta(json!({"reasoning_content": "again"})),
            delta(json!({"reasoning_content": "!", "content": "done"})),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        let blocks = content(&run.events);
        assert_eq!(
            blocks,
            vec![
                json!({"type": "thinking", "thinking": "think", "signature": ""}),
                json!({"type": "text", "text": "say more"}),
                json!({"type": "thinking", "thinking": "again!", "signature": ""}),
                json!({"type": "text", "text": "done"}),
            ]
        );
        // Each unsigned thinking block is reported where its text came from.
        assert_eq!(
            run.losses_at("/events"),
            vec![
                (
                    "/events/0/choices/0/delta/reasoning_content".to_owned(),
                    LossKind::Approximated
                ),
                (
                    "/events/2/choices/0/delta/reasoning_content".to_owned(),
                    LossKind::Approximated
                ),
                ("/events/5".to_owned(), LossKind::Synthesized),
            ]
        );
    }

    #[test]
    fn thinking_signatures_and_redacted_blocks_round_trip() {
        let signature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgx+/=";
        let run = run(vec![
            delta(json!({"reasoning_content": "Step 1."})),
            delta(json!({"reasoning_content": " Step 2."})),
            delta(
                json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": signature}]}),
            ),
            delta(
                json!({"thinking_blocks": [{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va=="}]}),
            ),
            delta(
                json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig-only"}]}),
            ),
            delta(
                json!({"thinking_blocks": [{"type": "thinking", "thinking": "whole", "signature": "sig-whole"}]}),
            ),
            delta(json!({"content": "Answer."})),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            content(&run.events),
            vec![
                json!({"type": "thinking", "thinking": "Step 1. Step 2.", "signature": signature}),
                json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va=="}),
                json!({"type": "thinking", "thinking": "", "signature": "sig-only"}),
                json!({"type": "thinking", "thinking": "whole", "signature": "sig-whole"}),
                json!({"type": "text", "text": "Answer."}),
            ]
        );
        assert_eq!(run.kinds()[4..6], ["delta:signature_delta", "stop"]);
        assert!(
            run.losses_at("/events/0").is_empty(),
            "signed thinking is no loss"
        );
    }

    #[test]
    fn litellm_style_thinking_entries_are_not_doubled() {
        let run = run(vec![
            delta(
                json!({"reasoning_content": "A", "thinking_blocks": [{"type": "thinking", "thinking": "A", "signature": null}]}),
            ),
            delta(
                json!({"reasoning_content": "B", "thinking_blocks": [{"type": "thinking", "thinking": "B"}]}),
            ),
            delta(
                json!({"reasoning_content": "", "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "S"}]}),
            ),
            delta(json!({"content": "x"})),
            finish("stop"),
            usage_chunk(1, 0, 1),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            content(&run.events),
            vec![
                json!({"type": "thinking", "thinking": "AB", "signature": "S"}),
                json!({"type": "text", "text": "x"}),
            ]
        );
        assert!(run.losses.is_empty(), "{:?}", run.losses);
    }

    #[test]
    fn vllm_reasoning_field_streams_as_thinking_once() {
        // vLLM after the rename sends `reasoning`; in its compatibility mode both fields, equal.
        let run = run(vec![
            delta(json!({"reasoning": "Think"})),
            delta(json!({"reasoning": " more.", "reasoning_content": " more."})),
            delta(json!({"content": "x"})),
            finish("stop"),
            usage_chunk(1, 0, 1),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            content(&run.events),
            vec![
                json!({"type": "thinking", "thinking": "Think more.", "signature": ""}),
                json!({"type": "text", "text": "x"}),
            ]
        );
        let paths: Vec<&str> = run.losses.iter().map(|loss| loss.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/events/0/choices/0/delta/reasoning"],
            "only the missing signature, at the field it came from"
        );
    }

    #[test]
    fn indexed_entries_rebuild_blocks_and_are_not_doubled() {
        // What a2o's own Anthropic → OpenAI machine sends: text mirrored in reasoning_content,
        // entries merged by `index`, and a second unsigned block told apart only by its index.
        let run = run(vec![
            delta(
                json!({"reasoning_content": "One", "thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "One"}]}),
            ),
            delta(
                json!({"thinking_blocks": [{"index": 0, "type": "thinking", "thinking": "", "signature": "S0"}]}),
            ),
            delta(
                json!({"thinking_blocks": [{"index": 1, "type": "redacted_thinking", "data": "R1"}]}),
            ),
            delta(
                json!({"reasoning_content": "Two", "thinking_blocks": [{"index": 2, "type": "thinking", "thinking": "Two"}]}),
            ),
            delta(
                json!({"reasoning_content": "Three", "thinking_blocks": [{"index": 3, "type": "thinking", "thinking": "Three"}]}),
            ),
            delta(
                json!({"thinking_blocks": [{"index": 3, "type": "thinking", "thinking": "", "signature": "S3"}]}),
            ),
            delta(json!({"content": "x"})),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            content(&run.events),
            vec![
                json!({"type": "thinking", "thinking": "One", "signature": "S0"}),
                json!({"type": "redacted_thinking", "data": "R1"}),
                json!({"type": "thinking", "thinking": "Two", "signature": ""}),
                json!({"type": "thinking", "thinking": "Three", "signature": "S3"}),
                json!({"type": "text", "text": "x"}),
            ]
        );
        // Only the unsigned block is a loss; `index` itself is convention, not content.
        assert!(
            run.losses.iter().all(|loss| !loss.path.contains("index")),
            "{:?}",
            run.losses
        );
    }

    #[test]
    fn whole_blocks_win_over_differing_reasoning_content() {
        // FORCE_NON_STREAM synthesis sends whole blocks with the joined reasoning: no doubling,
        // and no loss, because the joined text is the blocks' text.
        let run = run(vec![
            delta(json!({"reasoning_content": "A\n\nB", "thinking_blocks": [
                {"index": 0, "type": "thinking", "thinking": "A", "signature": "SA"},
                {"index": 1, "type": "thinking", "thinking": "B", "signature": "SB"}]})),
            delta(json!({"reasoning_content": "other", "thinking_blocks": [
                {"index": 2, "type": "thinking", "thinking": "C", "signature": "SC"}]})),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            content(&run.events),
            vec![
                json!({"type": "thinking", "thinking": "A", "signature": "SA"}),
                json!({"type": "thinking", "thinking": "B", "signature": "SB"}),
                json!({"type": "thinking", "thinking": "C", "signature": "SC"}),
            ]
        );
        let paths: Vec<&str> = run
            .losses
            .iter()
            .map(|loss| loss.path.as_str())
            .filter(|path| path.contains("thinking") || path.contains("reasoning"))
            .collect();
        assert_eq!(paths, ["/events/1/choices/0/delta/reasoning_content"]);
    }

    #[test]
    fn usage_with_cached_tokens_and_the_start_estimate() {
        // PITFALLS 8 and 9.
        let ctx = ResponseContext {
            input_tokens_estimate: Some(150),
            ..ResponseContext::default()
        };
        let run = run_with(
            ctx,
            vec![
                delta(json!({"role": "assistant", "content": ""})),
                delta(json!({"content": "Hi"})),
                finish("stop"),
                usage_chunk(160, 100, 5),
                OpenAiStreamItem::Done,
            ],
        );
        assert_eq!(run.events[0]["message"]["usage"]["input_tokens"], 150);
        assert_eq!(
            run.message_delta()["usage"],
            json!({"input_tokens": 60, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 5})
        );
        assert!(run.losses.is_empty(), "{:?}", run.losses);
    }

    #[test]
    fn usage_on_the_first_chunk_feeds_message_start() {
        let run = run(vec![
            usage_chunk(160, 100, 0),
            delta(json!({"content": "x"})),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(run.events[0]["message"]["usage"]["input_tokens"], 60);
        assert_eq!(
            run.events[0]["message"]["usage"]["cache_read_input_tokens"],
            100
        );
    }

    #[test]
    fn no_usage_is_synthesized_from_the_estimate() {
        let ctx = ResponseContext {
            input_tokens_estimate: Some(42),
            ..ResponseContext::default()
        };
        let run = run_with(
            ctx,
            vec![
                delta(json!({"content": "x"})),
                finish("stop"),
                OpenAiStreamItem::Done,
            ],
        );
        assert_eq!(run.message_delta()["usage"]["input_tokens"], 42);
        assert_eq!(run.message_delta()["usage"]["output_tokens"], 0);
        assert_eq!(
            run.losses_at("/events/2"),
            vec![("/events/2".to_owned(), LossKind::Synthesized)]
        );
    }

    #[test]
    fn choices_beyond_the_first_are_reported_once_per_index() {
        let other = |content: &str| {
            chunk(
                json!({"id": "c", "model": "m", "choices": [{"index": 1, "delta": {"content": content}, "finish_reason": null}]}),
            )
        };
        let run = run(vec![
            delta(json!({"content": "A"})),
            other("B"),
            other("C"),
            chunk(json!({"id": "c", "model": "m", "choices": [
                {"index": 0, "delta": {"content": "A2"}, "finish_reason": null},
                {"index": 2, "delta": {"content": "D"}, "finish_reason": null},
            ]})),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            content(&run.events),
            vec![json!({"type": "text", "text": "AA2"})]
        );
        assert_eq!(
            run.losses_at("/events")
                .into_iter()
                .filter(|(path, _)| path.contains("/choices/"))
                .collect::<Vec<_>>(),
            vec![
                ("/events/1/choices/0".to_owned(), LossKind::Dropped),
                ("/events/3/choices/1".to_owned(), LossKind::Dropped),
            ]
        );
    }

    #[test]
    fn an_in_band_error_mid_stream_ends_with_an_error_event() {
        let error: openai::ErrorBody = serde_json::from_value(json!({
            "error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}
        }))
        .expect("error body");
        let run = run(vec![
            delta(json!({"content": "partial"})),
            OpenAiStreamItem::Error(error),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            run.kinds(),
            [
                "message_start",
                "start:text",
                "delta:text_delta",
                "stop",
                "error"
            ]
        );
        assert_eq!(
            run.events[4],
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}})
        );
        // The error converter's loss moves under the item; [DONE] after the end is reported.
        assert_eq!(
            run.losses_at("/events"),
            vec![
                ("/events/1/error/type".to_owned(), LossKind::Approximated),
                ("/events/2".to_owned(), LossKind::Dropped),
            ]
        );
    }

    #[test]
    fn an_error_before_anything_is_just_the_error_event() {
        let error: openai::ErrorBody =
            serde_json::from_value(json!({"error": {"message": "boom", "type": "server_error"}}))
                .expect("error body");
        let run = run(vec![OpenAiStreamItem::Error(error)]);
        assert_eq!(
            run.events,
            vec![json!({"type": "error", "error": {"type": "api_error", "message": "boom"}})]
        );
    }

    #[test]
    fn an_error_leaves_an_unfinished_call_unstopped() {
        let error: openai::ErrorBody =
            serde_json::from_value(json!({"error": {"message": "boom", "type": "server_error"}}))
                .expect("error body");
        let run = run(vec![
            tools(vec![tool(
                0,
                Some("call_1"),
                Some("write"),
                "{\"text\":\"hal",
            )]),
            OpenAiStreamItem::Error(error),
        ]);
        assert_eq!(
            run.kinds(),
            [
                "message_start",
                "start:tool_use",
                "delta:input_json_delta",
                "error"
            ]
        );
    }

    #[test]
    fn a_truncated_stream_ends_with_an_error_event() {
        let run = run(vec![
            delta(json!({"role": "assistant", "content": ""})),
            delta(json!({"content": "Hal"})),
        ]);
        assert_eq!(
            run.kinds(),
            [
                "message_start",
                "start:text",
                "delta:text_delta",
                "stop",
                "error"
            ]
        );
        assert_eq!(
            run.events[4],
            json!({"type": "error", "error": {"type": "api_error", "message": TRUNCATED_MESSAGE}})
        );
        assert_eq!(
            run.losses_at("/events"),
            vec![("/events/2".to_owned(), LossKind::Dropped)]
        );
    }

    #[test]
    fn empty_input_is_just_the_error_event() {
        let run = run(vec![]);
        assert_eq!(run.kinds(), ["error"]);
        assert_eq!(
            run.losses_at("/events"),
            vec![("/events/0".to_owned(), LossKind::Dropped)]
        );
    }

    #[test]
    fn a_finish_reason_without_done_ends_normally() {
        let run = run(vec![
            delta(json!({"content": "Hi"})),
            finish("length"),
            usage_chunk(3, 0, 1),
        ]);
        assert_eq!(run.kinds()[4..], ["message_delta", "message_stop"]);
        assert_eq!(run.message_delta()["delta"]["stop_reason"], "max_tokens");
        assert_eq!(
            run.losses_at("/events"),
            vec![("/events/3".to_owned(), LossKind::Approximated)]
        );
    }

    #[test]
    fn done_without_a_finish_reason_is_taken_as_stop() {
        let run = run(vec![
            delta(json!({"content": "Hi"})),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(run.message_delta()["delta"]["stop_reason"], "end_turn");
        assert!(run
            .losses_at("/events/1")
            .contains(&("/events/1".to_owned(), LossKind::Synthesized)));
    }

    #[test]
    fn shortened_tool_names_are_restored() {
        let long = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_here";
        let short = vocab::target_tool_name(long).into_owned();
        let ctx = ResponseContext {
            tool_names: ToolNames::from_names([long]),
            ..ResponseContext::default()
        };
        let run = run_with(
            ctx,
            vec![
                tools(vec![tool(0, Some("call_1"), Some(&short), "{}")]),
                finish("tool_calls"),
                OpenAiStreamItem::Done,
            ],
        );
        assert_eq!(run.events[1]["content_block"]["name"], long);
    }

    #[test]
    fn per_chunk_noise_is_reported_once_per_key() {
        let noisy = |content: &str, obfuscation: &str| {
            chunk(json!({
                "id": "c", "model": "m", "system_fingerprint": "fp_1", "service_tier": "default",
                "obfuscation": obfuscation, "usage": null,
                "choices": [{"index": 0, "delta": {"content": content}, "logprobs": {"content": []}, "finish_reason": null}],
            }))
        };
        let run = run(vec![
            noisy("a", "x1"),
            noisy("b", "x2"),
            noisy("c", "x3"),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        let mut paths: Vec<String> = run
            .losses_at("/events/")
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            [
                "/events/0/choices/0/logprobs",
                "/events/0/obfuscation",
                "/events/0/system_fingerprint",
                "/events/4",
            ]
        );
    }

    #[test]
    fn refusals_are_text_with_stop_reason_refusal() {
        let run = run(vec![
            delta(json!({"refusal": "I can't"})),
            delta(json!({"refusal": " help."})),
            finish("stop"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            content(&run.events),
            vec![json!({"type": "text", "text": "I can't help."})]
        );
        assert_eq!(run.message_delta()["delta"]["stop_reason"], "refusal");
    }

    #[test]
    fn a_vllm_stop_reason_names_the_stop_sequence() {
        let ctx = ResponseContext {
            stop_sequences: vec!["END".to_owned()],
            ..ResponseContext::default()
        };
        let run = run_with(
            ctx,
            vec![
                delta(json!({"content": "x"})),
                chunk(
                    json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "END"}]}),
                ),
                OpenAiStreamItem::Done,
            ],
        );
        assert_eq!(
            run.message_delta()["delta"],
            json!({"stop_reason": "stop_sequence", "stop_sequence": "END"})
        );
    }

    #[test]
    fn calls_without_id_or_name_wait_for_them() {
        let run = run(vec![
            tools(vec![tool(0, None, None, "{\"a\":")]),
            tools(vec![tool(0, Some("call_late"), Some("late"), "1}")]),
            tools(vec![tool(1, None, None, "{}")]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        let blocks = content(&run.events);
        assert_eq!(blocks[0]["id"], "call_late");
        assert_eq!(blocks[0]["input"], json!({"a": 1}));
        assert_eq!(blocks[1]["name"], "unknown");
        assert_eq!(blocks[1]["id"], synthesized_tool_id("chatcmpl-1", 1));
        assert_eq!(
            run.losses_at("/events/2"),
            vec![
                (
                    "/events/2/choices/0/delta/tool_calls/0/id".to_owned(),
                    LossKind::Synthesized
                ),
                (
                    "/events/2/choices/0/delta/tool_calls/0/function/name".to_owned(),
                    LossKind::Synthesized
                ),
            ]
        );
    }

    #[test]
    fn buffered_arguments_that_are_not_json_are_wrapped() {
        // Nameless until the end, so the call is still buffered when the choice finishes.
        let run = run(vec![
            tools(vec![tool(0, Some("call_a"), Some("a"), "{\"x\":")]),
            tools(vec![tool(1, Some("call_b"), None, "not json")]),
            tools(vec![tool(0, None, None, "1}")]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        let blocks = content(&run.events);
        assert_eq!(
            blocks[1]["input"],
            json!({"_a2o_raw_arguments": "not json"})
        );
    }

    #[test]
    fn text_after_a_tool_call_closes_it_and_flushes_waiting_calls() {
        let run = run(vec![
            tools(vec![tool(0, Some("call_a"), Some("a"), "{\"x\":1}")]),
            delta(json!({"content": "between"})),
            tools(vec![tool(1, Some("call_b"), Some("b"), "{}")]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        let types: Vec<Value> = content(&run.events)
            .iter()
            .map(|block| block["type"].clone())
            .collect();
        assert_eq!(
            types,
            vec![json!("tool_use"), json!("text"), json!("tool_use")]
        );
    }

    #[test]
    fn arguments_for_a_closed_call_are_dropped() {
        let run = run(vec![
            tools(vec![tool(0, Some("call_a"), Some("a"), "{\"x\":1}")]),
            delta(json!({"content": "between"})),
            tools(vec![tool(0, None, None, "junk")]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(
            run.losses_at("/events/2"),
            vec![(
                "/events/2/choices/0/delta/tool_calls/0/function/arguments".to_owned(),
                LossKind::Dropped
            )]
        );
    }

    #[test]
    fn huge_indices_and_empty_chunks_do_not_panic() {
        let run = run(vec![
            chunk(json!({})),
            chunk(json!({"choices": [{"index": 0}]})),
            tools(vec![tool(u64::MAX, Some("call_x"), Some("x"), "{}")]),
            tools(vec![tool(u64::MAX - 1, None, None, "")]),
            finish("tool_calls"),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(content(&run.events).len(), 2);
        assert_eq!(run.events[0]["message"]["id"], SYNTHESIZED_ID);
    }

    #[test]
    fn items_after_the_end_are_ignored_once() {
        let run = run(vec![
            delta(json!({"content": "x"})),
            finish("stop"),
            OpenAiStreamItem::Done,
            delta(json!({"content": "late"})),
            OpenAiStreamItem::Done,
        ]);
        assert_eq!(run.kinds().last().map(String::as_str), Some("message_stop"));
        assert_eq!(
            run.losses_at("/events/3"),
            vec![("/events/3".to_owned(), LossKind::Dropped)]
        );
        assert!(run.losses_at("/events/4").is_empty());
    }

    /// Modelled on `corpus/openai/stream-parallel-tool-calls.sse` (gpt-4o-mini, two calls).
    #[test]
    fn recorded_parallel_tool_calls() {
        let base = |choices: Value, usage: Value| {
            chunk(json!({
                "id": "chatcmpl-ASYMbACebDoWcuraMEWQhU48q4dAp", "object": "chat.completion.chunk",
                "created": 1731368641, "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_9b78b61c52",
                "usage": usage, "choices": choices,
            }))
        };
        let call = |call: Value| {
            base(
                json!([{"index": 0, "delta": {"tool_calls": [call]}, "logprobs": null, "finish_reason": null}]),
                Value::Null,
            )
        };
        let mut items = vec![base(
            json!([{"index": 0, "delta": {"role": "assistant", "content": null}, "logprobs": null, "finish_reason": null}]),
            Value::Null,
        )];
        let ids = [
            "call_fHCjJqt9Pysde6vcJcvbXGBx",
            "call_3J9foSw3CUb48lrqIXoTky6U",
        ];
        let fragments: [&[&str]; 2] = [
            &["{\"lo", "catio", "n\": \"S", "eatt", "le, W", "A\"}"],
            &[
                "{\"lo", "catio", "n\": \"S", "an F", "ranci", "sco, C", "A\"}",
            ],
        ];
        for (index, (id, parts)) in ids.iter().zip(fragments).enumerate() {
            items.push(call(json!({"index": index, "id": id, "type": "function",
                "function": {"name": "get_current_weather", "arguments": ""}})));
            for part in parts {
                items.push(call(
                    json!({"index": index, "function": {"arguments": part}}),
                ));
            }
        }
        items.push(base(
            json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "tool_calls"}]),
            Value::Null,
        ));
        items.push(base(
            json!([]),
            json!({"prompt_tokens": 75, "completion_tokens": 51, "total_tokens": 126,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}),
        ));
        items.push(OpenAiStreamItem::Done);
        let run = run(items);

        let blocks = content(&run.events);
        assert_eq!(
            blocks,
            vec![
                json!({"type": "tool_use", "id": ids[0], "name": "get_current_weather", "input": {"location": "Seattle, WA"}}),
                json!({"type": "tool_use", "id": ids[1], "name": "get_current_weather", "input": {"location": "San Francisco, CA"}}),
            ]
        );
        // Live streaming: one delta per upstream fragment, the first block stopped when the
        // second call appears.
        let kinds = run.kinds();
        assert_eq!(
            kinds
                .iter()
                .filter(|kind| *kind == "delta:input_json_delta")
                .count(),
            13
        );
        assert_eq!(kinds[8], "stop");
        assert_eq!(
            run.message_delta(),
            &json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"input_tokens": 75, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 51}})
        );
        assert_eq!(
            run.losses_at("/events"),
            vec![("/events/0/system_fingerprint".to_owned(), LossKind::Dropped)]
        );
    }

    /// Pseudo-random sequences of everything an upstream can send never panic and always give
    /// a well-nested stream with a proper ending.
    #[test]
    fn random_sequences_stay_well_formed() {
        let pool = |pick: u64| -> OpenAiStreamItem {
            match pick % 14 {
                0 => delta(json!({"content": "t"})),
                1 => delta(json!({"reasoning_content": "r"})),
                2 => delta(json!({"reasoning_content": "r", "content": "t"})),
                3 => delta(json!({"refusal": "no"})),
                4 => delta(
                    json!({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "s"}]}),
                ),
                5 => delta(
                    json!({"thinking_blocks": [{"type": "redacted_thinking", "data": "d"}, {"type": "bogus"}]}),
                ),
                6 => tools(vec![tool(
                    pick % 3,
                    Some(&format!("call_{}", pick % 5)),
                    Some("f"),
                    "{\"a\":",
                )]),
                7 => tools(vec![tool(pick % 3, None, None, "1}")]),
                8 => tools(vec![
                    tool(pick % 4, None, None, "x"),
                    tool(pick % 2, None, Some("g"), ""),
                ]),
                9 => finish(["stop", "length", "tool_calls", "weird"][(pick % 4) as usize]),
                10 => usage_chunk(pick % 50, pick % 7, pick % 9),
                11 => OpenAiStreamItem::Done,
                12 => OpenAiStreamItem::Error(openai::ErrorBody {
                    error: openai::ErrorDetail {
                        message: "e".to_owned(),
                        kind: None,
                        param: None,
                        code: None,
                        extra: Extra::new(),
                    },
                    extra: Extra::new(),
                }),
                _ => chunk(json!({"choices": [{"index": pick % 3, "delta": {"content": "n"}}]})),
            }
        };
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            let length = {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 33) % 12
            };
            let mut items = Vec::new();
            for _ in 0..length {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                // Done and errors are rarer, so most sequences get somewhere first.
                let pick = state >> 33;
                let pick = if pick % 14 >= 11 && !pick.is_multiple_of(3) {
                    pick - 3
                } else {
                    pick
                };
                items.push(pool(pick));
            }
            let run = run_unchecked(ResponseContext::default(), items);
            assert_well_nested(&run.events);
        }
    }
}
