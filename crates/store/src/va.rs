//! Storage for the validation authority: per-CA VA settings, delegated OCSP responders, revoked
//! certificates for CRLs, and the CRLs themselves with their monotonically increasing numbers.

use sqlx::Row;

use crate::audit::Audited;
use crate::{CaRow, Error, NewEvent, Store, events};

/// How a CA's certificates are checked by relying parties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaVaSettings {
    /// `delegated` (a responder certificate signs OCSP answers) or `ca` (the CA key signs them).
    pub ocsp_signing: String,
    /// Write the AIA (OCSP, caIssuers) extension into issued certificates.
    pub aia: bool,
    /// Write the CRL distribution point into issued certificates.
    pub crldp: bool,
    /// Number of CRL partitions (1 = one CRL).
    pub crl_shards: i64,
}

impl Default for CaVaSettings {
    fn default() -> Self {
        CaVaSettings {
            ocsp_signing: "delegated".into(),
            aia: true,
            crldp: true,
            crl_shards: 1,
        }
    }
}

/// A revoked certificate as a CRL lists it.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct RevokedRow {
    pub serial: String,
    pub revoked_at: i64,
    pub reason: Option<String>,
    pub invalidity_date: Option<i64>,
}

/// A certificate's revocation state, for OCSP.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct StatusRow {
    pub status: String,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
    pub reason: Option<String>,
}

/// A signed OCSP answer for one certificate, and the revocation state it was signed for.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct OcspAnswerRow {
    pub ca_id: String,
    pub serial: String,
    /// The CertID hash the request used (`sha1`, `sha256`): the answer echoes the CertID.
    pub cert_id_hash: String,
    /// The certificate's status, revocation time and reason the answer says.
    pub status: String,
    pub revoked_at: Option<i64>,
    pub reason: Option<String>,
    pub this_update: i64,
    pub der: Vec<u8>,
}

/// A delegated OCSP responder as stored (its key sealed by the keystore).
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct ResponderRow {
    pub ca_id: String,
    pub certificate_der: Vec<u8>,
    pub key_type: String,
    pub key_sealed: Vec<u8>,
    pub not_after: i64,
    pub created_at: i64,
}

/// A CA's profile columns as [`Store::update_ca_profile`] writes them (the encodings of [`CaRow`]).
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct CaProfileUpdate {
    pub default_validity_days: i64,
    pub key_usages: String,
    pub ext_key_usages: String,
    pub allowed_key_types: String,
    pub expiry_warning_days: i64,
    pub name_policy: String,
}

/// A stored CRL.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct CrlRow {
    pub number: i64,
    pub this_update: i64,
    pub next_update: i64,
    pub der: Vec<u8>,
    /// [`Store::revocation_marker`] when the CRL was built; `(-1, -1)` for a CRL stored without one.
    pub marker: (i64, i64),
}

impl Store {
    /// Inserts a CA, its VA settings and its creation event in one transaction.
    pub async fn insert_ca_with_settings(
        &self,
        ca: &CaRow,
        va: &CaVaSettings,
        event: &NewEvent,
        audit: &Audited<'_>,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        crate::cas::insert_ca_row(&mut tx, ca).await?;
        sqlx::query("INSERT INTO ca_va_settings (ca_id, ocsp_signing, aia, crldp, crl_shards) VALUES ($1, $2, $3, $4, $5)")
            .bind(&ca.id)
            .bind(&va.ocsp_signing)
            .bind(i64::from(va.aia))
            .bind(i64::from(va.crldp))
            .bind(va.crl_shards)
            .execute(&mut *tx)
            .await?;
        events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, &ca.id, ca.created_at).await
    }

    /// Replaces a CA's profile columns and VA settings, with its event, in one transaction.
    pub async fn update_ca_profile(
        &self,
        ca_id: &str,
        profile: &CaProfileUpdate,
        va: &CaVaSettings,
        event: &NewEvent,
        audit: &Audited<'_>,
        now: i64,
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        let updated = sqlx::query(
            "UPDATE cas SET default_validity_days = $1, key_usages = $2, ext_key_usages = $3, \
             allowed_key_types = $4, expiry_warning_days = $5, name_policy = $6 WHERE id = $7",
        )
        .bind(profile.default_validity_days)
        .bind(&profile.key_usages)
        .bind(&profile.ext_key_usages)
        .bind(&profile.allowed_key_types)
        .bind(profile.expiry_warning_days)
        .bind(&profile.name_policy)
        .bind(ca_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(Error::NotFound);
        }
        sqlx::query(
            "INSERT INTO ca_va_settings (ca_id, ocsp_signing, aia, crldp, crl_shards) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (ca_id) DO UPDATE SET ocsp_signing = excluded.ocsp_signing, aia = excluded.aia, \
             crldp = excluded.crldp",
        )
        .bind(ca_id)
        .bind(&va.ocsp_signing)
        .bind(i64::from(va.aia))
        .bind(i64::from(va.crldp))
        .bind(va.crl_shards)
        .execute(&mut *tx)
        .await?;
        events::append(&mut tx, event).await?;
        crate::audit::commit(tx, &self.chain, audit, ca_id, now).await
    }

    /// A CA's VA settings (the defaults for CAs created before they existed).
    pub async fn va_settings(&self, ca_id: &str) -> Result<CaVaSettings, Error> {
        let row = sqlx::query(
            "SELECT ocsp_signing, aia, crldp, crl_shards FROM ca_va_settings WHERE ca_id = $1",
        )
        .bind(ca_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some(r) => CaVaSettings {
                ocsp_signing: r.try_get("ocsp_signing")?,
                aia: r.try_get::<i64, _>("aia")? != 0,
                crldp: r.try_get::<i64, _>("crldp")? != 0,
                crl_shards: r.try_get("crl_shards")?,
            },
            None => CaVaSettings::default(),
        })
    }

    /// The revocation state of one certificate, or `NotFound` when this CA never issued it.
    pub async fn certificate_status(&self, ca_id: &str, serial: &str) -> Result<StatusRow, Error> {
        let row = sqlx::query(
            "SELECT status, not_after, revoked_at, revocation_reason FROM certificates WHERE ca_id = $1 AND serial = $2",
        )
        .bind(ca_id)
        .bind(serial)
        .fetch_optional(&self.read)
        .await?
        .ok_or(Error::NotFound)?;
        Ok(StatusRow {
            status: row.try_get("status")?,
            not_after: row.try_get("not_after")?,
            revoked_at: row.try_get("revoked_at")?,
            reason: row.try_get("revocation_reason")?,
        })
    }

    /// The revocation state of one certificate with the stored OCSP answer (DER, thisUpdate) for the CertID
    /// hash `cert_id_hash`, when one was signed for exactly that state (status, revocation time and reason:
    /// an answer signed before a revocation is not returned after it). `NotFound` when this CA never issued
    /// the certificate.
    pub async fn certificate_status_with_answer(
        &self,
        ca_id: &str,
        serial: &str,
        cert_id_hash: &str,
    ) -> Result<(StatusRow, Option<(Vec<u8>, i64)>), Error> {
        let row = sqlx::query(
            "SELECT c.status, c.not_after, c.revoked_at, c.revocation_reason, a.der, a.this_update \
             FROM certificates c LEFT JOIN ocsp_answers a ON a.ca_id = c.ca_id AND a.serial = c.serial \
             AND a.cert_id_hash = $3 AND a.status = c.status \
             AND a.revoked_at IS NOT DISTINCT FROM c.revoked_at \
             AND a.reason IS NOT DISTINCT FROM c.revocation_reason \
             WHERE c.ca_id = $1 AND c.serial = $2",
        )
        .bind(ca_id)
        .bind(serial)
        .bind(cert_id_hash)
        .fetch_optional(&self.read)
        .await?
        .ok_or(Error::NotFound)?;
        let status = StatusRow {
            status: row.try_get("status")?,
            not_after: row.try_get("not_after")?,
            revoked_at: row.try_get("revoked_at")?,
            reason: row.try_get("revocation_reason")?,
        };
        let der: Option<Vec<u8>> = row.try_get("der")?;
        let this_update: Option<i64> = row.try_get("this_update")?;
        Ok((status, der.zip(this_update)))
    }

    /// Keeps signed OCSP answers (one multi-row upsert: a newer answer replaces the one for the same
    /// certificate and CertID hash), and forgets every answer signed before `forget_before`.
    pub async fn put_ocsp_answers(
        &self,
        rows: &[OcspAnswerRow],
        forget_before: i64,
    ) -> Result<(), Error> {
        // One row per key: PostgreSQL refuses an upsert that touches a row twice.
        let mut newest: std::collections::HashMap<(&str, &str, &str), &OcspAnswerRow> =
            std::collections::HashMap::new();
        for r in rows {
            let key = (r.ca_id.as_str(), r.serial.as_str(), r.cert_id_hash.as_str());
            if newest
                .get(&key)
                .is_none_or(|kept| kept.this_update <= r.this_update)
            {
                newest.insert(key, r);
            }
        }
        let rows: Vec<&OcspAnswerRow> = newest.into_values().collect();
        let mut tx = self.write.begin().await?;
        for chunk in rows.chunks(256) {
            let mut sql = String::from(
                "INSERT INTO ocsp_answers (ca_id, serial, cert_id_hash, status, revoked_at, reason, this_update, der) VALUES ",
            );
            crate::writer::push_placeholders(&mut sql, chunk.len(), 8, self.backend);
            sql.push_str(
                " ON CONFLICT (ca_id, serial, cert_id_hash) DO UPDATE SET status = excluded.status, \
                 revoked_at = excluded.revoked_at, reason = excluded.reason, \
                 this_update = excluded.this_update, der = excluded.der \
                 WHERE excluded.this_update >= ocsp_answers.this_update",
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                q = q
                    .bind(r.ca_id.clone())
                    .bind(r.serial.clone())
                    .bind(r.cert_id_hash.clone())
                    .bind(r.status.clone())
                    .bind(r.revoked_at)
                    .bind(r.reason.clone())
                    .bind(r.this_update)
                    .bind(r.der.clone());
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM ocsp_answers WHERE this_update < $1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revoked certificates of a CA, oldest revocation first; with `since`, only those revoked at or after it
    /// (for delta CRLs).
    pub async fn revoked_certificates(
        &self,
        ca_id: &str,
        since: Option<i64>,
    ) -> Result<Vec<RevokedRow>, Error> {
        let rows = sqlx::query(
            "SELECT serial, revoked_at, revocation_reason, invalidity_date FROM certificates \
             WHERE ca_id = $1 AND status = 'revoked' AND revoked_at >= $2 ORDER BY revoked_at, serial",
        )
        .bind(ca_id)
        .bind(since.unwrap_or(i64::MIN))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedRow {
                    serial: r.try_get("serial")?,
                    revoked_at: r
                        .try_get::<Option<i64>, _>("revoked_at")?
                        .unwrap_or_default(),
                    reason: r.try_get("revocation_reason")?,
                    invalidity_date: r.try_get("invalidity_date")?,
                })
            })
            .collect()
    }

    /// `(number of revoked certificates, latest revocation time)` of a CA: changes whenever a certificate of
    /// the CA is revoked, on any replica. Served by the `certificates_revoked` partial index.
    pub async fn revocation_marker(&self, ca_id: &str) -> Result<(i64, i64), Error> {
        let row = sqlx::query(
            "SELECT COUNT(*), COALESCE(MAX(revoked_at), 0) FROM certificates WHERE ca_id = $1 AND status = 'revoked'",
        )
        .bind(ca_id)
        .fetch_one(&self.read)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// The CA's delegated responder, if one was made.
    pub async fn ocsp_responder(&self, ca_id: &str) -> Result<Option<ResponderRow>, Error> {
        let row = sqlx::query(
            "SELECT ca_id, certificate_der, key_type, key_sealed, not_after, created_at FROM ocsp_responders WHERE ca_id = $1",
        )
        .bind(ca_id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(ResponderRow {
                ca_id: r.try_get("ca_id")?,
                certificate_der: r.try_get("certificate_der")?,
                key_type: r.try_get("key_type")?,
                key_sealed: r.try_get("key_sealed")?,
                not_after: r.try_get("not_after")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Stores (or replaces, on rotation) a CA's delegated responder.
    pub async fn put_ocsp_responder(&self, r: &ResponderRow) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO ocsp_responders (ca_id, certificate_der, key_type, key_sealed, not_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (ca_id) DO UPDATE SET certificate_der = excluded.certificate_der, \
             key_type = excluded.key_type, key_sealed = excluded.key_sealed, not_after = excluded.not_after, \
             created_at = excluded.created_at",
        )
        .bind(&r.ca_id)
        .bind(&r.certificate_der)
        .bind(&r.key_type)
        .bind(&r.key_sealed)
        .bind(r.not_after)
        .bind(r.created_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Allocates the next CRL number of a CA (shared by its full, delta and partitioned CRLs, so every CRL
    /// scope sees increasing numbers).
    pub async fn next_crl_number(&self, ca_id: &str) -> Result<i64, Error> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO crl_numbers (ca_id, last_number) VALUES ($1, 1) \
             ON CONFLICT (ca_id) DO UPDATE SET last_number = crl_numbers.last_number + 1",
        )
        .bind(ca_id)
        .execute(&mut *tx)
        .await?;
        let n: i64 = sqlx::query("SELECT last_number FROM crl_numbers WHERE ca_id = $1")
            .bind(ca_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        tx.commit().await?;
        Ok(n)
    }

    /// Stores the latest CRL of a kind (`full` or `delta`) for a CA partition.
    pub async fn put_crl(
        &self,
        ca_id: &str,
        shard: i64,
        kind: &str,
        crl: &CrlRow,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO crls (ca_id, shard, kind, number, this_update, next_update, der, revoked_count, revoked_latest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (ca_id, shard, kind) DO UPDATE SET number = excluded.number, this_update = excluded.this_update, \
             next_update = excluded.next_update, der = excluded.der, revoked_count = excluded.revoked_count, \
             revoked_latest = excluded.revoked_latest",
        )
        .bind(ca_id)
        .bind(shard)
        .bind(kind)
        .bind(crl.number)
        .bind(crl.this_update)
        .bind(crl.next_update)
        .bind(&crl.der)
        .bind(crl.marker.0)
        .bind(crl.marker.1)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The latest stored CRL of a kind for a CA partition.
    pub async fn crl(&self, ca_id: &str, shard: i64, kind: &str) -> Result<Option<CrlRow>, Error> {
        let row = sqlx::query(
            "SELECT number, this_update, next_update, der, revoked_count, revoked_latest FROM crls \
             WHERE ca_id = $1 AND shard = $2 AND kind = $3",
        )
        .bind(ca_id)
        .bind(shard)
        .bind(kind)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(CrlRow {
                number: r.try_get("number")?,
                this_update: r.try_get("this_update")?,
                next_update: r.try_get("next_update")?,
                der: r.try_get("der")?,
                marker: (r.try_get("revoked_count")?, r.try_get("revoked_latest")?),
            })
        })
        .transpose()
    }
}

/// A sealed software key as stored, for master-key rotation.
#[derive(Clone, Debug)]
#[allow(missing_docs)]
pub struct SealedKeyRow {
    /// `cas` or `ocsp_responders`.
    pub table: &'static str,
    /// The row's key (a CA id).
    pub id: String,
    pub key_type: String,
    pub sealed: Vec<u8>,
}

/// A sealed secret (not a key) as stored, for master-key rotation: a webhook subscription's signing secret.
#[derive(Clone, Debug)]
pub struct SealedSecretRow {
    /// The subscription id (the secret's associated data).
    pub id: String,
    /// The sealed secret.
    pub sealed: Vec<u8>,
}

impl Store {
    /// Every sealed webhook secret (subscriptions).
    pub async fn sealed_webhook_secrets(&self) -> Result<Vec<SealedSecretRow>, Error> {
        let rows = sqlx::query(
            "SELECT id, secret_sealed FROM subscriptions WHERE secret_sealed IS NOT NULL",
        )
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SealedSecretRow {
                    id: r.try_get("id")?,
                    sealed: r.try_get("secret_sealed")?,
                })
            })
            .collect()
    }

    /// Every software-sealed key in the database (CA keys and delegated responder keys).
    pub async fn sealed_keys(&self) -> Result<Vec<SealedKeyRow>, Error> {
        let mut out = Vec::new();
        let cas = sqlx::query("SELECT id, key_type, key_sealed FROM cas WHERE engine = 'software' AND key_sealed IS NOT NULL")
            .fetch_all(&self.write)
            .await?;
        for r in cas {
            out.push(SealedKeyRow {
                table: "cas",
                id: r.try_get("id")?,
                key_type: r.try_get("key_type")?,
                sealed: r.try_get("key_sealed")?,
            });
        }
        let responders = sqlx::query("SELECT ca_id, key_type, key_sealed FROM ocsp_responders")
            .fetch_all(&self.write)
            .await?;
        for r in responders {
            out.push(SealedKeyRow {
                table: "ocsp_responders",
                id: r.try_get("ca_id")?,
                key_type: r.try_get("key_type")?,
                sealed: r.try_get("key_sealed")?,
            });
        }
        Ok(out)
    }

    /// Replaces sealed keys, sealed webhook secrets and `meta` values (the keystore canary, the session
    /// secret) in one transaction: either everything is re-wrapped or nothing is.
    pub async fn replace_sealed_keys(
        &self,
        keys: &[SealedKeyRow],
        secrets: &[SealedSecretRow],
        kmip: &[SealedSecretRow],
        cloud: &[SealedSecretRow],
        executors: &[SealedSecretRow],
        meta: &[(&str, Vec<u8>)],
    ) -> Result<(), Error> {
        let mut tx = self.write.begin().await?;
        for k in keys {
            let sql = match k.table {
                "cas" => "UPDATE cas SET key_sealed = $1 WHERE id = $2",
                "ocsp_responders" => "UPDATE ocsp_responders SET key_sealed = $1 WHERE ca_id = $2",
                other => return Err(Error::Config(format!("no sealed keys in table {other}"))),
            };
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&k.sealed)
                .bind(&k.id)
                .execute(&mut *tx)
                .await?;
        }
        for s in secrets {
            sqlx::query("UPDATE subscriptions SET secret_sealed = $1 WHERE id = $2")
                .bind(&s.sealed)
                .bind(&s.id)
                .execute(&mut *tx)
                .await?;
        }
        for o in kmip {
            sqlx::query("UPDATE kmip_objects SET sealed = $1 WHERE uid = $2")
                .bind(&o.sealed)
                .bind(&o.id)
                .execute(&mut *tx)
                .await?;
        }
        for c in cloud {
            sqlx::query("UPDATE cloud_connectors SET credentials = $1 WHERE id = $2")
                .bind(&c.sealed)
                .bind(&c.id)
                .execute(&mut *tx)
                .await?;
        }
        for e in executors {
            sqlx::query("UPDATE rotation_executors SET sealed = $1 WHERE id = $2")
                .bind(&e.sealed)
                .bind(&e.id)
                .execute(&mut *tx)
                .await?;
        }
        for (key, value) in meta {
            sqlx::query("UPDATE meta SET value = $1 WHERE key = $2")
                .bind(value)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
