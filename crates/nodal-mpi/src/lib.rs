//! MPI as the transport of nodal's data-parallel training: processes on one or many nodes,
//! started by the MPI launcher (`mpirun -np N nodal train mnist ...`).
//!
//! Built with the cargo feature `mpi` (Open MPI's or MPICH's development files and libclang must
//! be installed; Debian: `apt-get install openmpi-bin libopenmpi-dev libclang-dev`). Without it
//! this crate only detects a launcher, so that a binary built without MPI refuses to run as
//! several copies that would each train alone and overwrite each other's files.

use nodal_distributed::Communicator;

/// Environment variables through which MPI launchers tell a process its world size (Open MPI,
/// PMIx, MPICH/Hydra and Slurm's PMI).
const SIZE_VARS: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"];

/// The world size an MPI launcher announced to this process, if it was started by one.
pub fn launcher_world_size() -> Option<usize> {
    SIZE_VARS.iter().find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok())
}

/// Whether this binary was built with MPI support.
pub const AVAILABLE: bool = cfg!(feature = "mpi");

/// Why a distributed run cannot start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

#[cfg(feature = "mpi")]
mod transport;
#[cfg(feature = "mpi")]
pub use transport::MpiCommunicator;

/// Finalises MPI after a command succeeded on this rank; every rank of a successful job calls
/// it. A rank that fails skips it and exits, which makes the launcher stop the job at once (a
/// finalise would wait for ranks still inside a collective). A no-op without MPI.
pub fn finish() {
    #[cfg(feature = "mpi")]
    transport::finish();
}

/// Starts MPI and returns this process's communicator over all ranks. Fails with a message that
/// says what to do when the binary was built without the `mpi` feature or MPI cannot start.
pub fn start() -> Result<Box<dyn Communicator>, StartError> {
    #[cfg(feature = "mpi")]
    {
        transport::MpiCommunicator::start().map(|c| Box::new(c) as Box<dyn Communicator>)
    }
    #[cfg(not(feature = "mpi"))]
    {
        Err(StartError(
            "this nodal was built without MPI: install Open MPI (apt-get install openmpi-bin libopenmpi-dev libclang-dev) and build with `cargo build --release -p nodal-cli --features mpi`".into(),
        ))
    }
}
