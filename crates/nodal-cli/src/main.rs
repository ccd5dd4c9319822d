//! `nodal`: the command-line tool. One file per subcommand.

mod bench_cmd;
mod eval_cmd;
mod plot;
mod solve_cmd;
mod sweep_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Neural differential equations: solve, train, benchmark.
#[derive(Parser)]
#[command(name = "nodal", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Solve an MLP problem file and print the solution (and gradients) as JSON.
    Solve(solve_cmd::SolveArgs),
    /// Train a model (spiral: torchdiffeq's demo) and write metrics, weights and figures.
    Train(train_cmd::TrainArgs),
    /// Evaluate trained weights.
    Eval(eval_cmd::EvalArgs),
    /// Evaluate trained weights over a grid of test-time tolerances and methods.
    Sweep(sweep_cmd::SweepArgs),
    /// Measure solve throughput on the shared benchmark configurations.
    Bench(bench_cmd::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Solve(a) => solve_cmd::run(a),
        Command::Train(a) => train_cmd::run(a),
        Command::Eval(a) => eval_cmd::run(a),
        Command::Sweep(a) => sweep_cmd::run(a),
        Command::Bench(a) => bench_cmd::run(a),
    }
}
