//! `a2o check` end to end: the conformance suites against `a2o serve` and the mock upstream
//! (both started in-process on loopback), the case files against their schema, exact and
//! shape matching with the diff text, normalisation, redaction, selection, exit codes,
//! reports read back, recording, `--validate`, and secrets that never leak.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use a2o::protocol::Dialect;
use a2o::server::log::{LogFormat, Logger};
use a2o::server::ServeConfig;
use serde_json::{json, Value};

const KEY: &str = "sk-conformance-test-key";
const SECRET: &str = "sk-check-SECRET-123";

/// The base URLs of one `a2o serve`.
struct Fronts {
    anthropic: String,
    openai: String,
}

/// The mock upstream and one `a2o serve` per upstream dialect, shared by all tests.
struct Servers {
    mock: String,
    anthropic_upstream: Fronts,
    openai_upstream: Fronts,
}

impl Servers {
    fn fronts(&self, upstream: &str) -> &Fronts {
        match upstream {
            "anthropic" => &self.anthropic_upstream,
            _ => &self.openai_upstream,
        }
    }
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let (addr, mock) = a2o::mock::bind(&a2o::mock::MockOptions {
                    host: "127.0.0.1".into(),
                    port: 0,
                })
                .await
                .expect("bind the mock");
                tokio::spawn(mock.serve(std::future::pending()));
                let mock = format!("http://{addr}");
                let mut fronts = Vec::new();
                for protocol in [Dialect::Anthropic, Dialect::OpenAi] {
                    let config = ServeConfig {
                        host: "127.0.0.1".into(),
                        anthropic_port: 0,
                        openai_port: 0,
                        upstream: mock.clone(),
                        upstream_protocol: protocol,
                        ..ServeConfig::default()
                    };
                    let logger = Logger {
                        format: LogFormat::Json,
                        sink: Arc::new(|_: &str| {}),
                    };
                    let bound = a2o::server::bind(config, logger).await.expect("bind serve");
                    fronts.push(Fronts {
                        anthropic: format!("http://{}", bound.anthropic_addr),
                        openai: format!("http://{}", bound.openai_addr),
                    });
                    tokio::spawn(bound.run(std::future::pending()));
                }
                let openai_upstream = fronts.pop().expect("openai");
                let anthropic_upstream = fronts.pop().expect("anthropic");
                tx.send(Servers {
                    mock,
                    anthropic_upstream,
                    openai_upstream,
                })
                .expect("send addresses");
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("servers started")
    })
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn conformance() -> PathBuf {
    repo().join("conformance")
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("check-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `a2o check` with a clean environment: the test key, and plain (CI) output.
fn check() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("a2o").expect("binary");
    cmd.current_dir(repo())
        .arg("check")
        .env_remove("A2O_CHECK_API_KEY")
        .env_remove("NO_COLOR")
        .env("A2O_CHECK_API_KEY", KEY)
        .env("CI", "true");
    cmd
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut assert_cmd::Command) -> Run {
    let output = cmd.output().expect("a2o runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or("")
}

/// The case files under `dir`, with their ids.
fn case_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json")
                && !path.to_string_lossy().ends_with(".schema.json")
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

fn write_json(path: &Path, value: &Value) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::fs::write(path, serde_json::to_string_pretty(value).expect("json")).expect("write");
}

/// A minimal case for the OpenAI front.
fn text_case(id: &str, expect: Value, match_mode: &str) -> Value {
    json!({
        "id": id,
        "description": "A one-turn text request.",
        "requirement": "A plain request gets the mock's text back.",
        "level": "must",
        "tags": ["text"],
        "request": {
            "method": "POST",
            "path": "/v1/chat/completions",
            "headers": {"authorization": "Bearer ${A2O_CHECK_API_KEY}"},
            "body": {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Hi"}]}
        },
        "expect": expect,
        "match": match_mode
    })
}

fn completion(text: &str, finish: &str) -> Value {
    json!({
        "id": "msg_anything", "object": "chat.completion", "created": 1, "model": "claude-haiku-4-5",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null},
                     "finish_reason": finish, "logprobs": null}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,
                  "prompt_tokens_details": {"cached_tokens": 0}}
    })
}

// ---------------------------------------------------------------------------------------------
// The suites

#[test]
fn conformance_suites_pass_on_all_four_routes() {
    let servers = servers();
    for upstream in ["anthropic", "openai"] {
        let fronts = servers.fronts(upstream);
        let dirs = [
            format!("conformance/openai-front/{upstream}-upstream"),
            format!("conformance/anthropic-front/{upstream}-upstream"),
        ];
        let expected_cases: usize = dirs.iter().map(|d| case_files(&repo().join(d)).len()).sum();
        assert!(
            expected_cases > 50,
            "{upstream}: only {expected_cases} cases"
        );
        let out = run(check()
            .args(&dirs)
            .args(["--target-openai", &fronts.openai])
            .args(["--target-anthropic", &fronts.anthropic])
            .args(["--jobs", "8"]));
        assert_eq!(
            out.code, 0,
            "{upstream} upstream:\n{}{}",
            out.stdout, out.stderr
        );
        assert_eq!(
            last_line(&out.stdout),
            format!("{expected_cases} passed, 0 failed")
        );
    }
}

#[test]
fn every_route_covers_every_topic() {
    let topics = [
        "text/basic",
        "stream/text",
        "system/prompt",
        "multi-turn/conversation",
        "vision/base64-image",
        "tools/single",
        "stream/tools/single",
        "tools/parallel",
        "stream/tools/parallel",
        "tools/result-round-trip",
        "thinking/basic",
        "stream/thinking",
        "thinking/signature-replay",
        "stop-sequence/basic",
        "stream/stop-sequence",
        "max-tokens/basic",
        "stream/max-tokens",
        "usage/cache",
        "stream/usage-cache",
        "errors/400-invalid-request",
        "errors/401-missing-key",
        "errors/429-rate-limited",
        "errors/429-failover",
        "errors/529-overloaded",
        "stream/errors/midstream-error",
        "models/list",
    ];
    for front in ["openai", "anthropic"] {
        for upstream in ["anthropic", "openai"] {
            let dir = conformance().join(format!("{front}-front/{upstream}-upstream"));
            for topic in topics {
                let file = dir.join(format!("{topic}.json"));
                assert!(file.exists(), "missing {}", file.display());
            }
            let count_tokens = if front == "openai" {
                "count-tokens/other-front"
            } else {
                "count-tokens/basic"
            };
            assert!(dir.join(format!("{count_tokens}.json")).exists());
            if front == "openai" {
                assert!(dir.join("stream/include-usage.json").exists());
            }
        }
    }
}

#[test]
fn every_case_file_follows_the_schema_and_is_named_by_its_id() {
    let schema = read_json(&conformance().join("case.schema.json"));
    let validator = jsonschema::validator_for(&schema).expect("the schema is valid");
    let files = case_files(&conformance());
    assert!(files.len() > 100, "only {} case files", files.len());
    let mut ids = std::collections::BTreeSet::new();
    for file in &files {
        let case = read_json(file);
        let errors: Vec<String> = validator
            .iter_errors(&case)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        let relative = file
            .strip_prefix(conformance())
            .expect("under conformance/")
            .with_extension("");
        assert_eq!(
            case["id"].as_str(),
            Some(relative.to_string_lossy().as_ref()),
            "{}: the id must be the path",
            file.display()
        );
        assert!(ids.insert(case["id"].to_string()));
        // The runner reads it too (events files included).
        a2o::check::case::load(file).unwrap_or_else(|e| panic!("{e}"));
        // Every case runs in exact mode against the mock, and every secret is a placeholder.
        assert_eq!(case["match"], "exact", "{}", file.display());
        let text = std::fs::read_to_string(file).expect("read");
        assert!(!text.contains(KEY) && !text.contains("sk-ant-"));
    }
    // The schema rejects what the runner rejects.
    let mut typo = read_json(&files[0]);
    typo["expct"] = json!({});
    assert!(!validator.is_valid(&typo));
    let mut both = read_json(&files[0]);
    both["expect"]["events"] = json!([]);
    both["expect"]["body"] = json!({});
    assert!(!validator.is_valid(&both));
}

#[test]
fn live_cases_pass_in_shape_mode_with_the_ci_recipes_commands() {
    let servers = servers();
    // Step 1 of the recipe: the relay itself, here the mock in AnyRouter's place.
    let out = run(check()
        .arg("conformance/anthropic-front/anthropic-upstream")
        .args(["--tag", "live", "--match", "shape"])
        .args(["--target", &servers.mock])
        .args(["--api-key-env", "ANYROUTER_API_KEY"])
        .env("ANYROUTER_API_KEY", SECRET));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(last_line(&out.stdout).ends_with("passed, 0 failed"));
    assert!(!out.stdout.contains(SECRET));
    // Step 2: a2o serve in front of the relay, both fronts.
    let fronts = servers.fronts("anthropic");
    let out = run(check()
        .args([
            "conformance/openai-front/anthropic-upstream",
            "conformance/anthropic-front/anthropic-upstream",
        ])
        .args(["--tag", "live", "--match", "shape"])
        .args(["--target-openai", &fronts.openai])
        .args(["--target-anthropic", &fronts.anthropic])
        .args(["--api-key-env", "ANYROUTER_API_KEY"])
        .env("ANYROUTER_API_KEY", SECRET));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let live = out.stdout.lines().filter(|l| l.starts_with("PASS")).count();
    assert!(live >= 30, "only {live} live cases");
}

// ---------------------------------------------------------------------------------------------
// The harness can fail

#[test]
fn mutated_expectations_fail_every_case() {
    let servers = servers();
    let fronts = servers.fronts("anthropic");
    let dir = scratch("mutated");
    let source = conformance().join("openai-front/anthropic-upstream");
    let files = case_files(&source);
    for file in &files {
        let relative = file.strip_prefix(&source).expect("relative");
        let mut case = read_json(file);
        let target = dir.join(relative);
        // Every document expectation gets one wrong detail; so does every status.
        if case["expect"].get("body").is_some() {
            case["expect"]["body"] = json!({"mutated": case["expect"]["body"].clone()});
        } else if let Some(name) = case["expect"]["events_file"].as_str() {
            let sse = std::fs::read_to_string(file.with_file_name(name)).expect("sse");
            let mut events: Vec<&str> = sse.split("\n\n").filter(|e| !e.is_empty()).collect();
            events.pop();
            let sse_target = target.with_file_name(name);
            std::fs::create_dir_all(sse_target.parent().expect("dir")).expect("mkdir");
            std::fs::write(&sse_target, format!("{}\n\n", events.join("\n\n"))).expect("write");
        } else {
            let status = case["expect"]["status"].as_u64().expect("status");
            case["expect"]["status"] = json!(status + 1);
        }
        write_json(&target, &case);
    }
    let out = run(check()
        .arg(&dir)
        .args(["--target-openai", &fronts.openai])
        .args(["--target-anthropic", &fronts.anthropic]));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        last_line(&out.stdout),
        format!("0 passed, {} failed", files.len())
    );
}

#[test]
fn a_wrong_endpoint_fails_with_readable_diffs() {
    // The OpenAI-front cases written for an Anthropic upstream, sent to a2o in front of an
    // OpenAI upstream: same API, different answers.
    let servers = servers();
    let out = run(check()
        .arg("conformance/openai-front/anthropic-upstream/text/basic.json")
        .args(["--target", &servers.fronts("openai").openai]));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(
        "FAIL openai-front/anthropic-upstream/text/basic [must]\n  requirement: A plain chat completion request"
    ), "{}", out.stdout);
    assert!(out
        .stdout
        .contains("  the body differs (exact match)\n--- expected\n+++ actual\n"));
    assert!(
        out.stdout
            .contains("-  \"id\": \"msg_<id:1>\",\n+  \"id\": \"chatcmpl-<id:1>\","),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("+  \"system_fingerprint\": \"<system_fingerprint>\"\n"),
        "{}",
        out.stdout
    );
    assert_eq!(last_line(&out.stdout), "0 passed, 1 failed");
}

// ---------------------------------------------------------------------------------------------
// Matching

#[test]
fn exact_matching_passes_after_normalisation_and_fails_with_the_diff() {
    let servers = servers();
    let dir = scratch("exact");
    // Other ids and timestamps than the ones that come back: normalised away.
    let ok = text_case(
        "t/exact/ok",
        json!({"status": 200, "body": completion("Hello from the mock upstream.", "stop")}),
        "exact",
    );
    write_json(&dir.join("ok.json"), &ok);
    let mut wrong = text_case(
        "t/exact/wrong",
        json!({"status": 200, "body": completion("Hello from the mock upstream!", "stop")}),
        "exact",
    );
    wrong["requirement"] = json!("The text is exactly the mock's.");
    write_json(&dir.join("wrong.json"), &wrong);
    let out = run(check()
        .arg(&dir)
        .args(["--target", &servers.fronts("anthropic").openai]));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("PASS t/exact/ok\n"), "{}", out.stdout);
    assert!(out.stdout.contains("FAIL t/exact/wrong\n"));
    let details = out
        .stdout
        .split("\nFAIL t/exact/wrong [must]\n")
        .nth(1)
        .expect("details");
    let expected_details = [
        "  requirement: The text is exactly the mock's.\n".to_owned(),
        format!("  case file:   {}\n", dir.join("wrong.json").display()),
        "  the body differs (exact match)\n".to_owned(),
        "--- expected\n".to_owned(),
        "+++ actual\n".to_owned(),
        "@@ -8,7 +8,7 @@\n".to_owned(),
        "       \"index\": 0,\n".to_owned(),
        "       \"message\": {\n".to_owned(),
        "         \"role\": \"assistant\",\n".to_owned(),
        "-        \"content\": \"Hello from the mock upstream!\",\n".to_owned(),
        "+        \"content\": \"Hello from the mock upstream.\",\n".to_owned(),
        "         \"refusal\": null\n".to_owned(),
        "       },\n".to_owned(),
        "       \"finish_reason\": \"stop\",\n".to_owned(),
        "\n".to_owned(),
        "1 passed, 1 failed\n".to_owned(),
    ]
    .concat();
    assert_eq!(details, expected_details);
}

#[test]
fn shape_matching_ignores_text_but_not_structure() {
    let servers = servers();
    let dir = scratch("shape");
    write_json(
        &dir.join("text.json"),
        &text_case(
            "t/shape/other-text",
            json!({"status": 200, "body": completion("Completely different words", "stop")}),
            "shape",
        ),
    );
    write_json(
        &dir.join("finish.json"),
        &text_case(
            "t/shape/other-finish",
            json!({"status": 200, "body": completion("Hello", "length")}),
            "shape",
        ),
    );
    let mut missing = completion("Hello", "stop");
    missing["choices"][0]["message"]["audio"] = json!({"id": "x"});
    write_json(
        &dir.join("missing.json"),
        &text_case(
            "t/shape/missing-key",
            json!({"status": 200, "body": missing}),
            "shape",
        ),
    );
    let out = run(check()
        .arg(&dir)
        .args(["--target", &servers.fronts("anthropic").openai]));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("PASS t/shape/other-text\n"),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .contains("  the body differs (shape match)\n--- expected\n+++ actual\n"));
    assert!(
        out.stdout
            .contains("-      \"finish_reason\": \"length\",\n+      \"finish_reason\": \"stop\","),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("-        \"audio\": {\n-          \"id\": \"<string>\"\n-        }"),
        "{}",
        out.stdout
    );
    assert_eq!(last_line(&out.stdout), "1 passed, 2 failed");

    // `--match shape` turns an exact case into a shape one.
    let dir = scratch("shape-override");
    write_json(
        &dir.join("exact.json"),
        &text_case(
            "t/override",
            json!({"status": 200, "body": completion("Other text", "stop")}),
            "exact",
        ),
    );
    let target = &servers.fronts("anthropic").openai;
    assert_eq!(run(check().arg(&dir).args(["--target", target])).code, 1);
    let out = run(check()
        .arg(&dir)
        .args(["--target", target, "--match", "shape"]));
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn redaction_excludes_values_from_the_comparison() {
    let servers = servers();
    let dir = scratch("redact");
    let mut case = text_case(
        "t/redact",
        json!({"status": 200, "body": completion("Not what comes back", "stop")}),
        "exact",
    );
    case["redact"] = json!(["/choices/*/message/content", "/not/there"]);
    write_json(&dir.join("redact.json"), &case);
    let target = &servers.fronts("anthropic").openai;
    let out = run(check().arg(&dir).args(["--target", target]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    case["redact"] = json!(["/choices/0/message/refusal"]);
    write_json(&dir.join("redact.json"), &case);
    let out = run(check().arg(&dir).args(["--target", target]));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("\"refusal\": \"<redacted>\""),
        "{}",
        out.stdout
    );
}

#[test]
fn alternatives_are_other_passing_outcomes() {
    let servers = servers();
    let dir = scratch("alternatives");
    let mut case = text_case("t/alt", json!({"status": 503}), "exact");
    case["alternatives"] = json!([{"status": 429}, {"status": 200, "body": completion("Hello from the mock upstream.", "stop")}]);
    write_json(&dir.join("alt.json"), &case);
    let target = &servers.fronts("anthropic").openai;
    let out = run(check().arg(&dir).args(["--target", target]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    case["alternatives"] = json!([{"status": 429}]);
    write_json(&dir.join("alt.json"), &case);
    let out = run(check().arg(&dir).args(["--target", target]));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "  status: expected 503, got 200\n  none of the 1 alternatives matched either\n"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn grammar_violations_fail_a_case_whatever_it_expects() {
    // The mock's `bad_json` answer, asked for directly: a truncated body with status 200.
    let servers = servers();
    let dir = scratch("grammar");
    let case = json!({
        "id": "t/grammar", "description": "d", "requirement": "A 200 body is a whole message.",
        "level": "must",
        "request": {"method": "POST", "path": "/v1/messages",
                    "headers": {"x-api-key": "${A2O_CHECK_API_KEY}"},
                    "body": {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "mock:bad_json"}]}},
        "expect": {"status": 200},
        "match": "exact"
    });
    write_json(&dir.join("grammar.json"), &case);
    let out = run(check().arg(&dir).args(["--target", &servers.mock]));
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "  grammar (anthropic): the body is not JSON (`application/json`: EOF while parsing"
        ),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Selection, listing, exit codes

#[test]
fn selection_by_id_prefix_and_tag() {
    let out = run(check().args([
        "--list",
        "--id",
        "anthropic-front/openai-upstream/stream/tools",
        "--id",
        "openai-front/openai-upstream/errors/429",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ids: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split("  ").next())
        .filter(|l| l.contains('/'))
        .collect();
    assert_eq!(
        ids,
        [
            "anthropic-front/openai-upstream/stream/tools/parallel",
            "anthropic-front/openai-upstream/stream/tools/single",
        ],
        "whole segments only: `errors/429` does not select `errors/429-failover`"
    );
    assert_eq!(last_line(&out.stdout), "2 cases");

    let out = run(check().args([
        "--list",
        "--tag",
        "thinking",
        "--id",
        "openai-front/anthropic-upstream",
    ]));
    let listed: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(last_line(&out.stdout), "4 cases", "{}", out.stdout);
    assert!(listed
        .iter()
        .all(|l| !l.contains('/') || l.contains("thinking")));
    assert!(listed.contains(
        &"openai-front/anthropic-upstream/stream/thinking  [must; exact; thinking, stream, live]"
    ));

    // A run covers exactly the selection.
    let servers = servers();
    let fronts = servers.fronts("anthropic");
    let out = run(check()
        .args([
            "--tag",
            "models",
            "--tag",
            "count-tokens",
            "--id",
            "anthropic-front/anthropic-upstream",
        ])
        .args([
            "--target-openai",
            &fronts.openai,
            "--target-anthropic",
            &fronts.anthropic,
        ]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(last_line(&out.stdout), "2 passed, 0 failed");
}

#[test]
fn cases_without_a_target_or_marked_skip_are_skipped() {
    let servers = servers();
    let dir = scratch("skipped");
    write_json(
        &dir.join("a.json"),
        &text_case("t/a", json!({"status": 200}), "exact"),
    );
    let mut skipped = text_case("t/b", json!({"status": 200}), "exact");
    skipped["skip"] = json!("known difference, see issue 12");
    write_json(&dir.join("b.json"), &skipped);
    let mut anthropic = text_case("t/c", json!({"status": 200}), "exact");
    anthropic["request"]["path"] = json!("/v1/messages");
    write_json(&dir.join("c.json"), &anthropic);
    let out = run(check()
        .arg(&dir)
        .args(["--target-openai", &servers.fronts("anthropic").openai]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out
        .stdout
        .contains("SKIP t/b (known difference, see issue 12)\n"));
    assert!(out
        .stdout
        .contains("SKIP t/c (no --target-anthropic or --target given)\n"));
    assert_eq!(last_line(&out.stdout), "1 passed, 0 failed, 2 skipped");
}

#[test]
fn levels_decide_what_fails_the_run() {
    let servers = servers();
    let dir = scratch("levels");
    let mut should = text_case("t/should", json!({"status": 500}), "exact");
    should["level"] = json!("should");
    write_json(&dir.join("should.json"), &should);
    let mut info = text_case("t/info", json!({"status": 500}), "exact");
    info["level"] = json!("informational");
    write_json(&dir.join("info.json"), &info);
    let target = servers.fronts("anthropic").openai.clone();
    let out = run(check().arg(&dir).args(["--target", &target]));
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out
        .stdout
        .contains("2 of the failures are `should` or informational"));
    assert_eq!(last_line(&out.stdout), "0 passed, 2 failed");
    let out = run(check().arg(&dir).args(["--target", &target, "--strict"]));
    assert_eq!(out.code, 1, "{}", out.stdout);
}

#[test]
fn exit_code_two_when_the_check_cannot_run() {
    let servers = servers();
    let target = servers.fronts("anthropic").openai.clone();
    // A case file with an unknown key.
    let dir = scratch("bad-case");
    let mut bad = text_case("t/bad", json!({"status": 200}), "exact");
    bad["expct"] = json!({});
    write_json(&dir.join("bad.json"), &bad);
    let out = run(check().arg(&dir).args(["--target", &target]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("bad.json: not a valid case: expct: unknown field `expct`"),
        "{}",
        out.stderr
    );
    // A path that does not exist.
    let out = run(check().arg("no/such/dir").args(["--target", &target]));
    assert_eq!(out.code, 2);
    // No target.
    let out = run(&mut check());
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--target URL"), "{}", out.stderr);
    // The key variable unset.
    let out = run(check()
        .arg("conformance/openai-front/anthropic-upstream/text")
        .args(["--target", &target])
        .env_remove("A2O_CHECK_API_KEY"));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("the key variable A2O_CHECK_API_KEY is not set"),
        "{}",
        out.stderr
    );
    // Nothing selected.
    let out = run(check().args(["--tag", "no-such-tag", "--target", &target]));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no case matches"), "{}", out.stderr);
    // A target that answers nothing at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let out = run(check()
        .arg("conformance/openai-front/anthropic-upstream/text")
        .args(["--target", &dead]));
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("ERROR openai-front/anthropic-upstream/text/basic (cannot connect to"),
        "{}",
        out.stdout
    );
    assert_eq!(last_line(&out.stdout), "0 passed, 1 failed");
}

#[test]
fn a_slow_case_times_out() {
    let servers = servers();
    let dir = scratch("timeout");
    let mut slow = text_case("t/slow", json!({"status": 200}), "exact");
    slow["request"]["body"]["messages"][0]["content"] = json!("Hi mock:slow:3000");
    write_json(&dir.join("slow.json"), &slow);
    write_json(
        &dir.join("fast.json"),
        &text_case("t/fast", json!({"status": 200}), "exact"),
    );
    let out = run(check().arg(&dir).args([
        "--target",
        &servers.fronts("anthropic").openai,
        "--timeout",
        "0.5",
    ]));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("ERROR t/slow (no complete response within 0.5 s (--timeout))"),
        "{}",
        out.stdout
    );
    assert_eq!(last_line(&out.stdout), "1 passed, 1 failed");
}

// ---------------------------------------------------------------------------------------------
// Reports

#[test]
fn junit_and_json_reports_read_back() {
    use quick_xml::events::Event;
    let servers = servers();
    let dir = scratch("reports");
    write_json(
        &dir.join("cases/pass.json"),
        &text_case("g/r/pass", json!({"status": 200}), "exact"),
    );
    write_json(
        &dir.join("cases/fail.json"),
        &text_case(
            "g/r/fail & <escape>",
            json!({"status": 200, "body": completion("<wrong> & \"quoted\"", "stop")}),
            "exact",
        ),
    );
    let mut skip = text_case("g/s/skip", json!({"status": 200}), "exact");
    skip["skip"] = json!("not today");
    write_json(&dir.join("cases/skip.json"), &skip);
    let junit = dir.join("out/check.xml");
    let report = dir.join("out/check.json");
    let out = run(check()
        .arg(dir.join("cases"))
        .args(["--target", &servers.fronts("anthropic").openai])
        .arg("--report")
        .arg("junit")
        .arg(&junit)
        .arg("--report")
        .arg("json")
        .arg(&report));
    assert_eq!(out.code, 2, "the id with `&` is refused: {}", out.stderr);

    // Ids are restricted, so put the awkward characters in the text instead.
    write_json(
        &dir.join("cases/fail.json"),
        &text_case(
            "g/r/fail",
            json!({"status": 200, "body": completion("<wrong> & \"quoted\" \u{1b}[31m", "stop")}),
            "exact",
        ),
    );
    let out = run(check()
        .arg(dir.join("cases"))
        .args(["--target", &servers.fronts("anthropic").openai])
        .arg("--report")
        .arg("junit")
        .arg(&junit)
        .arg("--report")
        .arg("json")
        .arg(&report));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);

    let xml = std::fs::read_to_string(&junit).expect("junit written");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut suites = Vec::new();
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut in_failure = false;
    let mut root = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| -> String {
                    e.try_get_attribute(name)
                        .expect("attribute")
                        .map(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .expect("unescape")
                                .into_owned()
                        })
                        .unwrap_or_default()
                };
                let qname = e.name();
                let name: &str = qname.as_ref();
                match name {
                    "testsuites" => {
                        root = Some((
                            attr("tests"),
                            attr("failures"),
                            attr("errors"),
                            attr("skipped"),
                        ))
                    }
                    "testsuite" => suites.push((attr("name"), attr("tests"), attr("failures"))),
                    "testcase" => cases.push((attr("name"), attr("classname"))),
                    "failure" => {
                        failures.push((attr("message"), String::new()));
                        in_failure = true;
                    }
                    "skipped" => skipped.push(attr("message")),
                    _ => {}
                }
            }
            Event::Text(text) if in_failure => {
                let text = text.xml10_content().into_owned();
                failures.last_mut().expect("failure").1.push_str(&text);
            }
            Event::GeneralRef(r) if in_failure => {
                let name = r.xml10_content().into_owned();
                let c = match name.as_str() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other}"),
                };
                failures.last_mut().expect("failure").1.push_str(c);
            }
            Event::End(e) if AsRef::<str>::as_ref(&e.name()) == "failure" => in_failure = false,
            _ => {}
        }
    }
    assert_eq!(root, Some(("3".into(), "1".into(), "0".into(), "1".into())));
    assert_eq!(
        suites,
        [
            ("g/r".to_owned(), "2".to_owned(), "1".to_owned()),
            ("g/s".to_owned(), "1".to_owned(), "0".to_owned())
        ]
    );
    assert_eq!(cases.len(), 3);
    assert!(cases.contains(&("g/r/fail".to_owned(), "g/r".to_owned())));
    assert_eq!(skipped, ["not today"]);
    assert_eq!(failures.len(), 1);
    let (message, body) = &failures[0];
    assert_eq!(message, "the body differs (exact match)");
    assert!(
        body.starts_with("[must] A plain request gets the mock's text back.\n"),
        "{body}"
    );
    assert!(body.contains("-        \"content\": \"<wrong> & \\\"quoted\\\" \\u001b[31m\",\n+        \"content\": \"Hello from the mock upstream.\","), "{body}");

    let json = read_json(&report);
    assert_eq!(json["summary"]["line"], "1 passed, 1 failed, 1 skipped");
    assert_eq!(json["exit_code"], 1);
    let outcomes: Vec<(&str, &str)> = json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or(""),
                c["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("g/r/fail", "failed"),
            ("g/r/pass", "passed"),
            ("g/s/skip", "skipped")
        ]
    );
    assert!(json["cases"][0]["diff"]
        .as_str()
        .expect("diff")
        .starts_with("--- expected\n+++ actual\n"));
}

// ---------------------------------------------------------------------------------------------
// Secrets, recording, blessing

#[test]
fn secrets_never_appear_in_output_reports_or_recordings() {
    let servers = servers();
    let fronts = servers.fronts("anthropic");
    let dir = scratch("secrets");
    // The echo scenario sends the request back as text, key included, and the expectation
    // is wrong, so the key would be in the diff, the reports and the recording.
    let mut echo = text_case(
        "t/secret/echo",
        json!({"status": 200, "body": completion("x", "stop")}),
        "exact",
    );
    echo["request"]["body"]["messages"][0]["content"] =
        json!("My key is ${A2O_CHECK_API_KEY}. mock:echo");
    write_json(&dir.join("cases/echo.json"), &echo);
    let mut pool = text_case(
        "t/secret/pool",
        json!({"status": 200, "body": completion("x", "stop")}),
        "exact",
    );
    pool["request"]["headers"]["authorization"] =
        json!("Bearer sk-check-fail-9,${A2O_CHECK_API_KEY}");
    pool["request"]["body"]["messages"][0]["content"] =
        json!("${A2O_CHECK_API_KEY} mock:fail_key:sk-check-fail-9 mock:echo");
    write_json(&dir.join("cases/pool.json"), &pool);
    let reports = dir.join("reports");
    let out = run(check()
        .arg(dir.join("cases"))
        .args(["--target-openai", &fronts.openai])
        .arg("--report")
        .arg("junit")
        .arg(reports.join("r.xml"))
        .arg("--report")
        .arg("json")
        .arg(reports.join("r.json"))
        .env("A2O_CHECK_API_KEY", SECRET));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("My key is ${A2O_CHECK_API_KEY}. mock:echo"),
        "the echoed key shows as its placeholder: {}",
        out.stdout
    );
    let recorded = dir.join("recorded");
    let rec = run(check()
        .arg(dir.join("cases"))
        .args(["--target-openai", &fronts.openai, "--record"])
        .arg(&recorded)
        .env("A2O_CHECK_API_KEY", SECRET));
    assert_eq!(rec.code, 0, "{}{}", rec.stdout, rec.stderr);
    let blessed = dir.join("blessed");
    std::fs::create_dir_all(&blessed).expect("mkdir");
    std::fs::copy(dir.join("cases/echo.json"), blessed.join("echo.json")).expect("copy");
    let bless = run(check()
        .arg(&blessed)
        .args(["--target-openai", &fronts.openai, "--bless"])
        .env("A2O_CHECK_API_KEY", SECRET));
    assert_eq!(bless.code, 0, "{}{}", bless.stdout, bless.stderr);

    let mut everything = vec![
        out.stdout,
        out.stderr,
        rec.stdout,
        rec.stderr,
        bless.stdout,
        bless.stderr,
    ];
    for sub in ["reports", "recorded", "blessed"] {
        for file in all_files(&dir.join(sub)) {
            everything.push(std::fs::read_to_string(&file).expect("read"));
        }
    }
    assert!(everything.len() > 8);
    for text in &everything {
        assert!(!text.contains("SECRET"), "the key leaked:\n{text}");
    }
    let blessed_case = std::fs::read_to_string(blessed.join("echo.json")).expect("blessed");
    assert!(blessed_case.contains("My key is ${A2O_CHECK_API_KEY}. mock:echo"));
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(all_files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn recording_writes_shape_cases_that_pass_against_the_same_target() {
    let servers = servers();
    let fronts = servers.fronts("openai");
    let dir = scratch("record");
    let out = run(check()
        .args([
            "--id",
            "anthropic-front/openai-upstream/stream/tools",
            "--id",
            "anthropic-front/openai-upstream/text",
        ])
        .args(["--target-anthropic", &fronts.anthropic, "--record"])
        .arg(&dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        last_line(&out.stdout),
        format!("recorded 3 cases into {}", dir.display())
    );
    let case = read_json(&dir.join("anthropic-front/openai-upstream/stream/tools/single.json"));
    assert_eq!(case["match"], "shape");
    assert_eq!(case["tags"], json!(["tools", "stream", "live"]));
    assert_eq!(case["expect"]["events_file"], "single.sse");
    assert_eq!(
        case["request"]["headers"]["x-api-key"],
        "${A2O_CHECK_API_KEY}"
    );
    let sse = std::fs::read_to_string(
        dir.join("anthropic-front/openai-upstream/stream/tools/single.sse"),
    )
    .expect("sse");
    assert!(
        sse.contains("\"id\":\"chatcmpl-<id:1>\""),
        "ids are redacted: {sse}"
    );
    assert!(sse.contains("\"id\":\"call_<id:2>\""));
    let text = read_json(&dir.join("anthropic-front/openai-upstream/text/basic.json"));
    assert_eq!(
        text["expect"]["headers"],
        json!({"content-type": "application/json"})
    );
    assert_eq!(text["expect"]["body"]["type"], "message");

    let out = run(check().arg(&dir).args(["--target", &fronts.anthropic]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(last_line(&out.stdout), "3 passed, 0 failed");
    // Shape ignores the text but not the stop reason.
    let sse_path = dir.join("anthropic-front/openai-upstream/stream/tools/single.sse");
    std::fs::write(
        &sse_path,
        sse.replace("Paris", "Rome").replace(
            "\"tool_use\",\"stop_sequence\"",
            "\"end_turn\",\"stop_sequence\"",
        ),
    )
    .expect("write");
    let out = run(check().arg(&dir).args(["--target", &fronts.anthropic]));
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("-data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\""),
        "{}",
        out.stdout
    );
    assert_eq!(last_line(&out.stdout), "2 passed, 1 failed");
}

#[test]
fn blessing_is_stable() {
    let servers = servers();
    let fronts = servers.fronts("anthropic");
    let dir = scratch("bless");
    let source = conformance().join("anthropic-front/anthropic-upstream/stream");
    for name in ["text.json", "text.sse", "thinking.json", "thinking.sse"] {
        std::fs::copy(source.join(name), dir.join(name)).expect("copy");
    }
    let out = run(check()
        .arg(&dir)
        .args(["--target", &fronts.anthropic, "--bless"]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("unchanged anthropic-front/anthropic-upstream/stream/text\n"),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .contains("unchanged anthropic-front/anthropic-upstream/stream/thinking\n"));
    for name in ["text.json", "text.sse", "thinking.json", "thinking.sse"] {
        assert_eq!(
            std::fs::read(dir.join(name)).expect("read"),
            std::fs::read(source.join(name)).expect("read"),
            "{name} changed"
        );
    }
    // A fresh case gets its expectation filled in.
    let mut fresh = read_json(&source.join("text.json"));
    fresh["expect"] = json!({"status": 200});
    write_json(&dir.join("text.json"), &fresh);
    std::fs::remove_file(dir.join("text.sse")).expect("rm");
    let out =
        run(check()
            .arg(dir.join("text.json"))
            .args(["--target", &fronts.anthropic, "--bless"]));
    assert!(
        out.stdout
            .contains("updated anthropic-front/anthropic-upstream/stream/text\n"),
        "{}",
        out.stdout
    );
    assert_eq!(
        std::fs::read(dir.join("text.sse")).expect("sse written"),
        std::fs::read(source.join("text.sse")).expect("read")
    );
}

// ---------------------------------------------------------------------------------------------
// --validate

#[test]
fn validate_explains_the_first_violation() {
    let dir = scratch("validate");
    let good = conformance().join("anthropic-front/anthropic-upstream/stream/thinking.sse");
    check()
        .args(["--validate"])
        .arg(&good)
        .args(["--dialect", "anthropic"])
        .assert()
        .code(0)
        .stdout(predicates::str::ends_with(
            "thinking.sse: valid (Anthropic Messages stream, 15 events)\n",
        ));
    // The same stream with its thinking block never closed.
    let broken = std::fs::read_to_string(&good).expect("read").replacen(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "",
        1,
    );
    std::fs::write(dir.join("broken.sse"), broken).expect("write");
    let out = run(check()
        .arg("--validate")
        .arg(dir.join("broken.sse"))
        .args(["--dialect", "anthropic"]));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            ": invalid: event 6: `content_block_start` for index 1 while block 0 is still open"
        ),
        "{}",
        out.stdout
    );
    // The wrong dialect, from stdin.
    check()
        .args(["--validate", "-", "--dialect", "openai"])
        .write_stdin(std::fs::read(&good).expect("read"))
        .assert()
        .code(1)
        .stdout(predicates::str::starts_with("stdin: invalid: event 0: "));
    // JSON bodies.
    let message =
        conformance().join("anthropic-front/anthropic-upstream/errors/429-rate-limited.json");
    let body = read_json(&message)["expect"]["body"].to_string();
    std::fs::write(dir.join("error.json"), &body).expect("write");
    check()
        .arg("--validate")
        .arg(dir.join("error.json"))
        .args(["--dialect", "anthropic"])
        .assert()
        .code(0)
        .stdout(predicates::str::ends_with(
            "valid (Anthropic Messages error body)\n",
        ));
    check()
        .arg("--validate")
        .arg(dir.join("error.json"))
        .args(["--dialect", "openai"])
        .assert()
        .code(1)
        .stdout(predicates::str::ends_with(
            "invalid: `error.param` is missing\n",
        ));
    check()
        .args(["--validate", "no/such/file.sse", "--dialect", "openai"])
        .assert()
        .code(2);
}

#[test]
fn help_teaches_by_example() {
    let out = run(check().arg("--help"));
    assert_eq!(out.code, 0);
    for needle in [
        "Examples:",
        "--target-openai",
        "--record",
        "--validate",
        "Exit codes: 0",
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
}
