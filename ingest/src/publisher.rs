//! fixahead's own outgoing MQTT connection: commands to devices
//! (`fixahead/v1/{device_id}/cmd`, QoS 1, not retained).
//!
//! MQTT 3.1.1 whatever `--mqtt-protocol` says (a plain QoS 1 publish needs nothing of
//! MQTT 5, and every MQTT 5 broker accepts 3.1.1 clients), a clean session (a command
//! not yet sent when fixahead stops is not worth keeping: it times out), TLS and login
//! as the ingest connection's. The event loop runs in its own task and reconnects with
//! backoff; publishing never waits: it queues or fails.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::source::MqttSettings;

/// Publishes queued before the client refuses more.
const QUEUE: usize = 1024;

/// A handle that queues publishes on the connection. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    client: AsyncClient,
}

impl Publisher {
    /// Connects in the background with `settings` (host, port, TLS, login, keep-alive;
    /// the client id is `settings.client_id`) until `stop`.
    pub fn start(settings: &MqttSettings, stop: CancellationToken) -> (Self, JoinHandle<()>) {
        let mut opts = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
        opts.set_keep_alive(settings.keep_alive)
            .set_clean_session(true)
            .set_transport(settings.transport());
        if let Some(u) = &settings.username {
            opts.set_credentials(u, settings.password.as_deref().unwrap_or_default());
        }
        let (client, mut eventloop) = AsyncClient::new(opts, QUEUE);
        let task = tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                let event = tokio::select! {
                    _ = stop.cancelled() => break,
                    e = eventloop.poll() => e,
                };
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = Duration::from_millis(100);
                        tracing::info!("Command publisher connected");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "Command publisher connection error");
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        (Self { client }, task)
    }

    /// Queues `payload` on `topic` with QoS 1, not retained. Fails when the queue is
    /// full or the connection task has ended.
    pub fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), String> {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, false, payload)
            .map_err(|e| e.to_string())
    }
}
