//! The queue's notice of tickets automatic dispatch escalated because no engineer
//! fits (`templates/queue/escalated.html`, docs/dispatch.md): shown to people who may
//! assign, with a link to each ticket's candidates.

use api::http::auth::Permission;
use domain::Lang;

use crate::i18n::pick;

/// Escalated tickets listed at most.
const SHOWN: usize = 10;

pub(crate) struct Words {
    pub(crate) title: &'static str,
    pub(crate) explain: &'static str,
    pub(crate) to: &'static str,
}

const EN: Words = Words {
    title: "Escalated: no engineer fits",
    explain: "Automatic dispatch found no engineer with the skills, time and capacity these tickets need. Choose one from the ticket's candidates (an override is possible).",
    to: "escalated to",
};

const ZH: Words = Words {
    title: "已升级：无合适工程师",
    explain: "自动派单未找到技能、时间和产能都满足这些工单的工程师。请在工单的候选工程师中选择（可超出产能指派）。",
    to: "升级至",
};

pub(crate) struct Item {
    pub(crate) href: String,
    pub(crate) number: String,
    pub(crate) what: String,
    pub(crate) to: String,
}

pub(crate) struct Banner {
    pub(crate) w: &'static Words,
    pub(crate) items: Vec<Item>,
}

/// The banner for `who` (blocking): `None` for people who may not assign, without a
/// dispatcher, or with nothing escalated.
pub(crate) fn load(
    api: &api::AppState,
    who: &api::Principal,
    lang: Lang,
) -> crate::Result<Option<Banner>> {
    if api.dispatcher().is_none() || !who.may(Permission::AssignTickets) {
        return Ok(None);
    }
    let tickets = api.tickets();
    let mut items = Vec::new();
    for id in tickets.escalated_by_dispatch(SHOWN)? {
        if let Some(t) = tickets.get(id)? {
            items.push(Item {
                href: format!("{}/tickets/{}#candidates", crate::PREFIX, t.id),
                number: t.number,
                what: format!("{} · {} · {}", t.device_id, t.component, t.priority),
                to: t.escalated_to.unwrap_or_default(),
            });
        }
    }
    Ok((!items.is_empty()).then(|| Banner {
        w: pick(lang, &EN, &ZH),
        items,
    }))
}

#[cfg(test)]
mod tests {
    use crate::testing::Fixture;

    #[tokio::test]
    async fn escalated_tickets_are_announced_to_planners_not_engineers() {
        let f = Fixture::new();
        let planner = f.sign_in("planner");
        let a = f.get("/console/", Some(&planner)).await;
        assert!(!a.body.contains("h-escalated"));
        // `engineer` has no mechanical skill: nobody fits a drum bearing.
        let ctx = api::DiagnosisContext {
            profile: domain::ProfileSet::builtin().get("washer").cloned(),
            ..api::DiagnosisContext::default()
        };
        let id = f
            .tickets
            .record_predictions(
                &[crate::testing::prediction(
                    "wm-9",
                    "motor_bearing",
                    0.95,
                    true,
                )],
                &ctx,
            )
            .unwrap()[0]
            .ticket_id;
        let done = f.api.dispatcher().unwrap().dispatch_pending().unwrap();
        assert!(
            done.iter()
                .any(|d| d.ticket_id == id && d.decision == "escalated"),
            "{done:?}"
        );
        let a = f.get("/console/", Some(&planner)).await;
        assert!(a.body.contains("h-escalated"), "{}", a.body);
        assert!(a
            .body
            .contains(&format!("/console/tickets/{id}#candidates")));
        assert!(a.body.contains("after-sales-manager"));
        let engineer = f.sign_in("engineer");
        let a = f.get("/console/", Some(&engineer)).await;
        assert!(!a.body.contains("h-escalated"));
    }
}
