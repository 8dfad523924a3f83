//! Reading the services' `/metrics` (the Prometheus text format): enough to sum the samples
//! of one metric that carry some labels. No crate of the workspace parses that format, and
//! the benchmark needs a few counters and gauges only; the parser is unit-tested below.

/// One Prometheus text-format sample.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses `name{label="value",...} value [timestamp]`; None for comments, blank lines and
/// lines that are not samples.
fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        let close = loop {
            let (index, c) = chars.next()?;
            match c {
                '}' => break index,
                ',' | ' ' => {}
                '=' => {
                    let (_, quote) = chars.next()?;
                    if quote != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next()?;
                        match c {
                            '"' => break,
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key).trim().to_owned(), value));
                }
                other => key.push(other),
            }
        };
        rest = &inner[close + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The sum of the samples of `name` that carry every label in `want`; None when there is
/// none.
pub fn prom_sum(text: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for sample in text.lines().filter_map(parse_sample) {
        let matches = sample.name == name
            && want
                .iter()
                .all(|(k, v)| sample.labels.iter().any(|(lk, lv)| lk == k && lv == v));
        if matches {
            *found.get_or_insert(0.0) += sample.value;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_samples() {
        assert_eq!(
            parse_sample("orders_cache_warmup_seconds 3.25"),
            Some(Sample {
                name: "orders_cache_warmup_seconds".to_owned(),
                labels: Vec::new(),
                value: 3.25
            })
        );
        let sample = parse_sample(
            r#"kafka_consumer_messages_total{topic="orders",outcome="stored"} 2e5 1700000000"#,
        )
        .expect("sample");
        assert_eq!(sample.name, "kafka_consumer_messages_total");
        assert_eq!(
            sample.labels,
            vec![
                ("topic".to_owned(), "orders".to_owned()),
                ("outcome".to_owned(), "stored".to_owned())
            ]
        );
        assert_eq!(sample.value, 200_000.0);
        let escaped = parse_sample(r#"m{path="/a\"b,c}",le="+Inf"} +Inf"#).expect("sample");
        assert_eq!(escaped.labels[0].1, "/a\"b,c}");
        assert_eq!(escaped.value, f64::INFINITY);
        assert_eq!(parse_sample("# TYPE m counter"), None);
        assert_eq!(parse_sample(""), None);
        assert_eq!(parse_sample("m{broken 1"), None);
    }

    #[test]
    fn sums_the_matching_series() {
        let text = "\
# HELP kafka_consumer_messages_total Messages by outcome.
# TYPE kafka_consumer_messages_total counter
kafka_consumer_messages_total{topic=\"orders\",outcome=\"stored\"} 150000
kafka_consumer_messages_total{topic=\"other\",outcome=\"stored\"} 50000
kafka_consumer_messages_total{topic=\"orders\",outcome=\"invalid\"} 3
orders_cache_warmup_orders 1000000
orders_cache_warmup_orders_total 7
";
        assert_eq!(
            prom_sum(
                text,
                "kafka_consumer_messages_total",
                &[("outcome", "stored")]
            ),
            Some(200_000.0)
        );
        assert_eq!(
            prom_sum(
                text,
                "kafka_consumer_messages_total",
                &[("topic", "orders"), ("outcome", "invalid")]
            ),
            Some(3.0)
        );
        assert_eq!(
            prom_sum(text, "orders_cache_warmup_orders", &[]),
            Some(1_000_000.0)
        );
        assert_eq!(
            prom_sum(
                text,
                "kafka_consumer_messages_total",
                &[("outcome", "conflict")]
            ),
            None
        );
    }
}
