//! The case format: one JSON file per case, read strictly (an unknown key is an error, so a
//! typo never silently disables a check), plus finding case files under directories and
//! selecting cases by id prefix and tag. `conformance/README.md` documents the format and
//! `conformance/case.schema.json` states it as a JSON Schema; both describe these types.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::protocol::Dialect;
use crate::sse::{SseDecoder, SseFrame};

/// How much a failing case matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The API's contract: a failure fails the run.
    Must,
    /// Expected behaviour: a failure fails the run only under `--strict`.
    Should,
    /// Reported, never fails the run.
    Informational,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
            Level::Informational => "informational",
        }
    }
}

/// How the response is compared with the expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// Equal after normalising volatile fields (ids, timestamps, fingerprints).
    Exact,
    /// The same structure: types, keys, event order, block and tool structure, stop reasons.
    Shape,
}

impl MatchMode {
    pub fn name(self) -> &'static str {
        match self {
            MatchMode::Exact => "exact",
            MatchMode::Shape => "shape",
        }
    }
}

/// The dialect the client speaks, as written in a case's `front`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Front {
    Openai,
    Anthropic,
}

impl From<Front> for Dialect {
    fn from(front: Front) -> Dialect {
        match front {
            Front::Openai => Dialect::OpenAi,
            Front::Anthropic => Dialect::Anthropic,
        }
    }
}

/// One case file, as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// Lets editors find the schema; ignored by the runner.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub id: String,
    pub description: String,
    pub requirement: String,
    pub level: Level,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Which front (target) the request is sent to; by default the one of its dialect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front: Option<Front>,
    pub request: CaseRequest,
    pub expect: Expectation,
    #[serde(rename = "match")]
    pub match_mode: MatchMode,
    /// JSON pointers (with `*` for any key or index) whose values are not compared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redact: Vec<String>,
    /// Other outcomes that also pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Expectation>,
    /// When set, the case is not run and is reported as skipped with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    pub method: String,
    /// Appended to the target URL; may carry a query string.
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub status: u16,
    /// A subset of the response headers (names case-insensitive).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
    /// An `.sse` file, relative to the case file, holding the expected events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_file: Option<String>,
}

/// One SSE event: its name (Anthropic streams have one, OpenAI streams don't) and its data,
/// parsed as JSON when it is JSON and kept as text otherwise (`[DONE]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub data: Value,
}

impl Event {
    pub fn from_frame(frame: &SseFrame) -> Event {
        let data =
            serde_json::from_str(&frame.data).unwrap_or_else(|_| Value::String(frame.data.clone()));
        Event {
            event: frame.event.clone(),
            data,
        }
    }

    /// The frame this event is written as: data is compact JSON, or the text itself.
    pub fn to_frame(&self) -> SseFrame {
        let data = match &self.data {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        SseFrame::new(self.event.as_deref(), data)
    }

    pub fn to_value(&self) -> Value {
        let mut map = serde_json::Map::new();
        if let Some(name) = &self.event {
            map.insert("event".to_owned(), Value::String(name.clone()));
        }
        map.insert("data".to_owned(), self.data.clone());
        Value::Object(map)
    }
}

/// Decodes SSE text into events. Framing errors are returned with the events decoded so far.
pub fn events_from_sse(bytes: &[u8]) -> (Vec<Event>, Option<String>) {
    let mut decoder = SseDecoder::new();
    let mut frames = Vec::new();
    let mut problem = decoder
        .push(bytes, &mut frames)
        .err()
        .map(|e| e.to_string());
    if problem.is_none() {
        problem = decoder.finish(&mut frames).err().map(|e| e.to_string());
    }
    (frames.iter().map(Event::from_frame).collect(), problem)
}

/// Writes events as SSE text, one `event:`/`data:` block per event.
pub fn events_to_sse(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        event.to_frame().encode_into(&mut out);
    }
    out
}

/// What is expected, resolved: `events_file` read into events.
#[derive(Debug, Clone)]
pub struct Expected {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub document: ExpectedDocument,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExpectedDocument {
    /// Only status and headers are checked.
    None,
    Body(Value),
    Events(Vec<Event>),
}

/// A loaded, checked case.
#[derive(Debug, Clone)]
pub struct Case {
    pub file: CaseFile,
    pub path: PathBuf,
    /// Which target the request goes to: the case's `front`, else its dialect.
    pub front: Dialect,
    /// The dialect the response must speak: the path's (`/v1/chat/completions` is OpenAI,
    /// `/v1/messages…` Anthropic); for other paths Anthropic if the request sends
    /// `anthropic-version` (as the Anthropic SDKs do), else the `front`.
    pub dialect: Dialect,
    pub expected: Expected,
    pub alternatives: Vec<Expected>,
}

impl Case {
    pub fn id(&self) -> &str {
        &self.file.id
    }

    /// The request path without its query string.
    pub fn route(&self) -> &str {
        route_of(&self.file.request.path)
    }
}

pub fn route_of(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// A case file that cannot be used; the harness stops (exit 2) rather than run a partial suite.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CaseError {
    pub path: String,
    pub message: String,
}

impl CaseError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        CaseError {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Whether a file under a searched directory is a case: `*.json`, but not a schema.
fn is_case_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".json") && !name.ends_with(".schema.json")
}

/// The case files named by `paths`: files as given, directories searched recursively, in a
/// stable (sorted) order.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CaseError> {
    let mut found = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| CaseError::new(path, format!("cannot read: {e}")))?;
        if meta.is_dir() {
            let mut in_dir = Vec::new();
            walk(path, &mut in_dir)?;
            in_dir.sort();
            found.extend(in_dir);
        } else {
            found.push(path.clone());
        }
    }
    let mut seen = BTreeSet::new();
    found.retain(|p| seen.insert(p.clone()));
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CaseError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| CaseError::new(dir, format!("cannot list: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| CaseError::new(dir, format!("cannot list: {e}")))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| CaseError::new(&path, format!("cannot read: {e}")))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if is_case_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads and checks one case file.
pub fn load(path: &Path) -> Result<Case, CaseError> {
    let text =
        std::fs::read(path).map_err(|e| CaseError::new(path, format!("cannot read: {e}")))?;
    let mut de = serde_json::Deserializer::from_slice(&text);
    let file: CaseFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        if at == "." || at.is_empty() {
            CaseError::new(path, format!("not a valid case: {inner}"))
        } else {
            CaseError::new(path, format!("not a valid case: {at}: {inner}"))
        }
    })?;
    check_fields(path, &file)?;
    let route = route_of(&file.request.path);
    let sends_anthropic_version = file
        .request
        .headers
        .keys()
        .any(|name| name.eq_ignore_ascii_case("anthropic-version"));
    let dialect = infer_front(route)
        .or(sends_anthropic_version.then_some(Dialect::Anthropic))
        .or(file.front.map(Dialect::from))
        .ok_or_else(|| {
            CaseError::new(
                path,
                format!(
                    "cannot tell the dialect from the path `{}`; add \"front\": \"openai\" or \
                     \"anthropic\" (or an `anthropic-version` header)",
                    file.request.path
                ),
            )
        })?;
    let front = file.front.map(Dialect::from).unwrap_or(dialect);
    let dir = path.parent().unwrap_or(Path::new("."));
    let expected = resolve_expectation(path, dir, &file.expect, "expect")?;
    let alternatives = file
        .alternatives
        .iter()
        .enumerate()
        .map(|(i, alt)| resolve_expectation(path, dir, alt, &format!("alternatives[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Case {
        path: path.to_path_buf(),
        front,
        dialect,
        expected,
        alternatives,
        file,
    })
}

/// The dialect a path belongs to, when the path says.
pub fn infer_front(route: &str) -> Option<Dialect> {
    if route == "/v1/chat/completions" {
        Some(Dialect::OpenAi)
    } else if route == "/v1/messages" || route.starts_with("/v1/messages/") {
        Some(Dialect::Anthropic)
    } else {
        None
    }
}

fn check_fields(path: &Path, file: &CaseFile) -> Result<(), CaseError> {
    let bad = |message: String| Err(CaseError::new(path, message));
    let id_ok = !file.id.is_empty()
        && file.id.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if !id_ok {
        return bad(format!(
            "id `{}` must be `/`-separated segments of letters, digits, `-`, `_` and `.`",
            file.id
        ));
    }
    let method = file.request.method.as_str();
    if !matches!(method, "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD") {
        return bad(format!(
            "request.method `{method}` must be an upper-case HTTP method"
        ));
    }
    if !file.request.path.starts_with('/') {
        return bad(format!(
            "request.path `{}` must start with `/`",
            file.request.path
        ));
    }
    for (name, value) in &file.request.headers {
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return bad(format!("request.headers: `{name}` is not a header name"));
        }
        if value.contains(['\r', '\n']) {
            return bad(format!(
                "request.headers.{name}: a header value cannot hold a line break"
            ));
        }
    }
    for pointer in &file.redact {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return bad(format!(
                "redact: `{pointer}` is not a JSON pointer (it must start with `/`)"
            ));
        }
    }
    if file.skip.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return bad("skip: give the reason the case is skipped".to_owned());
    }
    Ok(())
}

fn resolve_expectation(
    path: &Path,
    dir: &Path,
    expect: &Expectation,
    at: &str,
) -> Result<Expected, CaseError> {
    if !(100..=599).contains(&expect.status) {
        return Err(CaseError::new(
            path,
            format!("{at}.status {} is not an HTTP status", expect.status),
        ));
    }
    let given = [
        expect.body.is_some(),
        expect.events.is_some(),
        expect.events_file.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given > 1 {
        return Err(CaseError::new(
            path,
            format!("{at}: give at most one of `body`, `events` and `events_file`"),
        ));
    }
    let document = if let Some(body) = &expect.body {
        ExpectedDocument::Body(body.clone())
    } else if let Some(events) = &expect.events {
        ExpectedDocument::Events(events.clone())
    } else if let Some(file) = &expect.events_file {
        let sse_path = dir.join(file);
        let bytes = std::fs::read(&sse_path).map_err(|e| {
            CaseError::new(
                path,
                format!(
                    "{at}.events_file `{}`: cannot read: {e}",
                    sse_path.display()
                ),
            )
        })?;
        let (events, problem) = events_from_sse(&bytes);
        if let Some(problem) = problem {
            return Err(CaseError::new(
                path,
                format!("{at}.events_file `{}`: {problem}", sse_path.display()),
            ));
        }
        ExpectedDocument::Events(events)
    } else {
        ExpectedDocument::None
    };
    let headers = expect
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    Ok(Expected {
        status: expect.status,
        headers,
        document,
    })
}

/// Loads every case in `paths`, refusing duplicate ids.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Case>, CaseError> {
    let files = discover(paths)?;
    let mut cases = Vec::with_capacity(files.len());
    let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let case = load(&file)?;
        if let Some(first) = ids.get(case.id()) {
            return Err(CaseError::new(
                &file,
                format!(
                    "id `{}` is also the id of {}; ids must be unique",
                    case.id(),
                    first.display()
                ),
            ));
        }
        ids.insert(case.id().to_owned(), file);
        cases.push(case);
    }
    Ok(cases)
}

/// Which cases a run covers: any of the id prefixes (whole segments: `a/b` selects `a/b` and
/// `a/b/c`, not `a/bc`) and any of the tags; an empty list selects everything.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub ids: Vec<String>,
    pub tags: Vec<String>,
}

impl Selection {
    pub fn selects(&self, case: &CaseFile) -> bool {
        let id_ok = self.ids.is_empty()
            || self.ids.iter().any(|prefix| {
                let prefix = prefix.trim_end_matches('/');
                prefix.is_empty()
                    || case.id == prefix
                    || case
                        .id
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            });
        let tag_ok = self.tags.is_empty() || self.tags.iter().any(|t| case.tags.contains(t));
        id_ok && tag_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, tags: &[&str]) -> CaseFile {
        serde_json::from_value(serde_json::json!({
            "id": id, "description": "d", "requirement": "r", "level": "must", "tags": tags,
            "request": {"method": "GET", "path": "/v1/models"},
            "expect": {"status": 200}, "match": "exact"
        }))
        .unwrap()
    }

    #[test]
    fn id_prefixes_match_whole_segments() {
        let sel = Selection {
            ids: vec!["a/b".into()],
            tags: vec![],
        };
        assert!(sel.selects(&case("a/b", &[])));
        assert!(sel.selects(&case("a/b/c", &[])));
        assert!(!sel.selects(&case("a/bc", &[])));
        assert!(!sel.selects(&case("x/a/b", &[])));
    }

    #[test]
    fn tags_are_any_of_and_combine_with_ids() {
        let sel = Selection {
            ids: vec!["a".into()],
            tags: vec!["live".into(), "tools".into()],
        };
        assert!(sel.selects(&case("a/x", &["tools"])));
        assert!(!sel.selects(&case("a/x", &["text"])));
        assert!(!sel.selects(&case("b/x", &["live"])));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_json::from_value::<CaseFile>(serde_json::json!({
            "id": "a", "description": "d", "requirement": "r", "level": "must",
            "request": {"method": "GET", "path": "/"}, "expect": {"status": 200},
            "match": "exact", "expct": {}
        }))
        .unwrap_err();
        assert!(err.to_string().contains("expct"), "{err}");
    }

    #[test]
    fn events_round_trip_through_sse() {
        let sse = b"event: ping\ndata: {\"type\":\"ping\"}\n\ndata: [DONE]\n\n";
        let (events, problem) = events_from_sse(sse);
        assert_eq!(problem, None);
        assert_eq!(events[0].event.as_deref(), Some("ping"));
        assert_eq!(events[1].data, Value::String("[DONE]".into()));
        assert_eq!(events_to_sse(&events), sse.to_vec());
    }

    #[test]
    fn front_is_inferred_from_the_path() {
        assert_eq!(infer_front("/v1/chat/completions"), Some(Dialect::OpenAi));
        assert_eq!(
            infer_front("/v1/messages/count_tokens"),
            Some(Dialect::Anthropic)
        );
        assert_eq!(infer_front("/v1/models"), None);
    }
}
