//! Steps 2 and 3 of the benchmark, warm-up vs SELECT and memory: the orders table grown
//! with SQL copies of the ingested orders; the service's RSS with the warm-up disabled and
//! after warming them all; the warm-up's time against the same query in `psql`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::procfs::{cpu_snapshot, cpu_text, rss_of};
use super::prom::prom_sum;
use super::report::{MemoryResult, WarmResult, mib, thousands};
use super::{Bench, Sizes, count_orders, exec, secs};
use crate::support::{note, step};

impl Bench {
    /// Grows the database, measures the RSS of an empty and of a warmed service, and the
    /// bare SELECT. Returns the warmed service's pid and address, still running.
    pub(super) async fn warm_up(
        &mut self,
        sizes: Sizes,
    ) -> Result<(WarmResult, MemoryResult, (u32, String))> {
        let target = sizes.warmup;
        let have = count_orders(&self.db).await?;
        if have == 0 || have > target {
            bail!("cannot grow {have} orders to {target}");
        }
        let missing = target - have;
        let rounds = missing.div_ceil(have);
        step(format!(
            "warm-up: growing orders.orders from {} to {} rows with SQL copies of the ingested orders",
            thousands(have),
            thousands(target)
        ));
        // Each copy gets its own id (`<uid>_c<n>`), written into its JSON too, and the hash
        // of that JSON; only the orders table matters for the warm-up.
        let grow = format!(
            "INSERT INTO orders.orders (order_uid, track_number, entry, locale, internal_signature, \
             customer_id, delivery_service, shardkey, sm_id, date_created, oof_shard, raw_payload, \
             canonical_json, payload_sha256) \
             SELECT uid, track_number, entry, locale, internal_signature, customer_id, \
             delivery_service, shardkey, sm_id, date_created, oof_shard, \
             jsonb_set(raw_payload, '{{order_uid}}', to_jsonb(uid)), json, sha256(json) \
             FROM (SELECT o.*, o.order_uid || '_c' || n AS uid, \
             convert_to(replace(convert_from(o.canonical_json, 'UTF8'), \
             '\"order_uid\":\"' || o.order_uid || '\"', \
             '\"order_uid\":\"' || o.order_uid || '_c' || n || '\"'), 'UTF8') AS json \
             FROM orders.orders o CROSS JOIN generate_series(1, {rounds}) AS n \
             ORDER BY n, o.order_uid LIMIT {missing}) AS copies"
        );
        let grow_started = Instant::now();
        exec(&self.db, super::BENCH_DB, &grow).await?;
        let grow_seconds = grow_started.elapsed().as_secs_f64();
        let count = count_orders(&self.db).await?;
        if count != target {
            bail!("orders.orders holds {count} rows after growing, expected {target}");
        }
        let broken: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT order_uid, canonical_json FROM orders.orders \
             ORDER BY date_created DESC, order_uid DESC LIMIT 1000) AS newest \
             WHERE position(convert_to('\"order_uid\":\"' || order_uid || '\"', 'UTF8') \
             IN canonical_json) = 0",
        )
        .fetch_one(&self.db)
        .await?;
        if broken != 0 {
            bail!("{broken} of the 1,000 newest orders do not carry their own id in their JSON");
        }
        note(format!(
            "{} rows after {grow_seconds:.1} s",
            thousands(count)
        ));
        // A checkpoint now, so that writing the grown table out does not land inside the
        // measurements below.
        exec(&self.db, super::BENCH_DB, "VACUUM ANALYZE").await?;
        exec(&self.db, super::BENCH_DB, "CHECKPOINT").await?;
        let mean_json: f64 =
            sqlx::query_scalar("SELECT avg(length(canonical_json))::float8 FROM orders.orders")
                .fetch_one(&self.db)
                .await
                .context("mean JSON size")?;
        note(format!("mean canonical JSON: {mean_json:.0} bytes"));

        step("memory: orders-service with the warm-up disabled");
        let started = Instant::now();
        let (pid, addr) = self.start_service("empty", Some(0))?;
        let ready = self.wait_ready(pid, &addr, started).await?;
        let rss_empty = rss_of(pid)?;
        note(format!(
            "ready after {}; VmRSS {}",
            secs(ready),
            mib(rss_empty)
        ));
        self.stop_pid(pid);

        step(format!(
            "warm-up: orders-service with ORDERS__CACHE__WARMUP_LIMIT={target}"
        ));
        let cpu_before = cpu_snapshot();
        let started = Instant::now();
        let (pid, addr) = self.start_service("warm", Some(target))?;
        let ready = self.wait_ready(pid, &addr, started).await?;
        let rss_warm = rss_of(pid)?;
        let cpu = self.cpu_since(&cpu_before, "bench children");
        let metrics = self.metrics(&addr).await?;
        let seconds = prom_sum(&metrics, "orders_cache_warmup_seconds", &[])
            .context("/metrics has no orders_cache_warmup_seconds")?;
        let orders = prom_sum(&metrics, "orders_cache_warmup_orders", &[])
            .context("/metrics has no orders_cache_warmup_orders")?;
        note(format!(
            "ready after {}; orders_cache_warmup_seconds {seconds:.3}, orders_cache_warmup_orders {orders}; VmRSS {}",
            secs(ready),
            mib(rss_warm)
        ));
        note(format!(
            "CPU from start to ready: {}",
            cpu_text(&cpu, ready.as_secs_f64())
        ));
        // The cache's own accounting (moka's weighted size), exported every 5 s.
        let mut cache_entries = None;
        let mut cache_bytes = None;
        let waited = Instant::now();
        while waited.elapsed() < Duration::from_secs(12) {
            let text = self.metrics(&addr).await?;
            cache_entries = prom_sum(&text, "orders_cache_entries", &[]);
            cache_bytes = prom_sum(&text, "orders_cache_bytes", &[]);
            if cache_entries.is_some_and(|e| e >= orders) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        step("warm-up reference: the warm-up's query in psql, output to /dev/null, best of 3");
        let select = format!(
            "SELECT order_uid, canonical_json, payload_sha256 FROM orders.orders \
             ORDER BY date_created DESC, order_uid DESC LIMIT {target}"
        );
        let mut select_runs = Vec::new();
        let mut select_cpu = Vec::new();
        for round in 1..=3 {
            let mut cmd = self.psql(&self.db_url);
            cmd.args(["-c", &select]);
            if round == 1 {
                note(format!("$ {} > /dev/null", self.shown(cmd.as_std())));
            }
            let before = cpu_snapshot();
            let ran = self.run_psql(&mut cmd, false).await?;
            let secs = ran.elapsed.as_secs_f64();
            let cpu = self.cpu_since(&before, "psql");
            note(format!("run {round}: {secs:.2} s"));
            if select_runs.iter().all(|best: &f64| secs < *best) {
                select_cpu = cpu;
            }
            select_runs.push(secs);
        }
        Ok((
            WarmResult {
                seconds,
                orders,
                ready_seconds: ready.as_secs_f64(),
                cpu,
                select_runs,
                select_cpu,
                grow_seconds,
            },
            MemoryResult {
                rss_empty,
                rss_warm,
                orders,
                mean_json,
                cache_bytes,
                cache_entries,
            },
            (pid, addr),
        ))
    }
}
