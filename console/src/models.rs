//! The models page: per device type, the active model version and how it does in
//! production (precision, lead time, missed and repeat failures, from ticket
//! outcomes), and whether its input drifted from the training data.
//!
//! The figures are the JSON API's: `TicketService::performance` (the report of
//! `GET /api/v1/models/performance`, computed once per change of any ticket and kept)
//! and the drift reporter (`GET /api/v1/models/drift`); the active versions are those
//! `/health` reports. The page asks for the unfiltered report (or one period of it) and
//! adds its rows up per device type, version and component here, so one report serves
//! the page; counts add up exactly, and the lead time shown per type is the mean of the
//! caught failures (the exact median needs the failures themselves, which only the
//! fleet-wide total carries).
//!
//! A rate over a handful of outcomes says nothing: below [`MIN_OUTCOMES`] the page
//! shows the counts and says that there are not enough outcomes yet.

use std::collections::BTreeMap;

use api::http::auth::Permission;
use api::tickets::performance::NO_MODEL;
use api::tickets::PerformanceRow;
use api::{DriftReport, ModelDrift, PerformanceQuery, PerformanceReport};
use askama::Template;
use axum::extract::{RawQuery, State};
use domain::{ProfileSet, Timestamp};
use serde::Deserialize;

use crate::clock::Clock;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::Error;

/// Fewest outcomes a rate is shown for (resolved flags for precision, failures for
/// the share caught, caught failures for the lead time, repairs for the repeat rate).
pub(crate) const MIN_OUTCOMES: u64 = 10;

/// Features shown before the rest are folded away, per model.
const FEATURES_SHOWN: usize = 8;

pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    period: &'static str,
    period_all: &'static str,
    period_90: &'static str,
    period_365: &'static str,
    show: &'static str,
    fleet: &'static str,
    active_version: &'static str,
    no_model: &'static str,
    precision: &'static str,
    precision_help: &'static str,
    caught_share: &'static str,
    caught_help: &'static str,
    lead_time: &'static str,
    lead_time_mean: &'static str,
    lead_time_median: &'static str,
    lead_time_p10: &'static str,
    missed: &'static str,
    missed_help: &'static str,
    repeats: &'static str,
    repeats_help: &'static str,
    open_flags: &'static str,
    dismissed: &'static str,
    flags: &'static str,
    resolved: &'static str,
    confirmed: &'static str,
    no_fault_found: &'static str,
    caught: &'static str,
    late: &'static str,
    repairs: &'static str,
    component: &'static str,
    version: &'static str,
    by_component: &'static str,
    earlier: &'static str,
    by_component_all: &'static str,
    versions: &'static str,
    all_versions_note: &'static str,
    reactive_without_model: &'static str,
    not_enough: &'static str,
    of_needed: &'static str,
    no_tickets: &'static str,
    days: &'static str,
    drift: &'static str,
    drift_help: &'static str,
    drift_none: &'static str,
    samples: &'static str,
    window: &'static str,
    feature: &'static str,
    psi: &'static str,
    status: &'static str,
    mean_now: &'static str,
    mean_training: &'static str,
    more_features: &'static str,
    drifted: &'static str,
    nothing_yet: &'static str,
    status_ok: &'static str,
    status_watch: &'static str,
    status_drift: &'static str,
    status_insufficient: &'static str,
    status_no_baseline: &'static str,
    bad_period: &'static str,
    forbidden: &'static str,
}

const EN: Texts = Texts {
    title: "Models",
    intro: "How each device type's model does in production, measured from the outcomes engineers record on its tickets, and whether the data it sees now still looks like the data it learned from.",
    period: "Tickets opened",
    period_all: "at any time",
    period_90: "in the last 90 days",
    period_365: "in the last 365 days",
    show: "Show",
    fleet: "All device types",
    active_version: "Active version",
    no_model: "No active model",
    precision: "Precision",
    precision_help: "Of the resolved predictions, the share the engineer confirmed as a failure.",
    caught_share: "Failures caught in advance",
    caught_help: "Confirmed failures a prediction raised a ticket for before they happened.",
    lead_time: "Lead time",
    lead_time_mean: "mean",
    lead_time_median: "median",
    lead_time_p10: "9 in 10 had at least",
    missed: "Missed failures",
    missed_help: "Failures reported by a fault code with no prediction in the 30 days before.",
    repeats: "Repeat failures within 30 days",
    repeats_help: "Repairs after which the same component of the same device failed again within 30 days.",
    open_flags: "Open predictions",
    dismissed: "Dismissed",
    flags: "Predictions",
    resolved: "Resolved",
    confirmed: "Confirmed",
    no_fault_found: "No fault found",
    caught: "Caught",
    late: "Late",
    repairs: "Repairs",
    component: "Component",
    version: "Version",
    by_component: "By component (active version)",
    earlier: "Other versions",
    by_component_all: "By component (all versions)",
    versions: "Versions",
    all_versions_note: "The server reports no active model for this type: the figures are of every version together.",
    reactive_without_model: "fault codes without a model",
    not_enough: "Not enough outcomes yet",
    of_needed: "needed",
    no_tickets: "No tickets for this model yet.",
    days: "d",
    drift: "Input drift",
    drift_help: "Population stability index (PSI) of each feature's recent values against the training data: below 0.1 is stable, 0.1 to 0.25 worth watching, above 0.25 drifted.",
    drift_none: "No drift figures: no device of this type has been scored since the server started.",
    samples: "Scored in the window",
    window: "Window",
    feature: "Feature",
    psi: "PSI",
    status: "Status",
    mean_now: "Mean now",
    mean_training: "Mean in training",
    more_features: "All features",
    drifted: "Drifted features",
    nothing_yet: "No active model and no tickets yet.",
    status_ok: "stable",
    status_watch: "watch",
    status_drift: "drifted",
    status_insufficient: "not enough data",
    status_no_baseline: "no training summary",
    bad_period: "Unknown period: choose all, 90d or 365d.",
    forbidden: "The model figures are for planners and admins.",
};

const ZH: Texts = Texts {
    title: "模型",
    intro: "各设备类型的预测模型在实际运行中的表现（依据工程师在工单上记录的处理结果计算），以及模型当前接收的数据是否仍与训练数据一致。",
    period: "工单创建时间",
    period_all: "全部",
    period_90: "最近 90 天",
    period_365: "最近 365 天",
    show: "显示",
    fleet: "全部设备类型",
    active_version: "当前版本",
    no_model: "暂无启用的模型",
    precision: "精确率",
    precision_help: "已解决的预测工单中，经工程师确认确有故障的比例。",
    caught_share: "提前发现的故障",
    caught_help: "在故障发生前已由预测生成工单的已确认故障所占比例。",
    lead_time: "提前预警时间",
    lead_time_mean: "平均",
    lead_time_median: "中位数",
    lead_time_p10: "九成至少提前",
    missed: "漏报故障",
    missed_help: "由故障码上报、且此前 30 天内没有任何预测的故障。",
    repeats: "30 天内重复故障",
    repeats_help: "维修后 30 天内同一设备的同一部件再次发生故障的次数。",
    open_flags: "未结预测工单",
    dismissed: "已驳回",
    flags: "预测工单",
    resolved: "已解决",
    confirmed: "确认故障",
    no_fault_found: "未发现故障",
    caught: "提前发现",
    late: "发现过晚",
    repairs: "维修次数",
    component: "部件",
    version: "版本",
    by_component: "按部件（当前版本）",
    earlier: "其他版本",
    by_component_all: "按部件（全部版本）",
    versions: "版本",
    all_versions_note: "服务器未报告该类型的当前模型：以下数据为所有版本的合计。",
    reactive_without_model: "无模型时的故障码工单",
    not_enough: "处理结果尚不足",
    of_needed: "需要",
    no_tickets: "该模型尚无工单。",
    days: "天",
    drift: "输入数据漂移",
    drift_help: "各特征近期数值相对训练数据的群体稳定性指数（PSI）：低于 0.1 为稳定，0.1 至 0.25 需关注，高于 0.25 为已漂移。",
    drift_none: "暂无漂移数据：服务启动以来尚未对该类型的设备评分。",
    samples: "窗口内评分次数",
    window: "时间窗口",
    feature: "特征",
    psi: "PSI",
    status: "状态",
    mean_now: "当前均值",
    mean_training: "训练均值",
    more_features: "全部特征",
    drifted: "已漂移特征",
    nothing_yet: "暂无启用的模型，也没有工单。",
    status_ok: "稳定",
    status_watch: "需关注",
    status_drift: "已漂移",
    status_insufficient: "数据不足",
    status_no_baseline: "无训练摘要",
    bad_period: "未知的时间范围：请选择 all、90d 或 365d。",
    forbidden: "模型数据仅供服务计划员和管理员查看。",
};

impl Texts {
    fn drift_status(&self, status: &str) -> &'static str {
        match status {
            "ok" => self.status_ok,
            "watch" => self.status_watch,
            "drift" => self.status_drift,
            "no_baseline" => self.status_no_baseline,
            _ => self.status_insufficient,
        }
    }
}

/// The badge class of a drift status.
fn drift_class(status: &str) -> &'static str {
    match status {
        "ok" => "ok",
        "watch" => "important",
        "drift" => "bad",
        _ => "normal",
    }
}

/// A horizontal bar of a share (0..1), drawn as SVG by the template.
#[derive(Debug)]
pub(crate) struct Bar {
    /// Width of the filled part in the 0..100 view box.
    pub(crate) width: String,
    /// `ok`, `warn` or `bad`.
    pub(crate) class: &'static str,
    /// Text for screen readers and the tooltip.
    pub(crate) label: String,
}

impl Bar {
    fn share(share: f64, class: &'static str, label: String) -> Self {
        Bar {
            width: format!("{:.1}", (share.clamp(0.0, 1.0) * 100.0)),
            class,
            label,
        }
    }
}

/// A rate, or why there is none.
#[derive(Debug)]
pub(crate) struct Rate {
    /// `85.3%`, when there are enough outcomes.
    pub(crate) text: Option<String>,
    pub(crate) bar: Option<Bar>,
    /// `3 / 10 needed` when there are not.
    pub(crate) short: Option<String>,
}

impl Rate {
    /// `n / d` with the bar coloured by `good` (a high share is good) when `d` reaches
    /// [`MIN_OUTCOMES`].
    fn of(n: u64, d: u64, good_high: bool, clock: &Clock, t: &Texts) -> Self {
        if d < MIN_OUTCOMES {
            return Rate {
                text: None,
                bar: None,
                short: Some(format!(
                    "{} / {} {}",
                    clock.number(d as f64, 0),
                    clock.number(MIN_OUTCOMES as f64, 0),
                    t.of_needed
                )),
            };
        }
        let share = n as f64 / d as f64;
        let text = clock.percent(share, 1);
        let goodness = if good_high { share } else { 1.0 - share };
        let class = if goodness >= 0.7 {
            "ok"
        } else if goodness >= 0.4 {
            "warn"
        } else {
            "bad"
        };
        Rate {
            bar: Some(Bar::share(share, class, text.clone())),
            text: Some(text),
            short: None,
        }
    }
}

/// Counts summed over report rows.
#[derive(Clone, Debug, Default)]
struct Sum {
    flags: u64,
    active: u64,
    resolved: u64,
    confirmed: u64,
    no_fault_found: u64,
    dismissed: u64,
    caught: u64,
    late: u64,
    missed: u64,
    repairs: u64,
    repeat_failures: u64,
    /// Sum of the caught failures' lead times in days (mean x count per row).
    lead_days: f64,
}

impl Sum {
    fn add(&mut self, r: &PerformanceRow) {
        self.flags += r.flags;
        self.active += r.active;
        self.resolved += r.resolved;
        self.confirmed += r.confirmed;
        self.no_fault_found += r.no_fault_found;
        self.dismissed += r.dismissed;
        self.caught += r.caught;
        self.late += r.late;
        self.missed += r.missed;
        self.repairs += r.repairs;
        self.repeat_failures += r.repeat_failures;
        self.lead_days += r.lead_time.mean_days.unwrap_or(0.0) * r.lead_time.count as f64;
    }
}

/// One line of figures: a version, a component, or a whole device type.
#[derive(Debug)]
pub(crate) struct Figures {
    pub(crate) flags: String,
    pub(crate) open: String,
    pub(crate) resolved: String,
    pub(crate) confirmed: String,
    pub(crate) no_fault_found: String,
    pub(crate) dismissed: String,
    pub(crate) caught: String,
    pub(crate) late: String,
    pub(crate) missed: String,
    pub(crate) repairs: String,
    pub(crate) repeats: String,
    pub(crate) precision: Rate,
    pub(crate) caught_share: Rate,
    pub(crate) repeat_rate: Rate,
    /// Mean lead time (`9.2 d`), or how many caught failures there are of those needed.
    pub(crate) lead_mean: Option<String>,
    pub(crate) lead_short: Option<String>,
    pub(crate) has_tickets: bool,
}

impl Figures {
    fn of(s: &Sum, clock: &Clock, t: &Texts) -> Self {
        let n = |x: u64| clock.number(x as f64, 0);
        let (lead_mean, lead_short) = if s.caught >= MIN_OUTCOMES {
            (
                Some(format!(
                    "{} {}",
                    clock.number(s.lead_days / s.caught as f64, 1),
                    t.days
                )),
                None,
            )
        } else {
            (
                None,
                Some(format!(
                    "{} / {} {}",
                    n(s.caught),
                    n(MIN_OUTCOMES),
                    t.of_needed
                )),
            )
        };
        Figures {
            flags: n(s.flags),
            open: n(s.active),
            resolved: n(s.resolved),
            confirmed: n(s.confirmed),
            no_fault_found: n(s.no_fault_found),
            dismissed: n(s.dismissed),
            caught: n(s.caught),
            late: n(s.late),
            missed: n(s.missed),
            repairs: n(s.repairs),
            repeats: n(s.repeat_failures),
            precision: Rate::of(s.confirmed, s.resolved, true, clock, t),
            caught_share: Rate::of(s.caught, s.caught + s.late + s.missed, true, clock, t),
            repeat_rate: Rate::of(s.repeat_failures, s.repairs, false, clock, t),
            lead_mean,
            lead_short,
            has_tickets: s.flags + s.missed + s.repairs > 0,
        }
    }
}

/// A row of a table: a component or a version, with its figures.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) name: String,
    pub(crate) figures: Figures,
}

/// One feature's drift.
#[derive(Debug)]
pub(crate) struct FeatureLine {
    pub(crate) feature: String,
    pub(crate) psi: String,
    pub(crate) bar: Bar,
    pub(crate) status: &'static str,
    pub(crate) class: &'static str,
    pub(crate) mean: String,
    pub(crate) baseline_mean: String,
}

/// A model's drift.
#[derive(Debug)]
pub(crate) struct DriftView {
    pub(crate) status: &'static str,
    pub(crate) class: &'static str,
    pub(crate) samples: String,
    pub(crate) window: Option<String>,
    pub(crate) drifted: String,
    pub(crate) shown: Vec<FeatureLine>,
    pub(crate) folded: Vec<FeatureLine>,
    /// Where the watch and drift thresholds sit on the PSI bars (0..100).
    pub(crate) watch_at: String,
    pub(crate) drift_at: String,
}

/// One device type's card.
#[derive(Debug)]
pub(crate) struct TypeView {
    pub(crate) device_type: String,
    pub(crate) title: String,
    pub(crate) version: Option<String>,
    pub(crate) figures: Figures,
    pub(crate) components: Vec<Line>,
    pub(crate) others: Vec<Line>,
    pub(crate) drift: Option<DriftView>,
}

impl TypeView {
    /// No model, no tickets, no drift: a line on the page, not a card of blanks.
    pub(crate) fn is_empty(&self) -> bool {
        self.version.is_none() && !self.figures.has_tickets && self.drift.is_none()
    }
}

/// The fleet-wide figures (exact median and p10 lead time from the report's totals).
#[derive(Debug)]
pub(crate) struct FleetView {
    pub(crate) figures: Figures,
    pub(crate) median: Option<String>,
    pub(crate) p10: Option<String>,
}

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    chrome: Chrome,
    t: &'static Texts,
    period: &'static str,
    fleet: FleetView,
    types: Vec<TypeView>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ModelsQuery {
    #[serde(default)]
    period: String,
}

/// The PSI shown at the right end of a drift bar.
const PSI_SCALE: f64 = 0.5;

fn drift_view(d: &ModelDrift, report: &DriftReport, clock: &Clock, t: &Texts) -> DriftView {
    let line = |f: &api::FeatureDrift| {
        let psi = clock.number(f.psi, 3);
        FeatureLine {
            feature: f.feature.clone(),
            bar: Bar::share(f.psi / PSI_SCALE, drift_class(&f.status), psi.clone()),
            psi,
            status: t.drift_status(&f.status),
            class: drift_class(&f.status),
            mean: f.mean.map_or_else(|| "–".into(), |m| clock.number(m, 2)),
            baseline_mean: clock.number(f.baseline_mean, 2),
        }
    };
    // Worst first (the reporter's order): those worth a look stay in view (at least a
    // few when all are stable), the rest fold away.
    let remarkable = d
        .features
        .iter()
        .take_while(|f| f.status == "watch" || f.status == "drift")
        .count();
    let keep = remarkable.clamp(3, FEATURES_SHOWN).min(d.features.len());
    let shown = d.features[..keep].iter().map(line).collect();
    let folded = d.features[keep..].iter().map(line).collect();
    let window = match (d.window_from, d.window_to) {
        (Some(a), Some(b)) => Some(format!("{} – {}", clock.at(a), clock.at(b))),
        _ => None,
    };
    let at = |x: f64| format!("{:.1}", (x / PSI_SCALE).clamp(0.0, 1.0) * 100.0);
    DriftView {
        status: t.drift_status(&d.status),
        class: drift_class(&d.status),
        samples: clock.number(d.samples as f64, 0),
        window,
        drifted: clock.number(d.drifted_features as f64, 0),
        shown,
        folded,
        watch_at: at(report.watch_threshold),
        drift_at: at(report.drift_threshold),
    }
}

/// Everything the page shows, from the report, the drift and the active versions.
fn views(
    profiles: &ProfileSet,
    active: &BTreeMap<String, String>,
    drift: &DriftReport,
    report: &PerformanceReport,
    clock: &Clock,
    t: &Texts,
) -> (FleetView, Vec<TypeView>) {
    let lang = clock.lang;
    // Device types: every profile's, then any other the report or the models name.
    let mut types: Vec<String> = profiles.types().map(str::to_owned).collect();
    let others = active
        .keys()
        .cloned()
        .chain(drift.models.iter().map(|m| m.device_type.clone()))
        .chain(report.rows.iter().filter_map(|r| r.device_type.clone()));
    for ty in others {
        if !types.contains(&ty) {
            types.push(ty);
        }
    }
    let mut out = Vec::with_capacity(types.len());
    for ty in types {
        let profile = profiles.get(&ty);
        let drift_of = drift.models.iter().find(|m| m.device_type == ty);
        // The active version: the registry's, else the one the drift monitor watches.
        let version = active
            .get(&ty)
            .cloned()
            .or_else(|| drift_of.map(|m| m.model_version.clone()));
        // Without a known active version (a process that does not score), the headline
        // is every version together and the table lists them all.
        let headline = |v: &str| version.as_deref().is_none_or(|a| a == v);
        let mut per_version: BTreeMap<&str, Sum> = BTreeMap::new();
        let mut per_component: BTreeMap<&str, Sum> = BTreeMap::new();
        let mut active_sum = Sum::default();
        for r in report
            .rows
            .iter()
            .filter(|r| r.device_type.as_deref() == Some(ty.as_str()))
        {
            let v = r.model_version.as_deref().unwrap_or(NO_MODEL);
            per_version.entry(v).or_default().add(r);
            if headline(v) {
                active_sum.add(r);
                per_component
                    .entry(r.component.as_deref().unwrap_or(""))
                    .or_default()
                    .add(r);
            }
        }
        let component_title = |c: &str| {
            profile
                .and_then(|p| p.component(c))
                .map_or_else(|| c.to_owned(), |k| k.title_in(lang).to_owned())
        };
        let components = per_component
            .iter()
            .map(|(c, s)| Line {
                name: component_title(c),
                figures: Figures::of(s, clock, t),
            })
            .collect();
        let others = per_version
            .iter()
            .filter(|(v, _)| version.is_none() || Some(**v) != version.as_deref())
            .map(|(v, s)| Line {
                name: if *v == NO_MODEL {
                    t.reactive_without_model.to_owned()
                } else {
                    (*v).to_owned()
                },
                figures: Figures::of(s, clock, t),
            })
            .collect();
        out.push(TypeView {
            title: profile.map_or_else(|| ty.clone(), |p| p.title_in(lang).to_owned()),
            device_type: ty,
            version,
            figures: Figures::of(&active_sum, clock, t),
            components,
            others,
            drift: drift_of.map(|d| drift_view(d, drift, clock, t)),
        });
    }
    let mut totals = Sum::default();
    totals.add(&report.totals);
    let lead = &report.totals.lead_time;
    let days = |d: Option<f64>| {
        (lead.count >= MIN_OUTCOMES)
            .then_some(d)
            .flatten()
            .map(|d| format!("{} {}", clock.number(d, 1), t.days))
    };
    let fleet = FleetView {
        figures: Figures::of(&totals, clock, t),
        median: days(lead.median_days),
        p10: days(lead.p10_days),
    };
    // Types with something to show first (stable: profile order within each group).
    out.sort_by_key(|v| v.is_empty());
    (fleet, out)
}

/// The period of `?period=`: all, 90d or 365d. The start is the beginning of a UTC
/// day, so the report asked for stays the same all day (and is kept between requests).
fn period_start(period: &str, now: Timestamp) -> Option<Option<Timestamp>> {
    let days = match period {
        "" | "all" => return Some(None),
        "90d" => 90,
        "365d" => 365,
        _ => return None,
    };
    let today = now.millis() - now.millis().rem_euclid(Timestamp::DAY_MS);
    Some(Some(Timestamp(today - days * Timestamp::DAY_MS)))
}

/// `GET /console/models`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    if !viewer.principal.may(Permission::ReadModels) {
        return Err(fail(lang)(Error::Forbidden(t.forbidden.into())));
    }
    let q: ModelsQuery = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| fail(lang)(Error::BadRequest(t.bad_period.into())))?;
    let now = Timestamp::from(chrono::Utc::now());
    let from = period_start(&q.period, now)
        .ok_or_else(|| fail(lang)(Error::BadRequest(t.bad_period.into())))?;
    let period = match q.period.as_str() {
        "90d" => "90d",
        "365d" => "365d",
        _ => "all",
    };
    let api = state.api.clone();
    let (active, drift, report) = blocking(move || {
        let query = PerformanceQuery {
            from,
            ..PerformanceQuery::default()
        };
        let regions = api.regions().clone();
        let report = api.tickets().performance(&query, &*regions)?;
        let drift = api.drift().map(|r| r()).unwrap_or_default();
        Ok((api.active_models(), drift, report))
    })
    .await
    .map_err(fail(lang))?;
    let (fleet, types) = views(
        state.api.profiles(),
        &active,
        &drift,
        &report,
        &viewer.clock,
        t,
    );
    Ok(render(&ModelsPage {
        chrome: Chrome::new(&viewer, t.title, "/models"),
        t,
        period,
        fleet,
        types,
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use domain::{OutcomeKind, TicketStatus};

    use domain::Lang;

    use super::*;
    use crate::testing::{Fixture, HOSTILE};

    fn texts(lang: Lang) -> &'static Texts {
        pick(lang, &EN, &ZH)
    }

    #[tokio::test]
    async fn the_page_follows_the_read_models_grant() {
        let f = Fixture::new();
        for (login, status) in [
            ("admin", StatusCode::OK),
            ("planner", StatusCode::OK),
            ("engineer", StatusCode::FORBIDDEN),
        ] {
            let p = f.sign_in(login);
            let a = f.get("/console/models", Some(&p)).await;
            assert_eq!(a.status, status, "{login}: {}", a.body);
        }
        let nobody = f.get("/console/models", None).await;
        assert_eq!(nobody.status, StatusCode::SEE_OTHER);
    }

    #[tokio::test]
    async fn a_confirmed_failure_recorded_through_the_desk_is_counted() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let before = f.get("/console/models", Some(&planner)).await;
        assert_eq!(before.status, StatusCode::OK, "{}", before.body);
        // Three predictions (wm-1 drain pump and heater, wm-2 drain pump), none resolved.
        assert!(before.body.contains("washer-v1"), "{}", before.body);
        assert!(before.body.contains(texts(Lang::En).not_enough));
        assert!(
            before.body.contains("data-confirmed=\"0\""),
            "{}",
            before.body
        );

        let who = api::Principal::from(f.users.by_login("planner").unwrap().unwrap());
        let id = f.ticket_id("wm-1", "drain_pump");
        api::desk::transition(
            &f.api,
            &who,
            id,
            TicketStatus::Resolved,
            "pump replaced",
            Some(api::OutcomeInput {
                kind: Some(OutcomeKind::ConfirmedFailure),
                parts_replaced: vec!["drain pump".into()],
                ..api::OutcomeInput::default()
            }),
        )
        .unwrap();
        let after = f.get("/console/models", Some(&planner)).await;
        assert_eq!(after.status, StatusCode::OK);
        assert!(
            after.body.contains("data-confirmed=\"1\""),
            "{}",
            after.body
        );
        assert!(after.body.contains("data-resolved=\"1\""), "{}", after.body);
        // One outcome is no precision: the page says so instead of "100%".
        assert!(!after.body.contains("100.0%"), "{}", after.body);
    }

    #[tokio::test]
    async fn drift_and_many_outcomes_show_rates_bars_and_escaped_names() {
        let f = Fixture::new().with_drift(DriftReport {
            watch_threshold: 0.1,
            drift_threshold: 0.25,
            min_samples: 100,
            models: vec![ModelDrift {
                device_type: "washer".into(),
                model_version: "washer-v2".into(),
                status: "drift".into(),
                window_from: Some(Timestamp(crate::testing::T0)),
                window_to: Some(Timestamp(crate::testing::T0 + 3_600_000)),
                samples: 1234,
                baseline_rows: 5000,
                drifted_features: 1,
                features: vec![
                    api::FeatureDrift {
                        feature: format!("{HOSTILE}.ewma"),
                        channel: HOSTILE.into(),
                        psi: 0.4,
                        status: "drift".into(),
                        samples: 1234,
                        mean: Some(31.5),
                        baseline_mean: 14.0,
                    },
                    api::FeatureDrift {
                        feature: "vibration_g.ewma_fast".into(),
                        channel: "vibration_g".into(),
                        psi: 0.01,
                        status: "ok".into(),
                        samples: 1234,
                        mean: Some(0.1),
                        baseline_mean: 0.1,
                    },
                ],
            }],
        });
        let admin = f.sign_in("admin");
        let a = f.get("/console/models", Some(&admin)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(
            a.body.contains("washer-v2"),
            "the drift monitor's version is active"
        );
        assert!(!a.body.contains("<script>alert"), "hostile text escaped");
        assert!(a.body.contains(&crate::admin::esc("<script>")));
        assert!(a.body.contains("0.400"));
        assert!(a.body.contains("1,234"));

        let zh = f.sign_in("engineer2");
        let page = f.get("/console/models", Some(&zh)).await;
        assert_eq!(
            page.status,
            StatusCode::FORBIDDEN,
            "engineers lack read_models"
        );
        assert!(page.body.contains("您没有执行此操作的权限"));
        assert!(page.body.contains(texts(Lang::Zh).forbidden));
    }

    #[tokio::test]
    async fn enough_outcomes_show_a_rate_with_its_bar() {
        let f = Fixture::new();
        let who = api::Principal::from(f.users.by_login("planner").unwrap().unwrap());
        for i in 3..15 {
            let device = format!("wm-{i}");
            f.tickets
                .record_predictions(
                    &[crate::testing::prediction(&device, "drain_pump", 0.9, true)],
                    &api::DiagnosisContext::default(),
                )
                .unwrap();
            let kind = if i < 13 {
                OutcomeKind::ConfirmedFailure
            } else {
                OutcomeKind::NoFaultFound
            };
            api::desk::transition(
                &f.api,
                &who,
                f.ticket_id(&device, "drain_pump"),
                TicketStatus::Resolved,
                "",
                Some(api::OutcomeInput {
                    kind: Some(kind),
                    ..api::OutcomeInput::default()
                }),
            )
            .unwrap();
        }
        let planner = f.sign_in("planner");
        let a = f.get("/console/models", Some(&planner)).await;
        assert_eq!(a.status, StatusCode::OK);
        // 10 confirmed of 12 resolved.
        assert!(a.body.contains("83.3%"), "{}", a.body);
        assert!(
            a.body.contains("class=\"bar-fill ok\" width=\"83.3\""),
            "{}",
            a.body
        );
        assert!(a.body.contains("data-confirmed=\"10\""));
    }

    #[tokio::test]
    async fn chinese_labels_for_a_chinese_reader_and_a_bad_period_is_a_clear_400() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        f.post(
            "/console/account/language",
            &planner,
            &[("lang", "zh"), ("back", "/console/models")],
        )
        .await;
        let a = f.get("/console/models?period=90d", Some(&planner)).await;
        assert_eq!(a.status, StatusCode::OK);
        for label in [
            "精确率",
            "提前预警时间",
            "漏报故障",
            "30 天内重复故障",
            "处理结果尚不足",
        ] {
            assert!(a.body.contains(label), "{label}");
        }
        let bad = f
            .get("/console/models?period=forever", Some(&planner))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains(texts(Lang::Zh).bad_period));
    }

    #[test]
    fn rates_need_enough_outcomes_and_sum_over_rows() {
        let clock = Clock::new("UTC", Lang::En);
        let t = texts(Lang::En);
        let short = Rate::of(3, 4, true, &clock, t);
        assert!(short.text.is_none());
        assert_eq!(short.short.as_deref(), Some("4 / 10 needed"));
        let rate = Rate::of(17, 20, true, &clock, t);
        assert_eq!(rate.text.as_deref(), Some("85.0%"));
        assert_eq!(rate.bar.as_ref().map(|b| b.class), Some("ok"));
        assert_eq!(rate.bar.map(|b| b.width), Some("85.0".into()));
        let repeats = Rate::of(8, 20, false, &clock, t);
        assert_eq!(repeats.bar.map(|b| b.class), Some("warn"));

        let row = |caught: u64, mean: f64| PerformanceRow {
            caught,
            lead_time: api::tickets::performance::LeadTime {
                count: caught,
                mean_days: Some(mean),
                ..api::tickets::performance::LeadTime::default()
            },
            ..PerformanceRow::default()
        };
        let mut s = Sum::default();
        s.add(&row(6, 10.0));
        s.add(&row(4, 5.0));
        let fig = Figures::of(&s, &clock, t);
        assert_eq!(fig.lead_mean.as_deref(), Some("8.0 d"), "weighted by count");
        assert_eq!(period_start("all", Timestamp(5)), Some(None));
        assert_eq!(
            period_start("90d", Timestamp(Timestamp::DAY_MS * 100 + 5)),
            Some(Some(Timestamp(Timestamp::DAY_MS * 10)))
        );
        assert_eq!(period_start("1y", Timestamp(0)), None);
    }
}
