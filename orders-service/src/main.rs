//! The orders-service binary. `orders-service` (or `orders-service serve`) runs the service:
//! it migrates its schema once the database answers, warms the cache up, consumes the
//! orders topic and serves HTTP until SIGINT/SIGTERM. The dead-letter tool is `orders-dlq`
//! (crate orders-tools).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use migrations::Schema;
use orders_service::adapters::cache::{MokaOrderCache, warm_up};
use orders_service::adapters::http;
use orders_service::adapters::kafka::OrdersHandler;
use orders_service::adapters::postgres::PgOrderStore;
use orders_service::app::{Ingest, Queries};
use orders_service::settings::Settings;
use platform::config::ConfigLoader;
use platform::http::ReadyFlag;
use platform::kafka::{ConsumerRunner, KafkaProducer};
use platform::service::Service;
use tokio_util::sync::CancellationToken;

const NAME: &str = "orders-service";

#[derive(Debug, Parser)]
#[command(name = NAME, version, about = "Consumes orders from Kafka, stores them in PostgreSQL, serves them from memory.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None | Some(Command::Serve) => serve().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{NAME}: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings() -> anyhow::Result<Settings> {
    ConfigLoader::new("orders", "ORDERS")
        .load()
        .context("configuration")
}

async fn serve() -> anyhow::Result<()> {
    let settings = load_settings()?;
    let service = Service::start(NAME, &settings.telemetry)?;

    let pool = settings.database.lazy_pool(NAME, Schema::Orders.name())?;
    let producer = KafkaProducer::new(&settings.kafka, NAME).context("kafka producer")?;
    service.watch_database(&pool);
    service.watch_kafka(&producer);

    let store = Arc::new(PgOrderStore::new(pool.clone()));
    let cache = Arc::new(MokaOrderCache::new(
        settings.cache.max_bytes,
        settings.cache.negative_ttl,
    ));
    let ingest = Ingest::new(
        Arc::clone(&store),
        Arc::clone(&cache),
        settings.validation.rules(),
    );
    let runner = ConsumerRunner::new(
        &settings.kafka,
        settings.topics.subscription(),
        settings.consumer.clone(),
        OrdersHandler::new(ingest),
        Some(producer.clone()),
        NAME,
    )?;
    let migrated = ReadyFlag::new();
    let warmed_up = ReadyFlag::new();
    service.health().register("migrations", migrated.clone());
    service.health().register("warm-up", warmed_up.clone());
    // The consumer waits out trouble without stopping the API: degraded, not unready.
    service
        .health()
        .register_degradable("consumer", runner.ready_flag());

    // Migrations first; then the warm-up and the consumer side by side. Reads during the
    // warm-up fall back to the database.
    let stop = service.stop_token();
    let (schema_ready, schema_gate) = platform::shutdown::gate();
    let migrate_pool = pool.clone();
    let migrate_stop = stop.clone();
    service.spawn("migrations", async move {
        if migrations::apply_with_retry(&migrate_pool, Schema::Orders, &migrate_stop).await? {
            migrated.set(true);
            schema_ready.open();
        }
        migrate_stop.cancelled().await;
        Ok(())
    });
    service.spawn_after("orders-consumer", &schema_gate, runner.run(stop.clone()));
    let warm_store = Arc::clone(&store);
    let warm_cache = Arc::clone(&cache);
    let warm_stop = stop.clone();
    let cache_settings = settings.cache.clone();
    service.spawn_after("cache-warm-up", &schema_gate, async move {
        warm_up_with_retry(&warm_store, &warm_cache, &cache_settings, &warm_stop).await;
        warmed_up.set(true);
        warm_stop.cancelled().await;
        Ok(())
    });
    service.spawn(
        "cache-metrics",
        (*cache)
            .clone()
            .report_metrics(Duration::from_secs(5), stop.clone()),
    );

    service
        .serve_http(&settings.http, http::router(Queries::new(store, cache)))
        .await?;

    let deadline = settings.shutdown.deadline;
    service
        .run_until_stopped(deadline, platform::service::release(producer, pool))
        .await
}

/// Warms the cache up, trying again with backoff while the database is unavailable.
async fn warm_up_with_retry(
    store: &PgOrderStore,
    cache: &Arc<MokaOrderCache>,
    settings: &orders_service::settings::CacheSettings,
    stop: &CancellationToken,
) {
    let warmed = platform::shutdown::retry_until_stopped(
        "warming the cache up",
        stop,
        |_: &orders_service::app::StoreError| true,
        || warm_up(store, cache, settings.warmup_limit, settings.max_bytes),
    )
    .await;
    if let Some(Err(err)) = warmed {
        tracing::error!(error = %err, "cache warm-up gave up");
    }
}
