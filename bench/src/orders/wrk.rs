//! wrk, the HTTP load generator of the HTTP row, and nginx, its static-file reference:
//! reading wrk's text report and version line, and the nginx configuration the benchmark
//! writes. wrk has no machine-readable output, so its report is parsed here (unit-tested
//! below).

use std::path::Path;

/// What one wrk run reported.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Wrk {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub seconds: f64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

/// Reads wrk's report: `Requests/sec:`, the `50%` and `99%` lines of `--latency`, the
/// `N requests in Ts` line, `Non-2xx or 3xx responses:` and `Socket errors:`.
pub fn parse_wrk(text: &str) -> Option<Wrk> {
    let mut wrk = Wrk::default();
    let (mut rps, mut p50, mut p99) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("50%") {
            p50 = parse_wrk_duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = parse_wrk_duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            wrk.non_2xx = rest.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            wrk.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if let Some((count, rest)) = line.split_once(" requests in ")
            && let Ok(count) = count.trim().parse()
        {
            wrk.requests = count;
            let duration = rest.split(',').next().unwrap_or_default().trim();
            wrk.seconds = parse_wrk_duration_ms(duration).map_or(0.0, |ms| ms / 1000.0);
        }
    }
    wrk.requests_per_sec = rps?;
    wrk.p50_ms = p50?;
    wrk.p99_ms = p99?;
    Some(wrk)
}

/// `480.00us`, `1.50ms`, `2.00s`, `1.00m` → milliseconds.
fn parse_wrk_duration_ms(text: &str) -> Option<f64> {
    let units: [(&str, f64); 5] = [
        ("us", 0.001),
        ("ms", 1.0),
        ("s", 1000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
    ];
    units.iter().find_map(|(unit, factor)| {
        let number = text.strip_suffix(unit)?;
        let value: f64 = number.trim().parse().ok()?;
        Some(value * factor)
    })
}

/// `wrk debian/4.1.0-3+b2 [epoll] Copyright ...` → `4.1.0-3+b2`.
pub fn wrk_version(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .map(|v| v.rsplit('/').next().unwrap_or(v).to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

/// The configuration of the nginx that serves the order's JSON as a static file from
/// `<dir>/html`, on 127.0.0.1 only.
pub fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "# Written by `cargo xtask bench orders`: the static-file reference of the HTTP row.
daemon off;
master_process on;
worker_processes 2;
pid {d}/nginx.pid;
error_log {d}/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    # wrk keeps its connections open for the whole run, as it does against the service.
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    types {{ }}
    default_type application/json;
    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;

    server {{
        listen 127.0.0.1:{port};
        root {d}/html;
        location / {{
            try_files $uri =404;
        }}
    }}
}}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "\
Running 15s test @ http://127.0.0.1:40123/order/abc
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   652.31us    1.02ms  40.12ms   94.10%
    Req/Sec    52.10k     3.20k   60.01k    71.33%
  Latency Distribution
     50%  480.00us
     75%  612.00us
     90%  900.00us
     99%    4.51ms
  1555308 requests in 15.00s, 2.01GB read
Requests/sec: 103686.41
Transfer/sec:    137.21MB
";

    #[test]
    fn reads_wrk_requests_per_second_and_latency_percentiles() {
        let wrk = parse_wrk(WRK_OUTPUT).expect("parses");
        assert!((wrk.requests_per_sec - 103_686.41).abs() < 1e-9);
        assert!((wrk.p50_ms - 0.48).abs() < 1e-9);
        assert!((wrk.p99_ms - 4.51).abs() < 1e-9);
        assert_eq!(wrk.requests, 1_555_308);
        assert!((wrk.seconds - 15.0).abs() < 1e-9);
        assert_eq!((wrk.non_2xx, wrk.socket_errors), (0, 0));
    }

    #[test]
    fn reads_wrk_errors_and_second_units() {
        let text = "  Latency Distribution\n     50%    1.20s \n     75%    1.50s\n     \
                    99%    2.00m\n  10 requests in 5.01s, 1.00KB read\n  Socket errors: \
                    connect 0, read 3, write 1, timeout 7\n  Non-2xx or 3xx responses: 4\n\
                    Requests/sec:      2.00\n";
        let wrk = parse_wrk(text).expect("parses");
        assert!((wrk.p50_ms - 1200.0).abs() < 1e-9);
        assert!((wrk.p99_ms - 120_000.0).abs() < 1e-9);
        assert!((wrk.requests_per_sec - 2.0).abs() < 1e-9);
        assert_eq!(wrk.socket_errors, 11);
        assert_eq!(wrk.non_2xx, 4);
        assert!((wrk.seconds - 5.01).abs() < 1e-9);
    }

    #[test]
    fn wrk_durations_in_every_unit() {
        assert_eq!(parse_wrk_duration_ms("250.00us"), Some(0.25));
        assert_eq!(parse_wrk_duration_ms("1.50ms"), Some(1.5));
        assert_eq!(parse_wrk_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_wrk_duration_ms("1.00m"), Some(60_000.0));
        assert_eq!(parse_wrk_duration_ms("fast"), None);
        assert_eq!(parse_wrk_duration_ms(""), None);
    }

    #[test]
    fn incomplete_wrk_output_is_refused() {
        assert_eq!(parse_wrk("Requests/sec: 10.0\n"), None);
        assert_eq!(
            parse_wrk("unable to connect to 127.0.0.1:1 Connection refused"),
            None
        );
    }

    #[test]
    fn reads_the_wrk_version() {
        assert_eq!(
            wrk_version("wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"),
            "4.1.0-3+b2"
        );
        assert_eq!(wrk_version("wrk 4.2.0 [epoll]"), "4.2.0");
    }

    #[test]
    fn nginx_listens_on_loopback_only() {
        let conf = nginx_conf(Path::new("/tmp/x"), 4321);
        assert!(conf.contains("listen 127.0.0.1:4321;"), "{conf}");
        assert!(conf.contains("root /tmp/x/html;"), "{conf}");
        assert_eq!(conf.matches("listen").count(), 1, "{conf}");
    }
}
