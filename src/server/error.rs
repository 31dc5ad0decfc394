//! a2o's own errors in the server, answered in the caller's dialect with a real status code:
//! `{"error":{"message","type","param","code"}}` for OpenAI clients and
//! `{"type":"error","error":{"type","message"}}` for Anthropic clients.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};

use crate::convert::error as error_bodies;
use crate::protocol::Dialect;

/// Who caused an error; it picks the status family and the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    Upstream,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: u16,
    pub message: String,
    /// The request field at fault (dotted path), for OpenAI's `param`.
    pub param: Option<String>,
    pub retry_after: Option<String>,
    pub origin: Origin,
}

impl AppError {
    pub fn client(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            retry_after: None,
            origin: Origin::Client,
        }
    }

    pub fn upstream(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            param: None,
            retry_after: None,
            origin: Origin::Upstream,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: 500,
            message: message.into(),
            param: None,
            retry_after: None,
            origin: Origin::Internal,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        let param = param.into();
        if !param.is_empty() {
            self.param = Some(param);
        }
        self
    }

    /// The error as an HTTP response in `dialect`.
    pub fn response(&self, dialect: Dialect) -> Response<Body> {
        let body = match dialect {
            Dialect::OpenAi => serde_json::to_vec(&error_bodies::openai_error(
                self.status,
                self.message.clone(),
                self.param.clone(),
            )),
            Dialect::Anthropic => serde_json::to_vec(&error_bodies::anthropic_error(
                self.status,
                self.message.clone(),
            )),
        }
        .unwrap_or_default();
        json_response(self.status, body, self.retry_after.as_deref())
    }
}

/// A JSON response with the given status (500 if the status is not a valid code).
pub fn json_response(status: u16, body: Vec<u8>, retry_after: Option<&str>) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
