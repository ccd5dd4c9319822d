//! `nodal eval spiral --weights FILE`: score trained weights on the whole true trajectory.

use crate::failure::{CliResult, Failure};
use crate::output::emit_json;
use clap::Args;
use nodal_experiments::spiral::{CubedMlp, predict, true_trajectory};
use serde_json::json;
use std::path::PathBuf;

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

/// Print `{task, test_loss, nfe, seconds}` as one JSON object. Exit codes: 0 done, 1 the solve
/// failed, 2 unusable weights or options.
pub fn run(a: EvalArgs) -> CliResult {
    crate::validate::tolerances(a.rtol, a.atol, true)?;
    let mut model = CubedMlp::load(&a.weights).map_err(Failure::input)?;
    let (ts, ys) = true_trajectory();
    let start = std::time::Instant::now();
    let (_, loss, nfe) = predict(&mut model, &ts, &ys, a.rtol, a.atol).map_err(|e| Failure::Compute(format!("solve failed: {e}")))?;
    let o =
        json!({"task": "spiral", "test_loss": loss, "nfe": nfe, "rtol": a.rtol, "atol": a.atol, "seconds": start.elapsed().as_secs_f64()});
    emit_json(&o, false)
}
