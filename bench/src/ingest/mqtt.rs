//! The benchmark's MQTT publishers: connections to the broker, a device always on the
//! same one, and their acknowledgements counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::gate::Gate;
use super::load::Out;
use super::STALL;
use server::Context as _;

use crate::error::bail;
use crate::Result;

/// QoS 1 publishes awaiting their PUBACK, per publisher connection.
const INFLIGHT: u16 = 1000;
/// Requests queued per publisher connection.
pub(super) const REQUEST_CAPACITY: usize = 4096;
/// Largest packet, both ways.
const MAX_PACKET: usize = 1024 * 1024;

/// The broker, and how many connections publish to it.
pub(super) struct Target {
    pub(super) host: String,
    pub(super) port: u16,
    /// TLS for an `mqtts://` broker.
    pub(super) tls: Option<rumqttc::TlsConfiguration>,
    pub(super) connections: usize,
}

pub(super) fn options(target: &Target, client_id: String) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, target.host.clone(), target.port);
    o.set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_inflight(INFLIGHT)
        .set_request_channel_capacity(REQUEST_CAPACITY)
        .set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true);
    if let Some(tls) = &target.tls {
        o.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
    }
    o
}

/// Polls until the broker's CONNACK, or fails.
pub(super) async fn connected(eventloop: &mut EventLoop) -> Result<()> {
    until_packet(eventloop, |p| matches!(p, Packet::ConnAck(_)))
        .await
        .context("connecting to the broker timed out")?
}

/// Polls until the broker's SUBACK, or fails.
pub(super) async fn subscribed(eventloop: &mut EventLoop) -> Result<()> {
    until_packet(eventloop, |p| matches!(p, Packet::SubAck(_)))
        .await
        .context("subscribing timed out")?
}

/// Polls until a packet `is_it` comes in, for at most 10 s.
async fn until_packet(
    eventloop: &mut EventLoop,
    is_it: impl Fn(&Packet) -> bool,
) -> std::result::Result<Result<()>, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Incoming(p) = eventloop.poll().await? {
                if is_it(&p) {
                    return Ok(());
                }
            }
        }
    })
    .await
}

/// Publisher connections, each with its own event-loop task counting PUBACKs.
pub(super) struct Pool {
    pub(super) clients: Vec<AsyncClient>,
    acked: Arc<AtomicU64>,
    stop: CancellationToken,
    drivers: Vec<JoinHandle<()>>,
}

impl Pool {
    pub(super) async fn connect(target: &Target, name: &str, connections: usize) -> Result<Pool> {
        let acked = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let mut clients = Vec::new();
        let mut drivers = Vec::new();
        for k in 0..connections.max(1) {
            let id = format!("fixahead-bench-{name}-{}-{k}", std::process::id());
            let (client, mut eventloop) = AsyncClient::new(options(target, id), REQUEST_CAPACITY);
            connected(&mut eventloop).await?;
            let (acked, stop) = (acked.clone(), stop.clone());
            drivers.push(tokio::spawn(async move {
                loop {
                    let event = tokio::select! {
                        () = stop.cancelled() => break,
                        e = eventloop.poll() => e,
                    };
                    match event {
                        Ok(Event::Incoming(Packet::PubAck(_))) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "Publisher connection failed; reconnecting");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            }));
            clients.push(client);
        }
        Ok(Pool {
            clients,
            acked,
            stop,
            drivers,
        })
    }

    pub(super) fn client(&self, device: u32) -> &AsyncClient {
        &self.clients[device as usize % self.clients.len()]
    }

    /// Publishes every message, a device always on the same connection, all
    /// connections at once; returns when all are handed to the clients. With a gate,
    /// publishing waits while the gate's limit of messages ahead of the pipeline is
    /// reached.
    pub(super) async fn publish_all(
        &self,
        messages: &Arc<Vec<Out>>,
        gate: Option<&Gate>,
    ) -> Result<()> {
        let n = self.clients.len();
        let tasks: Vec<JoinHandle<Result<()>>> = (0..n)
            .map(|k| {
                let client = self.clients[k].clone();
                let messages = messages.clone();
                let gate = gate.cloned();
                tokio::spawn(async move {
                    for m in messages.iter().filter(|m| m.device as usize % n == k) {
                        if let Some(g) = &gate {
                            g.wait().await;
                        }
                        publish(&client, &m.publish).await?;
                    }
                    Ok(())
                })
            })
            .collect();
        for t in tasks {
            t.await??;
        }
        Ok(())
    }

    /// Waits until the broker acknowledged `count` publishes.
    pub(super) async fn drain(&self, count: u64) -> Result<()> {
        let mut last = (0, Instant::now());
        loop {
            let acked = self.acked.load(Ordering::Relaxed);
            if acked >= count {
                return Ok(());
            }
            if acked > last.0 {
                last = (acked, Instant::now());
            } else if last.1.elapsed() > STALL {
                bail!("the broker acknowledged only {acked} of {count} publishes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub(super) async fn close(self) {
        for c in &self.clients {
            let _ = c.try_disconnect();
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while self.drivers.iter().any(|d| !d.is_finished()) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        self.stop.cancel();
        for d in self.drivers {
            let _ = d.await;
        }
    }
}

/// Publishes `p` at QoS 1.
pub(super) async fn publish(client: &AsyncClient, p: &Publish) -> Result<()> {
    client
        .publish_bytes(p.topic.clone(), QoS::AtLeastOnce, false, p.payload.clone())
        .await
        .context("publishing")?;
    Ok(())
}
