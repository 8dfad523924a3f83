//! The orders-service binary: loads settings, migrates its schema once the database answers,
//! and serves HTTP until SIGINT/SIGTERM.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use migrations::Schema;
use orders_service::settings::Settings;
use platform::config::ConfigLoader;
use platform::http::ReadyFlag;
use platform::kafka::KafkaProducer;
use platform::service::Service;

const NAME: &str = "orders-service";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{NAME}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings: Settings = ConfigLoader::new("orders", "ORDERS")
        .load()
        .context("configuration")?;
    let service = Service::start(NAME, &settings.telemetry)?;

    let pool = settings.database.lazy_pool(NAME, Schema::Orders.name())?;
    let producer = KafkaProducer::new(&settings.kafka, NAME).context("kafka producer")?;
    let migrated = ReadyFlag::new();
    service.watch_database(&pool);
    service.watch_kafka(&producer);
    service.health().register("migrations", migrated.clone());

    let stop = service.stop_token();
    let migrate_pool = pool.clone();
    service.spawn("migrations", async move {
        if migrations::apply_with_retry(&migrate_pool, Schema::Orders, &stop).await? {
            migrated.set(true);
        }
        // Stay alive until the stop: a task that ends early stops the service.
        stop.cancelled().await;
        Ok(())
    });
    service.serve_http(&settings.http, Router::new()).await?;

    let deadline = settings.shutdown.deadline;
    service
        .run_until_stopped(deadline, async move {
            if let Err(err) = producer.flush(Duration::from_secs(5)) {
                tracing::warn!(error = %err, "producer flush failed");
            }
            pool.close().await;
        })
        .await
}
