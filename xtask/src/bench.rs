//! `cargo xtask bench orders [--quick] [--keep]`: a benchmark of the orders-service against
//! references that do the same work with well-known tools on the same machine: HTTP cache
//! hits against nginx serving the same JSON as a static file, ingest from Kafka against
//! PostgreSQL `COPY` of the same rows, the cache warm-up against a bare `SELECT` of the same
//! rows, and the memory of a cached order against its JSON size.
//!
//! It orchestrates the built binaries and external tools (`psql`, `wrk`, `nginx`, `nisshi`)
//! and reports what they measured; it never tunes a measurement to meet a target. Every
//! server binds 127.0.0.1, every load is bounded in count and time, and every process it
//! starts is stopped again, also when a step fails or on Ctrl-C.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};

use crate::stack::{self, Layout};
use crate::sys::{self, note, step};
use crate::{broker, envfile, pg, pgurl};

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
const SQL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const INSTALL_TOOLS: &str = "apt-get install nginx wrk";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    quick: bool,
    keep: bool,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        quick: false,
        keep: false,
    };
    for arg in args {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--keep" => options.keep = true,
            other => bail!("bench orders: unknown flag `{other}` (expected --quick, --keep)"),
        }
    }
    Ok(options)
}

/// `cargo xtask bench orders [--quick] [--keep]`.
pub fn run(layout: &Layout, args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    let sizes = if options.quick { QUICK } else { FULL };
    let started = Instant::now();
    crate::setup::ensure(
        crate::setup::Purpose::Bench,
        &crate::setup::Host::this_machine(),
        crate::setup::Options::default(),
    )?;
    check_tools()?;

    // Ctrl-C reaches the children too (same process group); xtask itself stays alive long
    // enough to stop what is left and drop its databases.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }

    step("building release binaries");
    let mut build = sys::cargo();
    build
        .args([
            "build",
            "--release",
            "-p",
            "orders-service",
            "-p",
            "orders-tools",
            "--bins",
        ])
        .current_dir(&layout.root);
    let build_started = Instant::now();
    sys::run(&mut build)?;
    note(format!("built in {}", sys::secs(build_started.elapsed())));
    let bin_dir = target_dir(layout).join("release");

    let base_url = database_url(layout)?;
    let dir = layout.root.join("target").join("bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut bench = Bench {
        root: layout.root.clone(),
        dir,
        bin_dir,
        admin: Db::new(&base_url)?,
        db: Db::new(&with_database(&base_url, BENCH_DB)?)?,
        copy_db: Db::new(&with_database(&base_url, COPY_DB)?)?,
        brokers: String::new(),
        stop,
        procs: Vec::new(),
        keep: options.keep,
        dbs_created: false,
        clk_tck: clock_ticks(),
        layout: layout.clone(),
    };
    let result = bench.run(sizes, options);
    // Drop stops every process and drops the databases, also after a failure.
    drop(bench);
    result?;
    step(format!(
        "benchmark finished in {}",
        sys::secs(started.elapsed())
    ));
    Ok(())
}

/// Fails early, with the install command, when a tool the benchmark drives is missing.
fn check_tools() -> Result<()> {
    let missing: Vec<&str> = ["psql", "wrk", "nginx"]
        .into_iter()
        .filter(|tool| sys::which(tool).is_none() && !Path::new("/usr/sbin").join(tool).exists())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let hint = if missing.contains(&"psql") {
        format!("{INSTALL_TOOLS} postgresql-client")
    } else {
        INSTALL_TOOLS.to_owned()
    };
    bail!(
        "{} not found; install with `{hint}` (as root, after `apt-get update`)",
        missing.join(", ")
    )
}

fn nginx_bin() -> PathBuf {
    sys::which("nginx").unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// The database URL of the stack: `target/stack/env`, else `DATABASE_URL` (or the default),
/// making sure the server answers the way `stack up` does.
pub fn database_url(layout: &Layout) -> Result<String> {
    let env = stack::load_env(layout)?;
    let url = match envfile::get(&env, "DATABASE_URL") {
        Some(url) => url.to_owned(),
        None => pg::up(layout)?,
    };
    let addr = pgurl::parse(&url).map_err(|e| anyhow!("DATABASE_URL: {e}"))?;
    if !pg::ready(&addr) {
        bail!(
            "PostgreSQL at {} does not answer; run `cargo xtask stack up`",
            pgurl::redact(&url)
        );
    }
    step(format!("PostgreSQL: {}", pgurl::redact(&url)));
    Ok(url)
}

/// Where cargo builds (as `demo` finds it): `CARGO_TARGET_DIR`, else `target/`.
pub fn target_dir(layout: &Layout) -> PathBuf {
    ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .iter()
        .find_map(|key| std::env::var_os(key).filter(|v| !v.is_empty()))
        .map_or_else(|| layout.root.join("target"), |dir| layout.root.join(dir))
}

/// `url` with its database name replaced by `db` (a `dbname=` parameter is dropped).
fn with_database(url: &str, db: &str) -> Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
        .ok_or_else(|| anyhow!("not a postgres:// URL: {}", pgurl::redact(url)))?;
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(query) = query {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("dbname="))
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    Ok(out)
}

/// A port nothing listens on right now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------
// Running commands with a bound on their time.

/// The output of a bounded command.
#[derive(Debug)]
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `cmd` (stdin closed, stderr captured; stdout captured when `capture_stdout`,
/// otherwise discarded) and kills it when it runs longer than `timeout` or when the
/// benchmark is interrupted.
fn run_bounded(
    cmd: &mut Command,
    timeout: Duration,
    capture_stdout: bool,
    stop: &AtomicBool,
) -> Result<Ran> {
    let line = sys::display(cmd);
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    if capture_stdout {
        cmd.stdout(Stdio::piped());
    } else {
        cmd.stdout(Stdio::null());
    }
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let reader = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let deadline = started + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = out.join();
            let _ = err.join();
            if stop.load(Ordering::Relaxed) {
                bail!("interrupted");
            }
            bail!(
                "`{line}` did not finish within {} s; killed",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    Ok(Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
    })
}

/// One database, reached with `psql`.
#[derive(Debug, Clone)]
struct Db {
    url: String,
    name: String,
}

impl Db {
    fn new(url: &str) -> Result<Self> {
        let name = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split('?').next())
            .and_then(|path| path.split_once('/'))
            .map(|(_, name)| name.to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "postgres".to_owned());
        Ok(Self {
            url: url.to_owned(),
            name,
        })
    }

    /// `psql` on this database: no psqlrc, stop at the first error, unaligned tuples only.
    fn psql(&self) -> Command {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", &self.url]);
        cmd
    }

    /// The command line for printing, password hidden.
    fn shown(&self, cmd: &Command) -> String {
        sys::display(cmd).replace(&self.url, &pgurl::redact(&self.url))
    }

    /// Runs `cmd` (a `psql` of this database), failing with psql's message.
    fn run(&self, cmd: &mut Command, capture: bool, stop: &AtomicBool) -> Result<Ran> {
        let shown = self.shown(cmd);
        let ran = run_bounded(cmd, SQL_TIMEOUT, capture, stop)?;
        if !ran.status.success() {
            bail!("`{shown}` failed ({}): {}", ran.status, ran.stderr.trim());
        }
        Ok(ran)
    }

    /// Runs one SQL command, printing it, and returns its trimmed output.
    fn exec(&self, sql: &str, stop: &AtomicBool) -> Result<String> {
        let mut cmd = self.psql();
        cmd.args(["-c", sql]);
        note(format!("$ {}", self.shown(&cmd)));
        Ok(self.run(&mut cmd, true, stop)?.stdout.trim().to_owned())
    }

    /// Runs one query without printing it.
    fn query(&self, sql: &str, stop: &AtomicBool) -> Result<String> {
        let mut cmd = self.psql();
        cmd.args(["-c", sql]);
        Ok(self.run(&mut cmd, true, stop)?.stdout.trim().to_owned())
    }

    /// `SELECT count(*) FROM orders.orders`; 0 while the table does not exist yet.
    fn count_orders(&self, stop: &AtomicBool) -> u64 {
        self.query("SELECT count(*) FROM orders.orders", stop)
            .ok()
            .and_then(|out| out.parse().ok())
            .unwrap_or(0)
    }
}

/// A `psql` session kept open for polling `SELECT count(*) FROM orders.orders`.
#[derive(Debug)]
struct Poller {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    table_exists: bool,
    /// The PostgreSQL backend serving the polls, to tell its CPU apart.
    backend_pid: u32,
}

impl Poller {
    fn start(db: &Db, log: &Path) -> Result<Self> {
        let mut cmd = db.psql();
        let log_file =
            fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file);
        note(format!(
            "$ {}   (one session; queries on its stdin)",
            db.shown(&cmd)
        ));
        let mut child = cmd.spawn().context("could not start psql")?;
        let stdin = child.stdin.take().context("psql stdin")?;
        let stdout = child.stdout.take().context("psql stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            lines,
            table_exists: false,
            backend_pid: 0,
        })
        .and_then(|mut poller| {
            poller.backend_pid = poller
                .ask("SELECT pg_backend_pid();")?
                .trim()
                .parse()
                .context("pg_backend_pid")?;
            Ok(poller)
        })
    }

    fn ask(&mut self, sql: &str) -> Result<String> {
        writeln!(self.stdin, "{sql}").context("writing to the polling psql")?;
        self.stdin.flush()?;
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow!("the polling psql gave no answer to `{sql}` within 30 s"))
    }

    /// The number of orders; 0 while the service has not created the table yet.
    fn count(&mut self) -> Result<u64> {
        if !self.table_exists {
            let exists = self.ask("SELECT to_regclass('orders.orders') IS NOT NULL;")?;
            if exists.trim() != "t" {
                return Ok(0);
            }
            self.table_exists = true;
        }
        let answer = self.ask("SELECT count(*) FROM orders.orders;")?;
        answer
            .trim()
            .parse()
            .with_context(|| format!("unexpected count {answer:?}"))
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

// ---------------------------------------------------------------------------------------
// The run.

/// A process the benchmark started and must stop.
#[derive(Debug)]
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

#[derive(Debug)]
struct Bench {
    root: PathBuf,
    layout: Layout,
    dir: PathBuf,
    bin_dir: PathBuf,
    admin: Db,
    db: Db,
    copy_db: Db,
    brokers: String,
    stop: Arc<AtomicBool>,
    procs: Vec<Proc>,
    keep: bool,
    dbs_created: bool,
    clk_tck: f64,
}

/// What the machine is, for the report.
#[derive(Debug, Default)]
struct Machine {
    cpu: String,
    cores: usize,
    mem_bytes: u64,
    kernel: String,
    wrk: String,
    nginx: String,
    postgres: String,
    pg_settings: String,
    rustc: String,
    load: String,
    busy: String,
}

#[derive(Debug, Default)]
struct IngestResult {
    seconds: f64,
    first_row_seconds: f64,
    /// When `/metrics` first showed a partition assignment (the group join done).
    assigned_seconds: Option<f64>,
    batches: Option<f64>,
    batch_orders: Option<f64>,
    /// Time spent processing batches (`kafka_consumer_batch_duration_seconds_sum`).
    handler_seconds: Option<f64>,
    /// PostgreSQL CPU of the backend answering the `count(*)` polls.
    poll_backend_seconds: f64,
    producer: String,
    stored: Option<f64>,
    other_outcomes: String,
    cpu: CpuUse,
    busy: f64,
    copy_seconds: f64,
    copy_cpu: CpuUse,
    copy_bytes: u64,
}

#[derive(Debug, Default)]
struct WarmResult {
    seconds: f64,
    orders: f64,
    ready_seconds: f64,
    cpu: CpuUse,
    select_runs: Vec<f64>,
    select_cpu: CpuUse,
    grow_seconds: f64,
}

#[derive(Debug, Default)]
struct MemoryResult {
    rss_empty: u64,
    rss_warm: u64,
    orders: f64,
    mean_json: f64,
    cache_bytes: Option<f64>,
    cache_entries: Option<f64>,
}

#[derive(Debug, Default)]
struct HttpResult {
    order_uid: String,
    body_bytes: usize,
    service: Wrk,
    nginx: Wrk,
    service_cpu: CpuUse,
    nginx_cpu: CpuUse,
    service_busy: f64,
    nginx_busy: f64,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let procs: Vec<Proc> = self.procs.drain(..).rev().collect();
        for proc in procs {
            self.stop_proc(proc);
        }
        if self.dbs_created {
            // The interrupt flag must not stop the cleanup's own commands.
            let go = AtomicBool::new(false);
            let mut drops = vec![COPY_DB];
            if !self.keep {
                drops.push(BENCH_DB);
            }
            step(format!("dropping {}", drops.join(", ")));
            for name in drops {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = self.admin.exec(&sql, &go) {
                    note(format!("{e:#}"));
                }
            }
            if self.keep {
                note(format!(
                    "kept database {BENCH_DB} ({})",
                    pgurl::redact(&self.db.url)
                ));
            }
        }
    }
}

impl Bench {
    fn interrupted(&self) -> Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        Ok(())
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

    fn rel(&self, path: &Path) -> String {
        self.layout.rel(path)
    }

    fn run(&mut self, sizes: Sizes, options: Options) -> Result<()> {
        let machine = self.machine()?;
        self.start_broker()?;
        self.fresh_database(&self.db.clone())?;
        self.dbs_created = true;

        let ingest = self.ingest(sizes)?;
        let (warm, memory, service) = self.warm_up(sizes)?;
        let http = self.http(sizes, service)?;

        let report = Report {
            date: today(),
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
        let path = if options.quick {
            // A smoke run must not replace the committed numbers of a full run.
            let path = self.dir.join("benchmarks-quick.md");
            fs::write(
                &path,
                format!("# orders-service benchmark (--quick)\n\n{section}"),
            )
            .with_context(|| format!("writing {}", path.display()))?;
            path
        } else {
            let path = self.root.join("docs").join("benchmarks.md");
            write_results(&path, &section)?;
            path
        };
        step(format!("wrote {}", self.rel(&path)));
        self.stop_broker();
        Ok(())
    }

    // -- machine ----------------------------------------------------------------------

    fn machine(&self) -> Result<Machine> {
        step("describing the machine");
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let first_line = |mut cmd: Command| -> String {
            cmd.stdin(Stdio::null())
                .output()
                .map(|o| {
                    let text = sys::combined_output(&o);
                    text.lines().next().unwrap_or_default().trim().to_owned()
                })
                .unwrap_or_else(|_| "?".to_owned())
        };
        let mut wrk = Command::new("wrk");
        wrk.arg("-v");
        let mut nginx = Command::new(nginx_bin());
        nginx.arg("-v");
        let mut rustc = Command::new("rustc");
        rustc.arg("--version");
        let mut nproc = Command::new("nproc");
        nproc.arg("--all");
        let cores = first_line(nproc)
            .parse()
            .ok()
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(0);
        let postgres = self
            .admin
            .query("SHOW server_version", &self.stop)
            .unwrap_or_else(|_| "?".to_owned());
        let pg_settings = self
            .admin
            .query(
                "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) \
                 FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', \
                 'wal_level', 'max_wal_size', 'work_mem')",
                &self.stop,
            )
            .unwrap_or_default();
        let rustc_count = count_processes("rustc");
        let machine = Machine {
            cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".to_owned()),
            cores,
            mem_bytes: mem_total(&meminfo).unwrap_or(0),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|k| k.trim().to_owned())
                .unwrap_or_else(|_| "?".to_owned()),
            wrk: wrk_version(&first_line(wrk)),
            nginx: first_line(nginx)
                .rsplit('/')
                .next()
                .unwrap_or("?")
                .to_owned(),
            postgres,
            pg_settings,
            rustc: first_line(rustc),
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

    fn spawn(&mut self, name: &str, mut cmd: Command, log_name: &str) -> Result<u32> {
        let log = self.dir.join(log_name);
        let file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        note(format!("$ {}", self.db.shown(&cmd)));
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {name}"))?;
        let pid = child.id();
        note(format!("{name}: pid {pid}, log {}", self.rel(&log)));
        self.procs.push(Proc {
            name: name.to_owned(),
            child,
            log,
        });
        Ok(pid)
    }

    fn proc_index(&self, pid: u32) -> Option<usize> {
        self.procs.iter().position(|p| p.child.id() == pid)
    }

    /// Fails when the process has exited, with the end of its log.
    fn check_alive(&mut self, pid: u32) -> Result<()> {
        let Some(index) = self.proc_index(pid) else {
            bail!("process {pid} is not managed by the benchmark");
        };
        let proc = &mut self.procs[index];
        if let Some(status) = proc.child.try_wait()? {
            let proc = self.procs.remove(index);
            bail!(
                "{} exited unexpectedly ({status}); last lines of {}:\n{}",
                proc.name,
                self.rel(&proc.log),
                sys::tail(&proc.log, 20)
            );
        }
        Ok(())
    }

    /// Stops one process: SIGTERM, then SIGKILL after the grace period.
    fn stop_pid(&mut self, pid: u32) {
        if let Some(index) = self.proc_index(pid) {
            let proc = self.procs.remove(index);
            self.stop_proc(proc);
        }
    }

    fn stop_proc(&self, mut proc: Proc) {
        if let Ok(Some(status)) = proc.child.try_wait() {
            note(format!("{} had exited ({status})", proc.name));
            return;
        }
        step(format!("stopping {} (pid {})", proc.name, proc.child.id()));
        let started = Instant::now();
        if let Err(e) = sys::signal(proc.child.id(), "TERM") {
            note(format!("{e:#}"));
        }
        let deadline = started + STOP_GRACE;
        loop {
            match proc.child.try_wait() {
                Ok(Some(status)) => {
                    note(format!(
                        "exited ({status}) after {}",
                        sys::secs(started.elapsed())
                    ));
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    note(format!(
                        "still running {} s after SIGTERM; killing it",
                        STOP_GRACE.as_secs()
                    ));
                    let _ = proc.child.kill();
                    let _ = proc.child.wait();
                    return;
                }
            }
        }
    }

    // -- broker and databases ---------------------------------------------------------

    fn start_broker(&mut self) -> Result<()> {
        let nisshi = broker::find()?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let url = format!("tcp://{addr}");
        step(format!(
            "starting a private broker on {addr} (memory storage)"
        ));
        let mut cmd = Command::new(&nisshi);
        cmd.args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .current_dir(&self.root);
        let pid = self.spawn("broker", cmd, "broker.log")?;
        let started = Instant::now();
        while !sys::port_open(&addr) {
            self.check_alive(pid)?;
            self.interrupted()?;
            if started.elapsed() > Duration::from_secs(10) {
                bail!("the broker did not listen on {addr} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        note(format!("listening after {}", sys::secs(started.elapsed())));
        for (topic, partitions) in TOPICS {
            let mut cmd = Command::new(&nisshi);
            cmd.args(["topic", "create", "--broker", &url, "--partitions"])
                .arg(partitions.to_string())
                .arg(topic);
            sys::run(&mut cmd)?;
        }
        self.brokers = addr;
        Ok(())
    }

    fn stop_broker(&mut self) {
        if let Some(pid) = self
            .procs
            .iter()
            .find(|p| p.name == "broker")
            .map(|p| p.child.id())
        {
            self.stop_pid(pid);
        }
    }

    fn fresh_database(&self, db: &Db) -> Result<()> {
        step(format!("fresh database {}", db.name));
        self.admin.exec(
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name),
            &self.stop,
        )?;
        self.admin
            .exec(&format!("CREATE DATABASE {}", db.name), &self.stop)?;
        Ok(())
    }

    // -- the service ------------------------------------------------------------------

    /// Starts the orders-service on a free port; returns its pid and address.
    fn start_service(&mut self, phase: &str, warmup_limit: Option<u64>) -> Result<(u32, String)> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = Command::new(self.bin_dir.join("orders-service"));
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
            ("ORDERS__DATABASE__URL".to_owned(), self.db.url.clone()),
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
                pgurl::redact(value)
            } else {
                value.clone()
            };
            note(format!("{key}={shown}"));
        }
        cmd.envs(vars).current_dir(&self.root);
        let pid = self.spawn(
            "orders-service",
            cmd,
            &format!("orders-service-{phase}.log"),
        )?;
        Ok((pid, addr))
    }

    /// Waits until `/readyz` answers 200; returns the time since `since`.
    fn wait_ready(&mut self, pid: u32, addr: &str, since: Instant) -> Result<Duration> {
        loop {
            if matches!(
                crate::http::get_status(addr, "/readyz", Duration::from_secs(2)),
                Ok(200)
            ) {
                return Ok(since.elapsed());
            }
            self.check_alive(pid)?;
            self.interrupted()?;
            if since.elapsed() > READY_TIMEOUT {
                bail!(
                    "orders-service did not answer 200 on /readyz within {} s",
                    READY_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    fn metrics(&self, addr: &str) -> Result<String> {
        let answer = http_get(addr, "/metrics")?;
        if answer.status != 200 {
            bail!("GET http://{addr}/metrics answered {}", answer.status);
        }
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }

    // -- 1. ingest ----------------------------------------------------------------------

    fn ingest(&mut self, sizes: Sizes) -> Result<IngestResult> {
        let n = sizes.ingest;
        step(format!(
            "ingest: publishing {} orders before the service starts",
            thousands(n)
        ));
        let mut producer = Command::new(self.bin_dir.join("orders-producer"));
        producer
            .args(["--brokers", &self.brokers, "--topic", "orders"])
            .args(["--count", &n.to_string(), "--seed", &SEED.to_string()])
            .args(["--json", "--rate", "0"])
            .current_dir(&self.root);
        note(format!("$ {}", sys::display(&producer)));
        let ran = run_bounded(
            &mut producer,
            Duration::from_secs(10 * 60),
            true,
            &self.stop,
        )?;
        if !ran.status.success() {
            bail!(
                "orders-producer failed ({}): {}",
                ran.status,
                format!("{}\n{}", ran.stdout.trim(), ran.stderr.trim()).trim()
            );
        }
        let summary = ran.stdout.lines().find(|l| l.trim_start().starts_with('{'));
        let summary = summary.ok_or_else(|| {
            anyhow!(
                "orders-producer printed no JSON summary: {}",
                ran.stdout.trim()
            )
        })?;
        let sent = json_number(summary, "sent").unwrap_or(0.0);
        let failed = json_number(summary, "failed").unwrap_or(0.0);
        if sent as u64 != n || failed > 0.0 {
            bail!("orders-producer sent {sent} of {n} ({failed} failed): {summary}");
        }
        let producer_text = format!(
            "{} orders published in {:.1} s ({} msg/s)",
            thousands(n),
            json_number(summary, "seconds").unwrap_or(0.0),
            thousands(json_number(summary, "rate").unwrap_or(0.0).round() as u64)
        );
        note(&producer_text);
        self.interrupted()?;

        // One psql session polls, so that starting a psql every 200 ms does not take CPU
        // from the ingest on 2 cores.
        let mut poller = Poller::start(&self.db, &self.dir.join("poll-psql.log"))?;
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
            let count = poller.count()?;
            if count > 0 && first_row.is_none() {
                first_row = Some(started.elapsed());
            }
            // The group join, seen in the consumer's rebalance counter (polled only until
            // it shows up).
            if assigned.is_none()
                && let Ok(text) = self.metrics(&addr)
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
            self.interrupted()?;
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
                    sys::secs(started.elapsed())
                ));
                last_note = Instant::now();
            }
            std::thread::sleep(POLL);
        };
        let cpu_after = cpu_snapshot();
        let cpu = cpu_delta(
            &cpu_before,
            &cpu_after,
            self.clk_tck,
            std::process::id(),
            "psql",
        );
        let busy = busy_share(busy_before, machine_ticks());
        let ticks = |snapshot: &CpuSnapshot| snapshot.get(&poller.backend_pid).map_or(0, |p| p.own);
        let poll_backend_seconds =
            ticks(&cpu_after).saturating_sub(ticks(&cpu_before)) as f64 / self.clk_tck;
        drop(poller);
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
        let metrics = self.metrics(&addr)?;
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

        let (copy_seconds, copy_cpu, copy_bytes) = self.copy_ceiling(n)?;
        Ok(IngestResult {
            seconds,
            first_row_seconds,
            assigned_seconds: assigned,
            poll_backend_seconds,
            batches,
            batch_orders,
            handler_seconds,
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
    /// database with the same schema.
    fn copy_ceiling(&mut self, n: u64) -> Result<(f64, CpuUse, u64)> {
        let copy_dir = self.dir.join("copy");
        fs::create_dir_all(&copy_dir)?;
        step(format!(
            "COPY ceiling: exporting the four tables to {}",
            self.rel(&copy_dir)
        ));
        let file = |table: &str| copy_dir.join(format!("{table}.bin"));
        for table in TABLES {
            let path = file(table);
            self.db.exec(
                &format!(
                    "\\copy orders.{table} TO {} (FORMAT binary)",
                    sql_literal(&path.to_string_lossy())
                ),
                &self.stop,
            )?;
        }
        let bytes: u64 = TABLES
            .iter()
            .filter_map(|t| fs::metadata(file(t)).ok())
            .map(|m| m.len())
            .sum();
        note(format!("{} MiB exported", bytes / (1024 * 1024)));

        let copy_db = self.copy_db.clone();
        self.fresh_database(&copy_db)?;
        copy_db.exec("CREATE SCHEMA orders", &self.stop)?;
        let mut migrations: Vec<PathBuf> = fs::read_dir(self.root.join("migrations/orders"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        migrations.sort();
        for sql in &migrations {
            let mut cmd = copy_db.psql();
            cmd.arg("-f").arg(sql);
            note(format!("$ {}", copy_db.shown(&cmd)));
            copy_db.run(&mut cmd, true, &self.stop)?;
        }

        step("COPY ceiling: loading the four files (orders first, then children), timed");
        let mut load = copy_db.psql();
        for table in TABLES {
            load.arg("-c").arg(format!(
                "\\copy orders.{table} FROM {} (FORMAT binary)",
                sql_literal(&file(table).to_string_lossy())
            ));
        }
        note(format!("$ {}", copy_db.shown(&load)));
        let cpu_before = cpu_snapshot();
        let ran = copy_db.run(&mut load, true, &self.stop)?;
        let cpu = self.cpu_since(&cpu_before, "psql");
        let seconds = ran.elapsed.as_secs_f64();
        let loaded = copy_db.count_orders(&self.stop);
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
        self.admin.exec(
            &format!("DROP DATABASE IF EXISTS {COPY_DB} WITH (FORCE)"),
            &self.stop,
        )?;
        Ok((seconds, cpu, bytes))
    }

    // -- 2. warm-up and 3. memory -------------------------------------------------------

    /// Grows the database, measures the RSS of an empty and of a warmed service, and the
    /// bare SELECT. Returns the warmed service's pid and address, still running.
    fn warm_up(&mut self, sizes: Sizes) -> Result<(WarmResult, MemoryResult, (u32, String))> {
        let target = sizes.warmup;
        let have = self.db.count_orders(&self.stop);
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
        self.db.exec(&grow, &self.stop)?;
        let grow_seconds = grow_started.elapsed().as_secs_f64();
        let count = self.db.count_orders(&self.stop);
        if count != target {
            bail!("orders.orders holds {count} rows after growing, expected {target}");
        }
        let broken = self.db.query(
            "SELECT count(*) FROM (SELECT order_uid, canonical_json FROM orders.orders \
             ORDER BY date_created DESC, order_uid DESC LIMIT 1000) AS newest \
             WHERE position(convert_to('\"order_uid\":\"' || order_uid || '\"', 'UTF8') \
             IN canonical_json) = 0",
            &self.stop,
        )?;
        if broken != "0" {
            bail!("{broken} of the 1,000 newest orders do not carry their own id in their JSON");
        }
        note(format!(
            "{} rows after {grow_seconds:.1} s",
            thousands(count)
        ));
        // A checkpoint now, so that writing the grown table out does not land inside the
        // measurements below.
        self.db.exec("VACUUM ANALYZE", &self.stop)?;
        self.db.exec("CHECKPOINT", &self.stop)?;
        let mean_json: f64 = self
            .db
            .query(
                "SELECT avg(length(canonical_json)) FROM orders.orders",
                &self.stop,
            )?
            .parse()
            .context("mean JSON size")?;
        note(format!("mean canonical JSON: {mean_json:.0} bytes"));

        step("memory: orders-service with the warm-up disabled");
        let started = Instant::now();
        let (pid, addr) = self.start_service("empty", Some(0))?;
        let ready = self.wait_ready(pid, &addr, started)?;
        let rss_empty = rss_of(pid)?;
        note(format!(
            "ready after {}; VmRSS {}",
            sys::secs(ready),
            mib(rss_empty)
        ));
        self.stop_pid(pid);

        step(format!(
            "warm-up: orders-service with ORDERS__CACHE__WARMUP_LIMIT={target}"
        ));
        let cpu_before = cpu_snapshot();
        let started = Instant::now();
        let (pid, addr) = self.start_service("warm", Some(target))?;
        let ready = self.wait_ready(pid, &addr, started)?;
        let rss_warm = rss_of(pid)?;
        let cpu = self.cpu_since(&cpu_before, "xtask children");
        let metrics = self.metrics(&addr)?;
        let seconds = prom_sum(&metrics, "orders_cache_warmup_seconds", &[])
            .ok_or_else(|| anyhow!("/metrics has no orders_cache_warmup_seconds"))?;
        let orders = prom_sum(&metrics, "orders_cache_warmup_orders", &[])
            .ok_or_else(|| anyhow!("/metrics has no orders_cache_warmup_orders"))?;
        note(format!(
            "ready after {}; orders_cache_warmup_seconds {seconds:.3}, orders_cache_warmup_orders {orders}; VmRSS {}",
            sys::secs(ready),
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
            let text = self.metrics(&addr)?;
            cache_entries = prom_sum(&text, "orders_cache_entries", &[]);
            cache_bytes = prom_sum(&text, "orders_cache_bytes", &[]);
            if cache_entries.is_some_and(|e| e >= orders) {
                break;
            }
            self.interrupted()?;
            std::thread::sleep(Duration::from_millis(500));
        }

        step("warm-up reference: the warm-up's query in psql, output to /dev/null, best of 3");
        let select = format!(
            "SELECT order_uid, canonical_json, payload_sha256 FROM orders.orders \
             ORDER BY date_created DESC, order_uid DESC LIMIT {target}"
        );
        let mut select_runs = Vec::new();
        let mut select_cpu = Vec::new();
        for round in 1..=3 {
            let mut cmd = self.db.psql();
            cmd.args(["-c", &select]);
            if round == 1 {
                note(format!("$ {} > /dev/null", self.db.shown(&cmd)));
            }
            let before = cpu_snapshot();
            let ran = self.db.run(&mut cmd, false, &self.stop)?;
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

    // -- 4. HTTP ------------------------------------------------------------------------

    fn http(&mut self, sizes: Sizes, service: (u32, String)) -> Result<HttpResult> {
        let (pid, addr) = service;
        let uid = self.db.query(
            "SELECT order_uid FROM orders.orders ORDER BY date_created DESC, order_uid DESC LIMIT 1",
            &self.stop,
        )?;
        let path = format!("/order/{uid}");
        let answer = http_get(&addr, &path)?;
        if answer.status != 200 {
            bail!("GET http://{addr}{path} answered {}", answer.status);
        }
        if answer.header("x-cache") != Some("hit") {
            bail!(
                "GET http://{addr}{path} was not a cache hit (X-Cache: {:?})",
                answer.header("x-cache")
            );
        }
        let body = answer.body;
        step(format!(
            "HTTP: order {uid} ({} bytes of JSON) is cached (X-Cache: hit)",
            body.len()
        ));
        let url = format!("http://{addr}{path}");
        let service_run = self.wrk_pair("orders-service", &url, sizes, pid)?;
        self.stop_pid(pid);

        // nginx serving the same bytes as a static file.
        let nginx_dir = self.dir.join("nginx");
        let _ = fs::remove_dir_all(&nginx_dir);
        let html = nginx_dir.join("html");
        fs::create_dir_all(html.join("order"))?;
        for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            fs::create_dir_all(nginx_dir.join("tmp").join(temp))?;
        }
        fs::write(html.join("order").join(&uid), &body)?;
        let port = free_port()?;
        let conf = nginx_dir.join("nginx.conf");
        fs::write(&conf, nginx_conf(&nginx_dir, port))?;
        step(format!(
            "HTTP reference: nginx on 127.0.0.1:{port} serving the same JSON as a static file ({})",
            self.rel(&conf)
        ));
        let mut cmd = Command::new(nginx_bin());
        cmd.arg("-e")
            .arg(nginx_dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&nginx_dir);
        let nginx_pid = self.spawn("nginx", cmd, "nginx/stdout.log")?;
        let nginx_addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        while !sys::port_open(&nginx_addr) {
            self.check_alive(nginx_pid)?;
            self.interrupted()?;
            if started.elapsed() > Duration::from_secs(10) {
                bail!(
                    "nginx did not listen on {nginx_addr} within 10 s:\n{}",
                    sys::tail(&nginx_dir.join("error.log"), 20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let nginx_answer = http_get(&nginx_addr, &path)?;
        if nginx_answer.status != 200 || nginx_answer.body != body {
            bail!(
                "nginx answered {} with {} bytes for {path}, not the service's {} bytes \
                 (can its worker user read {}?):\n{}",
                nginx_answer.status,
                nginx_answer.body.len(),
                body.len(),
                html.display(),
                sys::tail(&nginx_dir.join("error.log"), 10)
            );
        }
        note(format!(
            "nginx answers the same {} bytes, Content-Type {}",
            nginx_answer.body.len(),
            nginx_answer.header("content-type").unwrap_or_default()
        ));
        let nginx_url = format!("http://{nginx_addr}{path}");
        let nginx_run = self.wrk_pair("nginx", &nginx_url, sizes, nginx_pid)?;
        self.stop_pid(nginx_pid);

        Ok(HttpResult {
            order_uid: uid,
            body_bytes: body.len(),
            service: service_run.0,
            service_cpu: service_run.1,
            service_busy: service_run.2,
            nginx: nginx_run.0,
            nginx_cpu: nginx_run.1,
            nginx_busy: nginx_run.2,
        })
    }

    /// A 3 s warm-up run (discarded), then the measured run; the raw outputs are kept in
    /// `target/bench/wrk-<name>.txt`.
    fn wrk_pair(
        &mut self,
        name: &str,
        url: &str,
        sizes: Sizes,
        pid: u32,
    ) -> Result<(Wrk, CpuUse, f64)> {
        let mut result = None;
        for (secs, measured) in [(WRK_WARMUP_SECS, false), (sizes.wrk_secs, true)] {
            self.check_alive(pid)?;
            self.interrupted()?;
            let mut cmd = Command::new("wrk");
            cmd.arg(format!("-t{WRK_THREADS}"))
                .arg(format!("-c{WRK_CONNECTIONS}"))
                .arg(format!("-d{secs}s"))
                .arg("--latency")
                .arg(url);
            step(format!(
                "wrk against {name}: {} ({})",
                if measured {
                    "measured run"
                } else {
                    "warm-up run, discarded"
                },
                sys::display(&cmd)
            ));
            let cpu_before = cpu_snapshot();
            let busy_before = machine_ticks();
            let ran = run_bounded(&mut cmd, Duration::from_secs(secs + 30), true, &self.stop)?;
            let cpu = self.cpu_since(&cpu_before, "wrk");
            let busy = busy_share(busy_before, machine_ticks());
            if !ran.status.success() {
                bail!("wrk failed ({}): {}", ran.status, ran.stderr.trim());
            }
            let wrk = parse_wrk(&ran.stdout)
                .ok_or_else(|| anyhow!("could not read wrk's output:\n{}", ran.stdout.trim()))?;
            note(format!(
                "{} req/s, p50 {}, p99 {}, {} requests{}",
                thousands(wrk.requests_per_sec.round() as u64),
                ms(wrk.p50_ms),
                ms(wrk.p99_ms),
                thousands(wrk.requests),
                if wrk.non_2xx + wrk.socket_errors > 0 {
                    format!(
                        ", {} non-2xx, {} socket errors",
                        wrk.non_2xx, wrk.socket_errors
                    )
                } else {
                    String::new()
                }
            ));
            if measured {
                let file = self.dir.join(format!("wrk-{name}.txt"));
                fs::write(&file, &ran.stdout)?;
                note(format!(
                    "CPU during the run: {}; raw output in {}",
                    cpu_text(&cpu, ran.elapsed.as_secs_f64()),
                    self.rel(&file)
                ));
                if wrk.non_2xx > 0 {
                    bail!("{} answered {} non-2xx responses", name, wrk.non_2xx);
                }
                result = Some((wrk, cpu, busy));
            }
        }
        result.ok_or_else(|| anyhow!("no measured wrk run"))
    }
}

fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "# Written by `cargo xtask bench orders`: the static-file reference of the HTTP row.
daemon off;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    # wrk keeps its connections open for the whole run, as it does against the service.
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    types {{ }}
    default_type application/json;
    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;

    server {{
        listen 127.0.0.1:{port};
        root {d}/html;
        location / {{
            try_files $uri =404;
        }}
    }}
}}
"
    )
}

// ---------------------------------------------------------------------------------------
// HTTP, enough for /metrics and one order.

/// An HTTP answer: status, headers (names lower-cased), body.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` over HTTP/1.0 (so the body is never chunked).
fn http_get(addr: &str, path: &str) -> Result<Response> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| anyhow!("no address for {addr}"))?;
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(
        format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: xtask-bench\r\n\r\n")
            .as_bytes(),
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the answer to GET {path}"))?;
    parse_response(&raw).ok_or_else(|| anyhow!("not an HTTP response from {addr}{path}"))
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = crate::http::parse_status_line(lines.next()?)?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Response {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    })
}

// ---------------------------------------------------------------------------------------
// Parsers (unit-tested below).

/// What one wrk run reported.
#[derive(Debug, Default, Clone, PartialEq)]
struct Wrk {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    seconds: f64,
    non_2xx: u64,
    socket_errors: u64,
}

/// Reads wrk's report: `Requests/sec:`, the `50%` and `99%` lines of `--latency`, the
/// `N requests in Ts` line, `Non-2xx or 3xx responses:` and `Socket errors:`.
fn parse_wrk(text: &str) -> Option<Wrk> {
    let mut wrk = Wrk::default();
    let (mut rps, mut p50, mut p99) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("50%") {
            p50 = parse_wrk_duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = parse_wrk_duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            wrk.non_2xx = rest.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            wrk.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some((count, rest)) = line.split_once(" requests in ")
            && let Ok(count) = count.trim().parse()
        {
            wrk.requests = count;
            let duration = rest.split(',').next().unwrap_or_default().trim();
            wrk.seconds = parse_wrk_duration_ms(duration).map_or(0.0, |ms| ms / 1000.0);
        }
    }
    wrk.requests_per_sec = rps?;
    wrk.p50_ms = p50?;
    wrk.p99_ms = p99?;
    Some(wrk)
}

/// `480.00us`, `1.50ms`, `2.00s`, `1.00m` → milliseconds.
fn parse_wrk_duration_ms(text: &str) -> Option<f64> {
    let units: [(&str, f64); 5] = [
        ("us", 0.001),
        ("ms", 1.0),
        ("s", 1000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
    ];
    units.iter().find_map(|(unit, factor)| {
        let number = text.strip_suffix(unit)?;
        let value: f64 = number.trim().parse().ok()?;
        Some(value * factor)
    })
}

/// `VmRSS:` of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let rest = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let mut parts = rest.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some("mB" | "MB") => Some(value * 1024 * 1024),
        _ => None,
    }
}

fn rss_of(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&text).ok_or_else(|| anyhow!("no VmRSS in {path}"))
}

/// One Prometheus text-format sample.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses `name{label="value",...} value [timestamp]`; None for comments, blank lines and
/// lines that are not samples.
fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let close = loop {
            let (index, c) = chars.next()?;
            match c {
                '}' => break index,
                ',' | ' ' => {}
                '=' => {
                    let (_, quote) = chars.next()?;
                    if quote != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next()?;
                        match c {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key).trim().to_owned(), value));
                }
                other => key.push(other),
            }
        };
        rest = &inner[close + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The sum of the samples of `name` that carry every label in `want`; None when there is
/// none.
fn prom_sum(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for sample in text.lines().filter_map(parse_sample) {
        let matches = sample.name == name
            && want
                .iter()
                .all(|(k, v)| sample.labels.iter().any(|(lk, lv)| lk == k && lv == v));
        if matches {
            *found.get_or_insert(0.0) += sample.value;
        }
    }
    found
}

/// A number field of a flat JSON object, such as the producer's summary.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = json[at + key.len() + 2..].trim_start().strip_prefix(':')?;
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_owned())
        })
        .filter(|m| !m.is_empty())
}

fn mem_total(meminfo: &str) -> Option<u64> {
    let rest = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

/// `wrk debian/4.1.0-3+b2 [epoll] Copyright ...` → `4.1.0-3+b2`.
fn wrk_version(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .map(|v| v.rsplit('/').next().unwrap_or(v).to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

// ---------------------------------------------------------------------------------------
// CPU accounting: who used the cores during a measurement.

/// The CPU ticks of one process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcTicks {
    comm: String,
    ppid: u32,
    /// utime + stime: its own threads.
    own: u64,
    /// cutime + cstime: the children it has waited for (an exited psql, wrk, or a
    /// PostgreSQL backend reaped by the postmaster).
    children: u64,
}

fn parse_proc_stat(stat: &str) -> Option<ProcTicks> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // Fields after the name start at field 3 (state): ppid is field 4, utime, stime,
    // cutime, cstime are fields 14 to 17.
    let number = |index: usize| -> Option<u64> {
        let value: i64 = fields.get(index)?.parse().ok()?;
        Some(u64::try_from(value).unwrap_or(0))
    };
    Some(ProcTicks {
        comm,
        ppid: u32::try_from(number(1)?).ok()?,
        own: number(11)? + number(12)?,
        children: number(13)? + number(14)?,
    })
}

type CpuSnapshot = HashMap<u32, ProcTicks>;

/// CPU seconds per command name, largest first.
type CpuUse = Vec<(String, f64)>;

fn cpu_snapshot() -> CpuSnapshot {
    let mut snapshot = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return snapshot;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = fs::read_to_string(entry.path().join("stat"))
            && let Some(parsed) = parse_proc_stat(&stat)
        {
            snapshot.insert(pid, parsed);
        }
    }
    snapshot
}

/// CPU seconds used between two snapshots, per command name, largest first. A process that
/// exited in between is counted through its parent's children ticks, under the parent's
/// name (PostgreSQL backends under `postgres`); the children of this process (`me`) are
/// counted under `my_children`, the command it ran (`wrk`, `psql`).
fn cpu_delta(
    before: &CpuSnapshot,
    after: &CpuSnapshot,
    clk_tck: f64,
    me: u32,
    my_children: &str,
) -> CpuUse {
    let children_name = |pid: u32, comm: &str| {
        if pid == me {
            my_children.to_owned()
        } else {
            comm.to_owned()
        }
    };
    let mut by_name: HashMap<String, i64> = HashMap::new();
    let signed = |ticks: u64| i64::try_from(ticks).unwrap_or(i64::MAX);
    for (pid, now) in after {
        let (own, children) = match before.get(pid) {
            Some(old) if old.comm == now.comm => (old.own, old.children),
            _ => (0, 0),
        };
        *by_name.entry(now.comm.clone()).or_default() += signed(now.own) - signed(own);
        *by_name.entry(children_name(*pid, &now.comm)).or_default() +=
            signed(now.children) - signed(children);
    }
    // What a process that exited had used before the window reaches its parent's children
    // ticks too, and is not part of the window.
    for (pid, old) in before {
        if !after.contains_key(pid)
            && let Some(parent) = after.get(&old.ppid)
        {
            *by_name
                .entry(children_name(old.ppid, &parent.comm))
                .or_default() -= signed(old.own + old.children);
        }
    }
    let mut list: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(_, ticks)| *ticks > 0)
        .map(|(name, ticks)| (name, ticks as f64 / clk_tck))
        .collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list
}

fn cpu_of(list: &[(String, f64)], name: &str) -> f64 {
    list.iter()
        .filter(|(n, _)| n == name)
        .fold(0.0, |sum, (_, s)| sum + s)
}

/// Kernel threads that do work on behalf of every process (writeback, interrupts).
const SYSTEM_THREADS: &[&str] = &[
    "kworker",
    "ksoftirqd",
    "rcu_",
    "migration",
    "jbd2",
    "kswapd",
    "kcompactd",
    "khugepaged",
    "cpuhp",
];

/// The CPU of processes a measurement did not involve, when it reaches 0.05 cores: other
/// load on the machine that distorts the numbers.
fn interference(cpu: &[(String, f64)], expected: &[&str], seconds: f64) -> Option<String> {
    if seconds <= 0.0 {
        return None;
    }
    let others: Vec<&(String, f64)> = cpu
        .iter()
        .filter(|(name, _)| {
            !expected.contains(&name.as_str())
                && !SYSTEM_THREADS.iter().any(|p| name.starts_with(p))
        })
        .collect();
    let total = others.iter().fold(0.0, |sum, (_, c)| sum + c) / seconds;
    (total >= 0.05).then(|| {
        format!(
            "{total:.2} cores ({})",
            others
                .iter()
                .take(4)
                .map(|(name, c)| format!("{name} {:.2}", c / seconds))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// `orders-service 1.21 cores (18.2 s CPU), postgres 0.60, ...` for the top five.
fn cpu_text(list: &[(String, f64)], seconds: f64) -> String {
    if list.is_empty() || seconds <= 0.0 {
        return "not measured".to_owned();
    }
    list.iter()
        .take(5)
        .map(|(name, cpu)| format!("{name} {:.2} cores ({cpu:.1} s)", cpu / seconds))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (busy, total) ticks of all CPUs from the `cpu` line of `/proc/stat`.
fn parse_cpu_line(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let get = |i: usize| values.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let idle = get(3) + get(4);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Some((busy, busy + idle))
}

fn machine_ticks() -> (u64, u64) {
    fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_cpu_line(&s))
        .unwrap_or((0, 0))
}

fn busy_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let busy = after.0.saturating_sub(before.0) as f64;
    let total = after.1.saturating_sub(before.1) as f64;
    if total > 0.0 { busy / total } else { 0.0 }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn count_processes(comm: &str) -> usize {
    cpu_snapshot().values().filter(|p| p.comm == comm).count()
}

// ---------------------------------------------------------------------------------------
// Formatting and the report.

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The UTC date of today, `YYYY-MM-DD`.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    AtLeast,
    AtMost,
}

fn verdict(ratio: f64, goal: Goal, target: f64) -> &'static str {
    match goal {
        _ if !ratio.is_finite() => "not measured",
        Goal::AtLeast if ratio >= target => "met",
        Goal::AtLeast => "below",
        Goal::AtMost if ratio <= target => "met",
        Goal::AtMost => "above",
    }
}

#[derive(Debug)]
struct Report {
    date: String,
    machine: Machine,
    sizes: Sizes,
    ingest: IngestResult,
    warm: WarmResult,
    memory: MemoryResult,
    http: HttpResult,
}

#[derive(Debug)]
struct Row {
    name: &'static str,
    measure: String,
    service: String,
    reference: String,
    ratio: f64,
    goal: Goal,
    target: f64,
    /// A second condition of the target, as text for the table, and whether it holds.
    also: Option<(&'static str, bool)>,
}

impl Row {
    fn verdict(&self) -> &'static str {
        match (verdict(self.ratio, self.goal, self.target), self.also) {
            ("met", Some((_, false))) => "below",
            (verdict, _) => verdict,
        }
    }

    fn target_text(&self) -> String {
        let sign = match self.goal {
            Goal::AtLeast => ">=",
            Goal::AtMost => "<=",
        };
        match self.also {
            Some((text, _)) => format!("{sign} {}, {text}", self.target),
            None => format!("{sign} {}", self.target),
        }
    }
}

impl Report {
    fn heading(&self) -> String {
        format!(
            "orders-service benchmark — {}, {}, {} cores, {} RAM",
            self.date,
            self.machine.cpu,
            self.machine.cores,
            gib(self.machine.mem_bytes)
        )
    }

    /// The ingest's time from the consumer's group join (partitions assigned) to the last
    /// stored order: the join is a property of the broker and reported on its own.
    fn ingest_seconds(&self) -> f64 {
        self.ingest.seconds - self.ingest.assigned_seconds.unwrap_or(0.0)
    }

    fn ingest_rate(&self) -> f64 {
        self.sizes.ingest as f64 / self.ingest_seconds()
    }

    fn copy_rate(&self) -> f64 {
        self.sizes.ingest as f64 / self.ingest.copy_seconds
    }

    fn select_best(&self) -> f64 {
        self.warm
            .select_runs
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }

    fn per_order(&self) -> f64 {
        self.memory.rss_warm.saturating_sub(self.memory.rss_empty) as f64 / self.memory.orders
    }

    /// Other load seen during each measurement, one line per distorted measurement.
    fn other_load(&self) -> Vec<String> {
        let i = &self.ingest;
        let w = &self.warm;
        let h = &self.http;
        let measured: [(&str, &CpuUse, &[&str], f64); 6] = [
            (
                "ingest",
                &i.cpu,
                &["orders-service", "postgres", "nisshi", "psql", "xtask"],
                i.seconds,
            ),
            (
                "COPY",
                &i.copy_cpu,
                &["postgres", "psql", "xtask"],
                i.copy_seconds,
            ),
            (
                "warm-up (start to ready)",
                &w.cpu,
                &["orders-service", "postgres", "nisshi", "xtask"],
                w.ready_seconds,
            ),
            (
                "best SELECT",
                &w.select_cpu,
                &["postgres", "psql", "xtask"],
                self.select_best(),
            ),
            (
                "wrk against the service",
                &h.service_cpu,
                &["orders-service", "wrk", "xtask"],
                h.service.seconds,
            ),
            (
                "wrk against nginx",
                &h.nginx_cpu,
                &["nginx", "wrk", "xtask"],
                h.nginx.seconds,
            ),
        ];
        measured
            .iter()
            .filter_map(|(name, cpu, expected, seconds)| {
                interference(cpu, expected, *seconds).map(|load| format!("{name}: {load}"))
            })
            .collect()
    }

    fn rows(&self) -> Vec<Row> {
        let http = &self.http;
        let latency = |w: &Wrk| {
            format!(
                "{} req/s, p50 {}, p99 {}",
                thousands(w.requests_per_sec.round() as u64),
                ms(w.p50_ms),
                ms(w.p99_ms)
            )
        };
        vec![
            Row {
                name: "HTTP",
                measure: format!(
                    "HTTP cache hit (wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} {}s)",
                    self.sizes.wrk_secs
                ),
                service: latency(&http.service),
                reference: format!("nginx {}", latency(&http.nginx)),
                ratio: http.service.requests_per_sec / http.nginx.requests_per_sec,
                goal: Goal::AtLeast,
                target: 1.0,
                also: Some(("p99 <= nginx's", http.service.p99_ms <= http.nginx.p99_ms)),
            },
            Row {
                name: "Ingest",
                measure: format!("Ingest {} orders", thousands(self.sizes.ingest)),
                service: format!(
                    "{} orders/s ({:.1} s after the group join, which took {})",
                    thousands(self.ingest_rate().round() as u64),
                    self.ingest_seconds(),
                    self.ingest
                        .assigned_seconds
                        .map_or_else(|| "an unknown time".to_owned(), |t| format!("{t:.1} s"))
                ),
                reference: format!(
                    "COPY {} orders/s ({:.1} s)",
                    thousands(self.copy_rate().round() as u64),
                    self.ingest.copy_seconds
                ),
                ratio: self.ingest_rate() / self.copy_rate(),
                goal: Goal::AtLeast,
                target: 0.6,
                also: None,
            },
            Row {
                name: "Warm-up",
                measure: format!("Warm-up {} orders", thousands(self.sizes.warmup)),
                service: format!("{:.2} s", self.warm.seconds),
                reference: format!("SELECT {:.2} s", self.select_best()),
                ratio: self.warm.seconds / self.select_best(),
                goal: Goal::AtMost,
                target: 2.0,
                also: None,
            },
            Row {
                name: "Memory",
                measure: "Memory per cached order".to_owned(),
                service: format!(
                    "{} B / {} B JSON",
                    thousands(self.per_order().round() as u64),
                    thousands(self.memory.mean_json.round() as u64)
                ),
                reference: "—".to_owned(),
                ratio: self.per_order() / self.memory.mean_json,
                goal: Goal::AtMost,
                target: 2.0,
                also: None,
            },
        ]
    }

    fn table(&self) -> String {
        let mut out = String::from(
            "| measure | service | reference | ratio | target | verdict |\n\
             |---|---|---|---:|---|---|\n",
        );
        for row in self.rows() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {} | {} |",
                row.measure,
                row.service,
                row.reference,
                row.ratio,
                row.target_text(),
                row.verdict()
            );
        }
        out
    }

    /// What the run measured beyond the table, per row: the facts a reader needs to see
    /// where the time and memory go.
    fn details(&self, name: &str) -> Vec<String> {
        let n = self.sizes.ingest as f64;
        match name {
            "HTTP" => {
                let h = &self.http;
                let per_request = |cpu: &[(String, f64)], comm: &str, w: &Wrk| {
                    if w.requests == 0 {
                        0.0
                    } else {
                        cpu_of(cpu, comm) / w.requests as f64 * 1e6
                    }
                };
                vec![
                    format!(
                        "Both servers answer the same {}-byte JSON of order `{}`; wrk runs on the \
                         same 2 cores as the server it measures ({WRK_THREADS} threads, \
                         {WRK_CONNECTIONS} connections).",
                        h.body_bytes, h.order_uid
                    ),
                    format!(
                        "Service run: machine {:.0} % busy; {}.",
                        h.service_busy * 100.0,
                        cpu_text(&h.service_cpu, h.service.seconds)
                    ),
                    format!(
                        "nginx run: machine {:.0} % busy; {}.",
                        h.nginx_busy * 100.0,
                        cpu_text(&h.nginx_cpu, h.nginx.seconds)
                    ),
                    format!(
                        "Server CPU per request: orders-service {:.1} µs, nginx {:.1} µs; wrk \
                         {:.1} µs against the service and {:.1} µs against nginx.",
                        per_request(&h.service_cpu, "orders-service", &h.service),
                        per_request(&h.nginx_cpu, "nginx", &h.nginx),
                        per_request(&h.service_cpu, "wrk", &h.service),
                        per_request(&h.nginx_cpu, "wrk", &h.nginx),
                    ),
                ]
            }
            "Ingest" => {
                let i = &self.ingest;
                let after_first = i.seconds - i.first_row_seconds;
                let steady = if after_first > 0.0 {
                    format!(
                        "{} orders/s from the first stored row to the last",
                        thousands((n / after_first).round() as u64)
                    )
                } else {
                    "no time between first and last row".to_owned()
                };
                vec![
                    format!(
                        "The first order was stored {:.1} s after the service started{}; {steady}.",
                        i.first_row_seconds,
                        i.assigned_seconds.map_or_else(String::new, |t| format!(
                            " (partitions assigned to its consumer after {t:.1} s)"
                        ))
                    ),
                    format!(
                        "Ingest: machine {:.0} % busy; {}; the backend answering the \
                         `count(*)` polls used {:.1} s of it. CPU per order: orders-service \
                         {:.0} µs, PostgreSQL {:.0} µs, broker {:.0} µs.",
                        i.busy * 100.0,
                        cpu_text(&i.cpu, i.seconds),
                        i.poll_backend_seconds,
                        cpu_of(&i.cpu, "orders-service") / n * 1e6,
                        cpu_of(&i.cpu, "postgres") / n * 1e6,
                        cpu_of(&i.cpu, "nisshi") / n * 1e6,
                    ),
                    format!(
                        "COPY: {:.1} MiB of binary COPY data, one backend, no Kafka, parsing, \
                         validation or conflict check; {}. PostgreSQL CPU per order {:.0} µs.",
                        i.copy_bytes as f64 / (1024.0 * 1024.0),
                        cpu_text(&i.copy_cpu, i.copy_seconds),
                        cpu_of(&i.copy_cpu, "postgres") / n * 1e6
                    ),
                    format!(
                        "Producer: {}; consumer outcome stored = {}{}.",
                        i.producer,
                        i.stored
                            .map_or_else(|| "absent".to_owned(), |v| thousands(v as u64)),
                        if i.other_outcomes.is_empty() {
                            String::new()
                        } else {
                            format!(", also {}", i.other_outcomes)
                        }
                    ),
                ]
            }
            "Warm-up" => {
                let w = &self.warm;
                vec![
                    format!(
                        "orders_cache_warmup_orders = {}; /readyz answered 200 {:.2} s after the \
                         process started; CPU from start to ready: {}.",
                        thousands(w.orders as u64),
                        w.ready_seconds,
                        cpu_text(&w.cpu, w.ready_seconds)
                    ),
                    format!(
                        "psql runs: {} s (best is the reference); CPU during the best run: {}.",
                        w.select_runs
                            .iter()
                            .map(|s| format!("{s:.2}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        cpu_text(&w.select_cpu, self.select_best())
                    ),
                    format!(
                        "The {} extra rows were made with SQL in {:.1} s, then VACUUM ANALYZE \
                         and CHECKPOINT; both sides read a table that is in the OS page cache.",
                        thousands(self.sizes.warmup - self.sizes.ingest),
                        w.grow_seconds
                    ),
                ]
            }
            "Memory" => {
                let m = &self.memory;
                let mut lines = vec![format!(
                    "VmRSS {} with the warm-up disabled, {} after warming {} orders: {} more.",
                    mib(m.rss_empty),
                    mib(m.rss_warm),
                    thousands(m.orders as u64),
                    mib(m.rss_warm.saturating_sub(m.rss_empty))
                )];
                if let (Some(bytes), Some(entries)) = (m.cache_bytes, m.cache_entries)
                    && entries > 0.0
                {
                    lines.push(format!(
                        "The cache's own accounting (orders_cache_bytes / orders_cache_entries): \
                         {} entries, {} B per entry (JSON, id, ETag and an estimated 160 B of \
                         overhead); the other {} B per order of RSS growth are outside that \
                         estimate.",
                        thousands(entries as u64),
                        thousands((bytes / entries).round() as u64),
                        thousands((self.per_order() - bytes / entries).max(0.0).round() as u64)
                    ));
                }
                lines
            }
            _ => Vec::new(),
        }
    }

    /// A sentence on what bounds a row that falls short, from the measured facts.
    fn limit(&self, name: &str) -> String {
        let n = self.sizes.ingest as f64;
        match name {
            "HTTP" => {
                let h = &self.http;
                let secs = h.service.seconds.max(1e-9);
                let wrk = cpu_of(&h.service_cpu, "wrk") / secs;
                let server = cpu_of(&h.service_cpu, "orders-service") / secs;
                let per_request = |cpu: &[(String, f64)], comm: &str, w: &Wrk| {
                    cpu_of(cpu, comm) / (w.requests.max(1) as f64) * 1e6
                };
                let bound = if h.service_busy >= 0.95 {
                    "the machine was saturated, so the service's rate is the CPU wrk leaves it \
                     divided by its CPU per request"
                } else {
                    "the machine was not saturated, so the bound is not CPU alone (latency \
                     per request with 64 connections)"
                };
                let cpu_text = format!(
                    "wrk and the server share the 2 cores: during the service's run wrk used \
                     {wrk:.2} cores and the service {server:.2} (machine {:.0} % busy). The \
                     service spent {:.1} µs of CPU per request, nginx {:.1} µs",
                    h.service_busy * 100.0,
                    per_request(&h.service_cpu, "orders-service", &h.service),
                    per_request(&h.nginx_cpu, "nginx", &h.nginx),
                );
                if h.service.requests_per_sec >= h.nginx.requests_per_sec {
                    format!(
                        "the rate is met; the p99 latency is not ({} against nginx's {}). \
                         {cpu_text}. With wrk's 64 connections always busy, the service \
                         answered {:.0} % more requests per second than nginx on the same \
                         cores, and its tail is where a request waits for one of the two \
                         cores that wrk's threads and the service's workers compete for; \
                         p50 is {} against {}. The tail was not narrowed further in this \
                         run.",
                        ms(h.service.p99_ms),
                        ms(h.nginx.p99_ms),
                        (h.service.requests_per_sec / h.nginx.requests_per_sec - 1.0) * 100.0,
                        ms(h.service.p50_ms),
                        ms(h.nginx.p50_ms),
                    )
                } else {
                    format!("{cpu_text}; {bound}.")
                }
            }
            "Ingest" => {
                let i = &self.ingest;
                let startup = i.first_row_seconds / i.seconds * 100.0;
                let steady = i.seconds - i.first_row_seconds;
                let steady_ratio = if steady > 0.0 {
                    format!(
                        "; from the first stored order to the last the rate was {} orders/s \
                         (ratio {:.2} against COPY)",
                        thousands((n / steady).round() as u64),
                        (n / steady) / self.copy_rate()
                    )
                } else {
                    String::new()
                };
                let joined = i.assigned_seconds.map_or_else(String::new, |t| {
                    format!(" (the consumer was assigned its partitions after {t:.1} s)")
                });
                let handler = match (i.handler_seconds, i.batches, i.batch_orders) {
                    (Some(busy), Some(batches), Some(orders)) if batches > 0.0 && steady > 0.0 => {
                        let saturation = if i.busy < 0.9 {
                            format!(
                                " With the machine {:.0} % busy, the cores were not the bound: \
                                 the rate is the batch size over the time to process one batch.",
                                i.busy * 100.0
                            )
                        } else {
                            String::new()
                        };
                        format!(
                            " The consumer processed {} batches of {:.0} messages on average, \
                             one batch at a time with each partition's share of it in a \
                             transaction of its own, at the same time as the others', {:.0} ms \
                             each, and spent {busy:.1} s of the {steady:.1} s between the first \
                             and the last stored order processing them.{saturation}",
                            thousands(batches as u64),
                            orders / batches,
                            busy / batches * 1000.0
                        )
                    }
                    _ => String::new(),
                };
                format!(
                    "{startup:.0} % of the wall time ({:.1} s) passed before the first order \
                     was stored{joined}{steady_ratio}.{handler} Over the whole run each order \
                     cost {:.0} µs of orders-service CPU and {:.0} µs of PostgreSQL CPU \
                     (machine {:.0} % busy; the PostgreSQL figure includes {:.1} s of CPU \
                     for the `count(*)` polls that time the run), against {:.0} µs of \
                     PostgreSQL and {:.0} µs of psql CPU for COPY.",
                    i.first_row_seconds,
                    cpu_of(&i.cpu, "orders-service") / n * 1e6,
                    cpu_of(&i.cpu, "postgres") / n * 1e6,
                    i.busy * 100.0,
                    i.poll_backend_seconds,
                    cpu_of(&i.copy_cpu, "postgres") / n * 1e6,
                    cpu_of(&i.copy_cpu, "psql") / n * 1e6,
                )
            }
            "Warm-up" => {
                let w = &self.warm;
                format!(
                    "From start to ready the service used {} against {} for the best psql \
                     run.",
                    cpu_text(&w.cpu, w.ready_seconds),
                    cpu_text(&w.select_cpu, self.select_best())
                )
            }
            "Memory" => {
                let m = &self.memory;
                format!(
                    "Each cached order grew the RSS by {} B for {} B of JSON; see the details \
                     for the cache's own estimate per entry against the measured growth.",
                    thousands(self.per_order().round() as u64),
                    thousands(m.mean_json.round() as u64)
                )
            }
            _ => String::new(),
        }
    }

    /// The results section of `docs/benchmarks.md`.
    fn section(&self) -> String {
        let m = &self.machine;
        let s = self.sizes;
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.heading());
        let _ = writeln!(
            out,
            "Linux {}; PostgreSQL {} ({}); nginx {}; wrk {}; {}. At the start: load average \
             {}, {}.\n",
            m.kernel, m.postgres, m.pg_settings, m.nginx, m.wrk, m.rustc, m.load, m.busy
        );
        out.push_str(&self.table());
        out.push('\n');
        let other = self.other_load();
        if other.is_empty() {
            out.push_str("No other process used 0.05 cores or more during any measurement.\n\n");
        } else {
            let _ = writeln!(
                out,
                "Other processes took CPU during some measurements, which lowers those \
                 numbers: {}.\n",
                other.join("; ")
            );
        }

        let rows = self.rows();
        let short: Vec<&Row> = rows.iter().filter(|r| r.verdict() != "met").collect();
        out.push_str("#### What limits it\n\n");
        if short.is_empty() {
            out.push_str("Every row meets its target on this run.\n\n");
        }
        for row in &short {
            let _ = writeln!(
                out,
                "- **{}** ({:.2}, target {}): {}\n",
                row.measure,
                row.ratio,
                row.target_text(),
                self.limit(row.name)
            );
        }

        out.push_str("#### Measured details\n\n");
        for row in &rows {
            let _ = writeln!(out, "{}:\n", row.measure);
            for line in self.details(row.name) {
                let _ = writeln!(out, "- {line}");
            }
            out.push('\n');
        }

        out.push_str("#### Commands and settings\n\n");
        let lines = [
            "`cargo xtask bench orders` (see the top of this file for each step); release build: \
             `cargo build --release -p orders-service -p orders-tools --bins`."
                .to_owned(),
            format!(
                "Private broker: `nisshi broker --listener-url tcp://127.0.0.1:PORT \
                 --advertised-listener-url tcp://127.0.0.1:PORT --storage-engine memory://tansu/`; \
                 topics `orders` (3 partitions) and `orders.dlq` (1). Database `{BENCH_DB}` on the \
                 stack's PostgreSQL."
            ),
            format!(
                "Ingest: `target/release/orders-producer --brokers 127.0.0.1:PORT --topic orders \
                 --count {} --seed {SEED} --json --rate 0` before the service starts; then \
                 `target/release/orders-service` with `ORDERS__DATABASE__URL`, \
                 `ORDERS__KAFKA__BROKERS`, `ORDERS__HTTP__BIND=127.0.0.1:PORT`, \
                 `ORDERS__CACHE__MAX_BYTES={CACHE_MAX_BYTES}`, \
                 `ORDERS__TELEMETRY__LOG_FILTER=warn`, `APP_ENV=bench` (other settings at their \
                 defaults), timed from the process start until `SELECT count(*) FROM \
                 orders.orders` (polled every {} ms) reaches {}.",
                s.ingest,
                POLL.as_millis(),
                thousands(s.ingest)
            ),
            format!(
                "COPY: `\\copy orders.<table> TO '<file>' (FORMAT binary)` for orders, deliveries, \
                 payments, items; a fresh `{COPY_DB}` with `CREATE SCHEMA orders` and \
                 `migrations/orders/*.sql`; timed: one `psql` running `\\copy orders.<table> FROM \
                 '<file>' (FORMAT binary)` for the four tables, orders first."
            ),
            format!(
                "Warm-up: orders.orders grown to {} rows with `INSERT ... SELECT` copies \
                 (`<uid>_c<n>`, the id rewritten inside the JSON and its SHA-256 recomputed), \
                 `VACUUM ANALYZE`, `CHECKPOINT`; the service restarted with \
                 `ORDERS__CACHE__WARMUP_LIMIT={}`; `orders_cache_warmup_seconds` and \
                 `orders_cache_warmup_orders` read from `/metrics` once `/readyz` is 200. \
                 Reference: `psql -At -c \"SELECT order_uid, canonical_json, payload_sha256 FROM \
                 orders.orders ORDER BY date_created DESC, order_uid DESC LIMIT {}\" > /dev/null`, \
                 best of 3.",
                thousands(s.warmup),
                s.warmup,
                s.warmup
            ),
            "Memory: VmRSS from `/proc/<pid>/status` once `/readyz` is 200, with \
             `ORDERS__CACHE__WARMUP_LIMIT=0` and after the warm-up above; (warm − empty) / \
             orders warmed, divided by `SELECT avg(length(canonical_json)) FROM orders.orders`."
                .to_owned(),
            format!(
                "HTTP: `wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{}s --latency \
                 http://127.0.0.1:PORT/order/<id>` after a discarded {WRK_WARMUP_SECS} s run, \
                 against the warmed service, then against nginx {} (`nginx -e <dir>/error.log -c \
                 <dir>/nginx.conf -p <dir>`, `worker_processes 2`, `access_log off`, \
                 `sendfile on`, `keepalive_requests 1000000`, `default_type application/json`) \
                 serving the same bytes from `<dir>/html/order/<id>`, with the service stopped; \
                 `<dir>` is `target/bench/nginx/`.",
                s.wrk_secs, m.nginx
            ),
            "CPU shares come from `/proc/<pid>/stat` before and after each measurement \
             (utime + stime; processes that exited are counted through their parent's cutime + \
             cstime), summed per command name; the machine's busy share from `/proc/stat`; \
             \"other load\" is any process a measurement did not start, kernel threads aside."
                .to_owned(),
        ];
        for line in lines {
            let _ = writeln!(out, "- {line}");
        }
        out
    }
}

const RESULTS_BEGIN: &str = "<!-- results:begin -->";
const RESULTS_END: &str = "<!-- results:end -->";

/// Replaces the results section (between the markers) of `docs/benchmarks.md`, creating
/// the file when it does not exist.
fn write_results(path: &Path, section: &str) -> Result<()> {
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let text = replace_results(&old, section);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn replace_results(old: &str, section: &str) -> String {
    let block = format!("{RESULTS_BEGIN}\n\n{section}\n{RESULTS_END}");
    match (old.find(RESULTS_BEGIN), old.find(RESULTS_END)) {
        (Some(begin), Some(end)) if begin < end => format!(
            "{}{block}{}",
            &old[..begin],
            &old[end + RESULTS_END.len()..]
        ),
        _ if old.trim().is_empty() => {
            format!("# orders-service benchmarks\n\n## Results\n\n{block}\n")
        }
        _ => format!("{}\n\n## Results\n\n{block}\n", old.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "\
Running 15s test @ http://127.0.0.1:40123/order/abc
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   652.31us    1.02ms  40.12ms   94.10%
    Req/Sec    52.10k     3.20k   60.01k    71.33%
  Latency Distribution
     50%  480.00us
     75%  612.00us
     90%  900.00us
     99%    4.51ms
  1555308 requests in 15.00s, 2.01GB read
Requests/sec: 103686.41
Transfer/sec:    137.21MB
";

    #[test]
    fn reads_wrk_requests_per_second_and_latency_percentiles() {
        let wrk = parse_wrk(WRK_OUTPUT).expect("parses");
        assert!((wrk.requests_per_sec - 103_686.41).abs() < 1e-9);
        assert!((wrk.p50_ms - 0.48).abs() < 1e-9);
        assert!((wrk.p99_ms - 4.51).abs() < 1e-9);
        assert_eq!(wrk.requests, 1_555_308);
        assert!((wrk.seconds - 15.0).abs() < 1e-9);
        assert_eq!((wrk.non_2xx, wrk.socket_errors), (0, 0));
    }

    #[test]
    fn reads_wrk_errors_and_second_units() {
        let text = "  Latency Distribution\n     50%    1.20s \n     75%    1.50s\n     \
                    99%    2.00m\n  10 requests in 5.01s, 1.00KB read\n  Socket errors: \
                    connect 0, read 3, write 1, timeout 7\n  Non-2xx or 3xx responses: 4\n\
                    Requests/sec:      2.00\n";
        let wrk = parse_wrk(text).expect("parses");
        assert!((wrk.p50_ms - 1200.0).abs() < 1e-9);
        assert!((wrk.p99_ms - 120_000.0).abs() < 1e-9);
        assert!((wrk.requests_per_sec - 2.0).abs() < 1e-9);
        assert_eq!(wrk.socket_errors, 11);
        assert_eq!(wrk.non_2xx, 4);
        assert!((wrk.seconds - 5.01).abs() < 1e-9);
    }

    #[test]
    fn wrk_durations_in_every_unit() {
        assert_eq!(parse_wrk_duration_ms("250.00us"), Some(0.25));
        assert_eq!(parse_wrk_duration_ms("1.50ms"), Some(1.5));
        assert_eq!(parse_wrk_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_wrk_duration_ms("1.00m"), Some(60_000.0));
        assert_eq!(parse_wrk_duration_ms("fast"), None);
        assert_eq!(parse_wrk_duration_ms(""), None);
    }

    #[test]
    fn incomplete_wrk_output_is_refused() {
        assert_eq!(parse_wrk("Requests/sec: 10.0\n"), None);
        assert_eq!(
            parse_wrk("unable to connect to 127.0.0.1:1 Connection refused"),
            None
        );
    }

    #[test]
    fn reads_vm_rss_from_proc_status() {
        let status = "Name:\torders-service\nVmPeak:\t 2000000 kB\nVmRSS:\t  123456 kB\n\
                      RssAnon:\t  100000 kB\n";
        assert_eq!(parse_vm_rss(status), Some(123_456 * 1024));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
        let own = fs::read_to_string("/proc/self/status").expect("own status");
        assert!(parse_vm_rss(&own).is_some_and(|rss| rss > 0));
    }

    #[test]
    fn reads_prometheus_samples() {
        assert_eq!(
            parse_sample("orders_cache_warmup_seconds 3.25"),
            Some(Sample {
                name: "orders_cache_warmup_seconds".to_owned(),
                labels: Vec::new(),
                value: 3.25
            })
        );
        let sample = parse_sample(
            r#"kafka_consumer_messages_total{topic="orders",outcome="stored"} 2e5 1700000000"#,
        )
        .expect("sample");
        assert_eq!(sample.name, "kafka_consumer_messages_total");
        assert_eq!(
            sample.labels,
            vec![
                ("topic".to_owned(), "orders".to_owned()),
                ("outcome".to_owned(), "stored".to_owned())
            ]
        );
        assert_eq!(sample.value, 200_000.0);
        let escaped = parse_sample(r#"m{path="/a\"b,c}",le="+Inf"} +Inf"#).expect("sample");
        assert_eq!(escaped.labels[0].1, "/a\"b,c}");
        assert_eq!(escaped.value, f64::INFINITY);
        assert_eq!(parse_sample("# TYPE m counter"), None);
        assert_eq!(parse_sample(""), None);
        assert_eq!(parse_sample("m{broken 1"), None);
    }

    #[test]
    fn sums_the_matching_series() {
        let text = "\
# HELP kafka_consumer_messages_total Messages by outcome.
# TYPE kafka_consumer_messages_total counter
kafka_consumer_messages_total{topic=\"orders\",outcome=\"stored\"} 150000
kafka_consumer_messages_total{topic=\"other\",outcome=\"stored\"} 50000
kafka_consumer_messages_total{topic=\"orders\",outcome=\"invalid\"} 3
orders_cache_warmup_orders 1000000
orders_cache_warmup_orders_total 7
";
        assert_eq!(
            prom_sum(
                text,
                "kafka_consumer_messages_total",
                &[("outcome", "stored")]
            ),
            Some(200_000.0)
        );
        assert_eq!(
            prom_sum(
                text,
                "kafka_consumer_messages_total",
                &[("topic", "orders"), ("outcome", "invalid")]
            ),
            Some(3.0)
        );
        assert_eq!(
            prom_sum(text, "orders_cache_warmup_orders", &[]),
            Some(1_000_000.0)
        );
        assert_eq!(
            prom_sum(
                text,
                "kafka_consumer_messages_total",
                &[("outcome", "conflict")]
            ),
            None
        );
    }

    #[test]
    fn reads_the_producer_summary() {
        let line = r#"{"topic":"orders","sent":200000,"valid":200000,"failed":0,"seconds":3.5,"rate":57142.8,"seed":42,"base_time":"2026-11-21T00:00:00Z","file":null}"#;
        assert_eq!(json_number(line, "sent"), Some(200_000.0));
        assert_eq!(json_number(line, "failed"), Some(0.0));
        assert_eq!(json_number(line, "rate"), Some(57_142.8));
        assert_eq!(json_number(line, "file"), None);
        assert_eq!(json_number(line, "missing"), None);
    }

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database(
                "postgres://postgres@127.0.0.1:5432/postgres",
                "orders_bench"
            )
            .ok(),
            Some("postgres://postgres@127.0.0.1:5432/orders_bench".to_owned())
        );
        assert_eq!(
            with_database("postgresql://u:p@h:1/app?sslmode=disable&dbname=x", "b").ok(),
            Some("postgresql://u:p@h:1/b?sslmode=disable".to_owned())
        );
        assert_eq!(
            with_database("postgres://h", "b").ok(),
            Some("postgres://h/b".to_owned())
        );
        assert!(with_database("mysql://h/db", "b").is_err());
        let db = Db::new("postgres://h:1/orders_bench?x=1").expect("db");
        assert_eq!(db.name, "orders_bench");
    }

    #[test]
    fn reads_proc_stat_lines_and_machine_cpu() {
        let stat = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 \
                    8 0 100 1000000 2000 18446744073709551615";
        assert_eq!(
            parse_proc_stat(stat),
            Some(ProcTicks {
                comm: "tokio (rt) x".to_owned(),
                ppid: 1,
                own: 325,
                children: 0
            })
        );
        assert_eq!(parse_proc_stat("garbage"), None);
        let cpu = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(parse_cpu_line(cpu), Some((161, 1181)));
    }

    #[test]
    fn counts_cpu_of_live_and_exited_processes() {
        let p = |comm: &str, ppid: u32, own: u64, children: u64| ProcTicks {
            comm: comm.to_owned(),
            ppid,
            own,
            children,
        };
        // 1 postmaster, 2 a backend that exits during the window after 30 more ticks, 3 a
        // backend that starts during it, 4 an idle process, 9 this process, whose child
        // (wrk) ran and exited inside the window.
        let before = HashMap::from([
            (1, p("postgres", 0, 100, 1000)),
            (2, p("postgres", 1, 20, 0)),
            (4, p("idle", 0, 10, 0)),
            (9, p("xtask", 0, 5, 0)),
        ]);
        let after = HashMap::from([
            (1, p("postgres", 0, 110, 1050)),
            (3, p("postgres", 1, 40, 0)),
            (4, p("idle", 0, 10, 0)),
            (9, p("xtask", 0, 6, 200)),
        ]);
        assert_eq!(
            cpu_delta(&before, &after, 100.0, 9, "wrk"),
            vec![
                ("wrk".to_owned(), 2.0),
                // 10 postmaster + 40 new backend + (50 - 20) reaped backend.
                ("postgres".to_owned(), 0.8),
                ("xtask".to_owned(), 0.01),
            ]
        );
        assert_eq!(cpu_of(&[], "wrk").to_string(), "0");
    }

    #[test]
    fn reports_other_load_during_a_measurement() {
        let cpu = vec![
            ("orders-service".to_owned(), 20.0),
            ("bash".to_owned(), 9.0),
            ("kworker/u8:1-writeback".to_owned(), 3.0),
            ("wrk".to_owned(), 8.0),
            ("process_api".to_owned(), 1.5),
        ];
        assert_eq!(
            interference(&cpu, &["orders-service", "wrk"], 15.0).as_deref(),
            Some("0.70 cores (bash 0.60, process_api 0.10)")
        );
        assert_eq!(
            interference(&cpu[..1], &["orders-service", "wrk"], 15.0),
            None
        );
        assert_eq!(
            interference(
                &cpu,
                &["orders-service", "wrk", "bash", "process_api"],
                15.0
            ),
            None
        );
    }

    #[test]
    fn reads_cpu_model_memory_and_versions() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) \
                       Processor\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(
            mem_total("MemTotal:       24682416 kB\nMemFree: 1 kB\n"),
            Some(24_682_416 * 1024)
        );
        assert_eq!(
            wrk_version("wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"),
            "4.1.0-3+b2"
        );
        assert_eq!(wrk_version("wrk 4.2.0 [epoll]"), "4.2.0");
    }

    #[test]
    fn formats_numbers_dates_and_verdicts() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ms(0.481), "0.48 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_778), (2026, 11, 21));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(verdict(0.89, Goal::AtLeast, 0.9), "below");
        assert_eq!(verdict(0.9, Goal::AtLeast, 0.9), "met");
        assert_eq!(verdict(1.7, Goal::AtMost, 2.0), "met");
        assert_eq!(verdict(2.1, Goal::AtMost, 2.0), "above");
        assert_eq!(verdict(f64::NAN, Goal::AtMost, 2.0), "not measured");
    }

    #[test]
    fn replaces_only_the_results_section() {
        let doc = format!("# Title\n\nintro\n\n{RESULTS_BEGIN}\nold\n{RESULTS_END}\n\ntail\n");
        let new = replace_results(&doc, "new table\n");
        assert_eq!(
            new,
            format!("# Title\n\nintro\n\n{RESULTS_BEGIN}\n\nnew table\n\n{RESULTS_END}\n\ntail\n")
        );
        assert!(replace_results("", "x\n").contains(RESULTS_BEGIN));
        let appended = replace_results("# Doc\n", "x\n");
        assert!(appended.starts_with("# Doc\n\n## Results\n\n"));
    }

    #[test]
    fn parses_http_responses() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Cache: hit\r\n\r\n{\"a\":1}";
        let answer = parse_response(raw).expect("response");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("X-Cache"), Some("hit"));
        assert_eq!(answer.body, b"{\"a\":1}");
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn options() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_options(&args(&["--quick", "--keep"])).ok(),
            Some(Options {
                quick: true,
                keep: true
            })
        );
        assert!(parse_options(&args(&["--fast"])).is_err());
    }
}
