//! When the continuous adjoint's reverse-time reconstruction of `y` fails, by how much, and what
//! each gradient method costs: the study behind `nodal plot reconstruction`.
//!
//! The backsolve adjoint integrates `dy/dt = f(t, y)` backwards from `y(t_N)`. In a direction
//! where the forward flow contracts at rate `k`, the backward flow expands at rate `k`, so any
//! error (the tolerance, rounding) grows like `e^{k t}`. Whether the gradient suffers depends on
//! the adjoint too: in the mixed-rate problem below the adjoint does not decay along the neutral
//! direction, and the wrong `y` it is evaluated at makes the parameter gradient wrong. Each
//! problem is solved at several tolerances with every gradient method, and each gradient is
//! compared with a high-precision reference (backprop through dopri5 at rtol 1e-12).

use nodal::solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal::solve::mlp::Mlp;
use nodal::solve::tableau::DOPRI5;
use nodal::solve::{Dynamics, RmsNorm, SolveError, SolveOptions, VjpDynamics, solve_dense};
use serde::Serialize;
use std::time::Instant;

/// The gradient methods compared, with their command-line names.
pub const METHODS: [GradMethod; 4] =
    [GradMethod::Backprop, GradMethod::Checkpoint(None), GradMethod::Adjoint, GradMethod::AdjointCheckpointed(None)];

/// Tolerances of the study (`atol = rtol / 100`).
pub const TOLERANCES: [f64; 3] = [1e-4, 1e-6, 1e-8];

/// The MLP `f(y) = W2 tanh(W1 y) + b2`, `W1 = 0.1 I`: with `uniform`, `W2 = -10k I` and
/// `b2 = (k, 0.5k, 0.7k)` (every direction contracts at rate about `k`); otherwise `W2 =
/// diag(-10k, 0, -10k)` and `b2 = (k, 1, 0.7k)` (dimensions 0 and 2 contract, 1 is neutral).
pub fn contraction_mlp(k: f64, uniform: bool) -> Mlp<f64> {
    let (d, h) = (3, 3);
    let mut p = vec![0.0; Mlp::<f64>::num_params_for(d, h)];
    let (w2, b2) = (d * h + h, d * h + h + h * d);
    for i in 0..3 {
        p[i * h + i] = 0.1;
        p[w2 + i * d + i] = if uniform || i != 1 { -10.0 * k } else { 0.0 };
    }
    let b = if uniform { [k, 0.5 * k, 0.7 * k] } else { [k, 1.0, 0.7 * k] };
    p[b2..b2 + 3].copy_from_slice(&b);
    Mlp::new(d, h, p).expect("3-3-3 sizes")
}

/// A damped pendulum `x'' = -sin x - c x'` on rows `[x, v]`, with the damping `c` as its one
/// parameter. Strong damping contracts `v` at rate about `c`.
#[derive(Debug, Clone)]
pub struct DampedPendulum {
    /// Damping coefficient.
    pub c: f64,
}

impl Dynamics<Vec<f64>> for DampedPendulum {
    fn eval(&mut self, _t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        for (r, d) in y.chunks(2).zip(dy.chunks_mut(2)) {
            d[0] = r[1];
            d[1] = -r[0].sin() - self.c * r[1];
        }
    }
}

impl VjpDynamics<Vec<f64>> for DampedPendulum {
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        vec![0.0]
    }
    fn vjp(&mut self, _t: f64, y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        // J = [[0, 1], [-cos x, -c]], df/dc = [0, -v].
        for ((r, ar), out) in y.chunks(2).zip(a.chunks(2)).zip(adj_y.chunks_mut(2)) {
            out[0] = -ar[1] * r[0].cos();
            out[1] = ar[0] - self.c * ar[1];
            adj_p[0] -= ar[1] * r[1];
        }
    }
}

/// The spiral demo's dynamics `f(y) = MLP(y^3)` in float64, with the weights of a trained
/// [`crate::spiral::CubedMlp`] (a learned field: mildly dissipative, like the true spiral).
#[derive(Debug, Clone)]
pub struct CubedField {
    /// The MLP applied to `y^3`.
    pub mlp: Mlp<f64>,
    cubed: Vec<f64>,
    adj_cubed: Vec<f64>,
}

impl CubedField {
    /// From a trained spiral model's parameters.
    pub fn from_trained(model: &crate::spiral::CubedMlp) -> Self {
        let p: Vec<f64> = model.mlp.params.iter().map(|&v| v as f64).collect();
        let mut mlp = Mlp::new(2, model.mlp.hidden(), p).expect("the trained model's sizes");
        mlp.set_threads(1);
        Self { mlp, cubed: Vec::new(), adj_cubed: Vec::new() }
    }
}

impl Dynamics<Vec<f64>> for CubedField {
    fn eval(&mut self, t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        self.cubed.clear();
        self.cubed.extend(y.iter().map(|v| v * v * v));
        self.mlp.eval(t, &self.cubed, dy);
    }
}

impl VjpDynamics<Vec<f64>> for CubedField {
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        self.mlp.param_zeros()
    }
    fn vjp(&mut self, t: f64, y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        // d(y^3)/dy = 3 y^2, elementwise.
        self.cubed.clear();
        self.cubed.extend(y.iter().map(|v| v * v * v));
        self.adj_cubed.resize(y.len(), 0.0);
        self.mlp.vjp(t, &self.cubed, a, &mut self.adj_cubed, adj_p);
        for ((o, c), v) in adj_y.iter_mut().zip(&self.adj_cubed).zip(y) {
            *o = c * 3.0 * v * v;
        }
    }
}

/// The four rows of the shared reference problem's `y0` (3 dimensions each).
pub const REFERENCE_Y0: [f64; 12] = [
    0.10296768001436127,
    -0.9805271710302613,
    -0.8174783249223175,
    -1.027881871299033,
    -0.574458905742871,
    1.9711298228060992,
    0.39335673416765504,
    -0.002309162514376961,
    -2.675402031228187,
    1.9425930848814652,
    0.019483357233120818,
    -2.262205499109686,
];

/// One problem of the study.
#[derive(Debug, Clone)]
pub struct Case {
    /// Name in tables.
    pub name: String,
    /// Initial state (all rows).
    pub y0: Vec<f64>,
    /// Output times; the loss is the sum of squares of all outputs.
    pub ts: Vec<f64>,
}

/// One row of the results table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Problem name.
    pub problem: String,
    /// Forward and adjoint tolerance `rtol` (`atol = rtol / 100`).
    pub rtol: f64,
    /// Gradient method (command-line spelling).
    pub method: String,
    /// Largest parameter-gradient error relative to the reference's largest entry.
    pub grad_error: f64,
    /// Reverse-time reconstruction drift of `y` (backsolve adjoint only).
    pub reconstruction_error: Option<f64>,
    /// States kept for the backward pass (checkpoints, or one per step).
    pub stored_states: usize,
    /// Per-step records kept (16 bytes each).
    pub step_records: usize,
    /// Backward evaluations of `f` plus vector-Jacobian products.
    pub backward_work: usize,
    /// Forward plus backward wall time, milliseconds (median of 3).
    pub ms: f64,
}

/// Parameter gradient of `L = sum of squares of the outputs` by `method`, with its costs.
fn gradient<D: VjpDynamics<Vec<f64>, Params = Vec<f64>>>(
    f: &mut D,
    case: &Case,
    opts: &SolveOptions,
    method: GradMethod,
) -> Result<(Vec<f64>, Row), SolveError> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let start = Instant::now();
        let (sol, back) = solve_for_gradients(f, &case.y0, &case.ts, opts, &RmsNorm, method).map_err(|e| e.error)?;
        let ybar: Vec<Vec<f64>> = sol.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
        let g = back.gradients(f, &case.ts, &sol.ys, &ybar, &AdjointOptions { solve: opts.clone(), seminorm: false }, false)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        last = Some((g, back.tape));
    }
    times.sort_by(f64::total_cmp);
    let (g, tape) = last.expect("three runs");
    let (stored_states, step_records) = tape.as_ref().map_or((0, 0), |t| (t.checkpoints.len(), t.steps.len()));
    let row = Row {
        problem: case.name.clone(),
        rtol: opts.rtol,
        method: method.to_string(),
        grad_error: f64::NAN,
        reconstruction_error: g.reconstruction_error,
        stored_states,
        step_records,
        backward_work: g.stats.nfe + if method == GradMethod::Adjoint { 0 } else { g.stats.nvjp },
        ms: times[1],
    };
    Ok((g.params, row))
}

/// Largest difference relative to the largest entry of `want`.
pub fn relative_error(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
}

/// Every method at every tolerance on `case` with dynamics `f`, against the reference gradient.
/// A method whose solve fails gets an infinite error (and its failure is not hidden: the
/// reconstruction diverging to infinity is one of the outcomes this study looks for).
pub fn study<D: VjpDynamics<Vec<f64>, Params = Vec<f64>>>(f: &mut D, case: &Case) -> Result<Vec<Row>, SolveError> {
    let reference_opts = SolveOptions::new(&DOPRI5).with_tol(1e-12, 1e-14);
    let (want, _) = gradient(f, case, &reference_opts, GradMethod::Backprop)?;
    let mut rows = Vec::new();
    for rtol in TOLERANCES {
        let opts = SolveOptions::new(&DOPRI5).with_tol(rtol, rtol * 1e-2);
        for method in METHODS {
            match gradient(f, case, &opts, method) {
                Ok((g, mut row)) => {
                    row.grad_error = relative_error(&g, &want);
                    rows.push(row);
                }
                Err(e) => rows.push(Row {
                    problem: case.name.clone(),
                    rtol,
                    method: format!("{method} (failed: {e})"),
                    grad_error: f64::INFINITY,
                    reconstruction_error: None,
                    stored_states: 0,
                    step_records: 0,
                    backward_work: 0,
                    ms: f64::NAN,
                }),
            }
        }
    }
    Ok(rows)
}

/// The forward solution and its reverse-time reconstruction from `y(t_end)` (what the
/// backsolve adjoint integrates), at `n` times each: `(t, forward, reconstructed)` per time.
pub fn forward_and_reconstructed<D: Dynamics<Vec<f64>>>(
    f: &mut D,
    y0: &[f64],
    t_end: f64,
    rtol: f64,
    n: usize,
) -> Result<Vec<(f64, Vec<f64>, Vec<f64>)>, SolveError> {
    let opts = SolveOptions::new(&DOPRI5).with_tol(rtol, rtol * 1e-2);
    let (fwd, dense_fwd) = solve_dense(f, &y0.to_vec(), &[0.0, t_end], &opts, &RmsNorm).map_err(|e| e.error)?;
    let y_end = fwd.ys.last().expect("final state").clone();
    let (_, dense_back) = solve_dense(f, &y_end, &[t_end, 0.0], &opts, &RmsNorm).map_err(|e| e.error)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = t_end * i as f64 / (n - 1).max(1) as f64;
        out.push((t, dense_fwd.eval(t)?, dense_back.eval(t)?));
    }
    Ok(out)
}

/// The whole study: the mixed-rate problem at `k = 5 .. 80`, the uniform-rate one at `k = 5 ..
/// 120`, the damped pendulum at damping `0.1 .. 10`, and a learned spiral field.
pub fn run_all() -> Result<Vec<Row>, SolveError> {
    let mut rows = Vec::new();
    let case = |name: String, y0: Vec<f64>, ts: Vec<f64>| Case { name, y0, ts };
    for k in [5.0, 10.0, 20.0, 40.0, 80.0] {
        rows.extend(study(&mut contraction_mlp(k, false), &case(format!("mixed-rate k={k}"), REFERENCE_Y0.to_vec(), vec![0.0, 1.0]))?);
    }
    for k in [5.0, 40.0, 120.0] {
        rows.extend(study(&mut contraction_mlp(k, true), &case(format!("uniform-rate k={k}"), REFERENCE_Y0.to_vec(), vec![0.0, 1.0]))?);
    }
    for c in [0.1, 1.0, 10.0] {
        let y0 = vec![1.0, 0.0, 2.5, -1.0, -0.5, 2.0];
        rows.extend(study(&mut DampedPendulum { c }, &case(format!("damped pendulum c={c}"), y0, vec![0.0, 2.5, 5.0, 10.0]))?);
    }
    // A learned field: the spiral demo trained for 300 iterations (seed 0), over the demo's
    // whole span from its true initial state.
    let mut trainer = crate::spiral::SpiralTrainer::new(crate::spiral::SpiralConfig { iters: 300, ..Default::default() })
        .map_err(|e| SolveError::InvalidStep(format!("spiral settings: {e:?}")))?;
    for _ in 0..300 {
        trainer.step()?;
    }
    let y0 = trainer.ys[0].to_vec();
    rows.extend(study(
        &mut CubedField::from_trained(&trainer.model),
        &case("learned spiral field".into(), y0, vec![0.0, 5.0, 12.5, 25.0]),
    )?);
    Ok(rows)
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| problem | rtol | method | gradient error | reconstruction drift | states kept | step records | backward f+VJP | ms |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let drift = r.reconstruction_error.map_or("-".to_string(), |d| format!("{d:.1e}"));
        s.push_str(&format!(
            "| {} | {:e} | {} | {:.1e} | {} | {} | {} | {} | {:.2} |\n",
            r.problem, r.rtol, r.method, r.grad_error, drift, r.stored_states, r.step_records, r.backward_work, r.ms
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cubed field's VJP in `y` against central differences of `a . f`.
    #[test]
    fn cubed_field_vjp_matches_central_differences() {
        let mut f = CubedField::from_trained(&crate::spiral::CubedMlp::init(1, 8));
        f.mlp.params.iter_mut().for_each(|p| *p = *p * 5.0 + 0.1);
        let (y, a) = (vec![0.7, -1.1], vec![0.4, -0.8]);
        let (mut ay, mut ap) = (vec![0.0; 2], f.param_zeros());
        f.vjp(0.0, &y, &a, &mut ay, &mut ap);
        let dot = |f: &mut CubedField, y: &Vec<f64>| {
            let mut d = vec![0.0; 2];
            f.eval(0.0, y, &mut d);
            d[0] * a[0] + d[1] * a[1]
        };
        for i in 0..2 {
            let (mut p, mut m) = (y.clone(), y.clone());
            p[i] += 1e-6;
            m[i] -= 1e-6;
            let fd = (dot(&mut f, &p) - dot(&mut f, &m)) / 2e-6;
            assert!((fd - ay[i]).abs() < 1e-7 * (1.0 + fd.abs()), "adj_y[{i}]: {fd} vs {}", ay[i]);
        }
        assert!(ap.iter().any(|g| *g != 0.0));
    }

    /// The pendulum's VJP against central differences of `c . f` in `y` and in `c`.
    #[test]
    fn pendulum_vjp_matches_central_differences() {
        let mut f = DampedPendulum { c: 0.7 };
        let (y, a) = (vec![0.4, -1.2], vec![0.3, 0.9]);
        let (mut ay, mut ap) = (vec![0.0; 2], vec![0.0]);
        f.vjp(0.0, &y, &a, &mut ay, &mut ap);
        let dot = |f: &mut DampedPendulum, y: &Vec<f64>| {
            let mut d = vec![0.0; 2];
            f.eval(0.0, y, &mut d);
            d[0] * a[0] + d[1] * a[1]
        };
        let h = 1e-6;
        for i in 0..2 {
            let (mut p, mut m) = (y.clone(), y.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (dot(&mut f, &p) - dot(&mut f, &m)) / (2.0 * h);
            assert!((fd - ay[i]).abs() < 1e-8, "adj_y[{i}]: {fd} vs {}", ay[i]);
        }
        let mut fp = DampedPendulum { c: 0.7 + h };
        let mut fm = DampedPendulum { c: 0.7 - h };
        let fd = (dot(&mut fp, &y) - dot(&mut fm, &y)) / (2.0 * h);
        assert!((fd - ap[0]).abs() < 1e-8, "adj_c: {fd} vs {}", ap[0]);
    }
}
