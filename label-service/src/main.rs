//! The label-service binary. `label-service` (or `label-service serve`) runs the service:
//! it migrates its schema once the database answers, creates the first admin from
//! configuration, relays its outbox to Kafka, consumes the deferred actions and serves the
//! HTTP API until SIGINT/SIGTERM. `label-service seed` fills a fresh database with the demo
//! cast and prints their passwords once.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use clap::{Parser, Subcommand};
use label_service::adapters::http;
use label_service::adapters::kafka::DeferredActionsHandler;
use label_service::adapters::passwords::Argon2Hasher;
use label_service::adapters::postgres::PgStore;
use label_service::adapters::web;
use label_service::app::{AppError, Label};
use label_service::settings::Settings;
use migrations::Schema;
use platform::config::ConfigLoader;
use platform::http::ReadyFlag;
use platform::kafka::{ConsumerRunner, KafkaProducer};
use platform::outbox::{OutboxTable, Relay};
use platform::service::Service;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use secrecy::ExposeSecret as _;
use tokio_util::sync::CancellationToken;

const NAME: &str = "label-service";

#[derive(Debug, Parser)]
#[command(name = NAME, version, about = "A music label's request system: join, publish, evaluate, accept.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Fill a fresh database with the demo cast and print their passwords once.
    Seed,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None | Some(Command::Serve) => serve().await,
        Some(Command::Seed) => seed().await,
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
    ConfigLoader::new("label", "LABEL")
        .load()
        .context("configuration")
}

/// The environment the service runs in (`APP_ENV`, `development` when unset).
fn environment() -> String {
    std::env::var(platform::config::APP_ENV)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| platform::config::DEFAULT_ENVIRONMENT.to_owned())
}

async fn serve() -> anyhow::Result<()> {
    let settings = load_settings()?;
    settings
        .auth
        .check_for_environment(&environment())
        .map_err(anyhow::Error::msg)
        .context("refusing to start")?;
    let service = Service::start(NAME, &settings.telemetry)?;

    let pool = settings.database.lazy_pool(NAME, Schema::Label.name())?;
    let producer = KafkaProducer::new(&settings.kafka, NAME).context("kafka producer")?;
    service.watch_database(&pool);
    service.watch_kafka(&producer);

    let store = PgStore::new(pool.clone(), settings.topics.deferred())?;
    let label = Label::new(store, Argon2Hasher::new(), settings.requests.rules());
    let runner = ConsumerRunner::new(
        &settings.kafka,
        settings.topics.subscription(),
        settings.consumer.clone(),
        DeferredActionsHandler::new(label.clone()),
        Some(producer.clone()),
        NAME,
    )?;
    let relay = Relay::new(
        pool.clone(),
        producer.clone(),
        OutboxTable::new("label.outbox")?,
        settings.outbox.clone(),
    );
    let migrated = ReadyFlag::new();
    service.health().register("migrations", migrated.clone());
    // The consumer waits out trouble without stopping the API: degraded, not unready.
    service
        .health()
        .register_degradable("consumer", runner.ready_flag());

    // Migrations first; then the first admin, the outbox relay and the consumer.
    let stop = service.stop_token();
    let (schema_ready, schema_gate) = platform::shutdown::gate();
    let migrate_pool = pool.clone();
    let migrate_stop = stop.clone();
    let admin_label = label.clone();
    let admin = settings.admin.clone();
    service.spawn("migrations-then-admin", async move {
        if migrations::apply_with_retry(&migrate_pool, Schema::Label, &migrate_stop).await? {
            ensure_admin(&admin_label, &admin, &migrate_stop).await?;
            migrated.set(true);
            schema_ready.open();
        }
        migrate_stop.cancelled().await;
        Ok(())
    });
    service.spawn_after("outbox-relay", &schema_gate, relay.run(stop.clone()));
    service.spawn_after(
        "deferred-actions-consumer",
        &schema_gate,
        runner.run(stop.clone()),
    );

    service
        .serve_http(&settings.http, {
            // One login budget for the API and the web pages.
            let limits = http::limits::LoginLimits::from_settings(&settings.auth);
            http::router(label.clone(), settings.auth.clone(), Arc::clone(&limits)).merge(
                web::router(label, settings.auth.clone(), settings.web.clone(), limits),
            )
        })
        .await?;

    let deadline = settings.shutdown.deadline;
    service
        .run_until_stopped(deadline, platform::service::release(producer, pool))
        .await
}

/// Creates the configured first admin when no admin exists, trying again while the
/// database is unavailable. Settings that cannot make an admin stop the service.
async fn ensure_admin(
    label: &Label<PgStore, Argon2Hasher>,
    admin: &label_service::settings::AdminSettings,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (&admin.email, &admin.password) else {
        tracing::info!("admin.email/admin.password not set: no first admin is created");
        return Ok(());
    };
    let created = platform::shutdown::retry_until_stopped(
        "creating the first admin",
        stop,
        AppError::is_transient,
        || label.ensure_admin(&admin.name, email, password.expose_secret()),
    )
    .await;
    match created {
        None => Ok(()),
        Some(Ok(Some(user))) => {
            tracing::info!(user_id = user.id.get(), email = %user.email, "first admin created");
            Ok(())
        }
        Some(Ok(None)) => Ok(()),
        Some(Err(err)) => Err(anyhow::anyhow!("admin settings: {err}")),
    }
}

async fn seed() -> anyhow::Result<()> {
    let settings = load_settings()?;
    let pool = settings.database.lazy_pool(NAME, Schema::Label.name())?;
    migrations::apply(&pool, Schema::Label)
        .await
        .context("migrating the label schema")?;
    let store = PgStore::new(pool.clone(), settings.topics.deferred())?;
    let label = Label::new(store, Argon2Hasher::new(), settings.requests.rules());
    let report = label
        .seed_demo(Utc::now().date_naive(), || {
            rand::rng()
                .sample_iter(&Alphanumeric)
                .take(16)
                .map(char::from)
                .collect()
        })
        .await
        .map_err(|err| anyhow::anyhow!("seeding: {err}"))?;
    println!("Demo cast seeded. These passwords are shown once; keep them:");
    println!();
    println!(
        "{:<10} {:<24} {:<18} {:<13} name",
        "role", "e-mail", "password", "nickname"
    );
    for person in &report.people {
        println!(
            "{:<10} {:<24} {:<18} {:<13} {}",
            person.user.role.as_str(),
            person.user.email,
            person.password,
            person.nickname.as_deref().unwrap_or("-"),
            person.user.name,
        );
    }
    println!();
    println!(
        "Unpublished release {} (2 rock tracks) belongs to the first artist.",
        report.release_id
    );
    pool.close().await;
    Ok(())
}
