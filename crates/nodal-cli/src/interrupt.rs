//! SIGINT and SIGTERM, handled the same way by every long command: the first one sets a flag
//! that the command polls between steps (it finishes the current step, saves a checkpoint and
//! the model, and exits with 130 or 143); a second one of either ends the process at once.

use crate::failure::Failure;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The stop request of this process.
#[derive(Clone)]
pub struct Interrupt {
    /// Set by the first signal.
    pub flag: Arc<AtomicBool>,
    signal: Arc<AtomicI32>,
}

impl Interrupt {
    /// Install the handlers (once per process; later calls share the first's flag).
    pub fn install() -> Self {
        static ONCE: std::sync::OnceLock<Interrupt> = std::sync::OnceLock::new();
        ONCE.get_or_init(|| {
            let it = Interrupt { flag: Arc::new(AtomicBool::new(false)), signal: Arc::new(AtomicI32::new(0)) };
            #[cfg(unix)]
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                // A second signal while the first is being served exits at once with 128 + sig.
                let _ = signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, it.flag.clone());
                let (flag, which) = (it.flag.clone(), it.signal.clone());
                // SAFETY: the handler only stores into atomics, which is async-signal-safe.
                let _ = unsafe {
                    signal_hook::low_level::register(sig, move || {
                        let _ = which.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
                        flag.store(true, Ordering::SeqCst);
                    })
                };
            }
            it
        })
        .clone()
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The failure to return once the work is saved: exit 128 + the signal's number.
    pub fn failure(&self, message: String) -> Failure {
        let s = self.signal.load(Ordering::SeqCst);
        Failure::Interrupted { signal: if s == 0 { 2 } else { s }, message }
    }
}
