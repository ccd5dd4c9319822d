//! Solving MLP problem files (the format lives in [`nodal_formats::problem`], re-exported
//! here): the solution and, on request, gradients of the loss `L = sum_k sum ||y(t_k)||^2`, as
//! the JSON `nodal solve` prints.

pub use nodal_formats::problem::*;

use nodal_solve::grad::{GradMethod, solve_for_gradients};
use nodal_solve::mlp::Mlp;
use nodal_solve::per_sample::{per_sample_gradients, solve_per_sample};
use nodal_solve::{Record, RmsNorm, Scalar, SolveError, Stats};
use serde_json::{Value, json};
use std::time::Instant;

/// Result of [`run_problem`]: the JSON to print, and the solve error if the solve failed.
pub struct ProblemRun {
    /// The output object.
    pub json: Value,
    /// The failure, if any (the JSON then holds the partial solution).
    pub error: Option<SolveError>,
    /// Rows that failed in per-sample mode (the others are complete).
    pub failed_rows: usize,
}

fn to_nested<T: Scalar>(flat: &[T], dim: usize) -> Vec<Vec<f64>> {
    flat.chunks(dim).map(|r| r.iter().map(|x| x.to_f64()).collect()).collect()
}

fn stats_json(s: &Stats) -> Value {
    json!({ "nfe": s.nfe, "nvjp": s.nvjp, "accepted": s.accepted, "rejected": s.rejected })
}

/// Solve a problem, optionally with gradients of `L = sum of squares of all ys`.
/// The problem is validated first (a [`ProblemError`] names the field); `max_memory` caps what
/// the solve stores for gradients ([`nodal_solve::Limits::max_memory`]). Time gradients
/// (`want_t`) exist for joint solves only.
pub fn run_problem(p: &Problem, grad: Option<GradMethod>, want_t: bool, max_memory: usize) -> Result<ProblemRun, ProblemError> {
    p.validate("problem")?;
    if want_t && p.batch_mode == BatchMode::PerSample {
        return Err(ProblemError::Field {
            path: "problem".into(),
            field: "batch_mode",
            reason: "gradients with respect to the output times are computed for joint solves only".into(),
        });
    }
    Ok(match p.dtype {
        Dtype::Float32 => run_typed::<f32>(p, grad, want_t, max_memory),
        Dtype::Float64 => run_typed::<f64>(p, grad, want_t, max_memory),
    })
}

fn shape_failure(e: impl std::fmt::Display) -> ProblemRun {
    let error = SolveError::Shape(e.to_string());
    ProblemRun { json: json!({ "error": error.to_string() }), error: Some(error), failed_rows: 0 }
}

fn grads_json<T: Scalar>(y0: &[T], gp: &[T], d: usize, h: usize) -> Value {
    let gp: Vec<f64> = gp.iter().map(|x| x.to_f64()).collect();
    let (o_b1, o_w2, o_b2) = (h * d, h * d + h, 2 * h * d + h);
    json!({
        "y0": to_nested(y0, d),
        "W1": gp[..o_b1].chunks(d).collect::<Vec<_>>(),
        "b1": &gp[o_b1..o_w2],
        "W2": gp[o_w2..o_b2].chunks(h).collect::<Vec<_>>(),
        "b2": &gp[o_b2..],
    })
}

fn run_per_sample<T: Scalar>(p: &Problem, grad: Option<GradMethod>, max_memory: usize) -> ProblemRun {
    let (d, h) = (p.dim(), p.hidden());
    let mut mlp = match Mlp::<T>::new(d, h, p.flat_params()) {
        Some(m) => m,
        None => return shape_failure("weights do not fit the MLP sizes"),
    };
    let y0: Vec<T> = p.y0.iter().flatten().map(|&x| T::from_f64(x)).collect();
    let opts = p.options().with_max_memory(max_memory);
    let batch = p.y0.len();
    let ts = vec![p.t.clone(); batch];
    let start = Instant::now();
    let sol = match solve_per_sample(&mut mlp, &y0, d, &ts, &opts, grad.map_or(Record::None, |g| g.record(&p.t, opts.step))) {
        Ok(s) => s,
        Err(e) => return ProblemRun { json: json!({ "error": e.to_string() }), error: Some(e), failed_rows: 0 },
    };
    let seconds = start.elapsed().as_secs_f64();
    let failed_rows = sol.row_status.iter().filter(|s| s.is_some()).count();
    let loss: f64 = sol.ys.iter().flatten().map(|x| x.to_f64()).filter(|x| x.is_finite()).map(|x| x * x).sum();
    let ys: Vec<Vec<Vec<f64>>> = sol.ys.iter().map(|y| to_nested(y, d)).collect();
    let accepted: usize = sol.row_stats.iter().map(|s| s.accepted).sum();
    let rejected: usize = sol.row_stats.iter().map(|s| s.rejected).sum();
    let status: Vec<String> = sol.row_status.iter().map(|s| s.as_ref().map_or("ok".to_string(), |e| e.to_string())).collect();
    let mut out = json!({
        "ys": ys, "loss": loss, "seconds": seconds, "batch_mode": "per_sample", "row_status": status,
        "stats": { "nfe": sol.calls, "accepted": accepted, "rejected": rejected,
                   "row_nfe": sol.row_stats.iter().map(|s| s.nfe).collect::<Vec<_>>(),
                   "row_accepted": sol.row_stats.iter().map(|s| s.accepted).collect::<Vec<_>>(),
                   "row_rejected": sol.row_stats.iter().map(|s| s.rejected).collect::<Vec<_>>(),
                   "row_evaluations": sol.row_evaluations },
    });
    if let Some(method) = grad {
        let ybar: Vec<Vec<T>> = sol.ys.iter().map(|y| y.iter().map(|&x| if x.is_finite() { x + x } else { T::ZERO }).collect()).collect();
        let start = Instant::now();
        match per_sample_gradients(&mut mlp, &sol, &ts, &ybar, d, method, &opts, &p.adjoint_options()) {
            Ok((g, per_row)) => {
                out["grads"] = grads_json(&g.y0, &g.params, d, h);
                out["backward_stats"] = stats_json(&g.stats);
                if let Some(e) = g.reconstruction_error {
                    out["backward_stats"]["reconstruction_error"] = json!(e);
                }
                out["backward_stats"]["row_nfe"] = json!(per_row.iter().map(|s| s.nfe).collect::<Vec<_>>());
                out["backward_seconds"] = json!(start.elapsed().as_secs_f64());
                out["grad_method"] = json!(method.to_string());
            }
            Err(e) => {
                out["error"] = json!(format!("backward solve failed: {e}"));
                return ProblemRun { json: out, error: Some(e), failed_rows };
            }
        }
    }
    ProblemRun { json: out, error: None, failed_rows }
}

fn run_typed<T: Scalar>(p: &Problem, grad: Option<GradMethod>, want_t: bool, max_memory: usize) -> ProblemRun {
    if p.batch_mode == BatchMode::PerSample {
        return run_per_sample::<T>(p, grad, max_memory);
    }
    let (d, h) = (p.dim(), p.hidden());
    let mut mlp = match Mlp::<T>::new(d, h, p.flat_params()) {
        Some(m) => m,
        None => return shape_failure("weights do not fit the MLP sizes"),
    };
    let y0: Vec<T> = p.y0.iter().flatten().map(|&x| T::from_f64(x)).collect();
    let opts = p.options().with_max_memory(max_memory);
    let start = Instant::now();
    // Without gradients, the adjoint's recording (none) is the plain solve's.
    let res = solve_for_gradients(&mut mlp, &y0, &p.t, &opts, &RmsNorm, grad.unwrap_or(GradMethod::Adjoint));
    let seconds = start.elapsed().as_secs_f64();
    let (sol, backward) = match res {
        Ok(x) => x,
        Err(fail) => {
            let ys: Vec<Vec<Vec<f64>>> = fail.partial.ys.iter().map(|y| to_nested(y, d)).collect();
            let json = json!({ "ys": ys, "stats": stats_json(&fail.partial.stats), "seconds": seconds, "error": fail.error.to_string() });
            return ProblemRun { json, error: Some(fail.error), failed_rows: 0 };
        }
    };
    let loss: f64 = sol.ys.iter().flatten().map(|x| x.to_f64() * x.to_f64()).sum();
    let ys: Vec<Vec<Vec<f64>>> = sol.ys.iter().map(|y| to_nested(y, d)).collect();
    let mut out = json!({ "ys": ys, "loss": loss, "stats": stats_json(&sol.stats), "seconds": seconds, "batch_mode": "joint" });
    out["stats"]["row_evaluations"] = json!(sol.stats.nfe * p.y0.len());
    if let Some(method) = grad {
        let ybar: Vec<Vec<T>> = sol.ys.iter().map(|y| y.iter().map(|&x| x + x).collect()).collect();
        let start = Instant::now();
        let g = backward.gradients(&mut mlp, &p.t, &sol.ys, &ybar, &p.adjoint_options(), want_t);
        let bseconds = start.elapsed().as_secs_f64();
        match g {
            Ok(g) => {
                let mut grads = grads_json(&g.y0, &g.params, d, h);
                if let Some(tg) = g.ts {
                    grads["t"] = json!(tg);
                }
                out["grads"] = grads;
                out["backward_stats"] = stats_json(&g.stats);
                if let Some(e) = g.reconstruction_error {
                    out["backward_stats"]["reconstruction_error"] = json!(e);
                }
                out["backward_seconds"] = json!(bseconds);
                out["grad_method"] = json!(method.to_string());
            }
            Err(e) => {
                out["error"] = json!(format!("backward solve failed: {e}"));
                return ProblemRun { json: out, error: Some(e), failed_rows: 0 };
            }
        }
    }
    ProblemRun { json: out, error: None, failed_rows: 0 }
}
