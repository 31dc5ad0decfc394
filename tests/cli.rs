//! The `a2o convert` command line: exit codes, losses on stderr, `--strict`, malformed input,
//! help text, and live (incremental) stream output.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;
use predicates::prelude::*;

fn a2o() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("a2o").expect("binary builds")
}

const LOSSLESS_OPENAI_REQUEST: &str =
    r#"{"model":"gpt-4o","max_completion_tokens":100,"messages":[{"role":"user","content":"Hi"}]}"#;

#[test]
fn lossless_request_prints_nothing_on_stderr() {
    a2o()
        .args(["convert", "request", "--from", "openai"])
        .write_stdin(LOSSLESS_OPENAI_REQUEST)
        .assert()
        .success()
        .stderr("")
        .stdout(predicate::str::contains(r#""max_tokens":100"#))
        .stdout(predicate::str::ends_with("}\n"));
}

#[test]
fn losses_are_json_lines_on_stderr_and_strict_fails() {
    let lossy = r#"{"model":"gpt-4o","seed":7,"messages":[{"role":"user","content":"Hi"}]}"#;
    let output = a2o()
        .args(["convert", "request", "--from", "openai"])
        .write_stdin(lossy)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stderr line is JSON"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "/seed" && l["kind"] == "dropped"),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "/max_tokens" && l["kind"] == "synthesized"),
        "{stderr}"
    );

    a2o()
        .args(["convert", "request", "--from", "openai", "--strict"])
        .write_stdin(lossy)
        .assert()
        .code(2);
    a2o()
        .args(["convert", "request", "--from", "openai", "--strict"])
        .write_stdin(LOSSLESS_OPENAI_REQUEST)
        .assert()
        .success();
}

#[test]
fn malformed_input_names_the_json_path() {
    let bad = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"base64","media_type":"image/png"}}]}]}"#;
    a2o()
        .args(["convert", "request", "--from", "anthropic"])
        .write_stdin(bad)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("messages[0].content[1]"))
        .stderr(predicate::str::contains("data"))
        .stderr(predicate::str::contains("panicked").not());
    a2o()
        .args(["convert", "response", "--from", "openai"])
        .write_stdin("{not json")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("a2o: invalid openai response"));
    a2o()
        .args(["convert", "request", "--from", "openai"])
        .write_stdin(r#"{"model":"m","messages":"hi"}"#)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("messages"));
}

#[test]
fn pretty_and_file_options() {
    let dir = std::env::temp_dir().join(format!("a2o-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.json");
    let output = dir.join("out.json");
    std::fs::write(&input, LOSSLESS_OPENAI_REQUEST).unwrap();
    a2o()
        .args([
            "convert", "request", "--from", "openai", "--pretty", "--input",
        ])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .assert()
        .success()
        .stdout("");
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(written.contains("\n  \"model\": \"gpt-4o\""), "{written}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn error_conversion_maps_status_when_given() {
    let overloaded =
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let output = a2o()
        .args(["convert", "error", "--from", "anthropic", "--status", "529"])
        .write_stdin(overloaded)
        .output()
        .unwrap();
    assert!(output.status.success());
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["error"]["message"], "Overloaded");
    assert!(String::from_utf8_lossy(&output.stderr).contains(r#"{"status":503}"#));
}

#[test]
fn help_teaches_with_examples() {
    a2o()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    a2o()
        .args(["convert", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "a2o convert request --from openai",
        ))
        .stdout(predicate::str::contains("Exit codes"));
}

#[test]
fn unknown_arguments_exit_2() {
    a2o()
        .args(["convert", "request", "--from", "cohere"])
        .assert()
        .code(2);
}

/// The first converted event must come out while the input is still open: a child process
/// gets one event, and we read its converted form before sending anything else.
#[test]
fn stream_output_is_incremental() {
    let mut child = Command::cargo_bin("a2o")
        .unwrap()
        .args(["convert", "stream", "--from", "anthropic"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        tx.send(first).unwrap();
        let mut rest = String::new();
        lines.read_to_string(&mut rest).unwrap();
        rest
    });
    stdin
        .write_all(
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        )
        .unwrap();
    stdin.flush().unwrap();
    // Generous bound: this only fails if output waits for the end of input, which never
    // comes while stdin is open.
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("first converted event arrives before input ends");
    assert!(first.starts_with("data: {"), "{first}");
    assert!(first.contains(r#""role":"assistant""#), "{first}");
    stdin
        .write_all(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
        .unwrap();
    drop(stdin);
    let rest = reader.join().unwrap();
    assert!(rest.trim_end().ends_with("data: [DONE]"), "{rest}");
    assert!(child.wait().unwrap().success());
}
