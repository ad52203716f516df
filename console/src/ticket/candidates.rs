//! The ticket page's candidates panel (`templates/ticket/candidates.html`): the
//! engineers ranked for the ticket with the reasons (`api::dispatch`), and per
//! candidate an "assign" form posting the ticket's `schedule` action with the
//! candidate, their earliest visit window and region; a candidate whose day is full
//! gets an override checkbox. Shown to viewers who may assign, on active tickets,
//! when the server keeps an engineers' directory.

use api::dispatch::{Candidate, Ranking};
use domain::{Lang, Ticket, Timestamp};

use super::forms::local_input;
use crate::clock::Clock;
use crate::i18n::pick;

/// The panel's words.
pub(crate) struct Words {
    pub(crate) title: &'static str,
    pub(crate) intro: &'static str,
    pub(crate) needed_by: &'static str,
    pub(crate) mode: &'static str,
    pub(crate) mode_auto: &'static str,
    pub(crate) mode_propose: &'static str,
    pub(crate) decision: &'static str,
    pub(crate) undecided: &'static str,
    pub(crate) assigned: &'static str,
    pub(crate) proposed: &'static str,
    pub(crate) escalated: &'static str,
    pub(crate) manual: &'static str,
    pub(crate) none: &'static str,
    pub(crate) engineer: &'static str,
    pub(crate) score: &'static str,
    pub(crate) fits: &'static str,
    pub(crate) fits_yes: &'static str,
    pub(crate) fits_no: &'static str,
    pub(crate) available: &'static str,
    pub(crate) never: &'static str,
    pub(crate) skills: &'static str,
    pub(crate) lacks: &'static str,
    pub(crate) level: &'static str,
    pub(crate) distance: &'static str,
    pub(crate) same_region: &'static str,
    pub(crate) other_region: &'static str,
    pub(crate) load: &'static str,
    pub(crate) assign: &'static str,
    pub(crate) override_capacity: &'static str,
    pub(crate) service_text: &'static str,
}

pub(crate) const EN: Words = Words {
    title: "Candidates",
    intro: "Every engineer ranked for this ticket: skills, distance, today's load and the earliest visit. Assigning books the visit window shown.",
    needed_by: "Needed by",
    mode: "Dispatch rule",
    mode_auto: "assign automatically",
    mode_propose: "propose to a planner",
    decision: "Dispatch",
    undecided: "not yet considered",
    assigned: "assigned automatically",
    proposed: "proposed",
    escalated: "escalated: nobody fits",
    manual: "assigned by a person",
    none: "No engineers are registered yet (Engineers page).",
    engineer: "Engineer",
    score: "Score",
    fits: "Fits",
    fits_yes: "fits",
    fits_no: "does not fit",
    available: "Earliest visit",
    never: "no free slot",
    skills: "Skills",
    lacks: "lacks",
    level: "level",
    distance: "Distance",
    same_region: "same region",
    other_region: "other region",
    load: "Today",
    assign: "Assign",
    override_capacity: "Over capacity: assign anyway",
    service_text: "Reasons are written by fixahead in English.",
};

pub(crate) const ZH: Words = Words {
    title: "候选工程师",
    intro:
        "为此工单排序的全部工程师：技能、距离、今日负荷和最早上门时间。指派将预约所示的上门时段。",
    needed_by: "最晚到达",
    mode: "派单规则",
    mode_auto: "自动指派",
    mode_propose: "推荐给调度员",
    decision: "派单结果",
    undecided: "尚未处理",
    assigned: "已自动指派",
    proposed: "已推荐",
    escalated: "已升级：无合适工程师",
    manual: "已由人工指派",
    none: "尚未登记工程师（见工程师页面）。",
    engineer: "工程师",
    score: "得分",
    fits: "是否合适",
    fits_yes: "合适",
    fits_no: "不合适",
    available: "最早上门",
    never: "没有空闲时段",
    skills: "技能",
    lacks: "缺少",
    level: "等级",
    distance: "距离",
    same_region: "同一区域",
    other_region: "其他区域",
    load: "今日",
    assign: "指派",
    override_capacity: "超出产能：仍然指派",
    service_text: "原因由 fixahead 以英文给出。",
};

/// One candidate as the panel shows it.
pub(crate) struct Row {
    pub(crate) login: String,
    pub(crate) name: String,
    pub(crate) score: String,
    pub(crate) fits: bool,
    pub(crate) available: String,
    pub(crate) skills: String,
    pub(crate) lacks: String,
    pub(crate) level: u8,
    pub(crate) distance: String,
    pub(crate) load: String,
    pub(crate) full: bool,
    pub(crate) why_not: String,
    /// The assign form's window, as `datetime-local` values in the viewer's zone.
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) region: String,
}

/// The panel.
pub(crate) struct Panel {
    pub(crate) w: &'static Words,
    pub(crate) needed_by: String,
    pub(crate) mode: &'static str,
    pub(crate) decision: &'static str,
    pub(crate) escalated: bool,
    pub(crate) rows: Vec<Row>,
}

/// The panel of ticket `t` from its ranking, in the viewer's language and zone;
/// `regions` gives each engineer's home region, `visit_ms` the window length.
pub(crate) fn build(
    t: &Ticket,
    r: &Ranking,
    regions: &[(String, Option<String>)],
    visit_ms: i64,
    clock: &Clock,
    lang: Lang,
) -> Panel {
    let w = pick(lang, &EN, &ZH);
    let decision = match r.dispatch.as_deref() {
        None => w.undecided,
        Some("assigned") => w.assigned,
        Some("proposed") => w.proposed,
        Some("escalated") => w.escalated,
        Some(_) => w.manual,
    };
    let rows = r
        .candidates
        .iter()
        .map(|c| row(t, c, regions, visit_ms, clock, w))
        .collect();
    Panel {
        w,
        needed_by: clock.at(r.needed_by),
        mode: if r.mode == "auto" {
            w.mode_auto
        } else {
            w.mode_propose
        },
        decision,
        escalated: r.dispatch.as_deref() == Some("escalated"),
        rows,
    }
}

fn row(
    t: &Ticket,
    c: &Candidate,
    regions: &[(String, Option<String>)],
    visit_ms: i64,
    clock: &Clock,
    w: &Words,
) -> Row {
    let r = &c.reasons;
    let (start, end) = c.available_at.map_or((String::new(), String::new()), |a| {
        (
            local_input(a, clock.tz),
            local_input(Timestamp(a.millis() + visit_ms), clock.tz),
        )
    });
    let region = regions
        .iter()
        .find(|(l, _)| *l == c.engineer)
        .and_then(|(_, r)| r.clone())
        .or_else(|| t.assignment.region.clone())
        .unwrap_or_default();
    Row {
        login: c.engineer.clone(),
        name: c.display_name.clone(),
        score: clock.number(c.score, 1),
        fits: c.fits,
        available: c
            .available_at
            .map_or_else(|| w.never.to_owned(), |a| clock.at(a)),
        skills: r.skills.join(", "),
        lacks: r.missing_skills.join(", "),
        level: r.skill_level,
        distance: match r.distance_km {
            Some(km) => format!("{} km", clock.number(km, 1)),
            None if r.same_region => w.same_region.to_owned(),
            None => w.other_region.to_owned(),
        },
        load: format!("{} / {}", r.load, r.capacity),
        full: r.capacity == 0 || r.load >= r.capacity,
        why_not: c.why_not.clone().unwrap_or_default(),
        start,
        end,
        region,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use domain::Timestamp;

    use crate::testing::Fixture;

    #[tokio::test]
    async fn planners_see_the_ranking_and_assign_from_it_within_capacity() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let id = f.ticket_id("wm-1", "drain_pump");
        let a = f
            .get(&format!("/console/tickets/{id}"), Some(&planner))
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.body.contains("id=\"h-candidates\""), "{}", a.body);
        assert!(a.body.contains("name=\"engineer\" value=\"engineer\""));

        // `engineer` takes one visit a day: book tomorrow for another ticket ...
        let mut profile = {
            let e = f.users.engineer("engineer").unwrap().unwrap();
            store::engineers::EngineerProfile {
                skills: e.skills,
                region: e.region,
                lat: e.lat,
                lon: e.lon,
                working_hours: e.working_hours,
                daily_capacity: e.daily_capacity,
                supervisor: e.supervisor,
            }
        };
        profile.daily_capacity = 1;
        f.users
            .put_engineer(
                "engineer",
                &profile,
                &store::engineers::NewEngineer {
                    display_name: "",
                    lang: domain::Lang::En,
                    time_zone: "UTC",
                },
                None,
            )
            .unwrap();
        let day = 86_400_000;
        let start = Timestamp(f.now().0 + day);
        let other = f.ticket_id("wm-1", "heater");
        f.assign_with(
            other,
            "engineer",
            Some((start, Timestamp(start.0 + 7_200_000))),
            None,
        );
        // ... then the same day for this one is refused, and done with the override.
        let window = [
            ("engineer", "engineer"),
            (
                "window_start",
                &*crate::ticket::forms::local_input(start, chrono_tz::Asia::Shanghai),
            ),
            (
                "window_end",
                &*crate::ticket::forms::local_input(
                    Timestamp(start.0 + 3_600_000),
                    chrono_tz::Asia::Shanghai,
                ),
            ),
        ];
        let path = format!("/console/tickets/{id}/schedule");
        let a = f.post(&path, &planner, &window).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
        assert!(a.body.contains("daily capacity is 1"), "{}", a.body);
        let mut forced = window.to_vec();
        forced.push(("override_capacity", "on"));
        let a = f.post(&path, &planner, &forced).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
        let t = f.tickets.get(id).unwrap().unwrap();
        assert_eq!(t.assignment.engineer.as_deref(), Some("engineer"));
        let log = t.log.iter().rev().find(|l| l.action == "assigned").unwrap();
        assert!(log.note.contains("capacity override"), "{}", log.note);

        // Engineers see no ranking, even on their own ticket.
        let engineer = f.sign_in("engineer");
        let a = f
            .get(&format!("/console/tickets/{id}"), Some(&engineer))
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(!a.body.contains("h-candidates"));
        // And still only their own tickets.
        let theirs_not = f.ticket_id("wm-2", "drain_pump");
        let a = f
            .get(&format!("/console/tickets/{theirs_not}"), Some(&engineer))
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
    }
}
