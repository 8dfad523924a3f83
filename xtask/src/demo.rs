//! `cargo xtask demo`: the prerequisites, the stack, then both services in the
//! foreground, wired to it, until Ctrl-C or SIGTERM. It supervises and reports; it must
//! not reimplement anything the services do themselves.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::stack::{self, Layout, Stack};
use crate::sys::{self, note, step};

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The binaries the demo runs, and `label-cli`, which the README then tells people to run.
const BINARIES: [&str; 4] = [
    "orders-service",
    "orders-producer",
    "label-service",
    "label-cli",
];

/// Flags of `cargo xtask demo`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Drop the label-service's data first, so a new cast (new passwords) is seeded.
    pub reset: bool,
}
const STOP_GRACE: Duration = Duration::from_secs(30);

/// What the demo hooks get to work with.
#[derive(Debug)]
pub struct DemoContext {
    pub stack: Stack,
    pub orders_url: String,
    pub label_url: String,
    /// Where the built binaries are.
    pub bin_dir: PathBuf,
    /// The workspace root.
    pub root: PathBuf,
}

#[derive(Debug)]
struct Service {
    name: &'static str,
    addr: String,
    child: Child,
    ready: bool,
    exit: Option<ExitStatus>,
}

pub fn run(layout: &Layout, options: Options) -> Result<()> {
    crate::setup::ensure(
        crate::setup::Purpose::Demo,
        &crate::setup::Host::this_machine(),
        crate::setup::Options::default(),
    )?;
    // The local broker keeps everything in memory, and a long-lived one can hold consumer
    // group state that stalls a new member's join (seen with Tansu): the demo starts from a
    // fresh broker it owns. A broker xtask did not start is left alone.
    step("restarting the local broker so the demo starts clean");
    crate::broker::down(layout)?;
    let stack = stack::up(layout)?;
    let orders_bind = bind_from_env("ORDERS__HTTP__BIND", "127.0.0.1:8080");
    let label_bind = bind_from_env("LABEL__HTTP__BIND", "127.0.0.1:8081");
    for bind in [&orders_bind, &label_bind] {
        if sys::port_open(&probe_addr(bind)) {
            bail!(
                "{bind} is already in use (another demo running?); free it or set ORDERS__HTTP__BIND / LABEL__HTTP__BIND"
            );
        }
    }

    if options.reset {
        reset_label_data(layout, &stack)?;
    }

    step(format!("building {}", BINARIES.join(", ")));
    let mut build = sys::cargo();
    build.arg("build").current_dir(&layout.root);
    for bin in BINARIES {
        build.args(["--bin", bin]);
    }
    sys::run(&mut build)?;
    let bin_dir = target_dir(layout).join("debug");

    // Take SIGINT/SIGTERM before the services exist, so that a signal at any point leaves
    // xtask alive to stop them. The services run in process groups of their own, so a
    // terminal's Ctrl-C reaches xtask alone, and xtask stops them the same way whether the
    // signal came from a terminal or from `kill`.
    let signals = rx_signals()?;

    let orders = spawn(
        "orders-service",
        &bin_dir,
        layout,
        &[
            ("ORDERS__DATABASE__URL", stack.database_url.as_str()),
            ("ORDERS__KAFKA__BROKERS", stack.kafka_brokers.as_str()),
            // The local broker (Tansu) takes half the session timeout to form a group; the
            // short timeouts its notes recommend make the consumer start in seconds.
            ("ORDERS__KAFKA__SESSION_TIMEOUT", "6s"),
            ("ORDERS__KAFKA__HEARTBEAT_INTERVAL", "500ms"),
            ("ORDERS__HTTP__BIND", orders_bind.as_str()),
        ],
        &stack,
        &orders_bind,
    )?;
    let label = spawn(
        "label-service",
        &bin_dir,
        layout,
        &[
            ("LABEL__DATABASE__URL", stack.database_url.as_str()),
            ("LABEL__KAFKA__BROKERS", stack.kafka_brokers.as_str()),
            ("LABEL__KAFKA__SESSION_TIMEOUT", "6s"),
            ("LABEL__KAFKA__HEARTBEAT_INTERVAL", "500ms"),
            ("LABEL__HTTP__BIND", label_bind.as_str()),
        ],
        &stack,
        &label_bind,
    );
    let mut services = match label {
        Ok(label) => vec![orders, label],
        Err(e) => {
            let mut started = vec![orders];
            stop(&mut started, true, &signals);
            return Err(e);
        }
    };

    let context = DemoContext {
        orders_url: format!("http://{}/", probe_addr(&orders_bind)),
        label_url: format!("http://{}/", probe_addr(&label_bind)),
        stack,
        bin_dir: bin_dir.clone(),
        root: layout.root.clone(),
    };
    supervise(&mut services, &signals, &context)
}

fn bind_from_env(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Where to reach a bind address from this machine (a wildcard bind is
/// reached on loopback).
fn probe_addr(bind: &str) -> String {
    match bind.rsplit_once(':') {
        Some(("0.0.0.0" | "[::]", port)) => format!("127.0.0.1:{port}"),
        _ => bind.to_owned(),
    }
}

/// The directory cargo builds into: `CARGO_TARGET_DIR` (or
/// `CARGO_BUILD_TARGET_DIR`), relative to the workspace root, else `target/`.
fn target_dir(layout: &Layout) -> PathBuf {
    ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .iter()
        .find_map(|key| std::env::var_os(key).filter(|v| !v.is_empty()))
        .map_or_else(|| layout.root.join("target"), |dir| layout.root.join(dir))
}

fn rx_signals() -> Result<Receiver<i32>> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("installing signal handlers")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if tx.send(signal).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

fn spawn(
    name: &'static str,
    bin_dir: &std::path::Path,
    layout: &Layout,
    vars: &[(&str, &str)],
    stack: &Stack,
    bind: &str,
) -> Result<Service> {
    let bin = bin_dir.join(name);
    step(format!("starting {name} on {bind}"));
    let mut cmd = Command::new(&bin);
    cmd.current_dir(&layout.root)
        .stdin(Stdio::null())
        .envs(stack.env())
        .envs(vars.iter().copied());
    for (key, value) in vars {
        let shown = if key.ends_with("DATABASE__URL") {
            crate::pgurl::redact(value)
        } else {
            (*value).to_owned()
        };
        note(format!("{key}={shown}"));
    }
    let child = cmd
        .process_group(0)
        .spawn()
        .with_context(|| format!("could not start {}", bin.display()))?;
    note(format!("pid {}", child.id()));
    Ok(Service {
        name,
        addr: probe_addr(bind),
        child,
        ready: false,
        exit: None,
    })
}

fn supervise(
    services: &mut [Service],
    signals: &Receiver<i32>,
    context: &DemoContext,
) -> Result<()> {
    let started = Instant::now();
    let mut announced = false;
    loop {
        if let Ok(signal) = signals.try_recv() {
            step(format!(
                "received {}; sent SIGTERM to the services, waiting up to {} s for them to \
                 stop (another Ctrl-C kills them)",
                signal_name(signal),
                STOP_GRACE.as_secs()
            ));
            stop(services, true, signals);
            return report_exits(services);
        }
        for index in 0..services.len() {
            if let Some(status) = services[index].child.try_wait()? {
                services[index].exit = Some(status);
                let name = services[index].name;
                step(format!(
                    "{name} exited unexpectedly ({status}); stopping the others"
                ));
                stop(services, true, signals);
                bail!("{name} exited unexpectedly ({status})");
            }
        }
        if !announced {
            for service in services.iter_mut().filter(|s| !s.ready) {
                if matches!(
                    crate::http::get_status(&service.addr, "/readyz", Duration::from_secs(1)),
                    Ok(200)
                ) {
                    service.ready = true;
                    step(format!(
                        "{} ready: http://{}/ (readiness: http://{}/readyz) after {}",
                        service.name,
                        service.addr,
                        service.addr,
                        sys::secs(started.elapsed())
                    ));
                }
            }
            if services.iter().all(|s| s.ready) {
                announced = true;
                if let Err(err) =
                    publish_demo_orders(context).and_then(|()| seed_label_demo_cast(context))
                {
                    stop(services, true, signals);
                    return Err(err);
                }
                step(format!(
                    "demo running: orders {} | label {} | press Ctrl-C to stop",
                    context.orders_url, context.label_url
                ));
            } else if started.elapsed() > READY_TIMEOUT {
                let waiting: Vec<&str> = services
                    .iter()
                    .filter(|s| !s.ready)
                    .map(|s| s.name)
                    .collect();
                step(format!(
                    "{} did not answer 200 on /readyz within {} s; stopping",
                    waiting.join(" and "),
                    READY_TIMEOUT.as_secs()
                ));
                stop(services, true, signals);
                bail!(
                    "{} not ready within {} s",
                    waiting.join(" and "),
                    READY_TIMEOUT.as_secs()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Fails unless every service exited with status 0.
fn report_exits(services: &[Service]) -> Result<()> {
    let failed: Vec<String> = services
        .iter()
        .filter(|s| !s.exit.is_some_and(|status| status.success()))
        .map(|s| match s.exit {
            Some(status) => format!("{} ({status})", s.name),
            None => format!("{} (not reaped)", s.name),
        })
        .collect();
    if failed.is_empty() {
        step("both services stopped with exit status 0");
        Ok(())
    } else {
        bail!("did not stop cleanly: {}", failed.join(", "))
    }
}

/// Waits for every service to exit, SIGTERM first when `terminate` is set;
/// kills what is left after the grace period or on another signal.
fn stop(services: &mut [Service], terminate: bool, signals: &Receiver<i32>) {
    if terminate {
        for service in services.iter_mut().filter(|s| s.exit.is_none()) {
            if let Err(e) = sys::signal(service.child.id(), "TERM") {
                note(format!("{}: {e:#}", service.name));
            }
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        for service in services.iter_mut().filter(|s| s.exit.is_none()) {
            if let Ok(Some(status)) = service.child.try_wait() {
                note(format!(
                    "{} (pid {}) exited: {status}",
                    service.name,
                    service.child.id()
                ));
                service.exit = Some(status);
            }
        }
        if services.iter().all(|s| s.exit.is_some()) {
            return;
        }
        let again = signals.try_recv().is_ok();
        if again || Instant::now() >= deadline {
            for service in services.iter_mut().filter(|s| s.exit.is_none()) {
                note(format!(
                    "killing {} (pid {}){}",
                    service.name,
                    service.child.id(),
                    if again {
                        ""
                    } else {
                        ": still running after the grace period"
                    }
                ));
                let _ = service.child.kill();
                service.exit = service.child.wait().ok();
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Hook: publish the canonical order and a few hundred generated ones (a few of them
/// invalid, to show the dead-letter topic at work), then print ids to try.
fn publish_demo_orders(context: &DemoContext) -> Result<()> {
    let producer = context.bin_dir.join("orders-producer");
    let brokers = context.stack.kafka_brokers.as_str();
    step("publishing the canonical order b563feb7b2b84b6test");
    let mut canonical = Command::new(&producer);
    canonical
        .args([
            "--brokers",
            brokers,
            "--file",
            "orders-service/tests/fixtures/model.json",
        ])
        .current_dir(&context.root);
    sys::run(&mut canonical)?;
    step("publishing 300 generated orders (3 % of them invalid, for the dead-letter topic)");
    let mut generated = Command::new(&producer);
    generated
        .args([
            "--brokers",
            brokers,
            "--count",
            "300",
            "--seed",
            "2026",
            "--invalid",
            "0.03",
            "--print-ids",
            "3",
        ])
        .current_dir(&context.root);
    let output = sys::capture(&mut generated)?;
    if !output.status.success() {
        bail!("orders-producer failed:\n{}", sys::combined_output(&output));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    if let Some(summary) = lines.next() {
        note(summary);
    }
    let ids: Vec<&str> = lines.map(str::trim).collect();
    step("waiting until orders-service has stored and serves the canonical order");
    let address = context
        .orders_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let started = Instant::now();
    loop {
        match crate::http::get_status(
            &address,
            "/order/b563feb7b2b84b6test",
            Duration::from_secs(2),
        ) {
            Ok(200) => break,
            _ if started.elapsed() > READY_TIMEOUT => {
                bail!("orders-service did not serve the canonical order within {READY_TIMEOUT:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    note(format!(
        "served after {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    step(format!("orders page: {}", context.orders_url));
    note("try these order ids:");
    for id in std::iter::once("b563feb7b2b84b6test").chain(ids.iter().copied()) {
        note(format!("  {id}  ->  {}?id={id}", context.orders_url));
    }
    note(format!(
        "dead letters: target/debug/orders-dlq list   (with ORDERS__KAFKA__BROKERS={brokers})"
    ));
    Ok(())
}

/// Where the demo keeps the cast's logins between runs: git-ignored, readable by the owner
/// only.
fn logins_file(root: &Path) -> PathBuf {
    root.join("target").join("demo").join("logins.txt")
}

/// Writes `text` to `path` with mode 0600 (the file holds passwords).
fn write_private(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Removed first, so an older file with wider permissions is not reused.
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// `--reset`: drops the label-service's schema (the service migrates it again at start)
/// and forgets the old logins, so the seed makes a new cast.
fn reset_label_data(layout: &Layout, stack: &Stack) -> Result<()> {
    step("--reset: dropping the label-service's data (schema label)");
    let mut psql = Command::new("psql");
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(&stack.database_url)
        .args(["-c", "DROP SCHEMA IF EXISTS label CASCADE"]);
    let output = sys::capture(&mut psql)?;
    if !output.status.success() {
        bail!(
            "psql could not drop schema label: {}",
            sys::combined_output(&output)
        );
    }
    let _ = fs::remove_file(logins_file(&layout.root));
    Ok(())
}

/// Hook: seed label-service's demo cast (an admin, four managers, two artists with one
/// release, two non-members) with `label-service seed`, keep the logins it prints in
/// `target/demo/logins.txt`, and print them on this and every later start.
fn seed_label_demo_cast(context: &DemoContext) -> Result<()> {
    step("seeding label-service's demo cast");
    let logins = logins_file(&context.root);
    let shown = logins
        .strip_prefix(&context.root)
        .unwrap_or(&logins)
        .display()
        .to_string();
    let mut seed = Command::new(context.bin_dir.join("label-service"));
    seed.arg("seed")
        .current_dir(&context.root)
        .envs(context.stack.env())
        .env("LABEL__DATABASE__URL", &context.stack.database_url);
    let output = sys::capture(&mut seed)?;
    let table = if output.status.success() {
        let table = String::from_utf8_lossy(&output.stdout)
            .replace("These passwords are shown once; keep them:", "Logins:");
        write_private(&logins, &table)?;
        note(format!("seeded; logins kept in {shown} (mode 0600)"));
        Some(table)
    } else {
        let all = sys::combined_output(&output);
        if !all.contains("seeded only once") {
            bail!("label-service seed failed:\n{all}");
        }
        match fs::read_to_string(&logins) {
            Ok(table) => {
                note(format!("seeded by an earlier demo; logins from {shown}"));
                Some(table)
            }
            Err(_) => {
                note(format!(
                    "seeded by an earlier demo, but {shown} is gone, so the passwords are \
                     unknown: stop and run `cargo xtask demo --reset` for a new cast"
                ));
                None
            }
        }
    };
    if let Some(table) = table {
        for line in table.lines() {
            note(line);
        }
    }
    step(format!(
        "label web pages: {}  (log in with an e-mail and password from the table above)",
        context.label_url
    ));
    let api = format!("{}api/v1", context.label_url);
    step(format!(
        "label API: {api}  (OpenAPI viewer: {}docs)",
        context.label_url
    ));
    let cli = context.bin_dir.join("label-cli");
    let cli = cli
        .strip_prefix(&context.root)
        .unwrap_or(&cli)
        .display()
        .to_string();
    note(format!(
        "label-cli: {cli} login --email lena@label.example   (README.md, section label-cli)"
    ));
    note(format!(
        "curl: curl -s -X POST {api}/auth/login -H 'content-type: application/json' -d '{{\"email\":\"maria@label.example\",\"password\":\"<password>\"}}'"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logins_file_is_private() {
        let dir = std::env::temp_dir().join(format!("xtask-demo-{}", std::process::id()));
        let path = dir.join("logins.txt");
        write_private(&path, "a").expect("first write");
        write_private(&path, "b").expect("second write replaces");
        let mode = fs::metadata(&path).expect("metadata").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        assert_eq!(fs::read_to_string(&path).expect("read"), "b");
        fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn wildcard_binds_are_probed_on_loopback() {
        assert_eq!(probe_addr("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(probe_addr("127.0.0.1:8081"), "127.0.0.1:8081");
    }
}
