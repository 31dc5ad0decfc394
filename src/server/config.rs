//! `a2o serve --config FILE`: the subset of the LiteLLM proxy config that matters to a2o
//! (`model_list`, `general_settings.master_key`, `os.environ/NAME` references) plus a2o's own
//! `a2o:` section. Keys a2o does not use are reported with their location; invalid values fail
//! at startup with the line they are on.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::keys::KeyList;
use crate::protocol::Dialect;

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub model_list: Vec<ModelEntry>,
    #[serde(default)]
    pub general_settings: GeneralSettings,
    #[serde(default)]
    pub a2o: A2oSettings,
}

#[derive(Debug, Deserialize)]
pub struct ModelEntry {
    pub model_name: String,
    pub litellm_params: LitellmParams,
}

#[derive(Debug, Deserialize)]
pub struct LitellmParams {
    /// `provider/model`, e.g. `openai/deepseek-chat`; the provider picks the dialect.
    pub model: String,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub custom_llm_provider: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct GeneralSettings {
    #[serde(default)]
    pub master_key: Option<String>,
}

/// a2o's own settings. Every field is optional: flags and environment variables win.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct A2oSettings {
    pub host: Option<String>,
    pub anthropic_port: Option<u16>,
    pub openai_port: Option<u16>,
    /// Default upstream for models without a `model_list` entry.
    pub upstream: Option<String>,
    pub upstream_protocol: Option<DialectName>,
    /// Model aliases applied before `model_list`: `"claude-*-haiku-*": deepseek-chat`.
    #[serde(default)]
    pub aliases: Map<String, Value>,
    /// Extra headers sent with every upstream request (`os.environ/NAME` allowed).
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub defaults: RequestDefaults,
    pub http_timeout: Option<f64>,
    pub body_limit: Option<usize>,
    pub max_retry_wait: Option<f64>,
    pub key_cooldown: Option<f64>,
    pub shutdown_grace: Option<f64>,
    pub force_non_stream: Option<bool>,
    pub log_format: Option<LogFormatName>,
    pub log_bodies: Option<bool>,
    /// Serve Prometheus metrics at `GET /metrics` on both fronts.
    pub metrics: Option<bool>,
    /// Worker threads (0: half the CPUs).
    pub threads: Option<usize>,
    /// OpenAI field for the output limit of translated requests.
    pub max_tokens_field: Option<crate::cli::MaxTokensField>,
    /// Proxy keys clients may present, besides `general_settings.master_key`.
    #[serde(default)]
    pub client_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDefaults {
    pub max_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialectName {
    Anthropic,
    Openai,
}

impl From<DialectName> for Dialect {
    fn from(name: DialectName) -> Self {
        match name {
            DialectName::Anthropic => Dialect::Anthropic,
            DialectName::Openai => Dialect::OpenAi,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormatName {
    Text,
    Json,
}

/// A config file read and checked, with what was ignored.
#[derive(Debug)]
pub struct LoadedConfig {
    pub file: ConfigFile,
    /// `path: reason` for every key a2o does not use.
    pub ignored: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

/// Reads and parses a config file. Unknown keys of LiteLLM's sections are collected in
/// `ignored`; unknown keys in the `a2o:` section are errors, since they are likely typos.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&text).map_err(|e| ConfigError {
        path: format!("{}: {}", path.display(), e.path),
        message: e.message,
    })
}

pub fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
    let mut ignored = Vec::new();
    let deserializer = serde_norway::Deserializer::from_str(text);
    let file: ConfigFile = serde_ignored::deserialize(deserializer, |path| {
        ignored.push(format!("{path}: not used by a2o, ignored"));
    })
    .map_err(|e| {
        let location = e
            .location()
            .map(|l| format!("line {}, column {}", l.line(), l.column()))
            .unwrap_or_default();
        ConfigError {
            path: location,
            message: e.to_string(),
        }
    })?;
    Ok(LoadedConfig { file, ignored })
}

/// Resolves `os.environ/NAME` to the variable's value; other strings are returned as they are.
pub fn resolve_env(value: &str, path: &str) -> Result<String, ConfigError> {
    match value.strip_prefix("os.environ/") {
        Some(name) => std::env::var(name).map_err(|_| ConfigError {
            path: path.to_owned(),
            message: format!("environment variable {name} is not set"),
        }),
        None => Ok(value.to_owned()),
    }
}

/// One upstream a model name can be served by.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `model_name#n`, for logs.
    pub label: String,
    pub base_url: String,
    pub dialect: Dialect,
    /// The model name the upstream knows.
    pub model: String,
    /// Server-side keys; `None` means the client's keys are used.
    pub keys: Option<KeyList>,
}

/// Model-name routing: aliases first, then `model_list` pools.
#[derive(Debug, Default)]
pub struct ModelRoutes {
    aliases: Vec<(String, String)>,
    pools: HashMap<String, Vec<Deployment>>,
}

/// Known providers' dialects and default base URLs (LiteLLM's prefixes).
fn provider(name: &str) -> Option<(Dialect, Option<&'static str>)> {
    Some(match name {
        "anthropic" => (Dialect::Anthropic, Some("https://api.anthropic.com")),
        "openai" => (Dialect::OpenAi, Some("https://api.openai.com")),
        "deepseek" => (Dialect::OpenAi, Some("https://api.deepseek.com")),
        "openrouter" => (Dialect::OpenAi, Some("https://openrouter.ai/api")),
        "ollama" | "ollama_chat" => (Dialect::OpenAi, Some("http://localhost:11434")),
        "groq" => (Dialect::OpenAi, Some("https://api.groq.com/openai")),
        "together_ai" => (Dialect::OpenAi, Some("https://api.together.xyz")),
        "mistral" => (Dialect::OpenAi, Some("https://api.mistral.ai")),
        "hosted_vllm" | "vllm" | "openai_compatible" | "custom_openai" | "litellm_proxy" => {
            (Dialect::OpenAi, None)
        }
        _ => return None,
    })
}

/// a2o appends `/v1/...` itself; LiteLLM configs usually end OpenAI bases with `/v1`.
fn normalise_base(base: &str) -> String {
    let base = base.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base).to_owned()
}

impl ModelRoutes {
    /// Builds the routes from a config file, resolving `os.environ/` references.
    pub fn from_config(file: &ConfigFile, default_upstream: &str) -> Result<Self, ConfigError> {
        let mut aliases = Vec::new();
        for (pattern, target) in &file.a2o.aliases {
            let Some(target) = target.as_str() else {
                return Err(ConfigError {
                    path: format!("a2o.aliases.{pattern}"),
                    message: "the alias target must be a model name (a string)".into(),
                });
            };
            aliases.push((pattern.clone(), target.to_owned()));
        }
        let mut pools: HashMap<String, Vec<Deployment>> = HashMap::new();
        for (i, entry) in file.model_list.iter().enumerate() {
            let path = format!("model_list[{i}].litellm_params");
            let params = &entry.litellm_params;
            // As in LiteLLM, the first path segment names the provider unless
            // `custom_llm_provider` does (then the whole string is the upstream's model name).
            let (prefix, model) = match (
                params.custom_llm_provider.as_deref(),
                params.model.split_once('/'),
            ) {
                (None, Some((prefix, model))) => (Some(prefix), model),
                _ => (None, params.model.as_str()),
            };
            let provider_name = params
                .custom_llm_provider
                .as_deref()
                .or(prefix)
                .unwrap_or("anthropic");
            let Some((dialect, default_base)) = provider(provider_name) else {
                return Err(ConfigError {
                    path: format!("{path}.model"),
                    message: format!(
                        "unknown provider `{provider_name}`: use anthropic/, openai/ (any OpenAI-compatible server), deepseek/, openrouter/, ollama/, groq/, together_ai/, mistral/ or hosted_vllm/"
                    ),
                });
            };
            let base = match &params.api_base {
                Some(base) => normalise_base(&resolve_env(base, &format!("{path}.api_base"))?),
                None => match (
                    prefix.is_some() || params.custom_llm_provider.is_some(),
                    default_base,
                ) {
                    (true, Some(base)) => base.to_owned(),
                    _ => default_upstream.to_owned(),
                },
            };
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ConfigError {
                    path: format!("{path}.api_base"),
                    message: format!("`{base}` is not an http(s) URL"),
                });
            }
            let keys = match &params.api_key {
                Some(key) => Some(
                    KeyList::parse(&resolve_env(key, &format!("{path}.api_key"))?).map_err(
                        |e| ConfigError {
                            path: format!("{path}.api_key"),
                            message: e.to_string(),
                        },
                    )?,
                ),
                None => None,
            };
            let pool = pools.entry(entry.model_name.clone()).or_default();
            if let Some(first) = pool.first() {
                if first.dialect != dialect {
                    return Err(ConfigError {
                        path: format!("model_list[{i}]"),
                        message: format!(
                            "`{}` mixes Anthropic and OpenAI deployments; a pool must speak one dialect",
                            entry.model_name
                        ),
                    });
                }
            }
            pool.push(Deployment {
                label: format!("{}#{}", entry.model_name, pool.len()),
                base_url: base,
                dialect,
                model: model.to_owned(),
                keys,
            });
        }
        Ok(Self { aliases, pools })
    }

    /// Whether any deployment holds a server-side key.
    pub fn has_server_keys(&self) -> bool {
        self.pools.values().flatten().any(|d| d.keys.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty() && self.pools.is_empty()
    }

    /// The model name after aliases (first matching pattern in file order).
    pub fn alias<'a>(&'a self, model: &'a str) -> &'a str {
        self.aliases
            .iter()
            .find(|(pattern, _)| glob_match(pattern, model))
            .map(|(_, target)| target.as_str())
            .unwrap_or(model)
    }

    /// Aliases and pools as JSON for `--print-config`, keys masked.
    pub fn describe(&self) -> Value {
        let mut names: Vec<&String> = self.pools.keys().collect();
        names.sort();
        let pools: Map<String, Value> = names
            .into_iter()
            .map(|name| {
                let deployments = self.pools[name]
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "upstream": d.base_url,
                            "protocol": d.dialect.name(),
                            "model": d.model,
                            "api_key": d.keys.as_ref().map(|k| (0..k.len()).map(|i| format!("<masked {}>", crate::keys::fingerprint(k.get(i)))).collect::<Vec<_>>()),
                        })
                    })
                    .collect::<Vec<_>>();
                (name.clone(), Value::from(deployments))
            })
            .collect();
        serde_json::json!({
            "aliases": self.aliases.iter().map(|(p, t)| serde_json::json!({"pattern": p, "model": t})).collect::<Vec<_>>(),
            "model_list": pools,
        })
    }

    /// Every configured model name, for `/v1/models`.
    pub fn model_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.pools.keys().cloned().collect();
        names.sort();
        names
    }

    /// The deployments serving a (post-alias) model name, if it has a `model_list` pool.
    pub fn pool(&self, model: &str) -> Option<&[Deployment]> {
        self.pools.get(model).map(Vec::as_slice)
    }
}

/// `*` matches any run of characters and `?` any one; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const LITELLM: &str = r#"
model_list:
  - model_name: claude-sonnet-4-5
    litellm_params:
      model: openai/deepseek-chat
      api_base: https://api.deepseek.com/v1
      api_key: os.environ/A2O_TEST_DEEPSEEK_KEY
      rpm: 60
  - model_name: claude-sonnet-4-5
    litellm_params:
      model: openai/deepseek-chat
      api_base: https://backup.example.com
      api_key: sk-backup
  - model_name: gpt-4o
    litellm_params:
      model: anthropic/claude-opus-4-1
litellm_settings:
  drop_params: true
general_settings:
  master_key: sk-proxy
a2o:
  aliases:
    "claude-*-haiku-*": claude-sonnet-4-5
  headers:
    X-Team: infra
"#;

    #[test]
    fn litellm_file_parses_and_reports_ignored_keys() {
        std::env::set_var("A2O_TEST_DEEPSEEK_KEY", "sk-from-env");
        let loaded = parse(LITELLM).unwrap();
        assert!(
            loaded
                .ignored
                .iter()
                .any(|i| i.starts_with("model_list.0.litellm_params.rpm")),
            "{:?}",
            loaded.ignored
        );
        assert!(
            loaded
                .ignored
                .iter()
                .any(|i| i.starts_with("litellm_settings")),
            "{:?}",
            loaded.ignored
        );
        let routes = ModelRoutes::from_config(&loaded.file, "https://anyrouter.top").unwrap();
        assert_eq!(
            routes.alias("claude-3-5-haiku-20241022"),
            "claude-sonnet-4-5"
        );
        assert_eq!(routes.alias("claude-opus-4-1"), "claude-opus-4-1");
        let pool = routes.pool("claude-sonnet-4-5").unwrap();
        assert_eq!(pool.len(), 2);
        assert_eq!(pool[0].base_url, "https://api.deepseek.com");
        assert_eq!(pool[0].dialect, Dialect::OpenAi);
        assert_eq!(pool[0].model, "deepseek-chat");
        assert_eq!(pool[0].keys.as_ref().unwrap().get(0), "sk-from-env");
        let gpt = routes.pool("gpt-4o").unwrap();
        assert_eq!(
            (gpt[0].dialect, gpt[0].base_url.as_str()),
            (Dialect::Anthropic, "https://api.anthropic.com")
        );
        assert!(routes.has_server_keys());
        assert_eq!(
            loaded.file.general_settings.master_key.as_deref(),
            Some("sk-proxy")
        );
    }

    #[test]
    fn errors_name_their_location() {
        let err = parse("a2o:\n  openai_port: lots\n").unwrap_err();
        assert!(err.path.contains("line 2"), "{err}");
        let err = parse("a2o:\n  prot: 1\n").unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
        let loaded = parse(
            "model_list:\n  - model_name: x\n    litellm_params:\n      model: cohere/command\n",
        )
        .unwrap();
        let err = ModelRoutes::from_config(&loaded.file, "https://a").unwrap_err();
        assert_eq!(err.path, "model_list[0].litellm_params.model");
        let loaded = parse("model_list:\n  - model_name: x\n    litellm_params:\n      model: openai/m\n      api_key: os.environ/A2O_TEST_UNSET_VAR\n").unwrap();
        let err = ModelRoutes::from_config(&loaded.file, "https://a").unwrap_err();
        assert!(err.message.contains("A2O_TEST_UNSET_VAR"), "{err}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("claude-*-haiku-*", "claude-3-5-haiku-2024"));
        assert!(glob_match("*", ""));
        assert!(glob_match("gpt-?o", "gpt-4o"));
        assert!(!glob_match("claude-*-haiku-*", "claude-sonnet-4"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
    }
}
