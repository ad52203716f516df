//! The broker side of start-up: the embedded broker (with its logins) or the external
//! one, and the logins fixahead's own clients use on it.

use std::sync::Arc;

use ingest::broker::{BrokerSettings, DeviceAuth, InternalAccount};
use ingest::metrics::IngestMetrics;
use ingest::source::TlsConfig;
use store::credentials::CredentialStore;

use crate::settings::{Broker, Settings};
use crate::Result;

/// A username and password (`None`: connect without).
pub(super) type Login = (Option<String>, Option<String>);

/// Where fixahead's clients connect, and as whom.
pub(super) struct BrokerLink {
    /// The broker's host, as the ingestor connects to it.
    pub(super) host: String,
    /// The broker's port.
    pub(super) port: u16,
    /// TLS to the broker (`mqtts://`).
    pub(super) tls: Option<TlsConfig>,
    /// Where MQTT clients connect, as a URL to show.
    pub(super) url: String,
    /// The ingestor's login.
    pub(super) ingest: Login,
    /// The command publisher's login.
    pub(super) commands: Login,
}

/// The client id of fixahead's command publisher.
pub(super) fn commands_client_id(settings: &Settings) -> String {
    format!("{}-commands", settings.mqtt.client_id)
}

/// Starts the embedded broker unless an external one is configured. With
/// credentials required, fixahead's own clients (and `internal_clients`, e.g. the
/// demo's simulator) get random logins valid for this process only.
pub(super) fn connect(
    settings: &Settings,
    credentials: &CredentialStore,
    metrics: &Arc<IngestMetrics>,
    internal_clients: &[InternalAccount],
) -> Result<BrokerLink> {
    let mqtt = &settings.mqtt;
    let configured = (mqtt.username.clone(), mqtt.password.clone());
    let (listen, allow_anonymous) = match &mqtt.broker {
        Broker::External { url, endpoint } => {
            return Ok(BrokerLink {
                host: endpoint.host.clone(),
                port: endpoint.port,
                tls: endpoint.tls.clone(),
                url: url.clone(),
                ingest: configured.clone(),
                commands: configured,
            })
        }
        Broker::Embedded {
            listen,
            allow_anonymous,
        } => (*listen, *allow_anonymous),
    };
    let mut broker = BrokerSettings::new(listen);
    let (mut ingest, mut commands) = (configured.clone(), configured);
    if allow_anonymous {
        tracing::warn!("The embedded MQTT broker lets any client connect (--allow-anonymous)");
    } else {
        let ingest_account = InternalAccount::generate("ingest");
        ingest = login(&ingest_account);
        let commands_account = InternalAccount::generate("commands");
        commands = login(&commands_account);
        let mut internal = vec![ingest_account, commands_account];
        internal.extend(internal_clients.iter().cloned());
        broker.auth = Some(DeviceAuth {
            store: credentials.clone(),
            internal,
            reserved_client_ids: vec![mqtt.client_id.clone(), commands_client_id(settings)],
            metrics: metrics.clone(),
        });
        let issued = tokio::task::block_in_place(|| credentials.list())?.len();
        if issued == 0 {
            tracing::warn!("No device has MQTT credentials yet, so every device is refused: issue them with `fixahead devices add DEVICE_ID`, or start with --allow-anonymous");
        } else {
            tracing::info!(
                devices = issued,
                "The embedded MQTT broker requires device credentials"
            );
        }
    }
    let addr = ingest::broker::start(&broker)?.addr();
    Ok(BrokerLink {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls: None,
        url: format!("mqtt://{addr}"),
        ingest,
        commands,
    })
}

fn login(account: &InternalAccount) -> Login {
    (Some(account.username.clone()), Some(account.secret.clone()))
}
