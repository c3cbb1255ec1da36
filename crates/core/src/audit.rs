//! The audit log and its vocabulary. Every service method that changes something somebody asked for takes
//! the acting principal (an [`AuditContext`]) as an explicit argument and names its [`AuditAction`]; storage
//! appends the record inside the change's own transaction. The gateway records requests that changed
//! nothing (refused, failed, logins) through [`Audit::record`]. Records are chained under the audit key;
//! [`verify_audit_log`] finds the first tampered one, or a cut tail.
//!
//! **The audit key** is 32 random bytes made at the first start of a version that keys the chain, sealed
//! under the master key (the keystore's AES-256-GCM, associated data `shedu-audit-key-v1`) together with
//! the first seq it chains, and kept in the database's `meta` table beside the other sealed secrets. In the
//! database rather than the data folder because every replica of a PostgreSQL deployment must chain with
//! the same key and has no shared folder, and because `shedu keys rotate-master` then re-wraps it in the
//! same transaction as every other sealed key. Someone who can write the database but lacks the master
//! key can neither read it nor move the switch point; deleting it shows at verification (the checkpoints
//! no longer authenticate).
//!
//! **Checkpoints** ([`Checkpoint`]) state the chain's head, authenticated with the audit key. The server
//! takes one at start, every minute when the head moved, and at shutdown ([`spawn_audit_checkpoints`],
//! [`Audit::checkpoint`]) and publishes it outside the table: one log line (target `shedu::audit`), an
//! `audit.checkpoint` event (delivered like every event, to NATS or RabbitMQ), and a line appended to the
//! checkpoint file in the data folder (mode 0600).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shedu_keys::Keystore;
use shedu_store::audit::ChainKey;
pub use shedu_store::audit::{
    AuditContext, AuditEntry, AuditFilter, AuditRecord, AuditVerdict, ChainBreak, Checkpoint,
    Outcome, hex32,
};
use shedu_store::{Audited, Store};
use zeroize::Zeroizing;

/// Every action the audit log names, with its wire name (`<noun>.<verb>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A CA was created.
    CaCreate,
    /// A CA was imported.
    CaImport,
    /// A CA's profile or validation settings were changed.
    CaUpdate,
    /// A certificate was issued from a CSR.
    CertificateIssue,
    /// A certificate was revoked.
    CertificateRevoke,
    /// An RA was created.
    RaCreate,
    /// An RA was replaced.
    RaUpdate,
    /// An RA was deleted.
    RaDelete,
    /// A device was pre-registered.
    DeviceRegister,
    /// A device was edited.
    DeviceUpdate,
    /// A device's one-time enrolment secret was set.
    DeviceEnrollmentSecret,
    /// A device was decommissioned.
    DeviceDecommission,
    /// A device enrolled or re-enrolled over EST.
    DeviceEnroll,
    /// A device group was created.
    GroupCreate,
    /// A device group was deleted.
    GroupDelete,
    /// A local user was created.
    UserCreate,
    /// A user's password was changed.
    UserPassword,
    /// A user was disabled.
    UserDisable,
    /// A disabled user was enabled again.
    UserEnable,
    /// A user was deleted.
    UserDelete,
    /// A user's role was changed.
    UserRole,
    /// An API key was created.
    ApiKeyCreate,
    /// An API key was revoked.
    ApiKeyRevoke,
    /// An alert subscription was created.
    SubscriptionCreate,
    /// An alert subscription was deleted.
    SubscriptionDelete,
    /// A dead delivery was queued again.
    DeliveryRetry,
    /// A login attempt (recorded by the gateway, success or failure).
    AuthLogin,
    /// The audit chain was keyed: the first record under the audit key (records before it are legacy).
    AuditChainKeyed,
    /// An ACME account was created.
    AcmeAccountCreate,
    /// An ACME account's contacts, status or key changed.
    AcmeAccountUpdate,
    /// An ACME external account binding key was made.
    AcmeEabCreate,
    /// An ACME external account binding key was deleted.
    AcmeEabDelete,
    /// An ACME order was created (with its authorizations, new or reused).
    AcmeOrderCreate,
    /// An ACME authorization was validated, failed its validation, or was deactivated.
    AcmeAuthzUpdate,
    /// The connector issued a one-time token (a pairing token, or the CSR token an info call exchanges).
    ConnectorTokenIssue,
    /// The connector issued a client certificate for a one-time token.
    ConnectorCertificateIssue,
    /// The connector renewed a client certificate over mTLS.
    ConnectorCertificateRenew,
    /// A secret-store value was written (a new version).
    SecretWrite,
    /// A secret-store value was patched (a new version merged into the current one).
    SecretPatch,
    /// Secret-store versions were soft-deleted.
    SecretDelete,
    /// Soft-deleted secret-store versions were restored.
    SecretUndelete,
    /// Secret-store versions were destroyed for good.
    SecretDestroy,
    /// A secret-store path's settings (max versions, check-and-set) changed.
    SecretMetadataWrite,
    /// A secret-store path was removed with every version.
    SecretMetadataDelete,
    /// A secret-store ACL policy was written.
    SecretPolicyWrite,
    /// A secret-store ACL policy was deleted.
    SecretPolicyDelete,
    /// A secret-store token was issued.
    SecretTokenCreate,
    /// A secret-store token was renewed.
    SecretTokenRenew,
    /// A secret-store token (and its descendants) was revoked.
    SecretTokenRevoke,
    /// A cloud connector was created.
    CloudConnectorCreate,
    /// A cloud connector's settings were replaced.
    CloudConnectorUpdate,
    /// A cloud connector was deleted.
    CloudConnectorDelete,
    /// A cloud connector was deleted asking that what it registered be taken back from the cloud first.
    CloudConnectorDeregister,
    /// A cloud connector was asked to catch up with every certificate of its CAs again.
    CloudConnectorBackfill,
    /// A rotation asset was added to the inventory.
    AssetCreate,
    /// A rotation asset's fields were replaced or patched.
    AssetUpdate,
    /// A rotation asset was deleted.
    AssetDelete,
    /// A rotation asset was scanned (its served certificate recorded).
    AssetScan,
    /// A rotation executor was created (its secret sealed).
    RotationExecutorCreate,
    /// A rotation executor was deleted.
    RotationExecutorDelete,
    /// A rotation route was created.
    RotationRouteCreate,
    /// A rotation route was deleted.
    RotationRouteDelete,
    /// A rotation run was triggered by hand.
    RotationTrigger,
}

impl AuditAction {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::CaCreate => "ca.create",
            AuditAction::CaImport => "ca.import",
            AuditAction::CaUpdate => "ca.update",
            AuditAction::CertificateIssue => "certificate.issue",
            AuditAction::CertificateRevoke => "certificate.revoke",
            AuditAction::RaCreate => "ra.create",
            AuditAction::RaUpdate => "ra.update",
            AuditAction::RaDelete => "ra.delete",
            AuditAction::DeviceRegister => "device.register",
            AuditAction::DeviceUpdate => "device.update",
            AuditAction::DeviceEnrollmentSecret => "device.enrollment_secret",
            AuditAction::DeviceDecommission => "device.decommission",
            AuditAction::DeviceEnroll => "device.enroll",
            AuditAction::GroupCreate => "group.create",
            AuditAction::GroupDelete => "group.delete",
            AuditAction::UserCreate => "user.create",
            AuditAction::UserPassword => "user.password",
            AuditAction::UserDisable => "user.disable",
            AuditAction::UserEnable => "user.enable",
            AuditAction::UserDelete => "user.delete",
            AuditAction::UserRole => "user.role",
            AuditAction::ApiKeyCreate => "api_key.create",
            AuditAction::ApiKeyRevoke => "api_key.revoke",
            AuditAction::SubscriptionCreate => "subscription.create",
            AuditAction::SubscriptionDelete => "subscription.delete",
            AuditAction::DeliveryRetry => "delivery.retry",
            AuditAction::AuthLogin => "auth.login",
            AuditAction::AuditChainKeyed => "audit.chain_keyed",
            AuditAction::AcmeAccountCreate => "acme.account_create",
            AuditAction::AcmeAccountUpdate => "acme.account_update",
            AuditAction::AcmeEabCreate => "acme.eab_create",
            AuditAction::AcmeEabDelete => "acme.eab_delete",
            AuditAction::AcmeOrderCreate => "acme.order_create",
            AuditAction::AcmeAuthzUpdate => "acme.authz_update",
            AuditAction::ConnectorTokenIssue => "connector.token_issue",
            AuditAction::ConnectorCertificateIssue => "connector.certificate_issue",
            AuditAction::ConnectorCertificateRenew => "connector.certificate_renew",
            AuditAction::SecretWrite => "secret.write",
            AuditAction::SecretPatch => "secret.patch",
            AuditAction::SecretDelete => "secret.delete",
            AuditAction::SecretUndelete => "secret.undelete",
            AuditAction::SecretDestroy => "secret.destroy",
            AuditAction::SecretMetadataWrite => "secret.metadata_write",
            AuditAction::SecretMetadataDelete => "secret.metadata_delete",
            AuditAction::SecretPolicyWrite => "secret_policy.write",
            AuditAction::SecretPolicyDelete => "secret_policy.delete",
            AuditAction::SecretTokenCreate => "secret_token.create",
            AuditAction::SecretTokenRenew => "secret_token.renew",
            AuditAction::SecretTokenRevoke => "secret_token.revoke",
            AuditAction::CloudConnectorCreate => "cloud_connector.create",
            AuditAction::CloudConnectorUpdate => "cloud_connector.update",
            AuditAction::CloudConnectorDelete => "cloud_connector.delete",
            AuditAction::CloudConnectorDeregister => "cloud_connector.deregister",
            AuditAction::CloudConnectorBackfill => "cloud_connector.backfill",
            AuditAction::AssetCreate => "asset.create",
            AuditAction::AssetUpdate => "asset.update",
            AuditAction::AssetDelete => "asset.delete",
            AuditAction::AssetScan => "asset.scan",
            AuditAction::RotationExecutorCreate => "rotation_executor.create",
            AuditAction::RotationExecutorDelete => "rotation_executor.delete",
            AuditAction::RotationRouteCreate => "rotation_route.create",
            AuditAction::RotationRouteDelete => "rotation_route.delete",
            AuditAction::RotationTrigger => "rotation.trigger",
        }
    }

    /// The record `actor`'s change writes with itself, for storage.
    pub fn by(self, actor: &AuditContext) -> Audited<'_> {
        Audited {
            actor,
            action: self.as_str(),
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

use crate::error::store_err;
use crate::events::{EventKind, event};
use crate::{Error, Page, Registry, Services};

/// The `meta` key of the sealed audit key, and its sealing context.
pub(crate) const AUDIT_KEY: &str = "audit_key";
pub(crate) const AUDIT_KEY_CONTEXT: &[u8] = b"shedu-audit-key-v1";
/// The name of the checkpoint file in the data folder.
pub const CHECKPOINT_FILE: &str = "audit-checkpoints";

/// The audit log service.
#[derive(Debug)]
pub struct Audit {
    reg: Arc<Registry>,
    checkpoint_file: Option<PathBuf>,
    /// The head (seq, value) of the last checkpoint published: a head that did not move is not published
    /// again. Held for the whole of [`Audit::checkpoint`], so the periodic and the shutdown checkpoint take
    /// turns.
    last_checkpoint: tokio::sync::Mutex<Option<(i64, Vec<u8>)>>,
}

impl Audit {
    pub(crate) fn new(reg: Arc<Registry>, checkpoint_file: Option<PathBuf>) -> Audit {
        Audit {
            reg,
            checkpoint_file,
            last_checkpoint: tokio::sync::Mutex::new(None),
        }
    }

    /// Takes a checkpoint of the chain's head and publishes it outside the table: a log line, an
    /// `audit.checkpoint` event, and a line appended to the checkpoint file when one is configured. `None`
    /// when the log is empty or the head did not move since the last checkpoint.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        let mut last = self.last_checkpoint.lock().await;
        let store = &self.reg.store;
        let Some(cp) = store
            .audit_checkpoint(self.reg.now())
            .await
            .map_err(store_err("audit log"))?
        else {
            return Ok(None);
        };
        if last.as_ref() == Some(&(cp.seq, cp.head.clone())) {
            return Ok(None);
        }
        tracing::info!(
            target: "shedu::audit",
            seq = cp.seq,
            head = %hex::encode(&cp.head),
            time = cp.time,
            checkpoint = %cp,
            "audit checkpoint"
        );
        let data = serde_json::json!({
            "seq": cp.seq,
            "head": hex::encode(&cp.head),
            "time": cp.time,
            "tag": hex::encode(&cp.tag),
            "line": cp.to_string(),
        });
        store
            .append_event(&event(
                EventKind::AuditCheckpoint,
                "audit_log".into(),
                cp.time,
                data,
            ))
            .await
            .map_err(store_err("events"))?;
        if let Some(path) = &self.checkpoint_file {
            append_line(path, &cp.to_string()).map_err(|e| {
                Error::Internal(format!("cannot append to {}: {e}", path.display()))
            })?;
        }
        *last = Some((cp.seq, cp.head.clone()));
        Ok(Some(cp))
    }

    /// Appends a record of a request that wrote nothing itself (refused, failed, or a login).
    pub async fn record(&self, entry: AuditEntry) -> Result<(), Error> {
        self.reg
            .store
            .append_audit(entry)
            .await
            .map_err(store_err("audit log"))
    }

    /// Records, newest first, filtered.
    pub async fn records(&self, filter: &AuditFilter) -> Result<Page<AuditRecord>, Error> {
        self.reg
            .store
            .audit_records(filter)
            .await
            .map_err(store_err("audit log"))
    }

    /// Checks the whole chain.
    pub async fn verify(&self) -> Result<AuditVerdict, Error> {
        self.reg
            .store
            .verify_audit_chain(&[])
            .await
            .map_err(store_err("audit log"))
    }

    /// Checks the whole chain against checkpoints, as [`verify_audit_log`] does.
    pub async fn verify_with(
        &self,
        checkpoints: &[Checkpoint],
        given: &[(i64, Vec<u8>)],
    ) -> Result<AuditFinding, Error> {
        verify_audit_log(&self.reg.store, checkpoints, given).await
    }
}

/// Takes a checkpoint now and then every `interval` (when the head moved); a failure is logged and retried
/// at the next tick. Take one more at shutdown with [`Audit::checkpoint`].
pub fn spawn_audit_checkpoints(
    services: &Services,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    let audit = services.audit.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = audit.checkpoint().await {
                tracing::warn!(error = %e, "audit checkpoint failed; retrying at the next tick");
            }
        }
    })
}

/// What [`verify_audit_log`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditFinding {
    /// The walk of the chain (intact, broken at a record, or cut before the newest checkpoint).
    Chain {
        /// The verdict.
        verdict: AuditVerdict,
        /// Whether the database has an audit key (without one the chain is SHA-256 only and proves
        /// nothing against a rewrite).
        keyed: bool,
        /// The newest checkpoint the chain was held to, if any.
        checkpoint: Option<i64>,
    },
    /// A checkpoint (the `index`-th given, from 1) was not made with this database's audit key: the key
    /// was replaced, or the checkpoint forged.
    ForgedCheckpoint {
        /// Its position among the checkpoints given.
        index: usize,
    },
    /// Checkpoints were given, so the chain was keyed, but the database holds no audit key: it was removed.
    KeyMissing,
}

/// Opens the audit key sealed in `store` and hands it to the store; `false` when the database has none yet
/// (no version that keys the chain has opened it). Changes nothing in the database.
pub async fn load_audit_key(store: &Store, keystore: &Keystore) -> Result<bool, Error> {
    let Some(sealed) = store.meta_get(AUDIT_KEY).await.map_err(store_err("meta"))? else {
        return Ok(false);
    };
    let plain = keystore
        .open_secret(AUDIT_KEY_CONTEXT, &sealed)
        .map_err(|_| {
            Error::invalid(
                "wrong-master-key",
                "the master key does not open this database's audit key (wrong master key, or the sealed \
                 key was altered)",
            )
        })?;
    let (secret, from) = plain
        .split_first_chunk::<32>()
        .and_then(|(s, rest)| Some((s, i64::from_be_bytes(rest.try_into().ok()?))))
        .ok_or_else(|| Error::Internal("the sealed audit key has the wrong length".into()))?;
    store
        .set_audit_key(ChainKey::new(secret, from))
        .map_err(store_err("audit key"))?;
    Ok(true)
}

/// Opens the audit key, or makes one the first time: 32 random bytes that chain every record from the
/// current head + 1 on, sealed with that switch point under the master key. The first keyed record is
/// `audit.chain_keyed`, so the log itself shows where the key took over.
pub(crate) async fn open_or_create_audit_key(reg: &Registry) -> Result<(), Error> {
    let store = &reg.store;
    if load_audit_key(store, &reg.keystore).await? {
        return Ok(());
    }
    let head = store
        .audit_head()
        .await
        .map_err(store_err("audit log"))?
        .map_or(0, |(seq, _)| seq);
    let keyed_from = head + 1;
    let mut plain = Zeroizing::new(rand::random::<[u8; 32]>().to_vec());
    plain.extend_from_slice(&keyed_from.to_be_bytes());
    let sealed = reg.keystore.seal_secret(AUDIT_KEY_CONTEXT, &plain)?;
    if !store
        .meta_insert_new(AUDIT_KEY, &sealed)
        .await
        .map_err(store_err("meta"))?
    {
        // Another replica made it first: chain under theirs.
        return match load_audit_key(store, &reg.keystore).await? {
            true => Ok(()),
            false => Err(Error::Internal("the audit key vanished".into())),
        };
    }
    store
        .set_audit_key(ChainKey::new(&plain[..32], keyed_from))
        .map_err(store_err("audit key"))?;
    let system = AuditContext::new("shedu", "", "system", "local", "");
    store
        .append_audit(system.entry(
            AuditAction::AuditChainKeyed.as_str(),
            "audit_log",
            Outcome::Success,
            Some(format!(
                "records from {keyed_from} on are chained under the audit key; records before it are legacy (SHA-256)"
            )),
            reg.now(),
        ))
        .await
        .map_err(store_err("audit log"))
}

/// Verifies the audit log in `store` (whose key [`load_audit_key`] loaded, if there is one) against
/// `checkpoints` (from the checkpoint file, every one checked for its tag) and `given` (`seq`s and head
/// values copied from the log or the bus, unauthenticated): the chain must be whole, reach the newest of
/// them, and hold at each the value it recorded.
pub async fn verify_audit_log(
    store: &Store,
    checkpoints: &[Checkpoint],
    given: &[(i64, Vec<u8>)],
) -> Result<AuditFinding, Error> {
    let keyed = store.has_audit_key();
    if !checkpoints.is_empty() && !keyed {
        return Ok(AuditFinding::KeyMissing);
    }
    for (i, cp) in checkpoints.iter().enumerate() {
        if store.audit_checkpoint_authentic(cp) != Some(true) {
            return Ok(AuditFinding::ForgedCheckpoint { index: i + 1 });
        }
    }
    let anchors: Vec<(i64, &[u8])> = checkpoints
        .iter()
        .map(|cp| (cp.seq, cp.head.as_slice()))
        .chain(given.iter().map(|(seq, head)| (*seq, head.as_slice())))
        .collect();
    let verdict = store
        .verify_audit_chain(&anchors)
        .await
        .map_err(store_err("audit log"))?;
    Ok(AuditFinding::Chain {
        verdict,
        keyed,
        checkpoint: anchors.iter().map(|(seq, _)| *seq).max(),
    })
}

/// Appends `line` to `path`, creating it readable only by its owner (0600 on Unix), and syncs it.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}
