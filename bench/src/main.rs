//! `bench`: the services' benchmarks that drive real binaries over HTTP. `cargo xtask bench
//! orders` and `cargo xtask bench label` build the release binaries and run `bench orders`
//! and `bench label`. A benchmark measures and reports; it fails only when a step cannot be
//! carried out, never because a target is missed, and every load it makes is bounded in
//! count and time.

mod label;
mod orders;
mod support;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "bench", about = "Benchmarks of the services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The orders-service against nginx, COPY and a bare SELECT: HTTP, ingest, warm-up,
    /// memory.
    Orders(orders::Args),
    /// The label-service: deferred-step latency, API throughput, recovery after a crash.
    Label(label::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // Each stops on Ctrl-C or SIGTERM itself, to stop its processes and drop its
        // databases before it returns.
        Command::Orders(args) => orders::run(args).await,
        Command::Label(args) => label::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
