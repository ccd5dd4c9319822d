//! `nodal plot reconstruction`: where the continuous adjoint's reverse-time reconstruction of
//! `y` fails, what that does to its gradient, and what each gradient method costs
//! (see `nodal_experiments::reconstruction`).

use crate::failure::{CliResult, Failure};
use crate::figure::palette::{GREEN, ORANGE, PURPLE};
use crate::figure::{Axis, Line, Panel, figure};
use clap::Args;
use nodal::io::write_atomic;
use nodal_experiments::reconstruction::{REFERENCE_Y0, Row, contraction_mlp, forward_and_reconstructed, markdown, run_all};
use std::path::PathBuf;

/// Arguments of `nodal plot reconstruction`.
#[derive(Args)]
pub struct ReconstructionArgs {
    /// Output folder (reconstruction.png, reconstruction.md, reconstruction.json).
    #[arg(long, default_value = "runs/reconstruction")]
    out: PathBuf,
}

/// The gradient methods, each drawn as the palette series of its index.
const METHODS: [&str; 4] = ["backprop", "checkpoint", "adjoint", "adjoint-checkpointed"];

/// Run; exit 4 when the output folder cannot be written, 1 when a solve fails.
pub fn run(a: ReconstructionArgs) -> CliResult {
    crate::mnist_cmd::check_writable(&a.out)?;
    let rows = run_all().map_err(|e| Failure::Compute(format!("solve failed: {e}")))?;
    // Forward vs reconstructed trajectory of row 0 of the mixed-rate problem at k = 20.
    let traj = forward_and_reconstructed(&mut contraction_mlp(20.0, false), &REFERENCE_Y0, 1.0, 1e-6, 101)
        .map_err(|e| Failure::Compute(format!("solve failed: {e}")))?;
    let mut paths =
        Panel::new("k = 20: y forward (solid), reconstructed backwards from y(1) (dashed)", Axis::linear("t"), Axis::linear("y (row 0)"));
    // The reconstruction leaves the picture as it blows up: the axis keeps the forward range
    // and the dashed lines stop at its frame.
    let (lo, hi) = traj
        .iter()
        .flat_map(|(_, f, _)| f.iter().take(3).copied())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let pad = 0.5 * (hi - lo).max(0.1);
    paths.y = paths.y.clone().range(lo - pad, hi + pad);
    for (dim, col) in [(0, GREEN), (1, ORANGE), (2, PURPLE)] {
        let fwd: Vec<(f64, f64)> = traj.iter().map(|(t, f, _)| (*t, f[dim])).collect();
        let back: Vec<(f64, f64)> = traj.iter().map(|(t, _, b)| (*t, b[dim])).collect();
        paths.lines.push(Line::new(fwd, col, 3).label(format!("y[{dim}] forward")));
        paths.lines.push(Line::new(back, col, 3).dashed().label(format!("y[{dim}] reconstructed")));
    }
    let sweep = |family: &str, caption: &str| {
        let mut p = Panel::new(caption, Axis::log("contraction rate k"), Axis::log("gradient error (relative to the largest entry)"));
        for (i, method) in METHODS.into_iter().enumerate() {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.method == method && r.rtol == 1e-6 && r.problem.starts_with(family))
                .filter_map(|r| Some((r.problem.rsplit('=').next()?.parse::<f64>().ok()?, r.grad_error.max(1e-12))))
                .collect();
            // backprop and checkpoint give the same gradient: the later one is dashed so that
            // the earlier one shows through.
            let line = Line::series(i, pts).at_vertices().label(method);
            p.lines.push(if method == "checkpoint" { line.dashed() } else { line });
        }
        p
    };
    let mixed = sweep("mixed-rate", "mixed rates, rtol 1e-6 (backprop = checkpoint)");
    let uniform = sweep("uniform-rate", "uniform rate, rtol 1e-6 (backprop = checkpoint)");
    let worst = |method: &str, family: &str| {
        rows.iter().filter(|r| r.method == method && r.problem.starts_with(family)).map(|r| r.grad_error).fold(0.0, f64::max)
    };
    let title = format!(
        "Mixed-rate problem, worst gradient error: backsolve adjoint {:.1e}, checkpointed adjoint {:.1e}",
        worst("adjoint", "mixed-rate"),
        worst("adjoint-checkpointed", "mixed-rate")
    );
    figure(&a.out.join("reconstruction.png"), &title, (1800, 600), 1, 3, &[paths, mixed, uniform]).map_err(Failure::Output)?;
    write_atomic(&a.out.join("reconstruction.md"), markdown(&rows).as_bytes()).map_err(|e| Failure::Output(e.to_string()))?;
    let json = serde_json::to_vec_pretty(&rows).map_err(|e| Failure::Compute(e.to_string()))?;
    write_atomic(&a.out.join("reconstruction.json"), &json).map_err(|e| Failure::Output(e.to_string()))?;
    summary(&rows);
    Ok(())
}

/// One line per problem family on stdout: the worst error of each method.
fn summary(rows: &[Row]) {
    for family in ["mixed-rate", "uniform-rate", "damped pendulum", "learned spiral field"] {
        let parts: Vec<String> = METHODS
            .iter()
            .map(|m| {
                let w = rows.iter().filter(|r| r.method == *m && r.problem.starts_with(family)).map(|r| r.grad_error).fold(0.0, f64::max);
                format!("{m} {w:.1e}")
            })
            .collect();
        println!("{family}: worst gradient error {}", parts.join(", "));
    }
}
