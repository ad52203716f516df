//! The dispatcher: queues deliveries when events are committed and sends the due
//! ones, until stopped.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tokio::sync::watch;

use super::{Attempt, DeliveryStatus, DueDelivery, WebhookService, SIGNATURE_HEADER};
use crate::{Error, Result};

/// Longest sleep between passes when nothing wakes the dispatcher: a safety net for a
/// wake-up missed while a pass was running (webhooks registered meanwhile, clock jumps).
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// How often finished deliveries past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Longest error text stored per attempt.
const MAX_ERROR_CHARS: usize = 300;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(format!("webhook task: {e}")))?
}

/// Runs the dispatcher until `stop` completes: after every commit that wrote events
/// (`events` is [`crate::TicketService::subscribe_events`]) it queues deliveries, and
/// it sends due deliveries, `concurrency` at a time, as their retry times come.
/// Errors of the store are logged and retried; they never end the task.
pub async fn run(
    service: WebhookService,
    mut events: watch::Receiver<i64>,
    stop: impl Future<Output = ()>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(
            u64::try_from(service.config().timeout.millis()).unwrap_or(10_000),
        ))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fixahead-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Cannot build the webhook HTTP client; webhooks are not delivered");
            return;
        }
    };
    tokio::pin!(stop);
    let mut last_prune: Option<Instant> = None;
    loop {
        events.borrow_and_update();
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            let s = service.clone();
            match blocking(move || s.prune()).await {
                Ok(n) if n > 0 => {
                    tracing::debug!(deleted = n, "Pruned finished webhook deliveries")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "Pruning webhook deliveries failed"),
            }
            last_prune = Some(Instant::now());
        }
        // Stopping abandons requests in flight; they were not recorded, so they are
        // sent again after the next start.
        let result = tokio::select! {
            () = &mut stop => return,
            result = pass(&service, &client) => result,
        };
        let wait = match result {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "Webhook dispatch failed; retrying");
                Duration::from_secs(1)
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = &mut stop => return,
            changed = events.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass: queue new events, send what is due. Returns how long to sleep before the
/// next pass unless woken (zero: more is due right away).
async fn pass(service: &WebhookService, client: &reqwest::Client) -> Result<Duration> {
    let s = service.clone();
    let page = service.config().concurrency.max(1) * 8;
    let (queued, due) = blocking(move || Ok((s.enqueue()?, s.due(page)?))).await?;
    if queued > 0 {
        tracing::debug!(queued, "Webhook deliveries queued");
    }
    let full = due.len() >= page;
    futures_util::stream::iter(due)
        .map(|d| send(service, client, d))
        .buffer_unordered(service.config().concurrency.max(1))
        .collect::<Vec<()>>()
        .await;
    if full {
        return Ok(Duration::ZERO);
    }
    let s = service.clone();
    let next = blocking(move || s.next_due()).await?;
    let now = service.now().millis();
    Ok(match next {
        Some(t) => {
            Duration::from_millis(u64::try_from(t.millis().saturating_sub(now)).unwrap_or(0))
                .min(IDLE_CHECK)
        }
        None => IDLE_CHECK,
    })
}

/// Sends one delivery and records the attempt.
#[tracing::instrument(skip_all, fields(webhook_id = d.webhook_id, delivery_id = d.id, event_id = d.event_id))]
async fn send(service: &WebhookService, client: &reqwest::Client, d: DueDelivery) {
    let at = service.now();
    let started = Instant::now();
    let result = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("x-fixahead-event-id", d.event_id.to_string())
        .header("x-fixahead-event-type", d.event_type.as_str())
        .header("x-fixahead-delivery-id", d.id.to_string())
        .header(
            SIGNATURE_HEADER,
            super::signature(&d.secret, d.body.as_bytes()),
        )
        .body(d.body.clone())
        .send()
        .await;
    let (http_status, error) = match result {
        Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
        Ok(r) => (
            Some(r.status().as_u16()),
            Some(format!("receiver answered {}", r.status())),
        ),
        Err(e) => (None, Some(describe(&e))),
    };
    let attempt = Attempt {
        at,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        http_status,
        error,
    };
    let s = service.clone();
    let recorded = {
        let attempt = attempt.clone();
        blocking(move || s.record_attempt(&d, &attempt)).await
    };
    match recorded {
        Ok(DeliveryStatus::Delivered) => tracing::debug!("Webhook delivered"),
        Ok(DeliveryStatus::Failed) => {
            tracing::warn!(
                error = attempt.error.as_deref().unwrap_or(""),
                "Webhook delivery failed for good after its last attempt"
            )
        }
        Ok(_) => tracing::info!(
            error = attempt.error.as_deref().unwrap_or(""),
            "Webhook delivery attempt failed; will retry"
        ),
        // Not recorded: the delivery stays due and is sent again (at least once).
        Err(e) => {
            tracing::warn!(error = %e, "Could not record a webhook attempt; it will be repeated")
        }
    }
}

/// A short description of a transport error, with its cause.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}
