//! The symmetric tables both directions share: stop/finish reasons, error types and statuses,
//! reasoning effort and thinking budgets, tool-name shortening, and a stable short hash. Each
//! table lives here once so that the two directions cannot drift apart.

use std::borrow::Cow;
use std::collections::HashMap;

/// Anthropic `stop_reason` → OpenAI `finish_reason`. The flag says whether the mapping is exact
/// (false means the reason was approximated and should be reported).
pub fn finish_reason_for(stop_reason: &str) -> (&'static str, bool) {
    match stop_reason {
        "end_turn" => ("stop", true),
        "stop_sequence" => ("stop", true),
        "max_tokens" => ("length", true),
        "tool_use" => ("tool_calls", true),
        "refusal" => ("content_filter", true),
        "model_context_window_exceeded" => ("length", false),
        // The server paused a long server-tool turn; the client is expected to send it back.
        "pause_turn" => ("stop", false),
        _ => ("stop", false),
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason`, given whether the message made tool
/// calls (an upstream that says `stop` while calling tools would make an agent stop).
pub fn stop_reason_for(finish_reason: &str, has_tool_calls: bool) -> (&'static str, bool) {
    if has_tool_calls {
        return (
            "tool_use",
            matches!(finish_reason, "tool_calls" | "function_call" | "stop"),
        );
    }
    match finish_reason {
        "stop" => ("end_turn", true),
        "length" => ("max_tokens", true),
        "tool_calls" | "function_call" => ("tool_use", true),
        "content_filter" => ("refusal", true),
        _ => ("end_turn", false),
    }
}

/// The Anthropic error type for an HTTP status.
pub fn anthropic_error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        s if (400..500).contains(&s) => "invalid_request_error",
        _ => "api_error",
    }
}

/// The usual HTTP status of an Anthropic error type.
pub fn status_for_anthropic_error_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// OpenAI `error.type` and `error.code` for an Anthropic error type, as OpenAI itself words
/// them (so SDK users see familiar values).
pub fn openai_error_for_anthropic_type(kind: &str) -> (&'static str, Option<&'static str>) {
    match kind {
        "invalid_request_error" => ("invalid_request_error", None),
        "authentication_error" => ("invalid_request_error", Some("invalid_api_key")),
        "billing_error" => ("insufficient_quota", Some("insufficient_quota")),
        "permission_error" => ("invalid_request_error", Some("permission_denied")),
        "not_found_error" => ("invalid_request_error", Some("not_found")),
        "request_too_large" => ("invalid_request_error", Some("request_too_large")),
        "rate_limit_error" => ("rate_limit_error", Some("rate_limit_exceeded")),
        "timeout_error" => ("timeout_error", Some("timeout")),
        "overloaded_error" => ("server_error", Some("overloaded")),
        _ => ("server_error", None),
    }
}

/// The OpenAI-facing status for an Anthropic status: 529 (overloaded) is not a status OpenAI
/// clients know, and their SDKs retry 503.
pub fn openai_status_for(anthropic_status: u16) -> u16 {
    match anthropic_status {
        529 => 503,
        s => s,
    }
}

/// The Anthropic-facing status for an OpenAI status: 503 means overloaded, which Anthropic
/// clients know as 529.
pub fn anthropic_status_for(openai_status: u16) -> u16 {
    match openai_status {
        503 => 529,
        s => s,
    }
}

/// Thinking budget for an OpenAI `reasoning_effort`. `None` means "no thinking".
pub fn thinking_budget_for_effort(effort: &str) -> Option<Option<u64>> {
    match effort {
        "none" => Some(None),
        "minimal" => Some(Some(1024)),
        "low" => Some(Some(2048)),
        "medium" => Some(Some(8192)),
        "high" => Some(Some(16384)),
        "xhigh" => Some(Some(32768)),
        _ => None,
    }
}

/// OpenAI `reasoning_effort` for an Anthropic thinking budget; the inverse of
/// [`thinking_budget_for_effort`] on `low`, `medium`, `high` and `xhigh`.
pub fn effort_for_thinking_budget(budget: u64) -> &'static str {
    match budget {
        0..=4095 => "low",
        4096..=16383 => "medium",
        16384..=32767 => "high",
        _ => "xhigh",
    }
}

/// Anthropic's smallest allowed thinking budget.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// Longest tool name OpenAI accepts.
pub const MAX_TOOL_NAME_LEN: usize = 64;

fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A tool name both APIs accept (`^[a-zA-Z0-9_-]{1,64}$`). Valid names are returned as they
/// are. Others have invalid characters replaced by `_`, are cut to 55 bytes, and get `_` plus 8
/// hex digits of a hash of the original name, so the result is deterministic and distinct
/// names stay distinct.
pub fn target_tool_name(name: &str) -> Cow<'_, str> {
    if is_valid_tool_name(name) {
        return Cow::Borrowed(name);
    }
    let mut short: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TOOL_NAME_LEN - 9)
        .collect();
    short.push('_');
    short.push_str(&format!("{:08x}", stable_hash(name.as_bytes()) as u32));
    Cow::Owned(short)
}

/// Restores tool names that [`target_tool_name`] shortened, from the original request's tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolNames {
    originals: HashMap<String, String>,
}

impl ToolNames {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut originals = HashMap::new();
        for name in names {
            if let Cow::Owned(short) = target_tool_name(name) {
                originals.insert(short, name.to_owned());
            }
        }
        Self { originals }
    }

    /// The client's name for a name the upstream used.
    pub fn restore<'a>(&'a self, name: &'a str) -> &'a str {
        self.originals.get(name).map(String::as_str).unwrap_or(name)
    }

    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }
}

/// 64-bit FNV-1a: stable across platforms and releases, which `std`'s hashers are not.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_finish_reasons_round_trip() {
        for stop in ["end_turn", "max_tokens", "tool_use", "refusal"] {
            let (finish, exact) = finish_reason_for(stop);
            assert!(exact);
            assert_eq!(stop_reason_for(finish, stop == "tool_use").0, stop);
        }
        for finish in ["stop", "length", "tool_calls", "content_filter"] {
            let (stop, exact) = stop_reason_for(finish, finish == "tool_calls");
            assert!(exact);
            assert_eq!(finish_reason_for(stop).0, finish);
        }
        assert_eq!(stop_reason_for("stop", true), ("tool_use", true));
    }

    #[test]
    fn error_types_and_statuses_round_trip() {
        for status in [400, 401, 402, 403, 404, 413, 429, 500, 504, 529] {
            let kind = anthropic_error_type_for_status(status);
            assert_eq!(status_for_anthropic_error_type(kind), status, "{kind}");
        }
        assert_eq!(openai_status_for(529), 503);
        assert_eq!(anthropic_status_for(503), 529);
        assert_eq!(anthropic_status_for(openai_status_for(429)), 429);
    }

    #[test]
    fn efforts_and_budgets_round_trip() {
        for effort in ["low", "medium", "high", "xhigh"] {
            let budget = thinking_budget_for_effort(effort).unwrap().unwrap();
            assert_eq!(effort_for_thinking_budget(budget), effort);
        }
    }

    #[test]
    fn tool_names_shorten_deterministically_and_restore() {
        assert_eq!(target_tool_name("get_weather"), "get_weather");
        let long = "mcp__a_very_long_server_name_for_testing__and_an_even_longer_tool_name_here";
        let short = target_tool_name(long);
        assert!(short.len() <= 64 && is_valid_tool_name(&short), "{short}");
        assert_eq!(short, target_tool_name(long));
        let dotted = target_tool_name("files.read");
        assert!(dotted.starts_with("files_read_"), "{dotted}");
        assert_ne!(
            target_tool_name("files.read"),
            target_tool_name("files:read")
        );
        let names = ToolNames::from_names([long, "files.read", "ok"]);
        assert_eq!(names.restore(&short), long);
        assert_eq!(names.restore(&dotted), "files.read");
        assert_eq!(names.restore("ok"), "ok");
    }
}
