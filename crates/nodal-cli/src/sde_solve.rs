//! `nodal solve SDE.json --scheme NAME [--grad backprop|checkpoint[:M]|adjoint|reversible]`:
//! a neural-SDE problem file (the shared SDE reference format) solved with one of the
//! [`nodal_solve::sde::SCHEMES`], printed as one JSON object `{ys, loss, grads, ...}`.

use crate::failure::{CliResult, Failure};
use crate::output::emit_json;
use nodal_formats::sde_problem::SdeProblem;
use nodal_solve::Scalar;
use nodal_solve::sde::{
    AdaptiveOptions, BrownianPath, Diffusion, NeuralSde, SCHEMES, Scheme, SdeError, SdeGradMethod, SdeGrid, SdeSteps, SeededBrownian,
    StoredIncrements, sde_gradient, sde_solve, sde_solve_adaptive,
};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

/// Gradient methods accepted for SDE problems.
pub const SDE_GRADS: &str = "backprop, checkpoint, checkpoint:M, adjoint (reversible_heun: its exact reversible adjoint; other schemes: the continuous adjoint), continuous-adjoint";

/// Parse an SDE gradient method for `scheme`.
pub fn parse_sde_grad(s: &str, scheme: Scheme) -> Result<SdeGradMethod, String> {
    Ok(match s {
        "backprop" => SdeGradMethod::Backprop,
        "checkpoint" => SdeGradMethod::Checkpoint { every: 0 },
        "adjoint" if scheme == Scheme::ReversibleHeun => SdeGradMethod::ReversibleAdjoint,
        "adjoint" | "continuous-adjoint" => SdeGradMethod::ContinuousAdjoint,
        _ => match s.strip_prefix("checkpoint:").map(str::parse::<usize>) {
            Some(Ok(m)) if m >= 1 => SdeGradMethod::Checkpoint { every: m },
            _ => return Err(format!("unknown gradient method {s:?} for an SDE problem: use {SDE_GRADS}")),
        },
    })
}

fn scheme_names() -> String {
    SCHEMES.iter().map(|(n, _)| *n).filter(|n| *n != "sra1").collect::<Vec<_>>().join(", ")
}

/// Rows of `[batch][dim]` from a flat vector.
fn rows<T: Scalar>(v: &[T], dim: usize) -> Value {
    Value::Array(v.chunks(dim).map(|r| Value::Array(r.iter().map(|x| json!(x.to_f64())).collect())).collect())
}

fn solve_typed<T: Scalar>(
    p: &SdeProblem,
    scheme: Scheme,
    grad: Option<SdeGradMethod>,
    tol: Option<(f64, f64)>,
    memory_limit: usize,
) -> Result<Value, SdeError> {
    let (d, h) = (p.dim(), p.hidden());
    let mut terms = NeuralSde::<T>::new(d, h, p.drift_params(), Diffusion::DiagonalSigmoid, p.diffusion_params())?;
    let grid = SdeGrid { t0: p.t0, dt: p.dt, steps: p.n_steps };
    let mut path: Box<dyn BrownianPath<T>> = match p.flat_dw::<T>() {
        Some(dw) => Box::new(StoredIncrements::new(p.t0, p.dt, p.batch(), d, dw)?),
        None => Box::new(SeededBrownian::new(p.seed, p.t0, grid.t1(), p.batch(), d, p.dt)?),
    };
    let y0 = p.flat_y0::<T>();
    let start = Instant::now();
    // Adaptive: the accepted steps become the grid that gradients replay.
    let mut adaptive_stats = None;
    let (steps, out_steps): (Box<dyn SdeSteps>, Vec<usize>) = match tol {
        None => (Box::new(grid), p.out_steps.clone()),
        Some((rtol, atol)) => {
            let out_times: Vec<f64> = p.out_steps.iter().map(|k| grid.time(*k)).collect();
            let sol = sde_solve_adaptive(&mut terms, path.as_mut(), p.t0, &out_times, &y0, &AdaptiveOptions::new(rtol, atol, p.dt))?;
            adaptive_stats = Some(json!({"accepted": sol.accepted, "rejected": sol.rejected, "rtol": rtol, "atol": atol}));
            (Box::new(sol.times), sol.out_steps)
        }
    };
    let (ys, grads, stats) = match grad {
        None => {
            let s = sde_solve(&mut terms, path.as_mut(), scheme, steps.as_ref(), &y0, &out_steps)?;
            (s.ys, None, s.stats)
        }
        Some(method) => {
            let mut cot = |ys: &[Vec<T>]| ys.iter().map(|y| y.iter().map(|v| T::from_f64(2.0) * *v).collect()).collect();
            let g = sde_gradient(&mut terms, path.as_mut(), scheme, steps.as_ref(), &y0, &out_steps, method, memory_limit, &mut cot)?;
            let stats = g.stats;
            let (o1, o2, o3, o4, o5) = (h * d, h * d + h, 2 * h * d + h, 2 * h * d + h + d, 2 * h * d + h + d + d * d);
            let pp = &g.params;
            let grads = json!({
                "y0": rows(&g.y0, d),
                "W1": rows(&pp[..o1], d), "b1": pp[o1..o2].iter().map(|x| x.to_f64()).collect::<Vec<_>>(),
                "W2": rows(&pp[o2..o3], h), "b2": pp[o3..o4].iter().map(|x| x.to_f64()).collect::<Vec<_>>(),
                "V": rows(&pp[o4..o5], d), "c": pp[o5..].iter().map(|x| x.to_f64()).collect::<Vec<_>>(),
            });
            (g.ys, Some((grads, method)), stats)
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let loss: f64 = ys.iter().flatten().map(|v| v.to_f64() * v.to_f64()).sum();
    let mut out = json!({
        "ys": Value::Array(ys.iter().map(|y| rows(y, d)).collect()),
        "loss": loss,
        "scheme": scheme.name(),
        "dtype": T::DTYPE,
        "brownian": if p.dw.is_some() { "stored increments (dW)" } else { "seeded path (seed, cells of dt)" },
        "stats": {"steps": stats.steps, "backward_steps": stats.backward_steps, "stored_states": stats.stored_states},
        "seconds": seconds,
    });
    if let Some(a) = adaptive_stats {
        out["adaptive"] = a;
    }
    if let Some((grads, method)) = grads {
        out["grads"] = grads;
        out["grad_method"] = json!(match method {
            SdeGradMethod::Backprop => "backprop".to_string(),
            SdeGradMethod::Checkpoint { every } =>
                format!("checkpoint (every {} steps)", if every == 0 { (p.n_steps as f64).sqrt().ceil() as usize } else { every }),
            SdeGradMethod::ReversibleAdjoint => "reversible adjoint (exact, O(1) memory)".into(),
            SdeGradMethod::ContinuousAdjoint =>
                format!("continuous adjoint (backward scheme {})", nodal_solve::sde::adjoint::backward_scheme(scheme).name()),
        });
    }
    Ok(out)
}

/// Run an SDE problem file. Exit codes as for ODE problems: 2 for unusable input (file,
/// field, scheme, gradient method), 1 when the solve fails (non-finite state).
pub fn run(path: &Path, scheme: Option<&str>, grad: Option<&str>, tol: Option<(f64, f64)>, pretty: bool, memory_limit: u64) -> CliResult {
    let problem = SdeProblem::from_file(path).map_err(Failure::input)?;
    let scheme_name =
        scheme.ok_or_else(|| Failure::Input(format!("{} is an SDE problem: pass --scheme NAME ({})", path.display(), scheme_names())))?;
    let scheme = Scheme::by_name(scheme_name).filter(|s| *s != Scheme::Sra1).ok_or_else(|| {
        Failure::Input(format!("unknown SDE scheme {scheme_name:?}: use one of {} (sra1 needs additive noise)", scheme_names()))
    })?;
    let grad = grad.map(|g| parse_sde_grad(g, scheme)).transpose().map_err(Failure::Input)?;
    if tol.is_some() && scheme != Scheme::Heun {
        return Err(Failure::Input(format!(
            "adaptive steps (--rtol/--atol) use the heun scheme with its embedded Euler estimate, not {}",
            scheme.name()
        )));
    }
    if tol.is_some() && problem.dw.is_some() {
        return Err(Failure::Input(format!(
            "{}: adaptive steps need a Brownian path queryable at any time; this file stores increments on a fixed grid (drop dW to use a seeded path)",
            path.display()
        )));
    }
    let result = if problem.dtype == "float32" {
        solve_typed::<f32>(&problem, scheme, grad, tol, memory_limit as usize)
    } else {
        solve_typed::<f64>(&problem, scheme, grad, tol, memory_limit as usize)
    };
    match result {
        Ok(v) => emit_json(&v, pretty),
        Err(e @ SdeError::NonFinite { .. }) => Err(Failure::Compute(format!("{}: SDE solve failed: {e}", path.display()))),
        // Shapes, arguments, unsupported combinations, memory limit: nothing was computed.
        Err(e) => Err(Failure::Input(format!("{}: {e}", path.display()))),
    }
}
