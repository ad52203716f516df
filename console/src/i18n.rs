//! The console's words in English and Simplified Chinese.
//!
//! Each page's words are a struct of `&'static str` fields with one constant per
//! language, so a word missing in one language is a compile error, not a blank on a
//! page. [`Common`] holds what every page shares (navigation, buttons, errors); a page
//! module keeps its own struct beside its handler. Catalogue text (component and fault
//! titles, remote checks, part names) comes from the profiles
//! (`domain::Profile::*_in(lang)`).

use domain::{Lang, OutcomeKind, Priority, Severity, TicketSource, TicketStatus};

/// Picks the constant of `lang` from a page's two.
pub(crate) fn pick<T>(lang: Lang, en: &'static T, zh: &'static T) -> &'static T {
    match lang {
        Lang::En => en,
        Lang::Zh => zh,
    }
}

/// What every page shares.
#[derive(Debug)]
pub(crate) struct Common {
    pub(crate) product: &'static str,
    pub(crate) nav_queue: &'static str,
    pub(crate) nav_my_day: &'static str,
    pub(crate) nav_fleet: &'static str,
    pub(crate) nav_models: &'static str,
    pub(crate) nav_report: &'static str,
    pub(crate) nav_engineers: &'static str,
    pub(crate) nav_alerts: &'static str,
    pub(crate) nav_kpis: &'static str,
    pub(crate) nav_admin: &'static str,
    pub(crate) nav_account: &'static str,
    pub(crate) sign_out: &'static str,
    pub(crate) signed_in_as: &'static str,
    pub(crate) language: &'static str,
    pub(crate) other_language: &'static str,
    pub(crate) other_language_code: &'static str,
    pub(crate) skip_to_content: &'static str,
    pub(crate) error_title: &'static str,
    pub(crate) error_bad_request: &'static str,
    pub(crate) error_forbidden: &'static str,
    pub(crate) error_not_found: &'static str,
    pub(crate) error_conflict: &'static str,
    pub(crate) error_server: &'static str,
    pub(crate) back_home: &'static str,
    pub(crate) save: &'static str,
    pub(crate) role_admin: &'static str,
    pub(crate) role_planner: &'static str,
    pub(crate) role_engineer: &'static str,
    pub(crate) role_integration: &'static str,
    pub(crate) previous_page: &'static str,
    pub(crate) next_page: &'static str,
    pub(crate) none: &'static str,
    // A ticket's status, priority, source and outcome, and a fault's severity: the
    // same word on every page.
    pub(crate) status_open: &'static str,
    pub(crate) status_acknowledged: &'static str,
    pub(crate) status_scheduled: &'static str,
    pub(crate) status_in_progress: &'static str,
    pub(crate) status_resolved: &'static str,
    pub(crate) status_closed: &'static str,
    pub(crate) status_dismissed: &'static str,
    pub(crate) priority_urgent: &'static str,
    pub(crate) priority_important: &'static str,
    pub(crate) priority_normal: &'static str,
    pub(crate) source_proactive: &'static str,
    pub(crate) source_reactive: &'static str,
    pub(crate) outcome_confirmed: &'static str,
    pub(crate) outcome_no_fault: &'static str,
    pub(crate) outcome_declined: &'static str,
    pub(crate) outcome_not_reached: &'static str,
    pub(crate) severity_info: &'static str,
    pub(crate) severity_minor: &'static str,
    pub(crate) severity_major: &'static str,
    pub(crate) severity_critical: &'static str,
}

pub(crate) const COMMON_EN: Common = Common {
    product: "fixahead service console",
    nav_queue: "Queue",
    nav_my_day: "My day",
    nav_fleet: "Fleet",
    nav_models: "Models",
    nav_report: "Report",
    nav_engineers: "Engineers",
    nav_alerts: "Alerts",
    nav_kpis: "KPIs",
    nav_admin: "Admin",
    nav_account: "Account",
    sign_out: "Sign out",
    signed_in_as: "Signed in as",
    language: "Language",
    other_language: "中文",
    other_language_code: "zh",
    skip_to_content: "Skip to content",
    error_title: "Something went wrong",
    error_bad_request: "The request could not be used",
    error_forbidden: "You may not do this",
    error_not_found: "Not found",
    error_conflict: "Not possible now",
    error_server: "The server could not answer. The error is in its log; try again in a moment.",
    back_home: "Back to the queue",
    save: "Save",
    role_admin: "Admin",
    role_planner: "Planner",
    role_engineer: "Engineer",
    role_integration: "Integration",
    previous_page: "Previous",
    next_page: "Next",
    none: "none",
    status_open: "Open",
    status_acknowledged: "Acknowledged",
    status_scheduled: "Scheduled",
    status_in_progress: "In progress",
    status_resolved: "Resolved",
    status_closed: "Closed",
    status_dismissed: "Dismissed",
    priority_urgent: "Urgent",
    priority_important: "Important",
    priority_normal: "Normal",
    source_proactive: "Predicted",
    source_reactive: "Fault code",
    outcome_confirmed: "Confirmed failure",
    outcome_no_fault: "No fault found",
    outcome_declined: "Customer declined",
    outcome_not_reached: "Customer not reached",
    severity_info: "Info",
    severity_minor: "Minor",
    severity_major: "Major",
    severity_critical: "Critical",
};

pub(crate) const COMMON_ZH: Common = Common {
    product: "fixahead 服务控制台",
    nav_queue: "工单队列",
    nav_my_day: "我的日程",
    nav_fleet: "设备群",
    nav_models: "模型",
    nav_report: "受理报修",
    nav_engineers: "工程师",
    nav_alerts: "提醒",
    nav_kpis: "服务指标",
    nav_admin: "管理",
    nav_account: "账户",
    sign_out: "退出登录",
    signed_in_as: "当前用户",
    language: "语言",
    other_language: "English",
    other_language_code: "en",
    skip_to_content: "跳到正文",
    error_title: "出错了",
    error_bad_request: "请求无法处理",
    error_forbidden: "您没有执行此操作的权限",
    error_not_found: "未找到",
    error_conflict: "当前无法执行",
    error_server: "服务器暂时无法响应，错误已记录在日志中，请稍后重试。",
    back_home: "返回工单队列",
    save: "保存",
    role_admin: "管理员",
    role_planner: "服务计划员",
    role_engineer: "工程师",
    role_integration: "系统集成",
    previous_page: "上一页",
    next_page: "下一页",
    none: "无",
    status_open: "待响应",
    status_acknowledged: "已确认",
    status_scheduled: "已派工",
    status_in_progress: "处理中",
    status_resolved: "已解决",
    status_closed: "已关闭",
    status_dismissed: "已驳回",
    priority_urgent: "紧急",
    priority_important: "重要",
    priority_normal: "一般",
    source_proactive: "模型预测",
    source_reactive: "故障码报警",
    outcome_confirmed: "确认故障",
    outcome_no_fault: "未发现故障",
    outcome_declined: "客户拒绝服务",
    outcome_not_reached: "未联系上客户",
    severity_info: "提示",
    severity_minor: "轻微",
    severity_major: "严重",
    severity_critical: "致命",
};

/// The badge classes of a ticket's status (console.css: `.badge.status-*`).
pub(crate) fn status_class(s: TicketStatus) -> &'static str {
    match s {
        TicketStatus::Open => "status status-open",
        TicketStatus::Acknowledged => "status status-acknowledged",
        TicketStatus::Scheduled => "status status-scheduled",
        TicketStatus::InProgress => "status status-in_progress",
        TicketStatus::Resolved => "status status-resolved",
        TicketStatus::Closed => "status status-closed",
        TicketStatus::Dismissed => "status status-dismissed",
    }
}

/// The badge class of a priority (console.css: `.badge.urgent` ...).
pub(crate) fn priority_class(p: Priority) -> &'static str {
    p.as_str()
}

/// The badge class of a fault severity.
pub(crate) fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "urgent",
        Severity::Major => "important",
        Severity::Minor | Severity::Info => "normal",
    }
}

/// The common words of `lang`.
pub(crate) fn common(lang: Lang) -> &'static Common {
    pick(lang, &COMMON_EN, &COMMON_ZH)
}

impl Common {
    /// A ticket status's name.
    pub(crate) fn status(&self, s: TicketStatus) -> &'static str {
        match s {
            TicketStatus::Open => self.status_open,
            TicketStatus::Acknowledged => self.status_acknowledged,
            TicketStatus::Scheduled => self.status_scheduled,
            TicketStatus::InProgress => self.status_in_progress,
            TicketStatus::Resolved => self.status_resolved,
            TicketStatus::Closed => self.status_closed,
            TicketStatus::Dismissed => self.status_dismissed,
        }
    }

    /// A priority's name.
    pub(crate) fn priority(&self, p: Priority) -> &'static str {
        match p {
            Priority::Urgent => self.priority_urgent,
            Priority::Important => self.priority_important,
            Priority::Normal => self.priority_normal,
        }
    }

    /// Where a ticket came from, in a word or two.
    pub(crate) fn source(&self, s: TicketSource) -> &'static str {
        match s {
            TicketSource::Proactive => self.source_proactive,
            TicketSource::Reactive => self.source_reactive,
        }
    }

    /// What a visit found.
    pub(crate) fn outcome(&self, k: OutcomeKind) -> &'static str {
        match k {
            OutcomeKind::ConfirmedFailure => self.outcome_confirmed,
            OutcomeKind::NoFaultFound => self.outcome_no_fault,
            OutcomeKind::CustomerDeclined => self.outcome_declined,
            OutcomeKind::NotReached => self.outcome_not_reached,
        }
    }

    /// A fault's severity.
    pub(crate) fn severity(&self, s: Severity) -> &'static str {
        match s {
            Severity::Info => self.severity_info,
            Severity::Minor => self.severity_minor,
            Severity::Major => self.severity_major,
            Severity::Critical => self.severity_critical,
        }
    }

    /// A role's name.
    pub(crate) fn role(&self, role: domain::Role) -> &'static str {
        match role {
            domain::Role::Admin => self.role_admin,
            domain::Role::Planner => self.role_planner,
            domain::Role::Engineer => self.role_engineer,
            domain::Role::Integration => self.role_integration,
        }
    }
}
