//! Small helpers around processes, ports and files that every command uses:
//! printing a step, running a command with its command line shown, probing a
//! TCP port, looking at and signalling a pid. No workflow logic here.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// Prints a step of a workflow, e.g. `==> starting broker on 127.0.0.1:9092`.
pub fn step(message: impl AsRef<str>) {
    println!("==> {}", message.as_ref());
}

/// Prints a detail line under a step.
pub fn note(message: impl AsRef<str>) {
    println!("    {}", message.as_ref());
}

/// The command line of `cmd`, shell-quoted where needed, for printing.
pub fn display(cmd: &Command) -> String {
    // `cargo` rather than the toolchain path in $CARGO, for readability.
    let program = cmd.get_program();
    let program = if Path::new(program).file_name() == Some(OsStr::new("cargo")) {
        OsStr::new("cargo")
    } else {
        program
    };
    std::iter::once(program)
        .chain(cmd.get_args())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word as a POSIX shell reads it back (`shlex`); a word holding a NUL byte, which no
/// shell word can, is shown as a Rust string.
fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    shlex::try_quote(&word).map_or_else(|_| format!("{word:?}"), |quoted| quoted.into_owned())
}

/// Runs `cmd` with inherited stdio after printing its command line; fails
/// when it cannot start or exits non-zero.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    note(format!("$ {line}"));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` capturing its output; fails only when it cannot start.
pub fn capture(cmd: &mut Command) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{}`", display(cmd)))
}

/// Stdout and stderr of a finished command, trimmed, for error messages.
pub fn combined_output(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    format!("{}\n{}", stdout.trim(), stderr.trim())
        .trim()
        .to_owned()
}

/// Finds an executable on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `cargo` that started us (so nested builds use the same toolchain).
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// True when something accepts TCP connections at `addr` (`host:port`).
pub fn port_open(addr: &str) -> bool {
    let Ok(addrs) = addr.to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
}

/// Polls `ready` every `every` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, every: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(every);
    }
}

/// True when `pid` names a live (not zombie) process.
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself
        // contain spaces and parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The command line of a process, arguments joined with spaces.
pub fn pid_cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|part| !part.is_empty())
            .map(String::from_utf8_lossy)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Reads a pid file (first line is the pid, as for postmaster.pid too).
pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Sends a signal (`TERM`, `KILL`, ...) to a process by running `kill`,
/// since the workspace forbids the unsafe code a direct syscall would need.
pub fn signal(pid: u32, name: &str) -> Result<()> {
    let output = capture(
        Command::new("/bin/sh")
            .args(["-c", r#"kill -s "$1" "$2""#, "sh", name])
            .arg(pid.to_string()),
    )?;
    if !output.status.success() {
        bail!(
            "could not send SIG{name} to pid {pid}: {}",
            combined_output(&output)
        );
    }
    Ok(())
}

/// Stops a process that is not our child: SIGTERM, wait up to `grace`, then
/// SIGKILL. Returns true when it had to be killed.
pub fn terminate(pid: u32, grace: Duration) -> Result<bool> {
    if !pid_alive(pid) {
        return Ok(false);
    }
    signal(pid, "TERM")?;
    if wait_until(grace, Duration::from_millis(100), || !pid_alive(pid)) {
        return Ok(false);
    }
    signal(pid, "KILL")?;
    wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        !pid_alive(pid)
    });
    Ok(true)
}

/// The last `lines` lines of a log file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let read = || -> io::Result<String> {
        let mut file = fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            all[start..]
                .iter()
                .map(|line| format!("    | {line}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Err(e) => format!("    (could not read {}: {e})", path.display()),
    }
}

/// The effective user id of this process, from /proc.
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Seconds with one decimal, for summaries.
pub fn secs(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_needs_it() {
        let mut cmd = Command::new("cargo");
        cmd.args(["clippy", "--", "-D", "warnings", "a b", "it's", ""]);
        let shown = display(&cmd);
        assert!(
            shown.starts_with("cargo clippy -- -D warnings 'a b' "),
            "{shown}"
        );
        assert_eq!(
            shlex::split(&shown),
            Some(
                ["cargo", "clippy", "--", "-D", "warnings", "a b", "it's", ""]
                    .map(String::from)
                    .to_vec()
            ),
            "a shell reads back what ran"
        );
    }

    #[test]
    fn own_process_is_alive_and_has_a_cmdline() {
        let pid = std::process::id();
        assert!(pid_alive(pid));
        assert!(pid_cmdline(pid).is_some_and(|c| !c.is_empty()));
        assert!(!pid_alive(u32::MAX));
    }
}
