//! The secret store: a key/value store with versions (the Vault/OpenBao KV v2 model), ACL policies and
//! tokens, for the services of an edge box.
//!
//! **Sealing.** Each version's value is sealed with AES-256-GCM under the store's data key, with
//! `shedu-secret-v1 ‖ mount ‖ path ‖ version` (NUL-separated) as associated data, so a sealed value moved to
//! another path or version does not open. The data key is 32 random bytes made at first start and kept in
//! the database's `meta` table sealed under the master key (the keystore's AES-256-GCM), like the audit
//! key, so `shedu keys rotate-master` re-wraps it with the other keys and every replica shares it.
//!
//! **Tokens** are 256 random bits, returned once and stored only as SHA-256 hashes, with a public accessor.
//! A token created with another token is its child: revoking a token revokes its descendants, and a token
//! whose ancestor expired or was revoked is refused. A token's policies name [`Policy`] documents; a child
//! may hold only policies its parent holds. The `root` policy allows everything; only a root caller (a
//! root token, or an admin of the platform's own API) may hand it out.
//!
//! **Authorization** is decided here, on the Vault API path a call names (`secret/data/app`,
//! `auth/token/create`, `sys/policies/acl/x`), so the edge only parses and encodes.
//!
//! Every write, every token issued, renewed or revoked, and every policy change is an audit record written
//! in the change's transaction. Values are never logged, put in events or audit records; reads write
//! nothing.
//!
//! **Caches.** A read costs at most one statement: the authenticated caller is kept in memory until its
//! token's (or an ancestor's) expiry and forgotten on any token or policy change, on every replica
//! ([`Secrets::authenticate`]); on SQLite the sealed version rows read are kept too, forgotten on any
//! change of their path ([`Secrets::read`]'s `VersionCache`). Values stay sealed in memory.

mod policy;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use shedu_keys::Keystore;
use shedu_store::{
    Audited, SecretPathRow, SecretTokenRow, SecretVersionRow, SecretWrite, VersionChange,
};
use zeroize::Zeroizing;

pub use self::policy::{Capability, MAX_POLICY_LEN, Policy};
use crate::cluster::Remembered;
use crate::error::store_err;
use crate::{AuditAction, AuditContext, Error, Registry};

/// The `meta` key of the sealed data key.
pub(crate) const DATA_KEY: &str = "secrets_data_key";
/// The associated data the data key is sealed with.
pub(crate) const DATA_KEY_CONTEXT: &[u8] = b"shedu-secrets-data-key-v1";
/// The policy that allows everything.
pub const ROOT_POLICY: &str = "root";
/// The policy every token holds implicitly (it may be defined to grant something; by default it grants
/// nothing but the token's own `auth/token/*-self` calls, which need no policy).
pub const DEFAULT_POLICY: &str = "default";
/// Longest path under a mount, bytes.
const MAX_PATH_LEN: usize = 512;
/// Longest sealed value, bytes (a KV entry, not a file store).
const MAX_VALUE_LEN: usize = 512 * 1024;
/// How long expired token rows are kept, seconds.
const TOKEN_KEEP_SECS: i64 = 86_400;
/// Attempts at a write that lost a race with another writer of the same path.
const WRITE_ATTEMPTS: usize = 8;
/// A stale or forged ancestor chain longer than this is refused.
const MAX_TOKEN_DEPTH: usize = 32;
const SEAL_VERSION: u8 = 1;

/// The secret store's settings.
#[derive(Clone, Debug)]
pub struct SecretsConfig {
    /// The KV v2 mounts (`secret`).
    pub mounts: Vec<String>,
    /// Versions kept per path unless its metadata says otherwise.
    pub max_versions: i64,
    /// A token's lifetime when its creator names none, seconds.
    pub default_ttl: i64,
    /// The longest lifetime (and renewal horizon) of a non-periodic token, seconds.
    pub max_ttl: i64,
    /// The processes the token socket hands tokens to.
    pub clients: Vec<SecretClient>,
}

/// One allow-listed client of the token socket (`[[secrets.clients]]`): a service, known by the uid it
/// runs as and its executable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretClient {
    /// The service's name (recorded on its tokens; a new token revokes the service's earlier ones).
    pub service: String,
    /// The uid the process must run as.
    pub uid: u32,
    /// The absolute path of its executable, as the kernel shows it (`/proc/<pid>/exe`).
    pub exe: std::path::PathBuf,
    /// The SHA-256 its executable must have; `None`: any content at that path.
    pub exe_sha256: Option<[u8; 32]>,
    /// The policies of its tokens.
    pub policies: Vec<String>,
    /// Its tokens' lifetime, seconds.
    pub ttl: i64,
    /// Its tokens' renewal period, seconds (0: not periodic).
    pub period: i64,
}

/// The process at the other end of the token socket, as the kernel identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessIdentity {
    /// Its pid (`SO_PEERCRED`).
    pub pid: i32,
    /// Its uid (`SO_PEERCRED`).
    pub uid: u32,
    /// Its gid (`SO_PEERCRED`).
    pub gid: u32,
    /// Its executable's path (`/proc/<pid>/exe`).
    pub exe: std::path::PathBuf,
    /// SHA-256 of the executable's content, read through `/proc/<pid>/exe`.
    pub exe_sha256: [u8; 32],
}

impl Default for SecretsConfig {
    /// One mount, `secret`; 10 versions; tokens of 32 days at most (Vault's defaults).
    fn default() -> Self {
        SecretsConfig {
            mounts: vec!["secret".into()],
            max_versions: 10,
            default_ttl: 768 * 3600,
            max_ttl: 768 * 3600,
            clients: Vec::new(),
        }
    }
}

/// Who is calling the secret store.
#[derive(Clone, Debug)]
pub struct SecretCaller {
    /// The caller's token; `None` for an admin of the platform's API (root, holds no token).
    pub token: Option<TokenInfo>,
    name: String,
    root: bool,
    policies: Arc<[Policy]>,
}

impl SecretCaller {
    /// An administrator of the platform's API: root on the secret store, without a token of its own.
    pub fn platform_admin(name: &str) -> SecretCaller {
        SecretCaller {
            token: None,
            name: name.to_string(),
            root: true,
            policies: Arc::from(Vec::new()),
        }
    }

    /// The name the audit log records (`token:<accessor>` or the admin's name).
    pub fn audit_name(&self) -> String {
        match &self.token {
            Some(t) => format!("token:{}", t.accessor),
            None => self.name.clone(),
        }
    }

    /// The display name of the caller's token, or the admin's name.
    pub fn display_name(&self) -> &str {
        &self.name
    }

    /// Whether the caller may do `capability` on the API path `path`.
    pub fn allows(&self, path: &str, capability: Capability) -> bool {
        self.root || policy::allows(&self.policies, path, capability)
    }

    fn require(&self, path: &str, capability: Capability) -> Result<(), Error> {
        if self.allows(path, capability) {
            Ok(())
        } else {
            Err(denied())
        }
    }

    fn policy_names(&self) -> Vec<String> {
        match &self.token {
            Some(t) => t.policies.clone(),
            None => vec![ROOT_POLICY.to_string()],
        }
    }
}

/// A token's public facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The public handle.
    pub accessor: String,
    /// Policy names.
    pub policies: Vec<String>,
    /// A name for people.
    pub display_name: String,
    /// The service it was delivered to over the token socket, if any.
    pub service: Option<String>,
    /// Whether it has no parent.
    pub orphan: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// The TTL it was created with, seconds.
    pub creation_ttl: i64,
    /// Renewal period, seconds (0: none).
    pub period: i64,
    /// Whether renew-self works.
    pub renewable: bool,
}

/// A token as issued: the secret itself (shown once) and its facts.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token; zeroized on drop.
    pub token: Zeroizing<String>,
    /// Its facts.
    pub info: TokenInfo,
}

/// What a token creation asks for (Vault's `auth/token/create` body).
#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    /// Policy names; `None`: the creator's.
    pub policies: Option<Vec<String>>,
    /// Lifetime, seconds; `None`: the default.
    pub ttl: Option<i64>,
    /// Renewal period, seconds: a periodic token lives `period` after each renewal, indefinitely.
    pub period: Option<i64>,
    /// Whether it may be renewed (default true).
    pub renewable: Option<bool>,
    /// A name for people.
    pub display_name: Option<String>,
    /// Make an orphan (root callers only).
    pub no_parent: bool,
}

/// How a patch turns the current value into the next one (the edge's JSON merge patch).
pub type MergeFn = dyn Fn(&[u8]) -> Result<Zeroizing<Vec<u8>>, Error> + Send + Sync;

/// A token about to be made.
struct Mint {
    parent: Option<String>,
    policies: Vec<String>,
    display_name: String,
    service: Option<String>,
    replace: bool,
    ttl: i64,
    period: i64,
    renewable: bool,
}

/// One version's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version number.
    pub version: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// When soft-deleted.
    pub deleted_at: Option<i64>,
    /// Whether its value is gone for good.
    pub destroyed: bool,
}

/// A version read: its facts and, when it is live, its value (the JSON text the client wrote).
#[derive(Debug)]
pub struct SecretValue {
    /// The version's facts.
    pub info: VersionInfo,
    /// The value; `None` when the version is deleted or destroyed.
    pub value: Option<Zeroizing<Vec<u8>>>,
}

/// A path's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMetadata {
    /// The newest version.
    pub current_version: i64,
    /// The oldest kept version.
    pub oldest_version: i64,
    /// The path's `max_versions` (0: the store's default).
    pub max_versions: i64,
    /// Whether writes must give a check-and-set version.
    pub cas_required: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Every kept version, oldest first.
    pub versions: Vec<VersionInfo>,
}

/// What to do with a value when writing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Check-and-set: write only when the current version is this (0: only when the path is new).
    pub cas: Option<i64>,
}

/// The secret store service.
pub struct Secrets {
    registry: Arc<Registry>,
    config: SecretsConfig,
    data_key: LessSafeKey,
    /// Callers authenticated recently, by their token's SHA-256 (see [`Secrets::authenticate`]), under one
    /// generation of token and policy changes (`Registry::secrets_generation`).
    callers: Remembered<Vec<u8>, CachedCaller>,
    /// Sealed versions read recently; `None` on PostgreSQL (see [`Secrets::read`]).
    versions: Option<RwLock<VersionCache>>,
}

/// Most bytes of sealed values kept by [`VersionCache`]; it starts afresh when full.
const MAX_CACHED_VALUE_BYTES: usize = 32 * 1024 * 1024;

/// What [`Store::secret_version_to_read`](shedu_store::Store::secret_version_to_read) answered, by mount and
/// path, then by the version asked (0: the current one): the path's current version and the version's row,
/// its value still sealed. Only where one process owns the database (SQLite): every change of a path goes
/// through this process, which forgets the path's entries once the change is committed, before the
/// changing call returns. `generation` moves with every such change, so that a read that started before
/// it does not store what it read.
#[derive(Default)]
struct VersionCache {
    generation: u64,
    bytes: usize,
    paths: HashMap<(String, String), HashMap<i64, (i64, SecretVersionRow)>>,
}

/// A caller kept by [`Secrets::authenticate`].
#[derive(Clone)]
struct CachedCaller {
    caller: SecretCaller,
    /// Unix seconds: the earliest expiry of the token and its ancestors; from then on the database decides
    /// again (a renewal elsewhere may have moved it).
    valid_until: i64,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Opens the store: unseals the data key, or makes it at first start.
    pub(crate) async fn open(
        registry: Arc<Registry>,
        keystore: &Keystore,
        config: SecretsConfig,
    ) -> Result<Secrets, Error> {
        let store = &registry.store;
        let sealed = match store.meta_get(DATA_KEY).await.map_err(store_err("meta"))? {
            Some(sealed) => sealed,
            None => {
                let fresh = Zeroizing::new(rand::random::<[u8; 32]>());
                let sealed = keystore.seal_secret(DATA_KEY_CONTEXT, fresh.as_ref())?;
                // Two replicas starting together: the first insert wins and both use its key.
                store
                    .meta_insert_new(DATA_KEY, &sealed)
                    .await
                    .map_err(store_err("meta"))?;
                store
                    .meta_get(DATA_KEY)
                    .await
                    .map_err(store_err("meta"))?
                    .ok_or_else(|| Error::Internal("the secrets data key vanished".into()))?
            }
        };
        let registry_backend = store.backend();
        let key = keystore.open_secret(DATA_KEY_CONTEXT, &sealed)?;
        let data_key = UnboundKey::new(&AES_256_GCM, &key)
            .map(LessSafeKey::new)
            .map_err(|_| Error::Internal("the secrets data key is not an AES-256 key".into()))?;
        Ok(Secrets {
            registry,
            config,
            data_key,
            callers: Remembered::default(),
            versions: (registry_backend == shedu_store::Backend::Sqlite)
                .then(|| RwLock::new(VersionCache::default())),
        })
    }

    /// The settings.
    pub fn config(&self) -> &SecretsConfig {
        &self.config
    }

    /// Whether `mount` is a KV v2 mount.
    pub fn is_mount(&self, mount: &str) -> bool {
        self.config.mounts.iter().any(|m| m == mount)
    }

    // --- tokens ---

    /// The caller holding `token`: [`Error::Unauthenticated`] when it is unknown, expired, or an
    /// ancestor is.
    ///
    /// A caller found is kept in memory (its token's facts, its ancestors' earliest expiry, its parsed
    /// policies) and served from there until that expiry, so that a read costs no token, ancestor or policy
    /// query. The cache is dropped whenever a token is revoked, renewed or deleted, or a policy changes:
    /// at once on the replica that made the change (before the change's call returns), and on the other
    /// replicas of a PostgreSQL database through the change feed; a revocation waits until every replica
    /// with a live cache lease applied it (`cluster.rs`), so a revoked token is refused everywhere once
    /// its revocation returned. A replica without a live lease does not use the cache.
    pub async fn authenticate(&self, token: &str) -> Result<SecretCaller, Error> {
        let hash = sha256(token);
        let now = self.registry.now();
        let kept = self
            .callers
            .get_or_read_fresh(
                &self.registry.coherence,
                &self.registry.secrets_generation,
                hash.as_slice(),
                |hit: &CachedCaller| now < hit.valid_until,
                || async {
                    let (caller, valid_until) = self.authenticate_stored(&hash, now).await?;
                    Ok::<_, Error>(CachedCaller {
                        caller,
                        valid_until,
                    })
                },
            )
            .await?;
        Ok(kept.caller)
    }

    /// Forgets the cached callers (a token or policy changed), here and, before it returns, on every
    /// replica.
    async fn tokens_changed(&self) {
        self.registry.on_secrets_changed().await;
    }

    /// [`Secrets::authenticate`] from the database: the caller and until when it may be cached.
    async fn authenticate_stored(
        &self,
        hash: &[u8],
        now: i64,
    ) -> Result<(SecretCaller, i64), Error> {
        let store = &self.registry.store;
        let row = store
            .secret_token_by_hash(hash)
            .await
            .map_err(store_err("token"))?
            .filter(|t| t.expires_at > now)
            .ok_or_else(bad_token)?;
        let mut parent = row.parent.clone();
        let mut depth = 0;
        let mut valid_until = row.expires_at;
        while let Some(accessor) = parent {
            depth += 1;
            let up = store
                .secret_token(&accessor)
                .await
                .map_err(store_err("token"))?
                .filter(|t| t.expires_at > now && depth <= MAX_TOKEN_DEPTH)
                .ok_or_else(bad_token)?;
            valid_until = valid_until.min(up.expires_at);
            parent = up.parent;
        }
        let info = info_of(&row);
        let root = info.policies.iter().any(|p| p == ROOT_POLICY);
        let mut policies = Vec::new();
        for name in &info.policies {
            if let Some(doc) = store
                .secret_policy(name)
                .await
                .map_err(store_err("policy"))?
            {
                policies.push(Policy::parse(&doc)?);
            }
        }
        let caller = SecretCaller {
            name: info.display_name.clone(),
            token: Some(info),
            root,
            policies: Arc::from(policies),
        };
        Ok((caller, valid_until))
    }

    /// Creates a token for `caller` (Vault's `auth/token/create`): the caller needs `update` on
    /// `auth/token/create`; the new token holds a subset of the caller's policies (any, for root) and is
    /// the caller's child unless `no_parent` (root only) or the caller holds no token.
    pub async fn create_token(
        &self,
        caller: &SecretCaller,
        req: TokenRequest,
        actor: &AuditContext,
    ) -> Result<IssuedToken, Error> {
        caller.require("auth/token/create", Capability::Update)?;
        let mut policies = req.policies.unwrap_or_else(|| caller.policy_names());
        policies.retain(|p| !p.is_empty());
        policies.sort();
        policies.dedup();
        for p in &policies {
            if !valid_name(p) {
                return Err(Error::invalid(
                    "invalid-policy-name",
                    format!("{p:?} is not a policy name (letters, digits, '-', '_', '.')"),
                ));
            }
        }
        if !caller.root {
            let held = caller.policy_names();
            if let Some(p) = policies
                .iter()
                .find(|p| *p != DEFAULT_POLICY && !held.contains(p))
            {
                return Err(Error::Forbidden {
                    code: "policy-not-held",
                    detail: format!("child policies must be subset of parent policies ({p:?})"),
                });
            }
            if req.no_parent {
                return Err(Error::Forbidden {
                    code: "orphan-needs-root",
                    detail: "root or sudo privileges required to create orphan token".into(),
                });
            }
        }
        if !policies.iter().any(|p| p == DEFAULT_POLICY)
            && !policies.iter().any(|p| p == ROOT_POLICY)
        {
            policies.push(DEFAULT_POLICY.to_string());
            policies.sort();
        }
        let period = req.period.unwrap_or(0);
        let ttl = match (req.ttl, period) {
            (Some(t), _) if t > 0 => t,
            (_, p) if p > 0 => p,
            _ => self.config.default_ttl,
        };
        if period < 0 || ttl > self.config.max_ttl && period == 0 || period > self.config.max_ttl {
            return Err(Error::invalid(
                "invalid-ttl",
                format!(
                    "ttl and period are at most {}s and not negative",
                    self.config.max_ttl
                ),
            ));
        }
        let parent = match (&caller.token, req.no_parent) {
            (Some(t), false) => Some(t.accessor.clone()),
            _ => None,
        };
        let display_name = match req.display_name {
            Some(n) if !n.is_empty() => {
                let n: String = n.chars().filter(|c| !c.is_control()).take(128).collect();
                format!("token-{n}")
            }
            _ => "token".to_string(),
        };
        let minted = Mint {
            parent,
            policies,
            display_name,
            service: None,
            replace: false,
            ttl,
            period,
            renewable: req.renewable.unwrap_or(true),
        };
        self.mint(minted, actor).await
    }

    /// A fresh token for the process at the other end of the token socket, if the allow-list names its uid
    /// and executable (path, and content when a SHA-256 is configured): an orphan with the client's
    /// policies, TTL and period, replacing the service's earlier tokens. Anyone else is `Forbidden`.
    pub async fn issue_for_process(
        &self,
        who: &ProcessIdentity,
        actor: &AuditContext,
    ) -> Result<IssuedToken, Error> {
        let client = self
            .config
            .clients
            .iter()
            .find(|c| {
                c.uid == who.uid
                    && c.exe == who.exe
                    && c.exe_sha256.is_none_or(|h| h == who.exe_sha256)
            })
            .ok_or_else(|| Error::Forbidden {
                code: "process-not-allowed",
                detail: format!(
                    "no [[secrets.clients]] entry allows uid {} running {} (sha256 {})",
                    who.uid,
                    who.exe.display(),
                    hex::encode(who.exe_sha256)
                ),
            })?;
        let mut policies = client.policies.clone();
        policies.push(DEFAULT_POLICY.to_string());
        policies.sort();
        policies.dedup();
        let minted = Mint {
            parent: None,
            policies,
            display_name: format!("token-{}", client.service),
            service: Some(client.service.clone()),
            replace: true,
            ttl: if client.ttl > 0 {
                client.ttl
            } else {
                self.config.default_ttl
            },
            period: client.period,
            renewable: true,
        };
        self.mint(minted, actor).await
    }

    async fn mint(&self, m: Mint, actor: &AuditContext) -> Result<IssuedToken, Error> {
        let now = self.registry.now();
        let token = Zeroizing::new(format!("shs.{}", hex::encode(rand::random::<[u8; 32]>())));
        let row = SecretTokenRow {
            accessor: hex::encode(rand::random::<[u8; 12]>()),
            token_sha256: sha256(&token),
            parent: m.parent,
            policies: m.policies,
            display_name: m.display_name,
            service: m.service,
            created_at: now,
            expires_at: now + m.ttl,
            max_expires_at: if m.period > 0 {
                i64::MAX
            } else {
                now + self.config.max_ttl
            },
            ttl: m.ttl,
            period: m.period,
            renewable: m.renewable,
        };
        let inserted = self
            .registry
            .store
            .insert_secret_token(
                &row,
                now - TOKEN_KEEP_SECS,
                m.replace,
                &audited(actor, AuditAction::SecretTokenCreate),
            )
            .await
            .map_err(store_err("token"));
        if m.replace {
            // The service's earlier tokens were revoked with it.
            self.tokens_changed().await;
        }
        inserted?;
        Ok(IssuedToken {
            token,
            info: info_of(&row),
        })
    }

    /// Renews the caller's own token: a periodic token lives `period` from now; another lives
    /// `increment` (or its TTL) from now, never past its maximum.
    pub async fn renew_self(
        &self,
        caller: &SecretCaller,
        increment: Option<i64>,
        actor: &AuditContext,
    ) -> Result<TokenInfo, Error> {
        let info = own_token(caller)?;
        if !info.renewable {
            return Err(Error::invalid("not-renewable", "lease is not renewable"));
        }
        let store = &self.registry.store;
        let row = store
            .secret_token(&info.accessor)
            .await
            .map_err(store_err("token"))?
            .ok_or_else(bad_token)?;
        let now = self.registry.now();
        let expires_at = if row.period > 0 {
            now + row.period
        } else {
            (now + increment.filter(|i| *i > 0).unwrap_or(row.ttl)).min(row.max_expires_at)
        };
        let renewed = store
            .renew_secret_token(
                &row.accessor,
                expires_at,
                now,
                &audited(actor, AuditAction::SecretTokenRenew),
            )
            .await
            .map_err(store_err("token"));
        // A renewal with a short increment may bring the expiry closer: no cached caller keeps the old one
        // here; other replicas forget theirs as the change reaches them (within a cache lease).
        self.registry.forget_secret_callers();
        renewed?;
        Ok(TokenInfo {
            expires_at,
            ..info_of(&row)
        })
    }

    /// Revokes the caller's own token and every token descended from it.
    pub async fn revoke_self(
        &self,
        caller: &SecretCaller,
        actor: &AuditContext,
    ) -> Result<(), Error> {
        let info = own_token(caller)?;
        let revoked = self
            .registry
            .store
            .revoke_secret_token(
                &info.accessor,
                self.registry.now(),
                &audited(actor, AuditAction::SecretTokenRevoke),
            )
            .await
            .map_err(store_err("token"));
        self.tokens_changed().await;
        revoked.map(|_| ())
    }

    /// The caller's own token's facts, as of now.
    pub fn lookup_self(&self, caller: &SecretCaller) -> Result<TokenInfo, Error> {
        own_token(caller).cloned()
    }

    // --- policies ---

    /// Creates or replaces policy `name` (needs `update` on `sys/policies/acl/<name>`).
    pub async fn put_policy(
        &self,
        caller: &SecretCaller,
        name: &str,
        document: &str,
        actor: &AuditContext,
    ) -> Result<(), Error> {
        caller.require(&format!("sys/policies/acl/{name}"), Capability::Update)?;
        if !valid_name(name) || name == ROOT_POLICY {
            return Err(Error::invalid(
                "invalid-policy-name",
                format!("{name:?} cannot be written (letters, digits, '-', '_', '.'; not root)"),
            ));
        }
        Policy::parse(document)?;
        let put = self
            .registry
            .store
            .put_secret_policy(
                name,
                document,
                self.registry.now(),
                &audited(actor, AuditAction::SecretPolicyWrite),
            )
            .await
            .map_err(store_err("policy"));
        self.tokens_changed().await;
        put
    }

    /// The document of policy `name` (needs `read` on `sys/policies/acl/<name>`).
    pub async fn policy(&self, caller: &SecretCaller, name: &str) -> Result<String, Error> {
        caller.require(&format!("sys/policies/acl/{name}"), Capability::Read)?;
        self.registry
            .store
            .secret_policy(name)
            .await
            .map_err(store_err("policy"))?
            .ok_or_else(|| Error::NotFound(format!("policy {name}")))
    }

    /// Every policy name (needs `list` on `sys/policies/acl`).
    pub async fn policy_names(&self, caller: &SecretCaller) -> Result<Vec<String>, Error> {
        caller.require("sys/policies/acl", Capability::List)?;
        let mut names = self
            .registry
            .store
            .secret_policy_names()
            .await
            .map_err(store_err("policy"))?;
        names.push(ROOT_POLICY.to_string());
        names.sort();
        Ok(names)
    }

    /// Deletes policy `name` (needs `delete` on `sys/policies/acl/<name>`).
    pub async fn delete_policy(
        &self,
        caller: &SecretCaller,
        name: &str,
        actor: &AuditContext,
    ) -> Result<(), Error> {
        caller.require(&format!("sys/policies/acl/{name}"), Capability::Delete)?;
        let deleted = self
            .registry
            .store
            .delete_secret_policy(
                name,
                self.registry.now(),
                &audited(actor, AuditAction::SecretPolicyDelete),
            )
            .await
            .map_err(store_err(format!("policy {name}")));
        self.tokens_changed().await;
        deleted
    }

    // --- key/value ---

    /// Reads `version` (the current one when `None`) of `mount`/`path` (needs `read` on
    /// `<mount>/data/<path>`). A deleted or destroyed version comes back without its value.
    pub async fn read(
        &self,
        caller: &SecretCaller,
        mount: &str,
        path: &str,
        version: Option<i64>,
    ) -> Result<SecretValue, Error> {
        self.check(mount, path)?;
        caller.require(&format!("{mount}/data/{path}"), Capability::Read)?;
        let wanted = version.filter(|v| *v > 0).unwrap_or(0);
        let (current, row) = self
            .version_to_read(mount, path, wanted)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{mount}/{path}")))?;
        let wanted = if wanted > 0 { wanted } else { current };
        let row = row.ok_or_else(|| Error::NotFound(format!("{mount}/{path} version {wanted}")))?;
        let value = match (&row.sealed, row.deleted_at) {
            (Some(sealed), None) => Some(self.open_value(mount, path, row.version, sealed)?),
            _ => None,
        };
        Ok(SecretValue {
            info: version_info(&row),
            value,
        })
    }

    /// Writes a new version of `mount`/`path` holding `value` (the JSON text of the data): needs
    /// `create` on `<mount>/data/<path>` for a new path, `update` for an existing one. A failed
    /// check-and-set is `Invalid { code: "cas-mismatch" }` and writes nothing.
    pub async fn write(
        &self,
        caller: &SecretCaller,
        mount: &str,
        path: &str,
        value: &[u8],
        options: WriteOptions,
        actor: &AuditContext,
    ) -> Result<VersionInfo, Error> {
        self.check(mount, path)?;
        let acl = format!("{mount}/data/{path}");
        self.write_with(mount, path, actor, AuditAction::SecretWrite, |current| {
            let capability = if current.is_some() {
                Capability::Update
            } else {
                Capability::Create
            };
            caller.require(&acl, capability)?;
            let now_version = current.map_or(0, |(m, _)| m.current_version);
            let cas_required = current.is_some_and(|(m, _)| m.cas_required);
            match options.cas {
                Some(cas) if cas != now_version => Err(cas_mismatch()),
                None if cas_required => Err(Error::invalid(
                    "cas-required",
                    "check-and-set parameter required for this call",
                )),
                _ => Ok(Zeroizing::new(value.to_vec())),
            }
        })
        .await
    }

    /// Merges into the current version of `mount`/`path` (needs `patch` on `<mount>/data/<path>`):
    /// `merge` receives the current value and returns the new one; the result is written as the next
    /// version, re-read and re-merged if another writer got there first. `NotFound` when the path has no
    /// live current version.
    pub async fn patch(
        &self,
        caller: &SecretCaller,
        mount: &str,
        path: &str,
        options: WriteOptions,
        merge: &MergeFn,
        actor: &AuditContext,
    ) -> Result<VersionInfo, Error> {
        self.check(mount, path)?;
        caller.require(&format!("{mount}/data/{path}"), Capability::Patch)?;
        self.write_with(mount, path, actor, AuditAction::SecretPatch, |current| {
            let (meta, versions) =
                current.ok_or_else(|| Error::NotFound(format!("{mount}/{path}")))?;
            if let Some(cas) = options.cas
                && cas != meta.current_version
            {
                return Err(cas_mismatch());
            }
            let live = versions
                .iter()
                .find(|v| v.version == meta.current_version)
                .filter(|v| v.deleted_at.is_none())
                .and_then(|v| v.sealed.as_ref())
                .ok_or_else(|| Error::NotFound(format!("{mount}/{path}")))?;
            let old = self.open_value(mount, path, meta.current_version, live)?;
            merge(&old)
        })
        .await
    }

    /// Soft-deletes the current version (needs `delete` on `<mount>/data/<path>`).
    pub async fn delete_current(
        &self,
        caller: &SecretCaller,
        mount: &str,
        path: &str,
        actor: &AuditContext,
    ) -> Result<(), Error> {
        self.check(mount, path)?;
        caller.require(&format!("{mount}/data/{path}"), Capability::Delete)?;
        let (meta, _) = self.load(mount, path).await?;
        self.change(
            mount,
            path,
            &[meta.current_version],
            VersionChange::Delete,
            actor,
        )
        .await
    }

    /// Deletes, undeletes or destroys `versions` (needs `update` on `<mount>/delete/<path>`,
    /// `<mount>/undelete/<path>` or `<mount>/destroy/<path>`). Versions that do not exist are skipped.
    pub async fn change_versions(
        &self,
        caller: &SecretCaller,
        mount: &str,
        path: &str,
        versions: &[i64],
        change: VersionChange,
        actor: &AuditContext,
    ) -> Result<(), Error> {
        self.check(mount, path)?;
        let op = match change {
            VersionChange::Delete => "delete",
            VersionChange::Undelete => "undelete",
            VersionChange::Destroy => "destroy",
        };
        caller.require(&format!("{mount}/{op}/{path}"), Capability::Update)?;
        self.change(mount, path, versions, change, actor).await
    }

    /// The metadata of `mount`/`path` (needs `read` on `<mount>/metadata/<path>`).
    pub async fn metadata(
        &self,
        caller: &SecretCaller,
        mount: &str,
        path: &str,
    ) -> Result<SecretMetadata, Error> {
        self.check(mount, path)?;
        caller.require(&format!("{mount}/metadata/{path}"), Capability::Read)?;
        let (meta, versions) = self.load(mount, path).await?;
        Ok(SecretMetadata {
            current_version: meta.current_version,
            oldest_version: meta.oldest_version,
            max_versions: meta.max_versions,
            cas_required: meta.cas_required,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            versions: versions.iter().map(version_info).collect(),
        })
    }

    /// Sets a path's `max_versions` and `cas_required` (needs `update` on `<mount>/metadata/<path>`);
    /// `None` keeps the current setting.
    pub async fn set_metadata(
        &self,
        caller: &SecretCaller,
        mount: &str,
        path: &str,
        max_versions: Option<i64>,
        cas_required: Option<bool>,
        actor: &AuditContext,
    ) -> Result<(), Error> {
        self.check(mount, path)?;
        caller.require(&format!("{mount}/metadata/{path}"), Capability::Update)?;
        if max_versions.is_some_and(|m| !(0..=1000).contains(&m)) {
            return Err(Error::invalid(
                "invalid-max-versions",
                "max_versions is between 0 (the default) and 1000",
            ));
        }
        let (meta, _) = self.load(mount, path).await?;
        let set = self
            .registry
            .store
            .set_secret_path_options(
                mount,
                path,
                max_versions.unwrap_or(meta.max_versions),
                cas_required.unwrap_or(meta.cas_required),
                self.registry.now(),
                &audited(actor, AuditAction::SecretMetadataWrite),
            )
            .await
            .map_err(store_err(format!("{mount}/{path}")));
        self.forget_path(mount, path);
        set
    }

    /// Removes `mount`/`path` with all its versions (needs `delete` on `<mount>/metadata/<path>`).
    pub async fn delete_metadata(
        &self,
        caller: &SecretCaller,
        mount: &str,
        path: &str,
        actor: &AuditContext,
    ) -> Result<(), Error> {
        self.check(mount, path)?;
        caller.require(&format!("{mount}/metadata/{path}"), Capability::Delete)?;
        let deleted = self
            .registry
            .store
            .delete_secret_path(
                mount,
                path,
                self.registry.now(),
                &audited(actor, AuditAction::SecretMetadataDelete),
            )
            .await
            .map_err(store_err(format!("{mount}/{path}")));
        self.forget_path(mount, path);
        deleted
    }

    /// The keys directly under `prefix` (`""` or ending in `/`), folders with a trailing `/` (needs
    /// `list` on `<mount>/metadata/<prefix>`). `NotFound` when there are none.
    pub async fn list(
        &self,
        caller: &SecretCaller,
        mount: &str,
        prefix: &str,
    ) -> Result<Vec<String>, Error> {
        self.check_mount(mount)?;
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        if prefix.len() > MAX_PATH_LEN || prefix.chars().any(char::is_control) {
            return Err(Error::invalid("invalid-path", "invalid path"));
        }
        caller.require(&format!("{mount}/metadata/{prefix}"), Capability::List)?;
        let paths = self
            .registry
            .store
            .secret_paths_under(mount, &prefix)
            .await
            .map_err(store_err("secret paths"))?;
        let mut keys: Vec<String> = paths
            .iter()
            .filter_map(|p| p.strip_prefix(prefix.as_str()))
            .map(|rest| match rest.find('/') {
                Some(i) => rest[..=i].to_string(),
                None => rest.to_string(),
            })
            .collect();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Err(Error::NotFound(format!("{mount}/{prefix}")));
        }
        Ok(keys)
    }

    async fn write_with(
        &self,
        mount: &str,
        path: &str,
        actor: &AuditContext,
        action: AuditAction,
        next_value: impl Fn(
            Option<(&SecretPathRow, &[SecretVersionRow])>,
        ) -> Result<Zeroizing<Vec<u8>>, Error>,
    ) -> Result<VersionInfo, Error> {
        let store = &self.registry.store;
        for _ in 0..WRITE_ATTEMPTS {
            let current = match store
                .secret_path(mount, path)
                .await
                .map_err(store_err("secret"))?
            {
                Some(meta) => {
                    let versions = store
                        .secret_versions(mount, path)
                        .await
                        .map_err(store_err("secret"))?;
                    Some((meta, versions))
                }
                None => None,
            };
            let value = next_value(current.as_ref().map(|(m, v)| (m, v.as_slice())))?;
            if value.len() > MAX_VALUE_LEN {
                return Err(Error::invalid(
                    "value-too-large",
                    format!("a value is at most {MAX_VALUE_LEN} bytes"),
                ));
            }
            let expected = current.as_ref().map_or(0, |(m, _)| m.current_version);
            let max_versions = current.as_ref().map_or(0, |(m, _)| m.max_versions);
            let keep = if max_versions > 0 {
                max_versions
            } else {
                self.config.max_versions
            };
            let version = expected + 1;
            let now = self.registry.now();
            let write = SecretWrite {
                mount: mount.to_string(),
                path: path.to_string(),
                expected,
                version,
                sealed: self.seal_value(mount, path, version, &value)?,
                keep,
                max_versions,
                now,
            };
            let written = store
                .write_secret_version(&write, &audited(actor, action))
                .await;
            self.forget_path(mount, path);
            match written {
                Ok(()) => {
                    return Ok(VersionInfo {
                        version,
                        created_at: now,
                        deleted_at: None,
                        destroyed: false,
                    });
                }
                // Another writer moved the path first: read again and decide again (a CAS write then
                // fails its check-and-set, as it should).
                Err(shedu_store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(store_err("secret")(e)),
            }
        }
        Err(Error::conflict(
            "write-contention",
            "too many concurrent writes to this path; try again",
        ))
    }

    /// The path's current version and the row of version `wanted` (0: the current one): one statement,
    /// or, on SQLite, the sealed row kept from an earlier read of the same path (see [`VersionCache`]).
    /// On PostgreSQL every read goes to the database, so it sees every replica's latest change.
    async fn version_to_read(
        &self,
        mount: &str,
        path: &str,
        wanted: i64,
    ) -> Result<Option<(i64, Option<SecretVersionRow>)>, Error> {
        let key = (mount.to_string(), path.to_string());
        let mut generation = None;
        if let Some(cache) = &self.versions
            && let Ok(cache) = cache.read()
        {
            if let Some((current, row)) = cache.paths.get(&key).and_then(|v| v.get(&wanted)) {
                return Ok(Some((*current, Some(row.clone()))));
            }
            generation = Some(cache.generation);
        }
        let found = self
            .registry
            .store
            .secret_version_to_read(mount, path, wanted)
            .await
            .map_err(store_err("secret"))?;
        if let (Some(cache), Some(generation), Some((current, Some(row)))) =
            (&self.versions, generation, &found)
            && let Ok(mut cache) = cache.write()
            && cache.generation == generation
        {
            let size = row.sealed.as_ref().map_or(0, Vec::len) + path.len() + 64;
            if cache.bytes + size > MAX_CACHED_VALUE_BYTES {
                cache.paths.clear();
                cache.bytes = 0;
            }
            if size <= MAX_CACHED_VALUE_BYTES {
                cache.bytes += size;
                cache
                    .paths
                    .entry(key)
                    .or_default()
                    .insert(wanted, (*current, row.clone()));
            }
        }
        Ok(found)
    }

    /// Forgets what [`VersionCache`] holds of `mount`/`path`: called after every change of the path
    /// (committed or not), before the changing call returns.
    fn forget_path(&self, mount: &str, path: &str) {
        if let Some(cache) = &self.versions
            && let Ok(mut cache) = cache.write()
        {
            cache.generation += 1;
            if let Some(versions) = cache.paths.remove(&(mount.to_string(), path.to_string())) {
                let freed: usize = versions
                    .values()
                    .map(|(_, row)| row.sealed.as_ref().map_or(0, Vec::len) + path.len() + 64)
                    .sum();
                cache.bytes = cache.bytes.saturating_sub(freed);
            }
        }
    }

    async fn change(
        &self,
        mount: &str,
        path: &str,
        versions: &[i64],
        change: VersionChange,
        actor: &AuditContext,
    ) -> Result<(), Error> {
        let action = match change {
            VersionChange::Delete => AuditAction::SecretDelete,
            VersionChange::Undelete => AuditAction::SecretUndelete,
            VersionChange::Destroy => AuditAction::SecretDestroy,
        };
        let changed = self
            .registry
            .store
            .change_secret_versions(
                mount,
                path,
                versions,
                change,
                self.registry.now(),
                &audited(actor, action),
            )
            .await
            .map_err(store_err(format!("{mount}/{path}")));
        self.forget_path(mount, path);
        changed
    }

    async fn load(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<(SecretPathRow, Vec<SecretVersionRow>), Error> {
        let store = &self.registry.store;
        let meta = store
            .secret_path(mount, path)
            .await
            .map_err(store_err("secret"))?
            .ok_or_else(|| Error::NotFound(format!("{mount}/{path}")))?;
        let versions = store
            .secret_versions(mount, path)
            .await
            .map_err(store_err("secret"))?;
        Ok((meta, versions))
    }

    fn check_mount(&self, mount: &str) -> Result<(), Error> {
        if self.is_mount(mount) {
            Ok(())
        } else {
            Err(Error::NotFound(format!("mount {mount}")))
        }
    }

    fn check(&self, mount: &str, path: &str) -> Result<(), Error> {
        self.check_mount(mount)?;
        let ok = !path.is_empty()
            && path.len() <= MAX_PATH_LEN
            && !path.starts_with('/')
            && !path.ends_with('/')
            && !path.contains("//")
            && !path.chars().any(char::is_control)
            && path.split('/').all(|s| s != "." && s != "..");
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "invalid-path",
                format!(
                    "a secret path is 1 to {MAX_PATH_LEN} bytes of non-empty segments, without control \
                     characters, '.' or '..'"
                ),
            ))
        }
    }

    fn seal_value(
        &self,
        mount: &str,
        path: &str,
        version: i64,
        plain: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let mut buf = Zeroizing::new(plain.to_vec());
        let nonce: [u8; NONCE_LEN] = rand::random();
        self.data_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(value_aad(mount, path, version)),
                &mut *buf,
            )
            .map_err(|_| Error::Internal("sealing a secret failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open_value(
        &self,
        mount: &str,
        path: &str,
        version: i64,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let fail = || {
            Error::Internal(format!(
                "the sealed value of {mount}/{path} v{version} does not open"
            ))
        };
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return Err(fail());
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| fail())?;
        let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .data_key
            .open_in_place(nonce, Aad::from(value_aad(mount, path, version)), &mut buf)
            .map_err(|_| fail())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// The associated data of a sealed value: it opens only at the mount, path and version it was written to.
fn value_aad(mount: &str, path: &str, version: i64) -> Vec<u8> {
    format!("shedu-secret-v1\0{mount}\0{path}\0{version}").into_bytes()
}

/// The audit record a change by `actor` writes with itself.
fn audited(actor: &AuditContext, action: AuditAction) -> Audited<'_> {
    Audited {
        actor,
        action: action.as_str(),
    }
}

fn version_info(v: &SecretVersionRow) -> VersionInfo {
    VersionInfo {
        version: v.version,
        created_at: v.created_at,
        deleted_at: v.deleted_at,
        destroyed: v.sealed.is_none(),
    }
}

fn info_of(row: &SecretTokenRow) -> TokenInfo {
    TokenInfo {
        accessor: row.accessor.clone(),
        policies: row.policies.clone(),
        display_name: row.display_name.clone(),
        service: row.service.clone(),
        orphan: row.parent.is_none(),
        created_at: row.created_at,
        expires_at: row.expires_at,
        creation_ttl: row.ttl,
        period: row.period,
        renewable: row.renewable,
    }
}

fn own_token(caller: &SecretCaller) -> Result<&TokenInfo, Error> {
    caller.token.as_ref().ok_or_else(|| Error::Invalid {
        code: "no-token",
        detail: "this call is about the caller's own token; a platform admin holds none".into(),
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn sha256(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn bad_token() -> Error {
    Error::Unauthenticated("permission denied".into())
}

fn denied() -> Error {
    Error::Forbidden {
        code: "permission-denied",
        detail: "permission denied".into(),
    }
}

fn cas_mismatch() -> Error {
    Error::invalid(
        "cas-mismatch",
        "check-and-set parameter did not match the current version",
    )
}
