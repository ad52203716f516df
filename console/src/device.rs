//! The device page (`/console/devices/{device_id}`): what an engineer checks before a
//! visit and a planner checks before scheduling one. The registry, the latest readings
//! against the fleet's p5/p50/p95 for the model, the risk per component over time, the
//! device's tickets and their outcomes, its fault codes with catalogue text, how
//! comparable devices fared, and a self-test with the device's answer.
//!
//! It reads what `GET /api/v1/devices/{id}/diagnosis` reads, with the same rule
//! (`api::desk::device_for_diagnosis`: role `diagnose`; engineers only devices of their
//! own active tickets), and the self-test goes through `api::desk::send_command`, as
//! `POST /api/v1/devices/{id}/commands` does. Every query is bounded and indexed: the
//! registry row, the last [`READINGS_LOOKBACK`] telemetry messages, the last
//! [`FAULTS_SHOWN`] faults, the last [`TICKETS_SHOWN`] tickets with their logs, the
//! current risks, one cohort row and the last [`COMMANDS_SHOWN`] commands.
//!
//! Risk over time: the ticket store keeps only the latest score per component, so the
//! chart shows what the device's tickets recorded (the risk each opened at, each move
//! the intake logged) and the latest score, and says so on the page.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use domain::{DeviceId, FaultState, Lang, OutcomeKind};
use serde::Deserialize;

use crate::chart::{LineChart, RangeBar};
use crate::clock::Clock;
use crate::csrf::CsrfForm;
use crate::error::blocking;
use crate::i18n::{self, pick};
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::sign_in::audit;
use crate::state::ConsoleState;
use crate::{Error, Result, PREFIX};

/// Telemetry messages read back for each channel's latest value (as the API).
const READINGS_LOOKBACK: usize = 50;
/// Fault messages on the timeline.
const FAULTS_SHOWN: usize = 50;
/// The device's newest tickets listed (and drawn in the risk chart).
const TICKETS_SHOWN: usize = 50;
/// Commands listed.
const COMMANDS_SHOWN: usize = 5;

pub(crate) struct Texts {
    title: &'static str,
    bad_device_id: &'static str,
    no_device: &'static str,
    not_your_device: &'static str,
    bad_query: &'static str,
    registry: &'static str,
    device_type: &'static str,
    model: &'static str,
    firmware: &'static str,
    batch: &'static str,
    region: &'static str,
    first_seen: &'static str,
    first_seen_help: &'static str,
    last_seen: &'static str,
    connection: &'static str,
    online: &'static str,
    offline: &'static str,
    unknown: &'static str,
    messages: &'static str,
    not_reported: &'static str,
    readings: &'static str,
    readings_help: &'static str,
    no_ranges: &'static str,
    channel: &'static str,
    latest: &'static str,
    fleet_range: &'static str,
    against_fleet: &'static str,
    median: &'static str,
    pos_low: &'static str,
    pos_normal: &'static str,
    pos_high: &'static str,
    pos_unknown: &'static str,
    no_readings: &'static str,
    risk: &'static str,
    risk_help: &'static str,
    no_risk_history: &'static str,
    threshold: &'static str,
    component: &'static str,
    current_risk: &'static str,
    flagged: &'static str,
    not_flagged: &'static str,
    model_version: &'static str,
    scored_at: &'static str,
    warming_up: &'static str,
    no_scores: &'static str,
    tickets: &'static str,
    tickets_help: &'static str,
    number: &'static str,
    source: &'static str,
    status: &'static str,
    priority: &'static str,
    opened: &'static str,
    engineer: &'static str,
    outcome: &'static str,
    parts_replaced: &'static str,
    no_tickets: &'static str,
    not_yours: &'static str,
    faults: &'static str,
    faults_help: &'static str,
    severity: &'static str,
    raised: &'static str,
    cleared: &'static str,
    not_in_catalogue: &'static str,
    no_faults: &'static str,
    comparable: &'static str,
    comparable_help: &'static str,
    cohort_devices: &'static str,
    cohort_with_tickets: &'static str,
    cohort_tickets: &'static str,
    cohort_active: &'static str,
    cohort_confirmed: &'static str,
    cohort_no_fault: &'static str,
    no_cohort: &'static str,
    all_batches: &'static str,
    self_test: &'static str,
    self_test_help: &'static str,
    run_self_test: &'static str,
    no_commands_service: &'static str,
    sent: &'static str,
    commands: &'static str,
    requested: &'static str,
    requested_by: &'static str,
    answered: &'static str,
    no_commands: &'static str,
    cmd_pending: &'static str,
    cmd_answered: &'static str,
    cmd_timed_out: &'static str,
    cmd_failed: &'static str,
    late: &'static str,
    result_pass: &'static str,
    result_fail: &'static str,
    measured: &'static str,
    limit: &'static str,
    quantity: &'static str,
    part_ok: &'static str,
    part_degraded: &'static str,
    part_failed: &'static str,
    waiting: &'static str,
}

const EN: Texts = Texts {
    title: "Device",
    bad_device_id: "This is not a device id (1-64 letters, digits, - or _)",
    no_device: "There is no such device: it has never sent a message.",
    not_your_device: "Engineers open only the devices of tickets assigned to them.",
    bad_query: "The page's parameters could not be used",
    registry: "Registry",
    device_type: "Type",
    model: "Model",
    firmware: "Firmware",
    batch: "Production batch",
    region: "Region",
    first_seen: "First seen",
    first_seen_help: "Devices report no installation date; this is their first message.",
    last_seen: "Last message",
    connection: "Connection",
    online: "online",
    offline: "offline",
    unknown: "unknown",
    messages: "Messages stored",
    not_reported: "not reported",
    readings: "Latest readings against the fleet",
    readings_help: "Each bar is the fleet's normal range for this model: the band runs from the 5th to the 95th percentile of every device's latest value, the line is the median, the dot is this device.",
    no_ranges: "The fleet summary has no ranges for this model yet; values are shown without them.",
    channel: "Channel",
    latest: "Latest",
    fleet_range: "Fleet p5 – p95 (median)",
    against_fleet: "Against the fleet",
    median: "median",
    pos_low: "below normal",
    pos_normal: "normal",
    pos_high: "above normal",
    pos_unknown: "no range",
    no_readings: "No telemetry stored for this device.",
    risk: "Risk per component",
    risk_help: "fixahead keeps only the latest score of each component; the lines join the risks the device's tickets recorded (when each opened and whenever the risk moved notably) and the latest score. Times between points are not scored values.",
    no_risk_history: "No risk recorded for this device yet.",
    threshold: "Threshold",
    component: "Component",
    current_risk: "Latest risk",
    flagged: "flagged",
    not_flagged: "below threshold",
    model_version: "Model version",
    scored_at: "Scored at",
    warming_up: "warming up: the risk is not reliable yet",
    no_scores: "No component of this device has been scored.",
    tickets: "Tickets and outcomes",
    tickets_help: "The device's newest tickets, open and closed.",
    number: "Ticket",
    source: "Source",
    status: "Status",
    priority: "Priority",
    opened: "Opened",
    engineer: "Engineer",
    outcome: "Outcome",
    parts_replaced: "parts replaced",
    no_tickets: "No tickets for this device.",
    not_yours: "assigned to someone else",
    faults: "Fault codes",
    faults_help: "The device's newest fault messages, with the catalogue's text.",
    severity: "Severity",
    raised: "raised",
    cleared: "cleared",
    not_in_catalogue: "not in the fault catalogue",
    no_faults: "No fault codes stored for this device.",
    comparable: "Comparable devices",
    comparable_help: "Devices of the same type, model and production batch, and what their tickets came to.",
    cohort_devices: "Devices",
    cohort_with_tickets: "with tickets",
    cohort_tickets: "Tickets",
    cohort_active: "Open now",
    cohort_confirmed: "Confirmed failures",
    cohort_no_fault: "No fault found",
    no_cohort: "The fleet summary has no comparable devices for this model and batch yet.",
    all_batches: "all batches (the devices report none)",
    self_test: "Self-test",
    self_test_help: "Asks the device to test its components. The answer appears here when the device replies; without it the command times out.",
    run_self_test: "Run a self-test",
    no_commands_service: "This server does not send commands to devices.",
    sent: "Self-test sent. The device's answer appears below when it comes.",
    commands: "Latest commands",
    requested: "Requested",
    requested_by: "by",
    answered: "Answered",
    no_commands: "No commands sent to this device yet.",
    cmd_pending: "waiting for the device",
    cmd_answered: "answered",
    cmd_timed_out: "timed out",
    cmd_failed: "failed",
    late: "the answer came after the deadline",
    result_pass: "passed",
    result_fail: "found a problem",
    measured: "Measured",
    limit: "Limit",
    quantity: "Quantity",
    part_ok: "ok",
    part_degraded: "degraded",
    part_failed: "failed",
    waiting: "Waiting for the answer; this part of the page refreshes by itself (or reload the page).",
};

const ZH: Texts = Texts {
    title: "设备",
    bad_device_id: "设备编号无效（1-64 个字母、数字、- 或 _）",
    no_device: "没有该设备：它从未上报过消息。",
    not_your_device: "工程师只能打开派给自己的工单所涉及的设备。",
    bad_query: "页面参数无法识别",
    registry: "设备档案",
    device_type: "类型",
    model: "型号",
    firmware: "固件版本",
    batch: "生产批次",
    region: "区域",
    first_seen: "首次上报",
    first_seen_help: "设备不上报安装日期；此处为其第一条消息的时间。",
    last_seen: "最近消息",
    connection: "连接状态",
    online: "在线",
    offline: "离线",
    unknown: "未知",
    messages: "已存消息数",
    not_reported: "未上报",
    readings: "最新读数与设备群对比",
    readings_help: "每条横条为该型号设备群的正常范围：色带为所有设备最新值的第 5 至第 95 百分位，竖线为中位数，圆点为本设备。",
    no_ranges: "设备群汇总尚无该型号的正常范围，仅显示读数。",
    channel: "通道",
    latest: "最新值",
    fleet_range: "设备群 P5 – P95（中位数）",
    against_fleet: "与设备群对比",
    median: "中位数",
    pos_low: "低于正常",
    pos_normal: "正常",
    pos_high: "高于正常",
    pos_unknown: "无范围",
    no_readings: "该设备尚无遥测数据。",
    risk: "各部件风险走势",
    risk_help: "fixahead 只保存每个部件的最新评分；折线连接的是该设备工单记录的风险值（建单时及风险明显变化时）和最新评分，点与点之间并非实际评分。",
    no_risk_history: "该设备尚无风险记录。",
    threshold: "阈值",
    component: "部件",
    current_risk: "最新风险",
    flagged: "已预警",
    not_flagged: "低于阈值",
    model_version: "模型版本",
    scored_at: "评分时间",
    warming_up: "预热期：风险值尚不可靠",
    no_scores: "该设备的部件尚未评分。",
    tickets: "工单与处理结果",
    tickets_help: "该设备最新的工单（含已关闭）。",
    number: "工单号",
    source: "来源",
    status: "状态",
    priority: "优先级",
    opened: "创建时间",
    engineer: "工程师",
    outcome: "处理结果",
    parts_replaced: "更换备件",
    no_tickets: "该设备没有工单。",
    not_yours: "已派给其他工程师",
    faults: "故障码",
    faults_help: "该设备最新的故障消息及故障码说明。",
    severity: "严重程度",
    raised: "触发",
    cleared: "已清除",
    not_in_catalogue: "不在故障码目录中",
    no_faults: "该设备没有故障码记录。",
    comparable: "同类设备",
    comparable_help: "同类型、同型号、同生产批次的设备及其工单结果。",
    cohort_devices: "设备数",
    cohort_with_tickets: "有工单",
    cohort_tickets: "工单",
    cohort_active: "未结",
    cohort_confirmed: "确认故障",
    cohort_no_fault: "未发现故障",
    no_cohort: "设备群汇总尚无该型号和批次的同类设备数据。",
    all_batches: "全部批次（设备未上报批次）",
    self_test: "远程自检",
    self_test_help: "请设备自检各部件。设备回复后结果显示在此处；设备未回复则指令超时。",
    run_self_test: "发起自检",
    no_commands_service: "本服务器不向设备发送指令。",
    sent: "自检指令已发送，设备回复后结果将显示在下方。",
    commands: "最近指令",
    requested: "发起时间",
    requested_by: "发起人",
    answered: "回复时间",
    no_commands: "尚未向该设备发送指令。",
    cmd_pending: "等待设备回复",
    cmd_answered: "已回复",
    cmd_timed_out: "已超时",
    cmd_failed: "失败",
    late: "回复晚于截止时间",
    result_pass: "通过",
    result_fail: "发现问题",
    measured: "测量值",
    limit: "限值",
    quantity: "指标",
    part_ok: "正常",
    part_degraded: "性能下降",
    part_failed: "故障",
    waiting: "正在等待回复；此部分会自动刷新（也可刷新页面）。",
};

impl Texts {
    fn command_status(&self, s: api::CommandStatus) -> &'static str {
        match s {
            api::CommandStatus::Pending => self.cmd_pending,
            api::CommandStatus::Answered => self.cmd_answered,
            api::CommandStatus::TimedOut => self.cmd_timed_out,
            api::CommandStatus::Failed => self.cmd_failed,
        }
    }

    fn position(&self, p: &str) -> &'static str {
        match p {
            "low" => self.pos_low,
            "high" => self.pos_high,
            "normal" => self.pos_normal,
            _ => self.pos_unknown,
        }
    }
}

/// The page's words in `lang`.
pub(crate) fn texts(lang: Lang) -> &'static Texts {
    pick(lang, &EN, &ZH)
}

/// One fact of the registry.
struct Fact {
    label: &'static str,
    value: String,
    help: Option<&'static str>,
}

/// One channel's latest reading.
struct Reading {
    channel: String,
    /// The channel in words, in the person's language.
    title: String,
    unit: String,
    value: String,
    at: String,
    range: Option<String>,
    position: &'static str,
    position_label: &'static str,
    bar: Option<RangeBar>,
    /// What the bar says, for screen readers.
    summary: String,
}

/// A component's latest score.
struct RiskNow {
    component: String,
    risk: String,
    threshold: String,
    flagged: bool,
    warming_up: bool,
    model_version: String,
    at: String,
}

/// One of the device's tickets.
struct TicketRow {
    id: i64,
    number: String,
    /// Whether the person may open it (engineers: their own).
    link: bool,
    component: String,
    source: &'static str,
    status: &'static str,
    status_class: &'static str,
    priority: &'static str,
    priority_class: &'static str,
    opened: String,
    opened_iso: String,
    engineer: String,
    outcome: Option<String>,
    outcome_class: &'static str,
    parts: String,
}

/// One fault message.
struct FaultRow {
    at: String,
    iso: String,
    code: String,
    title: Option<String>,
    severity: Option<&'static str>,
    severity_class: &'static str,
    component: Option<String>,
    raised: bool,
}

/// How comparable devices fared.
struct CohortView {
    heading: String,
    devices: String,
    with_tickets: String,
    rows: Vec<CohortRow>,
}

struct CohortRow {
    component: String,
    tickets: u64,
    active: u64,
    confirmed: u64,
    no_fault: u64,
}

/// One command with its answer.
struct CommandView {
    id: i64,
    requested: String,
    requested_by: String,
    status: &'static str,
    status_class: &'static str,
    pending: bool,
    answered: Option<String>,
    late: bool,
    error: Option<String>,
    /// What the self-test concluded, and whether it passed.
    result: Option<&'static str>,
    passed: bool,
    parts: Vec<SelfTestPart>,
}

/// One component of a self-test report.
struct SelfTestPart {
    component: String,
    status: String,
    class: &'static str,
    measured: String,
    limit: String,
    quantity: String,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    chrome: Chrome,
    t: &'static Texts,
    device_id: String,
    subtitle: String,
    facts: Vec<Fact>,
    connection: &'static str,
    connection_class: &'static str,
    readings: Vec<Reading>,
    has_ranges: bool,
    bar_w: f64,
    bar_h: f64,
    risk_chart: Option<LineChart>,
    chart_w: f64,
    chart_h: f64,
    risk_now: Vec<RiskNow>,
    tickets: Vec<TicketRow>,
    faults: Vec<FaultRow>,
    cohort: Option<CohortView>,
    commands_enabled: bool,
    commands: Vec<CommandView>,
    polling: bool,
    notice: Option<&'static str>,
    self_url: String,
    /// The customer and location panel (templates/device/directory.html).
    directory: directory::DirectoryPanel,
}

/// The page's query: `sent` (a command id) after a self-test was sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceQuery {
    sent: Option<String>,
}

/// Parses a page's query string into `T` (unknown parameters refused), or a 400 that
/// says so in the person's language.
pub(crate) fn parse_query<T: serde::de::DeserializeOwned + Default>(
    raw: Option<&str>,
    prefix: &str,
) -> Result<T> {
    match raw.filter(|q| !q.is_empty()) {
        None => Ok(T::default()),
        Some(q) => {
            serde_urlencoded::from_str(q).map_err(|e| Error::BadRequest(format!("{prefix}: {e}")))
        }
    }
}

/// The device id of a path, or a 400 in the person's language.
fn device_id(raw: &str, t: &Texts) -> Result<DeviceId> {
    DeviceId::parse(raw).map_err(|_| {
        let shown: String = raw.chars().take(64).collect();
        Error::BadRequest(format!("{}: {shown:?}", t.bad_device_id))
    })
}

/// `GET /console/devices/{device_id}`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = texts(lang);
    let id = device_id(&raw, t).map_err(fail(lang))?;
    let q: DeviceQuery = parse_query(query.as_deref(), t.bad_query).map_err(fail(lang))?;
    let notice = match q.sent.as_deref() {
        None => None,
        Some(s) if s.parse::<i64>().is_ok() => Some(t.sent),
        Some(_) => {
            return Err(fail(lang)(Error::BadRequest(format!(
                "{}: sent",
                t.bad_query
            ))))
        }
    };
    // The desk words its refusals for the API, in English; the two a person meets here
    // are said in their language.
    let page = blocking(move || build(&state, &viewer, &id, notice))
        .await
        .map_err(|e| match e.status() {
            StatusCode::FORBIDDEN => Error::Forbidden(t.not_your_device.into()),
            StatusCode::NOT_FOUND => Error::NotFound(t.no_device.into()),
            _ => e,
        })
        .map_err(fail(lang))?;
    Ok(render(&page))
}

fn component_title(profile: Option<&domain::Profile>, name: &str, lang: Lang) -> String {
    profile
        .and_then(|p| p.component(name))
        .map(|c| c.title_in(lang))
        .filter(|s| !s.is_empty())
        .unwrap_or(name)
        .to_owned()
}

/// Everything the page shows, read in one blocking task.
fn build(
    state: &ConsoleState,
    viewer: &Viewer,
    id: &DeviceId,
    notice: Option<&'static str>,
) -> Result<DevicePage> {
    let api = &state.api;
    let who = &viewer.principal;
    let (lang, clock) = (viewer.lang(), &viewer.clock);
    let t = texts(lang);
    let c = i18n::common(lang);
    let (device, _active) = api::desk::device_for_diagnosis(api, who, id)?;
    let info = &device.device;
    let profile = api.profiles().get(&info.device_type).cloned();
    let profile = profile.as_deref();
    let now = api.tickets().now();

    let type_title = profile
        .map(|p| p.title_in(lang))
        .filter(|s| !s.is_empty())
        .unwrap_or(&info.device_type);
    let reported = |v: &Option<String>| v.clone().unwrap_or_else(|| t.not_reported.to_owned());
    let facts = vec![
        Fact {
            label: t.device_type,
            value: format!("{type_title} ({})", info.device_type),
            help: None,
        },
        Fact {
            label: t.model,
            value: info.model.clone(),
            help: None,
        },
        Fact {
            label: t.firmware,
            value: reported(&info.fw),
            help: None,
        },
        Fact {
            label: t.batch,
            value: reported(&info.batch),
            help: None,
        },
        Fact {
            label: t.region,
            value: reported(&info.region),
            help: None,
        },
        Fact {
            label: t.first_seen,
            value: clock.at_zone(device.first_seen),
            help: Some(t.first_seen_help),
        },
        Fact {
            label: t.last_seen,
            value: format!(
                "{} ({})",
                clock.at(device.last_seen),
                clock.relative(device.last_seen, now)
            ),
            help: None,
        },
        Fact {
            label: t.messages,
            value: clock.number(device.messages as f64, 0),
            help: None,
        },
    ];

    let readings = readings(state, id, info, profile, clock, t)?;
    let has_ranges = readings.iter().any(|r| r.range.is_some());

    let risks = api.tickets().device_risk(id.as_str())?;
    let tickets = api
        .tickets()
        .device_tickets(id.as_str(), false, TICKETS_SHOWN)?;
    let risk_chart = risk_chart(&risks, &tickets, profile, clock, now);
    let risk_now = risks
        .iter()
        .map(|r| RiskNow {
            component: component_title(profile, &r.component, lang),
            risk: clock.number(r.risk, 2),
            threshold: clock.number(r.threshold, 2),
            flagged: r.flagged,
            warming_up: r.warming_up,
            model_version: r.model_version.clone(),
            at: clock.at(r.ts),
        })
        .collect();
    let ticket_rows = tickets
        .iter()
        .map(|tk| ticket_row(tk, who, profile, clock))
        .collect();

    let faults = api
        .store()
        .recent_faults(id.as_str(), FAULTS_SHOWN)?
        .into_iter()
        .map(|f| {
            let def = profile.and_then(|p| p.fault(&f.code));
            FaultRow {
                at: clock.at(f.ts),
                iso: clock.iso(f.ts),
                title: def.map(|d| d.title_in(lang).to_owned()),
                severity: def.map(|d| c.severity(d.severity)),
                severity_class: def.map_or("normal", |d| i18n::severity_class(d.severity)),
                component: def
                    .and_then(|d| d.component.as_deref())
                    .map(|c| component_title(profile, c, lang)),
                raised: f.state == FaultState::Raised,
                code: f.code,
            }
        })
        .collect();

    let cohort = match api.fleet_summary() {
        Some(s) => s
            .cohort(&info.device_type, &info.model, info.batch.as_deref())?
            .map(|c| CohortView {
                heading: format!(
                    "{} · {}",
                    c.model,
                    c.batch.clone().unwrap_or_else(|| t.all_batches.to_owned())
                ),
                devices: clock.number(c.devices as f64, 0),
                with_tickets: format!(
                    "{} ({})",
                    clock.number(c.devices_with_tickets as f64, 0),
                    clock.percent(c.devices_with_tickets as f64 / (c.devices.max(1)) as f64, 0)
                ),
                rows: c
                    .components
                    .iter()
                    .map(|h| CohortRow {
                        component: component_title(profile, &h.component, lang),
                        tickets: h.tickets,
                        active: h.active,
                        confirmed: h.confirmed_failures,
                        no_fault: h.no_fault_found,
                    })
                    .collect(),
            }),
        None => None,
    };

    let commands: Vec<CommandView> = match api.commands() {
        Some(c) => c
            .recent(id.as_str(), COMMANDS_SHOWN)?
            .into_iter()
            .map(|c| command_view(c, profile, clock, t))
            .collect(),
        None => Vec::new(),
    };
    let polling = commands.iter().any(|c| c.pending);
    let path = format!("/devices/{}", id.as_str());
    Ok(DevicePage {
        chrome: Chrome::new(viewer, format!("{} {}", t.title, id.as_str()), &path),
        t,
        device_id: id.as_str().to_owned(),
        subtitle: format!("{type_title} · {}", info.model),
        facts,
        connection: match device.online {
            Some(true) => t.online,
            Some(false) => t.offline,
            None => t.unknown,
        },
        connection_class: match device.online {
            Some(true) => "ok",
            Some(false) => "bad",
            None => "normal",
        },
        readings,
        has_ranges,
        bar_w: RangeBar::WIDTH,
        bar_h: RangeBar::HEIGHT,
        risk_chart,
        chart_w: LineChart::WIDTH,
        chart_h: LineChart::HEIGHT,
        risk_now,
        tickets: ticket_rows,
        faults,
        cohort,
        commands_enabled: api.commands().is_some(),
        commands,
        polling,
        notice,
        self_url: format!("{PREFIX}{path}"),
        directory: directory::DirectoryPanel::new(
            id.as_str(),
            api.tickets().directory_entry(id.as_str())?,
            lang,
            clock,
            who.may(api::http::auth::Permission::ManageDirectory),
        ),
    })
}

/// The latest value of every channel of the profile (and others the device sent)
/// against the fleet's range for the model.
fn readings(
    state: &ConsoleState,
    id: &DeviceId,
    info: &domain::DeviceInfo,
    profile: Option<&domain::Profile>,
    clock: &Clock,
    t: &Texts,
) -> Result<Vec<Reading>> {
    let api = &state.api;
    let latest = api
        .store()
        .latest_readings(id.as_str(), READINGS_LOOKBACK)?;
    let ranges = match api.fleet_summary() {
        Some(s) => s.ranges(&info.device_type, &info.model)?,
        None => BTreeMap::new(),
    };
    let mut names: Vec<String> = profile
        .map(|p| p.channels().iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    for name in latest.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let digits = |x: f64| if x.abs() >= 100.0 { 1 } else { 3 };
    Ok(names
        .into_iter()
        .filter(|n| latest.contains_key(n) || ranges.contains_key(n))
        .map(|name| {
            let unit = profile
                .and_then(|p| {
                    p.channel_index(&name)
                        .map(|i| p.channels()[i].unit.as_str())
                })
                .map(crate::ticket::words::unit)
                .unwrap_or_default();
            let title = crate::ticket::words::channel_name(&name, clock.lang);
            let (value, at) = latest
                .get(&name)
                .map_or((None, None), |(v, ts)| (Some(*v), Some(*ts)));
            let range = ranges.get(&name);
            let bar = range.and_then(|r| RangeBar::new(value, r.p5, r.p50, r.p95));
            let position = match (&bar, value) {
                (Some(b), Some(_)) => b.position,
                _ => "unknown",
            };
            let value_text = value.map_or_else(|| "–".to_owned(), |v| clock.number(v, digits(v)));
            let range_text = range.map(|r| {
                format!(
                    "{} – {} ({} {})",
                    clock.number(r.p5, digits(r.p5)),
                    clock.number(r.p95, digits(r.p95)),
                    t.median,
                    clock.number(r.p50, digits(r.p50))
                )
            });
            Reading {
                summary: format!(
                    "{title}: {value_text} {unit}; {}{}",
                    t.position(position),
                    range_text
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ),
                channel: name,
                title,
                unit,
                value: value_text,
                at: at.map(|ts| clock.at(ts)).unwrap_or_default(),
                range: range_text,
                position,
                position_label: t.position(position),
                bar,
            }
        })
        .collect())
}

/// The risk lines: per component, the points its tickets recorded and its latest
/// score, over the span they cover up to now.
fn risk_chart(
    risks: &[api::tickets::RiskRecord],
    tickets: &[domain::Ticket],
    profile: Option<&domain::Profile>,
    clock: &Clock,
    now: domain::Timestamp,
) -> Option<LineChart> {
    let mut points: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for tk in tickets {
        for (at, r) in api::tickets::risk_log::risk_points(tk) {
            points
                .entry(tk.component.clone())
                .or_default()
                .push((at.millis(), r));
        }
    }
    for r in risks {
        points
            .entry(r.component.clone())
            .or_default()
            .push((r.updated_at.millis(), r.risk));
    }
    let t1 = points
        .values()
        .flatten()
        .map(|p| p.0)
        .max()?
        .max(now.millis());
    let t0 = points
        .values()
        .flatten()
        .map(|p| p.0)
        .min()?
        .min(t1 - domain::Timestamp::DAY_MS);
    let mut thresholds: Vec<f64> = risks.iter().map(|r| r.threshold).collect();
    thresholds.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    let threshold = (thresholds.len() == 1).then(|| thresholds[0]);
    let series = points
        .into_iter()
        .map(|(component, mut pts)| {
            pts.sort_by_key(|p| p.0);
            pts.dedup();
            let name = component_title(profile, &component, clock.lang);
            let pts = pts
                .into_iter()
                .map(|(at, r)| {
                    let title = format!(
                        "{name}: {} · {}",
                        clock.number(r, 2),
                        clock.at(domain::Timestamp(at))
                    );
                    (at, r, title)
                })
                .collect();
            (name, pts)
        })
        .collect();
    // A few days: dates alone would repeat; label with the time too.
    let short = t1 - t0 <= 3 * domain::Timestamp::DAY_MS;
    Some(LineChart::new(series, t0, t1, threshold, |ms| {
        if short {
            // "12-07 14:30": the year would only crowd the axis.
            let at = clock.at(domain::Timestamp(ms));
            at.get(5..).map_or_else(|| at.clone(), str::to_owned)
        } else {
            clock.date(domain::Timestamp(ms))
        }
    }))
}

fn ticket_row(
    tk: &domain::Ticket,
    who: &api::Principal,
    profile: Option<&domain::Profile>,
    clock: &Clock,
) -> TicketRow {
    let lang = clock.lang;
    let c = i18n::common(lang);
    let link = !who.restricted_to_assigned() || api::desk::assigned_to(who, tk);
    let (outcome, outcome_class, parts) = match &tk.outcome {
        Some(o) => (
            Some(c.outcome(o.kind).to_owned()),
            match o.kind {
                OutcomeKind::ConfirmedFailure => "bad",
                OutcomeKind::NoFaultFound => "ok",
                _ => "normal",
            },
            o.parts_replaced
                .iter()
                .map(|p| {
                    profile
                        .map_or(p.as_str(), |pr| pr.part_name_in(p, lang))
                        .to_owned()
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        None => (None, "normal", String::new()),
    };
    TicketRow {
        id: tk.id,
        number: tk.number.clone(),
        link,
        component: component_title(profile, &tk.component, lang),
        source: c.source(tk.source),
        status: c.status(tk.status),
        status_class: i18n::status_class(tk.status),
        priority: c.priority(tk.priority),
        priority_class: i18n::priority_class(tk.priority),
        opened: clock.at(tk.opened_at),
        opened_iso: clock.iso(tk.opened_at),
        engineer: tk.assignment.engineer.clone().unwrap_or_default(),
        outcome,
        outcome_class,
        parts,
    }
}

/// A number of a self-test report, or a dash.
fn report_number(v: Option<&serde_json::Value>, clock: &Clock) -> String {
    v.and_then(serde_json::Value::as_f64)
        .map_or_else(|| "–".to_owned(), |x| clock.number(x, 3))
}

fn command_view(
    c: api::CommandRecord,
    profile: Option<&domain::Profile>,
    clock: &Clock,
    t: &Texts,
) -> CommandView {
    let report = c.result.as_ref();
    let result = report
        .and_then(|r| r.get("result"))
        .and_then(serde_json::Value::as_str)
        .map(|r| {
            if r == "pass" || r == "ok" {
                (t.result_pass, true)
            } else {
                (t.result_fail, false)
            }
        });
    let parts = report
        .and_then(|r| r.get("components"))
        .and_then(serde_json::Value::as_array)
        .map(|items| {
            items
                .iter()
                .take(50)
                .map(|item| {
                    let status = item
                        .get("status")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("");
                    let (status_text, class) = match status {
                        "ok" => (t.part_ok.to_owned(), "ok"),
                        "degraded" => (t.part_degraded.to_owned(), "important"),
                        "failed" => (t.part_failed.to_owned(), "bad"),
                        other => (other.chars().take(64).collect(), "normal"),
                    };
                    let component = item
                        .get("component")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("");
                    SelfTestPart {
                        component: component_title(profile, component, clock.lang),
                        status: status_text,
                        class,
                        measured: report_number(item.get("measured"), clock),
                        limit: report_number(item.get("limit"), clock),
                        quantity: item
                            .get("quantity")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or("")
                            .chars()
                            .take(64)
                            .collect(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    CommandView {
        id: c.id,
        requested: clock.at(c.created_at),
        requested_by: c.requested_by,
        status: t.command_status(c.status),
        status_class: match c.status {
            api::CommandStatus::Pending => "important",
            api::CommandStatus::Answered => "ok",
            _ => "bad",
        },
        pending: c.status == api::CommandStatus::Pending,
        answered: c.answered_at.map(|ts| clock.at(ts)),
        late: c.late,
        error: c.error,
        result: result.map(|r| r.0),
        passed: result.is_some_and(|r| r.1),
        parts,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SelfTestForm {}

/// `POST /console/devices/{device_id}/self-test`: sends `self_test` through the same
/// service and rules as `POST /api/v1/devices/{id}/commands`, then shows the device
/// page with the pending command.
pub(crate) async fn self_test(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    CsrfForm { viewer, .. }: CsrfForm<SelfTestForm>,
) -> PageResult {
    let lang = viewer.lang();
    let t = texts(lang);
    let id = device_id(&raw, t).map_err(fail(lang))?;
    let api = state.api.clone();
    let who = viewer.principal.clone();
    let target = id.clone();
    let record = blocking(move || Ok(api::desk::send_command(&api, &who, &target, "self_test")?))
        .await
        .map_err(fail(lang))?;
    audit(
        &state,
        viewer.principal.audit_record(
            "POST",
            &format!("{PREFIX}/devices/{}/self-test", id.as_str()),
            303,
            format!(
                "sent {} to {} (command {})",
                record.command, record.device_id, record.id
            ),
        ),
    )
    .await;
    Ok(Redirect::to(&format!(
        "{PREFIX}/devices/{}?sent={}#commands",
        id.as_str(),
        record.id
    ))
    .into_response())
}

pub(crate) mod directory;

#[cfg(test)]
mod tests;
