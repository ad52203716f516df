//! The KPI page (`/console/kpis`, planners and admins): the service KPIs of a period
//! as `GET /api/v1/kpis` reports them (`TicketService::kpis`, definitions in
//! docs/kpis.md): the headline figures with their definitions as tooltips, charts
//! over time (response and resolution p50/p90, first-time fix and satisfied
//! answers, warned in advance and false alarms) and a table per group.
//!
//! The period is chosen in whole UTC days (the API's buckets are UTC days), both
//! ends included; the default is the 30 days up to today by the service's clock. The
//! form is a GET, so a period and grouping is a bookmark and the page works without
//! JavaScript.

use api::http::auth::Permission;
use api::kpis::{Bucket, Durations, GroupBy, KpiQuery, KpiReport, Kpis};
use askama::Template;
use axum::extract::{RawQuery, State};
use chrono::NaiveDate;
use domain::{Lang, ReportChannel, Timestamp};
use serde::Deserialize;

use crate::chart::{ticks, LineChart, Points};
use crate::clock::Clock;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::Error;

/// The page's words.
pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    from: &'static str,
    to: &'static str,
    group_by: &'static str,
    no_grouping: &'static str,
    region: &'static str,
    engineer: &'static str,
    device_type: &'static str,
    priority: &'static str,
    source: &'static str,
    bucket: &'static str,
    day: &'static str,
    week: &'static str,
    show: &'static str,
    opened: &'static str,
    opened_def: &'static str,
    response: &'static str,
    response_def: &'static str,
    resolution: &'static str,
    resolution_def: &'static str,
    first_time_fix: &'static str,
    first_time_fix_def: &'static str,
    satisfaction: &'static str,
    satisfaction_def: &'static str,
    callbacks: &'static str,
    callbacks_def: &'static str,
    repeat: &'static str,
    repeat_def: &'static str,
    warned: &'static str,
    warned_def: &'static str,
    false_alarms: &'static str,
    false_alarms_def: &'static str,
    steps: &'static str,
    steps_def: &'static str,
    median: &'static str,
    p90: &'static str,
    mean: &'static str,
    of: &'static str,
    tickets: &'static str,
    repairs: &'static str,
    answers: &'static str,
    dissatisfied: &'static str,
    on_time: &'static str,
    overdue: &'static str,
    pending: &'static str,
    customer_reports: &'static str,
    failures: &'static str,
    lead_time: &'static str,
    ended_predictions: &'static str,
    step_clocks: &'static str,
    active: &'static str,
    no_tickets: &'static str,
    no_responses: &'static str,
    no_resolutions: &'static str,
    no_repairs: &'static str,
    no_answers: &'static str,
    no_callbacks: &'static str,
    no_reports: &'static str,
    no_failures: &'static str,
    no_ended_predictions: &'static str,
    no_steps: &'static str,
    over_time: &'static str,
    times_chart: &'static str,
    quality_chart: &'static str,
    prediction_chart: &'static str,
    response_p50: &'static str,
    response_p90: &'static str,
    resolution_p50: &'static str,
    resolution_p90: &'static str,
    satisfied: &'static str,
    no_chart: &'static str,
    groups: &'static str,
    group: &'static str,
    bad_date: &'static str,
    bad_choice: &'static str,
    forbidden: &'static str,
}

const EN: Texts = Texts {
    title: "Service KPIs",
    intro: "The measures the after-sales service runs by, from the tickets opened in the period. Hover over a figure's name for its definition; docs/kpis.md has them all.",
    from: "From",
    to: "To (included)",
    group_by: "Group by",
    no_grouping: "no grouping",
    region: "Region",
    engineer: "Engineer",
    device_type: "Device type",
    priority: "Priority",
    source: "Source",
    bucket: "Chart by",
    day: "day",
    week: "week",
    show: "Show",
    opened: "Tickets opened",
    opened_def: "Tickets opened in the period, by source (proactive: a model flag; reactive: a fault code or a customer) and by channel.",
    response: "Response time",
    response_def: "From opening to first contact (the ticket left 'open'), of the tickets that have been answered.",
    resolution: "Resolution time",
    resolution_def: "From opening to resolution, of resolved and closed tickets (dismissed ones are not resolutions).",
    first_time_fix: "First-time fix",
    first_time_fix_def: "Of the repairs (resolved or closed, outcome confirmed failure), the share with at most one visit that did not come back within the reopen window (reopened, or a new ticket for the same device and component).",
    satisfaction: "Satisfaction",
    satisfaction_def: "The mean score (1 to 5) of the customers' answers, and the share of answers at or below the dissatisfied score.",
    callbacks: "Call-backs",
    callbacks_def: "Call-backs to dissatisfied customers: on time when done by their deadline, overdue when found past it or done late.",
    repeat: "Repeat complaints",
    repeat_def: "Of the customer-reported tickets (any channel but the device), the share whose device had another customer-reported ticket in the 30 days before.",
    warned: "Failures warned in advance",
    warned_def: "Of the confirmed failures, the share a proactive ticket for the same device and component warned of: opened before the failure and at most 30 days before it.",
    false_alarms: "False alarms",
    false_alarms_def: "Of the proactive tickets that ended, the share dismissed or found without a fault.",
    steps: "Step-limit breaches",
    steps_def: "Of the procedure's step clocks, the share past their limit (found overdue, or done after the limit).",
    median: "median",
    p90: "9 in 10 within",
    mean: "mean",
    of: "of",
    tickets: "tickets",
    repairs: "repairs",
    answers: "answers",
    dissatisfied: "dissatisfied",
    on_time: "on time",
    overdue: "overdue",
    pending: "pending",
    customer_reports: "customer reports",
    failures: "confirmed failures",
    lead_time: "median warning",
    ended_predictions: "ended predictions",
    step_clocks: "step clocks",
    active: "still active",
    no_tickets: "No tickets were opened in this period.",
    no_responses: "No ticket was answered in this period.",
    no_resolutions: "No ticket was resolved in this period.",
    no_repairs: "No repairs in this period.",
    no_answers: "No satisfaction answers in this period.",
    no_callbacks: "No call-backs in this period.",
    no_reports: "No customer reports in this period.",
    no_failures: "No confirmed failures in this period.",
    no_ended_predictions: "No proactive ticket ended in this period.",
    no_steps: "No step clocks in this period.",
    over_time: "Over time",
    times_chart: "Response and resolution time (hours)",
    quality_chart: "First-time fix and satisfied answers",
    prediction_chart: "Warned in advance and false alarms",
    response_p50: "Response, median",
    response_p90: "Response, 90th percentile",
    resolution_p50: "Resolution, median",
    resolution_p90: "Resolution, 90th percentile",
    satisfied: "Satisfied answers",
    no_chart: "Nothing to draw yet in this period.",
    groups: "By group",
    group: "Group",
    bad_date: "A date must be written as YYYY-MM-DD, the start no later than the end, and the period at most 366 days.",
    bad_choice: "Unknown grouping or bucket: choose from the form's lists.",
    forbidden: "The service KPIs are for planners and admins.",
};

const ZH: Texts = Texts {
    title: "服务指标",
    intro: "售后服务据以运行的各项指标，依据所选时段内创建的工单计算。将鼠标悬停在指标名称上可查看定义；完整定义见 docs/kpis.md。",
    from: "开始日期",
    to: "结束日期（含）",
    group_by: "分组方式",
    no_grouping: "不分组",
    region: "区域",
    engineer: "工程师",
    device_type: "设备类型",
    priority: "优先级",
    source: "来源",
    bucket: "图表粒度",
    day: "按天",
    week: "按周",
    show: "显示",
    opened: "新建工单",
    opened_def: "时段内创建的工单数，按来源（主动：模型预警；被动：故障码或客户报修）和渠道统计。",
    response: "响应时间",
    response_def: "从工单创建到首次联系（工单离开“待处理”状态）的时间，仅统计已响应的工单。",
    resolution: "解决时间",
    resolution_def: "从工单创建到解决的时间，仅统计已解决和已关闭的工单（已驳回的不算解决）。",
    first_time_fix: "一次修复率",
    first_time_fix_def: "维修工单（已解决或已关闭，处理结果为确认故障）中，上门不超过一次、且在重开期限内未复发（未重开，也没有同一设备同一部件的新工单）的比例。",
    satisfaction: "满意度",
    satisfaction_def: "客户评分（1 至 5 分）的平均值，以及评分不高于“不满意”分数线的比例。",
    callbacks: "回访",
    callbacks_def: "对不满意客户的回访：在期限内完成为按时，超过期限或逾期完成为逾期。",
    repeat: "重复投诉率",
    repeat_def: "客户报修的工单（设备自动上报以外的任何渠道）中，同一设备在此前 30 天内已有其他客户报修工单的比例。",
    warned: "提前预警的故障",
    warned_def: "已确认的故障中，同一设备同一部件的主动工单在故障发生前且不早于故障前 30 天创建的比例。",
    false_alarms: "误报率",
    false_alarms_def: "已结束的主动工单中，被驳回或检查未发现故障的比例。",
    steps: "步骤超时",
    steps_def: "流程各步骤的计时中，超过时限（被判定逾期或在时限后完成）的比例。",
    median: "中位数",
    p90: "九成在此之内",
    mean: "平均",
    of: "/",
    tickets: "张工单",
    repairs: "次维修",
    answers: "份评价",
    dissatisfied: "不满意",
    on_time: "按时",
    overdue: "逾期",
    pending: "待办",
    customer_reports: "次客户报修",
    failures: "次确认故障",
    lead_time: "预警提前量中位数",
    ended_predictions: "张已结束的预警工单",
    step_clocks: "个步骤计时",
    active: "仍在处理",
    no_tickets: "此时段内没有新建工单。",
    no_responses: "此时段内没有已响应的工单。",
    no_resolutions: "此时段内没有已解决的工单。",
    no_repairs: "此时段内没有维修。",
    no_answers: "此时段内没有满意度评价。",
    no_callbacks: "此时段内没有回访。",
    no_reports: "此时段内没有客户报修。",
    no_failures: "此时段内没有已确认的故障。",
    no_ended_predictions: "此时段内没有已结束的主动工单。",
    no_steps: "此时段内没有步骤计时。",
    over_time: "随时间变化",
    times_chart: "响应与解决时间（小时）",
    quality_chart: "一次修复率与满意评价",
    prediction_chart: "提前预警与误报",
    response_p50: "响应时间中位数",
    response_p90: "响应时间 90 分位",
    resolution_p50: "解决时间中位数",
    resolution_p90: "解决时间 90 分位",
    satisfied: "满意评价占比",
    no_chart: "此时段内暂无可绘制的数据。",
    groups: "分组明细",
    group: "分组",
    bad_date: "日期格式应为 YYYY-MM-DD，开始日期不能晚于结束日期，时段最长 366 天。",
    bad_choice: "未知的分组方式或图表粒度：请从表单的选项中选择。",
    forbidden: "服务指标仅供计划员和管理员查看。",
};

/// One headline figure.
#[derive(Debug)]
pub(crate) struct Figure {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) definition: &'static str,
    /// The figure, or `None` with `empty` saying what is missing.
    pub(crate) value: Option<String>,
    pub(crate) detail: String,
    pub(crate) empty: &'static str,
}

/// One chart, or what it lacks.
#[derive(Debug)]
pub(crate) struct ChartView {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) chart: Option<LineChart>,
}

/// One row of the grouped table.
#[derive(Debug)]
pub(crate) struct GroupRow {
    pub(crate) key: String,
    pub(crate) opened: String,
    pub(crate) response: String,
    pub(crate) resolution: String,
    pub(crate) first_time_fix: String,
    pub(crate) satisfaction: String,
    pub(crate) repeat: String,
    pub(crate) warned: String,
    pub(crate) false_alarms: String,
    pub(crate) steps: String,
}

#[derive(Template)]
#[template(path = "kpis.html")]
struct KpisPage {
    chrome: Chrome,
    t: &'static Texts,
    from: String,
    to: String,
    group_by: &'static str,
    bucket: &'static str,
    groupings: Vec<(&'static str, &'static str)>,
    has_tickets: bool,
    figures: Vec<Figure>,
    charts: Vec<ChartView>,
    rows: Vec<GroupRow>,
    chart_w: f64,
    chart_h: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KpiForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    group_by: String,
    #[serde(default)]
    bucket: String,
}

fn day(s: &str) -> Option<Option<Timestamp>> {
    if s.is_empty() {
        return Some(None);
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(Some(Timestamp(
        d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis(),
    )))
}

/// The query of the form: whole UTC days, `to` included; by default the 30 days up
/// to today (by `now`). `None` for a date that does not parse or a period the API
/// refuses.
fn query_of(form: &KpiForm, now: Timestamp) -> Option<std::result::Result<KpiQuery, Error>> {
    let (from, to) = (day(&form.from)?, day(&form.to)?);
    let today = Timestamp(now.millis() - now.millis().rem_euclid(Timestamp::DAY_MS));
    let to = Timestamp(to.unwrap_or(today).millis() + Timestamp::DAY_MS);
    let from = from.unwrap_or(Timestamp(to.millis() - 30 * Timestamp::DAY_MS));
    let group_by = match form.group_by.as_str() {
        "" => None,
        g => match GroupBy::parse(g) {
            Ok(g) => Some(g),
            Err(e) => return Some(Err(e.into())),
        },
    };
    let bucket = match form.bucket.as_str() {
        "" => Bucket::Day,
        b => match Bucket::parse(b) {
            Ok(b) => b,
            Err(e) => return Some(Err(e.into())),
        },
    };
    KpiQuery::new(Some(from), Some(to), group_by, bucket, now)
        .ok()
        .map(Ok)
}

fn hours(clock: &Clock, h: f64) -> String {
    clock.span((h * 3_600_000.0).round() as i64)
}

fn pct(clock: &Clock, share: Option<f64>) -> Option<String> {
    share.map(|s| clock.percent(s, 1))
}

fn times(clock: &Clock, d: &Durations, t: &Texts) -> (Option<String>, String) {
    match (d.p50_hours, d.p90_hours, d.mean_hours) {
        (Some(p50), Some(p90), Some(mean)) => (
            Some(format!("{} {}", t.median, hours(clock, p50))),
            format!(
                "{} {} · {} {} · {} {}",
                t.p90,
                hours(clock, p90),
                t.mean,
                hours(clock, mean),
                clock.number(d.count as f64, 0),
                t.tickets
            ),
        ),
        _ => (None, String::new()),
    }
}

/// The headline figures.
fn figures(k: &Kpis, clock: &Clock, t: &'static Texts, lang: Lang) -> Vec<Figure> {
    let n = |x: u64| clock.number(x as f64, 0);
    let of = |a: u64, b: u64, what: &str| format!("{} {} {} {}", n(a), t.of, n(b), what);
    let (response, response_detail) = times(clock, &k.response, t);
    let (resolution, resolution_detail) = times(clock, &k.resolution, t);
    let c = &k.counts;
    let mut opened_detail = vec![format!("{} {}", n(c.active), t.active)];
    // Sources, channels and steps by their names in the viewer's language (the
    // ticket page's words), a value this version does not know by its wire name.
    let common = crate::i18n::common(lang);
    opened_detail.extend(c.by_source.iter().map(|(s, x)| {
        let name = match s.as_str() {
            "proactive" => common.source_proactive,
            "reactive" => common.source_reactive,
            other => other,
        };
        format!("{name} {}", n(*x))
    }));
    let report_words = crate::ticket::reports::words(lang);
    opened_detail.extend(c.by_channel.iter().map(|(s, x)| {
        let name = s
            .parse::<ReportChannel>()
            .map_or(s.as_str(), |ch| report_words.channel_name(ch));
        format!("{name} {}", n(*x))
    }));
    let step_words = pick(
        lang,
        &crate::ticket::procedure::EN,
        &crate::ticket::procedure::ZH,
    );
    let s = &k.satisfaction;
    let cb = &s.callbacks;
    let w = &k.warned_in_advance;
    let mut warned_detail = of(w.warned, w.failures, t.failures);
    if let Some(lead) = w.lead_time.p50_hours {
        warned_detail.push_str(&format!(" · {} {}", t.lead_time, hours(clock, lead)));
    }
    let mut steps_detail = of(k.steps.overdue, k.steps.with_clock, t.step_clocks);
    for st in &k.steps_by_name {
        steps_detail.push_str(&format!(
            " · {} {}/{}",
            crate::ticket::procedure::step_title(step_words, &st.step),
            n(st.overdue),
            n(st.with_clock)
        ));
    }
    vec![
        Figure {
            id: "opened",
            name: t.opened,
            definition: t.opened_def,
            value: (c.opened > 0).then(|| n(c.opened)),
            detail: opened_detail.join(" · "),
            empty: t.no_tickets,
        },
        Figure {
            id: "response",
            name: t.response,
            definition: t.response_def,
            value: response,
            detail: response_detail,
            empty: t.no_responses,
        },
        Figure {
            id: "resolution",
            name: t.resolution,
            definition: t.resolution_def,
            value: resolution,
            detail: resolution_detail,
            empty: t.no_resolutions,
        },
        Figure {
            id: "first-time-fix",
            name: t.first_time_fix,
            definition: t.first_time_fix_def,
            value: pct(clock, k.first_time_fix.rate),
            detail: of(
                k.first_time_fix.fixed_first_time,
                k.first_time_fix.repairs,
                t.repairs,
            ),
            empty: t.no_repairs,
        },
        Figure {
            id: "satisfaction",
            name: t.satisfaction,
            definition: t.satisfaction_def,
            value: s.mean_score.map(|m| format!("{} / 5", clock.number(m, 2))),
            detail: format!(
                "{} · {} {}",
                of(s.dissatisfied, s.answers, t.answers),
                t.dissatisfied,
                pct(clock, s.dissatisfied_share).unwrap_or_default()
            ),
            empty: t.no_answers,
        },
        Figure {
            id: "callbacks",
            name: t.callbacks,
            definition: t.callbacks_def,
            value: (cb.opened > 0).then(|| {
                format!(
                    "{} {}",
                    pct(clock, cb.on_time_share).unwrap_or_else(|| "–".into()),
                    t.on_time
                )
            }),
            detail: format!(
                "{} {} · {} {} · {} {}",
                t.on_time,
                n(cb.on_time),
                t.overdue,
                n(cb.overdue),
                t.pending,
                n(cb.pending)
            ),
            empty: t.no_callbacks,
        },
        Figure {
            id: "repeat",
            name: t.repeat,
            definition: t.repeat_def,
            value: pct(clock, k.repeat_complaints.rate),
            detail: of(
                k.repeat_complaints.repeats,
                k.repeat_complaints.customer_reports,
                t.customer_reports,
            ),
            empty: t.no_reports,
        },
        Figure {
            id: "warned",
            name: t.warned,
            definition: t.warned_def,
            value: pct(clock, w.share),
            detail: warned_detail,
            empty: t.no_failures,
        },
        Figure {
            id: "false-alarms",
            name: t.false_alarms,
            definition: t.false_alarms_def,
            value: pct(clock, k.false_alarms.share),
            detail: of(
                k.false_alarms.false_alarms,
                k.false_alarms.ended_proactive,
                t.ended_predictions,
            ),
            empty: t.no_ended_predictions,
        },
        Figure {
            id: "steps",
            name: t.steps,
            definition: t.steps_def,
            value: pct(clock, k.steps.share),
            detail: steps_detail,
            empty: t.no_steps,
        },
    ]
}

/// One line of a chart: its name and the figure of a bucket.
type LineOf<'a> = (&'static str, &'a dyn Fn(&Kpis) -> Option<f64>);

/// A chart of `lines`, each a name and the figure of a bucket; `None` when no bucket
/// has any. Shares are drawn from 0 to 100%, hours from 0 to a round top.
fn chart(
    report: &KpiReport,
    lines: Vec<LineOf<'_>>,
    share: bool,
    clock: &Clock,
) -> Option<LineChart> {
    let (first, last) = (report.series.first()?, report.series.last()?);
    let value = |v: f64| {
        if share {
            clock.percent(v, 1)
        } else {
            hours(clock, v)
        }
    };
    let series: Vec<(String, Points)> = lines
        .into_iter()
        .map(|(name, f)| {
            let pts = report
                .series
                .iter()
                .filter_map(|p| {
                    f(&p.kpis).map(|v| {
                        let at = p.start.millis();
                        (
                            at,
                            v,
                            format!("{} {}: {}", clock.date(p.start), name, value(v)),
                        )
                    })
                })
                .collect();
            (name.to_owned(), pts)
        })
        .collect();
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(f64::NAN, f64::max);
    if max.is_nan() {
        return None;
    }
    let y_values = if share {
        vec![0.0, 0.25, 0.5, 0.75, 1.0]
    } else {
        let mut v = ticks(0.0, max.max(1.0), 4);
        let step = v.get(1).copied().unwrap_or(1.0) - v.first().copied().unwrap_or(0.0);
        while v.last().is_some_and(|l| *l < max) {
            let next = v.last().copied().unwrap_or(0.0) + step;
            v.push(next);
        }
        v
    };
    let y_label = |v: f64| {
        if share {
            clock.percent(v, 0)
        } else {
            clock.number(v, if v.fract() == 0.0 { 0 } else { 1 })
        }
    };
    Some(LineChart::scaled(
        series,
        (first.start.millis(), last.start.millis()),
        &y_values,
        y_label,
        None,
        |ms| clock.date(Timestamp(ms)),
    ))
}

fn charts(report: &KpiReport, clock: &Clock, t: &'static Texts) -> Vec<ChartView> {
    vec![
        ChartView {
            id: "times",
            title: t.times_chart,
            chart: chart(
                report,
                vec![
                    (t.response_p50, &|k: &Kpis| k.response.p50_hours),
                    (t.response_p90, &|k: &Kpis| k.response.p90_hours),
                    (t.resolution_p50, &|k: &Kpis| k.resolution.p50_hours),
                    (t.resolution_p90, &|k: &Kpis| k.resolution.p90_hours),
                ],
                false,
                clock,
            ),
        },
        ChartView {
            id: "quality",
            title: t.quality_chart,
            chart: chart(
                report,
                vec![
                    (t.first_time_fix, &|k: &Kpis| k.first_time_fix.rate),
                    (t.satisfied, &|k: &Kpis| {
                        k.satisfaction.dissatisfied_share.map(|d| 1.0 - d)
                    }),
                ],
                true,
                clock,
            ),
        },
        ChartView {
            id: "prediction",
            title: t.prediction_chart,
            chart: chart(
                report,
                vec![
                    (t.warned, &|k: &Kpis| k.warned_in_advance.share),
                    (t.false_alarms, &|k: &Kpis| k.false_alarms.share),
                ],
                true,
                clock,
            ),
        },
    ]
}

fn rows(report: &KpiReport, clock: &Clock) -> Vec<GroupRow> {
    let dash = || "–".to_owned();
    let p = |s: Option<f64>| pct(clock, s).unwrap_or_else(dash);
    let h = |x: Option<f64>| x.map_or_else(dash, |v| hours(clock, v));
    report
        .groups
        .iter()
        .map(|g| {
            let k = &g.kpis;
            GroupRow {
                key: g.key.clone(),
                opened: clock.number(k.counts.opened as f64, 0),
                response: h(k.response.p50_hours),
                resolution: h(k.resolution.p50_hours),
                first_time_fix: p(k.first_time_fix.rate),
                satisfaction: k
                    .satisfaction
                    .mean_score
                    .map_or_else(dash, |m| clock.number(m, 2)),
                repeat: p(k.repeat_complaints.rate),
                warned: p(k.warned_in_advance.share),
                false_alarms: p(k.false_alarms.share),
                steps: p(k.steps.share),
            }
        })
        .collect()
}

/// `GET /console/kpis`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    if api::desk::require(&viewer.principal, Permission::ReadKpis).is_err() {
        return Err(fail(lang)(Error::Forbidden(t.forbidden.into())));
    }
    let form: KpiForm = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|_| fail(lang)(Error::BadRequest(t.bad_choice.into())))?;
    let now = state.api.tickets().now();
    let query = match query_of(&form, now) {
        None => return Err(fail(lang)(Error::BadRequest(t.bad_date.into()))),
        Some(Err(_)) => return Err(fail(lang)(Error::BadRequest(t.bad_choice.into()))),
        Some(Ok(q)) => q,
    };
    let api = state.api.clone();
    let report = blocking(move || Ok(api.tickets().kpis(&query)?))
        .await
        .map_err(fail(lang))?;
    let clock = &viewer.clock;
    let utc = |ts: Timestamp| {
        ts.to_datetime()
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let groupings = vec![
        ("region", t.region),
        ("engineer", t.engineer),
        ("device_type", t.device_type),
        ("priority", t.priority),
        ("source", t.source),
    ];
    Ok(render(&KpisPage {
        chrome: Chrome::new(&viewer, t.title, "/kpis"),
        t,
        from: utc(report.from),
        to: utc(Timestamp(report.to.millis() - Timestamp::DAY_MS)),
        group_by: report.group_by.map_or("", GroupBy::as_str),
        bucket: match report.bucket {
            Bucket::Day => "day",
            Bucket::Week => "week",
        },
        groupings,
        has_tickets: report.overall.counts.opened > 0,
        figures: figures(&report.overall, clock, t, lang),
        charts: charts(&report, clock, t),
        rows: rows(&report, clock),
        chart_w: LineChart::WIDTH,
        chart_h: LineChart::HEIGHT,
    }))
}

#[cfg(test)]
mod tests;
