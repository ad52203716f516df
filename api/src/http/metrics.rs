//! The API's own counters.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use domain::TicketStatus;

use crate::tickets::TicketStats;

/// Requests answered, by status class (1xx is counted with 2xx).
#[derive(Debug, Default)]
pub(crate) struct ApiMetrics {
    by_class: [AtomicU64; 4],
}

const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

impl ApiMetrics {
    fn record(&self, status: u16) {
        let i = match status {
            0..=299 => 0,
            300..=399 => 1,
            400..=499 => 2,
            _ => 3,
        };
        self.by_class[i].fetch_add(1, Ordering::Relaxed);
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

/// Middleware counting every response by status class.
pub(crate) async fn count_requests(
    State(metrics): State<Arc<ApiMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    metrics.record(response.status().as_u16());
    response
}
