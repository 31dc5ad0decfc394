//! Live stream conversion. Each direction is a pure, synchronous state machine over typed
//! events (`push` one event, get zero or more output items; `finish` at end of input), so the
//! same code serves `convert stream`, `serve` and the tests. The SSE framing around the
//! machines lives in `crate::sse`; `StreamConverter` glues frames, JSON and machines together.

pub mod anthropic_to_openai;
pub mod openai_to_anthropic;

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
