//! The transactional outbox. [`enqueue`] writes a message row with the caller's connection,
//! inside the caller's transaction, so the message exists if and only if the change that
//! caused it committed. The [`Relay`] publishes due rows to Kafka outside any transaction.
//!
//! The relay claims rows with a lease (`FOR UPDATE SKIP LOCKED`, committed at once), then
//! publishes, then marks them sent only after the broker acknowledged. Several relays can
//! run at once: a row is claimed by one at a time. The lease is short and renewed by a
//! heartbeat while the publish is in flight, so a relay that dies leaves its rows to the
//! others (or to itself, restarted) within seconds; one that dies between publishing and
//! marking leaves a row that is published again, so delivery is at least once and consumers
//! must be idempotent. Order across relays is not guaranteed.
//!
//! [`enqueue`] also sends a PostgreSQL `NOTIFY` on the table's channel, delivered when the
//! transaction commits; the relay `LISTEN`s and starts a round at once, so a message waits
//! for no poll. Polling stays as the fallback (a lost listener connection, a notification
//! missed while it reconnects), and a relay with nothing due sleeps until the next row
//! written for later falls due.
//!
//! This module never holds a transaction open across a network call.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::DbError;
use crate::kafka::{KafkaProducer, OutgoingRecord};
use crate::telemetry::propagation;

/// A qualified, validated outbox table name such as `label.outbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxTable(String);

impl OutboxTable {
    /// Accepts `table` or `schema.table`, each part a plain lower-case identifier: the name is
    /// spliced into SQL, so nothing else is allowed.
    pub fn new(name: &str) -> Result<Self, DbError> {
        let valid = !name.is_empty()
            && name.split('.').count() <= 2
            && name.split('.').all(|part| {
                let mut chars = part.chars();
                matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
                    && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(DbError::Config(format!(
                "outbox.table: {name:?} is not a plain table name"
            )))
        }
    }

    /// The table name as it appears in SQL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `LISTEN`/`NOTIFY` channel on which [`enqueue`] tells relays of new rows.
    pub fn channel(&self) -> String {
        format!("outbox:{}", self.0)
    }
}

/// A message to publish once the surrounding transaction commits.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// Destination topic.
    pub topic: String,
    /// Partitioning key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub payload: Vec<u8>,
    /// Text headers. The current span's W3C context is added by [`enqueue`].
    pub headers: Vec<(String, String)>,
    /// Do not publish before this time (deferred actions and retries).
    pub not_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredHeader {
    name: String,
    value: String,
}

/// Writes `message` into the outbox with the caller's connection, inside the caller's
/// transaction. The W3C context of the current span is stored with it, so the trace goes on
/// from where the message was caused. Returns the row id.
pub async fn enqueue(
    conn: &mut PgConnection,
    table: &OutboxTable,
    message: &NewMessage,
) -> Result<i64, DbError> {
    let mut headers: Vec<StoredHeader> = message
        .headers
        .iter()
        .map(|(name, value)| StoredHeader {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    if !headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case(propagation::TRACEPARENT))
    {
        headers.extend(
            propagation::inject(&tracing::Span::current())
                .into_iter()
                .map(|(name, value)| StoredHeader { name, value }),
        );
    }
    let headers = serde_json::to_value(&headers)
        .map_err(|err| DbError::Config(format!("outbox headers: {err}")))?;
    // The notification is part of the transaction: sent on commit, dropped on rollback, and
    // several in one transaction reach the listener as one.
    let sql = format!(
        "WITH row AS ( \
             INSERT INTO {} (topic, message_key, payload, headers, not_before) \
             VALUES ($1, $2, $3, $4, COALESCE($5, now())) RETURNING id) \
         SELECT row.id FROM row, pg_notify($6, '')",
        table.as_str()
    );
    let id: i64 = sqlx::query_scalar(&sql)
        .bind(&message.topic)
        .bind(message.key.as_deref())
        .bind(&message.payload)
        .bind(headers)
        .bind(message.not_before)
        .bind(table.channel())
        .fetch_one(conn)
        .await?;
    Ok(id)
}

/// Settings of the relay.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelaySettings {
    /// Rows claimed per round.
    pub batch_size: i64,
    /// The longest pause between rounds that found nothing to do. New rows wake the relay
    /// at once (`NOTIFY`); polling is the fallback when a notification is lost.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a claim holds before another relay may take the row over. The relay renews
    /// it every third of this while a publish is in flight, so it bounds how long the rows
    /// of a relay that died wait, not how long a publish may take.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// First delay after a failed publish of a row; doubles up to `retry_max_delay`.
    #[serde(with = "humantime_serde")]
    pub retry_initial_delay: Duration,
    /// Largest delay between two attempts at one row.
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// How long sent rows are kept (for inspection) before they are purged.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 100,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(3),
            retry_initial_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(600),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    topic: String,
    message_key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: serde_json::Value,
    attempts: i32,
}

/// What one round of the relay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows published and marked sent.
    pub published: usize,
    /// Rows whose publish failed; they are due again after a backoff.
    pub failed: usize,
}

/// Publishes outbox rows. Run one or more per service.
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    producer: KafkaProducer,
    table: OutboxTable,
    settings: RelaySettings,
    instance: Uuid,
}

impl Relay {
    /// A relay over `table`, with its own instance id for claims.
    pub fn new(
        pool: PgPool,
        producer: KafkaProducer,
        table: OutboxTable,
        settings: RelaySettings,
    ) -> Self {
        Self {
            pool,
            producer,
            table,
            settings,
            instance: Uuid::new_v4(),
        }
    }

    /// Runs rounds until `stop` is cancelled. Database errors are logged and retried with
    /// backoff; they never end the relay.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let mut purge_due = tokio::time::Instant::now();
        let mut gauge_due = tokio::time::Instant::now();
        let mut db_backoff = self.db_backoff();
        let mut wake = Wakeup::new(self.pool.clone(), self.table.channel());
        tracing::info!(table = self.table.as_str(), instance = %self.instance, "outbox relay started");
        loop {
            // Listen before the round, so a row committed during the round is not missed.
            wake.ensure_listening().await;
            let pause = match self.round().await {
                Ok(report) => {
                    db_backoff = self.db_backoff();
                    if report.claimed as i64 >= self.settings.batch_size {
                        Duration::ZERO
                    } else {
                        self.idle_pause().await
                    }
                }
                Err(err) => {
                    let delay = db_backoff.next().unwrap_or(Duration::from_secs(30));
                    tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "outbox round failed");
                    metrics::counter!("outbox_relay_errors_total").increment(1);
                    delay
                }
            };
            if tokio::time::Instant::now() >= purge_due {
                purge_due = tokio::time::Instant::now() + Duration::from_secs(3600);
                if let Err(err) = self.purge().await {
                    tracing::warn!(error = %err, "outbox purge failed");
                }
            }
            if tokio::time::Instant::now() >= gauge_due {
                gauge_due = tokio::time::Instant::now() + Duration::from_secs(5);
                if let Err(err) = self.pending().await {
                    tracing::debug!(error = %err, "counting pending outbox rows failed");
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                woken = wake.wait(pause) => {
                    if woken {
                        metrics::counter!("outbox_relay_wakeups_total", "by" => "notify").increment(1);
                    }
                }
            }
        }
        tracing::info!(instance = %self.instance, "outbox relay stopped");
        Ok(())
    }

    /// How long to sleep when nothing more is due: until the next row written for later
    /// falls due, at most `poll_interval`.
    async fn idle_pause(&self) -> Duration {
        let sql = format!(
            "SELECT EXTRACT(EPOCH FROM (min(GREATEST(not_before, COALESCE(claimed_until, \
                 not_before))) - now()))::float8 \
             FROM {} WHERE sent_at IS NULL",
            self.table.as_str()
        );
        match sqlx::query_scalar::<_, Option<f64>>(&sql)
            .fetch_one(&self.pool)
            .await
        {
            Ok(Some(seconds)) if seconds.is_finite() => {
                Duration::try_from_secs_f64(seconds.max(0.0) + 0.005)
                    .unwrap_or(self.settings.poll_interval)
                    .min(self.settings.poll_interval)
            }
            Ok(_) => self.settings.poll_interval,
            Err(err) => {
                tracing::debug!(error = %err, "reading the next due outbox row failed");
                self.settings.poll_interval
            }
        }
    }

    fn db_backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(30))
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// One round: claim due rows, publish them, record the results.
    pub async fn round(&self) -> Result<RoundReport, DbError> {
        let rows = self.claim().await?;
        let mut report = RoundReport {
            claimed: rows.len(),
            ..RoundReport::default()
        };
        if rows.is_empty() {
            return Ok(report);
        }
        let sends = rows.iter().map(|row| async move {
            let record = to_record(row);
            let span =
                tracing::info_span!("outbox.publish", outbox.id = row.id, topic = %row.topic);
            // The stored context, not the relay's, is the parent: the trace goes on from the
            // request that wrote the row.
            propagation::set_parent_from(
                &span,
                record.headers.iter().filter_map(|(n, v)| {
                    Some((n.as_str(), std::str::from_utf8(v.as_deref()?).ok()?))
                }),
            );
            let result = tracing::Instrument::instrument(self.producer.send(&record), span).await;
            (row, result)
        });
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let results = self
            .while_renewing(&ids, futures::future::join_all(sends))
            .await;
        let mut sent = Vec::new();
        for (row, result) in results {
            match result {
                Ok(_) => sent.push(row.id),
                Err(err) => {
                    report.failed += 1;
                    self.record_failure(row, &err.to_string()).await?;
                }
            }
        }
        report.published = sent.len();
        self.mark_sent(&sent).await?;
        metrics::counter!("outbox_published_total").increment(sent.len() as u64);
        if report.failed > 0 {
            metrics::counter!("outbox_publish_failures_total").increment(report.failed as u64);
        }
        Ok(report)
    }

    /// Runs `work` while renewing the lease of the claimed rows `ids` every third of the
    /// lease, so a slow publish (the broker down, up to the producer's delivery timeout)
    /// keeps its rows, and a relay that dies loses them within one lease.
    async fn while_renewing<T>(&self, ids: &[i64], work: impl Future<Output = T>) -> T {
        let every = (self.settings.lease / 3).max(Duration::from_millis(100));
        let renew = async {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                if let Err(err) = self.renew(ids).await {
                    tracing::warn!(error = %err, "renewing the outbox lease failed");
                }
            }
        };
        tokio::select! {
            result = work => result,
            never = renew => never,
        }
    }

    async fn renew(&self, ids: &[i64]) -> Result<(), DbError> {
        let sql = format!(
            "UPDATE {} SET claimed_until = now() + make_interval(secs => $1) \
             WHERE id = ANY($2) AND claimed_by = $3 AND sent_at IS NULL",
            self.table.as_str()
        );
        sqlx::query(&sql)
            .bind(self.settings.lease.as_secs_f64())
            .bind(ids)
            .bind(self.instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim(&self) -> Result<Vec<ClaimedRow>, DbError> {
        let sql = format!(
            "UPDATE {t} SET claimed_by = $1, claimed_until = now() + make_interval(secs => $2) \
             WHERE id IN ( \
                 SELECT id FROM {t} \
                 WHERE sent_at IS NULL AND not_before <= now() \
                   AND (claimed_until IS NULL OR claimed_until < now()) \
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, topic, message_key, payload, headers, attempts",
            t = self.table.as_str()
        );
        let mut rows: Vec<ClaimedRow> = sqlx::query_as(&sql)
            .bind(self.instance)
            .bind(self.settings.lease.as_secs_f64())
            .bind(self.settings.batch_size)
            .fetch_all(&self.pool)
            .await?;
        rows.sort_by_key(|row| row.id);
        Ok(rows)
    }

    async fn mark_sent(&self, ids: &[i64]) -> Result<(), DbError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "UPDATE {} SET sent_at = now(), claimed_by = NULL, claimed_until = NULL \
             WHERE id = ANY($1) AND claimed_by = $2",
            self.table.as_str()
        );
        sqlx::query(&sql)
            .bind(ids)
            .bind(self.instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_failure(&self, row: &ClaimedRow, error: &str) -> Result<(), DbError> {
        let delay = retry_delay(&self.settings, row.attempts);
        let sql = format!(
            "UPDATE {} SET attempts = attempts + 1, last_error = $1, \
                 not_before = now() + make_interval(secs => $2), \
                 claimed_by = NULL, claimed_until = NULL \
             WHERE id = $3 AND claimed_by = $4",
            self.table.as_str()
        );
        sqlx::query(&sql)
            .bind(error)
            .bind(delay.as_secs_f64())
            .bind(row.id)
            .bind(self.instance)
            .execute(&self.pool)
            .await?;
        tracing::warn!(
            outbox.id = row.id,
            attempts = row.attempts + 1,
            delay_ms = delay.as_millis() as u64,
            error,
            "outbox publish failed"
        );
        Ok(())
    }

    async fn purge(&self) -> Result<u64, DbError> {
        let sql = format!(
            "DELETE FROM {} WHERE sent_at < now() - make_interval(secs => $1)",
            self.table.as_str()
        );
        let done = sqlx::query(&sql)
            .bind(self.settings.retention.as_secs_f64())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Rows not yet sent, due or not: a gauge for dashboards and a handle for tests.
    pub async fn pending(&self) -> Result<i64, DbError> {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE sent_at IS NULL",
            self.table.as_str()
        );
        let count: i64 = sqlx::query_scalar(&sql).fetch_one(&self.pool).await?;
        metrics::gauge!("outbox_pending").set(count as f64);
        Ok(count)
    }
}

/// The relay's wake-up: a `LISTEN` connection on the outbox's channel, and the poll timer.
/// Without a connection (the database down), the relay only polls, and listens again on
/// the next round.
struct Wakeup {
    pool: PgPool,
    channel: String,
    listener: Option<sqlx::postgres::PgListener>,
}

impl Wakeup {
    fn new(pool: PgPool, channel: String) -> Self {
        Self {
            pool,
            channel,
            listener: None,
        }
    }

    async fn ensure_listening(&mut self) {
        if self.listener.is_some() {
            return;
        }
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
            listener.listen(&self.channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match listener.await {
            Ok(listener) => {
                tracing::debug!(channel = %self.channel, "outbox relay listening");
                self.listener = Some(listener);
            }
            Err(err) => {
                tracing::debug!(error = %err, "outbox relay cannot listen; polling only");
            }
        }
    }

    /// Waits up to `pause`; true when a notification ended the wait early. (Several queued
    /// notifications wake the relay several times; a round that finds nothing is one cheap
    /// query.)
    async fn wait(&mut self, pause: Duration) -> bool {
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(pause).await;
            return false;
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => false,
            received = listener.recv() => match received {
                Ok(_) => true,
                Err(err) => {
                    tracing::debug!(error = %err, "outbox relay lost its listener; polling");
                    self.listener = None;
                    false
                }
            },
        }
    }
}

/// The delay before attempt `attempts + 1` of a row: initial × 2^attempts, capped, with up to
/// 20 % jitter so that rows failing together do not come back together.
fn retry_delay(settings: &RelaySettings, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    let base = settings
        .retry_initial_delay
        .saturating_mul(2_u32.saturating_pow(exponent))
        .min(settings.retry_max_delay);
    let jitter = base.mul_f64(rand::random::<f64>() * 0.2);
    base + jitter
}

fn to_record(row: &ClaimedRow) -> OutgoingRecord {
    let headers = serde_json::from_value::<Vec<StoredHeader>>(row.headers.clone())
        .unwrap_or_else(|err| {
            tracing::warn!(outbox.id = row.id, error = %err, "unreadable outbox headers dropped");
            Vec::new()
        })
        .into_iter()
        .map(|h| (h.name, Some(h.value.into_bytes())))
        .collect();
    OutgoingRecord {
        topic: row.topic.clone(),
        key: row.message_key.clone(),
        payload: Some(row.payload.clone()),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers_only() {
        assert!(OutboxTable::new("label.outbox").is_ok());
        assert!(OutboxTable::new("outbox").is_ok());
        for bad in ["", "a.b.c", "Label.outbox", "x; drop table y", "1abc", "a."] {
            assert!(OutboxTable::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn retry_delay_grows_and_is_capped() {
        let settings = RelaySettings {
            retry_initial_delay: Duration::from_secs(1),
            retry_max_delay: Duration::from_secs(600),
            ..RelaySettings::default()
        };
        let first = retry_delay(&settings, 0);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1200));
        let third = retry_delay(&settings, 2);
        assert!(third >= Duration::from_secs(4) && third <= Duration::from_millis(4800));
        let late = retry_delay(&settings, 40);
        assert!(late >= Duration::from_secs(600) && late <= Duration::from_secs(720));
    }
}
