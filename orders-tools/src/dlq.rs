//! `orders-dlq`: the operator's tool for the dead-letter topic. `list` shows each
//! refused record with its class and reasons; `replay` publishes selected records' original
//! key and value to the orders topic again, after the cause was fixed (a configuration
//! change, a corrected producer), marked with where they came from.
//!
//! It reads the topic from the beginning without joining a group or committing anything, so
//! it never disturbs the service.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use platform::kafka::{
    Header, KafkaProducer, OutgoingRecord, Reason, dlq_headers, header_text, headers_to_vec,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use orders_service::settings::Settings;

/// `orders-dlq ...`
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub action: DlqAction,
}

/// What to do with the dead-letter topic.
#[derive(Debug, clap::Subcommand)]
pub enum DlqAction {
    /// List dead-letter records, oldest first, with their class and reasons.
    List {
        /// Show at most this many records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only records of this class (`invalid`, `conflict`).
        #[arg(long)]
        class: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish selected records to the orders topic again.
    Replay {
        /// A record to replay, as `PARTITION:OFFSET` in the dead-letter topic (repeatable).
        #[arg(long = "record", value_name = "PARTITION:OFFSET")]
        records: Vec<String>,
        /// Replay every record of this class.
        #[arg(long)]
        class: Option<String>,
        /// Say what would be replayed, publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// One dead-letter record as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct DlqRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub class: Option<String>,
    pub reasons: Vec<Reason>,
    pub original_topic: Option<String>,
    pub original_partition: Option<String>,
    pub original_offset: Option<String>,
    pub failed_at: Option<String>,
    pub value_bytes: usize,
    #[serde(skip)]
    pub raw_key: Option<Vec<u8>>,
    /// The original value; `None` for a tombstone.
    #[serde(skip)]
    pub value: Option<Vec<u8>>,
    #[serde(skip)]
    pub headers: Vec<Header>,
}

/// Runs a `dlq` action.
pub async fn run(settings: &Settings, args: DlqArgs) -> anyhow::Result<()> {
    let topic = settings.topics.dead_letter.clone();
    let kafka = settings.kafka.clone();
    let records = tokio::task::spawn_blocking(move || read_all(&kafka, &topic))
        .await
        .context("reading the dead-letter topic")??;
    match args.action {
        DlqAction::List { limit, class, json } => {
            let shown = records
                .iter()
                .filter(|r| class.is_none() || r.class == class)
                .take(limit);
            for record in shown {
                if json {
                    println!("{}", serde_json::to_string(record)?);
                } else {
                    print_record(record);
                }
            }
            Ok(())
        }
        DlqAction::Replay {
            records: wanted,
            class,
            dry_run,
        } => {
            let wanted: HashSet<(i32, i64)> = wanted
                .iter()
                .map(|r| parse_position(r))
                .collect::<anyhow::Result<_>>()?;
            anyhow::ensure!(
                !wanted.is_empty() || class.is_some(),
                "say which records to replay: --record PARTITION:OFFSET or --class CLASS"
            );
            let selected: Vec<&DlqRecord> = records
                .iter()
                .filter(|r| {
                    wanted.contains(&(r.partition, r.offset))
                        || (class.is_some() && r.class == class)
                })
                .collect();
            let found: HashSet<(i32, i64)> =
                selected.iter().map(|r| (r.partition, r.offset)).collect();
            let missing: Vec<_> = wanted.difference(&found).collect();
            anyhow::ensure!(missing.is_empty(), "no dead-letter record at {missing:?}");
            let producer = KafkaProducer::new(&settings.kafka, "orders-dlq-replay")?;
            for record in &selected {
                if dry_run {
                    println!("would replay {}:{}", record.partition, record.offset);
                    continue;
                }
                let delivered = producer
                    .send(&replay_record(
                        &settings.topics.orders,
                        &settings.topics.dead_letter,
                        record,
                    ))
                    .await?;
                println!(
                    "replayed {}:{} to {} partition {} offset {}",
                    record.partition,
                    record.offset,
                    settings.topics.orders,
                    delivered.partition,
                    delivered.offset
                );
            }
            producer.flush(Duration::from_secs(10))?;
            println!(
                "{} record(s) {}",
                selected.len(),
                if dry_run { "selected" } else { "replayed" }
            );
            Ok(())
        }
    }
}

fn parse_position(text: &str) -> anyhow::Result<(i32, i64)> {
    let (partition, offset) = text
        .split_once(':')
        .with_context(|| format!("{text:?} is not PARTITION:OFFSET"))?;
    Ok((
        partition
            .parse()
            .with_context(|| format!("bad partition in {text:?}"))?,
        offset
            .parse()
            .with_context(|| format!("bad offset in {text:?}"))?,
    ))
}

/// The record to publish again: original key and value, the original headers without the
/// dead-letter ones and without the stale trace context, and where it came from.
pub fn replay_record(orders_topic: &str, dlq_topic: &str, record: &DlqRecord) -> OutgoingRecord {
    let mut headers: Vec<Header> = record
        .headers
        .iter()
        .filter(|(name, _)| {
            !name.starts_with("x-error-")
                && !name.starts_with("x-original-")
                && name != dlq_headers::FAILED_AT
                && !name.eq_ignore_ascii_case("traceparent")
                && !name.eq_ignore_ascii_case("tracestate")
        })
        .cloned()
        .collect();
    headers.push((
        "x-replayed-from".to_owned(),
        Some(format!("{dlq_topic}/{}/{}", record.partition, record.offset).into_bytes()),
    ));
    OutgoingRecord {
        topic: orders_topic.to_owned(),
        key: record.raw_key.clone(),
        payload: record.value.clone(),
        headers,
    }
}

fn print_record(record: &DlqRecord) {
    println!(
        "{}:{}  {}  key={}  from={}/{}/{}  at={}  ({} bytes)",
        record.partition,
        record.offset,
        record.class.as_deref().unwrap_or("?"),
        record.key.as_deref().unwrap_or("-"),
        record.original_topic.as_deref().unwrap_or("?"),
        record.original_partition.as_deref().unwrap_or("?"),
        record.original_offset.as_deref().unwrap_or("?"),
        record.failed_at.as_deref().unwrap_or("?"),
        record.value_bytes,
    );
    for reason in &record.reasons {
        println!(
            "    {}{}: {}",
            reason.code,
            reason
                .field
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default(),
            reason.message
        );
    }
}

/// Reads every record of `topic` from the beginning until each partition reports its end
/// (or nothing arrives for a few seconds).
fn read_all(kafka: &platform::kafka::KafkaSettings, topic: &str) -> anyhow::Result<Vec<DlqRecord>> {
    let mut config = kafka.client_config("orders-dlq-reader");
    config
        .set(
            "group.id",
            format!("orders-dlq-reader-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer = config.create()?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Timeout::After(Duration::from_secs(10)))
        .context("no broker answered")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    anyhow::ensure!(!partitions.is_empty(), "topic {topic} does not exist");
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut records = Vec::new();
    let idle_limit = Duration::from_secs(5);
    let mut idle = Duration::ZERO;
    while at_end.len() < partitions.len() && idle < idle_limit {
        match consumer.poll(Duration::from_millis(500)) {
            None => idle += Duration::from_millis(500),
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(err)) => return Err(err).context("reading the dead-letter topic"),
            Some(Ok(message)) => {
                idle = Duration::ZERO;
                at_end.remove(&message.partition());
                let headers = headers_to_vec(message.headers());
                let text = |name: &str| header_text(&headers, name).map(str::to_owned);
                let reasons = text(dlq_headers::ERROR_REASONS)
                    .and_then(|json| serde_json::from_str(&json).ok())
                    .unwrap_or_default();
                records.push(DlqRecord {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    class: text(dlq_headers::ERROR_CLASS),
                    reasons,
                    original_topic: text(dlq_headers::ORIGINAL_TOPIC),
                    original_partition: text(dlq_headers::ORIGINAL_PARTITION),
                    original_offset: text(dlq_headers::ORIGINAL_OFFSET),
                    failed_at: text(dlq_headers::FAILED_AT),
                    value_bytes: message.payload().map_or(0, <[u8]>::len),
                    raw_key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                    headers,
                });
            }
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_garbage_is_refused() {
        assert_eq!(parse_position("0:42").expect("ok"), (0, 42));
        assert!(parse_position("42").is_err());
        assert!(parse_position("a:1").is_err());
    }

    #[test]
    fn a_replayed_record_drops_the_dead_letter_headers_and_says_where_it_came_from() {
        let record = DlqRecord {
            partition: 0,
            offset: 7,
            key: Some("k".into()),
            class: Some("invalid".into()),
            reasons: vec![],
            original_topic: Some("orders".into()),
            original_partition: Some("1".into()),
            original_offset: Some("3".into()),
            failed_at: None,
            value_bytes: 2,
            raw_key: Some(b"k".to_vec()),
            value: Some(b"{}".to_vec()),
            headers: vec![
                ("x-error-class".into(), Some(b"invalid".to_vec())),
                ("x-original-offset".into(), Some(b"3".to_vec())),
                ("x-failed-at".into(), Some(b"t".to_vec())),
                ("traceparent".into(), Some(b"00-..".to_vec())),
                ("source".into(), Some(b"gen".to_vec())),
            ],
        };
        let out = replay_record("orders", "orders.dlq", &record);
        assert_eq!(out.topic, "orders");
        assert_eq!(out.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(out.payload.as_deref(), Some(&b"{}"[..]));
        let names: Vec<&str> = out.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["source", "x-replayed-from"]);
        assert_eq!(
            header_text(&out.headers, "x-replayed-from"),
            Some("orders.dlq/0/7")
        );
    }
}
