//! The engineers' directory (`keys.db` schema 3): what dispatch knows of each engineer
//! account beyond its login: skills with levels, home region and location, working
//! hours, daily capacity and supervisor (docs/dispatch.md).
//!
//! One row per engineer account in `engineers`, keyed by the account (`users.id`);
//! the display name and time zone stay the account's. [`UserStore::put_engineer`]
//! creates the engineer account when the login is new (with a generated password,
//! returned once) and writes the profile in the same transaction.
//!
//! Everything here is blocking; async callers use `spawn_blocking`.

use std::collections::BTreeMap;

use domain::{Lang, Role, Timestamp};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::users::{
    check_display_name, check_login, check_time_zone, generate_password, hash_password, user_row,
    UserInfo, UserStore, USER_COLUMNS,
};
use crate::{Error, Result};

/// The `engineers` table (created by every read-write open of `keys.db`).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS engineers (
    user_id INTEGER PRIMARY KEY REFERENCES users (id),
    skills TEXT NOT NULL DEFAULT '{}',
    region TEXT,
    lat REAL,
    lon REAL,
    work_start INTEGER NOT NULL,
    work_end INTEGER NOT NULL,
    work_days TEXT NOT NULL,
    daily_capacity INTEGER NOT NULL,
    supervisor TEXT,
    updated_at INTEGER NOT NULL
);
";

/// Lowest skill level.
pub const MIN_SKILL_LEVEL: u8 = 1;
/// Highest skill level.
pub const MAX_SKILL_LEVEL: u8 = 5;
/// Largest daily capacity accepted (visits a day).
pub const MAX_DAILY_CAPACITY: u32 = 100;
/// Longest region, skill or supervisor name.
pub const MAX_NAME_LEN: usize = 64;

/// Weekday names, Monday first, as working hours spell them.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When an engineer works, in their own time zone (the account's `time_zone`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// Start of the working day, `HH:MM`.
    #[cfg_attr(feature = "openapi", schema(example = "08:00"))]
    pub start: String,
    /// End of the working day, `HH:MM`, after the start.
    #[cfg_attr(feature = "openapi", schema(example = "18:00"))]
    pub end: String,
    /// Working days: `mon` .. `sun`.
    pub days: Vec<String>,
}

impl Default for WorkingHours {
    /// 08:00 to 18:00, Monday to Friday.
    fn default() -> Self {
        Self {
            start: "08:00".into(),
            end: "18:00".into(),
            days: DAYS[..5].iter().map(|d| (*d).to_owned()).collect(),
        }
    }
}

impl WorkingHours {
    /// Start and end as minutes after midnight; [`Error::Invalid`] unless both are
    /// `HH:MM` with the start before the end.
    pub fn minutes(&self) -> Result<(u32, u32)> {
        let start = parse_hhmm("working_hours.start", &self.start)?;
        let end = parse_hhmm("working_hours.end", &self.end)?;
        if end <= start {
            return Err(Error::Invalid(
                "working_hours.end: must be after working_hours.start".into(),
            ));
        }
        Ok((start, end))
    }

    /// The working days as indexes into [`DAYS`] (Monday 0); [`Error::Invalid`] for an
    /// unknown name.
    pub fn day_indexes(&self) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        for d in &self.days {
            let i = DAYS.iter().position(|x| x == d).ok_or_else(|| {
                Error::Invalid(format!(
                    "working_hours.days: {d:?} is not a day; expected {}",
                    DAYS.join(", ")
                ))
            })?;
            if !out.contains(&(i as u32)) {
                out.push(i as u32);
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}

fn parse_hhmm(field: &str, s: &str) -> Result<u32> {
    let bad = || Error::Invalid(format!("{field}: {s:?} is not a time of day HH:MM"));
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    // 24:00 is the end of the day.
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// An engineer's profile as written (`PUT /api/v1/engineers/{login}`).
#[derive(Clone, Debug, PartialEq)]
pub struct EngineerProfile {
    /// Skill name -> level 1-5. Names are checked against the profiles by the caller.
    pub skills: BTreeMap<String, u8>,
    /// Home region.
    pub region: Option<String>,
    /// Home latitude, degrees.
    pub lat: Option<f64>,
    /// Home longitude, degrees.
    pub lon: Option<f64>,
    /// Working hours.
    pub working_hours: WorkingHours,
    /// Visits a day.
    pub daily_capacity: u32,
    /// A login or a role name (`after-sales-manager`).
    pub supervisor: Option<String>,
}

impl EngineerProfile {
    /// Checks every field: levels 1-5, names 1-64 characters, latitude and longitude
    /// in range and given together, working hours, capacity up to
    /// [`MAX_DAILY_CAPACITY`].
    pub fn check(&self) -> Result<()> {
        for (name, level) in &self.skills {
            check_name("skills", name)?;
            if !(MIN_SKILL_LEVEL..=MAX_SKILL_LEVEL).contains(level) {
                return Err(Error::Invalid(format!(
                    "skills.{name}: level {level} is not between {MIN_SKILL_LEVEL} and {MAX_SKILL_LEVEL}"
                )));
            }
        }
        if let Some(r) = &self.region {
            check_name("region", r)?;
        }
        if let Some(s) = &self.supervisor {
            check_name("supervisor", s)?;
        }
        match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) {
                    return Err(Error::Invalid(format!(
                        "lat: {lat} is not between -90 and 90"
                    )));
                }
                if !(-180.0..=180.0).contains(&lon) {
                    return Err(Error::Invalid(format!(
                        "lon: {lon} is not between -180 and 180"
                    )));
                }
            }
            (None, None) => {}
            _ => return Err(Error::Invalid("lat, lon: give both or neither".into())),
        }
        self.working_hours.minutes()?;
        self.working_hours.day_indexes()?;
        if self.daily_capacity > MAX_DAILY_CAPACITY {
            return Err(Error::Invalid(format!(
                "daily_capacity: {} is more than {MAX_DAILY_CAPACITY}",
                self.daily_capacity
            )));
        }
        Ok(())
    }
}

fn check_name(field: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() || s.chars().count() > MAX_NAME_LEN || s.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "{field}: {:?} must be 1 to {MAX_NAME_LEN} printable characters",
            s.chars().take(MAX_NAME_LEN + 1).collect::<String>()
        )));
    }
    Ok(())
}

/// An engineer: the account and its dispatch profile.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Engineer {
    /// The login: tickets are assigned to this name.
    pub login: String,
    /// How pages name them.
    pub display_name: String,
    /// The account's IANA time zone: working hours are in it.
    pub time_zone: String,
    /// Whether the account is disabled (a disabled engineer is never dispatched).
    pub disabled: bool,
    /// Skill name -> level 1-5.
    pub skills: BTreeMap<String, u8>,
    /// Home region.
    pub region: Option<String>,
    /// Home latitude.
    pub lat: Option<f64>,
    /// Home longitude.
    pub lon: Option<f64>,
    /// Working hours in `time_zone`.
    pub working_hours: WorkingHours,
    /// Visits a day.
    pub daily_capacity: u32,
    /// Supervisor: a login or a role name.
    pub supervisor: Option<String>,
    /// When the profile last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub updated_at: Timestamp,
}

/// What [`UserStore::put_engineer`] did.
#[derive(Clone, Debug)]
pub struct PutEngineer {
    /// The engineer after the write.
    pub engineer: Engineer,
    /// The generated password when the account was created (shown once).
    pub password: Option<String>,
}

/// An account to create with the profile, when the login is new.
#[derive(Clone, Debug)]
pub struct NewEngineer<'a> {
    /// Display name; the login when empty.
    pub display_name: &'a str,
    /// The account's language.
    pub lang: Lang,
    /// The account's time zone.
    pub time_zone: &'a str,
}

const ENGINEER_COLUMNS: &str = "e.skills, e.region, e.lat, e.lon, e.work_start, e.work_end,
    e.work_days, e.daily_capacity, e.supervisor, e.updated_at";

fn engineer_from(user: UserInfo, row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Engineer> {
    let corrupt = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let skills: String = row.get(at)?;
    let skills: BTreeMap<String, u8> =
        serde_json::from_str(&skills).map_err(|e| corrupt(at, e.to_string()))?;
    let days: String = row.get(at + 6)?;
    Ok(Engineer {
        login: user.login,
        display_name: user.display_name,
        time_zone: user.time_zone,
        disabled: user.disabled_at.is_some(),
        skills,
        region: row.get(at + 1)?,
        lat: row.get(at + 2)?,
        lon: row.get(at + 3)?,
        working_hours: WorkingHours {
            start: hhmm(row.get(at + 4)?),
            end: hhmm(row.get(at + 5)?),
            days: days
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect(),
        },
        daily_capacity: row.get(at + 7)?,
        supervisor: row.get(at + 8)?,
        updated_at: Timestamp(row.get(at + 9)?),
    })
}

fn engineer_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Engineer> {
    let user = user_row(row)?;
    engineer_from(user, row, 8)
}

fn select() -> String {
    let users = USER_COLUMNS
        .split(", ")
        .map(|c| format!("u.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {users}, {ENGINEER_COLUMNS} FROM engineers e JOIN users u ON u.id = e.user_id")
}

fn by_login(c: &Connection, login: &str) -> Result<Option<Engineer>> {
    Ok(c.query_row(
        &format!("{} WHERE u.login = ?1", select()),
        [login],
        engineer_row,
    )
    .optional()?)
}

impl UserStore {
    /// Every engineer with a profile, by login (disabled accounts included).
    pub fn engineers(&self) -> Result<Vec<Engineer>> {
        self.with_conn(|c| {
            let mut st = c.prepare(&format!("{} ORDER BY u.login", select()))?;
            let rows = st.query_map([], engineer_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The engineer with this login, if the account has a profile.
    pub fn engineer(&self, login: &str) -> Result<Option<Engineer>> {
        self.with_conn(|c| by_login(c, login))
    }

    /// Writes the profile of engineer `login`. A new login gets an engineer account
    /// first (`new`; its generated password is in the answer, shown once) in the same
    /// transaction; an existing engineer account keeps its password, and its time zone
    /// becomes `time_zone` when given. [`Error::Conflict`] when the login belongs to an
    /// account of another role, [`Error::Invalid`] for a bad field.
    pub fn put_engineer(
        &self,
        login: &str,
        profile: &EngineerProfile,
        new: &NewEngineer<'_>,
        time_zone: Option<&str>,
    ) -> Result<PutEngineer> {
        check_login(login)?;
        profile.check()?;
        if let Some(tz) = time_zone {
            check_time_zone(tz)?;
        }
        check_time_zone(new.time_zone)?;
        let display_name = if new.display_name.is_empty() {
            login
        } else {
            new.display_name
        };
        check_display_name(display_name)?;
        let (start, end) = profile.working_hours.minutes()?;
        let days = profile
            .working_hours
            .day_indexes()?
            .into_iter()
            .map(|i| DAYS[i as usize])
            .collect::<Vec<_>>()
            .join(",");
        let skills = serde_json::to_string(&profile.skills)?;
        let now = crate::now();
        // Hash outside the lock: argon2 is slow on purpose.
        let existing = self.by_login(login)?;
        let fresh = match &existing {
            None => {
                let password = generate_password();
                Some((hash_password(&password)?, password))
            }
            Some(_) => None,
        };
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let user = tx
                .query_row(
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE login = ?1"),
                    [login],
                    user_row,
                )
                .optional()?;
            let mut password = None;
            let user_id = match user {
                Some(u) if u.role != Role::Engineer => {
                    return Err(Error::Conflict(format!(
                        "{login} is a user of role {}, not an engineer",
                        u.role.as_str()
                    )))
                }
                Some(u) => {
                    if !new.display_name.is_empty() || time_zone.is_some() {
                        tx.execute(
                            "UPDATE users SET display_name = ?2, time_zone = ?3 WHERE id = ?1",
                            params![
                                u.id,
                                if new.display_name.is_empty() {
                                    u.display_name.as_str()
                                } else {
                                    new.display_name
                                },
                                time_zone.unwrap_or(&u.time_zone)
                            ],
                        )?;
                    }
                    u.id
                }
                None => {
                    let Some((hash, generated)) = &fresh else {
                        // Created by someone else between the two reads: try again.
                        return Err(Error::Conflict(format!(
                            "the account {login} was created meanwhile; send the request again"
                        )));
                    };
                    tx.execute(
                        "INSERT INTO users (login, display_name, role, lang, time_zone, password_hash, created_at)
                         VALUES (?1, ?2, 'engineer', ?3, ?4, ?5, ?6)",
                        params![
                            login,
                            display_name,
                            new.lang.as_str(),
                            time_zone.unwrap_or(new.time_zone),
                            hash,
                            now.millis()
                        ],
                    )?;
                    password = Some(generated.clone());
                    tx.last_insert_rowid()
                }
            };
            tx.execute(
                "INSERT INTO engineers (user_id, skills, region, lat, lon, work_start, work_end,
                     work_days, daily_capacity, supervisor, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (user_id) DO UPDATE SET skills = excluded.skills,
                     region = excluded.region, lat = excluded.lat, lon = excluded.lon,
                     work_start = excluded.work_start, work_end = excluded.work_end,
                     work_days = excluded.work_days, daily_capacity = excluded.daily_capacity,
                     supervisor = excluded.supervisor, updated_at = excluded.updated_at",
                params![
                    user_id,
                    skills,
                    profile.region,
                    profile.lat,
                    profile.lon,
                    start,
                    end,
                    days,
                    profile.daily_capacity,
                    profile.supervisor,
                    now.millis()
                ],
            )?;
            let engineer = by_login(&tx, login)?
                .ok_or_else(|| Error::Corrupt(format!("engineer {login} vanished")))?;
            tx.commit()?;
            Ok(PutEngineer { engineer, password })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> EngineerProfile {
        EngineerProfile {
            skills: BTreeMap::from([("electrical".to_owned(), 3), ("plumbing".to_owned(), 2)]),
            region: Some("north".into()),
            lat: Some(31.2),
            lon: Some(121.5),
            working_hours: WorkingHours::default(),
            daily_capacity: 6,
            supervisor: Some("zhang.min".into()),
        }
    }

    fn new() -> NewEngineer<'static> {
        NewEngineer {
            display_name: "",
            lang: Lang::En,
            time_zone: "UTC",
        }
    }

    #[test]
    fn put_creates_the_account_once_then_updates_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let users = UserStore::open(&dir.path().join("keys.db")).unwrap();
        let first = users
            .put_engineer("li.wei", &profile(), &new(), Some("Asia/Shanghai"))
            .unwrap();
        assert!(first.password.is_some());
        assert_eq!(first.engineer.time_zone, "Asia/Shanghai");
        assert_eq!(first.engineer.skills["electrical"], 3);
        assert_eq!(first.engineer.working_hours, WorkingHours::default());
        let account = users.by_login("li.wei").unwrap().unwrap();
        assert_eq!(account.role, Role::Engineer);
        let mut p = profile();
        p.daily_capacity = 4;
        p.lat = None;
        p.lon = None;
        let second = users.put_engineer("li.wei", &p, &new(), None).unwrap();
        assert!(second.password.is_none());
        assert_eq!(second.engineer.daily_capacity, 4);
        assert_eq!(second.engineer.lat, None);
        assert_eq!(second.engineer.time_zone, "Asia/Shanghai");
        assert_eq!(users.engineers().unwrap().len(), 1);
        assert_eq!(users.engineer("li.wei").unwrap().unwrap(), second.engineer);
        assert!(users.engineer("nobody").unwrap().is_none());
    }

    #[test]
    fn another_role_and_bad_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let users = UserStore::open(&dir.path().join("keys.db")).unwrap();
        users
            .add(&crate::users::NewUser {
                login: "plan",
                display_name: "",
                role: Role::Planner,
                lang: Lang::En,
                time_zone: "UTC",
            })
            .unwrap();
        let e = users.put_engineer("plan", &profile(), &new(), None);
        assert!(matches!(e, Err(Error::Conflict(_))), "{e:?}");
        for bad in [
            {
                let mut p = profile();
                p.skills.insert("x".into(), 6);
                p
            },
            {
                let mut p = profile();
                p.lat = Some(91.0);
                p
            },
            {
                let mut p = profile();
                p.lon = None;
                p
            },
            {
                let mut p = profile();
                p.working_hours.start = "19:00".into();
                p
            },
            {
                let mut p = profile();
                p.working_hours.days = vec!["monday".into()];
                p
            },
            {
                let mut p = profile();
                p.daily_capacity = 1000;
                p
            },
        ] {
            let e = users.put_engineer("eng", &bad, &new(), None);
            assert!(matches!(e, Err(Error::Invalid(_))), "{e:?}");
        }
        assert!(users.by_login("eng").unwrap().is_none());
    }

    #[test]
    fn a_version_2_file_upgrades_to_3_keeping_its_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        {
            // keys.db as schema 2 wrote it: keys, audit, people; no engineers.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(crate::users::SCHEMA).unwrap();
            c.execute_batch(
                "CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER NOT NULL,
                     principal TEXT NOT NULL DEFAULT 'key', key_id INTEGER NOT NULL,
                     key_name TEXT NOT NULL, role TEXT NOT NULL, method TEXT NOT NULL,
                     path TEXT NOT NULL, status INTEGER NOT NULL, summary TEXT NOT NULL);
                 INSERT INTO users (login, display_name, role, lang, time_zone, password_hash, created_at)
                     VALUES ('li.wei', 'Li Wei', 'engineer', 'en', 'UTC', 'x', 1);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        }
        let users = UserStore::open(&path).unwrap();
        let c = Connection::open(&path).unwrap();
        let version: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 3);
        assert!(users.engineers().unwrap().is_empty());
        let put = users
            .put_engineer("li.wei", &profile(), &new(), None)
            .unwrap();
        assert!(put.password.is_none(), "the existing account is kept");
        assert_eq!(put.engineer.display_name, "Li Wei");
        // Opening again changes nothing.
        drop(users);
        let users = UserStore::open(&path).unwrap();
        assert_eq!(users.engineers().unwrap().len(), 1);
    }
}
