//! Turning responses into expectations: `--record DIR` writes new `shape` cases tagged `live`
//! from what a target answered (how "what the relay does today" becomes a CI check), and
//! `--bless` rewrites the expectations of existing cases in place (how the suites against the
//! deterministic mock are made; review the result as a diff). Either way the written values
//! are normalised (volatile fields become placeholders), redacted as the case asks, and
//! scrubbed of secrets, so a file never holds a key, and blessing twice changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::case::{events_to_sse, Case, CaseFile, Event, MatchMode};
use super::matcher;
use super::runner::Exchange;
use super::secrets::Secrets;

/// The response as it will be written: normalised, redacted, scrubbed.
enum Written {
    Nothing,
    Body(Value),
    Events(Vec<Event>),
}

fn written(case: &Case, exchange: &Exchange, secrets: &Secrets) -> Written {
    let document = exchange.document(secrets);
    if document.value.is_null() && exchange.body.is_empty() {
        return Written::Nothing;
    }
    let mut value = document.value;
    matcher::normalise(&mut value);
    matcher::redact(&mut value, &case.file.redact);
    secrets.scrub_value(&mut value);
    if !document.stream {
        return Written::Body(value);
    }
    let events = match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| Event {
                event: item.get("event").and_then(Value::as_str).map(str::to_owned),
                data: item.get("data").cloned().unwrap_or(Value::Null),
            })
            .collect(),
        _ => Vec::new(),
    };
    Written::Events(events)
}

fn pretty(value: &impl serde::Serialize, secrets: &Secrets) -> Result<String, String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(secrets.scrub(&text))
}

fn write(path: &Path, text: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn media_type(exchange: &Exchange) -> String {
    exchange
        .content_type()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Writes a new case under `dir` (at `<dir>/<id>.json`, with `<dir>/<id>.sse` for a stream)
/// whose expectation is what the target answered, in `shape` mode and tagged `live`.
/// Returns the path written.
pub fn record(
    dir: &Path,
    case: &Case,
    exchange: &Exchange,
    secrets: &Secrets,
) -> Result<PathBuf, String> {
    let path = dir.join(format!("{}.json", case.id()));
    let mut file: CaseFile = case.file.clone();
    file.schema = None;
    if !file.tags.iter().any(|t| t == "live") {
        file.tags.push("live".to_owned());
    }
    file.match_mode = MatchMode::Shape;
    file.alternatives.clear();
    file.skip = None;
    file.expect.status = exchange.status;
    file.expect.headers = BTreeMap::new();
    let content_type = media_type(exchange);
    if !content_type.is_empty() {
        file.expect
            .headers
            .insert("content-type".to_owned(), content_type);
    }
    file.expect.body = None;
    file.expect.events = None;
    file.expect.events_file = None;
    match written(case, exchange, secrets) {
        Written::Nothing => {}
        Written::Body(value) => file.expect.body = Some(value),
        Written::Events(events) => {
            let sse_path = path.with_extension("sse");
            let sse = secrets.scrub(&String::from_utf8_lossy(&events_to_sse(&events)));
            write(&sse_path, sse.as_bytes())?;
            file.expect.events_file = sse_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
        }
    }
    write(&path, pretty(&file, secrets)?.as_bytes())?;
    Ok(path)
}

/// Rewrites the `expect` of `case`'s own file from `exchange`, keeping everything else in
/// the file as written (key order included). The expectation keeps its form: inline events
/// stay inline, an events file is rewritten, and a case that expected no document gets the
/// response's (a body, or a `.sse` file named after the case). Header names expected before
/// are kept with the values that came back. Returns the paths written.
pub fn bless(case: &Case, exchange: &Exchange, secrets: &Secrets) -> Result<Vec<PathBuf>, String> {
    let text = std::fs::read(&case.path)
        .map_err(|e| format!("cannot read {}: {e}", case.path.display()))?;
    let mut root: Value = serde_json::from_slice(&text)
        .map_err(|e| format!("cannot parse {}: {e}", case.path.display()))?;
    let Some(root_map) = root.as_object_mut() else {
        return Err(format!("{} is not a JSON object", case.path.display()));
    };
    let old_expect = &case.file.expect;
    let mut expect = Map::new();
    expect.insert("status".to_owned(), Value::from(exchange.status));
    let mut headers = Map::new();
    for name in case.expected.headers.keys() {
        if let Some(value) = exchange.header(name) {
            headers.insert(name.clone(), Value::String(secrets.scrub(value)));
        }
    }
    if !headers.is_empty() {
        expect.insert("headers".to_owned(), Value::Object(headers));
    }
    let mut written_paths = vec![case.path.clone()];
    match written(case, exchange, secrets) {
        Written::Nothing => {}
        Written::Body(value) => {
            expect.insert("body".to_owned(), value);
        }
        Written::Events(events) => {
            if old_expect.events.is_some() {
                let events = serde_json::to_value(&events).map_err(|e| e.to_string())?;
                expect.insert("events".to_owned(), events);
            } else {
                let name = old_expect.events_file.clone().unwrap_or_else(|| {
                    case.path
                        .with_extension("sse")
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "events.sse".to_owned())
                });
                let dir = case.path.parent().unwrap_or(Path::new("."));
                let sse_path = dir.join(&name);
                let sse = secrets.scrub(&String::from_utf8_lossy(&events_to_sse(&events)));
                write(&sse_path, sse.as_bytes())?;
                written_paths.push(sse_path);
                expect.insert("events_file".to_owned(), Value::String(name));
            }
        }
    }
    root_map.insert("expect".to_owned(), Value::Object(expect));
    write(&case.path, pretty(&root, secrets)?.as_bytes())?;
    Ok(written_paths)
}
