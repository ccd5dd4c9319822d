//! `nodal stiff`: one problem of the stiff test set (Robertson, Van der Pol with mu = 1000,
//! HIRES, OREGO) solved to its standard end time with any method, as one JSON object: the
//! final state, its error against the reference, the work (steps, evaluations, Jacobians, LU
//! factorisations) and the time.
//!
//! An explicit method is accepted for contrast; when it runs out of steps the object says how
//! far it got (`"failed": true`, `t_reached`) and the exit code is 1.

use crate::failure::{CliResult, Failure};
use crate::output::emit_json;
use clap::Args;
use nodal::solve::stiff_problems::{STIFF_PROBLEMS, stiff_problem};
use nodal::solve::{FnDynamics, ImplicitSettings, LinearSolver, RmsNorm, SolveError, SolveOptions, solve, tableau};
use serde_json::json;
use std::time::Instant;

/// Arguments of `nodal stiff`.
#[derive(Args)]
pub struct StiffArgs {
    /// The problem: robertson (t = 1e11), vdp1000 (t = 3000), hires (t = 321.8122) or orego
    /// (t = 360).
    #[arg(long, default_value = "robertson")]
    problem: String,
    /// The method: kvaerno3, kvaerno5, rodas5, or an explicit one (dopri5, tsit5, ...) for
    /// contrast.
    #[arg(long, default_value = "kvaerno5")]
    method: String,
    /// Relative tolerance.
    #[arg(long, default_value_t = 1e-6)]
    rtol: f64,
    /// Absolute tolerance.
    #[arg(long, default_value_t = 1e-10)]
    atol: f64,
    /// Linear solves of implicit methods: dense (forward-difference Jacobian and LU) or krylov
    /// (matrix-free GMRES).
    #[arg(long, default_value = "dense", value_parser = ["dense", "krylov"])]
    linear: String,
    /// Most steps (accepted plus rejected) before the solve gives up.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    max_steps: u64,
    /// Timed repeats (the median time is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeats: u64,
    /// Indent the JSON.
    #[arg(long)]
    pretty: bool,
}

/// Run `nodal stiff`.
pub fn run(a: StiffArgs) -> CliResult {
    let names: Vec<&str> = STIFF_PROBLEMS.iter().map(|p| p.name).collect();
    let p = stiff_problem(&a.problem)
        .ok_or_else(|| Failure::Input(format!("unknown problem {:?}: expected one of {}", a.problem, names.join(", "))))?;
    let mut opts = SolveOptions::new(&tableau::DOPRI5)
        .with_method_name(&a.method)
        .ok_or_else(|| {
            Failure::Input(format!("unknown method {:?}: kvaerno3, kvaerno5, rodas5, or an explicit method such as dopri5", a.method))
        })?
        .with_tol(a.rtol, a.atol)
        .with_max_steps(a.max_steps as usize);
    if a.linear == "krylov" {
        opts = opts.with_implicit_settings(ImplicitSettings { linear: LinearSolver::krylov(), ..ImplicitSettings::default() });
    }
    opts.validate().map_err(Failure::input)?;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..a.repeats {
        let mut f = FnDynamics(|t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| (p.f)(t, y, dy));
        let start = Instant::now();
        let r = solve(&mut f, &p.y0.to_vec(), &[0.0, p.t_end], &opts, &RmsNorm);
        times.push(start.elapsed().as_secs_f64());
        let failed = r.is_err();
        last = Some(r);
        if failed {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    let seconds = times[times.len() / 2];
    let stats_json = |s: &nodal::solve::Stats| {
        json!({
            "steps": s.steps(), "accepted": s.accepted, "rejected": s.rejected, "nfe": s.nfe,
            "jacobians": s.jacobians, "lu": s.factorisations, "newton_iterations": s.newton_iterations,
            "linear_iterations": s.linear_iterations,
        })
    };
    let common = json!({"problem": p.name, "method": opts.method_name(), "rtol": a.rtol, "atol": a.atol, "linear": a.linear});
    match last.expect("at least one repeat") {
        Ok(sol) => {
            let y = &sol.ys[1];
            let mut out = common;
            out["t_final"] = json!(p.t_end);
            out["y_final"] = json!(y);
            out["y_reference"] = json!(p.reference);
            out["error"] = json!(p.error(y, a.atol));
            out["stats"] = stats_json(&sol.stats);
            out["seconds"] = json!(seconds);
            out["failed"] = json!(false);
            emit_json(&out, a.pretty)
        }
        Err(fail) => {
            let mut out = common;
            out["t_final"] = json!(p.t_end);
            out["t_reached"] = json!(time_reached(&fail.error).or(fail.partial.ts.last().copied()));
            out["stats"] = stats_json(&fail.partial.stats);
            out["seconds"] = json!(seconds);
            out["failed"] = json!(true);
            out["error"] = json!(fail.error.to_string());
            emit_json(&out, a.pretty)?;
            Err(Failure::compute(format!("{} with {}: {}", p.name, opts.method_name(), fail.error)))
        }
    }
}

/// The time a failed solve had reached, from its error.
fn time_reached(e: &SolveError) -> Option<f64> {
    match *e {
        SolveError::MaxStepsExceeded { t, .. }
        | SolveError::StepSizeUnderflow { t, .. }
        | SolveError::NonFinite { t, .. }
        | SolveError::ImplicitStep { t, .. }
        | SolveError::NoFirstStep { t, .. }
        | SolveError::MemoryLimit { t, .. } => Some(t),
        _ => None,
    }
}
