//! `a2o serve`: the proxies. Two fronts (Anthropic on 9998, OpenAI on 9999 by default) each
//! serve both dialects' paths; the upstream dialect decides which routes translate and which
//! pass bytes through. This module owns the settings, the shared state, the routers and the
//! listeners; `proxy` owns request handling.

pub mod config;
pub mod dotenv;
pub mod error;
pub mod log;
pub mod metrics;
pub mod proxy;
pub mod settings;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::keys::KeyPools;
use crate::protocol::Dialect;
use log::{LogFormat, Logger};

/// Everything `a2o serve` needs, after flags, environment and defaults are merged.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub host: String,
    pub anthropic_port: u16,
    pub openai_port: u16,
    /// Upstream base URL without a trailing slash; may carry a path prefix (`http://h/api`).
    pub upstream: String,
    pub upstream_protocol: Dialect,
    /// Bounds connecting and the idle time between upstream bytes, not a response's length.
    pub http_timeout: Duration,
    pub default_max_tokens: u64,
    pub force_non_stream: bool,
    pub body_limit: usize,
    /// Longest `Retry-After` honoured before trying the next key.
    pub max_retry_wait: Duration,
    pub key_cooldown: Duration,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub log_bodies: bool,
    /// Model aliases and `model_list` pools from the config file.
    pub routes: Arc<config::ModelRoutes>,
    /// Keys clients must present (`master_key`, `client_keys`); empty means clients bring
    /// their own upstream keys.
    pub proxy_keys: Vec<String>,
    /// Headers added to every upstream request.
    pub extra_headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
    /// Serve `GET /metrics`.
    pub metrics: bool,
    /// Worker threads; 0 picks [`ServeConfig::worker_threads`]'s default.
    pub threads: usize,
    /// OpenAI field for the output limit of requests translated from Anthropic.
    pub max_tokens_field: crate::cli::MaxTokensField,
}

impl ServeConfig {
    /// Whether a request translated for the OpenAI upstream at `base` carries its output limit
    /// as `max_tokens` rather than `max_completion_tokens`. DeepSeek's API silently ignores
    /// `max_completion_tokens` and falls back to its own default limit.
    pub fn uses_max_tokens(&self, base: &str) -> bool {
        use crate::cli::MaxTokensField;
        match self.max_tokens_field {
            MaxTokensField::MaxTokens => true,
            MaxTokensField::MaxCompletionTokens => false,
            MaxTokensField::Auto => {
                let host = base
                    .split("://")
                    .nth(1)
                    .unwrap_or(base)
                    .split(['/', ':', '?'])
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                host == "deepseek.com" || host.ends_with(".deepseek.com")
            }
        }
    }

    /// The runtime's worker threads: as configured, else half the CPUs (at least one). On the
    /// 2-CPU benchmark machine one worker costs 20-25 % less CPU per request than two and serves
    /// more requests per second, because requests no longer hop between threads and the kernel
    /// keeps a CPU for the sockets (BENCHMARKS.md).
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        cpus.div_ceil(2).max(1)
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".to_owned(),
            anthropic_port: 9998,
            openai_port: 9999,
            upstream: "https://anyrouter.top".to_owned(),
            upstream_protocol: Dialect::Anthropic,
            http_timeout: Duration::from_secs(120),
            default_max_tokens: crate::convert::DEFAULT_MAX_TOKENS,
            force_non_stream: false,
            body_limit: 32 * 1024 * 1024,
            max_retry_wait: Duration::from_secs(10),
            key_cooldown: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            log_format: LogFormat::Text,
            log_bodies: false,
            routes: Arc::default(),
            proxy_keys: Vec::new(),
            extra_headers: Vec::new(),
            metrics: false,
            threads: 0,
            max_tokens_field: crate::cli::MaxTokensField::Auto,
        }
    }
}

/// Parsed upstream URLs: base URL, then path.
type UrlCache =
    std::collections::HashMap<String, std::collections::HashMap<&'static str, axum::http::Uri>>;

/// State shared by every request of both fronts.
pub struct Shared {
    pub config: ServeConfig,
    pub client: upstream::UpstreamClient,
    pub pools: KeyPools,
    pub logger: Logger,
    /// Parsed upstream URLs by base and path: parsing one (host, IDNA) costs more than
    /// converting a small request, and the set of upstreams is fixed by the configuration.
    urls: std::sync::RwLock<UrlCache>,
}

/// One front's view of the shared state: which dialect it answers in when a request doesn't
/// say (unknown routes, `/v1/models`).
#[derive(Clone)]
pub struct AppState {
    pub shared: Arc<Shared>,
    pub front: Dialect,
}

impl Shared {
    pub fn new(config: ServeConfig, logger: Logger) -> anyhow::Result<Self> {
        let client = upstream::UpstreamClient::new(config.http_timeout)?;
        let pools = KeyPools::new(config.key_cooldown);
        Ok(Self {
            config,
            client,
            pools,
            logger,
            urls: Default::default(),
        })
    }

    /// The URL of `path` on the upstream `base`, with the client's query if any.
    pub(crate) fn upstream_url(
        &self,
        base: &str,
        path: &'static str,
        query: Option<&str>,
    ) -> Result<axum::http::Uri, error::AppError> {
        let cached = self
            .urls
            .read()
            .ok()
            .and_then(|urls| urls.get(base).and_then(|paths| paths.get(path)).cloned());
        let url = match cached {
            Some(url) => url,
            None => {
                let text = proxy::upstream_url(base, path, None);
                let url = parse_upstream_uri(&text)?;
                if let Ok(mut urls) = self.urls.write() {
                    urls.entry(base.to_owned())
                        .or_default()
                        .insert(path, url.clone());
                }
                url
            }
        };
        match query.filter(|q| !q.is_empty()) {
            Some(query) => {
                // Cached URLs have no query of their own.
                parse_upstream_uri(&format!("{url}?{query}"))
            }
            None => Ok(url),
        }
    }
}

/// An absolute http(s) URL for the upstream client.
fn parse_upstream_uri(text: &str) -> Result<axum::http::Uri, error::AppError> {
    let uri: axum::http::Uri = text
        .parse()
        .map_err(|e| error::AppError::internal(format!("invalid upstream URL `{text}`: {e}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) if !host.is_empty() => Ok(uri),
        _ => Err(error::AppError::internal(format!(
            "invalid upstream URL `{text}`: it must start with http:// or https:// and name a host"
        ))),
    }
}

/// The routes of one front.
pub fn router(state: AppState) -> Router {
    let metrics_enabled = state.shared.config.metrics;
    let router = Router::new();
    let router = if metrics_enabled {
        router.route("/metrics", get(proxy::metrics))
    } else {
        router
    };
    router
        .route("/v1/chat/completions", post(proxy::chat_completions))
        .route("/v1/messages", post(proxy::messages))
        .route("/v1/messages/count_tokens", post(proxy::count_tokens))
        .route("/v1/models", get(proxy::models))
        .route("/v1/models/{id}", get(proxy::model))
        .route("/health", get(proxy::health))
        .route("/", get(proxy::root))
        .fallback(proxy::not_found)
        .with_state(state)
}

/// Both fronts, bound and ready to serve.
pub struct Bound {
    pub anthropic_addr: SocketAddr,
    pub openai_addr: SocketAddr,
    anthropic: TcpListener,
    openai: TcpListener,
    shared: Arc<Shared>,
}

impl Bound {
    /// Whether upstream requests go through an outbound proxy from the environment.
    pub fn upstream_is_proxied(&self) -> bool {
        self.shared.client.is_proxied()
    }
}

/// Binds both fronts (port 0 picks a free port).
pub async fn bind(config: ServeConfig, logger: Logger) -> anyhow::Result<Bound> {
    use anyhow::Context;
    let anthropic = TcpListener::bind((config.host.as_str(), config.anthropic_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (Anthropic front)",
                config.host, config.anthropic_port
            )
        })?;
    let openai = TcpListener::bind((config.host.as_str(), config.openai_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (OpenAI front)",
                config.host, config.openai_port
            )
        })?;
    if config.metrics && !metrics::enable() {
        anyhow::bail!(
            "cannot serve metrics: another metrics recorder is installed in this process"
        );
    }
    let shared = Arc::new(Shared::new(config, logger)?);
    Ok(Bound {
        anthropic_addr: anthropic.local_addr()?,
        openai_addr: openai.local_addr()?,
        anthropic,
        openai,
        shared,
    })
}

impl Bound {
    /// Serves until `shutdown` resolves, then lets in-flight requests finish for up to the
    /// configured grace period.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let grace = self.shared.config.shutdown_grace;
        let header_timeout = self.shared.config.http_timeout;
        let logger = self.shared.logger.clone();
        let mut servers = Vec::new();
        for (listener, front) in [
            (self.anthropic, Dialect::Anthropic),
            (self.openai, Dialect::OpenAi),
        ] {
            let app = router(AppState {
                shared: self.shared.clone(),
                front,
            });
            servers.push(tokio::spawn(serve_front(
                listener,
                app,
                header_timeout,
                rx.clone(),
            )));
        }
        let upkeep = self.shared.config.metrics.then(|| {
            tokio::spawn(async {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    metrics::run_upkeep();
                }
            })
        });
        shutdown.await;
        if let Some(upkeep) = upkeep {
            upkeep.abort();
        }
        logger.event(&format!(
            "shutting down: draining in-flight requests for up to {} s",
            grace.as_secs()
        ));
        let _ = tx.send(true);
        let drained = tokio::time::timeout(grace, futures_util::future::join_all(servers)).await;
        if drained.is_err() {
            logger.event("shutdown grace period over; closing remaining connections");
        }
        Ok(())
    }
}

/// Accepts and serves one front's connections until `stop` turns true, then waits for them to
/// finish. Unlike `axum::serve`, it gives hyper a timer, so a client must send its request
/// head within `header_timeout` (the same `--http-timeout` that bounds the body and the
/// upstream): a slow-loris client, or a connection that never sends anything, is closed
/// instead of holding a socket and a task forever.
async fn serve_front(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => Some(accepted),
            () = stopped(&mut stop) => None,
        };
        let Some(accepted) = accepted else {
            break;
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Nagle would hold small SSE events back for up to 40 ms.
        let _ = tcp.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper's header timer starts once protocol detection has seen a first byte, so a
            // connection that never sends one would wait forever: bound that wait too.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_timeout, tcp.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::ServeConfig;
    use crate::cli::MaxTokensField;

    #[test]
    fn auto_max_tokens_field_is_max_tokens_only_for_upstreams_that_ignore_the_other() {
        let config = ServeConfig::default();
        assert_eq!(config.max_tokens_field, MaxTokensField::Auto);
        assert!(config.uses_max_tokens("https://api.deepseek.com"));
        assert!(config.uses_max_tokens("https://API.DeepSeek.com/v1"));
        assert!(config.uses_max_tokens("https://deepseek.com:443/beta"));
        assert!(!config.uses_max_tokens("https://api.openai.com/v1"));
        assert!(!config.uses_max_tokens("http://127.0.0.1:8000"));
        assert!(!config.uses_max_tokens("https://notdeepseek.com"));
        assert!(!config.uses_max_tokens("https://deepseek.com.evil.example"));
        let forced = ServeConfig {
            max_tokens_field: MaxTokensField::MaxTokens,
            ..ServeConfig::default()
        };
        assert!(forced.uses_max_tokens("https://api.openai.com"));
        let never = ServeConfig {
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            ..ServeConfig::default()
        };
        assert!(!never.uses_max_tokens("https://api.deepseek.com"));
    }
}
