//! `fixahead bench insight`: latency of the model insight endpoints on a large fleet
//! (docs/performance.md, "Insight endpoints").
//!
//! Builds an embedded store through the store APIs (hot.db: one report per device, with
//! its region;
//! tickets.db: a year of proactive and reactive tickets opened, assigned, resolved or
//! dismissed by [`api::TicketService`] under a simulated clock), fills a drift monitor
//! with one feature vector per device, serves the HTTP API in this process and times
//! sequential GETs of each path in [`ENDPOINTS`]: p50 and p99 against the 200 ms target.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use domain::{
    DeviceId, Message, OutcomeKind, Prediction, Profile, ProfileSet, Telemetry, TicketSource,
    TicketStatus, Timestamp,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::bench::TempDir;
use crate::cli::InsightBenchArgs;

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
];

/// Devices (the first few, one of each kind) given two weeks of telemetry every 15
/// minutes, for the diagnosis endpoint.
const DIAGNOSED_DEVICES: usize = 5;
/// Telemetry interval of those devices.
const DIAGNOSED_INTERVAL_MS: i64 = 15 * 60_000;

/// Paths also timed with one ticket changed before each request (its assignment, through
/// the ticket service), so every answer is computed afresh rather than reused.
const AFTER_A_CHANGE: &[&str] = &["/api/v1/models/performance"];

/// The p99 target per request, in milliseconds.
const TARGET_MS: f64 = 200.0;
/// Service regions the tickets are assigned to.
const REGIONS: u32 = 8;
/// Requests per path before timing starts.
const WARM_UP_REQUESTS: usize = 5;

/// What happens to a ticket later.
enum Action {
    Resolve {
        id: i64,
        region: u32,
        kind: OutcomeKind,
        failed_at: Option<Timestamp>,
    },
    Dismiss {
        id: i64,
        region: u32,
    },
    /// A critical fault of (device, code): a reactive ticket, or a repeat failure.
    Fault {
        device: usize,
        code: String,
    },
}

struct Fleet {
    profiles: Vec<Arc<Profile>>,
    /// Per profile: its critical fault codes linked to a component, with the component.
    critical: Vec<Vec<(String, String)>>,
    ids: Vec<DeviceId>,
}

impl Fleet {
    fn new(devices: usize) -> anyhow::Result<Fleet> {
        let set = ProfileSet::builtin();
        let profiles: Vec<Arc<Profile>> = set.iter().cloned().collect();
        let critical = profiles
            .iter()
            .map(|p| {
                p.faults()
                    .iter()
                    .filter(|f| f.severity == domain::Severity::Critical)
                    .filter_map(|f| Some((f.code.clone(), f.component.clone()?)))
                    .collect()
            })
            .collect();
        let ids = (0..devices)
            .map(|i| {
                let kind = profiles[i % profiles.len()].device_type();
                DeviceId::parse(&format!("{kind}-{i:06}")).context("device id")
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Fleet {
            profiles,
            critical,
            ids,
        })
    }

    fn profile(&self, device: usize) -> &Arc<Profile> {
        &self.profiles[device % self.profiles.len()]
    }

    fn context(&self, device: usize) -> api::DiagnosisContext {
        api::DiagnosisContext {
            profile: Some(Arc::clone(self.profile(device))),
            recent_faults: Vec::new(),
        }
    }
}

/// `fixahead bench insight`.
pub(crate) async fn run(args: InsightBenchArgs) -> anyhow::Result<()> {
    let base = args.dir.clone().unwrap_or_else(|| {
        // tmpfs when there is one: generating a year of tickets is one durable commit
        // per ticket change, which a disk turns into minutes of fsyncs.
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    let tmp = TempDir(base.join(format!("fixahead-bench-insight-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0)?;
    let dir = tmp.0.clone();
    eprintln!(
        "generating {} devices and {} days of tickets in {}",
        args.devices,
        args.days,
        dir.display()
    );
    let fleet = Arc::new(Fleet::new(args.devices)?);
    let start = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z
    let clock = Arc::new(AtomicI64::new(start.millis()));
    let tickets = {
        let clock = Arc::clone(&clock);
        api::TicketService::open_with_clock(
            &dir.join("tickets.db"),
            api::TicketConfig::default(),
            Arc::new(move || Timestamp(clock.load(Ordering::SeqCst))),
        )?
    };
    let generated = {
        let (fleet, tickets, clock, dir) =
            (fleet.clone(), tickets.clone(), clock.clone(), dir.clone());
        let args = args.clone();
        tokio::task::spawn_blocking(move || {
            let t0 = Instant::now();
            write_devices(&fleet, &dir, start)?;
            let counts = write_tickets(&fleet, &tickets, &clock, start, &args)?;
            anyhow::Ok((counts, t0.elapsed()))
        })
        .await??
    };
    let (counts, took) = generated;
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

    let drift = models::DriftMonitor::new(models::DriftSettings::default());
    let observe_ns = fill_drift(&fleet, &drift, start, args.days)?;

    // The API, in this process, on a free port.
    let access = api::AccessStore::open_in(&dir)?;
    let (key, _) = access.create(api::Role::Admin, "bench")?;
    let state = api::AppState::new(
        tickets.clone(),
        store::hot::StoreReader::open(&dir.join("hot.db"))?,
        ProfileSet::builtin(),
        {
            let registry = prometheus::Registry::new();
            registry.register(Box::new(drift.metrics()))?;
            registry
        },
        Arc::new(|| serde_json::Value::Null),
    )
    .with_access(access)
    .with_regions(server::insight::DeviceRegions::lookup(
        store::hot::StoreReader::open(&dir.join("hot.db"))?,
    ))
    .with_drift(server::insight::drift_reporter(drift))
    .with_fleet(
        api::fleet::FleetSettings::default(),
        store::hot::StoreReader::open(&dir.join("hot.db"))?,
    );
    // What `fixahead run` refreshes in the background: the diagnosis's fleet summary
    // (normal ranges, comparable devices) and the fleet snapshot with a detector run.
    let summary = api::FleetSummary::open(&dir.join("tickets.db"))?;
    let state = state.with_fleet_summary(summary.clone());
    let prepared = {
        let (state, dir) = (state.clone(), dir.clone());
        let now = Timestamp(clock.load(Ordering::SeqCst));
        tokio::task::spawn_blocking(move || {
            let t0 = Instant::now();
            summary.refresh(&store::hot::StoreReader::open(&dir.join("hot.db"))?, now)?;
            let t1 = Instant::now();
            state.fleet().refresh()?;
            state.fleet().detect()?;
            anyhow::Ok((t1 - t0, t1.elapsed()))
        })
        .await??
    };
    eprintln!(
        "background work: fleet summary {:.1} s, fleet snapshot and detector {:.1} s",
        prepared.0.as_secs_f64(),
        prepared.1.as_secs_f64()
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server = {
        let stop = stop.clone();
        tokio::spawn(api::serve(listener, api::router(state), async move {
            stop.cancelled().await
        }))
    };

    let end = start.millis() + i64::from(args.days) * Timestamp::DAY_MS;
    let from = Timestamp(end - 90 * Timestamp::DAY_MS).to_rfc3339();
    let to = Timestamp(end).to_rfc3339();
    let mut results = Vec::new();
    for template in ENDPOINTS {
        let path = template
            .replace("{from}", &from)
            .replace("{to}", &to)
            .replace("{year}", &start.to_rfc3339())
            .replace("{device}", fleet.ids[0].as_str());
        results.push(time_path(addr, &path, &key, args.requests, None).await?);
    }
    let active = tickets.list(&api::TicketQuery {
        statuses: api::TicketQuery::active_statuses(),
        limit: 1,
        ..Default::default()
    })?;
    if let Some(ticket) = active.first() {
        for path in AFTER_A_CHANGE {
            let touch = Touch {
                tickets: tickets.clone(),
                id: ticket.id,
            };
            results.push(time_path(addr, path, &key, args.requests, Some(&touch)).await?);
        }
    }
    stop.cancel();
    server.await??;

    println!(
        "\nfixahead bench insight: {} devices, {total} tickets over {} days, {} sequential requests per path",
        args.devices, args.days, args.requests
    );
    println!("drift monitor: {observe_ns:.0} ns per feature vector observed");
    println!(
        "{:<64} {:>8} {:>8} {:>8} {:>9}  result",
        "GET", "p50 ms", "p99 ms", "max ms", "bytes"
    );
    let mut all_pass = true;
    for r in &results {
        let pass = r.p99_ms < TARGET_MS;
        all_pass &= pass;
        println!(
            "{:<64} {:>8.1} {:>8.1} {:>8.1} {:>9}  {} (p99 < {TARGET_MS} ms)",
            r.path,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.bytes,
            if pass { "PASS" } else { "MISS" }
        );
    }
    println!("overall: {}", if all_pass { "PASS" } else { "MISS" });
    Ok(())
}

/// Changes one active ticket's assignment (alternating regions), which invalidates
/// every cached performance report.
struct Touch {
    tickets: api::TicketService,
    id: i64,
}

impl Touch {
    async fn run(&self, k: usize) -> anyhow::Result<()> {
        let (tickets, id) = (self.tickets.clone(), self.id);
        tokio::task::spawn_blocking(move || assign(&tickets, id, (k % 2) as u32)).await??;
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
    addr: SocketAddr,
    path: &str,
    key: &str,
    requests: usize,
    touch: Option<&Touch>,
) -> anyhow::Result<Timing> {
    let mut bytes = 0;
    for _ in 0..WARM_UP_REQUESTS {
        let (status, body) = crate::bench_ingest::http_get_with_key(addr, path, key).await?;
        anyhow::ensure!(status == 200, "GET {path}: {status} {body}");
        bytes = body.len();
    }
    let mut ms = Vec::with_capacity(requests);
    for k in 0..requests.max(1) {
        if let Some(touch) = touch {
            touch.run(k).await?;
        }
        let t = Instant::now();
        let (status, _) = crate::bench_ingest::http_get_with_key(addr, path, key).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status == 200, "GET {path}: {status}");
    }
    Ok(Timing {
        path: if touch.is_some() {
            format!("{path} (after a change)")
        } else {
            path.to_owned()
        },
        p50_ms: crate::bench_ingest::percentile(&ms, 0.5),
        p99_ms: crate::bench_ingest::percentile(&ms, 0.99),
        max_ms: ms.iter().copied().fold(0.0, f64::max),
        bytes,
    })
}

/// One telemetry report per device (mid-range readings), so hot.db knows the fleet,
/// and two weeks of readings every 15 minutes before `start` for the diagnosed devices
/// (sequence numbers after that report; a daily wave around mid-range).
fn write_devices(fleet: &Fleet, dir: &std::path::Path, start: Timestamp) -> anyhow::Result<()> {
    let mut store = store::hot::HotStore::open(&dir.join("hot.db"), store::Synchronous::Normal)?;
    // Device `i`'s report `seq` at `ts`, each channel at mid-range plus `swing` of its
    // physical range.
    let report = |i: usize, seq: u64, ts: i64, swing: f64| {
        let p = fleet.profile(i);
        Message::Telemetry(Telemetry {
            device_id: fleet.ids[i].clone(),
            ts: Timestamp(ts),
            seq,
            device_type: p.device_type().to_owned(),
            model: "BENCH-1".into(),
            fw: Some("1.0.0".into()),
            batch: Some(format!("B{:02}", i % 20)),
            region: Some(format!("region-{}", i as u32 % REGIONS)),
            readings: p
                .channels()
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        (c.min + c.max) / 2.0 + swing * (c.max - c.min),
                    )
                })
                .collect(),
        })
    };
    let mut commit = |messages: Vec<Message>| -> anyhow::Result<()> {
        let items: Vec<store::hot::StoreItem<'_>> = messages
            .iter()
            .map(|m| store::hot::StoreItem::Message {
                message: m,
                received_at: start,
            })
            .collect();
        store.commit(&items)?;
        Ok(())
    };
    for chunk in (0..fleet.ids.len()).collect::<Vec<_>>().chunks(5_000) {
        commit(
            chunk
                .iter()
                .map(|&i| report(i, 1, start.millis() + i as i64, 0.0))
                .collect(),
        )?;
    }
    let steps = 14 * Timestamp::DAY_MS / DIAGNOSED_INTERVAL_MS;
    for i in 0..DIAGNOSED_DEVICES.min(fleet.ids.len()) {
        commit(
            (0..steps)
                .map(|k| {
                    let wave = ((k % 96) as f64 / 96.0 * std::f64::consts::TAU).sin();
                    let ts = start.millis() - (steps - k) * DIAGNOSED_INTERVAL_MS;
                    report(i, 2 + k as u64, ts, wave / 8.0)
                })
                .collect(),
        )?;
    }
    Ok(())
}

/// A year of tickets through the ticket service, day by day: flags (two model versions,
/// the second from mid-year), critical faults, then each ticket's fate a few days
/// later (confirmed, false alarm, declined, dismissed, repeat failures, some left
/// open). Returns the tickets per status.
fn write_tickets(
    fleet: &Fleet,
    tickets: &api::TicketService,
    clock: &AtomicI64,
    start: Timestamp,
    args: &InsightBenchArgs,
) -> anyhow::Result<BTreeMap<String, u64>> {
    const DAY: i64 = Timestamp::DAY_MS;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let days = args.days.max(1);
    let n = fleet.ids.len();
    let per_day = |rate: f64| rate * n as f64 / 365.0;
    let mut schedule: BTreeMap<u32, Vec<Action>> = BTreeMap::new();
    let mut failed = 0u64;
    let count = |n: f64, rng: &mut ChaCha8Rng| {
        n.floor() as usize + usize::from(rng.gen::<f64>() < n.fract())
    };
    for day in 0..days {
        let morning = start.millis() + i64::from(day) * DAY + 8 * 3_600_000;
        clock.store(morning, Ordering::SeqCst);
        let version = if day < days / 2 { "v1" } else { "v2" };

        // Flags.
        let flagged: Vec<(usize, Prediction, api::DiagnosisContext)> =
            (0..count(per_day(args.flags_per_device_year), &mut rng))
                .map(|_| {
                    let device = rng.gen_range(0..n);
                    let p = fleet.profile(device);
                    let component = &p.components()[rng.gen_range(0..p.components().len())].name;
                    let prediction = Prediction {
                        device_id: fleet.ids[device].clone(),
                        device_type: p.device_type().to_owned(),
                        component: component.clone(),
                        ts: Timestamp(morning),
                        risk: rng.gen_range(0.6..0.99),
                        threshold: 0.6,
                        flagged: true,
                        model_version: format!("{}-{version}", p.device_type()),
                        top_features: Vec::new(),
                        lead_time_days: None,
                        warming_up: false,
                    };
                    (device, prediction, fleet.context(device))
                })
                .collect();
        let batch: Vec<(&[Prediction], &api::DiagnosisContext)> = flagged
            .iter()
            .map(|(_, p, ctx)| (std::slice::from_ref(p), ctx))
            .collect();
        let changes = tickets.record_batch(&batch)?;
        for (change, (device, _, _)) in changes.iter().zip(&flagged) {
            if change.kind != api::TicketChangeKind::Opened {
                continue;
            }
            let region = (*device as u32) % REGIONS;
            let u: f64 = rng.gen();
            let (later, action) = if u < 0.10 {
                (
                    1,
                    Action::Dismiss {
                        id: change.ticket_id,
                        region,
                    },
                )
            } else if day + 30 > days && u > 0.8 {
                continue; // recent flags still open
            } else if u < 0.62 {
                let lead = rng.gen_range(0..20);
                (
                    lead + 1,
                    Action::Resolve {
                        id: change.ticket_id,
                        region,
                        kind: OutcomeKind::ConfirmedFailure,
                        failed_at: Some(Timestamp(morning + i64::from(lead) * DAY + 3_600_000)),
                    },
                )
            } else if u < 0.85 {
                (
                    rng.gen_range(2..8),
                    resolve(change.ticket_id, region, OutcomeKind::NoFaultFound),
                )
            } else if u < 0.92 {
                (
                    rng.gen_range(2..8),
                    resolve(change.ticket_id, region, OutcomeKind::CustomerDeclined),
                )
            } else {
                (
                    rng.gen_range(2..8),
                    resolve(change.ticket_id, region, OutcomeKind::NotReached),
                )
            };
            schedule.entry(day + later).or_default().push(action);
        }

        // Critical faults: new reactive tickets, and the repeats scheduled for today.
        let mut faults: Vec<(usize, String)> = Vec::new();
        for _ in 0..count(per_day(args.reactive_per_device_year), &mut rng) {
            let device = rng.gen_range(0..n);
            let codes = &fleet.critical[device % fleet.profiles.len()];
            if !codes.is_empty() {
                faults.push((device, codes[rng.gen_range(0..codes.len())].0.clone()));
            }
        }
        let today = schedule.remove(&day).unwrap_or_default();
        let (repeats, fates): (Vec<Action>, Vec<Action>) = today
            .into_iter()
            .partition(|a| matches!(a, Action::Fault { .. }));
        for a in repeats {
            if let Action::Fault { device, code } = a {
                faults.push((device, code));
            }
        }
        let signals: Vec<(usize, api::FaultSignal, api::DiagnosisContext)> = faults
            .into_iter()
            .map(|(device, code)| {
                let signal = api::FaultSignal {
                    device_id: fleet.ids[device].clone(),
                    device_type: fleet.profile(device).device_type().to_owned(),
                    code,
                    ts: Timestamp(morning),
                };
                (device, signal, fleet.context(device))
            })
            .collect();
        let batch: Vec<api::DeviceSignals<'_>> = signals
            .iter()
            .map(|(_, f, ctx)| api::DeviceSignals {
                predictions: &[],
                faults: std::slice::from_ref(f),
                context: ctx,
            })
            .collect();
        let changes = tickets.record(&batch)?;
        for (change, (device, _, _)) in changes.iter().zip(&signals) {
            if change.kind != api::TicketChangeKind::Opened
                || change.source != TicketSource::Reactive
            {
                continue;
            }
            let region = (*device as u32) % REGIONS;
            let kind = if rng.gen::<f64>() < 0.9 {
                OutcomeKind::ConfirmedFailure
            } else {
                OutcomeKind::NoFaultFound
            };
            schedule
                .entry(day + rng.gen_range(1..4))
                .or_default()
                .push(resolve(change.ticket_id, region, kind));
        }

        // Today's fates, in the afternoon.
        clock.store(morning + 6 * 3_600_000, Ordering::SeqCst);
        for action in fates {
            let result = match action {
                Action::Dismiss { id, region } => assign(tickets, id, region).and_then(|_| {
                    tickets.transition(id, TicketStatus::Dismissed, "bench", "", None)
                }),
                Action::Resolve {
                    id,
                    region,
                    kind,
                    failed_at,
                } => {
                    let outcome = api::OutcomeInput {
                        kind: Some(kind),
                        failed_at,
                        ..Default::default()
                    };
                    let done = assign(tickets, id, region).and_then(|_| {
                        tickets.transition(id, TicketStatus::Resolved, "bench", "", Some(outcome))
                    });
                    // One repair in 30 fails again within the month: a repeat failure.
                    if let Ok(t) = &done {
                        if kind == OutcomeKind::ConfirmedFailure && rng.gen::<f64>() < 1.0 / 30.0 {
                            let device = t
                                .device_id
                                .as_str()
                                .rsplit('-')
                                .next()
                                .and_then(|i| i.parse::<usize>().ok());
                            let code = fleet.critical[device.unwrap_or(0) % fleet.profiles.len()]
                                .iter()
                                .find(|(_, c)| *c == t.component)
                                .map(|(code, _)| code.clone());
                            if let (Some(device), Some(code)) = (device, code) {
                                schedule
                                    .entry(day + rng.gen_range(3..25))
                                    .or_default()
                                    .push(Action::Fault { device, code });
                            }
                        }
                    }
                    done
                }
                Action::Fault { .. } => continue,
            };
            if result.is_err() {
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} scheduled ticket changes were refused (e.g. a ticket updated into another state); skipped");
    }
    Ok(tickets
        .count_by_status()?
        .into_iter()
        .map(|(s, n)| (s.to_string(), n))
        .collect())
}

fn resolve(id: i64, region: u32, kind: OutcomeKind) -> Action {
    Action::Resolve {
        id,
        region,
        kind,
        failed_at: None,
    }
}

fn assign(tickets: &api::TicketService, id: i64, region: u32) -> api::Result<domain::Ticket> {
    tickets.assign(
        id,
        api::AssignmentInput {
            engineer: Some(format!("engineer-{}", id % 50)),
            region: Some(format!("region-{region}")),
            ..Default::default()
        },
        "bench",
    )
}

/// A synthetic model per device type whose training summary is a normal distribution
/// per feature, and one feature vector per device observed into the monitor (a third
/// of the types shifted, so the report has drifted features). Returns the mean cost of
/// one observation in nanoseconds.
fn fill_drift(
    fleet: &Fleet,
    drift: &models::DriftMonitor,
    start: Timestamp,
    days: u32,
) -> anyhow::Result<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut normal = move |mean: f64| {
        let (u, v): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen());
        mean + (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    };
    let mut artifacts = Vec::new();
    for p in &fleet.profiles {
        let schema = models::FeatureSchema::for_profile(p);
        let d = schema.len();
        let rows: Vec<Vec<f32>> = (0..10_000)
            .map(|_| (0..d).map(|j| normal(j as f64) as f32).collect())
            .collect();
        artifacts.push(Arc::new(synthetic_model(p.device_type(), &schema, &rows)?));
    }
    // 64 vectors per type, drawn before the clock starts: the timing is the monitor's.
    let vectors: Vec<Vec<Vec<f64>>> = artifacts
        .iter()
        .enumerate()
        .map(|(k, model)| {
            let shift = if k % 3 == 0 { 0.5 } else { 0.0 };
            (0..64)
                .map(|_| {
                    (0..model.feature_schema.len())
                        .map(|j| normal(j as f64 + shift))
                        .collect()
                })
                .collect()
        })
        .collect();
    let end = start.millis() + i64::from(days) * Timestamp::DAY_MS;
    let t = Instant::now();
    for device in 0..fleet.ids.len() {
        let k = device % artifacts.len();
        let raw = &vectors[k][(device / artifacts.len()) % 64];
        drift.observe(
            &artifacts[k],
            Timestamp(end - (device % 3_600) as i64 * 1000),
            raw,
        );
    }
    Ok(t.elapsed().as_nanos() as f64 / fleet.ids.len().max(1) as f64)
}

fn synthetic_model(
    device_type: &str,
    schema: &models::FeatureSchema,
    rows: &[Vec<f32>],
) -> anyhow::Result<models::ModelArtifact> {
    let d = schema.len();
    let mut artifact: models::ModelArtifact = serde_json::from_value(serde_json::json!({
        "format_version": models::artifact::FORMAT_VERSION,
        "version": format!("{device_type}-bench"),
        "device_type": device_type,
        "created_at": "2026-01-01T00:00:00.000Z",
        "horizon_ms": 14 * Timestamp::DAY_MS,
        "feature_schema": schema.names(),
        "feature_mean": vec![0.0; d],
        "feature_std": vec![1.0; d],
        "feature_p05": vec![0.0; d],
        "feature_p95": vec![0.0; d],
        "components": [],
        "training_summary": {
            "devices": 0, "rows": rows.len(), "train_rows": rows.len(), "validation_rows": 0,
            "positives": {}, "time_range": [0, 0], "split_ts": 0, "history_lines": 0,
            "rejected_lines": 0, "rejected_by_reason": {}, "rejected_events": 0,
            "params": models::TrainParams::default(),
        },
    }))
    .context("a synthetic model artefact")?;
    artifact.drift_baseline = Some(models::drift::DriftBaseline::from_rows(
        d,
        rows.iter().map(|r| r.as_slice()),
    ));
    Ok(artifact)
}
