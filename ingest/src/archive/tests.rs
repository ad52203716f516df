//! The archiver against an in-memory sink: order, resume at the cursor, outages,
//! refused points, partial writes, lost answers and stops.

use std::future::Future;
use std::sync::Mutex;

use domain::{decode, Message, Timestamp};
use store::hot::{HotStore, StoreItem};
use store::Synchronous;

use super::*;

/// A sink that records what it accepted and fails as told.
#[derive(Default)]
struct FakeSink {
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    /// Accepted lines, in order.
    accepted: Vec<String>,
    /// Requests to fail with Retry before accepting anything.
    down_for: usize,
    /// Lines containing this are refused (the whole request is).
    poison: Option<String>,
    /// Lines containing this are dropped from a partial write (422).
    drop: Option<String>,
    /// Never answer.
    hang: bool,
    /// Requests to write, then answer with Unknown (the answer lost on the way).
    lose_answers: usize,
    requests: usize,
}

impl LineSink for Arc<FakeSink> {
    fn write(
        &self,
        body: String,
    ) -> impl Future<Output = std::result::Result<(), WriteError>> + Send {
        let this = self.clone();
        async move {
            if this.state.lock().unwrap().hang {
                this.state.lock().unwrap().requests += 1;
                std::future::pending::<()>().await;
            }
            let mut s = this.state.lock().unwrap();
            s.requests += 1;
            if s.down_for > 0 {
                s.down_for -= 1;
                return Err(WriteError::Retry("connection refused".into()));
            }
            if let Some(p) = &s.poison {
                if body.contains(p.as_str()) {
                    return Err(WriteError::Refused("HTTP 400: bad point".into()));
                }
            }
            let drop = s.drop.clone().unwrap_or_else(|| "\n".into());
            let before = s.accepted.len();
            s.accepted.extend(
                body.lines()
                    .filter(|l| !l.contains(&drop))
                    .map(str::to_owned),
            );
            let dropped = body.lines().count() - (s.accepted.len() - before);
            if s.lose_answers > 0 {
                s.lose_answers -= 1;
                return Err(WriteError::Unknown(
                    "connection closed before the answer".into(),
                ));
            }
            if dropped > 0 {
                return Err(WriteError::Partial {
                    detail: format!("partial write: dropped={dropped}"),
                    dropped: Some(dropped as u64),
                });
            }
            Ok(())
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    store: HotStore,
    next_seq: u64,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(&dir.path().join("hot.db"), Synchronous::Normal).unwrap();
        Self {
            dir,
            store,
            next_seq: 1,
        }
    }

    /// Commits `n` messages of device wm-1 (every fifth a fault), one batch.
    fn commit(&mut self, n: u64) {
        let messages: Vec<Message> = (0..n)
            .map(|_| {
                let seq = self.next_seq;
                self.next_seq += 1;
                let ts = 1_795_500_000_000 + seq as i64 * 1000;
                let (topic, payload) = if seq.is_multiple_of(5) {
                    ("fixahead/v1/wm-1/fault", format!(r#"{{"ts": {ts}, "seq": {seq}, "type": "washer", "model": "WM-500", "code": "E21", "state": "raised"}}"#))
                } else {
                    ("fixahead/v1/wm-1/telemetry", format!(r#"{{"ts": {ts}, "seq": {seq}, "type": "washer", "model": "WM-500", "readings": {{"vibration_g": 0.{seq}}}}}"#))
                };
                decode(topic, payload.as_bytes(), &ProfileSet::builtin()).unwrap()
            })
            .collect();
        let items: Vec<_> = messages
            .iter()
            .map(|message| StoreItem::Message {
                message,
                received_at: Timestamp(1),
            })
            .collect();
        self.store.commit(&items).unwrap();
    }

    fn archiver(&self, sink: Arc<FakeSink>, batch_size: usize) -> Archiver<Arc<FakeSink>> {
        Archiver {
            reader: StoreReader::open(&self.dir.path().join("hot.db")).unwrap(),
            sink,
            profiles: Arc::new(ProfileSet::builtin()),
            settings: ArchiveSettings {
                batch_size,
                flush_interval: Duration::from_millis(5),
                timeout: Duration::from_secs(5),
                max_backoff: Duration::from_millis(5),
                cursor_path: self.dir.path().join(ArchiveSettings::CURSOR_FILE),
            },
            metrics: Arc::new(ArchiveMetrics::default()),
        }
    }

    fn cursor(&self) -> i64 {
        Cursor::new(self.dir.path().join(ArchiveSettings::CURSOR_FILE))
            .load()
            .unwrap()
    }
}

/// Runs `archiver` until `done` holds for its sink and metrics, then stops it.
async fn run_until(
    archiver: Archiver<Arc<FakeSink>>,
    done: impl Fn(&FakeState, &ArchiveMetrics) -> bool,
) -> (Arc<FakeSink>, Arc<ArchiveMetrics>) {
    let sink = archiver.sink.clone();
    let metrics = archiver.metrics.clone();
    let stop = CancellationToken::new();
    let task = tokio::spawn(archiver.run(stop.clone()));
    wait_for("archiver made no progress", || {
        done(&sink.state.lock().unwrap(), &metrics)
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    (sink, metrics)
}

/// Polls `done` every 5 ms until it holds; fails with `what` after 30 s.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn seqs(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .map(|l| {
            let field = l.split("seq=").nth(1).unwrap();
            field[..field.find('u').unwrap()].parse().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_every_row_once_in_commit_order_and_resumes_at_the_cursor() {
    let mut fx = Fixture::new();
    fx.commit(23);
    let (sink, metrics) = run_until(fx.archiver(Arc::default(), 10), |s, m| {
        s.accepted.len() == 23 && m.backlog.get() == 0
    })
    .await;
    let first = sink.state.lock().unwrap().accepted.clone();
    assert_eq!(seqs(&first), (1..=23).collect::<Vec<_>>());
    assert_eq!(first.iter().filter(|l| l.starts_with("fault,")).count(), 4);
    let m = metrics.snapshot();
    assert_eq!((m.points_telemetry, m.points_faults), (19, 4));
    assert_eq!(m.batches, 3, "batches of 10, 10 and 3");
    assert_eq!((m.position, m.write_failures), (23, 0));
    assert!(m.last_success_ms.is_some());
    assert_eq!(fx.cursor(), 23);

    // A new archiver (a restart) sends only what was stored since.
    fx.commit(5);
    let (sink, metrics) = run_until(fx.archiver(Arc::default(), 10), |s, _| {
        s.accepted.len() >= 5
    })
    .await;
    assert_eq!(
        seqs(&sink.state.lock().unwrap().accepted),
        (24..=28).collect::<Vec<_>>()
    );
    assert_eq!(metrics.snapshot().position, 28);
    assert_eq!(fx.cursor(), 28);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_server_costs_retries_not_points_and_the_backlog_shows_it() {
    let mut fx = Fixture::new();
    fx.commit(12);
    let sink = Arc::new(FakeSink::default());
    sink.state.lock().unwrap().down_for = 7;
    let (sink, metrics) = run_until(fx.archiver(sink, 5), |s, _| s.accepted.len() == 12).await;
    let s = sink.state.lock().unwrap();
    assert_eq!(
        seqs(&s.accepted),
        (1..=12).collect::<Vec<_>>(),
        "in order, none twice"
    );
    let m = metrics.snapshot();
    assert_eq!(m.write_failures, 7);
    assert_eq!(s.requests, 7 + 3);
    assert_eq!(m.points_telemetry + m.points_faults, 12);
    assert_eq!(fx.cursor(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_resends_the_batch_and_counts_its_points_as_uncertain() {
    let mut fx = Fixture::new();
    fx.commit(12);
    let sink = Arc::new(FakeSink::default());
    sink.state.lock().unwrap().lose_answers = 1;
    let (sink, metrics) = run_until(fx.archiver(sink, 5), |s, m| {
        s.accepted.len() == 17 && m.backlog.get() == 0
    })
    .await;
    let s = sink.state.lock().unwrap();
    let mut want: Vec<u64> = (1..=5).collect();
    want.extend(1..=12);
    assert_eq!(
        seqs(&s.accepted),
        want,
        "the first batch twice (the server took it, the answer was lost), then the rest once"
    );
    let m = metrics.snapshot();
    assert_eq!(
        m.points_uncertain, 5,
        "the points that may now be held twice"
    );
    assert_eq!(m.write_failures, 1);
    assert_eq!(
        m.points_telemetry + m.points_faults,
        12,
        "accepted points count once"
    );
    assert_eq!(fx.cursor(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_grows_while_the_server_is_down() {
    let mut fx = Fixture::new();
    fx.commit(3);
    let sink = Arc::new(FakeSink::default());
    sink.state.lock().unwrap().down_for = usize::MAX;
    let archiver = fx.archiver(sink.clone(), 100);
    let metrics = archiver.metrics.clone();
    let stop = CancellationToken::new();
    let task = tokio::spawn(archiver.run(stop.clone()));
    let backlog = |want: u64| {
        let metrics = metrics.clone();
        async move {
            let what = format!("backlog never {want}");
            wait_for(&what, || metrics.backlog.get() == want as i64).await;
        }
    };
    backlog(3).await;
    fx.commit(4);
    backlog(7).await;
    assert!(metrics.write_failures.get() >= 2);
    assert_eq!(metrics.position.get(), 0);
    // Up again: everything goes, and the cursor follows.
    sink.state.lock().unwrap().down_for = 0;
    backlog(0).await;
    wait_for("the 7 points never all written", || {
        sink.state.lock().unwrap().accepted.len() >= 7
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(
        seqs(&sink.state.lock().unwrap().accepted),
        (1..=7).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_point_is_isolated_and_skipped_and_the_rest_is_written() {
    let mut fx = Fixture::new();
    fx.commit(16);
    let sink = Arc::new(FakeSink::default());
    sink.state.lock().unwrap().poison = Some("seq=11u".into());
    let (sink, metrics) = run_until(fx.archiver(sink, 16), |_, m| m.position.get() == 16).await;
    let want: Vec<u64> = (1..=16).filter(|s| *s != 11).collect();
    assert_eq!(seqs(&sink.state.lock().unwrap().accepted), want);
    let m = metrics.snapshot();
    assert_eq!(m.points_refused, 1);
    assert_eq!(m.points_telemetry + m.points_faults, 15);
    // 16 -> 8 -> 4 -> 2 -> 1: four refused requests on the way down, one for the point.
    assert_eq!(m.write_failures, 5);
    assert_eq!(
        fx.cursor(),
        16,
        "a refused point does not hold the archive up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_does_not_wait_for_a_server_that_never_answers() {
    let mut fx = Fixture::new();
    fx.commit(3);
    let sink = Arc::new(FakeSink::default());
    sink.state.lock().unwrap().hang = true;
    let archiver = fx.archiver(sink.clone(), 10);
    let stop = CancellationToken::new();
    let task = tokio::spawn(archiver.run(stop.clone()));
    wait_for("no write request", || {
        sink.state.lock().unwrap().requests > 0
    })
    .await;
    stop.cancel();
    // The write never returns; the bound is a liveness check only.
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the archiver stops while a write hangs")
        .unwrap();
    assert_eq!(fx.cursor(), 0, "nothing acknowledged, nothing moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_write_is_done_and_counts_the_dropped_points() {
    let mut fx = Fixture::new();
    fx.commit(9);
    let sink = Arc::new(FakeSink::default());
    sink.state.lock().unwrap().drop = Some("vibration_g=0.3,".into());
    let (sink, metrics) = run_until(fx.archiver(sink, 100), |_, m| m.position.get() == 9).await;
    let s = sink.state.lock().unwrap();
    assert_eq!(seqs(&s.accepted), vec![1, 2, 4, 5, 6, 7, 8, 9]);
    assert_eq!(s.requests, 1, "nothing sent again, nothing split");
    let m = metrics.snapshot();
    assert_eq!((m.points_refused, m.write_failures), (1, 1));
    assert_eq!(
        (m.points_telemetry, m.points_faults),
        (7, 1),
        "seq 5 is the fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_ahead_of_the_store_starts_over_and_a_garbled_one_too() {
    let mut fx = Fixture::new();
    fx.commit(4);
    Cursor::new(fx.dir.path().join(ArchiveSettings::CURSOR_FILE))
        .store(1000)
        .unwrap();
    let (sink, _) = run_until(fx.archiver(Arc::default(), 10), |s, _| {
        s.accepted.len() == 4
    })
    .await;
    assert_eq!(seqs(&sink.state.lock().unwrap().accepted), vec![1, 2, 3, 4]);
    std::fs::write(fx.dir.path().join(ArchiveSettings::CURSOR_FILE), "x").unwrap();
    let (sink, _) = run_until(fx.archiver(Arc::default(), 10), |s, _| {
        s.accepted.len() == 4
    })
    .await;
    assert_eq!(seqs(&sink.state.lock().unwrap().accepted), vec![1, 2, 3, 4]);
}
