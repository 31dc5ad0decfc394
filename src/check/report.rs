//! What a run tells people and machines: the live progress (an indicatif line on a terminal,
//! one plain line per case when piped or in CI), the failure details with their diffs, the
//! closing `N passed, N failed` line, and the JUnit XML and JSON reports. Every text written
//! here goes through [`Secrets::scrub`] on its way out.

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use super::case::{Case, Level};
use super::matcher::unified_diff;
use super::runner::{CaseResult, Outcome, Progress};
use super::secrets::Secrets;

/// Counts for the closing line and the exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    /// Failed or errored cases, whatever their level.
    pub failed: usize,
    pub skipped: usize,
    /// Failures that fail the run: `must` cases, and `should` cases under `--strict`.
    pub counted_failures: usize,
    /// Cases that got no response at all.
    pub errored: usize,
}

impl Summary {
    pub fn of(results: &[CaseResult], strict: bool) -> Summary {
        let mut summary = Summary::default();
        for result in results {
            match result.outcome {
                Outcome::Passed => summary.passed += 1,
                Outcome::Skipped => summary.skipped += 1,
                Outcome::Failed | Outcome::Errored => {
                    summary.failed += 1;
                    if result.outcome == Outcome::Errored {
                        summary.errored += 1;
                    }
                    if counts(result.level, strict) {
                        summary.counted_failures += 1;
                    }
                }
            }
        }
        summary
    }

    /// `N passed, N failed`, plus `, N skipped` when some were.
    pub fn line(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            line.push_str(&format!(", {} skipped", self.skipped));
        }
        line
    }

    /// 0 when every counted case passed, 1 when one failed, 2 when no case could be run at
    /// all (every one that was tried got no response: the target is unreachable).
    pub fn exit_code(&self) -> u8 {
        let ran = self.passed + self.failed;
        if ran > 0 && self.errored == ran {
            2
        } else if self.counted_failures > 0 {
            1
        } else {
            0
        }
    }
}

/// Whether a failure at `level` fails the run.
pub fn counts(level: Level, strict: bool) -> bool {
    match level {
        Level::Must => true,
        Level::Should => strict,
        Level::Informational => false,
    }
}

/// The console: progress while cases run, then details and the summary, on stdout.
pub struct Console {
    out: Box<dyn Write>,
    bar: Option<ProgressBar>,
    colour: bool,
    secrets: Secrets,
    passed: usize,
    failed: usize,
    /// Print a line per finished case (off while recording or blessing, where the verdict
    /// against the old expectation means nothing).
    case_lines: bool,
}

impl Console {
    /// `live` draws an indicatif progress line instead of one line per case; `colour` adds
    /// ANSI colours. Both are meant for a terminal.
    pub fn new(
        out: Box<dyn Write>,
        total: usize,
        live: bool,
        colour: bool,
        secrets: Secrets,
    ) -> Self {
        let bar = live.then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Console {
            out,
            bar,
            colour,
            secrets,
            passed: 0,
            failed: 0,
            case_lines: true,
        }
    }

    /// Stops the per-case lines; the progress line stays.
    pub fn without_case_lines(mut self) -> Self {
        self.case_lines = false;
        self
    }

    /// Writes a line (scrubbed), above the progress line if there is one.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        let text = self.secrets.scrub(text);
        match &self.bar {
            Some(bar) => {
                bar.println(text);
                Ok(())
            }
            None => writeln!(self.out, "{text}"),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Ends the progress line, prints every failure in selection order, a note on failures
    /// that do not count, and the summary as the very last line.
    pub fn finish(
        &mut self,
        results: &[CaseResult],
        cases: &[Case],
        strict: bool,
    ) -> io::Result<Summary> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let summary = Summary::of(results, strict);
        let mut details = String::new();
        for result in results {
            if !matches!(result.outcome, Outcome::Failed | Outcome::Errored) {
                continue;
            }
            let case = &cases[result.index];
            details.push('\n');
            details.push_str(&self.describe_failure(case, result));
        }
        if !details.is_empty() {
            let details = self.secrets.scrub(&details);
            self.out.write_all(details.as_bytes())?;
        }
        let uncounted = summary.failed - summary.counted_failures;
        if uncounted > 0 {
            let what = if strict {
                "informational"
            } else {
                "`should` or informational (--strict counts `should`)"
            };
            writeln!(
                self.out,
                "\n{uncounted} of the failures are {what} and do not fail the run"
            )?;
        }
        if !details.is_empty() || uncounted > 0 {
            writeln!(self.out)?;
        }
        writeln!(self.out, "{}", summary.line())?;
        self.out.flush()?;
        Ok(summary)
    }

    fn describe_failure(&self, case: &Case, result: &CaseResult) -> String {
        let label = match result.outcome {
            Outcome::Errored => self.paint("1;31", "ERROR"),
            _ => self.paint("1;31", "FAIL"),
        };
        let mut text = format!("{label} {} [{}]\n", result.id, result.level.name());
        text.push_str(&format!("  requirement: {}\n", case.file.requirement));
        text.push_str(&format!("  case file:   {}\n", case.path.display()));
        if let Some(reason) = &result.reason {
            text.push_str(&format!("  {reason}\n"));
        }
        for problem in &result.problems {
            text.push_str(&format!("  {problem}\n"));
        }
        if let Some((expected, actual)) = &result.diff {
            let expected = self.secrets.scrub(expected);
            let actual = self.secrets.scrub(actual);
            text.push_str(&unified_diff(&expected, &actual, self.colour));
        }
        text
    }
}

impl Progress for Console {
    fn case_done(&mut self, _case: &Case, result: &CaseResult) {
        match result.outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed | Outcome::Errored => self.failed += 1,
            Outcome::Skipped => {}
        }
        if let Some(bar) = &self.bar {
            if self.case_lines {
                bar.set_message(format!("{} passed, {} failed", self.passed, self.failed));
            }
            bar.inc(1);
            if !matches!(result.outcome, Outcome::Failed | Outcome::Errored) {
                return;
            }
        }
        if !self.case_lines {
            return;
        }
        let line = match result.outcome {
            Outcome::Passed => format!("{} {}", self.paint("32", "PASS"), result.id),
            Outcome::Failed => format!("{} {}", self.paint("31", "FAIL"), result.id),
            Outcome::Errored => format!(
                "{} {} ({})",
                self.paint("31", "ERROR"),
                result.id,
                result.reason.as_deref().unwrap_or("no response")
            ),
            Outcome::Skipped => format!(
                "{} {} ({})",
                self.paint("33", "SKIP"),
                result.id,
                result.reason.as_deref().unwrap_or("skipped")
            ),
        };
        // A closed stdout must not stop the run; the exit code still tells.
        let _ = self.line(&line);
    }
}

/// The JSON report: the summary, then every case with its outcome and, for failures, the
/// problems and the plain (uncoloured) diff.
pub fn json_report(
    results: &[CaseResult],
    cases: &[Case],
    summary: &Summary,
    secrets: &Secrets,
) -> String {
    let cases: Vec<Value> = results
        .iter()
        .map(|result| {
            let case = &cases[result.index];
            let diff = result
                .diff
                .as_ref()
                .map(|(e, a)| unified_diff(&secrets.scrub(e), &secrets.scrub(a), false));
            json!({
                "id": result.id,
                "description": case.file.description,
                "requirement": case.file.requirement,
                "level": result.level.name(),
                "tags": case.file.tags,
                "file": case.path.display().to_string(),
                "outcome": result.outcome.name(),
                "reason": result.reason,
                "problems": result.problems,
                "diff": diff,
                "duration_ms": (result.duration.as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
            })
        })
        .collect();
    let mut report = json!({
        "tool": "a2o check",
        "version": env!("CARGO_PKG_VERSION"),
        "summary": {
            "passed": summary.passed,
            "failed": summary.failed,
            "skipped": summary.skipped,
            "total": results.len(),
            "line": summary.line(),
        },
        "exit_code": summary.exit_code(),
        "cases": cases,
    });
    secrets.scrub_value(&mut report);
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    secrets.scrub(&text)
}

/// The JUnit XML report: one `<testsuite>` per id prefix (the first two segments, e.g.
/// `openai-front/anthropic-upstream`), one `<testcase>` per case, `<failure>` with the
/// problems and diff, `<error>` when no response came, `<skipped>` with its reason.
pub fn junit_report(results: &[CaseResult], cases: &[Case], secrets: &Secrets) -> String {
    let mut suites: Vec<(String, Vec<&CaseResult>)> = Vec::new();
    for result in results {
        let suite = suite_name(&result.id);
        match suites.iter_mut().find(|(name, _)| *name == suite) {
            Some((_, members)) => members.push(result),
            None => suites.push((suite, vec![result])),
        }
    }
    let summary = Summary::of(results, false);
    let total_time: f64 = results.iter().map(|r| r.duration.as_secs_f64()).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"a2o check\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
        results.len(),
        summary.failed - summary.errored,
        summary.errored,
        summary.skipped,
        total_time
    ));
    for (suite, members) in &suites {
        let s = Summary::of(
            &members.iter().map(|r| (*r).clone()).collect::<Vec<_>>(),
            false,
        );
        let time: f64 = members.iter().map(|r| r.duration.as_secs_f64()).sum();
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
            xml_escape(suite),
            members.len(),
            s.failed - s.errored,
            s.errored,
            s.skipped,
            time
        ));
        for result in members {
            let case = &cases[result.index];
            xml.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                xml_escape(&result.id),
                xml_escape(suite),
                result.duration.as_secs_f64()
            ));
            let requirement = format!("[{}] {}", result.level.name(), case.file.requirement);
            match result.outcome {
                Outcome::Passed => xml.push_str(" />\n"),
                Outcome::Skipped => xml.push_str(&format!(
                    ">\n      <skipped message=\"{}\" />\n    </testcase>\n",
                    xml_escape(result.reason.as_deref().unwrap_or("skipped"))
                )),
                Outcome::Errored => xml.push_str(&format!(
                    ">\n      <error message=\"{}\" type=\"{}\">{}</error>\n    </testcase>\n",
                    xml_escape(result.reason.as_deref().unwrap_or("no response")),
                    result.level.name(),
                    xml_escape(&requirement)
                )),
                Outcome::Failed => {
                    let mut body = format!("{requirement}\n");
                    for problem in &result.problems {
                        body.push_str(problem);
                        body.push('\n');
                    }
                    if let Some((e, a)) = &result.diff {
                        body.push_str(&unified_diff(&secrets.scrub(e), &secrets.scrub(a), false));
                    }
                    let message = result
                        .problems
                        .first()
                        .map(String::as_str)
                        .unwrap_or("failed");
                    xml.push_str(&format!(
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        xml_escape(message),
                        result.level.name(),
                        xml_escape(&body)
                    ));
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    secrets.scrub(&xml)
}

fn suite_name(id: &str) -> String {
    let segments: Vec<&str> = id.split('/').collect();
    if segments.len() > 2 {
        segments[..2].join("/")
    } else if segments.len() == 2 {
        segments[0].to_owned()
    } else {
        "cases".to_owned()
    }
}

/// Escapes text for XML content or attributes. Characters XML 1.0 cannot hold at all (most
/// control characters) become U+FFFD, so a hostile response cannot break the report.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: Outcome, level: Level) -> CaseResult {
        CaseResult {
            index: 0,
            id: "a/b/c".into(),
            level,
            outcome,
            reason: None,
            problems: vec![],
            diff: None,
            duration: Duration::ZERO,
            exchange: None,
        }
    }

    #[test]
    fn summary_line_and_exit_codes() {
        let all_pass = [result(Outcome::Passed, Level::Must)];
        assert_eq!(Summary::of(&all_pass, false).line(), "1 passed, 0 failed");
        assert_eq!(Summary::of(&all_pass, false).exit_code(), 0);

        let should_fails = [
            result(Outcome::Passed, Level::Must),
            result(Outcome::Failed, Level::Should),
            result(Outcome::Skipped, Level::Must),
        ];
        let s = Summary::of(&should_fails, false);
        assert_eq!(s.line(), "1 passed, 1 failed, 1 skipped");
        assert_eq!(s.exit_code(), 0);
        assert_eq!(Summary::of(&should_fails, true).exit_code(), 1);

        let informational = [result(Outcome::Failed, Level::Informational)];
        assert_eq!(Summary::of(&informational, true).exit_code(), 0);

        let unreachable = [
            result(Outcome::Errored, Level::Must),
            result(Outcome::Errored, Level::Should),
        ];
        assert_eq!(Summary::of(&unreachable, false).exit_code(), 2);
        let partly = [
            result(Outcome::Errored, Level::Must),
            result(Outcome::Passed, Level::Must),
        ];
        assert_eq!(Summary::of(&partly, false).exit_code(), 1);
    }

    #[test]
    fn xml_escaping_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("<a href=\"x\">&'\u{1b}[31m\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;\u{FFFD}[31m\n"
        );
    }

    #[test]
    fn suites_group_by_front_and_upstream() {
        assert_eq!(
            suite_name("openai-front/anthropic-upstream/text/basic"),
            "openai-front/anthropic-upstream"
        );
        assert_eq!(suite_name("a/b"), "a");
        assert_eq!(suite_name("a"), "cases");
    }
}
