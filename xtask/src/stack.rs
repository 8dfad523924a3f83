//! `cargo xtask stack up|down|status`: the local PostgreSQL and broker the
//! tests and the demo need, and `target/stack/env`, which records where they
//! are. `down` stops only what xtask itself started.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::sys::{note, step};
use crate::{broker, envfile, pg};

/// Where the stack keeps its state, under the workspace's `target/stack/`
/// (fixed, even when `CARGO_TARGET_DIR` points elsewhere, so every command
/// finds the same state).
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub dir: PathBuf,
    pub env_file: PathBuf,
    pub broker_log: PathBuf,
    pub broker_pid: PathBuf,
    pub pg_dir: PathBuf,
    pub pg_data: PathBuf,
    pub pg_socket: PathBuf,
    pub pg_log: PathBuf,
}

impl Layout {
    pub fn new() -> Self {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf();
        let dir = root.join("target").join("stack");
        let pg_dir = dir.join("pg");
        Self {
            env_file: dir.join("env"),
            broker_log: dir.join("broker.log"),
            broker_pid: dir.join("broker.pid"),
            pg_data: pg_dir.join("data"),
            pg_socket: pg_dir.join("run"),
            pg_log: pg_dir.join("postgres.log"),
            pg_dir,
            dir,
            root,
        }
    }

    /// A path relative to the workspace root, for messages.
    pub fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// Where the running stack is.
#[derive(Debug, Clone)]
pub struct Stack {
    pub database_url: String,
    pub kafka_brokers: String,
    pub nisshi_bin: PathBuf,
}

impl Stack {
    /// The variables written to `target/stack/env` and exported to children.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".to_owned(), self.database_url.clone()),
            ("KAFKA_BROKERS".to_owned(), self.kafka_brokers.clone()),
            (
                "NISSHI_BIN".to_owned(),
                self.nisshi_bin.display().to_string(),
            ),
        ]
    }
}

/// `stack up`: idempotent; a second run only reports.
pub fn up(layout: &Layout) -> Result<Stack> {
    fs::create_dir_all(&layout.dir)
        .with_context(|| format!("creating {}", layout.dir.display()))?;
    // Resolve the broker binary first so a missing install fails before
    // anything is started.
    let nisshi_bin = broker::find()?;
    let kafka_port = broker::port()?;
    let database_url = pg::up(layout)?;
    let kafka_brokers = broker::up(layout, &nisshi_bin, kafka_port)?;
    let stack = Stack {
        database_url,
        kafka_brokers,
        nisshi_bin,
    };
    write_env(layout, &stack)?;
    Ok(stack)
}

fn write_env(layout: &Layout, stack: &Stack) -> Result<()> {
    let text = envfile::render(
        "Written by `cargo xtask stack up`: where the local stack runs.\n\
         `cargo xtask test` and `cargo xtask demo` export these to their children;\n\
         in a shell: set -a; . target/stack/env; set +a",
        &stack.env(),
    )
    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", layout.env_file.display()))?;
    let path = &layout.env_file;
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        step(format!("{} is up to date", layout.rel(path)));
    } else {
        fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
        step(format!("wrote {}", layout.rel(path)));
    }
    for (key, value) in stack.env() {
        let value = if key == "DATABASE_URL" {
            crate::pgurl::redact(&value)
        } else {
            value
        };
        note(format!("{key}={value}"));
    }
    Ok(())
}

/// Reads `target/stack/env`; empty when it does not exist.
pub fn load_env(layout: &Layout) -> Result<Vec<(String, String)>> {
    match fs::read_to_string(&layout.env_file) {
        Ok(text) => {
            envfile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", layout.env_file.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", layout.env_file.display())),
    }
}

/// `stack down`: stops the broker and the private cluster if xtask started
/// them, and forgets the recorded addresses.
pub fn down(layout: &Layout) -> Result<()> {
    broker::down(layout)?;
    pg::down(layout)?;
    match fs::remove_file(&layout.env_file) {
        Ok(()) => step(format!("removed {}", layout.rel(&layout.env_file))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("removing {}", layout.env_file.display()));
        }
    }
    Ok(())
}

/// `stack status`: each component, its address, up or down, pid and log.
pub fn status(layout: &Layout) -> Result<()> {
    let env = load_env(layout)?;
    let database_url =
        envfile::get(&env, "DATABASE_URL").map_or_else(pg::requested_url, str::to_owned);
    let brokers = match envfile::get(&env, "KAFKA_BROKERS") {
        Some(brokers) => brokers.to_owned(),
        None => format!("127.0.0.1:{}", broker::port()?),
    };
    println!(
        "{:<10} {:<48} {:<5} details",
        "component", "address", "state"
    );
    pg::status(layout, &database_url);
    broker::status(layout, &brokers);
    if env.is_empty() {
        println!(
            "{:<10} {:<48} {:<5} run `cargo xtask stack up`",
            "env",
            layout.rel(&layout.env_file),
            "none"
        );
    } else {
        println!(
            "{:<10} {:<48} {:<5} {}",
            "env",
            layout.rel(&layout.env_file),
            "ok",
            env.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
