//! The service world playing against fixahead's public API: customers report, the
//! planner dispatches by a rule, engineers travel, diagnose, repair and record
//! outcomes, customers answer the satisfaction check, the planner calls the
//! dissatisfied back. [`Play::tick`] does everything due at the service clock's "now";
//! `simulate-service` calls it after each clock step, `demo` on a timer.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use domain::{ProfileSet, Timestamp};
use serde::Serialize;
use serde_json::{json, Value};
use simulators::service::people::{Customer, Engineer};
use simulators::service::reports::{customer_reports, CustomerReport, ReportTruth};
use simulators::service::work::{fcfs_pick, travel_km, Experience};
use simulators::service::{chance, uniform, Satisfaction, ServiceConfig, Visit};
use simulators::{DeviceInfo, GroundTruthEvent, GroundTruthKind};

use super::api::Api;
use crate::Result;

const HOUR_MS: i64 = 3_600_000;

/// How tickets reach engineers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// First come, first served by region: in opening order, to the engineer of the
    /// ticket's region who is free first; fixahead's automatic dispatch off.
    Fcfs,
    /// fixahead's ranking and automatic dispatch; what it only proposes, the planner
    /// assigns to the top candidate.
    Fixahead,
}

impl Rule {
    /// The name on the command line and in the output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fcfs => "fcfs",
            Self::Fixahead => "fixahead",
        }
    }
}

/// The API keys the world acts with, one per role (engineers each their own, named by
/// their login, so they can act only on their own assignments).
pub(crate) struct Keys {
    pub(crate) admin: String,
    pub(crate) planner: String,
    pub(crate) integration: String,
    pub(crate) engineers: HashMap<String, String>,
}

/// What the world did, counted by the driver (the KPIs come from fixahead).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    /// Customer reports sent to `POST /api/v1/tickets`.
    pub reports_sent: u64,
    /// ... that opened a ticket.
    pub reports_opened: u64,
    /// ... that joined an active ticket.
    pub reports_joined: u64,
    /// ... refused (any 4xx).
    pub reports_refused: u64,
    /// Failures a customer would have reported, not reported because a proactive
    /// repair prevented them (or a visit fixed them first).
    pub reports_prevented: u64,
    /// Tickets the world worked on.
    pub tickets: u64,
    /// Assignments fixahead made itself (automatic dispatch).
    pub assigned_by_fixahead: u64,
    /// Assignments by the simulated planner from fixahead's candidates.
    pub assigned_top_candidate: u64,
    /// Assignments by the first-come-first-served rule (or its fallback).
    pub assigned_fcfs: u64,
    /// Assignments over capacity, with the planner's override.
    pub capacity_overrides: u64,
    /// Visits made.
    pub visits: u64,
    /// Tickets resolved.
    pub resolved: u64,
    /// ... at the first visit.
    pub fixed_first_visit: u64,
    /// Outcomes `confirmed_failure`.
    pub confirmed_failure: u64,
    /// ... of which proactive repairs before the failure.
    pub proactive_repairs: u64,
    /// Outcomes `no_fault_found`.
    pub no_fault_found: u64,
    /// Part waits (part out of stock).
    pub part_waits: u64,
    /// Satisfaction answers recorded.
    pub satisfaction_answers: u64,
    /// Their sum (mean = sum / answers).
    pub satisfaction_sum: u64,
    /// Call-backs made.
    pub callbacks: u64,
    /// ... the customer did not answer.
    pub callbacks_unanswered: u64,
    /// API calls that failed unexpectedly (logged).
    pub api_errors: u64,
}

#[derive(Clone, Debug)]
enum Stage {
    Unassigned,
    Scheduled {
        arrive: Timestamp,
    },
    OnSite {
        done: Timestamp,
        visit: Visit,
        finding: Finding,
    },
    Resolved {
        answer_at: Timestamp,
    },
    Answered {
        check_at: Timestamp,
    },
    CallBack {
        at: Timestamp,
    },
    Done,
}

/// What the engineer finds on site.
#[derive(Clone, Debug, PartialEq)]
enum Finding {
    /// A failed component (`prevented`: failing, fixed before it failed).
    Fault {
        component: String,
        failed_at: Timestamp,
        prevented: bool,
    },
    Nothing,
}

struct Job {
    id: i64,
    device: String,
    component: String,
    region: String,
    key: String,
    first_contact: Timestamp,
    engineer: Option<usize>,
    stage: Stage,
    visits: u32,
    fixed: Option<(Finding, Timestamp)>,
}

/// The world, its state, and the API it plays against.
pub(crate) struct Play {
    api: Api,
    keys: Keys,
    rule: Rule,
    config: ServiceConfig,
    profiles: ProfileSet,
    pub(crate) engineers: Vec<Engineer>,
    customers: HashMap<String, Customer>,
    devices: HashMap<String, DeviceInfo>,
    /// Ground truth so far, by time.
    truth: Vec<GroundTruthEvent>,
    /// Failures fixed or prevented by a visit: (device, component, failure time).
    fixed: HashSet<(String, String, i64)>,
    pending: Vec<CustomerReport>,
    jobs: BTreeMap<i64, Job>,
    free_at: Vec<Timestamp>,
    /// Visits started per (engineer, day).
    booked: HashMap<(usize, i64), u32>,
    /// Jobs per (device, component), for draw keys that do not depend on ticket ids.
    episodes: HashMap<(String, String), u32>,
    routes: BTreeSet<String>,
    directory_done: HashSet<String>,
    pub(crate) counts: Counts,
}

impl Play {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        api: Api,
        keys: Keys,
        rule: Rule,
        config: ServiceConfig,
        profiles: ProfileSet,
        engineers: Vec<Engineer>,
        customers: Vec<Customer>,
        devices: Vec<DeviceInfo>,
        routes: BTreeSet<String>,
    ) -> Self {
        let free_at = vec![Timestamp(0); engineers.len()];
        Self {
            api,
            keys,
            rule,
            config,
            profiles,
            engineers,
            customers: customers
                .into_iter()
                .map(|c| (c.device_id.clone(), c))
                .collect(),
            devices: devices
                .into_iter()
                .map(|d| (d.device_id.as_str().to_owned(), d))
                .collect(),
            truth: Vec::new(),
            fixed: HashSet::new(),
            pending: Vec::new(),
            jobs: BTreeMap::new(),
            free_at,
            booked: HashMap::new(),
            episodes: HashMap::new(),
            routes,
            directory_done: HashSet::new(),
            counts: Counts::default(),
        }
    }

    /// The admin key (reads for the final report).
    pub(crate) fn admin_key(&self) -> String {
        self.keys.admin.clone()
    }

    pub(crate) fn has_route(&self, path: &str) -> bool {
        self.routes.contains(path)
    }

    /// Adds ground truth; with `report`, customers report its failures.
    pub(crate) fn learn(&mut self, events: Vec<GroundTruthEvent>, report: bool) {
        if report {
            let devices: Vec<DeviceInfo> = self.devices.values().cloned().collect();
            let new = customer_reports(
                &self.config,
                &devices,
                &events,
                &[],
                (Timestamp(0), Timestamp(0)),
            );
            self.add_reports(new);
        }
        self.truth.extend(events);
        self.truth.sort_by_key(|e| e.ts);
    }

    /// Queues customer reports.
    pub(crate) fn add_reports(&mut self, reports: Vec<CustomerReport>) {
        self.pending.extend(reports);
        self.pending.sort_by_key(|r| r.at);
    }

    /// Whether work is left (reports to make, tickets not done).
    pub(crate) fn busy(&self) -> bool {
        !self.pending.is_empty() || self.jobs.values().any(|j| !matches!(j.stage, Stage::Done))
    }

    /// Creates the engineers through `PUT /api/v1/engineers/{login}`.
    pub(crate) async fn create_engineers(&mut self) -> Result<()> {
        if !self.has_route("put /api/v1/engineers/{login}") {
            tracing::warn!("This fixahead has no PUT /api/v1/engineers/{{login}}: engineers are assigned by name only");
            return Ok(());
        }
        for e in self.engineers.clone() {
            let (start, end) = e.hours.start_end();
            let body = json!({
                "display_name": e.display_name,
                "skills": e.skills,
                "region": e.region,
                "lat": e.lat,
                "lon": e.lon,
                "working_hours": {"start": start, "end": end, "days": e.hours.day_names()},
                "daily_capacity": e.daily_capacity,
                "supervisor": e.supervisor,
                "time_zone": "UTC",
            });
            let r = self
                .api
                .put(
                    &self.keys.planner,
                    &format!("/api/v1/engineers/{}", e.login),
                    &body,
                )
                .await?;
            if !r.ok() {
                self.counts.api_errors += 1;
                tracing::warn!(login = %e.login, status = r.status, body = %r.body, "Could not create the engineer");
            }
        }
        Ok(())
    }

    /// Puts the directory entries of `devices` not put yet (a device is in the
    /// registry once it has published).
    pub(crate) async fn put_directory(&mut self, devices: &BTreeSet<String>) -> Result<()> {
        if !self.has_route("put /api/v1/devices/{device_id}/directory") {
            return Ok(());
        }
        for d in devices {
            if self.directory_done.contains(d) {
                continue;
            }
            let Some(c) = self.customers.get(d) else {
                continue;
            };
            let body = json!({
                "serial": c.serial, "customer_ref": c.customer_ref,
                "customer_name": c.customer_name, "address": c.address,
                "lat": c.lat, "lon": c.lon, "region": c.region,
            });
            let r = self
                .api
                .put(
                    &self.keys.planner,
                    &format!("/api/v1/devices/{d}/directory"),
                    &body,
                )
                .await?;
            if r.ok() {
                self.directory_done.insert(d.clone());
            } else {
                self.counts.api_errors += 1;
                tracing::warn!(device = %d, status = r.status, body = %r.body, "Could not put the directory entry");
            }
        }
        Ok(())
    }

    /// Does everything due at `now`.
    pub(crate) async fn tick(&mut self, now: Timestamp) -> Result<()> {
        self.report(now).await?;
        self.discover(now).await?;
        self.dispatch(now).await?;
        let ids: Vec<i64> = self.jobs.keys().copied().collect();
        for id in ids {
            // A job may move through several stages at once.
            for _ in 0..6 {
                if !self.progress(id, now).await? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Customers whose call is due call.
    async fn report(&mut self, now: Timestamp) -> Result<()> {
        let due = self.pending.partition_point(|r| r.at <= now);
        let reports: Vec<CustomerReport> = self.pending.drain(..due).collect();
        if reports.is_empty() {
            return Ok(());
        }
        let intake = self.has_route("post /api/v1/tickets");
        for r in reports {
            if let ReportTruth::Failure {
                component,
                failed_at,
                ..
            } = &r.truth
            {
                if self.fixed.contains(&(
                    r.device_id.clone(),
                    component.clone(),
                    failed_at.millis(),
                )) {
                    self.counts.reports_prevented += 1;
                    continue;
                }
            }
            if !intake {
                continue;
            }
            let customer = self.customers.get(&r.device_id);
            // Phone calls name the customer, installers read the serial, the app and
            // the web form know the device.
            let mut body = json!({"channel": r.channel, "category": r.category, "words": r.words});
            match (r.channel, customer) {
                ("phone", Some(c)) if self.directory_done.contains(&r.device_id) => {
                    body["customer_ref"] = json!(c.customer_ref)
                }
                ("installer", Some(c)) if self.directory_done.contains(&r.device_id) => {
                    body["serial"] = json!(c.serial)
                }
                _ => body["device_id"] = json!(r.device_id),
            }
            self.counts.reports_sent += 1;
            let reply = self
                .api
                .post(&self.keys.integration, "/api/v1/tickets", &body)
                .await?;
            if !reply.ok() {
                self.counts.reports_refused += 1;
                tracing::debug!(device = %r.device_id, status = reply.status, body = %reply.body, "Customer report refused");
                continue;
            }
            match reply.body.get("result").and_then(Value::as_str) {
                Some("joined") => self.counts.reports_joined += 1,
                _ => self.counts.reports_opened += 1,
            }
            if let Some(t) = reply.body.get("ticket") {
                self.adopt(t, now);
                if let Some(id) = t.get("id").and_then(Value::as_i64) {
                    if let Some(job) = self.jobs.get_mut(&id) {
                        job.first_contact = job.first_contact.min(r.at);
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts a job for a ticket the world has not seen.
    fn adopt(&mut self, t: &Value, now: Timestamp) {
        let Some(id) = t.get("id").and_then(Value::as_i64) else {
            return;
        };
        if self.jobs.contains_key(&id) {
            return;
        }
        let status = t.get("status").and_then(Value::as_str).unwrap_or("open");
        if !matches!(
            status,
            "open" | "acknowledged" | "scheduled" | "in_progress"
        ) {
            return;
        }
        let device = t["device_id"].as_str().unwrap_or_default().to_owned();
        let component = t["component"].as_str().unwrap_or("unknown").to_owned();
        let opened_at = t
            .get("opened_at")
            .and_then(Value::as_str)
            .and_then(|s| Timestamp::parse(s).ok())
            .unwrap_or(now);
        let region = self
            .customers
            .get(&device)
            .map(|c| c.region.clone())
            .unwrap_or_else(|| "central".into());
        let n = self
            .episodes
            .entry((device.clone(), component.clone()))
            .or_default();
        *n += 1;
        let key = format!("{device}/{component}/{n}");
        let engineer = t
            .pointer("/assignment/engineer")
            .and_then(Value::as_str)
            .and_then(|login| self.engineers.iter().position(|e| e.login == login));
        self.counts.tickets += 1;
        self.jobs.insert(
            id,
            Job {
                id,
                device,
                component,
                region,
                key,
                first_contact: opened_at,
                engineer,
                stage: Stage::Unassigned,
                visits: 0,
                fixed: None,
            },
        );
    }

    /// Finds the active tickets fixahead opened (from flags, codes and reports).
    async fn discover(&mut self, now: Timestamp) -> Result<()> {
        let active = self
            .api
            .tickets(&self.keys.planner, "status=active")
            .await?;
        for t in &active {
            self.adopt(t, now);
            // fixahead's dispatcher may have assigned it since.
            if let (Some(id), Some(login)) = (
                t.get("id").and_then(Value::as_i64),
                t.pointer("/assignment/engineer").and_then(Value::as_str),
            ) {
                let pos = self.engineers.iter().position(|e| e.login == login);
                if let Some(job) = self.jobs.get_mut(&id) {
                    if matches!(job.stage, Stage::Unassigned) && job.engineer.is_none() {
                        job.engineer = pos;
                    }
                }
            }
        }
        Ok(())
    }

    /// The planner: unassigned tickets in opening order get an engineer and a visit.
    async fn dispatch(&mut self, now: Timestamp) -> Result<()> {
        let waiting: Vec<i64> = self
            .jobs
            .values()
            .filter(|j| matches!(j.stage, Stage::Unassigned))
            .map(|j| j.id)
            .collect();
        for id in waiting {
            let (pre_assigned, region) = {
                let j = &self.jobs[&id];
                (j.engineer, j.region.clone())
            };
            let chosen = match (pre_assigned, self.rule) {
                (Some(e), _) => {
                    self.counts.assigned_by_fixahead += 1;
                    Some(e)
                }
                (None, Rule::Fixahead) => match self.top_candidate(id).await? {
                    Some(e) => {
                        self.counts.assigned_top_candidate += 1;
                        Some(e)
                    }
                    None => self.fcfs(&region),
                },
                (None, Rule::Fcfs) => self.fcfs(&region),
            };
            let Some(e) = chosen else { continue };
            let arrive = self.book(e, id, now);
            let engineer = self.engineers[e].login.clone();
            let mut body = json!({
                "engineer": engineer,
                "window_start": arrive.to_rfc3339(),
                "window_end": Timestamp(arrive.millis() + 2 * HOUR_MS).to_rfc3339(),
                "region": region,
            });
            let mut r = self
                .api
                .post(
                    &self.keys.planner,
                    &format!("/api/v1/tickets/{id}/assignment"),
                    &body,
                )
                .await?;
            if r.status == 409 && r.body.to_string().contains("capacity") {
                body["override_capacity"] = json!(true);
                self.counts.capacity_overrides += 1;
                r = self
                    .api
                    .post(
                        &self.keys.planner,
                        &format!("/api/v1/tickets/{id}/assignment"),
                        &body,
                    )
                    .await?;
            }
            if !r.ok() {
                self.fail(id, "assign", &r);
                continue;
            }
            let status = r.body["status"].as_str().unwrap_or("open").to_owned();
            if status == "open" || status == "acknowledged" {
                let r = self
                    .transition(
                        &self.keys.planner.clone(),
                        id,
                        "scheduled",
                        json!({"note": format!("Visit booked with {engineer}")}),
                    )
                    .await?;
                if !r.ok() {
                    self.fail(id, "schedule", &r);
                    continue;
                }
            }
            if let Some(job) = self.jobs.get_mut(&id) {
                job.engineer = Some(e);
                job.stage = Stage::Scheduled { arrive };
            }
        }
        Ok(())
    }

    fn fcfs(&mut self, region: &str) -> Option<usize> {
        let e = fcfs_pick(&self.engineers, &self.free_at, region)?;
        self.counts.assigned_fcfs += 1;
        Some(e)
    }

    /// The top candidate fixahead ranks (`GET /api/v1/tickets/{id}/candidates`): the
    /// first that fits, else the first.
    async fn top_candidate(&mut self, id: i64) -> Result<Option<usize>> {
        if !self.has_route("get /api/v1/tickets/{id}/candidates") {
            return Ok(None);
        }
        let r = self
            .api
            .get(
                &self.keys.planner,
                &format!("/api/v1/tickets/{id}/candidates"),
            )
            .await?;
        if !r.ok() {
            self.fail(id, "candidates", &r);
            return Ok(None);
        }
        let list = r.body["candidates"].as_array().cloned().unwrap_or_default();
        let best = list
            .iter()
            .find(|c| c["fits"].as_bool() == Some(true))
            .or(list.first())
            .and_then(|c| c["engineer"].as_str())
            .and_then(|login| self.engineers.iter().position(|e| e.login == login));
        Ok(best)
    }

    /// Books engineer `e`'s next visit for job `id`, no earlier than `earliest`: the
    /// next working time when they are free and have capacity left that day, plus the
    /// travel. Returns the arrival.
    fn book(&mut self, e: usize, id: i64, earliest: Timestamp) -> Timestamp {
        let eng = &self.engineers[e];
        let place = self
            .customers
            .get(&self.jobs[&id].device)
            .map_or((eng.lat, eng.lon), |c| (c.lat, c.lon));
        let travel =
            (travel_km(eng, place) / self.config.travel_kmh.max(1.0) * HOUR_MS as f64) as i64;
        let mut start = eng
            .hours
            .next_open(Timestamp(earliest.millis().max(self.free_at[e].millis())));
        for _ in 0..30 {
            let day = start.millis().div_euclid(Timestamp::DAY_MS);
            let used = self.booked.get(&(e, day)).copied().unwrap_or(0);
            if used < eng.daily_capacity {
                break;
            }
            start = eng
                .hours
                .next_open(Timestamp((day + 1) * Timestamp::DAY_MS));
        }
        let day = start.millis().div_euclid(Timestamp::DAY_MS);
        *self.booked.entry((e, day)).or_default() += 1;
        let arrive = Timestamp(start.millis() + travel);
        // Busy until the visit is over and they are back: an estimate until it ends.
        let (lo, hi) = self.config.diagnosis_min;
        let (rlo, rhi) = self.config.repair_min;
        let on_site = ((lo + hi) / 2.0 + (rlo + rhi) / 2.0) * 60_000.0;
        self.free_at[e] = Timestamp(arrive.millis() + on_site as i64 + travel);
        arrive
    }

    /// What is wrong with the device at `now`: a failure not yet fixed (the ticket's
    /// component first), else the ticket's component failing within `held_days`
    /// (a proactive repair prevents it), else nothing.
    fn find(&self, job: &Job, now: Timestamp) -> Finding {
        let failed_now = |component: Option<&str>| {
            self.truth.iter().rev().find(|e| {
                e.event == GroundTruthKind::Failure
                    && e.device_id.as_str() == job.device
                    && e.ts <= now
                    && component.is_none_or(|c| c == e.component)
                    && !self.fixed.contains(&(
                        job.device.clone(),
                        e.component.clone(),
                        e.ts.millis(),
                    ))
                    && !self.repaired_before(&job.device, &e.component, e.ts, job.first_contact)
            })
        };
        if let Some(f) = failed_now(Some(&job.component)).or_else(|| failed_now(None)) {
            return Finding::Fault {
                component: f.component.clone(),
                failed_at: f.ts,
                prevented: false,
            };
        }
        let horizon = now.millis() + self.config.held_days * Timestamp::DAY_MS;
        if let Some(f) = self.truth.iter().find(|e| {
            e.event == GroundTruthKind::Failure
                && e.device_id.as_str() == job.device
                && e.component == job.component
                && e.ts > now
                && e.ts.millis() <= horizon
        }) {
            return Finding::Fault {
                component: f.component.clone(),
                failed_at: f.ts,
                prevented: true,
            };
        }
        Finding::Nothing
    }

    /// Whether the fleet's own repair of the failure at `failed_at` came before the
    /// customer's first contact (an old failure, not this ticket's).
    fn repaired_before(
        &self,
        device: &str,
        component: &str,
        failed_at: Timestamp,
        contact: Timestamp,
    ) -> bool {
        self.truth.iter().any(|e| {
            e.event == GroundTruthKind::Repair
                && e.device_id.as_str() == device
                && e.component == component
                && e.ts >= failed_at
                && e.ts.millis() < contact.millis() - Timestamp::DAY_MS
        })
    }

    /// Whether the fix of `component` at `at` held: no other failure of it within
    /// `held_days` (as far as the truth is known).
    fn held(&self, device: &str, component: &str, at: Timestamp) -> bool {
        let until = at.millis() + self.config.held_days * Timestamp::DAY_MS;
        !self.truth.iter().any(|e| {
            e.event == GroundTruthKind::Failure
                && e.device_id.as_str() == device
                && e.component == component
                && e.ts > at
                && e.ts.millis() <= until
                && !self
                    .fixed
                    .contains(&(device.to_owned(), component.to_owned(), e.ts.millis()))
        })
    }

    async fn transition(
        &mut self,
        key: &str,
        id: i64,
        to: &str,
        mut extra: Value,
    ) -> Result<super::api::Reply> {
        extra["to"] = json!(to);
        self.api
            .post(key, &format!("/api/v1/tickets/{id}/transitions"), &extra)
            .await
    }

    fn fail(&mut self, id: i64, what: &str, r: &super::api::Reply) {
        self.counts.api_errors += 1;
        tracing::warn!(ticket_id = id, what, status = r.status, body = %r.body, "Service simulation: API call refused");
    }

    fn engineer_key(&self, job: &Job) -> String {
        job.engineer
            .and_then(|e| self.keys.engineers.get(&self.engineers[e].login))
            .cloned()
            .unwrap_or_else(|| self.keys.planner.clone())
    }

    /// Moves job `id` one stage if due; whether it moved.
    async fn progress(&mut self, id: i64, now: Timestamp) -> Result<bool> {
        let Some(job) = self.jobs.get(&id) else {
            return Ok(false);
        };
        let stage = job.stage.clone();
        match stage {
            Stage::Unassigned | Stage::Done => Ok(false),
            Stage::Scheduled { arrive } if arrive <= now => {
                let key = self.engineer_key(job);
                let r = self
                    .transition(&key, id, "in_progress", json!({"note": "On site"}))
                    .await?;
                if !r.ok() {
                    // Dismissed or resolved meanwhile (e.g. by a person): nothing to do.
                    self.fail(id, "start the visit", &r);
                    self.end(id);
                    return Ok(false);
                }
                let job = &self.jobs[&id];
                let finding = self.find(job, now);
                let e = job.engineer.unwrap_or(0);
                let level = self.level(job, e, &finding);
                let place = self
                    .customers
                    .get(&job.device)
                    .map(|c| (c.lat, c.lon))
                    .unwrap_or((0.0, 0.0));
                let km = travel_km(&self.engineers[e], place);
                let visit = Visit::draw(
                    &self.config,
                    &job.key,
                    job.visits + 1,
                    level,
                    km,
                    finding != Finding::Nothing,
                );
                let done = Timestamp(now.millis() + visit.on_site_ms());
                self.free_at[e] = Timestamp(done.millis() + visit.travel_ms);
                self.counts.visits += 1;
                let job = self.jobs.get_mut(&id).expect("job exists");
                job.visits += 1;
                job.stage = Stage::OnSite {
                    done,
                    visit,
                    finding,
                };
                Ok(true)
            }
            Stage::OnSite {
                done,
                visit,
                finding,
            } if done <= now => {
                if visit.fixed {
                    self.resolve(id, now, finding).await?;
                    return Ok(true);
                }
                // Not fixed: a second visit, after the part arrives if it must.
                let wait = visit.part_wait_ms.unwrap_or(12 * HOUR_MS);
                if visit.part_wait_ms.is_some() {
                    self.counts.part_waits += 1;
                }
                let note = match visit.part_wait_ms {
                    Some(w) => format!(
                        "Part out of stock: second visit when it arrives (about {} days)",
                        (w as f64 / Timestamp::DAY_MS as f64).round()
                    ),
                    None => "Not fixed at the first visit: second visit booked".to_owned(),
                };
                let planner = self.keys.planner.clone();
                let r = self
                    .transition(&planner, id, "scheduled", json!({"note": note}))
                    .await?;
                if !r.ok() {
                    self.fail(id, "book the second visit", &r);
                    self.end(id);
                    return Ok(false);
                }
                let e = self.jobs[&id].engineer.unwrap_or(0);
                let arrive = self.book(e, id, Timestamp(now.millis() + wait));
                let job = self.jobs.get_mut(&id).expect("job exists");
                job.stage = Stage::Scheduled { arrive };
                Ok(true)
            }
            Stage::Resolved { answer_at } if answer_at <= now => {
                self.answer(id, now).await?;
                Ok(true)
            }
            Stage::Answered { check_at } if check_at <= now => {
                self.check_callback(id, now).await?;
                Ok(true)
            }
            Stage::CallBack { at } if at <= now => {
                let job = &self.jobs[&id];
                let answered = Satisfaction::answers_callback(&self.config, &job.key);
                let note = if answered {
                    "Called the customer back: apologised, explained what was done, offered a follow-up check"
                } else {
                    "Called the customer back: no answer, left a message"
                };
                self.counts.callbacks += 1;
                if !answered {
                    self.counts.callbacks_unanswered += 1;
                }
                let planner = self.keys.planner.clone();
                let r = self
                    .api
                    .post(
                        &planner,
                        &format!("/api/v1/tickets/{id}/callback"),
                        &json!({"note": note}),
                    )
                    .await?;
                if !r.ok() {
                    self.fail(id, "call back", &r);
                }
                self.end(id);
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    fn end(&mut self, id: i64) {
        if let Some(j) = self.jobs.get_mut(&id) {
            j.stage = Stage::Done;
        }
    }

    /// The engineer's level for what they found (the ticket's component when nothing).
    fn level(&self, job: &Job, e: usize, finding: &Finding) -> u8 {
        let component = match finding {
            Finding::Fault { component, .. } => component.as_str(),
            Finding::Nothing => job.component.as_str(),
        };
        let needed = self
            .devices
            .get(&job.device)
            .and_then(|d| self.profiles.get(&d.device_type))
            .and_then(|p| p.component(component).map(|c| c.skills.clone()))
            .unwrap_or_default();
        self.engineers[e].level_for(&needed)
    }

    /// The engineer resolves with the outcome of what they found.
    async fn resolve(&mut self, id: i64, now: Timestamp, finding: Finding) -> Result<()> {
        let job = &self.jobs[&id];
        let outcome = match &finding {
            Finding::Fault {
                component,
                failed_at,
                prevented,
            } => {
                let parts: Vec<String> = self
                    .devices
                    .get(&job.device)
                    .and_then(|d| self.profiles.get(&d.device_type))
                    .and_then(|p| p.component(component).map(|c| c.parts.clone()))
                    .unwrap_or_default()
                    .into_iter()
                    .take(1)
                    .map(|p| p.name)
                    .collect();
                json!({
                    "kind": "confirmed_failure",
                    "component": component,
                    "failed_at": if *prevented { now } else { *failed_at }.to_rfc3339(),
                    "parts_replaced": parts,
                    "note": if *prevented { "Worn before it failed: replaced (proactive repair)" } else { "Failed: repaired" },
                })
            }
            Finding::Nothing => json!({
                "kind": "no_fault_found",
                "note": "Checked on site: no failed or wearing component",
            }),
        };
        let key = self.engineer_key(job);
        let r = self
            .transition(
                &key,
                id,
                "resolved",
                json!({"note": "Visit done", "outcome": outcome}),
            )
            .await?;
        if !r.ok() {
            self.fail(id, "resolve", &r);
            self.end(id);
            return Ok(());
        }
        self.counts.resolved += 1;
        let job = &self.jobs[&id];
        if job.visits == 1 {
            self.counts.fixed_first_visit += 1;
        }
        if let Finding::Fault {
            component,
            failed_at,
            prevented,
        } = &finding
        {
            self.counts.confirmed_failure += 1;
            if *prevented {
                self.counts.proactive_repairs += 1;
            }
            self.fixed
                .insert((job.device.clone(), component.clone(), failed_at.millis()));
        } else {
            self.counts.no_fault_found += 1;
        }
        let delay = uniform(self.config.seed, "answer", &job.key, 1, 12) * HOUR_MS;
        let job = self.jobs.get_mut(&id).expect("job exists");
        job.fixed = Some((finding, now));
        job.stage = Stage::Resolved {
            answer_at: Timestamp(now.millis() + delay),
        };
        Ok(())
    }

    /// The customer answers the satisfaction check; the planner closes the ticket.
    async fn answer(&mut self, id: i64, now: Timestamp) -> Result<()> {
        let job = &self.jobs[&id];
        let (finding, fixed_at) = job.fixed.clone().unwrap_or((Finding::Nothing, now));
        let (prevented, held) = match &finding {
            Finding::Fault {
                component,
                prevented,
                ..
            } => (*prevented, self.held(&job.device, component, fixed_at)),
            Finding::Nothing => (false, true),
        };
        let wait_hours = if prevented {
            0.0
        } else {
            (fixed_at.millis() - job.first_contact.millis()).max(0) as f64 / HOUR_MS as f64
        };
        let e = Experience {
            wait_hours,
            prevented,
            held,
            visits: job.visits.max(1),
        };
        let s = Satisfaction::draw(&self.config, &job.key, &e);
        let channel = if chance(self.config.seed, "answer channel", &job.key, 0.5) {
            "phone"
        } else {
            "app"
        };
        let mut check_at = now;
        if self.has_route("post /api/v1/tickets/{id}/satisfaction") {
            let integration = self.keys.integration.clone();
            let r = self
                .api
                .post(
                    &integration,
                    &format!("/api/v1/tickets/{id}/satisfaction"),
                    &json!({"score": s.score, "comment": s.comment, "channel": channel}),
                )
                .await?;
            if r.ok() {
                self.counts.satisfaction_answers += 1;
                self.counts.satisfaction_sum += u64::from(s.score);
            } else {
                self.fail(id, "satisfaction", &r);
            }
            // The planner looks at the call-back list a few minutes later.
            check_at = Timestamp(now.millis() + 5 * 60_000);
        }
        let planner = self.keys.planner.clone();
        let r = self
            .transition(
                &planner,
                id,
                "closed",
                json!({"note": "Customer confirmed"}),
            )
            .await?;
        if !r.ok() {
            self.fail(id, "close", &r);
        }
        let callbacks = self.has_route("post /api/v1/tickets/{id}/callback");
        let job = self.jobs.get_mut(&id).expect("job exists");
        job.stage = if callbacks {
            Stage::Answered { check_at }
        } else {
            Stage::Done
        };
        Ok(())
    }

    /// A pending call-back gets a time: most within the hour, some late.
    async fn check_callback(&mut self, id: i64, now: Timestamp) -> Result<()> {
        let planner = self.keys.planner.clone();
        let r = self
            .api
            .get(&planner, &format!("/api/v1/tickets/{id}"))
            .await?;
        let pending = r
            .body
            .get("callback")
            .is_some_and(|c| c.is_object() && c.get("done_at").is_none_or(Value::is_null));
        let job = self.jobs.get_mut(&id).expect("job exists");
        if !pending {
            job.stage = Stage::Done;
            return Ok(());
        }
        let seed = self.config.seed;
        let minutes = if chance(seed, "callback on time", &job.key, 0.75) {
            uniform(seed, "callback delay", &job.key, 15, 50)
        } else {
            uniform(seed, "callback delay", &job.key, 70, 180)
        };
        job.stage = Stage::CallBack {
            at: Timestamp(now.millis() + minutes * 60_000),
        };
        Ok(())
    }
}
