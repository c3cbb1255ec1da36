//! The KMIP key manager: managed objects (keys, certificates, secret data, opaque objects) with a
//! lifecycle state, an owner and per-object grants, served to KMIP clients.
//!
//! [`Kmip::process`] takes a decoded request message (binary TTLV from the TLS listener or JSON TTLV from
//! the HTTPS one) and the authenticated caller, runs its batch items in order and answers a response
//! message in the request's protocol version. The wire format is `shedu-kmip`'s; what the operations mean
//! is here:
//!
//! - **Ownership and grants** (Cosmian's `read_access` model): the creator owns an object; the owner grants
//!   other users operations on it ([`Kmip::grant`]). A caller who neither owns an object nor holds a grant
//!   for the operation gets exactly what a missing object gets (`Item Not Found`), and Locate never lists
//!   an object the caller has no grant on.
//! - **States**: Create and Register make an object Pre-Active (Active when an Activation Date at or before
//!   now is given); Activate makes it Active; Revoke with a compromise reason makes it Compromised, any
//!   other reason Deactivated; Destroy refuses an Active object (`Wrong Key Lifecycle State`) and keeps the
//!   metadata of what it destroys (Get Attributes shows the state, Get fails).
//! - **Keys at rest**: an object's material (its TTLV) is sealed by the software key engine
//!   ([`shedu_keys::Keystore`], AES-256-GCM under HKDF of the master key) with the object's uid as
//!   associated data; the attributes are stored in the clear and never hold key material.
//! - **Audit and events**: every operation is audited (`kmip.<operation>`; changes in their own
//!   transaction, reads and refusals on their own); creations and state changes are events.

mod cache;
mod crypto;
mod object;
mod ops;

use std::sync::Arc;

use shedu_kmip::{
    ProtocolVersion, RequestBatchItem, RequestMessage, ResponseBatchItem, ResponseMessage, Ttlv,
    operation, result_reason,
};
use shedu_store::{Audited, KmipGrantRow};

use crate::Outcome;
use crate::error::store_err;
use crate::{AuditContext, Error, Registry};

pub(crate) use cache::ObjectCache;
pub(crate) use object::{Managed, reseal};

/// The protocol versions answered, newest first (Discover Versions lists them in this order).
pub const KMIP_VERSIONS: [ProtocolVersion; 7] = [
    ProtocolVersion { major: 2, minor: 1 },
    ProtocolVersion { major: 2, minor: 0 },
    ProtocolVersion { major: 1, minor: 4 },
    ProtocolVersion { major: 1, minor: 3 },
    ProtocolVersion { major: 1, minor: 2 },
    ProtocolVersion { major: 1, minor: 1 },
    ProtocolVersion { major: 1, minor: 0 },
];

/// The operations served, with the name that grants and audit records use for each (Cosmian's
/// operation names where Cosmian has one).
pub const KMIP_OPERATIONS: &[(u32, &str)] = &[
    (operation::DISCOVER_VERSIONS, "discover_versions"),
    (operation::QUERY, "query"),
    (operation::CREATE, "create"),
    (operation::REGISTER, "register"),
    (operation::GET, "get"),
    (operation::GET_ATTRIBUTES, "get_attributes"),
    (operation::GET_ATTRIBUTE_LIST, "get_attribute_list"),
    (operation::LOCATE, "locate"),
    (operation::ACTIVATE, "activate"),
    (operation::REVOKE, "revoke"),
    (operation::DESTROY, "destroy"),
    (operation::CREATE_KEY_PAIR, "create_key_pair"),
    (operation::ENCRYPT, "encrypt"),
    (operation::DECRYPT, "decrypt"),
    (operation::SIGN, "sign"),
    (operation::SIGNATURE_VERIFY, "signature_verify"),
    (operation::MAC, "mac"),
    (operation::ADD_ATTRIBUTE, "add_attribute"),
    (operation::SET_ATTRIBUTE, "set_attribute"),
    (operation::MODIFY_ATTRIBUTE, "modify_attribute"),
    (operation::DELETE_ATTRIBUTE, "delete_attribute"),
    (operation::REKEY, "rekey"),
    (operation::REKEY_KEY_PAIR, "rekey_key_pair"),
    (operation::CERTIFY, "certify"),
    (operation::DERIVE_KEY, "derive_key"),
    (operation::IMPORT, "import"),
    (operation::EXPORT, "export"),
];

/// The operations an owner may grant (`POST /api/v1/kms/access/grant`).
pub const KMIP_GRANTABLE: &[&str] = &[
    "get",
    "get_attributes",
    "get_attribute_list",
    "locate",
    "activate",
    "revoke",
    "destroy",
    "encrypt",
    "decrypt",
    "sign",
    "signature_verify",
    "mac",
];

/// A KMIP result: the reason (see [`shedu_kmip::result_reason`]) and a message for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The Result Reason.
    pub reason: u32,
    /// The Result Message.
    pub message: String,
}

impl Failure {
    pub(crate) fn new(reason: u32, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(result_reason::INVALID_FIELD, message)
    }

    pub(crate) fn general(message: impl Into<String>) -> Failure {
        Failure::new(result_reason::GENERAL_FAILURE, message)
    }

    pub(crate) fn not_found(uid: &str) -> Failure {
        Failure::new(result_reason::ITEM_NOT_FOUND, format!("no object {uid}"))
    }

    pub(crate) fn state(message: impl Into<String>) -> Failure {
        Failure::new(result_reason::WRONG_KEY_LIFECYCLE_STATE, message)
    }
}

impl From<shedu_kmip::Error> for Failure {
    fn from(e: shedu_kmip::Error) -> Failure {
        match e {
            shedu_kmip::Error::Missing { .. } => {
                Failure::new(result_reason::MISSING_DATA, e.to_string())
            }
            _ => Failure::invalid(e.to_string()),
        }
    }
}

/// A grant as the access API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipGrant {
    /// The object.
    pub uid: String,
    /// The grantee.
    pub user_id: String,
    /// The granted operations.
    pub operations: Vec<String>,
}

/// An object as the access API lists it (`owned`, `obtained`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmipObjectSummary {
    /// The object.
    pub uid: String,
    /// Its owner.
    pub owner: String,
    /// The State's name (`Active`, …).
    pub state: String,
    /// The Object Type's name (`SymmetricKey`, …).
    pub object_type: String,
    /// The caller's granted operations (empty for the owner's own objects).
    pub operations: Vec<String>,
}

/// How many audit records of reads may wait for their commit at once (see [`Kmip::audit_read`]).
const READS_IN_FLIGHT: usize = 1024;

/// The KMIP service.
#[derive(Debug)]
pub struct Kmip {
    reg: Arc<Registry>,
    /// Slots for the audit records of reads that are queued and not yet committed.
    reads_in_flight: Arc<tokio::sync::Semaphore>,
}

impl Kmip {
    pub(crate) fn new(reg: Arc<Registry>) -> Kmip {
        Kmip {
            reg,
            reads_in_flight: Arc::new(tokio::sync::Semaphore::new(READS_IN_FLIGHT)),
        }
    }

    /// Runs a request message for `actor` (whose `principal` is the KMIP user) and answers it. Never
    /// fails: a message that is not a valid request is answered `Invalid Message`.
    pub async fn process(&self, actor: &AuditContext, message: &Ttlv) -> ResponseMessage {
        let request = match RequestMessage::from_ttlv(message) {
            Ok(r) => r,
            Err(e) => {
                self.audit(
                    actor,
                    "kmip.request",
                    "-",
                    Outcome::Failure,
                    Some(e.to_string()),
                )
                .await;
                return self.invalid_message(RequestMessage::version_hint(message), &e.to_string());
            }
        };
        self.process_request(actor, &request).await
    }

    /// Runs one operation for `actor` as a KMIP 2.1 request of one batch item (a bare operation of
    /// `POST /kmip/2_1`): its response payload, or why it failed.
    pub async fn process_operation(
        &self,
        actor: &AuditContext,
        operation: u32,
        payload: Ttlv,
    ) -> Result<Ttlv, Failure> {
        let request = RequestMessage {
            protocol_version: KMIP_VERSIONS[0],
            maximum_response_size: None,
            batch_error_continuation: None,
            batch_items: vec![RequestBatchItem {
                operation,
                unique_batch_item_id: None,
                payload,
            }],
        };
        let mut response = self.process_request(actor, &request).await;
        match response.batch_items.pop() {
            Some(ResponseBatchItem {
                payload: Some(payload),
                result_status: shedu_kmip::result_status::SUCCESS,
                ..
            }) => Ok(payload),
            Some(item) => Err(Failure::new(
                item.result_reason.unwrap_or(result_reason::GENERAL_FAILURE),
                item.result_message.unwrap_or_default(),
            )),
            None => Err(Failure::general("no answer")),
        }
    }

    /// Runs a request message that was read (see [`Kmip::process`]).
    pub async fn process_request(
        &self,
        actor: &AuditContext,
        request: &RequestMessage,
    ) -> ResponseMessage {
        let version = request.protocol_version;
        let mut batch = ops::Batch::default();
        let mut items = Vec::with_capacity(request.batch_items.len());
        let continue_on_error = request.batch_error_continuation
            == Some(shedu_kmip::batch_error_continuation_option::CONTINUE);
        for item in &request.batch_items {
            let id = item.unique_batch_item_id.clone();
            let result = if KMIP_VERSIONS.contains(&version) {
                self.run(actor, version, item.operation, &item.payload, &mut batch)
                    .await
            } else {
                Err(Failure::new(
                    result_reason::INVALID_MESSAGE,
                    format!(
                        "protocol version {}.{} is not supported",
                        version.major, version.minor
                    ),
                ))
            };
            match result {
                Ok(payload) => items.push(ResponseBatchItem::success(item.operation, id, payload)),
                Err(f) => {
                    items.push(ResponseBatchItem::failure(
                        Some(item.operation),
                        id,
                        f.reason,
                        f.message,
                    ));
                    if !continue_on_error {
                        break;
                    }
                }
            }
        }
        ResponseMessage {
            protocol_version: version,
            time_stamp: self.reg.now(),
            batch_items: items,
        }
    }

    /// The answer to a message that could not be read: `Invalid Message` in the request's version when
    /// its header could be read, else KMIP 1.0.
    pub fn invalid_message(
        &self,
        version: Option<ProtocolVersion>,
        detail: &str,
    ) -> ResponseMessage {
        ResponseMessage {
            protocol_version: version.unwrap_or(ProtocolVersion::V1_0),
            time_stamp: self.reg.now(),
            batch_items: vec![ResponseBatchItem::failure(
                None,
                None,
                result_reason::INVALID_MESSAGE,
                format!("invalid message: {detail}"),
            )],
        }
    }

    async fn run(
        &self,
        actor: &AuditContext,
        version: ProtocolVersion,
        op: u32,
        payload: &Ttlv,
        batch: &mut ops::Batch,
    ) -> Result<Ttlv, Failure> {
        let Some(name) = operation_name(op) else {
            let f = Failure::new(
                result_reason::OPERATION_NOT_SUPPORTED,
                "operation not supported",
            );
            self.audit(
                actor,
                "kmip.unsupported",
                "-",
                Outcome::Failure,
                Some(op.to_string()),
            )
            .await;
            return Err(f);
        };
        let ctx = ops::Ctx {
            kmip: self,
            actor,
            version,
            op_name: name,
            cached: !ops::is_change(op),
        };
        let result = ctx.dispatch(op, payload, batch).await;
        match &result {
            // Changes audit themselves in their transaction; reads are recorded here.
            Ok(out) if !ops::is_change(op) => {
                let target = out.target.as_deref().unwrap_or("-");
                self.audit_read(actor, &format!("kmip.{name}"), target)
                    .await;
            }
            Ok(_) => {}
            Err(f) => {
                let outcome = if f.reason == result_reason::ITEM_NOT_FOUND {
                    Outcome::Denied
                } else {
                    Outcome::Failure
                };
                let target = ops::uid_of(payload).unwrap_or_else(|| "-".into());
                self.audit(
                    actor,
                    &format!("kmip.{name}"),
                    &target,
                    outcome,
                    Some(f.message.clone()),
                )
                .await;
            }
        }
        result.map(|out| out.payload)
    }

    /// Records a refusal or a failure before the answer (changes record themselves with the change,
    /// reads through [`Kmip::audit_read`]). An audit write that fails is logged: the KMIP answer does
    /// not depend on it.
    async fn audit(
        &self,
        actor: &AuditContext,
        action: &str,
        target: &str,
        outcome: Outcome,
        detail: Option<String>,
    ) {
        let entry = self.audit_entry(actor, action, target, outcome, detail);
        if let Err(e) = self.reg.store.append_audit(entry).await {
            tracing::error!(error = %e, "cannot record a KMIP operation in the audit log");
        }
    }

    fn audit_entry(
        &self,
        actor: &AuditContext,
        action: &str,
        target: &str,
        outcome: Outcome,
        detail: Option<String>,
    ) -> crate::AuditEntry {
        actor.entry(
            action,
            &format!("kmip/{target}"),
            outcome,
            detail,
            self.reg.now(),
        )
    }

    /// Records a read that succeeded without waiting for the record's commit: the record is queued
    /// for the store's next group commit (durable within that commit's fsync, a few milliseconds after
    /// the answer; a crash in between loses it, where a change's record is durable with the change).
    /// At most [`READS_IN_FLIGHT`] records wait at once; a read beyond that waits for a slot, so reads
    /// never outrun the audit log.
    async fn audit_read(&self, actor: &AuditContext, action: &str, target: &str) {
        let entry = self.audit_entry(actor, action, target, Outcome::Success, None);
        let Ok(slot) = self.reads_in_flight.clone().acquire_owned().await else {
            return;
        };
        let store = self.reg.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.append_audit(entry).await {
                tracing::error!(error = %e, "cannot record a KMIP read in the audit log");
            }
            drop(slot);
        });
    }

    /// Grants `user` the `operations` on `uid`. Only the owner may; anyone else gets `NotFound`, as for
    /// a missing object.
    pub async fn grant(
        &self,
        actor: &AuditContext,
        uid: &str,
        user: &str,
        operations: &[String],
        grant: bool,
    ) -> Result<(), Error> {
        let object = self.owned_object(actor, uid).await?;
        if user.trim().is_empty() || user == object.owner {
            return Err(Error::invalid(
                "kmip-grant-user",
                "the grantee must be another user than the owner",
            ));
        }
        if operations.is_empty() {
            return Err(Error::invalid(
                "kmip-grant-operations",
                "no operation given",
            ));
        }
        let mut rows = Vec::new();
        for op in operations {
            let op = op.to_ascii_lowercase();
            if !KMIP_GRANTABLE.contains(&op.as_str()) {
                return Err(Error::invalid(
                    "kmip-grant-operations",
                    format!("{op:?} is not an operation that can be granted"),
                ));
            }
            rows.push(KmipGrantRow {
                uid: uid.to_owned(),
                user_id: user.to_owned(),
                operation: op,
            });
        }
        let action = if grant {
            "kmip.access_grant"
        } else {
            "kmip.access_revoke"
        };
        let written = self
            .reg
            .store
            .set_kmip_grants(&rows, grant, self.reg.now(), &Audited { actor, action })
            .await
            .map_err(store_err("KMIP grant"));
        // No replica answers from the grants it cached before (`cache.rs`).
        self.reg.on_kmip_changed(&[uid]).await;
        written
    }

    /// The grants on an object the caller owns.
    pub async fn grants(&self, actor: &AuditContext, uid: &str) -> Result<Vec<KmipGrant>, Error> {
        self.owned_object(actor, uid).await?;
        let rows = self
            .reg
            .store
            .kmip_grants(uid, None)
            .await
            .map_err(store_err("KMIP grants"))?;
        let mut out: Vec<KmipGrant> = Vec::new();
        for r in rows {
            match out.last_mut() {
                Some(g) if g.user_id == r.user_id => g.operations.push(r.operation),
                _ => out.push(KmipGrant {
                    uid: r.uid,
                    user_id: r.user_id,
                    operations: vec![r.operation],
                }),
            }
        }
        Ok(out)
    }

    /// The objects the caller owns.
    pub async fn owned(&self, actor: &AuditContext) -> Result<Vec<KmipObjectSummary>, Error> {
        let rows = self
            .reg
            .store
            .kmip_objects_owned(&actor.principal)
            .await
            .map_err(store_err("KMIP objects"))?;
        Ok(rows.into_iter().map(|r| summary(r, vec![])).collect())
    }

    /// The objects others granted the caller operations on, with those operations.
    pub async fn obtained(&self, actor: &AuditContext) -> Result<Vec<KmipObjectSummary>, Error> {
        let grants = self
            .reg
            .store
            .kmip_grants_of(&actor.principal)
            .await
            .map_err(store_err("KMIP grants"))?;
        let mut out: Vec<KmipObjectSummary> = Vec::new();
        for g in grants {
            if let Some(last) = out.last_mut().filter(|s| s.uid == g.uid) {
                last.operations.push(g.operation);
                continue;
            }
            if let Some(row) = self
                .reg
                .store
                .kmip_object(&g.uid)
                .await
                .map_err(store_err("KMIP object"))?
            {
                out.push(summary(row, vec![g.operation]));
            }
        }
        Ok(out)
    }

    async fn owned_object(&self, actor: &AuditContext, uid: &str) -> Result<Managed, Error> {
        let row = self
            .reg
            .store
            .kmip_object(uid)
            .await
            .map_err(store_err("KMIP object"))?
            .filter(|r| r.owner == actor.principal)
            .ok_or_else(|| Error::NotFound(format!("KMIP object {uid}")))?;
        Managed::from_row(row).map_err(|f| Error::Internal(f.message))
    }
}

/// The name of a served operation.
pub fn operation_name(op: u32) -> Option<&'static str> {
    KMIP_OPERATIONS
        .iter()
        .find(|(o, _)| *o == op)
        .map(|(_, n)| *n)
}

fn summary(r: shedu_store::KmipObjectRow, operations: Vec<String>) -> KmipObjectSummary {
    let name = |t, v: i64| {
        u32::try_from(v)
            .ok()
            .and_then(|v| shedu_kmip::enum_name(t, v))
            .unwrap_or("Unknown")
            .to_owned()
    };
    KmipObjectSummary {
        state: name(shedu_kmip::tag::STATE, r.state),
        object_type: name(shedu_kmip::tag::OBJECT_TYPE, r.object_type),
        uid: r.uid,
        owner: r.owner,
        operations,
    }
}
