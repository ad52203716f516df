//! Settings: the documented examples, what serde rejects, what the build rejects, and
//! how the flags and the file combine.

use std::path::PathBuf;

use super::*;

/// Builds settings from a file's text, with `token` as the environment's InfluxDB
/// token.
fn build(text: &str, token: Option<&str>) -> Result<Settings> {
    let file: ConfigFile = toml::from_str(text)?;
    Settings::from_file(file, token.map(str::to_owned))
}

/// The first TOML example of docs/configuration.md after `heading` (from the start
/// when `None`).
fn documented(heading: Option<&str>) -> String {
    let doc = include_str!("../../../docs/configuration.md");
    let section = match heading {
        Some(h) => &doc[doc.find(h).expect("the section in docs/configuration.md")..],
        None => doc,
    };
    let start = section.find("```toml\n").expect("an example") + 8;
    let end = start + section[start..].find("```").expect("closed code block");
    section[start..end].to_owned()
}

#[test]
fn rejects_unknown_keys() {
    let err =
        toml::from_str::<ConfigFile>("[mqtt]\nlisten = \"127.0.0.1:1\"\nlistn = 2\n").unwrap_err();
    assert!(err.to_string().contains("listn"), "{err}");
}

#[test]
fn the_documented_example_is_valid() {
    let text = documented(None);
    let file: ConfigFile = toml::from_str(&text).expect("docs/configuration.md example parses");
    assert_eq!(file.ingest.batch_interval_ms, 0);
    assert_eq!(
        file.fleet,
        api::fleet::FleetSettings::default(),
        "[fleet] shows the defaults"
    );
    assert_eq!(
        file.procedures,
        api::tickets::ProcedureConfig::default(),
        "[procedures] shows the default (the seeds' example)"
    );
    assert_eq!(
        file.satisfaction,
        api::tickets::SatisfactionConfig::default(),
        "[satisfaction] shows the defaults"
    );
    let settings = build(&text, None).unwrap();
    assert_eq!(settings.data_dir, PathBuf::from("/var/lib/fixahead"));
    let documented = settings.dead_letters;
    let default = build("", None).unwrap().dead_letters;
    assert_eq!(documented, default, "the example shows the defaults");
    assert_eq!(default, DeadLetterRetention::default());
    assert_eq!(default.max_rows, 100_000);
    assert_eq!(default.max_age_ms, 30 * domain::Timestamp::DAY_MS);
    assert_eq!(
        settings.dispatch,
        api::dispatch::DispatchConfig::default(),
        "[dispatch] shows the defaults"
    );
}

#[test]
fn dispatch_rules_are_typed_and_checked() {
    let s = build(
        "[dispatch]\nenabled = false\nvisit = \"90m\"\n[dispatch.device_types.washer]\nnormal = \"auto\"\n",
        None,
    )
    .unwrap();
    assert!(!s.dispatch.enabled);
    assert_eq!(s.dispatch.visit.millis(), 90 * 60_000);
    assert_eq!(
        s.dispatch.mode(domain::Priority::Normal, "washer"),
        api::dispatch::DispatchMode::Auto
    );
    assert!(build("[dispatch]\nspeed_kmh = 0.0\n", None).is_err());
    assert!(build("[dispatch]\nurgent = \"sometimes\"\n", None).is_err());
    assert!(build("[dispatch]\nmanagr = \"x\"\n", None).is_err());
}

#[test]
fn rejects_values_serde_cannot() {
    for bad in [
        "[mqtt]\nclient_id = \"\"\n",
        "[mqtt]\nkeep_alive_s = 1\n",
        "[mqtt]\nkeep_alive_s = 70000\n",
        "[ingest]\nbatch_max = 0\n",
        "[mqtt]\nurl = \"http://x\"\n",
        "[mqtt]\nurl = \"mqtts://[::1]\"\n",
        "[mqtt]\nprotocol = \"5\"\n",
        // TLS files without mqtts://, or a CA file that does not exist.
        "[mqtt]\nca_file = \"/etc/ssl/certs/ca-certificates.crt\"\n",
        "[mqtt]\nurl = \"mqtt://h\"\nca_file = \"/etc/ssl/certs/ca-certificates.crt\"\n",
        "[mqtt]\nurl = \"mqtts://h\"\nca_file = \"/nonexistent/ca.pem\"\n",
        "[mqtt]\nurl = \"mqtts://h\"\nclient_key = \"/nonexistent/key.pem\"\n",
        "[dead_letters]\nmax_rows = 0\n",
        "[dead_letters]\nmax_age = \"0d\"\n",
        "[dead_letters]\nmax_age = \"-1d\"\n",
        "[dead_letters]\nmax_age = \"0.1ms\"\n",
        "[dead_letters]\nmax_age = \"30\"\n",
        "[fleet]\nalarm_fdr = 0\n",
        "[fleet]\nalarm_min_ratio = 0.5\n",
        "[fleet]\nalarm_min_count = 0\n",
        "[satisfaction]\ndissatisfied_at_most = 5\n",
        "[[procedures.procedure]]\nname = \"a\"\nmatch = { source = [\"reactive\"] }\nsteps = []\n",
        "[[procedures.procedure]]\nname = \"a\"\nsteps = [{ step = \"act\", within = \"4h\" }, { step = \"respond\", within = \"8h\" }]\n",
    ] {
        toml::from_str::<ConfigFile>(bad).unwrap();
        assert!(build(bad, None).is_err(), "{bad}");
    }
    // A closed set is an enum: serde itself refuses an unknown protocol version.
    let err =
        toml::from_str::<ConfigFile>("[mqtt]\nurl = \"mqtt://h\"\nprotocol = \"4\"\n").unwrap_err();
    assert!(err.to_string().contains("3.1.1"), "{err}");
}

#[test]
fn the_documented_archive_example_is_valid_and_shows_the_defaults() {
    let text = documented(Some("## Archive to InfluxDB"));
    let file: ConfigFile = toml::from_str(&text).expect("the archive example parses");
    let influx = file.archive.influxdb.as_ref().expect("[archive.influxdb]");
    assert!(
        influx.token.is_none(),
        "the example keeps the token out of the file"
    );
    let settings = influx.settings(&file.data_dir).unwrap();
    let defaults = InfluxDbConfig::default()
        .settings(&file.data_dir)
        .unwrap_err()
        .to_string();
    assert!(defaults.contains("url"), "url has no default: {defaults}");
    use ingest::archive::ArchiveSettings as A;
    assert_eq!(settings.batch_size, A::DEFAULT_BATCH_SIZE);
    assert_eq!(settings.flush_interval, A::DEFAULT_FLUSH_INTERVAL);
    assert_eq!(settings.timeout, A::DEFAULT_TIMEOUT);
    assert_eq!(settings.max_backoff, A::DEFAULT_MAX_BACKOFF);
    assert_eq!(settings.cursor_path, file.data_dir.join(A::CURSOR_FILE));
    // The token: the environment's, else the file's, else an error at start.
    let err = influx.target(None).unwrap_err().to_string();
    assert!(err.contains(INFLUXDB_TOKEN_ENV), "{err}");
    let err = build(&text, None).unwrap_err().to_string();
    assert!(err.contains(INFLUXDB_TOKEN_ENV), "{err}");
    let built = build(&text, Some("env-token")).unwrap();
    assert_eq!(built.archive.unwrap().target.token, "env-token");
    assert_eq!(
        influx.target(Some("env-token".into())).unwrap().token,
        "env-token"
    );
    let mut with_file_token = influx.clone();
    with_file_token.token = Some("file-token".into());
    assert_eq!(with_file_token.target(None).unwrap().token, "file-token");
    assert_eq!(
        with_file_token
            .target(Some("env-token".into()))
            .unwrap()
            .token,
        "env-token"
    );
    assert_eq!(
        with_file_token.target(Some(" ".into())).unwrap().token,
        "file-token",
        "an empty variable does not count"
    );
    assert!(
        !format!("{with_file_token:?}").contains("file-token"),
        "Debug hides the token"
    );
    // No archive unless the section is there.
    assert!(build("", None).unwrap().archive.is_none());
}

#[test]
fn archive_keys_are_checked() {
    let base = "[archive.influxdb]\nurl = \"http://influx:8086\"\norg = \"o\"\nbucket = \"b\"\n";
    build(base, Some("t")).unwrap();
    let err = toml::from_str::<ConfigFile>(&format!("{base}buket = \"x\"\n")).unwrap_err();
    assert!(err.to_string().contains("buket"), "{err}");
    for bad in [
        "url = \"https://influx:8086\"",
        "url = \"influx:8086\"",
        "url = \"http://influx:8086/api/v2/write\"",
        "org = \"\"",
        "bucket = \" b\"",
        "token = \"\"",
        "batch_size = 0",
        "batch_size = 100001",
        "flush_interval = \"0s\"",
        "flush_interval = \"1\"",
        "timeout = \"10ms\"",
        "max_backoff = \"2h\"",
    ] {
        let key = bad.split(' ').next().unwrap();
        let text = base
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} ")))
            .chain([bad])
            .collect::<Vec<_>>()
            .join("\n");
        toml::from_str::<ConfigFile>(&text).unwrap();
        assert!(build(&text, Some("t")).is_err(), "{bad}");
    }
    let missing = "[archive.influxdb]\norg = \"o\"\nbucket = \"b\"\n";
    assert!(build(missing, Some("t")).is_err(), "url is required");
}

#[test]
fn reads_a_full_file() {
    let settings = build(
        "data_dir = \"/tmp/x\"\n[mqtt]\nurl = \"mqtt://broker:1883\"\n[http]\nlisten = \"0.0.0.0:9000\"\n[ingest]\nsynchronous = \"normal\"\n[dead_letters]\nmax_rows = 1\nmax_age = \"12h\"\n",
        None,
    )
    .unwrap();
    assert!(
        !settings.allows_anonymous(),
        "run requires credentials by default"
    );
    assert!(matches!(settings.mqtt.broker, Broker::External { .. }));
    assert_eq!(settings.http.listen.port(), 9000);
    assert_eq!(settings.models.dir, PathBuf::from("/tmp/x/models"));
    assert_eq!(settings.ingest.synchronous, Synchronous::Normal);
    assert_eq!(
        (
            settings.dead_letters.max_rows,
            settings.dead_letters.max_age_ms
        ),
        (1, 12 * domain::Timestamp::HOUR_MS)
    );
}

#[test]
fn flags_override_the_file_and_are_checked_with_it() {
    let file: ConfigFile = toml::from_str(
        "data_dir = \"/from/file\"\n[mqtt]\nurl = \"mqtt://file:1883\"\nprotocol = \"5\"\n[ingest]\nmax_future_skew = \"2d\"\n",
    )
    .unwrap();
    let overrides = Overrides {
        data_dir: Some("/from/flag".into()),
        mqtt_protocol: Some("3.1.1".into()),
        max_future_skew: Some("off".into()),
        model_dir: Some("/models".into()),
        ..Overrides::default()
    };
    let settings = Settings::build(file.clone(), &overrides).unwrap();
    assert_eq!(settings.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(settings.mqtt.protocol, Protocol::V311);
    assert_eq!(settings.ingest.max_future_ms, None);
    assert_eq!(settings.models.dir, PathBuf::from("/models"));
    // The file alone: its values, parsed once.
    let plain = Settings::build(file.clone(), &Overrides::default()).unwrap();
    assert_eq!(plain.mqtt.protocol, Protocol::V5);
    assert_eq!(
        plain.ingest.max_future_ms,
        Some(2 * domain::Timestamp::DAY_MS)
    );
    assert_eq!(plain.models.dir, PathBuf::from("/from/file/models"));
    // A flag that does not parse is an error naming it; so is one the file's other
    // keys rule out (MQTT 5 with the embedded broker).
    for bad in [
        Overrides {
            mqtt_protocol: Some("4".into()),
            ..Overrides::default()
        },
        Overrides {
            max_future_skew: Some("soon".into()),
            ..Overrides::default()
        },
    ] {
        assert!(Settings::build(file.clone(), &bad).is_err(), "{bad:?}");
    }
    let embedded_v5 = Overrides {
        mqtt_protocol: Some("5".into()),
        ..Overrides::default()
    };
    let err = Settings::build(ConfigFile::default(), &embedded_v5).unwrap_err();
    assert!(err.to_string().contains("external broker"), "{err}");
    // --allow-anonymous only turns it on; the file's `false` otherwise stands.
    let anon = Overrides {
        allow_anonymous: true,
        ..Overrides::default()
    };
    assert!(Settings::build(ConfigFile::default(), &anon)
        .unwrap()
        .allows_anonymous());
    assert!(
        !Settings::build(ConfigFile::default(), &Overrides::default())
            .unwrap()
            .allows_anonymous()
    );
}
