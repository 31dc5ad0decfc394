//! `a2o serve --config`: model aliases and `model_list` pools on every route, proxy keys,
//! precedence of flags / environment / file / defaults, `--print-config` masking, refusing to
//! be an open relay, and `/metrics`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use a2o::cli::{Cli, Command};
use a2o::mock::{self, MockOptions, MockState};
use a2o::server::log::{LogFormat, Logger};
use a2o::server::{self, settings};
use clap::Parser;
use predicates::prelude::*;
use serde_json::{json, Value};

struct Running {
    anthropic: String,
    openai: String,
    logs: Arc<Mutex<Vec<String>>>,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn start_mock() -> (String, MockState) {
    let (addr, server) = mock::bind(&MockOptions {
        host: "127.0.0.1".into(),
        port: 0,
    })
    .await
    .unwrap();
    let state = server.state();
    tokio::spawn(server.serve(std::future::pending()));
    (format!("http://{addr}"), state)
}

/// Starts a2o from command-line arguments (no environment is read: tests run in parallel).
async fn start(args: &[&str]) -> Running {
    let mut argv = vec![
        "a2o",
        "serve",
        "--no-dotenv",
        "--host",
        "127.0.0.1",
        "--anthropic-port",
        "0",
        "--openai-port",
        "0",
    ];
    argv.extend_from_slice(args);
    let Command::Serve(serve_args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let effective = settings::resolve(&serve_args).expect("settings");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    let logger = Logger {
        format: LogFormat::Json,
        sink: Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_owned())),
    };
    let bound = server::bind(effective.config, logger).await.unwrap();
    let (anthropic, openai) = (
        format!("http://{}", bound.anthropic_addr),
        format!("http://{}", bound.openai_addr),
    );
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bound.run(async move {
        let _ = rx.await;
    }));
    Running {
        anthropic,
        openai,
        logs,
        stop,
    }
}

fn write_config(text: &str) -> tempfile_path::TempPath {
    tempfile_path::TempPath::new(text)
}

/// A small self-deleting temp file, to avoid a dependency for one helper.
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl TempPath {
        pub fn new(text: &str) -> Self {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path =
                std::env::temp_dir().join(format!("a2o-config-{}-{n}.yaml", std::process::id()));
            std::fs::write(&path, text).unwrap();
            TempPath(path)
        }
        pub fn as_str(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn mapping_config(mock: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: fast
    litellm_params:
      model: openai/gpt-mock-mini
      api_base: {mock}/oa/v1
      api_key: sk-server-oa
  - model_name: smart
    litellm_params:
      model: anthropic/claude-mock-opus
      api_base: {mock}/an
      api_key: sk-server-an
general_settings:
  master_key: sk-proxy-master
a2o:
  aliases:
    "claude-*-haiku-*": fast
    "gpt-4*": smart
"#
    )
}

#[tokio::test]
async fn claude_haiku_on_the_anthropic_front_maps_to_an_openai_model_and_keeps_its_name() {
    let (mock_url, mock) = start_mock().await;
    let config = write_config(&mapping_config(&mock_url));
    let a2o = start(&["--config", config.as_str()]).await;
    for stream in [false, true] {
        let resp = http()
            .post(format!("{}/v1/messages", a2o.anthropic))
            .header("x-api-key", "sk-proxy-master")
            .json(
                &json!({"model": "claude-3-5-haiku-20241022", "max_tokens": 50, "stream": stream,
                          "messages": [{"role": "user", "content": "Hi"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("\"model\":\"claude-3-5-haiku-20241022\""),
            "the client sees its own model name: {text}"
        );
        assert!(!text.contains("gpt-mock-mini"), "{text}");
        assert!(text.contains("Hello"), "{text}");
    }
    let received = mock.requests();
    assert!(
        received.iter().all(|r| r.path == "/oa/v1/chat/completions"),
        "{received:?}"
    );
    assert!(received.iter().all(|r| r.body["model"] == "gpt-mock-mini"));
    for r in &received {
        let auth = r
            .headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            auth,
            Some("Bearer sk-server-oa"),
            "the server key goes upstream, never the proxy key"
        );
    }
    let logs = a2o.logs.lock().unwrap().join("\n");
    assert!(
        !logs.contains("sk-server-oa") && !logs.contains("sk-proxy-master"),
        "{logs}"
    );
    let _ = a2o.stop.send(());
}

#[tokio::test]
async fn model_mapping_works_on_all_four_routes() {
    let (mock_url, mock) = start_mock().await;
    let config = write_config(&mapping_config(&mock_url));
    let a2o = start(&["--config", config.as_str()]).await;
    // (front path, client model, expected upstream path, upstream model)
    let cases = [
        (
            "/v1/chat/completions",
            "gpt-4o",
            "/an/v1/messages",
            "claude-mock-opus",
        ),
        (
            "/v1/chat/completions",
            "claude-3-haiku-x",
            "/oa/v1/chat/completions",
            "gpt-mock-mini",
        ),
        (
            "/v1/messages",
            "gpt-4.1",
            "/an/v1/messages",
            "claude-mock-opus",
        ),
        (
            "/v1/messages",
            "claude-3-haiku-x",
            "/oa/v1/chat/completions",
            "gpt-mock-mini",
        ),
    ];
    for (path, model, upstream_path, upstream_model) in cases {
        mock.clear();
        let resp = http()
            .post(format!("{}{path}", a2o.openai))
            .bearer_auth("sk-proxy-master")
            .json(&json!({"model": model, "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} {model}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["model"], model,
            "{path}: the response names the client's model: {body}"
        );
        let received = mock.requests();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, upstream_path);
        assert_eq!(received[0].body["model"], upstream_model);
    }
    let _ = a2o.stop.send(());
}

#[tokio::test]
async fn a_proxy_key_is_required_when_the_config_holds_upstream_keys() {
    let (mock_url, _mock) = start_mock().await;
    let config = write_config(&mapping_config(&mock_url));
    let a2o = start(&["--config", config.as_str()]).await;
    let url = format!("{}/v1/chat/completions", a2o.openai);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
    let none = http().post(&url).json(&body).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = http()
        .post(&url)
        .bearer_auth("sk-proxy-mastex")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let err: Value = wrong.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("proxy key"),
        "{err}"
    );
    let right = http()
        .post(&url)
        .bearer_auth("sk-proxy-master")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    let models = http()
        .get(format!("{}/v1/models", a2o.openai))
        .send()
        .await
        .unwrap();
    assert_eq!(
        models.status(),
        401,
        "the model list needs the proxy key too"
    );
    let _ = a2o.stop.send(());
}

#[tokio::test]
async fn deployments_of_one_model_rotate_and_fail_over() {
    let (mock_url, mock) = start_mock().await;
    let config = write_config(&format!(
        r#"
model_list:
  - model_name: pool
    litellm_params: {{model: openai/m-a, api_base: "{mock_url}/a", api_key: sk-a}}
  - model_name: pool
    litellm_params: {{model: openai/m-b, api_base: "{mock_url}/b", api_key: sk-b}}
general_settings:
  master_key: sk-proxy
"#
    ));
    let a2o = start(&["--config", config.as_str(), "--max-retry-wait", "0.01"]).await;
    let ask = |text: &str| {
        http()
            .post(format!("{}/v1/chat/completions", a2o.openai))
            .bearer_auth("sk-proxy")
            .json(&json!({"model": "pool", "messages": [{"role": "user", "content": text}]}))
            .send()
    };
    for _ in 0..4 {
        assert_eq!(ask("Hi").await.unwrap().status(), 200);
    }
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/a/v1/chat/completions",
            "/b/v1/chat/completions",
            "/a/v1/chat/completions",
            "/b/v1/chat/completions"
        ]
    );
    mock.clear();
    // Deployment a's key is refused: the request fails over to b, twice in a row.
    for _ in 0..2 {
        assert_eq!(ask("mock:fail_key:sk-a hi").await.unwrap().status(), 200);
    }
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.ends_with(&["/b/v1/chat/completions".to_owned()]),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/a/v1/chat/completions".to_owned()),
        "{paths:?}"
    );
    let _ = a2o.stop.send(());
}

#[tokio::test]
async fn metrics_move_as_requests_flow() {
    let (mock_url, _mock) = start_mock().await;
    let a2o = start(&["--upstream", &mock_url, "--metrics"]).await;
    let scrape = || async {
        http()
            .get(format!("{}/metrics", a2o.anthropic))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let count = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("a2o_requests_total{") && l.contains("status=\"200\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = count(&scrape().await);
    for _ in 0..3 {
        let resp = http()
            .post(format!("{}/v1/chat/completions", a2o.openai))
            .bearer_auth("k")
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    // The log line (and its metrics) is written when the request is done, just after the reply.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut after = count(&scrape().await);
    while after < before + 3.0 && std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
        after = count(&scrape().await);
    }
    assert!(after >= before + 3.0, "before {before}, after {after}");
    let text = scrape().await;
    assert!(text.contains("a2o_request_duration_seconds"), "{text}");
    let _ = a2o.stop.send(());
}

#[test]
fn metrics_are_off_by_default() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let a2o = start(&["--upstream", "http://127.0.0.1:9"]).await;
        let resp = http()
            .get(format!("{}/metrics", a2o.openai))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404);
        let _ = a2o.stop.send(());
    });
}

#[test]
fn stored_keys_without_a_proxy_key_are_refused_unless_on_loopback() {
    let config = write_config(
        "model_list:\n  - model_name: m\n    litellm_params: {model: openai/x, api_base: 'http://127.0.0.1:1', api_key: sk-stored}\n",
    );
    let parse = |host: &str| {
        let Command::Serve(args) = Cli::try_parse_from([
            "a2o",
            "serve",
            "--no-dotenv",
            "--host",
            host,
            "--config",
            config.as_str(),
        ])
        .unwrap()
        .command
        else {
            unreachable!()
        };
        settings::resolve(&args)
    };
    let err = parse("0.0.0.0").err().expect("an open relay is refused");
    assert!(err.to_string().contains("master_key"), "{err}");
    let ok = parse("127.0.0.1").expect("loopback is allowed");
    assert!(
        ok.warnings
            .iter()
            .any(|w| w.contains("anyone on this machine")),
        "{:?}",
        ok.warnings
    );
}

#[test]
fn print_config_shows_precedence_and_masks_secrets() {
    let config = write_config(
        "general_settings:\n  master_key: sk-very-secret-master\na2o:\n  upstream: http://from-config.example\n  openai_port: 7000\n  anthropic_port: 7100\n  http_timeout: 33\n  headers:\n    X-Team: secret-team-token\n",
    );
    let output = assert_cmd::Command::cargo_bin("a2o")
        .unwrap()
        .args([
            "serve",
            "--no-dotenv",
            "--print-config",
            "--config",
            config.as_str(),
            "--openai-port",
            "7002",
        ])
        .env("PORT", "7001")
        .env("HTTP_TIMEOUT", "44")
        .env_remove("ANYROUTER_BASE_URL")
        .env_remove("OPENAI_PROXY_PORT")
        .assert()
        .success()
        .stdout(predicate::str::contains("sk-very-secret-master").not())
        .stdout(predicate::str::contains("secret-team-token").not())
        .get_output()
        .stdout
        .clone();
    let effective: Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(effective["openai_port"], 7002, "a flag beats env and file");
    assert_eq!(effective["anthropic_port"], 7001, "env beats the file");
    assert_eq!(effective["http_timeout"], 44.0, "env beats the file");
    assert_eq!(
        effective["upstream"], "http://from-config.example",
        "the file beats the default"
    );
    assert_eq!(
        effective["default_max_tokens"], 8192,
        "defaults fill the rest"
    );
    assert!(effective["proxy_keys"][0]
        .as_str()
        .unwrap()
        .starts_with("<masked key:"));
}

#[test]
fn worker_threads_default_to_half_the_cpus_and_follow_flag_env_and_file() {
    let threads = |args: &[&str], env: Option<&str>| -> u64 {
        let mut command = assert_cmd::Command::cargo_bin("a2o").unwrap();
        command
            .args(["serve", "--no-dotenv", "--print-config"])
            .args(args);
        match env {
            Some(value) => command.env("A2O_THREADS", value),
            None => command.env_remove("A2O_THREADS"),
        };
        let output = command.assert().success().get_output().stdout.clone();
        let effective: Value = serde_json::from_slice(&output).unwrap();
        effective["threads"].as_u64().expect("threads is shown")
    };
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    assert_eq!(threads(&[], None), cpus.div_ceil(2).max(1));
    assert_eq!(threads(&[], Some("0")), cpus.div_ceil(2).max(1));
    assert_eq!(threads(&[], Some("3")), 3);
    assert_eq!(threads(&["--threads", "5"], Some("3")), 5);
    let config = write_config("a2o:\n  threads: 6\n");
    assert_eq!(threads(&["--config", config.as_str()], None), 6);
}

#[test]
fn config_errors_name_the_line_and_unknown_keys_are_reported() {
    let bad = write_config("a2o:\n  openai_port: many\n");
    assert_cmd::Command::cargo_bin("a2o")
        .unwrap()
        .args([
            "serve",
            "--no-dotenv",
            "--print-config",
            "--config",
            bad.as_str(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 2"));
    let litellm = write_config(
        "model_list:\n  - model_name: m\n    litellm_params:\n      model: openai/x\n      api_base: http://127.0.0.1:1/v1\n      rpm: 10\nlitellm_settings:\n  drop_params: true\n",
    );
    assert_cmd::Command::cargo_bin("a2o")
        .unwrap()
        .args([
            "serve",
            "--no-dotenv",
            "--print-config",
            "--host",
            "127.0.0.1",
            "--config",
            litellm.as_str(),
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains("model_list.0.litellm_params.rpm"))
        .stderr(predicate::str::contains("litellm_settings"));
}

#[test]
fn max_tokens_field_is_read_from_flag_env_and_file() {
    let field = |args: &[&str], env: Option<&str>| -> String {
        let mut command = assert_cmd::Command::cargo_bin("a2o").unwrap();
        command
            .args(["serve", "--no-dotenv", "--print-config"])
            .args(args);
        match env {
            Some(value) => command.env("A2O_MAX_TOKENS_FIELD", value),
            None => command.env_remove("A2O_MAX_TOKENS_FIELD"),
        };
        let output = command.assert().success().get_output().stdout.clone();
        let effective: Value = serde_json::from_slice(&output).unwrap();
        effective["max_tokens_field"].as_str().unwrap().to_owned()
    };
    assert_eq!(field(&[], None), "auto");
    assert_eq!(field(&[], Some("max_tokens")), "max_tokens");
    assert_eq!(
        field(
            &["--max-tokens-field", "max-completion-tokens"],
            Some("max_tokens")
        ),
        "max_completion_tokens"
    );
    let config = write_config("a2o:\n  max_tokens_field: max_tokens\n");
    assert_eq!(field(&["--config", config.as_str()], None), "max_tokens");
}
