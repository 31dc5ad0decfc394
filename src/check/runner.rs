//! Running cases: sending each request (concurrently, each within its timeout) and judging
//! what came back. Sending is the only async, networked part; [`judge`] is a pure function of
//! the case and the exchange, so the tests exercise every verdict without a server.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use super::case::{events_from_sse, Case, Expected, ExpectedDocument, Level, MatchMode};
use super::grammar::{self, BodyKind};
use super::matcher::{self, Document};
use super::secrets::Secrets;
use crate::protocol::Dialect;

/// What came back for one request.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Exchange {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    pub fn is_stream(&self) -> bool {
        grammar::is_event_stream(self.content_type())
    }

    /// The response as a document: a stream's events, a JSON body, the text of anything
    /// else, or `null` for an empty body. Secrets are scrubbed from it.
    pub fn document(&self, secrets: &Secrets) -> Document {
        let mut document = if self.is_stream() {
            let (events, _) = events_from_sse(&self.body);
            Document {
                value: Value::Array(events.iter().map(|e| e.to_value()).collect()),
                stream: true,
            }
        } else if self.body.is_empty() {
            Document {
                value: Value::Null,
                stream: false,
            }
        } else {
            let value = serde_json::from_slice(&self.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&self.body).into_owned())
            });
            Document {
                value,
                stream: false,
            }
        };
        secrets.scrub_value(&mut document.value);
        document
    }
}

/// The base URLs cases are sent to.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub any: Option<String>,
    pub openai: Option<String>,
    pub anthropic: Option<String>,
}

impl Targets {
    pub fn for_front(&self, front: Dialect) -> Option<&str> {
        let specific = match front {
            Dialect::OpenAi => self.openai.as_deref(),
            Dialect::Anthropic => self.anthropic.as_deref(),
        };
        specific.or(self.any.as_deref())
    }

    pub fn is_empty(&self) -> bool {
        self.any.is_none() && self.openai.is_none() && self.anthropic.is_none()
    }

    fn all(&self) -> impl Iterator<Item = &str> {
        [&self.any, &self.openai, &self.anthropic]
            .into_iter()
            .filter_map(|t| t.as_deref())
    }
}

/// How a run judges.
#[derive(Debug, Clone)]
pub struct Judging {
    /// `--match shape`: compare every case's structure only.
    pub match_override: Option<MatchMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// No response to judge: the connection failed or the case timed out.
    Errored,
    Skipped,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Errored => "error",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Everything known about one case after the run.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Position in the selection, so results print in a stable order.
    pub index: usize,
    pub id: String,
    pub level: Level,
    pub outcome: Outcome,
    /// Why a case was skipped or errored.
    pub reason: Option<String>,
    /// What failed, one sentence each.
    pub problems: Vec<String>,
    /// The normalised expected and actual texts, when they differ.
    pub diff: Option<(String, String)>,
    pub duration: Duration,
    pub exchange: Option<Exchange>,
}

/// What [`judge`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub passed: bool,
    pub problems: Vec<String>,
    pub diff: Option<(String, String)>,
}

/// Judges one response: the dialect's grammar first, then the expectation and its
/// alternatives. The case passes when the grammar holds and any expectation matches; the
/// report then explains the main expectation.
pub fn judge(case: &Case, exchange: &Exchange, judging: &Judging, secrets: &Secrets) -> Verdict {
    let mut problems = Vec::new();
    let kind = BodyKind::for_route(case.route());
    let grammar = grammar::check_response(
        case.dialect,
        kind,
        exchange.status,
        exchange.content_type(),
        &exchange.body,
    );
    if let Err(violation) = &grammar {
        problems.push(format!(
            "grammar ({}): {}",
            case.dialect.name(),
            secrets.scrub(violation)
        ));
    }
    let actual = exchange.document(secrets);
    let mode = judging.match_override.unwrap_or(case.file.match_mode);
    let main = check_expectation(&case.expected, exchange, &actual, mode, &case.file.redact);
    let any_matches = main.problems.is_empty()
        || case.alternatives.iter().any(|alt| {
            check_expectation(alt, exchange, &actual, mode, &case.file.redact)
                .problems
                .is_empty()
        });
    if !any_matches {
        problems.extend(main.problems.iter().map(|p| secrets.scrub(p)));
        if !case.alternatives.is_empty() {
            problems.push(format!(
                "none of the {} alternatives matched either",
                case.alternatives.len()
            ));
        }
    }
    let passed = grammar.is_ok() && any_matches;
    let diff = if any_matches { None } else { main.diff };
    Verdict {
        passed,
        problems,
        diff,
    }
}

struct ExpectationCheck {
    problems: Vec<String>,
    diff: Option<(String, String)>,
}

fn check_expectation(
    expected: &Expected,
    exchange: &Exchange,
    actual: &Document,
    mode: MatchMode,
    redactions: &[String],
) -> ExpectationCheck {
    let mut problems = Vec::new();
    if exchange.status != expected.status {
        problems.push(format!(
            "status: expected {}, got {}",
            expected.status, exchange.status
        ));
    }
    for (name, want) in &expected.headers {
        match exchange.header(name) {
            None => problems.push(format!(
                "header {name}: expected `{want}`, but it is absent"
            )),
            Some(got) if !header_matches(name, want, got) => {
                problems.push(format!("header {name}: expected `{want}`, got `{got}`"))
            }
            Some(_) => {}
        }
    }
    let expected_document = match &expected.document {
        ExpectedDocument::None => None,
        ExpectedDocument::Body(value) => Some(Document {
            value: value.clone(),
            stream: false,
        }),
        ExpectedDocument::Events(events) => Some(Document {
            value: Value::Array(events.iter().map(|e| e.to_value()).collect()),
            stream: true,
        }),
    };
    let mut diff = None;
    if let Some(expected_document) = expected_document {
        let comparison = matcher::compare(&expected_document, actual, mode, redactions);
        if !comparison.matches {
            let what = match (expected_document.stream, actual.stream) {
                (true, false) => format!(
                    "expected an event stream, got a `{}` body",
                    media_type(exchange.content_type())
                ),
                (false, true) => "expected a JSON body, got an event stream".to_owned(),
                (true, true) => format!("the events differ ({} match)", mode.name()),
                (false, false) => format!("the body differs ({} match)", mode.name()),
            };
            problems.push(what);
        }
        if comparison.expected_text != comparison.actual_text {
            diff = Some((comparison.expected_text, comparison.actual_text));
        }
    }
    ExpectationCheck { problems, diff }
}

fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Header values compare exactly (trimmed), except `content-type`, which compares the media
/// type only (`text/event-stream; charset=utf-8` is an event stream).
fn header_matches(name: &str, want: &str, got: &str) -> bool {
    if name.eq_ignore_ascii_case("content-type") {
        media_type(want) == media_type(got)
    } else {
        want.trim() == got.trim()
    }
}

/// Sends one case's request to `base` and reads the whole response within `timeout`.
pub async fn send(
    client: &reqwest::Client,
    case: &Case,
    base: &str,
    secrets: &Secrets,
    timeout: Duration,
) -> Result<Exchange, String> {
    let request = &case.file.request;
    let url = format!(
        "{}{}",
        base.trim_end_matches('/'),
        secrets.fill(&request.path)
    );
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", request.method))?;
    let mut builder = client.request(method, &url);
    let mut has_content_type = false;
    for (name, value) in &request.headers {
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        builder = builder.header(name.as_str(), secrets.fill(value));
    }
    if let Some(body) = &request.body {
        let mut body = body.clone();
        fill_strings(&mut body, secrets);
        if !has_content_type {
            builder = builder.header("content-type", "application/json");
        }
        builder = builder.body(body.to_string());
    }
    let exchange = async {
        let response = builder.send().await.map_err(|e| describe_error(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("the response broke off: {}", describe_error(&e)))?;
        Ok::<Exchange, String>(Exchange {
            status,
            headers,
            body: body.to_vec(),
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no complete response within {} s (--timeout)",
            timeout.as_secs_f64()
        )),
    }
}

fn fill_strings(value: &mut Value, secrets: &Secrets) {
    match value {
        Value::String(s) if s.contains("${") => *s = secrets.fill(s),
        Value::Array(items) => items.iter_mut().for_each(|v| fill_strings(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| fill_strings(v, secrets)),
        _ => {}
    }
}

/// reqwest's error with its causes, which say what actually went wrong (refused, reset…).
fn describe_error(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    if let Some(url) = err.url() {
        text.push_str(&format!(" to {}", url.as_str()));
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The HTTP client for a run. Loopback targets bypass any proxy from the environment.
pub fn client(targets: &Targets) -> reqwest::Result<reqwest::Client> {
    let all_loopback = targets.all().all(is_loopback_url);
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("a2o-check/", env!("CARGO_PKG_VERSION")))
        // Compare what the server sends, not what a decompressor makes of it.
        .no_gzip();
    if all_loopback {
        builder = builder.no_proxy();
    }
    builder.build()
}

fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    ["127.", "localhost", "[::1]"]
        .iter()
        .any(|p| rest.starts_with(p))
}

/// Called as each case finishes, in completion order.
pub trait Progress {
    fn case_done(&mut self, case: &Case, result: &CaseResult);
}

/// Runs `cases` with at most `jobs` in flight and returns their results in selection order.
pub async fn run_cases(
    cases: &[Case],
    targets: &Targets,
    secrets: &Secrets,
    judging: &Judging,
    jobs: usize,
    timeout: Duration,
    progress: &mut dyn Progress,
) -> Result<Vec<CaseResult>, String> {
    let client = client(targets).map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let client = &client;
    let tasks = cases.iter().enumerate().map(|(index, case)| async move {
        let started = Instant::now();
        let skipped = |reason: String| CaseResult {
            index,
            id: case.id().to_owned(),
            level: case.file.level,
            outcome: Outcome::Skipped,
            reason: Some(reason),
            problems: Vec::new(),
            diff: None,
            duration: Duration::ZERO,
            exchange: None,
        };
        if let Some(reason) = &case.file.skip {
            return skipped(reason.clone());
        }
        let Some(base) = targets.for_front(case.front) else {
            return skipped(format!(
                "no --target-{} or --target given",
                case.front.name()
            ));
        };
        match send(client, case, base, secrets, timeout).await {
            Ok(exchange) => {
                let verdict = judge(case, &exchange, judging, secrets);
                CaseResult {
                    index,
                    id: case.id().to_owned(),
                    level: case.file.level,
                    outcome: if verdict.passed {
                        Outcome::Passed
                    } else {
                        Outcome::Failed
                    },
                    reason: None,
                    problems: verdict.problems,
                    diff: verdict.diff,
                    duration: started.elapsed(),
                    exchange: Some(exchange),
                }
            }
            Err(error) => CaseResult {
                index,
                id: case.id().to_owned(),
                level: case.file.level,
                outcome: Outcome::Errored,
                reason: Some(secrets.scrub(&error)),
                problems: Vec::new(),
                diff: None,
                duration: started.elapsed(),
                exchange: None,
            },
        }
    });
    let mut finished = futures_util::stream::iter(tasks).buffer_unordered(jobs.max(1));
    let mut results = Vec::with_capacity(cases.len());
    while let Some(result) = finished.next().await {
        progress.case_done(&cases[result.index], &result);
        results.push(result);
    }
    results.sort_by_key(|r| r.index);
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::case::{CaseFile, Expected};
    use serde_json::json;

    fn case(expect: Value, match_mode: &str) -> Case {
        let file: CaseFile = serde_json::from_value(json!({
            "id": "t/x", "description": "d", "requirement": "r", "level": "must",
            "request": {"method": "POST", "path": "/v1/messages", "body": {}},
            "expect": expect, "match": match_mode
        }))
        .unwrap();
        let body = file.expect.body.clone();
        Case {
            front: Dialect::Anthropic,
            dialect: Dialect::Anthropic,
            path: "t/x.json".into(),
            expected: Expected {
                status: file.expect.status,
                headers: file.expect.headers.clone(),
                document: body.map_or(ExpectedDocument::None, ExpectedDocument::Body),
            },
            alternatives: Vec::new(),
            file,
        }
    }

    fn exchange(status: u16, body: Value) -> Exchange {
        Exchange {
            status,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: body.to_string().into_bytes(),
        }
    }

    fn message(text: &str) -> Value {
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
               "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
               "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}})
    }

    const JUDGING: Judging = Judging {
        match_override: None,
    };

    #[test]
    fn a_matching_response_passes() {
        let case = case(
            json!({"status": 200, "headers": {"content-type": "application/json"}, "body": message("Hi")}),
            "exact",
        );
        let verdict = judge(
            &case,
            &exchange(200, message("Hi")),
            &JUDGING,
            &Secrets::default(),
        );
        assert_eq!(verdict.problems, Vec::<String>::new());
        assert!(verdict.passed);
    }

    #[test]
    fn a_grammar_violation_fails_even_when_the_expectation_matches() {
        let mut bad = message("Hi");
        bad.as_object_mut().unwrap().remove("stop_sequence");
        let case = case(json!({"status": 200, "body": bad.clone()}), "exact");
        let verdict = judge(&case, &exchange(200, bad), &JUDGING, &Secrets::default());
        assert!(!verdict.passed);
        assert_eq!(
            verdict.problems,
            vec!["grammar (anthropic): `stop_sequence` is missing".to_owned()]
        );
    }

    #[test]
    fn status_and_body_mismatches_are_both_reported_with_a_diff() {
        let case = case(json!({"status": 200, "body": message("Hi")}), "exact");
        let error =
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}});
        let verdict = judge(&case, &exchange(529, error), &JUDGING, &Secrets::default());
        assert!(!verdict.passed);
        assert_eq!(verdict.problems[0], "status: expected 200, got 529");
        assert_eq!(verdict.problems[1], "the body differs (exact match)");
        let (expected, actual) = verdict.diff.unwrap();
        assert!(expected.contains("\"text\": \"Hi\""));
        assert!(actual.contains("\"message\": \"busy\""));
    }

    #[test]
    fn shape_override_ignores_text() {
        let case = case(json!({"status": 200, "body": message("Hi")}), "exact");
        let judging = Judging {
            match_override: Some(MatchMode::Shape),
        };
        let verdict = judge(
            &case,
            &exchange(200, message("Something else")),
            &judging,
            &Secrets::default(),
        );
        assert!(verdict.passed, "{:?}", verdict.problems);
    }

    #[test]
    fn content_type_headers_compare_by_media_type() {
        assert!(header_matches(
            "Content-Type",
            "text/event-stream",
            "text/event-stream; charset=utf-8"
        ));
        assert!(!header_matches("x-a", "1", "2"));
    }
}
