//! The raw relay: what the broker alone delivers, to a subscriber that only counts, fed
//! by the same publisher and messages as the pipeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};
use tokio_util::sync::CancellationToken;

use super::load::Out;
use super::mqtt::{connected, options, subscribed, Pool, Target, REQUEST_CAPACITY};
use crate::Result;

pub(super) struct RawResult {
    pub(super) received: u64,
    pub(super) seconds: f64,
    pub(super) publish_seconds: f64,
    pub(super) msgs_per_s: f64,
}

/// A subscriber that only counts (QoS 1, acknowledging each message as rumqttc does by
/// default), fed by the publisher: from the first publish to the last message received.
pub(super) async fn raw_relay(target: &Target, messages: &[Out]) -> Result<RawResult> {
    let id = format!("fixahead-bench-raw-{}", std::process::id());
    let (sub, mut eventloop) = AsyncClient::new(options(target, id), REQUEST_CAPACITY);
    connected(&mut eventloop).await?;
    sub.subscribe(
        format!("{}+/+", domain::wire::TOPIC_PREFIX),
        QoS::AtLeastOnce,
    )
    .await?;
    subscribed(&mut eventloop).await?;

    let total = messages.len() as u64;
    let received = Arc::new(AtomicU64::new(0));
    let last_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let stop = CancellationToken::new();
    let counter = {
        let (received, last_at, stop) = (received.clone(), last_at.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => break,
                    e = eventloop.poll() => e,
                };
                match event {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(Event::Incoming(Packet::Publish(_))) => {
                        let n = received.fetch_add(1, Ordering::Relaxed) + 1;
                        if n == total {
                            if let Ok(mut t) = last_at.lock() {
                                *t = Some(Instant::now());
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "Subscriber connection failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };

    let pool = Pool::connect(target, "raw", target.connections).await?;
    let messages = Arc::new(messages.to_vec());
    let t0 = Instant::now();
    pool.publish_all(&messages, None).await?;
    let publish_seconds = t0.elapsed().as_secs_f64();
    let mut last = (0, Instant::now());
    loop {
        let n = received.load(Ordering::Relaxed);
        if n >= total {
            break;
        }
        if n > last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            eprintln!("  the subscriber stopped at {n} of {total} messages");
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let n = received.load(Ordering::Relaxed);
    let end = last_at
        .lock()
        .ok()
        .and_then(|t| *t)
        .unwrap_or(last.1)
        .max(t0);
    let seconds = (end - t0).as_secs_f64();
    pool.drain(total).await?;
    pool.close().await;
    let _ = sub.try_disconnect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.cancel();
    let _ = counter.await;
    Ok(RawResult {
        received: n,
        seconds,
        publish_seconds,
        msgs_per_s: n as f64 / seconds.max(1e-9),
    })
}
