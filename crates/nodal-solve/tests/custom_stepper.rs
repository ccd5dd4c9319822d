//! A new method plugs into the one loop without touching it: the Heun-Euler pair written by hand
//! as a [`Stepper`] (no tableau), run in joint and per-sample mode through `diffeqsolve`, gives
//! bit for bit what the built-in `heun` tableau gives, and converges at order 2.

use nodal_solve::controller::{Adaptive, ConstantStep, PidController};
use nodal_solve::lanes::{Evaluate, FnRows, LaneArith, Lanes, Rows};
use nodal_solve::stepper::Workspace;
use nodal_solve::tableau::HEUN;
use nodal_solve::{Controller, FnDynamics, Joint, Limits, Record, RmsNorm, SaveAt, SolveOptions, Stepper, diffeqsolve, solve};

/// Heun's method with Euler as the embedded estimate: `k1 = f(t, y)`, `k2 = f(t + h, y + h k1)`,
/// `y1 = y + h (k1 + k2) / 2`, `err = h (k2 - k1) / 2`; cubic Hermite output.
struct HandHeun;

impl Stepper for HandHeun {
    fn name(&self) -> &'static str {
        "hand-heun"
    }
    fn order(&self) -> u32 {
        2
    }
    fn has_error_estimate(&self) -> bool {
        true
    }
    /// `k = [k1, k2, f(t1, y1)]`, `scratch = [err, zero]`.
    fn buffers(&self) -> (usize, usize) {
        (3, 2)
    }
    fn step<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        lanes.lincomb(&mut ws.ytmp, &ws.y, hs, &[1.0], &ws.k[..1]);
        ws.times.clear();
        ws.times.extend(ts.iter().zip(hs).map(|(t, h)| t + h));
        lanes.eval(&ws.times, &ws.ytmp, &mut ws.k[1]);
        lanes.lincomb(&mut ws.y1, &ws.y, hs, &[0.5, 0.5], &ws.k[..2]);
        1
    }
    fn error_ratios<L: Lanes>(&self, lanes: &L, ws: &mut Workspace<L::Buf>, hs: &[f64], rtol: f64, atol: f64, out: &mut [f64]) {
        let (err, zero) = ws.scratch.split_at_mut(1);
        lanes.lincomb(&mut err[0], &zero[0], hs, &[-0.5, 0.5], &ws.k[..2]);
        lanes.error_ratios(&err[0], &ws.y, &ws.y1, rtol, atol, out);
    }
    fn prepare_dense<L: Evaluate>(&self, lanes: &mut L, ws: &mut Workspace<L::Buf>, ts: &[f64], hs: &[f64]) -> usize {
        ws.times.clear();
        ws.times.extend(ts.iter().zip(hs).map(|(t, h)| t + h));
        lanes.eval(&ws.times, &ws.y1, &mut ws.k[2]);
        1
    }
    fn interpolate<A: LaneArith>(&self, arith: &A, ws: &mut Workspace<A::Buf>, j: usize, theta: f64, h: f64) {
        let (y0, y1, k0, f1) = (&ws.y, &ws.y1, &ws.k[0], &ws.k[2]);
        hermite(arith, j, theta, h, [y0, y1, k0, f1], &mut ws.out);
    }
    fn end_derivative(&self, dense_ready: bool) -> Option<usize> {
        dense_ready.then_some(2)
    }
    fn dense_slots(&self, out: &mut Vec<usize>) {
        out.clear();
        out.extend([0, 2]);
    }
    fn interpolate_stored<A: LaneArith>(
        &self,
        arith: &A,
        j: usize,
        theta: f64,
        h: f64,
        y0: &A::Buf,
        y1: &A::Buf,
        ks: &[A::Buf],
        out: &mut A::Buf,
    ) {
        hermite(arith, j, theta, h, [y0, y1, &ks[0], &ks[1]], out);
    }
}

fn hermite<A: LaneArith>(arith: &A, j: usize, theta: f64, h: f64, x: [&A::Buf; 4], out: &mut A::Buf) {
    let (t2, t3) = (theta * theta, theta * theta * theta);
    let w = [2.0 * t3 - 3.0 * t2 + 1.0, -2.0 * t3 + 3.0 * t2, h * (t3 - 2.0 * t2 + theta), h * (t3 - t2)];
    arith.combine4_lane(j, out, w, x);
}

fn rhs(t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
    dy[0] = -y[0] + t.sin();
    dy[1] = y[0] - 0.5 * y[1];
}

fn run_joint<C: Controller>(control: &C, ts: &[f64]) -> (Vec<Vec<f64>>, nodal_solve::Stats) {
    let mut f = FnDynamics(rhs);
    let mut lanes = Joint::new(&mut f, &RmsNorm, &vec![1.0, 0.0], None);
    let limits = Limits { max_steps: 100_000, ..Limits::default() };
    let res = diffeqsolve(&mut lanes, &HandHeun, control, &SaveAt::times(ts), &limits, Record::None).unwrap();
    assert!(res[0].status.is_none());
    (lanes.ys, res[0].stats)
}

#[test]
fn a_hand_written_stepper_matches_the_heun_tableau_bit_for_bit() {
    let ts = [0.0, 0.33, 1.0, 2.5];
    let pid = PidController::default();
    let adaptive = Adaptive { rtol: 1e-5, atol: 1e-7, pid, first_step: None, dt_min: 0.0, dt_max: f64::INFINITY };
    let (ys, stats) = run_joint(&adaptive, &ts);
    let mut f = FnDynamics(rhs);
    let builtin =
        solve(&mut f, &vec![1.0, 0.0], &ts, &SolveOptions::new(&HEUN).with_tol(1e-5, 1e-7).with_max_steps(100_000), &RmsNorm).unwrap();
    assert_eq!(ys, builtin.ys);
    assert_eq!((stats.accepted, stats.rejected, stats.nfe), (builtin.stats.accepted, builtin.stats.rejected, builtin.stats.nfe));

    let (ys, _) = run_joint(&ConstantStep { h: 0.01 }, &ts);
    let mut f = FnDynamics(rhs);
    let builtin = solve(&mut f, &vec![1.0, 0.0], &ts, &SolveOptions::new(&HEUN).with_fixed_step(0.01), &RmsNorm).unwrap();
    assert_eq!(ys, builtin.ys);
}

#[test]
fn a_hand_written_stepper_runs_per_sample_and_converges_at_order_2() {
    // y' = -y per row, two rows with their own grids.
    let mut f = FnRows(|_t: &[f64], y: &[f64], dy: &mut [f64]| dy.iter_mut().zip(y).for_each(|(d, v)| *d = -v));
    let grids = vec![vec![0.0, 0.5, 1.0], vec![0.0, 0.7, 2.0]];
    let mut errs = Vec::new();
    for h in [0.02, 0.01, 0.005] {
        let mut lanes = Rows::new(&mut f, RmsNorm, &[1.0, 2.0], 1, 3);
        let limits = Limits { max_steps: 10_000, ..Limits::default() };
        let res = diffeqsolve(&mut lanes, &HandHeun, &ConstantStep { h }, &SaveAt::per_lane(&grids), &limits, Record::None).unwrap();
        assert!(res.iter().all(|r| r.status.is_none()));
        let e0 = (lanes.ys[2][0] - (-1.0f64).exp()).abs();
        let e1 = (lanes.ys[2][1] - 2.0 * (-2.0f64).exp()).abs();
        errs.push(e0.max(e1));
    }
    for w in errs.windows(2) {
        let order = (w[0] / w[1]).log2();
        assert!((order - 2.0).abs() < 0.3, "observed order {order} from errors {errs:?}");
    }
}
