//! `cargo xtask bench label`: builds the release binaries and runs the `bench` crate's
//! label benchmark against the stack's PostgreSQL and the installed broker. The
//! measuring is the `bench` crate's; this only prepares and starts it.

use std::process::Command;

use anyhow::{Result, bail};

use crate::setup::{self, Host, Options, Purpose};
use crate::stack::Layout;
use crate::sys::{self, step};
use crate::{bench, broker};

/// `cargo xtask bench label [--quick]`.
pub fn run(layout: &Layout, args: &[String]) -> Result<()> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        other => bail!("bench label: unknown arguments {other:?} (expected --quick)"),
    };
    setup::ensure(Purpose::Demo, &Host::this_machine(), Options::default())?;
    let nisshi = broker::find()?;
    let database_url = bench::database_url(layout)?;
    step("building release binaries: label-service, bench");
    let mut build = sys::cargo();
    build
        .args(["build", "--release", "-p", "label-service", "-p", "bench"])
        .args(["--bin", "label-service", "--bin", "bench"])
        .current_dir(&layout.root);
    sys::run(&mut build)?;
    let release = bench::target_dir(layout).join("release");
    let mut cmd = Command::new(release.join("bench"));
    cmd.arg("label")
        .arg("--service")
        .arg(release.join("label-service"))
        .current_dir(&layout.root)
        .env("DATABASE_URL", database_url)
        .env("NISSHI_BIN", nisshi);
    if quick {
        cmd.arg("--quick");
    }
    sys::run(&mut cmd)
}
