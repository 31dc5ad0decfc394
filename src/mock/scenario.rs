//! What a request asks the mock to do: the scenario grammar (`mock:<name>` in the last user
//! message, else the `x-mock-scenario` header, else `text`) and the few request fields the
//! answers depend on, read with a borrowed probe so a large body costs one scan and no tree.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One behaviour of the mock, chosen per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    Text,
    Echo,
    Tool,
    ParallelTools,
    Thinking {
        redacted: bool,
    },
    Cache,
    MaxTokens,
    StopSequence,
    /// An error body with this status; `retry_after` in seconds.
    Error {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Requests made with `key` fail with `status`; other keys get the `text` answer.
    FailKey {
        key: String,
        status: u16,
    },
    MidstreamError,
    Truncate,
    Slow(Duration),
    Stall,
    Html,
    BadJson,
    Reset,
}

/// Why a scenario name was refused (answered as a 400 so a typo fails loudly).
#[derive(Debug, thiserror::Error)]
#[error("mock: unknown scenario `{0}` (see src/mock/mod.rs for the list)")]
pub struct UnknownScenario(pub String);

/// Statuses whose errors tell the client to come back later, so they carry `retry-after`.
fn retries_by_default(status: u16) -> bool {
    matches!(status, 429 | 503 | 529)
}

impl Scenario {
    /// Parses a scenario name (without the `mock:` prefix).
    pub fn parse(name: &str) -> Result<Scenario, UnknownScenario> {
        let unknown = || UnknownScenario(name.to_owned());
        let scenario = match name {
            "text" => Scenario::Text,
            "echo" => Scenario::Echo,
            "tool" => Scenario::Tool,
            "parallel_tools" => Scenario::ParallelTools,
            "thinking" => Scenario::Thinking { redacted: false },
            "thinking_redacted" => Scenario::Thinking { redacted: true },
            "cache" => Scenario::Cache,
            "max_tokens" => Scenario::MaxTokens,
            "stop_sequence" => Scenario::StopSequence,
            "midstream_error" => Scenario::MidstreamError,
            "truncate" => Scenario::Truncate,
            "stall" => Scenario::Stall,
            "html" => Scenario::Html,
            "bad_json" => Scenario::BadJson,
            "reset" => Scenario::Reset,
            _ => {
                if let Some(rest) = name.strip_prefix("error:") {
                    let (status, retry) = match rest.split_once(':') {
                        Some((status, retry)) => (status, Some(retry)),
                        None => (rest, None),
                    };
                    let status: u16 = status.parse().map_err(|_| unknown())?;
                    if !(400..=599).contains(&status) {
                        return Err(unknown());
                    }
                    let retry_after = match retry {
                        Some(secs) => Some(secs.parse().map_err(|_| unknown())?),
                        None => retries_by_default(status).then_some(0),
                    };
                    Scenario::Error {
                        status,
                        retry_after,
                    }
                } else if let Some(key) = name.strip_prefix("fail_key_529:") {
                    Scenario::FailKey {
                        key: key.to_owned(),
                        status: 529,
                    }
                } else if let Some(key) = name.strip_prefix("fail_key:") {
                    Scenario::FailKey {
                        key: key.to_owned(),
                        status: 429,
                    }
                } else if let Some(ms) = name.strip_prefix("slow:") {
                    Scenario::Slow(Duration::from_millis(ms.parse().map_err(|_| unknown())?))
                } else {
                    return Err(unknown());
                }
            }
        };
        Ok(scenario)
    }

    /// Settles a key-dependent scenario for the key this request was made with.
    pub fn for_key(self, key: &str) -> Scenario {
        match self {
            Scenario::FailKey {
                key: failing,
                status,
            } if failing == key => Scenario::Error {
                status,
                retry_after: Some(0),
            },
            Scenario::FailKey { .. } => Scenario::Text,
            other => other,
        }
    }
}

/// The first `mock:<name>` token in `text`: a whitespace-separated word starting with `mock:`,
/// with trailing sentence punctuation removed so "please reply mock:tool." works.
pub fn find_token(text: &str) -> Option<&str> {
    text.split_whitespace().find_map(|word| {
        let name = word.strip_prefix("mock:")?;
        let name = name.trim_end_matches(['.', ',', ';', '!', '?', '"', '\'', ')', ']', '}']);
        (!name.is_empty()).then_some(name)
    })
}

/// The request fields the mock reads. Either dialect's shape is accepted on either route
/// (`tools[].name` or `tools[].function.name`), because the mock is a test double, not a
/// validator. Unknown fields are skipped without building values.
#[derive(Debug, Default, Deserialize)]
pub struct RequestProbe<'a> {
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(borrow, default)]
    pub messages: Vec<MessageProbe<'a>>,
    #[serde(borrow, default)]
    pub tools: Option<Vec<ToolProbe<'a>>>,
    #[serde(borrow, default)]
    pub stop_sequences: Option<Vec<Cow<'a, str>>>,
    #[serde(default)]
    pub stream_options: Option<StreamOptionsProbe>,
}

#[derive(Debug, Deserialize)]
pub struct MessageProbe<'a> {
    #[serde(borrow, default)]
    pub role: Cow<'a, str>,
    #[serde(borrow, default)]
    pub content: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct ToolProbe<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub function: Option<FunctionProbe<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct FunctionProbe<'a> {
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptionsProbe {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// A text part of a message (`{"type":"text","text":…}`), either dialect.
#[derive(Deserialize)]
struct PartProbe<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

impl<'a> RequestProbe<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The scenario name written in the last user message, if any.
    pub fn scenario_token(&self) -> Option<String> {
        let last_user = self
            .messages
            .iter()
            .rev()
            .find(|message| message.role == "user")?;
        let content = last_user.content?.get();
        // Content is a string or an array of parts; anything else has no text to search.
        if content.starts_with('"') {
            let text: Cow<'_, str> = serde_json::from_str(content).ok()?;
            find_token(&text).map(str::to_owned)
        } else {
            let parts: Vec<PartProbe<'_>> = serde_json::from_str(content).ok()?;
            parts
                .iter()
                .filter(|part| part.kind.as_deref() == Some("text"))
                .find_map(|part| find_token(part.text.as_deref()?).map(str::to_owned))
        }
    }

    /// Names of the declared tools, in order.
    pub fn tool_names(&self) -> Vec<&str> {
        let Some(tools) = &self.tools else {
            return Vec::new();
        };
        tools
            .iter()
            .filter_map(|tool| {
                tool.name
                    .as_deref()
                    .or_else(|| tool.function.as_ref()?.name.as_deref())
            })
            .collect()
    }

    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or("mock-model")
    }

    pub fn first_stop_sequence(&self) -> Option<&str> {
        self.stop_sequences
            .as_ref()?
            .first()
            .map(|stop| stop.as_ref())
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scenario_name() {
        assert_eq!(Scenario::parse("text").ok(), Some(Scenario::Text));
        assert_eq!(
            Scenario::parse("thinking_redacted").ok(),
            Some(Scenario::Thinking { redacted: true })
        );
        assert_eq!(
            Scenario::parse("error:429").ok(),
            Some(Scenario::Error {
                status: 429,
                retry_after: Some(0)
            })
        );
        assert_eq!(
            Scenario::parse("error:429:2").ok(),
            Some(Scenario::Error {
                status: 429,
                retry_after: Some(2)
            })
        );
        assert_eq!(
            Scenario::parse("error:400").ok(),
            Some(Scenario::Error {
                status: 400,
                retry_after: None
            })
        );
        assert_eq!(
            Scenario::parse("fail_key_529:sk-b").ok(),
            Some(Scenario::FailKey {
                key: "sk-b".into(),
                status: 529
            })
        );
        assert_eq!(
            Scenario::parse("slow:15").ok(),
            Some(Scenario::Slow(Duration::from_millis(15)))
        );
        assert!(Scenario::parse("error:abc").is_err());
        assert!(Scenario::parse("error:200").is_err());
        assert!(Scenario::parse("nonsense").is_err());
    }

    #[test]
    fn token_is_a_whole_word_without_trailing_punctuation() {
        assert_eq!(find_token("please mock:tool."), Some("tool"));
        assert_eq!(find_token("nomock:tool mock:echo"), Some("echo"));
        assert_eq!(find_token("mock: alone"), None);
    }

    #[test]
    fn token_comes_from_the_last_user_message_only() {
        let body = br#"{"messages":[
            {"role":"user","content":"mock:tool"},
            {"role":"assistant","content":"mock:echo"},
            {"role":"user","content":[{"type":"image","source":{}},{"type":"text","text":"hi mock:cache"}]}
        ]}"#;
        let probe = RequestProbe::parse(body).expect("probe");
        assert_eq!(probe.scenario_token().as_deref(), Some("cache"));
    }
}
