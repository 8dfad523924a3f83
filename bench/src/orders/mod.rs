//! `bench orders`: a benchmark of the orders-service against references that do the same
//! work with well-known tools on the same machine: HTTP cache hits against nginx serving the
//! same JSON as a static file, ingest from Kafka against PostgreSQL `COPY` of the same rows,
//! the cache warm-up against a bare `SELECT` of the same rows, and the memory of a cached
//! order against its JSON size. `cargo xtask bench orders` builds the release binaries and
//! runs it.
//!
//! It drives the built binaries and the reference tools (`psql`, `wrk`, `nginx`, `nisshi`)
//! and reports what they measured; it never tunes a measurement to meet a target. Every
//! server binds 127.0.0.1, every load is bounded in count and time, and every process it
//! starts is stopped again, also when a step fails or on Ctrl-C or SIGTERM, after which the
//! bench databases are dropped (`orders_bench` is kept with `--keep`).
//!
//! The phases live in `ingest` (ingest and COPY), `warm` (warm-up, SELECT and memory) and
//! `http` (wrk against the service and nginx); `report` writes the results; `procfs`, `wrk`
//! and `prom` read `/proc`, wrk's report and `/metrics`.

mod http;
mod ingest;
mod procfs;
mod prom;
mod report;
mod warm;
mod wrk;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use self::procfs::{CpuSnapshot, CpuUse, cpu_delta, cpu_snapshot, mem_total};
use self::report::{Machine, Report, gib};
use crate::support::{
    Proc, Stack, clock_ticks, cpu_model, display, free_port, note, redact, rel, start_broker, step,
    tail, with_database, workspace_root, write_section,
};

const BENCH_DB: &str = "orders_bench";
const COPY_DB: &str = "orders_bench_copy";
/// Tables of the orders schema, parents first (the order `COPY` loads them in).
const TABLES: &[&str] = &["orders", "deliveries", "payments", "items"];
const TOPICS: &[(&str, u32)] = &[("orders", 3), ("orders.dlq", 1)];
const SEED: u64 = 42;
const CACHE_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 64;
const WRK_WARMUP_SECS: u64 = 3;
const POLL: Duration = Duration::from_millis(200);
const INGEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const READY_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const STOP_GRACE: Duration = Duration::from_secs(30);
/// The bound of every SQL statement and `psql` run (also set as `statement_timeout`).
const SQL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Flags of `bench orders`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A smoke run (20,000 / 100,000 orders, 5 s wrk runs) whose results never replace the
    /// docs' numbers.
    #[arg(long)]
    quick: bool,
    /// Keep the orders_bench database afterwards.
    #[arg(long)]
    keep: bool,
    /// The orders-service binary to measure (a release build).
    #[arg(long)]
    service: PathBuf,
    /// The orders-producer binary (a release build of orders-tools).
    #[arg(long)]
    producer: PathBuf,
    /// The broker and PostgreSQL (the databases orders_bench and orders_bench_copy are
    /// created there and dropped afterwards).
    #[command(flatten)]
    stack: Stack,
    /// The psql of the COPY and SELECT references.
    #[arg(long, default_value = "psql")]
    psql: PathBuf,
    /// The load generator of the HTTP row.
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
    /// The static-file server of the HTTP row's reference.
    #[arg(long, default_value = "nginx")]
    nginx: PathBuf,
    /// Where logs, wrk's outputs and nginx's files go [default: target/bench].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The results file [default: docs/benchmarks.md, whose results section a full run
    /// replaces; with --quick: <dir>/benchmarks-quick.md, written whole].
    #[arg(long)]
    output: Option<PathBuf>,
}

/// The sizes of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sizes {
    ingest: u64,
    warmup: u64,
    wrk_secs: u64,
}

const FULL: Sizes = Sizes {
    ingest: 200_000,
    warmup: 1_000_000,
    wrk_secs: 15,
};

const QUICK: Sizes = Sizes {
    ingest: 20_000,
    warmup: 100_000,
    wrk_secs: 5,
};

/// Everything the phases share.
struct Bench {
    args: Args,
    dir: PathBuf,
    /// The server's own database (`DATABASE_URL`): creating and dropping the others.
    admin: PgPool,
    db_url: String,
    db_options: PgConnectOptions,
    db: PgPool,
    copy_url: String,
    copy_db: PgPool,
    brokers: String,
    /// The processes started and not stopped yet, oldest first.
    procs: Vec<Proc>,
    dbs_created: bool,
    http: reqwest::Client,
    clk_tck: f64,
}

/// `bench orders`. On SIGINT or SIGTERM the run stops where it is, and the processes it
/// started are stopped and its databases dropped all the same.
pub async fn run(args: Args) -> Result<()> {
    let sizes = if args.quick { QUICK } else { FULL };
    let started = Instant::now();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| workspace_root().join("target").join("bench"));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let output = args.output.clone().unwrap_or_else(|| {
        if args.quick {
            dir.join("benchmarks-quick.md")
        } else {
            workspace_root().join("docs").join("benchmarks.md")
        }
    });
    let db_url = with_database(&args.stack.database_url, BENCH_DB)?;
    let copy_url = with_database(&args.stack.database_url, COPY_DB)?;
    let db_options = connect_options(&db_url)?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(connect_options(&args.stack.database_url)?)
        .await
        .with_context(|| format!("connecting to {}", redact(&args.stack.database_url)))?;
    let mut bench = Bench {
        db: lazy_pool(db_options.clone()),
        copy_db: lazy_pool(connect_options(&copy_url)?),
        db_options,
        db_url,
        copy_url,
        args,
        dir,
        admin,
        brokers: String::new(),
        procs: Vec::new(),
        dbs_created: false,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        clk_tck: clock_ticks(),
    };
    let result = tokio::select! {
        result = bench.run(sizes, &output) => result,
        () = crate::interrupted() => Err(anyhow!("interrupted")),
    };
    bench.clean_up().await;
    result?;
    step(format!("benchmark finished in {}", secs(started.elapsed())));
    Ok(())
}

/// Our connections: statements bounded by `statement_timeout` on the server too.
fn connect_options(url: &str) -> Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)
        .with_context(|| format!("DATABASE_URL: {}", redact(url)))?
        .application_name("bench orders")
        .options([(
            "statement_timeout",
            format!("{}s", SQL_TIMEOUT.as_secs()).as_str(),
        )]))
}

/// A pool that connects on first use (its database is created later).
fn lazy_pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(options)
}

/// Seconds with one decimal, for progress lines.
fn secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// The output of a bounded command.
#[derive(Debug)]
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `cmd` (stdin closed, stderr captured; stdout captured when `capture_stdout`,
/// otherwise discarded) and kills it when it runs longer than `timeout`, or when the run is
/// dropped (Ctrl-C). `shown` is its command line for messages.
async fn run_bounded(
    cmd: &mut tokio::process::Command,
    shown: &str,
    timeout: Duration,
    capture_stdout: bool,
) -> Result<Ran> {
    cmd.stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(if capture_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .kill_on_drop(true);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            anyhow!(
                "`{shown}` did not finish within {} s; killed",
                timeout.as_secs()
            )
        })?
        .with_context(|| format!("waiting for `{shown}`"))?;
    Ok(Ran {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    })
}

/// Runs one SQL statement (simple query protocol, as psql sends it), printing it.
async fn exec(pool: &PgPool, name: &str, sql: &str) -> Result<()> {
    note(format!("[{name}] {sql}"));
    tokio::time::timeout(SQL_TIMEOUT, sqlx::raw_sql(sql).execute(pool))
        .await
        .map_err(|_| anyhow!("`{sql}` did not finish within {} s", SQL_TIMEOUT.as_secs()))?
        .with_context(|| format!("[{name}] {sql}"))?;
    Ok(())
}

/// `SELECT count(*) FROM orders.orders` of `pool`.
async fn count_orders(pool: &PgPool) -> Result<u64> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orders.orders")
        .fetch_one(pool)
        .await
        .context("counting orders.orders")?;
    Ok(u64::try_from(count)?)
}

impl Bench {
    async fn run(&mut self, sizes: Sizes, output: &Path) -> Result<()> {
        let machine = self.machine().await?;
        self.start_broker().await?;
        self.dbs_created = true;
        self.fresh_database(BENCH_DB).await?;

        let ingest = self.ingest(sizes).await?;
        let (warm, memory, service) = self.warm_up(sizes).await?;
        let http = self.http(sizes, service).await?;

        let report = Report {
            date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
            machine,
            sizes,
            ingest,
            warm,
            memory,
            http,
        };
        let table = report.table();
        step("results");
        println!();
        println!("{}", report.heading());
        println!("{table}");
        for line in report.other_load() {
            note(format!("warning: other load during the {line}"));
        }
        let section = report.section();
        if self.args.quick {
            // A smoke run must not replace the committed numbers of a full run.
            if let Some(parent) = output.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(
                output,
                format!("# orders-service benchmark (--quick)\n\n{section}"),
            )
            .with_context(|| format!("writing {}", output.display()))?;
        } else {
            write_section(output, "results", "## Results", &section)?;
        }
        step(format!("wrote {}", rel(output)));
        self.stop_named("broker");
        Ok(())
    }

    /// Stops what is still running and drops the databases (`orders_bench` only without
    /// `--keep`); runs after the benchmark, whether it succeeded, failed or was interrupted.
    async fn clean_up(&mut self) {
        let procs: Vec<Proc> = self.procs.drain(..).rev().collect();
        for proc in procs {
            stop_proc(proc);
        }
        self.db.close().await;
        self.copy_db.close().await;
        if self.dbs_created {
            let mut drops = vec![COPY_DB];
            if !self.args.keep {
                drops.push(BENCH_DB);
            }
            step(format!("dropping {}", drops.join(", ")));
            for name in drops {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(err) = exec(&self.admin, "postgres", &sql).await {
                    note(format!("{err:#}"));
                }
            }
            if self.args.keep {
                note(format!(
                    "kept database {BENCH_DB} ({})",
                    redact(&self.db_url)
                ));
            }
        }
        self.admin.close().await;
    }

    /// CPU used per command name since `before`; this process's exited children are
    /// counted as `my_children`.
    fn cpu_since(&self, before: &CpuSnapshot, my_children: &str) -> CpuUse {
        cpu_delta(
            before,
            &cpu_snapshot(),
            self.clk_tck,
            std::process::id(),
            my_children,
        )
    }

    /// The command line of `cmd` for printing, passwords hidden.
    fn shown(&self, cmd: &std::process::Command) -> String {
        [&self.db_url, &self.copy_url, &self.args.stack.database_url]
            .iter()
            .fold(display(cmd), |line, url| line.replace(*url, &redact(url)))
    }

    /// `psql` on the database at `url`: no psqlrc, stop at the first error, unaligned
    /// tuples only.
    fn psql(&self, url: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.args.psql);
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", url]);
        cmd
    }

    /// Runs a `psql` command, bounded in time, failing with psql's message.
    async fn run_psql(&self, cmd: &mut tokio::process::Command, capture: bool) -> Result<Ran> {
        let shown = self.shown(cmd.as_std());
        let ran = run_bounded(cmd, &shown, SQL_TIMEOUT, capture).await?;
        if !ran.status.success() {
            bail!("`{shown}` failed ({}): {}", ran.status, ran.stderr.trim());
        }
        Ok(ran)
    }

    // -- machine ----------------------------------------------------------------------

    async fn machine(&self) -> Result<Machine> {
        step("describing the machine");
        let cores = first_line(Path::new("nproc"), &["--all"])
            .await
            .parse()
            .ok()
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(0);
        let postgres = sqlx::query_scalar::<_, String>("SHOW server_version")
            .fetch_one(&self.admin)
            .await
            .unwrap_or_else(|_| "?".to_owned());
        let pg_settings = sqlx::query_scalar::<_, String>(
            "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) \
             FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', \
             'wal_level', 'max_wal_size', 'work_mem')",
        )
        .fetch_one(&self.admin)
        .await
        .unwrap_or_default();
        let rustc_count = procfs::count_processes("rustc");
        let machine = Machine {
            cpu: cpu_model().unwrap_or_else(|| "unknown CPU".to_owned()),
            cores,
            mem_bytes: mem_total().unwrap_or(0),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|k| k.trim().to_owned())
                .unwrap_or_else(|_| "?".to_owned()),
            wrk: wrk::wrk_version(&first_line(&self.args.wrk, &["-v"]).await),
            nginx: first_line(&self.args.nginx, &["-v"])
                .await
                .rsplit('/')
                .next()
                .unwrap_or("?")
                .to_owned(),
            postgres,
            pg_settings,
            rustc: first_line(Path::new("rustc"), &["--version"]).await,
            load: fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            busy: if rustc_count == 0 {
                "no compiler running".to_owned()
            } else {
                format!("{rustc_count} rustc processes running (numbers distorted)")
            },
        };
        note(format!(
            "{}, {} cores, {} RAM, kernel {}",
            machine.cpu,
            machine.cores,
            gib(machine.mem_bytes),
            machine.kernel
        ));
        note(format!(
            "PostgreSQL {} ({}), nginx {}, wrk {}, {}",
            machine.postgres, machine.pg_settings, machine.nginx, machine.wrk, machine.rustc
        ));
        note(format!("load average {}; {}", machine.load, machine.busy));
        if rustc_count > 0 {
            note(
                "warning: a compiler is running on this machine; the numbers will be lower than usual",
            );
        }
        Ok(machine)
    }

    // -- processes --------------------------------------------------------------------

    /// Starts `cmd` (its output in `<dir>/<log_name>`) and keeps it to stop it later.
    fn spawn(&mut self, name: &str, cmd: std::process::Command, log_name: &str) -> Result<u32> {
        let log = self.dir.join(log_name);
        note(format!("$ {}", self.shown(&cmd)));
        let proc = Proc::spawn(name, cmd, &log)?;
        let pid = proc.pid();
        note(format!("{name}: pid {pid}, log {}", rel(&log)));
        self.procs.push(proc);
        Ok(pid)
    }

    fn proc_index(&self, pid: u32) -> Option<usize> {
        self.procs.iter().position(|p| p.pid() == pid)
    }

    /// Fails when the process has exited, with the end of its log.
    fn check_alive(&mut self, pid: u32) -> Result<()> {
        let Some(index) = self.proc_index(pid) else {
            bail!("process {pid} is not managed by the benchmark");
        };
        if let Some(status) = self.procs[index].status() {
            let proc = self.procs.remove(index);
            bail!(
                "{} exited unexpectedly ({status}); last lines of {}:\n{}",
                proc.name(),
                rel(proc.log()),
                tail(proc.log(), 20)
            );
        }
        Ok(())
    }

    /// Stops one process: SIGTERM, then SIGKILL after the grace period.
    fn stop_pid(&mut self, pid: u32) {
        if let Some(index) = self.proc_index(pid) {
            let proc = self.procs.remove(index);
            stop_proc(proc);
        }
    }

    fn stop_named(&mut self, name: &str) {
        if let Some(pid) = self.procs.iter().find(|p| p.name() == name).map(Proc::pid) {
            self.stop_pid(pid);
        }
    }

    // -- broker and databases ---------------------------------------------------------

    async fn start_broker(&mut self) -> Result<()> {
        step(
            "starting a private broker (memory storage) with topics orders (3 partitions) and orders.dlq (1)",
        );
        let started = Instant::now();
        let (broker, addr) = start_broker(&self.args.stack.nisshi, &self.dir, TOPICS).await?;
        note(format!(
            "broker: pid {}, log {}; listening on {addr} after {}",
            broker.pid(),
            rel(broker.log()),
            secs(started.elapsed())
        ));
        self.procs.push(broker);
        self.brokers = addr;
        Ok(())
    }

    async fn fresh_database(&self, name: &str) -> Result<()> {
        step(format!("fresh database {name}"));
        exec(
            &self.admin,
            "postgres",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
        exec(&self.admin, "postgres", &format!("CREATE DATABASE {name}")).await
    }

    // -- the service ------------------------------------------------------------------

    /// Starts the orders-service on a free port; returns its pid and address.
    fn start_service(&mut self, phase: &str, warmup_limit: Option<u64>) -> Result<(u32, String)> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = std::process::Command::new(&self.args.service);
        // Only the settings below count: none inherited from the caller's environment.
        for (key, _) in std::env::vars_os() {
            if key
                .to_str()
                .is_some_and(|k| k.starts_with("ORDERS__") || k == "APP_ENV")
            {
                cmd.env_remove(key);
            }
        }
        let mut vars = vec![
            ("ORDERS__DATABASE__URL".to_owned(), self.db_url.clone()),
            ("ORDERS__KAFKA__BROKERS".to_owned(), self.brokers.clone()),
            ("ORDERS__HTTP__BIND".to_owned(), addr.clone()),
            (
                "ORDERS__CACHE__MAX_BYTES".to_owned(),
                CACHE_MAX_BYTES.to_string(),
            ),
            (
                "ORDERS__TELEMETRY__LOG_FILTER".to_owned(),
                "warn".to_owned(),
            ),
            ("APP_ENV".to_owned(), "bench".to_owned()),
        ];
        if let Some(limit) = warmup_limit {
            vars.push(("ORDERS__CACHE__WARMUP_LIMIT".to_owned(), limit.to_string()));
        }
        step(format!("starting orders-service ({phase}) on {addr}"));
        for (key, value) in &vars {
            let shown = if key == "ORDERS__DATABASE__URL" {
                redact(value)
            } else {
                value.clone()
            };
            note(format!("{key}={shown}"));
        }
        cmd.envs(vars).current_dir(workspace_root());
        let pid = self.spawn(
            "orders-service",
            cmd,
            &format!("orders-service-{phase}.log"),
        )?;
        Ok((pid, addr))
    }

    /// Waits until `/readyz` answers 200; returns the time since `since`.
    async fn wait_ready(&mut self, pid: u32, addr: &str, since: Instant) -> Result<Duration> {
        let url = format!("http://{addr}/readyz");
        loop {
            if let Ok(answer) = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && answer.status() == reqwest::StatusCode::OK
            {
                return Ok(since.elapsed());
            }
            self.check_alive(pid)?;
            if since.elapsed() > READY_TIMEOUT {
                bail!(
                    "orders-service did not answer 200 on /readyz within {} s",
                    READY_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The service's `/metrics`.
    async fn metrics(&self, addr: &str) -> Result<String> {
        let url = format!("http://{addr}/metrics");
        let answer = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if answer.status() != reqwest::StatusCode::OK {
            bail!("GET {url} answered {}", answer.status());
        }
        answer.text().await.with_context(|| format!("GET {url}"))
    }
}

/// Stops one process, saying how it went.
fn stop_proc(mut proc: Proc) {
    if let Some(status) = proc.status() {
        note(format!("{} had exited ({status})", proc.name()));
        return;
    }
    step(format!("stopping {} (pid {})", proc.name(), proc.pid()));
    let started = Instant::now();
    match proc.stop(STOP_GRACE) {
        Some(status) => note(format!(
            "exited ({status}) after {}",
            secs(started.elapsed())
        )),
        None => note(format!(
            "still running {} s after SIGTERM; killed",
            STOP_GRACE.as_secs()
        )),
    }
}

/// The first line of what `program args` prints (stdout, else stderr), `?` when it cannot
/// run.
async fn first_line(program: &Path, args: &[&str]) -> String {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(10), output).await {
        Ok(Ok(output)) => {
            let text = format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
            text.trim()
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        }
        _ => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_run_replaces_only_the_results_section_of_the_docs() {
        let dir = std::env::temp_dir().join(format!("bench-orders-{}", std::process::id()));
        let path = dir.join("benchmarks.md");
        fs::create_dir_all(&dir).expect("dir");
        fs::write(
            &path,
            "# Title\n\nintro\n\n<!-- results:begin -->\nold\n<!-- results:end -->\n\ntail\n",
        )
        .expect("write");
        write_section(&path, "results", "## Results", "new table\n").expect("replace");
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            "# Title\n\nintro\n\n<!-- results:begin -->\n\nnew table\n\n<!-- results:end -->\n\ntail\n"
        );
        fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn flags_and_defaults() {
        use clap::Parser as _;
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cli = Cli::try_parse_from([
            "bench",
            "--quick",
            "--keep",
            "--service",
            "s",
            "--producer",
            "p",
            "--nisshi",
            "n",
            "--database-url",
            "postgres://h/db",
        ])
        .expect("flags");
        assert!(cli.args.quick && cli.args.keep);
        assert_eq!(cli.args.psql, PathBuf::from("psql"));
        assert!(cli.args.output.is_none());
        assert!(Cli::try_parse_from(["bench", "--fast"]).is_err());
    }
}
