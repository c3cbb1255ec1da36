//! Device status, derived from the slots and stored, so that it can be filtered and counted.
//!
//! A device is `with_warnings` when a slot's active certificate is expired or revoked, else `requires_action`
//! when one is about to expire, else `fully_provisioned` when it has a slot, else `pending_provisioning`;
//! `decommissioned` is terminal and never re-derived. The derivation is one SQL expression, evaluated
//! set-based: for one device after an enrolment or a revocation, and for every device with a due slot in the
//! lifecycle sweep, which moves the slots' copies of their active certificate's status with the same
//! transitions over partial indexes that it applies to certificates. Each change writes a
//! `device.status_changed` event and a log entry in the same transaction.
//!
//! Lock order on PostgreSQL: the device row first, then certificates, then slots. Enrolment, revocation and
//! the sweep all follow it, so none of them waits for another in the opposite order.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use crate::{Backend, Error, EventWords};

/// A value bound to a statement, in placeholder order.
#[derive(Clone, Debug)]
pub(super) enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
}

impl Arg {
    /// The value as an SQL literal (for `EXECUTE` in [`crate::Store::explain_device_sweep`]).
    #[cfg(any(test, feature = "testing"))]
    fn literal(&self) -> String {
        match self {
            Arg::Int(v) => v.to_string(),
            Arg::Text(v) | Arg::OptText(Some(v)) => crate::sql_word(v),
            Arg::OptText(None) => "NULL".into(),
        }
    }

    /// `$n` with a cast, so PostgreSQL knows the type where the context does not say (inside a JSON builder).
    fn typed(&self, n: usize) -> String {
        match self {
            Arg::Int(_) => format!("CAST(${n} AS BIGINT)"),
            Arg::Text(_) | Arg::OptText(_) => format!("CAST(${n} AS TEXT)"),
        }
    }
}

/// Binds `args` in order.
pub(super) fn bind(
    mut q: Query<'static, Any, AnyArguments>,
    args: &[Arg],
) -> Query<'static, Any, AnyArguments> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v.clone()),
            Arg::OptText(v) => q.bind(v.clone()),
            Arg::Int(v) => q.bind(*v),
        };
    }
    q
}

/// A JSON object (as text) of `(key, SQL expression)` pairs in the backend's dialect. Keys are ours.
pub(super) fn json_object(backend: Backend, pairs: &[(&str, String)]) -> String {
    let body = pairs
        .iter()
        .map(|(k, v)| format!("'{k}', {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    match backend {
        Backend::Sqlite => format!("json_object({body})"),
        Backend::Postgres => format!("json_build_object({body})::text"),
    }
}

/// A fresh event id (32 hex digits) in SQL.
fn random_id(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "lower(hex(randomblob(16)))",
        Backend::Postgres => "replace(gen_random_uuid()::text, '-', '')",
    }
}

/// A fresh event id for events built here, the same as core's ([`crate::ordered_id`]).
pub(super) fn event_id() -> String {
    crate::ordered_id()
}

/// Appends a device log entry; returns its data (JSON text), which the caller reuses as the data of the
/// matching event.
pub(super) async fn log(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    entry: LogEntry<'_>,
) -> Result<String, Error> {
    let mut args = vec![
        Arg::Text(entry.device_id.to_string()),
        Arg::Int(entry.time),
        Arg::Text(entry.kind.to_string()),
        Arg::Text(entry.message),
    ];
    let data = match entry.data {
        Data::Json(json) => {
            args.push(Arg::Text(json));
            "$5".to_string()
        }
        Data::Fields(fields) => {
            let pairs: Vec<(&str, String)> = fields
                .iter()
                .enumerate()
                .map(|(i, (k, a))| (*k, a.typed(args.len() + i + 1)))
                .collect();
            let json = json_object(backend, &pairs);
            args.extend(fields.into_iter().map(|(_, a)| a));
            json
        }
    };
    let sql = format!(
        "INSERT INTO device_log (device_id, time, kind, message, data) VALUES ($1, $2, $3, $4, {data}) RETURNING data"
    );
    let row = bind(sqlx::query(AssertSqlSafe(sql)), &args)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get(0)?)
}

/// One device log entry.
pub(super) struct LogEntry<'a> {
    pub(super) device_id: &'a str,
    pub(super) time: i64,
    pub(super) kind: &'static str,
    pub(super) message: String,
    pub(super) data: Data,
}

/// A log entry's data: the JSON of an event built by the service, or fields to build it from here.
pub(super) enum Data {
    Json(String),
    Fields(Vec<(&'static str, Arg)>),
}

/// The slot's stored status: what enrolment and revocation derive from, after writing the slot.
const SLOT_NOW: &str = "s.active_status";

/// The slot's status after the sweep at `$1`: the certificate transitions of `sweep.rs` applied to the copy
/// (expired once notAfter passed, about to expire inside the CA's warning window).
const SLOT_AFTER_SWEEP: &str = "CASE \
    WHEN s.active_status IN ('active', 'about_to_expire') AND s.active_not_after <= $1 THEN 'expired' \
    WHEN s.active_status = 'active' \
         AND s.active_not_after <= $1 + (SELECT c.expiry_warning_days * 86400 FROM cas c WHERE c.id = s.ca_id) \
         THEN 'about_to_expire' \
    ELSE s.active_status END";

/// The status of device `d` from its slots' statuses (`slot`, an expression over `s`), by precedence.
fn derived(slot: &str) -> String {
    derived_from(slot, "device_slots s WHERE s.device_id = d.id")
}

/// The status of a device whose slots are the rows `slots` (a `FROM` clause naming them `s`), each slot's
/// status being `slot`, by precedence: the one derivation, for slots as stored or as about to be written.
pub(super) fn derived_from(slot: &str, slots: &str) -> String {
    format!(
        "(SELECT CASE MAX(CASE WHEN {slot} IN ('expired', 'revoked') THEN 3 WHEN {slot} = 'about_to_expire' THEN 2 ELSE 1 END) \
           WHEN 3 THEN 'with_warnings' WHEN 2 THEN 'requires_action' WHEN 1 THEN 'fully_provisioned' \
           ELSE 'pending_provisioning' END \
         FROM {slots})"
    )
}

/// Which devices a derivation covers.
pub(super) enum Scope<'a> {
    /// One device, from its slots as stored.
    Device(&'a str),
    /// Every device with a slot the sweep at `$1` moves, from its slots as they will be. `warn_end` (now plus
    /// the largest warning window) bounds the index range scan; the per-CA window then decides exactly.
    Due { warn_end: i64 },
}

impl Scope<'_> {
    fn slot(&self) -> &'static str {
        match self {
            Scope::Device(_) => SLOT_NOW,
            Scope::Due { .. } => SLOT_AFTER_SWEEP,
        }
    }

    /// The condition on `d`; its one placeholder is `$n` (the sweep's also uses `$1`, now).
    fn condition(&self, backend: Backend, n: usize) -> String {
        match self {
            Scope::Device(_) => format!("d.id = ${n}"),
            Scope::Due { .. } => {
                let (active, warning) = slot_index_hints(backend);
                let due = format!(
                    "SELECT device_id FROM device_slots{active} WHERE active_status = 'active' AND active_not_after <= ${n} \
                     UNION SELECT device_id FROM device_slots{warning} WHERE active_status = 'about_to_expire' AND active_not_after <= $1"
                );
                match backend {
                    Backend::Sqlite => format!("d.id IN ({due})"),
                    // An array of the due ids: PostgreSQL then looks each one up in the devices' id index
                    // whatever it estimates (a generic plan takes a third of the slots as due, and the
                    // `IN` form then read every device, hashed or in id order).
                    Backend::Postgres => format!("d.id = ANY(ARRAY({due}))"),
                }
            }
        }
    }

    fn arg(&self) -> Arg {
        match self {
            Scope::Device(id) => Arg::Text(id.to_string()),
            Scope::Due { warn_end } => Arg::Int(*warn_end),
        }
    }
}

/// A statement and its values.
type Statement = (String, Vec<Arg>);

/// Re-derives the status of the devices in `scope` as of `now`. Each device whose status changes gets one
/// `device.status_changed` event and one log entry naming `cause`. Returns how many changed.
pub(super) async fn rederive(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    scope: &Scope<'_>,
    now: i64,
    words: &EventWords,
    cause: &str,
) -> Result<u64, Error> {
    let mut changed = 0;
    for (sql, args) in rederive_statements(backend, scope, now, words, cause) {
        changed = bind(sqlx::query(AssertSqlSafe(sql)), &args)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(changed)
}

/// The events, log and update statements of [`rederive`], the update last.
fn rederive_statements(
    backend: Backend,
    scope: &Scope<'_>,
    now: i64,
    words: &EventWords,
    cause: &str,
) -> [Statement; 3] {
    let new = derived(scope.slot());
    // Placeholders: $1 now, then each statement's own; the scope's comes last.
    let moving = |n: usize| {
        format!(
            "(SELECT d.seq, d.id, d.status AS old, {new} AS new FROM devices d \
              WHERE {} AND d.status <> 'decommissioned') x WHERE x.new <> x.old",
            scope.condition(backend, n)
        )
    };
    let [id, from, to, because] = CHANGE_KEYS;
    let data = |cause: &str| {
        json_object(
            backend,
            &[
                (id, "x.id".into()),
                (from, "x.old".into()),
                (to, "x.new".into()),
                (because, cause.into()),
            ],
        )
    };
    let events = format!(
        "INSERT INTO events (id, source, type, subject, time, data) \
         SELECT {}, CAST($2 AS TEXT), {}, 'devices/' || x.id, $1, {} FROM {} ORDER BY x.seq",
        random_id(backend),
        crate::sql_word(words.device_status_changed),
        data("CAST($3 AS TEXT)"),
        moving(4)
    );
    let log = format!(
        "INSERT INTO device_log (device_id, time, kind, message, data) \
         SELECT x.id, $1, 'status_changed', x.old || '{STATUS_ARROW}' || x.new, {} FROM {} ORDER BY x.seq",
        data("CAST($2 AS TEXT)"),
        moving(3)
    );
    let update = format!(
        "UPDATE devices AS d SET status = {new}, updated_at = $1 \
         WHERE {} AND d.status <> 'decommissioned' AND {new} <> d.status",
        scope.condition(backend, 2)
    );
    [
        (
            events,
            vec![
                Arg::Int(now),
                Arg::Text(words.source.into()),
                Arg::Text(cause.into()),
                scope.arg(),
            ],
        ),
        (
            log,
            vec![Arg::Int(now), Arg::Text(cause.into()), scope.arg()],
        ),
        (update, vec![Arg::Int(now), scope.arg()]),
    ]
}

/// Between the old and the new status in a `status_changed` log entry's message (SQL and Rust write it).
const STATUS_ARROW: &str = " -> ";

/// The keys of a `device.status_changed` event's data (and of its log entry's): the device, the old and the
/// new status, and the cause.
const CHANGE_KEYS: [&str; 4] = ["device_id", "from", "to", "cause"];

/// One device's status change, for a caller that knows the old status (it holds the device's row) and
/// writes the log entry and event itself: [`rederive`]'s change for one device, in one statement.
pub(super) struct StatusChange {
    /// The new status.
    pub(super) to: String,
    /// The `status_changed` log entry's message and data (the event's data too).
    pub(super) message: String,
    pub(super) data: String,
}

/// Re-derives the status of `devices` (each with its status `from`) from their slots as stored, like
/// [`rederive`] over [`Scope::Device`], but as one `UPDATE … RETURNING` for all of them: the caller holds
/// the devices' rows (or created them) and knows their statuses, and writes the returned changes' log
/// entries and events (with its other rows). Each device's change is `None` when its status stays.
pub(super) async fn rederive_known(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    devices: &[(&str, &str)],
    now: i64,
    cause: &str,
) -> Result<Vec<Option<StatusChange>>, Error> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let new = derived(SLOT_NOW);
    let ids = (2..devices.len() + 2)
        .map(|n| crate::writer::placeholder(backend, n))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE devices AS d SET status = {new}, updated_at = {} \
         WHERE d.id IN ({ids}) AND d.status <> 'decommissioned' AND {new} <> d.status RETURNING id, status",
        crate::writer::placeholder(backend, 1)
    );
    let mut q = sqlx::query(AssertSqlSafe(sql)).bind(now);
    for (id, _) in devices {
        q = q.bind(id.to_string());
    }
    let mut moved: std::collections::HashMap<String, String> = q
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(devices
        .iter()
        .map(|(device_id, from)| {
            let to = moved.remove(*device_id)?;
            Some(StatusChange::new(device_id, from, to, cause))
        })
        .collect())
}

impl StatusChange {
    /// Device `device_id` moved from `from` to `to` because of `cause`.
    pub(super) fn new(device_id: &str, from: &str, to: String, cause: &str) -> StatusChange {
        let [id, old, new, because] = CHANGE_KEYS;
        let mut data = serde_json::Map::new();
        for (k, v) in [(id, device_id), (old, from), (new, &to), (because, cause)] {
            data.insert(k.into(), v.into());
        }
        StatusChange {
            // The message [`rederive_statements`] writes in SQL.
            message: format!("{from}{STATUS_ARROW}{to}"),
            data: serde_json::Value::Object(data).to_string(),
            to,
        }
    }
}

/// A device log entry whose data is already JSON, for [`insert_log`].
#[derive(Clone, Debug)]
pub(crate) struct LogRow {
    pub(super) device_id: String,
    pub(super) time: i64,
    pub(super) kind: &'static str,
    pub(super) message: String,
    pub(super) data: String,
}

/// PostgreSQL: appends the device log entries of the JSON recordset `$6` (see [`log_recordset`]) in order,
/// as a data-modifying CTE of the certificate writer's one statement.
pub(crate) const INSERT_LOG_PG: &str = "INSERT INTO device_log (device_id, time, kind, message, data) \
    SELECT device_id, time, kind, message, data FROM json_to_recordset($6::json) \
    AS r(device_id text, time bigint, kind text, message text, data text)";

/// `rows` as the recordset of [`INSERT_LOG_PG`].
pub(crate) fn log_recordset(rows: &[&LogRow]) -> crate::writer::Recordset {
    let mut set = crate::writer::Recordset::default();
    for r in rows {
        set.push(serde_json::json!({
            "device_id": r.device_id, "time": r.time, "kind": r.kind, "message": r.message, "data": r.data,
        }));
    }
    set
}

/// Appends `rows` to the device log in one statement, in order.
pub(super) async fn insert_log(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    rows: &[LogRow],
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql =
        String::from("INSERT INTO device_log (device_id, time, kind, message, data) VALUES ");
    crate::writer::push_placeholders(&mut sql, rows.len(), 5, backend);
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for r in rows {
        q = q
            .bind(r.device_id.clone())
            .bind(r.time)
            .bind(r.kind)
            .bind(r.message.clone())
            .bind(r.data.clone());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Takes the row locks of the devices the sweep at `now` will move, before the sweep touches a certificate
/// (PostgreSQL; SQLite's single writer connection already serialises every write).
pub(crate) async fn lock_due(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    now: i64,
    warn_end: i64,
) -> Result<(), Error> {
    if backend == Backend::Sqlite {
        return Ok(());
    }
    let (sql, args) = lock_due_statement(backend, now, warn_end);
    bind(sqlx::query(AssertSqlSafe(sql)), &args)
        .fetch_all(&mut **tx)
        .await?;
    Ok(())
}

fn lock_due_statement(backend: Backend, now: i64, warn_end: i64) -> Statement {
    let scope = Scope::Due { warn_end };
    let sql = format!(
        "SELECT d.id FROM devices d WHERE {} AND d.status <> 'decommissioned' ORDER BY d.id FOR UPDATE",
        scope.condition(backend, 2)
    );
    (sql, vec![Arg::Int(now), scope.arg()])
}

/// The sweep's device step: re-derives every device with a due slot, then moves the slots themselves. Runs
/// in the sweep's transaction after [`lock_due`]; returns how many devices changed status.
pub(crate) async fn sweep(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    now: i64,
    warn_end: i64,
    words: &EventWords,
) -> Result<u64, Error> {
    let scope = Scope::Due { warn_end };
    let changed = rederive(tx, backend, &scope, now, words, SWEEP_CAUSE).await?;
    for (sql, args) in slot_moves(backend, now, warn_end) {
        bind(sqlx::query(AssertSqlSafe(sql)), &args)
            .execute(&mut **tx)
            .await?;
    }
    Ok(changed)
}

/// The `cause` of the sweep's status changes.
const SWEEP_CAUSE: &str = "lifecycle_sweep";

/// The slots' own transitions, the certificate sweep's applied to their copies. Expire first, as the
/// certificate sweep does, so a slot past notAfter goes straight to `expired`.
fn slot_moves(backend: Backend, now: i64, warn_end: i64) -> [Statement; 3] {
    let (active, warning) = slot_index_hints(backend);
    [
        (
            format!(
                "UPDATE device_slots{active} SET active_status = 'expired', updated_at = $1 \
                 WHERE active_status = 'active' AND active_not_after <= $1"
            ),
            vec![Arg::Int(now)],
        ),
        (
            format!(
                "UPDATE device_slots{warning} SET active_status = 'expired', updated_at = $1 \
                 WHERE active_status = 'about_to_expire' AND active_not_after <= $1"
            ),
            vec![Arg::Int(now)],
        ),
        (
            format!(
                "UPDATE device_slots{active} SET active_status = 'about_to_expire', updated_at = $1 \
                 WHERE active_status = 'active' AND active_not_after > $1 AND active_not_after <= $2 \
                 AND active_not_after <= $1 + (SELECT c.expiry_warning_days * 86400 FROM cas c WHERE c.id = device_slots.ca_id)"
            ),
            vec![Arg::Int(now), Arg::Int(warn_end)],
        ),
    ]
}

impl crate::Store {
    /// The query plans of the sweep's device statements as of `now` (for tests and the benchmark), one line
    /// per plan row: the very statements the sweep runs ([`lock_due`] on PostgreSQL, then [`sweep`]), with
    /// the same values bound, the warning window taken from the CAs as the sweep takes it.
    #[cfg(any(test, feature = "testing"))]
    pub async fn explain_device_sweep(&self, now: i64) -> Result<Vec<String>, Error> {
        let (prefix, column) = self.backend.explain();
        let mut conn = self.write.acquire().await?;
        let warn_end = crate::sweep::warning_end(&mut conn, now).await?;
        let scope = Scope::Due { warn_end };
        let mut statements = Vec::new();
        if self.backend == Backend::Postgres {
            statements.push(lock_due_statement(self.backend, now, warn_end));
        }
        statements.extend(rederive_statements(
            self.backend,
            &scope,
            now,
            self.words,
            SWEEP_CAUSE,
        ));
        statements.extend(slot_moves(self.backend, now, warn_end));
        let mut out = Vec::new();
        if self.backend == Backend::Postgres {
            // The generic plan, the one PostgreSQL may settle on for statements prepared once and run at
            // every sweep: it knows no values, so the plan must be indexed whatever is due.
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
                .execute(&mut *tx)
                .await?;
            for (sql, args) in statements {
                sqlx::query(AssertSqlSafe(format!("PREPARE shedu_explain AS {sql}")))
                    .execute(&mut *tx)
                    .await?;
                let values = args.iter().map(Arg::literal).collect::<Vec<_>>().join(", ");
                let explain = format!("{prefix}EXECUTE shedu_explain({values})");
                for row in sqlx::query(AssertSqlSafe(explain))
                    .fetch_all(&mut *tx)
                    .await?
                {
                    out.push(row.try_get::<String, _>(column)?);
                }
                sqlx::query("DEALLOCATE shedu_explain")
                    .execute(&mut *tx)
                    .await?;
            }
            tx.rollback().await?;
            return Ok(out);
        }
        for (sql, args) in statements {
            let rows = bind(sqlx::query(AssertSqlSafe(format!("{prefix}{sql}"))), &args)
                .fetch_all(&mut *conn)
                .await?;
            for row in rows {
                out.push(row.try_get::<String, _>(column)?);
            }
        }
        Ok(out)
    }
}

/// The device a certificate was issued into, with its row locked (PostgreSQL) before revocation touches the
/// certificate, following the lock order. `None` for certificates outside the registry.
pub(crate) async fn lock_certificate_device(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    ca_id: &str,
    serial: &str,
) -> Result<Option<String>, Error> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE OF d",
    };
    let sql = format!(
        "SELECT d.id FROM device_certificates dc JOIN devices d ON d.id = dc.device_id \
         WHERE dc.ca_id = $1 AND dc.serial = $2{lock}"
    );
    let row: Option<(String,)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(ca_id)
        .bind(serial)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.0))
}

/// A device's certificate that was just revoked.
pub(crate) struct DeviceRevocation<'a> {
    pub(crate) device_id: &'a str,
    pub(crate) ca_id: &'a str,
    pub(crate) serial: &'a str,
    pub(crate) reason: &'a str,
    pub(crate) now: i64,
}

/// After a certificate of a device was revoked: logs it, marks the slot when it held the certificate as
/// its active one, and re-derives the device's status, in the revocation's transaction.
pub(crate) async fn certificate_revoked(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    r: &DeviceRevocation<'_>,
    words: &EventWords,
) -> Result<(), Error> {
    let DeviceRevocation {
        device_id,
        ca_id,
        serial,
        now,
        ..
    } = *r;
    log_revocation(tx, backend, r).await?;
    sqlx::query(
        "UPDATE device_slots SET active_status = 'revoked', updated_at = $1 \
         WHERE device_id = $2 AND ca_id = $3 AND active_serial = $4",
    )
    .bind(now)
    .bind(device_id)
    .bind(ca_id)
    .bind(serial)
    .execute(&mut **tx)
    .await?;
    rederive(
        tx,
        backend,
        &Scope::Device(device_id),
        now,
        words,
        "certificate_revoked",
    )
    .await?;
    Ok(())
}

/// The `certificate_revoked` log entry; returns its data, the same as core's `certificate.revoked` event's.
pub(super) async fn log_revocation(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    r: &DeviceRevocation<'_>,
) -> Result<String, Error> {
    let DeviceRevocation {
        device_id,
        ca_id,
        serial,
        reason,
        now,
    } = *r;
    log(
        tx,
        backend,
        LogEntry {
            device_id,
            time: now,
            kind: "certificate_revoked",
            message: format!("certificate {serial} of CA {ca_id} revoked ({reason})"),
            data: Data::Fields(vec![
                ("ca_id", Arg::Text(ca_id.into())),
                ("serial", Arg::Text(serial.into())),
                ("reason", Arg::Text(reason.into())),
                ("revoked_at", Arg::Int(now)),
            ]),
        },
    )
    .await
}

/// The partial indexes of due slots (active, about to expire), named on SQLite: it plans by statistics it
/// only has after ANALYZE, and a full scan of a million slots is what the indexes exist to avoid.
fn slot_index_hints(backend: Backend) -> (&'static str, &'static str) {
    match backend {
        Backend::Sqlite => (
            " INDEXED BY device_slots_active_expiry",
            " INDEXED BY device_slots_warning_expiry",
        ),
        Backend::Postgres => ("", ""),
    }
}
