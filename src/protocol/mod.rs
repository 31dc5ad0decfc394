//! Wire types for both dialects, owned by us: every object keeps the fields we do not model in
//! `extra`, and every tagged union falls back to `Unknown(Value)` for tags we have never seen.
//! Nothing here converts anything; see `convert` and `stream` for that.

pub mod anthropic;
pub mod openai;

use serde_json::{Map, Value};

/// Fields of an object that a type does not model. They survive a same-dialect round trip and
/// are reported as losses by cross-dialect converters.
pub type Extra = Map<String, Value>;

/// Turns a `serde_path_to_error` failure inside a nested value into a message that keeps the
/// inner path, so the caller's outer path plus this message still names the failing field.
pub(crate) fn nested_error<E: serde::de::Error>(err: serde_path_to_error::Error<serde_json::Error>) -> E {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if path == "." || path.is_empty() {
        E::custom(inner)
    } else {
        E::custom(format_args!("{path}: {inner}"))
    }
}

/// Implements `Deserialize` for an enum whose variant is chosen by a string tag field. A known
/// tag must deserialize into its variant (so malformed known blocks are errors that name the
/// field), while an unknown or missing tag becomes `Unknown(Value)`.
macro_rules! tagged_with_fallback {
    ($enum:ident, $tag_field:literal, { $($tag:literal => $variant:ident($ty:ty)),* $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = serde_json::Value::deserialize(deserializer)?;
                let tag = value.get($tag_field).and_then(serde_json::Value::as_str);
                match tag {
                    $(Some($tag) => serde_path_to_error::deserialize::<_, $ty>(value)
                        .map($enum::$variant)
                        .map_err($crate::protocol::nested_error),)*
                    _ => Ok($enum::Unknown(value)),
                }
            }
        }
    };
}
pub(crate) use tagged_with_fallback;

/// Reads a JSON document into a wire type; the error names the JSON path that failed, e.g.
/// `messages[3].content[1]: missing field `text``.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        ParseError { path: if path == "." { String::new() } else { path }, message: inner.to_string(), syntax: inner.is_syntax() || inner.is_eof() }
    })?;
    de.end().map_err(|err| ParseError { path: String::new(), message: err.to_string(), syntax: true })?;
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
