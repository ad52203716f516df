//! `fixahead bench insight`: latency of the model insight endpoints (and the service
//! KPIs) on a large fleet
//! (docs/performance.md, "Insight endpoints").
//!
//! Builds an embedded store through the store APIs (hot.db: one report per device, with
//! its region; tickets.db: a year of proactive and reactive tickets opened, assigned,
//! resolved or dismissed by [`api::TicketService`] under a simulated clock), fills a
//! drift monitor with one feature vector per device, serves the HTTP API in this
//! process and times sequential GETs of each path in [`ENDPOINTS`]: p50 and p99
//! against the 200 ms target.

mod drift;
mod fleet;
mod tickets;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use domain::{ProfileSet, Timestamp};

use crate::error::ensure;
use crate::http::ApiClient;
use crate::stats::{percentile, verdict};
use crate::system::{scratch_base, TempDir};
use server::Context as _;

use crate::Result;
use fleet::Fleet;

/// The paths timed, one line each: add an endpoint here to time it. `{from}` and `{to}`
/// become the last 90 days of the generated year, `{year}` its start, `{device}` a
/// device with two weeks of telemetry (every 15 minutes) behind its diagnosis.
const ENDPOINTS: &[&str] = &[
    "/api/v1/models/performance",
    "/api/v1/models/performance?from={from}&to={to}",
    "/api/v1/models/performance?device_type=washer&region=region-3",
    "/api/v1/models/drift",
    "/api/v1/models/drift?status=drift",
    "/api/v1/devices/{device}/diagnosis",
    "/api/v1/fleet/stats?group_by=batch&from={year}&to={to}",
    "/api/v1/fleet/stats?group_by=region&from={year}&to={to}",
    "/api/v1/fleet/alarms",
    "/api/v1/fleet/parts-forecast?days=30&group_by=region",
    "/api/v1/kpis?from={from}&to={to}&group_by=region",
    "/api/v1/kpis?from={year}&to={to}&group_by=engineer&bucket=week",
];

/// Paths also timed with one ticket changed before each request (its assignment, through
/// the ticket service), so every answer is computed afresh rather than reused.
const AFTER_A_CHANGE: &[&str] = &["/api/v1/models/performance"];

/// The p99 target per request, in milliseconds.
const TARGET_MS: f64 = 200.0;
/// Service regions the tickets are assigned to.
const REGIONS: u32 = 8;
/// Requests per path before timing starts.
const WARM_UP_REQUESTS: usize = 5;
/// The generated year's start: 2026-01-01T00:00:00Z.
const START: Timestamp = Timestamp(1_767_225_600_000);

// The flags of `fixahead bench insight`.
#[derive(Clone, Debug, Args)]
pub struct InsightArgs {
    /// Devices in the generated fleet.
    #[arg(long, default_value_t = 100_000)]
    pub devices: usize,
    /// Days of tickets.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Model flags (proactive tickets) per device and year.
    #[arg(long, default_value_t = 0.4)]
    pub flags_per_device_year: f64,
    /// Critical faults (reactive tickets) per device and year.
    #[arg(long, default_value_t = 0.15)]
    pub reactive_per_device_year: f64,
    /// Timed requests per path.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Where to build the stores (default /dev/shm when it exists, else the temporary
    /// directory); removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The generated stores, the API state that serves them, and the drift monitor's cost.
struct Generated {
    fleet: Arc<Fleet>,
    tickets: api::TicketService,
    total: u64,
    observe_ns: f64,
    state: api::AppState,
    key: String,
}

/// `fixahead bench insight`.
pub(crate) async fn run(args: InsightArgs) -> Result<()> {
    let base = scratch_base(args.dir.as_deref());
    let tmp = TempDir::under(&base, "insight");
    std::fs::create_dir_all(&tmp.0)?;
    let g = generate(&args, &tmp.0).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = ApiClient::new(listener.local_addr()?, g.key.clone())?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(api::serve(
            listener,
            api::router(g.state.clone()),
            async move { stop.cancelled().await },
        ))
    };
    let results = time_endpoints(&args, &g, &api).await?;
    stop.cancel();
    server.await??;
    print_report(&args, &g, &results);
    Ok(())
}

/// The stores in `dir`, the drift monitor, and the API's state over them, with the
/// background work `fixahead run` does done once.
async fn generate(args: &InsightArgs, dir: &Path) -> Result<Generated> {
    eprintln!(
        "generating {} devices and {} days of tickets in {}",
        args.devices,
        args.days,
        dir.display()
    );
    let fleet = Arc::new(Fleet::new(args.devices)?);
    let clock = Arc::new(AtomicI64::new(START.millis()));
    let tickets = {
        let clock = Arc::clone(&clock);
        api::TicketService::open_with_clock(
            &dir.join("tickets.db"),
            api::TicketConfig::default(),
            Arc::new(move || Timestamp(clock.load(Ordering::SeqCst))),
        )?
    };
    let (counts, took) = {
        let (fleet, tickets, clock, dir) = (
            fleet.clone(),
            tickets.clone(),
            clock.clone(),
            dir.to_owned(),
        );
        let args = args.clone();
        tokio::task::spawn_blocking(move || {
            let t0 = Instant::now();
            fleet::write_devices(&fleet, &dir, START)?;
            let counts = tickets::write_tickets(&fleet, &tickets, &clock, START, &args)?;
            Ok::<_, crate::Error>((counts, t0.elapsed()))
        })
        .await??
    };
    let total: u64 = counts.values().sum();
    eprintln!(
        "generated {total} tickets in {:.1} s: {}",
        took.as_secs_f64(),
        counts
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let monitor = models::DriftMonitor::new(models::DriftSettings::default());
    let observe_ns = drift::fill_drift(&fleet, &monitor, START, args.days)?;
    let access = api::AccessStore::open_in(dir)?;
    let (key, _) = access.create(api::Role::Admin, "bench")?;
    let summary = api::FleetSummary::open(&dir.join("tickets.db"))?;
    let state = app_state(dir, &tickets, access, monitor)?.with_fleet_summary(summary.clone());
    let now = Timestamp(clock.load(Ordering::SeqCst));
    background_work(dir, summary, &state, now).await?;
    Ok(Generated {
        fleet,
        tickets,
        total,
        observe_ns,
        state,
        key,
    })
}

/// The API's state over the stores in `dir`, as `fixahead run` builds it (but for
/// the fleet summary).
fn app_state(
    dir: &Path,
    tickets: &api::TicketService,
    access: api::AccessStore,
    drift: models::DriftMonitor,
) -> Result<api::AppState> {
    let hot = || store::hot::StoreReader::open(&dir.join("hot.db"));
    let state = api::AppState::new(
        tickets.clone(),
        hot()?,
        ProfileSet::builtin(),
        {
            let registry = prometheus::Registry::new();
            registry
                .register(Box::new(drift.metrics()))
                .context("registering the drift metrics")?;
            registry
        },
        Arc::new(|| serde_json::Value::Null),
    )
    .with_access(access)
    .with_regions(server::insight::DeviceRegions::lookup(hot()?))
    .with_drift(server::insight::drift_reporter(drift))
    .with_fleet(api::fleet::FleetSettings::default(), hot()?);
    Ok(state)
}

/// What `fixahead run` refreshes in the background: the diagnosis's fleet summary
/// (normal ranges, comparable devices) and the fleet snapshot with a detector run.
async fn background_work(
    dir: &Path,
    summary: api::FleetSummary,
    state: &api::AppState,
    now: Timestamp,
) -> Result<()> {
    let (state, dir) = (state.clone(), dir.to_owned());
    let (summary_took, fleet_took) = tokio::task::spawn_blocking(move || {
        let t0 = Instant::now();
        summary.refresh(&store::hot::StoreReader::open(&dir.join("hot.db"))?, now)?;
        let t1 = Instant::now();
        state.fleet().refresh()?;
        state.fleet().detect()?;
        Ok::<_, crate::Error>((t1 - t0, t1.elapsed()))
    })
    .await??;
    eprintln!(
        "background work: fleet summary {:.1} s, fleet snapshot and detector {:.1} s",
        summary_took.as_secs_f64(),
        fleet_took.as_secs_f64()
    );
    Ok(())
}

/// Every path of [`ENDPOINTS`], then of [`AFTER_A_CHANGE`] (when a ticket is active).
async fn time_endpoints(args: &InsightArgs, g: &Generated, api: &ApiClient) -> Result<Vec<Timing>> {
    let end = START.millis() + i64::from(args.days) * Timestamp::DAY_MS;
    let from = Timestamp(end - 90 * Timestamp::DAY_MS).to_rfc3339();
    let to = Timestamp(end).to_rfc3339();
    let mut results = Vec::new();
    for template in ENDPOINTS {
        let path = template
            .replace("{from}", &from)
            .replace("{to}", &to)
            .replace("{year}", &START.to_rfc3339())
            .replace("{device}", g.fleet.ids[0].as_str());
        results.push(time_path(api, &path, args.requests, None).await?);
    }
    let active = g.tickets.list(&api::TicketQuery {
        statuses: api::TicketQuery::active_statuses(),
        limit: 1,
        ..Default::default()
    })?;
    if let Some(ticket) = active.first() {
        for path in AFTER_A_CHANGE {
            let touch = Touch {
                tickets: g.tickets.clone(),
                id: ticket.id,
            };
            results.push(time_path(api, path, args.requests, Some(&touch)).await?);
        }
    }
    Ok(results)
}

fn print_report(args: &InsightArgs, g: &Generated, results: &[Timing]) {
    println!(
        "\nfixahead bench insight: {} devices, {} tickets over {} days, {} sequential requests per path",
        args.devices, g.total, args.days, args.requests
    );
    println!(
        "drift monitor: {:.0} ns per feature vector observed",
        g.observe_ns
    );
    println!(
        "{:<64} {:>8} {:>8} {:>8} {:>9}  result",
        "GET", "p50 ms", "p99 ms", "max ms", "bytes"
    );
    let mut all_pass = true;
    for r in results {
        let pass = r.p99_ms < TARGET_MS;
        all_pass &= pass;
        println!(
            "{:<64} {:>8.1} {:>8.1} {:>8.1} {:>9}  {} (p99 < {TARGET_MS} ms)",
            r.path,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.bytes,
            verdict(pass)
        );
    }
    println!("overall: {}", verdict(all_pass));
}

/// Changes one active ticket's assignment (alternating regions), which invalidates
/// every cached performance report.
struct Touch {
    tickets: api::TicketService,
    id: i64,
}

impl Touch {
    async fn run(&self, k: usize) -> Result<()> {
        let (tickets, id) = (self.tickets.clone(), self.id);
        tokio::task::spawn_blocking(move || tickets::assign(&tickets, id, (k % 2) as u32))
            .await??;
        Ok(())
    }
}

struct Timing {
    path: String,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    bytes: usize,
}

async fn time_path(
    api: &ApiClient,
    path: &str,
    requests: usize,
    touch: Option<&Touch>,
) -> Result<Timing> {
    let mut bytes = 0;
    for _ in 0..WARM_UP_REQUESTS {
        let (status, body) = api.get(path).await?;
        ensure!(status == 200, "GET {path}: {status} {body}");
        bytes = body.len();
    }
    let mut ms = Vec::with_capacity(requests);
    for k in 0..requests.max(1) {
        if let Some(touch) = touch {
            touch.run(k).await?;
        }
        let t = Instant::now();
        let (status, _) = api.get(path).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(status == 200, "GET {path}: {status}");
    }
    Ok(Timing {
        path: if touch.is_some() {
            format!("{path} (after a change)")
        } else {
            path.to_owned()
        },
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
        max_ms: ms.iter().copied().fold(0.0, f64::max),
        bytes,
    })
}
