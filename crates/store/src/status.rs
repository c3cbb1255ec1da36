//! The platform at a glance (`GET /api/v1/status`, `shedu status`): counts by status and each event sink's
//! position. Certificates and devices by status come from the counts kept as rows change (`counts`): a few
//! rows, whatever the number of certificates; CAs are few and grouped at each read.

use sqlx::Row;

use crate::counts::{self, Counted};
use crate::{Backend, DeviceFilter, Error, Store};

/// Counts and positions, read at one moment (each query on its own; the counts of a busy platform move).
#[derive(Clone, Debug)]
pub struct Overview {
    /// The database behind the store.
    pub backend: Backend,
    /// The outbox position of the newest event (0 when there is none).
    pub event_head: i64,
    /// Each event sink's acknowledged position, by sink name.
    pub sinks: Vec<SinkPosition>,
    /// CAs per stored status.
    pub cas: Vec<(String, i64)>,
    /// Certificates per stored status.
    pub certificates: Vec<(String, i64)>,
    /// Certificates per issuing CA and stored status: `(ca_id, status, count)`, by CA id.
    pub certificates_by_ca: Vec<(String, String, i64)>,
    /// Devices per derived status.
    pub devices: Vec<(String, i64)>,
}

/// Where one event sink (NATS, RabbitMQ, the alert dispatcher) has acknowledged the outbox up to.
#[derive(Clone, Debug)]
pub struct SinkPosition {
    /// The sink's name (`nats`, `amqp`, `alerts`, …).
    pub sink: String,
    /// The last outbox position it acknowledged.
    pub last_seq: i64,
    /// When it last moved (Unix seconds).
    pub updated_at: i64,
}

impl Store {
    /// Reads the [`Overview`].
    pub async fn overview(&self) -> Result<Overview, Error> {
        let (event_head, sinks) = self.outbox_positions().await?;
        let cas: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM cas GROUP BY status ORDER BY status")
                .fetch_all(&self.read)
                .await?;
        // The maintained counts (`counts`): a few rows, whatever the number of certificates.
        let certificates_by_ca =
            counts::read(&self.read, Counted::Certificates, None, None).await?;
        Ok(Overview {
            backend: self.backend(),
            event_head,
            sinks,
            cas,
            certificates: counts::by_status(&certificates_by_ca),
            certificates_by_ca,
            devices: self
                .count_devices_by_status(&DeviceFilter::default())
                .await?,
        })
    }

    /// The newest event's outbox position and each sink's acknowledged one: two indexed reads, cheap enough
    /// for every metrics scrape.
    pub async fn outbox_positions(&self) -> Result<(i64, Vec<SinkPosition>), Error> {
        let sinks =
            sqlx::query("SELECT sink, last_seq, updated_at FROM event_cursors ORDER BY sink")
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|r| {
                    Ok(SinkPosition {
                        sink: r.try_get("sink")?,
                        last_seq: r.try_get("last_seq")?,
                        updated_at: r.try_get("updated_at")?,
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
        Ok((self.max_event_seq().await?, sinks))
    }

    /// How many unexpired certificates (`active` or `about_to_expire`) expire within each of `horizons`
    /// (seconds after `now`): whole days from the maintained per-day counts, the partial days at the ends
    /// over the two partial expiry indexes (see `counts::expiring`).
    pub async fn count_expiring(&self, now: i64, horizons: &[i64]) -> Result<Vec<i64>, Error> {
        let mut counts = Vec::with_capacity(horizons.len());
        for horizon in horizons {
            let mut n = 0;
            for status in ["active", "about_to_expire"] {
                n += counts::expiring(&self.read, status, now, now + horizon).await?;
            }
            counts.push(n);
        }
        Ok(counts)
    }
}
