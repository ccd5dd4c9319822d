//! Ranks as threads of one process: the reference implementation of the collectives, used to
//! test data-parallel code without MPI.

use crate::communicator::{CommError, Communicator};
use std::sync::{Arc, Barrier, Mutex};

struct Shared {
    slots: Mutex<Vec<Vec<u8>>>,
    barrier: Barrier,
}

/// One rank of a group of threads. Every collective is an all-gather of bytes between two
/// barriers, reduced in rank order on every rank, so results are deterministic and the same on
/// all ranks.
pub struct LocalGroup {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

impl LocalGroup {
    /// A group of `size` ranks; hand one to each thread.
    pub fn new(size: usize) -> Vec<LocalGroup> {
        let size = size.max(1);
        let shared = Arc::new(Shared { slots: Mutex::new(vec![Vec::new(); size]), barrier: Barrier::new(size) });
        (0..size).map(|rank| LocalGroup { rank, size, shared: shared.clone() }).collect()
    }

    fn all_gather(&self, data: &[u8]) -> Vec<Vec<u8>> {
        if let Ok(mut s) = self.shared.slots.lock() {
            s[self.rank] = data.to_vec();
        }
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().map(|s| s.clone()).unwrap_or_default();
        self.shared.barrier.wait();
        all
    }

    /// [`Self::all_gather`] of an all-reduce's operand, which must have one length on every rank.
    fn all_gather_equal(&self, mine: Vec<u8>) -> Result<Vec<Vec<u8>>, CommError> {
        let all = self.all_gather(&mine);
        if all.len() != self.size || all.iter().any(|b| b.len() != mine.len()) {
            return Err(poisoned("all_reduce"));
        }
        Ok(all)
    }
}

/// Element `i` of a little-endian array of `W`-byte numbers.
fn word<const W: usize>(bytes: &[u8], i: usize) -> [u8; W] {
    let mut w = [0u8; W];
    w.copy_from_slice(&bytes[W * i..W * (i + 1)]);
    w
}

fn poisoned(op: &'static str) -> CommError {
    CommError::Transport { op, reason: "a rank thread panicked".into() }
}

impl Communicator for LocalGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), CommError> {
        let all = self.all_gather_equal(values.iter().flat_map(|x| x.to_le_bytes()).collect())?;
        for (i, v) in values.iter_mut().enumerate() {
            *v = all.iter().fold(0.0, |acc, b| acc + f32::from_le_bytes(word(b, i)));
        }
        Ok(())
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<(), CommError> {
        let all = self.all_gather_equal(values.iter().flat_map(|x| x.to_le_bytes()).collect())?;
        for (i, v) in values.iter_mut().enumerate() {
            *v = all.iter().fold(0.0, |acc, b| acc + f64::from_le_bytes(word(b, i)));
        }
        Ok(())
    }
    fn broadcast_bytes(&self, data: &mut Vec<u8>, root: usize) -> Result<(), CommError> {
        let all = self.all_gather(data);
        *data = all.get(root).cloned().ok_or_else(|| poisoned("broadcast"))?;
        Ok(())
    }
    fn gather_bytes(&self, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        let all = self.all_gather(data);
        Ok(if self.rank == 0 { Some(all) } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_ranks<T: Send + 'static>(n: usize, f: impl Fn(LocalGroup) -> T + Send + Sync + 'static) -> Vec<T> {
        let f = Arc::new(f);
        let handles: Vec<_> = LocalGroup::new(n)
            .into_iter()
            .map(|c| {
                let f = f.clone();
                std::thread::spawn(move || f(c))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn collectives_sum_broadcast_and_gather_in_rank_order() {
        let out = on_ranks(3, |c| {
            let r = c.rank();
            let mut a = vec![r as f32, 1.0, -(r as f32) * 0.5];
            c.all_reduce_sum_f32(&mut a).unwrap();
            let mut b = vec![r as f64 + 0.25];
            c.all_reduce_sum_f64(&mut b).unwrap();
            let mut msg = if r == 2 { b"from two".to_vec() } else { vec![r as u8; r + 1] };
            c.broadcast_bytes(&mut msg, 2).unwrap();
            let g = c.gather_bytes(&vec![r as u8; r]).unwrap();
            let any = c.any(r == 1).unwrap();
            let none = c.any(false).unwrap();
            (a, b, msg, g, any, none)
        });
        for (r, (a, b, msg, g, any, none)) in out.into_iter().enumerate() {
            assert_eq!(a, vec![3.0, 3.0, -1.5]);
            assert_eq!(b, vec![3.75]);
            assert_eq!(msg, b"from two");
            assert_eq!(g.is_some(), r == 0);
            if let Some(g) = g {
                assert_eq!(g, vec![vec![], vec![1], vec![2, 2]]);
            }
            assert!(any && !none);
        }
    }

    #[test]
    fn a_failure_on_one_rank_is_reported_on_all() {
        let out = on_ranks(3, |c| {
            let ok = c.agree(Ok(())).is_ok();
            let r = c.agree(if c.rank() == 1 { Err("solve failed at t = 0.3".into()) } else { Ok(()) });
            let same = c.check_same("seed", 7.0).is_ok();
            let differ = c.check_same("training images", if c.rank() == 2 { 100.0 } else { 60.0 });
            (ok, r, same, differ)
        });
        for (ok, r, same, differ) in out {
            assert!(ok && same);
            match r {
                Err(CommError::Peer { rank: 1, reason }) => assert_eq!(reason, "solve failed at t = 0.3"),
                other => panic!("{other:?}"),
            }
            let msg = differ.unwrap_err().to_string();
            assert!(msg.contains("rank 2") && msg.contains("training images is 100 here and 60 on rank 0"), "{msg}");
        }
    }
}
