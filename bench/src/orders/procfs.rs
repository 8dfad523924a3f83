//! What `/proc` says about the machine and its processes: CPU ticks per process and of the
//! whole machine, a process's resident memory, the CPU model and the memory size. The files
//! are plain text in a fixed layout; the parsers are unit-tested below.

use std::collections::HashMap;
use std::fs;

use anyhow::{Context as _, Result};

/// The CPU ticks of one process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcTicks {
    pub comm: String,
    pub ppid: u32,
    /// utime + stime: its own threads.
    pub own: u64,
    /// cutime + cstime: the children it has waited for (an exited psql, wrk, or a
    /// PostgreSQL backend reaped by the postmaster).
    pub children: u64,
}

pub fn parse_proc_stat(stat: &str) -> Option<ProcTicks> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // Fields after the name start at field 3 (state): ppid is field 4, utime, stime,
    // cutime, cstime are fields 14 to 17.
    let number = |index: usize| -> Option<u64> {
        let value: i64 = fields.get(index)?.parse().ok()?;
        Some(u64::try_from(value).unwrap_or(0))
    };
    Some(ProcTicks {
        comm,
        ppid: u32::try_from(number(1)?).ok()?,
        own: number(11)? + number(12)?,
        children: number(13)? + number(14)?,
    })
}

/// The ticks of every process, by pid.
pub type CpuSnapshot = HashMap<u32, ProcTicks>;

/// CPU seconds per command name, largest first.
pub type CpuUse = Vec<(String, f64)>;

pub fn cpu_snapshot() -> CpuSnapshot {
    let mut snapshot = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return snapshot;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(stat) = fs::read_to_string(entry.path().join("stat"))
            && let Some(parsed) = parse_proc_stat(&stat)
        {
            snapshot.insert(pid, parsed);
        }
    }
    snapshot
}

/// CPU seconds used between two snapshots, per command name, largest first. A process that
/// exited in between is counted through its parent's children ticks, under the parent's
/// name (PostgreSQL backends under `postgres`); the children of this process (`me`) are
/// counted under `my_children`, the command it ran (`wrk`, `psql`).
pub fn cpu_delta(
    before: &CpuSnapshot,
    after: &CpuSnapshot,
    clk_tck: f64,
    me: u32,
    my_children: &str,
) -> CpuUse {
    let children_name = |pid: u32, comm: &str| {
        if pid == me {
            my_children.to_owned()
        } else {
            comm.to_owned()
        }
    };
    let mut by_name: HashMap<String, i64> = HashMap::new();
    let signed = |ticks: u64| i64::try_from(ticks).unwrap_or(i64::MAX);
    for (pid, now) in after {
        let (own, children) = match before.get(pid) {
            Some(old) if old.comm == now.comm => (old.own, old.children),
            _ => (0, 0),
        };
        *by_name.entry(now.comm.clone()).or_default() += signed(now.own) - signed(own);
        *by_name.entry(children_name(*pid, &now.comm)).or_default() +=
            signed(now.children) - signed(children);
    }
    // What a process that exited had used before the window reaches its parent's children
    // ticks too, and is not part of the window.
    for (pid, old) in before {
        if !after.contains_key(pid)
            && let Some(parent) = after.get(&old.ppid)
        {
            *by_name
                .entry(children_name(old.ppid, &parent.comm))
                .or_default() -= signed(old.own + old.children);
        }
    }
    let mut list: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(_, ticks)| *ticks > 0)
        .map(|(name, ticks)| (name, ticks as f64 / clk_tck))
        .collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list
}

pub fn cpu_of(list: &[(String, f64)], name: &str) -> f64 {
    list.iter()
        .filter(|(n, _)| n == name)
        .fold(0.0, |sum, (_, s)| sum + s)
}

/// Kernel threads that do work on behalf of every process (writeback, interrupts).
const SYSTEM_THREADS: &[&str] = &[
    "kworker",
    "ksoftirqd",
    "rcu_",
    "migration",
    "jbd2",
    "kswapd",
    "kcompactd",
    "khugepaged",
    "cpuhp",
];

/// The CPU of processes a measurement did not involve, when it reaches 0.05 cores: other
/// load on the machine that distorts the numbers.
pub fn interference(cpu: &[(String, f64)], expected: &[&str], seconds: f64) -> Option<String> {
    if seconds <= 0.0 {
        return None;
    }
    let others: Vec<&(String, f64)> = cpu
        .iter()
        .filter(|(name, _)| {
            !expected.contains(&name.as_str())
                && !SYSTEM_THREADS.iter().any(|p| name.starts_with(p))
        })
        .collect();
    let total = others.iter().fold(0.0, |sum, (_, c)| sum + c) / seconds;
    (total >= 0.05).then(|| {
        format!(
            "{total:.2} cores ({})",
            others
                .iter()
                .take(4)
                .map(|(name, c)| format!("{name} {:.2}", c / seconds))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// `orders-service 1.21 cores (18.2 s CPU), postgres 0.60, ...` for the top five.
pub fn cpu_text(list: &[(String, f64)], seconds: f64) -> String {
    if list.is_empty() || seconds <= 0.0 {
        return "not measured".to_owned();
    }
    list.iter()
        .take(5)
        .map(|(name, cpu)| format!("{name} {:.2} cores ({cpu:.1} s)", cpu / seconds))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (busy, total) ticks of all CPUs from the `cpu` line of `/proc/stat`.
pub fn parse_cpu_line(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let get = |i: usize| values.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let idle = get(3) + get(4);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    Some((busy, busy + idle))
}

pub fn machine_ticks() -> (u64, u64) {
    fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| parse_cpu_line(&s))
        .unwrap_or((0, 0))
}

pub fn busy_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let busy = after.0.saturating_sub(before.0) as f64;
    let total = after.1.saturating_sub(before.1) as f64;
    if total > 0.0 { busy / total } else { 0.0 }
}

pub fn count_processes(comm: &str) -> usize {
    cpu_snapshot().values().filter(|p| p.comm == comm).count()
}

/// `VmRSS:` of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let rest = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?;
    let mut parts = rest.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some("mB" | "MB") => Some(value * 1024 * 1024),
        _ => None,
    }
}

pub fn rss_of(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_vm_rss(&text).with_context(|| format!("no VmRSS in {path}"))
}

pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_owned())
        })
        .filter(|m| !m.is_empty())
}

pub fn mem_total(meminfo: &str) -> Option<u64> {
    let rest = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_from_proc_status() {
        let status = "Name:\torders-service\nVmPeak:\t 2000000 kB\nVmRSS:\t  123456 kB\n\
                      RssAnon:\t  100000 kB\n";
        assert_eq!(parse_vm_rss(status), Some(123_456 * 1024));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
        let own = fs::read_to_string("/proc/self/status").expect("own status");
        assert!(parse_vm_rss(&own).is_some_and(|rss| rss > 0));
    }

    #[test]
    fn reads_proc_stat_lines_and_machine_cpu() {
        let stat = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 \
                    8 0 100 1000000 2000 18446744073709551615";
        assert_eq!(
            parse_proc_stat(stat),
            Some(ProcTicks {
                comm: "tokio (rt) x".to_owned(),
                ppid: 1,
                own: 325,
                children: 0
            })
        );
        assert_eq!(parse_proc_stat("garbage"), None);
        let cpu = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n";
        assert_eq!(parse_cpu_line(cpu), Some((161, 1181)));
    }

    #[test]
    fn counts_cpu_of_live_and_exited_processes() {
        let p = |comm: &str, ppid: u32, own: u64, children: u64| ProcTicks {
            comm: comm.to_owned(),
            ppid,
            own,
            children,
        };
        // 1 postmaster, 2 a backend that exits during the window after 30 more ticks, 3 a
        // backend that starts during it, 4 an idle process, 9 this process, whose child
        // (wrk) ran and exited inside the window.
        let before = HashMap::from([
            (1, p("postgres", 0, 100, 1000)),
            (2, p("postgres", 1, 20, 0)),
            (4, p("idle", 0, 10, 0)),
            (9, p("bench", 0, 5, 0)),
        ]);
        let after = HashMap::from([
            (1, p("postgres", 0, 110, 1050)),
            (3, p("postgres", 1, 40, 0)),
            (4, p("idle", 0, 10, 0)),
            (9, p("bench", 0, 6, 200)),
        ]);
        assert_eq!(
            cpu_delta(&before, &after, 100.0, 9, "wrk"),
            vec![
                ("wrk".to_owned(), 2.0),
                // 10 postmaster + 40 new backend + (50 - 20) reaped backend.
                ("postgres".to_owned(), 0.8),
                ("bench".to_owned(), 0.01),
            ]
        );
        assert_eq!(cpu_of(&[], "wrk").to_string(), "0");
    }

    #[test]
    fn reports_other_load_during_a_measurement() {
        let cpu = vec![
            ("orders-service".to_owned(), 20.0),
            ("bash".to_owned(), 9.0),
            ("kworker/u8:1-writeback".to_owned(), 3.0),
            ("wrk".to_owned(), 8.0),
            ("process_api".to_owned(), 1.5),
        ];
        assert_eq!(
            interference(&cpu, &["orders-service", "wrk"], 15.0).as_deref(),
            Some("0.70 cores (bash 0.60, process_api 0.10)")
        );
        assert_eq!(
            interference(&cpu[..1], &["orders-service", "wrk"], 15.0),
            None
        );
        assert_eq!(
            interference(
                &cpu,
                &["orders-service", "wrk", "bash", "process_api"],
                15.0
            ),
            None
        );
    }

    #[test]
    fn reads_cpu_model_and_memory() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) \
                       Processor\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(
            mem_total("MemTotal:       24682416 kB\nMemFree: 1 kB\n"),
            Some(24_682_416 * 1024)
        );
    }
}
