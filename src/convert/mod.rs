//! Conversion of whole JSON documents (requests, responses, error bodies) between the two
//! dialects, one pure function per direction and kind. Streams live in `crate::stream`.
//!
//! # Conventions both directions share
//! These are the contract between the converters; the golden tests in `testdata/` pin them.
//!
//! - **Thinking over OpenAI.** An assistant message (or response message, or stream delta)
//!   carries thinking text in `reasoning_content` (DeepSeek/vLLM; `reasoning`, the newer vLLM
//!   and OpenRouter name, is read the same way, see [`take_reasoning`]) and the Anthropic
//!   `thinking` / `redacted_thinking` blocks verbatim, signatures and `data` included, in
//!   `thinking_blocks` (LiteLLM's precedent). Going back to Anthropic, `thinking_blocks` wins;
//!   `reasoning_content` without blocks has no signature, so it becomes an unsigned thinking
//!   block in responses and is dropped (reported) from request history, where Anthropic would
//!   reject it. In streams each `thinking_blocks` entry also has an `index` (the block's
//!   ordinal among the message's thinking blocks, see `crate::stream::anthropic_to_openai`),
//!   so SDK accumulators rebuild whole blocks; [`without_entry_index`] drops that `index`
//!   wherever an entry becomes an Anthropic block again, since it is not a block field.
//! - **Tool names.** Names outside `^[a-zA-Z0-9_-]{1,64}$` are shortened by
//!   [`vocab::target_tool_name`]; responses and streams restore them with a [`vocab::ToolNames`]
//!   built from the client's original request ([`ResponseContext`]).
//! - **Tool errors.** Anthropic `is_error: true` becomes a tool message whose text starts with
//!   [`TOOL_ERROR_PREFIX`]; that prefix turns back into `is_error: true`.
//! - **Usage.** Anthropic → OpenAI: `prompt_tokens` = input + cache read + cache creation,
//!   `prompt_tokens_details.cached_tokens` = cache read. OpenAI → Anthropic: `input_tokens` =
//!   prompt − cached, `cache_read_input_tokens` = cached, `cache_creation_input_tokens` = 0.
//! - **Paths.** Losses use JSON pointers into the source (`/messages/2/content/0`); errors use
//!   the parser's dotted notation (`messages[2].content[0].type`).

pub mod anthropic_to_openai;
pub mod error;
pub mod losses;
pub mod openai_to_anthropic;
pub mod request_anthropic_to_openai;
pub mod request_openai_to_anthropic;
pub mod response_anthropic_to_openai;
pub mod response_openai_to_anthropic;
pub mod vocab;

pub use losses::{Loss, LossKind, Losses};
pub use vocab::ToolNames;

use crate::protocol::{anthropic, openai};

/// The reasoning text of an OpenAI message or delta: `reasoning_content` (DeepSeek, older vLLM,
/// a2o), else `reasoning` (vLLM since it renamed the field, OpenRouter, Groq), which is taken
/// out of `extra` so it is not reported as unknown. When both are there and differ,
/// `reasoning_content` wins and `reasoning` is reported at `{base}/reasoning`.
pub fn take_reasoning(
    reasoning_content: Option<String>,
    extra: &mut crate::protocol::Extra,
    base: &str,
    losses: &mut Losses,
) -> Option<String> {
    let reasoning = match extra.get("reasoning") {
        Some(serde_json::Value::String(_)) => match extra.shift_remove("reasoning") {
            Some(serde_json::Value::String(text)) => Some(text),
            _ => None,
        },
        Some(serde_json::Value::Null) => {
            extra.shift_remove("reasoning");
            None
        }
        _ => None,
    };
    match (reasoning_content, reasoning) {
        (Some(content), Some(other)) if !other.is_empty() && other != content => {
            if !content.is_empty() {
                losses.dropped(
                    format!("{base}/reasoning"),
                    "`reasoning` differs from `reasoning_content`; reasoning_content was kept",
                );
                Some(content)
            } else {
                Some(other)
            }
        }
        (Some(content), _) => Some(content),
        (None, other) => other,
    }
}

/// A `thinking_blocks` entry without the stream `index` an accumulated stream leaves on it.
pub fn without_entry_index(mut entry: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = entry.as_object_mut() {
        fields.shift_remove("index");
    }
    entry
}

/// Prefix of a tool message's text when the Anthropic `tool_result` had `is_error: true`.
pub const TOOL_ERROR_PREFIX: &str = "[tool error] ";

/// `max_tokens` for Anthropic-bound requests that have none (`DEFAULT_MAX_TOKENS`).
pub const DEFAULT_MAX_TOKENS: u64 = 8192;

/// Settings that change how requests are converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOptions {
    /// Used when an Anthropic-bound request has no `max_tokens` (reported as synthesized).
    pub default_max_tokens: u64,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// What a response (or stream) conversion needs to know about the client's original request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseContext {
    /// Shortened tool names to restore.
    pub tool_names: ToolNames,
    /// The model the client asked for, used when the upstream response names none.
    pub requested_model: Option<String>,
    /// Stop sequences the client sent, to recognise which one an OpenAI upstream stopped on.
    pub stop_sequences: Vec<String>,
    /// OpenAI clients only: whether `stream_options.include_usage` asked for a usage chunk.
    pub include_usage: bool,
    /// The `created` timestamp for OpenAI output; `None` means now. Tests pin it.
    pub created: Option<u64>,
    /// Best local estimate of the prompt's input tokens, for an Anthropic `message_start` when
    /// an OpenAI upstream reports usage only at the end (Claude Code's context meter reads it).
    pub input_tokens_estimate: Option<u64>,
    /// The model name to report to the client when a2o sent the upstream another one (an alias
    /// or a `model_list` mapping); `None` reports the upstream's.
    pub client_model: Option<String>,
}

impl ResponseContext {
    /// Context for responses going back to an Anthropic client.
    pub fn for_anthropic_client(request: &anthropic::MessagesRequest) -> Self {
        Self {
            tool_names: ToolNames::from_names(
                request.tools.iter().flatten().map(|t| t.name.as_str()),
            ),
            requested_model: Some(request.model.clone()),
            stop_sequences: request.stop_sequences.clone().unwrap_or_default(),
            include_usage: false,
            created: None,
            input_tokens_estimate: None,
            client_model: None,
        }
    }

    /// Context for responses going back to an OpenAI client.
    pub fn for_openai_client(request: &openai::ChatRequest) -> Self {
        Self {
            tool_names: ToolNames::from_names(
                request
                    .tools
                    .iter()
                    .flatten()
                    .map(|t| t.function.name.as_str()),
            ),
            requested_model: Some(request.model.clone()),
            stop_sequences: request
                .stop
                .clone()
                .map(crate::protocol::OneOrMany::into_vec)
                .unwrap_or_default(),
            include_usage: request
                .stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
            created: None,
            input_tokens_estimate: None,
            client_model: None,
        }
    }

    pub(crate) fn created_or_now(&self) -> u64 {
        self.created.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        })
    }
}

/// A document that parsed but cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConvertError {
    /// Dotted path of the offending value (`messages[3].content[1].type`).
    pub path: String,
    pub message: String,
}

impl ConvertError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}
