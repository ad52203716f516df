//! `/console/engineers` (planners and admins, permission `manage_engineers`): the
//! engineers' directory with skills, region, today's load against capacity and
//! supervisor, and a form that registers an engineer (creating the account; the
//! generated password is shown once, in the answer) or edits one (`?edit=LOGIN`
//! fills it in). The same `api::desk` calls and checks as
//! `PUT /api/v1/engineers/{login}` (docs/dispatch.md).

use std::collections::BTreeMap;

use api::http::auth::Permission;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use store::engineers::{EngineerProfile, WorkingHours, DAYS};

use crate::csrf::CsrfForm;
use crate::error::blocking;
use crate::i18n::pick;
use crate::page::{fail, render_with, Chrome, PageResult};
use crate::session::Viewer;
use crate::sign_in::audit;
use crate::state::ConsoleState;
use crate::{Error, PREFIX};

pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    login: &'static str,
    name: &'static str,
    skills: &'static str,
    skills_help: &'static str,
    region: &'static str,
    lat: &'static str,
    lon: &'static str,
    hours: &'static str,
    start: &'static str,
    end: &'static str,
    days: &'static str,
    capacity: &'static str,
    capacity_help: &'static str,
    load: &'static str,
    active: &'static str,
    supervisor: &'static str,
    supervisor_help: &'static str,
    time_zone: &'static str,
    time_zone_help: &'static str,
    edit: &'static str,
    add: &'static str,
    editing: &'static str,
    save: &'static str,
    disabled: &'static str,
    none: &'static str,
    nobody: &'static str,
    created: &'static str,
    created_explain: &'static str,
    done_saved: &'static str,
    forbidden: &'static str,
    bad_number: &'static str,
    bad_skills: &'static str,
    no_directory: &'static str,
}

const EN: Texts = Texts {
    title: "Engineers",
    intro: "Dispatch ranks these engineers for every ticket by skill, distance, load and working hours (docs/dispatch.md).",
    login: "Login",
    name: "Name",
    skills: "Skills",
    skills_help: "Skill and level 1-5, comma-separated, e.g. electrical:3, plumbing:2. Known skills:",
    region: "Region",
    lat: "Latitude",
    lon: "Longitude",
    hours: "Working hours",
    start: "From",
    end: "To",
    days: "Days",
    capacity: "Daily capacity",
    capacity_help: "Visits a day; 0 keeps them out of dispatch.",
    load: "Today",
    active: "active",
    supervisor: "Supervisor",
    supervisor_help: "A login or a role name such as after-sales-manager.",
    time_zone: "Time zone",
    time_zone_help: "Working hours are in this zone (IANA name, e.g. Asia/Shanghai).",
    edit: "Edit",
    add: "Register an engineer",
    editing: "Edit engineer",
    save: "Save",
    disabled: "disabled",
    none: "none",
    nobody: "No engineers are registered yet.",
    created: "Engineer account created. Password (shown only now):",
    created_explain: "Give it to the engineer; they sign in with their login and can change it on their account page.",
    done_saved: "Saved.",
    forbidden: "Only planners and admins manage engineers.",
    bad_number: "Latitude, longitude and capacity must be numbers.",
    bad_skills: "Write skills as name:level pairs separated by commas, e.g. electrical:3.",
    no_directory: "This server keeps no engineers' directory.",
};

const ZH: Texts = Texts {
    title: "工程师",
    intro: "派单按技能、距离、负荷和工作时间为每张工单对这些工程师排序（见 docs/dispatch.md）。",
    login: "用户名",
    name: "姓名",
    skills: "技能",
    skills_help: "技能及等级 1-5，用逗号分隔，例如 electrical:3, plumbing:2。已知技能：",
    region: "区域",
    lat: "纬度",
    lon: "经度",
    hours: "工作时间",
    start: "自",
    end: "至",
    days: "工作日",
    capacity: "每日产能",
    capacity_help: "每天上门次数；0 表示不参与派单。",
    load: "今日",
    active: "处理中",
    supervisor: "主管",
    supervisor_help: "用户名或角色名，例如 after-sales-manager。",
    time_zone: "时区",
    time_zone_help: "工作时间按此时区计算（IANA 名称，例如 Asia/Shanghai）。",
    edit: "编辑",
    add: "登记工程师",
    editing: "编辑工程师",
    save: "保存",
    disabled: "已停用",
    none: "无",
    nobody: "尚未登记工程师。",
    created: "工程师账户已创建。密码（仅显示这一次）：",
    created_explain: "请交给工程师本人；其用用户名登录后可在账户页面修改密码。",
    done_saved: "已保存。",
    forbidden: "只有调度员和管理员可以管理工程师。",
    bad_number: "纬度、经度和产能必须是数字。",
    bad_skills: "技能请写成“名称:等级”，用逗号分隔，例如 electrical:3。",
    no_directory: "此服务器没有工程师名录。",
};

struct Row {
    login: String,
    name: String,
    disabled: bool,
    skills: String,
    region: String,
    hours: String,
    load: String,
    full: bool,
    active: u32,
    supervisor: String,
}

/// The form's values, as typed or as stored.
#[derive(Default)]
struct Form {
    editing: bool,
    login: String,
    name: String,
    skills: String,
    region: String,
    lat: String,
    lon: String,
    start: String,
    end: String,
    days: Vec<String>,
    capacity: String,
    supervisor: String,
    time_zone: String,
}

impl Form {
    fn has_day(&self, d: &str) -> bool {
        self.days.iter().any(|x| x == d)
    }
}

#[derive(Template)]
#[template(path = "engineers.html")]
struct Page {
    chrome: Chrome,
    t: &'static Texts,
    rows: Vec<Row>,
    form: Form,
    known: String,
    days: [&'static str; 7],
    notice: Option<&'static str>,
    password: Option<String>,
    error: Option<String>,
}

fn skills_text(skills: &BTreeMap<String, u8>) -> String {
    skills
        .iter()
        .map(|(k, l)| format!("{k}:{l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders the page with `form` and the directory.
async fn show(
    state: &ConsoleState,
    viewer: &Viewer,
    status: StatusCode,
    form: Form,
    notice: Option<&'static str>,
    password: Option<String>,
    error: Option<String>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let engineers = {
        let api = state.api.clone();
        let who = viewer.principal.clone();
        blocking(move || Ok(api::desk::engineers(&api, &who)?))
            .await
            .map_err(fail(lang))?
    };
    let rows = engineers
        .into_iter()
        .map(|v| {
            let e = v.engineer;
            Row {
                skills: skills_text(&e.skills),
                region: e.region.unwrap_or_default(),
                hours: format!(
                    "{}–{} {} ({})",
                    e.working_hours.start,
                    e.working_hours.end,
                    e.working_hours.days.join(","),
                    e.time_zone
                ),
                load: format!("{} / {}", v.load.today, v.load.capacity),
                full: v.load.today >= v.load.capacity,
                active: v.load.active,
                supervisor: e.supervisor.unwrap_or_default(),
                login: e.login,
                name: e.display_name,
                disabled: e.disabled,
            }
        })
        .collect();
    let mut chrome = Chrome::new(viewer, t.title, "/engineers");
    chrome.here = format!("{PREFIX}/engineers");
    Ok(render_with(
        status,
        &Page {
            chrome,
            t,
            rows,
            form,
            known: api::desk::known_skills(&state.api).join(", "),
            days: DAYS,
            notice,
            password,
            error,
        },
    ))
}

fn blank_form() -> Form {
    let h = WorkingHours::default();
    Form {
        start: h.start,
        end: h.end,
        days: h.days,
        capacity: "6".into(),
        ..Form::default()
    }
}

/// `GET /console/engineers` (`?edit=LOGIN` fills the form; `?done=saved` after an
/// edit).
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    if !viewer.principal.may(Permission::ManageEngineers) {
        return Err(fail(lang)(Error::Forbidden(t.forbidden.into())));
    }
    if state.api.dispatcher().is_none() {
        return Err(fail(lang)(Error::NotFound(t.no_directory.into())));
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let notice = (get("done").as_deref() == Some("saved")).then_some(t.done_saved);
    let mut form = blank_form();
    if let Some(login) = get("edit") {
        let found = {
            let api = state.api.clone();
            let who = viewer.principal.clone();
            blocking(move || Ok(api::desk::engineer(&api, &who, &login)?))
                .await
                .map_err(fail(lang))?
        };
        let e = found.engineer;
        form = Form {
            editing: true,
            skills: skills_text(&e.skills),
            region: e.region.unwrap_or_default(),
            lat: e.lat.map(|x| x.to_string()).unwrap_or_default(),
            lon: e.lon.map(|x| x.to_string()).unwrap_or_default(),
            start: e.working_hours.start,
            end: e.working_hours.end,
            days: e.working_hours.days,
            capacity: e.daily_capacity.to_string(),
            supervisor: e.supervisor.unwrap_or_default(),
            time_zone: e.time_zone,
            login: e.login,
            name: e.display_name,
        };
    }
    show(&state, &viewer, StatusCode::OK, form, notice, None, None).await
}

/// Reads the form into the desk's input; a message in the viewer's words when a
/// field cannot even be read (the desk checks the rest).
fn parse(form: &Form, t: &Texts) -> Result<api::desk::EngineerInput, String> {
    let mut skills = BTreeMap::new();
    for part in form
        .skills
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (name, level) = part.split_once(':').ok_or(t.bad_skills)?;
        let level: u8 = level.trim().parse().map_err(|_| t.bad_skills.to_owned())?;
        skills.insert(name.trim().to_owned(), level);
    }
    let number = |s: &str| -> Result<Option<f64>, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| t.bad_number.to_owned())
    };
    let capacity = form
        .capacity
        .trim()
        .parse::<u32>()
        .map_err(|_| t.bad_number.to_owned())?;
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(api::desk::EngineerInput {
        display_name: text(&form.name),
        time_zone: text(&form.time_zone),
        profile: EngineerProfile {
            skills,
            region: text(&form.region),
            lat: number(&form.lat)?,
            lon: number(&form.lon)?,
            working_hours: WorkingHours {
                start: form.start.trim().to_owned(),
                end: form.end.trim().to_owned(),
                days: form.days.clone(),
            },
            daily_capacity: capacity,
            supervisor: text(&form.supervisor),
        },
    })
}

/// `POST /console/engineers`: registers or updates the engineer of the form.
pub(crate) async fn save(
    State(state): State<ConsoleState>,
    CsrfForm { viewer, form }: CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let typed = Form {
        editing: get("editing") == "1",
        login: get("login").trim().to_owned(),
        name: get("display_name"),
        skills: get("skills"),
        region: get("region"),
        lat: get("lat"),
        lon: get("lon"),
        start: get("start"),
        end: get("end"),
        days: form
            .iter()
            .filter(|(n, _)| n == "days")
            .map(|(_, v)| v.clone())
            .collect(),
        capacity: get("daily_capacity"),
        supervisor: get("supervisor"),
        time_zone: get("time_zone"),
    };
    let path = format!("{PREFIX}/engineers");
    if !viewer.principal.may(Permission::ManageEngineers) {
        let e = Error::Forbidden(t.forbidden.into());
        audit(
            &state,
            viewer
                .principal
                .audit_record("POST", &path, 403, format!("refused: {e}")),
        )
        .await;
        return Err(fail(lang)(e));
    }
    let input = match parse(&typed, t) {
        Ok(i) => i,
        Err(m) => {
            return show(
                &state,
                &viewer,
                StatusCode::BAD_REQUEST,
                typed,
                None,
                None,
                Some(m),
            )
            .await
        }
    };
    let result = {
        let api = state.api.clone();
        let who = viewer.principal.clone();
        let login = typed.login.clone();
        blocking(move || Ok(api::desk::put_engineer(&api, &who, &login, input)?)).await
    };
    match result {
        Ok(put) => {
            let created = put.password.is_some();
            let summary = format!(
                "{} engineer {}",
                if created { "registered" } else { "updated" },
                put.engineer.login
            );
            audit(
                &state,
                viewer.principal.audit_record("POST", &path, 200, summary),
            )
            .await;
            if created {
                show(
                    &state,
                    &viewer,
                    StatusCode::OK,
                    blank_form(),
                    None,
                    put.password,
                    None,
                )
                .await
            } else {
                Ok(Redirect::to(&format!("{PREFIX}/engineers?done=saved")).into_response())
            }
        }
        Err(e) => {
            let status = e.status();
            if status.is_server_error() {
                return Err(fail(lang)(e));
            }
            show(
                &state,
                &viewer,
                status,
                typed,
                None,
                None,
                Some(e.to_string()),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::testing::Fixture;

    #[tokio::test]
    async fn planners_list_register_and_edit_engineers_and_engineers_may_not() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let a = f.get("/console/engineers", Some(&planner)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert!(a.body.contains("plumbing:3"), "{}", a.body);
        assert!(a.body.contains("after-sales-manager"));
        let engineer = f.sign_in("engineer");
        let a = f.get("/console/engineers", Some(&engineer)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        let a = f
            .post(
                "/console/engineers",
                &engineer,
                &[("login", "x"), ("daily_capacity", "1")],
            )
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert!(f.users.engineer("x").unwrap().is_none());

        let fields = [
            ("login", "li.wei"),
            ("display_name", "李伟"),
            ("skills", "electrical:4, mechanical:2"),
            ("region", "east"),
            ("lat", "31.3"),
            ("lon", "121.6"),
            ("start", "09:00"),
            ("end", "17:00"),
            ("days", "mon"),
            ("days", "sat"),
            ("daily_capacity", "5"),
            ("supervisor", "zhang.min"),
            ("time_zone", "Asia/Shanghai"),
        ];
        let a = f.post("/console/engineers", &planner, &fields).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let e = f.users.engineer("li.wei").unwrap().unwrap();
        assert_eq!(e.skills["electrical"], 4);
        assert_eq!(e.working_hours.days, ["mon", "sat"]);
        assert_eq!(e.display_name, "李伟");
        let password = f.users.by_login("li.wei").unwrap().unwrap();
        assert_eq!(password.role, domain::Role::Engineer);
        assert!(
            a.body.contains("class=\"secret\""),
            "the password is shown once"
        );

        let a = f
            .get("/console/engineers?edit=li.wei", Some(&planner))
            .await;
        assert!(
            a.body.contains("value=\"electrical:4, mechanical:2\""),
            "{}",
            a.body
        );
        let mut edit = fields.to_vec();
        edit.retain(|(k, _)| *k != "daily_capacity");
        edit.push(("daily_capacity", "2"));
        edit.push(("editing", "1"));
        let a = f.post("/console/engineers", &planner, &edit).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        assert_eq!(
            f.users.engineer("li.wei").unwrap().unwrap().daily_capacity,
            2
        );

        // Unknown skills and unreadable numbers are refused with the reason.
        let mut bad = fields.to_vec();
        bad[2] = ("skills", "juggling:3");
        let a = f.post("/console/engineers", &planner, &bad).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
        assert!(a.body.contains("juggling"));
        bad[2] = ("skills", "electrical");
        let a = f.post("/console/engineers", &planner, &bad).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        // A planner's login is not turned into an engineer.
        let mut other = fields.to_vec();
        other[0] = ("login", "planner");
        let a = f.post("/console/engineers", &planner, &other).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    }

    #[tokio::test]
    async fn the_page_speaks_chinese() {
        let f = Fixture::new();
        f.users
            .add(&store::users::NewUser {
                login: "planner-zh",
                display_name: "",
                role: domain::Role::Planner,
                lang: domain::Lang::Zh,
                time_zone: "Asia/Shanghai",
            })
            .unwrap();
        let zh = f.sign_in("planner-zh");
        let a = f.get("/console/engineers", Some(&zh)).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.body.contains("登记工程师") && a.body.contains("每日产能"));
    }
}
