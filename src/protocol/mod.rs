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
///
/// Every producer writes the tag first (`{"type":"text",…}`), so that case streams the rest of
/// the object straight into the variant, with no intermediate tree; any other order is
/// buffered into a `Value` first. Errors keep their path either way.
macro_rules! tagged_with_fallback {
    ($enum:ident, $tag_field:literal, { $($tag:literal => $variant:ident($ty:ty)),* $(,)? }) => {
        impl $crate::protocol::Tagged for $enum {
            const TAG_FIELD: &'static str = $tag_field;

            fn is_known(tag: &str) -> bool {
                matches!(tag, $($tag)|*)
            }

            fn variant<'de, D: serde::Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error> {
                match tag {
                    $($tag => <$ty as serde::Deserialize>::deserialize(rest).map($enum::$variant),)*
                    _ => Err(<D::Error as serde::de::Error>::custom("unknown tag")),
                }
            }

            fn from_value<E: serde::de::Error>(mut value: serde_json::Value) -> Result<Self, E> {
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

            fn unknown(value: serde_json::Value) -> Self {
                $enum::Unknown(value)
            }
        }

        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any($crate::protocol::TaggedVisitor::<$enum>::new())
            }
        }
    };
}
pub(crate) use tagged_with_fallback;

/// What [`tagged_with_fallback`] generates for an enum; [`TaggedVisitor`] drives it.
pub(crate) trait Tagged: Sized {
    const TAG_FIELD: &'static str;
    fn is_known(tag: &str) -> bool;
    /// The variant for a known `tag`, from the rest of the object.
    fn variant<'de, D: serde::Deserializer<'de>>(tag: &str, rest: D) -> Result<Self, D::Error>;
    /// The whole object (or any other JSON value) when the tag did not come first.
    fn from_value<E: serde::de::Error>(value: Value) -> Result<Self, E>;
    fn unknown(value: Value) -> Self;
}

pub(crate) struct TaggedVisitor<T>(std::marker::PhantomData<T>);

impl<T> TaggedVisitor<T> {
    pub(crate) fn new() -> Self {
        TaggedVisitor(std::marker::PhantomData)
    }
}

/// An object key, compared with the tag field without allocating.
enum Key {
    Tag,
    Other(String),
}

struct KeySeed(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeySeed {
    type Value = Key;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(if key == self.0 {
            Key::Tag
        } else {
            Key::Other(key.to_owned())
        })
    }
}

impl<'de, T: Tagged> serde::de::Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an object with a `{}` field", T::TAG_FIELD)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut fields = Map::new();
        match map.next_key_seed(KeySeed(T::TAG_FIELD))? {
            None => return T::from_value(Value::Object(fields)),
            Some(Key::Tag) => {
                let tag: Value = map.next_value()?;
                if let Some(name) = tag.as_str().filter(|name| T::is_known(name)) {
                    return T::variant(name, serde::de::value::MapAccessDeserializer::new(map));
                }
                fields.insert(T::TAG_FIELD.to_owned(), tag);
            }
            Some(Key::Other(key)) => {
                fields.insert(key, map.next_value()?);
            }
        }
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            fields.insert(key, value);
        }
        T::from_value(Value::Object(fields))
    }

    // Anything but an object has no tag: it is kept as it came.
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<T, E> {
        Ok(T::unknown(Value::Bool(v)))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        Ok(T::unknown(Value::from(v)))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::unknown(Value::from(v)))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
        Ok(T::unknown(Value::from(v)))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::unknown(Value::from(v)))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::unknown(Value::Null))
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<T, E> {
        Ok(T::unknown(Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(T::unknown(Value::Array(items)))
    }
}

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
                        match <Vec<$item> as serde::Deserialize>::deserialize(&value) {
                            Ok(items) => Ok($enum::$array(items)),
                            Err(_) => serde_path_to_error::deserialize::<_, Vec<$item>>(value)
                                .map($enum::$array)
                                .map_err($crate::protocol::nested_error),
                        }
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
    parse_with(|| serde_json::Deserializer::from_slice(bytes))
}

/// [`parse`] for text already known to be UTF-8 (SSE data): serde_json then skips validating
/// every string again.
pub fn parse_str<'de, T: serde::Deserialize<'de>>(text: &'de str) -> Result<T, ParseError> {
    parse_with(|| serde_json::Deserializer::from_str(text))
}

fn parse_with<'de, R, T>(
    deserializer: impl Fn() -> serde_json::Deserializer<R>,
) -> Result<T, ParseError>
where
    R: serde_json::de::Read<'de>,
    T: serde::Deserialize<'de>,
{
    // Path tracking costs an allocation per object key; valid documents (nearly all) skip it,
    // and only a failure is parsed again to name the path.
    let mut de = deserializer();
    if let Ok(value) = T::deserialize(&mut de) {
        if de.end().is_ok() {
            return Ok(value);
        }
    }
    let mut de = deserializer();
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
