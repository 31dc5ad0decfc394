//! Wire types for both dialects, owned by us: every object keeps the fields we do not model in
//! `extra`, and every tagged union falls back to `Unknown(Value)` for tags we have never seen.
//! Nothing here converts anything; see `convert` and `stream` for that.

pub mod anthropic;
pub mod openai;

use serde_json::{Map, Value};

/// Fields of an object that a type does not model. They survive a same-dialect round trip and
/// are reported as losses by cross-dialect converters.
pub type Extra = Map<String, Value>;

/// Marks the start and end of a path carried inside an error message (see [`nested_error`]).
const PATH_MARK: char = '\u{1}';

/// Turns a `serde_path_to_error` failure inside a nested value into an error that carries the
/// inner path, so [`parse`] can join it to the outer one: `messages[0].content[1].source`
/// rather than `messages[0].content: [1]: source`.
pub(crate) fn nested_error<E: serde::de::Error>(
    err: serde_path_to_error::Error<serde_json::Error>,
) -> E {
    let path = err.path().to_string();
    let (inner_path, message) = split_path(err.into_inner().to_string());
    let path = join_path(if path == "." { "" } else { &path }, &inner_path);
    if path.is_empty() {
        E::custom(message)
    } else {
        E::custom(format_args!("{PATH_MARK}{path}{PATH_MARK}{message}"))
    }
}

/// Splits a message made by [`nested_error`] into its path and the message proper.
fn split_path(message: String) -> (String, String) {
    if let Some(rest) = message.strip_prefix(PATH_MARK) {
        if let Some((path, message)) = rest.split_once(PATH_MARK) {
            return (path.to_owned(), message.to_owned());
        }
    }
    (String::new(), message)
}

fn join_path(outer: &str, inner: &str) -> String {
    match (outer.is_empty(), inner.is_empty()) {
        (_, true) => outer.to_owned(),
        (true, false) => inner.to_owned(),
        (false, false) if inner.starts_with('[') => format!("{outer}{inner}"),
        (false, false) => format!("{outer}.{inner}"),
    }
}

/// Implements `Deserialize` for an enum whose variant is chosen by a string tag field. A known
/// tag must deserialize into its variant (so malformed known blocks are errors that name the
/// field), while an unknown or missing tag becomes `Unknown(Value)`.
macro_rules! tagged_with_fallback {
    ($enum:ident, $tag_field:literal, { $($tag:literal => $variant:ident($ty:ty)),* $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let mut value = serde_json::Value::deserialize(deserializer)?;
                let tag = value.get($tag_field).and_then(serde_json::Value::as_str).map(str::to_owned);
                match tag.as_deref() {
                    $(Some($tag) => {
                        // The variant's own `extra` must not keep the tag, or it is written twice.
                        if let Some(fields) = value.as_object_mut() {
                            fields.shift_remove($tag_field);
                        }
                        serde_path_to_error::deserialize::<_, $ty>(value)
                            .map($enum::$variant)
                            .map_err($crate::protocol::nested_error)
                    })*
                    _ => Ok($enum::Unknown(value)),
                }
            }
        }
    };
}
pub(crate) use tagged_with_fallback;

/// Implements `Deserialize` for a "string or array of items" enum. serde's `untagged` would
/// report "data did not match any variant" for a bad item; this keeps the item's own error and
/// path (`messages[0].content[1].source: missing field `data``).
macro_rules! string_or_array {
    ($enum:ident, $text:ident, $array:ident($item:ty)) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                match serde_json::Value::deserialize(deserializer)? {
                    serde_json::Value::String(text) => Ok($enum::$text(text)),
                    value @ serde_json::Value::Array(_) => {
                        serde_path_to_error::deserialize::<_, Vec<$item>>(value)
                            .map($enum::$array)
                            .map_err($crate::protocol::nested_error)
                    }
                    other => Err(D::Error::custom(format_args!(
                        "expected a string or an array of content blocks, found {}",
                        $crate::protocol::json_type_name(&other)
                    ))),
                }
            }
        }
    };
}
pub(crate) use string_or_array;

/// The JSON type of a value, for error messages.
pub(crate) fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a JSON document into a wire type; the error names the JSON path that failed, e.g.
/// `messages[3].content[1]: missing field `text``.
pub fn parse<'de, T: serde::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let syntax = inner.is_syntax() || inner.is_eof();
        let (inner_path, message) = split_path(inner.to_string());
        ParseError {
            path: join_path(if path == "." { "" } else { &path }, &inner_path),
            message,
            syntax,
        }
    })?;
    de.end().map_err(|err| ParseError {
        path: String::new(),
        message: err.to_string(),
        syntax: true,
    })?;
    Ok(value)
}

/// A document that is not valid JSON, or not the expected shape.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct ParseError {
    /// Path of the failing value in `serde_path_to_error` notation (`messages[3].content`);
    /// empty at the top level.
    pub path: String,
    pub message: String,
    /// True when the bytes are not JSON at all, as opposed to JSON of the wrong shape.
    pub syntax: bool,
}

/// A string, or an array of strings (OpenAI `stop`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// One of the two API dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Chat Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

impl Dialect {
    /// The dialect on the other side of a conversion.
    pub fn other(self) -> Dialect {
        match self {
            Dialect::OpenAi => Dialect::Anthropic,
            Dialect::Anthropic => Dialect::OpenAi,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
        }
    }
}
