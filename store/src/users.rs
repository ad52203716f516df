//! People who sign in to the console: accounts, sessions and failed sign-ins, in
//! `keys.db` beside the API keys (the same file: both say who may do what, and
//! `fixahead users add` works beside a running server as `fixahead keys create` does).
//!
//! * **Passwords** are hashed with argon2id (the `argon2` crate's defaults: 19 MiB,
//!   2 passes, 1 lane, the OWASP minimum) in the PHC string format, salted per hash.
//!   A person's password, unlike a generated API key, is guessable, so a slow hash is
//!   the point. Generated passwords have 16 characters of an unambiguous 55-letter
//!   alphabet (about 92 bits).
//! * **Sessions**: a session token is 32 random bytes, sent once in the cookie; the
//!   store keeps its SHA-256 (like API keys: the token carries 256 random bits). Each
//!   session has its own CSRF token. A session ends on sign-out, after
//!   [`SessionPolicy::idle_ms`] without a request, after [`SessionPolicy::max_age_ms`]
//!   in all, and for every session of a person when they are disabled, their password
//!   is reset or their role changes.
//! * **Failed sign-ins** are counted per login and per address in a sliding window
//!   ([`SignInPolicy`]); past either limit, sign-in is refused without checking the
//!   password until the window has passed. The counts live in the file, so a restart
//!   does not reset them and several processes share them.
//!
//! Everything here is blocking; async callers use `spawn_blocking`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use domain::{Lang, Role, Timestamp};
use rand::{Rng as _, RngCore as _};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::access::KEYS;
use crate::sqlite::{self, Access, Synchronous};
use crate::{Error, Result};

/// Longest login.
pub const MAX_LOGIN_LEN: usize = 64;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_LEN: usize = 100;
/// Shortest password a person may choose.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted (argon2 hashes any length; this bounds the work).
pub const MAX_PASSWORD_LEN: usize = 256;

/// The letters of generated passwords: no 0/O, 1/l/I.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    lang TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash BLOB PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    address TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS sign_in_failures (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    login TEXT NOT NULL,
    address TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_failures_by_login ON sign_in_failures (login, at);
CREATE INDEX IF NOT EXISTS sign_in_failures_by_address ON sign_in_failures (address, at);
";

/// A person's account, without the password hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// Account id.
    pub id: i64,
    /// What they sign in with; also the engineer name tickets are assigned to.
    pub login: String,
    /// How pages and ticket logs name them.
    pub display_name: String,
    /// What they may do: admin, planner or engineer.
    pub role: Role,
    /// Their language: `en` or `zh` (Simplified Chinese).
    pub lang: Lang,
    /// Their IANA time zone (`Asia/Shanghai`), for the times pages show.
    pub time_zone: String,
    /// When the account was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: Timestamp,
    /// When it was disabled; `null` while it may sign in.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub disabled_at: Option<Timestamp>,
}

/// What a new account holds (its password is generated).
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    /// Login (checked by [`check_login`]).
    pub login: &'a str,
    /// Display name (checked by [`check_display_name`]); the login when empty.
    pub display_name: &'a str,
    /// Admin, planner or engineer.
    pub role: Role,
    /// Their language.
    pub lang: Lang,
    /// IANA time zone.
    pub time_zone: &'a str,
}

/// How long sessions live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session without a request for this long has ended.
    pub idle_ms: i64,
    /// A session older than this has ended, however active.
    pub max_age_ms: i64,
}

impl Default for SessionPolicy {
    /// 8 hours idle (a working day's pause), 7 days in all.
    fn default() -> Self {
        Self {
            idle_ms: 8 * 3_600_000,
            max_age_ms: 7 * 86_400_000,
        }
    }
}

/// How many failed sign-ins are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignInPolicy {
    /// Failures per login within the window before sign-in is refused.
    pub per_login: u32,
    /// Failures per client address within the window.
    pub per_address: u32,
    /// The window.
    pub window_ms: i64,
}

impl Default for SignInPolicy {
    /// 5 per login and 20 per address in 15 minutes.
    fn default() -> Self {
        Self {
            per_login: 5,
            per_address: 20,
            window_ms: 15 * 60_000,
        }
    }
}

/// How a sign-in ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignIn {
    /// The password is right and the account enabled.
    Accepted(UserInfo),
    /// Wrong login or password (which of the two is not said).
    Refused,
    /// Too many failures for this login or address; try again after `until`.
    Throttled {
        /// When the oldest counted failure leaves the window.
        until: Timestamp,
    },
    /// The password is right but the account is disabled.
    Disabled,
}

/// A session that is valid now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Whose it is.
    pub user: UserInfo,
    /// The token every state-changing form must carry.
    pub csrf: String,
    /// When it started.
    pub created_at: Timestamp,
}

/// A session just started: the token for the cookie (shown once) and the session.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// The cookie's value.
    pub token: String,
    /// The session.
    pub session: Session,
}

/// Checks a login: 1 to [`MAX_LOGIN_LEN`] of `a-z`, `0-9`, `.`, `_`, `-`, starting
/// with a letter or digit.
pub fn check_login(login: &str) -> Result<()> {
    let ok = !login.is_empty()
        && login.len() <= MAX_LOGIN_LEN
        && login
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && login
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "a login must have 1 to {MAX_LOGIN_LEN} of a-z, 0-9, '.', '_', '-' and start with a letter or digit"
        )))
    }
}

/// Checks a display name: 1 to [`MAX_DISPLAY_NAME_LEN`] characters, no control
/// characters, not only spaces.
pub fn check_display_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0
        || n > MAX_DISPLAY_NAME_LEN
        || name.chars().any(char::is_control)
        || name.trim().is_empty()
    {
        return Err(Error::Invalid(format!(
            "a display name must have 1 to {MAX_DISPLAY_NAME_LEN} characters and no control characters"
        )));
    }
    Ok(())
}

/// Checks a person's role: admin, planner or engineer (integration is for API keys).
pub fn check_role(role: Role) -> Result<()> {
    if role == Role::Integration {
        return Err(Error::Invalid(
            "a person's role is admin, planner or engineer; integration is for API keys".into(),
        ));
    }
    Ok(())
}

/// Checks a time zone: an IANA name (`Asia/Shanghai`, `UTC`).
pub fn check_time_zone(tz: &str) -> Result<()> {
    tz.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
        Error::Invalid(format!(
            "unknown time zone {tz:?}: use an IANA name such as Asia/Shanghai or UTC"
        ))
    })
}

/// Checks a password a person chose: [`MIN_PASSWORD_LEN`] to [`MAX_PASSWORD_LEN`]
/// characters.
pub fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "a password must have {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

/// A new password: four groups of four unambiguous letters and digits, `-` between.
pub fn generate_password() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(char::from(
            PASSWORD_ALPHABET[rng.gen_range(0..PASSWORD_ALPHABET.len())],
        ));
    }
    out
}

pub(crate) fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Invalid(format!("cannot hash the password: {e}")))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to verify against when the login does not exist, so that an unknown login
/// takes as long as a wrong password (no account discovery by timing).
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no such account, no such password").unwrap_or_default())
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) const USER_COLUMNS: &str =
    "id, login, display_name, role, lang, time_zone, created_at, disabled_at";

pub(crate) fn user_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserInfo> {
    let role: String = row.get(3)?;
    let lang: String = row.get(4)?;
    Ok(UserInfo {
        id: row.get(0)?,
        login: row.get(1)?,
        display_name: row.get(2)?,
        role: role.parse().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown role {role:?}").into(),
            )
        })?,
        // A language this binary does not offer (a file edited by hand, or written by a
        // newer fixahead) falls back to the default rather than locking the person out.
        lang: lang.parse().unwrap_or_default(),
        time_zone: row.get(5)?,
        created_at: Timestamp(row.get(6)?),
        disabled_at: row.get::<_, Option<i64>>(7)?.map(Timestamp),
    })
}

/// People, sessions and failed sign-ins (`keys.db`). Cheap to clone.
#[derive(Clone)]
pub struct UserStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    sessions: SessionPolicy,
    sign_in: SignInPolicy,
}

impl fmt::Debug for UserStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStore")
            .field("path", &self.path)
            .field("sessions", &self.sessions)
            .field("sign_in", &self.sign_in)
            .finish_non_exhaustive()
    }
}

impl UserStore {
    /// Opens (creating if needed) the store at `path`, with the default policies.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = sqlite::open(path, Access::ReadWrite(Synchronous::Full), &KEYS)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
            sessions: SessionPolicy::default(),
            sign_in: SignInPolicy::default(),
        })
    }

    /// Opens `DATA_DIR/keys.db`.
    pub fn open_in(data_dir: &Path) -> Result<Self> {
        Self::open(&data_dir.join(crate::access::KEYS_DB))
    }

    /// With these session and sign-in policies.
    pub fn with_policies(mut self, sessions: SessionPolicy, sign_in: SignInPolicy) -> Self {
        self.sessions = sessions;
        self.sign_in = sign_in;
        self
    }

    /// The session policy in force.
    pub fn session_policy(&self) -> SessionPolicy {
        self.sessions
    }

    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut sqlite::lock(&self.conn))
    }

    /// Creates an account with a generated password; returns the password (shown
    /// once) and the account. [`Error::Conflict`] if the login is taken.
    pub fn add(&self, new: &NewUser<'_>) -> Result<(String, UserInfo)> {
        check_login(new.login)?;
        let display_name = if new.display_name.is_empty() {
            new.login
        } else {
            new.display_name
        };
        check_display_name(display_name)?;
        check_role(new.role)?;
        check_time_zone(new.time_zone)?;
        let password = generate_password();
        let hash = hash_password(&password)?;
        let created_at = crate::now();
        self.with_conn(|c| {
            let inserted = c.execute(
                "INSERT INTO users (login, display_name, role, lang, time_zone, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (login) DO NOTHING",
                params![
                    new.login,
                    display_name,
                    new.role.as_str(),
                    new.lang.as_str(),
                    new.time_zone,
                    hash,
                    created_at.millis()
                ],
            )?;
            if inserted == 0 {
                return Err(Error::Conflict(format!(
                    "there is already an account with the login {:?}",
                    new.login
                )));
            }
            let id = c.last_insert_rowid();
            Ok((password, get(c, id)?.expect("inserted above")))
        })
    }

    /// Every account, by login.
    pub fn list(&self) -> Result<Vec<UserInfo>> {
        self.with_conn(|c| {
            let mut st = c.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY login"))?;
            let rows = st.query_map([], user_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Account `id`.
    pub fn get(&self, id: i64) -> Result<Option<UserInfo>> {
        self.with_conn(|c| get(c, id))
    }

    /// The account with this login.
    pub fn by_login(&self, login: &str) -> Result<Option<UserInfo>> {
        self.with_conn(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE login = ?1"),
                [login],
                user_row,
            )
            .optional()?)
        })
    }

    /// Changes a person's display name, role, language and time zone. A new role ends
    /// their sessions (what they may do changed under them).
    pub fn update(
        &self,
        id: i64,
        display_name: &str,
        role: Role,
        lang: Lang,
        time_zone: &str,
    ) -> Result<UserInfo> {
        check_display_name(display_name)?;
        check_role(role)?;
        check_time_zone(time_zone)?;
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let before = get(&tx, id)?.ok_or_else(|| not_found(id))?;
            tx.execute(
                "UPDATE users SET display_name = ?2, role = ?3, lang = ?4, time_zone = ?5 WHERE id = ?1",
                params![id, display_name, role.as_str(), lang.as_str(), time_zone],
            )?;
            if before.role != role {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            }
            let after = get(&tx, id)?.ok_or_else(|| not_found(id))?;
            tx.commit()?;
            Ok(after)
        })
    }

    /// Changes only a person's language and time zone (their own choice).
    pub fn set_preferences(&self, id: i64, lang: Lang, time_zone: &str) -> Result<UserInfo> {
        check_time_zone(time_zone)?;
        self.with_conn(|c| {
            let n = c.execute(
                "UPDATE users SET lang = ?2, time_zone = ?3 WHERE id = ?1",
                params![id, lang.as_str(), time_zone],
            )?;
            if n == 0 {
                return Err(not_found(id));
            }
            get(c, id)?.ok_or_else(|| not_found(id))
        })
    }

    /// Disables (`true`) or enables an account. Disabling ends its sessions at once.
    pub fn set_disabled(&self, id: i64, disabled: bool) -> Result<UserInfo> {
        let at = crate::now();
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let n = if disabled {
                tx.execute(
                    "UPDATE users SET disabled_at = COALESCE(disabled_at, ?2) WHERE id = ?1",
                    params![id, at.millis()],
                )?
            } else {
                tx.execute("UPDATE users SET disabled_at = NULL WHERE id = ?1", [id])?
            };
            if n == 0 {
                return Err(not_found(id));
            }
            if disabled {
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            }
            let user = get(&tx, id)?.ok_or_else(|| not_found(id))?;
            tx.commit()?;
            Ok(user)
        })
    }

    /// Gives account `id` a new generated password (returned, shown once) and ends its
    /// sessions.
    pub fn reset_password(&self, id: i64) -> Result<(String, UserInfo)> {
        let password = generate_password();
        let user = self.store_password(id, &password)?;
        Ok((password, user))
    }

    /// Sets a password the person chose (checked by [`check_password`]) after checking
    /// their current one; ends their other sessions. [`Error::Invalid`] when `current`
    /// is wrong.
    pub fn change_password(&self, id: i64, current: &str, new: &str) -> Result<UserInfo> {
        check_password(new)?;
        let hash: Option<String> = self.with_conn(|c| {
            Ok(
                c.query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        })?;
        let hash = hash.ok_or_else(|| not_found(id))?;
        if !password_matches(current, &hash) {
            return Err(Error::Invalid("the current password is wrong".into()));
        }
        self.store_password(id, new)
    }

    fn store_password(&self, id: i64, password: &str) -> Result<UserInfo> {
        let hash = hash_password(password)?;
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let n = tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![id, hash],
            )?;
            if n == 0 {
                return Err(not_found(id));
            }
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            let user = get(&tx, id)?.ok_or_else(|| not_found(id))?;
            tx.commit()?;
            Ok(user)
        })
    }

    /// Checks a sign-in from `address` (the client's IP address). A failure is
    /// counted for the login and the address; past [`SignInPolicy`]'s limits the
    /// password is not checked at all until the window has passed.
    pub fn sign_in(&self, login: &str, password: &str, address: &str) -> Result<SignIn> {
        let now = crate::now();
        let since = now.millis() - self.sign_in.window_ms;
        let login = truncate(login, MAX_LOGIN_LEN * 4);
        let (throttled_until, row) = self.with_conn(|c| {
            let oldest = |column: &str, value: &str, limit: u32| -> Result<Option<i64>> {
                let times: Vec<i64> = c
                    .prepare_cached(&format!(
                        "SELECT at FROM sign_in_failures WHERE {column} = ?1 AND at > ?2 ORDER BY at DESC LIMIT ?3"
                    ))?
                    .query_map(params![value, since, i64::from(limit)], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok((times.len() >= limit as usize)
                    .then(|| times.last().copied())
                    .flatten())
            };
            let until = [
                oldest("login", login, self.sign_in.per_login)?,
                oldest("address", address, self.sign_in.per_address)?,
            ]
            .into_iter()
            .flatten()
            .max()
            .map(|at| Timestamp(at + self.sign_in.window_ms));
            let row: Option<(UserInfo, String)> = c
                .query_row(
                    &format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE login = ?1"),
                    [login],
                    |r| Ok((user_row(r)?, r.get(8)?)),
                )
                .optional()?;
            Ok((until, row))
        })?;
        if let Some(until) = throttled_until {
            self.record_failure(login, address, now)?;
            return Ok(SignIn::Throttled { until });
        }
        let (hash, user) = match &row {
            Some((user, hash)) => (hash.as_str(), Some(user)),
            None => (dummy_hash(), None),
        };
        let matches = password_matches(password, hash);
        match user {
            Some(user) if matches => {
                if user.disabled_at.is_some() {
                    Ok(SignIn::Disabled)
                } else {
                    Ok(SignIn::Accepted(user.clone()))
                }
            }
            _ => {
                self.record_failure(login, address, now)?;
                Ok(SignIn::Refused)
            }
        }
    }

    fn record_failure(&self, login: &str, address: &str, now: Timestamp) -> Result<()> {
        let cutoff = now.millis() - self.sign_in.window_ms;
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO sign_in_failures (at, login, address) VALUES (?1, ?2, ?3)",
                params![now.millis(), login, address],
            )?;
            // Keep the table to the window: older failures no longer count.
            c.execute("DELETE FROM sign_in_failures WHERE at <= ?1", [cutoff])?;
            Ok(())
        })
    }

    /// Starts a session for `user` (who just signed in) from `address`.
    pub fn start_session(&self, user: &UserInfo, address: &str) -> Result<NewSession> {
        let token = random_token();
        let csrf = random_token();
        let now = crate::now();
        self.with_conn(|c| {
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, last_seen, address)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                params![token_hash(&token), user.id, csrf, now.millis(), address],
            )?;
            Ok(())
        })?;
        Ok(NewSession {
            token,
            session: Session {
                user: user.clone(),
                csrf,
                created_at: now,
            },
        })
    }

    /// The session of a cookie's token, if it is valid now (not ended, not idle or old
    /// past the policy, its account enabled). Marks it used; an ended session is
    /// deleted.
    pub fn session(&self, token: &str) -> Result<Option<Session>> {
        if token.len() > 128 {
            return Ok(None);
        }
        let now = crate::now().millis();
        let hash = token_hash(token);
        self.with_conn(|c| {
            let row: Option<(UserInfo, String, i64, i64)> = c
                .prepare_cached(&format!(
                    "SELECT {}, s.csrf, s.created_at, s.last_seen FROM sessions s
                     JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
                    USER_COLUMNS
                        .split(", ")
                        .map(|col| format!("u.{col}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))?
                .query_row([&hash], |r| {
                    Ok((user_row(r)?, r.get(8)?, r.get(9)?, r.get(10)?))
                })
                .optional()?;
            let Some((user, csrf, created_at, last_seen)) = row else {
                return Ok(None);
            };
            let ended = user.disabled_at.is_some()
                || now - last_seen > self.sessions.idle_ms
                || now - created_at > self.sessions.max_age_ms;
            if ended {
                c.execute("DELETE FROM sessions WHERE token_hash = ?1", [&hash])?;
                return Ok(None);
            }
            // One write a minute at most per session: the idle clock needs no finer.
            if now - last_seen > 60_000 {
                c.execute(
                    "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1",
                    params![hash, now],
                )?;
            }
            Ok(Some(Session {
                user,
                csrf,
                created_at: Timestamp(created_at),
            }))
        })
    }

    /// Ends the session of this token (sign-out).
    pub fn end_session(&self, token: &str) -> Result<()> {
        self.with_conn(|c| {
            c.execute(
                "DELETE FROM sessions WHERE token_hash = ?1",
                [token_hash(token)],
            )?;
            Ok(())
        })
    }

    /// Deletes sessions past the policy's limits; returns how many. `fixahead run`
    /// calls it hourly.
    pub fn prune_sessions(&self) -> Result<usize> {
        let now = crate::now().millis();
        self.with_conn(|c| {
            Ok(c.execute(
                "DELETE FROM sessions WHERE last_seen < ?1 OR created_at < ?2",
                params![now - self.sessions.idle_ms, now - self.sessions.max_age_ms],
            )?)
        })
    }

    /// Valid sessions of account `id`.
    pub fn session_count(&self, id: i64) -> Result<u64> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM sessions WHERE user_id = ?1",
                [id],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
    }
}

fn get(c: &Connection, id: i64) -> Result<Option<UserInfo>> {
    Ok(c.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
        [id],
        user_row,
    )
    .optional()?)
}

fn not_found(id: i64) -> Error {
    Error::NotFound(format!("no account with id {id}"))
}

/// At most `max` bytes of `s`, cut at a character boundary (a login typed into a
/// form may be anything; the failure table keeps a bounded copy).
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

mod admin;

#[cfg(test)]
mod tests;
