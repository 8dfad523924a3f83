//! Shutdown: early, failing and panicking tasks are fatal and named; tasks that ignore
//! cancellation are aborted at the deadline and named; a clean stop is `Ok`.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use platform::shutdown::{Shutdown, ShutdownError, ShutdownSettings};
use tokio_util::sync::CancellationToken;

const GENEROUS: Duration = Duration::from_secs(5);

/// A well-behaved task: runs until its token is cancelled, then stops.
fn well_behaved(shutdown: &Shutdown, name: &'static str) {
    let token = shutdown.token();
    shutdown.spawn(name, async move {
        token.cancelled().await;
        Ok(())
    });
}

/// Sets its flag when dropped, which shows that the future holding it was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn clean_stop_returns_ok() {
    let shutdown = Shutdown::new();
    well_behaved(&shutdown, "server");
    well_behaved(&shutdown, "consumer");
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.trigger();
    });

    let result = tokio::time::timeout(GENEROUS, shutdown.run_until_stopped(GENEROUS))
        .await
        .unwrap();
    assert_eq!(result, Ok(()));
}

#[tokio::test]
async fn task_ending_early_triggers_shutdown_and_is_named() {
    let shutdown = Shutdown::new();
    well_behaved(&shutdown, "server");
    shutdown.spawn("relay", async { Ok(()) });

    // Nothing else triggers shutdown: the early end of `relay` must.
    let result = tokio::time::timeout(GENEROUS, shutdown.clone().run_until_stopped(GENEROUS))
        .await
        .unwrap();
    assert_eq!(
        result,
        Err(ShutdownError::TaskFailed {
            names: vec!["relay"]
        })
    );
    assert!(shutdown.is_triggered());
}

#[tokio::test]
async fn failing_task_is_fatal_and_named() {
    let shutdown = Shutdown::new();
    well_behaved(&shutdown, "server");
    shutdown.spawn("consumer", async { anyhow::bail!("broker unreachable") });

    let result = tokio::time::timeout(GENEROUS, shutdown.run_until_stopped(GENEROUS))
        .await
        .unwrap();
    let error = result.unwrap_err();
    assert_eq!(
        error,
        ShutdownError::TaskFailed {
            names: vec!["consumer"]
        }
    );
    assert!(error.to_string().contains("consumer"), "{error}");
}

#[tokio::test]
async fn panicking_task_is_reported_not_propagated() {
    let shutdown = Shutdown::new();
    well_behaved(&shutdown, "server");
    shutdown.spawn("warm-up", async {
        let items: Vec<u32> = Vec::new();
        // An out-of-bounds index panics, as a bug in a task would.
        let _ = items[usize::from(items.is_empty())];
        Ok(())
    });

    let result = tokio::time::timeout(GENEROUS, shutdown.run_until_stopped(GENEROUS))
        .await
        .unwrap();
    assert_eq!(
        result,
        Err(ShutdownError::TaskFailed {
            names: vec!["warm-up"]
        })
    );
}

#[tokio::test]
async fn task_ignoring_cancellation_is_aborted_after_the_deadline_and_named() {
    let shutdown = Shutdown::new();
    well_behaved(&shutdown, "server");
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlag(Arc::clone(&dropped));
    shutdown.spawn("stubborn", async move {
        let _flag = flag;
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    shutdown.trigger();

    let started = Instant::now();
    let deadline = Duration::from_millis(200);
    let result = tokio::time::timeout(GENEROUS, shutdown.run_until_stopped(deadline))
        .await
        .unwrap();
    let waited = started.elapsed();

    assert_eq!(
        result,
        Err(ShutdownError::DeadlineExceeded {
            names: vec!["stubborn"]
        })
    );
    assert!(waited >= deadline, "returned after {waited:?}");
    assert!(waited < Duration::from_secs(2), "returned after {waited:?}");
    assert!(dropped.load(Ordering::SeqCst), "the task was not aborted");
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_starts_a_clean_shutdown() {
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals();
    well_behaved(&shutdown, "server");

    // The handler is installed by now, so the signal reaches it instead of ending the
    // test process.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    let result = tokio::time::timeout(GENEROUS, shutdown.run_until_stopped(GENEROUS))
        .await
        .unwrap();
    assert_eq!(result, Ok(()));
}

#[tokio::test]
async fn tokens_are_cancelled_by_trigger() {
    let shutdown = Shutdown::new();
    let token = shutdown.token();
    assert!(!token.is_cancelled());
    shutdown.trigger();
    assert!(token.is_cancelled());
    assert!(shutdown.is_triggered());
}

#[tokio::test]
async fn cancelling_a_child_token_does_not_shut_down() {
    let shutdown = Shutdown::new();
    let token = shutdown.token();
    token.cancel();
    assert!(!shutdown.is_triggered());
}

#[test]
fn deadline_defaults_to_25_seconds_and_parses_humantime() {
    assert_eq!(
        ShutdownSettings::default().deadline,
        Duration::from_secs(25)
    );
    let settings: ShutdownSettings = serde_json::from_str(r#"{"deadline":"1m 5s"}"#).unwrap();
    assert_eq!(settings.deadline, Duration::from_secs(65));
}

#[tokio::test]
async fn a_gate_lets_waiting_tasks_start_once_it_opens() {
    let (opener, gate) = platform::shutdown::gate();
    let stop = CancellationToken::new();
    let waiting = tokio::spawn({
        let (gate, stop) = (gate.clone(), stop.clone());
        async move { gate.opened(&stop).await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "the gate is still closed");
    opener.open();
    assert!(waiting.await.expect("task"), "opened");
    // Late waiters pass at once.
    assert!(gate.opened(&stop).await);
}

#[tokio::test]
async fn a_gate_gives_up_when_the_service_stops_or_its_opener_is_dropped() {
    let (opener, gate) = platform::shutdown::gate();
    let stop = CancellationToken::new();
    stop.cancel();
    assert!(!gate.clone().opened(&stop).await, "stopped first");
    drop(opener);
    assert!(
        !gate.opened(&CancellationToken::new()).await,
        "never to open"
    );
}
