//! The MPI communicator (rsmpi over the system's MPI library).

use crate::StartError;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use nodal_distributed::{CommError, Communicator as NodalCommunicator};
use std::sync::Mutex;

/// The MPI environment of this process, finalised only by [`finish`]. A process that ends
/// without finalising (an error on this rank alone) makes `mpirun` stop the whole job at once;
/// a finalise there would instead wait for ranks that are still in a collective.
struct Environment(Option<Universe>);

// SAFETY: the environment is only created and finalised from the main thread; the mutex only
// keeps it reachable from a static.
unsafe impl Send for Environment {}

static ENVIRONMENT: Mutex<Environment> = Mutex::new(Environment(None));

/// Finalises MPI after a successful command (every rank must call it; a no-op when MPI was not
/// started).
pub fn finish() {
    let universe = ENVIRONMENT.lock().ok().and_then(|mut e| e.0.take());
    drop(universe);
}

/// `MPI_COMM_WORLD` of this process. MPI is initialised once per process (by
/// [`MpiCommunicator::start`]) and finalised by [`finish`], not when this value is dropped.
pub struct MpiCommunicator {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
}

// SAFETY: the communicator is only ever used from the thread that created it (the training
// loop); the watchdog thread reads its own clock and never calls MPI.
unsafe impl Send for MpiCommunicator {}
unsafe impl Sync for MpiCommunicator {}

impl MpiCommunicator {
    /// Initialises MPI (once per process).
    pub fn start() -> Result<Self, StartError> {
        let universe = mpi::initialize().ok_or_else(|| StartError("MPI was already initialised in this process".into()))?;
        let world = universe.world();
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        if let Ok(mut e) = ENVIRONMENT.lock() {
            e.0 = Some(universe);
        }
        Ok(Self { world, rank, size })
    }
}

fn check_len(op: &'static str, len: usize) -> Result<i32, CommError> {
    i32::try_from(len).map_err(|_| CommError::Transport { op, reason: format!("{len} elements exceed MPI's int count") })
}

impl NodalCommunicator for MpiCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_reduce_sum_f32(&self, values: &mut [f32]) -> Result<(), CommError> {
        check_len("all_reduce", values.len())?;
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }
    fn all_reduce_sum_f64(&self, values: &mut [f64]) -> Result<(), CommError> {
        check_len("all_reduce", values.len())?;
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
        Ok(())
    }
    fn broadcast_bytes(&self, data: &mut Vec<u8>, root: usize) -> Result<(), CommError> {
        let root_proc = self.world.process_at_rank(root as i32);
        let mut len = data.len() as u64;
        root_proc.broadcast_into(&mut len);
        let n = usize::try_from(len).map_err(|e| CommError::Transport { op: "broadcast", reason: e.to_string() })?;
        check_len("broadcast", n)?;
        data.resize(n, 0);
        if n > 0 {
            root_proc.broadcast_into(&mut data[..]);
        }
        Ok(())
    }
    fn gather_bytes(&self, data: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CommError> {
        check_len("gather", data.len())?;
        let root = self.world.process_at_rank(0);
        let len = data.len() as u64;
        if self.rank != 0 {
            root.gather_into(&len);
            root.gather_varcount_into(data);
            return Ok(None);
        }
        let mut lens = vec![0u64; self.size];
        root.gather_into_root(&len, &mut lens[..]);
        let counts: Vec<i32> = lens.iter().map(|&l| l as i32).collect();
        let total: usize = lens.iter().map(|&l| l as usize).sum();
        check_len("gather", total)?;
        let displs: Vec<i32> = counts
            .iter()
            .scan(0i32, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect();
        let mut buf = vec![0u8; total];
        {
            let mut partition = mpi::datatype::PartitionMut::new(&mut buf[..], counts.clone(), &displs[..]);
            root.gather_varcount_into_root(data, &mut partition);
        }
        Ok(Some(displs.iter().zip(&counts).map(|(&d, &c)| buf[d as usize..(d + c) as usize].to_vec()).collect()))
    }
}
