//! Data-parallel training for nodal.
//!
//! Every worker (a *rank*) holds the same model and optimiser state. Each global mini-batch of
//! `B` examples is cut into contiguous shards, one per rank ([`shard_range`]); a rank computes the
//! gradient of `sum over its rows of loss / B`, the gradients are summed over ranks by an
//! all-reduce ([`all_reduce_gradients`]), and every rank applies the same optimiser step. The sum
//! of the shards' gradients is the gradient of the global mean loss, so `N` ranks on a global batch
//! `B` make the updates one process makes on `B`, up to the order of floating-point additions,
//! whenever the model's forward pass treats rows independently (the ResNet, the RK-Net, fixed-step
//! and per-sample ODE blocks). An adaptive solve of the whole batch as one "giant ODE" chooses its
//! steps from an error norm over every row, so each shard then takes its own steps, as it does in
//! PyTorch's DistributedDataParallel with torchdiffeq.
//!
//! The transport is behind the [`Communicator`] trait:
//! - [`SingleProcess`]: one rank, every collective is the identity;
//! - [`LocalGroup`]: ranks as threads of one process (tests, and a reference for the semantics);
//! - `nodal_mpi::MpiCommunicator` (crate `nodal-mpi`, cargo feature `mpi` of the command-line
//!   tool): processes on one or many nodes through MPI, launched by `mpirun`.
//!
//! [`Watchdog`] wraps any communicator so that a collective that does not finish within a timeout
//! (a worker died or hangs) ends the process with a clear message instead of waiting forever.

mod communicator;
mod gradients;
mod local;
mod shard;
mod watchdog;

pub use communicator::{CommError, Communicator, SingleProcess};
pub use gradients::{all_reduce_gradients, gradient_len};
pub use local::LocalGroup;
pub use shard::{shard_len, shard_range};
pub use watchdog::{EXIT_TIMEOUT, Watchdog};
