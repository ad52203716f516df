//! The MQTT broker a benchmark publishes to: `--mqtt-url` (with its TLS flags), or an
//! embedded one started in this process as `fixahead run` starts it.

use std::net::SocketAddr;

use crate::Result;

/// Where to connect.
pub(crate) struct Broker {
    /// Host name or address, as rumqttc takes it.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// TLS for an `mqtts://` URL.
    pub(crate) tls: Option<::ingest::source::TlsConfig>,
}

impl Broker {
    /// The broker at `url`, or a new embedded broker on a free loopback port.
    pub(crate) fn resolve(url: Option<&str>, tls: &server::cli::MqttTlsArgs) -> Result<Broker> {
        Ok(match url {
            Some(url) => {
                let endpoint = tls.endpoint(url)?;
                Broker {
                    host: endpoint.host,
                    port: endpoint.port,
                    tls: endpoint.tls,
                }
            }
            None => {
                let settings =
                    ::ingest::broker::BrokerSettings::new(SocketAddr::from(([127, 0, 0, 1], 0)));
                let addr = ::ingest::broker::start(&settings)?.addr();
                Broker {
                    host: addr.ip().to_string(),
                    port: addr.port(),
                    tls: None,
                }
            }
        })
    }
}
