//! The audit log: the gateway records requests that changed nothing (refused, failed, read-only actions
//! such as logins); every change is recorded by storage inside the change's own transaction, under the
//! acting principal set with [`Audit::scoped`]. Records are hash-chained; [`Audit::verify`] finds the first
//! tampered one.

use std::future::Future;
use std::sync::Arc;

pub use shedu_store::audit::{
    AuditContext, AuditEntry, AuditFilter, AuditRecord, AuditVerdict, ChainBreak, Outcome,
};

use crate::error::store_err;
use crate::{Error, Page, Registry};

/// The audit log service.
#[derive(Debug)]
pub struct Audit {
    reg: Arc<Registry>,
}

impl Audit {
    pub(crate) fn new(reg: Arc<Registry>) -> Audit {
        Audit { reg }
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
            .verify_audit_chain()
            .await
            .map_err(store_err("audit log"))
    }

    /// Runs `fut` with `ctx` as the acting principal of every change it makes.
    pub async fn scoped<F: Future>(ctx: AuditContext, fut: F) -> F::Output {
        shedu_store::audit::scope(ctx, fut).await
    }
}
