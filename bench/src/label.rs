//! `bench label`: the label-service's release binary against a private broker and a fresh
//! database, measured from the outside as its users see it:
//!
//! 1. `GET /me` at a fixed concurrency: requests/s, latency, the service's CPU per request;
//! 2. `POST /requests/sign` at the same concurrency, each by another non-member; then how
//!    fast the deferred steps bring them all to `On approval`;
//! 3. the time from `POST /requests/sign` to `On approval` at a steady 100 requests/s
//!    (target: p99 ≤ 50 ms);
//! 4. recovery: sign requests made while the broker is stopped (their outbox rows are
//!    claimed, their publish hangs), the service killed with SIGKILL, the broker resumed,
//!    the service restarted: the time until every one of them is `On approval` (target:
//!    ≤ 5 s after the restart).
//!
//! Users are inserted with SQL (one argon2id hash shared by all) and their tokens signed
//! with the service's secret, so that password hashing, which is slow on purpose, does not
//! dominate what is measured.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use argon2::PasswordHasher as _;
use chrono::{DateTime, Utc};
use label_service::adapters::http::{AuthSettings, Tokens};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::support::{
    Proc, Stack, clock_ticks, cpu_model, cpu_seconds, free_port, note, quantile, start_broker,
    step, with_database, workspace_root, write_section,
};

const BENCH_DB: &str = "label_bench";
const SECRET: &str = "label-bench-secret-0123456789abcdef0123456789abcdef0123456789";
const ADMIN_EMAIL: &str = "admin@bench.test";
const ADMIN_PASSWORD: &str = "bench-admin-password";
const TOPICS: &[(&str, u32)] = &[
    ("label.sign-requests", 3),
    ("label.publish-requests", 3),
    ("label.dead-letter", 1),
];
/// Concurrent clients of the throughput runs.
const CONCURRENCY: usize = 32;
const LATENCY_TARGET_MS: f64 = 50.0;
const RECOVERY_TARGET_S: f64 = 5.0;

/// Flags of `bench label`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A short smoke run; its results go to target/bench/label/label-quick.md, never to the docs.
    #[arg(long)]
    quick: bool,
    /// The label-service binary to measure (a release build).
    #[arg(long)]
    service: PathBuf,
    /// The broker and PostgreSQL (a database `label_bench` is created there and dropped
    /// afterwards).
    #[command(flatten)]
    stack: Stack,
}

#[derive(Debug, Clone, Copy)]
struct Sizes {
    me_seconds: u64,
    sign_count: usize,
    latency_count: usize,
    latency_rate: f64,
    crash_count: usize,
}

const FULL: Sizes = Sizes {
    me_seconds: 10,
    sign_count: 3000,
    latency_count: 1000,
    latency_rate: 100.0,
    crash_count: 200,
};

const QUICK: Sizes = Sizes {
    me_seconds: 3,
    sign_count: 400,
    latency_count: 200,
    latency_rate: 100.0,
    crash_count: 50,
};

/// The service under test.
struct Service {
    proc: Proc,
    addr: String,
}

/// Everything the phases share.
struct Bench {
    args: Args,
    dir: PathBuf,
    db_url: String,
    pool: PgPool,
    broker: Proc,
    brokers: String,
    http: reqwest::Client,
    tokens: Tokens,
    ticks: f64,
    /// Non-member users not used yet, in id order.
    users: Vec<i64>,
    next_user: usize,
}

/// One throughput run.
#[derive(Debug, Clone, Copy)]
struct Throughput {
    requests: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_seconds: f64,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.requests.max(1) as f64
    }
}

/// The latency run.
#[derive(Debug, Clone)]
struct Latency {
    count: usize,
    rate: f64,
    http_p50_ms: f64,
    http_p99_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Outbox row written (the request's commit) to published and marked sent.
    relay_p50_ms: f64,
    relay_p99_ms: f64,
    /// Marked sent to the step's transaction moving the request on approval.
    consumer_p50_ms: f64,
    consumer_p99_ms: f64,
}

/// The recovery run.
#[derive(Debug, Clone, Copy)]
struct Recovery {
    count: usize,
    claimed_at_kill: i64,
    ready_s: f64,
    /// When the restarted consumer was given its partitions (the group join).
    assigned_s: Option<f64>,
    done_s: f64,
}

pub async fn run(args: Args) -> Result<()> {
    let sizes = if args.quick { QUICK } else { FULL };
    let started = Instant::now();
    let dir = workspace_root().join("target").join("bench").join("label");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    step(format!("fresh database {BENCH_DB}"));
    let db_url = with_database(&args.stack.database_url, BENCH_DB)?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.stack.database_url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {BENCH_DB}"))
        .execute(&admin)
        .await?;

    step("private broker");
    let (broker, brokers) = start_broker(&args.stack.nisshi, &dir, TOPICS).await?;
    note(format!("on {brokers}"));

    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&db_url)
        .await
        .context("connecting to the bench database")?;
    let tokens = Tokens::new(&AuthSettings {
        jwt_secret: SecretString::from(SECRET),
        ..AuthSettings::default()
    });
    let mut bench = Bench {
        args,
        dir,
        db_url,
        pool,
        broker,
        brokers,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(CONCURRENCY * 2)
            .timeout(Duration::from_secs(30))
            .build()?,
        tokens,
        ticks: clock_ticks(),
        users: Vec::new(),
        next_user: 0,
    };
    // On Ctrl-C or SIGTERM the measurement is dropped (the services it started are killed
    // with it) and the clean-up below still runs.
    let result = tokio::select! {
        result = bench.run(sizes) => result,
        () = crate::interrupted() => Err(anyhow::anyhow!("interrupted")),
    };
    step("clean-up");
    bench.pool.close().await;
    let Bench { broker, .. } = bench;
    broker.stop(Duration::from_secs(5));
    sqlx::query(&format!("DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    result?;
    step(format!(
        "label benchmark finished in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

impl Bench {
    async fn run(&mut self, sizes: Sizes) -> Result<()> {
        let service = self.start_service("label-service-1.log").await?;
        self.set_up(&service, sizes).await?;

        step(format!(
            "GET /me: {CONCURRENCY} clients for {} s (after 1 s of warm-up)",
            sizes.me_seconds
        ));
        let me = self.me_throughput(&service, sizes.me_seconds).await?;
        report_throughput(&me);

        step(format!(
            "POST /requests/sign: {} requests by {CONCURRENCY} clients, each by another non-member",
            sizes.sign_count
        ));
        let (sign, ids) = self.sign_throughput(&service, sizes.sign_count).await?;
        report_throughput(&sign);
        let drained = self
            .until_on_approval(&ids, Duration::from_secs(600))
            .await?;
        note(format!(
            "all {} on approval {:.1} s after the last answer ({:.0} deferred steps/s)",
            ids.len(),
            drained.as_secs_f64(),
            ids.len() as f64 / (sign.seconds + drained.as_secs_f64())
        ));
        let steps_per_second = ids.len() as f64 / (sign.seconds + drained.as_secs_f64());

        step(format!(
            "POST /requests/sign -> On approval: {} requests at {} requests/s",
            sizes.latency_count, sizes.latency_rate
        ));
        let latency = self
            .latency(&service, sizes.latency_count, sizes.latency_rate)
            .await?;
        note(format!(
            "HTTP answer p50 {:.1} ms, p99 {:.1} ms; on approval p50 {:.1} ms, p90 {:.1} ms, \
             p99 {:.1} ms, max {:.1} ms",
            latency.http_p50_ms,
            latency.http_p99_ms,
            latency.p50_ms,
            latency.p90_ms,
            latency.p99_ms,
            latency.max_ms
        ));
        note(format!(
            "of which: commit -> published p50 {:.1} ms, p99 {:.1} ms; published -> on \
             approval p50 {:.1} ms, p99 {:.1} ms",
            latency.relay_p50_ms,
            latency.relay_p99_ms,
            latency.consumer_p50_ms,
            latency.consumer_p99_ms
        ));

        step(format!(
            "recovery: {} sign requests while the broker is stopped, SIGKILL, restart",
            sizes.crash_count
        ));
        let (recovery, service) = self.recovery(service, sizes.crash_count).await?;
        note(format!(
            "{} rows claimed at the kill; after the restart: ready {:.1} s, partitions assigned \
             {}, every request on approval {:.1} s",
            recovery.claimed_at_kill,
            recovery.ready_s,
            recovery
                .assigned_s
                .map_or_else(|| "?".to_owned(), |s| format!("{s:.1} s")),
            recovery.done_s
        ));
        service.proc.stop(Duration::from_secs(30));

        let section = results(
            sizes,
            &me,
            &sign,
            steps_per_second,
            &latency,
            &recovery,
            &self.machine(),
        );
        println!("\n{section}");
        let path = if self.args.quick {
            self.dir.join("label-quick.md")
        } else {
            workspace_root().join("docs").join("benchmarks.md")
        };
        write_section(&path, "label-results", "## label-service results", &section)?;
        step(format!("results written to {}", path.display()));
        Ok(())
    }

    async fn start_service(&self, log: &str) -> Result<Service> {
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(&self.args.service);
        cmd.current_dir(workspace_root())
            .env("APP_ENV", "production")
            .env("LABEL__DATABASE__URL", &self.db_url)
            .env("LABEL__KAFKA__BROKERS", &self.brokers)
            // The test broker forms a group in half the session timeout (see the notes on
            // it); real Kafka does not need these.
            .env("LABEL__KAFKA__SESSION_TIMEOUT", "6s")
            .env("LABEL__KAFKA__HEARTBEAT_INTERVAL", "500ms")
            // One instance, restarted in the recovery run: static membership gets its
            // partitions back without a rebalance where the broker supports it.
            .env("LABEL__CONSUMER__GROUP_INSTANCE_ID", "label-bench-1")
            .env("LABEL__HTTP__BIND", &addr)
            .env("LABEL__AUTH__JWT_SECRET", SECRET)
            .env("LABEL__ADMIN__EMAIL", ADMIN_EMAIL)
            .env("LABEL__ADMIN__PASSWORD", ADMIN_PASSWORD)
            .env("LABEL__TELEMETRY__LOG_FORMAT", "json")
            .env("LABEL__TELEMETRY__LOG_FILTER", "warn");
        let proc = Proc::spawn("label-service", cmd, &self.dir.join(log))?;
        let service = Service { proc, addr };
        self.wait_ready(&service, Duration::from_secs(120)).await?;
        Ok(service)
    }

    async fn wait_ready(&self, service: &Service, limit: Duration) -> Result<Duration> {
        let started = Instant::now();
        let url = format!("http://{}/readyz", service.addr);
        while started.elapsed() < limit {
            if let Ok(answer) = self.http.get(&url).send().await
                && answer.status().is_success()
            {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "label-service not ready within {limit:?}; see {}",
            self.dir.display()
        )
    }

    /// One manager (appointed by the admin through the API) and the non-members the phases
    /// use.
    async fn set_up(&mut self, service: &Service, sizes: Sizes) -> Result<()> {
        step("set-up: the admin appoints a manager; non-members inserted");
        let hash = argon2::Argon2::default()
            .hash_password(
                b"bench-user-password",
                &argon2::password_hash::SaltString::generate(
                    &mut argon2::password_hash::rand_core::OsRng,
                ),
            )
            .map_err(|err| anyhow::anyhow!("hashing: {err}"))?
            .to_string();
        let login: Value = self
            .http
            .post(format!("http://{}/api/v1/auth/login", service.addr))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let admin_token = login["token"]
            .as_str()
            .context("no token in the login answer")?
            .to_owned();
        let manager: i64 = sqlx::query_scalar(
            "INSERT INTO label.users (name, email, password_hash) \
             VALUES ('Bench Manager', 'manager@bench.test', $1) RETURNING id",
        )
        .bind(&hash)
        .fetch_one(&self.pool)
        .await?;
        self.http
            .post(format!("http://{}/api/v1/managers", service.addr))
            .bearer_auth(&admin_token)
            .json(&json!({"user_ids": [manager]}))
            .send()
            .await?
            .error_for_status()
            .context("appointing the manager")?;
        let needed = 1 + sizes.sign_count + sizes.latency_count + sizes.crash_count;
        self.users = sqlx::query_scalar(
            "INSERT INTO label.users (name, email, password_hash) \
             SELECT 'Bench User ' || g, 'user' || g || '@bench.test', $1 \
             FROM generate_series(1, $2) AS g RETURNING id",
        )
        .bind(&hash)
        .bind(i64::try_from(needed)?)
        .fetch_all(&self.pool)
        .await?;
        self.users.sort_unstable();
        note(format!(
            "{} non-members, manager user {manager}",
            self.users.len()
        ));
        Ok(())
    }

    fn take_users(&mut self, n: usize) -> Result<Vec<i64>> {
        ensure!(self.next_user + n <= self.users.len(), "not enough users");
        let taken = self.users[self.next_user..self.next_user + n].to_vec();
        self.next_user += n;
        Ok(taken)
    }

    fn token(&self, user: i64) -> Result<String> {
        self.tokens
            .issue(label_service::domain::UserId(user), Utc::now())
            .map_err(|err| anyhow::anyhow!("signing a token: {err}"))
    }

    async fn me_throughput(&mut self, service: &Service, seconds: u64) -> Result<Throughput> {
        let user = self.take_users(1)?[0];
        let token = Arc::new(self.token(user)?);
        let url = Arc::new(format!("http://{}/api/v1/me", service.addr));
        let run = |duration: Duration| {
            let token = Arc::clone(&token);
            let url = Arc::clone(&url);
            let http = self.http.clone();
            async move {
                let deadline = Instant::now() + duration;
                let clients = (0..CONCURRENCY).map(|_| {
                    let (http, token, url) = (http.clone(), Arc::clone(&token), Arc::clone(&url));
                    tokio::spawn(async move {
                        let mut times = Vec::new();
                        while Instant::now() < deadline {
                            let sent = Instant::now();
                            let answer = http
                                .get(url.as_str())
                                .bearer_auth(token.as_str())
                                .send()
                                .await?;
                            ensure!(
                                answer.status().as_u16() == 200,
                                "GET /me answered {}",
                                answer.status()
                            );
                            answer.bytes().await?;
                            times.push(sent.elapsed().as_secs_f64() * 1e3);
                        }
                        Ok::<_, anyhow::Error>(times)
                    })
                });
                let mut all = Vec::new();
                for client in futures::future::join_all(clients).await {
                    all.extend(client??);
                }
                Ok::<_, anyhow::Error>(all)
            }
        };
        run(Duration::from_secs(1)).await?;
        let cpu_before = cpu_seconds(service.proc.pid(), self.ticks)?;
        let started = Instant::now();
        let mut times = run(Duration::from_secs(seconds)).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(service.proc.pid(), self.ticks)? - cpu_before;
        times.sort_by(f64::total_cmp);
        Ok(Throughput {
            requests: times.len(),
            seconds: elapsed,
            p50_ms: quantile(&times, 0.5),
            p99_ms: quantile(&times, 0.99),
            cpu_seconds: cpu,
        })
    }

    async fn sign_throughput(
        &mut self,
        service: &Service,
        count: usize,
    ) -> Result<(Throughput, Vec<i64>)> {
        let users = self.take_users(count)?;
        let tokens: Arc<Vec<String>> = Arc::new(
            users
                .iter()
                .map(|user| self.token(*user))
                .collect::<Result<_>>()?,
        );
        let next = Arc::new(AtomicUsize::new(0));
        let url = Arc::new(format!("http://{}/api/v1/requests/sign", service.addr));
        let cpu_before = cpu_seconds(service.proc.pid(), self.ticks)?;
        let started = Instant::now();
        let clients = (0..CONCURRENCY).map(|_| {
            let (http, tokens, next, url) = (
                self.http.clone(),
                Arc::clone(&tokens),
                Arc::clone(&next),
                Arc::clone(&url),
            );
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(token) = tokens.get(i) else { break };
                    let sent = Instant::now();
                    let id = sign(&http, &url, token, &format!("tp{i}")).await?;
                    done.push((sent.elapsed().as_secs_f64() * 1e3, id));
                }
                Ok::<_, anyhow::Error>(done)
            })
        });
        let mut times = Vec::new();
        let mut ids = Vec::new();
        for client in futures::future::join_all(clients).await {
            for (ms, id) in client?? {
                times.push(ms);
                ids.push(id);
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(service.proc.pid(), self.ticks)? - cpu_before;
        times.sort_by(f64::total_cmp);
        Ok((
            Throughput {
                requests: times.len(),
                seconds: elapsed,
                p50_ms: quantile(&times, 0.5),
                p99_ms: quantile(&times, 0.99),
                cpu_seconds: cpu,
            },
            ids,
        ))
    }

    /// Waits until every request of `ids` is `On approval`; how long it took.
    async fn until_on_approval(&self, ids: &[i64], limit: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let done: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM label.requests WHERE id = ANY($1) AND status = 'On approval'",
            )
            .bind(ids)
            .fetch_one(&self.pool)
            .await?;
            if done == i64::try_from(ids.len())? {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                bail!(
                    "only {done} of {} requests on approval after {limit:?}; see {}",
                    ids.len(),
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn latency(&mut self, service: &Service, count: usize, rate: f64) -> Result<Latency> {
        let users = self.take_users(count)?;
        let url = Arc::new(format!("http://{}/api/v1/requests/sign", service.addr));
        let started = tokio::time::Instant::now();
        let mut sends = Vec::with_capacity(count);
        for (i, user) in users.iter().enumerate() {
            tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate)).await;
            let token = self.token(*user)?;
            let (http, url) = (self.http.clone(), Arc::clone(&url));
            sends.push(tokio::spawn(async move {
                let sent_at = Utc::now();
                let sent = Instant::now();
                let id = sign(&http, &url, &token, &format!("lat{i}")).await?;
                Ok::<_, anyhow::Error>((id, sent_at, sent.elapsed().as_secs_f64() * 1e3))
            }));
        }
        let mut sent: Vec<(i64, DateTime<Utc>, f64)> = Vec::with_capacity(count);
        for send in futures::future::join_all(sends).await {
            sent.push(send??);
        }
        let ids: Vec<i64> = sent.iter().map(|(id, _, _)| *id).collect();
        self.until_on_approval(&ids, Duration::from_secs(120))
            .await?;
        // `updated_at` is the start of the transaction that moved the request on approval
        // (PostgreSQL's now()), on this machine's clock like `sent_at`.
        let rows: Vec<(i64, DateTime<Utc>)> =
            sqlx::query_as("SELECT id, updated_at FROM label.requests WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(&self.pool)
                .await?;
        let mut latencies: Vec<f64> = Vec::with_capacity(count);
        for (id, sent_at, _) in &sent {
            let (_, at) = rows
                .iter()
                .find(|(row, _)| row == id)
                .context("a request vanished")?;
            latencies.push((*at - *sent_at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3);
        }
        latencies.sort_by(f64::total_cmp);
        let mut http: Vec<f64> = sent.iter().map(|(_, _, ms)| *ms).collect();
        http.sort_by(f64::total_cmp);
        // Where the time goes: the outbox row of each request's `assign_manager` action.
        let stages: Vec<(f64, f64)> = sqlx::query_as(
            "SELECT EXTRACT(EPOCH FROM (o.sent_at - o.created_at))::float8 * 1000, \
                    EXTRACT(EPOCH FROM (r.updated_at - o.sent_at))::float8 * 1000 \
             FROM label.requests r JOIN label.outbox o \
               ON o.message_key = convert_to(r.id::text, 'UTF8') \
              AND convert_from(o.payload, 'UTF8')::jsonb ->> 'type' = 'assign_manager' \
             WHERE r.id = ANY($1) AND o.sent_at IS NOT NULL",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut relay: Vec<f64> = stages.iter().map(|(r, _)| *r).collect();
        let mut consumer: Vec<f64> = stages.iter().map(|(_, c)| *c).collect();
        relay.sort_by(f64::total_cmp);
        consumer.sort_by(f64::total_cmp);
        Ok(Latency {
            count,
            rate,
            http_p50_ms: quantile(&http, 0.5),
            http_p99_ms: quantile(&http, 0.99),
            p50_ms: quantile(&latencies, 0.5),
            p90_ms: quantile(&latencies, 0.9),
            p99_ms: quantile(&latencies, 0.99),
            max_ms: quantile(&latencies, 1.0),
            relay_p50_ms: quantile(&relay, 0.5),
            relay_p99_ms: quantile(&relay, 0.99),
            consumer_p50_ms: quantile(&consumer, 0.5),
            consumer_p99_ms: quantile(&consumer, 0.99),
        })
    }

    async fn recovery(&mut self, service: Service, count: usize) -> Result<(Recovery, Service)> {
        let users = self.take_users(count)?;
        let url = format!("http://{}/api/v1/requests/sign", service.addr);
        self.broker.signal("STOP")?;
        let mut ids = Vec::with_capacity(count);
        for (i, user) in users.iter().enumerate() {
            let token = self.token(*user)?;
            ids.push(sign(&self.http, &url, &token, &format!("rc{i}")).await?);
        }
        // Let the relay claim them; their publish hangs on the stopped broker.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let claimed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM label.outbox WHERE sent_at IS NULL AND claimed_by IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        service.proc.kill();
        self.broker.signal("CONT")?;
        let restarted = Instant::now();
        let service = self.start_service("label-service-2.log").await?;
        let ready = restarted.elapsed();
        let metrics_url = format!("http://{}/metrics", service.addr);
        let http = self.http.clone();
        let assigned = tokio::spawn(async move {
            while restarted.elapsed() < Duration::from_secs(120) {
                if let Ok(answer) = http.get(&metrics_url).send().await
                    && let Ok(text) = answer.text().await
                    && text.lines().any(|line| {
                        line.starts_with("kafka_consumer_rebalances_total{")
                            && line.contains("kind=\"assign\"")
                            && line
                                .rsplit(' ')
                                .next()
                                .and_then(|v| v.parse::<f64>().ok())
                                .is_some_and(|v| v > 0.0)
                    })
                {
                    return Some(restarted.elapsed().as_secs_f64());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        });
        self.until_on_approval(&ids, Duration::from_secs(120))
            .await?;
        let done = restarted.elapsed();
        let assigned_s = assigned.await.ok().flatten();
        Ok((
            Recovery {
                count,
                claimed_at_kill: claimed,
                ready_s: ready.as_secs_f64(),
                assigned_s,
                done_s: done.as_secs_f64(),
            },
            service,
        ))
    }

    fn machine(&self) -> String {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        let model = cpu_model().unwrap_or_else(|| "unknown CPU".to_owned());
        format!("{cpus} cores ({model})")
    }
}

/// `POST /requests/sign` as the user of `token`; the new request's id.
async fn sign(http: &reqwest::Client, url: &str, token: &str, nickname: &str) -> Result<i64> {
    let answer = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({"nickname": nickname}))
        .send()
        .await?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    ensure!(status.as_u16() == 201, "sign answered {status}: {body}");
    body["id"].as_i64().context("no id in the answer")
}

fn report_throughput(run: &Throughput) {
    note(format!(
        "{} requests in {:.1} s: {:.0} requests/s, p50 {:.1} ms, p99 {:.1} ms, service CPU \
         {:.0} µs per request",
        run.requests,
        run.seconds,
        run.per_second(),
        run.p50_ms,
        run.p99_ms,
        run.cpu_us_per_request()
    ));
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "below" }
}

fn results(
    sizes: Sizes,
    me: &Throughput,
    sign: &Throughput,
    steps_per_second: f64,
    latency: &Latency,
    recovery: &Recovery,
    machine: &str,
) -> String {
    format!(
        "Last full run: {date}, {machine}; the label-service release build, a private broker, \
         the machine's PostgreSQL 15, the load generator on the same cores.\n\n\
         | measurement | result | target | verdict |\n\
         |---|---|---|---|\n\
         | `POST /requests/sign` → `On approval`, {count} requests at {rate:.0}/s | p50 {p50:.1} ms, p90 {p90:.1} ms, **p99 {p99:.1} ms**, max {max:.1} ms | p99 ≤ {lt:.0} ms | {lv} |\n\
         | after SIGKILL and restart, {rc} pending sign requests ({claimed} outbox rows claimed by the killed relay) | ready {ready:.1} s, **all on approval {done:.1} s** after the restart | ≤ {rt:.0} s | {rv} |\n\
         | `GET /me`, {conc} clients, {mes} s | {mer:.0} requests/s, p50 {mep50:.1} ms, p99 {mep99:.1} ms, {mecpu:.0} µs service CPU per request | — | — |\n\
         | `POST /requests/sign`, {conc} clients, {sc} requests | {sr:.0} requests/s, p50 {sp50:.1} ms, p99 {sp99:.1} ms, {scpu:.0} µs service CPU per request | — | — |\n\
         | deferred steps (assign a manager) behind that burst | {steps:.0} requests/s brought to `On approval` | — | — |\n\
         | of which: commit → published by the relay | p50 {rp50:.1} ms, p99 {rp99:.1} ms | — | — |\n\
         | of which: published → `On approval` (consumer and step) | p50 {cp50:.1} ms, p99 {cp99:.1} ms | — | — |\n\
         | HTTP answer of `POST /requests/sign` at {rate:.0}/s | p50 {hp50:.1} ms, p99 {hp99:.1} ms | — | — |\n",
        date = Utc::now().format("%Y-%m-%d"),
        count = latency.count,
        rate = latency.rate,
        p50 = latency.p50_ms,
        p90 = latency.p90_ms,
        p99 = latency.p99_ms,
        max = latency.max_ms,
        lt = LATENCY_TARGET_MS,
        lv = verdict(latency.p99_ms <= LATENCY_TARGET_MS),
        rc = recovery.count,
        claimed = recovery.claimed_at_kill,
        ready = recovery.ready_s,
        done = recovery.done_s,
        rt = RECOVERY_TARGET_S,
        rv = verdict(recovery.done_s <= RECOVERY_TARGET_S),
        conc = CONCURRENCY,
        mes = sizes.me_seconds,
        mer = me.per_second(),
        mep50 = me.p50_ms,
        mep99 = me.p99_ms,
        mecpu = me.cpu_us_per_request(),
        sc = sizes.sign_count,
        sr = sign.per_second(),
        sp50 = sign.p50_ms,
        sp99 = sign.p99_ms,
        scpu = sign.cpu_us_per_request(),
        steps = steps_per_second,
        rp50 = latency.relay_p50_ms,
        rp99 = latency.relay_p99_ms,
        cp50 = latency.consumer_p50_ms,
        cp99 = latency.consumer_p99_ms,
        hp50 = latency.http_p50_ms,
        hp99 = latency.http_p99_ms,
    ) + &limits(latency, recovery)
}

/// What limits each row below its target, from what the run measured.
fn limits(latency: &Latency, recovery: &Recovery) -> String {
    let mut out = String::new();
    if latency.p99_ms > LATENCY_TARGET_MS {
        out.push_str(&format!(
            "\n- **Deferred-step latency** (p99 {:.1} ms): the relay's part (commit to \
             published) has p99 {:.1} ms and the consumer's (published to on approval) {:.1} \
             ms.\n",
            latency.p99_ms, latency.relay_p99_ms, latency.consumer_p99_ms
        ));
    }
    if recovery.done_s > RECOVERY_TARGET_S {
        let joined = recovery.assigned_s.map_or_else(
            || "its consumer was never seen joining the group".to_owned(),
            |s| {
                format!(
                    "its consumer was given its partitions {s:.1} s after the restart, and \
                     the {} steps then took {:.1} s",
                    recovery.count,
                    recovery.done_s - s
                )
            },
        );
        out.push_str(&format!(
            "\n- **Recovery** ({:.1} s): the restarted service was ready after {:.1} s and its \
             relay published the pending rows (a killed relay's claims lapse with the 3 s \
             lease), but {joined}. The group join waits for the killed member's session to \
             expire (6 s, the smallest session timeout Apache Kafka accepts by default); \
             static membership (`consumer.group_instance_id`) lets Apache Kafka hand a \
             restarted instance its partitions back at once, and halves the wait on the \
             local broker, which still waits for the old session.\n",
            recovery.done_s, recovery.ready_s
        ));
    }
    if out.is_empty() {
        String::new()
    } else {
        format!("\n#### What limits it\n{out}")
    }
}
