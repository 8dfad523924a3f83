//! Step 1 of the benchmark, ingest vs COPY: the orders are published before the service
//! starts, then timed from its consumer's group join until all are stored; against
//! `psql`'s `\copy` of the same rows into a fresh database with the same schema.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Deserialize;
use sqlx::{Connection as _, PgConnection};

use super::procfs::{CpuSnapshot, busy_share, cpu_delta, cpu_snapshot, cpu_text, machine_ticks};
use super::prom::prom_sum;
use super::report::{IngestResult, thousands};
use super::{
    Bench, COPY_DB, INGEST_TIMEOUT, POLL, SEED, Sizes, TABLES, count_orders, exec, run_bounded,
    secs,
};
use crate::support::{note, rel, step, workspace_root};

/// The summary `orders-producer --json` prints (the fields the benchmark reads).
#[derive(Debug, Deserialize)]
struct ProducerSummary {
    sent: u64,
    failed: u64,
    seconds: Option<f64>,
    rate: Option<f64>,
}

/// One connection polling `SELECT count(*) FROM orders.orders`, so that the polls do not
/// open a connection (and start a backend) every 200 ms on 2 cores.
struct Poller {
    conn: PgConnection,
    table_exists: bool,
    /// The PostgreSQL backend serving the polls, to tell its CPU apart.
    backend_pid: u32,
}

impl Poller {
    async fn start(bench: &Bench) -> Result<Self> {
        let mut conn = PgConnection::connect_with(&bench.db_options)
            .await
            .context("connecting to the bench database")?;
        let backend_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
        note(format!(
            "one connection polls `SELECT count(*) FROM orders.orders` (backend pid {backend_pid})"
        ));
        Ok(Self {
            conn,
            table_exists: false,
            backend_pid: u32::try_from(backend_pid)?,
        })
    }

    /// The number of orders; 0 while the service has not created the table yet.
    async fn count(&mut self) -> Result<u64> {
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            if !self.table_exists {
                let exists: bool =
                    sqlx::query_scalar("SELECT to_regclass('orders.orders') IS NOT NULL")
                        .fetch_one(&mut self.conn)
                        .await?;
                if !exists {
                    return Ok(0);
                }
                self.table_exists = true;
            }
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders.orders")
                .fetch_one(&mut self.conn)
                .await
        })
        .await
        .map_err(|_| anyhow!("the count(*) poll gave no answer within 30 s"))?
        .context("polling count(*)")?;
        Ok(u64::try_from(answer)?)
    }
}

impl Bench {
    pub(super) async fn ingest(&mut self, sizes: Sizes) -> Result<IngestResult> {
        let n = sizes.ingest;
        step(format!(
            "ingest: publishing {} orders before the service starts",
            thousands(n)
        ));
        let mut producer = tokio::process::Command::new(&self.args.producer);
        producer
            .args(["--brokers", &self.brokers, "--topic", "orders"])
            .args(["--count", &n.to_string(), "--seed", &SEED.to_string()])
            .args(["--json", "--rate", "0"])
            .current_dir(workspace_root());
        let shown = self.shown(producer.as_std());
        note(format!("$ {shown}"));
        let ran = run_bounded(&mut producer, &shown, Duration::from_secs(10 * 60), true).await?;
        if !ran.status.success() {
            bail!(
                "orders-producer failed ({}): {}",
                ran.status,
                format!("{}\n{}", ran.stdout.trim(), ran.stderr.trim()).trim()
            );
        }
        let line = ran
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with('{'))
            .ok_or_else(|| {
                anyhow!(
                    "orders-producer printed no JSON summary: {}",
                    ran.stdout.trim()
                )
            })?;
        let summary: ProducerSummary = serde_json::from_str(line)
            .with_context(|| format!("reading the producer's summary {line}"))?;
        if summary.sent != n || summary.failed > 0 {
            bail!(
                "orders-producer sent {} of {n} ({} failed): {line}",
                summary.sent,
                summary.failed
            );
        }
        let producer_text = format!(
            "{} orders published in {:.1} s ({} msg/s)",
            thousands(n),
            summary.seconds.unwrap_or(0.0),
            thousands(summary.rate.unwrap_or(0.0).round() as u64)
        );
        note(&producer_text);

        let mut poller = Poller::start(self).await?;
        let cpu_before = cpu_snapshot();
        let busy_before = machine_ticks();
        let started = Instant::now();
        let (pid, addr) = self.start_service("ingest", None)?;
        step(format!(
            "ingest: waiting until orders.orders holds {} rows (poll every {} ms, at most {} min)",
            thousands(n),
            POLL.as_millis(),
            INGEST_TIMEOUT.as_secs() / 60
        ));
        let mut first_row = None;
        let mut assigned = None;
        let mut last_note = Instant::now();
        let seconds = loop {
            let count = poller.count().await?;
            if count > 0 && first_row.is_none() {
                first_row = Some(started.elapsed());
            }
            // The group join, seen in the consumer's rebalance counter (polled only until
            // it shows up).
            if assigned.is_none()
                && let Ok(text) = self.metrics(&addr).await
                && prom_sum(
                    &text,
                    "kafka_consumer_rebalances_total",
                    &[("kind", "assign")],
                )
                .is_some_and(|v| v > 0.0)
            {
                assigned = Some(started.elapsed().as_secs_f64());
                note(format!(
                    "partitions assigned after {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
            }
            if count >= n {
                break started.elapsed().as_secs_f64();
            }
            self.check_alive(pid)?;
            if started.elapsed() > INGEST_TIMEOUT {
                bail!(
                    "only {} of {} orders stored after {} min",
                    thousands(count),
                    thousands(n),
                    INGEST_TIMEOUT.as_secs() / 60
                );
            }
            if last_note.elapsed() >= Duration::from_secs(5) {
                note(format!(
                    "{} / {} after {}",
                    thousands(count),
                    thousands(n),
                    secs(started.elapsed())
                ));
                last_note = Instant::now();
            }
            tokio::time::sleep(POLL).await;
        };
        let cpu_after = cpu_snapshot();
        let cpu = cpu_delta(
            &cpu_before,
            &cpu_after,
            self.clk_tck,
            std::process::id(),
            "bench children",
        );
        let busy = busy_share(busy_before, machine_ticks());
        let ticks = |snapshot: &CpuSnapshot| snapshot.get(&poller.backend_pid).map_or(0, |p| p.own);
        let poll_backend_seconds =
            ticks(&cpu_after).saturating_sub(ticks(&cpu_before)) as f64 / self.clk_tck;
        let _ = poller.conn.close().await;
        note(format!(
            "the polling backend (count(*) every {} ms) used {poll_backend_seconds:.1} s of PostgreSQL CPU",
            POLL.as_millis()
        ));
        let first_row_seconds = first_row.map_or(seconds, |d| d.as_secs_f64());
        note(format!(
            "{} orders stored in {seconds:.2} s ({} orders/s); first row after {first_row_seconds:.2} s",
            thousands(n),
            thousands((n as f64 / seconds).round() as u64)
        ));
        let metrics = self.metrics(&addr).await?;
        let stored = prom_sum(
            &metrics,
            "kafka_consumer_messages_total",
            &[("outcome", "stored")],
        );
        let batches = prom_sum(&metrics, "kafka_consumer_batch_size_count", &[]);
        let batch_orders = prom_sum(&metrics, "kafka_consumer_batch_size_sum", &[]);
        let handler_seconds = prom_sum(&metrics, "kafka_consumer_batch_duration_seconds_sum", &[]);
        if let (Some(batches), Some(orders), Some(busy)) = (batches, batch_orders, handler_seconds)
            && batches > 0.0
        {
            note(format!(
                "{} batches of {:.0} messages on average; {busy:.1} s spent processing them",
                thousands(batches as u64),
                orders / batches
            ));
        }
        let other_outcomes = ["duplicate", "conflict", "invalid"]
            .iter()
            .filter_map(|outcome| {
                prom_sum(
                    &metrics,
                    "kafka_consumer_messages_total",
                    &[("outcome", outcome)],
                )
                .filter(|v| *v > 0.0)
                .map(|v| format!("{outcome} {v}"))
            })
            .collect::<Vec<_>>()
            .join(", ");
        note(format!(
            "kafka_consumer_messages_total{{outcome=\"stored\"}} = {}{}",
            stored.map_or_else(|| "absent".to_owned(), |v| v.to_string()),
            if other_outcomes.is_empty() {
                String::new()
            } else {
                format!("; also {other_outcomes}")
            }
        ));
        note(format!(
            "CPU during the ingest: {}",
            cpu_text(&cpu, seconds)
        ));
        self.stop_pid(pid);

        let (copy_seconds, copy_cpu, copy_bytes) = self.copy_ceiling(n).await?;
        Ok(IngestResult {
            seconds,
            first_row_seconds,
            assigned_seconds: assigned,
            batches,
            batch_orders,
            handler_seconds,
            poll_backend_seconds,
            producer: producer_text,
            stored,
            other_outcomes,
            cpu,
            busy,
            copy_seconds,
            copy_cpu,
            copy_bytes,
        })
    }

    /// Exports the four tables in binary COPY format and times loading them into a fresh
    /// database with the same schema. Both ends are `psql`'s `\copy` (the reference tool,
    /// whose CPU the report shows apart); the schema is made with sqlx.
    async fn copy_ceiling(&mut self, n: u64) -> Result<(f64, super::procfs::CpuUse, u64)> {
        let copy_dir = self.dir.join("copy");
        fs::create_dir_all(&copy_dir)?;
        step(format!(
            "COPY ceiling: exporting the four tables to {}",
            rel(&copy_dir)
        ));
        let file = |table: &str| copy_dir.join(format!("{table}.bin"));
        for table in TABLES {
            let mut cmd = self.psql(&self.db_url);
            cmd.arg("-c").arg(format!(
                "\\copy orders.{table} TO {} (FORMAT binary)",
                sql_literal(&file(table).to_string_lossy())
            ));
            note(format!("$ {}", self.shown(cmd.as_std())));
            self.run_psql(&mut cmd, true).await?;
        }
        let bytes: u64 = TABLES
            .iter()
            .filter_map(|t| fs::metadata(file(t)).ok())
            .map(|m| m.len())
            .sum();
        note(format!("{} MiB exported", bytes / (1024 * 1024)));

        self.fresh_database(COPY_DB).await?;
        exec(&self.copy_db, COPY_DB, "CREATE SCHEMA orders").await?;
        let migrations_dir = workspace_root().join("migrations").join("orders");
        let mut migrations: Vec<PathBuf> = fs::read_dir(&migrations_dir)
            .with_context(|| format!("reading {}", migrations_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        migrations.sort();
        for path in &migrations {
            let sql =
                fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            note(format!("[{COPY_DB}] {}", rel(path)));
            sqlx::raw_sql(&sql)
                .execute(&self.copy_db)
                .await
                .with_context(|| format!("applying {}", rel(path)))?;
        }

        step("COPY ceiling: loading the four files (orders first, then children), timed");
        let mut load = self.psql(&self.copy_url);
        for table in TABLES {
            load.arg("-c").arg(format!(
                "\\copy orders.{table} FROM {} (FORMAT binary)",
                sql_literal(&file(table).to_string_lossy())
            ));
        }
        note(format!("$ {}", self.shown(load.as_std())));
        let cpu_before = cpu_snapshot();
        let ran = self.run_psql(&mut load, true).await?;
        let cpu = self.cpu_since(&cpu_before, "psql");
        let seconds = ran.elapsed.as_secs_f64();
        let loaded = count_orders(&self.copy_db).await?;
        if loaded != n {
            bail!("the COPY database holds {loaded} orders, expected {n}");
        }
        note(format!(
            "{} orders (with deliveries, payments, items) in {seconds:.2} s ({} orders/s)",
            thousands(n),
            thousands((n as f64 / seconds).round() as u64)
        ));
        note(format!("CPU during the COPY: {}", cpu_text(&cpu, seconds)));
        let _ = fs::remove_dir_all(&copy_dir);
        self.copy_db.close().await;
        exec(
            &self.admin,
            "postgres",
            &format!("DROP DATABASE IF EXISTS {COPY_DB} WITH (FORCE)"),
        )
        .await?;
        Ok((seconds, cpu, bytes))
    }
}

/// `text` as an SQL string literal.
fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_producer_summary() {
        let line = r#"{"topic":"orders","sent":200000,"valid":200000,"invalid":0,"duplicates":0,"conflicts":0,"failed":0,"seconds":3.5,"rate":57142.8,"seed":42,"base_time":"2026-11-21T00:00:00Z","file":null}"#;
        let summary: ProducerSummary = serde_json::from_str(line).expect("summary");
        assert_eq!((summary.sent, summary.failed), (200_000, 0));
        assert_eq!(summary.seconds, Some(3.5));
        assert_eq!(summary.rate, Some(57_142.8));
        let no_rate: ProducerSummary =
            serde_json::from_str(r#"{"sent":0,"failed":0,"seconds":0.0,"rate":null}"#)
                .expect("summary without a rate");
        assert_eq!(no_rate.rate, None);
        assert!(serde_json::from_str::<ProducerSummary>(r#"{"failed":0}"#).is_err());
    }

    #[test]
    fn quotes_sql_literals() {
        assert_eq!(sql_literal("/tmp/a.bin"), "'/tmp/a.bin'");
        assert_eq!(sql_literal("it's"), "'it''s'");
    }
}
