//! The Anthropic → OpenAI stream machine: Anthropic Messages stream events in, OpenAI Chat
//! Completions chunks (plus an in-band error and `[DONE]`) out. It owns every decision about how
//! one stream dialect becomes the other; SSE framing and JSON parsing live in `crate::stream`.
//!
//! # Output shape
//! Every chunk has `id` (the upstream message id), `object: "chat.completion.chunk"`, one
//! `created` fixed when the machine is built, `model`, and one choice
//! `{index: 0, delta, finish_reason, logprobs: null}`. A stream is:
//!
//! 1. the role chunk `{"role":"assistant","content":""}` (from `message_start`);
//! 2. content chunks: `content` for text, `reasoning_content` plus `thinking_blocks` for
//!    thinking, signatures and redacted thinking, `tool_calls` for client tools;
//! 3. one finish chunk (`delta: {}` and a `finish_reason`, from `message_delta`);
//! 4. with `stream_options.include_usage` only, a usage chunk (`choices: []`);
//! 5. `[DONE]`, exactly once, whatever happened before.
//!
//! An upstream `error` event, or input that ends before `message_stop`, ends the stream with an
//! in-band `{"error":…}` item and `[DONE]` in place of the steps not yet taken (OpenAI SDKs
//! raise on it).
//!
//! # Thinking in a stream
//! Thinking text goes to `delta.reasoning_content`, which DeepSeek-style clients read. That is
//! one flat string over the whole message, so each piece of a thinking block also travels as a
//! `delta.thinking_blocks` entry with an `index`: the block's ordinal among the message's
//! thinking and redacted_thinking blocks (0, 1, 2, … with no gaps), the same rule as
//! `tool_calls[].index`. The OpenAI SDKs' stream accumulators merge list entries by `index`
//! (concatenating strings, replacing `type`), so a client that accumulates the stream ends up
//! with each block whole, text and signature together, ready to replay:
//! - `{"index":k,"type":"thinking","thinking":T}` with every thinking text delta, alongside
//!   `reasoning_content: T`;
//! - `{"index":k,"type":"thinking","thinking":"","signature":S}` once the block is signed (an
//!   entry with no text before it is a signature-only block, kept for replay);
//! - `{"index":k,"type":"redacted_thinking","data":…}`, a whole redacted block, verbatim.
//!
//! # Tool calls
//! `tool_calls[].index` counts client `tool_use` blocks only (0, 1, 2, …), so text, thinking
//! and server-tool blocks before or between them never shift it. The first chunk of a call
//! carries `id`, `type` and the restored name with `arguments: ""`; then each non-empty
//! `partial_json` is passed on as is. A call whose arguments never streamed ends with the
//! start's `input` as compact JSON, or `{}` when that is empty, so every call parses.
//!
//! # Losses
//! Paths are `/events/<n>/…`, `n` counting pushed events from 0. A loss that would repeat on
//! every delta of a block (citations, unknown delta types, unknown delta fields) is recorded
//! once per block; unknown event types once per type name. Unknown fields whose value is `null`
//! are not reported: a `null` carries nothing to lose (the API sends e.g. `stop_details: null`
//! on every stream). Usage is reported on only when the client asked for it; then the shared
//! usage conversion decides what is lost, and each loss points at the event that carried the
//! field.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::convert::losses::{child_path, escape_pointer, indexed_path};
use crate::convert::{
    error as error_body, response_anthropic_to_openai, vocab, Losses, ResponseContext, ToolNames,
};
use crate::protocol::{anthropic, openai, Extra};
use crate::stream::OpenAiStreamItem;

/// Chunk id used when the upstream never said which message this is.
const SYNTHESIZED_ID: &str = "chatcmpl-a2o-synthesized";

/// Message of the in-band error that replaces a missing `message_stop`.
const TRUNCATED_MESSAGE: &str =
    "upstream stream ended before message_stop; the response is incomplete";

/// The Anthropic → OpenAI stream state machine. Build one per stream, `push` each upstream
/// event, then call `finish` once the input ends.
#[derive(Debug)]
pub struct AnthropicToOpenAi {
    /// Tool names the request shortened, to restore in `tool_calls`.
    tool_names: ToolNames,
    /// The client asked for a usage chunk (`stream_options.include_usage`).
    include_usage: bool,
    /// `created` of every chunk, computed once so all chunks of the stream agree.
    created: u64,
    /// Chunk `id`: the upstream message id, or [`SYNTHESIZED_ID`].
    id: String,
    /// Chunk `model`: the upstream model, or the requested one when the upstream names none.
    /// True when `model` is the client's own name for a mapped model and must not change.
    model_fixed: bool,
    model: String,
    /// The role chunk was sent (by `message_start`, or synthesized by a later event).
    started: bool,
    /// Content blocks seen so far, by Anthropic block index.
    blocks: HashMap<u64, Block>,
    /// The OpenAI `tool_calls[].index` the next client `tool_use` block gets; also the number
    /// of client tool calls so far.
    next_tool_index: u64,
    /// The `thinking_blocks[].index` the next block with thinking entries gets.
    next_thinking_entry: u64,
    /// Usage merged from `message_start` and `message_delta`: the largest known value of each
    /// count (later counts are cumulative) and the latest value of each unknown field.
    usage: anthropic::Usage,
    /// For each usage field (by its escaped JSON-pointer token), the path of the usage object
    /// its merged value came from, so the usage conversion's losses point at the right event.
    usage_sources: HashMap<String, String>,
    /// Path of the last usage object seen, for usage losses about fields no event carried.
    last_usage_path: Option<String>,
    /// The latest `stop_reason` the upstream gave.
    stop_reason: Option<String>,
    /// The finish chunk was sent.
    finish_sent: bool,
    /// `[DONE]` was sent; everything after is ignored.
    finished: bool,
    /// An event arrived after `[DONE]` and was reported (once).
    after_finish_reported: bool,
    /// Unknown event types already reported.
    unknown_events_reported: HashSet<String>,
    /// Events pushed so far; the next event's number for loss paths.
    events_seen: u64,
}

/// One Anthropic content block as the machine tracks it.
#[derive(Debug)]
struct Block {
    kind: BlockKind,
    /// `content_block_stop` was seen; later deltas are ignored.
    stopped: bool,
    /// Once-per-block losses already recorded (`"citations"`, `"unknown_delta:<type>"`, …).
    reported: HashSet<String>,
    /// The `thinking_blocks[].index` of this block's entries, given when its first entry is
    /// sent, so blocks that send none leave no gap.
    thinking_entry: Option<u64>,
}

#[derive(Debug)]
enum BlockKind {
    Text,
    Thinking {
        /// A signature that came in `content_block_start` rather than as a `signature_delta`;
        /// sent at `content_block_stop` because a signature entry ends the thinking block.
        pending_signature: Option<String>,
        /// A signature entry was sent for this block.
        signed: bool,
    },
    RedactedThinking,
    ToolUse {
        tool_index: u64,
        /// Some non-empty `partial_json` was passed on.
        arguments_sent: bool,
        /// The `input` of `content_block_start`, used when no argument deltas come.
        start_input: Value,
    },
    /// A block with no OpenAI equivalent (server tools and their results, unknown types):
    /// reported at its start, its deltas ignored.
    Dropped,
}

impl Block {
    fn new(kind: BlockKind) -> Self {
        Self {
            kind,
            stopped: false,
            reported: HashSet::new(),
            thinking_entry: None,
        }
    }

    /// True the first time `key` is asked for on this block.
    fn first(&mut self, key: &str) -> bool {
        self.reported.insert(key.to_owned())
    }
}

impl AnthropicToOpenAi {
    pub fn new(ctx: ResponseContext) -> Self {
        let created = ctx.created_or_now();
        // `stop_sequences` and `input_tokens_estimate` serve OpenAI upstreams only: an Anthropic
        // stream names its stop sequence and reports its own input tokens.
        let ResponseContext {
            tool_names,
            requested_model,
            stop_sequences: _,
            include_usage,
            created: _,
            input_tokens_estimate: _,
            client_model,
        } = ctx;
        Self {
            tool_names,
            include_usage,
            created,
            id: SYNTHESIZED_ID.to_owned(),
            model_fixed: client_model.is_some(),
            model: client_model.or(requested_model).unwrap_or_default(),
            started: false,
            blocks: HashMap::new(),
            next_tool_index: 0,
            next_thinking_entry: 0,
            usage: anthropic::Usage::default(),
            usage_sources: HashMap::new(),
            last_usage_path: None,
            stop_reason: None,
            finish_sent: false,
            finished: false,
            after_finish_reported: false,
            unknown_events_reported: HashSet::new(),
            events_seen: 0,
        }
    }

    /// One upstream event in; zero or more OpenAI items appended to `out`.
    pub fn push(
        &mut self,
        event: anthropic::StreamEvent,
        losses: &mut Losses,
        out: &mut Vec<OpenAiStreamItem>,
    ) {
        let path = indexed_path("", "/events/", self.events_seen);
        self.events_seen += 1;
        if self.finished {
            if !self.after_finish_reported {
                self.after_finish_reported = true;
                losses.dropped(
                    &path,
                    format!(
                        "`{}` event after the end of the stream ignored",
                        event.name()
                    ),
                );
            }
            return;
        }
        match event {
            anthropic::StreamEvent::MessageStart(start) => {
                self.on_message_start(start, &path, losses, out)
            }
            anthropic::StreamEvent::ContentBlockStart(start) => {
                self.ensure_started(&path, losses, out);
                self.on_block_start(start, &path, losses, out);
            }
            anthropic::StreamEvent::ContentBlockDelta(delta) => {
                self.ensure_started(&path, losses, out);
                self.on_block_delta(delta, &path, losses, out);
            }
            anthropic::StreamEvent::ContentBlockStop(stop) => {
                self.ensure_started(&path, losses, out);
                self.on_block_stop(stop, &path, losses, out);
            }
            anthropic::StreamEvent::MessageDelta(delta) => {
                self.ensure_started(&path, losses, out);
                self.on_message_delta(delta, &path, losses, out);
            }
            anthropic::StreamEvent::MessageStop(stop) => {
                self.ensure_started(&path, losses, out);
                self.on_message_stop(stop, &path, losses, out);
            }
            // Keep-alives: nothing to carry, and OpenAI streams have no equivalent event.
            anthropic::StreamEvent::Ping(_) => {}
            anthropic::StreamEvent::Error(error) => self.on_error(error, &path, losses, out),
            anthropic::StreamEvent::Unknown(value) => {
                let name = value
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                if self.unknown_events_reported.insert(name.clone()) {
                    losses.dropped(
                        &path,
                        format!("unknown stream event type `{name}` has no OpenAI equivalent"),
                    );
                }
            }
        }
    }

    /// End of upstream input (clean or not). Always leaves `out` ending with
    /// `OpenAiStreamItem::Done` exactly once over the machine's life.
    pub fn finish(&mut self, losses: &mut Losses, out: &mut Vec<OpenAiStreamItem>) {
        if self.finished {
            return;
        }
        losses.dropped(
            format!("/events/{}", self.events_seen),
            "upstream stream was truncated: it ended before message_stop, so the rest of the response is missing",
        );
        out.push(OpenAiStreamItem::Error(openai::ErrorBody {
            error: openai::ErrorDetail {
                message: TRUNCATED_MESSAGE.to_owned(),
                kind: Some("server_error".to_owned()),
                param: None,
                code: Some(Value::from("stream_truncated")),
                extra: Extra::new(),
            },
            extra: Extra::new(),
        }));
        self.end(out);
    }

    /// `[DONE]` was sent: the stream is over and further input is ignored.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn on_message_start(
        &mut self,
        start: anthropic::MessageStart,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<OpenAiStreamItem>,
    ) {
        if self.started {
            losses.dropped(path, "message_start after the stream had begun ignored");
            return;
        }
        let anthropic::MessageStart { message, extra } = start;
        report_extra(losses, path, &extra);
        let message_path = format!("{path}/message");
        // `kind` is always "message" and `role` always "assistant": the role chunk says as much.
        let anthropic::MessagesResponse {
            id,
            kind: _,
            role: _,
            model,
            content,
            stop_reason,
            stop_sequence,
            usage,
            extra,
        } = message;
        if id.is_empty() {
            losses.synthesized(
                format!("{message_path}/id"),
                "message_start has no id; chunk id synthesized",
            );
        } else {
            self.id = id;
        }
        if self.model_fixed {
            // The client asked for another name than the upstream's; it keeps seeing its own.
        } else if !model.is_empty() {
            self.model = model;
        } else if !self.model.is_empty() {
            losses.synthesized(
                format!("{message_path}/model"),
                "message_start names no model; the requested one used",
            );
        }
        for (i, block) in content.iter().enumerate() {
            losses.dropped(
                format!("{message_path}/content/{i}"),
                format!(
                    "`{}` block inside message_start is not streamed content",
                    block.type_name()
                ),
            );
        }
        // A stop reason this early is unusual; keep it in case no message_delta brings one.
        if stop_reason.is_some() {
            self.stop_reason = stop_reason;
        }
        if let Some(sequence) = stop_sequence {
            losses.dropped(
                format!("{message_path}/stop_sequence"),
                format!("OpenAI does not say which stop sequence ended the output ({sequence:?})"),
            );
        }
        self.merge_usage(usage, format!("{message_path}/usage"));
        report_extra(losses, &message_path, &extra);
        self.started = true;
        out.push(self.chunk(
            openai::Delta {
                role: Some("assistant".to_owned()),
                content: Some(String::new()),
                ..Default::default()
            },
            None,
        ));
    }

    /// An event that belongs after `message_start` came first: send the role chunk anyway so
    /// the OpenAI stream still begins properly.
    fn ensure_started(&mut self, path: &str, losses: &mut Losses, out: &mut Vec<OpenAiStreamItem>) {
        if self.started {
            return;
        }
        losses.synthesized(
            path,
            "stream did not begin with message_start; chunk id and role chunk synthesized",
        );
        self.started = true;
        out.push(self.chunk(
            openai::Delta {
                role: Some("assistant".to_owned()),
                content: Some(String::new()),
                ..Default::default()
            },
            None,
        ));
    }

    fn on_block_start(
        &mut self,
        start: anthropic::ContentBlockStart,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<OpenAiStreamItem>,
    ) {
        let anthropic::ContentBlockStart {
            index,
            content_block,
            extra,
        } = start;
        report_extra(losses, path, &extra);
        if self.blocks.contains_key(&index) {
            losses.dropped(
                path,
                format!("second content_block_start for block {index} ignored"),
            );
            return;
        }
        let block_path = child_path(path, "/content_block");
        let mut thinking_entry = None;
        let kind = match content_block {
            anthropic::ContentBlock::Text(anthropic::TextBlock {
                text,
                citations,
                cache_control,
                extra,
            }) => {
                report_citations_value(losses, &block_path, citations.as_ref());
                if cache_control.is_some() {
                    losses.dropped(
                        format!("{block_path}/cache_control"),
                        "cache_control has no meaning in a response",
                    );
                }
                report_extra(losses, &block_path, &extra);
                if !text.is_empty() {
                    out.push(self.chunk(
                        openai::Delta {
                            content: Some(text),
                            ..Default::default()
                        },
                        None,
                    ));
                }
                BlockKind::Text
            }
            anthropic::ContentBlock::Thinking(anthropic::ThinkingBlock {
                thinking,
                signature,
                extra,
            }) => {
                report_extra(losses, &block_path, &extra);
                if !thinking.is_empty() {
                    let entry = next_entry(&mut thinking_entry, &mut self.next_thinking_entry);
                    out.push(self.chunk(thinking_delta(entry, thinking), None));
                }
                let pending_signature = (!signature.is_empty()).then_some(signature);
                BlockKind::Thinking {
                    pending_signature,
                    signed: false,
                }
            }
            anthropic::ContentBlock::RedactedThinking(anthropic::RedactedThinkingBlock {
                data,
                extra,
            }) => {
                // The block is carried whole, so its unknown fields travel with it: nothing lost.
                let entry = next_entry(&mut thinking_entry, &mut self.next_thinking_entry);
                let mut block = Extra::new();
                block.insert("index".to_owned(), Value::from(entry));
                block.insert("type".to_owned(), Value::from("redacted_thinking"));
                block.insert("data".to_owned(), Value::from(data));
                block.extend(reportable(&extra));
                out.push(self.chunk(
                    openai::Delta {
                        thinking_blocks: Some(vec![Value::Object(block)]),
                        ..Default::default()
                    },
                    None,
                ));
                BlockKind::RedactedThinking
            }
            anthropic::ContentBlock::ToolUse(anthropic::ToolUseBlock {
                id,
                name,
                input,
                cache_control,
                extra,
            }) => {
                if cache_control.is_some() {
                    losses.dropped(
                        format!("{block_path}/cache_control"),
                        "cache_control has no meaning in a response",
                    );
                }
                report_extra(losses, &block_path, &extra);
                let tool_index = self.next_tool_index;
                self.next_tool_index += 1;
                let name = self.tool_names.restore(&name).to_owned();
                out.push(self.chunk(
                    openai::Delta {
                        tool_calls: Some(vec![openai::ToolCallDelta {
                            index: tool_index,
                            id: Some(id),
                            kind: Some("function".to_owned()),
                            function: Some(openai::FunctionCallDelta {
                                name: Some(name),
                                arguments: Some(String::new()),
                                extra: Extra::new(),
                            }),
                            extra: Extra::new(),
                        }]),
                        ..Default::default()
                    },
                    None,
                ));
                BlockKind::ToolUse {
                    tool_index,
                    arguments_sent: false,
                    start_input: input,
                }
            }
            other => {
                losses.dropped(&block_path, dropped_block_reason(&other));
                BlockKind::Dropped
            }
        };
        let mut block = Block::new(kind);
        block.thinking_entry = thinking_entry;
        self.blocks.insert(index, block);
    }

    fn on_block_delta(
        &mut self,
        event: anthropic::ContentBlockDelta,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<OpenAiStreamItem>,
    ) {
        let anthropic::ContentBlockDelta {
            index,
            delta,
            extra,
        } = event;
        let delta_path = child_path(path, "/delta");
        let block = self
            .blocks
            .entry(index)
            .or_insert_with(|| orphan_block(index, &delta, path, losses));
        if !reportable(&extra).is_empty() && block.first("event_extra") {
            report_extra(losses, path, &extra);
        }
        if block.stopped {
            if block.first("after_stop") {
                losses.dropped(
                    path,
                    format!(
                        "content_block_delta after content_block_stop of block {index} ignored"
                    ),
                );
            }
            return;
        }
        if matches!(block.kind, BlockKind::Dropped) {
            return;
        }
        let delta_extra = match &delta {
            anthropic::BlockDelta::TextDelta(d) => Some(&d.extra),
            anthropic::BlockDelta::InputJsonDelta(d) => Some(&d.extra),
            anthropic::BlockDelta::ThinkingDelta(d) => Some(&d.extra),
            anthropic::BlockDelta::SignatureDelta(d) => Some(&d.extra),
            anthropic::BlockDelta::CitationsDelta(d) => Some(&d.extra),
            anthropic::BlockDelta::Unknown(_) => None,
        };
        if let Some(delta_extra) = delta_extra {
            if !reportable(delta_extra).is_empty() && block.first("delta_extra") {
                report_extra(losses, &delta_path, delta_extra);
            }
        }
        // Text, thinking and signatures need nothing from the block to be carried, so they
        // follow the delta's own type even in a block of another type.
        let delta = match delta {
            anthropic::BlockDelta::TextDelta(anthropic::TextDelta { text, extra: _ }) => {
                (!text.is_empty()).then(|| openai::Delta {
                    content: Some(text),
                    ..Default::default()
                })
            }
            anthropic::BlockDelta::ThinkingDelta(anthropic::ThinkingDelta {
                thinking,
                extra: _,
            }) => (!thinking.is_empty()).then(|| {
                let entry = next_entry(&mut block.thinking_entry, &mut self.next_thinking_entry);
                thinking_delta(entry, thinking)
            }),
            anthropic::BlockDelta::SignatureDelta(anthropic::SignatureDelta {
                signature,
                extra: _,
            }) => {
                if let BlockKind::Thinking {
                    pending_signature,
                    signed,
                } = &mut block.kind
                {
                    *pending_signature = None;
                    *signed = true;
                }
                (!signature.is_empty()).then(|| {
                    let entry =
                        next_entry(&mut block.thinking_entry, &mut self.next_thinking_entry);
                    signature_delta(entry, signature)
                })
            }
            anthropic::BlockDelta::InputJsonDelta(anthropic::InputJsonDelta {
                partial_json,
                extra: _,
            }) => match &mut block.kind {
                BlockKind::ToolUse {
                    tool_index,
                    arguments_sent,
                    ..
                } => {
                    if partial_json.is_empty() {
                        None
                    } else {
                        *arguments_sent = true;
                        Some(arguments_delta(*tool_index, partial_json))
                    }
                }
                _ => {
                    if block.first("input_json_delta") {
                        losses.dropped(
                            format!("{delta_path}/partial_json"),
                            format!("input_json_delta outside a tool_use block ({index}) ignored"),
                        );
                    }
                    None
                }
            },
            anthropic::BlockDelta::CitationsDelta(anthropic::CitationsDelta {
                citation: _,
                extra: _,
            }) => {
                if block.first("citations") {
                    losses.dropped(
                        format!("{delta_path}/citation"),
                        "citations have no OpenAI chat-completion equivalent (reported once per block)",
                    );
                }
                None
            }
            anthropic::BlockDelta::Unknown(value) => {
                let name = value
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                if block.first(&format!("unknown_delta:{name}")) {
                    losses.dropped(
                        &delta_path,
                        format!("unknown delta type `{name}` has no OpenAI equivalent (reported once per block)"),
                    );
                }
                None
            }
        };
        if let Some(delta) = delta {
            out.push(self.chunk(delta, None));
        }
    }

    fn on_block_stop(
        &mut self,
        stop: anthropic::ContentBlockStop,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<OpenAiStreamItem>,
    ) {
        let anthropic::ContentBlockStop { index, extra } = stop;
        report_extra(losses, path, &extra);
        // A stop for a block never started closes nothing, and loses nothing.
        let Some(block) = self.blocks.get_mut(&index) else {
            return;
        };
        if block.stopped {
            return;
        }
        block.stopped = true;
        let delta = match &mut block.kind {
            BlockKind::ToolUse {
                tool_index,
                arguments_sent: false,
                start_input,
            } => {
                // Arguments that never streamed: a call with no arguments, or input given whole
                // in the start. Either way the client must end up with parseable JSON.
                let arguments = match start_input {
                    Value::Null => "{}".to_owned(),
                    Value::Object(map) if map.is_empty() => "{}".to_owned(),
                    other => other.to_string(),
                };
                Some(arguments_delta(*tool_index, arguments))
            }
            BlockKind::Thinking {
                pending_signature,
                signed: false,
            } => pending_signature.take().map(|signature| {
                let entry = next_entry(&mut block.thinking_entry, &mut self.next_thinking_entry);
                signature_delta(entry, signature)
            }),
            _ => None,
        };
        if let Some(delta) = delta {
            out.push(self.chunk(delta, None));
        }
    }

    fn on_message_delta(
        &mut self,
        event: anthropic::MessageDelta,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<OpenAiStreamItem>,
    ) {
        let anthropic::MessageDelta {
            delta,
            usage,
            extra,
        } = event;
        let anthropic::MessageDeltaBody {
            stop_reason,
            stop_sequence,
            extra: delta_extra,
        } = delta;
        report_extra(losses, path, &extra);
        report_extra(losses, &format!("{path}/delta"), &delta_extra);
        self.merge_usage(usage, format!("{path}/usage"));
        if let Some(sequence) = stop_sequence {
            losses.dropped(
                format!("{path}/delta/stop_sequence"),
                format!("OpenAI does not say which stop sequence ended the output ({sequence:?})"),
            );
        }
        let Some(stop_reason) = stop_reason else {
            return;
        };
        if self.finish_sent {
            if self.stop_reason.as_deref() != Some(stop_reason.as_str()) {
                losses.dropped(
                    format!("{path}/delta/stop_reason"),
                    format!("stop_reason `{stop_reason}` came after the finish_reason was sent"),
                );
            }
            return;
        }
        self.stop_reason = Some(stop_reason);
        let finish_reason = self.finish_reason(&format!("{path}/delta/stop_reason"), losses);
        self.send_finish(finish_reason, out);
    }

    fn on_message_stop(
        &mut self,
        stop: anthropic::Empty,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<OpenAiStreamItem>,
    ) {
        let anthropic::Empty { extra } = stop;
        report_extra(losses, path, &extra);
        if !self.finish_sent {
            // A stop reason from message_start still counts; with none at all, a message that
            // calls tools ends with `tool_calls` so the agent runs them.
            let finish_reason = if self.stop_reason.is_some() {
                self.finish_reason(path, losses)
            } else {
                let finish_reason = if self.next_tool_index > 0 {
                    "tool_calls"
                } else {
                    "stop"
                };
                losses.synthesized(
                    path,
                    format!("no message_delta gave a stop_reason; finish_reason `{finish_reason}` synthesized"),
                );
                finish_reason
            };
            self.send_finish(finish_reason, out);
        }
        if self.include_usage {
            let usage = self.openai_usage(path, losses);
            out.push(OpenAiStreamItem::Chunk(openai::ChatChunk {
                id: self.id.clone(),
                object: openai::chunk_object(),
                created: self.created,
                model: self.model.clone(),
                choices: Vec::new(),
                usage: Some(usage),
                system_fingerprint: None,
                service_tier: None,
                extra: Extra::new(),
            }));
        }
        self.end(out);
    }

    fn on_error(
        &mut self,
        event: anthropic::ErrorEvent,
        path: &str,
        losses: &mut Losses,
        out: &mut Vec<OpenAiStreamItem>,
    ) {
        let anthropic::ErrorEvent {
            error,
            request_id,
            mut extra,
        } = event;
        // The event's `type` tag is the body's own `type`, not an unknown field.
        extra.remove("type");
        let status = vocab::status_for_anthropic_error_type(&error.kind);
        let body = anthropic::ErrorBody {
            kind: "error".to_owned(),
            error,
            request_id,
            extra,
        };
        // The error converter's paths are relative to the body; the body is this event.
        let mut body_losses = Losses::new();
        let (_status, body) = error_body::anthropic_to_openai(status, body, &mut body_losses);
        for loss in body_losses.into_vec() {
            losses.push(format!("{path}{}", loss.path), loss.kind, loss.reason);
        }
        out.push(OpenAiStreamItem::Error(body));
        self.end(out);
    }

    /// The finish_reason for the stop reason known so far. Any client tool call makes it
    /// `tool_calls`, whatever the upstream said, so an agent runs the calls it received.
    fn finish_reason(&self, path: &str, losses: &mut Losses) -> &'static str {
        let stop_reason = self.stop_reason.as_deref();
        let (mapped, exact) = stop_reason.map_or(("stop", true), vocab::finish_reason_for);
        if self.next_tool_index > 0 {
            if mapped != "tool_calls" {
                losses.approximated(
                    path,
                    format!(
                        "stop_reason `{}` reported as `tool_calls` because the message calls tools",
                        stop_reason.unwrap_or("none")
                    ),
                );
            }
            return "tool_calls";
        }
        // No tool call reached the client (the calls were of block types OpenAI cannot
        // carry): `tool_calls` would send an agent looking for calls that are not there.
        if mapped == "tool_calls" {
            losses.approximated(
                path,
                format!(
                    "stop_reason `{}` reported as `stop` because no tool call could be carried",
                    stop_reason.unwrap_or("none")
                ),
            );
            return "stop";
        }
        if !exact {
            losses.approximated(
                path,
                format!(
                    "stop_reason `{}` has no exact OpenAI finish_reason; sent as `{mapped}`",
                    stop_reason.unwrap_or("none")
                ),
            );
        }
        mapped
    }

    fn send_finish(&mut self, finish_reason: &str, out: &mut Vec<OpenAiStreamItem>) {
        self.finish_sent = true;
        out.push(self.chunk(openai::Delta::default(), Some(finish_reason)));
    }

    fn end(&mut self, out: &mut Vec<OpenAiStreamItem>) {
        self.finished = true;
        out.push(OpenAiStreamItem::Done);
    }

    /// Keeps the largest known value of each count (`message_delta` counts are cumulative, and
    /// newer APIs repeat the input counts there) and the latest value of each unknown field,
    /// remembering where each came from.
    fn merge_usage(&mut self, usage: anthropic::Usage, path: String) {
        let anthropic::Usage {
            input_tokens,
            cache_creation_input_tokens,
            cache_read_input_tokens,
            output_tokens,
            extra,
        } = usage;
        let counts = [
            ("input_tokens", &mut self.usage.input_tokens, input_tokens),
            (
                "cache_creation_input_tokens",
                &mut self.usage.cache_creation_input_tokens,
                cache_creation_input_tokens,
            ),
            (
                "cache_read_input_tokens",
                &mut self.usage.cache_read_input_tokens,
                cache_read_input_tokens,
            ),
            (
                "output_tokens",
                &mut self.usage.output_tokens,
                output_tokens,
            ),
        ];
        for (key, known, new) in counts {
            let Some(new) = new else { continue };
            if known.is_none_or(|known| new > known) {
                *known = Some(new);
                self.usage_sources.insert(key.to_owned(), path.clone());
            }
        }
        // A `null` says nothing, so it never replaces a value an earlier event gave.
        for (key, value) in extra.into_iter().filter(|(_, value)| !value.is_null()) {
            self.usage_sources
                .insert(escape_pointer(&key), path.clone());
            self.usage.extra.insert(key, value);
        }
        self.last_usage_path = Some(path);
    }

    /// The merged usage in OpenAI form. The usage conversion decides what is lost; its losses
    /// are moved to the event each field came from.
    fn openai_usage(&self, stop_path: &str, losses: &mut Losses) -> openai::Usage {
        let mut usage_losses = Losses::new();
        let usage = response_anthropic_to_openai::usage(&self.usage, &mut usage_losses, "");
        let fallback = self.last_usage_path.as_deref().unwrap_or(stop_path);
        for loss in usage_losses.into_vec() {
            let field = loss.path.trim_start_matches('/');
            let field = field.split('/').next().unwrap_or_default();
            let base = self
                .usage_sources
                .get(field)
                .map_or(fallback, String::as_str);
            losses.push(format!("{base}{}", loss.path), loss.kind, loss.reason);
        }
        usage
    }

    fn chunk(&self, delta: openai::Delta, finish_reason: Option<&str>) -> OpenAiStreamItem {
        OpenAiStreamItem::Chunk(openai::ChatChunk {
            id: self.id.clone(),
            object: openai::chunk_object(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![openai::ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_owned),
                logprobs: Some(Value::Null),
                extra: Extra::new(),
            }],
            usage: None,
            system_fingerprint: None,
            service_tier: None,
            extra: Extra::new(),
        })
    }
}

/// The block a delta implies when its `content_block_start` never came. Text, thinking and
/// signatures can still be carried; anything else needs the missing start.
fn orphan_block(
    index: u64,
    delta: &anthropic::BlockDelta,
    path: &str,
    losses: &mut Losses,
) -> Block {
    let kind = match delta {
        anthropic::BlockDelta::TextDelta(_) => Some(("text", BlockKind::Text)),
        anthropic::BlockDelta::ThinkingDelta(_) | anthropic::BlockDelta::SignatureDelta(_) => {
            Some((
                "thinking",
                BlockKind::Thinking {
                    pending_signature: None,
                    signed: false,
                },
            ))
        }
        _ => None,
    };
    match kind {
        Some((name, kind)) => {
            losses.synthesized(
                path,
                format!("block {index} was never started; treated as a `{name}` block"),
            );
            Block::new(kind)
        }
        None => {
            losses.dropped(
                path,
                format!("block {index} was never started, so its deltas cannot be carried"),
            );
            Block::new(BlockKind::Dropped)
        }
    }
}

fn dropped_block_reason(block: &anthropic::ContentBlock) -> String {
    let kind = block.type_name();
    match block {
        anthropic::ContentBlock::Unknown(value) if kind == "server_tool_use" => {
            let name = value.get("name").and_then(Value::as_str).unwrap_or("?");
            format!(
                "server tool call `{name}` ran upstream; OpenAI streams have no equivalent block"
            )
        }
        _ => format!("`{kind}` block has no OpenAI chat-completion equivalent"),
    }
}

/// Reports a text block's `citations` unless it is absent, `null` or empty (streams open cited
/// text blocks with `citations: []` and send the citations as deltas).
fn report_citations_value(losses: &mut Losses, block_path: &str, citations: Option<&Value>) {
    let empty = match citations {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items.is_empty(),
        Some(_) => false,
    };
    if !empty {
        losses.dropped(
            format!("{block_path}/citations"),
            "citations have no OpenAI chat-completion equivalent",
        );
    }
}

/// The keys of an `extra` map that are worth reporting: not `null` (see the module doc), and
/// not `type`, the tag of a tagged object, which the protocol layer's tagged-enum parsing also
/// leaves in `extra`.
fn reportable(extra: &Extra) -> Extra {
    extra
        .iter()
        .filter(|(key, value)| !value.is_null() && key.as_str() != "type")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Reports the [`reportable`] keys of an `extra` map as dropped.
fn report_extra(losses: &mut Losses, base: &str, extra: &Extra) {
    losses.dropped_extra(base, &reportable(extra), "OpenAI");
}

/// The `thinking_blocks[].index` of a block: its own once given, else the next free one.
fn next_entry(slot: &mut Option<u64>, next: &mut u64) -> u64 {
    *slot.get_or_insert_with(|| {
        *next += 1;
        *next - 1
    })
}

/// A piece of thinking text, for flat-reasoning clients and for index-accumulating ones.
fn thinking_delta(entry_index: u64, text: String) -> openai::Delta {
    let mut entry = Extra::new();
    entry.insert("index".to_owned(), Value::from(entry_index));
    entry.insert("type".to_owned(), Value::from("thinking"));
    entry.insert("thinking".to_owned(), Value::from(text.as_str()));
    openai::Delta {
        reasoning_content: Some(text),
        thinking_blocks: Some(vec![Value::Object(entry)]),
        ..Default::default()
    }
}

fn signature_delta(entry_index: u64, signature: String) -> openai::Delta {
    let mut entry = Extra::new();
    entry.insert("index".to_owned(), Value::from(entry_index));
    entry.insert("type".to_owned(), Value::from("thinking"));
    entry.insert("thinking".to_owned(), Value::from(""));
    entry.insert("signature".to_owned(), Value::from(signature));
    openai::Delta {
        thinking_blocks: Some(vec![Value::Object(entry)]),
        ..Default::default()
    }
}

fn arguments_delta(tool_index: u64, arguments: String) -> openai::Delta {
    openai::Delta {
        tool_calls: Some(vec![openai::ToolCallDelta {
            index: tool_index,
            id: None,
            kind: None,
            function: Some(openai::FunctionCallDelta {
                name: None,
                arguments: Some(arguments),
                extra: Extra::new(),
            }),
            extra: Extra::new(),
        }]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::convert::{Loss, LossKind, ToolNames};

    const CREATED: u64 = 1_700_000_000;

    fn ctx() -> ResponseContext {
        ResponseContext {
            created: Some(CREATED),
            requested_model: Some("claude-requested".to_owned()),
            ..Default::default()
        }
    }

    fn usage_ctx() -> ResponseContext {
        ResponseContext {
            include_usage: true,
            ..ctx()
        }
    }

    fn event(value: &Value) -> anthropic::StreamEvent {
        serde_json::from_value::<anthropic::StreamEvent>(value.clone()).expect("test event parses")
    }

    fn item_json(item: &OpenAiStreamItem) -> Value {
        match item {
            OpenAiStreamItem::Chunk(chunk) => {
                serde_json::to_value(chunk).expect("chunk serialises")
            }
            OpenAiStreamItem::Error(body) => serde_json::to_value(body).expect("error serialises"),
            OpenAiStreamItem::Done => json!("[DONE]"),
        }
    }

    /// Pushes every event, then `finish`, and returns the items as JSON plus the losses.
    fn run(ctx: ResponseContext, events: &[Value]) -> (Vec<Value>, Vec<Loss>) {
        let mut machine = AnthropicToOpenAi::new(ctx);
        let mut losses = Losses::new();
        let mut out = Vec::new();
        for value in events {
            machine.push(event(value), &mut losses, &mut out);
        }
        machine.finish(&mut losses, &mut out);
        assert!(machine.is_finished());
        assert_eq!(
            out.iter()
                .filter(|item| **item == OpenAiStreamItem::Done)
                .count(),
            1,
            "exactly one [DONE]"
        );
        assert_eq!(
            out.last(),
            Some(&OpenAiStreamItem::Done),
            "[DONE] comes last"
        );
        (out.iter().map(item_json).collect(), losses.into_vec())
    }

    fn message_start(usage: Value) -> Value {
        json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],
            "model":"claude-test","stop_reason":null,"stop_sequence":null,"usage":usage}})
    }

    fn start() -> Value {
        message_start(json!({"input_tokens":10,"output_tokens":1}))
    }

    fn block_start(index: u64, block: Value) -> Value {
        json!({"type":"content_block_start","index":index,"content_block":block})
    }

    fn delta(index: u64, delta: Value) -> Value {
        json!({"type":"content_block_delta","index":index,"delta":delta})
    }

    fn text(index: u64, text: &str) -> Value {
        delta(index, json!({"type":"text_delta","text":text}))
    }

    fn thinking(index: u64, thinking: &str) -> Value {
        delta(index, json!({"type":"thinking_delta","thinking":thinking}))
    }

    fn args(index: u64, partial: &str) -> Value {
        delta(
            index,
            json!({"type":"input_json_delta","partial_json":partial}),
        )
    }

    fn tool_start(index: u64, id: &str, name: &str) -> Value {
        block_start(
            index,
            json!({"type":"tool_use","id":id,"name":name,"input":{}}),
        )
    }

    fn block_stop(index: u64) -> Value {
        json!({"type":"content_block_stop","index":index})
    }

    fn message_delta(stop_reason: &str, usage: Value) -> Value {
        json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":usage})
    }

    fn end(stop_reason: &str) -> [Value; 2] {
        [
            message_delta(stop_reason, json!({"output_tokens":5})),
            json!({"type":"message_stop"}),
        ]
    }

    fn chunks(items: &[Value]) -> Vec<&Value> {
        items
            .iter()
            .filter(|item| item.get("object").is_some())
            .collect()
    }

    fn deltas(items: &[Value]) -> Vec<&Value> {
        chunks(items)
            .into_iter()
            .filter_map(|c| c["choices"].get(0).map(|choice| &choice["delta"]))
            .collect()
    }

    /// What an OpenAI SDK accumulator would build from the chunks.
    #[derive(Debug, Default)]
    struct Accumulated {
        content: String,
        reasoning: String,
        /// By tool index: (id, name, arguments).
        tool_calls: BTreeMap<u64, (String, String, String)>,
        thinking_blocks: Vec<Value>,
        finish_reasons: Vec<String>,
        usage: Option<Value>,
    }

    /// The OpenAI SDKs' list-delta rule: entries merge by `index` (no gaps), strings
    /// concatenate, `index` and `type` are replaced.
    fn merge_thinking_entry(blocks: &mut Vec<Value>, entry: &Value) {
        let index = entry["index"]
            .as_u64()
            .expect("thinking_blocks entry without index") as usize;
        assert!(
            index <= blocks.len(),
            "gap before thinking_blocks index {index}"
        );
        if index == blocks.len() {
            blocks.push(entry.clone());
            return;
        }
        let block = blocks[index].as_object_mut().expect("block");
        for (key, value) in entry.as_object().expect("entry") {
            match (block.get_mut(key), value) {
                (Some(Value::String(known)), Value::String(more))
                    if key != "type" && key != "index" =>
                {
                    known.push_str(more)
                }
                _ => {
                    block.insert(key.clone(), value.clone());
                }
            }
        }
    }

    fn accumulate(items: &[Value]) -> Accumulated {
        let mut acc = Accumulated::default();
        for chunk in chunks(items) {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["created"], CREATED);
            assert!(
                chunk["id"].is_string() && chunk["model"].is_string(),
                "{chunk}"
            );
            if let Some(usage) = chunk.get("usage") {
                assert_eq!(chunk["choices"], json!([]));
                acc.usage = Some(usage.clone());
                continue;
            }
            let choices = chunk["choices"].as_array().expect("choices");
            assert_eq!(choices.len(), 1);
            let choice = &choices[0];
            assert_eq!(choice["index"], 0);
            assert_eq!(choice["logprobs"], Value::Null);
            assert!(
                choice
                    .as_object()
                    .expect("choice")
                    .contains_key("finish_reason"),
                "{chunk}"
            );
            if let Some(reason) = choice["finish_reason"].as_str() {
                acc.finish_reasons.push(reason.to_owned());
            }
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str() {
                acc.content.push_str(text);
            }
            if let Some(text) = delta["reasoning_content"].as_str() {
                acc.reasoning.push_str(text);
            }
            for entry in delta["thinking_blocks"].as_array().into_iter().flatten() {
                merge_thinking_entry(&mut acc.thinking_blocks, entry);
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = call["index"].as_u64().expect("tool index");
                let entry = acc.tool_calls.entry(index).or_default();
                if let Some(id) = call["id"].as_str() {
                    assert!(entry.0.is_empty(), "id sent twice for index {index}");
                    entry.0 = id.to_owned();
                    assert_eq!(call["type"], "function");
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    entry.1.push_str(name);
                }
                if let Some(arguments) = call["function"]["arguments"].as_str() {
                    entry.2.push_str(arguments);
                }
            }
        }
        acc
    }

    fn paths(losses: &[Loss]) -> Vec<(&str, LossKind)> {
        losses
            .iter()
            .map(|loss| (loss.path.as_str(), loss.kind))
            .collect()
    }

    #[test]
    fn text_stream_exact_chunks() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                block_start(0, json!({"type":"text","text":""})),
                json!({"type":"ping"}),
                text(0, "Hello"),
                text(0, "!"),
                block_stop(0),
                message_delta("end_turn", json!({"output_tokens":15})),
                json!({"type":"message_stop"}),
            ],
        );
        let chunk = |delta: Value, finish: Value| {
            json!({"id":"msg_1","object":"chat.completion.chunk","created":CREATED,"model":"claude-test",
                "choices":[{"index":0,"delta":delta,"finish_reason":finish,"logprobs":null}]})
        };
        assert_eq!(
            items,
            vec![
                chunk(json!({"role":"assistant","content":""}), Value::Null),
                chunk(json!({"content":"Hello"}), Value::Null),
                chunk(json!({"content":"!"}), Value::Null),
                chunk(json!({}), json!("stop")),
                json!("[DONE]"),
            ]
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn thinking_with_signature_then_text() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                block_start(0, json!({"type":"thinking","thinking":"","signature":""})),
                thinking(0, "Let me think"),
                thinking(0, ""),
                thinking(0, " about it."),
                delta(0, json!({"type":"signature_delta","signature":"SIG=="})),
                block_stop(0),
                block_start(1, json!({"type":"text","text":""})),
                text(1, "Answer."),
                block_stop(1),
                end("end_turn")[0].clone(),
                end("end_turn")[1].clone(),
            ],
        );
        let acc = accumulate(&items);
        assert_eq!(acc.reasoning, "Let me think about it.");
        assert_eq!(acc.content, "Answer.");
        assert_eq!(
            acc.thinking_blocks,
            vec![
                json!({"index":0,"type":"thinking","thinking":"Let me think about it.","signature":"SIG=="})
            ]
        );
        assert_eq!(acc.finish_reasons, vec!["stop"]);
        // Empty thinking deltas send nothing; the signature entry comes after all the reasoning.
        let kinds: Vec<_> = deltas(&items)
            .iter()
            .map(|d| {
                d.as_object()
                    .expect("delta")
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                "role,content",
                "reasoning_content,thinking_blocks",
                "reasoning_content,thinking_blocks",
                "thinking_blocks",
                "content",
                ""
            ]
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn signature_given_in_the_start_ends_its_block_at_stop() {
        let (items, _) = run(
            ctx(),
            &[
                start(),
                block_start(
                    0,
                    json!({"type":"thinking","thinking":"whole","signature":"S1"}),
                ),
                block_stop(0),
                block_start(1, json!({"type":"thinking","thinking":"","signature":""})),
                delta(1, json!({"type":"signature_delta","signature":"S2"})),
                block_stop(1),
                end("end_turn")[0].clone(),
                end("end_turn")[1].clone(),
            ],
        );
        let acc = accumulate(&items);
        assert_eq!(acc.reasoning, "whole");
        // The second block is signature-only: kept, for replay.
        assert_eq!(
            acc.thinking_blocks,
            vec![
                json!({"index":0,"type":"thinking","thinking":"whole","signature":"S1"}),
                json!({"index":1,"type":"thinking","thinking":"","signature":"S2"})
            ]
        );
    }

    #[test]
    fn redacted_thinking_is_carried_verbatim() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                block_start(0, json!({"type":"redacted_thinking","data":"EqkECkYIBxgC"})),
                block_stop(0),
                block_start(1, json!({"type":"text","text":""})),
                text(1, "Hi"),
                block_stop(1),
                end("end_turn")[0].clone(),
                end("end_turn")[1].clone(),
            ],
        );
        assert_eq!(
            deltas(&items)[1],
            &json!({"thinking_blocks":[{"index":0,"type":"redacted_thinking","data":"EqkECkYIBxgC"}]})
        );
        assert_eq!(accumulate(&items).content, "Hi");
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn parallel_tool_calls_after_text_and_thinking_get_indices_0_1_2() {
        let mut events = vec![
            start(),
            block_start(0, json!({"type":"thinking","thinking":"","signature":""})),
            thinking(0, "plan"),
            delta(0, json!({"type":"signature_delta","signature":"S"})),
            block_stop(0),
            block_start(1, json!({"type":"text","text":""})),
            text(1, "Calling three tools."),
            block_stop(1),
        ];
        for (i, city) in ["Paris", "Oslo", "Lima"].iter().enumerate() {
            let index = i as u64 + 2;
            events.push(tool_start(index, &format!("toolu_{i}"), "get_weather"));
            events.push(args(index, ""));
            events.push(args(index, "{\"city\":"));
            events.push(args(index, &format!(" \"{city}\"}}")));
            events.push(block_stop(index));
        }
        events.extend(end("tool_use"));
        let (items, losses) = run(ctx(), &events);
        let acc = accumulate(&items);
        let expected: BTreeMap<u64, (String, String, String)> = ["Paris", "Oslo", "Lima"]
            .iter()
            .enumerate()
            .map(|(i, city)| {
                (
                    i as u64,
                    (
                        format!("toolu_{i}"),
                        "get_weather".to_owned(),
                        format!("{{\"city\": \"{city}\"}}"),
                    ),
                )
            })
            .collect();
        assert_eq!(acc.tool_calls, expected);
        assert_eq!(acc.finish_reasons, vec!["tool_calls"]);
        // The first chunk of each call names it, with empty arguments.
        let first = deltas(&items)
            .into_iter()
            .find(|d| d["tool_calls"][0]["id"] == "toolu_1")
            .expect("second call's first chunk");
        assert_eq!(
            first,
            &json!({"tool_calls":[{"index":1,"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":""}}]})
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn tool_without_arguments_ends_with_empty_object() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                tool_start(0, "toolu_a", "now"),
                args(0, ""),
                block_stop(0),
                end("tool_use")[0].clone(),
                end("tool_use")[1].clone(),
            ],
        );
        assert_eq!(accumulate(&items).tool_calls[&0].2, "{}");
        assert_eq!(
            deltas(&items)[2],
            &json!({"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]})
        );
        assert!(losses.is_empty(), "{losses:?}");
    }

    #[test]
    fn input_that_arrives_only_in_the_start_is_sent_at_stop() {
        let (items, _) = run(
            ctx(),
            &[
                start(),
                block_start(
                    0,
                    json!({"type":"tool_use","id":"toolu_a","name":"search","input":{"q":"rust \"serde\"","n":3}}),
                ),
                block_stop(0),
                end("tool_use")[0].clone(),
                end("tool_use")[1].clone(),
            ],
        );
        let arguments = &accumulate(&items).tool_calls[&0].2;
        assert_eq!(arguments, r#"{"q":"rust \"serde\"","n":3}"#);
    }

    #[test]
    fn long_arguments_split_everywhere_concatenate_exactly() {
        let value = json!({
            "path": "C:\\Users\\zoë\\\"quoted\" dir\\file.txt",
            "content": "line 1\nline 2 with \"quotes\" and \\backslashes\\ and tabs\t\u{1F600} 日本語 ✓",
            "nested": {"list": [1, 2.5, null, true, "\u{0007}"], "empty": {}},
        });
        let arguments = serde_json::to_string(&value).expect("serialises");
        // One delta per character (the finest a string can be split), then random-ish sizes.
        let chars: Vec<char> = arguments.chars().collect();
        for step in [1usize, 2, 3, 7, 64] {
            let mut events = vec![start(), tool_start(0, "toolu_long", "write_file")];
            for piece in chars.chunks(step) {
                events.push(args(0, &piece.iter().collect::<String>()));
            }
            events.push(block_stop(0));
            events.extend(end("tool_use"));
            let (items, losses) = run(ctx(), &events);
            let received = &accumulate(&items).tool_calls[&0].2;
            assert_eq!(received, &arguments, "step {step}");
            assert_eq!(
                serde_json::from_str::<Value>(received).expect("valid JSON"),
                value
            );
            assert!(losses.is_empty(), "{losses:?}");
        }
    }

    #[test]
    fn server_tool_blocks_between_tools_do_not_shift_indices_and_are_reported() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                tool_start(0, "toolu_a", "first"),
                args(0, "{}"),
                block_stop(0),
                block_start(
                    1,
                    json!({"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}),
                ),
                args(1, "{\"query\": \"weather\"}"),
                block_stop(1),
                block_start(
                    2,
                    json!({"type":"web_search_tool_result","tool_use_id":"srvtoolu_1",
                        "content":[{"type":"web_search_result","title":"t","url":"https://example.com","encrypted_content":"x"}]}),
                ),
                block_stop(2),
                tool_start(3, "toolu_b", "second"),
                args(3, "{\"x\":1}"),
                block_stop(3),
                end("tool_use")[0].clone(),
                end("tool_use")[1].clone(),
            ],
        );
        let acc = accumulate(&items);
        assert_eq!(
            acc.tool_calls.keys().copied().collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(
            acc.tool_calls[&0],
            ("toolu_a".to_owned(), "first".to_owned(), "{}".to_owned())
        );
        assert_eq!(
            acc.tool_calls[&1],
            (
                "toolu_b".to_owned(),
                "second".to_owned(),
                "{\"x\":1}".to_owned()
            )
        );
        assert_eq!(
            paths(&losses),
            vec![
                ("/events/4/content_block", LossKind::Dropped),
                ("/events/7/content_block", LossKind::Dropped)
            ]
        );
        assert!(
            losses[0].reason.contains("web_search"),
            "{}",
            losses[0].reason
        );
        assert!(
            losses[1].reason.contains("web_search_tool_result"),
            "{}",
            losses[1].reason
        );
    }

    #[test]
    fn citations_are_reported_once_per_block() {
        let citation = |text: &str| {
            delta(
                1,
                json!({"type":"citations_delta","citation":{"type":"web_search_result_location","cited_text":text,"url":"https://example.com"}}),
            )
        };
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                block_start(1, json!({"citations":[],"type":"text","text":""})),
                citation("a"),
                citation("b"),
                text(1, "cited"),
                block_stop(1),
                block_start(2, json!({"citations":[],"type":"text","text":""})),
                delta(
                    2,
                    json!({"type":"citations_delta","citation":{"type":"char_location"}}),
                ),
                block_stop(2),
                end("end_turn")[0].clone(),
                end("end_turn")[1].clone(),
            ],
        );
        assert_eq!(accumulate(&items).content, "cited");
        assert_eq!(
            paths(&losses),
            vec![
                ("/events/2/delta/citation", LossKind::Dropped),
                ("/events/7/delta/citation", LossKind::Dropped)
            ]
        );
    }

    /// Checks that every usage loss points into the usage object its field came from, without
    /// assuming which usage fields the shared usage conversion counts as lost.
    fn assert_usage_losses_point_at(losses: &[Loss], sources: &[(&str, &str)]) {
        for loss in losses {
            let Some((before, after)) = loss.path.split_once("/usage/") else {
                continue;
            };
            let field = after.split('/').next().unwrap_or_default();
            let expected = sources
                .iter()
                .find(|(key, _)| *key == field)
                .map(|(_, base)| *base);
            assert_eq!(
                Some(format!("{before}/usage").as_str()),
                expected,
                "{loss:?}"
            );
        }
    }

    #[test]
    fn usage_chunk_only_when_asked_and_counts_cache_tokens() {
        let events = [
            message_start(json!({"input_tokens":10,"cache_read_input_tokens":100,
                "cache_creation_input_tokens":50,"output_tokens":1})),
            block_start(0, json!({"type":"text","text":""})),
            text(0, "ok"),
            block_stop(0),
            message_delta("end_turn", json!({"output_tokens":5})),
            json!({"type":"message_stop"}),
        ];
        let (with_usage, losses) = run(usage_ctx(), &events);
        let usage_chunk = &with_usage[with_usage.len() - 2];
        assert_eq!(usage_chunk["choices"], json!([]));
        assert_eq!(usage_chunk["id"], "msg_1");
        assert_eq!(usage_chunk["created"], CREATED);
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], 160);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], 5);
        assert_eq!(usage_chunk["usage"]["total_tokens"], 165);
        assert_eq!(
            usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"],
            100
        );
        // The finish chunk comes before the usage chunk, as OpenAI sends them.
        assert_eq!(
            with_usage[with_usage.len() - 3]["choices"][0]["finish_reason"],
            "stop"
        );
        assert!(
            losses.iter().all(|loss| loss.path.contains("/usage/")),
            "{losses:?}"
        );
        let start_usage = "/events/0/message/usage";
        assert_usage_losses_point_at(
            &losses,
            &[
                ("input_tokens", start_usage),
                ("cache_read_input_tokens", start_usage),
                ("cache_creation_input_tokens", start_usage),
                ("output_tokens", "/events/4/usage"),
            ],
        );

        let (without_usage, losses) = run(ctx(), &events);
        assert!(losses.is_empty(), "{losses:?}");
        assert_eq!(without_usage.len(), with_usage.len() - 1);
        assert!(without_usage.iter().all(|item| item.get("usage").is_none()));
    }

    #[test]
    fn usage_keeps_the_largest_counts_and_losses_point_at_their_event() {
        let (items, losses) = run(
            usage_ctx(),
            &[
                message_start(json!({"input_tokens":598,"cache_creation_input_tokens":0,
                    "cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":7},
                    "output_tokens":8,"service_tier":"priority"})),
                message_delta(
                    "end_turn",
                    json!({"input_tokens":598,"output_tokens":92,
                        "output_tokens_details":{"thinking_tokens":53},
                        "server_tool_use":{"web_search_requests":1}}),
                ),
                json!({"type":"message_stop"}),
            ],
        );
        let usage = accumulate(&items).usage.expect("usage chunk");
        assert_eq!(usage["prompt_tokens"], 598);
        assert_eq!(usage["completion_tokens"], 92);
        let (start_usage, delta_usage) = ("/events/0/message/usage", "/events/1/usage");
        assert_usage_losses_point_at(
            &losses,
            &[
                ("input_tokens", start_usage),
                ("cache_read_input_tokens", start_usage),
                ("cache_creation_input_tokens", start_usage),
                ("cache_creation", start_usage),
                ("service_tier", start_usage),
                ("output_tokens", delta_usage),
                ("output_tokens_details", delta_usage),
                ("server_tool_use", delta_usage),
            ],
        );
        // An unknown field with a real value is never lost silently.
        assert!(losses
            .iter()
            .any(|loss| loss.path == "/events/1/usage/server_tool_use"));
    }

    #[test]
    fn usage_absent_everywhere_still_gives_a_usage_chunk() {
        let (items, losses) = run(
            usage_ctx(),
            &[
                message_start(json!({})),
                message_delta("end_turn", json!({})),
                json!({"type":"message_stop"}),
            ],
        );
        let usage = accumulate(&items).usage.expect("usage chunk");
        assert_eq!(usage["total_tokens"], 0);
        // Losses about fields no event carried point at the last usage object.
        assert!(
            losses
                .iter()
                .all(|loss| loss.path.starts_with("/events/1/usage")),
            "{losses:?}"
        );
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop_reason, finish_reason, loss) in [
            ("end_turn", "stop", None),
            ("max_tokens", "length", None),
            ("stop_sequence", "stop", None),
            ("refusal", "content_filter", None),
            ("pause_turn", "stop", Some(LossKind::Approximated)),
            (
                "model_context_window_exceeded",
                "length",
                Some(LossKind::Approximated),
            ),
        ] {
            let events = [
                start(),
                end(stop_reason)[0].clone(),
                end(stop_reason)[1].clone(),
            ];
            let (items, losses) = run(ctx(), &events);
            assert_eq!(
                accumulate(&items).finish_reasons,
                vec![finish_reason],
                "{stop_reason}"
            );
            let expected: Vec<_> = loss
                .map(|kind| ("/events/1/delta/stop_reason", kind))
                .into_iter()
                .collect();
            assert_eq!(paths(&losses), expected, "{stop_reason}");
        }
        // tool_use, and any stop reason of a message that calls tools, finish as tool_calls.
        for (stop_reason, loss) in [
            ("tool_use", None),
            ("end_turn", Some(LossKind::Approximated)),
        ] {
            let events = [
                start(),
                tool_start(0, "toolu_a", "f"),
                block_stop(0),
                end(stop_reason)[0].clone(),
                end(stop_reason)[1].clone(),
            ];
            let (items, losses) = run(ctx(), &events);
            assert_eq!(
                accumulate(&items).finish_reasons,
                vec!["tool_calls"],
                "{stop_reason}"
            );
            let expected: Vec<_> = loss
                .map(|kind| ("/events/3/delta/stop_reason", kind))
                .into_iter()
                .collect();
            assert_eq!(paths(&losses), expected, "{stop_reason}");
        }
    }

    #[test]
    fn stop_sequence_value_is_reported() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                json!({"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"```","stop_details":null},
                    "usage":{"output_tokens":28}}),
                json!({"type":"message_stop"}),
            ],
        );
        assert_eq!(accumulate(&items).finish_reasons, vec!["stop"]);
        assert_eq!(
            paths(&losses),
            vec![("/events/1/delta/stop_sequence", LossKind::Dropped)]
        );
        assert!(losses[0].reason.contains("```"));
    }

    #[test]
    fn pings_produce_nothing() {
        let mut machine = AnthropicToOpenAi::new(ctx());
        let mut losses = Losses::new();
        let mut out = Vec::new();
        machine.push(event(&start()), &mut losses, &mut out);
        out.clear();
        for _ in 0..3 {
            machine.push(event(&json!({"type":"ping"})), &mut losses, &mut out);
        }
        assert!(out.is_empty());
        assert!(losses.is_empty());
        assert!(!machine.is_finished());
    }

    #[test]
    fn mid_stream_error_ends_with_error_then_done() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                block_start(0, json!({"type":"text","text":""})),
                text(0, "partial"),
                json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
                text(0, "ignored"),
                json!({"type":"message_stop"}),
            ],
        );
        let n = items.len();
        assert_eq!(items[n - 1], json!("[DONE]"));
        let error = &items[n - 2]["error"];
        assert_eq!(error["message"], "Overloaded");
        assert_eq!(error["type"], "server_error");
        assert_eq!(error["code"], "overloaded");
        assert_eq!(accumulate(&items).content, "partial");
        assert!(accumulate(&items).finish_reasons.is_empty());
        // Only the first event after the end is reported.
        assert_eq!(paths(&losses), vec![("/events/4", LossKind::Dropped)]);
    }

    #[test]
    fn truncated_stream_ends_with_error_done_and_a_loss() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                block_start(0, json!({"type":"text","text":""})),
                text(0, "half a sent"),
            ],
        );
        let n = items.len();
        assert_eq!(
            items[n - 2],
            json!({"error":{"message":"upstream stream ended before message_stop; the response is incomplete",
                "type":"server_error","param":null,"code":"stream_truncated"}})
        );
        assert_eq!(items[n - 1], json!("[DONE]"));
        assert_eq!(paths(&losses), vec![("/events/3", LossKind::Dropped)]);
        assert!(losses[0].reason.contains("truncated"));
    }

    #[test]
    fn empty_input_still_ends_properly() {
        let (items, losses) = run(ctx(), &[]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["error"]["code"], "stream_truncated");
        assert_eq!(paths(&losses), vec![("/events/0", LossKind::Dropped)]);
    }

    #[test]
    fn finish_after_the_end_adds_nothing() {
        let mut machine = AnthropicToOpenAi::new(ctx());
        let mut losses = Losses::new();
        let mut out = Vec::new();
        for value in [
            start(),
            end("end_turn")[0].clone(),
            end("end_turn")[1].clone(),
        ] {
            machine.push(event(&value), &mut losses, &mut out);
        }
        assert!(machine.is_finished());
        let len = out.len();
        machine.finish(&mut losses, &mut out);
        machine.finish(&mut losses, &mut out);
        assert_eq!(out.len(), len);
        assert!(losses.is_empty());
    }

    #[test]
    fn shortened_tool_names_are_restored() {
        let original =
            "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_here";
        let short = vocab::target_tool_name(original).into_owned();
        assert_ne!(short, original);
        let ctx = ResponseContext {
            tool_names: ToolNames::from_names([original]),
            ..ctx()
        };
        let (items, _) = run(
            ctx,
            &[
                start(),
                tool_start(0, "toolu_a", &short),
                block_stop(0),
                end("tool_use")[0].clone(),
                end("tool_use")[1].clone(),
            ],
        );
        assert_eq!(accumulate(&items).tool_calls[&0].1, original);
    }

    #[test]
    fn events_before_message_start_do_not_panic() {
        let (items, losses) = run(
            ctx(),
            &[
                text(0, "orphan text"),
                args(1, "{\"lost\":true}"),
                block_stop(7),
                block_start(2, json!({"type":"text","text":"started"})),
                json!({"type":"some_future_event","x":1}),
                json!({"type":"some_future_event","x":2}),
                start(),
                message_delta("end_turn", json!({})),
                json!({"type":"message_stop"}),
            ],
        );
        let acc = accumulate(&items);
        assert_eq!(acc.content, "orphan textstarted");
        assert_eq!(acc.finish_reasons, vec!["stop"]);
        // The role chunk came first even though message_start came late.
        assert_eq!(deltas(&items)[0], &json!({"role":"assistant","content":""}));
        assert_eq!(chunks(&items)[0]["id"], SYNTHESIZED_ID);
        assert_eq!(chunks(&items)[0]["model"], "claude-requested");
        assert_eq!(
            paths(&losses),
            vec![
                ("/events/0", LossKind::Synthesized),
                ("/events/0", LossKind::Synthesized),
                ("/events/1", LossKind::Dropped),
                ("/events/4", LossKind::Dropped),
                ("/events/6", LossKind::Dropped),
            ]
        );
    }

    #[test]
    fn message_stop_without_message_delta_synthesizes_the_finish() {
        let (items, losses) = run(
            ctx(),
            &[
                start(),
                tool_start(0, "toolu_a", "f"),
                block_stop(0),
                json!({"type":"message_stop"}),
            ],
        );
        assert_eq!(accumulate(&items).finish_reasons, vec!["tool_calls"]);
        assert_eq!(paths(&losses), vec![("/events/3", LossKind::Synthesized)]);

        let (items, losses) = run(ctx(), &[start(), json!({"type":"message_stop"})]);
        assert_eq!(accumulate(&items).finish_reasons, vec!["stop"]);
        assert_eq!(paths(&losses), vec![("/events/1", LossKind::Synthesized)]);
    }

    /// Modelled on `corpus/anthropic/stream-thinking-then-tool-use.sse`: thinking with an empty
    /// trailing delta and a signature, a no-argument tool whose only delta is empty, null
    /// `stop_details`, and fields newer than our types (`caller`, `cache_creation`, …).
    #[test]
    fn corpus_thinking_then_tool_use() {
        let events = [
            json!({"type":"message_start","message":{"model":"claude-haiku-4-5-20251001","id":"msg_01JdU4xqNHXL9QCFWkwCDKGr",
                "type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"stop_details":null,
                "usage":{"input_tokens":598,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
                    "cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":8,
                    "service_tier":"standard","inference_geo":"not_available"}}}),
            json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}),
            json!({"type": "ping"}),
            thinking(0, "The user wants me to:\n1"),
            thinking(0, ". Use the fixed_version tool\n2. Tell them the version"),
            thinking(0, ""),
            delta(
                0,
                json!({"type":"signature_delta","signature":"EoQDCm0IDhgCKkCDzGs2kL2P+nM2wG2P1VIXCRHVnhDDzBQxNF1fl4Q=="}),
            ),
            block_stop(0),
            json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01825dXWLSoJwCst1qTsiWdb",
                "name":"fixed_version","input":{},"caller":{"type":"direct"}}}),
            args(1, ""),
            block_stop(1),
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null,"stop_details":null},
                "usage":{"input_tokens":598,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":92,
                    "output_tokens_details":{"thinking_tokens":53}}}),
            json!({"type":"message_stop"}),
        ];
        let (items, losses) = run(usage_ctx(), &events);
        let acc = accumulate(&items);
        assert_eq!(
            acc.reasoning,
            "The user wants me to:\n1. Use the fixed_version tool\n2. Tell them the version"
        );
        assert_eq!(
            acc.thinking_blocks,
            vec![json!({"index":0,"type":"thinking",
                "thinking":"The user wants me to:\n1. Use the fixed_version tool\n2. Tell them the version",
                "signature":"EoQDCm0IDhgCKkCDzGs2kL2P+nM2wG2P1VIXCRHVnhDDzBQxNF1fl4Q=="})]
        );
        assert_eq!(
            acc.tool_calls[&0],
            (
                "toolu_01825dXWLSoJwCst1qTsiWdb".to_owned(),
                "fixed_version".to_owned(),
                "{}".to_owned()
            )
        );
        assert_eq!(acc.finish_reasons, vec!["tool_calls"]);
        let usage = acc.usage.expect("usage chunk");
        assert_eq!(
            (
                usage["prompt_tokens"].as_u64(),
                usage["completion_tokens"].as_u64()
            ),
            (Some(598), Some(92))
        );
        assert!(chunks(&items)
            .iter()
            .all(|c| c["id"] == "msg_01JdU4xqNHXL9QCFWkwCDKGr"
                && c["model"] == "claude-haiku-4-5-20251001"));
        let (usage_losses, other_losses): (Vec<Loss>, Vec<Loss>) = losses
            .into_iter()
            .partition(|loss| loss.path.contains("/usage/"));
        assert_eq!(
            paths(&other_losses),
            vec![("/events/8/content_block/caller", LossKind::Dropped)]
        );
        let (start_usage, delta_usage) = ("/events/0/message/usage", "/events/11/usage");
        assert_usage_losses_point_at(
            &usage_losses,
            &[
                ("input_tokens", start_usage),
                ("cache_creation_input_tokens", start_usage),
                ("cache_read_input_tokens", start_usage),
                ("cache_creation", start_usage),
                ("service_tier", start_usage),
                ("inference_geo", start_usage),
                ("output_tokens", delta_usage),
                ("output_tokens_details", delta_usage),
            ],
        );
    }
}
