//! The `a2o check` command line, with help that teaches by example. Parsing only; `run` in
//! the parent module checks the combinations and does the work.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cli::DialectArg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MatchArg {
    /// Equal after normalising ids, timestamps and fingerprints
    Exact,
    /// Same structure: types, keys, event order, blocks, tools and stop reasons; text and
    /// token counts ignored (for live targets)
    Shape,
}

#[derive(Debug, Args)]
#[command(
    about = "Check that an endpoint behaves like the real API, or explain why a saved response breaks an SDK",
    long_about = "Runs conformance cases against an endpoint (a2o serve, a relay such as AnyRouter, or any \
OpenAI- or Anthropic-compatible server) and reports what differs. A case is a JSON file: a request, \
the response expected, and how to compare them (`exact` after normalising ids and timestamps, or \
`shape`: structure only, for live models whose text varies). Every response is also checked \
against its dialect's grammar, streams event by event. The format is documented in \
conformance/README.md.\n\n\
Each case's request path is appended to the target URL. A case is for the OpenAI front \
(/v1/chat/completions) or the Anthropic front (/v1/messages…, or its `front` field); \
--target-openai and --target-anthropic send each kind to its own base URL, --target to both.\n\n\
The key is read from the variable named by --api-key-env and fills the `${A2O_CHECK_API_KEY}` \
placeholders of the cases; other `${NAME}` placeholders read the variable NAME. Secrets never \
appear in the output, reports or recorded files: they are printed as their placeholder.",
    after_help = "Examples:\n  \
a2o check --list --tag tools\n      the cases tagged `tools`, without running them\n  \
A2O_CHECK_API_KEY=sk-... a2o check conformance/anthropic-front/anthropic-upstream --target http://127.0.0.1:9998\n  \
a2o check --target-openai http://127.0.0.1:9999 --target-anthropic http://127.0.0.1:9998 \\\n      \
--id openai-front/anthropic-upstream --id anthropic-front/anthropic-upstream --jobs 8\n  \
a2o check --tag live --match shape --target https://anyrouter.top --api-key-env ANYROUTER_KEY \\\n      \
--report junit check.xml\n  \
a2o check --tag live --target https://anyrouter.top --record recorded/\n      \
write what the relay answers today as new `shape` cases\n  \
curl -sN $URL -d @req.json | a2o check --validate - --dialect anthropic\n      \
why does my SDK choke on this stream? (the first grammar violation, in words)\n\n\
Exit codes: 0 every selected `must` case passed (and `should`, with --strict); 1 a case \
failed (or --validate found a violation); 2 the check could not run (bad case file, no \
target, key variable unset, target unreachable for every case)."
)]
pub struct CheckArgs {
    /// Case files or directories (searched recursively for *.json)
    #[arg(value_name = "PATH", default_value = "conformance")]
    pub paths: Vec<PathBuf>,
    /// Base URL every case is sent to, unless a front has its own below
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Base URL for OpenAI-front cases (POST /v1/chat/completions …)
    #[arg(long, value_name = "URL")]
    pub target_openai: Option<String>,
    /// Base URL for Anthropic-front cases (POST /v1/messages …)
    #[arg(long, value_name = "URL")]
    pub target_anthropic: Option<String>,
    /// Run only cases whose id starts with PREFIX, in whole segments (repeatable)
    #[arg(long = "id", value_name = "PREFIX")]
    pub ids: Vec<String>,
    /// Run only cases with TAG (repeatable: any of them)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Print the selected cases and exit without running them
    #[arg(long)]
    pub list: bool,
    /// How many cases run at the same time
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Seconds one case may take, from sending the request to the end of the response
    #[arg(long, default_value = "60", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: f64,
    /// The environment variable holding the API key (a comma-separated list is a key pool)
    #[arg(long, default_value = "A2O_CHECK_API_KEY", value_name = "NAME")]
    pub api_key_env: String,
    /// Also fail the run when a `should` case fails
    #[arg(long)]
    pub strict: bool,
    /// Compare every case this way, whatever its file says (`shape` for live targets)
    #[arg(long = "match", value_enum, value_name = "MODE")]
    pub match_mode: Option<MatchArg>,
    /// Write a report: `junit FILE` or `json FILE` (repeatable)
    #[arg(long, num_args = 2, value_names = ["FORMAT", "FILE"], action = clap::ArgAction::Append)]
    pub report: Vec<String>,
    /// Record the target's answers as new `shape` cases tagged `live` under DIR
    #[arg(long, value_name = "DIR", conflicts_with_all = ["bless", "list"])]
    pub record: Option<PathBuf>,
    /// Rewrite the selected cases' expectations in place from the target's answers (for a
    /// deterministic target such as the mock upstream; review the diff)
    #[arg(long, conflicts_with = "list")]
    pub bless: bool,
    /// Validate one saved response (`.sse` stream or JSON; `-` for stdin) against --dialect
    /// and explain the first grammar violation
    #[arg(long, value_name = "FILE", requires = "dialect",
          conflicts_with_all = ["list", "record", "bless", "target", "target_openai", "target_anthropic", "ids", "tags"])]
    pub validate: Option<PathBuf>,
    /// The dialect of the file given to --validate
    #[arg(long, value_enum, requires = "validate")]
    pub dialect: Option<DialectArg>,
}

fn parse_seconds(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!("`{value}` is not a positive number of seconds")),
    }
}
