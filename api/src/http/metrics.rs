//! The API's metrics, registered into the process's one metrics registry: its own
//! request counters and latency histogram ([`ApiMetrics`]), and the ticket and webhook
//! metrics whose values live in their services ([`ServiceMetrics`], read when
//! scraped). `GET /metrics` encodes the whole registry.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::tickets::TicketService;
use crate::webhooks::WebhookService;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Reasons of `fixahead_api_auth_refused_total`.
const REFUSALS: [&str; 4] = ["missing", "malformed", "invalid", "forbidden"];

/// Status classes (1xx is counted with 2xx).
const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

fn class_index(status: u16) -> usize {
    match status {
        0..=299 => 0,
        300..=399 => 1,
        400..=499 => 2,
        _ => 3,
    }
}

/// A metric made from constants of this module (so its name and labels are valid).
fn valid<T>(made: prometheus::Result<T>) -> T {
    made.expect("a valid metric name")
}

/// Requests answered, by status class; latency per route template and status class;
/// refused keys by reason; audit records that could not be written.
#[derive(Debug, Clone)]
pub(crate) struct ApiMetrics {
    requests: IntCounterVec,
    /// Children of `requests`, in [`CLASSES`] order.
    by_class: Vec<IntCounter>,
    /// Keyed by (route template, status class). Bounded: templates come from the route
    /// table (anything else is `unmatched`), classes are four.
    latency: HistogramVec,
    refused: IntCounterVec,
    audit_failures: IntCounter,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let requests = valid(IntCounterVec::new(
            Opts::new(
                "fixahead_api_requests_total",
                "HTTP requests answered, by status class.",
            ),
            &["class"],
        ));
        let refused = valid(IntCounterVec::new(
            Opts::new(
                "fixahead_api_auth_refused_total",
                "Requests refused: no key (missing), not Bearer (malformed), unknown or revoked key (invalid), role without the permission (forbidden).",
            ),
            &["reason"],
        ));
        for reason in REFUSALS {
            refused.with_label_values(&[reason]);
        }
        Self {
            by_class: CLASSES
                .iter()
                .map(|c| requests.with_label_values(&[*c]))
                .collect(),
            requests,
            latency: valid(HistogramVec::new(
                HistogramOpts::new(
                    "fixahead_http_request_duration_seconds",
                    "HTTP request latency, by route template and status class.",
                )
                .buckets(BUCKETS.to_vec()),
                &["route", "class"],
            )),
            refused,
            audit_failures: valid(IntCounter::new(
                "fixahead_api_audit_failures_total",
                "Audit records that could not be written (logged as errors).",
            )),
        }
    }
}

impl ApiMetrics {
    /// Adds the API's own metrics to `registry`.
    pub(crate) fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.requests.clone()))?;
        registry.register(Box::new(self.latency.clone()))?;
        registry.register(Box::new(self.refused.clone()))?;
        registry.register(Box::new(self.audit_failures.clone()))
    }

    fn record(&self, route: &str, status: u16, seconds: f64) {
        let i = class_index(status);
        self.by_class[i].inc();
        self.latency
            .with_label_values(&[route, CLASSES[i]])
            .observe(seconds);
    }

    /// Counts a request refused for want of a valid key or permission.
    pub(crate) fn auth_refused(&self, reason: &str) {
        if REFUSALS.contains(&reason) {
            self.refused.with_label_values(&[reason]).inc();
        }
    }

    /// Counts an audit record that could not be written.
    pub(crate) fn audit_failed(&self) {
        self.audit_failures.inc();
    }
}

/// The metrics of a service whose values it keeps itself (counts since it opened,
/// rows in its store), copied into prometheus metrics when scraped: the ticket
/// service's counters and tickets by status, the webhook deliveries.
pub(crate) struct ServiceMetrics {
    /// The metrics this collector reports.
    metrics: Vec<Box<dyn Collector>>,
    /// Sets them from the service.
    refresh: Box<dyn Fn() + Send + Sync>,
    /// One scrape at a time: a refresh and its collection belong together.
    scrape: Mutex<()>,
}

impl Collector for ServiceMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.metrics.iter().flat_map(|m| m.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        (self.refresh)();
        self.metrics.iter().flat_map(|m| m.collect()).collect()
    }
}

/// Brings a counter up to `value`, a count its service keeps (counts only grow).
fn mirror(counter: &IntCounter, value: u64) {
    let shown = counter.get();
    if value > shown {
        counter.inc_by(value - shown);
    }
}

fn counter(name: &str, help: &str) -> IntCounter {
    valid(IntCounter::new(name, help))
}

impl ServiceMetrics {
    /// The ticket service's counters since it opened and the tickets in the store by
    /// status (read from the store at every scrape; left out when it cannot be read).
    pub(crate) fn tickets(tickets: TicketService) -> Self {
        let opened = counter(
            "fixahead_tickets_opened_total",
            "Tickets opened since start.",
        );
        let updated = counter(
            "fixahead_tickets_updated_total",
            "Model flags folded into an active ticket since start.",
        );
        let predictions = counter(
            "fixahead_ticket_predictions_total",
            "Predictions recorded by the ticket service since start.",
        );
        let flags = counter(
            "fixahead_prediction_flags_total",
            "Flag episodes started (prediction.flagged events) since start.",
        );
        let breaches = valid(IntCounterVec::new(
            Opts::new(
                "fixahead_tickets_sla_breaches_total",
                "SLA clocks that ran out since start, by clock.",
            ),
            &["kind"],
        ));
        let steps_overdue = counter(
            "fixahead_ticket_steps_overdue_total",
            "Procedure steps that ran past their limit since start (docs/procedures.md).",
        );
        let satisfaction = counter(
            "fixahead_satisfaction_answers_total",
            "Satisfaction answers recorded since start (replacements included).",
        );
        let callbacks = valid(IntCounterVec::new(
            Opts::new(
                "fixahead_callbacks_total",
                "Call-backs since start, by what happened: opened, done, overdue.",
            ),
            &["event"],
        ));
        let active = valid(IntGauge::new(
            "fixahead_tickets_active",
            "Tickets open, acknowledged, scheduled or in progress.",
        ));
        let by_status = valid(IntGaugeVec::new(
            Opts::new("fixahead_tickets", "Tickets in the store, by status."),
            &["status"],
        ));
        let metrics: Vec<Box<dyn Collector>> = vec![
            Box::new(opened.clone()),
            Box::new(updated.clone()),
            Box::new(predictions.clone()),
            Box::new(flags.clone()),
            Box::new(breaches.clone()),
            Box::new(steps_overdue.clone()),
            Box::new(satisfaction.clone()),
            Box::new(callbacks.clone()),
            Box::new(active.clone()),
            Box::new(by_status.clone()),
        ];
        let refresh = move || {
            let s = tickets.stats();
            mirror(&opened, s.opened);
            mirror(&updated, s.updated);
            mirror(&predictions, s.predictions);
            mirror(&flags, s.flags);
            mirror(
                &breaches.with_label_values(&["respond"]),
                s.sla_respond_breaches,
            );
            mirror(
                &breaches.with_label_values(&["resolve"]),
                s.sla_resolve_breaches,
            );
            mirror(&steps_overdue, s.steps_overdue);
            mirror(&satisfaction, s.satisfaction_answers);
            for (event, n) in [
                ("opened", s.callbacks_opened),
                ("done", s.callbacks_done),
                ("overdue", s.callbacks_overdue),
            ] {
                mirror(&callbacks.with_label_values(&[event]), n);
            }
            active.set(0);
            by_status.reset();
            match tickets.count_by_status() {
                Ok(counts) => {
                    let total: u64 = counts
                        .iter()
                        .filter(|(s, _)| s.is_active())
                        .map(|(_, n)| n)
                        .sum();
                    active.set(total as i64);
                    for (status, n) in counts {
                        by_status
                            .with_label_values(&[status.as_str()])
                            .set(n as i64);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Could not count tickets"),
            }
        };
        Self {
            metrics,
            refresh: Box::new(refresh),
            scrape: Mutex::new(()),
        }
    }

    /// The webhook deliveries: accepted, failed attempts, given up, and pending now
    /// (read from the outbox at every scrape).
    pub(crate) fn webhooks(webhooks: WebhookService) -> Self {
        let delivered = counter(
            "fixahead_webhook_deliveries_total",
            "Webhook deliveries a receiver accepted (2xx).",
        );
        let failures = counter(
            "fixahead_webhook_failures_total",
            "Failed webhook delivery attempts (every retry counts).",
        );
        let failed = counter(
            "fixahead_webhook_deliveries_failed_total",
            "Webhook deliveries given up after max_attempts.",
        );
        let pending = valid(IntGauge::new(
            "fixahead_webhook_deliveries_pending",
            "Webhook deliveries waiting for an attempt.",
        ));
        let metrics: Vec<Box<dyn Collector>> = vec![
            Box::new(delivered.clone()),
            Box::new(failures.clone()),
            Box::new(failed.clone()),
            Box::new(pending.clone()),
        ];
        let refresh = move || {
            let s = webhooks.stats();
            mirror(&delivered, s.delivered);
            mirror(&failures, s.attempt_failures);
            mirror(&failed, s.failed);
            pending.set(webhooks.pending().unwrap_or(0) as i64);
        };
        Self {
            metrics,
            refresh: Box::new(refresh),
            scrape: Mutex::new(()),
        }
    }
}

/// Registers `collector`, logging (not failing) when it cannot: a metric missing from
/// `/metrics` must not stop the API.
pub(crate) fn register(registry: &Registry, collector: impl Collector + 'static) {
    if let Err(e) = registry.register(Box::new(collector)) {
        tracing::error!(error = %e, "Could not register metrics");
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
