//! The fleet page (`/console/fleet`): where failures and predictions concentrate (per
//! model, firmware, region or batch: a table and two bar charts), the active batch
//! alarms with an acknowledge-with-note form, and the parts forecast per region for
//! the next 7, 30 or 90 days with a CSV download (`/console/fleet/parts.csv`).
//!
//! Everything but the alarms comes from the in-memory fleet snapshot
//! (`api::fleet::Fleet::snapshot`, refreshed by `fixahead run`), with the same queries
//! as `GET /api/v1/fleet/stats` and `/parts-forecast`: no SQLite per request but one
//! indexed page of active alarms. Reading takes `read_fleet` (admins, planners);
//! acknowledging goes through `api::desk::acknowledge_alarm` (`acknowledge_alarms`),
//! as `POST /api/v1/fleet/alarms/{id}/acknowledge` does.

use std::sync::Arc;

use api::fleet::{AlarmRecord, FleetSnapshot, GroupBy, GroupParts, GroupStats};
use api::http::auth::Permission;
use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect};
use domain::{Lang, ProfileSet, Timestamp};
use serde::Deserialize;

use crate::chart::BarChart;
use crate::clock::Clock;
use crate::csrf::CsrfForm;
use crate::device::parse_query;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render_with, Chrome, PageResult};
use crate::session::Viewer;
use crate::sign_in::audit;
use crate::state::ConsoleState;
use crate::{Error, Result, PREFIX};

/// Groups per page of the statistics table.
const GROUPS_PER_PAGE: usize = 25;
/// Groups drawn in each bar chart (the highest).
const CHART_GROUPS: usize = 12;
/// Active alarms per page.
const ALARMS_PER_PAGE: usize = 20;
/// Statistics periods offered, in days.
const PERIODS: [u32; 3] = [30, 90, 365];
/// Parts-forecast horizons offered, in days.
const HORIZONS: [u32; 3] = [7, 30, 90];
/// The dimensions offered, with their parameter values.
const DIMENSIONS: [GroupBy; 4] = [GroupBy::Model, GroupBy::Fw, GroupBy::Region, GroupBy::Batch];

pub(crate) struct Texts {
    title: &'static str,
    bad_query: &'static str,
    bad_by: &'static str,
    bad_period: &'static str,
    bad_horizon: &'static str,
    bad_page: &'static str,
    bad_alarm_id: &'static str,
    note_blank: &'static str,
    note_too_long: &'static str,
    ack_conflict: &'static str,
    as_of: &'static str,
    failures: &'static str,
    failures_help: &'static str,
    by: &'static str,
    by_model: &'static str,
    by_fw: &'static str,
    by_region: &'static str,
    by_batch: &'static str,
    period: &'static str,
    days: &'static str,
    not_reported: &'static str,
    devices: &'static str,
    reporting: &'static str,
    device_months: &'static str,
    confirmed: &'static str,
    rate: &'static str,
    open_predictions: &'static str,
    opened: &'static str,
    dismissed_share: &'static str,
    chart_rate: &'static str,
    chart_open: &'static str,
    chart_top: &'static str,
    chart_empty: &'static str,
    no_groups: &'static str,
    open_in_queue: &'static str,
    alarms: &'static str,
    alarms_help: &'static str,
    no_alarms: &'static str,
    dimension_batch: &'static str,
    dimension_fw: &'static str,
    statistic_failures: &'static str,
    statistic_flagged: &'static str,
    observed: &'static str,
    expected: &'static str,
    ratio: &'static str,
    q_value: &'static str,
    exposure_months: &'static str,
    exposure_scored: &'static str,
    raised: &'static str,
    updated: &'static str,
    acknowledged_by: &'static str,
    acknowledge: &'static str,
    note: &'static str,
    note_help: &'static str,
    acknowledged_notice: &'static str,
    may_not_acknowledge: &'static str,
    older_alarms: &'static str,
    parts: &'static str,
    parts_help: &'static str,
    horizon: &'static str,
    download_csv: &'static str,
    device_type: &'static str,
    part: &'static str,
    reference: &'static str,
    expected_parts: &'static str,
    from_predictions: &'static str,
    recent_failures: &'static str,
    no_parts: &'static str,
    page_of: &'static str,
    csv_region: &'static str,
    csv_device_type: &'static str,
    csv_part: &'static str,
    csv_part_en: &'static str,
    csv_reference: &'static str,
    csv_expected: &'static str,
    csv_from_predictions: &'static str,
    csv_recent_failures: &'static str,
    csv_from_recent: &'static str,
    csv_horizon: &'static str,
    csv_as_of: &'static str,
}

const EN: Texts = Texts {
    title: "Fleet",
    bad_query: "The page's parameters could not be used",
    bad_by: "Group by must be model, fw, region or batch",
    bad_period: "The period must be 30, 90 or 365 days",
    bad_horizon: "The forecast horizon must be 7, 30 or 90 days",
    bad_page: "The page must be a whole number from 1",
    bad_alarm_id: "This is not an alarm number",
    note_blank: "Write a note: what is being done about the alarm.",
    note_too_long: "The note is longer than 2,000 characters.",
    ack_conflict: "This alarm cannot be acknowledged now",
    as_of: "Figures as of",
    failures: "Failures and predictions",
    failures_help: "Confirmed failures per 1,000 device-months of reporting in the period, and open predictions (active proactive tickets) now.",
    by: "Group by",
    by_model: "Model",
    by_fw: "Firmware",
    by_region: "Region",
    by_batch: "Batch",
    period: "Period",
    days: "days",
    not_reported: "not reported",
    devices: "Devices",
    reporting: "Reporting",
    device_months: "Device-months",
    confirmed: "Confirmed failures",
    rate: "Failures per 1,000 device-months",
    open_predictions: "Open predictions",
    opened: "Predictions opened",
    dismissed_share: "Dismissed",
    chart_rate: "Failure rate (per 1,000 device-months)",
    chart_open: "Open predictions",
    chart_top: "the highest groups",
    chart_empty: "Nothing to draw for this period: every group is at zero.",
    no_groups: "No devices in the fleet snapshot yet.",
    open_in_queue: "tickets",
    alarms: "Batch alarms",
    alarms_help: "Active alarms: a batch or firmware version of a model failing, or flagged, significantly more often than the rest of the model. Acknowledge one to say you have taken it on; it stays active until the detector clears it.",
    no_alarms: "No active batch alarms.",
    dimension_batch: "batch",
    dimension_fw: "firmware",
    statistic_failures: "confirmed failures",
    statistic_flagged: "flagged devices",
    observed: "Observed",
    expected: "Expected at the model's rate",
    ratio: "Ratio",
    q_value: "Adjusted p",
    exposure_months: "device-months",
    exposure_scored: "scored devices",
    raised: "Raised",
    updated: "last tested",
    acknowledged_by: "Acknowledged by",
    acknowledge: "Acknowledge",
    note: "Note",
    note_help: "What is being done, e.g. quality hold, parts ordered, factory informed.",
    acknowledged_notice: "Alarm acknowledged.",
    may_not_acknowledge: "Your role may read alarms but not acknowledge them.",
    older_alarms: "Older alarms",
    parts: "Parts forecast",
    parts_help: "Expected demand per part and region: open predictions weighted by their risk over the horizon, plus the recent rate of confirmed failures.",
    horizon: "Horizon",
    download_csv: "Download CSV",
    device_type: "Type",
    part: "Part",
    reference: "Order no.",
    expected_parts: "Expected",
    from_predictions: "From predictions",
    recent_failures: "Recent failures",
    no_parts: "No demand expected.",
    page_of: "Pages",
    csv_region: "Region",
    csv_device_type: "Device type",
    csv_part: "Part",
    csv_part_en: "Part (English)",
    csv_reference: "Order number",
    csv_expected: "Expected",
    csv_from_predictions: "From predictions",
    csv_recent_failures: "Recent confirmed failures",
    csv_from_recent: "From recent failures",
    csv_horizon: "Horizon (days)",
    csv_as_of: "As of",
};

const ZH: Texts = Texts {
    title: "设备群",
    bad_query: "页面参数无法识别",
    bad_by: "分组方式必须为 model、fw、region 或 batch",
    bad_period: "统计周期必须为 30、90 或 365 天",
    bad_horizon: "预测期必须为 7、30 或 90 天",
    bad_page: "页码必须是从 1 开始的整数",
    bad_alarm_id: "告警编号无效",
    note_blank: "请填写备注：说明针对该告警采取的措施。",
    note_too_long: "备注超过 2,000 个字符。",
    ack_conflict: "该告警当前无法确认",
    as_of: "数据截至",
    failures: "故障与预测",
    failures_help: "统计周期内每 1,000 台·月的确认故障数，以及当前未结的预测（主动工单）。",
    by: "分组",
    by_model: "型号",
    by_fw: "固件版本",
    by_region: "区域",
    by_batch: "生产批次",
    period: "统计周期",
    days: "天",
    not_reported: "未上报",
    devices: "设备数",
    reporting: "上报中",
    device_months: "台·月",
    confirmed: "确认故障",
    rate: "每 1,000 台·月故障数",
    open_predictions: "未结预测",
    opened: "新增预测",
    dismissed_share: "驳回比例",
    chart_rate: "故障率（每 1,000 台·月）",
    chart_open: "未结预测",
    chart_top: "最高的分组",
    chart_empty: "本周期内各分组均为零，无可绘制的数据。",
    no_groups: "设备群快照中尚无设备。",
    open_in_queue: "工单",
    alarms: "批次告警",
    alarms_help: "当前告警：某型号的某一生产批次或固件版本，其故障或预警明显多于该型号其他设备。确认告警表示已有人跟进；告警在检测器解除前保持有效。",
    no_alarms: "当前没有批次告警。",
    dimension_batch: "批次",
    dimension_fw: "固件版本",
    statistic_failures: "确认故障",
    statistic_flagged: "预警设备",
    observed: "实际",
    expected: "按型号水平预期",
    ratio: "倍数",
    q_value: "校正 p 值",
    exposure_months: "台·月",
    exposure_scored: "已评分设备",
    raised: "告警时间",
    updated: "最近检测",
    acknowledged_by: "确认人",
    acknowledge: "确认告警",
    note: "备注",
    note_help: "说明采取的措施，例如：质量冻结、已订备件、已通知工厂。",
    acknowledged_notice: "告警已确认。",
    may_not_acknowledge: "您的角色可以查看告警，但不能确认。",
    older_alarms: "更早的告警",
    parts: "备件需求预测",
    parts_help: "按区域预计各备件的需求：未结预测按预测期内的风险加权，加上近期确认故障的发生率。",
    horizon: "预测期",
    download_csv: "下载 CSV",
    device_type: "类型",
    part: "备件",
    reference: "订货号",
    expected_parts: "预计需求",
    from_predictions: "来自预测",
    recent_failures: "近期故障",
    no_parts: "暂无预计需求。",
    page_of: "分页",
    csv_region: "区域",
    csv_device_type: "设备类型",
    csv_part: "备件",
    csv_part_en: "备件（英文）",
    csv_reference: "订货号",
    csv_expected: "预计需求",
    csv_from_predictions: "来自预测",
    csv_recent_failures: "近期确认故障",
    csv_from_recent: "来自近期故障",
    csv_horizon: "预测期（天）",
    csv_as_of: "数据截至",
};

/// The page's words in `lang`.
pub(crate) fn texts(lang: Lang) -> &'static Texts {
    pick(lang, &EN, &ZH)
}

impl Texts {
    fn dimension(&self, by: GroupBy) -> &'static str {
        match by {
            GroupBy::Fw => self.by_fw,
            GroupBy::Region => self.by_region,
            GroupBy::Batch => self.by_batch,
            _ => self.by_model,
        }
    }
}

/// The page's parameters, as given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetQuery {
    by: Option<String>,
    period: Option<String>,
    horizon: Option<String>,
    page: Option<String>,
    before: Option<String>,
    acknowledged: Option<String>,
}

/// The page's parameters, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Params {
    by: GroupBy,
    period: u32,
    horizon: u32,
    page: usize,
    before: Option<i64>,
    acknowledged: Option<i64>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            by: GroupBy::Model,
            period: 30,
            horizon: 30,
            page: 1,
            before: None,
            acknowledged: None,
        }
    }
}

fn one_of(raw: Option<&str>, choices: &[u32], default: u32, message: &str) -> Result<u32> {
    match raw {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|d| choices.contains(d))
            .ok_or_else(|| Error::BadRequest(format!("{message}: {:?}", clip(s)))),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(32).collect()
}

fn positive_id(raw: Option<&str>, message: &str) -> Result<Option<i64>> {
    raw.filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| Error::BadRequest(format!("{message}: {:?}", clip(s))))
        })
        .transpose()
}

impl Params {
    fn parse(raw: Option<&str>, t: &Texts) -> Result<Self> {
        let q: FleetQuery = parse_query(raw, t.bad_query)?;
        let by = match q.by.as_deref() {
            None | Some("") => GroupBy::Model,
            Some(s) => DIMENSIONS
                .into_iter()
                .find(|d| d.as_str() == s)
                .ok_or_else(|| Error::BadRequest(format!("{}: {:?}", t.bad_by, clip(s))))?,
        };
        let page = match q.page.as_deref() {
            None | Some("") => 1,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|p| (1..=100_000).contains(p))
                .ok_or_else(|| Error::BadRequest(format!("{}: {:?}", t.bad_page, clip(s))))?,
        };
        Ok(Self {
            by,
            period: one_of(q.period.as_deref(), &PERIODS, 30, t.bad_period)?,
            horizon: one_of(q.horizon.as_deref(), &HORIZONS, 30, t.bad_horizon)?,
            page,
            before: positive_id(q.before.as_deref(), t.bad_query)?,
            acknowledged: positive_id(q.acknowledged.as_deref(), t.bad_query)?,
        })
    }

    /// The page's URL with these parameters (defaults left out).
    fn url(&self) -> String {
        let mut q: Vec<(&str, String)> = Vec::new();
        if self.by != GroupBy::Model {
            q.push(("by", self.by.as_str().to_owned()));
        }
        if self.period != 30 {
            q.push(("period", self.period.to_string()));
        }
        if self.horizon != 30 {
            q.push(("horizon", self.horizon.to_string()));
        }
        if self.page != 1 {
            q.push(("page", self.page.to_string()));
        }
        if let Some(b) = self.before {
            q.push(("before", b.to_string()));
        }
        let query = serde_urlencoded::to_string(&q).unwrap_or_default();
        if query.is_empty() {
            format!("{PREFIX}/fleet")
        } else {
            format!("{PREFIX}/fleet?{query}")
        }
    }
}

/// A link of a choice (dimension, period, horizon, page).
struct Choice {
    label: String,
    href: String,
    current: bool,
}

/// One group of the statistics table.
struct GroupRow {
    name: String,
    named: bool,
    queue_link: Option<String>,
    devices: String,
    reporting: String,
    months: String,
    confirmed: String,
    rate: String,
    open: String,
    opened: String,
    dismissed: String,
}

/// One active alarm.
struct AlarmView {
    id: i64,
    heading: String,
    dimension: &'static str,
    value: String,
    component: String,
    statistic: &'static str,
    observed: String,
    expected: String,
    exposure: String,
    ratio: String,
    q_value: String,
    raised: String,
    updated: String,
    queue_link: Option<String>,
    acknowledged: Option<AckView>,
    /// Why acknowledging it just failed.
    error: Option<String>,
}

/// Who acknowledged an alarm.
struct AckView {
    actor: String,
    at: String,
    note: String,
}

/// One part of a region's forecast.
struct PartRow {
    device_type: String,
    name: String,
    /// The English name when the shown one differs.
    english: Option<String>,
    reference: String,
    expected: String,
    from_predictions: String,
    recent: String,
}

struct RegionParts {
    region: String,
    named: bool,
    rows: Vec<PartRow>,
}

#[derive(Template)]
#[template(path = "fleet.html")]
struct FleetPage {
    chrome: Chrome,
    t: &'static Texts,
    as_of: String,
    dimensions: Vec<Choice>,
    periods: Vec<Choice>,
    horizons: Vec<Choice>,
    dimension: &'static str,
    groups: Vec<GroupRow>,
    pages: Vec<Choice>,
    rate_chart: BarChart,
    open_chart: BarChart,
    chart_w: f64,
    alarms: Vec<AlarmView>,
    older_alarms: Option<String>,
    may_acknowledge: bool,
    /// Why acknowledging failed, when the alarm is not among those shown.
    alarm_error: Option<String>,
    notice: Option<&'static str>,
    parts: Vec<RegionParts>,
    csv_url: String,
    horizon: u32,
    action_prefix: String,
}

/// `GET /console/fleet`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(query): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = texts(lang);
    viewer.require(Permission::ReadFleet).map_err(fail(lang))?;
    let params = Params::parse(query.as_deref(), t).map_err(fail(lang))?;
    let page = blocking(move || build(&state, &viewer, params, None))
        .await
        .map_err(fail(lang))?;
    Ok(render_with(StatusCode::OK, &page))
}

/// A group's name for people.
fn group_name(g: &Option<String>, t: &Texts) -> String {
    g.clone().unwrap_or_else(|| t.not_reported.to_owned())
}

/// The queue filtered to a region or batch (the queue's own parameters).
fn queue_link(by: GroupBy, value: &str) -> Option<String> {
    let key = match by {
        GroupBy::Region => "region",
        GroupBy::Batch => "batch",
        _ => return None,
    };
    serde_urlencoded::to_string([(key, value)])
        .ok()
        .map(|q| format!("{PREFIX}/?{q}"))
}

/// Statistics sorted for attention: failure rate, then open predictions, then name.
fn sorted_stats(mut groups: Vec<GroupStats>) -> Vec<GroupStats> {
    let rate = |g: &GroupStats| g.failures_per_1000_device_months.unwrap_or(-1.0);
    groups.sort_by(|a, b| {
        rate(b)
            .total_cmp(&rate(a))
            .then(b.open_predictions.cmp(&a.open_predictions))
            .then(a.group.cmp(&b.group))
    });
    groups
}

/// The title of `component` in the first profile that has it.
fn component_title(profiles: &ProfileSet, component: &str, lang: Lang) -> String {
    profiles
        .iter()
        .find_map(|p| p.component(component))
        .map(|c| c.title_in(lang))
        .filter(|s| !s.is_empty())
        .unwrap_or(component)
        .to_owned()
}

/// A part's name in `lang`, its English name and its order number.
fn part_names(
    profiles: &ProfileSet,
    device_type: &str,
    part: &str,
    lang: Lang,
) -> (String, String) {
    let profile = profiles.get(device_type);
    let name = profile.map_or(part, |p| p.part_name_in(part, lang));
    let reference = profile
        .and_then(|p| p.components().iter().find_map(|c| c.part(part)))
        .map(|p| p.reference.clone())
        .unwrap_or_default();
    (name.to_owned(), reference)
}

fn type_title(profiles: &ProfileSet, device_type: &str, lang: Lang) -> String {
    profiles
        .get(device_type)
        .map(|p| p.title_in(lang))
        .filter(|s| !s.is_empty())
        .unwrap_or(device_type)
        .to_owned()
}

/// The snapshot and the forecast the page and the CSV share.
fn forecast(state: &ConsoleState, horizon: u32) -> Result<(Arc<FleetSnapshot>, Vec<GroupParts>)> {
    let fleet = state.api.fleet();
    let snapshot = fleet.snapshot()?;
    let parts = snapshot.parts_forecast(
        fleet.profiles(),
        GroupBy::Region,
        f64::from(horizon),
        fleet.settings(),
    );
    Ok((snapshot, parts))
}

fn build(
    state: &ConsoleState,
    viewer: &Viewer,
    p: Params,
    alarm_error: Option<(i64, String)>,
) -> Result<FleetPage> {
    let (lang, clock) = (viewer.lang(), &viewer.clock);
    let t = texts(lang);
    let fleet = state.api.fleet();
    let profiles = fleet.profiles();
    let (snapshot, parts) = forecast(state, p.horizon)?;
    let to = snapshot.as_of;
    let from = Timestamp(
        to.millis()
            .saturating_sub(i64::from(p.period) * Timestamp::DAY_MS),
    );
    let stats = sorted_stats(snapshot.stats(p.by, from, to));

    let chart_rows = |value: &dyn Fn(&GroupStats) -> Option<f64>, digits: usize| {
        let mut rows: Vec<(&GroupStats, f64)> = stats
            .iter()
            .filter_map(|g| value(g).filter(|v| *v > 0.0).map(|v| (g, v)))
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        rows.into_iter()
            .take(CHART_GROUPS)
            .map(|(g, v)| (group_name(&g.group, t), v, clock.number(v, digits)))
            .collect::<Vec<_>>()
    };
    let rate_chart = BarChart::new(chart_rows(&|g| g.failures_per_1000_device_months, 1));
    let open_chart = BarChart::new(chart_rows(&|g| Some(g.open_predictions as f64), 0));

    let pages_total = stats.len().div_ceil(GROUPS_PER_PAGE).max(1);
    let page = p.page.min(pages_total);
    let groups = stats
        .iter()
        .skip((page - 1) * GROUPS_PER_PAGE)
        .take(GROUPS_PER_PAGE)
        .map(|g| GroupRow {
            name: group_name(&g.group, t),
            named: g.group.is_some(),
            queue_link: g.group.as_deref().and_then(|v| queue_link(p.by, v)),
            devices: clock.number(g.devices as f64, 0),
            reporting: clock.number(g.devices_reporting as f64, 0),
            months: clock.number(g.device_months, 0),
            confirmed: clock.number(g.confirmed_failures as f64, 0),
            rate: g
                .failures_per_1000_device_months
                .map_or_else(|| "–".to_owned(), |r| clock.number(r, 1)),
            open: clock.number(g.open_predictions as f64, 0),
            opened: clock.number(g.proactive_tickets_opened as f64, 0),
            dismissed: g
                .dismissed_share
                .map_or_else(|| "–".to_owned(), |s| clock.percent(s, 0)),
        })
        .collect();
    let pages = if pages_total > 1 {
        (1..=pages_total)
            .map(|n| Choice {
                label: n.to_string(),
                href: Params { page: n, ..p }.url(),
                current: n == page,
            })
            .collect()
    } else {
        Vec::new()
    };

    let mut active = fleet.alarms(Some("active"), p.before, ALARMS_PER_PAGE + 1)?;
    let older_alarms = if active.len() > ALARMS_PER_PAGE {
        active.truncate(ALARMS_PER_PAGE);
        active.last().map(|a| {
            Params {
                before: Some(a.id),
                ..p
            }
            .url()
        })
    } else {
        None
    };
    let mut alarms: Vec<AlarmView> = active
        .into_iter()
        .map(|a| alarm_view(a, profiles, clock, t))
        .collect();
    let alarm_error = match alarm_error {
        Some((id, message)) => match alarms.iter_mut().find(|a| a.id == id) {
            Some(a) => {
                a.error = Some(message);
                None
            }
            None => Some(message),
        },
        None => None,
    };

    let parts = parts
        .into_iter()
        .map(|g| RegionParts {
            region: group_name(&g.group, t),
            named: g.group.is_some(),
            rows: g
                .parts
                .into_iter()
                .map(|d| {
                    let (name, reference) = part_names(profiles, &d.device_type, &d.part, lang);
                    PartRow {
                        device_type: type_title(profiles, &d.device_type, lang),
                        english: (name != d.part).then(|| d.part.clone()),
                        name,
                        reference,
                        expected: clock.number(d.expected, 1),
                        from_predictions: clock.number(d.from_predictions, 1),
                        recent: clock.number(d.recent_failures as f64, 0),
                    }
                })
                .collect(),
        })
        .collect();

    let choice = |label: String, q: Params, current: bool| Choice {
        label,
        href: q.url(),
        current,
    };
    Ok(FleetPage {
        chrome: Chrome::new(viewer, t.title, "/fleet"),
        t,
        as_of: clock.at_zone(snapshot.as_of),
        dimensions: DIMENSIONS
            .into_iter()
            .map(|by| {
                choice(
                    t.dimension(by).to_owned(),
                    Params { by, page: 1, ..p },
                    by == p.by,
                )
            })
            .collect(),
        periods: PERIODS
            .into_iter()
            .map(|d| {
                choice(
                    format!("{d} {}", t.days),
                    Params { period: d, ..p },
                    d == p.period,
                )
            })
            .collect(),
        horizons: HORIZONS
            .into_iter()
            .map(|d| {
                choice(
                    format!("{d} {}", t.days),
                    Params { horizon: d, ..p },
                    d == p.horizon,
                )
            })
            .collect(),
        dimension: t.dimension(p.by),
        groups,
        pages,
        rate_chart,
        open_chart,
        chart_w: BarChart::WIDTH,
        alarms,
        older_alarms,
        may_acknowledge: viewer.principal.may(Permission::AcknowledgeAlarms),
        alarm_error,
        notice: p.acknowledged.map(|_| t.acknowledged_notice),
        parts,
        csv_url: format!("{PREFIX}/fleet/parts.csv?horizon={}", p.horizon),
        horizon: p.horizon,
        action_prefix: format!("{PREFIX}/fleet/alarms"),
    })
}

/// A q-value as people read it: `0.00012` or `3.1e-9`.
fn small_number(x: f64) -> String {
    if !x.is_finite() {
        "–".into()
    } else if x >= 0.001 {
        format!("{x:.4}")
    } else {
        format!("{x:.1e}")
    }
}

fn alarm_view(a: AlarmRecord, profiles: &ProfileSet, clock: &Clock, t: &Texts) -> AlarmView {
    let lang = clock.lang;
    let flagged = a.cell.statistic == "flagged_share";
    let by_batch = a.cell.dimension == "batch";
    AlarmView {
        id: a.id,
        heading: a.cell.model.clone(),
        dimension: if by_batch {
            t.dimension_batch
        } else {
            t.dimension_fw
        },
        queue_link: if by_batch {
            queue_link(GroupBy::Batch, &a.cell.value)
        } else {
            None
        },
        value: a.cell.value,
        component: component_title(profiles, &a.cell.component, lang),
        statistic: if flagged {
            t.statistic_flagged
        } else {
            t.statistic_failures
        },
        observed: clock.number(a.numbers.observed as f64, 0),
        expected: clock.number(a.numbers.expected, 1),
        exposure: format!(
            "{} {}",
            clock.number(a.numbers.exposure, 0),
            if flagged {
                t.exposure_scored
            } else {
                t.exposure_months
            }
        ),
        ratio: a
            .numbers
            .ratio
            .map_or_else(|| "∞".to_owned(), |r| format!("{}×", clock.number(r, 1))),
        q_value: small_number(a.numbers.q_value),
        raised: clock.at(a.raised_at),
        updated: clock.at(a.updated_at),
        acknowledged: a.acknowledged.map(|k| AckView {
            actor: k.actor,
            at: clock.at(k.at),
            note: k.note,
        }),
        error: None,
    }
}

/// Query of `GET /console/fleet/parts.csv`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvQuery {
    horizon: Option<String>,
}

/// One CSV field: quoted when it holds a comma, quote or line break (quotes doubled,
/// RFC 4180), and text a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first)
/// prefixed with `'`.
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A CSV record of `fields`, CRLF-terminated.
fn csv_record(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// `GET /console/fleet/parts.csv?horizon=30`: the parts forecast per region as CSV
/// (UTF-8 with a byte-order mark, so spreadsheets read the Chinese names), one row per
/// (region, part), part names in the person's language beside the English one.
pub(crate) async fn parts_csv(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(query): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = texts(lang);
    viewer.require(Permission::ReadFleet).map_err(fail(lang))?;
    let q: CsvQuery = parse_query(query.as_deref(), t.bad_query).map_err(fail(lang))?;
    let horizon = one_of(q.horizon.as_deref(), &HORIZONS, 30, t.bad_horizon).map_err(fail(lang))?;
    let clock = viewer.clock;
    let (body, date) = blocking(move || {
        let (snapshot, groups) = forecast(&state, horizon)?;
        let profiles = state.api.fleet().profiles();
        let mut out = String::from("\u{feff}");
        out.push_str(&csv_record(
            &[
                t.csv_region,
                t.csv_device_type,
                t.csv_part,
                t.csv_part_en,
                t.csv_reference,
                t.csv_expected,
                t.csv_from_predictions,
                t.csv_recent_failures,
                t.csv_from_recent,
                t.csv_horizon,
                t.csv_as_of,
            ]
            .map(str::to_owned),
        ));
        let as_of = snapshot.as_of.to_string();
        for g in groups {
            let region = g.group.clone().unwrap_or_default();
            for d in g.parts {
                let (name, reference) = part_names(profiles, &d.device_type, &d.part, lang);
                out.push_str(&csv_record(&[
                    region.clone(),
                    d.device_type.clone(),
                    name,
                    d.part.clone(),
                    reference,
                    format!("{:.2}", d.expected),
                    format!("{:.2}", d.from_predictions),
                    d.recent_failures.to_string(),
                    format!("{:.2}", d.from_recent_failures),
                    horizon.to_string(),
                    as_of.clone(),
                ]));
            }
        }
        Ok((out, clock.date(snapshot.as_of)))
    })
    .await
    .map_err(fail(lang))?;
    let disposition = format!("attachment; filename=\"fixahead-parts-{horizon}d-{date}.csv\"");
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct AcknowledgeForm {
    #[serde(default)]
    note: String,
}

/// `POST /console/fleet/alarms/{id}/acknowledge`: acknowledges an active alarm with a
/// note through `api::desk::acknowledge_alarm`. A blank or too long note, or an alarm
/// already acknowledged or cleared, shows the fleet page again with the reason by the
/// alarms (400 / 409).
pub(crate) async fn acknowledge(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    CsrfForm { viewer, form }: CsrfForm<AcknowledgeForm>,
) -> PageResult {
    let lang = viewer.lang();
    let t = texts(lang);
    viewer
        .require(Permission::AcknowledgeAlarms)
        .map_err(fail(lang))?;
    let id = positive_id(Some(raw.as_str()), t.bad_alarm_id)
        .and_then(|id| id.ok_or_else(|| Error::BadRequest(t.bad_alarm_id.into())))
        .map_err(fail(lang))?;
    let note = form.note.trim().to_owned();
    let refused = if note.is_empty() {
        Some((StatusCode::BAD_REQUEST, t.note_blank.to_owned()))
    } else if note.chars().count() > api::fleet::MAX_ACK_NOTE {
        Some((StatusCode::BAD_REQUEST, t.note_too_long.to_owned()))
    } else {
        None
    };
    let refused = match refused {
        Some(r) => Some(r),
        None => {
            let (api, who) = (state.api.clone(), viewer.principal.clone());
            let note = note.clone();
            let done =
                blocking(move || Ok(api::desk::acknowledge_alarm(&api, &who, id, &note)?)).await;
            match done {
                Ok(alarm) => {
                    audit(
                        &state,
                        viewer.principal.audit_record(
                            "POST",
                            &format!("{PREFIX}/fleet/alarms/{id}/acknowledge"),
                            303,
                            format!("acknowledged alarm {}", alarm.id),
                        ),
                    )
                    .await;
                    return Ok(Redirect::to(&format!(
                        "{PREFIX}/fleet?acknowledged={}#alarms",
                        alarm.id
                    ))
                    .into_response());
                }
                Err(Error::Api(api::Error::Conflict(m))) => {
                    Some((StatusCode::CONFLICT, format!("{} ({m})", t.ack_conflict)))
                }
                Err(Error::Api(api::Error::Invalid { message, .. })) => {
                    Some((StatusCode::BAD_REQUEST, message))
                }
                Err(e) => return Err(fail(lang)(e)),
            }
        }
    };
    let Some((status, message)) = refused else {
        return Err(fail(lang)(Error::BadRequest(t.bad_query.into())));
    };
    let page = blocking(move || build(&state, &viewer, Params::default(), Some((id, message))))
        .await
        .map_err(fail(lang))?;
    Ok(render_with(status, &page))
}

#[cfg(test)]
mod tests;
