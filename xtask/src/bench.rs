//! `cargo xtask bench orders [--quick] [--keep]` and `cargo xtask bench label [--quick]`:
//! the prerequisite check, the release build, the stack's database URL and the broker; the
//! measuring is the `bench` crate's (`bench orders`, `bench label`), which this starts and
//! waits for.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail};

use crate::setup::{self, Host, Options, Purpose};
use crate::stack::{self, Layout};
use crate::sys::{self, step};
use crate::{broker, envfile, pg, pgurl};

/// `cargo xtask bench orders [--quick] [--keep]`.
pub fn orders(layout: &Layout, args: &[String]) -> Result<()> {
    let flags = flags(args, &["--quick", "--keep"], "bench orders")?;
    setup::ensure(Purpose::Bench, &Host::this_machine(), Options::default())?;
    let (psql, wrk, nginx) = (tool("psql")?, tool("wrk")?, tool("nginx")?);
    let nisshi = broker::find()?;
    let database_url = database_url(layout)?;
    // The measured binaries are built alone, as the results describe, so that the bench
    // crate's dependencies cannot change their features.
    step("building release binaries: orders-service, orders-tools");
    build(
        layout,
        &["-p", "orders-service", "-p", "orders-tools", "--bins"],
    )?;
    step("building release binary: bench");
    build(layout, &["-p", "bench", "--bin", "bench"])?;
    let release = target_dir(layout).join("release");
    let dir = layout.root.join("target").join("bench");
    let mut cmd = Command::new(release.join("bench"));
    cmd.arg("orders")
        .arg("--service")
        .arg(release.join("orders-service"))
        .arg("--producer")
        .arg(release.join("orders-producer"))
        .arg("--psql")
        .arg(psql)
        .arg("--wrk")
        .arg(wrk)
        .arg("--nginx")
        .arg(nginx)
        .arg("--dir")
        .arg(&dir)
        .arg("--output")
        .arg(if flags.contains(&"--quick") {
            dir.join("benchmarks-quick.md")
        } else {
            layout.root.join("docs").join("benchmarks.md")
        })
        .args(flags)
        .current_dir(&layout.root)
        .env("DATABASE_URL", database_url)
        .env("NISSHI_BIN", nisshi);
    run_bench(&mut cmd)
}

/// `cargo xtask bench label [--quick]`.
pub fn label(layout: &Layout, args: &[String]) -> Result<()> {
    let flags = flags(args, &["--quick"], "bench label")?;
    // The label benchmark needs what the demo needs: the stack and the broker.
    setup::ensure(Purpose::Demo, &Host::this_machine(), Options::default())?;
    let nisshi = broker::find()?;
    let database_url = database_url(layout)?;
    step("building release binaries: label-service, bench");
    build(
        layout,
        &[
            "-p",
            "label-service",
            "-p",
            "bench",
            "--bin",
            "label-service",
            "--bin",
            "bench",
        ],
    )?;
    let release = target_dir(layout).join("release");
    let mut cmd = Command::new(release.join("bench"));
    cmd.arg("label")
        .arg("--service")
        .arg(release.join("label-service"))
        .args(flags)
        .current_dir(&layout.root)
        .env("DATABASE_URL", database_url)
        .env("NISSHI_BIN", nisshi);
    run_bench(&mut cmd)
}

/// The flags of `args`, each one of `allowed`.
fn flags<'a>(args: &'a [String], allowed: &[&str], command: &str) -> Result<Vec<&'a str>> {
    args.iter()
        .map(|arg| {
            allowed
                .iter()
                .find(|flag| **flag == arg.as_str())
                .map(|_| arg.as_str())
                .ok_or_else(|| {
                    anyhow!(
                        "{command}: unknown flag `{arg}` (expected {})",
                        allowed.join(", ")
                    )
                })
        })
        .collect()
}

/// A reference tool of `bench orders`, on `PATH` or in /usr/sbin (nginx).
fn tool(name: &str) -> Result<PathBuf> {
    sys::which(name)
        .or_else(|| {
            let sbin = PathBuf::from("/usr/sbin").join(name);
            sys::is_executable(&sbin).then_some(sbin)
        })
        .with_context(|| {
            format!(
                "{name} not found; `cargo xtask setup bench` installs it (apt-get install nginx \
                 wrk postgresql-client, as root)"
            )
        })
}

fn build(layout: &Layout, args: &[&str]) -> Result<()> {
    let mut build = sys::cargo();
    build
        .args(["build", "--release"])
        .args(args)
        .current_dir(&layout.root);
    sys::run(&mut build)
}

/// Runs the bench binary and waits for it. A Ctrl-C reaches it from the terminal; xtask
/// stays alive meanwhile and passes a SIGINT or SIGTERM sent to it alone on, so that the
/// benchmark stops its processes and drops its databases before xtask returns.
fn run_bench(cmd: &mut Command) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let line = sys::display(cmd);
    sys::note(format!("$ {line}"));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing signal handlers")?;
    let handle = signals.handle();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let pid = child.id();
    let forwarder = std::thread::spawn(move || {
        for signal in signals.forever() {
            let name = if signal == SIGTERM { "TERM" } else { "INT" };
            let _ = sys::signal(pid, name);
        }
    });
    let status = child.wait();
    handle.close();
    let _ = forwarder.join();
    let status = status.with_context(|| format!("waiting for `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// The database URL of the stack: `target/stack/env`, else `DATABASE_URL` (or the default),
/// making sure the server answers the way `stack up` does.
fn database_url(layout: &Layout) -> Result<String> {
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
fn target_dir(layout: &Layout) -> PathBuf {
    ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR"]
        .iter()
        .find_map(|key| std::env::var_os(key).filter(|v| !v.is_empty()))
        .map_or_else(|| layout.root.join("target"), |dir| layout.root.join(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_known_flags_pass() {
        let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let both = args(&["--quick", "--keep"]);
        assert_eq!(
            flags(&both, &["--quick", "--keep"], "bench orders").ok(),
            Some(vec!["--quick", "--keep"])
        );
        assert!(flags(&args(&["--fast"]), &["--quick"], "bench label").is_err());
        assert!(flags(&args(&["--keep"]), &["--quick"], "bench label").is_err());
        assert_eq!(flags(&[], &["--quick"], "bench label").ok(), Some(vec![]));
    }
}
