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
