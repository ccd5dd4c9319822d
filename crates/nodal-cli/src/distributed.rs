//! `--distributed`: which communicator a command runs with. A process started by an MPI
//! launcher (`mpirun -np N nodal ...`, detected from the launcher's environment) or given
//! `--distributed` joins the MPI world; otherwise it runs alone. A binary built without the
//! `mpi` feature refuses to run as one of several launched copies, which would each train alone
//! and overwrite each other's files.

use crate::failure::Failure;
use clap::Args;
use nodal_distributed::{Communicator, SingleProcess, Watchdog};
use std::sync::Arc;
use std::time::Duration;

/// Options of data-parallel runs, shared by the commands that take them.
#[derive(Args, Debug, Clone)]
pub struct DistributedArgs {
    /// Run data-parallel over the ranks of an MPI launch (`mpirun -np N nodal ...`; implied when
    /// a launcher started this process with more than one rank). Needs a build with `--features
    /// mpi`.
    #[arg(long)]
    pub distributed: bool,
    /// Distributed runs: seconds a rank waits in a collective for the others before it ends the
    /// job (exit 75: a worker died or hangs). Covers the slowest rank's step and test
    /// evaluation, so keep it well above them.
    #[arg(long, default_value_t = 300.0)]
    pub distributed_timeout: f64,
}

impl DistributedArgs {
    /// The communicator: MPI (guarded by the watchdog) or a single process.
    pub fn communicator(&self) -> Result<Arc<dyn Communicator>, Failure> {
        let launched = nodal_mpi::launcher_world_size().filter(|&n| n > 1);
        if !self.distributed && launched.is_none() {
            return Ok(Arc::new(SingleProcess));
        }
        if !(self.distributed_timeout.is_finite() && self.distributed_timeout > 0.0) {
            return Err(Failure::Input(format!(
                "--distributed-timeout must be a positive number of seconds (got {})",
                self.distributed_timeout
            )));
        }
        let comm = nodal_mpi::start().map_err(|e| match launched {
            Some(n) => Failure::Input(format!("started as one of {n} ranks by an MPI launcher, but {e}")),
            None => Failure::Input(e.to_string()),
        })?;
        Ok(Arc::new(Watchdog::new(comm, Duration::from_secs_f64(self.distributed_timeout))))
    }
}
