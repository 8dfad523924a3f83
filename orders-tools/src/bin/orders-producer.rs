//! The orders-producer binary: publishes generated orders, optionally mixed with invalid,
//! duplicate and conflicting messages, or the messages of a file, to the orders topic, for
//! demos, load tests and integration tests.
//!
//! It must not change what it sends from a file (bytes go out as read) and must not decide
//! anything for the service: it only counts what it sent. Exit codes: 0 all delivered,
//! 1 a send failed, 2 a usage error, 3 no broker answered.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser};
use futures::StreamExt as _;
use futures::stream::{self, LocalBoxStream};
use indicatif::{ProgressBar, ProgressStyle};
use orders_service::domain::{Order, Rules, validate};
use orders_tools::generator::{Generator, InvalidKind};
use platform::kafka::{KafkaProducer, KafkaSettings, OutgoingRecord};
use platform::telemetry::{self, LogFormat, TelemetrySettings};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tracing::Instrument as _;

const NAME: &str = "orders-producer";
const EXIT_SEND_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_NO_BROKER: u8 = 3;
/// How many earlier orders duplicates and conflicts are drawn from: enough variety without
/// keeping a whole load run in memory.
const RECENT_ORDERS: usize = 1024;
/// The target of the spans that must be recorded even when logs are quiet, so that the
/// default log filter can enable them without enabling this binary's info logs.
const TRACE_TARGET: &str = "orders_producer::trace";

/// Publishes orders to Kafka for demos and load: generated (deterministic with --seed), with
/// optional shares of invalid, duplicate and conflicting messages, or the messages of a file.
#[derive(Debug, Parser)]
#[command(
    name = NAME,
    version,
    about,
    after_help = "Exit status: 0 when every message was delivered, 1 when a send failed, \
                  2 for a usage error, 3 when no broker answered within --timeout."
)]
struct Cli {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "ORDERS__KAFKA__BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,

    /// Topic to publish to.
    #[arg(long, default_value = "orders")]
    topic: String,

    /// Number of messages to send (ignored with --file).
    #[arg(long, default_value_t = 100)]
    count: u64,

    /// Messages per second; 0 sends as fast as possible.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    rate: f64,

    /// Seed of the generator; the same seed and base time send the same messages. Random by
    /// default, and printed in the summary so that a run can be repeated.
    #[arg(long)]
    seed: Option<u64>,

    /// Orders are created in the 30 days before this RFC 3339 time. Defaults to the start of
    /// the current UTC day, so that a seed repeats a run all day long.
    #[arg(long, value_name = "RFC3339")]
    base_time: Option<DateTime<Utc>>,

    /// Publish this file as it is instead of generated orders: a file that is one JSON value
    /// is one message; otherwise (or with a .jsonl/.ndjson name) every non-empty line is one.
    /// The key is the message's `order_uid` when it has one.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,

    /// Share of invalid messages, 0 to 1.
    #[arg(long, default_value_t = 0.0, value_name = "RATIO", value_parser = parse_ratio)]
    invalid: f64,

    /// Kinds of invalid messages to mix in, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "KINDS",
        default_values_t = InvalidKind::ALL
    )]
    invalid_kinds: Vec<InvalidKind>,

    /// Share of messages that re-send an earlier order byte for byte, 0 to 1.
    #[arg(long, default_value_t = 0.0, value_name = "RATIO", value_parser = parse_ratio)]
    duplicates: f64,

    /// Share of messages that send a different order under an earlier order's uid, 0 to 1.
    #[arg(long, default_value_t = 0.0, value_name = "RATIO", value_parser = parse_ratio)]
    conflicts: f64,

    /// Seconds to wait for a broker to answer before giving up (exit status 3).
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    timeout: u64,

    /// Most sends waiting for their acknowledgement at once.
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "N",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    max_in_flight: u64,

    /// Print the summary as one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,

    /// After the summary, print the first K valid order ids, one per line.
    #[arg(long, value_name = "K")]
    print_ids: Option<usize>,

    /// OTLP/HTTP collector for traces, such as http://127.0.0.1:4318.
    #[arg(long, env = "ORDERS__TELEMETRY__OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,

    /// Log at info level (default: warnings only).
    #[arg(short, long)]
    verbose: bool,
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("{text:?} is not a ratio between 0 and 1")),
    }
}

/// A rate of 0 (unlimited) or between one message a day and a billion a second, so that
/// the interval between two messages is always a usable duration.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate == 0.0 || (1.0 / 86_400.0..=1e9).contains(&rate) => Ok(rate),
        _ => Err(format!(
            "{text:?} is not 0 or a rate between 0.0000116 (one a day) and 1e9 messages per second"
        )),
    }
}

/// What a message is, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Valid,
    Invalid,
    Duplicate,
    Conflict,
}

/// One message to publish.
#[derive(Debug)]
struct Message {
    kind: Kind,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

/// The shares of each kind of generated message.
#[derive(Debug, Clone)]
struct Mix {
    invalid: f64,
    duplicates: f64,
    conflicts: f64,
    kinds: Vec<InvalidKind>,
}

/// The sequence of generated messages: every choice comes from seeded generators, so the
/// same seed and base time give the same messages in the same order.
#[derive(Debug)]
struct Plan {
    generator: Generator,
    choices: ChaCha8Rng,
    mix: Mix,
    remaining: u64,
    /// Keys and payloads of the latest valid orders, kept only when duplicates or conflicts
    /// are asked for. Payloads rather than orders: a payload is one allocation to drop,
    /// an order dozens, and conflicts are rare enough to parse theirs again.
    recent: VecDeque<(Vec<u8>, Vec<u8>)>,
    keep_recent: bool,
    first_ids: Vec<String>,
    ids_wanted: usize,
}

impl Plan {
    fn new(seed: u64, base_time: DateTime<Utc>, count: u64, mix: Mix, ids_wanted: usize) -> Self {
        let mut choices = ChaCha8Rng::seed_from_u64(seed);
        // Another stream of the same seed, so that the choices do not repeat the generator's
        // own draws.
        choices.set_stream(1);
        let keep_recent = mix.duplicates > 0.0 || mix.conflicts > 0.0;
        Self {
            generator: Generator::new(seed, base_time),
            choices,
            mix,
            remaining: count,
            keep_recent,
            recent: VecDeque::new(),
            first_ids: Vec::new(),
            ids_wanted,
        }
    }

    fn valid(&mut self) -> Message {
        let order = self.generator.order();
        let payload = to_json(&order);
        let key = order.order_uid.clone().into_bytes();
        if self.first_ids.len() < self.ids_wanted {
            self.first_ids.push(order.order_uid.clone());
        }
        if self.keep_recent {
            if self.recent.len() == RECENT_ORDERS {
                self.recent.pop_front();
            }
            self.recent.push_back((key.clone(), payload.clone()));
        }
        Message {
            kind: Kind::Valid,
            key: Some(key),
            payload,
        }
    }
}

impl Iterator for Plan {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        self.remaining = self.remaining.checked_sub(1)?;
        let roll: f64 = self.choices.random();
        let mix = &self.mix;
        if roll < mix.invalid && !mix.kinds.is_empty() {
            let kind = mix.kinds[self.choices.random_range(0..mix.kinds.len())];
            let (uid, payload) = self.generator.invalid_record(kind);
            return Some(Message {
                kind: Kind::Invalid,
                key: Some(uid.into_bytes()),
                payload,
            });
        }
        // The first messages have no earlier order to repeat; they become new orders.
        let earlier = if self.recent.is_empty() {
            None
        } else {
            Some(self.choices.random_range(0..self.recent.len()))
        };
        match earlier {
            Some(index) if roll < mix.invalid + mix.duplicates => {
                let (key, payload) = &self.recent[index];
                Some(Message {
                    kind: Kind::Duplicate,
                    key: Some(key.clone()),
                    payload: payload.clone(),
                })
            }
            Some(index) if roll < mix.invalid + mix.duplicates + mix.conflicts => {
                // The payload is this program's own serialization of an order, so it parses;
                // should it not, a new order goes out instead.
                let Ok(original) = serde_json::from_slice::<Order>(&self.recent[index].1) else {
                    return Some(self.valid());
                };
                let conflict = self.generator.conflicting(&original);
                Some(Message {
                    kind: Kind::Conflict,
                    key: Some(conflict.order_uid.clone().into_bytes()),
                    payload: to_json(&conflict),
                })
            }
            _ => Some(self.valid()),
        }
    }
}

/// The order as compact JSON (the same bytes as `Order::canonical_json`), written into a
/// buffer that fits a typical order at once: growing it step by step costs a load run more
/// than the serialization itself.
fn to_json(order: &Order) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(2048);
    // Serializing plain strings and integers into memory cannot fail.
    match serde_json::to_writer(&mut buffer, order) {
        Ok(()) => buffer,
        Err(_) => order.canonical_json(),
    }
}

/// The messages of a file, bytes untouched, classified by the service's own validation so
/// that the summary can say how many are valid.
fn file_messages(path: &Path) -> std::io::Result<Vec<Message>> {
    let content = std::fs::read(path)?;
    let lines_by_name = path
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| ext.eq_ignore_ascii_case("jsonl") || ext.eq_ignore_ascii_case("ndjson"));
    let whole_is_json = serde_json::from_slice::<serde_json::Value>(&content).is_ok();
    let payloads: Vec<Vec<u8>> = if whole_is_json && !lines_by_name {
        vec![content]
    } else {
        content
            .split(|&b| b == b'\n')
            // The line terminator of a CRLF file is not part of the message.
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
            .map(<[u8]>::to_vec)
            .collect()
    };
    let now = Utc::now();
    Ok(payloads
        .into_iter()
        .map(|payload| {
            let kind = match validate(&payload, &Rules::default(), now) {
                Ok(_) => Kind::Valid,
                Err(_) => Kind::Invalid,
            };
            Message {
                kind,
                key: uid_of(&payload).map(String::into_bytes),
                payload,
            }
        })
        .collect())
}

/// The `order_uid` string of a JSON object, if the bytes are one and it has one.
fn uid_of(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Keyed {
        order_uid: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Keyed>(payload).ok()?.order_uid? {
        serde_json::Value::String(uid) => Some(uid),
        _ => None,
    }
}

/// What the run did; printed as a sentence or, with --json, as one object.
#[derive(Debug, Default, Serialize)]
struct Summary {
    topic: String,
    sent: u64,
    valid: u64,
    invalid: u64,
    duplicates: u64,
    conflicts: u64,
    failed: u64,
    seconds: f64,
    rate: f64,
    seed: Option<u64>,
    base_time: Option<DateTime<Utc>>,
    file: Option<PathBuf>,
}

impl Summary {
    fn count(&mut self, kind: Kind) {
        self.sent += 1;
        match kind {
            Kind::Valid => self.valid += 1,
            Kind::Invalid => self.invalid += 1,
            Kind::Duplicate => self.duplicates += 1,
            Kind::Conflict => self.conflicts += 1,
        }
    }

    fn sentence(&self) -> String {
        let origin = match (&self.file, self.seed) {
            (Some(file), _) => format!("file {}", file.display()),
            (None, Some(seed)) => format!("seed {seed}"),
            (None, None) => String::new(),
        };
        format!(
            "sent {} (valid {}, invalid {}, duplicates {}, conflicts {}), \
             failed {} in {:.2} s ({:.0} msg/s), {origin}",
            self.sent,
            self.valid,
            self.invalid,
            self.duplicates,
            self.conflicts,
            self.failed,
            self.seconds,
            self.rate,
        )
    }
}

fn usage_error(message: impl std::fmt::Display) -> ! {
    Cli::command()
        .error(ErrorKind::ValueValidation, message)
        .exit()
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // A little slack, so that shares written in decimals (0.7 + 0.2 + 0.1) still add up.
    if cli.invalid + cli.duplicates + cli.conflicts > 1.0 + 1e-9 {
        usage_error(format!(
            "--invalid, --duplicates and --conflicts add up to {}, more than 1",
            cli.invalid + cli.duplicates + cli.conflicts
        ));
    }
    if cli.invalid > 0.0 && cli.invalid_kinds.is_empty() {
        usage_error("--invalid needs at least one kind in --invalid-kinds");
    }
    let telemetry_settings = TelemetrySettings {
        log_format: LogFormat::Pretty,
        // Quiet by default, but the run span and the per-record produce spans stay on:
        // they carry the trace context into the records' headers. librdkafka's own
        // connection errors repeat many times a second while a broker is away; the ping and
        // the summary report that once, so they are only shown with --verbose.
        log_filter: if cli.verbose {
            "info".to_owned()
        } else {
            format!("warn,rdkafka=off,librdkafka=off,{TRACE_TARGET}=info,platform::kafka=info")
        },
        otlp_endpoint: cli
            .otlp_endpoint
            .clone()
            .filter(|url| !url.trim().is_empty()),
        ..TelemetrySettings::default()
    };
    let guard = match telemetry::init(NAME, &telemetry_settings) {
        Ok(guard) => guard,
        Err(err) => usage_error(format!("telemetry: {err:#}")),
    };
    let span = tracing::info_span!(
        target: TRACE_TARGET,
        "orders-producer.run",
        messaging.destination.name = %cli.topic,
        count = cli.count,
        seed = tracing::field::Empty,
    );
    let code = run(cli).instrument(span).await;
    // Dropping the guard last flushes the spans of the whole run.
    drop(guard);
    ExitCode::from(code)
}

async fn run(cli: Cli) -> u8 {
    let seed = cli.seed.unwrap_or_else(rand::random);
    tracing::Span::current().record("seed", seed);
    let base_time = cli.base_time.unwrap_or_else(|| {
        let today = Utc::now().date_naive();
        today.and_time(chrono::NaiveTime::MIN).and_utc()
    });
    let ids_wanted = cli.print_ids.unwrap_or(0);
    let file_messages = match &cli.file {
        Some(path) => match file_messages(path) {
            Ok(messages) => Some(messages),
            Err(err) => {
                eprintln!("{NAME}: cannot read {}: {err}", path.display());
                return EXIT_USAGE;
            }
        },
        None => None,
    };

    let settings = KafkaSettings {
        brokers: cli.brokers.clone(),
        ..KafkaSettings::default()
    };
    let producer = match KafkaProducer::new(&settings, NAME) {
        Ok(producer) => producer,
        Err(err) => {
            eprintln!("{NAME}: cannot create the Kafka producer: {err}");
            return EXIT_USAGE;
        }
    };
    let timeout = Duration::from_secs(cli.timeout);
    if let Err(err) = producer.ping(timeout).await {
        eprintln!(
            "{NAME}: no broker at {} answered within {} s: {err}",
            cli.brokers, cli.timeout
        );
        return EXIT_NO_BROKER;
    }
    tracing::info!(brokers = %cli.brokers, topic = %cli.topic, "connected");

    let mut summary = Summary {
        topic: cli.topic.clone(),
        ..Summary::default()
    };
    let mut plan = None;
    let (messages, total): (Box<dyn Iterator<Item = Message> + '_>, u64) = match file_messages {
        Some(messages) => {
            summary.file = cli.file.clone();
            let total = messages.len() as u64;
            (Box::new(messages.into_iter()), total)
        }
        None => {
            summary.seed = Some(seed);
            summary.base_time = Some(base_time);
            let mix = Mix {
                invalid: cli.invalid,
                duplicates: cli.duplicates,
                conflicts: cli.conflicts,
                kinds: cli.invalid_kinds.clone(),
            };
            let plan = plan.insert(Plan::new(seed, base_time, cli.count, mix, ids_wanted));
            (Box::new(plan), cli.count)
        }
    };

    let progress = ProgressBar::new(total);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut first_failure = None;
    {
        let producer = &producer;
        let topic = cli.topic.as_str();
        let mut sends = paced(messages, cli.rate)
            .map(|message| async move {
                let record = OutgoingRecord {
                    topic: topic.to_owned(),
                    key: message.key,
                    payload: Some(message.payload),
                    headers: Vec::new(),
                };
                (message.kind, producer.send(&record).await)
            })
            // Sends are started in order (librdkafka keeps that order within a partition, so
            // a duplicate lands after its original) but acknowledged concurrently.
            .buffer_unordered(usize::try_from(cli.max_in_flight).unwrap_or(usize::MAX));
        while let Some((kind, result)) = sends.next().await {
            match result {
                Ok(_) => summary.count(kind),
                Err(err) => {
                    summary.failed += 1;
                    first_failure.get_or_insert(err);
                }
            }
            progress.inc(1);
        }
    }
    progress.finish_and_clear();
    summary.seconds = started.elapsed().as_secs_f64();
    summary.rate = if summary.seconds > 0.0 {
        summary.sent as f64 / summary.seconds
    } else {
        0.0
    };

    if let Some(err) = &first_failure {
        eprintln!("{NAME}: {} sends failed; the first: {err}", summary.failed);
    }
    if cli.json {
        match serde_json::to_string(&summary) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("{NAME}: cannot print the summary: {err}"),
        }
    } else {
        println!("{}", summary.sentence());
    }
    if let Some(plan) = &plan {
        for id in &plan.first_ids {
            println!("{id}");
        }
    }

    // Every send was acknowledged above; the flush only makes sure of it before exiting.
    let flusher = producer.clone();
    match tokio::task::spawn_blocking(move || flusher.flush(timeout)).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => eprintln!("{NAME}: flushing the producer failed: {err}"),
        Err(err) => eprintln!("{NAME}: flushing the producer failed: {err}"),
    }
    if summary.failed > 0 {
        EXIT_SEND_FAILED
    } else {
        0
    }
}

/// The messages as a stream, at most `rate` per second when `rate` is above zero.
fn paced<'a>(
    messages: Box<dyn Iterator<Item = Message> + 'a>,
    rate: f64,
) -> LocalBoxStream<'a, Message> {
    if rate <= 0.0 {
        return stream::iter(messages).boxed_local();
    }
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // Catching up after a slow moment keeps the average rate at what was asked for.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    stream::unfold(
        (messages, interval),
        |(mut messages, mut interval)| async move {
            interval.tick().await;
            let message = messages.next()?;
            Some((message, (messages, interval)))
        },
    )
    .boxed_local()
}
