//! `fixahead bench console`: server time of the console's pages on a large fleet
//! (issue 19: every page under 100 ms at the 99th percentile with 100,000 devices,
//! 10,000 open tickets and a year of telemetry for the devices shown).
//!
//! Generates its data in a temporary directory through the stores' and services' own
//! write paths (hot.db in batches of 10,000 messages; tickets through
//! [`api::TicketService`] under a simulated clock; accounts, keys, audit records and
//! webhooks through their stores), builds the API's state and the console's router as
//! `fixahead run` does, serves them on a local socket, signs in an admin, a planner and
//! an engineer through the account store, and times sequential GETs of each page in
//! [`PAGES`] from sending the request to the end of the body, after a warm-up. A page
//! not built yet (404, or a redirect where a page should be) is reported as missing.

mod fleet;
mod people;
mod tickets;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use domain::{ProfileSet, Timestamp};
use server::Context as _;

use crate::error::ensure;
use crate::stats::{percentile, verdict};
use crate::system::{scratch_base, TempDir};
use crate::Result;
use fleet::Fleet;

/// Who requests a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Nobody,
    Admin,
    Planner,
    Engineer,
}

impl Who {
    fn as_str(self) -> &'static str {
        match self {
            Who::Nobody => "-",
            Who::Admin => "admin",
            Who::Planner => "planner",
            Who::Engineer => "engineer",
        }
    }
}

/// The pages timed, one line each: add a page here to time it. In the paths,
/// `{ticket}` is an active ticket of a device with a year of telemetry, `{my_ticket}`
/// one assigned to the engineer, `{device}` a refrigerator with a year of telemetry
/// (a report every 15 minutes), `{region}`, `{batch}`, `{component}` and `{engineer}`
/// values the tickets carry, `{since}` the date 30 days ago.
const PAGES: &[(Who, &str)] = &[
    (Who::Nobody, "/console/sign-in"),
    (Who::Planner, "/console/account"),
    // The queue (home): unfiltered, filtered, deep in the pages.
    (Who::Planner, "/console/"),
    (
        Who::Planner,
        "/console/?status=open&priority=urgent&device_type=refrigerator&region={region}",
    ),
    (
        Who::Planner,
        "/console/?source=proactive&component={component}&batch={batch}&engineer={engineer}&since={since}",
    ),
    (Who::Planner, "/console/?page=10"),
    (Who::Planner, "/console/tickets/{ticket}"),
    (Who::Engineer, "/console/tickets/{my_ticket}"),
    (Who::Planner, "/console/devices/{device}"),
    (Who::Engineer, "/console/my-day"),
    (Who::Planner, "/console/fleet"),
    (Who::Planner, "/console/fleet/parts.csv"),
    (Who::Planner, "/console/models"),
    (Who::Planner, "/console/report"),
    (Who::Planner, "/console/kpis"),
    (Who::Admin, "/console/admin"),
    (Who::Admin, "/console/admin/users"),
    (Who::Admin, "/console/admin/keys"),
    (Who::Admin, "/console/admin/webhooks"),
    (Who::Admin, "/console/admin/dead-letters"),
    (Who::Admin, "/console/admin/audit"),
    (Who::Admin, "/console/admin/audit?page=10"),
];

/// The p99 target per page, in milliseconds.
const TARGET_MS: f64 = 100.0;
/// Requests per page before timing starts.
const WARM_UP_REQUESTS: usize = 5;
/// How long one request may take, from sending it to the end of its body.
const TIMEOUT: Duration = Duration::from_secs(30);

// The flags of `fixahead bench console`.
#[derive(Clone, Debug, Args)]
pub struct ConsoleArgs {
    /// Devices in the registry.
    #[arg(long, default_value_t = 100_000)]
    pub devices: usize,
    /// Active tickets (open, acknowledged, scheduled, in progress), raised in the last
    /// 30 days.
    #[arg(long, default_value_t = 10_000)]
    pub open_tickets: usize,
    /// Tickets raised and closed (resolved, closed, dismissed) over the year before.
    #[arg(long, default_value_t = 20_000)]
    pub closed_tickets: usize,
    /// Devices the pages show, with a year of telemetry and faults each (the first of
    /// the fleet, every kind in turn).
    #[arg(long, default_value_t = 30)]
    pub shown_devices: usize,
    /// Days of history.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Timed requests per page.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Where to build the stores (default /dev/shm when it exists, else the temporary
    /// directory); removed afterwards.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `fixahead bench console`.
pub(crate) async fn run(args: ConsoleArgs) -> Result<()> {
    ensure!(
        args.devices >= 10 && args.shown_devices >= 2 && args.shown_devices <= args.devices,
        "--devices must be at least 10 and --shown-devices between 2 and --devices"
    );
    ensure!(args.days >= 31, "--days must be at least 31");
    let base = scratch_base(args.dir.as_deref());
    let tmp = TempDir::under(&base, "console");
    std::fs::create_dir_all(&tmp.0)?;
    let g = generate(&args, &tmp.0).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server = {
        let stop = stop.clone();
        let app = api::router(g.state.clone()).merge(console::router(g.console.clone()));
        tokio::spawn(api::serve(
            listener,
            app,
            async move { stop.cancelled().await },
        ))
    };
    let client = Client::new(addr, &g)?;
    let mut results = Vec::new();
    for (who, template) in PAGES {
        let path = g.fill(template);
        results.push(time_page(&client, *who, &path, args.requests).await?);
    }
    stop.cancel();
    server.await??;
    print_report(&args, &g, &results);
    Ok(())
}

/// The generated stores and what the pages are asked about.
struct Generated {
    state: api::AppState,
    console: console::ConsoleState,
    sessions: people::Sessions,
    fleet: Fleet,
    written: tickets::Written,
    end: Timestamp,
}

impl Generated {
    /// A page path with its placeholders filled in.
    fn fill(&self, template: &str) -> String {
        let device = (0..self.fleet.shown)
            .find(|&i| self.fleet.profile(i).device_type() == "refrigerator")
            .unwrap_or(0);
        let since = Timestamp(self.end.millis() - 30 * Timestamp::DAY_MS)
            .to_rfc3339()
            .chars()
            .take(10)
            .collect::<String>();
        let component = self.fleet.profile(device).components()[0].name.clone();
        template
            .replace("{ticket}", &self.written.planner_ticket.to_string())
            .replace("{my_ticket}", &self.written.engineer_ticket.to_string())
            .replace("{device}", self.fleet.ids[device].as_str())
            .replace("{region}", fleet::REGIONS[3])
            .replace("{batch}", &self.fleet.batch(device))
            .replace("{component}", &component)
            .replace("{engineer}", &tickets::engineer(7))
            .replace("{since}", &since)
    }
}

/// Writes the stores in `dir` and builds the API's and the console's state over them,
/// with the background work `fixahead run` does done once.
async fn generate(args: &ConsoleArgs, dir: &Path) -> Result<Generated> {
    eprintln!(
        "generating {} devices ({} with {} days of telemetry), {} open and about {} closed tickets in {}",
        args.devices,
        args.shown_devices,
        args.days,
        args.open_tickets,
        args.closed_tickets,
        dir.display()
    );
    let end = server::now();
    let start = Timestamp(end.millis() - i64::from(args.days) * Timestamp::DAY_MS);
    let fleet = Fleet::new(args.devices, args.shown_devices)?;
    // The simulated clock of the ticket service while the tickets are written; 0 once
    // written: the wall clock, as the pages run.
    let clock = Arc::new(AtomicI64::new(start.millis()));
    let tickets = {
        let clock = Arc::clone(&clock);
        api::TicketService::open_with_clock(
            &dir.join("tickets.db"),
            api::TicketConfig::default(),
            Arc::new(move || match clock.load(Ordering::SeqCst) {
                0 => server::now(),
                ms => Timestamp(ms),
            }),
        )?
    };
    let users = store::users::UserStore::open_in(dir)?;
    let access = api::AccessStore::open_in(dir)?;
    let (fleet, sessions, written, webhooks) = {
        let (tickets, clock, dir, users, access) = (
            tickets.clone(),
            clock.clone(),
            dir.to_owned(),
            users.clone(),
            access.clone(),
        );
        let args = args.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let t0 = Instant::now();
            let hot = fleet::write_hot_store(&fleet, &dir, start, end, 5_000)?;
            eprintln!(
                "  hot.db: {} telemetry rows, {} faults, {} dead letters in {:.1} s",
                hot.telemetry,
                hot.faults,
                hot.dead_letters,
                t0.elapsed().as_secs_f64()
            );
            let t1 = Instant::now();
            let sessions = people::accounts(&users)?;
            people::access_data(&access, 12, 20_000)?;
            let webhooks = people::webhooks(&dir, 3)?;
            eprintln!(
                "  accounts ({} engineers), 12 API keys, 20,000 audit records, 3 webhooks in {:.1} s",
                tickets::ENGINEERS + 1,
                t1.elapsed().as_secs_f64()
            );
            let t2 = Instant::now();
            let written = tickets::write_tickets(
                &fleet,
                &tickets,
                &clock,
                (start, end),
                args.closed_tickets,
                args.open_tickets,
                people::ENGINEER,
            )?;
            let deliveries = webhooks.enqueue()?;
            eprintln!(
                "  tickets in {:.1} s: {} ({} changes refused); {deliveries} webhook deliveries queued",
                t2.elapsed().as_secs_f64(),
                written
                    .by_status
                    .iter()
                    .map(|(s, n)| format!("{s} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                written.refused
            );
            Ok((fleet, sessions, written, webhooks))
        })
        .await??
    };
    let state = app_state(dir, &tickets, access, webhooks)?;
    background_work(dir, &state).await?;
    let console =
        console::ConsoleState::new(state.clone(), users, console::ConsoleSettings::default());
    Ok(Generated {
        state,
        console,
        sessions,
        fleet,
        written,
        end,
    })
}

/// The API's state over the stores in `dir`, as `fixahead run` builds it; commands are
/// stored but go nowhere (no broker).
fn app_state(
    dir: &Path,
    tickets: &api::TicketService,
    access: api::AccessStore,
    webhooks: api::WebhookService,
) -> Result<api::AppState> {
    let hot = || store::hot::StoreReader::open(&dir.join("hot.db"));
    let drift = models::DriftMonitor::new(models::DriftSettings::default());
    let registry = prometheus::Registry::new();
    registry
        .register(Box::new(drift.metrics()))
        .context("registering the drift metrics")?;
    let commands = api::CommandService::open(
        &dir.join("tickets.db"),
        Duration::from_secs(30),
        Arc::new(|_: &str, _: Vec<u8>| Ok(())),
        Arc::new(server::now),
    )?;
    let state = api::AppState::new(
        tickets.clone(),
        hot()?,
        ProfileSet::builtin(),
        registry,
        Arc::new(|| serde_json::Value::Null),
    )
    .with_access(access)
    .with_webhooks(webhooks)
    .with_commands(commands)
    .with_fleet_summary(api::FleetSummary::open(&dir.join("tickets.db"))?)
    .with_regions(server::insight::DeviceRegions::lookup(hot()?))
    .with_drift(server::insight::drift_reporter(drift))
    .with_fleet(api::fleet::FleetSettings::default(), hot()?);
    Ok(state)
}

/// What `fixahead run` refreshes in the background: the fleet summary (normal ranges,
/// comparable devices) and the fleet snapshot with a batch-alarm detector run.
async fn background_work(dir: &Path, state: &api::AppState) -> Result<()> {
    let (state, dir) = (state.clone(), dir.to_owned());
    let took = tokio::task::spawn_blocking(move || -> Result<_> {
        let t0 = Instant::now();
        if let Some(summary) = state.fleet_summary() {
            summary.refresh(
                &store::hot::StoreReader::open(&dir.join("hot.db"))?,
                server::now(),
            )?;
        }
        state.fleet().refresh()?;
        state.fleet().detect()?;
        Ok(t0.elapsed())
    })
    .await??;
    eprintln!(
        "  background work (fleet summary, fleet snapshot, batch alarms): {:.1} s",
        took.as_secs_f64()
    );
    Ok(())
}

/// The benchmark's browser: keeps connections alive, as a browser does, and sends a
/// person's session cookie.
struct Client {
    base: String,
    http: reqwest::Client,
    admin: String,
    planner: String,
    engineer: String,
}

impl Client {
    fn new(addr: std::net::SocketAddr, g: &Generated) -> Result<Client> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Client {
            base: format!("http://{addr}"),
            http,
            admin: g.sessions.admin.clone(),
            planner: g.sessions.planner.clone(),
            engineer: g.sessions.engineer.clone(),
        })
    }

    /// GET `path` as `who`: status, `Location` and body length.
    async fn get(&self, who: Who, path: &str) -> Result<(u16, String, usize)> {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept-language", "en");
        let token = match who {
            Who::Nobody => None,
            Who::Admin => Some(&self.admin),
            Who::Planner => Some(&self.planner),
            Who::Engineer => Some(&self.engineer),
        };
        if let Some(t) = token {
            request = request.header("cookie", format!("fixahead_session={t}"));
        }
        tokio::time::timeout(TIMEOUT, async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response.bytes().await?;
            Ok((status, location, body.len()))
        })
        .await
        .context("HTTP request timed out")?
    }
}

/// What a page's timing came to.
enum Outcome {
    Timed {
        p50_ms: f64,
        p95_ms: f64,
        p99_ms: f64,
        max_ms: f64,
        bytes: usize,
    },
    /// Not built yet: 404, or a redirect (to where) instead of a page.
    Missing(String),
    /// Any other status: a failure.
    Failed(u16),
}

struct Timing {
    who: Who,
    path: String,
    outcome: Outcome,
}

async fn time_page(client: &Client, who: Who, path: &str, requests: usize) -> Result<Timing> {
    let timing = |outcome| Timing {
        who,
        path: path.to_owned(),
        outcome,
    };
    let (status, location, mut bytes) = client.get(who, path).await?;
    match status {
        200 => {}
        404 => return Ok(timing(Outcome::Missing("404".into()))),
        300..=399 => return Ok(timing(Outcome::Missing(format!("{status} to {location}")))),
        other => return Ok(timing(Outcome::Failed(other))),
    }
    for _ in 1..WARM_UP_REQUESTS {
        client.get(who, path).await?;
    }
    let mut ms = Vec::with_capacity(requests);
    for _ in 0..requests.max(1) {
        let t = Instant::now();
        let (status, _, len) = client.get(who, path).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        ensure!(status == 200, "GET {path} as {}: {status}", who.as_str());
        bytes = len;
    }
    Ok(timing(Outcome::Timed {
        p50_ms: percentile(&ms, 0.5),
        p95_ms: percentile(&ms, 0.95),
        p99_ms: percentile(&ms, 0.99),
        max_ms: ms.iter().copied().fold(0.0, f64::max),
        bytes,
    }))
}

fn print_report(args: &ConsoleArgs, g: &Generated, results: &[Timing]) {
    let active: u64 = g
        .written
        .by_status
        .iter()
        .filter(|(s, _)| ["open", "acknowledged", "scheduled", "in_progress"].contains(&s.as_str()))
        .map(|(_, n)| n)
        .sum();
    let total: u64 = g.written.by_status.values().sum();
    println!(
        "\nfixahead bench console: {} devices ({} with {} days of telemetry), {active} active of {total} tickets, {} sequential requests per page",
        args.devices, args.shown_devices, args.days, args.requests
    );
    println!(
        "{:<100} {:<8} {:>7} {:>7} {:>7} {:>7} {:>8}  result",
        "GET", "as", "p50 ms", "p95 ms", "p99 ms", "max ms", "bytes"
    );
    let (mut all_pass, mut missing) = (true, 0);
    for r in results {
        let head = format!("{:<100} {:<8}", r.path, r.who.as_str());
        match &r.outcome {
            Outcome::Timed {
                p50_ms,
                p95_ms,
                p99_ms,
                max_ms,
                bytes,
            } => {
                let pass = *p99_ms < TARGET_MS;
                all_pass &= pass;
                println!(
                    "{head} {p50_ms:>7.1} {p95_ms:>7.1} {p99_ms:>7.1} {max_ms:>7.1} {bytes:>8}  {} (p99 < {TARGET_MS} ms)",
                    verdict(pass)
                );
            }
            Outcome::Missing(why) => {
                missing += 1;
                println!("{head} {:>48}  missing ({why})", "");
            }
            Outcome::Failed(status) => {
                all_pass = false;
                println!("{head} {:>48}  FAIL (status {status})", "");
            }
        }
    }
    println!(
        "overall: {} ({} pages timed, {missing} missing)",
        verdict(all_pass),
        results.len() - missing
    );
}
