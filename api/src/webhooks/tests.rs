use std::sync::atomic::AtomicI64;

use super::*;

/// 2026-11-24T06:00:00Z
const T0: i64 = 1_795_500_000_000;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    now: Arc<AtomicI64>,
    svc: WebhookService,
}

impl Fixture {
    fn new(config: WebhookConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tickets.db");
        let now = Arc::new(AtomicI64::new(T0));
        let clock: tickets::Clock = {
            let now = Arc::clone(&now);
            Arc::new(move || Timestamp(now.load(Ordering::SeqCst)))
        };
        crate::TicketService::open(&path, crate::TicketConfig::default()).unwrap();
        let svc = WebhookService::open_with_clock(&path, config, clock).unwrap();
        Self {
            _dir: dir,
            path,
            now,
            svc,
        }
    }

    /// Writes an event the way the ticket service does; returns its id.
    fn event(&self, kind: &str) -> i64 {
        let db = store::tickets::TicketDb::open(&self.path).unwrap();
        db.write(|tx| {
            tx.insert_event(
                Timestamp(self.now.load(Ordering::SeqCst)),
                kind,
                Some(7),
                Some("wm-0001"),
                &serde_json::json!({"n": 1}),
            )
        })
        .unwrap()
    }

    /// Delivery `d` as it is due now (it must be).
    fn due_again(&self, d: &DueDelivery) -> DueDelivery {
        let due = self.svc.due(10).unwrap();
        due.into_iter().find(|x| x.id == d.id).expect("due again")
    }

    fn hook(&self, types: &[&str]) -> Webhook {
        self.svc
            .create(
                NewWebhook {
                    url: "http://127.0.0.1:9/hook".into(),
                    secret: "0123456789abcdef".into(),
                    event_types: types.iter().map(|t| (*t).to_owned()).collect(),
                    description: String::new(),
                },
                "tester",
            )
            .unwrap()
    }
}

fn success(at: i64) -> Attempt {
    Attempt {
        at: Timestamp(at),
        duration_ms: 1,
        http_status: Some(204),
        error: None,
    }
}

fn failure(at: i64) -> Attempt {
    Attempt {
        at: Timestamp(at),
        duration_ms: 0,
        http_status: Some(500),
        error: Some("receiver answered 500".into()),
    }
}

#[test]
fn signature_matches_a_published_hmac_sha256_vector() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_ne!(
        signature("Jefe", b"what do ya want for nothing!"),
        signature("Jefe", b"what do ya want for nothing?")
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let c = WebhookConfig::default();
    assert_eq!(c.backoff_ms(1), 5_000);
    assert_eq!(c.backoff_ms(2), 10_000);
    assert_eq!(c.backoff_ms(5), 80_000);
    assert_eq!(c.backoff_ms(12), 3_600_000);
    assert_eq!(c.backoff_ms(u32::MAX), 3_600_000);
}

#[test]
fn config_rejects_inconsistent_values() {
    let ok = WebhookConfig::default();
    ok.validate().unwrap();
    for bad in [
        WebhookConfig {
            max_attempts: 0,
            ..ok.clone()
        },
        WebhookConfig {
            concurrency: 0,
            ..ok.clone()
        },
        WebhookConfig {
            timeout: ConfigDuration::from_millis(0),
            ..ok.clone()
        },
        WebhookConfig {
            max_backoff: ConfigDuration::from_millis(1_000),
            ..ok.clone()
        },
    ] {
        assert!(matches!(bad.validate(), Err(Error::Config(_))), "{bad:?}");
    }
    let e = toml_like(r#"{"max_attempts": 3, "colour": "red"}"#);
    assert!(e.is_err(), "unknown keys are rejected");
}

fn toml_like(json: &str) -> std::result::Result<WebhookConfig, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn registration_is_validated_field_by_field() {
    let f = Fixture::new(WebhookConfig::default());
    let base = NewWebhook {
        url: "https://example.com/hooks/fixahead".into(),
        secret: "0123456789abcdef".into(),
        event_types: vec!["ticket.opened".into()],
        description: "dispatch".into(),
    };
    let field = |w: NewWebhook| match f.svc.create(w, "t") {
        Err(Error::Invalid { field, .. }) => field.unwrap_or_default(),
        other => panic!("expected 422, got {other:?}"),
    };
    assert_eq!(
        field(NewWebhook {
            url: "ftp://x/y".into(),
            ..base.clone()
        }),
        "url"
    );
    assert_eq!(
        field(NewWebhook {
            url: "http:///nohost".into(),
            ..base.clone()
        }),
        "url"
    );
    assert_eq!(
        field(NewWebhook {
            url: "http://a b/".into(),
            ..base.clone()
        }),
        "url"
    );
    assert_eq!(
        field(NewWebhook {
            secret: "short".into(),
            ..base.clone()
        }),
        "secret"
    );
    assert_eq!(
        field(NewWebhook {
            event_types: vec![],
            ..base.clone()
        }),
        "event_types"
    );
    assert_eq!(
        field(NewWebhook {
            event_types: vec!["ticket.opened".into(), "ticket.exploded".into()],
            ..base.clone()
        }),
        "event_types[1]"
    );
    assert_eq!(
        field(NewWebhook {
            description: "x".repeat(201),
            ..base.clone()
        }),
        "description"
    );
    let w = f
        .svc
        .create(
            NewWebhook {
                event_types: vec!["ticket.opened".into(), "ticket.opened".into()],
                ..base
            },
            "t",
        )
        .unwrap();
    assert_eq!(w.event_types, ["ticket.opened"], "duplicates are folded");
    assert_eq!(f.svc.list().unwrap(), vec![w]);
}

#[test]
fn a_webhook_gets_the_events_of_its_types_committed_after_it_was_registered() {
    let f = Fixture::new(WebhookConfig::default());
    f.event(tickets::EVENT_OPENED);
    let w = f.hook(&[tickets::EVENT_OPENED, tickets::EVENT_SLA_BREACHED]);
    let opened = f.event(tickets::EVENT_OPENED);
    f.event(tickets::EVENT_UPDATED);
    let breached = f.event(tickets::EVENT_SLA_BREACHED);
    assert_eq!(f.svc.enqueue().unwrap(), 2);
    assert_eq!(f.svc.enqueue().unwrap(), 0, "the cursor moved");
    let due = f.svc.due(100).unwrap();
    let ids: Vec<i64> = due.iter().map(|d| d.event_id).collect();
    assert_eq!(ids, [opened, breached]);
    let body: serde_json::Value = serde_json::from_str(&due[0].body).unwrap();
    assert_eq!(body["id"], opened);
    assert_eq!(body["type"], "ticket.opened");
    assert_eq!(body["data"]["n"], 1);
    assert_eq!(f.svc.get(w.id).unwrap().unwrap().last_event_id, breached);
}

#[test]
fn failed_attempts_back_off_then_give_up_and_success_ends_the_delivery() {
    let config = WebhookConfig {
        max_attempts: 3,
        ..WebhookConfig::default()
    };
    let f = Fixture::new(config);
    let w = f.hook(&[tickets::EVENT_OPENED]);
    f.event(tickets::EVENT_OPENED);
    f.event(tickets::EVENT_OPENED);
    f.svc.enqueue().unwrap();
    let due = f.svc.due(10).unwrap();
    assert_eq!(due.len(), 2);

    // The first delivery fails twice, then for good.
    let mut d = due[0].clone();
    assert_eq!(
        f.svc.record_attempt(&d, &failure(T0)).unwrap(),
        DeliveryStatus::Pending
    );
    let next = f.svc.deliveries(w.id, None, 10).unwrap()[1]
        .next_attempt_at
        .unwrap()
        .millis();
    assert_eq!(
        f.svc.next_due().unwrap(),
        Some(Timestamp(T0)),
        "the other one"
    );
    assert!(
        (T0 + 4_000..=T0 + 6_000).contains(&next),
        "5 s ± 20 %: {next}"
    );
    assert!(
        f.svc.due(10).unwrap().iter().all(|x| x.id != d.id),
        "not due before its backoff"
    );
    f.now.store(T0 + 6_001, Ordering::SeqCst);
    d = f.due_again(&d);
    assert_eq!(d.attempts, 1);
    assert_eq!(
        f.svc.record_attempt(&d, &failure(T0 + 6_001)).unwrap(),
        DeliveryStatus::Pending
    );
    f.now.store(T0 + 20_000, Ordering::SeqCst);
    d = f.due_again(&d);
    assert_eq!(
        f.svc.record_attempt(&d, &failure(T0 + 20_000)).unwrap(),
        DeliveryStatus::Failed
    );

    // The second succeeds at once.
    let ok = success(T0 + 20_000);
    assert_eq!(
        f.svc.record_attempt(&due[1], &ok).unwrap(),
        DeliveryStatus::Delivered
    );
    assert!(f.svc.due(10).unwrap().is_empty());
    assert_eq!(
        f.svc.stats(),
        WebhookStats {
            delivered: 1,
            attempt_failures: 3,
            failed: 1
        }
    );

    let listed = f.svc.deliveries(w.id, None, 10).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].status, DeliveryStatus::Delivered, "newest first");
    assert_eq!(listed[1].status, DeliveryStatus::Failed);
    assert_eq!(listed[1].attempts, 3);
    assert_eq!(listed[1].attempt_log.len(), 3);
    assert_eq!(listed[1].attempt_log[0].http_status, Some(500));
    assert_eq!(listed[1].next_attempt_at, None);
    assert_eq!(
        f.svc
            .deliveries(w.id, Some(listed[0].id), 10)
            .unwrap()
            .len(),
        1
    );
    let registry = prometheus::Registry::new();
    crate::http::metrics::register(
        &registry,
        crate::http::metrics::ServiceMetrics::webhooks(f.svc.clone()),
    );
    let metrics = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    assert!(
        metrics.contains("fixahead_webhook_failures_total 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fixahead_webhook_deliveries_pending 0\n"),
        "{metrics}"
    );
}

#[test]
fn removing_a_webhook_cancels_its_pending_deliveries_and_stops_new_ones() {
    let f = Fixture::new(WebhookConfig::default());
    let w = f.hook(&[tickets::EVENT_OPENED]);
    f.event(tickets::EVENT_OPENED);
    f.svc.enqueue().unwrap();
    assert!(f.svc.delete(w.id).unwrap());
    assert!(!f.svc.delete(w.id).unwrap(), "already removed");
    f.event(tickets::EVENT_OPENED);
    assert_eq!(f.svc.enqueue().unwrap(), 0);
    assert!(f.svc.due(10).unwrap().is_empty());
    let listed = f.svc.deliveries(w.id, None, 10).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, DeliveryStatus::Cancelled);
    assert!(f.svc.list().unwrap().is_empty());
    assert!(f.svc.get(w.id).unwrap().unwrap().deleted_at.is_some());
}

#[test]
fn finished_deliveries_are_pruned_after_the_retention_and_pending_ones_never() {
    let f = Fixture::new(WebhookConfig::default());
    let w = f.hook(&[tickets::EVENT_OPENED]);
    f.event(tickets::EVENT_OPENED);
    f.event(tickets::EVENT_OPENED);
    f.svc.enqueue().unwrap();
    let due = f.svc.due(10).unwrap();
    let ok = success(T0);
    f.svc.record_attempt(&due[0], &ok).unwrap();
    f.now.store(T0 + 31 * 86_400_000, Ordering::SeqCst);
    assert_eq!(f.svc.prune().unwrap(), 1);
    let left = f.svc.deliveries(w.id, None, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].status, DeliveryStatus::Pending);
}

#[test]
fn the_procedure_events_can_be_subscribed_to() {
    let f = Fixture::new(WebhookConfig::default());
    let w = f
        .svc
        .create(
            NewWebhook {
                url: "https://crm.example.com/hooks/fixahead".into(),
                secret: "0123456789abcdef".into(),
                event_types: vec![
                    tickets::EVENT_STEP_OVERDUE.into(),
                    tickets::EVENT_CALLBACK_OPENED.into(),
                    tickets::EVENT_CALLBACK_OVERDUE.into(),
                ],
                description: "after-sales".into(),
            },
            "t",
        )
        .expect("known event types");
    assert_eq!(w.event_types.len(), 3);
}
