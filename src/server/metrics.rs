//! Prometheus metrics for `GET /metrics`, through the `metrics` facade and its Prometheus
//! exporter. Off unless `--metrics` is given: until then no recorder is installed and every
//! call here is a no-op. Keys appear only as fingerprints, and loss paths have their array
//! indices replaced by `*` so label values stay few.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Seconds: from sub-millisecond proxy overhead up to long generations.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// Installs the process-wide recorder (once). Returns false if another recorder was already
/// installed by someone else.
pub fn enable() -> bool {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()
                .and_then(|builder| builder.install_recorder().ok())
        })
        .is_some()
}

/// The current metrics in Prometheus text format, if enabled.
pub fn render() -> Option<String> {
    HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
}

/// Drains histogram buffers; the exporter leaves scheduling it to us.
pub fn run_upkeep() {
    if let Some(handle) = HANDLE.get().and_then(Option::as_ref) {
        handle.run_upkeep();
    }
}

fn enabled() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// One finished request.
pub fn record_request(
    front: &'static str,
    route: &str,
    upstream: &'static str,
    status: u16,
    latency_s: f64,
    ttfb_s: Option<f64>,
) {
    // Building the labels allocates; with metrics off (the default) nothing would read them.
    if !enabled() {
        return;
    }
    let labels = [
        ("front", front.to_owned()),
        ("route", route.to_owned()),
        ("upstream", upstream.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("a2o_requests_total", &labels).increment(1);
    metrics::histogram!("a2o_request_duration_seconds", "front" => front, "route" => route.to_owned()).record(latency_s);
    if let Some(ttfb) = ttfb_s {
        metrics::histogram!("a2o_time_to_first_byte_seconds", "front" => front, "route" => route.to_owned()).record(ttfb);
    }
}

/// An upstream attempt that failed: `status_429`, `timeout`, `connect`, …
pub fn record_upstream_error(kind: &str) {
    metrics::counter!("a2o_upstream_errors_total", "kind" => kind.to_owned()).increment(1);
}

/// A request moved on from a key (by fingerprint) to the next one.
pub fn record_failover(key_fingerprint: &str) {
    metrics::counter!("a2o_key_failovers_total", "key" => key_fingerprint.to_owned()).increment(1);
}

/// A key (by fingerprint) started cooling down.
pub fn record_cooldown(key_fingerprint: &str) {
    metrics::counter!("a2o_key_cooldowns_total", "key" => key_fingerprint.to_owned()).increment(1);
}

pub fn stream_opened() {
    metrics::gauge!("a2o_open_streams").increment(1.0);
}

pub fn stream_closed() {
    metrics::gauge!("a2o_open_streams").decrement(1.0);
}

/// A conversion loss, by field (`/messages/*/content/*/cache_control`).
pub fn record_loss(path: &str) {
    if !enabled() {
        return;
    }
    metrics::counter!("a2o_conversion_losses_total", "field" => field_of(path)).increment(1);
}

fn field_of(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                "*"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    #[test]
    fn loss_fields_drop_indices() {
        assert_eq!(
            super::field_of("/messages/3/content/12/cache_control"),
            "/messages/*/content/*/cache_control"
        );
        assert_eq!(
            super::field_of("/events/7/delta/citation"),
            "/events/*/delta/citation"
        );
    }
}
