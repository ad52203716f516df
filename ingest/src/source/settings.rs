//! What the source connects with: [`MqttSettings`] and the protocol version
//! ([`Protocol`]).

use std::time::Duration;

use domain::wire::TOPIC_PREFIX;

use super::TlsConfig;
use crate::{Error, Result};

/// The MQTT protocol version spoken to the broker; `mqtt.protocol` in the
/// configuration file (`"3.1.1"` or `"5"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Protocol {
    /// MQTT 3.1.1 (the default; every broker speaks it).
    #[default]
    #[serde(rename = "3.1.1")]
    V311,
    /// MQTT 5.
    #[serde(rename = "5")]
    V5,
}

impl std::str::FromStr for Protocol {
    type Err = Error;

    /// `3.1.1` or `5`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "3.1.1" => Ok(Self::V311),
            "5" => Ok(Self::V5),
            _ => Err(Error::Mqtt(format!(
                "unknown MQTT protocol version {s:?}: expected 3.1.1 or 5"
            ))),
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V311 => "3.1.1",
            Self::V5 => "5",
        })
    }
}

/// Where and how to connect. Its `Debug` output leaves the password out.
#[derive(Clone)]
pub struct MqttSettings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id; with a persistent session it must be stable across restarts.
    pub client_id: String,
    /// Username, if the broker wants one.
    pub username: Option<String>,
    /// Password, if the broker wants one.
    pub password: Option<String>,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// Subscribe through `$share/{group}/...` so several instances split the load.
    pub shared_group: Option<String>,
    /// TLS (`mqtts://`); `None` for plain TCP.
    pub tls: Option<TlsConfig>,
    /// MQTT 3.1.1 or 5.
    pub protocol: Protocol,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("keep_alive", &self.keep_alive)
            .field("shared_group", &self.shared_group)
            .field("tls", &self.tls.is_some())
            .field("protocol", &self.protocol)
            .finish()
    }
}

impl MqttSettings {
    /// Settings for `host:port` with fixahead's defaults.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            client_id: "fixahead-ingest".into(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(30),
            shared_group: None,
            tls: None,
            protocol: Protocol::V311,
        }
    }

    /// The rumqttc transport: TCP, or TLS when `tls` is set.
    pub fn transport(&self) -> rumqttc::Transport {
        match &self.tls {
            Some(tls) => tls.transport(),
            None => rumqttc::Transport::Tcp,
        }
    }

    /// The subscription filters: one, `fixahead/v1/+/+`, covering every message kind.
    ///
    /// Not one filter per kind: a broker may keep a separate queue per subscription
    /// (rumqttd keeps one log per filter and serves them in chunks), so under a backlog
    /// a device's faults would arrive after its later telemetry. The feature engine only
    /// moves forward in event time, so those faults would be lost to scoring, and live
    /// scores would differ from an offline replay (`tests/it/parity.rs` caught this).
    /// One filter keeps each device's messages in publish order. A topic of an unknown
    /// kind under the prefix becomes an `invalid_topic` dead letter.
    ///
    /// Besides it, `fixahead/v1/+/cmd/result`: devices' answers to commands
    /// (docs/protocol.md, "Commands"). Their order against telemetry does not matter.
    pub fn filters(&self) -> Vec<String> {
        let all = format!("{TOPIC_PREFIX}+/+");
        let results = domain::MessageKind::CommandResult.filter();
        [all, results]
            .into_iter()
            .map(|f| match &self.shared_group {
                Some(g) => format!("$share/{g}/{f}"),
                None => f,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::MessageKind;

    #[test]
    fn protocol_versions_parse() {
        assert_eq!("3.1.1".parse::<Protocol>().unwrap(), Protocol::V311);
        assert_eq!("5".parse::<Protocol>().unwrap(), Protocol::V5);
        assert_eq!(Protocol::default(), Protocol::V311);
        for bad in ["", "3", "4", "5.0", "v5", "3.1"] {
            assert!(bad.parse::<Protocol>().is_err(), "{bad}");
        }
        assert_eq!(Protocol::V5.to_string(), "5");
    }

    #[test]
    fn settings_debug_never_shows_the_password() {
        let mut s = MqttSettings::new("h", 1);
        s.username = Some("user".into());
        s.password = Some("hunter2".into());
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("user"), "{text}");
    }

    #[test]
    fn one_filter_covers_every_kind_and_shared_groups_prefix_it() {
        let mut s = MqttSettings::new("h", 1);
        assert_eq!(
            s.filters(),
            vec![
                "fixahead/v1/+/+".to_owned(),
                "fixahead/v1/+/cmd/result".to_owned()
            ]
        );
        for kind in MessageKind::ALL {
            assert!(
                kind.filter().starts_with("fixahead/v1/+/"),
                "{}",
                kind.filter()
            );
        }
        s.shared_group = Some("g".into());
        assert_eq!(
            s.filters(),
            vec![
                "$share/g/fixahead/v1/+/+".to_owned(),
                "$share/g/fixahead/v1/+/cmd/result".to_owned()
            ]
        );
    }
}
