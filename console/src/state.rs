//! What the console's handlers share.

use std::sync::Arc;

use store::users::UserStore;

/// How the console is served.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// Mark cookies `Secure`: set when the HTTP listener serves TLS itself, or sits
    /// behind a proxy that does (`[console] secure_cookies`).
    pub secure_cookies: bool,
}

/// What the console's handlers share: the API's state (its services and stores), the
/// accounts and the settings. Cheap to clone.
#[derive(Clone)]
pub struct ConsoleState {
    pub(crate) api: api::AppState,
    pub(crate) users: UserStore,
    pub(crate) settings: Arc<ConsoleSettings>,
}

impl ConsoleState {
    /// The console over the API's `api` state and the accounts in `users`.
    pub fn new(api: api::AppState, users: UserStore, settings: ConsoleSettings) -> Self {
        Self {
            api,
            users,
            settings: Arc::new(settings),
        }
    }
}
