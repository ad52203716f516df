//! The ticket page's procedure panel (`ticket_procedure.html`): the step clocks with
//! their limits, time left or overdue (in the viewer's zone) and when each was done or
//! whom its alert went to; the customer's satisfaction with its form (planners and
//! admins, on resolved or closed tickets); and the call-back with its "done" form.
//! The forms post to `/console/tickets/{id}/satisfaction` and `.../callback`, done
//! through `api::desk` like every action of the page.

use api::http::auth::Permission;
use domain::{Lang, StepClock, Ticket, TicketStatus, Timestamp};

use super::forms::{Action, Draft};
use super::texts::fill;
use crate::clock::Clock;
use crate::i18n::pick;

/// The panel's words.
#[derive(Debug)]
pub(crate) struct Words {
    pub(crate) title: &'static str,
    pub(crate) no_steps: &'static str,
    pub(crate) step: &'static str,
    pub(crate) limit: &'static str,
    pub(crate) state: &'static str,
    pub(crate) step_respond: &'static str,
    pub(crate) step_remote_check: &'static str,
    pub(crate) step_schedule: &'static str,
    pub(crate) step_act: &'static str,
    pub(crate) step_finish: &'static str,
    pub(crate) step_confirm: &'static str,
    /// `{}`: when.
    pub(crate) done_at: &'static str,
    /// `{}`: how late.
    pub(crate) done_late: &'static str,
    /// `{}`: the span left.
    pub(crate) left: &'static str,
    /// `{}`: how long overdue.
    pub(crate) overdue: &'static str,
    /// `{}`: whom.
    pub(crate) alerted: &'static str,
    pub(crate) satisfaction: &'static str,
    pub(crate) no_answer: &'static str,
    pub(crate) score: &'static str,
    pub(crate) comment: &'static str,
    pub(crate) comment_optional: &'static str,
    pub(crate) recorded: &'static str,
    pub(crate) record_answer: &'static str,
    pub(crate) replace_answer: &'static str,
    pub(crate) save_answer: &'static str,
    pub(crate) score_help: &'static str,
    pub(crate) callback: &'static str,
    pub(crate) callback_due: &'static str,
    pub(crate) owner: &'static str,
    pub(crate) nobody: &'static str,
    pub(crate) callback_done: &'static str,
    pub(crate) callback_note: &'static str,
    pub(crate) mark_done: &'static str,
}

pub(crate) const EN: Words = Words {
    title: "Procedure steps",
    no_steps: "No step limits apply to this ticket.",
    step: "Step",
    limit: "Limit",
    state: "State",
    step_respond: "Respond",
    step_remote_check: "Remote check",
    step_schedule: "Schedule the visit",
    step_act: "Act on site",
    step_finish: "Finish",
    step_confirm: "Customer confirms",
    done_at: "done {}",
    done_late: "done, {} late",
    left: "{} left",
    overdue: "overdue by {}",
    alerted: "alert sent to {}",
    satisfaction: "Customer satisfaction",
    no_answer: "No answer recorded yet.",
    score: "Score",
    comment: "Comment",
    comment_optional: "Comment (optional)",
    recorded: "Recorded",
    record_answer: "Record the customer's answer",
    replace_answer: "Replace the answer",
    save_answer: "Save the answer",
    score_help: "1 very dissatisfied … 5 very satisfied; 2 or less opens a call-back.",
    callback: "Call-back",
    callback_due: "Due",
    owner: "Owner",
    nobody: "nobody",
    callback_done: "Done",
    callback_note: "What the call found",
    mark_done: "Call-back done",
};

pub(crate) const ZH: Words = Words {
    title: "流程步骤",
    no_steps: "此工单没有步骤时限。",
    step: "步骤",
    limit: "时限",
    state: "状态",
    step_respond: "响应",
    step_remote_check: "远程检测",
    step_schedule: "预约上门",
    step_act: "上门处理",
    step_finish: "完成",
    step_confirm: "客户确认",
    done_at: "已于 {} 完成",
    done_late: "已完成，超时{}",
    left: "剩余{}",
    overdue: "已超时{}",
    alerted: "已提醒 {}",
    satisfaction: "客户满意度",
    no_answer: "尚未记录回访结果。",
    score: "评分",
    comment: "评价",
    comment_optional: "评价（可选）",
    recorded: "记录",
    record_answer: "记录客户的评价",
    replace_answer: "更改评价",
    save_answer: "保存评价",
    score_help: "1 非常不满意 … 5 非常满意；2 分及以下将生成回电任务。",
    callback: "回电",
    callback_due: "截止",
    owner: "负责人",
    nobody: "无",
    callback_done: "已完成",
    callback_note: "回电结果",
    mark_done: "回电已完成",
};

/// A step's name in `lang`.
pub(crate) fn step_title(w: &Words, step: &str) -> String {
    match step {
        "respond" => w.step_respond,
        "remote_check" => w.step_remote_check,
        "schedule" => w.step_schedule,
        "act" => w.step_act,
        "finish" => w.step_finish,
        "confirm" => w.step_confirm,
        other => return other.to_owned(),
    }
    .to_owned()
}

/// One step row.
#[derive(Debug)]
pub(crate) struct StepRow {
    pub(crate) title: String,
    pub(crate) limit: String,
    pub(crate) limit_iso: String,
    pub(crate) state: String,
    /// `ok`, `warn` or `bad`.
    pub(crate) class: &'static str,
    /// "alert sent to ..." when the overdue alert fired.
    pub(crate) alerted: Option<String>,
}

/// How a step stands at `now`, in words and a class.
pub(crate) fn step_state(
    s: &StepClock,
    started: Timestamp,
    now: Timestamp,
    clock: &Clock,
    w: &Words,
) -> (String, &'static str) {
    if let Some(done) = s.done_at {
        let late = done.millis() - s.due.millis();
        return if late > 0 {
            (fill(w.done_late, &clock.span(late)), "bad")
        } else {
            (fill(w.done_at, &clock.at(done)), "ok")
        };
    }
    let left = s.due.millis() - now.millis();
    if left < 0 {
        return (fill(w.overdue, &clock.span(left)), "bad");
    }
    let total = (s.due.millis() - started.millis()).max(1);
    let class = if left * 4 <= total { "warn" } else { "ok" };
    (fill(w.left, &clock.span(left)), class)
}

/// The satisfaction answer as shown.
#[derive(Debug)]
pub(crate) struct AnswerView {
    pub(crate) score: u8,
    pub(crate) comment: String,
    pub(crate) recorded: String,
}

/// The call-back as shown.
#[derive(Debug)]
pub(crate) struct CallbackView {
    pub(crate) due: String,
    pub(crate) state: String,
    pub(crate) class: &'static str,
    pub(crate) owner: String,
    pub(crate) done: Option<String>,
    pub(crate) note: String,
}

/// A score choice of the satisfaction form.
#[derive(Debug)]
pub(crate) struct ScoreChoice {
    pub(crate) value: u8,
    pub(crate) selected: bool,
}

/// The panel.
#[derive(Debug)]
pub(crate) struct Panel {
    pub(crate) w: &'static Words,
    pub(crate) steps: Vec<StepRow>,
    pub(crate) answer: Option<AnswerView>,
    pub(crate) callback: Option<CallbackView>,
    /// The satisfaction form, when the person may record one now.
    pub(crate) answer_form: Option<Vec<ScoreChoice>>,
    pub(crate) comment_draft: String,
    /// Whether the "call-back done" form shows.
    pub(crate) callback_form: bool,
    pub(crate) callback_draft: String,
    /// Whether to show the panel's satisfaction part at all (resolved or closed, or
    /// an answer exists).
    pub(crate) show_satisfaction: bool,
}

/// The panel of `t` for `who` at `now`, with what a refused form had typed.
pub(crate) fn build(
    t: &Ticket,
    who: &api::Principal,
    now: Timestamp,
    clock: &Clock,
    lang: Lang,
    draft: &Draft,
) -> Panel {
    let w = pick(lang, &EN, &ZH);
    // The clocks started at opening, or at the latest reopen.
    let started = t
        .log
        .iter()
        .rev()
        .find(|l| l.action == "reopened")
        .map_or(t.opened_at, |l| l.at);
    let steps = t
        .steps
        .iter()
        .map(|s| {
            let (state, class) = step_state(s, started, now, clock, w);
            StepRow {
                title: step_title(w, &s.step),
                limit: clock.at_zone(s.due),
                limit_iso: clock.iso(s.due),
                state,
                class,
                alerted: s.alerted.as_deref().map(|a| fill(w.alerted, a)),
            }
        })
        .collect();
    let answer = t.satisfaction.as_ref().map(|s| AnswerView {
        score: s.score,
        comment: s.comment.clone(),
        recorded: format!("{} · {} · {}", clock.at(s.at), s.recorded_by, s.channel),
    });
    let callback = t.callback.as_ref().map(|c| {
        let (state, class) = match (c.done_at, c.overdue_at) {
            (Some(done), _) => {
                let late = done.millis() - c.due.millis();
                if late > 0 {
                    (fill(w.done_late, &clock.span(late)), "bad")
                } else {
                    (fill(w.done_at, &clock.at(done)), "ok")
                }
            }
            _ if now > c.due => (
                fill(w.overdue, &clock.span(c.due.millis() - now.millis())),
                "bad",
            ),
            _ => (
                fill(w.left, &clock.span(c.due.millis() - now.millis())),
                "warn",
            ),
        };
        CallbackView {
            due: clock.at_zone(c.due),
            state,
            class,
            owner: c.owner.clone().unwrap_or_else(|| w.nobody.to_owned()),
            done: c
                .done_by
                .as_ref()
                .zip(c.done_at)
                .map(|(by, at)| format!("{} · {by}", clock.at(at))),
            note: c.note.clone(),
        }
    });
    let ended = matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed);
    let may = who.may(Permission::RecordSatisfaction);
    let drafted: Option<u8> = draft
        .is(Action::Satisfaction)
        .then(|| draft.score.parse().ok())
        .flatten();
    let current = drafted.or(t.satisfaction.as_ref().map(|s| s.score));
    let answer_form = (ended && may).then(|| {
        (1..=5)
            .map(|value| ScoreChoice {
                value,
                selected: current == Some(value),
            })
            .collect()
    });
    let callback_form = may && t.callback.as_ref().is_some_and(|c| c.done_at.is_none());
    Panel {
        w,
        steps,
        answer,
        callback,
        answer_form,
        comment_draft: if draft.is(Action::Satisfaction) {
            draft.comment.clone()
        } else {
            String::new()
        },
        callback_form,
        callback_draft: if draft.is(Action::Callback) {
            draft.note.clone()
        } else {
            String::new()
        },
        show_satisfaction: ended || t.satisfaction.is_some() || t.callback.is_some(),
    }
}
