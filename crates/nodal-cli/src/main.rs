//! `nodal`: the command-line tool. One file per subcommand; [`failure`] maps every error to an
//! exit code, [`output`] writes without panicking, [`interrupt`] turns SIGINT and SIGTERM into
//! a saved stop, [`budget`] refuses requests over the memory limit.

mod allocator;
mod ball_cmd;
mod bench_cmd;
mod bench_sde_cmd;
mod budget;
mod cnf_cmd;
mod device_arg;
mod distributed;
mod eval_cmd;
mod failure;
mod figure;
mod flow_cmd;
mod interrupt;
mod latent_ode_cmd;
mod latent_sde_cmd;
mod memory_cmd;
mod mnist_cmd;
mod output;
mod particles_cmd;
mod pde_cmd;
mod plot;
mod plot_ball;
mod plot_cmd;
mod plot_homeomorphism_cmd;
mod plot_latent_ode;
mod plot_latent_sde;
mod plot_mnist_cmd;
mod plot_pde;
mod plot_reconstruction_cmd;
mod regularise_cmd;
mod sample_grid;
mod sde_solve;
mod solve_cmd;
mod solve_distributed;
mod stiff_cmd;
mod sweep_cmd;
mod train_cmd;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Neural differential equations: solve, train, benchmark.
///
/// Exit codes: 0 done, 1 the computation failed, 2 invalid input, 3 some per-sample rows
/// failed, 4 an output could not be written, 130/143 interrupted by SIGINT/SIGTERM after
/// saving, 141 stdout closed by its reader.
#[derive(Parser)]
#[command(name = "nodal", version, about)]
struct Cli {
    /// Most memory a command may plan to use (K, M, G, T suffixes): larger requests are refused
    /// up front, and gradient tapes stop growing past it.
    #[arg(long, global = true, value_parser = budget::parse_size, default_value = "4G")]
    memory_limit: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Solve an MLP problem file (ODE, or SDE with --scheme) and print the solution (and
    /// gradients) as JSON.
    Solve(solve_cmd::SolveArgs),
    /// Train a model and write metrics, weights and figures.
    #[command(subcommand)]
    Train(TrainTask),
    /// Evaluate trained weights.
    #[command(subcommand)]
    Eval(EvalTask),
    /// Generate images with flow-matching weights: a PNG grid of samples solved from noise.
    Sample(flow_cmd::SampleArgs),
    /// Evaluate trained weights over a grid of test-time tolerances and methods.
    Sweep(sweep_cmd::SweepArgs),
    /// Measure solve throughput on the shared benchmark configurations.
    Bench(bench_cmd::BenchArgs),
    /// Time neural-SDE solves and gradients on the anchors' sde_bench.py configurations
    /// (JSON lines).
    BenchSde(bench_sde_cmd::BenchSdeArgs),
    /// Solve a stiff test problem (Robertson, Van der Pol mu = 1000, HIRES, OREGO) to its
    /// standard end time; one JSON object with the error and the work.
    Stiff(stiff_cmd::StiffArgs),
    /// Peak memory of one MNIST training step (memory vs depth and solver steps).
    Memory(memory_cmd::MemoryArgs),
    /// Plain vs regularised training side by side (kinetic, Jacobian, second-order penalties).
    Regularise(regularise_cmd::RegulariseArgs),
    /// Train toy models and draw figures.
    #[command(subcommand)]
    Plot(PlotTask),
}

#[derive(Subcommand)]
enum PlotTask {
    /// NODE vs ANODE vs ResNet trajectories on toy tasks (Dupont et al. 2019; Chen et al. 2018).
    Trajectories(plot_cmd::TrajectoriesArgs),
    /// The MNIST ODE block's hidden state over time for a few test digits (2-D projection).
    MnistStates(plot_mnist_cmd::MnistStatesArgs),
    /// Where the adjoint's reverse-time reconstruction of y fails, and every gradient method's
    /// error, memory and time on such problems.
    Reconstruction(plot_reconstruction_cmd::ReconstructionArgs),
    /// A neural ODE deforms a circle onto a star, a letter and a figure eight without folding,
    /// beside an MLP and a ResNet that may fold.
    Homeomorphism(plot_homeomorphism_cmd::HomeomorphismArgs),
}

#[derive(Subcommand)]
enum TrainTask {
    /// torchdiffeq's spiral demo: learn dy/dt = (y^3) A from its trajectory.
    Spiral(train_cmd::TrainArgs),
    /// MNIST classification with ResNet, RK-Net or ODE-Net (Chen et al. 2018).
    Mnist(mnist_cmd::MnistTrainArgs),
    /// A continuous normalising flow on a 2-D toy density (FFJORD, RNODE penalties).
    Cnf(cnf_cmd::TrainCnfArgs),
    /// A continuous normalising flow on 14 x 14 MNIST with conv dynamics (bits per dimension).
    CnfMnist(cnf_cmd::TrainCnfMnistArgs),
    /// A latent SDE (Li et al. 2020) on noisy stochastic Lorenz paths: ELBO with the path KL as
    /// an extra state; data, posterior and prior sample figures.
    LatentSde(latent_sde_cmd::TrainLatentSdeArgs),
    /// A PDE layer (method of lines, stiff solver): Fisher-KPP with a learned reaction, or
    /// coarse-grid Burgers with a learned convection stencil; heat maps, rollout error, weights.
    Pde(pde_cmd::TrainPdeArgs),
    /// A bouncing ball's gravity and restitution learned from noisy heights, with gradients
    /// through its located impacts (events with differentiable times).
    BouncingBall(ball_cmd::TrainBallArgs),
    /// A latent ODE (ODE-RNN encoder, Rubanova et al. 2019), or the ODE-RNN or GRU baseline, on
    /// irregularly sampled series with missing values: held-out interpolation and extrapolation
    /// MSE, a figure of posterior predictions.
    LatentOde(latent_ode_cmd::TrainLatentOdeArgs),
    /// Interacting particles: a Transformer vector field trained on 5-particle spring
    /// trajectories, tested on held-out 5-, 8- and 12-particle systems beside MLP fields.
    Particles(particles_cmd::TrainParticlesArgs),
    /// Conditional flow matching on MNIST (Lipman et al. 2023): a U-Net vector field trained
    /// without solving; weights, metrics and a grid of samples.
    FlowMatching(flow_cmd::TrainFlowArgs),
}

#[derive(Subcommand)]
enum EvalTask {
    /// Test loss of spiral weights over the whole true trajectory.
    Spiral(eval_cmd::EvalArgs),
    /// Test accuracy of MNIST weights on the 10,000 test images.
    Mnist(mnist_cmd::MnistEvalArgs),
    /// Test NLL of CNF weights on held-out samples of a toy density (exact trace).
    Cnf(cnf_cmd::EvalCnfArgs),
    /// Held-out ELBO, reconstruction and prior statistics of latent-SDE weights (their run's
    /// test series, regenerated from the seed in the weights), with sample figures.
    LatentSde(latent_sde_cmd::EvalLatentSdeArgs),
    /// Flow-matching samples scored by the MNIST classifier: confident share, class counts,
    /// Frechet distance of its features to the test set's, NFE.
    FlowMatching(flow_cmd::EvalFlowArgs),
}

fn main() -> ExitCode {
    output::ignore_sigxfsz();
    allocator::keep_freed_memory();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout (exit 0); usage errors to stderr (exit 2). Neither
            // may panic on a closed stream.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let limit = cli.memory_limit;
    // Every command runs on a worker of rayon's pool. The kernels' fork-join (row chunks of the
    // fused networks, burn's parallel ops) then starts from a worker that is already awake,
    // instead of injecting each call from outside the pool and waking it. The fused MLP's
    // solve at batch 64 took half the time this way on two cores (docs/benchmarks.md).
    // Workers get a 16 MiB stack (twice the main thread's 8 MiB), for deep autodiff graphs.
    let _ = rayon::ThreadPoolBuilder::new().stack_size(16 << 20).build_global();
    let r = rayon::scope(|_| match cli.command {
        Command::Solve(a) => solve_cmd::run(a, limit),
        Command::Stiff(a) => stiff_cmd::run(a),
        Command::Train(TrainTask::Spiral(a)) => train_cmd::run(a, limit),
        Command::Train(TrainTask::Mnist(a)) => mnist_cmd::train(a),
        Command::Train(TrainTask::Cnf(a)) => cnf_cmd::train(a),
        Command::Train(TrainTask::CnfMnist(a)) => cnf_cmd::train_mnist(a),
        Command::Train(TrainTask::LatentSde(a)) => latent_sde_cmd::train(a),
        Command::Train(TrainTask::Pde(a)) => pde_cmd::train(a),
        Command::Train(TrainTask::BouncingBall(a)) => ball_cmd::train(a),
        Command::Train(TrainTask::Particles(a)) => particles_cmd::train(a),
        Command::Train(TrainTask::LatentOde(a)) => latent_ode_cmd::train(a),
        Command::Train(TrainTask::FlowMatching(a)) => flow_cmd::train(a),
        Command::Sample(a) => flow_cmd::sample(a),
        Command::Eval(EvalTask::FlowMatching(a)) => flow_cmd::eval(a),
        Command::Eval(EvalTask::Spiral(a)) => eval_cmd::run(a),
        Command::Eval(EvalTask::Mnist(a)) => mnist_cmd::eval(a),
        Command::Eval(EvalTask::Cnf(a)) => cnf_cmd::eval(a),
        Command::Eval(EvalTask::LatentSde(a)) => latent_sde_cmd::eval(a),
        Command::Sweep(a) => sweep_cmd::run(a),
        Command::Bench(a) => bench_cmd::run(a, limit),
        Command::BenchSde(a) => bench_sde_cmd::run(a, limit),
        Command::Memory(a) => memory_cmd::run(a, limit),
        Command::Regularise(a) => regularise_cmd::run(a),
        Command::Plot(PlotTask::Trajectories(a)) => plot_cmd::run(a),
        Command::Plot(PlotTask::MnistStates(a)) => plot_mnist_cmd::run(a),
        Command::Plot(PlotTask::Reconstruction(a)) => plot_reconstruction_cmd::run(a),
        Command::Plot(PlotTask::Homeomorphism(a)) => plot_homeomorphism_cmd::run(a),
    });
    match r {
        Ok(()) => {
            // Distributed runs: every rank of a successful job finalises MPI. A failed rank
            // does not, so the launcher stops the job at once instead of waiting in a finalise.
            nodal_mpi::finish();
            ExitCode::SUCCESS
        }
        Err(f) => f.report(),
    }
}
