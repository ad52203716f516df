//! Broker URLs: `mqtt://` and `mqtts://` parsed ([`parse_mqtt_url`]) and, with the
//! TLS files, turned into a connection target ([`Endpoint`]).

use super::tls::{TlsConfig, TlsFiles};
use crate::{Error, Result};

/// The default port of `mqtt://`.
pub const MQTT_PORT: u16 = 1883;
/// The default port of `mqtts://`.
pub const MQTTS_PORT: u16 = 8883;

/// A broker URL: `mqtt://host[:port]` (TCP, port 1883 by default) or
/// `mqtts://host[:port]` (TLS, port 8883 by default). An IPv6 address goes in brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `mqtts://`: connect with TLS.
    pub tls: bool,
}

/// Parses `mqtt://host[:port]` or `mqtts://host[:port]`. Credentials, paths and queries
/// are rejected: the user name and password are settings of their own, kept out of
/// URLs that get logged.
pub fn parse_mqtt_url(url: &str) -> Result<BrokerUrl> {
    let bad = |why: &str| Error::Mqtt(format!("invalid MQTT URL {url:?}: {why}"));
    let (rest, tls) = if let Some(rest) = url.strip_prefix("mqtt://") {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix("mqtts://") {
        (rest, true)
    } else {
        return Err(bad("expected mqtt://host[:port] or mqtts://host[:port]"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?', '#']) {
        return Err(bad(
            "expected mqtt://host[:port] or mqtts://host[:port], with no path or credentials",
        ));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address needs its closing ']'"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':' after ']'"))?,
                ),
            ),
        }
    } else {
        match rest.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err(bad("an IPv6 address goes in brackets: [::1]:1883"))
            }
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("missing or malformed host"));
    }
    let port = match port {
        None if tls => MQTTS_PORT,
        None => MQTT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("the port must be a number 1-65535"))?,
    };
    if tls {
        // rumqttc connects to `{host}:{port}`, which an IPv6 literal cannot be, and
        // checks the certificate against the host as written.
        if host.contains(':') {
            return Err(bad(
                "mqtts:// to an IPv6 address is not supported (the MQTT client cannot \
                 connect to one); use a host name",
            ));
        }
        rustls::pki_types::ServerName::try_from(host)
            .map_err(|_| bad("the host is neither a DNS name nor an IP address"))?;
    }
    Ok(BrokerUrl {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// Where to connect and how: a broker URL with, for `mqtts://`, its TLS configuration.
/// The one place the binary's commands (run, simulate, replay, bench) turn
/// `--mqtt-url` and the TLS files into a connection target.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Host name or IP address as rumqttc takes it: an IPv6 address in brackets, since
    /// rumqttc connects to `{host}:{port}`.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `Some` for `mqtts://`.
    pub tls: Option<TlsConfig>,
}

impl Endpoint {
    /// Parses `url` and, for `mqtts://`, loads the TLS files. TLS files with an
    /// `mqtt://` URL are an error rather than silently unused.
    pub fn resolve(url: &str, files: &TlsFiles) -> Result<Self> {
        let parsed = parse_mqtt_url(url)?;
        let tls = if parsed.tls {
            Some(TlsConfig::load(files)?)
        } else if !files.is_empty() {
            return Err(Error::Tls(format!(
                "a CA file or client certificate is set but {url:?} is not mqtts://"
            )));
        } else {
            None
        };
        let host = if parsed.host.contains(':') {
            format!("[{}]", parsed.host)
        } else {
            parsed.host
        };
        Ok(Self {
            host,
            port: parsed.port,
            tls,
        })
    }

    /// The rumqttc transport: TCP, or TLS for `mqtts://`.
    pub fn transport(&self) -> rumqttc::Transport {
        match &self.tls {
            Some(t) => t.transport(),
            None => rumqttc::Transport::Tcp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, tls: bool) -> BrokerUrl {
        BrokerUrl {
            host: host.into(),
            port,
            tls,
        }
    }

    #[test]
    fn parses_mqtt_and_mqtts_urls_with_default_ports() {
        for (text, want) in [
            ("mqtt://localhost:1884", url("localhost", 1884, false)),
            ("mqtt://broker", url("broker", 1883, false)),
            ("mqtt://broker/", url("broker", 1883, false)),
            ("mqtt://10.0.0.1:1", url("10.0.0.1", 1, false)),
            ("mqtt://[::1]:1883", url("::1", 1883, false)),
            ("mqtt://[::1]", url("::1", 1883, false)),
            ("mqtt://[fe80::1]:2000", url("fe80::1", 2000, false)),
            ("mqtts://broker", url("broker", 8883, true)),
            (
                "mqtts://broker.example.com:8884",
                url("broker.example.com", 8884, true),
            ),
            ("mqtts://127.0.0.1:9000/", url("127.0.0.1", 9000, true)),
        ] {
            assert_eq!(parse_mqtt_url(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn rejects_malformed_mqtt_urls() {
        for bad in [
            "localhost:1883",
            "http://x",
            "tcp://x",
            "ssl://x",
            "MQTT://x",
            "mqtt://",
            "mqtts://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://h:",
            "mqtt://h:65536",
            "mqtt://:1883",
            "mqtt://u:p@h:1883",
            "mqtts://u@h",
            "mqtt://h/topic",
            "mqtt://h?x=1",
            "mqtt://::1",
            "mqtt://::1:1883",
            "mqtt://[::1",
            "mqtt://[::1]x",
            "mqtt://[nope]:1883",
            "mqtt://h st:1",
            "mqtts://[::1]:8883",
            "mqtts://bad_name!:8883",
        ] {
            assert!(parse_mqtt_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_files_need_mqtts_and_readable_pem() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let files = TlsFiles {
            ca_file: Some(ca.clone()),
            ..TlsFiles::default()
        };
        // A CA file with mqtt:// is a mistake, not silently unused.
        let e = Endpoint::resolve("mqtt://h", &files).unwrap_err();
        assert!(e.to_string().contains("not mqtts://"), "{e}");
        // Missing, empty and garbage files are clear errors, never a panic.
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        std::fs::write(&ca, "").unwrap();
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("not a usable CA certificate"), "{e}");
        // A certificate without its key.
        let files = TlsFiles {
            client_cert: Some(ca.clone()),
            ..TlsFiles::default()
        };
        let e = Endpoint::resolve("mqtts://h", &files).unwrap_err();
        assert!(e.to_string().contains("needs its key"), "{e}");
        // rumqttc connects to `{host}:{port}`: an IPv6 address keeps its brackets.
        let v6 = Endpoint::resolve("mqtt://[::1]:1884", &TlsFiles::default()).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("[::1]", 1884));
        // Plain TCP needs nothing.
        let plain = Endpoint::resolve("mqtt://h", &TlsFiles::default()).unwrap();
        assert!(plain.tls.is_none());
        assert!(matches!(plain.transport(), rumqttc::Transport::Tcp));
    }
}
