//! `nodal solve PROBLEM.json [--grad backprop|checkpoint|adjoint]`.

use clap::Args;
use nodal::solve::grad::GradMethod;
use nodal_experiments::problem::{Problem, run_problem};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `nodal solve`.
#[derive(Args)]
pub struct SolveArgs {
    /// Problem file: a reference file (its `problem` object) or a bare problem object.
    problem: PathBuf,
    /// Also compute gradients of the loss (sum of squares of all ys): backprop, checkpoint,
    /// checkpoint:M (a checkpoint every M steps) or adjoint.
    #[arg(long, value_parser = parse_grad)]
    grad: Option<GradMethod>,
    /// With --grad, also the gradient with respect to the output times (`grads.t`).
    #[arg(long)]
    t_grads: bool,
    /// Indent the JSON output.
    #[arg(long)]
    pretty: bool,
}

pub fn parse_grad(s: &str) -> Result<GradMethod, String> {
    GradMethod::parse(s).ok_or_else(|| format!("unknown gradient method {s:?}: use backprop, checkpoint, checkpoint:M or adjoint"))
}

/// Exit codes: 0 success, 1 the solve failed (JSON with the partial solution still printed),
/// 2 the problem file is unusable, 3 some rows failed in per-sample mode (JSON printed, with each
/// row's status in `row_status`; a failed row's outputs after its failure are NaN, written as
/// `null`).
pub fn run(a: SolveArgs) -> ExitCode {
    let problem = match Problem::from_file(&a.problem) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let r = run_problem(&problem, a.grad, a.t_grads);
    let text = if a.pretty { serde_json::to_string_pretty(&r.json) } else { serde_json::to_string(&r.json) };
    println!("{}", text.expect("JSON values serialise"));
    match r.error {
        None if r.failed_rows > 0 => {
            eprintln!("error: {} row(s) failed; see row_status", r.failed_rows);
            ExitCode::from(3)
        }
        None => ExitCode::SUCCESS,
        Some(e) => {
            eprintln!("error: solve failed: {e}");
            ExitCode::from(1)
        }
    }
}
