//! Agentless rotation: the asset inventory, executors (their secret sealed by core), ordered routes and
//! runs. Storage keeps what core hands it; the words (states, event types, audit actions) are core's.
//! Two invariants live here because only SQL can hold them across replicas: at most one queued or running
//! run per asset (a partial unique index), and a queued run is claimed by exactly one worker (a guarded
//! `UPDATE`).

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::Audited;
use crate::error::found;
use crate::{Error, NewEvent, Page, Store, events};

/// One asset as stored. `sans` is a JSON array and `labels` a JSON object, both rendered by core.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetRow {
    /// Insertion order; the pagination cursor. Ignored on insert.
    pub seq: i64,
    /// The asset's unique name.
    pub system_name: String,
    /// The certificate's common name (and the SNI validation connects with).
    pub common_name: String,
    /// JSON array of the subject alternative names.
    pub sans: String,
    /// The address to reach (IP or host name).
    pub ip_address: Option<String>,
    /// TLS port.
    pub port: i64,
    /// Ottr's data center.
    pub data_center: Option<String>,
    /// Ottr's host platform (`linux`, `panos`, …).
    pub host_platform: Option<String>,
    /// Operating system version.
    pub os_version: Option<String>,
    /// Device model.
    pub device_model: Option<String>,
    /// Where the record came from (`API`, `import`, …).
    pub origin: Option<String>,
    /// Whether the host's current certificate is verified when scanning.
    pub certificate_validation: bool,
    /// The CA to issue from (the route's when `None`).
    pub ca_id: Option<String>,
    /// JSON object of labels.
    pub labels: String,
    /// The served certificate's notAfter (computed).
    pub certificate_expiration: Option<i64>,
    /// The served certificate's SHA-256, hex (computed).
    pub current_fingerprint: Option<String>,
    /// The serial of the certificate rotation last installed (computed).
    pub current_serial: Option<String>,
    /// When the scheduler takes it next; `None` while a run is active (computed).
    pub next_rotation_at: Option<i64>,
    /// The last run's id (computed).
    pub last_run: Option<String>,
    /// Why the scheduler passed over it (computed).
    pub skip_reason: Option<String>,
    /// Failures in a row (computed; drives the back-off).
    pub failures: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// What a scan or a finished run observed of an asset: the computed fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssetObserved {
    /// notAfter of the served certificate.
    pub certificate_expiration: Option<i64>,
    /// SHA-256 of the served certificate.
    pub current_fingerprint: Option<String>,
    /// Serial of the certificate rotation installed.
    pub current_serial: Option<String>,
    /// When the scheduler takes it next.
    pub next_rotation_at: Option<i64>,
    /// Why it was passed over.
    pub skip_reason: Option<String>,
    /// Failures in a row.
    pub failures: i64,
}

/// Filters for listing assets; each set field must match (text fields exactly).
#[derive(Clone, Debug, Default)]
pub struct AssetFilter {
    /// `(column, value)` equalities on the text columns named by [`ASSET_TEXT_COLUMNS`].
    pub equals: Vec<(&'static str, String)>,
    /// The port.
    pub port: Option<i64>,
    /// The `certificate_validation` flag.
    pub certificate_validation: Option<bool>,
    /// One of the SANs equals this.
    pub san: Option<String>,
    /// `(key, value)`: the label is set to this value.
    pub label: Option<(String, String)>,
    /// The certificate expires before this time (or its expiry is unknown when `include_unknown`).
    pub expires_before: Option<i64>,
    /// Rows older than this cursor (a `seq`); pages go in insertion order, oldest first.
    pub after_seq: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// The text columns an [`AssetFilter`] may compare.
pub const ASSET_TEXT_COLUMNS: &[&str] = &[
    "system_name",
    "common_name",
    "ip_address",
    "data_center",
    "host_platform",
    "os_version",
    "device_model",
    "origin",
    "ca_id",
    "current_fingerprint",
    "skip_reason",
];

/// An executor as stored; `sealed` is its secret, sealed by core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutorRow {
    /// Id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `command` or `ssh`.
    pub kind: String,
    /// Core's JSON settings, without secrets.
    pub config: String,
    /// The sealed secret, if any.
    pub sealed: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A route as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRow {
    /// Id.
    pub id: String,
    /// Order: the lowest position that matches wins.
    pub position: i64,
    /// The executor it sends matching assets to.
    pub executor_id: String,
    /// Core's JSON settings (match, CA, validity, key mode).
    pub settings: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A run as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRow {
    /// Queue order.
    pub seq: i64,
    /// Id.
    pub id: String,
    /// The asset.
    pub system_name: String,
    /// `queued`, `running`, `succeeded`, `failed` or `rolled_back`.
    pub state: String,
    /// `manual` or `scheduled`.
    pub trigger: String,
    /// JSON array of step log entries.
    pub steps: String,
    /// The new certificate's serial, once issued.
    pub serial: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub started_at: Option<i64>,
    /// Unix seconds.
    pub finished_at: Option<i64>,
    /// The CA of the new certificate, once issued.
    pub ca_id: Option<String>,
}

/// A unique violation on the active-run index: a run is queued or running for the asset.
pub const RUN_ACTIVE: &str = "rotation_runs_active";

const ASSET_COLUMNS: &str = "seq, system_name, common_name, subject_alternative_name, ip_address, port, \
    data_center, host_platform, os_version, device_model, origin, certificate_validation, ca_id, labels, \
    certificate_expiration, current_fingerprint, current_serial, next_rotation_at, last_run, skip_reason, \
    failures, created_at, updated_at";
const EXECUTOR_COLUMNS: &str = "id, name, kind, config, sealed, created_at, updated_at";
const ROUTE_COLUMNS: &str = "id, position, executor_id, settings, created_at";
const RUN_COLUMNS: &str = "seq, id, system_name, state, trigger_kind, steps, serial, error, created_at, \
    started_at, finished_at, ca_id";

impl Store {
    // ----- assets -----

    /// Inserts an asset with its audit record. `Conflict` when the name is taken.
    pub async fn insert_asset(&self, a: &AssetRow, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO rotation_assets (system_name, common_name, subject_alternative_name, ip_address, port, \
             data_center, host_platform, os_version, device_model, origin, certificate_validation, ca_id, labels, \
             certificate_expiration, current_fingerprint, current_serial, next_rotation_at, last_run, skip_reason, \
             failures, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        )
        .bind(&a.system_name)
        .bind(&a.common_name)
        .bind(&a.sans)
        .bind(&a.ip_address)
        .bind(a.port)
        .bind(&a.data_center)
        .bind(&a.host_platform)
        .bind(&a.os_version)
        .bind(&a.device_model)
        .bind(&a.origin)
        .bind(i64::from(a.certificate_validation))
        .bind(&a.ca_id)
        .bind(&a.labels)
        .bind(a.certificate_expiration)
        .bind(&a.current_fingerprint)
        .bind(&a.current_serial)
        .bind(a.next_rotation_at)
        .bind(&a.last_run)
        .bind(&a.skip_reason)
        .bind(a.failures)
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &asset_target(&a.system_name),
            a.created_at,
        )
        .await
    }

    /// Replaces an asset's editable fields (the computed ones stay). `NotFound` when missing.
    pub async fn update_asset(&self, a: &AssetRow, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let changed = sqlx::query(
            "UPDATE rotation_assets SET common_name = $1, subject_alternative_name = $2, ip_address = $3, \
             port = $4, data_center = $5, host_platform = $6, os_version = $7, device_model = $8, origin = $9, \
             certificate_validation = $10, ca_id = $11, labels = $12, updated_at = $13 WHERE system_name = $14",
        )
        .bind(&a.common_name)
        .bind(&a.sans)
        .bind(&a.ip_address)
        .bind(a.port)
        .bind(&a.data_center)
        .bind(&a.host_platform)
        .bind(&a.os_version)
        .bind(&a.device_model)
        .bind(&a.origin)
        .bind(i64::from(a.certificate_validation))
        .bind(&a.ca_id)
        .bind(&a.labels)
        .bind(a.updated_at)
        .bind(&a.system_name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        found(changed)?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &asset_target(&a.system_name),
            a.updated_at,
        )
        .await
    }

    /// Deletes an asset (its runs stay as history). `NotFound` when missing; `Conflict` on
    /// [`RUN_ACTIVE`] while a run is queued or running for it.
    pub async fn delete_asset(
        &self,
        name: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let active: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM rotation_runs WHERE system_name = $1 AND state IN ('queued', 'running')",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_some() {
            return Err(conflict(RUN_ACTIVE));
        }
        let gone = sqlx::query("DELETE FROM rotation_assets WHERE system_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        found(gone)?;
        crate::audit::commit(tx, &self.chain, audit, &asset_target(name), now).await
    }

    /// One asset.
    pub async fn asset(&self, name: &str) -> Result<Option<AssetRow>, Error> {
        self.read_optional(
            format!("SELECT {ASSET_COLUMNS} FROM rotation_assets WHERE system_name = $1"),
            name,
            asset_from_row,
        )
        .await
    }

    /// Lists assets in insertion order; the cursor is the insertion sequence, stable under inserts.
    pub async fn list_assets(&self, f: &AssetFilter) -> Result<Page<AssetRow>, Error> {
        let mut conds = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut ints: Vec<i64> = Vec::new();
        for (column, value) in &f.equals {
            if !ASSET_TEXT_COLUMNS.contains(column) {
                return Err(Error::Corrupt(format!("no asset column {column}")));
            }
            texts.push(value.clone());
            conds.push(format!("{column} = $T{}", texts.len()));
        }
        if let Some(san) = &f.san {
            // The JSON array holds each name as a quoted string; names cannot contain quotes.
            texts.push(format!("%\"{}\"%", san.replace(['%', '_'], "")));
            conds.push(format!("subject_alternative_name LIKE $T{}", texts.len()));
        }
        if let Some((k, v)) = &f.label {
            texts.push(format!("%\"{k}\":\"{v}\"%"));
            conds.push(format!("labels LIKE $T{}", texts.len()));
        }
        if let Some(port) = f.port {
            ints.push(port);
            conds.push(format!("port = $I{}", ints.len()));
        }
        if let Some(v) = f.certificate_validation {
            ints.push(i64::from(v));
            conds.push(format!("certificate_validation = $I{}", ints.len()));
        }
        if let Some(t) = f.expires_before {
            ints.push(t);
            conds.push(format!("certificate_expiration < $I{}", ints.len()));
        }
        if let Some(seq) = f.after_seq {
            ints.push(seq);
            conds.push(format!("seq > $I{}", ints.len()));
        }
        let limit = f.limit.clamp(1, 1000);
        ints.push(limit + 1);
        let where_clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let mut sql = format!(
            "SELECT {ASSET_COLUMNS} FROM rotation_assets {where_clause} ORDER BY seq LIMIT $I{}",
            ints.len()
        );
        // Texts first ($1..), then integers: placeholders renumbered in one pass.
        for i in (1..=ints.len()).rev() {
            sql = sql.replace(&format!("$I{i}"), &format!("${}", texts.len() + i));
        }
        for i in (1..=texts.len()).rev() {
            sql = sql.replace(&format!("$T{i}"), &format!("${i}"));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in texts {
            q = q.bind(t);
        }
        for i in ints {
            q = q.bind(i);
        }
        let rows = q.fetch_all(&self.read).await?;
        page(&rows, limit, asset_from_row, |a| a.seq)
    }

    /// Writes what a scan observed, with its audit record (and `event`, if any).
    pub async fn set_asset_observed(
        &self,
        name: &str,
        o: &AssetObserved,
        now: i64,
        event: Option<&NewEvent>,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        observe(&mut tx, name, o, None, now).await?;
        if let Some(e) = event {
            events::append(&mut tx, e).await?;
        }
        crate::audit::commit(tx, &self.chain, audit, &asset_target(name), now).await
    }

    /// The assets due at `now` (`next_rotation_at <= now`), earliest first: one range scan of the partial
    /// index.
    pub async fn due_assets(&self, now: i64, limit: i64) -> Result<Vec<AssetRow>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ASSET_COLUMNS} FROM rotation_assets WHERE next_rotation_at IS NOT NULL \
             AND next_rotation_at <= $1 ORDER BY next_rotation_at LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(asset_from_row).collect()
    }

    /// Passes over a due asset: sets its `skip_reason` and its next attempt, with `event`, in one
    /// transaction.
    pub async fn skip_asset(
        &self,
        name: &str,
        reason: &str,
        next_at: i64,
        now: i64,
        event: &NewEvent,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "UPDATE rotation_assets SET skip_reason = $1, next_rotation_at = $2, updated_at = $3 \
             WHERE system_name = $4",
        )
        .bind(reason)
        .bind(next_at)
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    // ----- runs -----

    /// Queues a run for its asset, and takes the asset off the due index, in one transaction.
    /// `Conflict` on [`RUN_ACTIVE`] when a run is already queued or running for it; `NotFound` when the
    /// asset does not exist. `audit` is the manual trigger's record (none for the scheduler).
    pub async fn queue_run(&self, r: &RunRow, audit: Option<&Audited<'_>>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let active: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM rotation_runs WHERE system_name = $1 AND state IN ('queued', 'running')",
        )
        .bind(&r.system_name)
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_some() {
            return Err(conflict(RUN_ACTIVE));
        }
        let changed = sqlx::query(
            "UPDATE rotation_assets SET next_rotation_at = NULL, last_run = $1, skip_reason = NULL \
             WHERE system_name = $2",
        )
        .bind(&r.id)
        .bind(&r.system_name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        found(changed)?;
        sqlx::query(
            "INSERT INTO rotation_runs (id, system_name, state, trigger_kind, steps, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.id)
        .bind(&r.system_name)
        .bind(&r.state)
        .bind(&r.trigger)
        .bind(&r.steps)
        .bind(r.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match Error::from(e) {
            // Another replica queued one between the check and the insert.
            Error::Conflict { .. } => conflict(RUN_ACTIVE),
            other => other,
        })?;
        match audit {
            Some(audit) => {
                crate::audit::commit(
                    tx,
                    &self.chain,
                    audit,
                    &asset_target(&r.system_name),
                    r.created_at,
                )
                .await
            }
            None => Ok(tx.commit().await?),
        }
    }

    /// Claims the oldest queued run for this worker (`running`, started at `now`); `None` when the queue
    /// is empty. Exactly one caller, on any replica, gets each run.
    pub async fn claim_run(&self, now: i64) -> Result<Option<RunRow>, Error> {
        loop {
            let next: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM rotation_runs WHERE state = 'queued' ORDER BY seq LIMIT 1",
            )
            .fetch_optional(&self.write)
            .await?;
            let Some((id,)) = next else {
                return Ok(None);
            };
            let claimed = sqlx::query(
                "UPDATE rotation_runs SET state = 'running', started_at = $1, heartbeat_at = $1 \
                 WHERE id = $2 AND state = 'queued'",
            )
            .bind(now)
            .bind(&id)
            .execute(&self.write)
            .await?
            .rows_affected();
            if claimed == 1 {
                return self.run(&id).await?.map(Some).ok_or(Error::NotFound);
            }
        }
    }

    /// Records a running run's progress (its step log and the new serial, so that a replica that finds the
    /// run abandoned knows which certificate to revoke). `false` when it is no longer running.
    pub async fn run_progress(
        &self,
        id: &str,
        steps: &str,
        serial: Option<&str>,
        ca_id: Option<&str>,
    ) -> Result<bool, Error> {
        Ok(sqlx::query(
            "UPDATE rotation_runs SET steps = $1, serial = $2, ca_id = $3 WHERE id = $4 AND state = 'running'",
        )
        .bind(steps)
        .bind(serial.map(str::to_owned))
        .bind(ca_id.map(str::to_owned))
        .bind(id)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }

    /// Replaces an ended run's step log (what cleaning up after it did).
    pub async fn amend_run_steps(&self, id: &str, steps: &str) -> Result<(), Error> {
        sqlx::query("UPDATE rotation_runs SET steps = $1 WHERE id = $2 AND state <> 'running'")
            .bind(steps)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Finishes a running run: its final state, log and error, what the asset now serves, and `event`, in
    /// one transaction. `false`, changing nothing, when the run is no longer running (another replica
    /// abandoned it meanwhile).
    pub async fn finish_run(
        &self,
        r: &RunRow,
        observed: &AssetObserved,
        event: &NewEvent,
    ) -> Result<bool, Error> {
        self.end_run(r, observed, event, None).await
    }

    /// Ends a stale run (see [`Store::stale_runs`]) like [`Store::finish_run`], only if it is still running
    /// and still stale: of several replicas that try, exactly one gets `true`.
    pub async fn abandon_run(
        &self,
        r: &RunRow,
        observed: &AssetObserved,
        event: &NewEvent,
        heartbeat_before: i64,
        started_before: i64,
    ) -> Result<bool, Error> {
        self.end_run(r, observed, event, Some((heartbeat_before, started_before)))
            .await
    }

    async fn end_run(
        &self,
        r: &RunRow,
        observed: &AssetObserved,
        event: &NewEvent,
        stale: Option<(i64, i64)>,
    ) -> Result<bool, Error> {
        let now = r.finished_at.unwrap_or(r.created_at);
        let mut tx = self.write.begin().await?;
        let sql = match stale {
            None => {
                "UPDATE rotation_runs SET state = $1, steps = $2, serial = $3, error = $4, finished_at = $5 \
                 WHERE id = $6 AND state = 'running'"
            }
            Some(_) => {
                "UPDATE rotation_runs SET state = $1, steps = $2, serial = $3, error = $4, finished_at = $5 \
                 WHERE id = $6 AND state = 'running' AND (heartbeat_at < $7 OR started_at < $8)"
            }
        };
        let mut q = sqlx::query(sql)
            .bind(&r.state)
            .bind(&r.steps)
            .bind(&r.serial)
            .bind(&r.error)
            .bind(now)
            .bind(&r.id);
        if let Some((heartbeat_before, started_before)) = stale {
            q = q.bind(heartbeat_before).bind(started_before);
        }
        if q.execute(&mut *tx).await?.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        observe(&mut tx, &r.system_name, observed, Some(&r.id), now).await?;
        events::append(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stamps a running run's heartbeat. `false` when it is no longer running (finished, or abandoned by
    /// another replica).
    pub async fn heartbeat_run(&self, id: &str, now: i64) -> Result<bool, Error> {
        Ok(sqlx::query(
            "UPDATE rotation_runs SET heartbeat_at = $1 WHERE id = $2 AND state = 'running'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }

    /// Running runs whose owner stopped heartbeating before `heartbeat_before`, or that started before
    /// `started_before` (their budget is long gone), oldest first.
    pub async fn stale_runs(
        &self,
        heartbeat_before: i64,
        started_before: i64,
    ) -> Result<Vec<RunRow>, Error> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM rotation_runs WHERE state = 'running' \
             AND (heartbeat_at < $1 OR started_at < $2) ORDER BY seq LIMIT 1000"
        )))
        .bind(heartbeat_before)
        .bind(started_before)
        .fetch_all(&self.write)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// One run.
    pub async fn run(&self, id: &str) -> Result<Option<RunRow>, Error> {
        self.read_optional(
            format!("SELECT {RUN_COLUMNS} FROM rotation_runs WHERE id = $1"),
            id,
            run_from_row,
        )
        .await
    }

    /// Runs, newest first, of one asset and/or in one state.
    pub async fn list_runs(
        &self,
        system_name: Option<&str>,
        state: Option<&str>,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Page<RunRow>, Error> {
        let limit = limit.clamp(1, 1000);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM rotation_runs WHERE ($1 IS NULL OR system_name = $1) \
             AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4"
        )))
        .bind(system_name.map(str::to_owned))
        .bind(state.map(str::to_owned))
        .bind(before_seq)
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        page(&rows, limit, run_from_row, |r| r.seq)
    }

    // ----- executors -----

    /// Inserts an executor with its audit record. `Conflict` when the name is taken.
    pub async fn insert_executor(&self, e: &ExecutorRow, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO rotation_executors (id, name, kind, config, sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&e.id)
        .bind(&e.name)
        .bind(&e.kind)
        .bind(&e.config)
        .bind(e.sealed.clone())
        .bind(e.created_at)
        .bind(e.updated_at)
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("rotation-executors/{}", e.id),
            e.created_at,
        )
        .await
    }

    /// Deletes an executor. `NotFound` when missing; `Conflict` while a route names it.
    pub async fn delete_executor(
        &self,
        id: &str,
        now: i64,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let used: Option<(String,)> =
            sqlx::query_as("SELECT id FROM rotation_routes WHERE executor_id = $1 LIMIT 1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if used.is_some() {
            return Err(conflict("rotation_routes_executor"));
        }
        let gone = sqlx::query("DELETE FROM rotation_executors WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        found(gone)?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("rotation-executors/{id}"),
            now,
        )
        .await
    }

    /// One executor, by id or name.
    pub async fn executor(&self, id_or_name: &str) -> Result<Option<ExecutorRow>, Error> {
        self.read_optional(
            format!("SELECT {EXECUTOR_COLUMNS} FROM rotation_executors WHERE id = $1 OR name = $1"),
            id_or_name,
            executor_from_row,
        )
        .await
    }

    /// Every executor, by name.
    pub async fn executors(&self) -> Result<Vec<ExecutorRow>, Error> {
        self.read_all(
            format!("SELECT {EXECUTOR_COLUMNS} FROM rotation_executors ORDER BY name"),
            executor_from_row,
        )
        .await
    }

    /// The sealed secret of every executor that has one (`id` is the executor id), for master-key
    /// rotation.
    pub async fn sealed_executor_secrets(&self) -> Result<Vec<crate::SealedSecretRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, sealed FROM rotation_executors WHERE sealed IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::SealedSecretRow {
                    id: r.try_get(0)?,
                    sealed: r.try_get(1)?,
                })
            })
            .collect()
    }

    // ----- routes -----

    /// Inserts a route with its audit record.
    pub async fn insert_route(&self, r: &RouteRow, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO rotation_routes (id, position, executor_id, settings, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.id)
        .bind(r.position)
        .bind(&r.executor_id)
        .bind(&r.settings)
        .bind(r.created_at)
        .execute(&mut *tx)
        .await?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("rotation-routes/{}", r.id),
            r.created_at,
        )
        .await
    }

    /// Deletes a route. `NotFound` when missing.
    pub async fn delete_route(&self, id: &str, now: i64, audit: &Audited<'_>) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let gone = sqlx::query("DELETE FROM rotation_routes WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        found(gone)?;
        crate::audit::commit(
            tx,
            &self.chain,
            audit,
            &format!("rotation-routes/{id}"),
            now,
        )
        .await
    }

    /// Every route in match order (position, then age).
    pub async fn routes(&self) -> Result<Vec<RouteRow>, Error> {
        self.read_all(
            format!(
                "SELECT {ROUTE_COLUMNS} FROM rotation_routes ORDER BY position, created_at, id"
            ),
            route_from_row,
        )
        .await
    }
}

async fn observe(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    o: &AssetObserved,
    last_run: Option<&str>,
    now: i64,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE rotation_assets SET certificate_expiration = $1, current_fingerprint = $2, current_serial = $3, \
         next_rotation_at = $4, skip_reason = $5, failures = $6, last_run = COALESCE($7, last_run), \
         updated_at = $8 WHERE system_name = $9",
    )
    .bind(o.certificate_expiration)
    .bind(&o.current_fingerprint)
    .bind(&o.current_serial)
    .bind(o.next_rotation_at)
    .bind(&o.skip_reason)
    .bind(o.failures)
    .bind(last_run.map(str::to_owned))
    .bind(now)
    .bind(name)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The page of `rows` (fetched with `limit + 1`): at most `limit` items, and the cursor of the next page
/// when the extra row came.
fn page<T>(
    rows: &[AnyRow],
    limit: i64,
    decode: fn(&AnyRow) -> Result<T, Error>,
    seq: fn(&T) -> i64,
) -> Result<Page<T>, Error> {
    let mut items = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(seq)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn asset_target(name: &str) -> String {
    format!("assets/{name}")
}

fn conflict(constraint: &str) -> Error {
    Error::Conflict {
        constraint: Some(constraint.to_string()),
    }
}

fn asset_from_row(r: &AnyRow) -> Result<AssetRow, Error> {
    Ok(AssetRow {
        seq: r.try_get(0)?,
        system_name: r.try_get(1)?,
        common_name: r.try_get(2)?,
        sans: r.try_get(3)?,
        ip_address: r.try_get(4)?,
        port: r.try_get(5)?,
        data_center: r.try_get(6)?,
        host_platform: r.try_get(7)?,
        os_version: r.try_get(8)?,
        device_model: r.try_get(9)?,
        origin: r.try_get(10)?,
        certificate_validation: r.try_get::<i64, _>(11)? != 0,
        ca_id: r.try_get(12)?,
        labels: r.try_get(13)?,
        certificate_expiration: r.try_get(14)?,
        current_fingerprint: r.try_get(15)?,
        current_serial: r.try_get(16)?,
        next_rotation_at: r.try_get(17)?,
        last_run: r.try_get(18)?,
        skip_reason: r.try_get(19)?,
        failures: r.try_get(20)?,
        created_at: r.try_get(21)?,
        updated_at: r.try_get(22)?,
    })
}

fn executor_from_row(r: &AnyRow) -> Result<ExecutorRow, Error> {
    Ok(ExecutorRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        kind: r.try_get(2)?,
        config: r.try_get(3)?,
        sealed: r.try_get(4)?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

fn route_from_row(r: &AnyRow) -> Result<RouteRow, Error> {
    Ok(RouteRow {
        id: r.try_get(0)?,
        position: r.try_get(1)?,
        executor_id: r.try_get(2)?,
        settings: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

fn run_from_row(r: &AnyRow) -> Result<RunRow, Error> {
    Ok(RunRow {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        system_name: r.try_get(2)?,
        state: r.try_get(3)?,
        trigger: r.try_get(4)?,
        steps: r.try_get(5)?,
        serial: r.try_get(6)?,
        error: r.try_get(7)?,
        created_at: r.try_get(8)?,
        started_at: r.try_get(9)?,
        finished_at: r.try_get(10)?,
        ca_id: r.try_get(11)?,
    })
}
