//! Comparing a response with an expectation, purely: normalisation of volatile fields,
//! redaction by JSON pointer, the `shape` projection, and the text forms the diff is made of.
//!
//! Both sides of a comparison are JSON values. A body is itself; a stream is the array of its
//! events, each `{"event": name, "data": parsed JSON or text}`, and is written out as SSE
//! text so a diff reads like the wire (and like the `.sse` files next to the cases).

use std::collections::HashMap;

use serde_json::{Map, Value};
use similar::TextDiff;

use super::case::MatchMode;

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub value: Value,
    /// `value` is an array of events rather than a body.
    pub stream: bool,
}

/// Keys whose string values are generated per response: compared by the pattern of equal
/// values (the same id twice stays the same placeholder), not by the value.
const ID_KEYS: &[&str] = &["id", "tool_use_id", "tool_call_id", "request_id"];
/// Keys whose values change on every response and carry no meaning a client can check.
const VOLATILE_KEYS: &[&str] = &["created", "system_fingerprint", "obfuscation"];

/// Replaces volatile values with stable placeholders:
/// - ids (`id`, `tool_use_id`, `tool_call_id`, `request_id`) become `<id:N>`, numbered by
///   first appearance, keeping a leading type prefix such as `msg_`, `toolu_`, `call_` or
///   `chatcmpl-` so a changed kind of id still shows;
/// - `created`, `system_fingerprint` and `obfuscation` become `<created>` and so on (a `null`
///   stays `null`);
/// - loopback addresses in text lose their port (`127.0.0.1:<port>`), since test servers
///   listen on free ports.
///
/// Model objects (`"object": "model"` or `"type": "model"`) are left alone: their `id` is the
/// model's name and their dates are fixed. Normalising twice gives the same result.
pub fn normalise(value: &mut Value) {
    let mut ids = HashMap::new();
    normalise_in(value, &mut ids);
}

fn normalise_in(value: &mut Value, ids: &mut HashMap<String, usize>) {
    match value {
        Value::Object(map) => {
            let is_model = ["object", "type"]
                .iter()
                .any(|k| map.get(*k).and_then(Value::as_str) == Some("model"));
            for (key, item) in map.iter_mut() {
                if !is_model {
                    if ID_KEYS.contains(&key.as_str()) {
                        if let Value::String(id) = item {
                            *id = id_placeholder(id, ids);
                            continue;
                        }
                    }
                    if VOLATILE_KEYS.contains(&key.as_str()) && !item.is_null() {
                        *item = Value::String(format!("<{key}>"));
                        continue;
                    }
                }
                normalise_in(item, ids);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| normalise_in(item, ids)),
        Value::String(text) => {
            if let Some(replaced) = strip_loopback_ports(text) {
                *text = replaced;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn id_placeholder(id: &str, ids: &mut HashMap<String, usize>) -> String {
    let next = ids.len() + 1;
    let n = *ids.entry(id.to_owned()).or_insert(next);
    format!("{}<id:{n}>", id_prefix(id))
}

/// A short lower-case word and its separator at the start of an id (`toolu_`, `chatcmpl-`).
fn id_prefix(id: &str) -> &str {
    let word = id.bytes().take_while(u8::is_ascii_lowercase).count();
    match id.as_bytes().get(word) {
        Some(b'_' | b'-') if (2..=12).contains(&word) => &id[..=word],
        _ => "",
    }
}

/// `text` with the port of every loopback address replaced by `<port>`, if it has any.
fn strip_loopback_ports(text: &str) -> Option<String> {
    const HOSTS: &[&str] = &["127.0.0.1:", "localhost:", "[::1]:"];
    if !HOSTS.iter().any(|h| text.contains(h)) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for host in HOSTS {
            if let Some(after) = rest.strip_prefix(host) {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                out.push_str(host);
                if digits > 0 {
                    out.push_str("<port>");
                }
                rest = &after[digits..];
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    Some(out)
}

/// The value written where a redacted value was.
pub const REDACTED: &str = "<redacted>";

/// Replaces the value at each JSON pointer with `"<redacted>"`. A `*` segment matches every
/// key of an object or index of an array. Pointers that lead nowhere are ignored: the value
/// may legitimately be absent in one outcome.
pub fn redact(value: &mut Value, pointers: &[String]) {
    for pointer in pointers {
        let segments: Vec<String> = if pointer.is_empty() {
            Vec::new()
        } else {
            pointer
                .split('/')
                .skip(1)
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect()
        };
        redact_at(value, &segments);
    }
}

fn redact_at(value: &mut Value, segments: &[String]) {
    let Some((first, rest)) = segments.split_first() else {
        *value = Value::String(REDACTED.to_owned());
        return;
    };
    match value {
        Value::Object(map) => {
            if first == "*" {
                map.values_mut().for_each(|v| redact_at(v, rest));
            } else if let Some(v) = map.get_mut(first.as_str()) {
                redact_at(v, rest);
            }
        }
        Value::Array(items) => {
            if first == "*" {
                items.iter_mut().for_each(|v| redact_at(v, rest));
            } else if let Some(v) = first.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                redact_at(v, rest);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// String values kept in `shape` mode: they carry structure (which event, block, role, stop
/// reason, tool), not generated text.
const KEPT_STRINGS: &[&str] = &[
    "type",
    "role",
    "object",
    "event",
    "stop_reason",
    "finish_reason",
    "name",
];
/// Numbers kept in `shape` mode: positions that tie deltas to blocks and tool calls.
const KEPT_NUMBERS: &[&str] = &["index"];

/// The structure of a document: every string becomes `"<string>"` and every number
/// `"<number>"` except the kept keys above, booleans become `"<boolean>"`, `null` stays, a
/// `usage` object becomes `"<usage>"` (its counters are token counts) and a volatile field
/// (`created`, `system_fingerprint`, `obfuscation`) `"<volatile>"` whatever it holds. In a
/// stream, `ping` events are dropped (keep-alives that clients skip) and consecutive events
/// of the same structure count as one, so a stream that says the same thing in more or fewer
/// deltas has the same shape.
pub fn shape(document: &Document) -> Value {
    if !document.stream {
        return shape_value(&document.value, None);
    }
    let Value::Array(events) = &document.value else {
        return shape_value(&document.value, None);
    };
    let mut out: Vec<Value> = Vec::new();
    for event in events {
        if event.get("event").and_then(Value::as_str) == Some("ping") {
            continue;
        }
        let shaped = match event {
            Value::Object(map) => {
                let mut shaped = Map::new();
                for (key, item) in map {
                    let item = match (key.as_str(), item) {
                        // Non-JSON data such as `[DONE]` is a marker, not text.
                        ("data", Value::String(text)) => Value::String(text.clone()),
                        _ => shape_value(item, Some(key)),
                    };
                    shaped.insert(key.clone(), item);
                }
                Value::Object(shaped)
            }
            other => shape_value(other, None),
        };
        if out.last() != Some(&shaped) {
            out.push(shaped);
        }
    }
    Value::Array(out)
}

fn shape_value(value: &Value, key: Option<&str>) -> Value {
    if key.is_some_and(|k| VOLATILE_KEYS.contains(&k)) {
        // Present, whatever it holds: some servers send `null` where others send a value.
        return Value::String("<volatile>".to_owned());
    }
    if let (Some("usage"), Value::Object(_)) = (key, value) {
        // Token counts are ignored, and which counters a server reports varies by model and
        // API version; the grammar check already requires the ones clients read.
        return Value::String("<usage>".to_owned());
    }
    match value {
        Value::Null => Value::Null,
        Value::Bool(_) => Value::String("<boolean>".to_owned()),
        Value::Number(_) if key.is_some_and(|k| KEPT_NUMBERS.contains(&k)) => value.clone(),
        Value::Number(_) => Value::String("<number>".to_owned()),
        Value::String(_) if key.is_some_and(|k| KEPT_STRINGS.contains(&k)) => value.clone(),
        Value::String(_) => Value::String("<string>".to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(|v| shape_value(v, None)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shape_value(v, Some(k))))
                .collect(),
        ),
    }
}

/// `actual` without the object keys `expected` does not have at the same place: in `shape`
/// mode extra keys are allowed (APIs add fields), missing ones are not.
pub fn project(actual: &Value, expected: &Value) -> Value {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => Value::Object(
            a.iter()
                .filter(|(k, _)| e.contains_key(*k))
                .map(|(k, v)| (k.clone(), project(v, &e[k.as_str()])))
                .collect(),
        ),
        (Value::Array(a), Value::Array(e)) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| match e.get(i) {
                    Some(ev) => project(v, ev),
                    None => v.clone(),
                })
                .collect(),
        ),
        _ => actual.clone(),
    }
}

/// `actual` with object keys reordered to follow `expected` (extras after), so a diff shows
/// real differences rather than key order, which JSON does not define.
pub fn align_key_order(actual: &Value, expected: &Value) -> Value {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut out = Map::new();
            for (k, ev) in e {
                if let Some(av) = a.get(k) {
                    out.insert(k.clone(), align_key_order(av, ev));
                }
            }
            for (k, av) in a {
                if !out.contains_key(k) {
                    out.insert(k.clone(), av.clone());
                }
            }
            Value::Object(out)
        }
        (Value::Array(a), Value::Array(e)) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| match e.get(i) {
                    Some(ev) => align_key_order(v, ev),
                    None => v.clone(),
                })
                .collect(),
        ),
        _ => actual.clone(),
    }
}

/// The outcome of comparing two documents: whether they match, and the normalised texts a
/// diff is made from.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub matches: bool,
    pub expected_text: String,
    pub actual_text: String,
}

/// Compares `actual` with `expected` in `mode`, after normalising both and applying
/// `redactions` to both.
pub fn compare(
    expected: &Document,
    actual: &Document,
    mode: MatchMode,
    redactions: &[String],
) -> Comparison {
    let prepare = |doc: &Document| {
        let mut value = doc.value.clone();
        normalise(&mut value);
        redact(&mut value, redactions);
        Document {
            value,
            stream: doc.stream,
        }
    };
    let (expected, actual) = (prepare(expected), prepare(actual));
    let (expected_value, actual_value) = match mode {
        MatchMode::Exact => (expected.value, actual.value),
        MatchMode::Shape => {
            let e = shape(&expected);
            let a = project(&shape(&actual), &e);
            (e, a)
        }
    };
    let matches = expected_value == actual_value;
    let actual_value = align_key_order(&actual_value, &expected_value);
    Comparison {
        matches,
        expected_text: render(&expected_value, expected.stream),
        actual_text: render(&actual_value, actual.stream),
    }
}

/// The text form of a document: a stream as SSE (one `data:` line of compact JSON per
/// event), a body as indented JSON. Ends with a newline.
pub fn render(value: &Value, stream: bool) -> String {
    if let (true, Value::Array(events)) = (stream, value) {
        let mut out = String::new();
        for event in events {
            if let Some(name) = event.get("event") {
                out.push_str("event: ");
                match name {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
                out.push('\n');
            }
            let data = match event.get("data") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => event.to_string(),
            };
            for line in data.split('\n') {
                out.push_str("data: ");
                out.push_str(line);
                out.push('\n');
            }
            out.push('\n');
        }
        return out;
    }
    let mut out = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    out.push('\n');
    out
}

/// A unified diff of `expected` against `actual`, with `-` for expected and `+` for actual
/// lines; ANSI colours when `colour` is set. Empty when the texts are equal.
pub fn unified_diff(expected: &str, actual: &str, colour: bool) -> String {
    if expected == actual {
        return String::new();
    }
    let diff = TextDiff::from_lines(expected, actual);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string();
    if !colour {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        let code = if body.starts_with("---") || body.starts_with("+++") {
            "1"
        } else if body.starts_with('-') {
            "31"
        } else if body.starts_with('+') {
            "32"
        } else if body.starts_with("@@") {
            "36"
        } else {
            ""
        };
        if code.is_empty() {
            out.push_str(line);
        } else {
            out.push_str(&format!("\x1b[{code}m{body}\x1b[0m{newline}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> Document {
        Document {
            value,
            stream: false,
        }
    }

    fn stream(value: Value) -> Document {
        Document {
            value,
            stream: true,
        }
    }

    #[test]
    fn normalises_ids_by_pattern_and_keeps_their_prefix() {
        let mut v = json!({
            "id": "chatcmpl-abc", "created": 1700000000, "system_fingerprint": "fp_1",
            "obfuscation": "xyz",
            "choices": [{"message": {"tool_calls": [
                {"id": "call_1"}, {"id": "call_2"}, {"id": "call_1"}
            ]}}],
            "error": {"message": "cannot reach http://127.0.0.1:43117/v1: refused"},
            "request_id": "req_9", "object": "chat.completion"
        });
        normalise(&mut v);
        assert_eq!(
            v,
            json!({
                "id": "chatcmpl-<id:1>", "created": "<created>",
                "system_fingerprint": "<system_fingerprint>", "obfuscation": "<obfuscation>",
                "choices": [{"message": {"tool_calls": [
                    {"id": "call_<id:2>"}, {"id": "call_<id:3>"}, {"id": "call_<id:2>"}
                ]}}],
                "error": {"message": "cannot reach http://127.0.0.1:<port>/v1: refused"},
                "request_id": "req_<id:4>", "object": "chat.completion"
            })
        );
        let again = v.clone();
        normalise(&mut v);
        assert_eq!(v, again, "normalising is idempotent");
    }

    #[test]
    fn model_objects_keep_their_ids_and_dates() {
        let mut v = json!({"data": [{"id": "gpt-4o", "object": "model", "created": 1}]});
        let before = v.clone();
        normalise(&mut v);
        assert_eq!(v, before);
    }

    #[test]
    fn redaction_supports_wildcards_and_ignores_missing_paths() {
        let mut v = json!({"a": [{"t": 1, "u": 2}, {"t": 3}], "b~/c": 4});
        redact(
            &mut v,
            &["/a/*/t".into(), "/b~0~1c".into(), "/nowhere/x".into()],
        );
        assert_eq!(
            v,
            json!({"a": [{"t": "<redacted>", "u": 2}, {"t": "<redacted>"}], "b~/c": "<redacted>"})
        );
    }

    #[test]
    fn exact_matching_ignores_volatile_fields_and_key_order() {
        let e = body(json!({"id": "msg_1", "type": "message", "content": "Hi"}));
        let a = body(json!({"content": "Hi", "type": "message", "id": "msg_2"}));
        assert!(compare(&e, &a, MatchMode::Exact, &[]).matches);
        let a = body(json!({"content": "Hey", "type": "message", "id": "msg_2"}));
        let c = compare(&e, &a, MatchMode::Exact, &[]);
        assert!(!c.matches);
        let diff = unified_diff(&c.expected_text, &c.actual_text, false);
        assert!(diff.contains("-  \"content\": \"Hi\""), "{diff}");
        assert!(diff.contains("+  \"content\": \"Hey\""), "{diff}");
    }

    #[test]
    fn shape_ignores_text_counts_and_extra_keys_but_not_structure() {
        let e = stream(json!([
            {"event": "message_start", "data": {"type": "message_start", "usage": {"input_tokens": 5}}},
            {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}},
            {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}}},
            {"event": "message_delta", "data": {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}}
        ]));
        let a = stream(json!([
            {"event": "message_start", "data": {"type": "message_start", "usage": {"cache_read_input_tokens": 0}}},
            {"event": "ping", "data": {"type": "ping"}},
            {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Other words"}}},
            {"event": "message_delta", "data": {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}}
        ]));
        assert!(compare(&e, &a, MatchMode::Shape, &[]).matches);
        let b = stream(json!([
            {"event": "message_start", "data": {"type": "message_start", "usage": {"input_tokens": 9}}},
            {"event": "content_block_delta", "data": {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}},
            {"event": "message_delta", "data": {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}}}
        ]));
        let c = compare(&e, &b, MatchMode::Shape, &[]);
        assert!(!c.matches);
        let diff = unified_diff(&c.expected_text, &c.actual_text, false);
        assert!(
            diff.contains(
                "+data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"}}"
            ),
            "{diff}"
        );
    }

    #[test]
    fn shape_fails_on_a_missing_key_or_a_changed_type() {
        let e =
            body(json!({"meta": {"input_tokens": 1}, "content": [{"type": "text", "text": "a"}]}));
        let a = body(json!({"meta": {}, "content": [{"type": "text", "text": 5}]}));
        let c = compare(&e, &a, MatchMode::Shape, &[]);
        assert!(!c.matches);
        let diff = unified_diff(&c.expected_text, &c.actual_text, false);
        assert!(
            diff.contains("-    \"input_tokens\": \"<number>\""),
            "{diff}"
        );
        let e = body(json!({"usage": {"input_tokens": 1}, "created": 5}));
        let a = body(json!({"usage": {"prompt_tokens": 1}, "created": null}));
        assert!(
            compare(&e, &a, MatchMode::Shape, &[]).matches,
            "usage counters and volatile values are not compared"
        );
        assert!(diff.contains("+      \"text\": \"<number>\""), "{diff}");
    }

    #[test]
    fn coloured_diffs_mark_lines() {
        let diff = unified_diff("a\n", "b\n", true);
        assert!(diff.contains("\x1b[31m-a\x1b[0m\n"), "{diff:?}");
        assert!(diff.contains("\x1b[32m+b\x1b[0m\n"), "{diff:?}");
        assert_eq!(unified_diff("same\n", "same\n", true), "");
    }
}
