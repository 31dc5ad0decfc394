//! Whole-document conversion on bytes, as `a2o convert` and the golden tests run it: parse the
//! source dialect (errors name the JSON path), convert, and serialise the other dialect.

use crate::convert::{self, ConvertError, Losses, RequestOptions, ResponseContext};
use crate::protocol::{self, anthropic, openai, Dialect, ParseError};

/// Which kind of document is being converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Request,
    Response,
    Error,
}

/// Settings for one document conversion.
#[derive(Debug, Clone, Default)]
pub struct DocumentOptions {
    /// The client's original request (in the target dialect) for responses and errors: it
    /// supplies shortened tool names to restore, the requested model and stop sequences.
    pub request: Option<Vec<u8>>,
    /// HTTP status of an error body; when absent it is inferred from the error's type.
    pub status: Option<u16>,
    pub request_options: RequestOptions,
    /// Pins `created` in OpenAI output (tests); `None` means now.
    pub created: Option<u64>,
    pub pretty: bool,
}

/// A converted document.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The serialised document, ending with a newline.
    pub body: Vec<u8>,
    /// For errors: the status to answer the client with.
    pub status: Option<u16>,
    pub losses: Losses,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("invalid {dialect} {kind}")]
    Parse {
        dialect: &'static str,
        kind: &'static str,
        source: ParseError,
    },
    #[error("invalid --request ({dialect} request expected)")]
    ContextRequest {
        dialect: &'static str,
        source: ParseError,
    },
    #[error("cannot convert")]
    Convert(#[from] ConvertError),
}

fn kind_name(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Request => "request",
        DocumentKind::Response => "response",
        DocumentKind::Error => "error body",
    }
}

fn parse_source<T: serde::de::DeserializeOwned>(
    input: &[u8],
    from: Dialect,
    kind: DocumentKind,
) -> Result<T, PipelineError> {
    protocol::parse(input).map_err(|source| PipelineError::Parse {
        dialect: from.name(),
        kind: kind_name(kind),
        source,
    })
}

/// The response context for output in `client` dialect, from the `--request` document.
pub fn response_context(
    client: Dialect,
    request: Option<&[u8]>,
) -> Result<ResponseContext, PipelineError> {
    let Some(bytes) = request else {
        return Ok(ResponseContext::default());
    };
    let wrap = |source| PipelineError::ContextRequest {
        dialect: client.name(),
        source,
    };
    Ok(match client {
        Dialect::Anthropic => {
            ResponseContext::for_anthropic_client(&protocol::parse(bytes).map_err(wrap)?)
        }
        Dialect::OpenAi => {
            ResponseContext::for_openai_client(&protocol::parse(bytes).map_err(wrap)?)
        }
    })
}

/// Converts one document from `from` to the other dialect.
pub fn convert_document(
    kind: DocumentKind,
    from: Dialect,
    input: &[u8],
    opts: &DocumentOptions,
) -> Result<Converted, PipelineError> {
    let mut losses = Losses::new();
    let mut status = None;
    let body = match (kind, from) {
        (DocumentKind::Request, Dialect::OpenAi) => {
            let req: openai::ChatRequest = parse_source(input, from, kind)?;
            serialise(
                &convert::openai_to_anthropic::request(req, &opts.request_options, &mut losses)?,
                opts.pretty,
            )
        }
        (DocumentKind::Request, Dialect::Anthropic) => {
            let req: anthropic::MessagesRequest = parse_source(input, from, kind)?;
            serialise(
                &convert::anthropic_to_openai::request(req, &opts.request_options, &mut losses)?,
                opts.pretty,
            )
        }
        (DocumentKind::Response, _) => {
            let mut ctx = response_context(from.other(), opts.request.as_deref())?;
            ctx.created = opts.created;
            match from {
                Dialect::OpenAi => {
                    let resp: openai::ChatResponse = parse_source(input, from, kind)?;
                    serialise(
                        &convert::openai_to_anthropic::response(resp, &ctx, &mut losses)?,
                        opts.pretty,
                    )
                }
                Dialect::Anthropic => {
                    let resp: anthropic::MessagesResponse = parse_source(input, from, kind)?;
                    serialise(
                        &convert::anthropic_to_openai::response(resp, &ctx, &mut losses)?,
                        opts.pretty,
                    )
                }
            }
        }
        (DocumentKind::Error, Dialect::OpenAi) => {
            let err: openai::ErrorBody = parse_source(input, from, kind)?;
            let source_status = opts.status.unwrap_or_else(|| openai_status_guess(&err));
            let (target_status, body) =
                convert::error::openai_to_anthropic(source_status, err, &mut losses);
            status = Some(target_status);
            serialise(&body, opts.pretty)
        }
        (DocumentKind::Error, Dialect::Anthropic) => {
            let err: anthropic::ErrorBody = parse_source(input, from, kind)?;
            let source_status = opts.status.unwrap_or_else(|| {
                convert::vocab::status_for_anthropic_error_type(&err.error.kind)
            });
            let (target_status, body) =
                convert::error::anthropic_to_openai(source_status, err, &mut losses);
            status = Some(target_status);
            serialise(&body, opts.pretty)
        }
    };
    Ok(Converted {
        body,
        status,
        losses,
    })
}

/// OpenAI error bodies don't carry their status; infer it from the type and code.
fn openai_status_guess(err: &openai::ErrorBody) -> u16 {
    let code = err
        .error
        .code
        .as_ref()
        .and_then(|c| c.as_str())
        .unwrap_or("");
    match (err.error.kind.as_deref().unwrap_or(""), code) {
        (_, "invalid_api_key") | ("authentication_error", _) => 401,
        (_, "insufficient_quota") | ("insufficient_quota", _) => 429,
        (_, "rate_limit_exceeded") | ("rate_limit_error", _) | ("requests", _) | ("tokens", _) => {
            429
        }
        (_, "model_not_found") | ("not_found_error", _) => 404,
        ("permission_error", _) => 403,
        ("server_error", _) | ("api_error", _) => 500,
        _ => 400,
    }
}

/// Serialises compactly (or pretty) with a trailing newline.
pub fn serialise<T: serde::Serialize>(value: &T, pretty: bool) -> Vec<u8> {
    let mut out = if pretty {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    // Serialising our own types to a Vec cannot fail: every map key is a string.
    .unwrap_or_default();
    out.push(b'\n');
    out
}
