//! The collective operations data-parallel training needs, and the one-rank implementation.

use thiserror::Error;

/// A collective failed.
#[derive(Debug, Error)]
pub enum CommError {
    /// The transport reported an error (the message names the operation).
    #[error("{op}: {reason}")]
    Transport {
        /// The collective (`all_reduce`, `broadcast`, `gather`).
        op: &'static str,
        /// What the transport said.
        reason: String,
    },
    /// Ranks disagree about something that must be equal everywhere (data, settings, weights).
    #[error("ranks disagree: {0}")]
    Mismatch(String),
    /// Another rank failed; this one stops too.
    #[error("rank {rank} failed: {reason}")]
    Peer {
        /// The failed rank (the lowest, when several failed).
        rank: usize,
        /// What it reported, when known.
        reason: String,
    },
}

/// Collective operations over a fixed group of `size()` ranks. Every rank must call the same
/// collectives in the same order with buffers of the same length; a rank that does not arrive
/// makes the others wait (wrap the communicator in a [`crate::Watchdog`] to bound that wait).
pub trait Communicator: Send + Sync {
    /// This worker's index, `0..size()`. Rank 0 writes the files.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// In place: every rank's `values` become the elementwise sum over ranks.
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), CommError>;
    /// In place: every rank's `values` become the elementwise sum over ranks.
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<(), CommError>;
    /// Rank `root`'s bytes replace every other rank's `data` (lengths may differ before the call).
    fn broadcast_bytes(&self, data: &mut Vec<u8>, root: usize) -> Result<(), CommError>;
    /// Every rank's `data` (lengths may differ), in rank order, on rank 0; `None` elsewhere.
    fn gather_bytes(&self, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError>;

    /// Whether this is rank 0 (the one that writes metrics, checkpoints and weights).
    fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// `true` on every rank when `flag` is set on any rank (used so that all ranks stop at the
    /// same step after a signal).
    fn any(&self, flag: bool) -> Result<bool, CommError> {
        let mut v = [if flag { 1.0 } else { 0.0 }];
        self.all_reduce_sum_f64(&mut v)?;
        Ok(v[0] > 0.0)
    }

    /// Agreement on success: every rank passes its own outcome (`Err(reason)` on failure); all
    /// ranks return `Ok` only when every rank succeeded, otherwise [`CommError::Peer`] naming the
    /// lowest failed rank (and its reason, which is broadcast). A rank that fails between
    /// collectives calls this instead of returning early, so that no rank waits forever.
    fn agree(&self, outcome: Result<(), String>) -> Result<(), CommError> {
        let n = self.size();
        if n == 1 {
            return outcome.map_err(|reason| CommError::Peer { rank: 0, reason });
        }
        let mut failed = vec![0.0f64; n];
        if outcome.is_err() {
            failed[self.rank()] = 1.0;
        }
        self.all_reduce_sum_f64(&mut failed)?;
        let Some(first) = failed.iter().position(|&x| x > 0.0) else {
            return Ok(());
        };
        let mut reason = match (&outcome, first == self.rank()) {
            (Err(r), true) => r.clone().into_bytes(),
            _ => Vec::new(),
        };
        self.broadcast_bytes(&mut reason, first)?;
        Err(CommError::Peer { rank: first, reason: String::from_utf8_lossy(&reason).into_owned() })
    }

    /// Checks that a value that must be equal everywhere (a data-set size, a seed, a checksum of
    /// the initial weights) is: rank 0's value is broadcast and compared. `what` names it in the
    /// error.
    fn check_same(&self, what: &str, value: f64) -> Result<(), CommError> {
        if self.size() == 1 {
            return Ok(());
        }
        let mut b = value.to_le_bytes().to_vec();
        self.broadcast_bytes(&mut b, 0)?;
        let root = f64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let same = root.to_bits() == value.to_bits();
        let r = if same { Ok(()) } else { Err(format!("{what} is {value} here and {root} on rank 0")) };
        self.agree(r).map_err(|e| match e {
            CommError::Peer { rank, reason } => CommError::Mismatch(format!("rank {rank}: {reason}")),
            e => e,
        })
    }
}

/// One rank: every collective leaves its input as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleProcess;

impl Communicator for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum_f32(&self, _values: &mut [f32]) -> Result<(), CommError> {
        Ok(())
    }
    fn all_reduce_sum_f64(&self, _values: &mut [f64]) -> Result<(), CommError> {
        Ok(())
    }
    fn broadcast_bytes(&self, _data: &mut Vec<u8>, _root: usize) -> Result<(), CommError> {
        Ok(())
    }
    fn gather_bytes(&self, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        Ok(Some(vec![data.to_vec()]))
    }
}

impl Communicator for Box<dyn Communicator> {
    fn rank(&self) -> usize {
        self.as_ref().rank()
    }
    fn size(&self) -> usize {
        self.as_ref().size()
    }
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), CommError> {
        self.as_ref().all_reduce_sum_f32(values)
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<(), CommError> {
        self.as_ref().all_reduce_sum_f64(values)
    }
    fn broadcast_bytes(&self, data: &mut Vec<u8>, root: usize) -> Result<(), CommError> {
        self.as_ref().broadcast_bytes(data, root)
    }
    fn gather_bytes(&self, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        self.as_ref().gather_bytes(data)
    }
}
