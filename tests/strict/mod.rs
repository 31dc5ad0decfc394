//! Strict, test-only models of every document a2o emits: OpenAI Chat Completions requests,
//! responses, stream chunks and error bodies, and Anthropic Messages requests, responses, stream
//! events and error bodies. "Lenient in the product, strict in the tests": the product's wire
//! types (`src/protocol/`) keep unknown fields, these reject them (`deny_unknown_fields`), so a
//! test that runs its output through here proves a2o never emits a key, a type or an enum value
//! the target API does not define.
//!
//! Sources: `../shared/specs/openai/openapi.yaml` (`CreateChatCompletionRequest`,
//! `CreateChatCompletionResponse`, `CreateChatCompletionStreamResponse`, `ErrorResponse`) and
//! `../shared/specs/anthropic/docs-messages-api-openapi-2025-09.md` + `docs-streaming-2025-09.md`.
//! Beyond those, and each marked where it is declared:
//! - Anthropic fields newer than the 2025-09 reference that a2o produces: `thinking: {type:
//!   "adaptive"}`, `output_config` (`effort`, `format`), the legacy beta `output_format`, `strict`
//!   on tools, the `citations_delta` event, the `model_context_window_exceeded` stop reason, the
//!   full `message_delta` usage (`input_tokens` and cache counts, as the official SDK's
//!   `MessageDeltaUsage` has them), the `request_too_large` error type (Anthropic's errors page).
//! - a2o's documented OpenAI extensions (`src/convert/mod.rs`): `reasoning_content` and
//!   `thinking_blocks` on assistant messages, response messages and stream deltas.
//!
//! Deliberately not modelled, because a2o has no source for them and emitting one would be a
//! leak: OpenAI `moderation`, Anthropic `container`/`mcp_servers`, the Anthropic server tools other
//! than `web_search_20250305` and the blocks that only they produce (code execution, MCP,
//! container upload, search results), and the Anthropic keys newer than the reference that real
//! traffic carries (`stop_details`, `inference_geo`, …: `NEWER_THAN_SPEC` in `strict_schema.rs`).
//!
//! Where real OpenAI traffic contradicts its spec, the model follows the traffic, since clients
//! already cope with it: `choices[].logprobs` and `message.refusal` may be absent, and
//! `system_fingerprint` may be `null`.
//!
//! Some checks go past keys and types where the spec states a rule a converter can break: token
//! counts are `u64`, ranges (`temperature` is 0..=2 for OpenAI but 0..=1 for Anthropic), name and
//! id patterns, `stop` has at most 4 entries, Anthropic request text blocks are not empty, and
//! `budget_tokens` is below `max_tokens`.
//!
//! Unions are dispatched by hand instead of with serde's tagged/untagged enums, because those
//! buffer their input and lose both the error path and the real error. A nested failure is
//! carried up as `NESTED path NESTED message` and joined with the outer path, so every error
//! reads `messages[1].content[0].cache_control.ttl: unknown variant ...`.
//!
//! Known gap: serde lets a derived struct be read from a JSON array of its fields in order, so
//! `"stream_options": []` passes. a2o serializes structs as objects, so it can't emit that.

#![allow(dead_code)] // each test binary uses a subset; model fields exist to be checked, not read
#![allow(clippy::large_enum_variant)] // these types live only for the length of one check

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

// -------------------------------------------------------------------------------------------
// Public API

/// An OpenAI `POST /v1/chat/completions` body.
pub fn openai_request(v: &Value) -> Result<(), String> {
    check::<openai::Request>(v)
}

/// An OpenAI non-streaming chat completion.
pub fn openai_response(v: &Value) -> Result<(), String> {
    check::<openai::Response>(v)
}

/// One OpenAI stream chunk, or the in-band `{"error":{...}}` a stream may end with.
pub fn openai_chunk(v: &Value) -> Result<(), String> {
    if v.as_object().is_some_and(|o| o.contains_key("error")) {
        openai_error(v)
    } else {
        check::<openai::Chunk>(v)
    }
}

/// An OpenAI error body.
pub fn openai_error(v: &Value) -> Result<(), String> {
    check::<openai::ErrorBody>(v)
}

/// An Anthropic `POST /v1/messages` body.
pub fn anthropic_request(v: &Value) -> Result<(), String> {
    check::<anthropic::Request>(v)?;
    anthropic::check_request_rules(v)
}

/// An Anthropic non-streaming message.
pub fn anthropic_response(v: &Value) -> Result<(), String> {
    check::<anthropic::Response>(v)
}

/// One Anthropic stream event (the JSON of a `data:` line).
pub fn anthropic_event(v: &Value) -> Result<(), String> {
    check::<anthropic::Event>(v)
}

/// An Anthropic error body.
pub fn anthropic_error(v: &Value) -> Result<(), String> {
    check::<anthropic::ErrorBody>(v)
}

/// Validates every frame of an SSE stream of the given dialect ("openai" | "anthropic");
/// `[DONE]` allowed for openai.
///
/// Anthropic frames must also carry an `event:` name equal to their data's `type`, as the
/// streaming reference says every event does. Frame numbers in errors count from 1.
pub fn stream(dialect: &str, sse: &str) -> Result<(), String> {
    let frames = sse_frames(sse)?;
    match dialect {
        "openai" => {
            let last = frames.len();
            for (n, frame) in frames.iter().enumerate() {
                let n = n + 1;
                if frame.data.trim() == "[DONE]" {
                    if n != last {
                        return Err(format!("frame {n}: `[DONE]` is not the last frame"));
                    }
                    continue;
                }
                let value = frame_json(n, frame)?;
                openai_chunk(&value).map_err(|e| format!("frame {n}: {e}"))?;
            }
            Ok(())
        }
        "anthropic" => {
            for (n, frame) in frames.iter().enumerate() {
                let n = n + 1;
                let value = frame_json(n, frame)?;
                let kind = value.get("type").and_then(Value::as_str).unwrap_or("?");
                match &frame.event {
                    Some(event) if event == kind => {}
                    Some(event) => {
                        return Err(format!(
                            "frame {n}: `event: {event}` but the data's type is `{kind}`"
                        ))
                    }
                    None => return Err(format!("frame {n} ({kind}): no `event:` line")),
                }
                anthropic_event(&value).map_err(|e| format!("frame {n} ({kind}): {e}"))?;
            }
            Ok(())
        }
        other => Err(format!(
            "unknown dialect `{other}` (expected \"openai\" or \"anthropic\")"
        )),
    }
}

/// Checks the event order of a complete Anthropic stream, on top of [`stream`]'s per-frame check:
/// `message_start` first; content blocks opened at consecutive indices from 0, never overlapping;
/// every delta of the open block's kind (`text_delta`/`citations_delta` into `text`,
/// `input_json_delta` into `tool_use`/`server_tool_use`, `thinking_delta`/`signature_delta` into
/// `thinking`); at least one `message_delta` outside any block; and `message_stop` (or an `error`
/// event) last. `ping` may appear anywhere.
pub fn anthropic_stream_order(sse: &str) -> Result<(), String> {
    stream("anthropic", sse)?;
    let mut order = EventOrder::default();
    for (n, frame) in sse_frames(sse)?.iter().enumerate() {
        let value = frame_json(n + 1, frame)?;
        order
            .accept(&value)
            .map_err(|e| format!("frame {}: {e}", n + 1))?;
    }
    order.finish()
}

// -------------------------------------------------------------------------------------------
// Error plumbing: path-tracked deserialization across hand-written unions

/// Separates the inner path from the message in errors raised inside a union.
const NESTED: char = '\u{1f}';

fn check<T: DeserializeOwned>(v: &Value) -> Result<(), String> {
    serde_path_to_error::deserialize::<_, T>(v)
        .map(drop)
        .map_err(|e| {
            let (inner, message) = split_nested(&e.inner().to_string());
            let path = join_paths(&e.path().to_string(), &inner);
            if path.is_empty() || path == "." {
                message
            } else {
                format!("{path}: {message}")
            }
        })
}

/// Deserializes one branch of a union; the error keeps its own path for the caller to prefix.
fn nested<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let (inner, message) = split_nested(&e.inner().to_string());
        at(&join_paths(&e.path().to_string(), &inner), &message)
    })
}

/// An error message located at `path` relative to the value being deserialized.
fn at(path: &str, message: &str) -> String {
    format!("{NESTED}{path}{NESTED}{message}")
}

fn split_nested(message: &str) -> (String, String) {
    match message
        .strip_prefix(NESTED)
        .and_then(|rest| rest.split_once(NESTED))
    {
        Some((path, message)) => (path.to_owned(), message.to_owned()),
        None => (String::new(), message.to_owned()),
    }
}

fn join_paths(outer: &str, inner: &str) -> String {
    match (outer, inner) {
        ("" | ".", _) => inner.to_owned(),
        (_, "" | ".") => outer.to_owned(),
        (_, _) if inner.starts_with('[') => format!("{outer}{inner}"),
        _ => format!("{outer}.{inner}"),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "a sequence".to_owned(),
        Value::Object(_) => "a map".to_owned(),
    }
}

/// Removes the union's tag from an object and returns it with the rest of the object.
fn split_tag<'de, D: Deserializer<'de>>(
    d: D,
    tag: &'static str,
) -> Result<(String, Value), D::Error> {
    let mut value = Value::deserialize(d)?;
    let Value::Object(fields) = &mut value else {
        return Err(D::Error::custom(format!(
            "invalid type: {}, expected an object with a `{tag}`",
            describe(&value)
        )));
    };
    match fields.remove(tag) {
        Some(Value::String(kind)) => Ok((kind, value)),
        Some(other) => Err(D::Error::custom(at(
            tag,
            &format!("invalid type: {}, expected a string", describe(&other)),
        ))),
        None => Err(D::Error::missing_field(tag)),
    }
}

fn unknown_tag(tag: &str, found: &str, expected: &[&str]) -> String {
    let expected: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    at(
        tag,
        &format!(
            "unknown variant `{found}`, expected one of {}",
            expected.join(", ")
        ),
    )
}

/// An enum of structs selected by a string tag (`type`, `role`) that the structs don't repeat.
macro_rules! tagged_union {
    (
        $(#[$meta:meta])*
        $name:ident by $tag:literal { $($value:literal => $variant:ident($ty:ty)),+ $(,)? }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $($variant($ty)),+
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let (kind, rest) = split_tag(d, $tag)?;
                match kind.as_str() {
                    $($value => nested::<$ty>(rest).map(Self::$variant),)+
                    other => Err(unknown_tag($tag, other, &[$($value),+])),
                }
                .map_err(D::Error::custom)
            }
        }
    };
}

/// A string field with exactly one allowed value (`"object": "chat.completion"`).
macro_rules! literal {
    ($name:ident = $value:literal) => {
        #[derive(Deserialize)]
        pub enum $name {
            #[serde(rename = $value)]
            Value,
        }
    };
}

/// An object with no fields besides its union tag (`{"type":"disabled"}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

// -------------------------------------------------------------------------------------------
// Field helpers

/// An optional field the spec does not make nullable: absent is fine, `null` is not.
fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A required field that may be `null` (serde would otherwise treat a missing `Option` as `None`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

fn in_range<E: serde::de::Error>(x: f64, lo: f64, hi: f64) -> Result<f64, E> {
    if (lo..=hi).contains(&x) {
        Ok(x)
    } else {
        Err(E::custom(format!("{x} is outside {lo}..={hi}")))
    }
}

fn nullable_f64_in<'de, D: Deserializer<'de>>(
    d: D,
    lo: f64,
    hi: f64,
) -> Result<Option<f64>, D::Error> {
    Option::<f64>::deserialize(d)?
        .map(|x| in_range(x, lo, hi))
        .transpose()
}

fn nullable_u64_in<'de, D: Deserializer<'de>>(
    d: D,
    lo: u64,
    hi: u64,
) -> Result<Option<u64>, D::Error> {
    match Option::<u64>::deserialize(d)? {
        Some(x) if !(lo..=hi).contains(&x) => {
            Err(D::Error::custom(format!("{x} is outside {lo}..={hi}")))
        }
        other => Ok(other),
    }
}

/// `[A-Za-z0-9_-]{1,max}`, the tool name rule of both APIs (64 for OpenAI, 128 for Anthropic).
fn name_like(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.chars().count())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn string_where<'de, D: Deserializer<'de>>(
    d: D,
    ok: impl Fn(&str) -> bool,
    rule: &str,
) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if ok(&s) {
        Ok(s)
    } else {
        Err(D::Error::custom(format!("{s:?} does not match {rule}")))
    }
}

fn non_empty_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let items = Vec::<T>::deserialize(d)?;
    if items.is_empty() {
        Err(D::Error::custom("expected at least one item"))
    } else {
        Ok(items)
    }
}

/// `"text"` or `[part, ...]`, the content shape of both APIs. OpenAI arrays need one part at
/// least (`minItems: 1`); Anthropic arrays are checked per message in `check_request_rules`.
pub struct TextOr<P, const MIN_PARTS: usize>(std::marker::PhantomData<P>);

impl<'de, P: DeserializeOwned, const MIN_PARTS: usize> Deserialize<'de> for TextOr<P, MIN_PARTS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(_) => Ok(Self(std::marker::PhantomData)),
            Value::Array(items) if items.len() < MIN_PARTS => Err(D::Error::custom(format!(
                "expected at least {MIN_PARTS} content part(s)"
            ))),
            parts @ Value::Array(_) => nested::<Vec<P>>(parts)
                .map(|_| Self(std::marker::PhantomData))
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "invalid type: {}, expected a string or an array of parts",
                describe(&other)
            ))),
        }
    }
}

// -------------------------------------------------------------------------------------------
// OpenAI Chat Completions

mod openai {
    use super::*;

    // --- Request ------------------------------------------------------------------------------

    /// `CreateChatCompletionRequest` with `CreateModelResponseProperties`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Request {
        #[serde(deserialize_with = "non_empty_vec")]
        messages: Vec<RequestMessage>,
        model: String,
        #[serde(default)]
        service_tier: Option<ServiceTier>,
        #[serde(default)]
        modalities: Option<Vec<Modality>>,
        #[serde(default)]
        verbosity: Option<Verbosity>,
        #[serde(default)]
        reasoning_effort: Option<ReasoningEffort>,
        #[serde(default)]
        max_completion_tokens: Option<u64>,
        #[serde(default, deserialize_with = "penalty")]
        frequency_penalty: Option<f64>,
        #[serde(default, deserialize_with = "penalty")]
        presence_penalty: Option<f64>,
        #[serde(default, deserialize_with = "non_null")]
        web_search_options: Option<WebSearchOptions>,
        #[serde(default, deserialize_with = "top_logprobs")]
        top_logprobs: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        response_format: Option<ResponseFormat>,
        #[serde(default)]
        audio: Option<AudioOutput>,
        #[serde(default)]
        store: Option<bool>,
        #[serde(default)]
        stream: Option<bool>,
        #[serde(default)]
        stop: Option<Stop>,
        #[serde(default)]
        logit_bias: Option<BTreeMap<String, i64>>,
        #[serde(default)]
        logprobs: Option<bool>,
        #[serde(default)]
        max_tokens: Option<u64>,
        #[serde(default, deserialize_with = "choice_count")]
        n: Option<u64>,
        #[serde(default)]
        prediction: Option<Prediction>,
        #[serde(default)]
        seed: Option<i64>,
        #[serde(default)]
        stream_options: Option<StreamOptions>,
        #[serde(default, deserialize_with = "non_null")]
        tools: Option<Vec<Tool>>,
        #[serde(default, deserialize_with = "non_null")]
        tool_choice: Option<ToolChoice>,
        #[serde(default, deserialize_with = "non_null")]
        parallel_tool_calls: Option<bool>,
        /// Deprecated in favour of `tool_choice`, still defined.
        #[serde(default, deserialize_with = "non_null")]
        function_call: Option<FunctionCallChoice>,
        /// Deprecated in favour of `tools`, still defined.
        #[serde(default, deserialize_with = "non_null")]
        functions: Option<Vec<LegacyFunction>>,
        #[serde(default)]
        metadata: Option<BTreeMap<String, String>>,
        #[serde(default, deserialize_with = "temperature")]
        temperature: Option<f64>,
        #[serde(default, deserialize_with = "top_p")]
        top_p: Option<f64>,
        #[serde(default, deserialize_with = "non_null")]
        user: Option<String>,
        #[serde(default)]
        safety_identifier: Option<String>,
        #[serde(default)]
        prompt_cache_key: Option<String>,
        #[serde(default)]
        prompt_cache_retention: Option<PromptCacheRetention>,
        #[serde(default, deserialize_with = "non_null")]
        prompt_cache_options: Option<PromptCacheOptions>,
    }

    fn temperature<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        nullable_f64_in(d, 0.0, 2.0)
    }

    fn top_p<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        nullable_f64_in(d, 0.0, 1.0)
    }

    fn penalty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        nullable_f64_in(d, -2.0, 2.0)
    }

    fn top_logprobs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        nullable_u64_in(d, 0, 20)
    }

    fn choice_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        nullable_u64_in(d, 1, 128)
    }

    /// "Must be a-z, A-Z, 0-9, or contain underscores and dashes, with a maximum length of 64."
    fn function_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        string_where(d, |s| name_like(s, 64), "^[a-zA-Z0-9_-]{1,64}$")
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ServiceTier {
        Auto,
        Default,
        Flex,
        Scale,
        Priority,
        Fast,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Modality {
        Text,
        Audio,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Verbosity {
        Low,
        Medium,
        High,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ReasoningEffort {
        None,
        Minimal,
        Low,
        Medium,
        High,
        Xhigh,
        Max,
    }

    #[derive(Deserialize)]
    pub enum PromptCacheRetention {
        #[serde(rename = "in_memory")]
        InMemory,
        #[serde(rename = "24h")]
        Day,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PromptCacheOptions {
        #[serde(default, deserialize_with = "non_null")]
        ttl: Option<PromptCacheTtl>,
        #[serde(default, deserialize_with = "non_null")]
        mode: Option<PromptCacheMode>,
    }

    literal!(PromptCacheTtl = "30m");

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum PromptCacheMode {
        Implicit,
        Explicit,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PromptCacheBreakpoint {
        mode: ExplicitMode,
    }

    literal!(ExplicitMode = "explicit");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct StreamOptions {
        #[serde(default, deserialize_with = "non_null")]
        include_usage: Option<bool>,
        #[serde(default, deserialize_with = "non_null")]
        include_obfuscation: Option<bool>,
    }

    /// A string, or 1 to 4 strings.
    pub struct Stop;

    impl<'de> Deserialize<'de> for Stop {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match Value::deserialize(d)? {
                Value::String(_) => Ok(Stop),
                Value::Array(items) if !(1..=4).contains(&items.len()) => Err(D::Error::custom(
                    format!("{} stop sequences, expected 1 to 4", items.len()),
                )),
                items @ Value::Array(_) => nested::<Vec<String>>(items)
                    .map(|_| Stop)
                    .map_err(D::Error::custom),
                other => Err(D::Error::custom(format!(
                    "invalid type: {}, expected a string or an array of strings",
                    describe(&other)
                ))),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WebSearchOptions {
        #[serde(default)]
        user_location: Option<WebSearchUserLocation>,
        #[serde(default, deserialize_with = "non_null")]
        search_context_size: Option<Verbosity>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WebSearchUserLocation {
        #[serde(rename = "type")]
        kind: ApproximateTag,
        approximate: WebSearchLocation,
    }

    literal!(ApproximateTag = "approximate");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WebSearchLocation {
        #[serde(default, deserialize_with = "non_null")]
        country: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        region: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        city: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        timezone: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AudioOutput {
        voice: Voice,
        format: AudioFormat,
    }

    /// A built-in voice name or `{"id": "voice_1234"}`.
    pub struct Voice;

    impl<'de> Deserialize<'de> for Voice {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match Value::deserialize(d)? {
                Value::String(_) => Ok(Voice),
                custom @ Value::Object(_) => nested::<CustomVoice>(custom)
                    .map(|_| Voice)
                    .map_err(D::Error::custom),
                other => Err(D::Error::custom(format!(
                    "invalid type: {}, expected a voice",
                    describe(&other)
                ))),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CustomVoice {
        id: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum AudioFormat {
        Wav,
        Aac,
        Mp3,
        Flac,
        Opus,
        Pcm16,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Prediction {
        #[serde(rename = "type")]
        kind: ContentTag,
        content: TextOr<TextOnlyPart, 1>,
    }

    literal!(ContentTag = "content");

    tagged_union!(RequestMessage by "role" {
        "developer" => Developer(InstructionMessage),
        "system" => System(InstructionMessage),
        "user" => User(UserMessage),
        "assistant" => Assistant(AssistantMessage),
        "tool" => Tool(ToolMessage),
        "function" => Function(FunctionMessage),
    });

    /// `developer` and `system` messages.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct InstructionMessage {
        content: TextOr<TextOnlyPart, 1>,
        #[serde(default, deserialize_with = "non_null")]
        name: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UserMessage {
        content: TextOr<UserPart, 1>,
        #[serde(default, deserialize_with = "non_null")]
        name: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AssistantMessage {
        #[serde(default)]
        content: Option<TextOr<AssistantPart, 1>>,
        #[serde(default)]
        refusal: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        name: Option<String>,
        #[serde(default)]
        audio: Option<AudioReference>,
        #[serde(default, deserialize_with = "non_null")]
        tool_calls: Option<Vec<ToolCall>>,
        #[serde(default)]
        function_call: Option<FunctionCall>,
        /// a2o extension (DeepSeek/vLLM convention): the thinking text.
        #[serde(default, deserialize_with = "non_null")]
        reasoning_content: Option<String>,
        /// a2o extension (LiteLLM precedent): Anthropic thinking blocks, signatures included.
        #[serde(default, deserialize_with = "non_null")]
        thinking_blocks: Option<Vec<ThinkingBlocksEntry>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AudioReference {
        id: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ToolMessage {
        content: TextOr<TextOnlyPart, 1>,
        tool_call_id: String,
    }

    /// Deprecated, still defined.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FunctionMessage {
        #[serde(deserialize_with = "nullable")]
        content: Option<String>,
        name: String,
    }

    tagged_union!(TextOnlyPart by "type" {
        "text" => Text(TextPart),
    });

    tagged_union!(UserPart by "type" {
        "text" => Text(TextPart),
        "image_url" => ImageUrl(ImageUrlPart),
        "input_audio" => InputAudio(InputAudioPart),
        "file" => File(FilePart),
    });

    tagged_union!(AssistantPart by "type" {
        "text" => Text(TextPart),
        "refusal" => Refusal(RefusalPart),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TextPart {
        text: String,
        #[serde(default, deserialize_with = "non_null")]
        prompt_cache_breakpoint: Option<PromptCacheBreakpoint>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RefusalPart {
        refusal: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ImageUrlPart {
        image_url: ImageUrl,
        #[serde(default, deserialize_with = "non_null")]
        prompt_cache_breakpoint: Option<PromptCacheBreakpoint>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ImageUrl {
        url: String,
        #[serde(default, deserialize_with = "non_null")]
        detail: Option<ImageDetail>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ImageDetail {
        Auto,
        Low,
        High,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct InputAudioPart {
        input_audio: InputAudio,
        #[serde(default, deserialize_with = "non_null")]
        prompt_cache_breakpoint: Option<PromptCacheBreakpoint>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct InputAudio {
        data: String,
        format: InputAudioFormat,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum InputAudioFormat {
        Wav,
        Mp3,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FilePart {
        file: FileData,
        #[serde(default, deserialize_with = "non_null")]
        prompt_cache_breakpoint: Option<PromptCacheBreakpoint>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FileData {
        #[serde(default, deserialize_with = "non_null")]
        filename: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        file_data: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        file_id: Option<String>,
    }

    tagged_union!(ToolCall by "type" {
        "function" => Function(FunctionToolCall),
        "custom" => Custom(CustomToolCall),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FunctionToolCall {
        id: String,
        function: FunctionCall,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FunctionCall {
        name: String,
        /// JSON text, as the model produced it.
        arguments: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CustomToolCall {
        id: String,
        custom: CustomToolInput,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CustomToolInput {
        name: String,
        input: String,
    }

    tagged_union!(Tool by "type" {
        "function" => Function(FunctionTool),
        "custom" => Custom(CustomTool),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FunctionTool {
        function: FunctionDefinition,
    }

    /// `FunctionObject`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FunctionDefinition {
        #[serde(deserialize_with = "function_name")]
        name: String,
        #[serde(default, deserialize_with = "non_null")]
        description: Option<String>,
        /// A JSON Schema object, free-form.
        #[serde(default, deserialize_with = "non_null")]
        parameters: Option<Map<String, Value>>,
        #[serde(default)]
        strict: Option<bool>,
    }

    /// `ChatCompletionFunctions` (deprecated `functions[]`).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct LegacyFunction {
        #[serde(deserialize_with = "function_name")]
        name: String,
        #[serde(default, deserialize_with = "non_null")]
        description: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        parameters: Option<Map<String, Value>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CustomTool {
        custom: CustomToolDefinition,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CustomToolDefinition {
        name: String,
        #[serde(default, deserialize_with = "non_null")]
        description: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        format: Option<CustomToolFormat>,
    }

    tagged_union!(CustomToolFormat by "type" {
        "text" => Text(Empty),
        "grammar" => Grammar(GrammarFormat),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GrammarFormat {
        grammar: Grammar,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Grammar {
        definition: String,
        syntax: GrammarSyntax,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum GrammarSyntax {
        Lark,
        Regex,
    }

    /// `"none" | "auto" | "required"` or a named/allowed-tools object.
    pub struct ToolChoice;

    impl<'de> Deserialize<'de> for ToolChoice {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match Value::deserialize(d)? {
                mode @ Value::String(_) => nested::<ToolChoiceMode>(mode).map(|_| ToolChoice),
                object @ Value::Object(_) => nested::<ToolChoiceObject>(object).map(|_| ToolChoice),
                other => Err(format!(
                    "invalid type: {}, expected a string or an object",
                    describe(&other)
                )),
            }
            .map_err(D::Error::custom)
        }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ToolChoiceMode {
        None,
        Auto,
        Required,
    }

    tagged_union!(ToolChoiceObject by "type" {
        "function" => Function(NamedFunctionChoice),
        "allowed_tools" => AllowedTools(AllowedToolsChoice),
        "custom" => Custom(NamedCustomChoice),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NamedFunctionChoice {
        function: FunctionName,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NamedCustomChoice {
        custom: FunctionName,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FunctionName {
        name: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AllowedToolsChoice {
        allowed_tools: AllowedTools,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AllowedTools {
        mode: AllowedToolsMode,
        /// Tool definitions, free-form in the spec (`additionalProperties: true`).
        tools: Vec<Map<String, Value>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum AllowedToolsMode {
        Auto,
        Required,
    }

    /// Deprecated `function_call`: `"none" | "auto"` or `{"name": ...}`.
    pub struct FunctionCallChoice;

    impl<'de> Deserialize<'de> for FunctionCallChoice {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match Value::deserialize(d)? {
                mode @ Value::String(_) => {
                    nested::<FunctionCallMode>(mode).map(|_| FunctionCallChoice)
                }
                object @ Value::Object(_) => {
                    nested::<FunctionName>(object).map(|_| FunctionCallChoice)
                }
                other => Err(format!(
                    "invalid type: {}, expected a string or an object",
                    describe(&other)
                )),
            }
            .map_err(D::Error::custom)
        }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum FunctionCallMode {
        None,
        Auto,
    }

    tagged_union!(ResponseFormat by "type" {
        "text" => Text(Empty),
        "json_schema" => JsonSchema(JsonSchemaFormat),
        "json_object" => JsonObject(Empty),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct JsonSchemaFormat {
        json_schema: JsonSchema,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct JsonSchema {
        name: String,
        #[serde(default, deserialize_with = "non_null")]
        description: Option<String>,
        /// A JSON Schema object, free-form.
        #[serde(default, deserialize_with = "non_null")]
        schema: Option<Map<String, Value>>,
        #[serde(default)]
        strict: Option<bool>,
    }

    // a2o extension: one entry of `thinking_blocks`, an Anthropic block carried verbatim.
    tagged_union!(ThinkingBlocksEntry by "type" {
        "thinking" => Thinking(anthropic::ThinkingBlock),
        "redacted_thinking" => RedactedThinking(anthropic::RedactedThinkingBlock),
    });

    // a2o extension: one piece of a thinking block in a stream delta. `index` names the block
    // (its ordinal among the message's thinking blocks); text and signature arrive separately.
    tagged_union!(ThinkingBlocksDeltaEntry by "type" {
        "thinking" => Thinking(ThinkingPiece),
        "redacted_thinking" => RedactedThinking(IndexedRedactedThinking),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ThinkingPiece {
        index: u64,
        thinking: String,
        #[serde(default, deserialize_with = "non_null")]
        signature: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct IndexedRedactedThinking {
        index: u64,
        data: String,
    }

    // --- Response -----------------------------------------------------------------------------

    /// `CreateChatCompletionResponse`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Response {
        id: String,
        choices: Vec<Choice>,
        created: u64,
        model: String,
        object: ChatCompletionObject,
        #[serde(default)]
        metadata: Option<BTreeMap<String, String>>,
        #[serde(default)]
        service_tier: Option<ServiceTier>,
        /// A string in the spec; real responses also send `null` (recorded gpt-3.5/gpt-5 replies).
        #[serde(default)]
        system_fingerprint: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        usage: Option<Usage>,
    }

    literal!(ChatCompletionObject = "chat.completion");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Choice {
        finish_reason: FinishReason,
        index: u64,
        message: ResponseMessage,
        /// Required by the spec, but real responses omit it (a recorded gpt-5-nano reply), so
        /// clients can't rely on it and only its type is checked.
        #[serde(default)]
        logprobs: Option<Logprobs>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum FinishReason {
        Stop,
        Length,
        ToolCalls,
        ContentFilter,
        FunctionCall,
    }

    /// `ChatCompletionResponseMessage`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResponseMessage {
        role: AssistantRole,
        #[serde(deserialize_with = "nullable")]
        content: Option<String>,
        /// Required by the spec, but real responses of older models omit it (recorded
        /// gpt-3.5-turbo and gpt-4-vision-preview replies), so only its type is checked.
        #[serde(default)]
        refusal: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        tool_calls: Option<Vec<ToolCall>>,
        #[serde(default, deserialize_with = "non_null")]
        annotations: Option<Vec<Annotation>>,
        #[serde(default, deserialize_with = "non_null")]
        function_call: Option<FunctionCall>,
        #[serde(default)]
        audio: Option<ResponseAudio>,
        /// a2o extension, as on request assistant messages.
        #[serde(default, deserialize_with = "non_null")]
        reasoning_content: Option<String>,
        /// a2o extension, as on request assistant messages.
        #[serde(default, deserialize_with = "non_null")]
        thinking_blocks: Option<Vec<ThinkingBlocksEntry>>,
    }

    literal!(AssistantRole = "assistant");

    tagged_union!(Annotation by "type" {
        "url_citation" => UrlCitation(UrlCitationAnnotation),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UrlCitationAnnotation {
        url_citation: UrlCitation,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UrlCitation {
        end_index: u64,
        start_index: u64,
        url: String,
        title: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResponseAudio {
        id: String,
        expires_at: u64,
        data: String,
        transcript: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Logprobs {
        #[serde(deserialize_with = "nullable")]
        content: Option<Vec<TokenLogprob>>,
        #[serde(deserialize_with = "nullable")]
        refusal: Option<Vec<TokenLogprob>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TokenLogprob {
        token: String,
        logprob: f64,
        #[serde(deserialize_with = "nullable")]
        bytes: Option<Vec<u8>>,
        top_logprobs: Vec<TopLogprob>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TopLogprob {
        token: String,
        logprob: f64,
        #[serde(deserialize_with = "nullable")]
        bytes: Option<Vec<u8>>,
    }

    /// `CompletionUsage`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Usage {
        prompt_tokens: u64,
        completion_tokens: u64,
        total_tokens: u64,
        #[serde(default, deserialize_with = "non_null")]
        prompt_tokens_details: Option<PromptTokensDetails>,
        #[serde(default, deserialize_with = "non_null")]
        completion_tokens_details: Option<CompletionTokensDetails>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PromptTokensDetails {
        #[serde(default, deserialize_with = "non_null")]
        audio_tokens: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        cached_tokens: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        text_tokens: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        image_tokens: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        cache_write_tokens: Option<u64>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CompletionTokensDetails {
        #[serde(default, deserialize_with = "non_null")]
        accepted_prediction_tokens: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        audio_tokens: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        reasoning_tokens: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        text_tokens: Option<u64>,
        #[serde(default, deserialize_with = "non_null")]
        rejected_prediction_tokens: Option<u64>,
    }

    // --- Stream chunk -------------------------------------------------------------------------

    /// `CreateChatCompletionStreamResponse`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Chunk {
        id: String,
        choices: Vec<ChunkChoice>,
        created: u64,
        model: String,
        object: ChunkObject,
        #[serde(default, deserialize_with = "non_null")]
        obfuscation: Option<String>,
        #[serde(default)]
        service_tier: Option<ServiceTier>,
        /// A string in the spec; real responses also send `null` (recorded gpt-3.5/gpt-5 replies).
        #[serde(default)]
        system_fingerprint: Option<String>,
        /// `null` on every chunk but the last when `include_usage` was asked for.
        #[serde(default)]
        usage: Option<Usage>,
    }

    literal!(ChunkObject = "chat.completion.chunk");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ChunkChoice {
        delta: Delta,
        #[serde(deserialize_with = "nullable")]
        finish_reason: Option<FinishReason>,
        index: u64,
        #[serde(default)]
        logprobs: Option<Logprobs>,
    }

    /// `ChatCompletionStreamResponseDelta`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Delta {
        #[serde(default, deserialize_with = "non_null")]
        role: Option<DeltaRole>,
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        refusal: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        tool_calls: Option<Vec<ToolCallChunk>>,
        #[serde(default, deserialize_with = "non_null")]
        function_call: Option<FunctionCallDelta>,
        /// a2o extension, as on request assistant messages.
        #[serde(default, deserialize_with = "non_null")]
        reasoning_content: Option<String>,
        /// a2o extension: pieces of thinking blocks, merged by `index` like `tool_calls`.
        #[serde(default, deserialize_with = "non_null")]
        thinking_blocks: Option<Vec<ThinkingBlocksDeltaEntry>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum DeltaRole {
        Developer,
        System,
        User,
        Assistant,
        Tool,
    }

    /// `ChatCompletionMessageToolCallChunk`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ToolCallChunk {
        index: u64,
        #[serde(default, deserialize_with = "non_null")]
        id: Option<String>,
        #[serde(rename = "type", default, deserialize_with = "non_null")]
        kind: Option<FunctionTag>,
        #[serde(default, deserialize_with = "non_null")]
        function: Option<FunctionCallDelta>,
    }

    literal!(FunctionTag = "function");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FunctionCallDelta {
        #[serde(default, deserialize_with = "non_null")]
        name: Option<String>,
        #[serde(default, deserialize_with = "non_null")]
        arguments: Option<String>,
    }

    // --- Error --------------------------------------------------------------------------------

    /// `ErrorResponse`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ErrorBody {
        error: ErrorDetail,
    }

    /// `Error`: all four keys present. `type` is a free string in the spec and OpenAI publishes no
    /// list of its values, so only its presence and type are checked.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ErrorDetail {
        message: String,
        #[serde(rename = "type", deserialize_with = "error_type")]
        kind: String,
        #[serde(deserialize_with = "nullable")]
        param: Option<String>,
        #[serde(deserialize_with = "nullable")]
        code: Option<String>,
    }

    fn error_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        string_where(d, |s| !s.is_empty(), "a non-empty string")
    }
}

// -------------------------------------------------------------------------------------------
// Anthropic Messages

mod anthropic {
    use super::*;

    // --- Request ------------------------------------------------------------------------------

    /// The `POST /v1/messages` body.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Request {
        model: String,
        messages: Vec<InputMessage>,
        #[serde(deserialize_with = "max_tokens")]
        max_tokens: u64,
        #[serde(default, deserialize_with = "non_null")]
        metadata: Option<Metadata>,
        #[serde(default, deserialize_with = "non_null")]
        service_tier: Option<RequestServiceTier>,
        #[serde(default, deserialize_with = "non_null")]
        stop_sequences: Option<Vec<String>>,
        #[serde(default, deserialize_with = "non_null")]
        stream: Option<bool>,
        #[serde(default, deserialize_with = "non_null")]
        system: Option<TextOr<SystemBlock, 0>>,
        #[serde(default, deserialize_with = "unit_interval")]
        temperature: Option<f64>,
        #[serde(default, deserialize_with = "non_null")]
        thinking: Option<ThinkingConfig>,
        #[serde(default, deserialize_with = "non_null")]
        tool_choice: Option<ToolChoice>,
        #[serde(default, deserialize_with = "non_null")]
        tools: Option<Vec<Tool>>,
        #[serde(default, deserialize_with = "non_null")]
        top_k: Option<u64>,
        #[serde(default, deserialize_with = "unit_interval")]
        top_p: Option<f64>,
        /// Newer than the 2025-09 reference: `{effort, format}`.
        #[serde(default, deserialize_with = "non_null")]
        output_config: Option<OutputConfig>,
        /// Older beta spelling of `output_config.format` (`structured-outputs-2025-11-13`).
        #[serde(default, deserialize_with = "non_null")]
        output_format: Option<JsonOutputFormat>,
    }

    fn max_tokens<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match u64::deserialize(d)? {
            0 => Err(D::Error::custom("0 is below the minimum of 1")),
            n => Ok(n),
        }
    }

    fn unit_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        in_range(f64::deserialize(d)?, 0.0, 1.0).map(Some)
    }

    /// Rules the types can't express. The request already passed the strict model.
    pub fn check_request_rules(v: &Value) -> Result<(), String> {
        // "budget_tokens: Must be ≥1024 and less than max_tokens."
        if let (Some("enabled"), Some(budget), Some(max)) = (
            v.pointer("/thinking/type").and_then(Value::as_str),
            v.pointer("/thinking/budget_tokens").and_then(Value::as_u64),
            v.get("max_tokens").and_then(Value::as_u64),
        ) {
            if budget >= max {
                return Err(format!(
                    "thinking.budget_tokens: {budget} is not less than max_tokens ({max})"
                ));
            }
        }
        // The API's "all messages must have non-empty content except for the optional final
        // assistant message".
        let messages = v
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (i, message) in messages.iter().enumerate() {
            let final_assistant = i + 1 == messages.len()
                && message.get("role").and_then(Value::as_str) == Some("assistant");
            let empty = match message.get("content") {
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(blocks)) => blocks.is_empty(),
                _ => false,
            };
            if empty && !final_assistant {
                return Err(format!(
                    "messages[{i}].content: empty (only a final assistant message may be)"
                ));
            }
        }
        Ok(())
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Metadata {
        #[serde(default)]
        user_id: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum RequestServiceTier {
        Auto,
        StandardOnly,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct OutputConfig {
        #[serde(default)]
        effort: Option<Effort>,
        #[serde(default)]
        format: Option<JsonOutputFormat>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Effort {
        Low,
        Medium,
        High,
        Xhigh,
        Max,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct JsonOutputFormat {
        #[serde(rename = "type")]
        kind: JsonSchemaTag,
        /// A JSON Schema object, free-form.
        schema: Map<String, Value>,
    }

    literal!(JsonSchemaTag = "json_schema");

    tagged_union!(ThinkingConfig by "type" {
        "enabled" => Enabled(ThinkingEnabled),
        "disabled" => Disabled(Empty),
        // Newer than the 2025-09 reference.
        "adaptive" => Adaptive(Empty),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ThinkingEnabled {
        #[serde(deserialize_with = "budget_tokens")]
        budget_tokens: u64,
    }

    fn budget_tokens<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match u64::deserialize(d)? {
            n if n < 1024 => Err(D::Error::custom(format!(
                "{n} is below the minimum of 1024"
            ))),
            n => Ok(n),
        }
    }

    tagged_union!(ToolChoice by "type" {
        "auto" => Auto(ToolChoiceOptions),
        "any" => Any(ToolChoiceOptions),
        "tool" => Tool(NamedToolChoice),
        "none" => None(Empty),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ToolChoiceOptions {
        #[serde(default, deserialize_with = "non_null")]
        disable_parallel_tool_use: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NamedToolChoice {
        name: String,
        #[serde(default, deserialize_with = "non_null")]
        disable_parallel_tool_use: Option<bool>,
    }

    /// A client tool (`type` absent, `null` or `"custom"`) or the `web_search_20250305` server
    /// tool.
    pub struct Tool;

    impl<'de> Deserialize<'de> for Tool {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let mut value = Value::deserialize(d)?;
            let kind = match value.get("type") {
                None | Some(Value::Null) => None,
                Some(Value::String(kind)) => Some(kind.clone()),
                Some(other) => {
                    return Err(D::Error::custom(at(
                        "type",
                        &format!("invalid type: {}, expected a string", describe(other)),
                    )))
                }
            };
            if let Some(fields) = value.as_object_mut() {
                fields.remove("type");
            }
            match kind.as_deref() {
                None | Some("custom") => nested::<CustomTool>(value).map(|_| Tool),
                Some("web_search_20250305") => nested::<WebSearchTool>(value).map(|_| Tool),
                Some(other) => Err(unknown_tag(
                    "type",
                    other,
                    &["custom", "web_search_20250305"],
                )),
            }
            .map_err(D::Error::custom)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CustomTool {
        #[serde(deserialize_with = "tool_name")]
        name: String,
        #[serde(default, deserialize_with = "non_null")]
        description: Option<String>,
        input_schema: InputSchema,
        #[serde(default)]
        cache_control: Option<CacheControl>,
        /// Newer than the 2025-09 reference (structured outputs for tool inputs).
        #[serde(default, deserialize_with = "non_null")]
        strict: Option<bool>,
    }

    fn tool_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        string_where(d, |s| name_like(s, 128), "^[a-zA-Z0-9_-]{1,128}$")
    }

    /// A JSON Schema object whose `type` is `"object"`; everything else is free-form.
    pub struct InputSchema;

    impl<'de> Deserialize<'de> for InputSchema {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let schema = Map::<String, Value>::deserialize(d)?;
            match schema.get("type") {
                Some(Value::String(kind)) if kind == "object" => Ok(InputSchema),
                Some(other) => Err(D::Error::custom(at(
                    "type",
                    &format!("{}, expected \"object\"", describe(other)),
                ))),
                None => Err(D::Error::missing_field("type")),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WebSearchTool {
        name: WebSearchName,
        #[serde(default)]
        allowed_domains: Option<Vec<String>>,
        #[serde(default)]
        blocked_domains: Option<Vec<String>>,
        #[serde(default)]
        cache_control: Option<CacheControl>,
        #[serde(default)]
        max_uses: Option<u64>,
        #[serde(default)]
        user_location: Option<UserLocation>,
    }

    literal!(WebSearchName = "web_search");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UserLocation {
        #[serde(rename = "type")]
        kind: ApproximateTag,
        #[serde(default)]
        city: Option<String>,
        #[serde(default)]
        country: Option<String>,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        timezone: Option<String>,
    }

    literal!(ApproximateTag = "approximate");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CacheControl {
        #[serde(rename = "type")]
        kind: EphemeralTag,
        #[serde(default, deserialize_with = "non_null")]
        ttl: Option<CacheTtl>,
    }

    literal!(EphemeralTag = "ephemeral");

    #[derive(Deserialize)]
    pub enum CacheTtl {
        #[serde(rename = "5m")]
        FiveMinutes,
        #[serde(rename = "1h")]
        OneHour,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct InputMessage {
        role: Role,
        content: TextOr<RequestBlock, 0>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Role {
        User,
        Assistant,
    }

    tagged_union!(SystemBlock by "type" {
        "text" => Text(RequestTextBlock),
    });

    tagged_union!(RequestBlock by "type" {
        "text" => Text(RequestTextBlock),
        "image" => Image(ImageBlock),
        "document" => Document(DocumentBlock),
        "tool_use" => ToolUse(RequestToolUseBlock),
        "tool_result" => ToolResult(ToolResultBlock),
        "thinking" => Thinking(ThinkingBlock),
        "redacted_thinking" => RedactedThinking(RedactedThinkingBlock),
        "server_tool_use" => ServerToolUse(RequestServerToolUseBlock),
        "web_search_tool_result" => WebSearchToolResult(RequestWebSearchToolResultBlock),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RequestTextBlock {
        #[serde(deserialize_with = "non_empty_text")]
        text: String,
        #[serde(default)]
        cache_control: Option<CacheControl>,
        #[serde(default)]
        citations: Option<Vec<RequestCitation>>,
    }

    /// `minLength: 1` ("text content blocks must be non-empty"). Whitespace is not rejected:
    /// the API accepted `" "` in an assistant turn of a recorded request.
    fn non_empty_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        string_where(d, |s| !s.is_empty(), "minLength 1 (non-empty text)")
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ImageBlock {
        source: ImageSource,
        #[serde(default)]
        cache_control: Option<CacheControl>,
    }

    tagged_union!(ImageSource by "type" {
        "base64" => Base64(Base64Image),
        "url" => Url(UrlSource),
        "file" => File(FileSource),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Base64Image {
        data: String,
        media_type: ImageMediaType,
    }

    #[derive(Deserialize)]
    pub enum ImageMediaType {
        #[serde(rename = "image/jpeg")]
        Jpeg,
        #[serde(rename = "image/png")]
        Png,
        #[serde(rename = "image/gif")]
        Gif,
        #[serde(rename = "image/webp")]
        Webp,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct UrlSource {
        url: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct FileSource {
        file_id: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct DocumentBlock {
        source: DocumentSource,
        #[serde(default)]
        cache_control: Option<CacheControl>,
        #[serde(default, deserialize_with = "non_null")]
        citations: Option<CitationsConfig>,
        #[serde(default)]
        context: Option<String>,
        #[serde(default)]
        title: Option<String>,
    }

    tagged_union!(DocumentSource by "type" {
        "base64" => Base64(Base64Pdf),
        "text" => Text(PlainText),
        "content" => Content(ContentSource),
        "url" => Url(UrlSource),
        "file" => File(FileSource),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Base64Pdf {
        data: String,
        media_type: PdfMediaType,
    }

    literal!(PdfMediaType = "application/pdf");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PlainText {
        data: String,
        media_type: TextPlainMediaType,
    }

    literal!(TextPlainMediaType = "text/plain");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ContentSource {
        content: TextOr<ContentSourceBlock, 0>,
    }

    tagged_union!(ContentSourceBlock by "type" {
        "text" => Text(RequestTextBlock),
        "image" => Image(ImageBlock),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CitationsConfig {
        #[serde(default, deserialize_with = "non_null")]
        enabled: Option<bool>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RequestToolUseBlock {
        #[serde(deserialize_with = "tool_use_id")]
        id: String,
        /// The tool's arguments: any JSON object (`{}` for none).
        input: Map<String, Value>,
        #[serde(deserialize_with = "tool_use_name")]
        name: String,
        #[serde(default)]
        cache_control: Option<CacheControl>,
    }

    fn tool_use_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        string_where(d, |s| name_like(s, usize::MAX), "^[a-zA-Z0-9_-]+$")
    }

    fn tool_use_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        string_where(
            d,
            |s| (1..=200).contains(&s.chars().count()),
            "a name of 1 to 200 characters",
        )
    }

    fn server_tool_use_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let ok = |s: &str| {
            s.strip_prefix("srvtoolu_").is_some_and(|rest| {
                !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        };
        string_where(d, ok, "^srvtoolu_[a-zA-Z0-9_]+$")
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ToolResultBlock {
        #[serde(deserialize_with = "tool_use_id")]
        tool_use_id: String,
        #[serde(default, deserialize_with = "non_null")]
        content: Option<TextOr<ToolResultContent, 0>>,
        #[serde(default, deserialize_with = "non_null")]
        is_error: Option<bool>,
        #[serde(default)]
        cache_control: Option<CacheControl>,
    }

    tagged_union!(ToolResultContent by "type" {
        "text" => Text(RequestTextBlock),
        "image" => Image(ImageBlock),
    });

    /// Request and response alike; also the a2o `thinking_blocks` extension entry.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ThinkingBlock {
        thinking: String,
        signature: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RedactedThinkingBlock {
        data: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RequestServerToolUseBlock {
        #[serde(deserialize_with = "server_tool_use_id")]
        id: String,
        input: Map<String, Value>,
        name: ServerToolName,
        #[serde(default)]
        cache_control: Option<CacheControl>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ServerToolName {
        WebSearch,
        CodeExecution,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RequestWebSearchToolResultBlock {
        content: WebSearchContent,
        #[serde(deserialize_with = "server_tool_use_id")]
        tool_use_id: String,
        #[serde(default)]
        cache_control: Option<CacheControl>,
    }

    /// The results, or an error object.
    pub struct WebSearchContent;

    impl<'de> Deserialize<'de> for WebSearchContent {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            match Value::deserialize(d)? {
                results @ Value::Array(_) => {
                    nested::<Vec<WebSearchResult>>(results).map(|_| WebSearchContent)
                }
                error @ Value::Object(_) => {
                    nested::<WebSearchError>(error).map(|_| WebSearchContent)
                }
                other => Err(format!(
                    "invalid type: {}, expected an array or an error object",
                    describe(&other)
                )),
            }
            .map_err(D::Error::custom)
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WebSearchResult {
        #[serde(rename = "type")]
        kind: WebSearchResultTag,
        encrypted_content: String,
        #[serde(default)]
        page_age: Option<String>,
        title: String,
        url: String,
    }

    literal!(WebSearchResultTag = "web_search_result");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WebSearchError {
        #[serde(rename = "type")]
        kind: WebSearchErrorTag,
        error_code: WebSearchErrorCode,
    }

    literal!(WebSearchErrorTag = "web_search_tool_result_error");

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum WebSearchErrorCode {
        InvalidToolInput,
        Unavailable,
        MaxUsesExceeded,
        TooManyRequests,
        QueryTooLong,
    }

    tagged_union!(RequestCitation by "type" {
        "char_location" => Char(CharLocation<false>),
        "page_location" => Page(PageLocation<false>),
        "content_block_location" => ContentBlock(ContentBlockLocation<false>),
        "web_search_result_location" => WebSearchResult(WebSearchResultLocation),
        "search_result_location" => SearchResult(SearchResultLocation),
    });

    tagged_union!(ResponseCitation by "type" {
        "char_location" => Char(CharLocation<true>),
        "page_location" => Page(PageLocation<true>),
        "content_block_location" => ContentBlock(ContentBlockLocation<true>),
        "web_search_result_location" => WebSearchResult(WebSearchResultLocation),
        "search_result_location" => SearchResult(SearchResultLocation),
    });

    /// Document citations; only responses define `file_id` (`WITH_FILE_ID`).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CharLocation<const WITH_FILE_ID: bool> {
        cited_text: String,
        document_index: u64,
        #[serde(deserialize_with = "nullable")]
        document_title: Option<String>,
        start_char_index: u64,
        end_char_index: u64,
        #[serde(default, deserialize_with = "file_id::<_, WITH_FILE_ID>")]
        file_id: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PageLocation<const WITH_FILE_ID: bool> {
        cited_text: String,
        document_index: u64,
        #[serde(deserialize_with = "nullable")]
        document_title: Option<String>,
        start_page_number: u64,
        end_page_number: u64,
        #[serde(default, deserialize_with = "file_id::<_, WITH_FILE_ID>")]
        file_id: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ContentBlockLocation<const WITH_FILE_ID: bool> {
        cited_text: String,
        document_index: u64,
        #[serde(deserialize_with = "nullable")]
        document_title: Option<String>,
        start_block_index: u64,
        end_block_index: u64,
        #[serde(default, deserialize_with = "file_id::<_, WITH_FILE_ID>")]
        file_id: Option<String>,
    }

    fn file_id<'de, D: Deserializer<'de>, const ALLOWED: bool>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        if ALLOWED {
            Option::<String>::deserialize(d)
        } else {
            Err(D::Error::custom(
                "unknown field `file_id`: request citations don't define it",
            ))
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct WebSearchResultLocation {
        cited_text: String,
        encrypted_index: String,
        #[serde(deserialize_with = "nullable")]
        title: Option<String>,
        url: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SearchResultLocation {
        cited_text: String,
        search_result_index: u64,
        source: String,
        start_block_index: u64,
        end_block_index: u64,
        #[serde(deserialize_with = "nullable")]
        title: Option<String>,
    }

    // --- Response -----------------------------------------------------------------------------

    /// The `Message` object.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Response {
        id: String,
        #[serde(rename = "type")]
        kind: MessageTag,
        role: AssistantRole,
        content: Vec<ResponseBlock>,
        model: String,
        #[serde(deserialize_with = "nullable")]
        stop_reason: Option<StopReason>,
        #[serde(deserialize_with = "nullable")]
        stop_sequence: Option<String>,
        usage: Usage,
    }

    literal!(MessageTag = "message");
    literal!(AssistantRole = "assistant");

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum StopReason {
        EndTurn,
        MaxTokens,
        StopSequence,
        ToolUse,
        PauseTurn,
        Refusal,
        /// Newer than the 2025-09 reference.
        ModelContextWindowExceeded,
    }

    tagged_union!(ResponseBlock by "type" {
        "text" => Text(ResponseTextBlock),
        "thinking" => Thinking(ThinkingBlock),
        "redacted_thinking" => RedactedThinking(RedactedThinkingBlock),
        "tool_use" => ToolUse(ResponseToolUseBlock),
        "server_tool_use" => ServerToolUse(ResponseServerToolUseBlock),
        "web_search_tool_result" => WebSearchToolResult(ResponseWebSearchToolResultBlock),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResponseTextBlock {
        text: String,
        #[serde(default)]
        citations: Option<Vec<ResponseCitation>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResponseToolUseBlock {
        #[serde(deserialize_with = "tool_use_id")]
        id: String,
        input: Map<String, Value>,
        #[serde(deserialize_with = "tool_use_name")]
        name: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResponseServerToolUseBlock {
        #[serde(deserialize_with = "server_tool_use_id")]
        id: String,
        input: Map<String, Value>,
        name: ServerToolName,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ResponseWebSearchToolResultBlock {
        content: WebSearchContent,
        #[serde(deserialize_with = "server_tool_use_id")]
        tool_use_id: String,
    }

    /// `Usage` of a message (non-streaming, and `message_start`).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Usage {
        input_tokens: u64,
        output_tokens: u64,
        #[serde(default)]
        cache_creation_input_tokens: Option<u64>,
        #[serde(default)]
        cache_read_input_tokens: Option<u64>,
        #[serde(default)]
        cache_creation: Option<CacheCreation>,
        #[serde(default)]
        server_tool_use: Option<ServerToolUsage>,
        #[serde(default)]
        service_tier: Option<UsageServiceTier>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CacheCreation {
        ephemeral_1h_input_tokens: u64,
        ephemeral_5m_input_tokens: u64,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ServerToolUsage {
        web_search_requests: u64,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum UsageServiceTier {
        Standard,
        Priority,
        Batch,
    }

    // --- Stream events ------------------------------------------------------------------------

    tagged_union!(Event by "type" {
        "message_start" => MessageStart(MessageStart),
        "content_block_start" => ContentBlockStart(ContentBlockStart),
        "content_block_delta" => ContentBlockDelta(ContentBlockDelta),
        "content_block_stop" => ContentBlockStop(ContentBlockStop),
        "message_delta" => MessageDelta(MessageDelta),
        "message_stop" => MessageStop(Empty),
        "ping" => Ping(Empty),
        "error" => Error(ErrorEvent),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MessageStart {
        message: Response,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ContentBlockStart {
        index: u64,
        content_block: ResponseBlock,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    }

    tagged_union!(BlockDelta by "type" {
        "text_delta" => Text(TextDelta),
        "input_json_delta" => InputJson(InputJsonDelta),
        "thinking_delta" => Thinking(ThinkingDelta),
        "signature_delta" => Signature(SignatureDelta),
        "citations_delta" => Citations(CitationsDelta),
    });

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct TextDelta {
        text: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct InputJsonDelta {
        partial_json: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ThinkingDelta {
        thinking: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SignatureDelta {
        signature: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CitationsDelta {
        citation: ResponseCitation,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ContentBlockStop {
        index: u64,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MessageDelta {
        delta: MessageDeltaBody,
        usage: DeltaUsage,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct MessageDeltaBody {
        #[serde(deserialize_with = "nullable")]
        stop_reason: Option<StopReason>,
        #[serde(deserialize_with = "nullable")]
        stop_sequence: Option<String>,
    }

    /// `MessageDeltaUsage`: cumulative counts; newer than the 2025-09 reference, all but
    /// `output_tokens` are optional (the official SDK's shape).
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct DeltaUsage {
        output_tokens: u64,
        #[serde(default)]
        input_tokens: Option<u64>,
        #[serde(default)]
        cache_creation_input_tokens: Option<u64>,
        #[serde(default)]
        cache_read_input_tokens: Option<u64>,
        #[serde(default)]
        server_tool_use: Option<ServerToolUsage>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ErrorEvent {
        error: ErrorDetail,
        #[serde(default, deserialize_with = "non_null")]
        request_id: Option<String>,
    }

    // --- Error --------------------------------------------------------------------------------

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ErrorBody {
        #[serde(rename = "type")]
        kind: ErrorTag,
        error: ErrorDetail,
        #[serde(default, deserialize_with = "non_null")]
        request_id: Option<String>,
    }

    literal!(ErrorTag = "error");

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ErrorDetail {
        #[serde(rename = "type")]
        kind: ErrorType,
        message: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ErrorType {
        InvalidRequestError,
        AuthenticationError,
        BillingError,
        PermissionError,
        NotFoundError,
        /// HTTP 413, from the errors page rather than the OpenAPI reference.
        RequestTooLarge,
        RateLimitError,
        TimeoutError,
        ApiError,
        OverloadedError,
    }
}

// -------------------------------------------------------------------------------------------
// SSE framing (deliberately independent of the crate's `sse` module)

struct Frame {
    event: Option<String>,
    data: String,
}

/// Splits on blank lines and gathers `event:` and `data:` fields; comments are skipped, and
/// fields a2o never writes (`id:`, `retry:`) or garbage lines are errors rather than ignored.
fn sse_frames(sse: &str) -> Result<Vec<Frame>, String> {
    let normalized = sse.replace("\r\n", "\n").replace('\r', "\n");
    let mut frames = Vec::new();
    for block in normalized.split("\n\n") {
        let mut event = None;
        let mut data: Option<String> = None;
        for line in block
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(':'))
        {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = Some(value.to_owned()),
                "data" => match &mut data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                },
                _ => return Err(format!("unexpected SSE line {line:?}")),
            }
        }
        if let Some(data) = data {
            frames.push(Frame { event, data });
        } else if let Some(event) = event {
            return Err(format!("`event: {event}` without data"));
        }
    }
    Ok(frames)
}

fn frame_json(n: usize, frame: &Frame) -> Result<Value, String> {
    serde_json::from_str(&frame.data)
        .map_err(|e| format!("frame {n}: not JSON ({e}): {:?}", frame.data))
}

/// State of [`anthropic_stream_order`].
#[derive(Default)]
struct EventOrder {
    started: bool,
    ended: bool,
    next_index: u64,
    /// The open block's index and type.
    open: Option<(u64, String)>,
    message_deltas: usize,
}

impl EventOrder {
    fn accept(&mut self, event: &Value) -> Result<(), String> {
        let kind = event.get("type").and_then(Value::as_str).unwrap_or("?");
        let index = event.get("index").and_then(Value::as_u64);
        if self.ended {
            return Err(format!("`{kind}` after the end of the stream"));
        }
        if kind != "ping" && kind != "error" && !self.started && kind != "message_start" {
            return Err(format!("`{kind}` before `message_start`"));
        }
        match kind {
            "ping" => {}
            "message_start" if self.started => return Err("a second `message_start`".to_owned()),
            "message_start" => self.started = true,
            "content_block_start" => {
                if let Some((open, _)) = &self.open {
                    return Err(format!("block {open} still open when another starts"));
                }
                if index != Some(self.next_index) {
                    return Err(format!(
                        "block index {index:?}, expected {}",
                        self.next_index
                    ));
                }
                let block = event
                    .pointer("/content_block/type")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                self.open = Some((self.next_index, block.to_owned()));
                self.next_index += 1;
            }
            "content_block_delta" => {
                let Some((open, block)) = &self.open else {
                    return Err("delta outside any block".to_owned());
                };
                if index != Some(*open) {
                    return Err(format!(
                        "delta for block {index:?} while block {open} is open"
                    ));
                }
                let delta = event
                    .pointer("/delta/type")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let fits = match delta {
                    "text_delta" | "citations_delta" => block == "text",
                    "input_json_delta" => block == "tool_use" || block == "server_tool_use",
                    "thinking_delta" | "signature_delta" => block == "thinking",
                    _ => false,
                };
                if !fits {
                    return Err(format!("`{delta}` written into a `{block}` block"));
                }
            }
            "content_block_stop" => match &self.open {
                Some((open, _)) if index == Some(*open) => self.open = None,
                _ => return Err(format!("stop for block {index:?}, which is not open")),
            },
            "message_delta" => {
                if let Some((open, _)) = &self.open {
                    return Err(format!("`message_delta` while block {open} is open"));
                }
                self.message_deltas += 1;
            }
            "message_stop" => {
                if self.message_deltas == 0 {
                    return Err("`message_stop` without a `message_delta`".to_owned());
                }
                self.ended = true;
            }
            "error" => self.ended = true,
            other => return Err(format!("unknown event `{other}`")),
        }
        Ok(())
    }

    fn finish(self) -> Result<(), String> {
        if self.ended {
            Ok(())
        } else {
            Err("the stream ends without `message_stop` or `error`".to_owned())
        }
    }
}
