//! What the ticket page shows, built from what [`super::load`] read: every value
//! formatted for the person (their language, their zone), every picture as geometry.

use api::http::auth::Permission;
use api::{desk, Principal, RiskRecord};
use domain::{Lang, Profile, Ticket, TicketSource, TicketStatus, Timestamp};
use store::hot::{DeviceRecord, FaultRecord, TelemetryRecord};
use store::users::UserInfo;

use super::chart::{event_time_of, Bar, Meter, Panel, PanelInput, Trend};
use super::forms::{local_input, Action, Draft};
use super::texts::{fill, Texts};
use super::words;
use crate::clock::Clock;
use crate::PREFIX;

/// Days of readings the chart shows.
pub(crate) const CHART_DAYS: i64 = 28;
/// Readings read per chart at most (the chart is sampled above it).
pub(crate) const CHART_POINTS: usize = 240;
/// Channels charted at most.
const CHART_CHANNELS: usize = 3;
/// Fault codes read for the chart and the table.
pub(crate) const FAULTS_READ: usize = 50;
/// Fault codes listed.
const FAULTS_LISTED: usize = 12;
/// Tickets of the device read (this one and others).
pub(crate) const DEVICE_TICKETS: usize = 11;
/// Log entries shown.
const LOG_SHOWN: usize = 200;

/// What [`super::load`] read for one ticket page.
pub(crate) struct Loaded {
    pub(crate) ticket: Ticket,
    pub(crate) allowed: Vec<TicketStatus>,
    pub(crate) device: Option<DeviceRecord>,
    pub(crate) risks: Vec<RiskRecord>,
    pub(crate) faults: Vec<FaultRecord>,
    /// The device's tickets, newest first, this one among them.
    pub(crate) device_tickets: Vec<Ticket>,
    /// Readings of the chart window, oldest first.
    pub(crate) readings: Vec<TelemetryRecord>,
    pub(crate) sampled: bool,
    pub(crate) window: Option<(Timestamp, Timestamp)>,
    pub(crate) users: Vec<UserInfo>,
    pub(crate) risk_log_delta: f64,
    pub(crate) now: Timestamp,
}

/// A choice of a select, radio group or checkbox list.
#[derive(Debug)]
pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

#[derive(Debug)]
pub(crate) struct SlaClock {
    pub(crate) text: String,
    pub(crate) due: String,
    /// `ok`, `warn` (a quarter or less of the time left) or `bad` (missed).
    pub(crate) class: &'static str,
}

#[derive(Debug)]
pub(crate) struct FeatureRow {
    pub(crate) label: String,
    pub(crate) detail: String,
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) range: String,
    pub(crate) verdict: &'static str,
    pub(crate) verdict_class: &'static str,
    pub(crate) bar: Option<Bar>,
    pub(crate) effect: &'static str,
    pub(crate) raises: bool,
}

#[derive(Debug)]
pub(crate) struct RiskRow {
    pub(crate) title: String,
    pub(crate) percent: String,
    pub(crate) meter: Meter,
    pub(crate) flagged: bool,
    pub(crate) this: bool,
}

#[derive(Debug)]
pub(crate) struct FaultRow {
    pub(crate) code: String,
    pub(crate) at: String,
    pub(crate) iso: String,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) severity: &'static str,
    pub(crate) severity_class: &'static str,
    pub(crate) state: &'static str,
}

#[derive(Debug)]
pub(crate) struct PartRow {
    pub(crate) name: String,
    pub(crate) reference: String,
}

#[derive(Debug)]
pub(crate) struct OtherTicket {
    /// Its page, when the person may open it (an engineer: their own tickets only).
    pub(crate) href: Option<String>,
    pub(crate) number: String,
    pub(crate) component: String,
    pub(crate) status: &'static str,
    pub(crate) status_class: &'static str,
    pub(crate) opened: String,
    pub(crate) outcome: &'static str,
}

#[derive(Debug)]
pub(crate) struct OutcomeView {
    pub(crate) kind: &'static str,
    pub(crate) component: String,
    pub(crate) parts: String,
    pub(crate) failed_at: String,
    pub(crate) note: String,
    pub(crate) recorded: String,
}

#[derive(Debug)]
pub(crate) struct LogRow {
    pub(crate) at: String,
    pub(crate) iso: String,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) note: String,
}

/// The page's facts and pictures.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) id: i64,
    pub(crate) number: String,
    pub(crate) device_id: String,
    pub(crate) device_href: String,
    pub(crate) registered: bool,
    pub(crate) type_title: String,
    pub(crate) model: String,
    pub(crate) firmware: String,
    pub(crate) batch: String,
    pub(crate) component_title: String,
    pub(crate) priority: &'static str,
    pub(crate) priority_class: &'static str,
    pub(crate) status: &'static str,
    pub(crate) status_class: &'static str,
    pub(crate) source: &'static str,
    pub(crate) reactive: bool,
    pub(crate) opened: String,
    pub(crate) opened_iso: String,
    pub(crate) opened_ago: String,
    pub(crate) updated: String,
    pub(crate) signals: u64,
    pub(crate) engineer: Option<String>,
    pub(crate) window: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) skills: String,
    pub(crate) respond: SlaClock,
    pub(crate) resolve: SlaClock,
    pub(crate) breaches: Vec<&'static str>,
    pub(crate) escalated_to: Option<String>,
    pub(crate) risk: String,
    pub(crate) risk_meter: Meter,
    pub(crate) peak: String,
    pub(crate) threshold: Option<String>,
    pub(crate) warming_up: bool,
    pub(crate) lead: String,
    pub(crate) model_version: String,
    pub(crate) trend: Option<Trend>,
    pub(crate) trend_from: String,
    pub(crate) trend_to: String,
    pub(crate) trend_text: String,
    pub(crate) features: Vec<FeatureRow>,
    pub(crate) risks: Vec<RiskRow>,
    pub(crate) chart_title: String,
    pub(crate) panels: Vec<Panel>,
    pub(crate) chart_message: Option<&'static str>,
    pub(crate) chart_sampled: Option<String>,
    pub(crate) faults: Vec<FaultRow>,
    pub(crate) parts: Vec<PartRow>,
    pub(crate) checks: Vec<String>,
    pub(crate) others: Vec<OtherTicket>,
    pub(crate) outcome: Option<OutcomeView>,
    pub(crate) log: Vec<LogRow>,
    pub(crate) log_truncated: Option<String>,
}

/// The schedule form.
#[derive(Debug)]
pub(crate) struct ScheduleForm {
    pub(crate) title: &'static str,
    pub(crate) engineers: Vec<Choice>,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) region: String,
    pub(crate) zone_help: String,
}

/// A group of part checkboxes (one component's parts).
#[derive(Debug)]
pub(crate) struct PartGroup {
    pub(crate) title: String,
    pub(crate) open: bool,
    pub(crate) parts: Vec<Choice>,
}

/// The outcome form (resolving, or correcting a recorded outcome).
#[derive(Debug)]
pub(crate) struct OutcomeForm {
    pub(crate) action: &'static str,
    pub(crate) title: &'static str,
    pub(crate) submit: &'static str,
    pub(crate) kinds: Vec<Choice>,
    pub(crate) components: Vec<Choice>,
    pub(crate) groups: Vec<PartGroup>,
    pub(crate) failed_at: String,
    pub(crate) note: String,
}

/// What the person may do now, with each form's starting values.
#[derive(Debug, Default)]
pub(crate) struct Actions {
    pub(crate) acknowledge: Option<&'static str>,
    pub(crate) schedule: Option<ScheduleForm>,
    pub(crate) start: Option<&'static str>,
    pub(crate) resolve: Option<OutcomeForm>,
    pub(crate) outcome: Option<OutcomeForm>,
    pub(crate) dismiss: bool,
    pub(crate) reopen: Vec<Choice>,
    pub(crate) close: bool,
    pub(crate) note: bool,
    /// The note, dismiss reason or reopen note typed before a refusal.
    pub(crate) note_draft: String,
    pub(crate) dismiss_draft: String,
    pub(crate) reopen_draft: String,
}

impl Actions {
    pub(crate) fn any(&self) -> bool {
        self.acknowledge.is_some()
            || self.schedule.is_some()
            || self.start.is_some()
            || self.resolve.is_some()
            || self.outcome.is_some()
            || self.dismiss
            || !self.reopen.is_empty()
            || self.close
            || self.note
    }
}

fn status_class(s: TicketStatus) -> &'static str {
    s.as_str()
}

fn priority_class(p: domain::Priority) -> &'static str {
    p.as_str()
}

/// Decimals for a value of this size.
fn decimals(x: f64) -> usize {
    match x.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    }
}

fn with_unit(number: String, unit: &str) -> String {
    if unit.is_empty() {
        number
    } else {
        format!("{number} {unit}")
    }
}

/// The people's display names by login.
fn display_name<'a>(users: &'a [UserInfo], login: &'a str) -> String {
    users.iter().find(|u| u.login == login).map_or_else(
        || login.to_owned(),
        |u| {
            if u.display_name == u.login {
                u.login.clone()
            } else {
                format!("{} ({})", u.display_name, u.login)
            }
        },
    )
}

/// A number in a note written by fixahead (`Risk 0.72 -> 0.80 by ...`), after `marker`.
fn number_after(note: &str, marker: &str) -> Option<f64> {
    let rest = &note[note.find(marker)? + marker.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The ticket's risk over time, from its log (the opening note and `risk_updated`
/// entries, both written by the ticket service) and its current risk.
pub(crate) fn risk_points(t: &Ticket) -> Vec<(i64, f64)> {
    let mut points: Vec<(i64, f64)> = Vec::new();
    for e in &t.log {
        let risk = match e.action.as_str() {
            "opened" => number_after(&e.note, "Risk "),
            "risk_updated" => number_after(&e.note, "-> "),
            _ => None,
        };
        if let Some(r) = risk.filter(|r| (0.0..=1.0).contains(r)) {
            points.push((e.at.millis(), r));
        }
    }
    let last = points.last().copied();
    if t.source == TicketSource::Proactive || !points.is_empty() {
        match last {
            Some((at, r)) if at >= t.updated_at.millis() || (r - t.risk).abs() < 1e-9 => {}
            _ => points.push((t.updated_at.millis(), t.risk)),
        }
    }
    points
}

fn sla_clock(
    deadline: Option<Timestamp>,
    stopped: Option<Timestamp>,
    started: Timestamp,
    now: Timestamp,
    clock: &Clock,
    t: &Texts,
) -> SlaClock {
    let Some(deadline) = deadline else {
        return SlaClock {
            text: t.no_resolve_clock.into(),
            due: String::new(),
            class: "",
        };
    };
    let due = fill(t.due, &clock.at_zone(deadline));
    if let Some(at) = stopped {
        let late = at.millis() - deadline.millis();
        return if late <= 0 {
            SlaClock {
                text: fill(t.met, &clock.at(at)),
                due,
                class: "ok",
            }
        } else {
            SlaClock {
                text: format!("{} ({})", fill(t.met_late, &clock.span(late)), clock.at(at)),
                due,
                class: "bad",
            }
        };
    }
    let left = deadline.millis() - now.millis();
    if left < 0 {
        return SlaClock {
            text: fill(t.overdue, &clock.span(left)),
            due,
            class: "bad",
        };
    }
    let total = (deadline.millis() - started.millis()).max(1);
    SlaClock {
        text: fill(t.left, &clock.span(left)),
        due,
        class: if left * 4 <= total { "warn" } else { "ok" },
    }
}

/// Values of `channel` in a reading: measured, or derived from two measured ones
/// (with the derived channel's conditions).
fn channel_value(r: &TelemetryRecord, channel: &str, profile: Option<&Profile>) -> Option<f64> {
    if let Some(v) = r.readings.get(channel) {
        return Some(*v);
    }
    let d = profile?.derived().iter().find(|d| d.name() == channel)?;
    let (a, b) = d.operands();
    let holds = d
        .when()
        .iter()
        .all(|c| r.readings.get(&c.channel).is_some_and(|x| c.holds(*x)));
    if !holds {
        return None;
    }
    d.value(*r.readings.get(a)?, *r.readings.get(b)?)
}

/// Builds the page's view and actions.
pub(crate) fn build(
    l: &Loaded,
    who: &Principal,
    clock: &Clock,
    profile: Option<&Profile>,
    t: &Texts,
    draft: &Draft,
) -> (View, Actions) {
    let lang = clock.lang;
    let c = crate::i18n::common(lang);
    let tk = &l.ticket;
    let now = l.now;
    let d = &tk.diagnosis;
    let component_title = words::component_title(profile, &tk.component, lang);

    // Risk and why.
    let threshold = l
        .risks
        .iter()
        .find(|r| r.component == tk.component)
        .map(|r| r.threshold);
    let warming_up = l
        .risks
        .iter()
        .any(|r| r.component == tk.component && r.warming_up);
    let points = risk_points(tk);
    let trend = Trend::new(&points, threshold);
    let trend_text = if trend.is_some() {
        fill(t.trend_note, &clock.number(l.risk_log_delta, 2))
    } else {
        t.trend_short.to_owned()
    };
    let features = d
        .top_features
        .iter()
        .map(|c| {
            let w = words::feature(&c.feature, profile, lang);
            let dec = decimals(c.value);
            let (range, verdict, verdict_class, bar) = match c.normal_range {
                Some((lo, hi)) => {
                    let (lo, hi) = (lo.min(hi), lo.max(hi));
                    let dec = dec.max(decimals(hi - lo));
                    let range = with_unit(
                        format!("{}–{}", clock.number(lo, dec), clock.number(hi, dec)),
                        &w.unit,
                    );
                    let (verdict, class) = if c.value > hi {
                        (t.above_normal, "bad")
                    } else if c.value < lo {
                        (t.below_normal, "bad")
                    } else {
                        (t.within_normal, "ok")
                    };
                    (
                        fill(t.normal_range, &range),
                        verdict,
                        class,
                        Bar::new(c.value, lo, hi),
                    )
                }
                None => (String::new(), t.no_range, "", None),
            };
            FeatureRow {
                label: w.label,
                detail: w.detail,
                name: c.feature.clone(),
                value: with_unit(clock.number(c.value, dec), &w.unit),
                range,
                verdict,
                verdict_class,
                bar,
                effect: if c.contribution >= 0.0 {
                    t.raises
                } else {
                    t.lowers
                },
                raises: c.contribution >= 0.0,
            }
        })
        .collect();
    let risks: Vec<RiskRow> = if l.risks.is_empty() {
        d.component_risks
            .iter()
            .map(|r| RiskRow {
                title: words::component_title(profile, &r.component, lang),
                percent: clock.percent(r.risk, 0),
                meter: Meter::new(r.risk, None),
                flagged: r.flagged,
                this: r.component == tk.component,
            })
            .collect()
    } else {
        l.risks
            .iter()
            .map(|r| RiskRow {
                title: words::component_title(profile, &r.component, lang),
                percent: clock.percent(r.risk, 0),
                meter: Meter::new(r.risk, Some(r.threshold)),
                flagged: r.flagged,
                this: r.component == tk.component,
            })
            .collect()
    };

    // Chart: the channels of the top features.
    let mut channels: Vec<(String, Option<(f64, f64)>)> = Vec::new();
    for c in &d.top_features {
        let w = words::feature(&c.feature, profile, lang);
        let Some(ch) = w.channel else { continue };
        let band = c.normal_range.filter(|_| w.level);
        if let Some((_, b)) = channels.iter_mut().find(|(name, _)| *name == ch) {
            if b.is_none() {
                *b = band;
            }
        } else if channels.len() < CHART_CHANNELS {
            channels.push((ch, band));
        }
    }
    let mut panels = Vec::new();
    let mut chart_message = None;
    match l.window {
        None => chart_message = Some(t.chart_no_device),
        Some(_) if channels.is_empty() => chart_message = Some(t.chart_no_channels),
        Some((from, to)) => {
            let arrivals: Vec<(i64, i64)> = l
                .readings
                .iter()
                .map(|r| (r.ts.millis(), r.received_at.millis()))
                .collect();
            let fault_marks: Vec<(i64, String)> = l
                .faults
                .iter()
                .filter(|f| f.state == domain::FaultState::Raised)
                .map(|f| {
                    let title = profile
                        .and_then(|p| p.fault(&f.code))
                        .map(|def| def.title_in(lang).to_owned())
                        .unwrap_or_default();
                    (
                        f.ts.millis(),
                        format!("{} {} · {}", f.code, title, clock.at(f.ts)),
                    )
                })
                .collect();
            let ticket_marks: Vec<(i64, String, bool)> = l
                .device_tickets
                .iter()
                .filter_map(|o| {
                    let at = event_time_of(o.opened_at.millis(), &arrivals, 3_600_000)?;
                    Some((
                        at,
                        format!(
                            "{} {} · {} · {}",
                            t.ticket,
                            o.number,
                            words::component_title(profile, &o.component, lang),
                            c.status(o.status)
                        ),
                        o.id == tk.id,
                    ))
                })
                .collect();
            for (channel, band) in &channels {
                let series: Vec<(i64, f64)> = l
                    .readings
                    .iter()
                    .filter_map(|r| {
                        channel_value(r, channel, profile)
                            .filter(|v| v.is_finite())
                            .map(|v| (r.ts.millis(), v))
                    })
                    .collect();
                let w = words::feature(&format!("{channel}.last"), profile, lang);
                let unit = w.unit.clone();
                let number = move |v: f64| with_unit(clock.number(v, decimals(v)), &unit);
                let day = |ts: i64| {
                    let date = clock.date(Timestamp(ts));
                    date.get(5..).map_or(date.clone(), str::to_owned)
                };
                panels.push(Panel::new(PanelInput {
                    title: words::channel_name(channel, lang),
                    detail: w.detail,
                    series: &series,
                    from: from.millis(),
                    to: to.millis(),
                    band: *band,
                    faults: &fault_marks,
                    tickets: &ticket_marks,
                    number: &number,
                    day: &day,
                }));
            }
        }
    }

    // Faults, parts, checks.
    let faults = l
        .faults
        .iter()
        .take(FAULTS_LISTED)
        .map(|f| {
            let def = profile.and_then(|p| p.fault(&f.code));
            FaultRow {
                code: f.code.clone(),
                at: clock.at(f.ts),
                iso: clock.iso(f.ts),
                title: def.map_or_else(
                    || t.not_in_catalogue.to_owned(),
                    |d| d.title_in(lang).to_owned(),
                ),
                description: def
                    .map(|d| d.description_in(lang).to_owned())
                    .unwrap_or_default(),
                severity: def.map_or("", |d| c.severity(d.severity)),
                severity_class: def.map_or("", |d| crate::i18n::severity_class(d.severity)),
                state: match f.state {
                    domain::FaultState::Raised => t.raised,
                    domain::FaultState::Cleared => t.cleared,
                },
            }
        })
        .collect();
    let parts = d
        .likely_parts
        .iter()
        .map(|name| PartRow {
            name: profile.map_or_else(|| name.clone(), |p| p.part_name_in(name, lang).to_owned()),
            reference: profile
                .and_then(|p| p.components().iter().find_map(|c| c.part(name)))
                .map(|p| p.reference.clone())
                .unwrap_or_default(),
        })
        .collect();
    let checks = d
        .remote_checks
        .iter()
        .map(|check| translate_check(profile, check, lang))
        .collect();

    // Other tickets of the device.
    let others = l
        .device_tickets
        .iter()
        .filter(|o| o.id != tk.id)
        .take(DEVICE_TICKETS - 1)
        .map(|o| OtherTicket {
            href: (!who.restricted_to_assigned() || desk::assigned_to(who, o))
                .then(|| format!("{PREFIX}/tickets/{}", o.id)),
            number: o.number.clone(),
            component: words::component_title(profile, &o.component, lang),
            status: c.status(o.status),
            status_class: crate::i18n::status_class(o.status),
            opened: clock.date(o.opened_at),
            outcome: o.outcome.as_ref().map_or("", |x| c.outcome(x.kind)),
        })
        .collect();
    let outcome = tk.outcome.as_ref().map(|o| OutcomeView {
        kind: c.outcome(o.kind),
        component: o
            .component
            .as_deref()
            .map(|c| words::component_title(profile, c, lang))
            .unwrap_or_default(),
        parts: o
            .parts_replaced
            .iter()
            .map(|p| profile.map_or(p.as_str(), |pr| pr.part_name_in(p, lang)))
            .collect::<Vec<_>>()
            .join(", "),
        failed_at: o.failed_at.map(|f| clock.at(f)).unwrap_or_default(),
        note: o.note.clone(),
        recorded: format!("{} · {}", clock.at(o.recorded_at), o.recorded_by),
    });
    let log: Vec<LogRow> = tk
        .log
        .iter()
        .rev()
        .take(LOG_SHOWN)
        .map(|e| LogRow {
            at: clock.at(e.at),
            iso: clock.iso(e.at),
            actor: if e.actor == api::tickets::SYSTEM_ACTOR {
                t.automatic.to_owned()
            } else {
                e.actor.clone()
            },
            action: t.log_action(&e.action).to_owned(),
            note: e.note.clone(),
        })
        .collect();
    let log_truncated =
        (tk.log.len() > LOG_SHOWN).then(|| fill(t.log_truncated, &LOG_SHOWN.to_string()));

    let a = &tk.assignment;
    let window = match (a.window_start, a.window_end) {
        (Some(s), Some(e)) => Some(format!(
            "{} {} {}",
            clock.at(s),
            t.window_to,
            clock.at_zone(e)
        )),
        _ => None,
    };
    let ended = (!tk.status.is_active()).then_some(tk.ended_at).flatten();
    let view = View {
        id: tk.id,
        number: tk.number.clone(),
        device_id: tk.device_id.as_str().to_owned(),
        device_href: format!(
            "{PREFIX}/devices/{}",
            urlencode_segment(tk.device_id.as_str())
        ),
        registered: l.device.is_some(),
        type_title: profile.map_or_else(|| tk.device_type.clone(), |p| p.title_in(lang).to_owned()),
        model: l
            .device
            .as_ref()
            .map(|dv| dv.device.model.clone())
            .unwrap_or_default(),
        firmware: l
            .device
            .as_ref()
            .and_then(|dv| dv.device.fw.clone())
            .unwrap_or_default(),
        batch: l
            .device
            .as_ref()
            .and_then(|dv| dv.device.batch.clone())
            .unwrap_or_default(),
        component_title,
        priority: c.priority(tk.priority),
        priority_class: priority_class(tk.priority),
        status: c.status(tk.status),
        status_class: status_class(tk.status),
        source: t.source(tk.source),
        reactive: tk.source == TicketSource::Reactive,
        opened: clock.at_zone(tk.opened_at),
        opened_iso: clock.iso(tk.opened_at),
        opened_ago: clock.relative(tk.opened_at, now),
        updated: clock.at(tk.updated_at),
        signals: tk.signals,
        engineer: a.engineer.as_deref().map(|e| display_name(&l.users, e)),
        window,
        region: a.region.clone(),
        skills: a.skills.join(", "),
        respond: sla_clock(
            Some(tk.respond_by),
            tk.responded_at,
            tk.opened_at,
            now,
            clock,
            t,
        ),
        resolve: if tk.status == TicketStatus::Dismissed {
            SlaClock {
                text: format!(
                    "{} ({})",
                    t.stopped,
                    ended.map(|e| clock.at(e)).unwrap_or_default()
                ),
                due: tk
                    .resolve_by
                    .map(|r| fill(t.due, &clock.at_zone(r)))
                    .unwrap_or_default(),
                class: "",
            }
        } else {
            sla_clock(tk.resolve_by, ended, tk.opened_at, now, clock, t)
        },
        breaches: tk
            .sla_breaches
            .iter()
            .map(|b| match b.as_str() {
                "respond" => t.breach_respond,
                _ => t.breach_resolve,
            })
            .collect(),
        escalated_to: tk.escalated_to.clone(),
        risk: clock.percent(tk.risk, 0),
        risk_meter: Meter::new(tk.risk, threshold),
        peak: clock.percent(tk.peak_risk, 0),
        threshold: threshold.map(|x| clock.percent(x, 0)),
        warming_up,
        lead: d.lead_time_days.map_or_else(
            || t.no_lead.to_owned(),
            |days| {
                fill(
                    t.lead_days,
                    &clock.number(days, if days < 10.0 { 1 } else { 0 }),
                )
            },
        ),
        model_version: d
            .model_version
            .clone()
            .filter(|v| !v.is_empty())
            .or_else(|| (!tk.model_version.is_empty()).then(|| tk.model_version.clone()))
            .unwrap_or_else(|| t.no_model.to_owned()),
        trend_from: points
            .first()
            .map(|(at, _)| clock.at(Timestamp(*at)))
            .unwrap_or_default(),
        trend_to: points
            .last()
            .map(|(at, _)| clock.at(Timestamp(*at)))
            .unwrap_or_default(),
        trend,
        trend_text,
        features,
        risks,
        chart_title: fill(t.chart, &CHART_DAYS.to_string()),
        panels,
        chart_message,
        chart_sampled: l
            .sampled
            .then(|| fill(t.chart_sampled, &CHART_POINTS.to_string())),
        faults,
        parts,
        checks,
        others,
        outcome,
        log,
        log_truncated,
    };
    let actions = actions(l, who, clock, profile, t, draft);
    (view, actions)
}

/// A remote check of the snapshot (English) in `lang`, through the catalogue entry
/// that lists it.
fn translate_check(profile: Option<&Profile>, check: &str, lang: Lang) -> String {
    profile
        .and_then(|p| {
            p.faults().iter().find_map(|f| {
                let i = f.remote_checks.iter().position(|c| c == check)?;
                f.remote_checks_in(lang).get(i).cloned()
            })
        })
        .unwrap_or_else(|| check.to_owned())
}

/// A device id as one path segment (ids are `[A-Za-z0-9._:-]`; anything else is
/// percent-encoded all the same).
fn urlencode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn actions(
    l: &Loaded,
    who: &Principal,
    clock: &Clock,
    profile: Option<&Profile>,
    t: &Texts,
    draft: &Draft,
) -> Actions {
    let c = crate::i18n::common(clock.lang);
    let tk = &l.ticket;
    let allowed = |s: TicketStatus| l.allowed.contains(&s);
    let may_act =
        who.may(Permission::TransitionTickets) && desk::check_may_act(who, tk, None).is_ok();
    let engineer_view = who.restricted_to_assigned();
    let mut a = Actions {
        note_draft: if draft.is(Action::Note) {
            draft.note.clone()
        } else {
            String::new()
        },
        dismiss_draft: if draft.is(Action::Dismiss) {
            draft.note.clone()
        } else {
            String::new()
        },
        reopen_draft: if draft.is(Action::Reopen) {
            draft.note.clone()
        } else {
            String::new()
        },
        ..Actions::default()
    };
    if allowed(TicketStatus::Acknowledged) {
        a.acknowledge = Some(if tk.status == TicketStatus::Scheduled {
            t.unschedule
        } else {
            t.acknowledge
        });
    }
    if who.may(Permission::AssignTickets) && tk.status.is_active() {
        let from_draft = draft.is(Action::Schedule);
        let chosen = if from_draft {
            draft.engineer.clone()
        } else {
            tk.assignment.engineer.clone().unwrap_or_default()
        };
        let mut engineers: Vec<Choice> = l
            .users
            .iter()
            .filter(|u| u.role == domain::Role::Engineer && u.disabled_at.is_none())
            .map(|u| Choice {
                value: u.login.clone(),
                label: display_name(&l.users, &u.login),
                selected: u.login == chosen,
            })
            .collect();
        engineers.sort_by(|x, y| x.label.cmp(&y.label));
        let (start, end) = if from_draft {
            (draft.window_start.clone(), draft.window_end.clone())
        } else {
            (
                tk.assignment
                    .window_start
                    .map(|s| local_input(s, clock.tz))
                    .unwrap_or_default(),
                tk.assignment
                    .window_end
                    .map(|s| local_input(s, clock.tz))
                    .unwrap_or_default(),
            )
        };
        let region = if from_draft {
            draft.region.clone()
        } else {
            tk.assignment
                .region
                .clone()
                .or_else(|| l.device.as_ref().and_then(|d| d.device.region.clone()))
                .unwrap_or_default()
        };
        a.schedule = Some(ScheduleForm {
            title: if tk.assignment.engineer.is_some() || tk.status == TicketStatus::Scheduled {
                t.reschedule
            } else {
                t.schedule
            },
            engineers,
            start,
            end,
            region,
            zone_help: fill(t.window_help, clock.tz.name()),
        });
    }
    if allowed(TicketStatus::InProgress) && (tk.status.is_active() || engineer_view) {
        a.start = Some(if tk.status.is_active() {
            t.start
        } else {
            t.resume
        });
    }
    if allowed(TicketStatus::Resolved) && who.may(Permission::RecordOutcome) {
        a.resolve = Some(outcome_form(
            Action::Resolve,
            t.resolve,
            t.resolve,
            tk,
            profile,
            clock,
            draft,
        ));
    }
    if tk.status == TicketStatus::Resolved
        && who.may(Permission::RecordOutcome)
        && desk::check_may_act(who, tk, None).is_ok()
    {
        a.outcome = Some(outcome_form(
            Action::Outcome,
            t.correct_outcome,
            t.save_outcome,
            tk,
            profile,
            clock,
            draft,
        ));
    }
    a.dismiss = allowed(TicketStatus::Dismissed);
    a.reopen = l
        .allowed
        .iter()
        .filter(|to| tk.status.is_reopen(**to))
        .filter(|to| !(engineer_view && **to == TicketStatus::InProgress))
        .map(|to| Choice {
            value: to.as_str().to_owned(),
            label: c.status(*to).to_owned(),
            selected: draft.is(Action::Reopen) && draft.to == to.as_str(),
        })
        .collect();
    a.close = allowed(TicketStatus::Closed);
    a.note = may_act;
    a
}

fn outcome_form(
    action: Action,
    title: &'static str,
    submit: &'static str,
    tk: &Ticket,
    profile: Option<&Profile>,
    clock: &Clock,
    draft: &Draft,
) -> OutcomeForm {
    let lang = clock.lang;
    let c = crate::i18n::common(lang);
    let from_draft = draft.is(action);
    let recorded = tk.outcome.as_ref();
    let kind = if from_draft {
        draft.kind.clone()
    } else {
        recorded
            .map_or("confirmed_failure", |o| o.kind.as_str())
            .to_owned()
    };
    let component = if from_draft {
        draft.component.clone()
    } else {
        recorded
            .and_then(|o| o.component.clone())
            .unwrap_or_else(|| tk.component.clone())
    };
    let parts: Vec<String> = if from_draft {
        draft.parts.clone()
    } else {
        recorded
            .map(|o| o.parts_replaced.clone())
            .unwrap_or_default()
    };
    let kinds = [
        domain::OutcomeKind::ConfirmedFailure,
        domain::OutcomeKind::NoFaultFound,
        domain::OutcomeKind::CustomerDeclined,
        domain::OutcomeKind::NotReached,
    ]
    .into_iter()
    .map(|k| Choice {
        value: k.as_str().to_owned(),
        label: c.outcome(k).to_owned(),
        selected: k.as_str() == kind,
    })
    .collect();
    let components = profile
        .map(|p| {
            p.components()
                .iter()
                .map(|c| Choice {
                    value: c.name.clone(),
                    label: words::component_title(profile, &c.name, lang),
                    selected: c.name == component,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut groups: Vec<PartGroup> = profile
        .map(|p| {
            p.components()
                .iter()
                .filter(|c| !c.parts.is_empty())
                .map(|c| PartGroup {
                    title: words::component_title(profile, &c.name, lang),
                    open: c.name == tk.component,
                    parts: c
                        .parts
                        .iter()
                        .map(|part| Choice {
                            value: part.name.clone(),
                            label: format!("{} · {}", part.name_in(lang), part.reference),
                            selected: parts.contains(&part.name),
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    // The ticket's component first; a group with a ticked part stays open.
    groups.sort_by_key(|g| !g.open);
    for g in &mut groups {
        g.open = g.open || g.parts.iter().any(|p| p.selected);
    }
    OutcomeForm {
        action: action.as_str(),
        title,
        submit,
        kinds,
        components,
        groups,
        failed_at: if from_draft {
            draft.failed_at.clone()
        } else {
            String::new()
        },
        note: if from_draft {
            draft.note.clone()
        } else {
            String::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_back_from_the_services_notes() {
        assert_eq!(
            number_after("Risk 0.95 (threshold 0.60) for x", "Risk "),
            Some(0.95)
        );
        assert_eq!(
            number_after("Risk 0.72 -> 0.80 by model v", "-> "),
            Some(0.8)
        );
        assert_eq!(number_after("no risk here", "Risk "), None);
        assert_eq!(number_after("Risk ", "Risk "), None);
    }

    #[test]
    fn device_ids_are_one_path_segment() {
        assert_eq!(urlencode_segment("wm-1"), "wm-1");
        assert_eq!(urlencode_segment("a/b?c"), "a%2Fb%3Fc");
    }
}
