//! The periodic tasks of a running fixahead, each a loop that ends when stopped. Each
//! runs its blocking work on tokio's blocking pool and logs a failure instead of
//! ending: the next tick tries again.

use std::future::Future;
use std::time::Duration;

use domain::Timestamp;
use store::hot::StoreReader;
use tokio::time::{interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Receive time replayed into the feature engine at start-up: longer than the slowest
/// feature window (7 days), so the channel features are restored. (Device age and
/// message count restart from this window: see docs/operations.md.)
pub(crate) const WARM_UP_WINDOW_MS: i64 = 30 * Timestamp::DAY_MS;

/// A tick every `every` (the first at once) that waits rather than bursts after a
/// slow round.
fn ticker(every: Duration) -> tokio::time::Interval {
    let mut tick = interval(every.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

/// Runs `round` on the blocking pool at every tick of `every` until `stop`; `what`
/// names it in the log when it fails or panics.
async fn every<T: Send + 'static>(
    what: &'static str,
    every: Duration,
    stop: CancellationToken,
    round: impl Fn() -> std::result::Result<T, String> + Send + Sync + Clone + 'static,
    done: impl Fn(T),
) {
    let mut tick = ticker(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let round = round.clone();
        match tokio::task::spawn_blocking(round).await {
            Ok(Ok(out)) => done(out),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, task = what, "Periodic task failed; retrying at the next tick")
            }
            Err(e) => tracing::error!(error = %e, task = what, "Periodic task panicked"),
        }
    }
}

/// Deletes audit records older than `retention_ms` at start and then hourly.
pub(crate) fn prune_audit(
    access: api::AccessStore,
    retention_ms: i64,
    stop: CancellationToken,
) -> impl Future<Output = ()> {
    every(
        "audit retention",
        Duration::from_secs(3600),
        stop,
        move || access.prune_audit(retention_ms).map_err(|e| e.to_string()),
        |n| {
            if n > 0 {
                tracing::info!(deleted = n, "Deleted audit records past their retention");
            }
        },
    )
}

/// Deletes the console's ended sessions and old failed sign-ins every hour.
pub(crate) fn prune_sessions(
    users: store::users::UserStore,
    stop: CancellationToken,
) -> impl Future<Output = ()> {
    every(
        "session pruning",
        Duration::from_secs(3600),
        stop,
        move || users.prune_sessions().map_err(|e| e.to_string()),
        |n| {
            if n > 0 {
                tracing::debug!(deleted = n, "Deleted ended console sessions");
            }
        },
    )
}

/// Checks the tickets' SLA clocks, then their procedure steps and call-backs
/// ([`api::TicketService::check_steps`], alerts to `supervisors`), every `period`.
pub(crate) fn check_sla(
    tickets: api::TicketService,
    supervisors: std::sync::Arc<dyn api::tickets::Supervisors>,
    period: Duration,
    stop: CancellationToken,
) -> impl Future<Output = ()> {
    every(
        "SLA check",
        period,
        stop,
        move || {
            let breaches = tickets.check_sla().map_err(|e| e.to_string())?;
            let sweep = tickets
                .check_steps(supervisors.as_ref())
                .map_err(|e| e.to_string())?;
            Ok((breaches, sweep))
        },
        |(breaches, sweep)| {
            for b in breaches {
                tracing::warn!(ticket_id = b.ticket_id, kind = b.kind.as_str(), escalated_to = %b.escalated_to, "SLA breached");
            }
            for s in sweep.steps {
                tracing::warn!(ticket_id = s.ticket_id, step = %s.step, owner = ?s.owner, supervisor = %s.supervisor, "Procedure step overdue");
            }
            for c in sweep.callbacks {
                tracing::warn!(ticket_id = c.ticket_id, owner = ?c.owner, "Call-back overdue");
            }
        },
    )
}

/// Runs the dispatcher's sweep (`api::dispatch::Dispatcher::dispatch_pending`) every
/// `[dispatch] interval`, and promptly after a ticket event is committed (a new
/// ticket), at most once per `DISPATCH_DEBOUNCE`. Does nothing while `[dispatch]
/// enabled = false`.
pub(crate) async fn dispatch(
    dispatcher: api::dispatch::Dispatcher,
    mut events: tokio::sync::watch::Receiver<i64>,
    stop: CancellationToken,
) {
    const DISPATCH_DEBOUNCE: Duration = Duration::from_millis(200);
    if !dispatcher.config().enabled {
        tracing::info!("Automatic dispatch is off ([dispatch] enabled = false)");
        return;
    }
    let period = Duration::from_millis(dispatcher.config().interval.millis().max(1) as u64);
    let mut tick = ticker(period);
    let mut watching = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
            changed = events.changed(), if watching => {
                // Without a ticket service to watch, keep to the interval.
                watching = changed.is_ok();
                tokio::time::sleep(DISPATCH_DEBOUNCE).await;
                events.mark_unchanged();
            }
        }
        let d = dispatcher.clone();
        match tokio::task::spawn_blocking(move || d.dispatch_pending()).await {
            Ok(Ok(done)) => {
                for x in done.iter().filter(|x| x.decision == "escalated") {
                    tracing::warn!(ticket_id = x.ticket_id, manager = %dispatcher.config().manager, "No engineer fits; ticket escalated");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "Dispatch failed; retrying later"),
            Err(e) => tracing::error!(error = %e, "Dispatch panicked"),
        }
    }
}

/// Refreshes the fleet snapshot every `[fleet] refresh_interval` and runs the
/// batch-alarm detector every `[fleet] alarm_interval` (first at start-up).
pub(crate) async fn run_fleet(fleet: api::fleet::Fleet, stop: CancellationToken) {
    let period = |d: api::tickets::ConfigDuration| Duration::from_millis(d.millis().max(1) as u64);
    let mut refresh = ticker(period(fleet.settings().refresh_interval));
    let mut detect = ticker(period(fleet.settings().alarm_interval));
    loop {
        let detecting = tokio::select! {
            _ = stop.cancelled() => return,
            _ = detect.tick() => true,
            _ = refresh.tick() => false,
        };
        let f = fleet.clone();
        let result = tokio::task::spawn_blocking(move || {
            if detecting {
                f.detect().map(Some)
            } else {
                f.refresh().map(|_| None)
            }
        })
        .await;
        match result {
            Ok(Ok(Some(report))) => {
                for a in &report.raised {
                    let c = &a.cell;
                    tracing::warn!(alarm = a.id, model = %c.model, dimension = %c.dimension, value = %c.value, component = %c.component, statistic = %c.statistic, p_value = a.numbers.p_value, "Fleet batch alarm raised");
                }
                tracing::debug!(
                    tested = report.tested,
                    active = report.active,
                    "Batch alarm detector ran"
                );
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Fleet analytics failed; retrying at the next tick")
            }
            Err(e) => tracing::error!(error = %e, "Fleet analytics panicked"),
        }
    }
}

/// Rebuilds the fleet summary behind remote diagnosis at start and every `period`.
pub(crate) fn refresh_fleet_summary(
    summary: api::FleetSummary,
    reader: StoreReader,
    period: Duration,
    stop: CancellationToken,
) -> impl Future<Output = ()> {
    every(
        "fleet summary",
        period,
        stop,
        move || {
            let started = std::time::Instant::now();
            summary
                .refresh(&reader, crate::now())
                .map(|devices| (devices, started.elapsed()))
                .map_err(|e| e.to_string())
        },
        |(devices, took)| {
            tracing::debug!(
                devices,
                ms = took.as_millis() as u64,
                "Fleet summary refreshed"
            )
        },
    )
}

/// Times out the commands whose deadline passed, every second (reads do that too).
pub(crate) fn expire_commands(
    commands: api::CommandService,
    stop: CancellationToken,
) -> impl Future<Output = ()> {
    every(
        "command deadlines",
        Duration::from_secs(1),
        stop,
        move || commands.expire().map_err(|e| e.to_string()),
        |n| {
            if n > 0 {
                tracing::info!(commands = n, "Commands timed out");
            }
        },
    )
}

/// Looks for newly activated model versions every `period` (never stops by itself:
/// it is aborted at shutdown).
pub(crate) async fn reload_models(registry: models::ModelRegistry, period: Duration) {
    let mut tick = interval(period);
    loop {
        tick.tick().await;
        let registry = registry.clone();
        match tokio::task::spawn_blocking(move || registry.reload()).await {
            Ok(Ok(changed)) if !changed.is_empty() => {
                tracing::info!(?changed, "Switched to newly activated models");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Model reload failed; keeping the current models")
            }
            _ => {}
        }
    }
}
