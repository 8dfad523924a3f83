//! The label-service binary: loads settings, migrates its schema once the database answers,
//! relays its outbox to Kafka and serves HTTP until SIGINT/SIGTERM.

use std::process::ExitCode;

use anyhow::Context as _;
use axum::Router;
use label_service::settings::Settings;
use migrations::Schema;
use platform::config::ConfigLoader;
use platform::http::ReadyFlag;
use platform::kafka::KafkaProducer;
use platform::outbox::{OutboxTable, Relay};
use platform::service::Service;

const NAME: &str = "label-service";

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
    let settings: Settings = ConfigLoader::new("label", "LABEL")
        .load()
        .context("configuration")?;
    let service = Service::start(NAME, &settings.telemetry)?;

    let pool = settings.database.lazy_pool(NAME, Schema::Label.name())?;
    let producer = KafkaProducer::new(&settings.kafka, NAME).context("kafka producer")?;
    let migrated = ReadyFlag::new();
    service.watch_database(&pool);
    service.watch_kafka(&producer);
    service.health().register("migrations", migrated.clone());

    let stop = service.stop_token();
    let migrate_pool = pool.clone();
    let relay = Relay::new(
        pool.clone(),
        producer.clone(),
        OutboxTable::new("label.outbox")?,
        settings.outbox.clone(),
    );
    service.spawn("migrations-then-outbox-relay", async move {
        if migrations::apply_with_retry(&migrate_pool, Schema::Label, &stop).await? {
            migrated.set(true);
            // The relay needs the outbox table: it starts once the schema is there.
            relay.run(stop.clone()).await?;
        }
        stop.cancelled().await;
        Ok(())
    });
    service.serve_http(&settings.http, Router::new()).await?;

    let deadline = settings.shutdown.deadline;
    service
        .run_until_stopped(deadline, platform::service::release(producer, pool))
        .await
}
