//! What `/proc` says about the machine and its processes: CPU ticks per process and of the
//! whole machine, a process's resident memory and the memory size, read with the `procfs`
//! crate. The accounting on top of them (per command name, exited processes through their
//! parents) is unit-tested below.

use std::collections::HashMap;

use ::procfs::process::{Process, Stat};
use ::procfs::{Current as _, CurrentSI as _, KernelStats, Meminfo};
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

impl From<&Stat> for ProcTicks {
    fn from(stat: &Stat) -> Self {
        let ticks = |value: i64| u64::try_from(value).unwrap_or(0);
        Self {
            comm: stat.comm.clone(),
            ppid: u32::try_from(stat.ppid).unwrap_or(0),
            own: stat.utime.saturating_add(stat.stime),
            children: ticks(stat.cutime).saturating_add(ticks(stat.cstime)),
        }
    }
}

/// The ticks of every process, by pid.
pub type CpuSnapshot = HashMap<u32, ProcTicks>;

/// CPU seconds per command name, largest first.
pub type CpuUse = Vec<(String, f64)>;

/// The ticks of every process that can be read (processes exit while they are listed).
pub fn cpu_snapshot() -> CpuSnapshot {
    let Ok(processes) = ::procfs::process::all_processes() else {
        return HashMap::new();
    };
    processes
        .flatten()
        .filter_map(|process| {
            let pid = u32::try_from(process.pid()).ok()?;
            let stat = process.stat().ok()?;
            Some((pid, ProcTicks::from(&stat)))
        })
        .collect()
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

/// (busy, total) ticks of all CPUs since boot, from the `cpu` line of `/proc/stat`; (0, 0)
/// when unreadable.
pub fn machine_ticks() -> (u64, u64) {
    KernelStats::current().map_or((0, 0), |stats| {
        let cpu = &stats.total;
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let idle = cpu.idle + cpu.iowait.unwrap_or(0);
        let busy = cpu.user
            + cpu.nice
            + cpu.system
            + cpu.irq.unwrap_or(0)
            + cpu.softirq.unwrap_or(0)
            + cpu.steal.unwrap_or(0);
        (busy, busy + idle)
    })
}

pub fn busy_share(before: (u64, u64), after: (u64, u64)) -> f64 {
    let busy = after.0.saturating_sub(before.0) as f64;
    let total = after.1.saturating_sub(before.1) as f64;
    if total > 0.0 { busy / total } else { 0.0 }
}

pub fn count_processes(comm: &str) -> usize {
    cpu_snapshot().values().filter(|p| p.comm == comm).count()
}

/// The resident memory of `pid` (`VmRSS` of `/proc/<pid>/status`), in bytes.
pub fn rss_of(pid: u32) -> Result<u64> {
    let kib = Process::new(i32::try_from(pid)?)
        .and_then(|process| process.status())
        .with_context(|| format!("reading /proc/{pid}/status"))?
        .vmrss
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kib * 1024)
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn mem_total() -> Option<u64> {
    Meminfo::current().ok().map(|info| info.mem_total)
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn reads_the_own_process_and_the_machine() {
        let me = std::process::id();
        let snapshot = cpu_snapshot();
        let own = snapshot.get(&me).expect("own process listed");
        assert_eq!(own.ppid, std::os::unix::process::parent_id());
        assert!(own.comm.starts_with("bench"), "{own:?}");
        assert!(snapshot.contains_key(&own.ppid));
        assert!(rss_of(me).expect("own rss") > 1024 * 1024);
        assert!(rss_of(u32::MAX).is_err());
        assert!(mem_total().expect("MemTotal") > 64 * 1024 * 1024);

        let before = machine_ticks();
        assert!(before.0 > 0 && before.0 <= before.1);
        let started = Instant::now();
        while machine_ticks().1 == before.1 && started.elapsed() < Duration::from_secs(5) {}
        let after = machine_ticks();
        assert!(after.0 >= before.0 && after.1 > before.1);
        assert!((0.0..=1.0).contains(&busy_share(before, after)));
    }

    #[test]
    fn counts_the_cpu_of_a_child_that_exited_under_its_name() {
        let before = cpu_snapshot();
        let mut sleeper = Command::new("sleep").arg("30").spawn().expect("sleep");
        let sleeping = count_processes("sleep");
        sleeper.kill().expect("kill sleep");
        sleeper.wait().expect("reap sleep");
        assert!(sleeping >= 1);
        // A shell spinning for 0.4 s under `timeout`, both reaped before the second snapshot:
        // their time reaches this process's cutime and stime only.
        let status = Command::new("timeout")
            .args(["0.4", "sh", "-c", "while :; do :; done"])
            .status()
            .expect("timeout");
        assert_eq!(status.code(), Some(124));
        let cpu = cpu_delta(
            &before,
            &cpu_snapshot(),
            crate::support::clock_ticks(),
            std::process::id(),
            "spinner",
        );
        let spinner = cpu_of(&cpu, "spinner");
        assert!(spinner > 0.05 && spinner < 2.0, "{cpu:?}");
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
}
