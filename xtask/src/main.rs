//! cargo xtask: the developer workflows of this workspace (local stack, test,
//! demo, CI). It orchestrates external tools and says what it does; it must
//! not become a second build system or hold project logic.

mod bench;
mod broker;
mod checks;
mod compose;
mod demo;
mod envfile;
mod http;
mod pg;
mod pgurl;
mod setup;
mod stack;
mod sys;
mod tidy;

use std::process::ExitCode;

use stack::Layout;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  stack up        start PostgreSQL (if needed) and the Kafka-protocol broker, create
                  the topics, record their addresses in target/stack/env
  stack down      stop what `stack up` started (never the machine's own PostgreSQL)
  stack status    show each component, its address, up/down, pid and log
  install-broker  install nisshi 0.7.0-pre.2 (the broker) unless it is already installed
  setup [test|demo|bench]... [--dry-run]
                  check what those commands need and install what is missing (as root:
                  apt-get; otherwise it prints the command); test, demo and bench run
                  this check first on their own
  test [-- ARGS]  prerequisites, stack up, cargo fmt --check, clippy -D warnings, compose
                  check, cargo nextest run (ARGS go to nextest)
  demo [--reset]  prerequisites, stack up, build, run orders-service and label-service
                  until Ctrl-C or SIGTERM; prints the demo logins every time (--reset:
                  drop the label data and seed a new cast with new passwords)
  bench orders [--quick] [--keep]
                  benchmark the orders-service (release build, private broker, database
                  orders_bench) against nginx, COPY and a bare SELECT; writes
                  docs/benchmarks.md (--quick: a smaller smoke run, written to
                  target/bench/benchmarks-quick.md; --keep: keep the orders_bench database)
  bench label [--quick]
                  benchmark the label-service (release build, private broker, database
                  label_bench): sign -> On approval latency at 100 requests/s, recovery
                  after SIGKILL, GET /me and POST /requests/sign throughput; writes
                  docs/benchmarks.md (--quick: target/bench/label/label-quick.md)
  ci              what .ci/run runs: exactly `cargo xtask test`
  tidy            check the invariants of ARCHITECTURE.md that the source shows (no I/O
                  crate in domain/ or app/, SQL only in adapters, no service depending
                  on another); also run as a test by `test`
  compose check   validate deploy/compose.yaml with the compose client (with and without
                  its secrets) and lint it and deploy/Dockerfile: pinned images, health
                  checks, depends_on conditions, non-root final images; starts nothing

environment:
  DATABASE_URL    PostgreSQL to use (default postgres://postgres@127.0.0.1:5432/postgres)
  STACK_PG_PORT   port of the private fallback cluster (default 55432)
  PG_BIN_DIR      directory with initdb/pg_ctl (default: found automatically)
  KAFKA_PORT      broker port on 127.0.0.1 (default 9092)
  NISSHI_BIN      broker binary to use; NISSHI_ROOT: install root (default ~/.local/opt/nisshi)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let layout = Layout::new();
    let result = match words.as_slice() {
        ["stack", "up"] => stack::up(&layout).map(drop),
        ["stack", "down"] => stack::down(&layout),
        ["stack", "status"] => stack::status(&layout),
        ["install-broker"] => broker::install(),
        ["test", ..] => checks::run(&layout, &args[1..]),
        ["setup", ..] => setup::run(&args[1..]),
        ["demo"] => demo::run(&layout, demo::Options::default()),
        ["demo", "--reset"] => demo::run(&layout, demo::Options { reset: true }),
        ["bench", "orders", ..] => bench::orders(&layout, &args[2..]),
        ["bench", "label", ..] => bench::label(&layout, &args[2..]),
        ["ci"] => checks::run(&layout, &[]),
        ["compose", "check"] => compose::check(&layout),
        ["tidy"] => tidy::run(&layout.root),
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            if !words.is_empty() {
                eprintln!("error: unknown command `{}`\n", words.join(" "));
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
