//! Data-driven golden tests: every `testdata/<kind>/<direction>/<case>.in.*` is converted and
//! compared with `<case>.out.*` (and its losses with `<case>.losses.jsonl`), printing a unified
//! diff on mismatch. `A2O_BLESS=1 cargo test --test golden` rewrites the expectations, so a
//! review shows behaviour changes as plain diffs.
//!
//! Sidecar `<case>.options.json` keys: `status` (errors), `request` (path of the client's
//! request, relative to the case), `include_usage` (streams), `default_max_tokens`, `created`.

mod strict;

use std::fs;
use std::path::{Path, PathBuf};

use a2o::convert::{Losses, RequestOptions};
use a2o::pipeline::{self, DocumentKind, DocumentOptions};
use a2o::protocol::Dialect;
use a2o::stream::StreamConverter;
use serde_json::Value;
use similar::TextDiff;

/// `created` pinned in every OpenAI output so goldens are stable.
const PINNED_CREATED: u64 = 1_700_000_000;

struct Case {
    kind: &'static str,
    from: Dialect,
    input: PathBuf,
    stem: PathBuf,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut cases = Vec::new();
    for kind in ["request", "response", "error", "stream"] {
        for (direction, from) in [
            ("openai-to-anthropic", Dialect::OpenAi),
            ("anthropic-to-openai", Dialect::Anthropic),
        ] {
            let dir = root.join(kind).join(direction);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut inputs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains(".in."))
                })
                .collect();
            inputs.sort();
            for input in inputs {
                let name = input
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let stem = dir.join(&name[..name.find(".in.").unwrap_or(name.len())]);
                cases.push(Case {
                    kind,
                    from,
                    input,
                    stem,
                });
            }
        }
    }
    cases
}

fn options(case: &Case) -> Value {
    let path = case.stem.with_extension("options.json");
    match fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        }
        Err(_) => Value::Null,
    }
}

/// Runs one case; returns (output, losses) or the conversion error as text.
fn run(case: &Case) -> (Vec<u8>, Losses) {
    let input = fs::read(&case.input).unwrap_or_else(|e| panic!("{}: {e}", case.input.display()));
    let opts = options(case);
    let request = opts.get("request").and_then(Value::as_str).map(|rel| {
        let path = case.stem.parent().unwrap_or(Path::new(".")).join(rel);
        fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    });
    let created = Some(
        opts.get("created")
            .and_then(Value::as_u64)
            .unwrap_or(PINNED_CREATED),
    );
    if case.kind == "stream" {
        let mut ctx = pipeline::response_context(case.from.other(), request.as_deref())
            .expect("context request");
        ctx.created = created;
        if let Some(include) = opts.get("include_usage").and_then(Value::as_bool) {
            ctx.include_usage = include;
        }
        let mut converter = StreamConverter::new(case.from, ctx);
        let (mut out, mut losses) = (Vec::new(), Losses::new());
        converter.push(&input, &mut out, &mut losses);
        converter.finish(&mut out, &mut losses);
        return (out, losses);
    }
    let kind = match case.kind {
        "request" => DocumentKind::Request,
        "response" => DocumentKind::Response,
        _ => DocumentKind::Error,
    };
    let doc_opts = DocumentOptions {
        request,
        status: opts.get("status").and_then(Value::as_u64).map(|s| s as u16),
        request_options: RequestOptions {
            default_max_tokens: opts
                .get("default_max_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(8192),
        },
        created,
        pretty: true,
    };
    match pipeline::convert_document(kind, case.from, &input, &doc_opts) {
        Ok(converted) => {
            let mut out = converted.body;
            if let Some(status) = converted.status {
                // The mapped status is part of what an error conversion produces.
                let mut with_status = format!("// status {status}\n").into_bytes();
                with_status.append(&mut out);
                out = with_status;
            }
            (out, converted.losses)
        }
        Err(err) => (format!("// error\n{err}\n").into_bytes(), Losses::new()),
    }
}

fn losses_text(losses: &Losses) -> String {
    losses
        .iter()
        .map(|l| serde_json::to_string(l).expect("loss serialises") + "\n")
        .collect()
}

fn check_file(path: &Path, actual: &str, bless: bool, failures: &mut Vec<String>) {
    let expected = fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return;
    }
    if bless {
        if actual.is_empty() {
            let _ = fs::remove_file(path);
        } else {
            fs::write(path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        return;
    }
    let diff = TextDiff::from_lines(expected.as_str(), actual)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{} (expected)", path.display()), "actual")
        .to_string();
    failures.push(diff);
}

#[test]
fn golden_cases_match() {
    let bless = std::env::var_os("A2O_BLESS").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 100,
        "expected the corpus cases in testdata/, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let (out, losses) = run(case);
        let ext = if case.kind == "stream" {
            "out.sse"
        } else {
            "out.json"
        };
        check_file(
            &case.stem.with_extension(ext),
            &String::from_utf8_lossy(&out),
            bless,
            &mut failures,
        );
        check_file(
            &case.stem.with_extension("losses.jsonl"),
            &losses_text(&losses),
            bless,
            &mut failures,
        );
    }
    if !failures.is_empty() {
        panic!(
            "{} golden file(s) differ (A2O_BLESS=1 cargo test --test golden to accept):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Every output is checked against the target dialect: strict schemas (no key the target API
/// doesn't define) for documents, and the grammar validator plus strict events for streams.
#[test]
fn golden_outputs_are_valid_in_the_target_dialect() {
    let mut failures = Vec::new();
    for case in &cases() {
        let (out, _) = run(case);
        let text = String::from_utf8_lossy(&out).into_owned();
        let target = case.from.other();
        let verdict = if case.kind == "stream" {
            let grammar = match target {
                Dialect::OpenAi => a2o::stream::validate::validate_openai_bytes(&out),
                Dialect::Anthropic => a2o::stream::validate::validate_anthropic_bytes(&out),
            };
            grammar
                .map_err(|v| v.to_string())
                .and_then(|()| strict::stream(target.name(), &text))
        } else if text.starts_with("// error\n") {
            Ok(())
        } else {
            let json = text
                .strip_prefix("// status ")
                .map_or(text.as_str(), |rest| {
                    rest.split_once('\n').map_or("", |(_, j)| j)
                });
            let value: Value = serde_json::from_str(json).expect("output is JSON");
            match (case.kind, target) {
                ("request", Dialect::OpenAi) => strict::openai_request(&value),
                ("request", Dialect::Anthropic) => strict::anthropic_request(&value),
                ("response", Dialect::OpenAi) => strict::openai_response(&value),
                ("response", Dialect::Anthropic) => strict::anthropic_response(&value),
                (_, Dialect::OpenAi) => strict::openai_error(&value),
                (_, Dialect::Anthropic) => strict::anthropic_error(&value),
            }
        };
        if let Err(message) = verdict {
            failures.push(format!("{}: {message}", case.input.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} output(s) invalid:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Feeding a stream byte by byte must give exactly the output of feeding it whole.
#[test]
fn golden_streams_are_split_invariant() {
    for case in cases().iter().filter(|c| c.kind == "stream") {
        let (whole, _) = run(case);
        let input = fs::read(&case.input).expect("input");
        let opts = options(case);
        let mut ctx = pipeline::response_context(case.from.other(), None).expect("context");
        ctx.created = Some(
            opts.get("created")
                .and_then(Value::as_u64)
                .unwrap_or(PINNED_CREATED),
        );
        if let Some(include) = opts.get("include_usage").and_then(Value::as_bool) {
            ctx.include_usage = include;
        }
        if opts.get("request").is_some() {
            continue;
        }
        let mut converter = StreamConverter::new(case.from, ctx);
        let (mut out, mut losses) = (Vec::new(), Losses::new());
        for byte in &input {
            converter.push(std::slice::from_ref(byte), &mut out, &mut losses);
        }
        converter.finish(&mut out, &mut losses);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&whole),
            "{}: byte-by-byte output differs",
            case.input.display()
        );
    }
}
