//! Who is calling: local users (Argon2id passwords), short-lived signed session tokens with a refresh
//! path, API keys for automation, and the roles they carry.
//!
//! Session tokens are HS256 JWTs signed with a 256-bit secret that is generated once, sealed by the keystore
//! and kept in the database, so every replica accepts every replica's tokens and a restart logs nobody out.
//! Each carries the user's token generation, which every change to the user's access bumps (password, role,
//! disable, delete), and every request checks it against the user's row, so a change takes effect at once.
//! Refresh tokens are opaque (`shr_<secret>`, only SHA-256 stored), single-use and rotated: each refresh
//! returns the next token of the login's family, which keeps the login's absolute end; presenting a used
//! one drops the whole family (a stolen token and its legitimate twin both die).
//! API keys are `shk_<id>_<secret>`; only SHA-256 of the 256-bit secret is stored (a password hash is not
//! needed for a secret with that much entropy) and compared in constant time. A key a user created works
//! only while that user exists and is enabled.
//! An access token also names its login (the refresh-token family) and works only while that login
//! lives, so a refresh-token reuse, which ends the login, ends its access tokens at once too.
//! Failed logins are counted per (user name, client address), charged atomically in storage before the
//! password is checked: after five failures the address waits 1 s, 2 s, 4 s, … (at most
//! 15 minutes) between attempts, while the same user from another address is not affected. Every
//! failure gives the same answer, whether or not the user exists. Password spraying (one address trying
//! many user names) is counted too: every attempt from an address is also charged to the address alone,
//! a successful login gives its charge back, and after thirty failures the address waits, with the same
//! doubling. Counters quiet for a day are forgotten (deleted) as new attempts come in.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use shedu_keys::Keystore;
use shedu_store::{
    ApiKeyRow, LoginFailures, Redeemed, RefreshTokenRow, Store, UserChange, UserRow,
};
use subtle::ConstantTimeEq;

use crate::error::store_err;
use crate::oidc::OidcVerifier;
use crate::{AuditAction, AuditContext, Clock, Error, OidcIssuer};

pub(crate) const SESSION_SECRET: &str = "session_secret";
pub(crate) const SESSION_CONTEXT: &[u8] = b"shedu-session-secret";
/// The sealing context of an OIDC provider's refresh token held for a console login.
const OIDC_REFRESH_CONTEXT: &[u8] = b"shedu-oidc-refresh-token-v1";
const TOKEN_TTL: i64 = 15 * 60;
/// A login's absolute lifetime: refreshing rotates the refresh token but never extends this.
const REFRESH_TTL: i64 = 12 * 3600;
/// Failed logins from one address for one user name before that pair has to wait.
const FREE_ATTEMPTS: i64 = 5;
/// Failed logins from one address, whatever the user names, before the address has to wait.
const FREE_ATTEMPTS_PER_ADDRESS: i64 = 30;
/// The counter key of an address alone: a space, which no user name may hold (see [`valid_username`]).
const ANY_USER: &str = " ";
/// The longest wait between attempts (seconds); the wait doubles from 1 s up to this.
const MAX_BACKOFF: i64 = 15 * 60;
/// A (user name, address) pair with no attempt for this long starts from zero again.
const FAILURE_MEMORY: i64 = 24 * 3600;
const MIN_PASSWORD: usize = 12;
const MAX_USERNAME: usize = 64;

/// What a principal may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// CAs, certificates, RAs, devices; not users, keys or configuration.
    Operator,
    /// Read-only, including the audit log.
    Auditor,
    /// A machine role: a device or RA authenticated by its client certificate. It reaches the endpoints
    /// meant for devices (EST) and `whoami`, nothing else. Never held by a user or API key.
    Device,
}

impl Role {
    /// Every role a user or API key can hold.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Auditor];

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Device => "device",
        }
    }

    /// `Ok` for a role a user or API key may hold (one of [`Role::ALL`]).
    pub fn check_grantable(self) -> Result<(), Error> {
        if Role::ALL.contains(&self) {
            Ok(())
        } else {
            Err(Error::invalid(
                "invalid-role",
                format!(
                    "{} is a machine role: users and API keys cannot hold it",
                    self.as_str()
                ),
            ))
        }
    }

    /// Parses the API name of a role a user or API key may hold.
    pub fn parse(s: &str) -> Result<Role, Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "invalid-role",
                    format!("unknown role {s:?}: admin, operator or auditor"),
                )
            })
    }
}

/// How a principal authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The bootstrap admin token.
    Bootstrap,
    /// A local user's session token.
    User,
    /// An API key.
    ApiKey,
    /// A client certificate presented over mTLS.
    Certificate,
    /// A device's one-time enrolment secret (EST).
    DeviceSecret,
    /// A bearer JWT from a configured OIDC identity provider.
    Oidc,
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Principal {
    /// User id, API key id, or `bootstrap`.
    pub id: String,
    /// Display name (user name, key name).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// How it authenticated.
    pub kind: PrincipalKind,
}

/// A local user as the API shows it (never the hash).
#[derive(Clone, Debug)]
pub struct User {
    /// Id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Creation time.
    pub created_at: i64,
    /// Whether the user is disabled (cannot log in; their tokens and API keys are refused).
    pub disabled: bool,
}

/// An API key's metadata (never the secret).
#[derive(Clone, Debug)]
pub struct ApiKey {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Who created it.
    pub created_by: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry, if any.
    pub expires_at: Option<i64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// A login result: a short-lived access token and a refresh token.
#[derive(Clone, Debug)]
pub struct Session {
    /// Bearer token for the API.
    pub token: String,
    /// Its expiry.
    pub expires_at: i64,
    /// Exchange at `/auth/refresh` for a new session.
    pub refresh_token: String,
}

/// Whom a session token names.
struct Subject<'a> {
    id: &'a str,
    name: &'a str,
    role: &'a str,
    generation: i64,
}

/// The principal ids of an OIDC issuer's users start with this.
fn oidc_prefix(issuer: &str) -> String {
    format!("oidc:{issuer}#")
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    name: String,
    role: String,
    typ: String,
    /// The user's token generation when the session began.
    tgen: i64,
    /// The login (refresh-token family) the token belongs to; the token dies with it.
    fam: String,
    iss: String,
    iat: i64,
    exp: i64,
}

/// The authentication service.
pub struct AuthService {
    store: Store,
    clock: Arc<dyn Clock>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    dummy_hash: String,
    oidc: Option<OidcVerifier>,
    /// Seals the OIDC providers' refresh tokens that console logins hold.
    keystore: Keystore,
}

/// What a console sign-in through an OIDC provider got from the provider's token endpoint. Never logged.
pub struct OidcSignInTokens {
    /// The ID token (not yet verified).
    pub id_token: String,
    /// The provider's refresh token, when it issues one: the server keeps it (sealed) and never hands it
    /// to the browser.
    pub refresh_token: Option<String>,
}

/// Never the tokens.
impl std::fmt::Debug for OidcSignInTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSignInTokens").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

/// The longest an API key may live: ten years.
const MAX_API_KEY_DAYS: u32 = 3650;

impl AuthService {
    /// Opens the service; creates and seals the session-signing secret on first use.
    pub async fn open(
        store: Store,
        keystore: Keystore,
        clock: Arc<dyn Clock>,
    ) -> Result<AuthService, Error> {
        let secret = match store
            .meta_get(SESSION_SECRET)
            .await
            .map_err(store_err("meta"))?
        {
            Some(sealed) => keystore.open_secret(SESSION_CONTEXT, &sealed)?.to_vec(),
            None => {
                let secret: [u8; 32] = rand::random();
                let sealed = keystore.seal_secret(SESSION_CONTEXT, &secret)?;
                // Replicas starting at once on a new database agree on the first secret stored.
                if store
                    .meta_insert_new(SESSION_SECRET, &sealed)
                    .await
                    .map_err(store_err("meta"))?
                {
                    secret.to_vec()
                } else {
                    let sealed = store
                        .meta_get(SESSION_SECRET)
                        .await
                        .map_err(store_err("meta"))?
                        .ok_or_else(|| Error::Internal("session secret vanished".into()))?;
                    keystore.open_secret(SESSION_CONTEXT, &sealed)?.to_vec()
                }
            }
        };
        let dummy_hash = hash_password("not a real password, only for timing")?;
        Ok(AuthService {
            store,
            clock,
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            dummy_hash,
            oidc: None,
            keystore,
        })
    }

    /// Also accepts bearer JWTs from these OIDC identity providers (none: unchanged). `Invalid` when an
    /// issuer's configuration is unusable.
    pub fn with_oidc(mut self, issuers: Vec<OidcIssuer>) -> Result<AuthService, Error> {
        self.oidc = if issuers.is_empty() {
            None
        } else {
            Some(OidcVerifier::new(issuers)?)
        };
        Ok(self)
    }

    /// The identity providers the web console signs in with: index and label.
    pub fn oidc_sign_in_providers(&self) -> Vec<(usize, String)> {
        self.oidc
            .as_ref()
            .map(OidcVerifier::sign_in_providers)
            .unwrap_or_default()
    }

    /// The issuer of OIDC sign-in provider `index`.
    pub fn oidc_issuer(&self, index: usize) -> Option<&str> {
        self.oidc.as_ref().and_then(|o| o.issuer(index))
    }

    /// The provider's authorization URL for a console sign-in (authorization code with PKCE `S256`).
    pub async fn oidc_authorization_url(
        &self,
        index: usize,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<String, Error> {
        let oidc = self
            .oidc
            .as_ref()
            .ok_or_else(|| Error::NotFound("OIDC sign-in provider".into()))?;
        oidc.authorization_url(index, redirect_uri, state, nonce, code_challenge)
            .await
    }

    /// The ID token (not yet verified) and the refresh token for an authorization code (and its PKCE
    /// verifier).
    pub async fn oidc_exchange_code(
        &self,
        index: usize,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<OidcSignInTokens, Error> {
        let tokens = self
            .oidc()?
            .exchange_code(index, code, code_verifier, redirect_uri)
            .await?;
        Ok(OidcSignInTokens {
            id_token: tokens.id_token.unwrap_or_default(),
            refresh_token: tokens.refresh_token,
        })
    }

    /// Starts a console login for `principal`, who signed in through OIDC provider `index` (the caller
    /// verified the ID token), kept alive with the provider's `refresh_token`: a login (refresh-token
    /// family) like a local user's, with the same absolute end, whose tokens hold the provider's token
    /// sealed under the master key. Returns the console's refresh token (`shr_…`). Each refresh
    /// ([`AuthService::refresh`]) presents the provider's token to the provider again and ends the login
    /// when the provider refuses it.
    pub async fn oidc_login(
        &self,
        index: usize,
        principal: &Principal,
        refresh_token: &str,
    ) -> Result<String, Error> {
        let issuer = self.oidc()?.issuer(index).unwrap_or_default();
        if principal.kind != PrincipalKind::Oidc || !principal.id.starts_with(&oidc_prefix(issuer))
        {
            return Err(Error::Unauthenticated(
                "the sign-in is not this provider's".into(),
            ));
        }
        let now = self.clock.now();
        let sealed = self
            .keystore
            .seal_secret(OIDC_REFRESH_CONTEXT, refresh_token.as_bytes())?;
        let refresh = self
            .insert_refresh(
                &principal.id,
                0,
                crate::registry::new_id(),
                now + REFRESH_TTL,
                now,
                Some(sealed),
            )
            .await?;
        Ok(refresh)
    }

    fn oidc(&self) -> Result<&OidcVerifier, Error> {
        self.oidc
            .as_ref()
            .ok_or_else(|| Error::NotFound("OIDC sign-in provider".into()))
    }

    /// Creates a local user.
    pub async fn create_user(
        &self,
        actor: &AuditContext,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<User, Error> {
        role.check_grantable()?;
        if !valid_username(username) {
            return Err(Error::invalid(
                "invalid-username",
                "username must be 1 to 64 characters without spaces",
            ));
        }
        check_password(password)?;
        let password = password.to_string();
        let hash = blocking(move || hash_password(&password)).await??;
        let row = UserRow {
            id: crate::registry::new_id(),
            username: username.to_string(),
            password_hash: hash,
            role: role.as_str().to_string(),
            created_at: self.clock.now(),
            disabled: false,
            token_generation: 0,
        };
        self.store
            .insert_user(&row, &AuditAction::UserCreate.by(actor))
            .await
            .map_err(|e| match e {
                shedu_store::Error::Conflict { .. } => {
                    Error::conflict("user-exists", format!("user {username:?} already exists"))
                }
                other => store_err("user")(other),
            })?;
        user_from(row)
    }

    /// Every user.
    pub async fn users(&self) -> Result<Vec<User>, Error> {
        self.store
            .list_users()
            .await
            .map_err(store_err("users"))?
            .into_iter()
            .map(user_from)
            .collect()
    }

    /// Whether an enabled admin user exists.
    pub async fn admin_exists(&self) -> Result<bool, Error> {
        self.store
            .admin_user_exists()
            .await
            .map_err(store_err("users"))
    }

    /// Checks a user's password and starts a session. Every failure is the same `invalid-credentials`
    /// answer; an attempt while (`username`, `source`) has to wait is `RateLimited` with the wait.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        source: &str,
    ) -> Result<Session, Error> {
        let failed = || Error::Unauthenticated("invalid user name or password".into());
        if !valid_username(username) {
            // No user can have this name; nothing is worth storing about it.
            return Err(failed());
        }
        let now = self.clock.now();
        self.charge_attempt(username, source, now).await?;
        let row = self
            .store
            .user_by_name(username)
            .await
            .map_err(store_err("user"))?;
        let hash = row
            .as_ref()
            .filter(|u| !u.disabled)
            .map(|u| u.password_hash.clone());
        let candidate = password.to_string();
        let dummy = self.dummy_hash.clone();
        // An unknown user costs the same Argon2 work as a known one, so timing does not tell them apart.
        let ok = blocking(move || {
            verify_password(&candidate, hash.as_deref().unwrap_or(&dummy)) && hash.is_some()
        })
        .await?;
        match (ok, row) {
            (true, Some(user)) => {
                self.store
                    .clear_login_failures(username, source, ANY_USER)
                    .await
                    .map_err(store_err("login"))?;
                let family = crate::registry::new_id();
                self.issue_session(&user, family, now + REFRESH_TTL, now)
                    .await
            }
            _ => Err(failed()),
        }
    }

    /// Exchanges a refresh token for a new session and the next refresh token of its family. A token is
    /// good once: presenting a used one ends the whole login (every token of its family). The user must
    /// still exist, be enabled and have had no access change since the login.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, Error> {
        let invalid = || Error::Unauthenticated("the refresh token is no longer valid".into());
        let now = self.clock.now();
        let redeemed = self
            .store
            .redeem_refresh_token(&sha256_hex(refresh_token), now)
            .await
            .map_err(store_err("refresh token"))?;
        let row = match redeemed {
            Redeemed::Fresh(row) => row,
            Redeemed::Reused => {
                tracing::warn!("a used refresh token was presented again; its login was ended");
                return Err(invalid());
            }
            Redeemed::Unknown => return Err(invalid()),
        };
        if row.expires_at <= now {
            return Err(invalid());
        }
        if let Some(sealed) = &row.provider_token {
            return self.refresh_oidc(&row, sealed, now).await;
        }
        let user = self
            .store
            .user_by_id(&row.user_id)
            .await
            .map_err(store_err("user"))?
            .filter(|u| !u.disabled && u.token_generation == row.generation)
            .ok_or_else(invalid)?;
        self.issue_session(&user, row.family, row.expires_at, now)
            .await
    }

    /// Signs out: ends the login `refresh_token` belongs to (its refresh and access tokens). An unknown
    /// or used token changes nothing.
    pub async fn logout(&self, refresh_token: &str) -> Result<(), Error> {
        self.store
            .end_refresh_family(&sha256_hex(refresh_token))
            .await
            .map_err(store_err("refresh token"))
    }

    /// Changes a user's password after checking the current one. Every session and refresh token of the
    /// user stops working.
    pub async fn change_password(
        &self,
        actor: &AuditContext,
        user_id: &str,
        current: &str,
        new: &str,
    ) -> Result<(), Error> {
        check_password(new)?;
        let user = self
            .store
            .user_by_id(user_id)
            .await
            .map_err(store_err("user"))?
            .ok_or_else(|| Error::NotFound("user".into()))?;
        let (hash, candidate) = (user.password_hash.clone(), current.to_string());
        if !blocking(move || verify_password(&candidate, &hash)).await? {
            return Err(Error::Unauthenticated(
                "the current password is wrong".into(),
            ));
        }
        let new = new.to_string();
        let hash = blocking(move || hash_password(&new)).await??;
        self.change_user(
            actor,
            user_id,
            UserChange::Password(&hash),
            AuditAction::UserPassword,
        )
        .await
        .map(|_| ())
    }

    /// Disables (`true`) or enables a user. A disabled user cannot log in, and their sessions, refresh
    /// tokens and API keys are refused at once. `Conflict` (`last-admin`) for the last enabled admin.
    pub async fn set_user_disabled(
        &self,
        actor: &AuditContext,
        id: &str,
        disabled: bool,
    ) -> Result<User, Error> {
        let action = if disabled {
            AuditAction::UserDisable
        } else {
            AuditAction::UserEnable
        };
        let row = self
            .change_user(actor, id, UserChange::Disabled(disabled), action)
            .await?;
        user_from(row)
    }

    /// Changes a user's role; their current sessions and refresh tokens stop working. `Conflict`
    /// (`last-admin`) when it would demote the last enabled admin.
    pub async fn set_user_role(
        &self,
        actor: &AuditContext,
        id: &str,
        role: Role,
    ) -> Result<User, Error> {
        role.check_grantable()?;
        let row = self
            .change_user(
                actor,
                id,
                UserChange::Role(role.as_str()),
                AuditAction::UserRole,
            )
            .await?;
        user_from(row)
    }

    /// Deletes a user; their sessions, refresh tokens and API keys stop working. `Conflict`
    /// (`last-admin`) for the last enabled admin.
    pub async fn delete_user(&self, actor: &AuditContext, id: &str) -> Result<(), Error> {
        self.change_user(actor, id, UserChange::Delete, AuditAction::UserDelete)
            .await
            .map(|_| ())
    }

    async fn change_user(
        &self,
        actor: &AuditContext,
        id: &str,
        change: UserChange<'_>,
        action: AuditAction,
    ) -> Result<UserRow, Error> {
        self.store
            .change_user(
                id,
                change,
                Role::Admin.as_str(),
                self.clock.now(),
                &action.by(actor),
            )
            .await
            .map_err(|e| match e {
                shedu_store::Error::LastOfRole => Error::conflict(
                    "last-admin",
                    "this is the last enabled admin; make another user admin first",
                ),
                other => store_err(format!("user {id}"))(other),
            })
    }

    /// Creates an API key; the returned secret string is shown once and never stored.
    pub async fn create_api_key(
        &self,
        actor: &AuditContext,
        name: &str,
        role: Role,
        expires_in_days: Option<u32>,
        creator: &Principal,
    ) -> Result<(ApiKey, String), Error> {
        role.check_grantable()?;
        crate::model::check_name(name)?;
        // A key that expires at once, or in eleven million years, is a mistake, not a policy.
        if let Some(days) = expires_in_days
            && !(1..=MAX_API_KEY_DAYS).contains(&days)
        {
            return Err(Error::invalid(
                "invalid-expiry",
                format!("expires_in_days must be 1 to {MAX_API_KEY_DAYS}"),
            ));
        }
        let now = self.clock.now();
        let id = hex::encode(rand::random::<[u8; 8]>());
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let row = ApiKeyRow {
            id: id.clone(),
            name: name.to_string(),
            role: role.as_str().to_string(),
            secret_hash: sha256_hex(&secret),
            created_by: creator.name.clone(),
            created_at: now,
            expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400),
            revoked_at: None,
            owner_id: (creator.kind == PrincipalKind::User).then(|| creator.id.clone()),
        };
        self.store
            .insert_api_key(&row, &AuditAction::ApiKeyCreate.by(actor))
            .await
            .map_err(store_err("API key"))?;
        Ok((api_key_from(row)?, format!("shk_{id}_{secret}")))
    }

    /// Every API key.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, Error> {
        self.store
            .list_api_keys()
            .await
            .map_err(store_err("API keys"))?
            .into_iter()
            .map(api_key_from)
            .collect()
    }

    /// Revokes an API key.
    pub async fn revoke_api_key(&self, actor: &AuditContext, id: &str) -> Result<(), Error> {
        self.store
            .revoke_api_key(id, self.clock.now(), &AuditAction::ApiKeyRevoke.by(actor))
            .await
            .map_err(store_err(format!("API key {id}")))
    }

    /// The principal of a bearer token: an API key, an OIDC JWT or a session token. `Unauthenticated`
    /// otherwise.
    ///
    /// The dispatch lives here, in one place: `shk_` is an API key; a JWT whose unverified `iss` names a
    /// configured OIDC issuer goes to the OIDC verifier, whose answer is final; everything else is a
    /// session token. (The bootstrap token is the gateway's, checked before this.)
    pub async fn authenticate(&self, token: &str) -> Result<Principal, Error> {
        if let Some(rest) = token.strip_prefix("shk_") {
            return self.authenticate_api_key(rest).await;
        }
        if let Some(oidc) = &self.oidc
            && let Some(answer) = oidc.authenticate(token, self.clock.now()).await
        {
            return answer;
        }
        let claims = self.decode(token, "access")?;
        if claims.sub.starts_with("oidc:") {
            // An OIDC console login after its first refresh: no user row; the login must live.
            let alive = self
                .store
                .login_alive(&claims.sub, &claims.fam, self.clock.now())
                .await
                .map_err(store_err("refresh token"))?;
            if !alive {
                return Err(Error::Unauthenticated(
                    "the session is no longer valid".into(),
                ));
            }
            return Ok(Principal {
                id: claims.sub,
                name: claims.name,
                role: Role::parse(&claims.role)?,
                kind: PrincipalKind::Oidc,
            });
        }
        // The user's row, not the token, has the last word: a token minted before the user's access
        // changed (another generation), of a disabled or deleted user, or of a login that has ended (a
        // refresh-token reuse ends it, and its access tokens with it) is refused.
        let user = self
            .store
            .session_user(&claims.sub, &claims.fam, self.clock.now())
            .await
            .map_err(store_err("user"))?
            .filter(|u| !u.disabled && u.token_generation == claims.tgen)
            .ok_or_else(|| Error::Unauthenticated("the session is no longer valid".into()))?;
        Ok(Principal {
            id: user.id,
            name: user.username,
            role: Role::parse(&user.role)?,
            kind: PrincipalKind::User,
        })
    }

    async fn authenticate_api_key(&self, rest: &str) -> Result<Principal, Error> {
        let invalid = || Error::Unauthenticated("the API key is not valid".into());
        let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
        let row = self
            .store
            .api_key(id)
            .await
            .map_err(store_err("API key"))?
            .ok_or_else(invalid)?;
        let now = self.clock.now();
        let matches: bool = row
            .secret_hash
            .as_bytes()
            .ct_eq(sha256_hex(secret).as_bytes())
            .into();
        if !matches || row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) {
            return Err(invalid());
        }
        if let Some(owner) = &row.owner_id {
            let owner_active = self
                .store
                .user_by_id(owner)
                .await
                .map_err(store_err("user"))?
                .is_some_and(|u| !u.disabled);
            if !owner_active {
                return Err(invalid());
            }
        }
        Ok(Principal {
            id: row.id,
            name: row.name,
            role: Role::parse(&row.role)?,
            kind: PrincipalKind::ApiKey,
        })
    }

    /// A new access token for `user` and the next refresh token of `family`, which ends at `family_end`.
    async fn issue_session(
        &self,
        user: &UserRow,
        family: String,
        family_end: i64,
        now: i64,
    ) -> Result<Session, Error> {
        let subject = Subject {
            id: &user.id,
            name: &user.username,
            role: &user.role,
            generation: user.token_generation,
        };
        self.mint(subject, family, family_end, now, None).await
    }

    /// The next session of the OIDC console login `row` redeemed: the provider's refresh token (sealed in
    /// `sealed`) goes to the provider, which says who the user is now (their role may have changed); a
    /// refusal ends the login.
    async fn refresh_oidc(
        &self,
        row: &RefreshTokenRow,
        sealed: &[u8],
        now: i64,
    ) -> Result<Session, Error> {
        let oidc = self.oidc()?;
        let index = oidc
            .sign_in_providers()
            .into_iter()
            .map(|(i, _)| i)
            .find(|i| {
                oidc.issuer(*i)
                    .is_some_and(|iss| row.user_id.starts_with(&oidc_prefix(iss)))
            });
        let refreshed = match index {
            Some(index) => {
                let token = self.keystore.open_secret(OIDC_REFRESH_CONTEXT, sealed)?;
                let token = String::from_utf8_lossy(&token).into_owned();
                oidc.refresh(index, &token, &row.user_id, now).await
            }
            None => Err(Error::Unauthenticated(
                "the login's identity provider is no longer configured".into(),
            )),
        };
        let (principal, rotated) = match refreshed {
            Ok(answer) => answer,
            Err(e) => {
                tracing::info!(principal = %row.user_id, error = %e, "the identity provider ended a console login");
                self.store
                    .end_refresh_family(&row.token_hash)
                    .await
                    .map_err(store_err("refresh token"))?;
                return Err(Error::Unauthenticated(
                    "the identity provider ended the login; sign in again".into(),
                ));
            }
        };
        let sealed = match rotated {
            Some(token) => self
                .keystore
                .seal_secret(OIDC_REFRESH_CONTEXT, token.as_bytes())?,
            None => sealed.to_vec(),
        };
        let subject = Subject {
            id: &principal.id,
            name: &principal.name,
            role: principal.role.as_str(),
            generation: 0,
        };
        self.mint(
            subject,
            row.family.clone(),
            row.expires_at,
            now,
            Some(sealed),
        )
        .await
    }

    /// A new access token for `subject` and the next refresh token of `family` (holding the sealed
    /// `provider_token` of an OIDC login).
    async fn mint(
        &self,
        subject: Subject<'_>,
        family: String,
        family_end: i64,
        now: i64,
        provider_token: Option<Vec<u8>>,
    ) -> Result<Session, Error> {
        let expires_at = (now + TOKEN_TTL).min(family_end);
        let claims = Claims {
            sub: subject.id.to_string(),
            name: subject.name.to_string(),
            role: subject.role.to_string(),
            typ: "access".into(),
            tgen: subject.generation,
            fam: family.clone(),
            iss: "shedu".into(),
            iat: now,
            exp: expires_at,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("token signing: {e}")))?;
        let refresh_token = self
            .insert_refresh(
                subject.id,
                subject.generation,
                family,
                family_end,
                now,
                provider_token,
            )
            .await?;
        Ok(Session {
            token,
            expires_at,
            refresh_token,
        })
    }

    /// Stores the next refresh token of `family` and returns it.
    async fn insert_refresh(
        &self,
        principal_id: &str,
        generation: i64,
        family: String,
        family_end: i64,
        now: i64,
        provider_token: Option<Vec<u8>>,
    ) -> Result<String, Error> {
        let refresh_token = format!("shr_{}", hex::encode(rand::random::<[u8; 32]>()));
        self.store
            .insert_refresh_token(&RefreshTokenRow {
                token_hash: sha256_hex(&refresh_token),
                family,
                user_id: principal_id.to_string(),
                generation,
                created_at: now,
                expires_at: family_end,
                provider_token,
            })
            .await
            .map_err(store_err("refresh token"))?;
        Ok(refresh_token)
    }

    fn decode(&self, token: &str, typ: &str) -> Result<Claims, Error> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&["shedu"]);
        v.leeway = 0;
        // The service clock (not the wall clock) decides expiry, so tests can move time.
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map_err(|_| Error::Unauthenticated("the bearer token is not valid".into()))?;
        if data.claims.typ != typ || data.claims.exp <= self.clock.now() {
            return Err(Error::Unauthenticated(
                "the bearer token is not valid or has expired".into(),
            ));
        }
        Ok(data.claims)
    }

    /// Charges this attempt, before the password is checked, to the address's own counter (against
    /// spraying many names; [`FREE_ATTEMPTS_PER_ADDRESS`]) and to (`username`, `source`)
    /// ([`FREE_ATTEMPTS`]), both in one transaction, so parallel attempts cannot outrun the count;
    /// `RateLimited` with the wait when either has to wait (then neither is charged). Counters quiet for
    /// [`FAILURE_MEMORY`] are deleted on the way.
    async fn charge_attempt(&self, username: &str, source: &str, now: i64) -> Result<(), Error> {
        const FREE: [i64; 2] = [FREE_ATTEMPTS_PER_ADDRESS, FREE_ATTEMPTS];
        let charged = self
            .store
            .charge_login_attempt(
                &[ANY_USER, username],
                source,
                now,
                now - FAILURE_MEMORY,
                |i, c| next_failures(c, FREE[i], now),
            )
            .await
            .map_err(store_err("login"))?;
        match charged {
            Ok(()) => Ok(()),
            Err((i, until)) => Err(Error::RateLimited {
                detail: format!(
                    "too many failed logins {}; wait and try again",
                    ["from this address", "for this user from this address"][i]
                ),
                retry_after: u64::try_from(until - now).unwrap_or(1).max(1),
            }),
        }
    }
}

/// Whether `name` can be a user's name: 1 to 64 characters, no white space or control character.
fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_USERNAME
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The failed-login counter after charging one more attempt at `now`, or `Err(locked_until)` while the
/// pair has to wait. The attempt counts as a failure until a success clears the counter; from the
/// `free`th on, each one makes the next wait 1 s, 2 s, 4 s, … up to [`MAX_BACKOFF`].
fn next_failures(current: LoginFailures, free: i64, now: i64) -> Result<LoginFailures, i64> {
    if current.locked_until > now {
        return Err(current.locked_until);
    }
    let before = if now - current.updated_at >= FAILURE_MEMORY {
        0
    } else {
        current.failures
    };
    let failures = before + 1;
    let locked_until = if failures >= free {
        let doublings = u32::try_from(failures - free).unwrap_or(u32::MAX);
        now + 1i64
            .checked_shl(doublings.min(62))
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF)
    } else {
        0
    };
    Ok(LoginFailures {
        failures,
        locked_until,
        updated_at: now,
    })
}

fn check_password(p: &str) -> Result<(), Error> {
    if p.chars().count() < MIN_PASSWORD {
        return Err(Error::invalid(
            "weak-password",
            format!("passwords need at least {MIN_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// Argon2id with the crate's defaults (m = 19 MiB, t = 2, p = 1: OWASP's recommendation), 16-byte salt.
fn hash_password(p: &str) -> Result<String, Error> {
    let salt: [u8; 16] = rand::random();
    Argon2::default()
        .hash_password_with_salt(p.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing: {e}")))
}

fn verify_password(candidate: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(candidate.as_bytes(), &h)
            .is_ok()
    })
}

fn sha256_hex(s: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        s.as_bytes(),
    ))
}

fn user_from(r: UserRow) -> Result<User, Error> {
    Ok(User {
        role: Role::parse(&r.role)?,
        id: r.id,
        username: r.username,
        created_at: r.created_at,
        disabled: r.disabled,
    })
}

fn api_key_from(r: ApiKeyRow) -> Result<ApiKey, Error> {
    Ok(ApiKey {
        role: Role::parse(&r.role)?,
        id: r.id,
        name: r.name,
        created_by: r.created_by,
        created_at: r.created_at,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("auth task: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_after_the_free_attempts_up_to_the_cap() {
        let mut c = LoginFailures::default();
        let mut waits = Vec::new();
        let mut now = 1_000;
        for _ in 0..20 {
            c = next_failures(c, FREE_ATTEMPTS, now).unwrap();
            waits.push(c.locked_until.saturating_sub(now).max(0));
            assert_eq!(
                next_failures(c, FREE_ATTEMPTS, now).err(),
                (c.locked_until > now).then_some(c.locked_until)
            );
            now = c.locked_until.max(now);
        }
        assert_eq!(&waits[..8], &[0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(waits[19], MAX_BACKOFF);
    }

    #[test]
    fn a_long_quiet_pair_starts_from_zero() {
        let c = LoginFailures {
            failures: 9,
            locked_until: 0,
            updated_at: 0,
        };
        let next = next_failures(c, FREE_ATTEMPTS, FAILURE_MEMORY).unwrap();
        assert_eq!((next.failures, next.locked_until), (1, 0));
    }
}
