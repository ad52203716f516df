//! What the console's admin pages need beyond `fixahead users`: accounts a page at a
//! time, and disabling an account without leaving the console without an admin.

use rusqlite::params;

use super::{get, not_found, user_row, UserInfo, UserStore, USER_COLUMNS};
use crate::{Error, Result};

impl UserStore {
    /// At most `limit` accounts by login, skipping the first `offset`, and how many
    /// accounts there are in all.
    pub fn page(&self, offset: u64, limit: u64) -> Result<(Vec<UserInfo>, u64)> {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let total: i64 = tx.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
            let users = {
                let mut st = tx.prepare(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY login LIMIT ?1 OFFSET ?2"
                ))?;
                let rows = st.query_map(params![clamp(limit), clamp(offset)], user_row)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.commit()?;
            Ok((users, total.max(0).unsigned_abs()))
        })
    }

    /// Disables account `id` unless it is the last enabled admin (in one statement, so
    /// two admins disabling each other at once cannot both succeed). Its sessions end.
    /// [`Error::Conflict`] for the last enabled admin, [`Error::NotFound`] without
    /// such an account. Disabling a disabled account changes nothing.
    pub fn disable_unless_last_admin(&self, id: i64) -> Result<UserInfo> {
        let at = crate::now();
        self.with_conn(|c| {
            let tx = c.transaction()?;
            let before = get(&tx, id)?.ok_or_else(|| not_found(id))?;
            if before.disabled_at.is_some() {
                return Ok(before);
            }
            let n = tx.execute(
                "UPDATE users SET disabled_at = ?2 WHERE id = ?1 AND disabled_at IS NULL
                 AND (role != 'admin' OR (SELECT COUNT(*) FROM users
                      WHERE role = 'admin' AND disabled_at IS NULL) > 1)",
                params![id, at.millis()],
            )?;
            if n == 0 {
                return Err(Error::Conflict(format!(
                    "{} is the last enabled admin: enable or add another admin first",
                    before.login
                )));
            }
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
            let after = get(&tx, id)?.ok_or_else(|| not_found(id))?;
            tx.commit()?;
            Ok(after)
        })
    }
}

#[cfg(test)]
mod tests {
    use domain::{Lang, Role};

    use super::super::NewUser;
    use super::*;

    fn add(users: &UserStore, login: &str, role: Role) -> UserInfo {
        users
            .add(&NewUser {
                login,
                display_name: "",
                role,
                lang: Lang::En,
                time_zone: "UTC",
            })
            .unwrap()
            .1
    }

    #[test]
    fn accounts_come_a_page_at_a_time_by_login() {
        let dir = tempfile::tempdir().unwrap();
        let users = UserStore::open_in(dir.path()).unwrap();
        for login in ["c", "a", "e", "b", "d"] {
            add(&users, login, Role::Planner);
        }
        let logins = |(page, total): (Vec<UserInfo>, u64)| {
            (page.into_iter().map(|u| u.login).collect::<Vec<_>>(), total)
        };
        assert_eq!(
            logins(users.page(0, 2).unwrap()),
            (vec!["a".into(), "b".into()], 5)
        );
        assert_eq!(logins(users.page(4, 2).unwrap()), (vec!["e".into()], 5));
        assert_eq!(logins(users.page(10, 2).unwrap()), (vec![], 5));
        assert_eq!(logins(users.page(u64::MAX, u64::MAX).unwrap()).1, 5);
    }

    #[test]
    fn the_last_enabled_admin_cannot_be_disabled() {
        let dir = tempfile::tempdir().unwrap();
        let users = UserStore::open_in(dir.path()).unwrap();
        let a = add(&users, "a", Role::Admin);
        let b = add(&users, "b", Role::Admin);
        let p = add(&users, "p", Role::Planner);
        let session = users.start_session(&b, "127.0.0.1").unwrap();
        assert!(users
            .disable_unless_last_admin(b.id)
            .unwrap()
            .disabled_at
            .is_some());
        assert_eq!(
            users.session(&session.token).unwrap(),
            None,
            "its session ended"
        );
        assert!(matches!(
            users.disable_unless_last_admin(a.id),
            Err(Error::Conflict(_))
        ));
        assert!(users.get(a.id).unwrap().unwrap().disabled_at.is_none());
        // Others are disabled as usual; twice is once.
        let once = users.disable_unless_last_admin(p.id).unwrap();
        assert_eq!(users.disable_unless_last_admin(p.id).unwrap(), once);
        // With b enabled again, a may go.
        users.set_disabled(b.id, false).unwrap();
        assert!(users.disable_unless_last_admin(a.id).is_ok());
        assert!(matches!(
            users.disable_unless_last_admin(999),
            Err(Error::NotFound(_))
        ));
    }
}
