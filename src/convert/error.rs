//! Error bodies between the dialects, with their HTTP statuses, and error bodies made from
//! scratch for a2o's own failures. An OpenAI client always gets
//! `{"error":{"message","type","param","code"}}`; an Anthropic client always gets
//! `{"type":"error","error":{"type","message"}}`. Statuses follow [`vocab`]: 529 (overloaded)
//! is 503 for OpenAI clients and the other way round; everything else keeps its status.

use serde_json::Value;

use super::{vocab, Losses};
use crate::protocol::{anthropic, openai, Extra};

/// Every error type the Anthropic API documents.
const ANTHROPIC_ERROR_TYPES: [&str; 10] = [
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
];

/// The OpenAI type and code of a spent quota. OpenAI sends it with status 429, which
/// Anthropic would call a rate limit; it is a billing problem, and retrying will not help.
const INSUFFICIENT_QUOTA: &str = "insufficient_quota";

/// OpenAI error (from an OpenAI upstream) → Anthropic error, with the status to answer with.
/// The Anthropic type comes from the status; when the status is no HTTP error status (0 for an
/// in-band stream error), from the OpenAI type and code instead.
pub fn openai_to_anthropic(
    status: u16,
    body: openai::ErrorBody,
    losses: &mut Losses,
) -> (u16, anthropic::ErrorBody) {
    let openai::ErrorBody { error, extra } = body;
    let openai::ErrorDetail {
        message,
        kind,
        param,
        code,
        extra: detail_extra,
    } = error;
    let code_text = code.as_ref().and_then(Value::as_str);

    let quota =
        kind.as_deref() == Some(INSUFFICIENT_QUOTA) || code_text == Some(INSUFFICIENT_QUOTA);
    let (anthropic_kind, target_status) = match (quota, is_error_status(status)) {
        (true, true) => ("billing_error", vocab::anthropic_status_for(status)),
        (true, false) => ("billing_error", 429),
        (false, true) => (
            vocab::anthropic_error_type_for_status(status),
            vocab::anthropic_status_for(status),
        ),
        (false, false) => {
            let inferred = anthropic_type_for_openai(kind.as_deref(), code_text);
            (inferred, vocab::status_for_anthropic_error_type(inferred))
        }
    };

    // Report only what the Anthropic type does not already say: the type and code an
    // Anthropic → OpenAI conversion would give back are implied.
    let (implied_kind, implied_code) = vocab::openai_error_for_anthropic_type(anthropic_kind);
    if let Some(kind) = kind.filter(|kind| kind != implied_kind) {
        losses.approximated(
            "/error/type",
            format!("OpenAI error type `{kind}` sent as `{anthropic_kind}`"),
        );
    }
    match &code {
        None | Some(Value::Null) => {}
        Some(Value::String(code)) if Some(code.as_str()) == implied_code => {}
        Some(code) => losses.dropped(
            "/error/code",
            format!("Anthropic errors have no code ({code})"),
        ),
    }
    if let Some(param) = param.filter(|param| !param.is_null()) {
        losses.dropped(
            "/error/param",
            format!("Anthropic errors do not name the parameter ({param})"),
        );
    }
    losses.dropped_extra("/error", &detail_extra, "Anthropic");
    losses.dropped_extra("", &extra, "Anthropic");

    let body = anthropic::ErrorBody {
        kind: "error".to_owned(),
        error: anthropic::ErrorDetail {
            kind: anthropic_kind.to_owned(),
            message,
            extra: Extra::new(),
        },
        request_id: None,
        extra: Extra::new(),
    };
    (target_status, body)
}

/// Anthropic error (from an Anthropic upstream) → OpenAI error, with the status to answer with.
/// The message is kept verbatim; type and code come from the Anthropic type.
pub fn anthropic_to_openai(
    status: u16,
    body: anthropic::ErrorBody,
    losses: &mut Losses,
) -> (u16, openai::ErrorBody) {
    // The top-level `type` is always "error".
    let anthropic::ErrorBody {
        kind: _,
        error,
        request_id,
        extra,
    } = body;
    let anthropic::ErrorDetail {
        kind,
        message,
        extra: detail_extra,
    } = error;

    let anthropic_kind = if ANTHROPIC_ERROR_TYPES.contains(&kind.as_str()) {
        kind.as_str()
    } else {
        let from_status = vocab::anthropic_error_type_for_status(if is_error_status(status) {
            status
        } else {
            500
        });
        losses.approximated(
            "/error/type",
            format!(
                "unknown Anthropic error type `{kind}`; typed as `{from_status}` from the status"
            ),
        );
        from_status
    };
    let target_status = vocab::openai_status_for(if is_error_status(status) {
        status
    } else {
        vocab::status_for_anthropic_error_type(anthropic_kind)
    });
    let (openai_kind, openai_code) = vocab::openai_error_for_anthropic_type(anthropic_kind);

    if let Some(request_id) = request_id {
        losses.dropped(
            "/request_id",
            format!("OpenAI error bodies have no request id ({request_id})"),
        );
    }
    losses.dropped_extra("/error", &detail_extra, "OpenAI");
    losses.dropped_extra("", &extra, "OpenAI");

    let body = openai::ErrorBody {
        error: openai::ErrorDetail {
            message,
            kind: Some(openai_kind.to_owned()),
            param: None,
            code: openai_code.map(|code| Value::String(code.to_owned())),
            extra: Extra::new(),
        },
        extra: Extra::new(),
    };
    (target_status, body)
}

/// Builds an error body from scratch in each dialect (for a2o's own errors: bad JSON, missing
/// key, upstream unreachable…). Type and code come from the status, as [`anthropic_to_openai`]
/// would give them.
pub fn openai_error(
    status: u16,
    message: impl Into<String>,
    param: Option<String>,
) -> openai::ErrorBody {
    let (kind, code) =
        vocab::openai_error_for_anthropic_type(vocab::anthropic_error_type_for_status(status));
    openai::ErrorBody {
        error: openai::ErrorDetail {
            message: message.into(),
            kind: Some(kind.to_owned()),
            param: param.map(Value::String),
            code: code.map(|code| Value::String(code.to_owned())),
            extra: Extra::new(),
        },
        extra: Extra::new(),
    }
}

/// The Anthropic counterpart of [`openai_error`]: the type comes from the status.
pub fn anthropic_error(status: u16, message: impl Into<String>) -> anthropic::ErrorBody {
    anthropic::ErrorBody {
        kind: "error".to_owned(),
        error: anthropic::ErrorDetail {
            kind: vocab::anthropic_error_type_for_status(status).to_owned(),
            message: message.into(),
            extra: Extra::new(),
        },
        request_id: None,
        extra: Extra::new(),
    }
}

fn is_error_status(status: u16) -> bool {
    (400..=599).contains(&status)
}

/// The Anthropic type for an OpenAI error that came without a status, from how OpenAI (and
/// compatible servers) spell types and codes.
fn anthropic_type_for_openai(kind: Option<&str>, code: Option<&str>) -> &'static str {
    match (kind.unwrap_or(""), code.unwrap_or("")) {
        (_, "invalid_api_key") | ("authentication_error", _) => "authentication_error",
        (_, "rate_limit_exceeded") | ("rate_limit_error" | "requests" | "tokens", _) => {
            "rate_limit_error"
        }
        (_, "model_not_found" | "not_found") | ("not_found_error", _) => "not_found_error",
        (_, "permission_denied") | ("permission_error", _) => "permission_error",
        (_, "request_too_large") => "request_too_large",
        (_, "timeout") | ("timeout_error", _) => "timeout_error",
        (_, "overloaded") | ("overloaded_error", _) => "overloaded_error",
        ("invalid_request_error", _) => "invalid_request_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::convert::LossKind;

    fn kinds(losses: &Losses) -> Vec<(String, LossKind)> {
        losses
            .iter()
            .map(|loss| (loss.path.clone(), loss.kind))
            .collect()
    }

    fn from_openai(status: u16, body: Value) -> (u16, Value, Losses) {
        let mut losses = Losses::new();
        let parsed: openai::ErrorBody = serde_json::from_value(body).expect("valid error");
        let (status, out) = openai_to_anthropic(status, parsed, &mut losses);
        (status, serde_json::to_value(out).expect("json"), losses)
    }

    fn from_anthropic(status: u16, body: Value) -> (u16, Value, Losses) {
        let mut losses = Losses::new();
        let parsed: anthropic::ErrorBody = serde_json::from_value(body).expect("valid error");
        let (status, out) = anthropic_to_openai(status, parsed, &mut losses);
        (status, serde_json::to_value(out).expect("json"), losses)
    }

    #[test]
    fn anthropic_errors_for_every_status() {
        let cases = [
            (
                400,
                "invalid_request_error",
                400,
                "invalid_request_error",
                None,
            ),
            (
                401,
                "authentication_error",
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
            (
                402,
                "billing_error",
                402,
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
            (
                403,
                "permission_error",
                403,
                "invalid_request_error",
                Some("permission_denied"),
            ),
            (
                404,
                "not_found_error",
                404,
                "invalid_request_error",
                Some("not_found"),
            ),
            (
                413,
                "request_too_large",
                413,
                "invalid_request_error",
                Some("request_too_large"),
            ),
            (
                429,
                "rate_limit_error",
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
            ),
            (500, "api_error", 500, "server_error", None),
            (
                503,
                "overloaded_error",
                503,
                "server_error",
                Some("overloaded"),
            ),
            (504, "timeout_error", 504, "timeout_error", Some("timeout")),
            (
                529,
                "overloaded_error",
                503,
                "server_error",
                Some("overloaded"),
            ),
        ];
        for (status, anthropic_kind, openai_status, openai_kind, code) in cases {
            let body = json!({"type": "error", "error": {"type": anthropic_kind, "message": "Something failed."}});
            let (out_status, out, losses) = from_anthropic(status, body);
            assert_eq!(out_status, openai_status, "{status}");
            assert_eq!(
                out,
                json!({"error": {"message": "Something failed.", "type": openai_kind, "param": null, "code": code}}),
                "{status}"
            );
            assert!(losses.is_empty(), "{status}: {losses:?}");
        }
    }

    #[test]
    fn anthropic_request_id_is_reported() {
        let (status, out, losses) = from_anthropic(
            401,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}, "request_id": "req_011CSJrv33Y2raiyrw3y3K2m"}),
        );
        assert_eq!(status, 401);
        assert_eq!(out["error"]["message"], "invalid x-api-key");
        assert_eq!(
            kinds(&losses),
            [("/request_id".to_owned(), LossKind::Dropped)]
        );
        assert!(losses
            .iter()
            .next()
            .is_some_and(|loss| loss.reason.contains("req_011CSJrv33Y2raiyrw3y3K2m")));
    }

    #[test]
    fn unknown_anthropic_type_and_status() {
        let (status, out, losses) = from_anthropic(
            409,
            json!({"type": "error", "error": {"type": "conflict_error", "message": "Busy."}}),
        );
        assert_eq!(
            (status, &out["error"]["type"]),
            (409, &json!("invalid_request_error"))
        );
        assert_eq!(
            kinds(&losses),
            [("/error/type".to_owned(), LossKind::Approximated)]
        );

        // An in-band stream error has no status: the type decides.
        let (status, out, _) = from_anthropic(
            0,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        assert_eq!((status, &out["error"]["code"]), (503, &json!("overloaded")));
    }

    #[test]
    fn openai_errors_for_every_status() {
        let cases = [
            (
                400,
                "invalid_request_error",
                None,
                400,
                "invalid_request_error",
            ),
            (
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                401,
                "authentication_error",
            ),
            (
                403,
                "invalid_request_error",
                Some("permission_denied"),
                403,
                "permission_error",
            ),
            (
                404,
                "invalid_request_error",
                Some("not_found"),
                404,
                "not_found_error",
            ),
            (
                413,
                "invalid_request_error",
                Some("request_too_large"),
                413,
                "request_too_large",
            ),
            (
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                429,
                "rate_limit_error",
            ),
            (500, "server_error", None, 500, "api_error"),
            (
                503,
                "server_error",
                Some("overloaded"),
                529,
                "overloaded_error",
            ),
            (
                529,
                "server_error",
                Some("overloaded"),
                529,
                "overloaded_error",
            ),
        ];
        for (status, openai_kind, code, anthropic_status, anthropic_kind) in cases {
            let body = json!({"error": {"message": "Something failed.", "type": openai_kind, "param": null, "code": code}});
            let (out_status, out, losses) = from_openai(status, body);
            assert_eq!(out_status, anthropic_status, "{status}");
            assert_eq!(
                out,
                json!({"type": "error", "error": {"type": anthropic_kind, "message": "Something failed."}}),
                "{status}"
            );
            assert!(losses.is_empty(), "{status}: {losses:?}");
        }
    }

    #[test]
    fn insufficient_quota_both_ways() {
        let (status, out, losses) = from_openai(
            429,
            json!({"error": {"message": "You exceeded your current quota.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}),
        );
        assert_eq!(status, 429);
        assert_eq!(
            out,
            json!({"type": "error", "error": {"type": "billing_error", "message": "You exceeded your current quota."}})
        );
        assert!(losses.is_empty(), "{losses:?}");

        let (status, out, losses) = from_anthropic(
            402,
            json!({"type": "error", "error": {"type": "billing_error", "message": "Your credit balance is too low."}}),
        );
        assert_eq!(status, 402);
        assert_eq!(
            out,
            json!({"error": {"message": "Your credit balance is too low.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}})
        );
        assert!(losses.is_empty(), "{losses:?}");

        // Without a status, a spent quota still answers 429, as OpenAI does.
        let (status, out, _) = from_openai(
            0,
            json!({"error": {"message": "Quota.", "type": "insufficient_quota"}}),
        );
        assert_eq!(
            (status, &out["error"]["type"]),
            (429, &json!("billing_error"))
        );
    }

    #[test]
    fn openai_param_code_and_type_are_reported_unless_implied() {
        let (status, out, losses) = from_openai(
            400,
            json!({"error": {"code": "unsupported_value", "message": "Unsupported value: 'messages[0].role' does not support 'system' with this model.", "param": "messages[0].role", "type": "invalid_request_error"}}),
        );
        assert_eq!(
            (status, &out["error"]["type"]),
            (400, &json!("invalid_request_error"))
        );
        assert_eq!(
            kinds(&losses),
            [
                ("/error/code".to_owned(), LossKind::Dropped),
                ("/error/param".to_owned(), LossKind::Dropped)
            ]
        );

        let (_, out, losses) = from_openai(
            429,
            json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}, "trace": "x"}),
        );
        assert_eq!(out["error"]["type"], "rate_limit_error");
        assert_eq!(
            kinds(&losses),
            [
                ("/error/type".to_owned(), LossKind::Approximated),
                ("/trace".to_owned(), LossKind::Dropped)
            ]
        );
    }

    #[test]
    fn openai_error_without_status_uses_the_type() {
        for (kind, code, status, anthropic_kind) in [
            (
                "invalid_request_error",
                "invalid_api_key",
                401,
                "authentication_error",
            ),
            (
                "invalid_request_error",
                "model_not_found",
                404,
                "not_found_error",
            ),
            ("tokens", "rate_limit_exceeded", 429, "rate_limit_error"),
            ("server_error", "", 500, "api_error"),
            ("invalid_request_error", "", 400, "invalid_request_error"),
        ] {
            let code = if code.is_empty() {
                Value::Null
            } else {
                json!(code)
            };
            let (out_status, out, _) = from_openai(
                0,
                json!({"error": {"message": "m", "type": kind, "param": null, "code": code}}),
            );
            assert_eq!(
                (out_status, &out["error"]["type"]),
                (status, &json!(anthropic_kind)),
                "{kind}/{code}"
            );
        }
    }

    #[test]
    fn errors_from_scratch() {
        assert_eq!(
            serde_json::to_value(openai_error(400, "bad JSON", Some("messages".to_owned())))
                .expect("json"),
            json!({"error": {"message": "bad JSON", "type": "invalid_request_error", "param": "messages", "code": null}})
        );
        assert_eq!(
            serde_json::to_value(openai_error(401, "missing key", None)).expect("json"),
            json!({"error": {"message": "missing key", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
        );
        assert_eq!(
            serde_json::to_value(openai_error(502, "upstream unreachable", None)).expect("json"),
            json!({"error": {"message": "upstream unreachable", "type": "server_error", "param": null, "code": null}})
        );
        assert_eq!(
            serde_json::to_value(anthropic_error(529, "Overloaded")).expect("json"),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        );
        assert_eq!(
            serde_json::to_value(anthropic_error(502, "upstream unreachable")).expect("json"),
            json!({"type": "error", "error": {"type": "api_error", "message": "upstream unreachable"}})
        );
    }
}
