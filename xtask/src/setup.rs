//! `cargo xtask setup`, and the prerequisite check that `test`, `demo` and `bench` run
//! first: every tool a workflow needs is looked for before anything is built, and what is
//! missing is installed (Debian packages with `apt-get` as root, cargo-nextest and the
//! broker with `cargo install`). As another user it prints the exact command and stops.
//! It must stay fast when everything is there: one `dpkg-query`, a few `--version` probes.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

use crate::sys::{self, note, step};
use crate::{broker, pg};

/// The workflow whose prerequisites are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `cargo xtask test`: the whole suite (browser and Prometheus tests, compose check).
    Test,
    /// `cargo xtask demo`: the stack and the services.
    Demo,
    /// `cargo xtask bench`: the stack, nginx and wrk.
    Bench,
}

impl Purpose {
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "test" => Some(Self::Test),
            "demo" => Some(Self::Demo),
            "bench" => Some(Self::Bench),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Demo => "demo",
            Self::Bench => "bench",
        }
    }

    /// The Debian packages the workflow needs beyond PostgreSQL, each with why.
    fn packages(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Test => &[
                ("chromium", "the browser tests"),
                ("chromium-driver", "the browser tests (chromedriver)"),
                (
                    "prometheus",
                    "the test in which a real Prometheus scrapes both services",
                ),
                ("docker-compose", "the compose check of deploy/"),
            ],
            Self::Demo => &[],
            Self::Bench => &[
                ("nginx", "the HTTP baseline"),
                ("wrk", "the HTTP load generator"),
            ],
        }
    }

    /// Whether the workflow runs rustfmt, clippy and nextest.
    fn needs_test_tools(self) -> bool {
        self == Self::Test
    }
}

/// How the machine is asked about packages and told to install them. The commands are
/// looked up on `PATH`, so a test can put fakes in front.
#[derive(Debug, Clone)]
pub struct Host {
    /// Root may install; anyone else is told the command.
    pub is_root: bool,
}

impl Host {
    pub fn this_machine() -> Self {
        Self {
            is_root: sys::effective_uid() == Some(0),
        }
    }
}

/// Options of one check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Say what would be installed, install nothing.
    pub dry_run: bool,
}

/// What the check found missing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Missing {
    /// Debian packages, sorted.
    pub packages: Vec<String>,
    /// rustup components (installed only by the user: rustup's server is not reachable
    /// from every machine).
    pub components: Vec<String>,
    pub nextest: bool,
    pub broker: bool,
}

impl Missing {
    fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.components.is_empty() && !self.nextest && !self.broker
    }
}

/// The apt commands that install `packages`, as root runs them.
pub fn apt_commands(packages: &[String]) -> Vec<Vec<String>> {
    let mut install: Vec<String> = ["apt-get", "install", "-y", "--no-install-recommends"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    install.extend(packages.iter().cloned());
    vec![vec!["apt-get".to_owned(), "update".to_owned()], install]
}

/// What a user who is not root is told to run.
pub fn sudo_hint(packages: &[String]) -> String {
    apt_commands(packages)
        .iter()
        .map(|words| format!("sudo {}", words.join(" ")))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Checks the prerequisites of `purpose` and installs what is missing; fails before
/// anything is built when something cannot be installed from here.
pub fn ensure(purpose: Purpose, host: &Host, options: Options) -> Result<()> {
    let started = Instant::now();
    let wanted = wanted_packages(purpose);
    let missing = Missing {
        packages: missing_packages(&wanted)?,
        components: if purpose.needs_test_tools() {
            missing_components()
        } else {
            Vec::new()
        },
        nextest: purpose.needs_test_tools() && !cargo_subcommand_works("nextest"),
        broker: broker::find().is_err(),
    };
    if missing.is_empty() {
        step(format!(
            "prerequisites of `{}`: all present ({}; checked in {})",
            purpose.name(),
            present_summary(&wanted),
            sys::secs(started.elapsed())
        ));
        return Ok(());
    }
    report(purpose, &missing);
    if !missing.components.is_empty() {
        bail!(
            "install the missing Rust components first: rustup component add {}",
            missing.components.join(" ")
        );
    }
    if options.dry_run {
        if !missing.packages.is_empty() {
            if host.is_root {
                for words in apt_commands(&missing.packages) {
                    note(format!("would run: {}", words.join(" ")));
                }
            } else {
                note(format!(
                    "would stop and ask for: {}",
                    sudo_hint(&missing.packages)
                ));
            }
        }
        if missing.nextest {
            note("would run: cargo install cargo-nextest --locked");
        }
        if missing.broker {
            note(format!("would run: {}", broker::install_command_line()));
        }
        return Ok(());
    }
    if !missing.packages.is_empty() && !host.is_root {
        bail!(
            "these Debian packages are needed and only root can install them; run\n    {}\n\
             then this command again",
            sudo_hint(&missing.packages)
        );
    }
    if !missing.packages.is_empty() {
        install_packages(&missing.packages)?;
        let still = missing_packages(&missing.packages)?;
        if !still.is_empty() {
            bail!(
                "apt-get finished, but these packages are still not installed: {}",
                still.join(" ")
            );
        }
    }
    if missing.nextest {
        step("installing cargo-nextest (a few minutes)");
        sys::run(sys::cargo().args(["install", "cargo-nextest", "--locked"]))?;
    }
    if missing.broker {
        broker::install()?;
    }
    step(format!(
        "prerequisites of `{}` installed in {}",
        purpose.name(),
        sys::secs(started.elapsed())
    ));
    Ok(())
}

/// The packages of `purpose`, plus the PostgreSQL server when neither a server answers nor
/// its binaries (for the private cluster) are here.
fn wanted_packages(purpose: Purpose) -> Vec<&'static str> {
    let mut wanted: Vec<&'static str> = purpose.packages().iter().map(|(p, _)| *p).collect();
    if !pg::reachable() && pg::bin_dir().is_err() {
        wanted.push("postgresql");
    }
    if purpose == Purpose::Bench && sys::which("psql").is_none() {
        wanted.push("postgresql-client");
    }
    wanted
}

fn present_summary(wanted: &[&str]) -> String {
    let mut parts = vec!["broker".to_owned()];
    if !wanted.is_empty() {
        parts.push(format!("packages {}", wanted.join(", ")));
    }
    parts.join("; ")
}

fn report(purpose: Purpose, missing: &Missing) {
    step(format!("prerequisites of `{}`: missing", purpose.name()));
    let why = |package: &str| {
        purpose
            .packages()
            .iter()
            .find(|(p, _)| *p == package)
            .map_or("the local PostgreSQL", |(_, why)| *why)
    };
    for package in &missing.packages {
        note(format!("Debian package {package} (for {})", why(package)));
    }
    for component in &missing.components {
        note(format!("Rust component {component}"));
    }
    if missing.nextest {
        note("cargo-nextest (runs the test suite)");
    }
    if missing.broker {
        note(format!(
            "the broker nisshi {} (a release build from crates.io, about {} minutes)",
            broker::VERSION,
            broker::INSTALL_MINUTES
        ));
    }
}

/// Which of `packages` are not installed, by one `dpkg-query`; on a machine without dpkg,
/// by the commands they provide.
pub fn missing_packages(packages: &[impl AsRef<str>]) -> Result<Vec<String>> {
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = packages.iter().map(AsRef::as_ref).collect();
    let Some(dpkg_query) = sys::which("dpkg-query") else {
        let missing: BTreeSet<String> = names
            .iter()
            .filter(|p| sys::which(command_of(p)).is_none())
            .map(|p| (*p).to_owned())
            .collect();
        return Ok(missing.into_iter().collect());
    };
    let output = sys::capture(
        Command::new(dpkg_query)
            .args([
                "--show",
                "--showformat",
                "${Package} ${db:Status-Abbrev}\\n",
            ])
            .args(&names),
    )?;
    // dpkg-query exits 1 when a package is unknown to it; its stdout still lists the rest.
    let installed = installed_from_dpkg(&String::from_utf8_lossy(&output.stdout));
    let missing: BTreeSet<String> = names
        .iter()
        .filter(|p| !installed.contains(**p))
        .map(|p| (*p).to_owned())
        .collect();
    Ok(missing.into_iter().collect())
}

/// The names `dpkg-query --showformat '${Package} ${db:Status-Abbrev}'` reports as
/// installed (`ii`); architecture suffixes are dropped.
pub fn installed_from_dpkg(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let status = words.next()?;
            status.starts_with("ii").then(|| {
                name.split_once(':')
                    .map_or(name, |(bare, _)| bare)
                    .to_owned()
            })
        })
        .collect()
}

/// The command a package provides, for machines without dpkg.
fn command_of(package: &str) -> &str {
    match package {
        "chromium-driver" => "chromedriver",
        "postgresql" => "initdb",
        "postgresql-client" => "psql",
        other => other,
    }
}

fn missing_components() -> Vec<String> {
    [("rustfmt", "fmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(_, subcommand)| !cargo_subcommand_works(subcommand))
        .map(|(component, _)| component.to_owned())
        .collect()
}

fn cargo_subcommand_works(subcommand: &str) -> bool {
    sys::capture(sys::cargo().args([subcommand, "--version"])).is_ok_and(|o| o.status.success())
}

fn install_packages(packages: &[String]) -> Result<()> {
    step(format!(
        "installing Debian packages: {} (apt-get update, then install)",
        packages.join(" ")
    ));
    for words in apt_commands(packages) {
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        sys::run(&mut cmd)?;
    }
    Ok(())
}

/// `cargo xtask setup [test|demo|bench]... [--dry-run]`: the check on its own.
pub fn run(args: &[String]) -> Result<()> {
    let mut options = Options::default();
    let mut purposes = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--dry-run" => options.dry_run = true,
            word => match Purpose::parse(word) {
                Some(purpose) => purposes.push(purpose),
                None => bail!("unknown argument `{word}`; expected test, demo, bench or --dry-run"),
            },
        }
    }
    if purposes.is_empty() {
        purposes = vec![Purpose::Test, Purpose::Demo];
    }
    let host = Host::this_machine();
    for purpose in purposes {
        ensure(purpose, &host, options)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_output_counts_only_installed_packages() {
        let stdout = "chromium ii \nnginx un \nwrk:amd64 ii \nprometheus rc \n";
        let installed = installed_from_dpkg(stdout);
        assert_eq!(
            installed.into_iter().collect::<Vec<_>>(),
            vec!["chromium".to_owned(), "wrk".to_owned()]
        );
        assert!(installed_from_dpkg("").is_empty());
    }

    #[test]
    fn a_user_who_is_not_root_gets_the_exact_command() {
        let packages = vec!["chromium".to_owned(), "prometheus".to_owned()];
        assert_eq!(
            sudo_hint(&packages),
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends \
             chromium prometheus"
        );
    }

    #[test]
    fn every_purpose_is_named_and_parsed_back() {
        for purpose in [Purpose::Test, Purpose::Demo, Purpose::Bench] {
            assert_eq!(Purpose::parse(purpose.name()), Some(purpose));
        }
        assert_eq!(Purpose::parse("deploy"), None);
    }
}
