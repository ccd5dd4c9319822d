//! A bound on how long a collective may wait: a worker that died or hangs ends the job with a
//! clear message instead of leaving the others blocked forever.

use crate::communicator::{CommError, Communicator};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit status of a process ended by the watchdog (EX_TEMPFAIL: rerunning resumes from the last
/// checkpoint).
pub const EXIT_TIMEOUT: i32 = 75;

type Action = Arc<dyn Fn(String) + Send + Sync>;

struct Clock {
    origin: Instant,
    /// Milliseconds since `origin` at which the collective in progress began, plus one; 0 = none.
    since: AtomicU64,
    op: Mutex<&'static str>,
    done: AtomicBool,
}

/// Wraps a communicator: while a collective is in progress a background thread checks, every
/// 100 ms, how long it has been waiting; past `timeout` it calls the action with a message that
/// names the rank, the operation and the wait. The default action prints the message on stderr
/// and ends the process at once with status [`EXIT_TIMEOUT`] (`_exit`: no cleanup that could
/// itself block on the dead peer). Under `mpirun`, the launcher then stops the other ranks.
/// Files written atomically (checkpoints) are never left half-written by this.
pub struct Watchdog<C: Communicator> {
    inner: C,
    clock: Arc<Clock>,
}

impl<C: Communicator> Watchdog<C> {
    /// Guards `inner`: a collective that waits longer than `timeout` ends the process.
    pub fn new(inner: C, timeout: Duration) -> Self {
        let action: Action = Arc::new(|msg: String| {
            eprintln!("error: {msg}");
            // SAFETY: `_exit` ends the process without running any handler; nothing is shared.
            unsafe { libc_exit(EXIT_TIMEOUT) }
        });
        Self::with_action(inner, timeout, action)
    }

    /// Guards `inner` with a custom action (tests).
    pub fn with_action(inner: C, timeout: Duration, action: Action) -> Self {
        let clock = Arc::new(Clock { origin: Instant::now(), since: AtomicU64::new(0), op: Mutex::new(""), done: AtomicBool::new(false) });
        let c = clock.clone();
        let rank = inner.rank();
        let size = inner.size();
        std::thread::spawn(move || {
            let mut fired = false;
            while !c.done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let since = c.since.load(Ordering::Relaxed);
                if since == 0 {
                    fired = false;
                    continue;
                }
                let waited = (c.origin.elapsed().as_millis() as u64).saturating_sub(since - 1);
                if !fired && waited > timeout.as_millis() as u64 {
                    fired = true;
                    let op = c.op.lock().map(|o| *o).unwrap_or("collective");
                    action(format!(
                        "rank {rank} of {size}: {op} has waited {:.1} s for the other ranks, over the timeout of {:.1} s: a worker died or hangs; ending the job (rerun the same command to resume from the last checkpoint)",
                        waited as f64 / 1e3,
                        timeout.as_secs_f64()
                    ));
                }
            }
        });
        Self { inner, clock }
    }

    fn guard<T>(&self, op: &'static str, f: impl FnOnce(&C) -> T) -> T {
        if let Ok(mut o) = self.clock.op.lock() {
            *o = op;
        }
        self.clock.since.store(self.clock.origin.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        let r = f(&self.inner);
        self.clock.since.store(0, Ordering::Relaxed);
        r
    }

    /// The wrapped communicator.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Communicator> Drop for Watchdog<C> {
    fn drop(&mut self) {
        self.clock.done.store(true, Ordering::Relaxed);
    }
}

unsafe extern "C" {
    #[link_name = "_exit"]
    fn libc_exit(status: i32) -> !;
}

impl<C: Communicator> Communicator for Watchdog<C> {
    fn rank(&self) -> usize {
        self.inner.rank()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), CommError> {
        self.guard("all_reduce", |c| c.all_reduce_sum_f32(values))
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<(), CommError> {
        self.guard("all_reduce", |c| c.all_reduce_sum_f64(values))
    }
    fn broadcast_bytes(&self, data: &mut Vec<u8>, root: usize) -> Result<(), CommError> {
        self.guard("broadcast", |c| c.broadcast_bytes(data, root))
    }
    fn gather_bytes(&self, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        self.guard("gather", |c| c.gather_bytes(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalGroup;
    use std::sync::mpsc;

    /// Rank 1 never arrives: rank 0's watchdog fires after the timeout, naming the rank and the
    /// operation; a collective that finishes in time does not fire it.
    #[test]
    fn a_missing_rank_fires_the_watchdog() {
        let mut g = LocalGroup::new(2).into_iter();
        let (r0, r1) = (g.next().unwrap(), g.next().unwrap());
        let (tx, rx) = mpsc::channel::<String>();
        let tx = Mutex::new(tx);
        let w0 = Watchdog::with_action(
            r0,
            Duration::from_millis(300),
            Arc::new(move |m| {
                let _ = tx.lock().unwrap().send(m);
            }),
        );
        let w1 = Watchdog::with_action(r1, Duration::from_millis(300), Arc::new(|m| panic!("{m}")));
        let h = std::thread::spawn(move || {
            let mut v = [1.0f64];
            w1.all_reduce_sum_f64(&mut v).unwrap();
            v[0]
        });
        let mut v = [2.0f64];
        w0.all_reduce_sum_f64(&mut v).unwrap();
        assert_eq!((v[0], h.join().unwrap()), (3.0, 3.0));
        assert!(rx.recv_timeout(Duration::from_millis(600)).is_err(), "fired on a collective that finished");
        // Now rank 1 is gone: rank 0 waits in a thread of its own and the watchdog fires.
        let start = Instant::now();
        std::thread::spawn(move || {
            let mut v = [0.0f64];
            let _ = w0.all_reduce_sum_f64(&mut v);
        });
        let msg = rx.recv_timeout(Duration::from_secs(10)).expect("the watchdog did not fire");
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(msg.contains("rank 0 of 2: all_reduce has waited") && msg.contains("a worker died or hangs"), "{msg}");
    }
}
