//! Step 4 of the benchmark, HTTP vs nginx: wrk against `GET /order/<id>` of a cached
//! order, then against nginx serving the same bytes as a static file.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use super::procfs::{CpuUse, busy_share, cpu_snapshot, cpu_text, machine_ticks};
use super::report::{HttpResult, ms, thousands};
use super::wrk::{Wrk, nginx_conf, parse_wrk};
use super::{Bench, Sizes, WRK_CONNECTIONS, WRK_THREADS, WRK_WARMUP_SECS, run_bounded};
use crate::support::{free_port, note, rel, step, tail};

/// An answer to a GET: status, the headers the benchmark looks at, body.
struct Answer {
    status: reqwest::StatusCode,
    x_cache: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Bench {
    async fn get(&self, url: &str) -> Result<Answer> {
        let answer = self.http.get(url).send().await?;
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (x_cache, content_type) = (header("x-cache"), header("content-type"));
        let status = answer.status();
        let body = answer.bytes().await?.to_vec();
        Ok(Answer {
            status,
            x_cache,
            content_type,
            body,
        })
    }

    pub(super) async fn http(
        &mut self,
        sizes: Sizes,
        service: (u32, String),
    ) -> Result<HttpResult> {
        let (pid, addr) = service;
        let uid: String = sqlx::query_scalar(
            "SELECT order_uid FROM orders.orders ORDER BY date_created DESC, order_uid DESC LIMIT 1",
        )
        .fetch_one(&self.db)
        .await?;
        let path = format!("/order/{uid}");
        let url = format!("http://{addr}{path}");
        let answer = self.get(&url).await?;
        if answer.status != reqwest::StatusCode::OK {
            bail!("GET {url} answered {}", answer.status);
        }
        if answer.x_cache.as_deref() != Some("hit") {
            bail!(
                "GET {url} was not a cache hit (X-Cache: {:?})",
                answer.x_cache
            );
        }
        let body = answer.body;
        step(format!(
            "HTTP: order {uid} ({} bytes of JSON) is cached (X-Cache: hit)",
            body.len()
        ));
        let service_run = self.wrk_pair("orders-service", &url, sizes, pid).await?;
        self.stop_pid(pid);

        // nginx serving the same bytes as a static file.
        let nginx_dir = self.dir.join("nginx");
        let _ = fs::remove_dir_all(&nginx_dir);
        let html = nginx_dir.join("html");
        fs::create_dir_all(html.join("order"))?;
        for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            fs::create_dir_all(nginx_dir.join("tmp").join(temp))?;
        }
        fs::write(html.join("order").join(&uid), &body)?;
        let port = free_port()?;
        let conf = nginx_dir.join("nginx.conf");
        fs::write(&conf, nginx_conf(&nginx_dir, port))?;
        step(format!(
            "HTTP reference: nginx on 127.0.0.1:{port} serving the same JSON as a static file ({})",
            rel(&conf)
        ));
        let mut cmd = std::process::Command::new(&self.args.nginx);
        cmd.arg("-e")
            .arg(nginx_dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&nginx_dir);
        let nginx_pid = self.spawn("nginx", cmd, "nginx/stdout.log")?;
        let nginx_addr = format!("127.0.0.1:{port}");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(&nginx_addr).await.is_err() {
            self.check_alive(nginx_pid)?;
            if started.elapsed() > Duration::from_secs(10) {
                bail!(
                    "nginx did not listen on {nginx_addr} within 10 s:\n{}",
                    tail(&nginx_dir.join("error.log"), 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let nginx_url = format!("http://{nginx_addr}{path}");
        let nginx_answer = self.get(&nginx_url).await?;
        if nginx_answer.status != reqwest::StatusCode::OK || nginx_answer.body != body {
            bail!(
                "nginx answered {} with {} bytes for {path}, not the service's {} bytes \
                 (can its worker user read {}?):\n{}",
                nginx_answer.status,
                nginx_answer.body.len(),
                body.len(),
                html.display(),
                tail(&nginx_dir.join("error.log"), 10)
            );
        }
        note(format!(
            "nginx answers the same {} bytes, Content-Type {}",
            nginx_answer.body.len(),
            nginx_answer.content_type.unwrap_or_default()
        ));
        let nginx_run = self.wrk_pair("nginx", &nginx_url, sizes, nginx_pid).await?;
        self.stop_pid(nginx_pid);

        Ok(HttpResult {
            order_uid: uid,
            body_bytes: body.len(),
            service: service_run.0,
            service_cpu: service_run.1,
            service_busy: service_run.2,
            nginx: nginx_run.0,
            nginx_cpu: nginx_run.1,
            nginx_busy: nginx_run.2,
        })
    }

    /// A 3 s warm-up run (discarded), then the measured run; the raw outputs are kept in
    /// `target/bench/wrk-<name>.txt`.
    async fn wrk_pair(
        &mut self,
        name: &str,
        url: &str,
        sizes: Sizes,
        pid: u32,
    ) -> Result<(Wrk, CpuUse, f64)> {
        let mut result = None;
        for (secs, measured) in [(WRK_WARMUP_SECS, false), (sizes.wrk_secs, true)] {
            self.check_alive(pid)?;
            let mut cmd = tokio::process::Command::new(&self.args.wrk);
            cmd.arg(format!("-t{WRK_THREADS}"))
                .arg(format!("-c{WRK_CONNECTIONS}"))
                .arg(format!("-d{secs}s"))
                .arg("--latency")
                .arg(url);
            let shown = self.shown(cmd.as_std());
            step(format!(
                "wrk against {name}: {} ({shown})",
                if measured {
                    "measured run"
                } else {
                    "warm-up run, discarded"
                },
            ));
            let cpu_before = cpu_snapshot();
            let busy_before = machine_ticks();
            let ran = run_bounded(&mut cmd, &shown, Duration::from_secs(secs + 30), true).await?;
            let cpu = self.cpu_since(&cpu_before, "wrk");
            let busy = busy_share(busy_before, machine_ticks());
            if !ran.status.success() {
                bail!("wrk failed ({}): {}", ran.status, ran.stderr.trim());
            }
            let wrk = parse_wrk(&ran.stdout)
                .ok_or_else(|| anyhow!("could not read wrk's output:\n{}", ran.stdout.trim()))?;
            note(format!(
                "{} req/s, p50 {}, p99 {}, {} requests{}",
                thousands(wrk.requests_per_sec.round() as u64),
                ms(wrk.p50_ms),
                ms(wrk.p99_ms),
                thousands(wrk.requests),
                if wrk.non_2xx + wrk.socket_errors > 0 {
                    format!(
                        ", {} non-2xx, {} socket errors",
                        wrk.non_2xx, wrk.socket_errors
                    )
                } else {
                    String::new()
                }
            ));
            if measured {
                let file = self.dir.join(format!("wrk-{name}.txt"));
                fs::write(&file, &ran.stdout)?;
                note(format!(
                    "CPU during the run: {}; raw output in {}",
                    cpu_text(&cpu, ran.elapsed.as_secs_f64()),
                    rel(&file)
                ));
                if wrk.non_2xx > 0 {
                    bail!("{} answered {} non-2xx responses", name, wrk.non_2xx);
                }
                result = Some((wrk, cpu, busy));
            }
        }
        result.ok_or_else(|| anyhow!("no measured wrk run"))
    }
}
