//! Users and API keys of the gateway. Only hashes of secrets are stored.

use sqlx::Row;
use sqlx::any::AnyRow;

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
}

fn user(r: &AnyRow) -> Result<UserRow, Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        password_hash: r.try_get("password_hash")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
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
    })
}

const USER_COLUMNS: &str =
    "SELECT id, username, password_hash, role, created_at, disabled FROM users";
const KEY_COLUMNS: &str = "SELECT id, name, role, secret_hash, created_by, created_at, expires_at, revoked_at FROM api_keys";

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

    /// Replaces a user's password hash.
    pub async fn set_password_hash(
        &self,
        id: &str,
        hash: &str,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        crate::error::found(n)?;
        let now = crate::migrate::now_secs();
        crate::audit::commit(tx, &self.chain, audit, id, now).await
    }

    /// Inserts an API key.
    pub async fn insert_api_key(&self, k: &ApiKeyRow, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, secret_hash, created_by, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.id)
        .bind(&k.name)
        .bind(&k.role)
        .bind(&k.secret_hash)
        .bind(&k.created_by)
        .bind(k.created_at)
        .bind(k.expires_at)
        .bind(k.revoked_at)
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
