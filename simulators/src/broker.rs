//! Where and as whom the simulator connects: one [`BrokerTarget`] for live publishing
//! ([`crate::LiveConfig`]) and replay ([`crate::replay::ReplayConfig`]) alike.

use std::time::Duration;

use rumqttc::MqttOptions;

use crate::{Error, Result};

/// Largest MQTT packet accepted or sent, both ways. Above the protocol's 16 KiB payload
/// limit on purpose: oversized payloads must reach fixahead to become dead letters, and
/// a replayed history may hold them.
pub(crate) const MAX_PACKET_BYTES: usize = 256 * 1024;
/// QoS 1 publishes awaiting their PUBACK, per connection.
const INFLIGHT: u16 = 1000;
/// Capacity of each client's request channel; publishing waits when it is full.
pub(crate) const REQUEST_CAPACITY: usize = 4096;

/// The MQTT broker to publish to, and how to log in.
#[derive(Clone, Debug)]
pub struct BrokerTarget {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (1883 for plain MQTT).
    pub port: u16,
    /// MQTT client id; must be non-empty (the session is persistent so unacknowledged
    /// publishes survive a reconnect). With several connections, connection `k` uses
    /// `{client_id}-{k}`.
    pub client_id: String,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password (used only with a user name).
    pub password: Option<String>,
    /// TLS (an `mqtts://` broker): the binary builds it with `ingest::source::Endpoint`.
    /// `None`: plain TCP.
    pub tls: Option<rumqttc::TlsConfiguration>,
}

/// `localhost:1883`, plain TCP, no login, client id `fixahead-simulator` (the default
/// of [`crate::LiveConfig`]; [`crate::replay::ReplayConfig`]'s is `fixahead-replay`).
impl Default for BrokerTarget {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 1883,
            client_id: "fixahead-simulator".into(),
            username: None,
            password: None,
            tls: None,
        }
    }
}

impl BrokerTarget {
    /// The default target with host, port and login from
    /// `mqtt://[user[:password]@]host[:port]` (also `tcp://`; the port defaults to 1883).
    /// `mqtts://` is refused here: TLS needs trust settings, which the binary resolves
    /// (`ingest::source::Endpoint`) into [`BrokerTarget::tls`].
    pub fn from_mqtt_url(url: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected mqtt://host[:port]"))?;
        match scheme {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" => {
                return Err(bad(
                    "TLS URLs are resolved by the caller into BrokerTarget::tls; use mqtt:// here",
                ))
            }
            _ => return Err(bad("the scheme must be mqtt:// or tcp://")),
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        let port = match port {
            None => 1883,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("the port must be 1-65535"))?,
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (Some(user.to_owned()), Some(pass.to_owned())),
                None => (Some(u.to_owned()), None),
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            username,
            password,
            ..Self::default()
        })
    }

    /// Refuses an empty client id or host.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::InvalidLiveConfig(msg.into()));
        if self.client_id.is_empty() {
            return bad("client_id must not be empty");
        }
        if self.host.is_empty() {
            return bad("host must not be empty");
        }
        Ok(())
    }

    /// Options for one connection to this broker under `client_id`: a persistent
    /// session, large packets, many publishes in flight.
    pub(crate) fn mqtt_options(&self, client_id: String) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        options
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
            .set_inflight(INFLIGHT)
            .set_request_channel_capacity(REQUEST_CAPACITY)
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(false);
        if let Some(user) = &self.username {
            options.set_credentials(user, self.password.as_deref().unwrap_or_default());
        }
        if let Some(tls) = &self.tls {
            options.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mqtt_urls() {
        let c = BrokerTarget::from_mqtt_url("mqtt://localhost:1884").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("localhost", 1884));
        let c = BrokerTarget::from_mqtt_url("tcp://u:p@broker/").unwrap();
        assert_eq!(c.port, 1883);
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p"));
        let c = BrokerTarget::from_mqtt_url("mqtt://[::1]:1900").unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 1900));
        for bad in [
            "localhost:1883",
            "mqtts://h",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "http://h",
        ] {
            assert!(BrokerTarget::from_mqtt_url(bad).is_err(), "{bad}");
        }
    }
}
