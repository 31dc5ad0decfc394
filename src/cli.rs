//! The command line: clap types for every subcommand, with help text that teaches by example.
//! Parsing only; `main.rs` runs what is parsed.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::protocol::Dialect;

#[derive(Debug, Parser)]
#[command(
    name = "a2o",
    version,
    about = "Translate between OpenAI Chat Completions and Anthropic Messages",
    long_about = "a2o translates between the two LLM API dialects everyone uses, OpenAI Chat \
Completions and Anthropic Messages: requests, responses, error bodies and SSE streams, in both \
directions. Nothing is lost silently: whatever cannot be carried across is reported as a loss.",
    after_help = "Examples:\n  \
a2o serve                                   # Anthropic front :9998, OpenAI front :9999 -> anyrouter.top\n  \
a2o serve --upstream http://localhost:8000 --upstream-protocol openai\n  \
a2o convert request --from openai < chat.json > messages.json\n  \
curl -sN https://api.anthropic.com/v1/messages ... | a2o convert stream --from anthropic\n\n\
Exit codes: 0 success, 1 a check found a difference, 2 error (bad input, or a loss under --strict)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// No doc comments on the variants: they would replace each command's own long help.
pub enum Command {
    Convert(ConvertArgs),
    Serve(ServeArgs),
    Check(crate::check::CheckArgs),
    MockUpstream(MockArgs),
}

#[derive(Debug, Args)]
#[command(
    about = "Run a deterministic upstream that speaks both dialects, for tests, demos and benchmarks",
    long_about = "Serves POST /v1/messages (Anthropic), POST /v1/chat/completions (OpenAI), \
/v1/messages/count_tokens and /v1/models under any path prefix, with fixed answers. A token \
`mock:<scenario>` in the last user message (or the header x-mock-scenario) picks the behaviour: \
text, echo, tool, parallel_tools, thinking, thinking_redacted, cache, max_tokens, stop_sequence, \
error:<status>, fail_key:<key>, fail_key_529:<key>, midstream_error, truncate, slow:<ms>, stall, \
html, bad_json, reset. GET /_mock/requests lists what it received.",
    after_help = "Example:\n  \
a2o mock-upstream --port 8080 &\n  \
a2o serve --upstream http://127.0.0.1:8080 --upstream-protocol openai"
)]
pub struct MockArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free port; the address is printed)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// OpenAI Chat Completions
    Openai,
    /// Anthropic Messages
    Anthropic,
}

impl From<DialectArg> for Dialect {
    fn from(arg: DialectArg) -> Self {
        match arg {
            DialectArg::Openai => Dialect::OpenAi,
            DialectArg::Anthropic => Dialect::Anthropic,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A request body (POST /v1/chat/completions or /v1/messages)
    Request,
    /// A non-streaming response body
    Response,
    /// An error body
    Error,
    /// An SSE transcript (text/event-stream), converted live event by event
    Stream,
}

#[derive(Debug, Args)]
#[command(
    about = "Convert one document or SSE stream from one dialect to the other",
    long_about = "Reads one document in the --from dialect on stdin (or --input) and writes the \
other dialect's form on stdout (or --output). Losses (fields dropped, approximated or \
synthesised) go to stderr as JSON lines {\"path\",\"kind\",\"reason\"}; a lossless conversion \
prints nothing there. Streams are converted incrementally and flushed after every event.",
    after_help = "Examples:\n  \
a2o convert request --from openai < chat-request.json\n  \
a2o convert response --from anthropic --request chat-request.json < messages-response.json\n  \
a2o convert error --from anthropic --status 529 < overloaded.json\n  \
curl -sN $URL -d @req.json | a2o convert stream --from anthropic --request chat-request.json\n\n\
--request is the client's original request, in the dialect being converted TO: it restores \
shortened tool names and carries stream_options.include_usage.\n\n\
Exit codes: 0 converted; 2 malformed input (the message names the JSON path) or, with \
--strict, any loss."
)]
pub struct ConvertArgs {
    /// What the input is
    #[arg(value_enum)]
    pub kind: KindArg,
    /// The dialect of the input; the output is the other one
    #[arg(long, value_enum)]
    pub from: DialectArg,
    /// Read the input from FILE instead of stdin
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write the output to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Pretty-print JSON output (documents only)
    #[arg(long)]
    pub pretty: bool,
    /// Exit 2 if anything was lost in the conversion
    #[arg(long)]
    pub strict: bool,
    /// The client's original request, in the target dialect (responses, errors, streams)
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// HTTP status of an error body (errors only); the mapped status is printed on stderr
    #[arg(long, value_name = "CODE")]
    pub status: Option<u16>,
    /// max_tokens for Anthropic-bound requests that have none
    #[arg(long, env = "DEFAULT_MAX_TOKENS", default_value_t = crate::convert::DEFAULT_MAX_TOKENS, value_name = "N")]
    pub default_max_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

/// Which OpenAI field carries the output limit of a request translated from Anthropic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    /// `max_tokens` for upstreams known to ignore `max_completion_tokens` (api.deepseek.com),
    /// `max_completion_tokens` for every other
    Auto,
    /// Always `max_tokens` (older OpenAI-compatible servers)
    #[value(name = "max_tokens", alias = "max-tokens")]
    MaxTokens,
    /// Always `max_completion_tokens` (the current OpenAI field)
    #[value(name = "max_completion_tokens", alias = "max-completion-tokens")]
    MaxCompletionTokens,
}

/// Parses the boolean spellings `.env` files use: true/false, 1/0, yes/no, on/off.
fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("`{other}` is not a boolean (use true or false)")),
    }
}

fn parse_seconds(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!("`{value}` is not a positive number of seconds")),
    }
}

#[derive(Debug, Args)]
#[command(
    about = "Run the proxies: an Anthropic front and an OpenAI front in front of one upstream",
    long_about = "Runs two HTTP fronts. Each serves POST /v1/messages (Anthropic Messages) and POST \
/v1/chat/completions (OpenAI Chat Completions), plus /v1/messages/count_tokens, /v1/models, \
/health and /. Requests in the upstream's dialect pass through byte for byte; the others are \
translated both ways, streams included.\n\n\
Keys come from the client (Authorization: Bearer or x-api-key) and are sent upstream in the \
upstream's header. A comma-separated list is a key pool: requests rotate round robin and fail \
over to the next key on 401/403/429/529/5xx before any byte reaches the client.\n\n\
Settings come from flags, then environment variables, then a .env file in the working \
directory, then defaults.",
    after_help = "Examples:\n  \
a2o serve\n      Anthropic clients on :9998 and OpenAI clients on :9999, upstream https://anyrouter.top (Anthropic)\n  \
a2o serve --upstream https://api.deepseek.com --upstream-protocol openai\n      Claude Code (ANTHROPIC_BASE_URL=http://localhost:9998) on an OpenAI-compatible upstream\n  \
HOST=127.0.0.1 PORT=0 OPENAI_PROXY_PORT=0 a2o serve\n      loopback only, free ports (printed on startup)"
)]
pub struct ServeArgs {
    /// YAML config file: LiteLLM-style model_list and master_key, plus an `a2o:` section
    #[arg(long, env = "A2O_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective settings (secrets masked) and exit
    #[arg(long)]
    pub print_config: bool,
    /// Address to listen on [default: 0.0.0.0]
    #[arg(long, env = "HOST")]
    pub host: Option<String>,
    /// Port of the Anthropic front; 0 picks a free port [default: 9998]
    #[arg(long, env = "PORT")]
    pub anthropic_port: Option<u16>,
    /// Port of the OpenAI front; 0 picks a free port [default: 9999]
    #[arg(long, env = "OPENAI_PROXY_PORT")]
    pub openai_port: Option<u16>,
    /// Upstream base URL, may carry a path prefix (http://host/api) [default: https://anyrouter.top]
    #[arg(long, env = "ANYROUTER_BASE_URL")]
    pub upstream: Option<String>,
    /// Dialect the upstream speaks [default: anthropic]
    #[arg(long, env = "A2O_UPSTREAM_PROTOCOL", value_enum)]
    pub upstream_protocol: Option<DialectArg>,
    /// Seconds allowed for connecting and between upstream bytes, not the whole response [default: 120]
    #[arg(long, env = "HTTP_TIMEOUT", value_parser = parse_seconds, value_name = "SECS")]
    pub http_timeout: Option<f64>,
    /// max_tokens for Anthropic-bound requests that have none [default: 8192]
    #[arg(long, env = "DEFAULT_MAX_TOKENS", value_name = "N")]
    pub default_max_tokens: Option<u64>,
    /// Call the upstream without streaming and synthesise the stream for streaming clients [default: false]
    #[arg(long, env = "FORCE_NON_STREAM", value_parser = parse_bool, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub force_non_stream: Option<bool>,
    /// Largest request body accepted, in bytes [default: 33554432]
    #[arg(long, env = "A2O_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Longest Retry-After honoured before trying the next key, in seconds [default: 10]
    #[arg(long, env = "A2O_MAX_RETRY_WAIT", value_parser = parse_seconds, value_name = "SECS")]
    pub max_retry_wait: Option<f64>,
    /// How long a key that keeps failing is tried last, in seconds [default: 60]
    #[arg(long, env = "A2O_KEY_COOLDOWN", value_parser = parse_seconds, value_name = "SECS")]
    pub key_cooldown: Option<f64>,
    /// On SIGTERM or Ctrl-C, how long in-flight requests may take to finish, in seconds [default: 10]
    #[arg(long, env = "A2O_SHUTDOWN_GRACE", value_parser = parse_seconds, value_name = "SECS")]
    pub shutdown_grace: Option<f64>,
    /// Log line format [default: text]
    #[arg(long, env = "A2O_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Also log request bodies (never keys)
    #[arg(long)]
    pub log_bodies: bool,
    /// Serve Prometheus metrics at GET /metrics on both fronts [default: false]
    #[arg(long, env = "A2O_METRICS", value_parser = parse_bool, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub metrics: Option<bool>,
    /// OpenAI field for the output limit of requests translated from Anthropic [default: auto]
    #[arg(long, env = "A2O_MAX_TOKENS_FIELD", value_enum)]
    pub max_tokens_field: Option<MaxTokensField>,
    /// Worker threads for the proxy; 0 means half the CPUs, at least 1 (a proxy leaves the
    /// rest to the kernel's network work and the upstream) [default: 0]
    #[arg(long, env = "A2O_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// Don't read .env from the working directory
    #[arg(long)]
    pub no_dotenv: bool,
}
