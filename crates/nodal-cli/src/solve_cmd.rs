//! `nodal solve PROBLEM.json [--grad backprop|checkpoint|adjoint]`.

use crate::failure::{CliResult, Failure};
use crate::output::{emit_json, note};
use clap::Args;
use nodal::solve::grad::GradMethod;
use nodal_experiments::problem::{Problem, run_problem};
use std::path::PathBuf;

/// Arguments of `nodal solve`.
#[derive(Args)]
pub struct SolveArgs {
    /// Problem file: a reference file (its `problem` object) or a bare problem object.
    problem: PathBuf,
    /// Also compute gradients of the loss (sum of squares of all ys): backprop, checkpoint,
    /// checkpoint:M (a checkpoint every M steps), adjoint (y reconstructed backwards) or
    /// adjoint-checkpointed[:M] (y re-solved forwards from a checkpoint every M steps). SDE
    /// problems: backprop, checkpoint[:M], adjoint (reversible_heun: its exact reversible
    /// adjoint; other schemes: the continuous stochastic adjoint).
    #[arg(long)]
    grad: Option<String>,
    /// SDE problems (files with Brownian increments `dW` or a diffusion `V`): the step formula,
    /// one of euler_maruyama, milstein_ito, milstein_ito_commutative, milstein_ito_diag,
    /// milstein_strat, euler_heun, heun, midpoint, reversible_heun, or sri (Rößler's order-1.5
    /// scheme: files without `dW` (a seeded path gives its time integrals), forward only).
    #[arg(long)]
    scheme: Option<String>,
    /// SDE problems: adaptive steps (Heun with its embedded Euler-Maruyama estimate, `--scheme
    /// heun`) to this relative tolerance, from a first step of the file's `dt`; outputs at the
    /// times of `out_steps`. Needs `--atol` too.
    #[arg(long)]
    rtol: Option<f64>,
    /// SDE problems: absolute tolerance of adaptive steps (with `--rtol`).
    #[arg(long)]
    atol: Option<f64>,
    /// With --grad adjoint: warn (on stderr) when the reverse-time reconstruction of y drifts
    /// further than this from the forward solution (relative; `backward_stats.reconstruction_error`).
    #[arg(long, default_value_t = 1e-3)]
    reconstruction_warn: f64,
    /// With --grad, also the gradient with respect to the output times (`grads.t`; joint
    /// solves only).
    #[arg(long)]
    t_grads: bool,
    /// Indent the JSON output.
    #[arg(long)]
    pretty: bool,
    /// Per-sample problems over an MPI launch: each rank solves its shard of the rows and rank
    /// 0 prints the gathered result (the same JSON, plus `ranks`).
    #[command(flatten)]
    dist: crate::distributed::DistributedArgs,
}

/// One of [`GradMethod::NAMES`].
pub fn parse_grad(s: &str) -> Result<GradMethod, String> {
    GradMethod::parse(s).ok_or_else(|| format!("unknown gradient method {s:?}: use {}", GradMethod::NAMES))
}

/// Exit codes: 0 success, 1 the solve failed (JSON with the partial solution still printed),
/// 2 the problem file is unusable or too large for the memory limit, 3 some rows failed in
/// per-sample mode (JSON printed, with each row's status in `row_status`; a failed row's
/// outputs after its failure are NaN, written as `null`).
pub fn run(a: SolveArgs, memory_limit: u64) -> CliResult {
    let text = nodal::io::read_text_capped(&a.problem, nodal::io::MAX_JSON_BYTES, "a problem file").map_err(Failure::input)?;
    if a.scheme.is_some() || nodal_formats::sde_problem::SdeProblem::looks_like_sde(&text) {
        let tol = match (a.rtol, a.atol) {
            (Some(r), Some(t)) => Some((r, t)),
            (None, None) => None,
            _ => return Err(Failure::Input("adaptive SDE steps need both --rtol and --atol".into())),
        };
        return crate::sde_solve::run(&a.problem, a.scheme.as_deref(), a.grad.as_deref(), tol, a.pretty, memory_limit);
    }
    if a.rtol.is_some() || a.atol.is_some() {
        return Err(Failure::Input(format!("--rtol/--atol are for SDE problems; {} sets rtol and atol in the file", a.problem.display())));
    }
    let grad = a.grad.as_deref().map(parse_grad).transpose().map_err(Failure::Input)?;
    let problem = Problem::from_json_str(&text, &a.problem.display().to_string()).map_err(Failure::input)?;
    if !(a.reconstruction_warn > 0.0) {
        return Err(Failure::Input(format!("--reconstruction-warn must be > 0 (got {})", a.reconstruction_warn)));
    }
    if a.t_grads && grad.is_none() {
        return Err(Failure::Input("--t-grads needs --grad".into()));
    }
    let est = problem.estimated_bytes(grad.is_some());
    crate::budget::check(
        &format!("{} ({} times x {} rows x {} dims)", a.problem.display(), problem.t.len(), problem.y0.len(), problem.dim()),
        est,
        memory_limit,
    )?;
    let comm = a.dist.communicator()?;
    let (r, rank_error) = if comm.size() > 1 {
        if problem.batch_mode != nodal_experiments::problem::BatchMode::PerSample {
            return Err(Failure::Input(format!(
                "{}: a joint solve couples its rows through one error norm and cannot be split across ranks; set \"batch_mode\": \"per_sample\" to distribute the rows",
                a.problem.display()
            )));
        }
        match crate::solve_distributed::run(&problem, grad, memory_limit as usize, comm.as_ref())? {
            Some(r) => r,
            None => return Ok(()),
        }
    } else {
        (run_problem(&problem, grad, a.t_grads, memory_limit as usize).map_err(Failure::input)?, None)
    };
    emit_json(&r.json, a.pretty)?;
    if let Some(drift) = r.json["backward_stats"]["reconstruction_error"].as_f64().filter(|d| !(*d <= a.reconstruction_warn)) {
        note(&format!(
            "warning: the adjoint's reverse-time reconstruction of y drifted {drift:.3e} (relative) from the forward solution, over --reconstruction-warn {:e}; its gradients may be wrong too: --grad adjoint-checkpointed re-solves y forwards instead",
            a.reconstruction_warn
        ));
    }
    if let Some(e) = rank_error {
        note("the partial solution was printed");
        return Err(Failure::Compute(format!("solve failed on {e}")));
    }
    match r.error {
        None if r.failed_rows > 0 => Err(Failure::Partial(format!("{} row(s) failed; see row_status", r.failed_rows))),
        None => Ok(()),
        Some(e) => {
            note("the partial solution was printed");
            Err(Failure::Compute(format!("solve failed: {e}")))
        }
    }
}
