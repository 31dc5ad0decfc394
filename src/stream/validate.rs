//! Stream grammar validators, one per dialect: feed them the SSE frames of a streamed response
//! and they name the FIRST frame that breaks the dialect's event grammar, in plain words and
//! with what the official SDKs' stream helpers would do with it. `a2o check` uses them to
//! explain why a client chokes on a stream; the tests run every stream a2o emits through them.
//!
//! They judge streams from any server, so they work on the raw JSON of each frame rather than
//! on the crate's typed events (which would quietly accept or default what a strict client
//! rejects), and they can name the exact key that is wrong.
//!
//! The strictness follows the clients that matter: the Anthropic SDKs (Python and TypeScript
//! `messages.stream()`), Claude Code, and the `openai` SDKs' chat-completion stream helpers,
//! which accumulate deltas by position and concatenate string fields. Where the published
//! specs are looser than a client, the client wins; where the specs define a field the clients
//! ignore, the spec wins. Unknown Anthropic event, block and delta types are allowed, as
//! Anthropic's versioning policy asks clients to tolerate them, as long as a known delta is
//! not applied to a known block of another type.
//!
//! Once a validator has reported a violation it keeps returning that same violation: the
//! state after a broken frame no longer describes the stream, so later findings would mislead.

use serde_json::{Map, Value};

use crate::sse::{SseDecoder, SseFrame};

/// The first place a stream breaks its dialect's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event}: {message}")]
pub struct Violation {
    /// 0-based number of the offending SSE frame. A violation found at the end of the input
    /// (a missing terminator) carries the number of frames seen, i.e. where the missing frame
    /// should have been.
    pub event: usize,
    pub message: String,
}

/// Validates a whole Anthropic Messages stream.
pub fn validate_anthropic(frames: &[SseFrame]) -> Result<(), Violation> {
    validate_frames(&mut AnthropicValidator::new(), frames)
}

/// Validates a whole OpenAI Chat Completions stream.
pub fn validate_openai(frames: &[SseFrame]) -> Result<(), Violation> {
    validate_frames(&mut OpenAiValidator::new(), frames)
}

/// Convenience: decode raw SSE bytes then validate (decode errors become violations).
pub fn validate_anthropic_bytes(bytes: &[u8]) -> Result<(), Violation> {
    validate_bytes(&mut AnthropicValidator::new(), bytes)
}

/// Convenience: decode raw SSE bytes then validate (decode errors become violations).
pub fn validate_openai_bytes(bytes: &[u8]) -> Result<(), Violation> {
    validate_bytes(&mut OpenAiValidator::new(), bytes)
}

/// What both validators offer, so the whole-stream helpers are written once.
trait Grammar {
    fn push(&mut self, frame: &SseFrame) -> Result<(), Violation>;
    fn finish(&mut self) -> Result<(), Violation>;
}

impl Grammar for AnthropicValidator {
    fn push(&mut self, frame: &SseFrame) -> Result<(), Violation> {
        AnthropicValidator::push(self, frame)
    }
    fn finish(&mut self) -> Result<(), Violation> {
        AnthropicValidator::finish(self)
    }
}

impl Grammar for OpenAiValidator {
    fn push(&mut self, frame: &SseFrame) -> Result<(), Violation> {
        OpenAiValidator::push(self, frame)
    }
    fn finish(&mut self) -> Result<(), Violation> {
        OpenAiValidator::finish(self)
    }
}

fn validate_frames(grammar: &mut impl Grammar, frames: &[SseFrame]) -> Result<(), Violation> {
    for frame in frames {
        grammar.push(frame)?;
    }
    grammar.finish()
}

fn validate_bytes(grammar: &mut impl Grammar, bytes: &[u8]) -> Result<(), Violation> {
    let mut decoder = SseDecoder::new();
    let mut frames = Vec::new();
    let decoded = decoder.push(bytes, &mut frames);
    // Frames completed before a framing error are judged first: an earlier grammar violation
    // is the better explanation.
    for frame in &frames {
        grammar.push(frame)?;
    }
    let seen = frames.len();
    if let Err(err) = decoded {
        return Err(Violation {
            event: seen,
            message: format!("the SSE framing is broken: {err}"),
        });
    }
    frames.clear();
    if let Err(err) = decoder.finish(&mut frames) {
        return Err(Violation {
            event: seen,
            message: format!("the SSE framing is broken: {err}"),
        });
    }
    // Our decoder dispatches an event cut off by the end of input; the SDKs' SSE parsers only
    // dispatch on the blank line, so for them that event never happened.
    if !frames.is_empty() {
        return Err(Violation {
            event: seen,
            message:
                "the last event is not terminated by a blank line; the SDKs' SSE parsers only \
                dispatch an event at its blank line, so they drop it"
                    .to_owned(),
        });
    }
    grammar.finish()
}

/// Tracks where a validator stands and turns an internal finding into the sticky violation.
#[derive(Debug, Default)]
struct Progress {
    /// Number of the next frame.
    next_event: usize,
    violation: Option<Violation>,
}

impl Progress {
    /// Runs `check` for the next frame, recording its violation (or replaying an earlier one).
    fn frame<S>(
        &mut self,
        state: &mut S,
        check: impl FnOnce(&mut S, usize) -> Result<(), String>,
    ) -> Result<(), Violation> {
        if let Some(violation) = &self.violation {
            return Err(violation.clone());
        }
        let event = self.next_event;
        self.next_event += 1;
        check(state, event).map_err(|message| self.record(event, message))
    }

    fn end<S>(
        &mut self,
        state: &mut S,
        check: impl FnOnce(&mut S) -> Result<(), String>,
    ) -> Result<(), Violation> {
        if let Some(violation) = &self.violation {
            return Err(violation.clone());
        }
        let event = self.next_event;
        check(state).map_err(|message| self.record(event, message))
    }

    fn record(&mut self, event: usize, message: String) -> Violation {
        let violation = Violation { event, message };
        self.violation = Some(violation.clone());
        violation
    }
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages
// ---------------------------------------------------------------------------------------------

const ANTHROPIC_STOP_REASONS: &[&str] = &[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
];

/// The events whose order the SDKs' accumulators depend on.
const MESSAGE_EVENTS: &[&str] = &[
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
];

const MISMATCH_CONSEQUENCE: &str =
    "the SDK stream helpers drop such a delta, and Claude Code fails with \"Mismatched content \
    block type\"";

/// Incremental validator for an Anthropic Messages stream.
#[derive(Debug, Default)]
pub struct AnthropicValidator {
    progress: Progress,
    state: AnthropicState,
}

#[derive(Debug, Default)]
struct AnthropicState {
    phase: AnthropicPhase,
    /// Every started block, by index.
    blocks: Vec<AnthropicBlock>,
    /// The block between its start and its stop, if any.
    open: Option<usize>,
    message_deltas: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum AnthropicPhase {
    #[default]
    BeforeMessageStart,
    InMessage,
    AfterMessageStop,
    AfterError,
}

#[derive(Debug)]
struct AnthropicBlock {
    kind: BlockKind,
    /// `content_block.type` as sent.
    type_name: String,
    /// The tool's name, for tool blocks: it makes argument errors easy to place.
    tool_name: String,
    stopped: bool,
    /// The concatenated `input_json_delta` fragments.
    partial_json: String,
}

/// Block types whose deltas the validator knows; anything else accepts any delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    /// `tool_use`, `server_tool_use`, `mcp_tool_use`: the blocks the SDKs feed
    /// `input_json_delta` into.
    ToolInput,
    Thinking,
    RedactedThinking,
    /// Server tool results (`*_tool_result`): complete at their start, no deltas.
    ToolResult,
    Unknown,
}

impl AnthropicValidator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges the next frame.
    pub fn push(&mut self, frame: &SseFrame) -> Result<(), Violation> {
        self.progress
            .frame(&mut self.state, |state, _| state.frame(frame))
    }

    /// End of input: the stream must have ended with `message_stop` or an `error` event.
    pub fn finish(&mut self) -> Result<(), Violation> {
        self.progress.end(&mut self.state, AnthropicState::end)
    }
}

impl AnthropicState {
    fn frame(&mut self, frame: &SseFrame) -> Result<(), String> {
        let name = frame.event.as_deref().filter(|name| !name.is_empty());
        if self.phase == AnthropicPhase::AfterError {
            let what = name.map_or_else(|| "a frame".to_owned(), |name| format!("`{name}`"));
            return Err(format!(
                "{what} after the `error` event; an error ends the stream, so nothing may follow \
                it"
            ));
        }
        let Some(name) = name else {
            return Err(
                "frame without an `event:` line; the Anthropic SDKs skip such frames, so its data \
                never reaches the client"
                    .to_owned(),
            );
        };
        let data = frame.data.trim();
        // The SDKs skip pings without reading their data, so a bare `event: ping` is harmless.
        if name == "ping" && data.is_empty() {
            return Ok(());
        }
        if data.is_empty() {
            return Err(format!(
                "`{name}` has no data; it must be a JSON object whose `type` is \"{name}\""
            ));
        }
        let value: Value = serde_json::from_str(data)
            .map_err(|err| format!("`{name}` data is not valid JSON ({err})"))?;
        let Value::Object(object) = value else {
            return Err(format!(
                "`{name}` data is {}, not a JSON object",
                describe(&value)
            ));
        };
        match object.get("type") {
            Some(Value::String(kind)) if kind == name => {}
            Some(Value::String(kind)) => {
                return Err(format!(
                    "`event: {name}` carries data of `type` \"{kind}\"; the two must match (the \
                    SDKs pick the event by its name and parse the data by its `type`)"
                ))
            }
            Some(other) => {
                return Err(format!(
                    "`{name}` data has a `type` that is {}, expected \"{name}\"",
                    describe(other)
                ))
            }
            None => {
                return Err(format!(
                    "`{name}` data has no `type`; it must be \"{name}\""
                ))
            }
        }

        if self.phase == AnthropicPhase::AfterMessageStop
            && (name == "error" || name == "message_start" || MESSAGE_EVENTS.contains(&name))
        {
            return Err(format!(
                "`{name}` after `message_stop`, which must be the last event"
            ));
        }
        match name {
            "ping" => Ok(()),
            "error" => {
                self.phase = AnthropicPhase::AfterError;
                check_anthropic_error(&object)
            }
            "message_start" => self.message_start(&object),
            _ if MESSAGE_EVENTS.contains(&name) => {
                if self.phase == AnthropicPhase::BeforeMessageStart {
                    return Err(format!(
                        "`{name}` before `message_start`; the Anthropic SDK's stream helper \
                        raises \"Unexpected event order, got {name} before \"message_start\"\""
                    ));
                }
                match name {
                    "content_block_start" => self.block_start(&object),
                    "content_block_delta" => self.block_delta(&object),
                    "content_block_stop" => self.block_stop(&object),
                    "message_delta" => self.message_delta(&object),
                    _ => self.message_stop(),
                }
            }
            // New event types are to be tolerated (Anthropic's versioning policy).
            _ => Ok(()),
        }
    }

    fn end(&mut self) -> Result<(), String> {
        match self.phase {
            AnthropicPhase::AfterMessageStop | AnthropicPhase::AfterError => Ok(()),
            AnthropicPhase::BeforeMessageStart => Err("stream ended before message_stop (there \
            was no `message_start` either); the SDK stream helpers never produce a message"
                .to_owned()),
            AnthropicPhase::InMessage => {
                let open = self
                    .open
                    .map(|index| format!(", with block {index} still open"))
                    .unwrap_or_default();
                Err(format!(
                    "stream ended before message_stop{open}; the SDK stream helpers never produce \
                    the final message"
                ))
            }
        }
    }

    fn message_start(&mut self, event: &Map<String, Value>) -> Result<(), String> {
        if self.phase == AnthropicPhase::InMessage {
            return Err(
                "second `message_start`; a stream carries one message (the Anthropic SDK's stream \
                helper raises \"Unexpected event order, got message_start before receiving \
                \"message_stop\"\")"
                    .to_owned(),
            );
        }
        let message = object_field(event, "", "message")?;
        string_field(message, "message.", "id")?;
        expect_literal(message, "message.", "type", "message")?;
        expect_literal(message, "message.", "role", "assistant")?;
        match message.get("content") {
            Some(Value::Array(content)) if content.is_empty() => {}
            Some(Value::Array(content)) => {
                return Err(format!(
                    "`message.content` has {} block(s) but must be empty; the SDK stream helpers \
                    append every `content_block_start` to it, so the indices would no longer line \
                    up",
                    content.len()
                ))
            }
            other => return Err(wrong_type("message.", "content", other, "an empty array")),
        }
        string_field(message, "message.", "model")?;
        let usage = object_field(message, "message.", "usage").map_err(|err| {
            format!(
                "{err}; the SDK stream helpers keep it as the message's usage and update it from \
                `message_delta`"
            )
        })?;
        count_field(usage, "message.usage.", "input_tokens")?;
        self.phase = AnthropicPhase::InMessage;
        Ok(())
    }

    fn block_start(&mut self, event: &Map<String, Value>) -> Result<(), String> {
        if self.message_deltas > 0 {
            return Err(
                "`content_block_start` after `message_delta`; every content block comes before it"
                    .to_owned(),
            );
        }
        let index = index_field(event, "content_block_start")?;
        if let Some(open) = self.open {
            return Err(format!(
                "`content_block_start` for index {index} while block {open} is still open; blocks \
                must not overlap (the TypeScript SDK's stream helper reports each delta against \
                the last started block)"
            ));
        }
        let expected = self.blocks.len();
        if index < expected {
            return Err(format!(
                "`content_block_start` reuses index {index}; indices go 0, 1, 2… and the next one \
                is {expected}"
            ));
        }
        if index > expected {
            return Err(format!(
                "`content_block_start` for index {index}, expected {expected}: indices start at 0 \
                and go up by 1 (the SDK stream helpers append each block to the content array and \
                find it again by index)"
            ));
        }
        let block = object_field(event, "", "content_block")?;
        let type_name = match block.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            other => return Err(wrong_type("content_block.", "type", other, "a string")),
        };
        let mut tool_name = String::new();
        let kind = match type_name.as_str() {
            "text" => {
                string_field(block, "content_block.", "text").map_err(|err| {
                    format!(
                        "{err}; a text block starts with `\"text\": \"\"` (the Python SDK's \
                        stream helper appends each delta to it and fails without it)"
                    )
                })?;
                BlockKind::Text
            }
            "tool_use" | "server_tool_use" | "mcp_tool_use" => {
                string_field(block, "content_block.", "id")?;
                tool_name = string_field(block, "content_block.", "name")?.to_owned();
                object_field(block, "content_block.", "input")?;
                BlockKind::ToolInput
            }
            "thinking" => {
                string_field(block, "content_block.", "thinking")?;
                string_field(block, "content_block.", "signature")?;
                BlockKind::Thinking
            }
            "redacted_thinking" => {
                string_field(block, "content_block.", "data")?;
                BlockKind::RedactedThinking
            }
            other if other.ends_with("_tool_result") => BlockKind::ToolResult,
            _ => BlockKind::Unknown,
        };
        self.blocks.push(AnthropicBlock {
            kind,
            type_name,
            tool_name,
            stopped: false,
            partial_json: String::new(),
        });
        self.open = Some(index);
        Ok(())
    }

    fn block_delta(&mut self, event: &Map<String, Value>) -> Result<(), String> {
        let index = index_field(event, "content_block_delta")?;
        let Some(block) = self.blocks.get_mut(index) else {
            return Err(format!(
                "`content_block_delta` for index {index}, which was never started (the Python \
                SDK's stream helper raises IndexError)"
            ));
        };
        if block.stopped {
            return Err(format!(
                "`content_block_delta` for index {index} after its `content_block_stop`"
            ));
        }
        let delta = object_field(event, "", "delta")?;
        let delta_type = match delta.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            other => return Err(wrong_type("delta.", "type", other, "a string")),
        };
        let (accepted_by, field, field_type): (&[BlockKind], &str, &str) = match delta_type {
            "text_delta" => (&[BlockKind::Text], "text", "a string"),
            "citations_delta" => (&[BlockKind::Text], "citation", "an object"),
            "input_json_delta" => (&[BlockKind::ToolInput], "partial_json", "a string"),
            "thinking_delta" => (&[BlockKind::Thinking], "thinking", "a string"),
            "signature_delta" => (&[BlockKind::Thinking], "signature", "a string"),
            // A delta type from a newer API version: nothing to match it against.
            _ => return Ok(()),
        };
        if block.kind != BlockKind::Unknown && !accepted_by.contains(&block.kind) {
            return Err(format!(
                "`{delta_type}` for index {index}, which is a `{}` block; a delta must match its \
                block's type ({MISMATCH_CONSEQUENCE})",
                block.type_name
            ));
        }
        let value = delta.get(field);
        let well_typed = match field_type {
            "an object" => matches!(value, Some(Value::Object(_))),
            _ => matches!(value, Some(Value::String(_))),
        };
        if !well_typed {
            return Err(format!(
                "`{delta_type}` for index {index}: {}",
                wrong_type("delta.", field, value, field_type)
            ));
        }
        if let (BlockKind::ToolInput, Some(Value::String(fragment))) = (block.kind, value) {
            block.partial_json.push_str(fragment);
        }
        Ok(())
    }

    fn block_stop(&mut self, event: &Map<String, Value>) -> Result<(), String> {
        let index = index_field(event, "content_block_stop")?;
        let Some(block) = self.blocks.get_mut(index) else {
            return Err(format!(
                "`content_block_stop` for index {index}, which was never started"
            ));
        };
        if block.stopped {
            return Err(format!(
                "second `content_block_stop` for index {index}; a block is stopped exactly once"
            ));
        }
        block.stopped = true;
        self.open = None;
        // The input stays the start's `input` (normally `{}`) when no fragment came.
        if block.kind == BlockKind::ToolInput && !block.partial_json.is_empty() {
            let what = format!(
                "the `input_json_delta` fragments of block {index} (`{}` `{}`)",
                block.type_name, block.tool_name
            );
            match serde_json::from_str::<Value>(&block.partial_json) {
                Ok(Value::Object(_)) => {}
                Ok(other) => {
                    return Err(format!(
                        "{what} form {}, not a JSON object; a tool's input is always an object",
                        describe(&other)
                    ))
                }
                Err(err) => {
                    return Err(format!(
                        "{what} do not parse as JSON at its stop ({err}); clients parse the input \
                        there, and Claude Code rejects the call with InputValidationError"
                    ))
                }
            }
        }
        Ok(())
    }

    fn message_delta(&mut self, event: &Map<String, Value>) -> Result<(), String> {
        if let Some(open) = self.open {
            return Err(format!(
                "`message_delta` while block {open} is still open; every block is stopped before \
                it"
            ));
        }
        let delta = object_field(event, "", "delta")?;
        match delta.get("stop_reason") {
            Some(Value::Null) => {}
            Some(Value::String(reason)) if ANTHROPIC_STOP_REASONS.contains(&reason.as_str()) => {}
            Some(Value::String(reason)) => {
                return Err(format!(
                    "`delta.stop_reason` is \"{reason}\", which Anthropic does not define \
                    (expected one of {} or null); clients decide what to do next from it",
                    ANTHROPIC_STOP_REASONS.join(", ")
                ))
            }
            other => {
                return Err(wrong_type(
                    "delta.",
                    "stop_reason",
                    other,
                    "a stop reason string or null",
                ))
            }
        }
        match delta.get("stop_sequence") {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            other => {
                return Err(wrong_type(
                    "delta.",
                    "stop_sequence",
                    other,
                    "a string or null",
                ))
            }
        }
        let usage = object_field(event, "", "usage").map_err(|err| {
            format!(
                "{err}; the SDK stream helpers read `usage.output_tokens` from every \
                `message_delta`"
            )
        })?;
        count_field(usage, "usage.", "output_tokens")?;
        self.message_deltas += 1;
        Ok(())
    }

    fn message_stop(&mut self) -> Result<(), String> {
        if let Some(open) = self.open {
            return Err(format!("`message_stop` while block {open} is still open"));
        }
        if self.message_deltas == 0 {
            return Err(
                "`message_stop` without a `message_delta` before it; the final message would have \
                no `stop_reason` and no output usage"
                    .to_owned(),
            );
        }
        self.phase = AnthropicPhase::AfterMessageStop;
        Ok(())
    }
}

fn check_anthropic_error(event: &Map<String, Value>) -> Result<(), String> {
    let error = object_field(event, "", "error")?;
    string_field(error, "error.", "type")?;
    string_field(error, "error.", "message")?;
    Ok(())
}

fn index_field(event: &Map<String, Value>, name: &str) -> Result<usize, String> {
    match event.get("index") {
        Some(value) => match value.as_u64().and_then(|index| usize::try_from(index).ok()) {
            Some(index) => Ok(index),
            None => Err(format!(
                "`{name}` has an `index` that is {}, expected a non-negative integer",
                describe(value)
            )),
        },
        None => Err(format!("`{name}` has no `index`")),
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI Chat Completions
// ---------------------------------------------------------------------------------------------

const OPENAI_FINISH_REASONS: &[&str] = &[
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
];

/// Incremental validator for an OpenAI Chat Completions stream.
#[derive(Debug, Default)]
pub struct OpenAiValidator {
    progress: Progress,
    state: OpenAiState,
}

#[derive(Debug, Default)]
struct OpenAiState {
    chunks: usize,
    done: bool,
    /// An in-band `{"error":…}` was seen: only `[DONE]` may follow.
    errored: bool,
    /// The final `choices: []` chunk with `usage` was seen.
    usage_chunk: bool,
    /// The first chunk's id.
    id: Option<String>,
    /// By choice index; the SDKs require indices to first appear in order, so positions match.
    choices: Vec<ChoiceState>,
}

#[derive(Debug, Default)]
struct ChoiceState {
    role_seen: bool,
    /// The finish reason and the frame it came in.
    finish: Option<(String, usize)>,
    /// By tool-call index.
    tools: Vec<ToolCallState>,
    /// The tool call the last fragment belonged to.
    current_tool: Option<usize>,
}

#[derive(Debug)]
struct ToolCallState {
    id: String,
    name: String,
    arguments: String,
}

impl OpenAiValidator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Judges the next frame.
    pub fn push(&mut self, frame: &SseFrame) -> Result<(), Violation> {
        self.progress
            .frame(&mut self.state, |state, event| state.frame(frame, event))
    }

    /// End of input: the stream must have ended with `[DONE]` (or an in-band error).
    pub fn finish(&mut self) -> Result<(), Violation> {
        self.progress.end(&mut self.state, OpenAiState::end)
    }
}

impl OpenAiState {
    fn frame(&mut self, frame: &SseFrame, event: usize) -> Result<(), String> {
        if self.done {
            return Err(
                "frame after `[DONE]`, which must be the last one; the OpenAI SDKs stop reading \
                at `[DONE]`, so it is lost"
                    .to_owned(),
            );
        }
        // The SDKs test `data.startswith("[DONE]")`, so that is what counts as the terminator.
        if frame.data.starts_with("[DONE]") {
            self.done = true;
            return self.done_frame();
        }
        if frame.data.trim_start().starts_with("[DONE]") {
            return Err(
                "`[DONE]` with leading whitespace; the OpenAI SDKs only recognise data that \
                starts with `[DONE]` and try to parse this as JSON"
                    .to_owned(),
            );
        }
        if self.errored {
            return Err("frame after the in-band error; only `[DONE]` may follow it".to_owned());
        }
        let data = frame.data.trim();
        if data.is_empty() {
            return Err(
                "frame without data; the OpenAI SDKs parse every frame's data as JSON and fail on \
                an empty one"
                    .to_owned(),
            );
        }
        let value: Value = serde_json::from_str(data).map_err(|err| {
            format!("data is not valid JSON ({err}); the OpenAI SDKs fail parsing it")
        })?;
        let Value::Object(chunk) = value else {
            return Err(format!("data is {}, not a JSON object", describe(&value)));
        };
        // The SDKs raise on any truthy `error`, whatever else the object holds.
        if chunk.get("error").is_some_and(is_truthy) {
            self.errored = true;
            return match chunk.get("error") {
                Some(Value::Object(error))
                    if matches!(error.get("message"), Some(Value::String(_))) =>
                {
                    Ok(())
                }
                _ => Err(
                    "in-band error without a string `error.message`; the openai SDK raises \"An \
                    error occurred during streaming\" instead of the upstream's reason"
                        .to_owned(),
                ),
            };
        }
        if self.usage_chunk {
            return Err(
                "chunk after the usage chunk (`choices: []` with `usage`), which must be the last \
                chunk"
                    .to_owned(),
            );
        }
        self.chunk(&chunk, event)
    }

    fn done_frame(&mut self) -> Result<(), String> {
        if self.errored {
            return Ok(());
        }
        if self.chunks == 0 {
            return Err(
                "`[DONE]` before any chunk; the openai SDK's stream helper fails with \"request \
                ended without sending any chunks\""
                    .to_owned(),
            );
        }
        if let Some(index) = self
            .choices
            .iter()
            .position(|choice| choice.finish.is_none())
        {
            return Err(format!(
                "`[DONE]` before choice {index} got a `finish_reason`; the openai SDK's stream \
                helper fails with \"missing finish_reason for choice {index}\""
            ));
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), String> {
        if self.done || self.errored {
            return Ok(());
        }
        Err(
            "stream ended before [DONE], which OpenAI always sends last; without it a client \
            cannot tell a complete stream from a dropped connection"
                .to_owned(),
        )
    }

    fn chunk(&mut self, chunk: &Map<String, Value>, event: usize) -> Result<(), String> {
        let id = string_field(chunk, "", "id")?;
        match &self.id {
            Some(first) if first != id => {
                return Err(format!(
                    "chunk `id` is \"{id}\" but the first chunk's was \"{first}\"; every chunk of \
                    a stream has the same id"
                ))
            }
            Some(_) => {}
            None => self.id = Some(id.to_owned()),
        }
        match chunk.get("object") {
            Some(Value::String(object)) if object == "chat.completion.chunk" => {}
            other => {
                return Err(format!(
                    "{}; the openai SDK's stream helper skips such chunks",
                    wrong_type("", "object", other, "\"chat.completion.chunk\"")
                ))
            }
        }
        match chunk.get("created") {
            Some(Value::Number(created)) if created.is_i64() || created.is_u64() => {}
            other => {
                return Err(wrong_type(
                    "",
                    "created",
                    other,
                    "an integer (Unix seconds)",
                ))
            }
        }
        string_field(chunk, "", "model")?;
        let choices = match chunk.get("choices") {
            Some(Value::Array(choices)) => choices,
            other => return Err(wrong_type("", "choices", other, "an array")),
        };
        let usage = chunk.get("usage").filter(|usage| !usage.is_null());
        if let Some(usage) = usage {
            check_usage(usage)?;
        }
        self.chunks += 1;
        if choices.is_empty() && usage.is_some() {
            if let Some(index) = self
                .choices
                .iter()
                .position(|choice| choice.finish.is_none())
            {
                return Err(format!(
                    "the usage chunk (`choices: []` with `usage`) comes before choice {index} \
                    finished; it must be the last chunk, after every `finish_reason`"
                ));
            }
            self.usage_chunk = true;
        }
        for (position, choice) in choices.iter().enumerate() {
            self.choice(choice, position, event)?;
        }
        Ok(())
    }

    fn choice(&mut self, choice: &Value, position: usize, event: usize) -> Result<(), String> {
        let Value::Object(choice) = choice else {
            return Err(format!(
                "`choices[{position}]` is {}, not an object",
                describe(choice)
            ));
        };
        let index = match choice.get("index") {
            Some(value) => match value.as_u64().and_then(|index| usize::try_from(index).ok()) {
                Some(index) => index,
                None => {
                    return Err(format!(
                        "`choices[{position}].index` is {}, expected a non-negative integer",
                        describe(value)
                    ))
                }
            },
            None => return Err(format!("`choices[{position}]` has no `index`")),
        };
        let delta = match choice.get("delta") {
            Some(Value::Object(delta)) => delta,
            other => {
                return Err(format!(
                    "choice {index}: {}; the OpenAI SDKs read every choice's delta",
                    wrong_type("", "delta", other, "an object")
                ))
            }
        };
        let finish_reason = match choice.get("finish_reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(reason)) => Some(reason.as_str()),
            Some(other) => {
                return Err(format!(
                    "choice {index}: `finish_reason` is {}, expected a string or null",
                    describe(other)
                ))
            }
        };

        let known = self.choices.len();
        if index > known {
            return Err(format!(
                "choice {index} appears before choice {known}; choice indices first appear in \
                order 0, 1, 2… (the openai SDK's stream helper appends a new choice to its list \
                and looks choices up by position)"
            ));
        }
        if index == known {
            self.choices.push(ChoiceState::default());
        }
        let state = &mut self.choices[index];

        if let Some((_, finished_at)) = &state.finish {
            let carried = ["content", "refusal", "tool_calls", "function_call"]
                .into_iter()
                .find(|key| match delta.get(*key) {
                    Some(Value::String(text)) => !text.is_empty(),
                    Some(Value::Array(items)) => !items.is_empty(),
                    Some(Value::Object(_)) => true,
                    _ => false,
                });
            if let Some(key) = carried {
                return Err(format!(
                    "choice {index} gets `delta.{key}` after its `finish_reason` (event \
                    {finished_at}); nothing may follow the end of a choice"
                ));
            }
            if finish_reason.is_some() {
                return Err(format!(
                    "second `finish_reason` for choice {index} (the first came in event \
                    {finished_at})"
                ));
            }
        }

        match delta.get("role") {
            None | Some(Value::Null) if !state.role_seen => {
                return Err(format!(
                    "the first delta of choice {index} has no `role`; it must carry `\"role\": \
                    \"assistant\"` (the openai-node stream helper fails with \"missing role for \
                    choice {index}\")"
                ))
            }
            None | Some(Value::Null) => {}
            Some(Value::String(role)) if role == "assistant" => {
                if state.role_seen {
                    return Err(format!(
                        "choice {index} repeats `role` in a later delta; the openai Python SDK's \
                        stream helper concatenates string fields across deltas, so the role \
                        becomes \"assistantassistant\""
                    ));
                }
                state.role_seen = true;
            }
            Some(other) => {
                return Err(format!(
                    "choice {index}: {}",
                    wrong_type("delta.", "role", Some(other), "\"assistant\"")
                ))
            }
        }
        for key in ["content", "refusal"] {
            match delta.get(key) {
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                other => {
                    return Err(format!(
                        "choice {index}: {}",
                        wrong_type("delta.", key, other, "a string or null")
                    ))
                }
            }
        }
        match delta.get("tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(fragments)) => {
                for (position, fragment) in fragments.iter().enumerate() {
                    tool_fragment(state, index, position, fragment)?;
                }
            }
            other => {
                return Err(format!(
                    "choice {index}: {}",
                    wrong_type("delta.", "tool_calls", other, "an array")
                ))
            }
        }

        if let Some(reason) = finish_reason {
            finish_choice(state, index, reason)?;
            state.finish = Some((reason.to_owned(), event));
        }
        Ok(())
    }
}

fn tool_fragment(
    state: &mut ChoiceState,
    choice: usize,
    position: usize,
    fragment: &Value,
) -> Result<(), String> {
    let Value::Object(fragment) = fragment else {
        return Err(format!(
            "choice {choice}: `delta.tool_calls[{position}]` is {}, not an object",
            describe(fragment)
        ));
    };
    let index = match fragment.get("index").map(|value| (value, value.as_u64())) {
        Some((_, Some(index))) => usize::try_from(index).unwrap_or(usize::MAX),
        Some((value, None)) => {
            return Err(format!(
                "choice {choice}: `delta.tool_calls[{position}].index` is {}, expected a \
                non-negative integer (the openai SDK's stream helper accumulates tool calls by it)",
                describe(value)
            ))
        }
        None => {
            return Err(format!(
                "choice {choice}: `delta.tool_calls[{position}]` has no `index`; the openai SDK's \
                stream helper accumulates tool calls by it and raises without one"
            ))
        }
    };
    let call = format!("tool call {index} of choice {choice}");
    let function = match fragment.get("function") {
        Some(Value::Object(function)) => function,
        other => {
            return Err(format!(
                "{call}: {}; the openai Python SDK's stream helper asserts every fragment has one",
                wrong_type("", "function", other, "an object")
            ))
        }
    };
    for key in ["name", "arguments"] {
        match function.get(key) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            other => {
                return Err(format!(
                    "{call}: {}",
                    wrong_type("function.", key, other, "a string")
                ))
            }
        }
    }
    let id = non_empty_str(fragment.get("id"));
    let name = non_empty_str(function.get("name"));
    let arguments = function
        .get("arguments")
        .and_then(Value::as_str)
        .unwrap_or("");
    let known = state.tools.len();

    if index > known {
        return Err(format!(
            "{call} skips index {known}; tool-call indices start at 0 and go up by 1 (the openai \
            Python SDK's stream helper raises IndexError)"
        ));
    }
    if index == known {
        const NEEDED: &str =
            "the first fragment of a tool call carries `id`, `\"type\": \"function\"` and \
            `function.name`, which the openai SDKs' stream helpers need";
        let Some(id) = id else {
            return Err(format!("{call}: the first fragment has no `id`; {NEEDED}"));
        };
        match fragment.get("type") {
            Some(Value::String(kind)) if kind == "function" => {}
            other => {
                return Err(format!(
                    "{call}: {}; {NEEDED}",
                    wrong_type("", "type", other, "\"function\"")
                ));
            }
        }
        let Some(name) = name else {
            return Err(format!(
                "{call}: the first fragment has no `function.name`; {NEEDED}"
            ));
        };
        state.tools.push(ToolCallState {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        });
        state.current_tool = Some(index);
        return Ok(());
    }

    if let Some(current) = state.current_tool.filter(|current| *current != index) {
        return Err(format!(
            "{call} continues after tool call {current} started; fragments of one call are \
            contiguous (the openai SDK's stream helper has already emitted \
            `tool_calls.function.arguments.done` for it)"
        ));
    }
    let tool = &mut state.tools[index];
    for (key, sent, kept) in [("id", id, &tool.id), ("function.name", name, &tool.name)] {
        match sent {
            Some(sent) if sent != kept => {
                return Err(format!(
                    "{call}: a later fragment changes `{key}` from \"{kept}\" to \"{sent}\""
                ));
            }
            Some(_) => {
                return Err(format!(
                    "{call}: a later fragment repeats `{key}`; the openai Python SDK's stream \
                    helper concatenates string fields across fragments, so it becomes \
                    \"{kept}{kept}\""
                ));
            }
            None => {}
        }
    }
    match fragment.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind == "function" => {}
        other => {
            return Err(format!(
                "{call}: {}",
                wrong_type("", "type", other, "\"function\"")
            ))
        }
    }
    tool.arguments.push_str(arguments);
    state.current_tool = Some(index);
    Ok(())
}

fn finish_choice(state: &ChoiceState, index: usize, reason: &str) -> Result<(), String> {
    if !OPENAI_FINISH_REASONS.contains(&reason) {
        return Err(format!(
            "choice {index}: `finish_reason` is \"{reason}\", expected one of {}",
            OPENAI_FINISH_REASONS.join(", ")
        ));
    }
    if reason == "stop" && !state.tools.is_empty() {
        return Err(format!(
            "choice {index} made tool calls but finished with `stop`; it must be `tool_calls`, or \
            agents stop instead of running the tools"
        ));
    }
    if reason == "tool_calls" && state.tools.is_empty() {
        return Err(format!(
            "choice {index} finished with `tool_calls` but made no tool calls"
        ));
    }
    // A choice cut by `length` or `content_filter` says so honestly; its last call may be
    // truncated.
    if reason == "length" || reason == "content_filter" {
        return Ok(());
    }
    for (position, tool) in state.tools.iter().enumerate() {
        let call = format!(
            "the arguments of tool call {position} (`{}`) of choice {index}",
            tool.name
        );
        if tool.arguments.is_empty() {
            return Err(format!(
                "{call} are empty at its finish; a call without arguments sends `{{}}`"
            ));
        }
        match serde_json::from_str::<Value>(&tool.arguments) {
            Ok(Value::Object(_)) => {}
            Ok(other) => {
                return Err(format!(
                    "{call} are {} at its finish, not a JSON object; function arguments are \
                    always an object",
                    describe(&other)
                ))
            }
            Err(err) => {
                return Err(format!(
                    "{call} are not valid JSON at its finish ({err}); clients decode them to run \
                    the tool"
                ))
            }
        }
    }
    Ok(())
}

fn check_usage(usage: &Value) -> Result<(), String> {
    let Value::Object(usage) = usage else {
        return Err(format!(
            "`usage` is {}, expected an object or null",
            describe(usage)
        ));
    };
    let prompt = count_field(usage, "usage.", "prompt_tokens")?;
    let completion = count_field(usage, "usage.", "completion_tokens")?;
    let total = count_field(usage, "usage.", "total_tokens")?;
    if prompt.checked_add(completion) != Some(total) {
        return Err(format!(
            "`usage.total_tokens` is {total}, but `prompt_tokens` + `completion_tokens` is {}",
            u128::from(prompt) + u128::from(completion)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Field helpers: `path` is the dotted prefix naming the object in messages ("" at top level).
// ---------------------------------------------------------------------------------------------

fn string_field<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a str, String> {
    match object.get(key) {
        Some(Value::String(value)) => Ok(value),
        other => Err(wrong_type(path, key, other, "a string")),
    }
}

fn object_field<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a Map<String, Value>, String> {
    match object.get(key) {
        Some(Value::Object(value)) => Ok(value),
        other => Err(wrong_type(path, key, other, "an object")),
    }
}

/// A token count: a non-negative integer.
fn count_field(object: &Map<String, Value>, path: &str, key: &str) -> Result<u64, String> {
    match object.get(key).and_then(Value::as_u64) {
        Some(count) => Ok(count),
        None => Err(wrong_type(
            path,
            key,
            object.get(key),
            "a non-negative integer",
        )),
    }
}

fn expect_literal(
    object: &Map<String, Value>,
    path: &str,
    key: &str,
    expected: &str,
) -> Result<(), String> {
    match object.get(key) {
        Some(Value::String(value)) if value == expected => Ok(()),
        other => Err(wrong_type(path, key, other, &format!("\"{expected}\""))),
    }
}

fn wrong_type(path: &str, key: &str, found: Option<&Value>, expected: &str) -> String {
    match found {
        None => format!("`{path}{key}` is missing (expected {expected})"),
        Some(value) => format!("`{path}{key}` is {}, expected {expected}", describe(value)),
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

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// Python truthiness, which is what the openai SDK applies to `error`.
fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|number| number != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
    }
}
