//! `nodal eval spiral --weights FILE`: score trained weights on the whole true trajectory.

use clap::Args;
use nodal_experiments::spiral::{CubedMlp, predict, true_trajectory};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `nodal eval spiral`.
#[derive(Args)]
pub struct EvalArgs {
    /// Weights written by `nodal train` (model.safetensors).
    #[arg(long)]
    weights: PathBuf,
    /// Test-time relative tolerance.
    #[arg(long, default_value_t = 1e-7)]
    rtol: f64,
    /// Test-time absolute tolerance.
    #[arg(long, default_value_t = 1e-9)]
    atol: f64,
}

/// Print `{task, test_loss, nfe, seconds}` as one JSON object.
pub fn run(a: EvalArgs) -> ExitCode {
    let mut model = match CubedMlp::load(&a.weights) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (ts, ys) = true_trajectory();
    let start = std::time::Instant::now();
    match predict(&mut model, &ts, &ys, a.rtol, a.atol) {
        Ok((_, loss, nfe)) => {
            let o = json!({"task": "spiral", "test_loss": loss, "nfe": nfe, "rtol": a.rtol, "atol": a.atol, "seconds": start.elapsed().as_secs_f64()});
            println!("{o}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: solve failed: {e}");
            ExitCode::from(1)
        }
    }
}
