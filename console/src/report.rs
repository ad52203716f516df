//! The call centre's form, `/console/report` (planners and admins; docs/intake.md):
//! a customer's report by device id, serial or customer reference, answered with the
//! ticket it opened or joined, what is planned and the pre-judgement. It calls
//! `api::intake::report`, the same code as `POST /api/v1/tickets`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use domain::{ProblemCategory, ReportChannel};
use serde::Deserialize;

use api::http::auth::Permission;
use api::intake::ReportRequest;
use api::tickets::{ReportResult, ReportResultKind};

use crate::csrf::CsrfForm;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{error_page, render_with, Chrome, PageResult};
use crate::session::Viewer;
use crate::sign_in::audit;
use crate::state::ConsoleState;
use crate::ticket::reports::{words, PrejudgementView, Words};
use crate::{Error, PREFIX};

/// The page's own words (the channel and category names and the pre-judgement's are
/// shared with the ticket page: [`crate::ticket::reports::Words`]).
pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    find_by: &'static str,
    by_device_id: &'static str,
    by_serial: &'static str,
    by_customer: &'static str,
    reference: &'static str,
    device_type: &'static str,
    any_type: &'static str,
    device_type_help: &'static str,
    component: &'static str,
    component_help: &'static str,
    words_help: &'static str,
    submit: &'static str,
    opened: &'static str,
    joined: &'static str,
    open_ticket: &'static str,
    planned: &'static str,
    status: &'static str,
    priority: &'static str,
    engineer: &'static str,
    unassigned: &'static str,
    window: &'static str,
    no_window: &'static str,
    respond_by: &'static str,
    resolve_by: &'static str,
    another: &'static str,
    refused: &'static str,
}

const EN: Texts = Texts {
    title: "Report a customer's problem",
    intro: "One record per problem: a report about a device that already has an active ticket for the same problem joins it.",
    find_by: "Find the device by",
    by_device_id: "Device id",
    by_serial: "Serial number",
    by_customer: "Customer reference",
    reference: "Id, serial or reference",
    device_type: "Device type",
    any_type: "any",
    device_type_help: "Chooses among a customer's devices.",
    component: "Component (if known)",
    component_help: "Leave empty: fixahead judges it from the device's data.",
    words_help: "The customer's own words, up to 2000 characters.",
    submit: "Take the report",
    opened: "A new ticket was opened.",
    joined: "The report joined the device's active ticket.",
    open_ticket: "Open ticket",
    planned: "What is planned",
    status: "Status",
    priority: "Priority",
    engineer: "Engineer",
    unassigned: "not assigned yet",
    window: "Visit window",
    no_window: "not scheduled yet",
    respond_by: "Respond by",
    resolve_by: "Resolve by",
    another: "Take another report",
    refused: "The report was not taken:",
};

const ZH: Texts = Texts {
    title: "受理客户报修",
    intro: "一个问题只对应一条记录：若设备已有同一问题的处理中工单，报修将并入该工单。",
    find_by: "查找设备的方式",
    by_device_id: "设备编号",
    by_serial: "序列号",
    by_customer: "客户编号",
    reference: "编号、序列号或客户编号",
    device_type: "设备类型",
    any_type: "不限",
    device_type_help: "客户有多台设备时用于区分。",
    component: "部件（如已知）",
    component_help: "留空时，fixahead 将根据设备数据进行预判。",
    words_help: "客户的原话，最多 2000 字。",
    submit: "提交报修",
    opened: "已创建新工单。",
    joined: "报修已并入该设备处理中的工单。",
    open_ticket: "打开工单",
    planned: "处理安排",
    status: "状态",
    priority: "优先级",
    engineer: "工程师",
    unassigned: "尚未派工",
    window: "上门时间",
    no_window: "尚未预约",
    respond_by: "响应期限",
    resolve_by: "解决期限",
    another: "受理下一条报修",
    refused: "报修未被受理：",
};

/// An option of a select.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// What the form holds (kept after a refusal, so nothing the customer said is lost).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReportForm {
    #[serde(default)]
    find: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    device_type: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    words: String,
    #[serde(default)]
    component: String,
}

/// The answer's facts.
struct Answer {
    opened: bool,
    href: String,
    number: String,
    device_id: String,
    component: String,
    status: &'static str,
    priority: &'static str,
    priority_class: &'static str,
    engineer: Option<String>,
    window: Option<String>,
    respond_by: String,
    resolve_by: Option<String>,
    pj: PrejudgementView,
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    chrome: Chrome,
    t: &'static Texts,
    w: &'static Words,
    finds: Vec<Choice>,
    types: Vec<Choice>,
    channels: Vec<Choice>,
    categories: Vec<Choice>,
    form: ReportForm,
    error: Option<String>,
    answer: Option<Answer>,
}

fn page(
    state: &ConsoleState,
    viewer: &Viewer,
    form: ReportForm,
    error: Option<String>,
    answer: Option<Answer>,
) -> ReportPage {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let w = words(lang);
    let find = if form.find.is_empty() {
        "device_id"
    } else {
        form.find.as_str()
    };
    let finds = [
        ("device_id", t.by_device_id),
        ("serial", t.by_serial),
        ("customer_ref", t.by_customer),
    ]
    .into_iter()
    .map(|(value, label)| Choice {
        value: value.to_owned(),
        label: label.to_owned(),
        selected: value == find,
    })
    .collect();
    let mut types = vec![Choice {
        value: String::new(),
        label: t.any_type.to_owned(),
        selected: form.device_type.is_empty(),
    }];
    for p in state.api.profiles().iter() {
        types.push(Choice {
            value: p.device_type().to_owned(),
            label: p.title_in(lang).to_owned(),
            selected: form.device_type == p.device_type(),
        });
    }
    let channel = if form.channel.is_empty() {
        "phone"
    } else {
        form.channel.as_str()
    };
    let channels = ReportChannel::PEOPLE
        .into_iter()
        .map(|c| Choice {
            value: c.as_str().to_owned(),
            label: w.channel_name(c).to_owned(),
            selected: c.as_str() == channel,
        })
        .collect();
    let categories = ProblemCategory::ALL
        .into_iter()
        .map(|c| Choice {
            value: c.as_str().to_owned(),
            label: w.category_name(c).to_owned(),
            selected: c.as_str() == form.category,
        })
        .collect();
    ReportPage {
        chrome: Chrome::new(viewer, t.title, "/report"),
        t,
        w,
        finds,
        types,
        channels,
        categories,
        form,
        error,
        answer,
    }
}

/// Refuses a person whose role may not take reports.
fn check(viewer: &Viewer) -> Result<(), Error> {
    if viewer.principal.may(Permission::ReportProblems) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "taking customer reports is for planners and admins".into(),
        ))
    }
}

/// `GET /console/report`.
pub(crate) async fn form(State(state): State<ConsoleState>, viewer: Viewer) -> PageResult {
    check(&viewer).map_err(|e| error_page(e, viewer.lang()))?;
    Ok(render_with(
        StatusCode::OK,
        &page(&state, &viewer, ReportForm::default(), None, None),
    ))
}

fn request(form: &ReportForm) -> Result<ReportRequest, String> {
    let some = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    let reference = some(&form.reference);
    let (mut device_id, mut serial, mut customer_ref) = (None, None, None);
    match form.find.as_str() {
        "serial" => serial = reference,
        "customer_ref" => customer_ref = reference,
        _ => device_id = reference,
    }
    let channel: ReportChannel = form.channel.parse().map_err(|e| format!("{e}"))?;
    let category: ProblemCategory = form.category.parse().map_err(|e| format!("{e}"))?;
    Ok(ReportRequest {
        device_id,
        serial,
        customer_ref,
        device_type: some(&form.device_type),
        channel,
        category,
        words: form.words.clone(),
        component: some(&form.component),
    })
}

fn answer(state: &ConsoleState, viewer: &Viewer, r: &ReportResult) -> Answer {
    let lang = viewer.lang();
    let common = crate::i18n::common(lang);
    let clock = &viewer.clock;
    let profile = state.api.profiles().get(&r.ticket.device_type).cloned();
    let component = profile
        .as_deref()
        .and_then(|p| p.component(&r.ticket.component))
        .map_or_else(
            || r.ticket.component.clone(),
            |c| c.title_in(lang).to_owned(),
        );
    let p = &r.planned;
    Answer {
        opened: r.result == ReportResultKind::Opened,
        href: format!("{PREFIX}/tickets/{}", r.ticket.id),
        number: r.ticket.number.clone(),
        device_id: r.ticket.device_id.to_string(),
        component,
        status: common.status(p.status),
        priority: common.priority(p.priority),
        priority_class: crate::i18n::priority_class(p.priority),
        engineer: p.engineer.clone(),
        window: match (p.window_start, p.window_end) {
            (Some(a), Some(b)) => Some(format!("{} – {}", clock.at(a), clock.at(b))),
            (Some(a), None) => Some(clock.at(a)),
            _ => None,
        },
        respond_by: clock.at_zone(p.respond_by),
        resolve_by: p.resolve_by.map(|t| clock.at_zone(t)),
        pj: PrejudgementView::new(&r.prejudgement, profile.as_deref(), clock),
    }
}

/// `POST /console/report`: takes the report; answers with the ticket, or the form
/// again with the refusal and everything typed kept.
pub(crate) async fn submit(
    State(state): State<ConsoleState>,
    CsrfForm { viewer, form }: CsrfForm<ReportForm>,
) -> PageResult {
    let lang = viewer.lang();
    check(&viewer).map_err(|e| error_page(e, lang))?;
    let t = pick(lang, &EN, &ZH);
    let req = match request(&form) {
        Ok(r) => r,
        Err(m) => {
            let p = page(
                &state,
                &viewer,
                form,
                Some(format!("{} {m}", t.refused)),
                None,
            );
            return Ok(render_with(StatusCode::UNPROCESSABLE_ENTITY, &p));
        }
    };
    let result = {
        let api = state.api.clone();
        let who = viewer.principal.clone();
        blocking(move || Ok(api::intake::report(&api, &who, req)?)).await
    };
    match result {
        Ok(r) => {
            let path = format!("{PREFIX}/report");
            let summary = format!(
                "customer report {} ticket {} ({}, {})",
                if r.result == ReportResultKind::Opened {
                    "opened"
                } else {
                    "joined"
                },
                r.ticket.number,
                r.ticket.device_id,
                r.ticket.component
            );
            audit(
                &state,
                viewer.principal.audit_record("POST", &path, 200, summary),
            )
            .await;
            let a = answer(&state, &viewer, &r);
            let p = page(&state, &viewer, ReportForm::default(), None, Some(a));
            Ok(render_with(StatusCode::OK, &p))
        }
        Err(e) if e.status().is_client_error() => {
            let status = e.status();
            let message = e.public_message().unwrap_or_default();
            let p = page(
                &state,
                &viewer,
                form,
                Some(format!("{} {message}", t.refused)),
                None,
            );
            Ok(render_with(status, &p).into_response())
        }
        Err(e) => Err(error_page(e, lang)),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::testing::{Fixture, HOSTILE};

    fn fields<'a>(reference: &'a str, words: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("find", "device_id"),
            ("reference", reference),
            ("device_type", ""),
            ("channel", "phone"),
            ("category", "down"),
            ("words", words),
            ("component", ""),
        ]
    }

    #[tokio::test]
    async fn planners_take_reports_engineers_do_not() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let page = f.get("/console/", Some(&planner)).await;
        assert!(page.body.contains("href=\"/console/report\""), "nav link");
        let form = f.get("/console/report", Some(&planner)).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("name=\"words\""));
        assert!(form.body.contains("Noise or vibration"));
        let engineer = f.sign_in("engineer");
        let page = f.get("/console/my-day", Some(&engineer)).await;
        assert!(!page.body.contains("href=\"/console/report\""));
        let refused = f.get("/console/report", Some(&engineer)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let posted = f
            .post("/console/report", &engineer, &fields("wm-1", "x"))
            .await;
        assert_eq!(posted.status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn a_report_joins_the_active_ticket_and_shows_it_escaped_on_the_ticket_page() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let id = f.ticket_id("wm-1", "drain_pump");
        let mut form = fields("wm-1", HOSTILE);
        form[6] = ("component", "drain_pump");
        let a = f.post("/console/report", &planner, &form).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(
            a.body
                .contains("The report joined the device&#39;s active ticket."),
            "{}",
            a.body
        );
        assert!(a.body.contains(&format!("href=\"/console/tickets/{id}\"")));
        assert!(a.body.contains("Pre-judgement from the device&#39;s data"));
        let page = f
            .get(&format!("/console/tickets/{id}"), Some(&planner))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Customer reports"), "{}", page.body);
        assert!(!page.body.contains("<script>alert"), "escaped");
        assert!(
            page.body.contains("script&gt;alert") || page.body.contains("script&#62;alert"),
            "{}",
            page.body
        );
    }

    #[tokio::test]
    async fn a_refused_report_keeps_what_was_typed_in_both_languages() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let a = f
            .post(
                "/console/report",
                &planner,
                &fields("wm-404", "The drum is full of water"),
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert!(a.body.contains("The report was not taken:"));
        assert!(a.body.contains("The drum is full of water"), "kept");
        let mut bad = fields("wm-1", "x");
        bad[4] = ("category", "broken");
        let a = f.post("/console/report", &planner, &bad).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
        f.post(
            "/console/account/language",
            &planner,
            &[("lang", "zh"), ("back", "/console/report")],
        )
        .await;
        let zh = f.get("/console/report", Some(&planner)).await;
        assert!(zh.body.contains("受理客户报修"), "{}", zh.body);
        assert!(zh.body.contains("异响或振动"));
    }
}
