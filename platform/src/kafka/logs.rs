//! librdkafka's own log lines and global errors, rate-limited: while a broker is down every
//! client reports the same failure many times a second (seen: about 850 ERROR lines in 25 s
//! from one service). The first line of a kind is logged at once (the change of state), then
//! at most one line of that kind a minute, saying how many like it were held back.
//!
//! It must not hide a kind of message it has not seen yet, and never drops the count.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

/// How long one kind of message is held back after it was logged.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The rate limiter of one client's librdkafka messages.
#[derive(Debug)]
pub struct ClientLog {
    client: &'static str,
    window: Duration,
    kinds: Mutex<HashMap<String, Kind>>,
}

#[derive(Debug)]
struct Kind {
    logged_at: Instant,
    held_back: u64,
}

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Log it, mentioning how many of its kind were held back since the last line.
    Log { held_back: u64 },
    /// Count it and stay quiet.
    HoldBack,
}

impl ClientLog {
    /// A limiter for the client `client` (`producer`, `consumer`), one line per kind per
    /// [`WINDOW`].
    pub fn new(client: &'static str) -> Self {
        Self::with_window(client, WINDOW)
    }

    /// The same with another window (tests).
    pub fn with_window(client: &'static str, window: Duration) -> Self {
        Self {
            client,
            window,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a message of this kind is logged now.
    pub fn decide(&self, kind: &str, now: Instant) -> Decision {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        match kinds.get_mut(kind) {
            Some(seen) if now.duration_since(seen.logged_at) < self.window => {
                seen.held_back += 1;
                Decision::HoldBack
            }
            Some(seen) => {
                let held_back = seen.held_back;
                seen.logged_at = now;
                seen.held_back = 0;
                Decision::Log { held_back }
            }
            None => {
                kinds.insert(
                    kind.to_owned(),
                    Kind {
                        logged_at: now,
                        held_back: 0,
                    },
                );
                Decision::Log { held_back: 0 }
            }
        }
    }

    /// A librdkafka log line.
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let kind = format!("{level:?}|{facility}|{}", shape(message));
        let Decision::Log { held_back } = self.decide(&kind, Instant::now()) else {
            return;
        };
        let client = self.client;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", client, facility, held_back, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", client, facility, held_back, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", client, facility, held_back, "librdkafka: {message}");
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", client, facility, held_back, "librdkafka: {message}");
            }
        }
    }

    /// A librdkafka global error (the broker down, a transport failure).
    pub fn error(&self, error: &KafkaError, reason: &str) {
        let kind = format!("error|{error}|{}", shape(reason));
        if let Decision::Log { held_back } = self.decide(&kind, Instant::now()) {
            let client = self.client;
            tracing::error!(target: "librdkafka", client, held_back, "librdkafka: {error}: {reason}");
        }
    }
}

/// A message with its numbers blanked, so `failed (after 3ms ...)` and `failed (after 9ms
/// ...)` are one kind.
pub(crate) fn shape(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_number = false;
    for c in message.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// A client context that only rate-limits librdkafka's messages: the producer's.
#[derive(Debug)]
pub struct QuietContext {
    log: ClientLog,
}

impl QuietContext {
    pub fn new(client: &'static str) -> Self {
        Self {
            log: ClientLog::new(client),
        }
    }
}

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_window_with_the_count_held_back() {
        let log = ClientLog::with_window("producer", Duration::from_secs(60));
        let start = Instant::now();
        let refused = "error|connect|#.#.#.#:#/bootstrap: Connect failed";
        assert_eq!(log.decide(refused, start), Decision::Log { held_back: 0 });
        for i in 1..=850 {
            let at = start + Duration::from_millis(i * 29);
            assert_eq!(log.decide(refused, at), Decision::HoldBack, "{i}");
        }
        // Another kind is not held back by the first.
        assert_eq!(
            log.decide("error|all brokers down", start + Duration::from_secs(1)),
            Decision::Log { held_back: 0 }
        );
        // After the window: one line, with what was held back.
        assert_eq!(
            log.decide(refused, start + Duration::from_secs(61)),
            Decision::Log { held_back: 850 }
        );
        assert_eq!(
            log.decide(refused, start + Duration::from_secs(62)),
            Decision::HoldBack
        );
    }

    #[test]
    fn numbers_do_not_make_a_new_kind() {
        assert_eq!(
            shape(
                "127.0.0.1:9092/bootstrap: Connect failed (after 3ms in state CONNECT, 12 identical error(s) suppressed)"
            ),
            shape(
                "127.0.0.1:9092/bootstrap: Connect failed (after 217ms in state CONNECT, 1 identical error(s) suppressed)"
            )
        );
        assert_ne!(shape("Connect failed"), shape("Disconnected"));
    }
}
