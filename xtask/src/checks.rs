//! `cargo xtask test` (and `ci`): the prerequisites, stack up, then formatting, clippy,
//! the compose check and the whole test suite with the stack's addresses exported. It runs the same
//! commands a developer would; it must not hide or reinterpret failures.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::setup::{self, Host, Options, Purpose};
use crate::stack::{self, Layout};
use crate::sys::{self, step};

#[derive(Debug)]
enum Outcome {
    Passed,
    Failed,
}

#[derive(Debug)]
struct StepResult {
    name: &'static str,
    outcome: Outcome,
    elapsed: Duration,
}

pub fn run(layout: &Layout, extra: &[String]) -> Result<()> {
    let extra = match extra.first().map(String::as_str) {
        Some("--") => &extra[1..],
        _ => extra,
    };
    setup::ensure(Purpose::Test, &Host::this_machine(), Options::default())?;

    let total = Instant::now();
    let mut results = Vec::new();

    let stack = timed(&mut results, "stack up", || stack::up(layout));
    let stack = match stack {
        Ok(stack) => stack,
        Err(e) => {
            summary(&results, total.elapsed());
            return Err(e);
        }
    };
    // Everything `stack up` recorded (DATABASE_URL, KAFKA_BROKERS, and
    // NISSHI_BIN, with which tests start private brokers).
    let env = stack.env();

    let mut steps: Vec<(&'static str, Command)> = Vec::new();
    let mut fmt = sys::cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    steps.push(("fmt", fmt));
    let mut clippy = sys::cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    steps.push(("clippy", clippy));
    let mut nextest = sys::cargo();
    nextest
        .args(["nextest", "run", "--workspace", "--no-fail-fast"])
        .args(extra);
    steps.push(("nextest", nextest));

    // The deployment files: no daemon needed, a few seconds.
    let compose = timed(&mut results, "compose check", || {
        crate::compose::check(layout)
    });
    let mut failures = Vec::new();
    if let Err(e) = compose {
        failures.push(format!("compose check: {e:#}"));
    }

    // Every step runs even when an earlier one failed (a formatting slip
    // should not hide test results); the command fails if any step did.
    for (name, mut cmd) in steps {
        step(format!("running {name}"));
        cmd.current_dir(&layout.root)
            .envs(env.iter().map(|(k, v)| (k, v)));
        let result = timed(&mut results, name, || sys::run(&mut cmd));
        if let Err(e) = result {
            failures.push(format!("{e:#}"));
        }
    }
    summary(&results, total.elapsed());
    if !failures.is_empty() {
        bail!("{}", failures.join("\n       "));
    }
    Ok(())
}

/// Runs one step, recording whether it passed and how long it took.
fn timed<T>(
    results: &mut Vec<StepResult>,
    name: &'static str,
    step: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let started = Instant::now();
    let result = step();
    results.push(StepResult {
        name,
        outcome: if result.is_ok() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        elapsed: started.elapsed(),
    });
    result
}

fn summary(results: &[StepResult], total: Duration) {
    let parts: Vec<String> = results
        .iter()
        .map(|r| match r.outcome {
            Outcome::Passed => format!("{} ok {}", r.name, sys::secs(r.elapsed)),
            Outcome::Failed => format!("{} FAILED {}", r.name, sys::secs(r.elapsed)),
        })
        .collect();
    step(format!(
        "summary: {} | total {}",
        parts.join(" | "),
        sys::secs(total)
    ));
}
