//! (being written) HTTP plumbing.
use futures::future::BoxFuture;
/// A named readiness condition.
pub trait ReadinessCheck: Send + Sync + 'static {
    /// Ok when ready, Err with the reason otherwise.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}
/// A readiness flag.
#[derive(Clone, Debug, Default)]
pub struct ReadyFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);
impl ReadyFlag {
    /// Sets it.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, std::sync::atomic::Ordering::SeqCst);
    }
    /// Reads it.
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
