//! The HTTP client that talks to upstreams. Direct connections go through a pooled hyper
//! client: TLS by rustls, trusting the Mozilla roots and the system certificate store (so a
//! company CA in `/etc/ssl/certs` or `SSL_CERT_FILE` works), HTTP/2 by ALPN, TCP_NODELAY. It
//! costs a fraction of reqwest per request because it neither re-parses the URL nor runs
//! redirect and retry layers. When the environment names a proxy (`HTTPS_PROXY`, `ALL_PROXY`,
//! `socks5://` included), requests go through reqwest, which implements the proxy rules.
//!
//! Redirects are never followed: an upstream that redirects a POST is misconfigured, and the
//! caller reports where it points.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The `user-agent` of every upstream request.
const USER_AGENT: &str = concat!("a2o/", env!("CARGO_PKG_VERSION"));

/// Environment variables that make reqwest use a proxy.
const PROXY_VARIABLES: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

type DirectClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One client for every upstream, shared by all requests, keeping connections alive.
pub struct UpstreamClient {
    inner: Inner,
    /// How long to wait to connect and for the response head.
    timeout: Duration,
}

enum Inner {
    // Boxed because the hyper client is large; there is one per process.
    Direct(Box<DirectClient>),
    Proxied(reqwest::Client),
}

/// Why an upstream request got no answer.
#[derive(Debug)]
pub struct UpstreamError {
    pub kind: UpstreamErrorKind,
    /// The underlying cause, in words (never the URL's query or a header).
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    Timeout,
    Connect,
    Transport,
}

impl UpstreamError {
    pub fn is_timeout(&self) -> bool {
        self.kind == UpstreamErrorKind::Timeout
    }

    /// The short label used in logs and metrics.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::Transport => "transport",
        }
    }

    pub fn timeout() -> Self {
        Self {
            kind: UpstreamErrorKind::Timeout,
            cause: "timed out".to_owned(),
        }
    }

    fn from_reqwest(err: &reqwest::Error) -> Self {
        let kind = if err.is_timeout() {
            UpstreamErrorKind::Timeout
        } else if err.is_connect() {
            UpstreamErrorKind::Connect
        } else {
            UpstreamErrorKind::Transport
        };
        Self {
            kind,
            cause: innermost_cause(err),
        }
    }

    fn from_hyper(err: &hyper_util::client::legacy::Error) -> Self {
        // The connector gives each resolved address its share of the connect timeout, and the
        // kernel has its own: both surface as an io `TimedOut` somewhere in the chain.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        let mut timed_out = false;
        while let Some(current) = cause {
            timed_out |= current
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
            cause = current.source();
        }
        let kind = if timed_out {
            UpstreamErrorKind::Timeout
        } else if err.is_connect() {
            UpstreamErrorKind::Connect
        } else {
            UpstreamErrorKind::Transport
        };
        Self {
            kind,
            cause: innermost_cause(err),
        }
    }
}

impl UpstreamError {
    /// A body that broke off. Both clients wrap hyper's error; a connection closed early
    /// ("unexpected EOF during chunk size line") is said plainly instead.
    fn from_body(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(current) = cause {
            let closed_early = current
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_incomplete_message)
                || current
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof);
            if closed_early {
                return Self {
                    kind: UpstreamErrorKind::Transport,
                    cause: "the upstream closed the connection before the response ended"
                        .to_owned(),
                };
            }
            cause = current.source();
        }
        Self {
            kind: UpstreamErrorKind::Transport,
            cause: innermost_cause(err),
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cause)
    }
}

/// The most specific message in an error's chain ("Connection refused (os error 111)"), which
/// says what went wrong better than the wrappers around it.
fn innermost_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// An upstream's answer: status and headers, with the body still to be read.
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: ReplyBody,
}

enum ReplyBody {
    Direct(hyper::body::Incoming),
    Proxied(reqwest::Response),
}

impl Reply {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The next piece of the body, or `None` at its end. No timeout of its own: callers bound
    /// the wait.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        match &mut self.body {
            ReplyBody::Direct(body) => loop {
                match body.frame().await {
                    None => return Ok(None),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) if data.is_empty() => continue,
                        Ok(data) => return Ok(Some(data)),
                        // Trailers carry nothing a2o forwards.
                        Err(_) => continue,
                    },
                    Some(Err(err)) => return Err(UpstreamError::from_body(&err)),
                }
            },
            ReplyBody::Proxied(response) => response.chunk().await.map_err(|err| {
                if err.is_timeout() {
                    UpstreamError::timeout()
                } else {
                    UpstreamError::from_body(&err)
                }
            }),
        }
    }
}

/// rustls settings for upstream connections: the Mozilla roots plus whatever the system
/// trusts. A system store that cannot be read leaves the Mozilla roots.
fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    for certificate in native.certs {
        // One unusable system certificate must not cost the others.
        let _ = roots.add(certificate);
    }
    rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl UpstreamClient {
    /// A client whose connects and response heads are bounded by `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let proxied = PROXY_VARIABLES
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
        let inner = if proxied {
            Inner::Proxied(
                reqwest::Client::builder()
                    .connect_timeout(timeout)
                    .read_timeout(timeout)
                    .tcp_nodelay(true)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(USER_AGENT)
                    .build()?,
            )
        } else {
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_nodelay(true);
            http.set_connect_timeout(Some(timeout));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls_config())
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            Inner::Direct(Box::new(
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    // Without a timer idle connections are only dropped when next checked out.
                    .pool_timer(TokioTimer::new())
                    .build(https),
            ))
        };
        Ok(Self { inner, timeout })
    }

    /// True when requests go through a proxy from the environment.
    pub fn is_proxied(&self) -> bool {
        matches!(self.inner, Inner::Proxied(_))
    }

    /// Sends one request and waits for the response head.
    pub async fn send(
        &self,
        method: Method,
        uri: &Uri,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Reply, UpstreamError> {
        headers
            .entry(header::USER_AGENT)
            .or_insert(HeaderValue::from_static(USER_AGENT));
        match &self.inner {
            Inner::Direct(client) => {
                let mut request = hyper::Request::new(Full::new(body));
                *request.method_mut() = method;
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = headers;
                let response = tokio::time::timeout(self.timeout, client.request(request))
                    .await
                    .map_err(|_| UpstreamError::timeout())?
                    .map_err(|err| UpstreamError::from_hyper(&err))?;
                let (parts, body) = response.into_parts();
                Ok(Reply {
                    status: parts.status,
                    headers: parts.headers,
                    body: ReplyBody::Direct(body),
                })
            }
            Inner::Proxied(client) => {
                let response = client
                    .request(method, uri.to_string())
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(|err| UpstreamError::from_reqwest(&err))?;
                Ok(Reply {
                    status: response.status(),
                    headers: response.headers().clone(),
                    body: ReplyBody::Proxied(response),
                })
            }
        }
    }
}
