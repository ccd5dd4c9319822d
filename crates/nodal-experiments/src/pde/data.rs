//! Training and test data of the PDE layers: random initial fields, and their "true" evolution
//! simulated by nodal at high accuracy (Kvaerno5 at rtol 1e-9) under the true PDE.
//!
//! - Reaction-diffusion: Fisher-KPP `u_t = D u_xx + r u (1 - u)` on `[0, 1]` with Neumann
//!   boundaries; initial fields are sums of 1 to 3 Gaussian bumps.
//! - Burgers: viscous Burgers on `[0, 2 pi)`, periodic; initial fields are two random sine
//!   modes, simulated on a fine grid and subsampled to the model's coarse grid. The fine
//!   simulation's error on a Cole-Hopf exact solution at the same settings is measured and
//!   reported ([`fine_check`]).

use nodal::solve::pde::{Axis, Boundary, Burgers, Convection, Grid, Reaction, ReactionDiffusion, cole_hopf};
use nodal::solve::tableau::DOPRI5;
use nodal::solve::{Dynamics, ImplicitMethod, RmsNorm, SolveError, SolveOptions, solve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Options of the reference simulations.
pub fn truth_options() -> SolveOptions {
    SolveOptions::new(&DOPRI5).with_implicit(ImplicitMethod::Kvaerno5).with_tol(1e-9, 1e-11).with_max_steps(200_000)
}

/// One data set: initial fields and their snapshots at `ts` (`fields[i][k]` is field `i` at `ts[k]`).
#[derive(Debug, Clone)]
pub struct Trajectories {
    /// Snapshot times (the first is 0).
    pub ts: Vec<f64>,
    /// Per initial field, its snapshots.
    pub fields: Vec<Vec<Vec<f64>>>,
}

/// Solve `f` from each of `u0s` and keep the snapshots at `ts`.
pub fn simulate<D: Dynamics<Vec<f64>>>(f: &mut D, u0s: &[Vec<f64>], ts: &[f64], opts: &SolveOptions) -> Result<Trajectories, SolveError> {
    let mut fields = Vec::with_capacity(u0s.len());
    for u0 in u0s {
        let sol = solve(f, u0, ts, opts, &RmsNorm).map_err(|e| e.error)?;
        fields.push(sol.ys);
    }
    Ok(Trajectories { ts: ts.to_vec(), fields })
}

/// `count` Fisher-KPP initial fields on `axis`: 1 to 3 bumps of height 0.1-0.6, width 0.03-0.08.
pub fn bump_fields(axis: &Axis, count: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let bumps: Vec<(f64, f64, f64)> =
                (0..rng.gen_range(1..=3)).map(|_| (rng.gen_range(0.1..0.6), rng.gen_range(0.1..0.9), rng.gen_range(0.03..0.08))).collect();
            (0..axis.n)
                .map(|i| {
                    let x = axis.x(i);
                    bumps.iter().map(|(a, c, w)| a * (-(x - c).powi(2) / (2.0 * w * w)).exp()).sum::<f64>().min(1.0)
                })
                .collect()
        })
        .collect()
}

/// The true Fisher-KPP system on `grid`.
pub fn fisher_kpp(grid: Grid, diffusion: f64, rate: f64) -> ReactionDiffusion {
    ReactionDiffusion::new(grid, diffusion, Reaction::FisherKpp { rate })
}

/// `count` Burgers initial fields: `u0 = a1 sin(x + s1) + a2 sin(2 x + s2)` with amplitudes
/// `a1` in `[0.3, 0.7]`, `a2` in `[0, 0.3]` (steepening into fronts a few cells of the coarse
/// grid wide).
pub fn sine_fields(axis: &Axis, count: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let (a1, s1, a2, s2) = (
                rng.gen_range(0.3..0.7),
                rng.gen_range(0.0..std::f64::consts::TAU),
                rng.gen_range(0.0..0.3),
                rng.gen_range(0.0..std::f64::consts::TAU),
            );
            (0..axis.n).map(|i| a1 * (axis.x(i) + s1).sin() + a2 * (2.0 * axis.x(i) + s2).sin()).collect()
        })
        .collect()
}

/// Burgers data: each initial field simulated on the fine axis (central scheme), snapshots
/// subsampled by `every` to the coarse grid.
pub fn burgers_data(fine: &Axis, every: usize, nu: f64, u0s: &[Vec<f64>], ts: &[f64]) -> Result<Trajectories, SolveError> {
    let mut f = Burgers::new(*fine, nu, Convection::Central);
    let fine_runs = simulate(&mut f, u0s, ts, &truth_options())?;
    let fields = fine_runs.fields.iter().map(|run| run.iter().map(|y| y.iter().step_by(every).copied().collect()).collect()).collect();
    Ok(Trajectories { ts: ts.to_vec(), fields })
}

/// How well the fine simulation does on a solution known exactly: the Cole-Hopf state with
/// `phi = 1.3 + cos(x) + 0.2 cos(2 x + 1)` (amplitude about 0.4 at nu = 0.05), simulated like the
/// data over `ts`; the largest error over the grid and the snapshots.
pub fn fine_check(fine: &Axis, nu: f64, ts: &[f64]) -> Result<f64, SolveError> {
    let (c0, modes) = (1.3, [(1.0, 0.0), (0.2, 1.0)]);
    let u0: Vec<f64> = (0..fine.n).map(|i| cole_hopf(fine.x(i), 0.0, nu, c0, &modes)).collect();
    let mut f = Burgers::new(*fine, nu, Convection::Central);
    let sol = solve(&mut f, &u0, ts, &truth_options(), &RmsNorm).map_err(|e| e.error)?;
    let mut worst: f64 = 0.0;
    for (k, y) in sol.ys.iter().enumerate() {
        for (i, v) in y.iter().enumerate() {
            worst = worst.max((v - cole_hopf(fine.x(i), ts[k], nu, c0, &modes)).abs());
        }
    }
    Ok(worst)
}

/// The periodic axis of `n` points on `[0, 2 pi)`.
pub fn burgers_axis(n: usize) -> Axis {
    Axis::new(n, std::f64::consts::TAU, Boundary::Periodic)
}
