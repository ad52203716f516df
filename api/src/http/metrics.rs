//! The API's own counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use domain::TicketStatus;

use crate::tickets::TicketStats;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Reasons of `fixahead_api_auth_refused_total`.
const REFUSALS: [&str; 4] = ["missing", "malformed", "invalid", "forbidden"];

/// One latency histogram (cumulative counts are computed when rendering).
#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Requests answered, by status class (1xx is counted with 2xx); latency per route
/// template and status class; refused keys by reason.
#[derive(Debug, Default)]
pub(crate) struct ApiMetrics {
    by_class: [AtomicU64; 4],
    /// Keyed by (route template, status class). Bounded: templates come from the route
    /// table (anything else is `unmatched`), classes are four.
    latency: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    refused: [AtomicU64; REFUSALS.len()],
    audit_failures: AtomicU64,
}

const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

fn class_index(status: u16) -> usize {
    match status {
        0..=299 => 0,
        300..=399 => 1,
        400..=499 => 2,
        _ => 3,
    }
}

impl ApiMetrics {
    fn record(&self, route: &str, status: u16, seconds: f64) {
        let i = class_index(status);
        self.by_class[i].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.latency.lock() {
            let h = map.entry((route.to_owned(), CLASSES[i])).or_default();
            if let Some(b) = BUCKETS.iter().position(|b| seconds <= *b) {
                h.counts[b] += 1;
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// Counts a request refused for want of a valid key or permission.
    pub(crate) fn auth_refused(&self, reason: &str) {
        if let Some(i) = REFUSALS.iter().position(|r| *r == reason) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an audit record that could not be written.
    pub(crate) fn audit_failed(&self) {
        self.audit_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn render_http(&self, out: &mut String) {
        out.push_str("# HELP fixahead_http_request_duration_seconds HTTP request latency, by route template and status class.\n");
        out.push_str("# TYPE fixahead_http_request_duration_seconds histogram\n");
        if let Ok(map) = self.latency.lock() {
            for ((route, class), h) in map.iter() {
                let labels = format!("route=\"{route}\",class=\"{class}\"");
                let mut cumulative = 0;
                for (bound, n) in BUCKETS.iter().zip(h.counts) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "fixahead_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "fixahead_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}\n\
                     fixahead_http_request_duration_seconds_sum{{{labels}}} {}\n\
                     fixahead_http_request_duration_seconds_count{{{labels}}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
        out.push_str("# HELP fixahead_api_auth_refused_total Requests refused: no key (missing), not Bearer (malformed), unknown or revoked key (invalid), role without the permission (forbidden).\n");
        out.push_str("# TYPE fixahead_api_auth_refused_total counter\n");
        for (reason, n) in REFUSALS.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "fixahead_api_auth_refused_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP fixahead_api_audit_failures_total Audit records that could not be written (logged as errors).\n# TYPE fixahead_api_audit_failures_total counter\nfixahead_api_audit_failures_total {}",
            self.audit_failures.load(Ordering::Relaxed)
        );
    }

    /// Appends the API's metrics in the Prometheus text format.
    pub(crate) fn render(
        &self,
        out: &mut String,
        stats: TicketStats,
        by_status: Option<&[(TicketStatus, u64)]>,
    ) {
        out.push_str(
            "# HELP fixahead_api_requests_total HTTP requests answered, by status class.\n",
        );
        out.push_str("# TYPE fixahead_api_requests_total counter\n");
        for (class, n) in CLASSES.iter().zip(&self.by_class) {
            let _ = writeln!(
                out,
                "fixahead_api_requests_total{{class=\"{class}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        self.render_http(out);
        let counters = [
            (
                "fixahead_tickets_opened_total",
                "Tickets opened since start.",
                stats.opened,
            ),
            (
                "fixahead_tickets_updated_total",
                "Model flags folded into an active ticket since start.",
                stats.updated,
            ),
            (
                "fixahead_ticket_predictions_total",
                "Predictions recorded by the ticket service since start.",
                stats.predictions,
            ),
            (
                "fixahead_prediction_flags_total",
                "Flag episodes started (prediction.flagged events) since start.",
                stats.flags,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP fixahead_tickets_sla_breaches_total SLA clocks that ran out since start, by clock.\n# TYPE fixahead_tickets_sla_breaches_total counter\nfixahead_tickets_sla_breaches_total{{kind=\"respond\"}} {}\nfixahead_tickets_sla_breaches_total{{kind=\"resolve\"}} {}",
            stats.sla_respond_breaches, stats.sla_resolve_breaches
        );
        if let Some(by_status) = by_status {
            let active: u64 = by_status
                .iter()
                .filter(|(s, _)| s.is_active())
                .map(|(_, n)| n)
                .sum();
            let _ = writeln!(
                out,
                "# HELP fixahead_tickets_active Tickets open, acknowledged, scheduled or in progress.\n# TYPE fixahead_tickets_active gauge\nfixahead_tickets_active {active}"
            );
            out.push_str("# HELP fixahead_tickets Tickets in the store, by status.\n# TYPE fixahead_tickets gauge\n");
            for (status, n) in by_status {
                let _ = writeln!(out, "fixahead_tickets{{status=\"{status}\"}} {n}");
            }
        }
    }
}

/// Middleware counting every response by status class, and timing it by route template.
pub(crate) async fn count_requests(
    State(metrics): State<Arc<ApiMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.record(
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
