//! The active model versions, for the console's models page: the same figures
//! `GET /health` shows under `models` (the process's model registry), read through
//! the health reporter the process gave [`AppState`].

use std::collections::BTreeMap;

use super::AppState;

impl AppState {
    /// The active model version per device type, as `/health` reports them under
    /// `models`; empty when the process scores nothing (or its reporter says nothing
    /// about models). Calls the health reporter: run it on the blocking pool.
    pub fn active_models(&self) -> BTreeMap<String, String> {
        let health = (self.health)();
        health
            .get("models")
            .and_then(serde_json::Value::as_object)
            .map(|models| {
                models
                    .iter()
                    .filter_map(|(t, v)| v.as_str().map(|v| (t.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{AppState, TicketConfig, TicketService};

    fn state(health: serde_json::Value) -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let hot = dir.path().join("hot.db");
        drop(store::hot::HotStore::open(&hot, store::Synchronous::Normal).unwrap());
        let tickets =
            TicketService::open(&dir.path().join("tickets.db"), TicketConfig::default()).unwrap();
        let state = AppState::new(
            tickets,
            store::hot::StoreReader::open(&hot).unwrap(),
            domain::ProfileSet::builtin(),
            prometheus::Registry::new(),
            Arc::new(move || health.clone()),
        );
        (dir, state)
    }

    #[test]
    fn active_models_are_those_health_reports() {
        let (_dir, s) = state(serde_json::json!({
            "ingest": {},
            "models": {"washer": "washer-v3", "fridge": "fridge-v1", "odd": 7}
        }));
        let models = s.active_models();
        assert_eq!(models.len(), 2);
        assert_eq!(models["washer"], "washer-v3");
        let (_dir, none) = state(serde_json::json!({"ingest": {}}));
        assert!(none.active_models().is_empty());
        let (_dir, null) = state(serde_json::Value::Null);
        assert!(null.active_models().is_empty());
    }
}
