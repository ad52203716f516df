//! libFuzzer target for `domain::wire::decode`: `cargo +nightly fuzz run decode`.
//!
//! The input's first byte picks the topic: 0, 1 and 2 give a valid telemetry, fault or
//! status topic with the rest of the input as the payload, so most runs exercise the
//! payload rules; any other first byte means the input is `topic \n payload`, with the
//! topic read as (lossy) UTF-8, so the topic parser is fuzzed too.
//!
//! Every input must be decoded or rejected without a panic; a rejection must carry a
//! detail, and an accepted message the topic's device id. The deeper checks (field by
//! field against an independent parse) live in domain/tests/fuzz_decode.rs.

#![no_main]

use std::sync::OnceLock;

use domain::wire::{decode, MessageKind};
use domain::{DeviceId, ProfileSet};
use libfuzzer_sys::fuzz_target;

fn profiles() -> &'static ProfileSet {
    static PROFILES: OnceLock<ProfileSet> = OnceLock::new();
    PROFILES.get_or_init(ProfileSet::builtin)
}

fn split(data: &[u8]) -> Option<(String, &[u8])> {
    let (&first, rest) = data.split_first()?;
    if let Some(&kind) = MessageKind::ALL.get(usize::from(first)) {
        let id = DeviceId::parse("fuzz-1").expect("a valid id");
        return Some((kind.topic(&id), rest));
    }
    let (topic, payload) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    Some((String::from_utf8_lossy(topic).into_owned(), payload))
}

fuzz_target!(|data: &[u8]| {
    let Some((topic, payload)) = split(data) else {
        return;
    };
    match decode(&topic, payload, profiles()) {
        Ok(msg) => {
            let id = msg.device_id().as_str();
            assert!(topic.starts_with(&format!("fixahead/v1/{id}/")), "{topic}");
        }
        Err(rejection) => assert!(!rejection.detail.trim().is_empty(), "{rejection:?}"),
    }
});
