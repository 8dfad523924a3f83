//! `orders-dlq`: lists the orders-service's dead-letter topic with the reasons, and publishes
//! a record again to the orders topic after its cause was fixed. It reads the service's own
//! settings (`ORDERS__KAFKA__BROKERS`, `ORDERS__TOPICS__...`, `config/orders/*.yaml`).

use std::process::ExitCode;

use clap::Parser;
use orders_service::settings::Settings;
use orders_tools::dlq::{self, DlqArgs};
use platform::config::ConfigLoader;

#[derive(Debug, Parser)]
#[command(
    name = "orders-dlq",
    version,
    about = "Inspect the orders-service's dead-letter topic and replay records to the orders topic."
)]
struct Cli {
    #[command(flatten)]
    args: DlqArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings: Settings = match ConfigLoader::new("orders", "ORDERS").load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("orders-dlq: configuration: {err}");
            return ExitCode::FAILURE;
        }
    };
    match dlq::run(&settings, cli.args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("orders-dlq: {err:#}");
            ExitCode::FAILURE
        }
    }
}
