//! `/console/admin/dead-letters`: device messages fixahead refused, counted by reason,
//! and a list a page at a time (`?reason=` filters, `?before=` is the cursor), newest
//! first. The payload is shown as text (escaped like everything else), cut short.
//!
//! Bounded work on a full table (100,000 rows of up to 4 KiB): the counts are over the
//! newest [`COUNT_WINDOW`] dead letters, and a page filtered by reason looks at most
//! [`SCAN`] ids below its cursor, with a link on when the stretch held fewer (see
//! `store::hot::StoreReader::dead_letters_with_reason`).

use api::http::auth::Permission;
use askama::Template;
use axum::extract::{RawQuery, State};
use domain::RejectReason;
use serde::Deserialize;
use store::hot::DeadLetterRecord;

use super::{cursor, gate, href, parse_query, Pager};
use crate::error::blocking;
use crate::i18n::pick;
use crate::models::Bar;
use crate::page::{fail, render, Chrome, PageResult};
use crate::session::Viewer;
use crate::state::ConsoleState;
use crate::Error;

/// Dead letters per page.
pub(crate) const PAGE_SIZE: usize = 50;
/// Newest dead letters counted by reason.
pub(crate) const COUNT_WINDOW: u64 = 10_000;
/// Ids a page filtered by reason looks at, at most.
pub(crate) const SCAN: u64 = 10_000;
/// Characters of a payload shown.
pub(crate) const PAYLOAD_CHARS: usize = 300;

pub(crate) struct Texts {
    title: &'static str,
    intro: &'static str,
    by_reason: &'static str,
    counted: &'static str,
    of_total: &'static str,
    reason: &'static str,
    count: &'static str,
    share: &'static str,
    all_reasons: &'static str,
    list: &'static str,
    with_reason: &'static str,
    received: &'static str,
    topic: &'static str,
    device: &'static str,
    detail: &'static str,
    payload: &'static str,
    bytes: &'static str,
    cut: &'static str,
    none: &'static str,
    none_here: &'static str,
    bad_reason: &'static str,
}

const EN: Texts = Texts {
    title: "Dead letters",
    intro: "Messages devices sent that fixahead could not use. Each is kept with why it was refused and the first 4 KiB of what arrived; the oldest go after 30 days or beyond 100,000.",
    by_reason: "By reason",
    counted: "Among the newest",
    of_total: "of",
    reason: "Reason",
    count: "Count",
    share: "Share",
    all_reasons: "All reasons",
    list: "Dead letters",
    with_reason: "with reason",
    received: "Received",
    topic: "Topic",
    device: "Device",
    detail: "What was wrong",
    payload: "Payload",
    bytes: "bytes",
    cut: "cut short",
    none: "No dead letters: every message so far could be used.",
    none_here: "None with this reason in this stretch; older ones may follow.",
    bad_reason: "Unknown reason: choose one from the table.",
};

const ZH: Texts = Texts {
    title: "死信消息",
    intro: "设备发送但 fixahead 无法使用的消息。每条都保存了被拒原因和收到内容的前 4 KiB；超过 30 天或超过 100,000 条时最旧的会被删除。",
    by_reason: "按原因",
    counted: "按最新的",
    of_total: "条统计，总数",
    reason: "原因",
    count: "数量",
    share: "占比",
    all_reasons: "全部原因",
    list: "死信消息",
    with_reason: "原因：",
    received: "接收时间",
    topic: "主题",
    device: "设备",
    detail: "问题说明",
    payload: "消息内容",
    bytes: "字节",
    cut: "已截断",
    none: "暂无死信消息：目前所有消息均可使用。",
    none_here: "此区间内没有该原因的消息；更早的消息可能还有。",
    bad_reason: "未知原因：请从表格中选择。",
};

#[derive(Debug)]
pub(crate) struct ReasonRow {
    reason: String,
    count: String,
    share: String,
    bar: Bar,
    href: String,
    chosen: bool,
}

#[derive(Debug)]
pub(crate) struct LetterRow {
    id: i64,
    received: String,
    topic: String,
    device: Option<String>,
    reason: String,
    detail: String,
    payload: String,
    bytes: String,
    cut: bool,
}

#[derive(Template)]
#[template(path = "admin_dead_letters.html")]
struct DeadLettersPage {
    chrome: Chrome,
    a: &'static super::Texts,
    t: &'static Texts,
    reasons: Vec<ReasonRow>,
    counted: String,
    total: String,
    all_href: String,
    reason: Option<String>,
    rows: Vec<LetterRow>,
    pager: Pager,
    empty: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeadLettersQuery {
    reason: Option<String>,
    before: Option<String>,
}

/// `text` cut to [`PAYLOAD_CHARS`] characters, and whether it was.
fn cut(text: &str) -> (String, bool) {
    match text.char_indices().nth(PAYLOAD_CHARS) {
        Some((at, _)) => (format!("{}…", &text[..at]), true),
        None => (text.to_owned(), false),
    }
}

/// `GET /console/admin/dead-letters?reason=R&before=CURSOR`.
pub(crate) async fn page(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let lang = viewer.lang();
    let t = pick(lang, &EN, &ZH);
    let a = super::texts(lang);
    gate(&viewer, Permission::ReadDeadLetters).map_err(fail(lang))?;
    let q: DeadLettersQuery = parse_query(raw.as_deref(), lang).map_err(fail(lang))?;
    let reason = match q.reason.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(r) => Some(
            RejectReason::ALL
                .into_iter()
                .find(|k| k.as_str() == r)
                .ok_or_else(|| fail(lang)(Error::BadRequest(t.bad_reason.into())))?
                .as_str(),
        ),
    };
    let before = cursor(q.before.as_deref(), lang).map_err(fail(lang))?;
    let reader = state.api.store().clone();
    let (counts, letters, next) = blocking(move || {
        let counts = reader.dead_letter_reasons(COUNT_WINDOW)?;
        let (letters, next) = match reason {
            Some(r) => {
                let page = reader.dead_letters_with_reason(r, before, PAGE_SIZE, SCAN)?;
                (page.dead_letters, page.next)
            }
            None => {
                let mut rows = reader.dead_letters(before, PAGE_SIZE + 1)?;
                let next = if rows.len() > PAGE_SIZE {
                    rows.truncate(PAGE_SIZE);
                    rows.last().map(|r| r.id)
                } else {
                    None
                };
                (rows, next)
            }
        };
        Ok((counts, letters, next))
    })
    .await
    .map_err(fail(lang))?;
    let clock = &viewer.clock;
    let n = |x: u64| clock.number(x as f64, 0);
    let counted = counts.counted.max(1) as f64;
    let reasons = counts
        .reasons
        .iter()
        .map(|(r, c)| {
            let share = *c as f64 / counted;
            let text = clock.percent(share, 1);
            ReasonRow {
                reason: r.clone(),
                count: n(*c),
                bar: Bar {
                    width: format!("{:.1}", share.clamp(0.0, 1.0) * 100.0),
                    class: "warn",
                    label: text.clone(),
                },
                share: text,
                href: href("/admin/dead-letters", &[("reason", Some(r.clone()))]),
                chosen: Some(r.as_str()) == reason,
            }
        })
        .collect();
    let rows = letters
        .into_iter()
        .map(|d: DeadLetterRecord| {
            let (payload, was_cut) = cut(&d.payload);
            LetterRow {
                id: d.id,
                received: clock.at(d.received_at),
                topic: d.topic,
                device: d.device_id,
                reason: d.reason,
                detail: d.detail,
                payload,
                bytes: n(d.payload_bytes),
                cut: was_cut || d.truncated,
            }
        })
        .collect();
    let pager = Pager::cursor(before.is_none(), next, lang, |b| {
        href(
            "/admin/dead-letters",
            &[
                ("reason", reason.map(str::to_owned)),
                ("before", b.map(|b| b.to_string())),
            ],
        )
    });
    Ok(render(&DeadLettersPage {
        chrome: super::chrome(&viewer, t.title, "/admin/dead-letters"),
        a,
        t,
        reasons,
        counted: n(counts.counted),
        total: n(counts.total),
        all_href: href("/admin/dead-letters", &[]),
        reason: reason.map(str::to_owned),
        rows,
        pager,
        empty: counts.total == 0,
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::testing::{Fixture, HOSTILE};

    const TOPIC: &str = "fixahead/v1/wm-1/telemetry";

    #[tokio::test]
    async fn dead_letters_are_grouped_filtered_paged_and_escaped() {
        let f = Fixture::new();
        let admin = f.sign_in("admin");
        let empty = f.get("/console/admin/dead-letters", Some(&admin)).await;
        assert_eq!(empty.status, StatusCode::OK);
        assert!(empty.body.contains(EN.none));

        let hostile = format!("{HOSTILE} {}", "x".repeat(1000));
        let toaster = br#"{"ts": 1, "seq": 1, "type": "toaster", "readings": {}}"#;
        // The hostile one is the newest.
        let mut payloads: Vec<&[u8]> = std::iter::repeat_n(&toaster[..], 60).collect();
        payloads.push(hostile.as_bytes());
        f.add_dead_letters(TOPIC, &payloads);

        let all = f.get("/console/admin/dead-letters", Some(&admin)).await;
        assert_eq!(all.status, StatusCode::OK, "{}", all.body);
        assert!(all.body.contains("unknown_device_type"));
        assert!(all.body.contains("malformed_json"));
        assert!(!all.body.contains("<script>alert"), "the payload is text");
        assert!(all.body.contains(&crate::admin::esc("<script>")));
        assert!(
            !all.body.contains(&"x".repeat(PAYLOAD_CHARS + 10)),
            "cut short"
        );
        assert!(
            all.body.contains(super::super::EN.older),
            "61 dead letters: two pages"
        );

        let json = f
            .get(
                "/console/admin/dead-letters?reason=malformed_json",
                Some(&admin),
            )
            .await;
        assert_eq!(json.status, StatusCode::OK);
        assert!(json.body.contains(&crate::admin::esc("<script>")));
        assert!(!json.body.contains("toaster"), "only the reason asked for");

        let kind = f
            .get(
                "/console/admin/dead-letters?reason=unknown_device_type",
                Some(&admin),
            )
            .await;
        let marker = crate::admin::esc("reason=unknown_device_type&before=");
        let at = kind.body.find(&marker).expect("a link to older ones") + marker.len();
        let before: String = kind.body[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let older = f
            .get(
                &format!("/console/admin/dead-letters?reason=unknown_device_type&before={before}"),
                Some(&admin),
            )
            .await;
        assert_eq!(older.status, StatusCode::OK);
        assert!(older.body.contains("toaster"));

        for bad in [
            "/console/admin/dead-letters?reason=%3Cscript%3E",
            "/console/admin/dead-letters?before=abc",
            "/console/admin/dead-letters?before=-3",
        ] {
            let a = f.get(bad, Some(&admin)).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(!a.body.contains("<script>"));
        }
        f.users
            .set_preferences(admin.user_id, domain::Lang::Zh, "UTC")
            .unwrap();
        let zh = f.get("/console/admin/dead-letters", Some(&admin)).await;
        assert!(zh.body.contains("按原因") && zh.body.contains("消息内容"));
    }

    #[test]
    fn payloads_are_cut_at_a_character() {
        let (short, was) = cut("短的");
        assert_eq!((short.as_str(), was), ("短的", false));
        let long = "汉".repeat(PAYLOAD_CHARS + 5);
        let (text, was) = cut(&long);
        assert!(was);
        assert_eq!(text.chars().count(), PAYLOAD_CHARS + 1);
    }
}
