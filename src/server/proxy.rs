//! Request handling for both fronts: read and check the body, pick the route (client dialect ×
//! upstream dialect), send it upstream with key rotation and failover, and answer in the
//! client's dialect: translated, passed through byte for byte, or synthesised as a stream.

use std::borrow::Cow;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{json_response, AppError};
use super::log::RequestLog;
use super::upstream::{Reply, UpstreamError};
use super::{metrics, AppState, Shared};
use crate::convert::{self, Losses, RequestOptions, ResponseContext};
use crate::keys::{fingerprint, KeyError, KeyList, Pool};
use crate::protocol::{anthropic, openai, Dialect};
use crate::stream::{self, StreamConverter};

/// Most bytes read from an upstream non-streaming body or error body.
const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;
/// The `anthropic-version` sent when the client sent none.
const ANTHROPIC_VERSION: &str = "2023-06-01";

pub async fn chat_completions(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    handle(state, Dialect::OpenAi, uri, headers, body).await
}

pub async fn messages(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    handle(state, Dialect::Anthropic, uri, headers, body).await
}

async fn handle(
    state: AppState,
    client: Dialect,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let shared = &state.shared;
    let mut log = Some(RequestLog::new(shared.logger.clone(), "POST", uri.path()));
    if let Some(log) = log.as_mut() {
        log.front = state.front.name();
    }
    let result = async {
        let body = read_body(shared, &headers, body).await?;
        if let Some(log) = log.as_mut().filter(|_| shared.config.log_bodies) {
            log.body =
                Some(String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).into_owned());
        }
        let keys = request_keys(shared, &headers, client)?;
        let peek: Peek = crate::protocol::parse(&body).map_err(|e| parse_error(client, e))?;
        // serde reads a struct from an array too (`["m", true]` as model and stream): only an
        // object is a request, or a2o and the upstream would read different things.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(AppError::client(
                400,
                "the request body must be a JSON object",
            ));
        }
        let (model, client_stream, has_max_tokens) = (
            peek.model.unwrap_or_default().into_owned(),
            peek.stream.unwrap_or(false),
            peek.max_tokens.is_some(),
        );
        let model = model.as_str();
        let target = route(shared, model, keys.as_ref())?;
        if let Some(log) = log.as_mut() {
            log.model = Some(model.to_owned());
            log.upstream = target.dialect.name();
            log.route = format!("{}->{}", client.name(), target.dialect.name());
            if let Some(keys) = &keys {
                log.key = Some(keys_fingerprint(keys));
            }
        }
        let call = Call {
            shared,
            client,
            target: &target,
            uri: &uri,
            headers: &headers,
        };
        let outcome = if client == target.dialect {
            passthrough(call, body, client_stream, has_max_tokens, &mut log).await
        } else {
            translate(call, body, &mut log).await
        };
        outcome.map_err(|err| target.redacted(err))
    }
    .await;
    let response = result.unwrap_or_else(|err| {
        if let Some(log) = log.as_mut() {
            log.error = Some(err.message.clone());
        }
        err.response(client)
    });
    if let Some(log) = log.as_mut() {
        log.status = response.status().as_u16();
    }
    response
}

/// What every upstream call of one request shares.
#[derive(Clone, Copy)]
struct Call<'a> {
    shared: &'a Shared,
    client: Dialect,
    target: &'a Target,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl Call<'_> {
    fn upstream(&self) -> Dialect {
        self.target.dialect
    }

    fn upstream_path(&self) -> &'static str {
        match self.target.dialect {
            Dialect::Anthropic => "/v1/messages",
            Dialect::OpenAi => "/v1/chat/completions",
        }
    }

    /// The model name to show the client, when the upstream was sent another one.
    fn client_model(&self) -> Option<&str> {
        self.target.client_model.as_deref()
    }
}

/// Where one request goes: the upstream dialect and the deployments to try, in order.
struct Target {
    dialect: Dialect,
    /// The client's model name, set when a2o sends a different one upstream (alias or
    /// `model_list`), so responses can say what the client asked for.
    client_model: Option<String>,
    deployments: Vec<DeploymentTry>,
    /// The rotation pool of the deployments, when they come from `model_list`.
    deployment_pool: Option<Pool>,
}

impl Target {
    /// `err` with every upstream key this request may use replaced by its fingerprint, so no
    /// error or log line can carry one.
    fn redacted(&self, mut err: AppError) -> AppError {
        err.message = redact(&err.message, &self.keys());
        err
    }

    /// The upstream keys of every deployment (client or server keys).
    fn keys(&self) -> Vec<String> {
        self.deployments
            .iter()
            .flat_map(|d| (0..d.keys.len()).map(|i| d.keys.get(i).to_owned()))
            .collect()
    }
}

/// Shortest key that is redacted: shorter "keys" are test placeholders, and replacing them
/// would mangle ordinary words.
const MIN_REDACTED_KEY_LEN: usize = 8;

/// `text` with every key in `keys` replaced by its fingerprint. Upstreams quote keys in their
/// errors ("invalid x-api-key: sk-…"); a server-side key must never reach a client that way.
fn redact(text: &str, keys: &[String]) -> String {
    let mut text = text.to_owned();
    for key in keys.iter().filter(|k| k.len() >= MIN_REDACTED_KEY_LEN) {
        if text.contains(key.as_str()) {
            text = text.replace(key.as_str(), &fingerprint(key));
        }
    }
    text
}

/// One upstream to try, with the keys to try it with.
struct DeploymentTry {
    index: usize,
    base: String,
    /// The upstream's model name, when it differs from the client's.
    model: Option<String>,
    keys: KeyList,
}

/// Picks the upstream for a model: aliases, then a `model_list` pool, else the default
/// upstream with the client's keys.
fn route(
    shared: &Shared,
    client_model: &str,
    client_keys: Option<&KeyList>,
) -> Result<Target, AppError> {
    let config = &shared.config;
    let routes = &config.routes;
    let aliased = routes.alias(client_model);
    let no_key = || {
        AppError::client(
            401,
            format!(
                "no upstream key for model `{client_model}`: send `Authorization: Bearer <key>` or `x-api-key: <key>`"
            ),
        )
    };
    if let Some(pool) = routes.pool(aliased) {
        let deployment_pool = Pool::named(aliased, pool.len());
        let mut deployments = Vec::with_capacity(pool.len());
        for index in shared.pools.plan(deployment_pool, Instant::now()) {
            let deployment = &pool[index];
            let keys = deployment
                .keys
                .as_ref()
                .or(client_keys)
                .ok_or_else(no_key)?
                .clone();
            let model = (deployment.model != client_model).then(|| deployment.model.clone());
            deployments.push(DeploymentTry {
                index,
                base: deployment.base_url.clone(),
                model,
                keys,
            });
        }
        let client_model = deployments
            .iter()
            .any(|d| d.model.is_some())
            .then(|| client_model.to_owned());
        return Ok(Target {
            dialect: pool[0].dialect,
            client_model,
            deployments,
            deployment_pool: Some(deployment_pool),
        });
    }
    let keys = client_keys.ok_or_else(no_key)?.clone();
    let model = (aliased != client_model).then(|| aliased.to_owned());
    Ok(Target {
        dialect: config.upstream_protocol,
        client_model: model.as_ref().map(|_| client_model.to_owned()),
        deployments: vec![DeploymentTry {
            index: 0,
            base: config.upstream.clone(),
            model,
            keys,
        }],
        deployment_pool: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Reading the client's request

async fn read_body(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Bytes, AppError> {
    let limit = shared.config.body_limit;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.to_ascii_lowercase().contains("json") {
            return Err(AppError::client(
                415,
                format!(
                    "Content-Type must be application/json, not `{ct}`: send the header `Content-Type: application/json`"
                ),
            ));
        }
    }
    let too_large = || {
        AppError::client(
            413,
            format!("the request body is larger than the {limit}-byte limit (set --body-limit to raise it)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        shared.config.http_timeout,
        axum::body::to_bytes(body, limit),
    )
    .await
    {
        Err(_) => Err(AppError::client(
            408,
            format!(
                "the request body did not arrive within {}",
                super::log::seconds(shared.config.http_timeout)
            ),
        )),
        Ok(Err(err)) if err.to_string().contains("length limit") => Err(too_large()),
        Ok(Err(err)) => Err(AppError::client(
            400,
            format!("could not read the request body: {err}"),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// The key the client presented, from `x-api-key` or `Authorization: Bearer` (the client
/// dialect's usual header first), as text.
fn presented_key(headers: &HeaderMap, client: Dialect) -> Result<Option<&str>, AppError> {
    let x_api_key = (headers.get("x-api-key"), false);
    let bearer = (headers.get(header::AUTHORIZATION), true);
    let ordered = match client {
        Dialect::Anthropic => [x_api_key, bearer],
        Dialect::OpenAi => [bearer, x_api_key],
    };
    let Some((value, is_bearer)) = ordered
        .into_iter()
        .find_map(|(value, is_bearer)| value.map(|v| (v, is_bearer)))
    else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| AppError::client(400, KeyError::InvalidCharacters.to_string()))?;
    let key = if is_bearer { strip_bearer(text) } else { text };
    // An empty header is no key: it must never match an (empty) proxy key.
    Ok(Some(key).filter(|key| !key.trim().is_empty()))
}

/// The upstream keys a request brings, if any. When the server requires a proxy key, the
/// client's key must be one of them and is never sent upstream.
fn request_keys(
    shared: &Shared,
    headers: &HeaderMap,
    client: Dialect,
) -> Result<Option<KeyList>, AppError> {
    let presented = presented_key(headers, client)?;
    let proxy_keys = &shared.config.proxy_keys;
    if !proxy_keys.is_empty() {
        let accepted = presented.is_some_and(|key| {
            proxy_keys
                .iter()
                .any(|k| constant_time_eq(k.as_bytes(), key.as_bytes()))
        });
        if !accepted {
            return Err(AppError::client(
                401,
                "this a2o requires its proxy key: send it as `Authorization: Bearer <proxy key>` or `x-api-key`",
            ));
        }
        return Ok(None);
    }
    match presented {
        None => Ok(None),
        Some(raw) => KeyList::parse(raw).map(Some).or_else(|err| match err {
            KeyError::Missing => Ok(None),
            other => Err(AppError::client(400, other.to_string())),
        }),
    }
}

/// Compares secrets without an early exit, so timing reveals nothing about where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

fn strip_bearer(value: &str) -> &str {
    let trimmed = value.trim();
    match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => trimmed[7..].trim(),
        _ => trimmed,
    }
}

fn keys_fingerprint(keys: &KeyList) -> String {
    (0..keys.len())
        .map(|i| fingerprint(keys.get(i)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whatever routing and a pass-through need from the body, read without building the document.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    max_tokens: Option<serde::de::IgnoredAny>,
}

fn parse_error(client: Dialect, err: crate::protocol::ParseError) -> AppError {
    let what = match client {
        Dialect::OpenAi => "chat completion request",
        Dialect::Anthropic => "messages request",
    };
    let message = if err.syntax {
        format!("the body is not valid JSON: {}", err.message)
    } else if err.path.is_empty() {
        format!("invalid {what}: {}", err.message)
    } else {
        format!("invalid {what}: {}: {}", err.path, err.message)
    };
    AppError::client(400, message).with_param(err.path)
}

// ---------------------------------------------------------------------------------------------
// Routes

/// Same dialect on both sides: bytes are forwarded, and re-serialised only to apply a default
/// or a mapped model name.
async fn passthrough(
    call: Call<'_>,
    body: Bytes,
    client_stream: bool,
    has_max_tokens: bool,
    log: &mut Option<RequestLog>,
) -> Result<Response<Body>, AppError> {
    let config = &call.shared.config;
    if let Some(log) = log.as_mut() {
        log.stream = client_stream;
    }
    let max_tokens = (call.upstream() == Dialect::Anthropic && !has_max_tokens)
        .then_some(config.default_max_tokens);
    let force = config.force_non_stream && client_stream;
    let needs_rewrite =
        max_tokens.is_some() || force || call.target.deployments.iter().any(|d| d.model.is_some());
    let doc: Option<Map<String, Value>> = if needs_rewrite {
        let mut doc: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| AppError::client(400, format!("invalid request body: {e}")))?;
        if let Some(max_tokens) = max_tokens {
            doc.insert("max_tokens".to_owned(), Value::from(max_tokens));
        }
        if force {
            doc.insert("stream".to_owned(), Value::Bool(false));
        }
        Some(doc)
    } else {
        None
    };
    let make_body = |deployment: &DeploymentTry| match (&doc, deployment.model.as_deref()) {
        (None, _) => body.clone(),
        (Some(doc), model) => {
            let mut doc = doc.clone();
            if let Some(model) = model {
                doc.insert("model".to_owned(), Value::from(model));
            }
            Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
        }
    };
    let Sent { reply, exhausted } = send(
        call,
        call.upstream_path(),
        &make_body,
        client_stream && !force,
        true,
        log,
    )
    .await?;
    if !reply.status().is_success() {
        return Ok(upstream_error(call, reply, exhausted.as_deref()).await);
    }
    let content_type = content_type(&reply);
    if client_stream && content_type.contains("text/event-stream") {
        return Ok(stream_response(
            reply,
            StreamMode::Passthrough(call.client),
            call.shared,
            log.take(),
        ));
    }
    let bytes = read_upstream(reply, call.shared.config.http_timeout).await?;
    check_json_body(call.upstream(), &content_type, &bytes)?;
    if !client_stream {
        let bytes = match call.client_model() {
            Some(model) => with_model(&bytes, model),
            None => bytes.to_vec(),
        };
        return Ok(json_response(200, bytes, None));
    }
    // A whole response for a streaming client (FORCE_NON_STREAM, or an upstream that ignored
    // `stream`): replay it as the stream the upstream would have sent.
    let mut out = Vec::new();
    match call.upstream() {
        Dialect::Anthropic => {
            let mut resp: anthropic::MessagesResponse = parse_upstream(call.upstream(), &bytes)?;
            if let Some(model) = call.client_model() {
                resp.model = model.to_owned();
            }
            stream::write_anthropic_events(
                &mut stream::synthesize::anthropic_events(resp),
                &mut out,
            );
        }
        Dialect::OpenAi => {
            let mut resp: openai::ChatResponse = parse_upstream(call.upstream(), &bytes)?;
            if let Some(model) = call.client_model() {
                resp.model = model.to_owned();
            }
            stream::write_openai_items(&mut stream::synthesize::openai_items(resp), &mut out);
        }
    }
    if let Some(log) = log.as_mut() {
        log.sent(out.len());
    }
    Ok(sse_response(Body::from(out)))
}

/// A JSON document with its top-level `model` set (when given) and the field `rename.0` moved
/// to `rename.1` (unless the document already has the latter); bytes unchanged if it isn't an
/// object. Deployments use it for their own model name and output-limit field.
fn rewritten(bytes: &[u8], model: Option<&str>, rename: Option<(&str, &str)>) -> Vec<u8> {
    let Ok(mut doc) = serde_json::from_slice::<Map<String, Value>>(bytes) else {
        return bytes.to_vec();
    };
    if let Some(model) = model {
        doc.insert("model".to_owned(), Value::from(model));
    }
    if let Some((from, to)) = rename {
        if !doc.contains_key(to) {
            if let Some(limit) = doc.shift_remove(from) {
                doc.insert(to.to_owned(), limit);
            }
        }
    }
    serde_json::to_vec(&doc).unwrap_or_else(|_| bytes.to_vec())
}

/// A JSON document with its top-level `model` replaced (bytes unchanged if it isn't an object).
fn with_model(bytes: &[u8], model: &str) -> Vec<u8> {
    rewritten(bytes, Some(model), None)
}

/// Different dialects: parse, convert the request, and convert whatever comes back.
async fn translate(
    call: Call<'_>,
    body: Bytes,
    log: &mut Option<RequestLog>,
) -> Result<Response<Body>, AppError> {
    let config = &call.shared.config;
    let opts = RequestOptions {
        default_max_tokens: config.default_max_tokens,
    };
    let mut losses = Losses::new();
    let upstream_stream;
    let client_stream;
    let mut ctx;
    let converted: Vec<u8> = match call.client {
        Dialect::OpenAi => {
            let req: openai::ChatRequest =
                crate::protocol::parse(&body).map_err(|e| parse_error(call.client, e))?;
            ctx = ResponseContext::for_openai_client(&req);
            client_stream = req.stream.unwrap_or(false);
            upstream_stream = client_stream && !config.force_non_stream;
            let mut converted = convert::openai_to_anthropic::request(req, &opts, &mut losses)
                .map_err(convert_error)?;
            converted.stream = Some(upstream_stream).filter(|s| *s);
            serde_json::to_vec(&converted)
        }
        Dialect::Anthropic => {
            let req: anthropic::MessagesRequest =
                crate::protocol::parse(&body).map_err(|e| parse_error(call.client, e))?;
            ctx = ResponseContext::for_anthropic_client(&req);
            ctx.input_tokens_estimate = Some(crate::estimate::anthropic_request_tokens(&req));
            client_stream = req.stream.unwrap_or(false);
            upstream_stream = client_stream && !config.force_non_stream;
            let mut converted = convert::anthropic_to_openai::request(req, &opts, &mut losses)
                .map_err(convert_error)?;
            converted.stream = Some(upstream_stream).filter(|s| *s);
            // Serialised for the first deployment; `make_body` renames the field for any other
            // that wants the other one.
            let first = call.target.deployments.first();
            if first.is_some_and(|d| config.uses_max_tokens(&d.base))
                && converted.max_tokens.is_none()
            {
                converted.max_tokens = converted.max_completion_tokens.take();
            }
            // Ask for usage always; the stream machine forwards it only if the client asked.
            converted.stream_options = upstream_stream.then(|| openai::StreamOptions {
                include_usage: Some(true),
                extra: Map::new(),
            });
            serde_json::to_vec(&converted)
        }
    }
    .map_err(|e| AppError::internal(format!("cannot serialise the upstream request: {e}")))?;
    ctx.client_model = call.client_model().map(str::to_owned);
    if let Some(log) = log.as_mut() {
        log.stream = client_stream;
        log.losses.extend(losses.iter().map(|l| l.path.clone()));
    }
    // Serialised once; only a deployment with its own model name, or one that wants the other
    // output-limit field than the first, pays for a rewrite.
    let converted = Bytes::from(converted);
    let limit_field_of = |deployment: &DeploymentTry| {
        (call.client == Dialect::Anthropic && call.upstream() == Dialect::OpenAi).then(|| {
            if config.uses_max_tokens(&deployment.base) {
                ("max_completion_tokens", "max_tokens")
            } else {
                ("max_tokens", "max_completion_tokens")
            }
        })
    };
    let serialized_field = call.target.deployments.first().and_then(limit_field_of);
    let make_body = |deployment: &DeploymentTry| {
        let rename = limit_field_of(deployment).filter(|field| Some(*field) != serialized_field);
        match (deployment.model.as_deref(), rename) {
            (None, None) => converted.clone(),
            (model, rename) => Bytes::from(rewritten(&converted, model, rename)),
        }
    };
    let Sent { reply, exhausted } = send(
        call,
        call.upstream_path(),
        &make_body,
        upstream_stream,
        false,
        log,
    )
    .await?;
    if !reply.status().is_success() {
        return Ok(upstream_error(call, reply, exhausted.as_deref()).await);
    }
    let content_type = content_type(&reply);
    if client_stream && content_type.contains("text/event-stream") {
        let converter = StreamConverter::new(call.upstream(), ctx);
        return Ok(stream_response(
            reply,
            StreamMode::Convert(Box::new(converter)),
            call.shared,
            log.take(),
        ));
    }
    let bytes = read_upstream(reply, call.shared.config.http_timeout).await?;
    check_content_type(call.upstream(), &content_type, &bytes)?;
    let mut losses = Losses::new();
    let out = if client_stream {
        // Replay the whole upstream response as its stream, through the same stream machine.
        let mut converter = StreamConverter::new(call.upstream(), ctx);
        let mut events = Vec::new();
        match call.upstream() {
            Dialect::Anthropic => {
                let resp: anthropic::MessagesResponse = parse_upstream(call.upstream(), &bytes)?;
                stream::write_anthropic_events(
                    &mut stream::synthesize::anthropic_events(resp),
                    &mut events,
                );
            }
            Dialect::OpenAi => {
                let resp: openai::ChatResponse = parse_upstream(call.upstream(), &bytes)?;
                stream::write_openai_items(
                    &mut stream::synthesize::openai_items(resp),
                    &mut events,
                );
            }
        }
        let mut out = Vec::new();
        converter.push(&events, &mut out, &mut losses);
        converter.finish(&mut out, &mut losses);
        out
    } else {
        let converted = match call.upstream() {
            Dialect::Anthropic => {
                let resp: anthropic::MessagesResponse = parse_upstream(call.upstream(), &bytes)?;
                convert::anthropic_to_openai::response(resp, &ctx, &mut losses)
                    .map(|r| serde_json::to_vec(&r))
            }
            Dialect::OpenAi => {
                let resp: openai::ChatResponse = parse_upstream(call.upstream(), &bytes)?;
                convert::openai_to_anthropic::response(resp, &ctx, &mut losses)
                    .map(|r| serde_json::to_vec(&r))
            }
        };
        match converted {
            Ok(Ok(json)) => json,
            Ok(Err(e)) => {
                return Err(AppError::internal(format!(
                    "cannot serialise the response: {e}"
                )))
            }
            Err(e) => {
                return Err(AppError::upstream(
                    502,
                    format!("cannot convert the upstream response: {e}"),
                ))
            }
        }
    };
    if let Some(log) = log.as_mut() {
        log.sent(out.len());
        log.losses.extend(losses.iter().map(|l| l.path.clone()));
    }
    Ok(if client_stream {
        sse_response(Body::from(out))
    } else {
        json_response(200, out, None)
    })
}

fn convert_error(e: convert::ConvertError) -> AppError {
    AppError::client(400, format!("cannot convert the request: {e}")).with_param(e.path.clone())
}

// ---------------------------------------------------------------------------------------------
// Talking to the upstream

/// Sends the request to each deployment with each of its keys, in rotation order, until one is
/// not refused. Failover happens only here, before any byte has reached the client.
async fn send(
    call: Call<'_>,
    path: &'static str,
    make_body: &(dyn Fn(&DeploymentTry) -> Bytes + Sync),
    stream: bool,
    passthrough: bool,
    log: &mut Option<RequestLog>,
) -> Result<Sent, AppError> {
    let shared = call.shared;
    let target = call.target;
    let total: usize = target.deployments.iter().map(|d| d.keys.len()).sum();
    let mut failures: Vec<String> = Vec::new();
    let mut attempt = 0usize;
    for deployment in &target.deployments {
        let url = shared.upstream_url(
            &deployment.base,
            path,
            if passthrough { call.uri.query() } else { None },
        )?;
        let body = make_body(deployment);
        let key_pool = deployment.keys.pool();
        for index in shared.pools.plan(key_pool, Instant::now()) {
            attempt += 1;
            let last = attempt == total;
            let key = deployment.keys.get(index);
            if let Some(log) = log.as_mut() {
                log.attempts = attempt as u32;
                log.key = Some(fingerprint(key));
            }
            let headers = upstream_headers(
                shared,
                call.headers,
                target.dialect,
                key,
                passthrough,
                stream,
            );
            let sent = shared
                .client
                .send(Method::POST, &url, headers, body.clone())
                .await;
            let failure = match sent {
                Ok(reply) if is_retryable(reply.status()) => {
                    metrics::record_upstream_error(&format!("status_{}", reply.status().as_u16()));
                    failures.push(format!("{} {}", fingerprint(key), reply.status().as_u16()));
                    if last {
                        note_failure(shared, target, deployment, index);
                        let exhausted = (total > 1)
                            .then(|| format!("all {total} keys failed: {}", failures.join(", ")));
                        if let (Some(log), Some(exhausted)) = (log.as_mut(), &exhausted) {
                            log.error = Some(exhausted.clone());
                        }
                        return Ok(Sent { reply, exhausted });
                    }
                    retry_after(&reply).map(|w| w.min(shared.config.max_retry_wait))
                }
                Ok(reply) => {
                    if reply.status().is_success() {
                        shared.pools.report_success(key_pool, index);
                        if let Some(pool) = target.deployment_pool {
                            shared.pools.report_success(pool, deployment.index);
                        }
                    }
                    return Ok(Sent {
                        reply,
                        exhausted: None,
                    });
                }
                Err(err) => {
                    metrics::record_upstream_error(err.kind_name());
                    failures.push(format!("{} {}", fingerprint(key), err.kind_name()));
                    if last {
                        note_failure(shared, target, deployment, index);
                        return Err(transport_error(shared, &deployment.base, &err, &failures));
                    }
                    None
                }
            };
            note_failure(shared, target, deployment, index);
            metrics::record_failover(&fingerprint(key));
            if let Some(wait) = failure {
                tokio::time::sleep(wait).await;
            }
        }
    }
    Err(AppError::internal("no upstream to try"))
}

/// The upstream's answer, and when every key was refused, a summary that says so (key
/// fingerprints and statuses) for the client's error message.
struct Sent {
    reply: Reply,
    exhausted: Option<String>,
}

/// Marks a key (and its deployment) as failed, counting cooldowns that start.
fn note_failure(shared: &Shared, target: &Target, deployment: &DeploymentTry, index: usize) {
    let now = Instant::now();
    if shared
        .pools
        .report_failure(deployment.keys.pool(), index, now)
    {
        metrics::record_cooldown(&fingerprint(deployment.keys.get(index)));
    }
    if let Some(pool) = target.deployment_pool {
        shared.pools.report_failure(pool, deployment.index, now);
    }
}

fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 401 | 403 | 429 | 529) || status.is_server_error()
}

fn retry_after(reply: &Reply) -> Option<Duration> {
    let value = reply.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

fn transport_error(
    shared: &Shared,
    upstream: &str,
    err: &UpstreamError,
    failures: &[String],
) -> AppError {
    let tried = if failures.len() > 1 {
        format!(" (tried {} keys: {})", failures.len(), failures.join(", "))
    } else {
        String::new()
    };
    if err.is_timeout() {
        AppError::upstream(
            504,
            format!(
                "the upstream {upstream} did not answer within {}{tried}",
                super::log::seconds(shared.config.http_timeout)
            ),
        )
    } else {
        AppError::upstream(
            502,
            format!("cannot reach the upstream {upstream}: {err}{tried}"),
        )
    }
}

pub(crate) fn upstream_url(base: &str, path: &str, query: Option<&str>) -> String {
    let mut url = String::with_capacity(base.len() + path.len() + 32);
    url.push_str(base.trim_end_matches('/'));
    url.push_str(path);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Headers never forwarded: hop-by-hop ones, ones the HTTP client sets itself, and credentials
/// (the upstream gets exactly one key, in its own dialect's header).
fn is_dropped_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "authorization"
            | "x-api-key"
            | "accept-encoding"
            | "cookie"
            | "content-type"
            | "accept"
    )
}

fn upstream_headers(
    shared: &Shared,
    client: &HeaderMap,
    upstream: Dialect,
    key: &str,
    passthrough: bool,
    stream: bool,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in client {
        let anthropic_header = name.as_str().starts_with("anthropic-");
        let keep = match upstream {
            Dialect::Anthropic => anthropic_header || (passthrough && !is_dropped_header(name)),
            Dialect::OpenAi => !anthropic_header && passthrough && !is_dropped_header(name),
        };
        if keep {
            headers.append(name.clone(), value.clone());
        }
    }
    for (name, value) in &shared.config.extra_headers {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static(if stream {
            "text/event-stream"
        } else {
            "application/json"
        }),
    );
    // The key was checked to be visible ASCII, so it is a valid header value.
    let key_value = |prefix: &str| HeaderValue::from_str(&format!("{prefix}{key}")).ok();
    match upstream {
        Dialect::Anthropic => {
            if let Some(v) = key_value("") {
                headers.insert("x-api-key", v);
            }
            if !headers.contains_key("anthropic-version") {
                headers.insert(
                    "anthropic-version",
                    HeaderValue::from_static(ANTHROPIC_VERSION),
                );
            }
        }
        Dialect::OpenAi => {
            if let Some(mut v) = key_value("Bearer ") {
                v.set_sensitive(true);
                headers.insert(header::AUTHORIZATION, v);
            }
        }
    }
    headers
}

fn content_type(reply: &Reply) -> String {
    reply
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

async fn read_upstream(reply: Reply, idle: Duration) -> Result<Bytes, AppError> {
    let mut reply = reply;
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout(idle, reply.chunk())
            .await
            .unwrap_or_else(|_| Err(UpstreamError::timeout()));
        match chunk {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_UPSTREAM_BODY {
                    return Err(AppError::upstream(
                        502,
                        "the upstream response is larger than 64 MiB",
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(Bytes::from(body)),
            Err(err) if err.is_timeout() => {
                return Err(AppError::upstream(
                    504,
                    "the upstream stopped sending its response (idle timeout)",
                ))
            }
            Err(err) => {
                return Err(AppError::upstream(
                    502,
                    format!("the upstream connection failed mid-response: {err}"),
                ))
            }
        }
    }
}

/// A short, printable excerpt of an unexpected upstream body for error messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn expected_response(upstream: Dialect) -> &'static str {
    match upstream {
        Dialect::Anthropic => "an Anthropic Messages response",
        Dialect::OpenAi => "an OpenAI chat completion",
    }
}

fn check_json_body(upstream: Dialect, content_type: &str, bytes: &[u8]) -> Result<(), AppError> {
    check_content_type(upstream, content_type, bytes)?;
    check_json_syntax(upstream, bytes)
}

fn check_content_type(upstream: Dialect, content_type: &str, bytes: &[u8]) -> Result<(), AppError> {
    if !content_type.contains("json") {
        return Err(AppError::upstream(
            502,
            format!(
                "the upstream answered 200 with `{}` instead of {} (a firewall or login page?): {}",
                if content_type.is_empty() {
                    "no content type"
                } else {
                    content_type
                },
                expected_response(upstream),
                snippet(bytes)
            ),
        ));
    }
    Ok(())
}

fn check_json_syntax(upstream: Dialect, bytes: &[u8]) -> Result<(), AppError> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return Err(AppError::upstream(
            502,
            format!(
                "the upstream answered 200 with invalid or truncated JSON instead of {}: {}",
                expected_response(upstream),
                snippet(bytes)
            ),
        ));
    }
    Ok(())
}

/// The upstream's 200 body as its dialect's type. A body that is not even JSON gets the
/// message that says so; the syntax is checked only then, so a valid body is parsed once.
fn parse_upstream<T: serde::de::DeserializeOwned>(
    upstream: Dialect,
    bytes: &[u8],
) -> Result<T, AppError> {
    crate::protocol::parse(bytes).map_err(|err| {
        check_json_syntax(upstream, bytes).err().unwrap_or_else(|| {
            AppError::upstream(
                502,
                format!(
                    "the upstream's 200 response is not a valid {} response: {err}",
                    upstream.name()
                ),
            )
        })
    })
}

/// An upstream error status, answered in the client's dialect with the status mapped, with
/// every key of the request redacted, and prefixed with `exhausted` (every key refused) if set.
async fn upstream_error(call: Call<'_>, reply: Reply, exhausted: Option<&str>) -> Response<Body> {
    let status = reply.status().as_u16();
    let retry = reply
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Redirects are not followed (a POST would turn into a GET, or go to a host the keys were
    // not meant for), so whatever the body says, the answer is a 502 that says where it pointed.
    let redirected = reply.status().is_redirection();
    let redirect = redirected
        .then(|| reply.headers().get(header::LOCATION))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(|location| {
            format!(
                " (a redirect to {location}; a2o does not follow redirects: point the upstream URL there instead)"
            )
        })
        .unwrap_or_default();
    let body = match read_upstream(reply, call.shared.config.http_timeout).await {
        Ok(body) => body,
        Err(err) => return err.response(call.client),
    };
    let mut losses = Losses::new();
    let converted = match (call.upstream(), call.client) {
        _ if redirected => None,
        (Dialect::Anthropic, Dialect::Anthropic) | (Dialect::OpenAi, Dialect::OpenAi) => {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
                Some((status, body.to_vec()))
            } else {
                None
            }
        }
        (Dialect::Anthropic, Dialect::OpenAi) => {
            crate::protocol::parse::<anthropic::ErrorBody>(&body)
                .ok()
                .map(|err| {
                    let (status, body) =
                        convert::error::anthropic_to_openai(status, err, &mut losses);
                    (status, serde_json::to_vec(&body).unwrap_or_default())
                })
        }
        (Dialect::OpenAi, Dialect::Anthropic) => crate::protocol::parse::<openai::ErrorBody>(&body)
            .ok()
            .map(|err| {
                let (status, body) = convert::error::openai_to_anthropic(status, err, &mut losses);
                (status, serde_json::to_vec(&body).unwrap_or_default())
            }),
    };
    let secrets = call.target.keys();
    match converted {
        Some((status, body)) => {
            let body = match exhausted {
                Some(note) => with_error_prefix(&body, &format!("{note}; the last answer: ")),
                None => body,
            };
            let body = redact(&String::from_utf8_lossy(&body), &secrets).into_bytes();
            json_response(status, body, retry.as_deref())
        }
        None => {
            let mapped = match call.client {
                _ if redirected => 502,
                Dialect::OpenAi => convert::vocab::openai_status_for(status),
                Dialect::Anthropic => status,
            };
            let prefix = exhausted.map(|n| format!("{n}; ")).unwrap_or_default();
            let message = format!(
                "{prefix}the upstream answered {status}{redirect}: {}",
                snippet(&body)
            );
            let mut err = AppError::upstream(mapped, redact(&message, &secrets));
            err.retry_after = retry;
            err.response(call.client)
        }
    }
}

/// An error body (either dialect: both keep the text in `error.message`) with `prefix` put
/// before its message; other bodies are returned unchanged.
fn with_error_prefix(body: &[u8], prefix: &str) -> Vec<u8> {
    let Ok(mut doc) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    match doc.pointer_mut("/error/message") {
        Some(Value::String(message)) => message.insert_str(0, prefix),
        _ => return body.to_vec(),
    }
    serde_json::to_vec(&doc).unwrap_or_else(|_| body.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Streaming

enum StreamMode {
    /// Upstream bytes go to the client unchanged; failures become this dialect's in-band error.
    Passthrough(Dialect),
    Convert(Box<StreamConverter>),
}

fn sse_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

struct StreamState {
    _open: OpenStream,
    reply: Reply,
    mode: StreamMode,
    idle: Duration,
    done: bool,
    log: Option<RequestLog>,
    /// The last bytes of a passed-through stream, to tell at its end whether it ended with
    /// its dialect's terminator.
    tail: Vec<u8>,
}

/// How much of a passed-through stream's end is kept to look for its terminator: more than
/// any `message_stop` event, and than all but very long error events.
const STREAM_TAIL: usize = 4096;

/// Whether the last bytes of a stream hold the dialect's proper end: `message_stop` or an
/// `error` event (Anthropic), `[DONE]` or an in-band `{"error":…}` (OpenAI).
fn ends_properly(dialect: Dialect, tail: &[u8]) -> bool {
    let text = String::from_utf8_lossy(tail);
    match dialect {
        Dialect::Anthropic => {
            text.contains("event: message_stop")
                || text.contains("\"type\":\"message_stop\"")
                || text.contains("event: error")
        }
        Dialect::OpenAi => text.trim_end().ends_with("[DONE]") || text.contains("{\"error\":"),
    }
}

/// Counts an open stream in the metrics for as long as it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::stream_opened();
        OpenStream
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::stream_closed();
    }
}

/// Relays an upstream SSE body as it arrives. Dropping the response body (the client went
/// away) drops the upstream response with it, which closes the upstream connection.
fn stream_response(
    reply: Reply,
    mode: StreamMode,
    shared: &Shared,
    mut log: Option<RequestLog>,
) -> Response<Body> {
    if let Some(log) = log.as_mut() {
        log.status = 200;
    }
    let state = StreamState {
        _open: OpenStream::new(),
        reply,
        mode,
        idle: shared.config.http_timeout,
        done: false,
        log,
        tail: Vec::new(),
    };
    let body = futures_util::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let mut out = Vec::new();
        let mut losses = Losses::new();
        while out.is_empty() && !state.done {
            let failure = match tokio::time::timeout(state.idle, state.reply.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    match &mut state.mode {
                        StreamMode::Passthrough(_) => {
                            out.extend_from_slice(&bytes);
                            let keep = bytes.len().min(STREAM_TAIL);
                            state.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
                            let excess = state.tail.len().saturating_sub(STREAM_TAIL);
                            state.tail.drain(..excess);
                        }
                        StreamMode::Convert(converter) => {
                            converter.push(&bytes, &mut out, &mut losses)
                        }
                    }
                    None
                }
                Ok(Ok(None)) => {
                    state.done = true;
                    match &mut state.mode {
                        StreamMode::Convert(converter) => {
                            converter.finish(&mut out, &mut losses);
                            None
                        }
                        StreamMode::Passthrough(dialect) => (!ends_properly(*dialect, &state.tail))
                            .then(|| {
                                "the upstream stream ended without its final event; the response is incomplete"
                                    .to_owned()
                            }),
                    }
                }
                Ok(Err(err)) if err.is_timeout() => Some(format!(
                    "the upstream sent nothing for {}; the response is incomplete",
                    super::log::seconds(state.idle)
                )),
                Ok(Err(err)) => Some(format!("the upstream connection failed mid-stream: {err}")),
                Err(_) => Some(format!(
                    "the upstream sent nothing for {}; the response is incomplete",
                    super::log::seconds(state.idle)
                )),
            };
            if let Some(message) = failure {
                match &mut state.mode {
                    StreamMode::Passthrough(dialect) => {
                        write_in_band_error(*dialect, &message, &mut out)
                    }
                    StreamMode::Convert(converter) => {
                        converter.abort(&message, &mut out, &mut losses)
                    }
                }
                if let Some(log) = state.log.as_mut() {
                    log.error = Some(message);
                }
                state.done = true;
            }
        }
        if let Some(log) = state.log.as_mut() {
            log.sent(out.len());
            log.losses.extend(losses.iter().map(|l| l.path.clone()));
        }
        Some((Ok::<Bytes, Infallible>(Bytes::from(out)), state))
    });
    sse_response(Body::from_stream(body))
}

/// Ends a passed-through stream with the dialect's in-band error. The leading blank lines end
/// any event the upstream left half-written.
fn write_in_band_error(dialect: Dialect, message: &str, out: &mut Vec<u8>) {
    match dialect {
        Dialect::Anthropic => {
            let body = json!({"type": "error", "error": {"type": "api_error", "message": message}});
            out.extend_from_slice(format!("\n\nevent: error\ndata: {body}\n\n").as_bytes());
        }
        Dialect::OpenAi => {
            let body = json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}});
            out.extend_from_slice(format!("\n\ndata: {body}\n\ndata: [DONE]\n\n").as_bytes());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Other endpoints

pub async fn count_tokens(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let shared = &state.shared;
    let mut log = Some(RequestLog::new(shared.logger.clone(), "POST", uri.path()));
    if let Some(log) = log.as_mut() {
        log.front = state.front.name();
    }
    let result = async {
        let body = read_body(shared, &headers, body).await?;
        let req: anthropic::MessagesRequest =
            crate::protocol::parse(&body).map_err(|e| parse_error(Dialect::Anthropic, e))?;
        let keys = request_keys(shared, &headers, Dialect::Anthropic)?;
        let estimate = |log: &mut Option<RequestLog>| {
            if let Some(log) = log.as_mut() {
                log.route = "anthropic->estimate".to_owned();
            }
            let tokens = crate::estimate::anthropic_request_tokens(&req);
            json_response(
                200,
                json!({ "input_tokens": tokens }).to_string().into_bytes(),
                None,
            )
        };
        if let Some(log) = log.as_mut() {
            log.model = Some(req.model.clone());
        }
        // An OpenAI upstream cannot count: estimate locally, and never spend (or fail) a key.
        let target = match route(shared, &req.model, keys.as_ref()) {
            Ok(target) if target.dialect == Dialect::Anthropic => target,
            Ok(_) => return Ok(estimate(&mut log)),
            Err(_) if shared.config.upstream_protocol == Dialect::OpenAi => {
                return Ok(estimate(&mut log))
            }
            Err(err) => return Err(err),
        };
        if let Some(log) = log.as_mut() {
            log.route = "anthropic->anthropic".to_owned();
        }
        let call = Call {
            shared,
            client: Dialect::Anthropic,
            target: &target,
            uri: &uri,
            headers: &headers,
        };
        let make_body = |deployment: &DeploymentTry| match deployment.model.as_deref() {
            Some(model) => Bytes::from(with_model(&body, model)),
            None => body.clone(),
        };
        let counted = async {
            let Sent { reply, exhausted } = send(
                call,
                "/v1/messages/count_tokens",
                &make_body,
                false,
                true,
                &mut log,
            )
            .await?;
            if !reply.status().is_success() {
                return Ok(upstream_error(call, reply, exhausted.as_deref()).await);
            }
            let ct = content_type(&reply);
            let bytes = read_upstream(reply, call.shared.config.http_timeout).await?;
            check_json_body(Dialect::Anthropic, &ct, &bytes)?;
            Ok(json_response(200, bytes.to_vec(), None))
        }
        .await;
        counted.map_err(|err| target.redacted(err))
    }
    .await;
    let response = result.unwrap_or_else(|err: AppError| err.response(Dialect::Anthropic));
    if let Some(log) = log.as_mut() {
        log.status = response.status().as_u16();
    }
    response
}

/// `GET /v1/models` in the client's dialect: Anthropic if it sent `anthropic-version`, else the
/// front's. The upstream's list when a key is given and it answers; a static list otherwise.
pub async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response<Body> {
    let client = models_dialect(&state, &headers);
    match known_models(&state.shared, &headers, client).await {
        Ok(KnownModels::Upstream(list)) => json_response(200, list.to_string().into_bytes(), None),
        Ok(KnownModels::Ids(ids)) => {
            json_response(200, model_list(client, &ids).to_string().into_bytes(), None)
        }
        Err(err) => err.response(client),
    }
}

/// `GET /v1/models/{id}` (the SDKs' `models.retrieve`): the model from the same list as
/// `GET /v1/models`, or a 404 in the client's dialect.
pub async fn model(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response<Body> {
    let client = models_dialect(&state, &headers);
    let found = match known_models(&state.shared, &headers, client).await {
        Ok(KnownModels::Upstream(list)) => list
            .get("data")
            .and_then(Value::as_array)
            .and_then(|models| {
                models
                    .iter()
                    .find(|m| m.get("id").and_then(Value::as_str) == Some(id.as_str()))
            })
            .cloned(),
        Ok(KnownModels::Ids(ids)) => ids
            .iter()
            .find(|(known, _)| *known == id)
            .and_then(|entry| {
                model_list(client, std::slice::from_ref(entry))["data"]
                    .get(0)
                    .cloned()
            }),
        Err(err) => return err.response(client),
    };
    match found {
        Some(model) => json_response(200, model.to_string().into_bytes(), None),
        None => {
            AppError::client(
                404,
                format!(
                    "model `{id}` is not in the model list (GET /v1/models shows what this server knows)"
                ),
            )
            .response(client)
        }
    }
}

/// The dialect of a models request: Anthropic if it sent `anthropic-version`, else the front's.
fn models_dialect(state: &AppState, headers: &HeaderMap) -> Dialect {
    if headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        state.front
    }
}

/// The models a2o can name: the upstream's own list when it speaks the client's dialect and
/// nothing else is configured, else ids from the configuration, the upstream and a static list.
enum KnownModels {
    Upstream(Value),
    Ids(Vec<(String, Option<String>)>),
}

async fn known_models(
    shared: &Shared,
    headers: &HeaderMap,
    client: Dialect,
) -> Result<KnownModels, AppError> {
    let upstream = shared.config.upstream_protocol;
    let keys = request_keys(shared, headers, client)?;
    let mut ids: Vec<(String, Option<String>)> = shared
        .config
        .routes
        .model_names()
        .into_iter()
        .map(|name| (name, None))
        .collect();
    if let Some(keys) = keys {
        let key = keys.get(shared.pools.plan(keys.pool(), Instant::now())[0]);
        let headers = upstream_headers(shared, headers, upstream, key, false, false);
        let sent = match shared.upstream_url(&shared.config.upstream, "/v1/models", None) {
            Ok(url) => shared
                .client
                .send(Method::GET, &url, headers, Bytes::new())
                .await
                .ok(),
            Err(_) => None,
        };
        if let Some(reply) = sent {
            if reply.status().is_success() {
                if let Ok(list) = read_upstream(reply, shared.config.http_timeout)
                    .await
                    .map_err(drop)
                    .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(drop))
                {
                    if upstream == client && ids.is_empty() {
                        return Ok(KnownModels::Upstream(list));
                    }
                    ids.extend(model_ids(&list));
                }
            }
        }
    }
    if ids.is_empty() {
        ids = STATIC_MODELS
            .iter()
            .filter(|(_, d)| *d == upstream)
            .map(|(id, _)| ((*id).to_owned(), None))
            .collect();
    }
    Ok(KnownModels::Ids(ids))
}

/// Models listed when the upstream's list can't be had.
const STATIC_MODELS: &[(&str, Dialect)] = &[
    ("claude-opus-4-1", Dialect::Anthropic),
    ("claude-sonnet-4-5", Dialect::Anthropic),
    ("claude-haiku-4-5", Dialect::Anthropic),
];

fn model_ids(list: &Value) -> Vec<(String, Option<String>)> {
    list.get("data")
        .and_then(Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|m| {
                    let id = m.get("id")?.as_str()?.to_owned();
                    let name = m
                        .get("display_name")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    Some((id, name))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn model_list(dialect: Dialect, ids: &[(String, Option<String>)]) -> Value {
    match dialect {
        Dialect::OpenAi => json!({
            "object": "list",
            "data": ids.iter().map(|(id, _)| json!({"id": id, "object": "model", "created": 0, "owned_by": "a2o"})).collect::<Vec<_>>(),
        }),
        Dialect::Anthropic => json!({
            "data": ids.iter().map(|(id, name)| json!({
                "type": "model",
                "id": id,
                "display_name": name.clone().unwrap_or_else(|| id.clone()),
                "created_at": "1970-01-01T00:00:00Z",
            })).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": ids.first().map(|(id, _)| id.clone()),
            "last_id": ids.last().map(|(id, _)| id.clone()),
        }),
    }
}

pub async fn metrics() -> Response<Body> {
    let text = metrics::render()
        .unwrap_or_else(|| "# metrics are off: start a2o serve with --metrics\n".to_owned());
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

pub async fn health() -> Response<Body> {
    json_response(200, br#"{"status":"ok"}"#.to_vec(), None)
}

pub async fn root(State(state): State<AppState>) -> Response<Body> {
    let config = &state.shared.config;
    let info = json!({
        "name": "a2o",
        "version": env!("CARGO_PKG_VERSION"),
        "front": state.front.name(),
        "upstream": config.upstream,
        "upstream_protocol": config.upstream_protocol.name(),
        "routes": [
            "POST /v1/chat/completions",
            "POST /v1/messages",
            "POST /v1/messages/count_tokens",
            "GET /v1/models",
            "GET /health",
            "GET /",
        ],
    });
    json_response(200, info.to_string().into_bytes(), None)
}

pub async fn not_found(State(state): State<AppState>, method: Method, uri: Uri) -> Response<Body> {
    let status = if method == Method::GET || method == Method::POST || method == Method::HEAD {
        404
    } else {
        405
    };
    AppError::client(
        status,
        format!(
            "no route for {method} {}: a2o serves POST /v1/chat/completions, POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /health and GET /",
            uri.path()
        ),
    )
    .response(state.front)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::rewritten;

    fn rewrite(body: Value, model: Option<&str>, rename: Option<(&str, &str)>) -> Value {
        let bytes = serde_json::to_vec(&body).unwrap();
        serde_json::from_slice(&rewritten(&bytes, model, rename)).unwrap()
    }

    #[test]
    fn a_deployment_gets_its_model_and_its_output_limit_field() {
        let body = json!({"model": "a", "max_completion_tokens": 20, "messages": []});
        assert_eq!(
            rewrite(
                body.clone(),
                Some("b"),
                Some(("max_completion_tokens", "max_tokens"))
            ),
            json!({"model": "b", "messages": [], "max_tokens": 20})
        );
        assert_eq!(
            rewrite(
                body.clone(),
                None,
                Some(("max_completion_tokens", "max_tokens"))
            ),
            json!({"model": "a", "messages": [], "max_tokens": 20})
        );
        assert_eq!(rewrite(body.clone(), None, None), body);
        // A field the document already has is left alone.
        let both = json!({"max_tokens": 5, "max_completion_tokens": 20});
        assert_eq!(
            rewrite(
                both.clone(),
                None,
                Some(("max_completion_tokens", "max_tokens"))
            ),
            both
        );
    }
}
