//! The fleet page, its parts CSV and acknowledging alarms.

use axum::http::{header, StatusCode};
use domain::Lang;

use super::csv_field;
use crate::testing::{prediction, Fixture, Person, HOSTILE};

/// A region whose name needs CSV quoting.
const ODD_REGION: &str = "north, \"east\"";

/// The fixture with a third washer in [`ODD_REGION`] flagged for its drain pump and a
/// fresh snapshot.
fn fixture() -> Fixture {
    let f = Fixture::new();
    f.add_washer("wm-7", "WM-500", "B2025-08", ODD_REGION, None);
    f.tickets
        .record_predictions(
            &[prediction("wm-7", "drain_pump", 0.9, true)],
            &api::DiagnosisContext::default(),
        )
        .unwrap();
    f.api.fleet().refresh().unwrap();
    f
}

/// Switches `login`'s language to Chinese and signs them in.
fn chinese(f: &Fixture, login: &str) -> Person {
    let user = f.users.by_login(login).unwrap().unwrap();
    f.users
        .set_preferences(user.id, Lang::Zh, "Asia/Shanghai")
        .unwrap();
    f.sign_in(login)
}

#[tokio::test]
async fn the_page_and_the_csv_follow_the_permission_table() {
    let f = fixture();
    for (login, status) in [
        ("admin", StatusCode::OK),
        ("planner", StatusCode::OK),
        // Engineers hold no fleet permission (api::http::auth::grants).
        ("engineer", StatusCode::FORBIDDEN),
        ("engineer2", StatusCode::FORBIDDEN),
    ] {
        let who = f.sign_in(login);
        for path in ["/console/fleet", "/console/fleet/parts.csv"] {
            let a = f.get(path, Some(&who)).await;
            assert_eq!(a.status, status, "{login} {path}: {}", a.body);
        }
    }
    let engineer = f.sign_in("engineer");
    let alarm = f.raise_alarm("WM-500", "B2025-07", "drain_pump");
    let a = f
        .post(
            &format!("/console/fleet/alarms/{alarm}/acknowledge"),
            &engineer,
            &[("note", "mine")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let nav = f.get("/console/account", Some(&engineer)).await;
    assert!(
        !nav.body.contains("href=\"/console/fleet\""),
        "no fleet link"
    );
}

#[tokio::test]
async fn the_page_shows_groups_charts_alarms_and_parts() {
    let f = fixture();
    let alarm = f.raise_alarm("WM-500", "B2025-07", "drain_pump");
    let planner = f.sign_in("planner");
    let a = f.get("/console/fleet", Some(&planner)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for text in [
        "WM-500",
        "class=\"bar-chart\"",
        "Open predictions",
        "Batch alarms",
        &format!("/console/fleet/alarms/{alarm}/acknowledge"),
        "Drain pump",
        "Parts forecast",
        "drain pump assembly",
        "FXA-WSH-DPD-01",
        "/console/fleet/parts.csv?horizon=30",
    ] {
        assert!(a.body.contains(text), "{text:?} missing");
    }
    assert!(!a.body.contains("style="), "no inline styles (CSP)");
    let by_region = f
        .get("/console/fleet?by=region&horizon=7", Some(&planner))
        .await;
    assert_eq!(by_region.status, StatusCode::OK);
    assert!(by_region.body.contains("north"));
    // The region filter of the queue, URL-encoded.
    assert!(by_region.body.contains("/console/?region=north"));
    assert!(by_region
        .body
        .contains("/console/fleet/parts.csv?horizon=7"));
    let by_batch = f
        .get("/console/fleet?by=batch&period=365", Some(&planner))
        .await;
    assert!(by_batch.body.contains("B2025-08"));
}

#[tokio::test]
async fn bad_parameters_are_a_400_page_in_the_persons_language() {
    let f = fixture();
    let planner = f.sign_in("planner");
    for (query, says) in [
        ("by=colour", "Group by must be"),
        ("period=7", "The period must be"),
        ("horizon=365", "The forecast horizon must be"),
        ("page=0", "The page must be"),
        ("page=x", "The page must be"),
        ("before=-1", "could not be used"),
        ("extra=1", "could not be used"),
    ] {
        let a = f
            .get(&format!("/console/fleet?{query}"), Some(&planner))
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(a.body.contains(says), "{query}: {}", a.body);
    }
    let csv = f
        .get("/console/fleet/parts.csv?horizon=8", Some(&planner))
        .await;
    assert_eq!(csv.status, StatusCode::BAD_REQUEST);
    let zh = chinese(&f, "planner");
    let a = f.get("/console/fleet?by=colour", Some(&zh)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.contains("分组方式必须为"), "{}", a.body);
    // A page past the end shows the last one.
    let a = f.get("/console/fleet?page=99", Some(&zh)).await;
    assert_eq!(a.status, StatusCode::OK);
}

/// The records of a CSV text (RFC 4180: quoted fields, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, '"') => panic!("a quote inside an unquoted field: {field}"),
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\n') => panic!("LF without CR"),
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "an unterminated quote");
    assert!(
        field.is_empty() && record.is_empty(),
        "a record without CRLF"
    );
    records
}

#[tokio::test]
async fn the_parts_csv_is_well_formed_and_escaped() {
    let f = fixture();
    let planner = f.sign_in("planner");
    let a = f
        .get("/console/fleet/parts.csv?horizon=90", Some(&planner))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.headers.get(header::CONTENT_TYPE).unwrap(),
        "text/csv; charset=utf-8"
    );
    let disposition = a
        .headers
        .get(header::CONTENT_DISPOSITION)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"fixahead-parts-90d-"),
        "{disposition}"
    );
    let text = a.body.strip_prefix('\u{feff}').expect("a byte-order mark");
    let records = parse_csv(text);
    let header = &records[0];
    assert_eq!(header[0], "Region");
    assert_eq!(header.len(), 11);
    assert!(
        records.iter().all(|r| r.len() == header.len()),
        "{records:?}"
    );
    let odd: Vec<&Vec<String>> = records.iter().filter(|r| r[0] == ODD_REGION).collect();
    assert!(!odd.is_empty(), "{records:?}");
    assert!(
        text.contains("\"north, \"\"east\"\"\""),
        "quoted and doubled"
    );
    let pump = odd
        .iter()
        .find(|r| r[3] == "drain pump assembly")
        .expect("the drain pump's part");
    assert_eq!(pump[1], "washer");
    assert_eq!(pump[4], "FXA-WSH-DPD-01");
    assert_eq!(pump[9], "90");
    assert!(pump[5].parse::<f64>().unwrap() > 0.0);

    // In Chinese: the part's Chinese name beside the English one.
    let zh = chinese(&f, "planner");
    let a = f.get("/console/fleet/parts.csv", Some(&zh)).await;
    let records = parse_csv(a.body.trim_start_matches('\u{feff}'));
    assert_eq!(records[0][0], "区域");
    assert!(
        records
            .iter()
            .any(|r| r[2] == "排水泵总成" && r[3] == "drain pump assembly"),
        "{records:?}"
    );
}

#[test]
fn csv_fields_are_quoted_and_formulas_defused() {
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(csv_field("排水泵总成"), "排水泵总成");
}

#[tokio::test]
async fn an_alarm_is_acknowledged_with_a_note_once() {
    let f = fixture();
    let alarm = f.raise_alarm("WM-500", "B2025-07", "drain_pump");
    let planner = f.sign_in("planner");
    let path = format!("/console/fleet/alarms/{alarm}/acknowledge");

    let blank = f.post(&path, &planner, &[("note", "   ")]).await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    assert!(blank.body.contains("Write a note"), "{}", blank.body);
    assert!(blank.body.contains("Batch alarms"), "the fleet page again");
    let long = "x".repeat(2001);
    let a = f.post(&path, &planner, &[("note", long.as_str())]).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let a = f.post(&path, &planner, &[("note", HOSTILE)]).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(
        a.location(),
        format!("/console/fleet?acknowledged={alarm}#alarms")
    );
    let page = f.get(a.location(), Some(&planner)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Alarm acknowledged."));
    assert!(page.body.contains("Acknowledged by"));
    assert!(page.body.contains("(planner)"), "the actor names the login");
    assert!(!page.body.contains("<script>alert"), "the note is text");
    assert!(page.body.contains("&#60;script&#62;alert"));
    assert!(!page.body.contains(&path), "no second form");
    let stored = f.api.fleet().alarms(Some("active"), None, 10).unwrap();
    assert_eq!(
        stored[0].acknowledged.as_ref().unwrap().note,
        HOSTILE.trim()
    );

    let again = f.post(&path, &planner, &[("note", "again")]).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("cannot be acknowledged now"));

    for (bad, status) in [
        (
            "/console/fleet/alarms/999/acknowledge",
            StatusCode::NOT_FOUND,
        ),
        (
            "/console/fleet/alarms/x/acknowledge",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/console/fleet/alarms/0/acknowledge",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let a = f.post(bad, &planner, &[("note", "x")]).await;
        assert_eq!(a.status, status, "{bad}: {}", a.body);
    }
    let audit = f.api.access().unwrap().audit_log(None, 10).unwrap();
    assert!(audit
        .iter()
        .any(|r| r.record.summary == format!("acknowledged alarm {alarm}")));
}

#[tokio::test]
async fn hostile_group_names_are_text_and_chinese_reads_naturally() {
    let f = Fixture::new();
    f.add_washer("wm-8", HOSTILE, HOSTILE, HOSTILE, None);
    f.api.fleet().refresh().unwrap();
    f.raise_alarm(HOSTILE, HOSTILE, "drain_pump");
    let zh = chinese(&f, "planner");
    for query in ["", "?by=region", "?by=batch", "?by=fw"] {
        let a = f.get(&format!("/console/fleet{query}"), Some(&zh)).await;
        assert_eq!(a.status, StatusCode::OK, "{query}");
        assert!(
            !a.body.contains("<script>alert"),
            "{query}: markup from a device"
        );
        if query == "?by=region" {
            assert!(a.body.contains("&#60;script&#62;alert(&#34;x&#34;)"));
        }
        for text in [
            "批次告警",
            "故障与预测",
            "备件需求预测",
            "排水泵",
            "确认告警",
        ] {
            assert!(a.body.contains(text), "{query}: {text:?} missing");
        }
    }
}
