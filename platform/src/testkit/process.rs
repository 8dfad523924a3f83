//! A binary of the workspace (a service, or any program serving HTTP) run by a test as a
//! child process: its output in a log file under `target/test-logs/`, a bounded wait until
//! it is ready, SIGTERM with its exit status, and SIGKILL when the value is dropped.
//!
//! Only for tests: it panics with a clear message when something cannot be started.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, http_get, unique, workspace_root};

/// A binary of the same target directory as the running test binary:
/// `<target>/<profile>/deps/<test>-<hash>` → `<target>/<profile>/<name>`. The services do
/// not depend on each other, so Cargo builds another package's binaries only in a workspace
/// build; this panics, naming the command to run, when the binary is missing.
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --bins` (or `cargo nextest run --workspace`) first",
        binary.display()
    );
    binary
}

/// A log file of its own under `target/test-logs/`: `<name>-<uuid>.log`, created empty.
pub fn log_file(name: &str) -> (PathBuf, std::fs::File) {
    let logs = workspace_root().join("target/test-logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let path = logs.join(format!("{}.log", unique(name)));
    let file = std::fs::File::create(&path).expect("log file");
    (path, file)
}

/// A child process serving HTTP on 127.0.0.1, its output in a log file. Killed when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Option<Child>,
    name: String,
    /// Where it serves HTTP.
    pub address: SocketAddr,
    /// Its standard output and error.
    pub log: PathBuf,
}

impl ServiceProcess {
    /// Starts `binary` in the workspace root with these environment variables added to the
    /// test's own, expecting it to serve HTTP on `127.0.0.1:<port>` (the caller tells it so,
    /// usually in one of `envs`). `name` names the log file and the messages. It does not
    /// wait: see [`wait_ready`](Self::wait_ready).
    pub fn spawn<I, K, V>(binary: &Path, name: &str, envs: I, port: u16) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut command = Command::new(binary);
        command.current_dir(workspace_root()).envs(envs);
        Self::spawn_command(command, name, port)
    }

    /// Starts a prepared command (arguments, environment, directory already set), with no
    /// input and its output in a log file, expecting it to serve HTTP on `127.0.0.1:<port>`.
    pub fn spawn_command(mut command: Command, name: &str, port: u16) -> Self {
        let (log, file) = log_file(name);
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("start {name}: {err}"));
        Self {
            child: Some(child),
            name: name.to_owned(),
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    /// Waits until `GET /readyz` answers 200; panics after `timeout`, naming the log.
    pub async fn wait_ready(&self, timeout: Duration) {
        self.wait_ready_at("/readyz", timeout).await;
    }

    /// Waits until `GET path` answers 200; panics after `timeout`, naming the log.
    pub async fn wait_ready_at(&self, path: &str, timeout: Duration) {
        let address = self.address;
        eventually(
            &format!("{} ready (log: {})", self.name, self.log.display()),
            timeout,
            || async move {
                http_get(address, path, &[])
                    .await
                    .filter(|a| a.status == 200)
            },
        )
        .await;
    }

    /// The log so far ("" when it cannot be read).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown at all. Nothing happens when it was stopped already.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit; returns whether it exited with success (false when
    /// it was stopped already).
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().map(|status| status.success()).unwrap_or(false)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
