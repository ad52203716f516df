//! The service world in `demo`: customers, the planner and engineers playing against
//! the demo's own API on the scaled service clock, fed by the live fleet's ground
//! truth as it is appended.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use domain::{ProfileSet, Role};
use simulators::service::people::{customers, engineers};
use simulators::service::ServiceConfig;
use simulators::{DeviceInfo, GroundTruthEvent};
use tokio_util::sync::CancellationToken;

use super::api::Api;
use super::play::{Keys, Play, Rule};
use crate::app::Running;
use crate::clock::ServiceClock;
use crate::Result;

/// What the demo's service world needs.
pub struct LiveWorld {
    /// The fleet's devices.
    pub devices: Vec<DeviceInfo>,
    /// The ground truth file the live fleet appends to.
    pub ground_truth: PathBuf,
    /// The service clock (scaled).
    pub clock: ServiceClock,
    /// Seed of the world.
    pub seed: u64,
    /// Engineers.
    pub engineers: usize,
    /// The demo's engineer account, which becomes the first engineer.
    pub engineer_login: String,
    /// ... and its display name.
    pub engineer_name: String,
}

/// Plays the service world every `every` of wall time until `stop`.
pub async fn run(
    running: &Running,
    profiles: ProfileSet,
    world: LiveWorld,
    every: Duration,
    stop: CancellationToken,
) -> Result<()> {
    let config = ServiceConfig {
        seed: world.seed,
        engineers: world.engineers,
        ..ServiceConfig::default()
    };
    let regions: Vec<String> = world
        .devices
        .iter()
        .map(|d| d.region.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut people = engineers(&config, &regions, &super::skills(&profiles));
    if let Some(first) = people.first_mut() {
        let old = std::mem::replace(&mut first.login, world.engineer_login.clone());
        first.display_name = world.engineer_name.clone();
        for e in people.iter_mut().skip(1) {
            if e.supervisor.as_deref() == Some(old.as_str()) {
                e.supervisor = Some(world.engineer_login.clone());
            }
        }
    }
    let access = running.access.clone();
    let logins: Vec<String> = people.iter().map(|e| e.login.clone()).collect();
    let keys = tokio::task::block_in_place(|| {
        let mut engineers = std::collections::HashMap::new();
        for login in logins {
            engineers.insert(login.clone(), access.create(Role::Engineer, &login)?.0);
        }
        Ok::<_, store::Error>(Keys {
            admin: access.create(Role::Admin, "demo service world")?.0,
            planner: access.create(Role::Planner, "demo planner desk")?.0,
            integration: access.create(Role::Integration, "demo call centre")?.0,
            engineers,
        })
    })?;
    let api = Api::new(running.http_addr)?;
    let routes = api.routes(&keys.admin).await?;
    let mut play = Play::new(
        api,
        keys,
        Rule::Fixahead,
        config.clone(),
        profiles,
        people,
        customers(&config, &world.devices),
        world.devices.clone(),
        routes,
    );
    play.create_engineers().await?;
    let ids = world
        .devices
        .iter()
        .map(|d| d.device_id.as_str().to_owned())
        .collect();
    play.put_directory(&ids).await?;
    // The warm-up's failures are history: the world knows them, nobody calls.
    let mut offset = 0;
    let (old, next) = read_from(&world.ground_truth, offset);
    offset = next;
    play.learn(old, false);
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let (new, next) = read_from(&world.ground_truth, offset);
        offset = next;
        if !new.is_empty() {
            play.learn(new, true);
        }
        if let Err(e) = play.tick(world.clock.now()).await {
            tracing::warn!(error = %e, "The demo's service world failed a round; trying again");
        }
    }
}

/// Ground-truth events after byte `offset` of `path` (complete lines only), and the
/// offset after them.
fn read_from(path: &std::path::Path, offset: u64) -> (Vec<GroundTruthEvent>, u64) {
    let Ok(mut file) = std::fs::File::open(path) else {
        return (Vec::new(), offset);
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return (Vec::new(), offset);
    }
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut at = offset;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !line.ends_with('\n') {
                    break;
                }
                at += n as u64;
                if let Ok(e) = serde_json::from_str::<GroundTruthEvent>(line.trim()) {
                    out.push(e);
                }
            }
        }
    }
    (out, at)
}
