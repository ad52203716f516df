//! The queue, the console's home page (`/console/`): the tickets that need attention
//! first, with counts, filters in the URL, paging and SLA marks (docs/console.md,
//! "Queue").
//!
//! * **Order**: the SLA deadline that matters now (respond by while `open`, else
//!   resolve by), then priority, then risk; read from the store's covering index
//!   (`store::tickets::Tables::queue_page`), 50 a page.
//! * **Filters** (all GET parameters, so a view can be bookmarked): `status` (`active`
//!   by default, `all`, or one status), `priority`, `source`, `device_type`,
//!   `component`, `region`, `batch`, `engineer` (a login, or `-` for not assigned),
//!   `since` (a date in the person's time zone) and `page`. A value that does not fit
//!   is a 400 page saying which and what would.
//! * **Counts** per status and per priority: each counts the tickets matching every
//!   other filter (the status counts ignore the status filter, the priority counts the
//!   priority filter), over the active statuses plus any the status filter selects.
//! * **SLA marks**: a ticket past its deadline (or marked breached) is *breached*; one
//!   in the last quarter of its clock, and with at most 2 hours left, is *due soon*
//!   ([`sla_mark`]).
//! * **Engineers** see only the tickets assigned to them, as in every console page.
//! * **Live**: for a role that may follow events, the results carry `data-live`;
//!   `console.js` then listens to `/console/events` ([`crate::live`]) and re-reads the
//!   page's results when a ticket opens or changes.

use askama::Template;
use axum::extract::{RawQuery, State};
use chrono::TimeZone as _;
use domain::{Lang, Priority, ProfileSet, TicketSource, TicketStatus, Timestamp};
use store::tickets::{Assignee, QueueCell, QueueQuery, QueueTicket};

use crate::clock::Clock;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::{Error, PREFIX};

/// Tickets per page.
pub(crate) const PAGE_SIZE: usize = 50;
/// The highest page number accepted.
const MAX_PAGE: usize = 10_000;
/// Longest filter value accepted.
const MAX_VALUE_CHARS: usize = 100;
/// The `engineer` value that selects tickets without an engineer.
pub(crate) const UNASSIGNED: &str = "-";
/// "Due soon" starts at this share of the SLA clock left...
const NEAR_SHARE: f64 = 0.25;
/// ... and never earlier than this much time left.
const NEAR_CAP_MS: i64 = 2 * 3_600_000;

pub(crate) struct Texts {
    pub(crate) title: &'static str,
    pub(crate) engineer_note: &'static str,
    pub(crate) filters: &'static str,
    pub(crate) f_status: &'static str,
    pub(crate) f_priority: &'static str,
    pub(crate) f_source: &'static str,
    pub(crate) f_device_type: &'static str,
    pub(crate) f_component: &'static str,
    pub(crate) f_region: &'static str,
    pub(crate) f_batch: &'static str,
    pub(crate) f_engineer: &'static str,
    pub(crate) f_since: &'static str,
    pub(crate) any: &'static str,
    pub(crate) active: &'static str,
    pub(crate) all_statuses: &'static str,
    pub(crate) unassigned: &'static str,
    pub(crate) apply: &'static str,
    pub(crate) clear: &'static str,
    pub(crate) refresh: &'static str,
    pub(crate) live_on: &'static str,
    pub(crate) live_off: &'static str,
    pub(crate) by_status: &'static str,
    pub(crate) by_priority: &'static str,
    /// `{from}`, `{to}`, `{total}`.
    pub(crate) showing: &'static str,
    /// `{page}`, `{pages}`.
    pub(crate) page_of: &'static str,
    pub(crate) col_due: &'static str,
    pub(crate) col_ticket: &'static str,
    pub(crate) col_device: &'static str,
    pub(crate) col_component: &'static str,
    pub(crate) col_priority: &'static str,
    pub(crate) col_risk: &'static str,
    pub(crate) col_source: &'static str,
    pub(crate) col_where: &'static str,
    pub(crate) col_engineer: &'static str,
    pub(crate) col_opened: &'static str,
    pub(crate) respond_by: &'static str,
    pub(crate) resolve_by: &'static str,
    /// `{}`: a span.
    pub(crate) left: &'static str,
    /// `{}`: a span.
    pub(crate) overdue: &'static str,
    pub(crate) near: &'static str,
    pub(crate) breached: &'static str,
    pub(crate) near_rule: &'static str,
    pub(crate) no_tickets: &'static str,
    pub(crate) no_tickets_engineer: &'static str,
    pub(crate) page_empty: &'static str,
    pub(crate) first_page: &'static str,
    /// `{}`: an engineer.
    pub(crate) their_day: &'static str,
    pub(crate) batch: &'static str,
    /// `{what}`, `{value}`, `{expected}`.
    pub(crate) bad_value: &'static str,
    /// `{value}`, `{expected}`.
    pub(crate) unknown_param: &'static str,
    /// `{value}`.
    pub(crate) repeated_param: &'static str,
    pub(crate) unreadable_query: &'static str,
    pub(crate) expected_text: &'static str,
    pub(crate) expected_date: &'static str,
    pub(crate) expected_page: &'static str,
    pub(crate) expected_engineer: &'static str,
    pub(crate) not_your_tickets: &'static str,
}

const EN: Texts = Texts {
    title: "Queue",
    engineer_note: "The tickets assigned to you, the most pressing first.",
    filters: "Filters",
    f_status: "Status",
    f_priority: "Priority",
    f_source: "Source",
    f_device_type: "Device type",
    f_component: "Component",
    f_region: "Region",
    f_batch: "Batch",
    f_engineer: "Engineer",
    f_since: "Opened since",
    any: "Any",
    active: "Active (not resolved yet)",
    all_statuses: "All statuses",
    unassigned: "Not assigned",
    apply: "Apply",
    clear: "Clear filters",
    refresh: "Refresh",
    live_on: "Live",
    live_off: "Reconnecting…",
    by_status: "By status",
    by_priority: "By priority",
    showing: "{from}–{to} of {total} tickets",
    page_of: "Page {page} of {pages}",
    col_due: "SLA due",
    col_ticket: "Ticket",
    col_device: "Device",
    col_component: "Component",
    col_priority: "Priority",
    col_risk: "Risk",
    col_source: "Source",
    col_where: "Region · batch",
    col_engineer: "Engineer · window",
    col_opened: "Opened",
    respond_by: "Respond by",
    resolve_by: "Resolve by",
    left: "{} left",
    overdue: "overdue by {}",
    near: "Due soon",
    breached: "Breached",
    near_rule: "Due soon: in the last quarter of its SLA clock, with 2 hours or less left. \
                Breached: past its deadline.",
    no_tickets: "No tickets match these filters.",
    no_tickets_engineer: "No active tickets are assigned to you.",
    page_empty: "This page is past the last ticket.",
    first_page: "Go to the first page",
    their_day: "See {}'s day",
    batch: "batch",
    bad_value: "The filter “{what}” cannot be “{value}”. Expected: {expected}.",
    unknown_param: "The address has an unknown parameter “{value}”. Known: {expected}.",
    repeated_param: "The parameter “{value}” is given more than once.",
    unreadable_query: "The address's parameters cannot be read.",
    expected_text: "at most 100 characters, no control characters",
    expected_date: "a date such as 2026-11-24",
    expected_page: "a page number from 1 to 10000",
    expected_engineer: "a login, or - for tickets not assigned",
    not_your_tickets: "Engineers see the tickets assigned to them, not another engineer's.",
};

const ZH: Texts = Texts {
    title: "工单队列",
    engineer_note: "派给您的工单，最紧迫的排在前面。",
    filters: "筛选",
    f_status: "状态",
    f_priority: "优先级",
    f_source: "来源",
    f_device_type: "设备类型",
    f_component: "部件",
    f_region: "区域",
    f_batch: "生产批次",
    f_engineer: "工程师",
    f_since: "创建日期起",
    any: "全部",
    active: "未结（尚未解决）",
    all_statuses: "全部状态",
    unassigned: "未派工",
    apply: "应用",
    clear: "清除筛选",
    refresh: "刷新",
    live_on: "实时更新中",
    live_off: "正在重新连接…",
    by_status: "按状态",
    by_priority: "按优先级",
    showing: "第 {from}–{to} 张，共 {total} 张工单",
    page_of: "第 {page} 页，共 {pages} 页",
    col_due: "SLA 截止",
    col_ticket: "工单",
    col_device: "设备",
    col_component: "部件",
    col_priority: "优先级",
    col_risk: "风险",
    col_source: "来源",
    col_where: "区域 · 批次",
    col_engineer: "工程师 · 上门时间窗",
    col_opened: "创建时间",
    respond_by: "响应截止",
    resolve_by: "解决截止",
    left: "剩余{}",
    overdue: "已超时{}",
    near: "即将超时",
    breached: "已超时",
    near_rule:
        "即将超时：已进入 SLA 时限的最后四分之一，且剩余不超过 2 小时。已超时：已过截止时间。",
    no_tickets: "没有符合筛选条件的工单。",
    no_tickets_engineer: "目前没有派给您的未结工单。",
    page_empty: "此页已超出最后一张工单。",
    first_page: "回到第一页",
    their_day: "查看{}的日程",
    batch: "批次",
    bad_value: "筛选条件“{what}”的值“{value}”无效。可用的值：{expected}。",
    unknown_param: "地址中有未知参数“{value}”。可用参数：{expected}。",
    repeated_param: "参数“{value}”出现了不止一次。",
    unreadable_query: "无法读取地址中的参数。",
    expected_text: "不超过 100 个字符，且不含控制字符",
    expected_date: "日期，例如 2026-11-24",
    expected_page: "1 到 10000 之间的页码",
    expected_engineer: "工程师用户名，或用 - 表示未派工",
    not_your_tickets: "工程师只能查看派给自己的工单，不能查看其他工程师的工单。",
};

/// The queue's words in `lang`.
pub(crate) fn texts(lang: Lang) -> &'static Texts {
    pick(lang, &EN, &ZH)
}

/// A component's title in `lang` from the profiles (its name when there is none).
pub(crate) fn component_title(
    profiles: &ProfileSet,
    device_type: &str,
    component: &str,
    lang: Lang,
) -> String {
    profiles
        .get(device_type)
        .and_then(|p| p.component(component))
        .map(|c| c.title_in(lang))
        .filter(|t| !t.is_empty())
        .unwrap_or(component)
        .to_owned()
}

/// A device type's title in `lang` (its name when there is none).
fn type_title(profiles: &ProfileSet, device_type: &str, lang: Lang) -> String {
    profiles
        .get(device_type)
        .map(|p| p.title_in(lang))
        .filter(|t| !t.is_empty())
        .unwrap_or(device_type)
        .to_owned()
}

/// How a ticket stands against its SLA clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlaMark {
    /// Not active (resolved, closed, dismissed): no clock runs.
    Ended,
    /// Time enough.
    Ok,
    /// In the last quarter of its clock, with at most 2 hours left.
    Near,
    /// Past its deadline, or marked breached by the SLA sweep.
    Breached,
}

impl SlaMark {
    /// The CSS class of a row or card.
    pub(crate) fn class(self) -> &'static str {
        match self {
            SlaMark::Ended => "sla-ended",
            SlaMark::Ok => "sla-ok",
            SlaMark::Near => "sla-near",
            SlaMark::Breached => "sla-breached",
        }
    }
}

/// The SLA mark of `t` at `now`, and the time left on its current clock (negative
/// when overdue). The clock is the one the queue orders by: respond while `open`,
/// else resolve; its length counts from the ticket's opening. "Due soon" is the last
/// quarter of the clock, capped at the last 2 hours, so that an urgent ticket's
/// 1-hour respond clock warns for its last 15 minutes and a 3-day resolve clock for
/// its last 2 hours, not for a day and a half.
pub(crate) fn sla_mark(t: &QueueTicket, now: Timestamp) -> (SlaMark, i64) {
    let left = t.due.millis().saturating_sub(now.millis());
    if !t.status.is_active() {
        return (SlaMark::Ended, left);
    }
    let flagged = if t.status == TicketStatus::Open {
        t.respond_breached
    } else {
        t.resolve_breached
    };
    if left < 0 || flagged {
        return (SlaMark::Breached, left);
    }
    let clock = t.due.millis().saturating_sub(t.opened_at.millis()).max(0);
    let threshold = ((clock as f64 * NEAR_SHARE) as i64).min(NEAR_CAP_MS);
    if left <= threshold {
        (SlaMark::Near, left)
    } else {
        (SlaMark::Ok, left)
    }
}

/// "2 h 15 min left" / "overdue by 3 h".
pub(crate) fn left_text(t: &Texts, clock: &Clock, left: i64) -> String {
    let span = clock.span(left);
    if left < 0 {
        t.overdue.replace("{}", &span)
    } else {
        t.left.replace("{}", &span)
    }
}

/// The status filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatusFilter {
    Active,
    All,
    One(TicketStatus),
}

impl StatusFilter {
    fn value(self) -> &'static str {
        match self {
            StatusFilter::Active => "active",
            StatusFilter::All => "all",
            StatusFilter::One(s) => s.as_str(),
        }
    }

    fn statuses(self) -> Vec<TicketStatus> {
        match self {
            StatusFilter::Active => TicketStatus::ALL
                .into_iter()
                .filter(|s| s.is_active())
                .collect(),
            StatusFilter::All => Vec::new(),
            StatusFilter::One(s) => vec![s],
        }
    }

    fn selects(self, s: TicketStatus) -> bool {
        match self {
            StatusFilter::Active => s.is_active(),
            StatusFilter::All => true,
            StatusFilter::One(one) => one == s,
        }
    }
}

/// The queue's parameters, as given (for the form and the links) and as a query.
#[derive(Clone, Debug)]
struct Filters {
    status: StatusFilter,
    priority: Option<Priority>,
    source: Option<TicketSource>,
    device_type: Option<String>,
    component: Option<String>,
    region: Option<String>,
    batch: Option<String>,
    engineer: Option<String>,
    since: Option<String>,
    page: usize,
}

const PARAMS: [&str; 10] = [
    "status",
    "priority",
    "source",
    "device_type",
    "component",
    "region",
    "batch",
    "engineer",
    "since",
    "page",
];

/// A filter value that does not fit: the 400's message, in the person's language.
fn bad(t: &Texts, what: &str, value: &str, expected: &str) -> Error {
    let shown: String = value.chars().take(60).collect();
    Error::BadRequest(
        t.bad_value
            .replace("{what}", what)
            .replace("{expected}", expected)
            .replace("{value}", &shown),
    )
}

/// The 400 message of an unreadable query string.
pub(crate) fn unreadable(t: &Texts) -> String {
    t.unreadable_query.to_owned()
}

/// The 400 message of an unknown parameter `key` (`expected`: the known ones).
pub(crate) fn unknown_param(t: &Texts, key: &str, expected: &str) -> String {
    let shown: String = key.chars().take(60).collect();
    t.unknown_param
        .replace("{expected}", expected)
        .replace("{value}", &shown)
}

/// The 400 message of a parameter given twice.
pub(crate) fn repeated_param(t: &Texts, name: &str) -> String {
    t.repeated_param.replace("{value}", name)
}

/// The 400 of an engineer value that cannot be a login or key name.
pub(crate) fn bad_engineer(t: &Texts, value: &str) -> Error {
    bad(t, t.f_engineer, value, t.expected_engineer)
}

/// The 403 message of an engineer asking for another engineer's tickets.
pub(crate) fn not_your_tickets(t: &Texts) -> String {
    t.not_your_tickets.to_owned()
}

/// Which deadline a ticket's SLA time counts to: respond by while `open`, else
/// resolve by.
pub(crate) fn clock_label(t: &Texts, status: TicketStatus) -> &'static str {
    if status == TicketStatus::Open {
        t.respond_by
    } else {
        t.resolve_by
    }
}

/// Checks a free-text filter value.
fn text_value(t: &Texts, what: &str, value: String) -> Result<String, Error> {
    if value.chars().count() > MAX_VALUE_CHARS || value.chars().any(char::is_control) {
        return Err(bad(t, what, &value, t.expected_text));
    }
    Ok(value)
}

impl Filters {
    /// Reads the query string; every value is checked (profiles for types and
    /// components, the person's zone for `since`).
    fn parse(raw: Option<&str>, profiles: &ProfileSet, t: &Texts) -> Result<Self, Error> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| Error::BadRequest(unreadable(t)))?;
        let mut f = Filters {
            status: StatusFilter::Active,
            priority: None,
            source: None,
            device_type: None,
            component: None,
            region: None,
            batch: None,
            engineer: None,
            since: None,
            page: 1,
        };
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            let Some(name) = PARAMS.iter().copied().find(|p| *p == key) else {
                return Err(Error::BadRequest(unknown_param(
                    t,
                    &key,
                    &PARAMS.join(", "),
                )));
            };
            if seen.contains(&name) {
                return Err(Error::BadRequest(repeated_param(t, name)));
            }
            seen.push(name);
            let value = value.trim().to_owned();
            if value.is_empty() {
                continue;
            }
            match name {
                "status" => {
                    f.status = match value.as_str() {
                        "active" => StatusFilter::Active,
                        "all" => StatusFilter::All,
                        other => StatusFilter::One(other.parse().map_err(|_| {
                            bad(
                                t,
                                t.f_status,
                                other,
                                "active, all, open, acknowledged, scheduled, in_progress, \
                                 resolved, closed, dismissed",
                            )
                        })?),
                    }
                }
                "priority" => {
                    f.priority =
                        Some(value.parse().map_err(|_| {
                            bad(t, t.f_priority, &value, "urgent, important, normal")
                        })?)
                }
                "source" => {
                    f.source = Some(match value.as_str() {
                        "proactive" => TicketSource::Proactive,
                        "reactive" => TicketSource::Reactive,
                        _ => return Err(bad(t, t.f_source, &value, "proactive, reactive")),
                    })
                }
                "device_type" => f.device_type = Some(value),
                "component" => f.component = Some(value),
                "region" => f.region = Some(text_value(t, t.f_region, value)?),
                "batch" => f.batch = Some(text_value(t, t.f_batch, value)?),
                "engineer" => {
                    if value.chars().count() > MAX_VALUE_CHARS
                        || value.chars().any(|c| c.is_control() || c.is_whitespace())
                    {
                        return Err(bad_engineer(t, &value));
                    }
                    f.engineer = Some(value)
                }
                "since" => {
                    if chrono::NaiveDate::parse_from_str(&value, "%Y-%m-%d").is_err() {
                        return Err(bad(t, t.f_since, &value, t.expected_date));
                    }
                    f.since = Some(value)
                }
                _ => {
                    f.page = value
                        .parse::<usize>()
                        .ok()
                        .filter(|p| (1..=MAX_PAGE).contains(p))
                        .ok_or_else(|| bad(t, "page", &value, t.expected_page))?
                }
            }
        }
        if let Some(ty) = &f.device_type {
            if profiles.get(ty).is_none() {
                let known: Vec<&str> = profiles.types().collect();
                return Err(bad(t, t.f_device_type, ty, &known.join(", ")));
            }
        }
        if let Some(c) = &f.component {
            let mut known: Vec<&str> = profiles
                .iter()
                .filter(|p| {
                    f.device_type
                        .as_deref()
                        .is_none_or(|ty| p.device_type() == ty)
                })
                .flat_map(|p| p.components().iter().map(|c| c.name.as_str()))
                .collect();
            known.sort_unstable();
            known.dedup();
            if !known.contains(&c.as_str()) {
                return Err(bad(t, t.f_component, c, &known.join(", ")));
            }
        }
        Ok(f)
    }

    /// The store query, for `viewer` (an engineer's own tickets only).
    fn query(&self, clock: &Clock, restricted_to: Option<&str>) -> QueueQuery {
        let assignee = match (restricted_to, self.engineer.as_deref()) {
            (Some(me), _) => Some(Assignee::Engineer(me.to_owned())),
            (None, Some(UNASSIGNED)) => Some(Assignee::Nobody),
            (None, Some(e)) => Some(Assignee::Engineer(e.to_owned())),
            (None, None) => None,
        };
        QueueQuery {
            statuses: self.status.statuses(),
            priority: self.priority,
            source: self.source,
            device_type: self.device_type.clone(),
            component: self.component.clone(),
            region: self.region.clone(),
            batch: self.batch.clone(),
            assignee,
            opened_since: self.since.as_deref().and_then(|d| start_of_day(d, clock)),
        }
    }

    /// The parameters that differ from the defaults, in a fixed order.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.status != StatusFilter::Active {
            out.push(("status", self.status.value().to_owned()));
        }
        let mut add = |k: &'static str, v: Option<&str>| {
            if let Some(v) = v {
                out.push((k, v.to_owned()));
            }
        };
        add("priority", self.priority.map(Priority::as_str));
        add("source", self.source.map(TicketSource::as_str));
        add("device_type", self.device_type.as_deref());
        add("component", self.component.as_deref());
        add("region", self.region.as_deref());
        add("batch", self.batch.as_deref());
        add("engineer", self.engineer.as_deref());
        add("since", self.since.as_deref());
        if self.page > 1 {
            out.push(("page", self.page.to_string()));
        }
        out
    }

    /// The queue's URL with these filters.
    fn href(&self) -> String {
        let pairs = self.pairs();
        if pairs.is_empty() {
            return format!("{PREFIX}/");
        }
        match serde_urlencoded::to_string(&pairs) {
            Ok(q) => format!("{PREFIX}/?{q}"),
            Err(_) => format!("{PREFIX}/"),
        }
    }

    fn with_page(&self, page: usize) -> String {
        Filters {
            page,
            ..self.clone()
        }
        .href()
    }

    fn is_default(&self) -> bool {
        Filters {
            page: 1,
            ..self.clone()
        }
        .pairs()
        .is_empty()
    }
}

/// The start of `date` (`YYYY-MM-DD`) in the person's zone.
fn start_of_day(date: &str, clock: &Clock) -> Option<Timestamp> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let midnight = day.and_hms_opt(0, 0, 0)?;
    clock
        .tz
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| Timestamp(t.timestamp_millis()))
}

/// One option of a filter's select.
#[derive(Debug)]
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choice(value: impl Into<String>, label: impl Into<String>, current: Option<&str>) -> Choice {
    let value = value.into();
    Choice {
        selected: current == Some(value.as_str()),
        label: label.into(),
        value,
    }
}

/// The options of a free-valued filter: the known values, and the current one even
/// when no active ticket has it.
fn text_choices(known: Vec<String>, current: Option<&str>) -> Vec<Choice> {
    let mut values = known;
    if let Some(c) = current {
        if !values.iter().any(|v| v == c) {
            values.insert(0, c.to_owned());
        }
    }
    values
        .into_iter()
        .map(|v| choice(v.clone(), v, current))
        .collect()
}

/// A count in the summary: a link that sets its filter.
#[derive(Debug)]
struct Chip {
    label: &'static str,
    count: String,
    href: String,
    current: bool,
    class: &'static str,
}

/// One row of the table.
#[derive(Debug)]
struct Row {
    id: i64,
    rev: i64,
    number: String,
    ticket_href: String,
    device_id: String,
    device_href: String,
    device_what: String,
    status: &'static str,
    status_class: &'static str,
    component: String,
    priority: &'static str,
    priority_class: &'static str,
    risk: String,
    source: &'static str,
    region: Option<String>,
    batch: Option<String>,
    engineer: Option<String>,
    window: Option<String>,
    clock_label: &'static str,
    due_at: String,
    due_iso: String,
    left: String,
    mark_class: &'static str,
    near: bool,
    breached: bool,
    opened: String,
    opened_iso: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    chrome: Chrome,
    t: &'static Texts,
    engineer_view: bool,
    live: Option<String>,
    here: String,
    clear_href: String,
    filtered: bool,
    status_options: Vec<Choice>,
    priority_options: Vec<Choice>,
    source_options: Vec<Choice>,
    type_options: Vec<Choice>,
    component_options: Vec<Choice>,
    region_options: Vec<Choice>,
    batch_options: Vec<Choice>,
    engineer_options: Vec<Choice>,
    since: String,
    status_chips: Vec<Chip>,
    priority_chips: Vec<Chip>,
    rows: Vec<Row>,
    showing: String,
    page_of: String,
    previous: Option<String>,
    next: Option<String>,
    past_the_end: Option<String>,
    their_day: Option<(String, String)>,
    escalated: Option<escalated::Banner>,
}

/// `GET /console/`: the queue.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    use api::http::auth::Permission;
    let lang = viewer.lang();
    let t = texts(lang);
    viewer
        .require(Permission::ReadTickets)
        .map_err(fail(lang))?;
    let profiles = std::sync::Arc::clone(state.api.profiles());
    let filters = Filters::parse(raw.as_deref(), &profiles, t).map_err(fail(lang))?;
    let me = viewer.principal.name.clone();
    let restricted = viewer.principal.restricted_to_assigned();
    if restricted && filters.engineer.as_deref().is_some_and(|e| e != me) {
        return Err(fail(lang)(Error::Forbidden(not_your_tickets(t))));
    }
    let query = filters.query(&viewer.clock, restricted.then_some(me.as_str()));
    let offset = (filters.page - 1) * PAGE_SIZE;
    let (tickets, users) = (state.api.tickets().clone(), state.users.clone());
    let escalated = {
        let api = state.api.clone();
        let who = viewer.principal.clone();
        blocking(move || escalated::load(&api, &who, lang))
            .await
            .map_err(fail(lang))?
    };
    let (page, cells, choices, accounts, now) = blocking(move || {
        let page = tickets.queue_page(&query, offset, PAGE_SIZE)?;
        let cells = tickets.queue_counts(&query)?;
        let choices = if restricted {
            api::tickets::QueueChoices::default()
        } else {
            tickets.queue_choices()?
        };
        let accounts = if restricted {
            Vec::new()
        } else {
            users.list()?
        };
        Ok((page, cells, choices, accounts, tickets.now()))
    })
    .await
    .map_err(fail(lang))?;

    let clock = &viewer.clock;
    let total: u64 = cells
        .iter()
        .filter(|c| filters.status.selects(c.status))
        .filter(|c| filters.priority.is_none_or(|p| p == c.priority))
        .map(|c| c.count)
        .sum();
    // Engineers by their display name, as the ticket page names them.
    let names: std::collections::HashMap<&str, &str> = accounts
        .iter()
        .filter(|u| !u.display_name.is_empty())
        .map(|u| (u.login.as_str(), u.display_name.as_str()))
        .collect();
    let rows: Vec<Row> = page
        .iter()
        .map(|q| row(q, &profiles, clock, t, now, &names))
        .collect();
    let pages = (total as usize).div_ceil(PAGE_SIZE).max(1);
    let from = offset + 1;
    let to = offset + rows.len();
    let showing = t
        .showing
        .replace("{from}", &clock.number(from.min(to) as f64, 0))
        .replace("{to}", &clock.number(to as f64, 0))
        .replace("{total}", &clock.number(total as f64, 0));
    let page_of = t
        .page_of
        .replace("{page}", &clock.number(filters.page as f64, 0))
        .replace("{pages}", &clock.number(pages as f64, 0));
    let previous = (filters.page > 1).then(|| filters.with_page((filters.page - 1).min(pages)));
    let next = ((offset + PAGE_SIZE) < total as usize).then(|| filters.with_page(filters.page + 1));
    let past_the_end = (rows.is_empty() && filters.page > 1).then(|| filters.with_page(1));

    let status_chips = status_chips(&filters, &cells, lang, clock);
    let priority_chips = priority_chips(&filters, &cells, lang, clock);
    let engineer_options = if restricted {
        Vec::new()
    } else {
        let mut names: Vec<(String, String)> = accounts
            .iter()
            .filter(|u| u.role == domain::Role::Engineer && u.disabled_at.is_none())
            .map(|u| {
                let label = if u.display_name.is_empty() || u.display_name == u.login {
                    u.login.clone()
                } else {
                    format!("{} ({})", u.display_name, u.login)
                };
                (u.login.clone(), label)
            })
            .collect();
        for e in choices.engineers {
            if !names.iter().any(|(login, _)| *login == e) {
                names.push((e.clone(), e));
            }
        }
        let current = filters.engineer.as_deref();
        if let Some(c) = current.filter(|c| *c != UNASSIGNED) {
            if !names.iter().any(|(login, _)| login == c) {
                names.insert(0, (c.to_owned(), c.to_owned()));
            }
        }
        let mut options = vec![
            choice("", t.any, Some(current.unwrap_or(""))),
            choice(UNASSIGNED, t.unassigned, current),
        ];
        options.extend(names.into_iter().map(|(v, l)| choice(v, l, current)));
        options
    };
    let their_day = filters
        .engineer
        .as_deref()
        .filter(|e| !restricted && *e != UNASSIGNED)
        .and_then(|e| {
            serde_urlencoded::to_string([("engineer", e)])
                .ok()
                .map(|q| (format!("{PREFIX}/my-day?{q}"), t.their_day.replace("{}", e)))
        });

    let mut chrome = Chrome::new(&viewer, t.title, "/");
    let here = filters.href();
    chrome.here = here.clone();
    let live = viewer
        .principal
        .may(Permission::ReadEvents)
        .then(|| format!("{PREFIX}/events"));
    Ok(render(&QueuePage {
        chrome,
        t,
        escalated,
        engineer_view: restricted,
        live,
        clear_href: format!("{PREFIX}/"),
        filtered: !filters.is_default(),
        status_options: status_options(&filters, lang, t),
        priority_options: std::iter::once(choice(
            "",
            t.any,
            Some(filters.priority.map_or("", Priority::as_str)),
        ))
        .chain(
            [Priority::Urgent, Priority::Important, Priority::Normal]
                .into_iter()
                .map(|p| {
                    choice(
                        p.as_str(),
                        crate::i18n::common(lang).priority(p),
                        filters.priority.map(Priority::as_str),
                    )
                }),
        )
        .collect(),
        source_options: vec![
            choice(
                "",
                t.any,
                Some(filters.source.map_or("", TicketSource::as_str)),
            ),
            choice(
                "proactive",
                crate::i18n::common(lang).source(TicketSource::Proactive),
                filters.source.map(TicketSource::as_str),
            ),
            choice(
                "reactive",
                crate::i18n::common(lang).source(TicketSource::Reactive),
                filters.source.map(TicketSource::as_str),
            ),
        ],
        type_options: std::iter::once(choice(
            "",
            t.any,
            Some(filters.device_type.as_deref().unwrap_or("")),
        ))
        .chain(profiles.iter().map(|p| {
            choice(
                p.device_type(),
                type_title(&profiles, p.device_type(), lang),
                filters.device_type.as_deref(),
            )
        }))
        .collect(),
        component_options: component_options(&profiles, &filters, lang, t),
        region_options: std::iter::once(choice(
            "",
            t.any,
            Some(filters.region.as_deref().unwrap_or("")),
        ))
        .chain(text_choices(choices.regions, filters.region.as_deref()))
        .collect(),
        batch_options: std::iter::once(choice(
            "",
            t.any,
            Some(filters.batch.as_deref().unwrap_or("")),
        ))
        .chain(text_choices(choices.batches, filters.batch.as_deref()))
        .collect(),
        engineer_options,
        since: filters.since.clone().unwrap_or_default(),
        status_chips,
        priority_chips,
        rows,
        showing,
        page_of,
        previous,
        next,
        past_the_end,
        their_day,
        here,
    }))
}

fn status_options(f: &Filters, lang: Lang, t: &Texts) -> Vec<Choice> {
    let current = Some(f.status.value());
    let mut out = vec![
        choice("active", t.active, current),
        choice("all", t.all_statuses, current),
    ];
    out.extend(
        TicketStatus::ALL
            .into_iter()
            .map(|s| choice(s.as_str(), crate::i18n::common(lang).status(s), current)),
    );
    out
}

fn component_options(profiles: &ProfileSet, f: &Filters, lang: Lang, t: &Texts) -> Vec<Choice> {
    let current = f.component.as_deref();
    let mut out = vec![choice("", t.any, Some(current.unwrap_or("")))];
    let mut seen: Vec<String> = Vec::new();
    for p in profiles.iter() {
        if f.device_type
            .as_deref()
            .is_some_and(|ty| ty != p.device_type())
        {
            continue;
        }
        for c in p.components() {
            if seen.contains(&c.name) {
                continue;
            }
            seen.push(c.name.clone());
            let title = c.title_in(lang);
            let label = if title.is_empty() { &c.name } else { title };
            out.push(choice(c.name.clone(), label, current));
        }
    }
    out
}

fn status_chips(f: &Filters, cells: &[QueueCell], lang: Lang, clock: &Clock) -> Vec<Chip> {
    let mut statuses: Vec<TicketStatus> = TicketStatus::ALL
        .into_iter()
        .filter(|s| s.is_active() || f.status.selects(*s))
        .collect();
    statuses.dedup();
    statuses
        .into_iter()
        .map(|s| {
            let count: u64 = cells
                .iter()
                .filter(|c| c.status == s && f.priority.is_none_or(|p| p == c.priority))
                .map(|c| c.count)
                .sum();
            Chip {
                label: crate::i18n::common(lang).status(s),
                count: clock.number(count as f64, 0),
                href: Filters {
                    status: StatusFilter::One(s),
                    page: 1,
                    ..f.clone()
                }
                .href(),
                current: f.status == StatusFilter::One(s),
                class: "",
            }
        })
        .collect()
}

fn priority_chips(f: &Filters, cells: &[QueueCell], lang: Lang, clock: &Clock) -> Vec<Chip> {
    [Priority::Urgent, Priority::Important, Priority::Normal]
        .into_iter()
        .map(|p| {
            let count: u64 = cells
                .iter()
                .filter(|c| c.priority == p && f.status.selects(c.status))
                .map(|c| c.count)
                .sum();
            Chip {
                label: crate::i18n::common(lang).priority(p),
                count: clock.number(count as f64, 0),
                href: Filters {
                    priority: Some(p),
                    page: 1,
                    ..f.clone()
                }
                .href(),
                current: f.priority == Some(p),
                class: p.as_str(),
            }
        })
        .collect()
}

/// A scheduled window as a person reads it: `2026-12-07 09:00–11:00`, or both ends in
/// full when it spans days.
pub(crate) fn window_text(clock: &Clock, start: Timestamp, end: Timestamp) -> String {
    let (a, b) = (clock.at(start), clock.at(end));
    match (a.split_once(' '), b.split_once(' ')) {
        (Some((day_a, _)), Some((day_b, time_b))) if day_a == day_b => format!("{a}–{time_b}"),
        _ => format!("{a} – {b}"),
    }
}

fn row(
    q: &QueueTicket,
    profiles: &ProfileSet,
    clock: &Clock,
    t: &Texts,
    now: Timestamp,
    names: &std::collections::HashMap<&str, &str>,
) -> Row {
    let lang = clock.lang;
    let (mark, left) = sla_mark(q, now);
    let model = q.device_model.clone().unwrap_or_default();
    let kind = type_title(profiles, &q.device_type, lang);
    Row {
        id: q.id,
        rev: q.updated_at.millis(),
        number: q.number.clone(),
        ticket_href: format!("{PREFIX}/tickets/{}", q.id),
        device_href: format!("{PREFIX}/devices/{}", q.device_id),
        device_id: q.device_id.clone(),
        device_what: if model.is_empty() {
            kind
        } else {
            format!("{model} · {kind}")
        },
        status: crate::i18n::common(lang).status(q.status),
        status_class: crate::i18n::status_class(q.status),
        component: component_title(profiles, &q.device_type, &q.component, lang),
        priority: crate::i18n::common(lang).priority(q.priority),
        priority_class: q.priority.as_str(),
        risk: clock.percent(q.risk, 0),
        source: crate::i18n::common(lang).source(q.source),
        region: q.shown_region().map(str::to_owned),
        batch: q.device_batch.clone(),
        engineer: q
            .engineer
            .as_deref()
            .map(|e| names.get(e).copied().unwrap_or(e).to_owned()),
        window: match (q.window_start, q.window_end) {
            (Some(s), Some(e)) => Some(window_text(clock, s, e)),
            _ => None,
        },
        clock_label: clock_label(t, q.status),
        due_at: clock.at(q.due),
        due_iso: clock.iso(q.due),
        left: if mark == SlaMark::Ended {
            String::new()
        } else {
            left_text(t, clock, left)
        },
        mark_class: mark.class(),
        near: mark == SlaMark::Near,
        breached: mark == SlaMark::Breached,
        opened: clock.relative(q.opened_at, now),
        opened_iso: clock.iso(q.opened_at),
    }
}

mod escalated;
#[cfg(test)]
mod tests;
