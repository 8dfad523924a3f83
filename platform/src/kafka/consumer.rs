//! The consumer runner: it owns the rdkafka consumer and guarantees that no message is
//! skipped. It hands batches to a [`BatchHandler`], retries transient failures in place
//! (partitions paused, still polling so the member stays in its group), sends permanent
//! refusals to the dead-letter topic, and stores an offset only once the outcome of every
//! message before it is durable. Offsets are committed in the background, synchronously when
//! partitions are revoked, and synchronously on shutdown.
//!
//! It must not interpret payloads: what a message means is the handler's business.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use opentelemetry::trace::TraceContextExt as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::producer::{KafkaProducer, OutgoingRecord};
use super::{
    ConsumerSettings, Header, KafkaSettings, Reason, Subscription, dlq_headers, headers_to_vec,
};
use crate::http::ReadyFlag;
use crate::telemetry::propagation;

/// One consumed record, owned, with the span that stands for its processing.
#[derive(Debug, Clone)]
pub struct Received {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record's key.
    pub key: Option<Vec<u8>>,
    /// The record's value; `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The record's headers, in order.
    pub headers: Vec<Header>,
    /// CreateTime or LogAppendTime, milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// `kafka.message` span, child of the producer's context carried in the headers.
    pub span: tracing::Span,
}

impl Received {
    fn from_borrowed(message: &BorrowedMessage<'_>) -> Self {
        let headers = headers_to_vec(message.headers());
        let span = tracing::info_span!(
            "kafka.message",
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.source.name = %message.topic(),
            messaging.kafka.partition = message.partition(),
            messaging.kafka.offset = message.offset(),
            outcome = tracing::field::Empty,
        );
        propagation::set_parent_from(&span, super::text_headers(&headers));
        Self {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
            span,
        }
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled and durable (stored, or known already). `label` names the outcome in metrics
    /// and logs, e.g. `stored` or `duplicate`.
    Done {
        /// Metrics label.
        label: &'static str,
    },
    /// Refused for good: the runner sends the original record to the dead-letter topic with
    /// the class and reasons in its headers.
    DeadLetter {
        /// Metrics label, e.g. `invalid` or `conflict`.
        label: &'static str,
        /// The `x-error-class` header.
        class: String,
        /// The `x-error-reasons` header.
        reasons: Vec<Reason>,
    },
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Done { label } | Outcome::DeadLetter { label, .. } => label,
        }
    }
}

/// The batch could not be handled now but may be later (database down, timeout): nothing
/// of it is acknowledged and the runner tries the whole batch again.
#[derive(Debug, thiserror::Error)]
#[error("transient failure: {0:#}")]
pub struct TransientError(#[source] pub anyhow::Error);

impl TransientError {
    /// Wraps any error as transient.
    pub fn new(err: impl Into<anyhow::Error>) -> Self {
        Self(err.into())
    }
}

/// What a service implements to consume a topic.
pub trait BatchHandler: Send + Sync + 'static {
    /// Handles a batch, in order, and returns exactly one outcome per message, in the same
    /// order. Outcomes must be durable when this returns `Ok`. May be called again with the
    /// same messages after an error, or after a crash: handling must be idempotent.
    fn handle(
        &self,
        batch: &[Received],
    ) -> impl Future<Output = Result<Vec<Outcome>, TransientError>> + Send;
}

type Assignment = Arc<Mutex<HashSet<(String, i32)>>>;

/// rdkafka callbacks: track the assignment, commit synchronously before partitions are
/// taken away, and turn statistics into lag gauges.
struct RunnerContext {
    group: String,
    assignment: Assignment,
    log: super::ClientLog,
}

impl ClientContext for RunnerContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        for (topic_name, topic) in &statistics.topics {
            for (partition, stats) in &topic.partitions {
                // librdkafka reports the internal UA partition as -1 and unknown lag as -1.
                if *partition < 0 || stats.consumer_lag_stored < 0 {
                    continue;
                }
                metrics::gauge!(
                    "kafka_consumer_lag",
                    "group" => self.group.clone(),
                    "topic" => topic_name.clone(),
                    "partition" => partition.to_string(),
                )
                .set(stats.consumer_lag_stored as f64);
            }
        }
    }
}

impl ConsumerContext for RunnerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // Offsets stored so far belong to finished messages: hand them over before the
            // partitions move, so the next owner does not redo more than the batch in flight.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => {
                    tracing::info!(group = %self.group, "offsets committed before revocation")
                }
                Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                Err(err) => {
                    tracing::warn!(group = %self.group, error = %err, "commit before revocation failed")
                }
            }
            let mut assignment = self
                .assignment
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for element in partitions.elements() {
                assignment.remove(&(element.topic().to_owned(), element.partition()));
            }
            metrics::counter!("kafka_consumer_rebalances_total", "group" => self.group.clone(), "kind" => "revoke").increment(1);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let mut assignment = self
                .assignment
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for element in partitions.elements() {
                assignment.insert((element.topic().to_owned(), element.partition()));
            }
            tracing::info!(group = %self.group, partitions = partitions.count(), "partitions assigned");
            metrics::counter!("kafka_consumer_rebalances_total", "group" => self.group.clone(), "kind" => "assign").increment(1);
        }
    }
}

/// Puts each partition's messages next to each other, keeping their order (a stable sort:
/// offsets stay ascending within a partition).
fn by_partition(batch: &mut [Received]) {
    batch.sort_by(|a, b| (a.topic.as_str(), a.partition).cmp(&(b.topic.as_str(), b.partition)));
}

/// The ranges of `batch` that belong to one partition each, in order.
fn partition_ranges(batch: &[Received]) -> Vec<std::ops::Range<usize>> {
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, message) in batch.iter().enumerate() {
        match ranges.last_mut() {
            Some(range)
                if batch[range.start].partition == message.partition
                    && batch[range.start].topic == message.topic =>
            {
                range.end = i + 1;
            }
            _ => ranges.push(i..i + 1),
        }
    }
    ranges
}

/// Runs one consumer group member until cancelled. See the module documentation.
pub struct ConsumerRunner<H> {
    consumer: StreamConsumer<RunnerContext>,
    dead_letters: Option<(KafkaProducer, String)>,
    handler: H,
    subscription: Subscription,
    settings: ConsumerSettings,
    assignment: Assignment,
    ready: ReadyFlag,
    /// The rate limiter of the runner's own reports of consumer errors.
    errors: super::ClientLog,
}

impl<H> std::fmt::Debug for ConsumerRunner<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerRunner")
            .field("group", &self.subscription.group_id)
            .field("topics", &self.subscription.topics)
            .finish_non_exhaustive()
    }
}

enum Attempt<T> {
    Done(T),
    Cancelled,
}

impl<H: BatchHandler> ConsumerRunner<H> {
    /// Creates the consumer. `producer` publishes dead letters; it is required when the
    /// subscription names a dead-letter topic.
    pub fn new(
        kafka: &KafkaSettings,
        subscription: Subscription,
        settings: ConsumerSettings,
        handler: H,
        producer: Option<KafkaProducer>,
        client_id: &str,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !subscription.group_id.is_empty(),
            "consumer group id is empty"
        );
        anyhow::ensure!(!subscription.topics.is_empty(), "consumer has no topics");
        anyhow::ensure!(
            settings.batch_max_messages > 0,
            "consumer.batch_max_messages must be at least 1"
        );
        let dead_letters = match (&subscription.dead_letter_topic, producer) {
            (Some(topic), Some(producer)) => Some((producer, topic.clone())),
            (Some(_), None) => anyhow::bail!("a dead-letter topic needs a producer"),
            (None, _) => None,
        };
        let mut config = kafka.client_config(client_id);
        config
            .set("group.id", &subscription.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            // Offsets are stored by hand, only for finished messages.
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", &settings.auto_offset_reset)
            .set(
                "session.timeout.ms",
                kafka.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                kafka.heartbeat_interval.as_millis().to_string(),
            )
            .set(
                "fetch.wait.max.ms",
                settings.fetch_wait_max.as_millis().to_string(),
            )
            .set("statistics.interval.ms", "5000");
        if let Some(id) = settings
            .group_instance_id
            .as_deref()
            .filter(|id| !id.is_empty())
        {
            config.set("group.instance.id", id);
        }
        kafka.apply_properties(&mut config);
        let assignment = Assignment::default();
        let context = RunnerContext {
            group: subscription.group_id.clone(),
            assignment: Arc::clone(&assignment),
            log: super::ClientLog::new("consumer"),
        };
        let consumer: StreamConsumer<RunnerContext> = config.create_with_context(context)?;
        Ok(Self {
            consumer,
            dead_letters,
            handler,
            subscription,
            settings,
            assignment,
            ready: ReadyFlag::default(),
            errors: super::ClientLog::new("consumer"),
        })
    }

    /// True while the runner consumes normally; false before it subscribed, while it retries
    /// a failing batch, and after it stopped. Register it as a readiness check.
    pub fn ready_flag(&self) -> ReadyFlag {
        self.ready.clone()
    }

    /// Consumes until `stop` is cancelled, then finishes the batch in flight (unless it is
    /// waiting to be retried), commits synchronously and returns.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        let topics: Vec<&str> = self
            .subscription
            .topics
            .iter()
            .map(String::as_str)
            .collect();
        self.consumer.subscribe(&topics)?;
        tracing::info!(group = %self.subscription.group_id, topics = ?self.subscription.topics, "consumer subscribed");
        self.ready.set(true);
        // Counters exist from the start, so a dashboard shows zero rather than nothing.
        for name in [
            "kafka_consumer_retries_total",
            "kafka_consumer_errors_total",
        ] {
            metrics::counter!(name, "group" => self.subscription.group_id.clone()).increment(0);
        }
        let mut pending = VecDeque::new();
        let result = self.consume(&stop, &mut pending).await;
        self.ready.set(false);
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(err) => tracing::warn!(error = %err, "final commit failed"),
        }
        self.consumer.unsubscribe();
        tracing::info!(group = %self.subscription.group_id, "consumer stopped");
        result
    }

    async fn consume(
        &self,
        stop: &CancellationToken,
        pending: &mut VecDeque<Received>,
    ) -> anyhow::Result<()> {
        loop {
            let mut batch = self.collect_batch(stop, pending).await;
            if batch.is_empty() {
                return Ok(());
            }
            if self.settings.parallel_partitions {
                by_partition(&mut batch);
            }
            let started = Instant::now();
            // The batch continues the trace of its first message (so the work it does, such
            // as the database transaction, is in that message's trace) and links to the
            // other messages' spans.
            let span = tracing::info_span!(
                parent: batch.first().and_then(|first| first.span.id()),
                "kafka.batch",
                group = %self.subscription.group_id,
                size = batch.len(),
            );
            for message in batch.iter().skip(1) {
                span.add_link(message.span.context().span().span_context().clone());
            }
            let finished = self.process(&batch, stop, pending).instrument(span).await?;
            if !finished {
                return Ok(());
            }
            metrics::histogram!("kafka_consumer_batch_size", "group" => self.subscription.group_id.clone())
                .record(batch.len() as f64);
            metrics::histogram!("kafka_consumer_batch_duration_seconds", "group" => self.subscription.group_id.clone())
                .record(started.elapsed().as_secs_f64());
            if stop.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Gathers up to `batch_max_messages`: messages held back during a retry first, then
    /// fresh ones, waiting at most `batch_linger` once the batch has a message. Returns an
    /// empty batch only when `stop` is cancelled.
    async fn collect_batch(
        &self,
        stop: &CancellationToken,
        pending: &mut VecDeque<Received>,
    ) -> Vec<Received> {
        let max = self.settings.batch_max_messages;
        let mut batch: Vec<Received> = Vec::with_capacity(max.min(1024));
        while batch.len() < max {
            match pending.pop_front() {
                Some(message) => batch.push(message),
                None => break,
            }
        }
        if batch.is_empty() {
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return batch,
                    received = self.consumer.recv() => match received {
                        Ok(message) => {
                            batch.push(Received::from_borrowed(&message));
                            break;
                        }
                        Err(err) => self.on_consumer_error(err).await,
                    },
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.settings.batch_linger;
        while batch.len() < max {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(deadline) => break,
                received = self.consumer.recv() => match received {
                    Ok(message) => batch.push(Received::from_borrowed(&message)),
                    Err(err) => self.on_consumer_error(err).await,
                },
            }
        }
        batch
    }

    async fn on_consumer_error(&self, err: KafkaError) {
        // librdkafka reconnects by itself; these are reports, not a reason to stop. The pause
        // keeps a persistent error from turning into a busy loop.
        // Rate-limited like librdkafka's own lines: a broker outage repeats this every poll.
        let kind = super::logs::shape(&err.to_string());
        if let super::logs::Decision::Log { held_back } =
            self.errors.decide(&kind, std::time::Instant::now())
        {
            tracing::warn!(group = %self.subscription.group_id, error = %err, held_back, "consumer error");
        }
        metrics::counter!("kafka_consumer_errors_total", "group" => self.subscription.group_id.clone())
            .increment(1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Handles one batch to the end. Returns false when cancelled before it finished (its
    /// offsets are then not stored, and it will be delivered again).
    async fn process(
        &self,
        batch: &[Received],
        stop: &CancellationToken,
        pending: &mut VecDeque<Received>,
    ) -> anyhow::Result<bool> {
        let handled = if self.settings.parallel_partitions {
            self.handle_by_partition(batch, stop, pending).await
        } else {
            self.handle_whole(batch, stop, pending).await
        };
        let Some(outcomes) = handled else {
            return Ok(false);
        };
        anyhow::ensure!(
            outcomes.len() == batch.len(),
            "handler returned {} outcomes for {} messages",
            outcomes.len(),
            batch.len()
        );

        if self.dead_letters.is_none()
            && let Some((message, _)) = batch
                .iter()
                .zip(&outcomes)
                .find(|(_, outcome)| matches!(outcome, Outcome::DeadLetter { .. }))
        {
            // Nowhere to put it, and skipping it would lose it: stop, so that an operator
            // configures a dead-letter topic. The message is delivered again after restart.
            anyhow::bail!(
                "message {}/{}@{} was refused but no dead-letter topic is configured",
                message.topic,
                message.partition,
                message.offset
            );
        }
        let mut backoff = self.backoff();
        let mut unsent: Vec<(&Received, &Outcome)> = batch
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| matches!(outcome, Outcome::DeadLetter { .. }))
            .collect();
        while !unsent.is_empty() {
            let mut still_unsent = Vec::new();
            for (message, outcome) in unsent {
                if let Err(err) = self.dead_letter(message, outcome).await {
                    if still_unsent.is_empty() {
                        tracing::warn!(error = %err, "dead-letter delivery failed, retrying in place");
                    }
                    still_unsent.push((message, outcome));
                }
            }
            unsent = still_unsent;
            if !unsent.is_empty() {
                match self.wait_before_retry(&mut backoff, stop, pending).await {
                    Attempt::Done(()) => {}
                    Attempt::Cancelled => return Ok(false),
                }
            }
        }

        self.store_offsets(batch)?;
        self.resume_all();
        self.ready.set(true);
        for (message, outcome) in batch.iter().zip(&outcomes) {
            message.span.record("outcome", outcome.label());
            metrics::counter!(
                "kafka_consumer_messages_total",
                "topic" => message.topic.clone(),
                "outcome" => outcome.label(),
            )
            .increment(1);
            if let Some(created) = message.timestamp_ms {
                let lag_ms = chrono::Utc::now()
                    .timestamp_millis()
                    .saturating_sub(created);
                metrics::histogram!("kafka_consumer_ingest_lag_seconds", "topic" => message.topic.clone())
                    .record(lag_ms.max(0) as f64 / 1000.0);
            }
        }
        Ok(true)
    }

    /// The handler's outcomes for the whole batch in one call, retried in place until it
    /// succeeds; `None` when cancelled first.
    async fn handle_whole(
        &self,
        batch: &[Received],
        stop: &CancellationToken,
        pending: &mut VecDeque<Received>,
    ) -> Option<Vec<Outcome>> {
        let mut backoff = self.backoff();
        loop {
            match self.handler.handle(batch).await {
                Ok(outcomes) => return Some(outcomes),
                Err(err) => {
                    tracing::warn!(group = %self.subscription.group_id, error = %err, "batch failed, retrying in place");
                    match self.wait_before_retry(&mut backoff, stop, pending).await {
                        Attempt::Done(()) => {}
                        Attempt::Cancelled => return None,
                    }
                }
            }
        }
    }

    /// The handler's outcomes with one call per partition, the calls running at the same
    /// time; a call that fails is retried (alone) until it succeeds. `batch` holds each
    /// partition's messages contiguously ([`by_partition`]). `None` when cancelled first.
    async fn handle_by_partition(
        &self,
        batch: &[Received],
        stop: &CancellationToken,
        pending: &mut VecDeque<Received>,
    ) -> Option<Vec<Outcome>> {
        let parts = partition_ranges(batch);
        let mut done: Vec<Option<Vec<Outcome>>> = vec![None; parts.len()];
        let mut backoff = self.backoff();
        loop {
            let todo: Vec<usize> = (0..parts.len()).filter(|i| done[*i].is_none()).collect();
            if todo.is_empty() {
                return Some(done.into_iter().flatten().flatten().collect());
            }
            let calls = todo
                .iter()
                .map(|&i| self.handler.handle(&batch[parts[i].clone()]));
            let results = futures::future::join_all(calls).await;
            let mut failed = 0;
            for (&i, result) in todo.iter().zip(results) {
                match result {
                    Ok(outcomes) => done[i] = Some(outcomes),
                    Err(err) => {
                        failed += 1;
                        let first = &batch[parts[i].start];
                        tracing::warn!(
                            group = %self.subscription.group_id,
                            topic = %first.topic,
                            partition = first.partition,
                            error = %err,
                            "a partition's share of the batch failed, retrying it in place"
                        );
                    }
                }
            }
            if failed > 0 {
                match self.wait_before_retry(&mut backoff, stop, pending).await {
                    Attempt::Done(()) => {}
                    Attempt::Cancelled => return None,
                }
            }
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + use<H> {
        ExponentialBuilder::default()
            .with_min_delay(self.settings.retry_initial_delay)
            .with_max_delay(self.settings.retry_max_delay)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }

    /// Pauses fetching, waits the next backoff delay while still polling (so the member
    /// keeps its place in the group and rebalances are served), and reports readiness false.
    /// Messages that still arrive, from partitions assigned meanwhile, are held in `pending`
    /// for the next batch and their partitions paused too.
    async fn wait_before_retry(
        &self,
        backoff: &mut impl Iterator<Item = Duration>,
        stop: &CancellationToken,
        pending: &mut VecDeque<Received>,
    ) -> Attempt<()> {
        self.ready.set(false);
        self.pause_all();
        metrics::counter!("kafka_consumer_retries_total", "group" => self.subscription.group_id.clone())
            .increment(1);
        let delay = backoff.next().unwrap_or(self.settings.retry_max_delay);
        tracing::info!(group = %self.subscription.group_id, delay_ms = delay.as_millis() as u64, "waiting before retry");
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return Attempt::Cancelled,
                () = tokio::time::sleep_until(deadline) => return Attempt::Done(()),
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        pending.push_back(Received::from_borrowed(&message));
                        self.pause_all();
                    }
                    Err(err) => self.on_consumer_error(err).await,
                },
            }
        }
    }

    fn current_assignment(&self) -> TopicPartitionList {
        let assignment = self
            .assignment
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut list = TopicPartitionList::with_capacity(assignment.len());
        for (topic, partition) in assignment.iter() {
            list.add_partition(topic, *partition);
        }
        list
    }

    fn pause_all(&self) {
        let list = self.current_assignment();
        if list.count() > 0
            && let Err(err) = self.consumer.pause(&list)
        {
            tracing::warn!(error = %err, "pausing partitions failed");
        }
    }

    fn resume_all(&self) {
        let list = self.current_assignment();
        if list.count() > 0
            && let Err(err) = self.consumer.resume(&list)
        {
            tracing::warn!(error = %err, "resuming partitions failed");
        }
    }

    /// Stores, per partition, the offset after the batch's last message there. Every message
    /// of the batch is finished, so each stored offset closes a contiguous finished run.
    /// Partitions revoked meanwhile are skipped: their new owner redoes those messages.
    fn store_offsets(&self, batch: &[Received]) -> anyhow::Result<()> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for message in batch {
            let entry = next
                .entry((message.topic.as_str(), message.partition))
                .or_insert(message.offset + 1);
            *entry = (*entry).max(message.offset + 1);
        }
        let assignment = self
            .assignment
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut list = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in next {
            if assignment.contains(&(topic.to_owned(), partition)) {
                list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
            } else {
                tracing::info!(
                    topic,
                    partition,
                    "partition revoked during the batch; its offset is left to the new owner"
                );
            }
        }
        if list.count() > 0
            && let Err(err) = self.consumer.store_offsets(&list)
        {
            // A partition lost between the check and the call; the new owner redoes it.
            tracing::warn!(error = %err, "storing offsets failed");
        }
        Ok(())
    }

    async fn dead_letter(&self, message: &Received, outcome: &Outcome) -> anyhow::Result<()> {
        let Outcome::DeadLetter { class, reasons, .. } = outcome else {
            return Ok(());
        };
        let Some((producer, topic)) = &self.dead_letters else {
            anyhow::bail!(
                "message {}/{}@{} refused ({class}) but no dead-letter topic is configured",
                message.topic,
                message.partition,
                message.offset
            );
        };
        let span = tracing::info_span!(parent: &message.span, "kafka.dead_letter", class = %class);
        let record = dead_letter_record(topic, message, class, reasons, &span)?;
        producer
            .send(&record)
            .instrument(span)
            .await
            .map_err(anyhow::Error::from)?;
        metrics::counter!("kafka_dead_letters_total", "topic" => message.topic.clone(), "class" => class.clone())
            .increment(1);
        // In the message's own span, so the line's span context names this message (the
        // batch's span belongs to the batch's first message).
        message.span.in_scope(|| {
            tracing::info!(
                topic = %message.topic,
                partition = message.partition,
                offset = message.offset,
                class = %class,
                codes = ?reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
                "message dead-lettered"
            );
        });
        Ok(())
    }
}

/// The dead-letter record of a refused message: its value and key untouched, its headers
/// (but its trace context) kept, and the `x-...` headers saying why.
fn dead_letter_record(
    dead_letter_topic: &str,
    message: &Received,
    class: &str,
    reasons: &[Reason],
    span: &tracing::Span,
) -> anyhow::Result<OutgoingRecord> {
    let mut headers: Vec<Header> = message
        .headers
        .iter()
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case(propagation::TRACEPARENT)
                && !name.eq_ignore_ascii_case(propagation::TRACESTATE)
                && !name.starts_with("x-error-")
                && !name.starts_with("x-original-")
                && name != dlq_headers::FAILED_AT
        })
        .cloned()
        .collect();
    let mut add =
        |name: &str, value: String| headers.push((name.to_owned(), Some(value.into_bytes())));
    add(dlq_headers::ERROR_CLASS, class.to_owned());
    add(dlq_headers::ERROR_REASONS, serde_json::to_string(reasons)?);
    add(dlq_headers::ORIGINAL_TOPIC, message.topic.clone());
    add(
        dlq_headers::ORIGINAL_PARTITION,
        message.partition.to_string(),
    );
    add(dlq_headers::ORIGINAL_OFFSET, message.offset.to_string());
    add(
        dlq_headers::FAILED_AT,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    for (name, value) in propagation::inject(span) {
        add(&name, value);
    }
    Ok(OutgoingRecord {
        topic: dead_letter_topic.to_owned(),
        key: message.key.clone(),
        // A tombstone stays a tombstone: no value, not an empty one.
        payload: message.payload.clone(),
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(headers: Vec<Header>) -> Received {
        Received {
            topic: "orders".into(),
            partition: 2,
            offset: 41,
            key: Some(b"k".to_vec()),
            payload: Some(b"{bad".to_vec()),
            headers,
            timestamp_ms: None,
            span: tracing::Span::none(),
        }
    }

    #[test]
    fn a_tombstone_is_dead_lettered_without_a_value() {
        let mut message = received(Vec::new());
        message.payload = None;
        let record = dead_letter_record(
            "orders.dlq",
            &message,
            "invalid",
            &[Reason::new("malformed_json", None, "no value")],
            &tracing::Span::none(),
        )
        .expect("record");
        assert_eq!(record.payload, None, "no value, not an empty one");
    }

    #[test]
    fn dead_letter_record_keeps_bytes_and_says_why() {
        let message = received(vec![
            ("traceparent".into(), Some(b"00-old".to_vec())),
            ("source".into(), Some(b"gen".to_vec())),
            ("x-error-class".into(), Some(b"stale".to_vec())),
        ]);
        let reasons = vec![Reason::new("malformed_json", None, "not JSON")];
        let record = dead_letter_record(
            "orders.dlq",
            &message,
            "invalid",
            &reasons,
            &tracing::Span::none(),
        )
        .expect("record");
        assert_eq!(record.topic, "orders.dlq");
        assert_eq!(record.payload.as_deref(), Some(&b"{bad"[..]));
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        let text = |name: &str| super::super::header_text(&record.headers, name).map(str::to_owned);
        assert_eq!(text("x-error-class").as_deref(), Some("invalid"));
        assert_eq!(
            text("x-error-reasons").as_deref(),
            Some(r#"[{"code":"malformed_json","message":"not JSON"}]"#)
        );
        assert_eq!(text("x-original-topic").as_deref(), Some("orders"));
        assert_eq!(text("x-original-partition").as_deref(), Some("2"));
        assert_eq!(text("x-original-offset").as_deref(), Some("41"));
        assert!(text("x-failed-at").is_some());
        assert_eq!(text("source").as_deref(), Some("gen"));
        // The stale trace context and the stale class are not carried over.
        assert_eq!(text("traceparent"), None);
        assert_eq!(
            record
                .headers
                .iter()
                .filter(|(n, _)| n == "x-error-class")
                .count(),
            1
        );
    }
}
