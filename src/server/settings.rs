//! The effective `serve` settings: flags, then environment variables (clap reads both), then
//! the config file, then defaults; and `--print-config`, which shows them with secrets masked.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::{HeaderName, HeaderValue};
use serde_json::{json, Value};

use super::config::{self, LogFormatName, ModelRoutes};
use super::log::LogFormat;
use super::ServeConfig;
use crate::cli::{LogFormatArg, MaxTokensField, ServeArgs};
use crate::keys::fingerprint;
use crate::protocol::Dialect;

/// Settings ready to serve, with warnings to log at startup.
pub struct Effective {
    pub config: ServeConfig,
    pub warnings: Vec<String>,
}

/// Merges flags/environment, the config file and defaults, and checks the result.
pub fn resolve(args: &ServeArgs) -> anyhow::Result<Effective> {
    let loaded = match &args.config {
        Some(path) => Some(config::load(path).map_err(|e| anyhow::anyhow!("config {e}"))?),
        None => None,
    };
    let mut warnings: Vec<String> = Vec::new();
    let empty = config::ConfigFile::default();
    let file = match &loaded {
        Some(loaded) => {
            warnings.extend(loaded.ignored.iter().map(|i| format!("config: {i}")));
            &loaded.file
        }
        None => &empty,
    };
    let a2o = &file.a2o;
    let defaults = ServeConfig::default();
    let seconds = |flag: Option<f64>, file: Option<f64>, default: Duration| {
        flag.or(file)
            .map(Duration::from_secs_f64)
            .unwrap_or(default)
    };
    let upstream = args
        .upstream
        .clone()
        .or_else(|| a2o.upstream.clone())
        .unwrap_or(defaults.upstream.clone());
    let upstream = upstream.trim_end_matches('/').to_owned();
    if !(upstream.starts_with("http://") || upstream.starts_with("https://")) {
        bail!("the upstream must be an http:// or https:// URL, not `{upstream}` (--upstream, ANYROUTER_BASE_URL or a2o.upstream)");
    }
    let routes =
        ModelRoutes::from_config(file, &upstream).map_err(|e| anyhow::anyhow!("config: {e}"))?;
    let mut proxy_keys = Vec::new();
    if let Some(master) = &file.general_settings.master_key {
        proxy_keys.push(
            config::resolve_env(master, "general_settings.master_key")
                .map_err(|e| anyhow::anyhow!("config: {e}"))?,
        );
    }
    for (i, key) in a2o.client_keys.iter().enumerate() {
        proxy_keys.push(
            config::resolve_env(key, &format!("a2o.client_keys[{i}]"))
                .map_err(|e| anyhow::anyhow!("config: {e}"))?,
        );
    }
    // An empty proxy key (`master_key: ""`, or an `os.environ/` variable set to nothing)
    // would let in every client that sends an empty key header: refuse to start.
    if proxy_keys.iter().any(|key| key.trim().is_empty()) {
        bail!("config: a proxy key (general_settings.master_key or a2o.client_keys) is empty; set it or remove it");
    }
    let mut extra_headers = Vec::new();
    for (name, value) in &a2o.headers {
        let path = format!("a2o.headers.{name}");
        let text = value
            .as_str()
            .with_context(|| format!("config: {path}: a header value must be a string"))?;
        let text = config::resolve_env(text, &path).map_err(|e| anyhow::anyhow!("config: {e}"))?;
        let name = HeaderName::try_from(name.as_str())
            .with_context(|| format!("config: {path}: not a valid header name"))?;
        let value = HeaderValue::try_from(text)
            .with_context(|| format!("config: {path}: not a valid header value"))?;
        extra_headers.push((name, value));
    }
    let config = ServeConfig {
        host: args
            .host
            .clone()
            .or_else(|| a2o.host.clone())
            .unwrap_or(defaults.host.clone()),
        anthropic_port: args
            .anthropic_port
            .or(a2o.anthropic_port)
            .unwrap_or(defaults.anthropic_port),
        openai_port: args
            .openai_port
            .or(a2o.openai_port)
            .unwrap_or(defaults.openai_port),
        upstream,
        upstream_protocol: args
            .upstream_protocol
            .map(Dialect::from)
            .or(a2o.upstream_protocol.map(Dialect::from))
            .unwrap_or(defaults.upstream_protocol),
        http_timeout: seconds(args.http_timeout, a2o.http_timeout, defaults.http_timeout),
        default_max_tokens: args
            .default_max_tokens
            .or(a2o.defaults.max_tokens)
            .unwrap_or(defaults.default_max_tokens),
        force_non_stream: args
            .force_non_stream
            .or(a2o.force_non_stream)
            .unwrap_or(false),
        body_limit: args
            .body_limit
            .or(a2o.body_limit)
            .unwrap_or(defaults.body_limit),
        max_retry_wait: seconds(
            args.max_retry_wait,
            a2o.max_retry_wait,
            defaults.max_retry_wait,
        ),
        key_cooldown: seconds(args.key_cooldown, a2o.key_cooldown, defaults.key_cooldown),
        shutdown_grace: seconds(
            args.shutdown_grace,
            a2o.shutdown_grace,
            defaults.shutdown_grace,
        ),
        log_format: match (args.log_format, a2o.log_format) {
            (Some(LogFormatArg::Json), _) | (None, Some(LogFormatName::Json)) => LogFormat::Json,
            _ => LogFormat::Text,
        },
        log_bodies: args.log_bodies || a2o.log_bodies.unwrap_or(false),
        routes: Arc::new(routes),
        proxy_keys,
        extra_headers,
        metrics: args.metrics.or(a2o.metrics).unwrap_or(false),
        threads: args.threads.or(a2o.threads).unwrap_or(0),
        max_tokens_field: args
            .max_tokens_field
            .or(a2o.max_tokens_field)
            .unwrap_or(MaxTokensField::Auto),
    };
    // Stored upstream keys must never make an open relay: clients then need a proxy key,
    // unless only this machine can connect.
    if config.routes.has_server_keys() && config.proxy_keys.is_empty() {
        if is_loopback(&config.host) {
            warnings.push(
                "the config holds upstream keys and no proxy key (general_settings.master_key or a2o.client_keys): \
                 anyone on this machine can use them"
                    .to_owned(),
            );
        } else {
            bail!(
                "the config holds upstream keys, so clients must present a proxy key: set general_settings.master_key \
                 (or a2o.client_keys), or bind to 127.0.0.1 with --host"
            );
        }
    }
    Ok(Effective { config, warnings })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A secret as it may be shown: its fingerprint.
fn mask(secret: &str) -> String {
    format!("<masked {}>", fingerprint(secret))
}

/// The effective settings as JSON, secrets masked, for `--print-config`.
pub fn describe(config: &ServeConfig) -> Value {
    json!({
        "host": config.host,
        "anthropic_port": config.anthropic_port,
        "openai_port": config.openai_port,
        "upstream": config.upstream,
        "upstream_protocol": config.upstream_protocol.name(),
        "http_timeout": config.http_timeout.as_secs_f64(),
        "default_max_tokens": config.default_max_tokens,
        "force_non_stream": config.force_non_stream,
        "body_limit": config.body_limit,
        "max_retry_wait": config.max_retry_wait.as_secs_f64(),
        "key_cooldown": config.key_cooldown.as_secs_f64(),
        "shutdown_grace": config.shutdown_grace.as_secs_f64(),
        "log_format": match config.log_format { LogFormat::Text => "text", LogFormat::Json => "json" },
        "log_bodies": config.log_bodies,
        "metrics": config.metrics,
        "threads": config.worker_threads(),
        "max_tokens_field": match config.max_tokens_field {
            MaxTokensField::Auto => "auto",
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        },
        "proxy_keys": config.proxy_keys.iter().map(|k| mask(k)).collect::<Vec<_>>(),
        "extra_headers": config.extra_headers.iter().map(|(n, _)| (n.as_str().to_owned(), Value::from("<masked>"))).collect::<serde_json::Map<_, _>>(),
        "models": config.routes.describe(),
    })
}
