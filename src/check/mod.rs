//! `a2o check`: the conformance harness. It owns the case format (`case`), sending cases and
//! judging responses (`runner`), comparing documents (`matcher`), the dialects' grammar for
//! whole bodies (`grammar`, streams delegate to `crate::stream::validate`), what a run prints
//! and reports (`report`), recording and blessing expectations (`record`), and keeping
//! secrets out of all of it (`secrets`).
//!
//! Exit codes follow ripgrep's: 0 nothing wrong, 1 a difference found, 2 the check itself
//! could not run. Everything that makes the run impossible (an unreadable case, no target, an
//! unset key variable) is found before the first request is sent.

mod args;
pub mod case;
pub mod grammar;
pub mod matcher;
mod record;
pub mod report;
pub mod runner;
pub mod secrets;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};

pub use args::{CheckArgs, MatchArg};
use case::{Case, MatchMode, Selection};
use report::Console;
use runner::{CaseResult, Judging, Outcome, Targets};
use secrets::Secrets;

/// Runs `a2o check` as parsed from the command line.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.validate {
        let Some(dialect) = args.dialect else {
            bail!("--validate needs --dialect openai or --dialect anthropic");
        };
        return validate_file(file, dialect.into());
    }
    let reports = parse_reports(&args.report)?;
    let cases = case::load_all(&args.paths)?;
    let selection = Selection {
        ids: args.ids.clone(),
        tags: args.tags.clone(),
    };
    let cases: Vec<Case> = cases
        .into_iter()
        .filter(|c| selection.selects(&c.file))
        .collect();
    let stdout = std::io::stdout();
    if args.list {
        list(&cases, &mut stdout.lock())?;
        return Ok(ExitCode::SUCCESS);
    }
    if cases.is_empty() {
        bail!(
            "no case matches the selection ({})",
            describe_selection(&args)
        );
    }
    let targets = targets(&args)?;
    let secrets = resolve_secrets(&cases, &targets, &args.api_key_env)?;

    let terminal = stdout.is_terminal();
    let live = terminal && !in_ci();
    let colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut console = Console::new(Box::new(stdout), cases.len(), live, colour, secrets.clone());
    if args.record.is_some() || args.bless {
        console = console.without_case_lines();
    }
    let judging = Judging {
        match_override: args.match_mode.map(|m| match m {
            MatchArg::Exact => MatchMode::Exact,
            MatchArg::Shape => MatchMode::Shape,
        }),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let results = runtime
        .block_on(runner::run_cases(
            &cases,
            &targets,
            &secrets,
            &judging,
            usize::from(args.jobs),
            Duration::from_secs_f64(args.timeout),
            &mut console,
        ))
        .map_err(anyhow::Error::msg)?;

    if let Some(dir) = &args.record {
        return finish_writing(
            &mut console,
            &cases,
            &results,
            &secrets,
            Writing::Record(dir),
        );
    }
    if args.bless {
        return finish_writing(&mut console, &cases, &results, &secrets, Writing::Bless);
    }
    let summary = console.finish(&results, &cases, args.strict)?;
    for (format, path) in &reports {
        let text = match format {
            ReportFormat::Junit => report::junit_report(&results, &cases, &secrets),
            ReportFormat::Json => report::json_report(&results, &cases, &summary, &secrets),
        };
        write_file(path, text.as_bytes())
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    Ok(ExitCode::from(summary.exit_code()))
}

/// `--list`: one line per selected case, then the count.
fn list(cases: &[Case], out: &mut dyn Write) -> std::io::Result<()> {
    for case in cases {
        writeln!(
            out,
            "{}  [{}; {}; {}]",
            case.id(),
            case.file.level.name(),
            case.file.match_mode.name(),
            case.file.tags.join(", ")
        )?;
    }
    writeln!(out, "{} cases", cases.len())
}

fn describe_selection(args: &CheckArgs) -> String {
    let mut text = format!(
        "paths {}",
        args.paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for id in &args.ids {
        text.push_str(&format!(", --id {id}"));
    }
    for tag in &args.tags {
        text.push_str(&format!(", --tag {tag}"));
    }
    text
}

fn targets(args: &CheckArgs) -> anyhow::Result<Targets> {
    let targets = Targets {
        any: args.target.clone(),
        openai: args.target_openai.clone(),
        anthropic: args.target_anthropic.clone(),
    };
    if targets.is_empty() {
        bail!("give the endpoint to check: --target URL (or --target-openai / --target-anthropic)");
    }
    for url in [&targets.any, &targets.openai, &targets.anthropic]
        .into_iter()
        .flatten()
    {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("a target must be an http:// or https:// URL, not `{url}`");
        }
    }
    Ok(targets)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReportFormat {
    Junit,
    Json,
}

fn parse_reports(values: &[String]) -> anyhow::Result<Vec<(ReportFormat, PathBuf)>> {
    values
        .chunks(2)
        .map(|pair| match pair {
            [format, path] => {
                let format = match format.as_str() {
                    "junit" => ReportFormat::Junit,
                    "json" => ReportFormat::Json,
                    other => bail!("--report {other}: the format is `junit` or `json`"),
                };
                Ok((format, PathBuf::from(path)))
            }
            _ => bail!("--report takes a format and a file: --report junit check.xml"),
        })
        .collect()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Fills the placeholders of the cases that will actually be sent.
fn resolve_secrets(cases: &[Case], targets: &Targets, key_env: &str) -> anyhow::Result<Secrets> {
    let mut names = Vec::new();
    for case in cases {
        if case.file.skip.is_some() || targets.for_front(case.front).is_none() {
            continue;
        }
        let request = &case.file.request;
        names.extend(secrets::placeholder_names(&request.path));
        for value in request.headers.values() {
            names.extend(secrets::placeholder_names(value));
        }
        if let Some(body) = &request.body {
            collect_body_placeholders(body, &mut names);
        }
    }
    let names: Vec<String> = names.into_iter().map(str::to_owned).collect();
    Secrets::resolve(names.iter().map(String::as_str), key_env, |name| {
        std::env::var(name).ok()
    })
    .map_err(anyhow::Error::msg)
}

fn collect_body_placeholders<'a>(value: &'a serde_json::Value, names: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::String(text) => names.extend(secrets::placeholder_names(text)),
        serde_json::Value::Array(items) => items
            .iter()
            .for_each(|v| collect_body_placeholders(v, names)),
        serde_json::Value::Object(map) => map
            .values()
            .for_each(|v| collect_body_placeholders(v, names)),
        _ => {}
    }
}

enum Writing<'a> {
    Record(&'a Path),
    Bless,
}

/// After a `--record` or `--bless` run: writes the files and says what happened to each case.
/// Exit 1 if a response broke its grammar or a case got no response (the files are written
/// anyway, for review), 2 if no case got a response.
fn finish_writing(
    console: &mut Console,
    cases: &[Case],
    results: &[CaseResult],
    secrets: &Secrets,
    writing: Writing<'_>,
) -> anyhow::Result<ExitCode> {
    let mut written = 0;
    let mut trouble = 0;
    let mut answered = 0;
    let mut lines = Vec::new();
    for result in results {
        let case = &cases[result.index];
        let Some(exchange) = &result.exchange else {
            if result.outcome == Outcome::Errored {
                trouble += 1;
                lines.push(format!(
                    "ERROR {}: {}",
                    result.id,
                    result.reason.as_deref().unwrap_or("no response")
                ));
            }
            continue;
        };
        answered += 1;
        let outcome = match writing {
            Writing::Record(dir) => record::record(dir, case, exchange, secrets)
                .map(|path| format!("recorded {} -> {}", result.id, path.display())),
            Writing::Bless => {
                let before = read_expectation_files(case);
                record::bless(case, exchange, secrets).map(|paths| {
                    let after: Vec<Option<Vec<u8>>> =
                        paths.iter().map(|p| std::fs::read(p).ok()).collect();
                    let changed = before.len() != after.len()
                        || before.iter().zip(&after).any(|(b, a)| b != a);
                    format!(
                        "{} {}",
                        if changed { "updated" } else { "unchanged" },
                        result.id
                    )
                })
            }
        }
        .map_err(anyhow::Error::msg)?;
        written += 1;
        lines.push(outcome);
        let violation = result.problems.iter().find(|p| p.starts_with("grammar"));
        if let Some(violation) = violation {
            trouble += 1;
            lines.push(format!("  WARNING {}: {violation}", result.id));
        }
    }
    for line in &lines {
        console.line(line)?;
    }
    let verb = match writing {
        Writing::Record(dir) => format!("recorded {written} cases into {}", dir.display()),
        Writing::Bless => format!("blessed {written} cases"),
    };
    console.line(&verb)?;
    Ok(ExitCode::from(if answered == 0 {
        2
    } else if trouble > 0 {
        1
    } else {
        0
    }))
}

fn read_expectation_files(case: &Case) -> Vec<Option<Vec<u8>>> {
    let mut paths = vec![case.path.clone()];
    if let Some(name) = &case.file.expect.events_file {
        if let Some(dir) = case.path.parent() {
            paths.push(dir.join(name));
        }
    } else if case.file.expect.events.is_none() && case.file.expect.body.is_none() {
        paths.push(case.path.with_extension("sse"));
    }
    paths.iter().map(|p| std::fs::read(p).ok()).collect()
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
}

/// `--validate FILE --dialect D`: prints `FILE: valid: …` (exit 0) or `FILE: invalid: …`
/// (exit 1).
fn validate_file(path: &Path, dialect: crate::protocol::Dialect) -> anyhow::Result<ExitCode> {
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
        ("stdin".to_owned(), bytes)
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        (path.display().to_string(), bytes)
    };
    let sse = path.extension().is_some_and(|e| e == "sse")
        || !matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        );
    let mut out = std::io::stdout().lock();
    match grammar::validate_transcript(dialect, &bytes, sse) {
        Ok(what) => {
            writeln!(out, "{name}: valid ({what})")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(violation) => {
            writeln!(out, "{name}: invalid: {violation}")?;
            Ok(ExitCode::from(1))
        }
    }
}
