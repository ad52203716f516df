//! The embedded MQTT broker (rumqttd) for the all-in-one mode.
//!
//! rumqttd runs on its own threads with their own runtimes; [`start`] returns once the
//! listener accepts TCP connections. Devices and the ingestor both connect to it over
//! TCP, exactly as they would to an external broker, so the pipeline does not know
//! which one it runs on.
//!
//! Guarantee (see docs/operations.md): rumqttd keeps sessions in memory and dies with
//! the process. It acknowledges a device's QoS 1 publish on receipt, so a crash can lose
//! what it had acknowledged but fixahead had not yet committed: at most one batch
//! interval's worth. Zero loss across crashes needs an external broker with persistence.
//!
//! Authentication ([`DeviceAuth`], docs/operations.md "Device credentials"): with it,
//! rumqttd asks us about every CONNECT that carries a username, and we check the
//! device's password against its stored hash ([`store::credentials`]) on a blocking
//! thread (one PBKDF2 run; the broker's runtime keeps serving other connections). A
//! CONNECT without a username is refused by rumqttd itself, before we are asked. A
//! refused client gets no CONNACK: rumqttd 0.20 closes the connection. rumqttd has no
//! topic ACLs, so an authenticated device can still publish under another device's id;
//! Mosquitto with `fixahead devices export-mosquitto` closes that gap.

use std::collections::HashMap;
use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::DeviceId;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::metrics::{AuthRefusal, IngestMetrics};
use crate::{Error, Result};
use store::credentials::{generate_password, secrets_equal, CredentialStore, PasswordHash};

/// One of fixahead's own MQTT clients (the ingestor; the demo's simulator): a username
/// that no device can have (it holds a `:`) and a random secret that lives only in this
/// process's memory, so it never needs provisioning and dies with the process.
#[derive(Clone)]
pub struct InternalAccount {
    /// `fixahead:{name}`.
    pub username: String,
    /// 32 random characters.
    pub secret: String,
}

impl fmt::Debug for InternalAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalAccount")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl InternalAccount {
    /// A new account `fixahead:{name}` with a fresh random secret.
    pub fn generate(name: &str) -> Self {
        Self {
            username: format!("fixahead:{name}"),
            secret: generate_password(),
        }
    }
}

/// How the embedded broker authenticates clients (see the module docs).
///
/// A device logs in with its device id as the username and its password, under the
/// client id `{device_id}` or `{device_id}:{anything}`: a client id is a session, and
/// a device that could pick any client id could take another device's session over
/// (the broker drops the older connection of a client id). `:` never occurs in a
/// device id, so `{device_id}:{suffix}` can never be another device's id.
#[derive(Clone, Debug)]
pub struct DeviceAuth {
    /// Device credentials, read on every connection attempt (nothing is cached).
    pub store: CredentialStore,
    /// fixahead's own clients, accepted under any client id.
    pub internal: Vec<InternalAccount>,
    /// Client ids no device may use (the ingestor's persistent session).
    pub reserved_client_ids: Vec<String>,
    /// Where refusals are counted.
    pub metrics: Arc<IngestMetrics>,
}

/// A hash no password matches, checked for unknown users (made once per process, with
/// the iteration count new credentials get).
fn unknown_user_hash() -> &'static PasswordHash {
    static HASH: std::sync::OnceLock<PasswordHash> = std::sync::OnceLock::new();
    HASH.get_or_init(|| PasswordHash::new(&generate_password()))
}

impl DeviceAuth {
    /// Decides one CONNECT. CPU work (PBKDF2) and a SQLite read: call it on a blocking
    /// thread.
    pub fn check(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> std::result::Result<(), AuthRefusal> {
        if let Some(account) = self.internal.iter().find(|a| a.username == username) {
            return if secrets_equal(&account.secret, password) {
                Ok(())
            } else {
                Err(AuthRefusal::WrongPassword)
            };
        }
        if !DeviceId::is_valid(username) {
            return Err(AuthRefusal::UnknownUser);
        }
        let own_id = client_id == username
            || client_id
                .strip_prefix(username)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|suffix| !suffix.is_empty());
        if !own_id || self.reserved_client_ids.iter().any(|r| r == client_id) {
            return Err(AuthRefusal::ClientId);
        }
        match self.store.hash_of(username) {
            Ok(None) => {
                // The same PBKDF2 work as a known device's check, so that how long a
                // refusal takes does not tell which device ids have credentials.
                let _ = unknown_user_hash().verify(password);
                Err(AuthRefusal::UnknownUser)
            }
            Ok(Some(hash)) if hash.verify(password) => Ok(()),
            Ok(Some(_)) => Err(AuthRefusal::WrongPassword),
            Err(e) => {
                tracing::error!(error = %e, username, "Cannot check MQTT credentials; refusing the connection");
                Err(AuthRefusal::Error)
            }
        }
    }

    /// [`DeviceAuth::check`], counted and logged.
    fn decide(&self, client_id: &str, username: &str, password: &str) -> bool {
        match self.check(client_id, username, password) {
            Ok(()) => {
                self.metrics.count_auth_accepted();
                true
            }
            Err(reason) => {
                self.metrics.count_auth_refused(reason);
                let shown = |s: &str| s.chars().take(80).collect::<String>();
                tracing::info!(
                    reason = reason.as_str(),
                    client_id = ?shown(client_id),
                    username = ?shown(username),
                    "MQTT connection refused"
                );
                false
            }
        }
    }
}

/// Settings of the embedded broker.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// Address to listen on for MQTT 3.1.1 clients. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest publish the broker accepts. Larger than the protocol's 16 KiB payload
    /// limit on purpose: oversized payloads must reach ingest to become dead letters.
    pub max_payload_bytes: usize,
    /// Most concurrent client connections.
    pub max_connections: usize,
    /// Device authentication. `None` lets anyone connect (`--allow-anonymous`).
    pub auth: Option<DeviceAuth>,
}

impl BrokerSettings {
    /// Defaults for `listen`, with anonymous access.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            max_payload_bytes: 1024 * 1024,
            max_connections: 10_000,
            auth: None,
        }
    }
}

/// A running embedded broker. It stops when the process exits (rumqttd offers no
/// shutdown handle).
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// The address MQTT clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Starts the embedded broker and waits until it accepts connections.
pub fn start(settings: &BrokerSettings) -> Result<EmbeddedBroker> {
    // rumqttd binds inside its own thread and only logs a bind failure, so bind here
    // first to turn "address in use" into an error, and to resolve port 0.
    let addr = {
        let probe = TcpListener::bind(settings.listen)
            .map_err(|e| Error::Broker(format!("cannot listen on {}: {e}", settings.listen)))?;
        probe
            .local_addr()
            .map_err(|e| Error::Broker(format!("local address: {e}")))?
    };

    let mut connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: settings.max_payload_bytes,
        max_inflight_count: 1_000,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    if let Some(auth) = &settings.auth {
        let auth = Arc::new(auth.clone());
        connections.set_auth_handler(move |client_id, username, password| {
            let auth = Arc::clone(&auth);
            async move {
                // rumqttd runs each connection's handshake in its own task on the
                // server's runtime; PBKDF2 goes to that runtime's blocking pool.
                tokio::task::spawn_blocking(move || auth.decide(&client_id, &username, &password))
                    .await
                    .unwrap_or(false)
            }
        });
    }
    let server = ServerSettings {
        name: "fixahead-v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: settings.max_connections,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    };

    let mut broker = Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "Embedded MQTT broker stopped");
            }
        })
        .map_err(|e| Error::Broker(format!("spawning broker thread: {e}")))?;

    let deadline = Instant::now() + Duration::from_secs(10);
    let connect_to = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    loop {
        if TcpStream::connect_timeout(&connect_to, Duration::from_millis(200)).is_ok() {
            tracing::info!(%addr, "Embedded MQTT broker listening");
            return Ok(EmbeddedBroker { addr: connect_to });
        }
        if Instant::now() > deadline {
            return Err(Error::Broker(format!(
                "broker did not start listening on {addr} within 10 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_logs_in_with_its_own_password_under_its_own_client_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::open_in(dir.path()).unwrap();
        let id = DeviceId::parse("wm-1").unwrap();
        let (pw, _) = store.issue(&id, None, false).unwrap();
        let ingest = InternalAccount::generate("ingest");
        let auth = DeviceAuth {
            store,
            internal: vec![ingest.clone()],
            reserved_client_ids: vec!["wm-1:ingest".into()],
            metrics: Arc::default(),
        };
        assert_eq!(auth.check("wm-1", "wm-1", &pw), Ok(()));
        assert_eq!(auth.check("wm-1:gw-2", "wm-1", &pw), Ok(()));
        assert_eq!(auth.check("any", &ingest.username, &ingest.secret), Ok(()));
        use AuthRefusal::*;
        for (client_id, user, password, why) in [
            ("wm-1", "wm-1", "wrong", WrongPassword),
            ("wm-2", "wm-2", pw.as_str(), UnknownUser),
            ("x", "bad:user", pw.as_str(), UnknownUser),
            ("wm-2", "wm-1", pw.as_str(), ClientId),
            ("wm-1:", "wm-1", pw.as_str(), ClientId),
            ("wm-1x", "wm-1", pw.as_str(), ClientId),
            ("", "wm-1", pw.as_str(), ClientId),
            ("wm-1:ingest", "wm-1", pw.as_str(), ClientId),
            ("any", ingest.username.as_str(), pw.as_str(), WrongPassword),
        ] {
            assert_eq!(
                auth.check(client_id, user, password),
                Err(why),
                "{client_id} {user}"
            );
        }
        assert!(!auth.decide("wm-1", "wm-1", "wrong"));
        assert!(auth.decide("wm-1", "wm-1", &pw));
        assert_eq!(auth.metrics.auth_refused(WrongPassword), 1);
        assert_eq!(auth.metrics.snapshot().broker_auth_accepted, 1);
    }
}
