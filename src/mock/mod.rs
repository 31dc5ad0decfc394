//! The deterministic mock upstream (`a2o mock-upstream`): one HTTP server that speaks both
//! dialects, for tests, scripts and benchmarks. It owns the routing, the request log, the
//! choice of scenario and the pacing of streams; the bytes themselves come from `render`.
//!
//! Routes match on the path suffix, so a base URL with a prefix (`http://host:port/api`) works:
//! - `POST …/v1/messages` (Anthropic) and `POST …/v1/chat/completions` (OpenAI): JSON, or SSE
//!   when the body has `"stream": true`;
//! - `POST …/v1/messages/count_tokens`: `{"input_tokens": body length / 4}`;
//! - `GET …/v1/models`: Anthropic's list shape when the request has `anthropic-version` or
//!   `x-api-key`, else OpenAI's;
//! - `GET /_mock/requests` (the recorded requests, newest last; the last
//!   [`RECORDED_REQUEST_LIMIT`] are kept), `DELETE /_mock/requests` (clear), `GET /health`.
//!
//! Every `/v1/…` request is recorded, then refused with 401 if it carries no key (`x-api-key`
//! or `Authorization: Bearer`). The scenario is the first `mock:<name>` word in the text of the
//! last user message, else the `x-mock-scenario` header, else `text`:
//!
//! | name | answer |
//! |---|---|
//! | `text` | "Hello from the mock upstream." in four deltas; end_turn / stop |
//! | `echo` | the text is the compact JSON of the request body |
//! | `tool` | one call of the first declared tool (else `get_weather`) with `{"city":"Paris"}` |
//! | `parallel_tools` | "Let me check." then three calls (declared tools, cycled; else defaults) |
//! | `thinking`, `thinking_redacted` | a signed thinking block (plus a redacted one), then text; OpenAI: `reasoning_content` |
//! | `cache` | usage with cache reads and writes |
//! | `max_tokens` | "Hello", then max_tokens / length |
//! | `stop_sequence` | stop_sequence with the request's first stop sequence (else `STOP`) |
//! | `error:<status>[:<retry-after>]` | that status with the dialect's error body; 429/503/529 carry `retry-after: 0` |
//! | `fail_key:<key>`, `fail_key_529:<key>` | 429 / 529 for that key, `text` for any other |
//! | `midstream_error` | a text delta, then the dialect's in-band error (non-streaming: overloaded status) |
//! | `truncate` | a text delta, then the connection drops (non-streaming: half the JSON, then the drop) |
//! | `slow:<ms>` | `text`, with that gap between events (non-streaming: before the body) |
//! | `stall` | the headers and the first event, then silence until the client leaves |
//! | `html`, `bad_json` | 200 with a firewall page / truncated JSON |
//! | `reset` | the connection closes with no response |
//!
//! `x-mock-gap-ms: N` paces any stream. Streams are one buffer sliced per event and paced
//! inside the body (no task per stream), and sockets get TCP_NODELAY, so the mock stays far
//! cheaper than anything it measures.

mod render;
mod scenario;

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{HeaderName, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use futures_util::Stream;
use tokio::net::TcpListener;
use tokio::sync::watch;

use render::{Cut, Dialect, Ending, Events, Script, Usage, ANSWER};
use scenario::{RequestProbe, Scenario};

/// How many recorded requests are kept: enough for any test, bounded for a long benchmark.
pub const RECORDED_REQUEST_LIMIT: usize = 1000;
/// Request bodies above this are refused with 413.
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// How long in-flight responses may take to finish after shutdown (streams end at once).
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream; charset=utf-8";

const ANTHROPIC_MODELS: &[u8] = br#"{"data":[{"type":"model","id":"claude-mock-1","display_name":"Claude Mock","created_at":"2025-01-01T00:00:00Z"}],"has_more":false,"first_id":"claude-mock-1","last_id":"claude-mock-1"}"#;
const OPENAI_MODELS: &[u8] =
    br#"{"object":"list","data":[{"id":"gpt-mock-1","object":"model","created":1700000000,"owned_by":"a2o-mock"}]}"#;
const HTML_PAGE: &[u8] = b"<html><body>Blocked by firewall</body></html>";
const BAD_JSON: &[u8] = br#"{"id":"msg_mock","type":"mess"#;
const HEALTH: &[u8] = br#"{"status":"ok"}"#;

#[derive(Debug, Clone)]
pub struct MockOptions {
    pub host: String,
    pub port: u16,
}

/// Binds, prints nothing, and returns the bound address and the server to run.
pub async fn bind(opts: &MockOptions) -> io::Result<(SocketAddr, MockServer)> {
    let listener = TcpListener::bind((opts.host.as_str(), opts.port)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let shared = Arc::new(Shared {
        state: MockState::default(),
        stopped,
    });
    Ok((
        addr,
        MockServer {
            listener,
            shared,
            stop,
        },
    ))
}

/// A bound mock, ready to serve.
pub struct MockServer {
    listener: TcpListener,
    shared: Arc<Shared>,
    /// Set when shutdown starts, so held streams (`stall`, paced ones) end instead of
    /// keeping the graceful drain waiting.
    stop: watch::Sender<bool>,
}

struct Shared {
    state: MockState,
    stopped: watch::Receiver<bool>,
}

impl MockServer {
    /// The request log and stream counter, for in-process tests.
    pub fn state(&self) -> MockState {
        self.shared.state.clone()
    }

    /// Serves until `shutdown` resolves, then ends open streams and lets in-flight responses
    /// finish for a short while.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let MockServer {
            listener,
            shared,
            stop,
        } = self;
        let app = Router::new().fallback(handle).with_state(shared);
        let listener = listener.tap_io(|tcp| {
            // Nagle would hold small SSE events back for up to 40 ms.
            let _ = tcp.set_nodelay(true);
        });
        let mut stopped = stop.subscribe();
        let serving = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .into_future();
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => return result,
            () = shutdown => {}
        }
        let _ = stop.send(true);
        tokio::time::timeout(DRAIN_LIMIT, serving)
            .await
            .unwrap_or(Ok(()))
    }
}

/// What the mock has seen: recorded requests and the number of response bodies still open.
#[derive(Clone, Default)]
pub struct MockState {
    inner: Arc<StateInner>,
}

#[derive(Default)]
struct StateInner {
    requests: Mutex<VecDeque<Recorded>>,
    open_streams: AtomicUsize,
}

/// A request as received; turned into a [`RecordedRequest`] only when someone asks, so the
/// hot path stores parts it already owns and parses nothing.
struct Recorded {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// One request received on a `/v1/…` route.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The body as JSON, or `Null` if it is not JSON.
    pub body: serde_json::Value,
}

impl From<&Recorded> for RecordedRequest {
    fn from(recorded: &Recorded) -> Self {
        RecordedRequest {
            method: recorded.method.as_str().to_owned(),
            path: recorded.uri.path().to_owned(),
            query: recorded.uri.query().map(str::to_owned),
            headers: recorded
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: serde_json::from_slice(&recorded.body).unwrap_or(serde_json::Value::Null),
        }
    }
}

impl MockState {
    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().iter().map(RecordedRequest::from).collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Response bodies currently being sent (every stream, and the paced or held
    /// non-streaming fault bodies). Drops to 0 once clients have gone.
    pub fn open_streams(&self) -> usize {
        self.inner.open_streams.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Recorded>> {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, recorded: Recorded) {
        let mut requests = self.lock();
        if requests.len() >= RECORDED_REQUEST_LIMIT {
            requests.pop_front();
        }
        requests.push_back(recorded);
    }

    fn open_stream(&self) -> OpenStream {
        self.inner.open_streams.fetch_add(1, Ordering::SeqCst);
        OpenStream(self.inner.clone())
    }
}

/// Counts one open response body until the body is dropped (finished, or the client left).
struct OpenStream(Arc<StateInner>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Messages,
    ChatCompletions,
    CountTokens,
    Models,
    Health,
    Recorded,
    Unknown,
}

impl Endpoint {
    fn of(path: &str) -> Endpoint {
        if path.ends_with("/v1/messages/count_tokens") {
            Endpoint::CountTokens
        } else if path.ends_with("/v1/messages") {
            Endpoint::Messages
        } else if path.ends_with("/v1/chat/completions") {
            Endpoint::ChatCompletions
        } else if path.ends_with("/v1/models") {
            Endpoint::Models
        } else if path.ends_with("/_mock/requests") {
            Endpoint::Recorded
        } else if path.ends_with("/health") {
            Endpoint::Health
        } else {
            Endpoint::Unknown
        }
    }

    /// The dialect of the answer; for routes both dialects share, the headers decide.
    fn dialect(self, headers: &HeaderMap) -> Dialect {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => Dialect::Anthropic,
            Endpoint::ChatCompletions => Dialect::OpenAi,
            _ if headers.contains_key("anthropic-version") || headers.contains_key("x-api-key") => {
                Dialect::Anthropic
            }
            _ => Dialect::OpenAi,
        }
    }

    fn method(self) -> Method {
        match self {
            Endpoint::Models | Endpoint::Health => Method::GET,
            _ => Method::POST,
        }
    }
}

/// The request headers the answer depends on, read before the headers move into the log.
struct CallHeaders {
    key: Option<String>,
    scenario: Option<String>,
    gap: Duration,
}

impl CallHeaders {
    fn read(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
        };
        let bearer = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim);
        let key = text("x-api-key")
            .filter(|key| !key.is_empty())
            .or(bearer.filter(|key| !key.is_empty()));
        CallHeaders {
            key: key.map(str::to_owned),
            scenario: text("x-mock-scenario")
                .filter(|name| !name.is_empty())
                .map(str::to_owned),
            gap: text("x-mock-gap-ms")
                .and_then(|ms| ms.parse().ok())
                .map(Duration::from_millis)
                .unwrap_or_default(),
        }
    }
}

/// What to send back, before it becomes an HTTP response.
enum Reply {
    Whole {
        status: u16,
        content_type: &'static str,
        retry_after: Option<u64>,
        body: Bytes,
    },
    /// A 200 whose body is sent event by event, `gap` apart, and then ends as `end` says.
    Feed {
        content_type: &'static str,
        events: Events,
        gap: Duration,
        delay_first: bool,
        end: End,
    },
    /// Close the connection without a response.
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Finish,
    /// Keep the connection open, silent, until the client leaves or the mock stops.
    Stall,
    /// Drop the connection, so the client sees a body cut short.
    Abort,
}

impl Reply {
    fn json(body: impl Into<Bytes>) -> Reply {
        Reply::Whole {
            status: 200,
            content_type: JSON,
            retry_after: None,
            body: body.into(),
        }
    }

    fn error(
        dialect: Dialect,
        status: u16,
        message: Option<&str>,
        retry_after: Option<u64>,
    ) -> Reply {
        Reply::Whole {
            status,
            content_type: JSON,
            retry_after,
            body: render::error_body(dialect, status, message).into(),
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let endpoint = Endpoint::of(parts.uri.path());
    let dialect = endpoint.dialect(&parts.headers);
    match endpoint {
        Endpoint::Health => return respond(Reply::json(HEALTH), dialect, &shared),
        Endpoint::Recorded => return recorded_requests(&shared.state, &parts.method),
        Endpoint::Unknown => {
            let reply = Reply::error(dialect, 404, Some("mock: no such route"), None);
            return respond(reply, dialect, &shared);
        }
        Endpoint::Messages
        | Endpoint::ChatCompletions
        | Endpoint::CountTokens
        | Endpoint::Models => {}
    }
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => {
            let reply = Reply::error(
                dialect,
                413,
                Some("mock: request body too large or unreadable"),
                None,
            );
            return respond(reply, dialect, &shared);
        }
    };
    let call = CallHeaders::read(&parts.headers);
    let method_allowed = parts.method == endpoint.method();
    shared.state.record(Recorded {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        body: body.clone(),
    });
    let reply = if method_allowed {
        answer(endpoint, dialect, &call, &body)
    } else {
        Reply::error(
            dialect,
            405,
            Some("mock: method not allowed on this route"),
            None,
        )
    };
    respond(reply, dialect, &shared)
}

fn recorded_requests(state: &MockState, method: &Method) -> Response {
    let (status, body) = match *method {
        Method::GET => match serde_json::to_vec(&state.requests()) {
            Ok(body) => (StatusCode::OK, Bytes::from(body)),
            Err(err) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::from(serde_json::json!({ "error": err.to_string() }).to_string()),
            ),
        },
        Method::DELETE => {
            state.clear();
            (StatusCode::OK, Bytes::from_static(b"{\"cleared\":true}"))
        }
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"{\"error\":\"use GET or DELETE\"}"),
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// Chooses the answer for a `/v1/…` request. Pure: all waiting happens in the body.
fn answer(endpoint: Endpoint, dialect: Dialect, call: &CallHeaders, body: &Bytes) -> Reply {
    let Some(key) = call.key.as_deref() else {
        let message = "mock: no API key (send x-api-key or Authorization: Bearer)";
        return Reply::error(dialect, 401, Some(message), None);
    };
    let probe = if endpoint == Endpoint::Models {
        RequestProbe::default()
    } else {
        match RequestProbe::parse(body) {
            Ok(probe) => probe,
            Err(err) => {
                let message = format!("mock: request body is not a request of this route: {err}");
                return Reply::error(dialect, 400, Some(&message), None);
            }
        }
    };
    let scenario = match probe.scenario_token().or_else(|| call.scenario.clone()) {
        None => Scenario::Text,
        Some(name) => match Scenario::parse(&name) {
            Ok(scenario) => scenario.for_key(key),
            Err(err) => return Reply::error(dialect, 400, Some(&err.to_string()), None),
        },
    };
    if let Some(reply) = fault(&scenario, dialect) {
        return reply;
    }
    match endpoint {
        Endpoint::Models => Reply::json(match dialect {
            Dialect::Anthropic => ANTHROPIC_MODELS,
            Dialect::OpenAi => OPENAI_MODELS,
        }),
        Endpoint::CountTokens => {
            Reply::json(format!("{{\"input_tokens\":{}}}", (body.len() / 4).max(1)))
        }
        _ => completion(dialect, &probe, &scenario, call.gap, body),
    }
}

/// The scenarios that answer the same way on every route.
fn fault(scenario: &Scenario, dialect: Dialect) -> Option<Reply> {
    Some(match scenario {
        Scenario::Error {
            status,
            retry_after,
        } => Reply::error(dialect, *status, None, *retry_after),
        Scenario::Html => Reply::Whole {
            status: 200,
            content_type: "text/html; charset=utf-8",
            retry_after: None,
            body: Bytes::from_static(HTML_PAGE),
        },
        Scenario::BadJson => Reply::json(BAD_JSON),
        Scenario::Reset => Reply::Reset,
        _ => return None,
    })
}

fn completion(
    dialect: Dialect,
    probe: &RequestProbe<'_>,
    scenario: &Scenario,
    gap: Duration,
    body: &Bytes,
) -> Reply {
    let declared = probe.tool_names();
    let mut cut = Cut::None;
    let mut gap = gap;
    let script = match scenario {
        Scenario::Echo => {
            let echoed = match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(value) => value.to_string(),
                Err(_) => String::from_utf8_lossy(body).into_owned(),
            };
            Script::text(echoed)
        }
        Scenario::Tool => Script::tools(&declared, 1),
        Scenario::ParallelTools => Script {
            text: Some("Let me check.".into()),
            ..Script::tools(&declared, 3)
        },
        Scenario::Thinking { redacted } => Script {
            thinking: Some(*redacted),
            usage: Usage {
                output: 12,
                reasoning: 5,
                ..Usage::DEFAULT
            },
            ..Script::text(ANSWER)
        },
        Scenario::Cache => Script {
            usage: Usage {
                input: 10,
                output: 5,
                cache_read: 100,
                cache_creation: 50,
                reasoning: 0,
            },
            ..Script::text(ANSWER)
        },
        Scenario::MaxTokens => Script {
            stop: Ending::MaxTokens,
            usage: Usage {
                output: 1,
                ..Usage::DEFAULT
            },
            ..Script::text("Hello")
        },
        Scenario::StopSequence => {
            let sequence = probe.first_stop_sequence().unwrap_or("STOP").to_owned();
            Script {
                stop: Ending::StopSequence(sequence),
                ..Script::text(ANSWER)
            }
        }
        Scenario::MidstreamError => {
            cut = Cut::MidstreamError;
            Script::text(ANSWER)
        }
        Scenario::Truncate => {
            cut = Cut::AfterFirstDelta;
            Script::text(ANSWER)
        }
        Scenario::Stall => {
            cut = Cut::FirstEvent;
            Script::text(ANSWER)
        }
        Scenario::Slow(pace) => {
            gap = *pace;
            Script::text(ANSWER)
        }
        Scenario::Text
        | Scenario::Error { .. }
        | Scenario::FailKey { .. }
        | Scenario::Html
        | Scenario::BadJson
        | Scenario::Reset => Script::text(ANSWER),
    };
    let model = probe.model();

    if probe.stream.unwrap_or(false) {
        let events = match dialect {
            Dialect::Anthropic => render::anthropic_stream(&script, model, cut),
            Dialect::OpenAi => render::openai_stream(&script, model, probe.include_usage(), cut),
        };
        let end = match cut {
            Cut::AfterFirstDelta => End::Abort,
            Cut::FirstEvent => End::Stall,
            Cut::None | Cut::MidstreamError => End::Finish,
        };
        return Reply::Feed {
            content_type: SSE,
            events,
            gap,
            delay_first: false,
            end,
        };
    }

    if cut == Cut::MidstreamError {
        // Without a stream there is no "middle": the upstream fails before answering.
        let status = match dialect {
            Dialect::Anthropic => 529,
            Dialect::OpenAi => 503,
        };
        return Reply::error(dialect, status, Some("Overloaded"), Some(0));
    }
    let whole = Bytes::from(match dialect {
        Dialect::Anthropic => render::anthropic_message(&script, model),
        Dialect::OpenAi => render::openai_completion(&script, model),
    });
    let single = |bytes: Bytes| Events {
        ends: vec![bytes.len()],
        bytes,
    };
    match scenario {
        Scenario::Stall => Reply::Feed {
            content_type: JSON,
            events: Events::default(),
            gap,
            delay_first: false,
            end: End::Stall,
        },
        Scenario::Truncate => {
            let half = whole.slice(..whole.len() / 2);
            Reply::Feed {
                content_type: JSON,
                events: single(half),
                gap: Duration::ZERO,
                delay_first: false,
                end: End::Abort,
            }
        }
        Scenario::Slow(_) => Reply::Feed {
            content_type: JSON,
            events: single(whole),
            gap,
            delay_first: true,
            end: End::Finish,
        },
        _ => Reply::Whole {
            status: 200,
            content_type: JSON,
            retry_after: None,
            body: whole,
        },
    }
}

fn respond(reply: Reply, dialect: Dialect, shared: &Shared) -> Response {
    let mut response = match reply {
        Reply::Whole {
            status,
            content_type,
            retry_after,
            body,
        } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(seconds) = retry_after {
                headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Reply::Feed {
            content_type,
            events,
            gap,
            delay_first,
            end,
        } => {
            let feed = Feed {
                bytes: events.bytes,
                ends: events.ends,
                sent: 0,
                offset: 0,
                gap,
                delay_first,
                end,
                stopped: shared.stopped.clone(),
                _open: shared.state.open_stream(),
            };
            let mut response = Response::new(Body::from_stream(feed_stream(feed)));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        Reply::Reset => {
            // An error from the very first poll of the body makes hyper close the connection
            // before the buffered head is flushed: the client sees no response at all.
            let failing = futures_util::stream::once(async {
                Err::<Bytes, _>(io::Error::other("mock: reset"))
            });
            return Response::new(Body::from_stream(failing));
        }
    };
    let (name, value) = match dialect {
        Dialect::Anthropic => ("request-id", "req_mock"),
        Dialect::OpenAi => ("x-request-id", "req_mock"),
    };
    response.headers_mut().insert(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    );
    response
}

/// A response body in flight: one buffer, sliced per event when paced.
struct Feed {
    bytes: Bytes,
    ends: Vec<usize>,
    /// Events sent so far.
    sent: usize,
    /// Bytes sent so far.
    offset: usize,
    gap: Duration,
    delay_first: bool,
    end: End,
    stopped: watch::Receiver<bool>,
    _open: OpenStream,
}

fn feed_stream(feed: Feed) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(feed, |mut feed| async move {
        if feed.sent < feed.ends.len() {
            let paced = !feed.gap.is_zero();
            if paced && (feed.sent > 0 || feed.delay_first) {
                tokio::select! {
                    () = tokio::time::sleep(feed.gap) => {}
                    _ = feed.stopped.wait_for(|stop| *stop) => return None,
                }
            }
            // Unpaced, everything goes in one chunk: one write, one syscall.
            let through = if paced {
                feed.sent + 1
            } else {
                feed.ends.len()
            };
            let end = feed
                .ends
                .get(through - 1)
                .copied()
                .unwrap_or(feed.bytes.len())
                .min(feed.bytes.len());
            let chunk = feed.bytes.slice(feed.offset.min(end)..end);
            feed.sent = through;
            feed.offset = end;
            return Some((Ok(chunk), feed));
        }
        match std::mem::replace(&mut feed.end, End::Finish) {
            End::Finish => None,
            End::Stall => {
                let _ = feed.stopped.wait_for(|stop| *stop).await;
                None
            }
            End::Abort => {
                // Give the connection one turn to flush what was sent, then fail the body so
                // hyper drops the connection without the final chunk.
                tokio::task::yield_now().await;
                Some((Err(io::Error::other("mock: connection cut short")), feed))
            }
        }
    })
}
