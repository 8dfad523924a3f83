//! What every benchmark needs: child processes that die with the benchmark, free ports, a
//! private broker, CPU time of a process, percentiles, database URLs, command lines for
//! printing, and the results section of `docs/benchmarks.md`. No measurement logic here.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};

/// Prints a step, as xtask does.
pub fn step(message: impl AsRef<str>) {
    println!("==> {}", message.as_ref());
}

/// Prints a detail line under a step.
pub fn note(message: impl AsRef<str>) {
    println!("    {}", message.as_ref());
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A child process in a process group of its own, killed (with its group) when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with its output in `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let file = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            child,
            name: name.to_owned(),
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name it was started under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its log file (stdout and stderr).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its exit status once it has exited.
    pub fn status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` (`TERM`, `KILL`, `STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -s {signal} {} failed", self.pid());
        }
        Ok(())
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGTERM, then SIGKILL after `grace`; waits for it. Returns its exit status when it
    /// exited within `grace`, None when it had to be killed.
    pub fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        let _ = self.signal("CONT");
        let _ = self.signal("TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.status() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// SIGKILL at once, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", self.pid())])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until something accepts connections at `addr`.
pub async fn wait_for_port(addr: &str, limit: Duration) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on {addr} after {limit:?}")
}

/// A private broker (memory storage) on a free port, with `topics` created.
pub async fn start_broker(
    nisshi: &Path,
    dir: &Path,
    topics: &[(&str, u32)],
) -> Result<(Proc, String)> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let url = format!("tcp://{addr}");
    let mut cmd = Command::new(nisshi);
    cmd.args([
        "broker",
        "--listener-url",
        &url,
        "--advertised-listener-url",
        &url,
    ])
    .args(["--storage-engine", "memory://tansu/"]);
    let broker = Proc::spawn("broker", cmd, &dir.join("broker.log"))?;
    wait_for_port(&addr, Duration::from_secs(10)).await?;
    for (topic, partitions) in topics {
        let output = Command::new(nisshi)
            .args(["topic", "create", "--broker", &url, "--partitions"])
            .arg(partitions.to_string())
            .arg(topic)
            .output()
            .context("nisshi topic create")?;
        if !output.status.success() {
            bail!(
                "creating topic {topic}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    Ok((broker, addr))
}

/// Clock ticks per second of `/proc/<pid>/stat` (`sysconf(_SC_CLK_TCK)`, 100 when unknown).
pub fn clock_ticks() -> f64 {
    match procfs::ticks_per_second() {
        0 => 100.0,
        ticks => ticks as f64,
    }
}

/// CPU seconds (user + system) used so far by `pid`.
pub fn cpu_seconds(pid: u32, ticks: f64) -> Result<f64> {
    let stat = procfs::process::Process::new(i32::try_from(pid)?)
        .and_then(|process| process.stat())
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    Ok(stat.utime.saturating_add(stat.stime) as f64 / ticks)
}

/// The CPU model (`model name` of `/proc/cpuinfo`), if the kernel names one.
pub fn cpu_model() -> Option<String> {
    use procfs::Current as _;
    let info = procfs::CpuInfo::current().ok()?;
    (0..info.num_cores())
        .find_map(|cpu| info.model_name(cpu))
        .map(str::trim)
        .filter(|model| !model.is_empty())
        .map(str::to_owned)
}

/// The `q` quantile (0..=1) of sorted `values`, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The workspace root (the bench crate's parent).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `path` relative to the workspace root when it lies under it, for printing.
pub fn rel(path: &Path) -> String {
    let root = workspace_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// What every benchmark runs against: the broker binary (started privately, on a free port)
/// and the PostgreSQL server its databases are created on.
#[derive(Debug, clap::Args)]
pub struct Stack {
    /// The broker binary.
    #[arg(long, env = "NISSHI_BIN")]
    pub nisshi: PathBuf,
    /// The PostgreSQL server; the benchmark creates its databases there (orders_bench and
    /// orders_bench_copy, or label_bench) and drops them afterwards.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub database_url: String,
}

/// The command line of `cmd`, shell-quoted where needed, for printing.
pub fn display(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word as a POSIX shell reads it back (`shlex`); a word holding a NUL byte, which no
/// shell word can, is shown as a Rust string.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    shlex::try_quote(&word).map_or_else(|_| format!("{word:?}"), |quoted| quoted.into_owned())
}

/// The last `lines` lines of a log file, indented, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..]
                .iter()
                .map(|line| format!("    | {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(err) => format!("    (could not read {}: {err})", path.display()),
    }
}

/// A PostgreSQL URL with its database replaced by `db` (a `dbname=` parameter is dropped).
pub fn with_database(url: &str, db: &str) -> Result<String> {
    let mut parsed = reqwest::Url::parse(url).context("DATABASE_URL is not a URL")?;
    ensure!(
        matches!(parsed.scheme(), "postgres" | "postgresql"),
        "not a postgres:// URL: {}",
        redact(url)
    );
    parsed.set_path(&format!("/{db}"));
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| key != "dbname")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(parsed.to_string())
}

/// `url` with its password, if any, replaced by `***`, for printing.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// Replaces the section between `<!-- {name}:begin -->` and `<!-- {name}:end -->` of the
/// file at `path` with `section`, appending it under `heading` when the markers are missing.
pub fn write_section(path: &Path, name: &str, heading: &str, section: &str) -> Result<()> {
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let block = format!("{begin}\n\n{}\n\n{end}", section.trim());
    let text = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &old[..b], &old[e + end.len()..])
        }
        _ => format!("{}\n\n{heading}\n\n{block}\n", old.trim_end()),
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_cpu_time_grows_while_it_computes() {
        let me = std::process::id();
        let ticks = clock_ticks();
        assert!(ticks >= 1.0);
        let before = cpu_seconds(me, ticks).expect("own stat");
        let started = Instant::now();
        let mut spins = 0_u64;
        while cpu_seconds(me, ticks).expect("own stat") < before + 0.05
            && started.elapsed() < Duration::from_secs(10)
        {
            spins = spins.wrapping_add(1);
        }
        assert!(
            cpu_seconds(me, ticks).expect("own stat") >= before + 0.05,
            "{spins}"
        );
        assert!(cpu_seconds(u32::MAX, ticks).is_err());
        assert!(cpu_model().is_none_or(|model| !model.is_empty()));
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&values, 1.0), 100.0);
        assert_eq!(quantile(&values, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_database_of_a_url_is_replaced() {
        let replaced = |url: &str, db: &str| with_database(url, db).ok();
        assert_eq!(
            replaced(
                "postgres://postgres@127.0.0.1:5432/postgres",
                "orders_bench"
            )
            .as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/orders_bench")
        );
        assert_eq!(
            replaced("postgresql://u:p@h:1/app?sslmode=disable&dbname=x", "b").as_deref(),
            Some("postgresql://u:p@h:1/b?sslmode=disable")
        );
        assert_eq!(
            replaced("postgres://u:p@h/db?sslmode=disable", "x").as_deref(),
            Some("postgres://u:p@h/x?sslmode=disable")
        );
        assert_eq!(
            replaced("postgres://h", "b").as_deref(),
            Some("postgres://h/b")
        );
        assert_eq!(
            replaced("postgres://h:1?dbname=a", "b").as_deref(),
            Some("postgres://h:1/b")
        );
        assert!(with_database("mysql://h/db", "b").is_err());
        assert!(with_database("nothing", "x").is_err());
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?sslmode=disable"),
            "postgres://u:***@h:5432/db?sslmode=disable"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("nothing"), "(unparsable URL)");
    }

    #[test]
    fn command_lines_are_quoted_only_where_needed() {
        let mut cmd = Command::new("psql");
        cmd.args(["-c", "SELECT 1", "it's", "", "-At"]);
        let shown = display(&cmd);
        assert!(shown.starts_with("psql -c 'SELECT 1' "), "{shown}");
        assert_eq!(
            shlex::split(&shown),
            Some(
                ["psql", "-c", "SELECT 1", "it's", "", "-At"]
                    .map(String::from)
                    .to_vec()
            ),
            "a shell reads back what ran"
        );
    }

    #[test]
    fn a_section_is_replaced_between_its_markers_or_appended() {
        let dir = std::env::temp_dir().join(format!("bench-section-{}", std::process::id()));
        let path = dir.join("b.md");
        write_section(&path, "x", "## X", "one").expect("append");
        write_section(&path, "x", "## X", "two").expect("replace");
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.contains("two") && !text.contains("one"), "{text}");
        assert_eq!(text.matches("## X").count(), 1, "{text}");
        fs::remove_dir_all(&dir).expect("clean");
    }
}
