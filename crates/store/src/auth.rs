//! Users, API keys, refresh tokens and failed-login counters of the gateway. Only hashes of secrets are
//! stored.
//!
//! Every change to a user's access ([`UserChange`]) bumps the user's `token_generation` and drops their
//! refresh tokens in the change's own transaction, so a token minted before the change cannot outlive it.
//! Refresh tokens are single-use: [`Store::redeem_refresh_token`] marks one used atomically, and presenting
//! a used one again drops its whole family. Failed logins are charged atomically per (user name, source)
//! before the password is checked ([`Store::charge_login_attempt`]), so parallel guesses cannot slip past
//! the count.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::audit::Audited;
use crate::{Error, Store};

/// A local user.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub role: String,
    pub created_at: i64,
    pub disabled: bool,
    /// Bumped by every [`UserChange`]; session and refresh tokens carry the value they were minted under.
    pub token_generation: i64,
}

/// An API key (its secret only as a hash).
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub secret_hash: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The user who created the key, if a user did (then the key works only while that user is enabled).
    pub owner_id: Option<String>,
}

/// A change to a user's access. Each one bumps the user's token generation and drops their refresh tokens.
#[derive(Clone, Copy, Debug)]
pub enum UserChange<'a> {
    /// A new Argon2id PHC password hash.
    Password(&'a str),
    /// A new role.
    Role(&'a str),
    /// Disabled (`true`) or enabled again (`false`).
    Disabled(bool),
    /// The user is deleted.
    Delete,
}

/// A refresh token (only its SHA-256 hash) in a family: the tokens one login produced by rotation.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub family: String,
    pub user_id: String,
    /// The user's token generation when the family began.
    pub generation: i64,
    pub created_at: i64,
    /// The family's absolute end, inherited by every token of the family.
    pub expires_at: i64,
    /// For a console login through an OIDC provider (`user_id` is then the principal's `oidc:` id): the
    /// provider's refresh token, sealed; passed on to the family's next token.
    pub provider_token: Option<Vec<u8>>,
}

/// What presenting a refresh token found.
#[derive(Clone, Debug)]
pub enum Redeemed {
    /// An unused token, now marked used.
    Fresh(RefreshTokenRow),
    /// A token that was used before; its whole family was dropped.
    Reused,
    /// No such token (never issued, or dropped).
    Unknown,
}

/// The failed-login counter of one (user name, source address).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoginFailures {
    /// Attempts charged and not cleared by a success.
    pub failures: i64,
    /// No attempt is allowed before this time.
    pub locked_until: i64,
    /// The last charge.
    pub updated_at: i64,
}

fn user(r: &AnyRow) -> Result<UserRow, Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        password_hash: r.try_get("password_hash")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        token_generation: r.try_get("token_generation")?,
    })
}

fn api_key(r: &AnyRow) -> Result<ApiKeyRow, Error> {
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        secret_hash: r.try_get("secret_hash")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        owner_id: r.try_get("owner_id")?,
    })
}

const USER_COLUMNS: &str =
    "SELECT id, username, password_hash, role, created_at, disabled, token_generation FROM users";
const KEY_COLUMNS: &str = "SELECT id, name, role, secret_hash, created_by, created_at, expires_at, revoked_at, owner_id FROM api_keys";

impl Store {
    /// Inserts a user; a taken username is a `Conflict`.
    pub async fn insert_user(&self, u: &UserRow, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, created_at, disabled) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.role)
        .bind(u.created_at)
        .bind(i64::from(u.disabled))
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(tx, &self.chain, audit, &u.id, u.created_at).await
    }

    /// A user by name.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, Error> {
        let sql = format!("{USER_COLUMNS} WHERE username = $1");
        self.read_optional(sql, username, user).await
    }

    /// A user by id.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, Error> {
        let sql = format!("{USER_COLUMNS} WHERE id = $1");
        self.read_optional(sql, id, user).await
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRow>, Error> {
        let sql = format!("{USER_COLUMNS} ORDER BY username");
        self.read_all(sql, user).await
    }

    /// Whether an enabled admin user exists (then the bootstrap token may be disabled).
    pub async fn admin_user_exists(&self) -> Result<bool, Error> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
                .fetch_one(&self.read)
                .await?
                .try_get(0)?;
        Ok(n > 0)
    }

    /// Applies `change` to user `id` in one transaction with its audit record: bumps the user's token
    /// generation (or deletes the user) and drops their refresh tokens. `NotFound` when there is no such
    /// user; `LastOfRole` (nothing changed) when the change would leave no enabled user with role `keep`.
    /// Returns the user as it is after the change (as it was, for a deletion).
    pub async fn change_user(
        &self,
        id: &str,
        change: UserChange<'_>,
        keep: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<UserRow, Error> {
        let mut tx = self.write.begin().await?;
        // PostgreSQL: lock the holders of `keep` (and the target), so two changes that each leave one
        // holder cannot both commit. SQLite: the single writer connection already serialises them.
        let lock = match self.backend {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let holders: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id FROM users WHERE role = $1 AND disabled = 0{lock}"
        )))
        .bind(keep)
        .fetch_all(&mut *tx)
        .await?;
        let row = sqlx::query(AssertSqlSafe(format!("{USER_COLUMNS} WHERE id = $1{lock}")))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let before = row.as_ref().map(user).transpose()?.ok_or(Error::NotFound)?;
        let holds = before.role == keep && !before.disabled;
        let still_holds = match change {
            UserChange::Password(_) => holds,
            UserChange::Role(role) => role == keep && !before.disabled,
            UserChange::Disabled(disabled) => before.role == keep && !disabled,
            UserChange::Delete => false,
        };
        if holds && !still_holds && holders.iter().all(|(h,)| h == id) {
            return Err(Error::LastOfRole);
        }
        let bump = "token_generation = token_generation + 1";
        let query = match change {
            UserChange::Password(hash) => sqlx::query(AssertSqlSafe(format!(
                "UPDATE users SET password_hash = $1, {bump} WHERE id = $2"
            )))
            .bind(hash),
            UserChange::Role(role) => sqlx::query(AssertSqlSafe(format!(
                "UPDATE users SET role = $1, {bump} WHERE id = $2"
            )))
            .bind(role),
            UserChange::Disabled(disabled) => sqlx::query(AssertSqlSafe(format!(
                "UPDATE users SET disabled = $1, {bump} WHERE id = $2"
            )))
            .bind(i64::from(disabled)),
            UserChange::Delete => sqlx::query("DELETE FROM users WHERE id = $1"),
        };
        query.bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let after = match change {
            UserChange::Delete => before,
            _ => {
                let row = sqlx::query(AssertSqlSafe(format!("{USER_COLUMNS} WHERE id = $1")))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                user(&row)?
            }
        };
        crate::audit::commit(tx, &self.chain, audit, id, now).await?;
        Ok(after)
    }

    /// Stores a new refresh token (its hash), dropping the user's expired ones.
    pub async fn insert_refresh_token(&self, r: &RefreshTokenRow) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1 AND expires_at <= $2")
            .bind(&r.user_id)
            .bind(r.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family, user_id, generation, created_at, expires_at, \
             provider_token) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.token_hash)
        .bind(&r.family)
        .bind(&r.user_id)
        .bind(r.generation)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.provider_token.clone())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks the refresh token with hash `token_hash` used, atomically: of two concurrent redemptions
    /// exactly one finds it [`Redeemed::Fresh`]. A token used before drops its whole family.
    pub async fn redeem_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Redeemed, Error> {
        let mut tx = self.write.begin().await?;
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query(
            "SELECT token_hash, family, user_id, generation, created_at, expires_at, provider_token \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Redeemed::Unknown);
        };
        let row = RefreshTokenRow {
            token_hash: row.try_get("token_hash")?,
            family: row.try_get("family")?,
            user_id: row.try_get("user_id")?,
            generation: row.try_get("generation")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            provider_token: row.try_get("provider_token")?,
        };
        if !claimed {
            sqlx::query("DELETE FROM refresh_tokens WHERE family = $1")
                .bind(&row.family)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Redeemed::Reused);
        }
        tx.commit().await?;
        Ok(Redeemed::Fresh(row))
    }

    /// Ends the login (refresh-token family) that `token_hash` belongs to: every refresh token of it is
    /// deleted, and its access tokens stop working with it. Nothing happens for an unknown token.
    pub async fn end_refresh_family(&self, token_hash: &str) -> Result<(), Error> {
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE family = \
             (SELECT family FROM refresh_tokens WHERE token_hash = $1)",
        )
        .bind(token_hash)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Charges one login attempt to each of `counters` (user-name keys, all from `source`) atomically, in
    /// one transaction, before the password is checked: `step(i, counter)` gets counter `i` as it stands
    /// (zeros when there is none) and returns the counter to store, or `Err(locked_until)` to refuse the
    /// attempt, and then nothing at all is written and the answer is `Err((i, locked_until))`. Concurrent
    /// attempts are serialised (callers pass the counters in one fixed order), so each sees every earlier
    /// charge. Counters last charged before `forget_before` and not waiting any more are deleted first.
    pub async fn charge_login_attempt(
        &self,
        counters: &[&str],
        source: &str,
        now: i64,
        forget_before: i64,
        mut step: impl FnMut(usize, LoginFailures) -> Result<LoginFailures, i64>,
    ) -> Result<Result<(), (usize, i64)>, Error> {
        let mut tx = self.write.begin().await?;
        // Counters nobody charged since `forget_before` (and not waiting) would start from zero anyway.
        sqlx::query("DELETE FROM login_failures WHERE updated_at < $1 AND locked_until <= $2")
            .bind(forget_before)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let lock = match self.backend {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let mut next = Vec::with_capacity(counters.len());
        for (i, username) in counters.iter().enumerate() {
            sqlx::query(
                "INSERT INTO login_failures (username, source, failures, locked_until, updated_at) \
                 VALUES ($1, $2, 0, 0, $3) ON CONFLICT (username, source) DO NOTHING",
            )
            .bind(*username)
            .bind(source)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let (failures, locked_until, updated_at): (i64, i64, i64) =
                sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT failures, locked_until, updated_at FROM login_failures \
                     WHERE username = $1 AND source = $2{lock}"
                )))
                .bind(*username)
                .bind(source)
                .fetch_one(&mut *tx)
                .await?;
            let current = LoginFailures {
                failures,
                locked_until,
                updated_at,
            };
            match step(i, current) {
                Ok(counter) => next.push(counter),
                // Dropping the transaction rolls back the rows inserted for this attempt.
                Err(until) => return Ok(Err((i, until))),
            }
        }
        for (username, counter) in counters.iter().zip(next) {
            sqlx::query(
                "UPDATE login_failures SET failures = $1, locked_until = $2, updated_at = $3 \
                 WHERE username = $4 AND source = $5",
            )
            .bind(counter.failures)
            .bind(counter.locked_until)
            .bind(counter.updated_at)
            .bind(*username)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// After a successful login: forgets the failed logins of (`username`, `source`) and gives back the
    /// attempt charged to (`address_key`, `source`), the address's own counter.
    pub async fn clear_login_failures(
        &self,
        username: &str,
        source: &str,
        address_key: &str,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM login_failures WHERE username = $1 AND source = $2")
            .bind(username)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1 \
             WHERE username = $1 AND source = $2 AND failures > 0",
        )
        .bind(address_key)
        .bind(source)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// User `id` as a session token presents it: `None` unless the user exists and the login (refresh-token
    /// family) `family` still lives at `now` (not ended by a reuse, a change to its user, or its absolute
    /// end). One read for both, as every request with a session token asks it.
    pub async fn session_user(
        &self,
        id: &str,
        family: &str,
        now: i64,
    ) -> Result<Option<UserRow>, Error> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "{USER_COLUMNS} WHERE id = $1 AND EXISTS (SELECT 1 FROM refresh_tokens \
             WHERE family = $2 AND user_id = $1 AND expires_at > $3)"
        )))
        .bind(id)
        .bind(family)
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(user).transpose()
    }

    /// Whether the login (refresh-token family) `family` of principal `principal_id` still lives at `now`:
    /// what a session token of a principal without a user row (an OIDC console login) is checked against.
    pub async fn login_alive(
        &self,
        principal_id: &str,
        family: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let row = sqlx::query(
            "SELECT 1 AS alive FROM refresh_tokens WHERE family = $1 AND user_id = $2 AND expires_at > $3 \
             LIMIT 1",
        )
        .bind(family)
        .bind(principal_id)
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    /// How many failed-login counters are kept (tests check that quiet ones are forgotten).
    #[cfg(any(test, feature = "testing"))]
    pub async fn login_failure_count(&self) -> Result<i64, Error> {
        Ok(sqlx::query("SELECT COUNT(*) FROM login_failures")
            .fetch_one(&self.read)
            .await?
            .try_get(0)?)
    }

    /// Inserts an API key.
    pub async fn insert_api_key(&self, k: &ApiKeyRow, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, secret_hash, created_by, created_at, expires_at, revoked_at, owner_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.role)
        .bind(&k.secret_hash)
        .bind(&k.created_by)
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
        .bind(&k.owner_id)
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(tx, &self.chain, audit, &k.id, k.created_at).await
    }

    /// An API key by id.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, Error> {
        let sql = format!("{KEY_COLUMNS} WHERE id = $1");
        self.read_optional(sql, id, api_key).await
    }

    /// Every API key, newest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>, Error> {
        let sql = format!("{KEY_COLUMNS} ORDER BY created_at DESC, id");
        self.read_all(sql, api_key).await
    }

    /// Revokes an API key; `NotFound` when there is none, a no-op when already revoked.
    pub async fn revoke_api_key(
        &self,
        id: &str,
        at: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let n =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        crate::error::found(n)?;
        crate::audit::commit(tx, &self.chain, audit, id, at).await
    }
}
