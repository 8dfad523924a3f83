//! The Kafka-protocol broker of the local stack (Tansu, published as the
//! `nisshi` crate): find or install the binary, start it detached, create
//! the services' topics, stop only the broker xtask started.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::stack::Layout;
use crate::sys::{self, note, step};

/// The one version known to work here (see docs: later pre-releases need a
/// newer rustc, tansu 0.6 loses messages).
pub const VERSION: &str = "0.7.0-pre.2";
const DEFAULT_PORT: u16 = 9092;
/// How long the install takes on the development machine (2 cores), and how many crates
/// it compiles: what the progress lines compare against.
pub const INSTALL_MINUTES: u32 = 7;
const CRATES: usize = 408;
/// The release profile of the install. `opt-level = 1` instead of 3 takes the build from
/// 10.5 to 6.6 minutes here, and the broker it makes costs the same CPU per message and
/// answers as fast (docs/broker-build.md has the measurements).
const BUILD_PROFILE: &[(&str, &str)] = &[("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")];

/// Topics the services use, with explicit partition counts: a topic the
/// broker auto-creates gets 4 partitions, which is not what they expect.
pub const TOPICS: &[(&str, u32)] = &[
    ("orders", 3),
    ("orders.dlq", 1),
    ("label.sign-requests", 3),
    ("label.publish-requests", 3),
    ("label.dead-letter", 1),
];

/// Where `install-broker` installs: `NISSHI_ROOT`, default `$HOME/.local/opt/nisshi`.
fn install_root() -> PathBuf {
    match std::env::var_os("NISSHI_ROOT") {
        Some(root) if !root.is_empty() => PathBuf::from(root),
        _ => default_root(),
    }
}

fn default_root() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".local/opt/nisshi")
}

fn install_command(root: &Path) -> String {
    format!(
        "cargo install nisshi --version {VERSION} --locked --no-default-features \
         --features dynostore --root {}",
        root.display()
    )
}

fn install_hint() -> String {
    format!(
        "`cargo xtask test` and `cargo xtask demo` install it (about {INSTALL_MINUTES} \
         minutes), as does `cargo xtask install-broker`, which runs\n    {}",
        install_command_line()
    )
}

/// The broker's TCP port: `KAFKA_PORT`, default 9092.
pub fn port() -> Result<u16> {
    match std::env::var("KAFKA_PORT") {
        Ok(text) => text
            .parse()
            .with_context(|| format!("KAFKA_PORT={text:?} is not a port number")),
        Err(_) => Ok(DEFAULT_PORT),
    }
}

/// What `--version` of a candidate binary said.
enum Probe {
    Good,
    Wrong(String),
    Missing,
}

fn probe(bin: &Path) -> Probe {
    if !sys::is_executable(bin) {
        return Probe::Missing;
    }
    match Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => {
            let said = sys::combined_output(&output);
            if output.status.success() && said.split_whitespace().any(|word| word == VERSION) {
                Probe::Good
            } else {
                Probe::Wrong(said)
            }
        }
        Err(e) => Probe::Wrong(e.to_string()),
    }
}

/// Finds a `nisshi` that reports the expected version: `NISSHI_BIN`, then
/// `PATH`, then `$NISSHI_ROOT/bin`, then `$HOME/.local/opt/nisshi/bin`.
pub fn find() -> Result<PathBuf> {
    if let Some(explicit) = std::env::var_os("NISSHI_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(explicit);
        return match probe(&bin) {
            Probe::Good => Ok(bin),
            Probe::Wrong(said) => bail!(
                "NISSHI_BIN={} reports {said:?}, not nisshi {VERSION}; {}",
                bin.display(),
                install_hint()
            ),
            Probe::Missing => bail!(
                "NISSHI_BIN={} is not an executable file; unset it or {}",
                bin.display(),
                install_hint()
            ),
        };
    }
    let mut candidates: Vec<PathBuf> = sys::which("nisshi").into_iter().collect();
    candidates.push(install_root().join("bin/nisshi"));
    candidates.push(default_root().join("bin/nisshi"));
    candidates.dedup();

    let mut wrong = Vec::new();
    for bin in candidates {
        match probe(&bin) {
            Probe::Good => return Ok(bin),
            Probe::Wrong(said) => wrong.push(format!("{} reports {said:?}", bin.display())),
            Probe::Missing => {}
        }
    }
    if wrong.is_empty() {
        bail!(
            "the broker binary `nisshi` was not found; {}",
            install_hint()
        );
    }
    bail!(
        "no nisshi {VERSION} found ({}); {}",
        wrong.join("; "),
        install_hint()
    )
}

/// `cargo xtask install-broker`.
pub fn install() -> Result<()> {
    if let Ok(bin) = find() {
        step(format!(
            "nisshi {VERSION} already installed at {}; skipping the install",
            bin.display()
        ));
        return Ok(());
    }
    let root = install_root();
    step(format!(
        "installing nisshi {VERSION} into {} (a release build from crates.io: about \
         {INSTALL_MINUTES} minutes on 2 cores, once per machine)",
        root.display()
    ));
    let mut cargo = sys::cargo();
    cargo
        .args(["install", "nisshi", "--version", VERSION, "--locked"])
        .args(["--no-default-features", "--features", "dynostore", "--root"])
        .arg(&root)
        .envs(BUILD_PROFILE.iter().copied());
    for (key, value) in BUILD_PROFILE {
        note(format!("{key}={value}"));
    }
    run_with_progress(&mut cargo)?;
    let bin = root.join("bin/nisshi");
    match probe(&bin) {
        Probe::Good => {
            step(format!("installed {}", bin.display()));
            Ok(())
        }
        Probe::Wrong(said) => bail!("installed {} but it reports {said:?}", bin.display()),
        Probe::Missing => bail!("cargo install succeeded but {} is missing", bin.display()),
    }
}

/// The whole command line of the install, for messages.
pub fn install_command_line() -> String {
    let profile: Vec<String> = BUILD_PROFILE
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{} {}", profile.join(" "), install_command(&install_root()))
        .trim()
        .to_owned()
}

/// Runs a `cargo install`, printing a progress line every few seconds (crates compiled,
/// time taken) instead of cargo's hundreds of lines; on failure, cargo's last lines.
fn run_with_progress(cmd: &mut Command) -> Result<()> {
    use std::io::BufRead as _;

    note(format!("$ {}", sys::display(cmd)));
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("could not start cargo install")?;
    let stderr = child.stderr.take().context("cargo install's stderr")?;
    let mut compiled = 0_usize;
    let mut last_report = Instant::now();
    let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.context("reading cargo install's output")?;
        let trimmed = line.trim_start();
        if trimmed.starts_with("Compiling ") {
            compiled += 1;
        }
        if last_report.elapsed() >= Duration::from_secs(15) || trimmed.starts_with("Installing ") {
            last_report = Instant::now();
            let elapsed = started.elapsed().as_secs();
            note(format!(
                "[{:>2}m{:02}s] {compiled:>3} of about {CRATES} crates compiled; {trimmed}",
                elapsed / 60,
                elapsed % 60
            ));
        }
        if recent.len() == 40 {
            recent.pop_front();
        }
        recent.push_back(line);
    }
    let status = child.wait().context("waiting for cargo install")?;
    if !status.success() {
        let tail: Vec<String> = recent.into_iter().map(|l| format!("    | {l}")).collect();
        bail!(
            "`{}` failed ({status}); its last lines:\n{}",
            sys::display(cmd),
            tail.join("\n")
        );
    }
    note(format!(
        "built {compiled} crates in {}",
        sys::secs(started.elapsed())
    ));
    Ok(())
}

/// The pid of the broker xtask started, when it is still running.
fn managed_pid(layout: &Layout) -> Option<u32> {
    let pid = sys::read_pid(&layout.broker_pid)?;
    let is_broker =
        sys::pid_alive(pid) && sys::pid_cmdline(pid).is_some_and(|cmd| cmd.contains("nisshi"));
    is_broker.then_some(pid)
}

/// Makes sure a broker listens on 127.0.0.1:`port` and the topics exist;
/// returns the bootstrap address.
pub fn up(layout: &Layout, bin: &Path, port: u16) -> Result<String> {
    let addr = format!("127.0.0.1:{port}");
    if sys::port_open(&addr) {
        match managed_pid(layout) {
            Some(pid) => step(format!(
                "broker already running on {addr} (pid {pid}, log: {})",
                layout.rel(&layout.broker_log)
            )),
            None => step(format!(
                "something already listens on {addr}; reusing it as the broker (not managed by xtask)"
            )),
        }
    } else if let Some(pid) = managed_pid(layout) {
        // Starting another would overwrite the pid file and orphan it.
        bail!(
            "the broker xtask started (pid {pid}) is not listening on {addr}; was KAFKA_PORT \
             changed? run `cargo xtask stack down` first"
        );
    } else {
        start(layout, bin, &addr)?;
    }
    create_topics(bin, &addr)?;
    Ok(addr)
}

fn start(layout: &Layout, bin: &Path, addr: &str) -> Result<()> {
    step(format!(
        "starting broker on {addr} (log: {})",
        layout.rel(&layout.broker_log)
    ));
    fs::create_dir_all(&layout.dir)?;
    let log = fs::File::create(&layout.broker_log)
        .with_context(|| format!("creating {}", layout.broker_log.display()))?;
    let url = format!("tcp://{addr}");
    let mut cmd = Command::new(bin);
    cmd.args(["broker", "--listener-url", &url])
        .args(["--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        .current_dir(&layout.root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a Ctrl-C in the terminal of a later command
        // (`test`, `demo`) must not stop the shared broker.
        .process_group(0);
    note(format!("$ {}", sys::display(&cmd)));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {}", bin.display()))?;
    fs::write(&layout.broker_pid, format!("{}\n", child.id()))
        .with_context(|| format!("writing {}", layout.broker_pid.display()))?;

    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    loop {
        if sys::port_open(addr) {
            note(format!(
                "listening after {} (pid {}, pid file: {})",
                sys::secs(started.elapsed()),
                child.id(),
                layout.rel(&layout.broker_pid)
            ));
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let _ = fs::remove_file(&layout.broker_pid);
            bail!(
                "the broker exited during start-up ({status}); last lines of {}:\n{}",
                layout.rel(&layout.broker_log),
                sys::tail(&layout.broker_log, 20)
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_file(&layout.broker_pid);
            bail!(
                "the broker did not accept connections on {addr} within 10 s; last lines of {}:\n{}",
                layout.rel(&layout.broker_log),
                sys::tail(&layout.broker_log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when the broker's answer to a create request means "exists already".
pub fn already_exists(output: &str) -> bool {
    let lower = output.to_ascii_lowercase();
    lower.contains("already exists")
        || lower.contains("topicalreadyexists")
        || lower.contains("topic_already_exists")
}

/// Topic names and partition counts from `nisshi topic list` (a JSON array of
/// Metadata topics). Only `"name"` keys and `"partition_index"` entries are
/// looked at: partitions carry no name, so everything between two names
/// belongs to the first.
pub fn parse_topic_list(json: &str) -> Vec<(String, usize)> {
    let mut topics = Vec::new();
    let mut rest = json;
    while let Some(at) = rest.find("\"name\":\"") {
        rest = &rest[at + "\"name\":\"".len()..];
        let Some(end) = rest.find('"') else { break };
        let name = rest[..end].to_owned();
        rest = &rest[end..];
        let segment = rest.find("\"name\":\"").map_or(rest, |next| &rest[..next]);
        topics.push((name, segment.matches("\"partition_index\"").count()));
    }
    topics
}

fn list_topics(bin: &Path, url: &str) -> Option<Vec<(String, usize)>> {
    let output = sys::capture(Command::new(bin).args(["topic", "list", "--broker", url])).ok()?;
    output
        .status
        .success()
        .then(|| parse_topic_list(&String::from_utf8_lossy(&output.stdout)))
}

fn create_topics(bin: &Path, addr: &str) -> Result<()> {
    let url = format!("tcp://{addr}");
    // Listing first keeps a repeated `stack up` quiet; when listing fails
    // (another kind of broker), creating and ignoring "already exists" is
    // just as correct.
    let existing = list_topics(bin, &url).unwrap_or_default();
    let mut created = Vec::new();
    let mut present = Vec::new();
    for (topic, partitions) in TOPICS {
        if let Some((_, found)) = existing.iter().find(|(name, _)| name == topic) {
            if *found != *partitions as usize {
                note(format!(
                    "warning: topic {topic} has {found} partitions, the services expect \
                     {partitions} (auto-created before `stack up`?); `cargo xtask stack down` \
                     and `up` recreate it"
                ));
            }
            present.push(*topic);
            continue;
        }
        let mut cmd = Command::new(bin);
        cmd.args(["topic", "create", "--broker", &url, "--partitions"])
            .arg(partitions.to_string())
            .arg(topic);
        let output = sys::capture(&mut cmd)?;
        let said = sys::combined_output(&output);
        if already_exists(&said) {
            present.push(*topic);
        } else if output.status.success() {
            created.push(format!("{topic} ({partitions})"));
        } else {
            bail!(
                "`{}` failed ({}): {said}",
                sys::display(&cmd),
                output.status
            );
        }
    }
    if created.is_empty() {
        step(format!(
            "topics: all {} present ({})",
            present.len(),
            present.join(", ")
        ));
    } else {
        step(format!("topics: created {}", created.join(", ")));
        if !present.is_empty() {
            note(format!("already present: {}", present.join(", ")));
        }
    }
    Ok(())
}

/// Stops the broker if xtask started it.
pub fn down(layout: &Layout) -> Result<()> {
    match managed_pid(layout) {
        Some(pid) => {
            step(format!("stopping broker (pid {pid})"));
            let killed = sys::terminate(pid, Duration::from_secs(10))?;
            note(if killed {
                "did not exit within 10 s of SIGTERM; killed"
            } else {
                "stopped"
            });
        }
        None => {
            let port = port()?;
            let addr = format!("127.0.0.1:{port}");
            if sys::port_open(&addr) {
                step(format!(
                    "broker: the one on {addr} was not started by xtask; leaving it alone"
                ));
            } else {
                step("broker: not running");
            }
        }
    }
    let _ = fs::remove_file(&layout.broker_pid);
    Ok(())
}

/// One status line for the broker.
pub fn status(layout: &Layout, addr: &str) {
    let up = sys::port_open(addr);
    let owner = match managed_pid(layout) {
        Some(pid) => format!("pid {pid}, log {}", layout.rel(&layout.broker_log)),
        None if up => "not managed by xtask".to_owned(),
        None => format!("log {}", layout.rel(&layout.broker_log)),
    };
    println!(
        "{:<10} {:<48} {:<5} {owner}",
        "broker",
        addr,
        if up { "up" } else { "down" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_already_exists_answers() {
        assert!(already_exists("Error: TopicAlreadyExists"));
        assert!(already_exists("topic orders already exists"));
        assert!(already_exists("TOPIC_ALREADY_EXISTS (36)"));
        assert!(!already_exists("connection refused"));
    }

    #[test]
    fn parses_topic_names_and_partition_counts() {
        let json = r#"[{"error_code":0,"name":"a.dlq","topic_id":[1,2],"is_internal":false,"partitions":[{"error_code":0,"partition_index":0,"leader_id":111,"replica_nodes":[111]}],"topic_authorized_operations":-2147483648},{"error_code":0,"name":"orders","partitions":[{"partition_index":0},{"partition_index":1},{"partition_index":2}]},{"name":"empty","partitions":[]}]"#;
        assert_eq!(
            parse_topic_list(json),
            vec![
                ("a.dlq".to_owned(), 1),
                ("orders".to_owned(), 3),
                ("empty".to_owned(), 0)
            ]
        );
        assert!(parse_topic_list("[]").is_empty());
        assert!(parse_topic_list("").is_empty());
    }

    #[test]
    fn the_install_is_a_lighter_release_build() {
        assert_eq!(BUILD_PROFILE, &[("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1")]);
        assert!(
            install_command_line()
                .starts_with("CARGO_PROFILE_RELEASE_OPT_LEVEL=1 cargo install nisshi")
        );
    }

    #[test]
    fn install_command_pins_version_features_and_root() {
        assert_eq!(
            install_command(Path::new("/opt/n")),
            "cargo install nisshi --version 0.7.0-pre.2 --locked --no-default-features \
             --features dynostore --root /opt/n"
        );
    }
}
