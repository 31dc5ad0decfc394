//! The mock's answers as bytes: a dialect-neutral [`Script`] (thinking, text, tool calls, stop,
//! usage) written out as an Anthropic message or SSE stream, or as an OpenAI completion or chunk
//! stream, plus the error bodies of each dialect. Shapes copy the recorded traffic in
//! `shared/corpus`. Everything is written straight into one buffer per response (no JSON
//! values are built), because the mock must stay far cheaper than the proxy it measures.

use std::borrow::Cow;

use bytes::Bytes;

use crate::convert::vocab;

/// The dialect of a route, which decides every body shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Anthropic,
    OpenAi,
}

pub const ANSWER: &str = "Hello from the mock upstream.";
const THINKING: &str = "Let me think about this.";
const SIGNATURE: &str = "mock-signature-0123456789";
/// base64 of "mock-redacted-thinking".
const REDACTED_DATA: &str = "bW9jay1yZWRhY3RlZC10aGlua2luZw==";
const MESSAGE_ID: &str = "msg_mock_01";
const COMPLETION_ID: &str = "chatcmpl-mock-01";
const CREATED: &str = "1700000000";
const DEFAULT_TOOLS: [&str; 3] = ["get_weather", "get_time", "get_news"];
const TOOL_ARGS: [&str; 3] = [
    r#"{"city":"Paris"}"#,
    r#"{"city":"Tokyo"}"#,
    r#"{"city":"Lima"}"#,
];

#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    /// OpenAI `completion_tokens_details.reasoning_tokens` (part of `output`).
    pub reasoning: u64,
}

impl Usage {
    pub const DEFAULT: Usage = Usage {
        input: 12,
        output: 7,
        cache_read: 0,
        cache_creation: 0,
        reasoning: 0,
    };
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    EndTurn,
    MaxTokens,
    StopSequence(String),
    ToolUse,
}

#[derive(Debug, Clone)]
pub struct ToolCall<'a> {
    pub name: &'a str,
    pub arguments: &'static str,
}

/// What the model "says", independent of dialect.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    /// A thinking block; `true` adds a redacted_thinking block after it.
    pub thinking: Option<bool>,
    pub text: Option<Cow<'a, str>>,
    pub tools: Vec<ToolCall<'a>>,
    pub stop: Ending,
    pub usage: Usage,
}

impl<'a> Script<'a> {
    pub fn text(text: impl Into<Cow<'a, str>>) -> Self {
        Script {
            thinking: None,
            text: Some(text.into()),
            tools: Vec::new(),
            stop: Ending::EndTurn,
            usage: Usage::DEFAULT,
        }
    }

    /// `count` tool calls named after the declared tools (cycled), or the default names when
    /// none are declared, so every call names a tool the client knows.
    pub fn tools(declared: &[&'a str], count: usize) -> Self {
        let tools = (0..count)
            .map(|i| ToolCall {
                name: if declared.is_empty() {
                    DEFAULT_TOOLS[i % 3]
                } else {
                    declared[i % declared.len()]
                },
                arguments: TOOL_ARGS[i % 3],
            })
            .collect();
        Script {
            thinking: None,
            text: None,
            tools,
            stop: Ending::ToolUse,
            usage: Usage::DEFAULT,
        }
    }
}

/// How a stream is cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The whole stream.
    None,
    /// Up to the first content delta, then the dialect's in-band error.
    MidstreamError,
    /// Up to the first content delta (the connection is then dropped by the caller).
    AfterFirstDelta,
    /// The first event only (the caller then holds the connection open).
    FirstEvent,
}

/// A stream's bytes and where each event ends, so a paced stream can slice it without copying.
#[derive(Debug, Clone, Default)]
pub struct Events {
    pub bytes: Bytes,
    pub ends: Vec<usize>,
}

struct SseWriter {
    buf: Vec<u8>,
    ends: Vec<usize>,
    /// Number of events up to and including the first content delta.
    through_first_delta: Option<usize>,
}

impl SseWriter {
    fn new(capacity: usize) -> Self {
        SseWriter {
            buf: Vec::with_capacity(capacity),
            ends: Vec::with_capacity(16),
            through_first_delta: None,
        }
    }

    fn end_event(&mut self) {
        self.buf.extend_from_slice(b"\n\n");
        self.ends.push(self.buf.len());
    }

    fn mark_content_delta(&mut self) {
        if self.through_first_delta.is_none() {
            self.through_first_delta = Some(self.ends.len());
        }
    }

    fn apply(&mut self, cut: Cut) -> bool {
        let keep = match cut {
            Cut::None => return false,
            Cut::FirstEvent => 1,
            Cut::MidstreamError | Cut::AfterFirstDelta => {
                self.through_first_delta.unwrap_or(self.ends.len())
            }
        };
        if let Some(&end) = keep.checked_sub(1).and_then(|last| self.ends.get(last)) {
            self.buf.truncate(end);
            self.ends.truncate(keep);
        }
        true
    }

    fn finish(self) -> Events {
        Events {
            bytes: Bytes::from(self.buf),
            ends: self.ends,
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Splits text into up to four deltas at word starts (or at character boundaries when the
/// text has no spaces), the way a model streams a short answer.
fn text_pieces(text: &str) -> Vec<&str> {
    const PIECES: usize = 4;
    let word_starts: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| c == ' ' && i > 0)
        .map(|(i, _)| i)
        .collect();
    let mut cuts: Vec<usize> = if word_starts.is_empty() {
        (1..PIECES)
            .map(|k| floor_char_boundary(text, text.len() * k / PIECES))
            .collect()
    } else {
        let words = word_starts.len() + 1;
        (1..PIECES)
            .filter_map(|k| {
                (k * words / PIECES)
                    .checked_sub(1)
                    .and_then(|w| word_starts.get(w).copied())
            })
            .collect()
    };
    cuts.push(text.len());
    let mut pieces = Vec::with_capacity(cuts.len());
    let mut start = 0;
    for cut in cuts {
        if cut > start {
            pieces.push(&text[start..cut]);
            start = cut;
        }
    }
    pieces
}

/// Splits tool arguments into three fragments at character boundaries.
fn argument_fragments(arguments: &str) -> [&str; 3] {
    let first = floor_char_boundary(arguments, arguments.len() / 3);
    let second = floor_char_boundary(arguments, arguments.len() * 2 / 3).max(first);
    [
        &arguments[..first],
        &arguments[first..second],
        &arguments[second..],
    ]
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn thinking_pieces() -> [&'static str; 2] {
    let (first, second) = THINKING.split_at(12);
    [first, second]
}

// ---------------------------------------------------------------- Anthropic

fn anthropic_stop(stop: &Ending) -> &'static str {
    match stop {
        Ending::EndTurn => "end_turn",
        Ending::MaxTokens => "max_tokens",
        Ending::StopSequence(_) => "stop_sequence",
        Ending::ToolUse => "tool_use",
    }
}

fn push_stop_fields(out: &mut Vec<u8>, stop: &Ending) {
    out.extend_from_slice(b"\"stop_reason\":\"");
    out.extend_from_slice(anthropic_stop(stop).as_bytes());
    out.extend_from_slice(b"\",\"stop_sequence\":");
    match stop {
        Ending::StopSequence(sequence) => push_json_str(out, sequence),
        _ => out.extend_from_slice(b"null"),
    }
}

fn push_anthropic_usage(out: &mut Vec<u8>, usage: &Usage, output: u64) {
    out.extend_from_slice(b"{\"input_tokens\":");
    push_u64(out, usage.input);
    out.extend_from_slice(b",\"cache_creation_input_tokens\":");
    push_u64(out, usage.cache_creation);
    out.extend_from_slice(b",\"cache_read_input_tokens\":");
    push_u64(out, usage.cache_read);
    out.extend_from_slice(b",\"output_tokens\":");
    push_u64(out, output);
    out.push(b'}');
}

fn tool_use_id(out: &mut Vec<u8>, index: usize) {
    out.extend_from_slice(b"\"toolu_mock_0");
    push_u64(out, index as u64 + 1);
    out.push(b'"');
}

fn tool_call_id(out: &mut Vec<u8>, index: usize) {
    out.extend_from_slice(b"\"call_mock_0");
    push_u64(out, index as u64 + 1);
    out.push(b'"');
}

/// A non-streaming Anthropic message.
pub fn anthropic_message(script: &Script<'_>, model: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 + script.text.as_ref().map_or(0, |text| text.len()));
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(MESSAGE_ID.as_bytes());
    out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    push_json_str(&mut out, model);
    out.extend_from_slice(b",\"content\":[");
    let mut first = true;
    let mut separate = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    if let Some(redacted) = script.thinking {
        separate(&mut out);
        out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
        push_json_str(&mut out, THINKING);
        out.extend_from_slice(b",\"signature\":");
        push_json_str(&mut out, SIGNATURE);
        out.push(b'}');
        if redacted {
            separate(&mut out);
            out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
            push_json_str(&mut out, REDACTED_DATA);
            out.push(b'}');
        }
    }
    if let Some(text) = &script.text {
        separate(&mut out);
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        push_json_str(&mut out, text);
        out.push(b'}');
    }
    for (index, tool) in script.tools.iter().enumerate() {
        separate(&mut out);
        out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
        tool_use_id(&mut out, index);
        out.extend_from_slice(b",\"name\":");
        push_json_str(&mut out, tool.name);
        out.extend_from_slice(b",\"input\":");
        out.extend_from_slice(tool.arguments.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"],");
    push_stop_fields(&mut out, &script.stop);
    out.extend_from_slice(b",\"usage\":");
    push_anthropic_usage(&mut out, &script.usage, script.usage.output);
    out.push(b'}');
    out
}

fn anthropic_event(w: &mut SseWriter, name: &str, data: impl FnOnce(&mut Vec<u8>)) {
    w.buf.extend_from_slice(b"event: ");
    w.buf.extend_from_slice(name.as_bytes());
    w.buf.extend_from_slice(b"\ndata: ");
    data(&mut w.buf);
    w.end_event();
}

fn block_start(w: &mut SseWriter, index: usize, block: impl FnOnce(&mut Vec<u8>)) {
    anthropic_event(w, "content_block_start", |out| {
        out.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
        push_u64(out, index as u64);
        out.extend_from_slice(b",\"content_block\":");
        block(out);
        out.push(b'}');
    });
    // Real streams send one ping right after the first block opens.
    if index == 0 {
        anthropic_event(w, "ping", |out| {
            out.extend_from_slice(b"{\"type\": \"ping\"}")
        });
    }
}

fn block_delta(w: &mut SseWriter, index: usize, kind: &str, field: &str, value: &str) {
    anthropic_event(w, "content_block_delta", |out| {
        out.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
        push_u64(out, index as u64);
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\":");
        push_json_str(out, value);
        out.extend_from_slice(b"}}");
    });
}

fn block_stop(w: &mut SseWriter, index: usize) {
    anthropic_event(w, "content_block_stop", |out| {
        out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
        push_u64(out, index as u64);
        out.push(b'}');
    });
}

/// An Anthropic SSE stream, cut as asked.
pub fn anthropic_stream(script: &Script<'_>, model: &str, cut: Cut) -> Events {
    let mut w = SseWriter::new(2048 + script.text.as_ref().map_or(0, |text| text.len() * 2));
    anthropic_event(&mut w, "message_start", |out| {
        out.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":\"");
        out.extend_from_slice(MESSAGE_ID.as_bytes());
        out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_json_str(out, model);
        out.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":",
        );
        push_anthropic_usage(out, &script.usage, 1);
        out.extend_from_slice(b"}}");
    });
    let mut index = 0;
    if let Some(redacted) = script.thinking {
        block_start(&mut w, index, |out| {
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}")
        });
        for piece in thinking_pieces() {
            block_delta(&mut w, index, "thinking_delta", "thinking", piece);
        }
        block_delta(&mut w, index, "signature_delta", "signature", SIGNATURE);
        block_stop(&mut w, index);
        index += 1;
        if redacted {
            block_start(&mut w, index, |out| {
                out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
                push_json_str(out, REDACTED_DATA);
                out.push(b'}');
            });
            block_stop(&mut w, index);
            index += 1;
        }
    }
    if let Some(text) = &script.text {
        block_start(&mut w, index, |out| {
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}")
        });
        for piece in text_pieces(text) {
            block_delta(&mut w, index, "text_delta", "text", piece);
            w.mark_content_delta();
        }
        block_stop(&mut w, index);
        index += 1;
    }
    for (call, tool) in script.tools.iter().enumerate() {
        block_start(&mut w, index, |out| {
            out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            tool_use_id(out, call);
            out.extend_from_slice(b",\"name\":");
            push_json_str(out, tool.name);
            out.extend_from_slice(b",\"input\":{}}");
        });
        // Real streams open every tool input with an empty fragment.
        block_delta(&mut w, index, "input_json_delta", "partial_json", "");
        for fragment in argument_fragments(tool.arguments) {
            block_delta(&mut w, index, "input_json_delta", "partial_json", fragment);
            w.mark_content_delta();
        }
        block_stop(&mut w, index);
        index += 1;
    }
    anthropic_event(&mut w, "message_delta", |out| {
        out.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{");
        push_stop_fields(out, &script.stop);
        out.extend_from_slice(b"},\"usage\":");
        push_anthropic_usage(out, &script.usage, script.usage.output);
        out.push(b'}');
    });
    anthropic_event(&mut w, "message_stop", |out| {
        out.extend_from_slice(b"{\"type\":\"message_stop\"}")
    });
    if w.apply(cut) && cut == Cut::MidstreamError {
        anthropic_event(&mut w, "error", |out| {
            out.extend_from_slice(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
        });
    }
    w.finish()
}

// ---------------------------------------------------------------- OpenAI

fn finish_reason(stop: &Ending) -> &'static str {
    match stop {
        Ending::EndTurn | Ending::StopSequence(_) => "stop",
        Ending::MaxTokens => "length",
        Ending::ToolUse => "tool_calls",
    }
}

fn push_openai_usage(out: &mut Vec<u8>, usage: &Usage) {
    let prompt = usage.input + usage.cache_read + usage.cache_creation;
    out.extend_from_slice(b"{\"prompt_tokens\":");
    push_u64(out, prompt);
    out.extend_from_slice(b",\"completion_tokens\":");
    push_u64(out, usage.output);
    out.extend_from_slice(b",\"total_tokens\":");
    push_u64(out, prompt + usage.output);
    out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    push_u64(out, usage.cache_read);
    out.extend_from_slice(
        b",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":",
    );
    push_u64(out, usage.reasoning);
    out.extend_from_slice(
        b",\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
    );
}

/// A non-streaming OpenAI chat completion.
pub fn openai_completion(script: &Script<'_>, model: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(768 + script.text.as_ref().map_or(0, |text| text.len()));
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(COMPLETION_ID.as_bytes());
    out.extend_from_slice(b"\",\"object\":\"chat.completion\",\"created\":");
    out.extend_from_slice(CREATED.as_bytes());
    out.extend_from_slice(b",\"model\":");
    push_json_str(&mut out, model);
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    match &script.text {
        Some(text) => push_json_str(&mut out, text),
        None => out.extend_from_slice(b"null"),
    }
    if script.thinking.is_some() {
        out.extend_from_slice(b",\"reasoning_content\":");
        push_json_str(&mut out, THINKING);
    }
    if !script.tools.is_empty() {
        out.extend_from_slice(b",\"tool_calls\":[");
        for (index, tool) in script.tools.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            tool_call_id(&mut out, index);
            out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            push_json_str(&mut out, tool.name);
            out.extend_from_slice(b",\"arguments\":");
            push_json_str(&mut out, tool.arguments);
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"");
    out.extend_from_slice(finish_reason(&script.stop).as_bytes());
    out.extend_from_slice(b"\"}],\"usage\":");
    push_openai_usage(&mut out, &script.usage);
    out.extend_from_slice(b",\"system_fingerprint\":\"fp_mock\"}");
    out
}

struct ChunkWriter {
    w: SseWriter,
    /// `data: {"id":…,"model":…,"choices":[`, shared by every chunk.
    prefix: Vec<u8>,
    include_usage: bool,
}

impl ChunkWriter {
    fn chunk(&mut self, delta: impl FnOnce(&mut Vec<u8>), finish: Option<&str>) {
        let out = &mut self.w.buf;
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":");
        delta(out);
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        match finish {
            Some(reason) => {
                out.push(b'"');
                out.extend_from_slice(reason.as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
        out.push(b']');
        if self.include_usage {
            out.extend_from_slice(b",\"usage\":null");
        }
        out.push(b'}');
        self.w.end_event();
    }

    fn field_delta(&mut self, field: &str, value: &str) {
        self.chunk(
            |out| {
                out.extend_from_slice(b"{\"");
                out.extend_from_slice(field.as_bytes());
                out.extend_from_slice(b"\":");
                push_json_str(out, value);
                out.push(b'}');
            },
            None,
        );
    }
}

/// An OpenAI chunk stream, cut as asked. The usage chunk (`choices: []`) comes only when the
/// request set `stream_options.include_usage`, as OpenAI does.
pub fn openai_stream(script: &Script<'_>, model: &str, include_usage: bool, cut: Cut) -> Events {
    let mut prefix = Vec::with_capacity(160 + model.len());
    prefix.extend_from_slice(b"data: {\"id\":\"");
    prefix.extend_from_slice(COMPLETION_ID.as_bytes());
    prefix.extend_from_slice(b"\",\"object\":\"chat.completion.chunk\",\"created\":");
    prefix.extend_from_slice(CREATED.as_bytes());
    prefix.extend_from_slice(b",\"model\":");
    push_json_str(&mut prefix, model);
    prefix.extend_from_slice(b",\"system_fingerprint\":\"fp_mock\",\"choices\":[");
    let text_len = script.text.as_ref().map_or(0, |text| text.len() * 2);
    let mut c = ChunkWriter {
        w: SseWriter::new(prefix.len() * 16 + text_len + 512),
        prefix,
        include_usage,
    };

    let starts_with_text = script.thinking.is_none() && script.text.is_some();
    c.chunk(
        |out| {
            out.extend_from_slice(if starts_with_text {
                b"{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"
            } else {
                b"{\"role\":\"assistant\",\"content\":null,\"refusal\":null}"
            })
        },
        None,
    );
    if script.thinking.is_some() {
        for piece in thinking_pieces() {
            c.field_delta("reasoning_content", piece);
        }
    }
    if let Some(text) = &script.text {
        for piece in text_pieces(text) {
            c.field_delta("content", piece);
            c.w.mark_content_delta();
        }
    }
    for (index, tool) in script.tools.iter().enumerate() {
        c.chunk(
            |out| {
                out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                push_u64(out, index as u64);
                out.extend_from_slice(b",\"id\":");
                tool_call_id(out, index);
                out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                push_json_str(out, tool.name);
                out.extend_from_slice(b",\"arguments\":\"\"}}]}");
            },
            None,
        );
        for fragment in argument_fragments(tool.arguments) {
            c.chunk(
                |out| {
                    out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                    push_u64(out, index as u64);
                    out.extend_from_slice(b",\"function\":{\"arguments\":");
                    push_json_str(out, fragment);
                    out.extend_from_slice(b"}}]}");
                },
                None,
            );
            c.w.mark_content_delta();
        }
    }
    c.chunk(
        |out| out.extend_from_slice(b"{}"),
        Some(finish_reason(&script.stop)),
    );
    if include_usage {
        let out = &mut c.w.buf;
        out.extend_from_slice(&c.prefix);
        out.extend_from_slice(b"],\"usage\":");
        push_openai_usage(out, &script.usage);
        out.push(b'}');
        c.w.end_event();
    }
    c.w.buf.extend_from_slice(b"data: [DONE]");
    c.w.end_event();
    let mut w = c.w;
    if w.apply(cut) && cut == Cut::MidstreamError {
        w.buf.extend_from_slice(br#"data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":null}}"#);
        w.end_event();
    }
    w.finish()
}

// ---------------------------------------------------------------- errors

fn error_message(status: u16) -> Cow<'static, str> {
    Cow::Borrowed(match status {
        400 => "mock: invalid request",
        401 => "mock: invalid api key",
        403 => "mock: permission denied",
        404 => "mock: not found",
        413 => "mock: request too large",
        429 => "mock: rate limited",
        500 => "mock: internal server error",
        503 | 529 => "Overloaded",
        _ => return Cow::Owned(format!("mock: error {status}")),
    })
}

/// An error body in the dialect, with the message chosen for the status unless one is given.
pub fn error_body(dialect: Dialect, status: u16, message: Option<&str>) -> Vec<u8> {
    let default_message = error_message(status);
    let message = message.unwrap_or(&default_message);
    let anthropic_type = vocab::anthropic_error_type_for_status(status);
    let mut out = Vec::with_capacity(160 + message.len());
    match dialect {
        Dialect::Anthropic => {
            out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"");
            out.extend_from_slice(anthropic_type.as_bytes());
            out.extend_from_slice(b"\",\"message\":");
            push_json_str(&mut out, message);
            out.extend_from_slice(b"},\"request_id\":\"req_mock\"}");
        }
        Dialect::OpenAi => {
            let (kind, code) = vocab::openai_error_for_anthropic_type(anthropic_type);
            out.extend_from_slice(b"{\"error\":{\"message\":");
            push_json_str(&mut out, message);
            out.extend_from_slice(b",\"type\":\"");
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\",\"param\":null,\"code\":");
            match code {
                Some(code) => push_json_str(&mut out, code),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b"}}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn events_json(events: &Events) -> Vec<Value> {
        let text = std::str::from_utf8(&events.bytes).expect("utf-8");
        text.split("\n\n")
            .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).expect("event data is JSON"))
            .collect()
    }

    #[test]
    fn escapes_json_strings() {
        let mut out = Vec::new();
        push_json_str(&mut out, "a\"b\\c\n\u{1}é");
        let back: String = serde_json::from_slice(&out).expect("valid JSON string");
        assert_eq!(back, "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn splits_answer_into_four_word_deltas() {
        assert_eq!(
            text_pieces(ANSWER),
            vec!["Hello", " from", " the", " mock upstream."]
        );
        assert_eq!(text_pieces("Hello"), vec!["H", "e", "l", "lo"]);
        assert_eq!(text_pieces("").len(), 0);
        assert_eq!(
            argument_fragments(r#"{"city":"Paris"}"#).concat(),
            r#"{"city":"Paris"}"#
        );
    }

    #[test]
    fn bodies_are_valid_json_in_every_shape() {
        let mut script = Script::tools(&["lookup"], 3);
        script.text = Some("Let me check.".into());
        script.thinking = Some(true);
        script.stop = Ending::StopSequence("END\"".into());
        let model = "model \"quoted\"";
        for body in [
            anthropic_message(&script, model),
            openai_completion(&script, model),
        ] {
            serde_json::from_slice::<Value>(&body).expect("valid JSON");
        }
        for cut in [
            Cut::None,
            Cut::MidstreamError,
            Cut::AfterFirstDelta,
            Cut::FirstEvent,
        ] {
            let anthropic = anthropic_stream(&script, model, cut);
            let openai = openai_stream(&script, model, true, cut);
            for events in [&anthropic, &openai] {
                assert_eq!(events.ends.last().copied(), Some(events.bytes.len()));
                events_json(events);
            }
        }
        for dialect in [Dialect::Anthropic, Dialect::OpenAi] {
            serde_json::from_slice::<Value>(&error_body(dialect, 418, None)).expect("valid JSON");
        }
    }
}
