//! Live stream conversion. Each direction is a pure, synchronous state machine over typed
//! events (`push` one event, get zero or more output items; `finish` at end of input), so the
//! same code serves `convert stream`, `serve` and the tests. The SSE framing around the
//! machines lives in `crate::sse`; `StreamConverter` glues frames, JSON and machines together.

pub mod anthropic_to_openai;
pub mod openai_to_anthropic;
pub mod synthesize;
pub mod validate;

use crate::protocol::{anthropic, openai};

/// One item of an OpenAI-dialect stream, as the Anthropic → OpenAI machine produces it.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenAiStreamItem {
    /// `data: {chunk}`
    Chunk(openai::ChatChunk),
    /// `data: {"error":{…}}`: the in-band error the official SDKs raise on.
    Error(openai::ErrorBody),
    /// `data: [DONE]`
    Done,
}

/// Why a stream ended without its proper terminator, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// The input ended before `message_stop` / `[DONE]`.
    EndedEarly,
}

pub use anthropic::StreamEvent as AnthropicStreamEvent;

use crate::convert::{Losses, ResponseContext};
use crate::protocol::Dialect;
use crate::sse::{SseDecoder, SseFrame};

/// Bytes of one dialect's SSE stream in, bytes of the other's out: SSE decoding, JSON parsing,
/// the direction's state machine and canonical SSE encoding, with no buffering beyond the
/// current incomplete line.
pub struct StreamConverter {
    decoder: SseDecoder,
    machine: Machine,
    frames: Vec<SseFrame>,
    /// Set once the decoder failed: the rest of the input is ignored.
    broken: bool,
}

enum Machine {
    AnthropicToOpenAi {
        machine: Box<anthropic_to_openai::AnthropicToOpenAi>,
        items: Vec<OpenAiStreamItem>,
    },
    OpenAiToAnthropic {
        machine: Box<openai_to_anthropic::OpenAiToAnthropic>,
        events: Vec<anthropic::StreamEvent>,
    },
}

impl StreamConverter {
    /// A converter for a stream in the `from` dialect.
    pub fn new(from: Dialect, ctx: ResponseContext) -> Self {
        let machine = match from {
            Dialect::Anthropic => Machine::AnthropicToOpenAi {
                machine: Box::new(anthropic_to_openai::AnthropicToOpenAi::new(ctx)),
                items: Vec::new(),
            },
            Dialect::OpenAi => Machine::OpenAiToAnthropic {
                machine: Box::new(openai_to_anthropic::OpenAiToAnthropic::new(ctx)),
                events: Vec::new(),
            },
        };
        Self {
            decoder: SseDecoder::new(),
            machine,
            frames: Vec::new(),
            broken: false,
        }
    }

    /// Feeds upstream bytes; converted SSE bytes are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>, losses: &mut Losses) {
        if self.broken {
            return;
        }
        if let Err(err) = self.decoder.push(bytes, &mut self.frames) {
            self.broken = true;
            self.convert_frames(out, losses);
            self.inject_error(
                &format!("upstream sent a malformed event stream: {err}"),
                out,
                losses,
            );
            return;
        }
        self.convert_frames(out, losses);
    }

    /// End of upstream input: converts what is left and writes a well-formed ending.
    pub fn finish(&mut self, out: &mut Vec<u8>, losses: &mut Losses) {
        if !self.broken {
            if let Err(err) = self.decoder.finish(&mut self.frames) {
                self.convert_frames(out, losses);
                self.inject_error(
                    &format!("upstream sent a malformed event stream: {err}"),
                    out,
                    losses,
                );
            }
            self.convert_frames(out, losses);
        }
        match &mut self.machine {
            Machine::AnthropicToOpenAi { machine, items } => {
                machine.finish(losses, items);
                write_openai_items(items, out);
            }
            Machine::OpenAiToAnthropic { machine, events } => {
                machine.finish(losses, events);
                write_anthropic_events(events, out);
            }
        }
    }

    /// Ends the stream early because of `message` (an upstream failure a2o noticed, such as an
    /// idle timeout): the client gets its dialect's in-band error and a proper ending.
    pub fn abort(&mut self, message: &str, out: &mut Vec<u8>, losses: &mut Losses) {
        if !self.broken {
            self.convert_frames(out, losses);
        }
        self.broken = true;
        self.inject_error(message, out, losses);
        self.finish(out, losses);
    }

    fn convert_frames(&mut self, out: &mut Vec<u8>, losses: &mut Losses) {
        for frame in self.frames.drain(..) {
            match &mut self.machine {
                Machine::AnthropicToOpenAi { machine, items } => {
                    if frame.data.is_empty() {
                        continue;
                    }
                    let event =
                        match crate::protocol::parse_str::<anthropic::StreamEvent>(&frame.data) {
                            Ok(event) => event,
                            Err(err) => anthropic_error_event(&format!(
                                "upstream sent an event that is not valid JSON: {err}"
                            )),
                        };
                    machine.push(event, losses, items);
                    write_openai_items(items, out);
                }
                Machine::OpenAiToAnthropic { machine, events } => {
                    let item = openai_item_from_frame(&frame);
                    if let Some(item) = item {
                        machine.push(item, losses, events);
                        write_anthropic_events(events, out);
                    }
                }
            }
        }
    }

    fn inject_error(&mut self, message: &str, out: &mut Vec<u8>, losses: &mut Losses) {
        match &mut self.machine {
            Machine::AnthropicToOpenAi { machine, items } => {
                machine.push(anthropic_error_event(message), losses, items);
                write_openai_items(items, out);
            }
            Machine::OpenAiToAnthropic { machine, events } => {
                machine.push(
                    OpenAiStreamItem::Error(openai_server_error(message)),
                    losses,
                    events,
                );
                write_anthropic_events(events, out);
            }
        }
    }
}

/// Parses one OpenAI SSE frame: `[DONE]`, an in-band `{"error":…}`, or a chunk. Frames without
/// data (comments, keep-alives) yield nothing.
pub fn openai_item_from_frame(frame: &SseFrame) -> Option<OpenAiStreamItem> {
    let data = frame.data.trim();
    if data.is_empty() {
        return None;
    }
    if data == "[DONE]" {
        return Some(OpenAiStreamItem::Done);
    }
    // A chunk's fields all have defaults, so an in-band `{"error":…}` also parses as a chunk;
    // parsing once and looking for `error` keeps the common path to a single parse.
    Some(
        match crate::protocol::parse_str::<openai::ChatChunk>(data) {
            Ok(mut chunk) if chunk.choices.is_empty() && chunk.extra.contains_key("error") => {
                let error = chunk.extra.remove("error").unwrap_or_default();
                match serde_json::from_value::<openai::ErrorDetail>(error) {
                    Ok(error) => OpenAiStreamItem::Error(openai::ErrorBody {
                        error,
                        extra: chunk.extra,
                    }),
                    Err(err) => OpenAiStreamItem::Error(openai_server_error(&format!(
                        "upstream sent a malformed in-band error: {err}"
                    ))),
                }
            }
            Ok(chunk) => OpenAiStreamItem::Chunk(chunk),
            Err(err) => OpenAiStreamItem::Error(openai_server_error(&format!(
                "upstream sent a chunk that is not valid JSON: {err}"
            ))),
        },
    )
}

fn anthropic_error_event(message: &str) -> anthropic::StreamEvent {
    anthropic::StreamEvent::Error(anthropic::ErrorEvent {
        error: anthropic::ErrorDetail {
            kind: "api_error".to_owned(),
            message: message.to_owned(),
            extra: Default::default(),
        },
        request_id: None,
        extra: Default::default(),
    })
}

fn openai_server_error(message: &str) -> openai::ErrorBody {
    openai::ErrorBody {
        error: openai::ErrorDetail {
            message: message.to_owned(),
            kind: Some("server_error".to_owned()),
            param: None,
            code: None,
            extra: Default::default(),
        },
        extra: Default::default(),
    }
}

/// Writes OpenAI items in canonical SSE form (`data: …` and a blank line) and empties `items`.
pub fn write_openai_items(items: &mut Vec<OpenAiStreamItem>, out: &mut Vec<u8>) {
    for item in items.drain(..) {
        out.extend_from_slice(b"data: ");
        // Serialising our own types into a Vec cannot fail.
        let _ = match &item {
            OpenAiStreamItem::Chunk(chunk) => serde_json::to_writer(&mut *out, chunk),
            OpenAiStreamItem::Error(body) => serde_json::to_writer(&mut *out, body),
            OpenAiStreamItem::Done => {
                out.extend_from_slice(b"[DONE]");
                Ok(())
            }
        };
        out.extend_from_slice(b"\n\n");
    }
}

/// Writes Anthropic events in canonical SSE form (`event:`, `data:`, blank line) and empties
/// `events`.
pub fn write_anthropic_events(events: &mut Vec<anthropic::StreamEvent>, out: &mut Vec<u8>) {
    for event in events.drain(..) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        let _ = serde_json::to_writer(&mut *out, &event);
        out.extend_from_slice(b"\n\n");
    }
}
