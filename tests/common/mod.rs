//! The in-process harness the proxy test suites share: `a2o serve` started on free loopback
//! ports with its log lines captured, the project's mock upstream, and an HTTP client that
//! ignores proxies from the environment. Each suite keeps its own `config` (timeouts differ).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use a2o::mock::{self, MockOptions, MockState};
use a2o::protocol::Dialect;
use a2o::server::log::Logger;
use a2o::server::{self, ServeConfig};

/// A running `a2o serve` (both fronts) and the log lines it wrote.
pub struct Proxy {
    pub anthropic: String,
    pub openai: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Proxy {
    /// The base URL of the front that speaks `client`'s dialect.
    pub fn front(&self, client: Dialect) -> &str {
        match client {
            Dialect::Anthropic => &self.anthropic,
            Dialect::OpenAi => &self.openai,
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Stops the server (it must finish within 15 s) and returns everything it logged.
    pub async fn shutdown(mut self) -> String {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let logs = self.logs.clone();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("a2o shuts down within its grace period")
            .expect("server task")
            .expect("server ran");
        let lines = logs.lock().unwrap().join("\n");
        lines
    }
}

/// Starts `a2o serve` in this process with `config`, logging into [`Proxy::logs`].
pub async fn start(config: ServeConfig) -> Proxy {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink_logs = logs.clone();
    let logger = Logger {
        format: config.log_format,
        sink: Arc::new(move |line: &str| sink_logs.lock().unwrap().push(line.to_owned())),
    };
    let bound = server::bind(config, logger).await.expect("bind");
    let anthropic = format!("http://{}", bound.anthropic_addr);
    let openai = format!("http://{}", bound.openai_addr);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(bound.run(async move {
        let _ = rx.await;
    }));
    Proxy {
        anthropic,
        openai,
        logs,
        stop: Some(tx),
        task,
    }
}

/// The project's mock upstream, serving until dropped.
pub struct Mock {
    pub url: String,
    pub state: MockState,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn start_mock() -> Mock {
    let (addr, server) = mock::bind(&MockOptions {
        host: "127.0.0.1".into(),
        port: 0,
    })
    .await
    .expect("mock binds");
    let state = server.state();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    Mock {
        url: format!("http://{addr}"),
        state,
        _stop: stop,
    }
}

/// A client that never goes through a proxy from the environment.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// `a2o serve` as a child process, for what is read from the process environment (outbound
// proxies, the system trust store).

/// Environment variables that change how a2o reaches upstreams; removed from every child unless
/// the test sets them.
const UPSTREAM_ENVIRONMENT: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_DIR",
    "A2O_MAX_TOKENS_FIELD",
];

/// A running `a2o serve` child on free loopback ports; killed when dropped.
pub struct ServeProcess {
    child: std::process::Child,
    /// The startup banner's lines, up to and including the last (`threads:`).
    pub banner: Vec<String>,
}

impl ServeProcess {
    /// Starts `a2o serve` with `args` after the loopback/free-port ones, and `env` set.
    pub fn start(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Self {
        use std::io::BufRead;

        use assert_cmd::cargo::CommandCargoExt;

        let mut command = std::process::Command::cargo_bin("a2o").expect("binary builds");
        command.args([
            "serve",
            "--no-dotenv",
            "--host",
            "127.0.0.1",
            "--anthropic-port",
            "0",
            "--openai-port",
            "0",
        ]);
        command.args(args);
        for name in UPSTREAM_ENVIRONMENT {
            command.env_remove(name);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("a2o serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut banner = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let last = line.trim().starts_with("threads:");
            banner.push(line);
            if last {
                break;
            }
        }
        Self { child, banner }
    }

    /// `host:port` of the front named `front` (`anthropic` or `openai`) in the banner.
    pub fn front(&self, front: &str) -> String {
        let label = format!("{front} front:");
        self.banner
            .iter()
            .find_map(|line| line.trim().strip_prefix(label.as_str()))
            .map(|rest| rest.trim().trim_start_matches("http://").to_owned())
            .unwrap_or_else(|| panic!("no {label} line in {:?}", self.banner))
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs `body` as JSON to `path` on `front` (`host:port`) over a fresh connection and returns
/// the raw response, head and body.
pub fn post_raw(front: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    use std::io::{Read, Write};

    let mut client = std::net::TcpStream::connect(front).expect("connect to a2o");
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!("POST {path} HTTP/1.1\r\nhost: a2o\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    client.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    client.read_to_string(&mut response).expect("a2o answers");
    response
}
