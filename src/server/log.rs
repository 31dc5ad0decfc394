//! One log line per request, on stderr: route, model, status, latency, key fingerprint, bytes,
//! and conversion losses. Never a key, and no bodies unless `--log-bodies` asks for them.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where log lines go; tests capture them.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The process's log sink: stderr.
pub fn stderr_sink() -> LogSink {
    Arc::new(|line: &str| {
        // One write per line: stderr is unbuffered, and `writeln!` would make two syscalls.
        let mut out = Vec::with_capacity(line.len() + 1);
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        let _ = std::io::stderr().lock().write_all(&out);
    })
}

#[derive(Clone)]
pub struct Logger {
    pub format: LogFormat,
    pub sink: LogSink,
}

impl Logger {
    /// A free-form event (startup, shutdown, warnings).
    pub fn event(&self, message: &str) {
        match self.format {
            LogFormat::Text => (self.sink)(&format!("{} a2o {message}", timestamp())),
            LogFormat::Json => (self.sink)(&json!({"ts": timestamp(), "msg": message}).to_string()),
        }
    }
}

/// The facts of one request, logged when it is dropped: for a streamed response that is when
/// the stream ends or the client goes away, so latency and bytes cover the whole stream.
pub struct RequestLog {
    logger: Logger,
    start: Instant,
    pub method: &'static str,
    pub path: String,
    /// The front (`anthropic` / `openai`) and upstream dialect, for metrics.
    pub front: &'static str,
    pub upstream: &'static str,
    pub route: String,
    pub model: Option<String>,
    pub status: u16,
    pub key: Option<String>,
    pub attempts: u32,
    pub bytes_out: u64,
    pub first_byte_ms: Option<f64>,
    pub losses: Vec<String>,
    pub error: Option<String>,
    pub body: Option<String>,
    pub stream: bool,
}

impl RequestLog {
    pub fn new(logger: Logger, method: &'static str, path: &str) -> Self {
        Self {
            logger,
            start: Instant::now(),
            method,
            path: path.to_owned(),
            front: "",
            upstream: "",
            route: String::new(),
            model: None,
            status: 0,
            key: None,
            attempts: 0,
            bytes_out: 0,
            first_byte_ms: None,
            losses: Vec::new(),
            error: None,
            body: None,
            stream: false,
        }
    }

    /// Notes bytes sent to the client (and the time of the first ones).
    pub fn sent(&mut self, bytes: usize) {
        if self.first_byte_ms.is_none() && bytes > 0 {
            self.first_byte_ms = Some(self.start.elapsed().as_secs_f64() * 1000.0);
        }
        self.bytes_out += bytes as u64;
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        let latency_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        super::metrics::record_request(
            self.front,
            &self.route,
            self.upstream,
            self.status,
            latency_ms / 1000.0,
            self.first_byte_ms.map(|ms| ms / 1000.0),
        );
        for loss in &self.losses {
            super::metrics::record_loss(loss);
        }
        let line = match self.logger.format {
            LogFormat::Json => {
                let mut v = json!({
                    "ts": timestamp(),
                    "method": self.method,
                    "path": self.path,
                    "route": self.route,
                    "model": self.model,
                    "status": self.status,
                    "latency_ms": round2(latency_ms),
                    "key": self.key,
                    "attempts": self.attempts,
                    "stream": self.stream,
                    "bytes_out": self.bytes_out,
                    "losses": self.losses,
                });
                if let Some(ms) = self.first_byte_ms {
                    v["ttfb_ms"] = Value::from(round2(ms));
                }
                if let Some(e) = &self.error {
                    v["error"] = Value::from(e.as_str());
                }
                if let Some(b) = &self.body {
                    v["body"] = Value::from(b.as_str());
                }
                v.to_string()
            }
            LogFormat::Text => {
                // Built by hand: this runs once per request, and the formatting machinery
                // costs more than the rest of a pass-through request's own work.
                let mut line = String::with_capacity(200 + self.path.len());
                push_timestamp(&mut line);
                line.push_str(" a2o ");
                line.push_str(self.method);
                line.push(' ');
                line.push_str(&self.path);
                line.push_str(" route=");
                line.push_str(if self.route.is_empty() {
                    "-"
                } else {
                    &self.route
                });
                line.push_str(" model=");
                line.push_str(self.model.as_deref().unwrap_or("-"));
                line.push_str(" status=");
                push_number(&mut line, u64::from(self.status));
                line.push_str(" latency_ms=");
                let _ = write!(line, "{latency_ms:.2}");
                line.push_str(" key=");
                line.push_str(self.key.as_deref().unwrap_or("-"));
                line.push_str(" attempts=");
                push_number(&mut line, u64::from(self.attempts));
                line.push_str(if self.stream {
                    " stream=true"
                } else {
                    " stream=false"
                });
                line.push_str(" bytes_out=");
                push_number(&mut line, self.bytes_out);
                line.push_str(" losses=");
                push_number(&mut line, self.losses.len() as u64);
                if let Some(ms) = self.first_byte_ms {
                    line.push_str(" ttfb_ms=");
                    let _ = write!(line, "{ms:.2}");
                }
                if let Some(e) = &self.error {
                    line.push_str(&format!(" error={e:?}"));
                }
                if let Some(b) = &self.body {
                    line.push_str(&format!(" body={b:?}"));
                }
                line
            }
        };
        (self.logger.sink)(&line);
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A duration for messages: whole seconds as `120 s`, anything finer as `0.3 s` (never `0 s`
/// for a sub-second timeout).
pub fn seconds(duration: std::time::Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        let text = format!("{:.3}", duration.as_secs_f64());
        format!("{} s", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// RFC 3339 UTC timestamp with milliseconds, without a date-time crate.
pub fn timestamp() -> String {
    let mut text = String::with_capacity(24);
    push_timestamp(&mut text);
    text
}

fn push_timestamp(out: &mut String) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    push_timestamp_at(out, now);
}

/// [`push_timestamp`] for a time given as the duration since the Unix epoch.
fn push_timestamp_at(out: &mut String, now: std::time::Duration) {
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    push_digits(out, y.clamp(0, 9999) as u64, 4);
    out.push('-');
    push_digits(out, u64::from(m), 2);
    out.push('-');
    push_digits(out, u64::from(d), 2);
    out.push('T');
    push_digits(out, rem / 3600, 2);
    out.push(':');
    push_digits(out, (rem % 3600) / 60, 2);
    out.push(':');
    push_digits(out, rem % 60, 2);
    out.push('.');
    push_digits(out, u64::from(now.subsec_millis()), 3);
    out.push('Z');
}

/// `value` zero-padded to `width` digits (`value` must fit).
fn push_digits(out: &mut String, value: u64, width: u32) {
    let mut divisor = 10u64.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + ((value / divisor) % 10) as u8));
        divisor /= 10;
    }
}

fn push_number(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_never_rounded_to_zero() {
        use std::time::Duration;
        assert_eq!(seconds(Duration::from_secs(120)), "120 s");
        assert_eq!(seconds(Duration::from_millis(300)), "0.3 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(1)), "0.001 s");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        use std::time::Duration;
        let mut stamp = String::new();
        // 2025-11-26 is day 20,418 of the epoch.
        push_timestamp_at(
            &mut stamp,
            Duration::from_secs(20_418 * 86_400 + 3_723) + Duration::from_millis(4),
        );
        assert_eq!(stamp, "2025-11-26T01:02:03.004Z");
        stamp.clear();
        push_timestamp_at(&mut stamp, Duration::from_millis(86_399_999));
        assert_eq!(stamp, "1970-01-01T23:59:59.999Z");
        assert_eq!(timestamp().len(), 24);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_418), (2025, 11, 26));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
