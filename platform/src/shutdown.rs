//! Orderly process shutdown: one root cancellation token, the long-running tasks (HTTP
//! server, consumers, relay) under one task tracker, and a deadline after which the
//! stragglers are aborted.
//!
//! A long-running task that ends before shutdown, or fails or panics at any time, is fatal:
//! it is logged, recorded and triggers shutdown, so the process exits non-zero instead of
//! running half-alive. This module must not flush producers, close pools or exit the
//! process: the binary does that, in order, after [`Shutdown::run_until_stopped`] returns.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use platform::shutdown::Shutdown;
//!
//! let shutdown = Shutdown::new();
//! shutdown.listen_for_signals();
//! let token = shutdown.token();
//! shutdown.spawn("worker", async move {
//!     token.cancelled().await;
//!     Ok(())
//! });
//! shutdown.run_until_stopped(std::time::Duration::from_secs(25)).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt as _;
use serde::{Deserialize, Serialize};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long aborted tasks get to reach an await point and stop.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// Shutdown settings, usually the `shutdown` section of a service's configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// How long tasks may take to finish after cancellation before they are aborted, such
    /// as `25s`; kept below the orchestrator's kill timeout (30 s by default in Kubernetes).
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(25),
        }
    }
}

/// Why shutdown was not clean. The process should exit non-zero on either.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShutdownError {
    /// These tasks failed, panicked or ended before shutdown was requested.
    #[error("tasks failed or ended early: {}", names.join(", "))]
    TaskFailed {
        /// The names given to [`Shutdown::spawn`], in the order they failed.
        names: Vec<&'static str>,
    },
    /// These tasks were still running at the deadline and were aborted.
    #[error("tasks still running at the shutdown deadline were aborted: {}", names.join(", "))]
    DeadlineExceeded {
        /// The names given to [`Shutdown::spawn`].
        names: Vec<&'static str>,
    },
}

/// The root cancellation token, the tracker of long-running tasks and the record of the
/// tasks that failed. Cheap to clone; every clone controls the same shutdown.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    failed: Vec<&'static str>,
    tasks: Vec<(&'static str, AbortHandle)>,
}

impl Shutdown {
    /// A shutdown that nothing has triggered yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A child of the root token: cancelled when shutdown starts, and cancelling it stops
    /// only the component holding it.
    pub fn token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Starts shutdown, exactly as a signal would.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Starts shutdown on the first SIGINT or SIGTERM (Ctrl-C elsewhere than Unix) and logs
    /// which one arrived. The handlers are installed before this returns, so a signal sent
    /// right after is not missed; later signals are ignored and the deadline of
    /// [`Shutdown::run_until_stopped`] bounds the stop.
    ///
    /// Must be called inside a Tokio runtime.
    pub fn listen_for_signals(&self) {
        let signals = match Signals::install() {
            Ok(signals) => signals,
            Err(error) => {
                // The process still stops on a signal then, only not gracefully, so this is
                // reported rather than made fatal.
                tracing::error!(
                    %error,
                    "cannot install signal handlers; a signal will kill the process without \
                     a graceful shutdown"
                );
                return;
            }
        };
        let token = self.token.clone();
        tokio::spawn(async move {
            tokio::select! {
                name = signals.recv() => {
                    tracing::info!(signal = name, "signal received, shutting down");
                    token.cancel();
                }
                () = token.cancelled() => {}
            }
        });
    }

    /// Spawns a long-running task under the tracker. It is expected to run until its token
    /// is cancelled and then return `Ok`. If it returns before shutdown was requested, or
    /// returns an error or panics at any time, it is logged at error level with `name`,
    /// recorded for [`Shutdown::run_until_stopped`], and shutdown is triggered. A panic
    /// is caught here and never reaches the caller.
    ///
    /// Must be called inside a Tokio runtime.
    pub fn spawn<F>(&self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let this = self.clone();
        let handle = self.tracker.spawn(async move {
            let outcome = AssertUnwindSafe(task).catch_unwind().await;
            let cancelled = this.token.is_cancelled();
            match outcome {
                Ok(Ok(())) if cancelled => {
                    tracing::debug!(task = name, "task stopped");
                    return;
                }
                Ok(Ok(())) => {
                    tracing::error!(task = name, "task ended before shutdown was requested");
                }
                Ok(Err(error)) => {
                    tracing::error!(task = name, error = format!("{error:#}"), "task failed");
                }
                Err(panic) => {
                    tracing::error!(task = name, panic = panic_message(&*panic), "task panicked");
                }
            }
            this.lock().failed.push(name);
            this.token.cancel();
        });
        let mut state = self.lock();
        // Finished tasks are forgotten here so the list stays as long as the set of
        // running tasks, not as long as the process's history.
        state.tasks.retain(|(_, task)| !task.is_finished());
        state.tasks.push((name, handle.abort_handle()));
    }

    /// Waits until shutdown is triggered (by a signal, [`Shutdown::trigger`] or a failed
    /// task), then up to `deadline` for every spawned task to finish, then aborts the rest.
    ///
    /// # Errors
    ///
    /// [`ShutdownError::TaskFailed`] when a task failed, panicked or ended early (this takes
    /// precedence, being the cause); otherwise [`ShutdownError::DeadlineExceeded`] naming
    /// the tasks that had to be aborted.
    pub async fn run_until_stopped(self, deadline: Duration) -> Result<(), ShutdownError> {
        self.token.cancelled().await;
        tracing::info!(
            tasks = self.tracker.len(),
            deadline = ?deadline,
            "shutting down, waiting for tasks"
        );
        self.tracker.close();
        let aborted = if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_ok()
        {
            Vec::new()
        } else {
            let stragglers: Vec<_> = self
                .lock()
                .tasks
                .iter()
                .filter(|(_, task)| !task.is_finished())
                .map(|(name, task)| (*name, task.clone()))
                .collect();
            for (name, task) in &stragglers {
                tracing::error!(task = name, "task still running at the deadline, aborting");
                task.abort();
            }
            // Aborting takes effect at a task's next await point; waiting for that (briefly,
            // since a task blocking its thread never reaches one) means that normally
            // nothing of them still runs when this returns.
            if tokio::time::timeout(ABORT_GRACE, self.tracker.wait())
                .await
                .is_err()
            {
                tracing::error!("aborted tasks did not stop; they are blocking their threads");
            }
            stragglers.into_iter().map(|(name, _)| name).collect()
        };

        let failed = std::mem::take(&mut self.lock().failed);
        if !failed.is_empty() {
            Err(ShutdownError::TaskFailed { names: failed })
        } else if !aborted.is_empty() {
            Err(ShutdownError::DeadlineExceeded { names: aborted })
        } else {
            tracing::info!("all tasks stopped");
            Ok(())
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a list that every critical section leaves consistent, so a panic
        // elsewhere while holding the lock does not invalidate it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The payload of a panic as text, when it is the usual string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

/// The installed handlers of the signals that start shutdown.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};

        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Elsewhere only Ctrl-C is portable.
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn recv(self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        }
    }
}

/// A one-way signal that what later tasks need is in place (the schema is migrated, say).
/// [`gate`] makes the pair; the opener is moved into the task that prepares, the [`Gate`]
/// cloned into each task that waits.
#[derive(Debug)]
pub struct GateOpener(tokio::sync::watch::Sender<bool>);

/// The waiting side of a [`gate`].
#[derive(Debug, Clone)]
pub struct Gate(tokio::sync::watch::Receiver<bool>);

/// A closed gate and its opener.
pub fn gate() -> (GateOpener, Gate) {
    let (opener, gate) = tokio::sync::watch::channel(false);
    (GateOpener(opener), Gate(gate))
}

impl GateOpener {
    /// Opens the gate for every waiting task, and for those that wait later.
    pub fn open(&self) {
        self.0.send_replace(true);
    }
}

impl Gate {
    /// Waits until the gate opens: `true`; `false` when `stop` is cancelled first or the
    /// opener was dropped without opening it (its task failed, which stops the service).
    pub async fn opened(mut self, stop: &CancellationToken) -> bool {
        tokio::select! {
            opened = self.0.wait_for(|open| *open) => opened.is_ok(),
            () = stop.cancelled() => false,
        }
    }
}

/// Runs `attempt` until it succeeds or fails for good, waiting a jittered exponential
/// backoff (200 ms doubling up to 10 s) after each failure `is_transient` accepts. Returns
/// `None` when `stop` is cancelled first: start-up work (migrations, warm-up) that waits for
/// a dependency this way never outlives the service.
pub async fn retry_until_stopped<T, E, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    is_transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Option<Result<T, E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    use backon::BackoffBuilder as _;
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        match attempt().await {
            Err(err) if is_transient(&err) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(10));
                tracing::warn!(what, error = %err, delay_ms = delay.as_millis() as u64, "not possible yet, trying again");
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            done => return Some(done),
        }
    }
}

/// Runs `tick` every `period` until `stop` is cancelled: the loop behind periodic gauges
/// (pool usage, cache size). Always ends with `Ok`, so it suits [`Shutdown::spawn`].
pub async fn every<F, Fut>(
    period: Duration,
    stop: CancellationToken,
    mut tick: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            _ = ticker.tick() => tick().await,
        }
    }
}
