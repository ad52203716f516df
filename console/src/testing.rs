//! A console over real stores in a temporary directory, for the crate's tests: a few
//! washers with readings and faults (one with hostile text), tickets raised from
//! predictions, and an account per role. Requests go through the whole router (session
//! layer, CSRF, security headers) without a socket.

use std::sync::Arc;

use api::{AppState, DiagnosisContext, TicketConfig, TicketService};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use domain::{decode, Contribution, DeviceId, Lang, Prediction, ProfileSet, Role, Timestamp};
use store::hot::{HotStore, StoreItem, StoreReader};
use store::users::{NewUser, UserStore};
use store::Synchronous;
use tower::ServiceExt;

use crate::session::SESSION_COOKIE;
use crate::{ConsoleSettings, ConsoleState};

/// 2026-11-24T06:00:00Z
pub(crate) const T0: i64 = 1_795_500_000_000;

/// A note with markup in it: pages must show it as text.
pub(crate) const HOSTILE: &str = "<script>alert(\"x\")</script> 'quoted' & more";

/// A console with data.
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) router: Router,
    pub(crate) api: AppState,
    pub(crate) tickets: TicketService,
    pub(crate) users: UserStore,
    /// Each account's generated password, by login.
    pub(crate) passwords: std::collections::HashMap<String, String>,
}

/// A signed-in person: their session cookie and CSRF token.
#[derive(Clone, Debug)]
pub(crate) struct Person {
    pub(crate) user_id: i64,
    pub(crate) token: String,
    pub(crate) csrf: String,
}

/// A response: status, headers and body text.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    /// The `Location` header of a redirect.
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn telemetry(
    profiles: &ProfileSet,
    device: &str,
    seq: u64,
    ts: i64,
    readings: &str,
) -> domain::Message {
    let payload = format!(
        r#"{{"ts": {ts}, "seq": {seq}, "type": "washer", "model": "WM-500", "fw": "2.4.1", "batch": "B2025-07", "region": "north", "readings": {readings}}}"#
    );
    decode(
        &format!("fixahead/v1/{device}/telemetry"),
        payload.as_bytes(),
        profiles,
    )
    .expect("test telemetry decodes")
}

fn fault(profiles: &ProfileSet, device: &str, seq: u64, ts: i64, code: &str) -> domain::Message {
    let payload = format!(
        r#"{{"ts": {ts}, "seq": {seq}, "type": "washer", "model": "WM-500", "batch": "B2025-07", "region": "north", "code": "{code}", "state": "raised"}}"#
    );
    decode(
        &format!("fixahead/v1/{device}/fault"),
        payload.as_bytes(),
        profiles,
    )
    .expect("test fault decodes")
}

/// A flagged (or not) prediction for a washer component.
pub(crate) fn prediction(device: &str, component: &str, risk: f64, flagged: bool) -> Prediction {
    Prediction {
        device_id: DeviceId::parse(device).expect("test device id"),
        device_type: "washer".into(),
        component: component.into(),
        ts: Timestamp(T0 + 3_600_000),
        risk,
        threshold: 0.6,
        flagged,
        model_version: "washer-v1".into(),
        top_features: vec![Contribution {
            feature: "drain_time_s.ewma_fast".into(),
            value: 31.0,
            contribution: 1.4,
            normal_range: Some((10.0, 20.0)),
        }],
        lead_time_days: Some(9.0),
        warming_up: false,
    }
}

impl Fixture {
    /// Washers `wm-1` (drain pump and heater flagged, an E21 fault) and `wm-2` (drain
    /// pump flagged); accounts `admin`, `planner`, `engineer` and `engineer2`.
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let profiles = ProfileSet::builtin();
        let hot = dir.path().join("hot.db");
        {
            let mut store = HotStore::open(&hot, Synchronous::Normal).expect("hot store");
            let mut messages = Vec::new();
            for seq in 1..=48u64 {
                let ts = T0 - 48 * 3_600_000 + seq as i64 * 3_600_000;
                let drain = 12.0 + seq as f64 * 0.4;
                messages.push(telemetry(
                    &profiles,
                    "wm-1",
                    seq,
                    ts,
                    &format!(r#"{{"drain_time_s": {drain}, "vibration_g": 0.11}}"#),
                ));
                messages.push(telemetry(
                    &profiles,
                    "wm-2",
                    seq,
                    ts,
                    r#"{"drain_time_s": 11.0}"#,
                ));
            }
            messages.push(fault(&profiles, "wm-1", 100, T0 - 1_800_000, "E21"));
            let items: Vec<StoreItem<'_>> = messages
                .iter()
                .map(|m| StoreItem::Message {
                    message: m,
                    received_at: Timestamp(T0),
                })
                .collect();
            store.commit(&items).expect("commit test messages");
        }
        let reader = StoreReader::open(&hot).expect("hot reader");
        let tickets = TicketService::open(&dir.path().join("tickets.db"), TicketConfig::default())
            .expect("ticket store");
        let faults = reader.recent_faults("wm-1", 20).expect("faults");
        let ctx = DiagnosisContext::from_records(profiles.get("washer").cloned(), &faults);
        tickets
            .record_predictions(
                &[
                    prediction("wm-1", "drain_pump", 0.95, true),
                    prediction("wm-1", "heater", 0.72, true),
                ],
                &ctx,
            )
            .expect("tickets for wm-1");
        tickets
            .record_predictions(
                &[prediction("wm-2", "drain_pump", 0.65, true)],
                &DiagnosisContext::default(),
            )
            .expect("ticket for wm-2");
        let access = api::AccessStore::open_in(dir.path()).expect("keys.db");
        let users = UserStore::open_in(dir.path()).expect("accounts");
        let dispatcher = api::dispatch::Dispatcher::new(
            tickets.clone(),
            users.clone(),
            api::dispatch::DispatchConfig::default(),
        )
        .expect("dispatcher");
        let api = AppState::new(
            tickets.clone(),
            reader,
            profiles,
            prometheus_registry(),
            Arc::new(|| serde_json::json!({})),
        )
        .with_access(access)
        .with_dispatcher(dispatcher);
        let mut passwords = std::collections::HashMap::new();
        for (login, role, lang) in [
            ("admin", Role::Admin, Lang::En),
            ("planner", Role::Planner, Lang::En),
            ("engineer", Role::Engineer, Lang::En),
            ("engineer2", Role::Engineer, Lang::Zh),
        ] {
            let (password, _) = users
                .add(&NewUser {
                    login,
                    display_name: "",
                    role,
                    lang,
                    time_zone: "Asia/Shanghai",
                })
                .expect("test account");
            passwords.insert(login.to_owned(), password);
        }
        // `engineer` is in the engineers' directory (dispatch ranks them); `engineer2`
        // is an engineer account without a profile.
        users
            .put_engineer(
                "engineer",
                &store::engineers::EngineerProfile {
                    skills: [("plumbing".to_owned(), 3), ("electrical".to_owned(), 2)]
                        .into_iter()
                        .collect(),
                    region: Some("north".into()),
                    lat: Some(31.2),
                    lon: Some(121.5),
                    working_hours: store::engineers::WorkingHours::default(),
                    daily_capacity: 6,
                    supervisor: Some("after-sales-manager".into()),
                },
                &store::engineers::NewEngineer {
                    display_name: "",
                    lang: Lang::En,
                    time_zone: "Asia/Shanghai",
                },
                None,
            )
            .expect("engineer profile");
        let state = ConsoleState::new(api.clone(), users.clone(), ConsoleSettings::default());
        Self {
            _dir: dir,
            router: crate::router(state),
            api,
            tickets,
            users,
            passwords,
        }
    }

    /// Signs `login` in (through the store, not the form) and returns their session.
    pub(crate) fn sign_in(&self, login: &str) -> Person {
        let user = self
            .users
            .by_login(login)
            .expect("store")
            .expect("test account exists");
        let s = self
            .users
            .start_session(&user, "127.0.0.1")
            .expect("session");
        Person {
            user_id: user.id,
            token: s.token,
            csrf: s.session.csrf,
        }
    }

    /// Sends a request as `who` (with their session cookie) or as nobody.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        who: Option<&Person>,
        form: Option<String>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(p) = who {
            request = request.header(header::COOKIE, format!("{SESSION_COOKIE}={}", p.token));
        }
        let body = match form {
            Some(f) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(f)
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).expect("request"))
            .await
            .expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// GET `path` as `who`.
    pub(crate) async fn get(&self, path: &str, who: Option<&Person>) -> Answer {
        self.send(Method::GET, path, who, None).await
    }

    /// POSTs a form as `who` with their CSRF token added.
    pub(crate) async fn post(&self, path: &str, who: &Person, fields: &[(&str, &str)]) -> Answer {
        let mut all: Vec<(&str, &str)> = vec![("csrf", who.csrf.as_str())];
        all.extend_from_slice(fields);
        let form = serde_urlencoded::to_string(&all).expect("form encodes");
        self.send(Method::POST, path, Some(who), Some(form)).await
    }

    /// POSTs a form as `who` exactly as given (no CSRF token added).
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        who: &Person,
        fields: &[(&str, &str)],
    ) -> Answer {
        let form = serde_urlencoded::to_string(fields).expect("form encodes");
        self.send(Method::POST, path, Some(who), Some(form)).await
    }

    /// The id of the active ticket for `device` / `component`.
    pub(crate) fn ticket_id(&self, device: &str, component: &str) -> i64 {
        self.tickets
            .list(&api::TicketQuery {
                device_id: Some(DeviceId::parse(device).expect("test device id")),
                ..api::TicketQuery::default()
            })
            .expect("tickets")
            .into_iter()
            .find(|t| t.component == component)
            .map(|t| t.id)
            .expect("the fixture's ticket")
    }
}

impl Fixture {
    /// Gives `login` the display name `name` (same role, language and zone).
    pub(crate) fn rename(&self, login: &str, name: &str) {
        let user = self
            .users
            .by_login(login)
            .expect("store")
            .expect("test account exists");
        self.users
            .update(user.id, name, user.role, user.lang, &user.time_zone)
            .expect("rename");
    }

    /// Assigns ticket `id` to the engineer `login` (no window), as a planner would.
    pub(crate) fn assign(&self, id: i64, login: &str) {
        self.tickets
            .assign(
                id,
                api::AssignmentInput {
                    engineer: Some(login.to_owned()),
                    ..api::AssignmentInput::default()
                },
                "test",
            )
            .expect("assign");
    }

    /// Stores `count` hourly washer readings of `device` ending at `T0` (sequence
    /// numbers from 1000, so they do not collide with the fixture's), in batches.
    pub(crate) fn add_hourly_readings(&self, device: &str, count: u64) {
        let profiles = ProfileSet::builtin();
        let mut store = HotStore::open(&self._dir.path().join("hot.db"), Synchronous::Normal)
            .expect("hot store");
        let seqs: Vec<u64> = (0..count).collect();
        for chunk in seqs.chunks(2_000) {
            let messages: Vec<domain::Message> = chunk
                .iter()
                .map(|i| {
                    let ts = T0 - (count - i) as i64 * 3_600_000;
                    let drain = 12.0 + (*i % 24) as f64 * 0.2;
                    telemetry(
                        &profiles,
                        device,
                        1_000 + i,
                        ts,
                        &format!(r#"{{"drain_time_s": {drain}, "vibration_g": 0.1}}"#),
                    )
                })
                .collect();
            let items: Vec<StoreItem<'_>> = messages
                .iter()
                .map(|m| StoreItem::Message {
                    message: m,
                    received_at: Timestamp(T0),
                })
                .collect();
            store.commit(&items).expect("commit readings");
        }
    }
}

fn prometheus_registry() -> prometheus::Registry {
    prometheus::Registry::new()
}

/// Extensions for the admin and models pages' tests.
impl Fixture {
    /// The console over `api` (the fixture's state with something added).
    fn rebuilt(mut self, api: AppState) -> Self {
        let state = ConsoleState::new(api.clone(), self.users.clone(), ConsoleSettings::default());
        self.router = crate::router(state);
        self.api = api;
        self
    }

    /// With a drift reporter that always reports `report`.
    pub(crate) fn with_drift(self, report: api::DriftReport) -> Self {
        let api = self
            .api
            .clone()
            .with_drift(Arc::new(move || report.clone()));
        self.rebuilt(api)
    }

    /// With webhooks (in the fixture's `tickets.db`); returns the service too.
    pub(crate) fn with_webhooks(self) -> (Self, api::WebhookService) {
        let service = api::WebhookService::open(
            &self._dir.path().join("tickets.db"),
            api::WebhookConfig::default(),
        )
        .expect("webhook service");
        let api = self.api.clone().with_webhooks(service.clone());
        (self.rebuilt(api), service)
    }

    /// Stores the dead letters of `payloads` (each rejected by the decoder) on `topic`.
    pub(crate) fn add_dead_letters(&self, topic: &str, payloads: &[&[u8]]) {
        let profiles = ProfileSet::builtin();
        let mut store = HotStore::open(&self._dir.path().join("hot.db"), Synchronous::Normal)
            .expect("hot store");
        let rejections: Vec<domain::Rejection> = payloads
            .iter()
            .map(|p| decode(topic, p, &profiles).expect_err("a payload the decoder refuses"))
            .collect();
        let items: Vec<StoreItem<'_>> = payloads
            .iter()
            .zip(&rejections)
            .map(|(payload, rejection)| StoreItem::DeadLetter {
                topic,
                payload,
                rejection,
                received_at: Timestamp(T0),
            })
            .collect();
        store.commit(&items).expect("commit dead letters");
    }
}

/// Extensions for the device and fleet pages' tests.
impl Fixture {
    /// Adds what a full server has for remote diagnosis: the command service (whose
    /// publishes are kept in memory and never answered) and the fleet summary (normal
    /// ranges, cohorts), refreshed now.
    pub(crate) fn with_diagnosis(self) -> Self {
        let dir = self._dir.path();
        let publisher: api::CommandPublisher = Arc::new(|_: &str, _: Vec<u8>| Ok(()));
        let commands = api::CommandService::open(
            &dir.join("tickets.db"),
            std::time::Duration::from_secs(30),
            publisher,
            {
                let tickets = self.tickets.clone();
                Arc::new(move || tickets.now())
            },
        )
        .expect("command service");
        let summary = api::FleetSummary::open(&dir.join("tickets.db")).expect("fleet summary");
        summary
            .refresh(self.api.store(), self.tickets.now())
            .expect("fleet summary refresh");
        let api = self
            .api
            .clone()
            .with_commands(commands)
            .with_fleet_summary(summary);
        self.rebuilt(api)
    }

    /// Stores `readings` telemetry messages of washer `device` with the given model,
    /// batch and region (any text: they come from devices), and a fault `code` if
    /// given.
    pub(crate) fn add_washer(
        &self,
        device: &str,
        model: &str,
        batch: &str,
        region: &str,
        fault_code: Option<&str>,
    ) {
        let profiles = ProfileSet::builtin();
        let hot = self._dir.path().join("hot.db");
        let mut store = HotStore::open(&hot, Synchronous::Normal).expect("hot store");
        let mut messages = Vec::new();
        for seq in 1..=3u64 {
            let payload = serde_json::json!({
                "ts": T0 + seq as i64 * 3_600_000, "seq": seq, "type": "washer",
                "model": model, "fw": "2.4.1", "batch": batch, "region": region,
                "readings": {"drain_time_s": 14.0, "vibration_g": 0.2},
            });
            messages.push(
                decode(
                    &format!("fixahead/v1/{device}/telemetry"),
                    payload.to_string().as_bytes(),
                    &profiles,
                )
                .expect("test telemetry decodes"),
            );
        }
        if let Some(code) = fault_code {
            let payload = serde_json::json!({
                "ts": T0 + 4 * 3_600_000, "seq": 4, "type": "washer", "model": model,
                "code": code, "state": "raised",
            });
            messages.push(
                decode(
                    &format!("fixahead/v1/{device}/fault"),
                    payload.to_string().as_bytes(),
                    &profiles,
                )
                .expect("test fault decodes"),
            );
        }
        let items: Vec<StoreItem<'_>> = messages
            .iter()
            .map(|m| StoreItem::Message {
                message: m,
                received_at: Timestamp(T0),
            })
            .collect();
        store.commit(&items).expect("commit test messages");
    }

    /// Raises an active batch alarm for `value` of `model` (dimension `batch`,
    /// component `component`); returns its id.
    pub(crate) fn raise_alarm(&self, model: &str, value: &str, component: &str) -> i64 {
        let db = store::tickets::TicketDb::open(&self._dir.path().join("tickets.db"))
            .expect("ticket store");
        let cell = store::tickets::AlarmCell {
            model: model.into(),
            dimension: "batch".into(),
            value: value.into(),
            component: component.into(),
            statistic: "confirmed_failures".into(),
        };
        let numbers = store::tickets::AlarmNumbers {
            p_value: 2e-9,
            q_value: 3.1e-8,
            observed: 12,
            expected: 2.5,
            exposure: 400.0,
            ratio: Some(4.8),
        };
        db.write(|tx| tx.insert_alarm(&cell, &numbers, Timestamp(T0)))
            .expect("alarm")
    }
}

/// Helpers of the queue and my-day tests (issue 19).
impl Fixture {
    /// The fixture's `tickets.db`.
    pub(crate) fn tickets_path(&self) -> std::path::PathBuf {
        self._dir.path().join("tickets.db")
    }

    /// Opens a proactive ticket for (`device`, `component`) as if the flag had come
    /// at `opened_at` (its SLA clocks count from then), with the device's registry
    /// facts; returns its id.
    pub(crate) fn open_ticket(
        &self,
        device: &str,
        component: &str,
        risk: f64,
        opened_at: Timestamp,
        facts: Option<domain::DeviceInfo>,
    ) -> i64 {
        let at = TicketService::open_with_clock(
            &self.tickets_path(),
            TicketConfig::default(),
            Arc::new(move || opened_at),
        )
        .expect("ticket store");
        let p = Prediction {
            ts: opened_at,
            lead_time_days: None,
            ..prediction(device, component, risk, true)
        };
        let ctx = DiagnosisContext::default().with_device(facts);
        let changes = at.record_predictions(&[p], &ctx).expect("ticket opens");
        changes
            .first()
            .map(|c| c.ticket_id)
            .expect("a ticket opened or updated")
    }

    /// A washer's registry facts.
    pub(crate) fn facts(model: &str, batch: &str, region: &str) -> domain::DeviceInfo {
        domain::DeviceInfo {
            device_type: "washer".into(),
            model: model.into(),
            fw: None,
            batch: Some(batch.into()),
            region: Some(region.into()),
        }
    }

    /// Assigns ticket `id` to `engineer`, with a window and region when given.
    pub(crate) fn assign_with(
        &self,
        id: i64,
        engineer: &str,
        window: Option<(Timestamp, Timestamp)>,
        region: Option<&str>,
    ) {
        self.tickets
            .assign(
                id,
                api::AssignmentInput {
                    engineer: Some(engineer.to_owned()),
                    window_start: window.map(|w| w.0),
                    window_end: window.map(|w| w.1),
                    region: region.map(str::to_owned),
                },
                "Planner (planner)",
            )
            .expect("assignment");
    }

    /// "Now" by the ticket service's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.tickets.now()
    }
}
