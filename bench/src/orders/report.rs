//! The report of `bench orders`: what each phase measured, the table with a ratio and a
//! target per row, and the results section of `docs/benchmarks.md` (or of
//! `target/bench/benchmarks-quick.md` for a `--quick` run).

use std::fmt::Write as _;

use super::procfs::{CpuUse, cpu_of, cpu_text, interference};
use super::wrk::Wrk;
use super::{
    BENCH_DB, CACHE_MAX_BYTES, COPY_DB, POLL, SEED, Sizes, WRK_CONNECTIONS, WRK_THREADS,
    WRK_WARMUP_SECS,
};

/// What the machine is, for the report.
#[derive(Debug, Default)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub mem_bytes: u64,
    pub kernel: String,
    pub wrk: String,
    pub nginx: String,
    pub postgres: String,
    pub pg_settings: String,
    pub rustc: String,
    pub load: String,
    pub busy: String,
}

#[derive(Debug, Default)]
pub struct IngestResult {
    pub seconds: f64,
    pub first_row_seconds: f64,
    /// When `/metrics` first showed a partition assignment (the group join done).
    pub assigned_seconds: Option<f64>,
    pub batches: Option<f64>,
    pub batch_orders: Option<f64>,
    /// Time spent processing batches (`kafka_consumer_batch_duration_seconds_sum`).
    pub handler_seconds: Option<f64>,
    /// PostgreSQL CPU of the backend answering the `count(*)` polls.
    pub poll_backend_seconds: f64,
    pub producer: String,
    pub stored: Option<f64>,
    pub other_outcomes: String,
    pub cpu: CpuUse,
    pub busy: f64,
    pub copy_seconds: f64,
    pub copy_cpu: CpuUse,
    pub copy_bytes: u64,
}

#[derive(Debug, Default)]
pub struct WarmResult {
    pub seconds: f64,
    pub orders: f64,
    pub ready_seconds: f64,
    pub cpu: CpuUse,
    pub select_runs: Vec<f64>,
    pub select_cpu: CpuUse,
    pub grow_seconds: f64,
}

#[derive(Debug, Default)]
pub struct MemoryResult {
    pub rss_empty: u64,
    pub rss_warm: u64,
    pub orders: f64,
    pub mean_json: f64,
    pub cache_bytes: Option<f64>,
    pub cache_entries: Option<f64>,
}

#[derive(Debug, Default)]
pub struct HttpResult {
    pub order_uid: String,
    pub body_bytes: usize,
    pub service: Wrk,
    pub nginx: Wrk,
    pub service_cpu: CpuUse,
    pub nginx_cpu: CpuUse,
    pub service_busy: f64,
    pub nginx_busy: f64,
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2} ms")
    } else if value < 100.0 {
        format!("{value:.1} ms")
    } else {
        format!("{value:.0} ms")
    }
}

pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    AtLeast,
    AtMost,
}

fn verdict(ratio: f64, goal: Goal, target: f64) -> &'static str {
    match goal {
        _ if !ratio.is_finite() => "not measured",
        Goal::AtLeast if ratio >= target => "met",
        Goal::AtLeast => "below",
        Goal::AtMost if ratio <= target => "met",
        Goal::AtMost => "above",
    }
}

#[derive(Debug)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub sizes: Sizes,
    pub ingest: IngestResult,
    pub warm: WarmResult,
    pub memory: MemoryResult,
    pub http: HttpResult,
}

#[derive(Debug)]
struct Row {
    name: &'static str,
    measure: String,
    service: String,
    reference: String,
    ratio: f64,
    goal: Goal,
    target: f64,
    /// A second condition of the target, as text for the table, and whether it holds.
    also: Option<(&'static str, bool)>,
}

impl Row {
    fn verdict(&self) -> &'static str {
        match (verdict(self.ratio, self.goal, self.target), self.also) {
            ("met", Some((_, false))) => "below",
            (verdict, _) => verdict,
        }
    }

    fn target_text(&self) -> String {
        let sign = match self.goal {
            Goal::AtLeast => ">=",
            Goal::AtMost => "<=",
        };
        match self.also {
            Some((text, _)) => format!("{sign} {}, {text}", self.target),
            None => format!("{sign} {}", self.target),
        }
    }
}

impl Report {
    pub fn heading(&self) -> String {
        format!(
            "orders-service benchmark — {}, {}, {} cores, {} RAM",
            self.date,
            self.machine.cpu,
            self.machine.cores,
            gib(self.machine.mem_bytes)
        )
    }

    /// The ingest's time from the consumer's group join (partitions assigned) to the last
    /// stored order: the join is a property of the broker and reported on its own.
    fn ingest_seconds(&self) -> f64 {
        self.ingest.seconds - self.ingest.assigned_seconds.unwrap_or(0.0)
    }

    fn ingest_rate(&self) -> f64 {
        self.sizes.ingest as f64 / self.ingest_seconds()
    }

    fn copy_rate(&self) -> f64 {
        self.sizes.ingest as f64 / self.ingest.copy_seconds
    }

    fn select_best(&self) -> f64 {
        self.warm
            .select_runs
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }

    fn per_order(&self) -> f64 {
        self.memory.rss_warm.saturating_sub(self.memory.rss_empty) as f64 / self.memory.orders
    }

    /// Other load seen during each measurement, one line per distorted measurement.
    pub fn other_load(&self) -> Vec<String> {
        let i = &self.ingest;
        let w = &self.warm;
        let h = &self.http;
        let measured: [(&str, &CpuUse, &[&str], f64); 6] = [
            (
                "ingest",
                &i.cpu,
                &["orders-service", "postgres", "nisshi", "bench", "xtask"],
                i.seconds,
            ),
            (
                "COPY",
                &i.copy_cpu,
                &["postgres", "psql", "bench", "xtask"],
                i.copy_seconds,
            ),
            (
                "warm-up (start to ready)",
                &w.cpu,
                &["orders-service", "postgres", "nisshi", "bench", "xtask"],
                w.ready_seconds,
            ),
            (
                "best SELECT",
                &w.select_cpu,
                &["postgres", "psql", "bench", "xtask"],
                self.select_best(),
            ),
            (
                "wrk against the service",
                &h.service_cpu,
                &["orders-service", "wrk", "bench", "xtask"],
                h.service.seconds,
            ),
            (
                "wrk against nginx",
                &h.nginx_cpu,
                &["nginx", "wrk", "bench", "xtask"],
                h.nginx.seconds,
            ),
        ];
        measured
            .iter()
            .filter_map(|(name, cpu, expected, seconds)| {
                interference(cpu, expected, *seconds).map(|load| format!("{name}: {load}"))
            })
            .collect()
    }

    fn rows(&self) -> Vec<Row> {
        let http = &self.http;
        let latency = |w: &Wrk| {
            format!(
                "{} req/s, p50 {}, p99 {}",
                thousands(w.requests_per_sec.round() as u64),
                ms(w.p50_ms),
                ms(w.p99_ms)
            )
        };
        vec![
            Row {
                name: "HTTP",
                measure: format!(
                    "HTTP cache hit (wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} {}s)",
                    self.sizes.wrk_secs
                ),
                service: latency(&http.service),
                reference: format!("nginx {}", latency(&http.nginx)),
                ratio: http.service.requests_per_sec / http.nginx.requests_per_sec,
                goal: Goal::AtLeast,
                target: 1.0,
                also: Some(("p99 <= nginx's", http.service.p99_ms <= http.nginx.p99_ms)),
            },
            Row {
                name: "Ingest",
                measure: format!("Ingest {} orders", thousands(self.sizes.ingest)),
                service: format!(
                    "{} orders/s ({:.1} s after the group join, which took {})",
                    thousands(self.ingest_rate().round() as u64),
                    self.ingest_seconds(),
                    self.ingest
                        .assigned_seconds
                        .map_or_else(|| "an unknown time".to_owned(), |t| format!("{t:.1} s"))
                ),
                reference: format!(
                    "COPY {} orders/s ({:.1} s)",
                    thousands(self.copy_rate().round() as u64),
                    self.ingest.copy_seconds
                ),
                ratio: self.ingest_rate() / self.copy_rate(),
                goal: Goal::AtLeast,
                target: 0.6,
                also: None,
            },
            Row {
                name: "Warm-up",
                measure: format!("Warm-up {} orders", thousands(self.sizes.warmup)),
                service: format!("{:.2} s", self.warm.seconds),
                reference: format!("SELECT {:.2} s", self.select_best()),
                ratio: self.warm.seconds / self.select_best(),
                goal: Goal::AtMost,
                target: 2.0,
                also: None,
            },
            Row {
                name: "Memory",
                measure: "Memory per cached order".to_owned(),
                service: format!(
                    "{} B / {} B JSON",
                    thousands(self.per_order().round() as u64),
                    thousands(self.memory.mean_json.round() as u64)
                ),
                reference: "—".to_owned(),
                ratio: self.per_order() / self.memory.mean_json,
                goal: Goal::AtMost,
                target: 2.0,
                also: None,
            },
        ]
    }

    pub fn table(&self) -> String {
        let mut out = String::from(
            "| measure | service | reference | ratio | target | verdict |\n\
             |---|---|---|---:|---|---|\n",
        );
        for row in self.rows() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {} | {} |",
                row.measure,
                row.service,
                row.reference,
                row.ratio,
                row.target_text(),
                row.verdict()
            );
        }
        out
    }

    /// What the run measured beyond the table, per row: the facts a reader needs to see
    /// where the time and memory go.
    fn details(&self, name: &str) -> Vec<String> {
        let n = self.sizes.ingest as f64;
        match name {
            "HTTP" => {
                let h = &self.http;
                let per_request = |cpu: &[(String, f64)], comm: &str, w: &Wrk| {
                    if w.requests == 0 {
                        0.0
                    } else {
                        cpu_of(cpu, comm) / w.requests as f64 * 1e6
                    }
                };
                vec![
                    format!(
                        "Both servers answer the same {}-byte JSON of order `{}`; wrk runs on the \
                         same 2 cores as the server it measures ({WRK_THREADS} threads, \
                         {WRK_CONNECTIONS} connections).",
                        h.body_bytes, h.order_uid
                    ),
                    format!(
                        "Service run: machine {:.0} % busy; {}.",
                        h.service_busy * 100.0,
                        cpu_text(&h.service_cpu, h.service.seconds)
                    ),
                    format!(
                        "nginx run: machine {:.0} % busy; {}.",
                        h.nginx_busy * 100.0,
                        cpu_text(&h.nginx_cpu, h.nginx.seconds)
                    ),
                    format!(
                        "Server CPU per request: orders-service {:.1} µs, nginx {:.1} µs; wrk \
                         {:.1} µs against the service and {:.1} µs against nginx.",
                        per_request(&h.service_cpu, "orders-service", &h.service),
                        per_request(&h.nginx_cpu, "nginx", &h.nginx),
                        per_request(&h.service_cpu, "wrk", &h.service),
                        per_request(&h.nginx_cpu, "wrk", &h.nginx),
                    ),
                ]
            }
            "Ingest" => {
                let i = &self.ingest;
                let after_first = i.seconds - i.first_row_seconds;
                let steady = if after_first > 0.0 {
                    format!(
                        "{} orders/s from the first stored row to the last",
                        thousands((n / after_first).round() as u64)
                    )
                } else {
                    "no time between first and last row".to_owned()
                };
                vec![
                    format!(
                        "The first order was stored {:.1} s after the service started{}; {steady}.",
                        i.first_row_seconds,
                        i.assigned_seconds.map_or_else(String::new, |t| format!(
                            " (partitions assigned to its consumer after {t:.1} s)"
                        ))
                    ),
                    format!(
                        "Ingest: machine {:.0} % busy; {}; the backend answering the \
                         `count(*)` polls used {:.1} s of it. CPU per order: orders-service \
                         {:.0} µs, PostgreSQL {:.0} µs, broker {:.0} µs.",
                        i.busy * 100.0,
                        cpu_text(&i.cpu, i.seconds),
                        i.poll_backend_seconds,
                        cpu_of(&i.cpu, "orders-service") / n * 1e6,
                        cpu_of(&i.cpu, "postgres") / n * 1e6,
                        cpu_of(&i.cpu, "nisshi") / n * 1e6,
                    ),
                    format!(
                        "COPY: {:.1} MiB of binary COPY data, one backend, no Kafka, parsing, \
                         validation or conflict check; {}. PostgreSQL CPU per order {:.0} µs.",
                        i.copy_bytes as f64 / (1024.0 * 1024.0),
                        cpu_text(&i.copy_cpu, i.copy_seconds),
                        cpu_of(&i.copy_cpu, "postgres") / n * 1e6
                    ),
                    format!(
                        "Producer: {}; consumer outcome stored = {}{}.",
                        i.producer,
                        i.stored
                            .map_or_else(|| "absent".to_owned(), |v| thousands(v as u64)),
                        if i.other_outcomes.is_empty() {
                            String::new()
                        } else {
                            format!(", also {}", i.other_outcomes)
                        }
                    ),
                ]
            }
            "Warm-up" => {
                let w = &self.warm;
                vec![
                    format!(
                        "orders_cache_warmup_orders = {}; /readyz answered 200 {:.2} s after the \
                         process started; CPU from start to ready: {}.",
                        thousands(w.orders as u64),
                        w.ready_seconds,
                        cpu_text(&w.cpu, w.ready_seconds)
                    ),
                    format!(
                        "psql runs: {} s (best is the reference); CPU during the best run: {}.",
                        w.select_runs
                            .iter()
                            .map(|s| format!("{s:.2}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        cpu_text(&w.select_cpu, self.select_best())
                    ),
                    format!(
                        "The {} extra rows were made with SQL in {:.1} s, then VACUUM ANALYZE \
                         and CHECKPOINT; both sides read a table that is in the OS page cache.",
                        thousands(self.sizes.warmup - self.sizes.ingest),
                        w.grow_seconds
                    ),
                ]
            }
            "Memory" => {
                let m = &self.memory;
                let mut lines = vec![format!(
                    "VmRSS {} with the warm-up disabled, {} after warming {} orders: {} more.",
                    mib(m.rss_empty),
                    mib(m.rss_warm),
                    thousands(m.orders as u64),
                    mib(m.rss_warm.saturating_sub(m.rss_empty))
                )];
                if let (Some(bytes), Some(entries)) = (m.cache_bytes, m.cache_entries)
                    && entries > 0.0
                {
                    lines.push(format!(
                        "The cache's own accounting (orders_cache_bytes / orders_cache_entries): \
                         {} entries, {} B per entry (JSON, id, ETag and an estimated 160 B of \
                         overhead); the other {} B per order of RSS growth are outside that \
                         estimate.",
                        thousands(entries as u64),
                        thousands((bytes / entries).round() as u64),
                        thousands((self.per_order() - bytes / entries).max(0.0).round() as u64)
                    ));
                }
                lines
            }
            _ => Vec::new(),
        }
    }

    /// A sentence on what bounds a row that falls short, from the measured facts.
    fn limit(&self, name: &str) -> String {
        let n = self.sizes.ingest as f64;
        match name {
            "HTTP" => {
                let h = &self.http;
                let secs = h.service.seconds.max(1e-9);
                let wrk = cpu_of(&h.service_cpu, "wrk") / secs;
                let server = cpu_of(&h.service_cpu, "orders-service") / secs;
                let per_request = |cpu: &[(String, f64)], comm: &str, w: &Wrk| {
                    cpu_of(cpu, comm) / (w.requests.max(1) as f64) * 1e6
                };
                let bound = if h.service_busy >= 0.95 {
                    "the machine was saturated, so the service's rate is the CPU wrk leaves it \
                     divided by its CPU per request"
                } else {
                    "the machine was not saturated, so the bound is not CPU alone (latency \
                     per request with 64 connections)"
                };
                let cpu_text = format!(
                    "wrk and the server share the 2 cores: during the service's run wrk used \
                     {wrk:.2} cores and the service {server:.2} (machine {:.0} % busy). The \
                     service spent {:.1} µs of CPU per request, nginx {:.1} µs",
                    h.service_busy * 100.0,
                    per_request(&h.service_cpu, "orders-service", &h.service),
                    per_request(&h.nginx_cpu, "nginx", &h.nginx),
                );
                if h.service.requests_per_sec >= h.nginx.requests_per_sec {
                    format!(
                        "the rate is met; the p99 latency is not ({} against nginx's {}). \
                         {cpu_text}. With wrk's 64 connections always busy, the service \
                         answered {:.0} % more requests per second than nginx on the same \
                         cores, and its tail is where a request waits for one of the two \
                         cores that wrk's threads and the service's workers compete for; \
                         p50 is {} against {}. The tail was not narrowed further in this \
                         run.",
                        ms(h.service.p99_ms),
                        ms(h.nginx.p99_ms),
                        (h.service.requests_per_sec / h.nginx.requests_per_sec - 1.0) * 100.0,
                        ms(h.service.p50_ms),
                        ms(h.nginx.p50_ms),
                    )
                } else {
                    format!("{cpu_text}; {bound}.")
                }
            }
            "Ingest" => {
                let i = &self.ingest;
                let startup = i.first_row_seconds / i.seconds * 100.0;
                let steady = i.seconds - i.first_row_seconds;
                let steady_ratio = if steady > 0.0 {
                    format!(
                        "; from the first stored order to the last the rate was {} orders/s \
                         (ratio {:.2} against COPY)",
                        thousands((n / steady).round() as u64),
                        (n / steady) / self.copy_rate()
                    )
                } else {
                    String::new()
                };
                let joined = i.assigned_seconds.map_or_else(String::new, |t| {
                    format!(" (the consumer was assigned its partitions after {t:.1} s)")
                });
                let handler = match (i.handler_seconds, i.batches, i.batch_orders) {
                    (Some(busy), Some(batches), Some(orders)) if batches > 0.0 && steady > 0.0 => {
                        let saturation = if i.busy < 0.9 {
                            format!(
                                " With the machine {:.0} % busy, the cores were not the bound: \
                                 the rate is the batch size over the time to process one batch.",
                                i.busy * 100.0
                            )
                        } else {
                            String::new()
                        };
                        format!(
                            " The consumer processed {} batches of {:.0} messages on average, \
                             one batch at a time with each partition's share of it in a \
                             transaction of its own, at the same time as the others', {:.0} ms \
                             each, and spent {busy:.1} s of the {steady:.1} s between the first \
                             and the last stored order processing them.{saturation}",
                            thousands(batches as u64),
                            orders / batches,
                            busy / batches * 1000.0
                        )
                    }
                    _ => String::new(),
                };
                format!(
                    "{startup:.0} % of the wall time ({:.1} s) passed before the first order \
                     was stored{joined}{steady_ratio}.{handler} Over the whole run each order \
                     cost {:.0} µs of orders-service CPU and {:.0} µs of PostgreSQL CPU \
                     (machine {:.0} % busy; the PostgreSQL figure includes {:.1} s of CPU \
                     for the `count(*)` polls that time the run), against {:.0} µs of \
                     PostgreSQL and {:.0} µs of psql CPU for COPY.",
                    i.first_row_seconds,
                    cpu_of(&i.cpu, "orders-service") / n * 1e6,
                    cpu_of(&i.cpu, "postgres") / n * 1e6,
                    i.busy * 100.0,
                    i.poll_backend_seconds,
                    cpu_of(&i.copy_cpu, "postgres") / n * 1e6,
                    cpu_of(&i.copy_cpu, "psql") / n * 1e6,
                )
            }
            "Warm-up" => {
                let w = &self.warm;
                format!(
                    "From start to ready the service used {} against {} for the best psql \
                     run.",
                    cpu_text(&w.cpu, w.ready_seconds),
                    cpu_text(&w.select_cpu, self.select_best())
                )
            }
            "Memory" => {
                let m = &self.memory;
                format!(
                    "Each cached order grew the RSS by {} B for {} B of JSON; see the details \
                     for the cache's own estimate per entry against the measured growth.",
                    thousands(self.per_order().round() as u64),
                    thousands(m.mean_json.round() as u64)
                )
            }
            _ => String::new(),
        }
    }

    /// The results section of `docs/benchmarks.md`.
    pub fn section(&self) -> String {
        let m = &self.machine;
        let s = self.sizes;
        let mut out = String::new();
        let _ = writeln!(out, "### {}\n", self.heading());
        let _ = writeln!(
            out,
            "Linux {}; PostgreSQL {} ({}); nginx {}; wrk {}; {}. At the start: load average \
             {}, {}.\n",
            m.kernel, m.postgres, m.pg_settings, m.nginx, m.wrk, m.rustc, m.load, m.busy
        );
        out.push_str(&self.table());
        out.push('\n');
        let other = self.other_load();
        if other.is_empty() {
            out.push_str("No other process used 0.05 cores or more during any measurement.\n\n");
        } else {
            let _ = writeln!(
                out,
                "Other processes took CPU during some measurements, which lowers those \
                 numbers: {}.\n",
                other.join("; ")
            );
        }

        let rows = self.rows();
        let short: Vec<&Row> = rows.iter().filter(|r| r.verdict() != "met").collect();
        out.push_str("#### What limits it\n\n");
        if short.is_empty() {
            out.push_str("Every row meets its target on this run.\n\n");
        }
        for row in &short {
            let _ = writeln!(
                out,
                "- **{}** ({:.2}, target {}): {}\n",
                row.measure,
                row.ratio,
                row.target_text(),
                self.limit(row.name)
            );
        }

        out.push_str("#### Measured details\n\n");
        for row in &rows {
            let _ = writeln!(out, "{}:\n", row.measure);
            for line in self.details(row.name) {
                let _ = writeln!(out, "- {line}");
            }
            out.push('\n');
        }

        out.push_str("#### Commands and settings\n\n");
        let lines = [
            "`cargo xtask bench orders` (see the top of this file for each step); release build: \
             `cargo build --release -p orders-service -p orders-tools --bins`."
                .to_owned(),
            format!(
                "Private broker: `nisshi broker --listener-url tcp://127.0.0.1:PORT \
                 --advertised-listener-url tcp://127.0.0.1:PORT --storage-engine memory://tansu/`; \
                 topics `orders` (3 partitions) and `orders.dlq` (1). Database `{BENCH_DB}` on the \
                 stack's PostgreSQL."
            ),
            format!(
                "Ingest: `target/release/orders-producer --brokers 127.0.0.1:PORT --topic orders \
                 --count {} --seed {SEED} --json --rate 0` before the service starts; then \
                 `target/release/orders-service` with `ORDERS__DATABASE__URL`, \
                 `ORDERS__KAFKA__BROKERS`, `ORDERS__HTTP__BIND=127.0.0.1:PORT`, \
                 `ORDERS__CACHE__MAX_BYTES={CACHE_MAX_BYTES}`, \
                 `ORDERS__TELEMETRY__LOG_FILTER=warn`, `APP_ENV=bench` (other settings at their \
                 defaults), timed from the process start until `SELECT count(*) FROM \
                 orders.orders` (polled every {} ms) reaches {}.",
                s.ingest,
                POLL.as_millis(),
                thousands(s.ingest)
            ),
            format!(
                "COPY: `\\copy orders.<table> TO '<file>' (FORMAT binary)` for orders, deliveries, \
                 payments, items; a fresh `{COPY_DB}` with `CREATE SCHEMA orders` and \
                 `migrations/orders/*.sql`; timed: one `psql` running `\\copy orders.<table> FROM \
                 '<file>' (FORMAT binary)` for the four tables, orders first."
            ),
            format!(
                "Warm-up: orders.orders grown to {} rows with `INSERT ... SELECT` copies \
                 (`<uid>_c<n>`, the id rewritten inside the JSON and its SHA-256 recomputed), \
                 `VACUUM ANALYZE`, `CHECKPOINT`; the service restarted with \
                 `ORDERS__CACHE__WARMUP_LIMIT={}`; `orders_cache_warmup_seconds` and \
                 `orders_cache_warmup_orders` read from `/metrics` once `/readyz` is 200. \
                 Reference: `psql -At -c \"SELECT order_uid, canonical_json, payload_sha256 FROM \
                 orders.orders ORDER BY date_created DESC, order_uid DESC LIMIT {}\" > /dev/null`, \
                 best of 3.",
                thousands(s.warmup),
                s.warmup,
                s.warmup
            ),
            "Memory: VmRSS from `/proc/<pid>/status` once `/readyz` is 200, with \
             `ORDERS__CACHE__WARMUP_LIMIT=0` and after the warm-up above; (warm − empty) / \
             orders warmed, divided by `SELECT avg(length(canonical_json)) FROM orders.orders`."
                .to_owned(),
            format!(
                "HTTP: `wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{}s --latency \
                 http://127.0.0.1:PORT/order/<id>` after a discarded {WRK_WARMUP_SECS} s run, \
                 against the warmed service, then against nginx {} (`nginx -e <dir>/error.log -c \
                 <dir>/nginx.conf -p <dir>`, `worker_processes 2`, `access_log off`, \
                 `sendfile on`, `keepalive_requests 1000000`, `default_type application/json`) \
                 serving the same bytes from `<dir>/html/order/<id>`, with the service stopped; \
                 `<dir>` is `target/bench/nginx/`.",
                s.wrk_secs, m.nginx
            ),
            "CPU shares come from `/proc/<pid>/stat` before and after each measurement \
             (utime + stime; processes that exited are counted through their parent's cutime + \
             cstime), summed per command name; the machine's busy share from `/proc/stat`; \
             \"other load\" is any process a measurement did not start, kernel threads aside."
                .to_owned(),
        ];
        for line in lines {
            let _ = writeln!(out, "- {line}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_verdicts() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ms(0.481), "0.48 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(ms(123.4), "123 ms");
        assert_eq!(mib(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(verdict(0.89, Goal::AtLeast, 0.9), "below");
        assert_eq!(verdict(0.9, Goal::AtLeast, 0.9), "met");
        assert_eq!(verdict(1.7, Goal::AtMost, 2.0), "met");
        assert_eq!(verdict(2.1, Goal::AtMost, 2.0), "above");
        assert_eq!(verdict(f64::NAN, Goal::AtMost, 2.0), "not measured");
    }

    #[test]
    fn the_section_has_the_table_and_its_parts() {
        let report = Report {
            date: "2026-12-03".to_owned(),
            machine: Machine {
                cpu: "Some CPU".to_owned(),
                cores: 2,
                ..Machine::default()
            },
            sizes: super::super::QUICK,
            ingest: IngestResult::default(),
            warm: WarmResult::default(),
            memory: MemoryResult::default(),
            http: HttpResult::default(),
        };
        let section = report.section();
        assert!(
            section.starts_with("### orders-service benchmark — 2026-12-03, Some CPU, 2 cores"),
            "{section}"
        );
        for part in [
            "| measure | service | reference | ratio | target | verdict |",
            "| HTTP cache hit (wrk -t2 -c64 5s) |",
            "| Ingest 20,000 orders |",
            "| Warm-up 100,000 orders |",
            "| Memory per cached order |",
            "#### What limits it",
            "#### Measured details",
            "#### Commands and settings",
        ] {
            assert!(section.contains(part), "{part} missing from:\n{section}");
        }
        assert_eq!(report.table().lines().count(), 6);
    }
}
