//! Events in the loop: located times against closed forms, jumps, terminal stops, per-row
//! independence, and gradients of event times and post-event states against central differences.

use nodal_solve::events::ball::{BouncingBall, height, impact_times};
use nodal_solve::events::{Action, Direction, EventKind, Events, solve_per_sample_with_events, solve_with_events};
use nodal_solve::grad::events::{EventVjp, HitCotangent, event_gradients};
use nodal_solve::tableau::{DOPRI5, TSIT5};
use nodal_solve::{Dynamics, FnDynamics, Record, RmsNorm, SolveOptions, VjpDynamics};

fn grid(t0: f64, t1: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| t0 + (t1 - t0) * i as f64 / (n - 1) as f64).collect()
}

#[test]
fn bounce_times_and_heights_match_the_closed_form() {
    let (h0, v0, g, e) = (1.0, 0.5, 9.81, 0.8);
    let exact = impact_times(h0, v0, g, e, 30);
    let t_end = exact[9] + 0.01; // ten bounces
    let ts = grid(0.0, t_end, 57);
    for tab in [&DOPRI5, &TSIT5] {
        let mut ball = BouncingBall::new(g, e);
        let opts = SolveOptions::new(tab).with_tol(1e-8, 1e-10);
        let sol = solve_with_events(&mut ball.clone(), &vec![h0, v0], &ts, &opts, &RmsNorm, &mut ball, Record::None).unwrap();
        assert_eq!(sol.hits.len(), 10, "{}", tab.name);
        for (k, hit) in sol.hits.iter().enumerate() {
            assert!((hit.t - exact[k]).abs() < 1e-10, "{} impact {k}: {} vs {}", tab.name, hit.t, exact[k]);
            assert!(hit.y_minus[0].abs() < 1e-10);
            let y_plus = hit.y_plus.as_ref().unwrap();
            assert!((y_plus[1] + e * hit.y_minus[1]).abs() < 1e-14);
        }
        for (t, y) in sol.solution.ts.iter().zip(&sol.solution.ys) {
            assert!((y[0] - height(*t, h0, v0, g, e)).abs() < 1e-9, "{} at t = {t}: {} vs {}", tab.name, y[0], height(*t, h0, v0, g, e));
        }
        assert!(sol.stopped().is_none());
    }
}

#[test]
fn a_terminal_event_ends_the_solve_at_the_event() {
    let mut ball = BouncingBall { impact: Action::Stop, ..BouncingBall::new(9.81, 0.8) };
    let ts = grid(0.0, 2.0, 21);
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-8, 1e-10);
    let sol = solve_with_events(&mut ball.clone(), &vec![1.0, 0.0], &ts, &opts, &RmsNorm, &mut ball, Record::None).unwrap();
    let t1 = impact_times(1.0, 0.0, 9.81, 0.8, 1)[0];
    let stop = sol.stopped().expect("stopped at the floor");
    assert!((stop.t - t1).abs() < 1e-12);
    assert_eq!(sol.solution.ys.len(), ts.iter().filter(|&&t| t <= t1).count());
    assert_eq!(sol.solution.ts.len(), sol.solution.ys.len());
}

/// `y' = -y` reaching one half (non-polynomial: the root is found on the interpolant and the
/// step landed on it), and a second event recorded without stopping.
struct Thresholds;
impl Events for Thresholds {
    fn count(&self) -> usize {
        2
    }
    fn kind(&self, e: usize) -> EventKind {
        match e {
            0 => EventKind { direction: Direction::Falling, action: Action::Record },
            _ => EventKind { direction: Direction::Either, action: Action::Stop },
        }
    }
    fn eval(&mut self, _lane: usize, _t: f64, y: &[f64], g: &mut [f64]) {
        g[0] = y[0] - 0.5;
        g[1] = y[0] - 0.1;
    }
    fn time_tolerance(&self) -> f64 {
        1e-14
    }
}

#[test]
fn events_of_a_smooth_solution_are_located_to_the_solver_tolerance() {
    let mut f = FnDynamics(|_t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| dy[0] = -y[0]);
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-12, 1e-14);
    let ts = grid(0.0, 5.0, 6);
    let sol = solve_with_events(&mut f, &vec![1.0], &ts, &opts, &RmsNorm, &mut Thresholds, Record::None).unwrap();
    assert_eq!(sol.hits.len(), 2);
    assert_eq!((sol.hits[0].event, sol.hits[0].action), (0, Action::Record));
    assert!((sol.hits[0].t - 2f64.ln()).abs() < 1e-10, "{}", sol.hits[0].t);
    assert!((sol.hits[1].t - 10f64.ln()).abs() < 1e-10, "{}", sol.hits[1].t);
    // Outputs at 1 and 2 reached, the solve stopped at ln 10 < 3.
    assert_eq!(sol.solution.ys.len(), 3);
    assert!((sol.solution.ys[2][0] - (-2f64).exp()).abs() < 1e-10);
}

#[test]
fn per_row_events_in_one_batch_equal_rows_solved_alone() {
    let (g, e) = (9.81, 0.7);
    let y0 = [1.0, 0.0, 2.5, 1.0, 0.3, -2.0];
    let ts: Vec<Vec<f64>> = (0..3).map(|_| grid(0.0, 3.0, 31)).collect();
    let opts = SolveOptions::new(&DOPRI5).with_tol(1e-7, 1e-9);
    let mut ball = BouncingBall::new(g, e);
    let batch = solve_per_sample_with_events(&mut ball.clone(), RmsNorm, &y0, 2, &ts, &opts, &mut ball, Record::None).unwrap();
    for r in 0..3 {
        let row = &y0[2 * r..2 * r + 2];
        let alone = solve_per_sample_with_events(&mut ball.clone(), RmsNorm, row, 2, &ts[..1], &opts, &mut ball, Record::None).unwrap();
        assert_eq!(batch.hits[r], alone.hits[0], "row {r}: the same events, bit for bit");
        for (k, y) in batch.rows.ys.iter().enumerate() {
            assert_eq!(&y[2 * r..2 * r + 2], &alone.rows.ys[k][..], "row {r} output {k}");
        }
        let exact = impact_times(row[0], row[1], g, e, batch.hits[r].len());
        for (hit, t) in batch.hits[r].iter().zip(exact) {
            assert!((hit.t - t).abs() < 1e-10);
        }
        // The joint solve of the same row agrees to round-off.
        let joint = solve_with_events(&mut ball.clone(), &row.to_vec(), &ts[0], &opts, &RmsNorm, &mut ball, Record::None).unwrap();
        for (a, b) in joint.hits.iter().zip(&batch.hits[r]) {
            assert!((a.t - b.t).abs() < 1e-12);
        }
    }
    assert!(batch.hits[1].len() != batch.hits[2].len() || batch.hits[0].len() != batch.hits[1].len(), "rows bounce on their own schedules");

    // A terminal impact stops its own row only.
    let mut stop_ball = BouncingBall { impact: Action::Stop, ..ball };
    let stopped = solve_per_sample_with_events(&mut ball.clone(), RmsNorm, &y0, 2, &ts, &opts, &mut stop_ball, Record::None).unwrap();
    for r in 0..3 {
        let t1 = impact_times(y0[2 * r], y0[2 * r + 1], g, e, 1)[0];
        assert_eq!(stopped.reached[r], ts[r].iter().filter(|&&t| t <= t1).count());
        assert!(stopped.rows.ys[stopped.reached[r]][2 * r].is_nan(), "outputs after a row's stop are NaN");
        assert!(stopped.rows.row_status[r].is_none());
    }
}

/// Loss: a weighted sum of the outputs, the event states and the event times.
struct Loss {
    weights: Vec<[f64; 2]>,
    time_weights: Vec<f64>,
}

impl Loss {
    fn value(&self, ys: &[Vec<f64>], hits: &[nodal_solve::events::EventHit]) -> f64 {
        let mut l = 0.0;
        for (w, y) in self.weights.iter().zip(ys) {
            l += w[0] * y[0] + w[1] * y[1];
        }
        for (w, h) in self.time_weights.iter().zip(hits) {
            l += w * h.t + 0.3 * w * h.y_minus[1];
        }
        l
    }
}

fn ball_loss_and_gradient(theta: [f64; 4], loss: &Loss, ts: &[f64], tab: &'static nodal_solve::Tableau) -> (f64, Vec<f64>) {
    let [h0, v0, g, e] = theta;
    let mut ball = BouncingBall::new(g, e);
    let opts = SolveOptions::new(tab).with_tol(1e-9, 1e-11);
    let sol = solve_with_events(&mut ball.clone(), &vec![h0, v0], ts, &opts, &RmsNorm, &mut ball, Record::Every(1)).unwrap();
    let ybar: Vec<Vec<f64>> = loss.weights.iter().take(sol.solution.ys.len()).map(|w| w.to_vec()).collect();
    let bars: Vec<HitCotangent> = (0..sol.hits.len())
        .map(|k| {
            let w = loss.time_weights.get(k).copied().unwrap_or(0.0);
            HitCotangent { t: w, y: vec![0.0, 0.3 * w] }
        })
        .collect();
    let mut f = ball;
    let grads = event_gradients(&mut f, &mut ball, 0, &opts, sol.tape.as_ref().unwrap(), &sol.hits, &vec![h0, v0], &ybar, &bars).unwrap();
    (loss.value(&sol.solution.ys, &sol.hits), vec![grads.y0[0], grads.y0[1], grads.params[0], grads.params[1]])
}

#[test]
fn gradients_through_bounces_equal_central_differences() {
    let ts = grid(0.0, 2.2, 23);
    let loss = Loss {
        weights: (0..ts.len()).map(|k| [((k * 7 % 5) as f64 - 2.0) * 0.3, ((k * 3 % 4) as f64 - 1.5) * 0.2]).collect(),
        time_weights: vec![0.7, -1.1, 0.4],
    };
    let theta = [1.0, 0.5, 9.81, 0.8];
    for tab in [&DOPRI5, &TSIT5] {
        let (_, grad) = ball_loss_and_gradient(theta, &loss, &ts, tab);
        for i in 0..4 {
            let eps = 1e-6 * theta[i].abs().max(1.0);
            let mut p = theta;
            p[i] += eps;
            let (lp, _) = ball_loss_and_gradient(p, &loss, &ts, tab);
            p[i] -= 2.0 * eps;
            let (lm, _) = ball_loss_and_gradient(p, &loss, &ts, tab);
            let fd = (lp - lm) / (2.0 * eps);
            assert!((grad[i] - fd).abs() <= 1e-6 * fd.abs().max(1.0), "{} d/dtheta[{i}]: {} vs {fd}", tab.name, grad[i]);
        }
    }
}

/// A damped pendulum whose swing up through `angle = 0.1` is an event that kicks the velocity
/// by a factor `k`: nonlinear flight, so the `a · f` terms matter.
#[derive(Clone, Copy)]
struct KickedPendulum {
    w2: f64,
    kick: f64,
}
impl Dynamics<Vec<f64>> for KickedPendulum {
    fn eval(&mut self, _t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        dy[0] = y[1];
        dy[1] = -self.w2 * y[0].sin() - 0.1 * y[1];
    }
}
impl VjpDynamics<Vec<f64>> for KickedPendulum {
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        vec![0.0; 2]
    }
    fn vjp(&mut self, _t: f64, y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        adj_y[0] = -self.w2 * y[0].cos() * a[1];
        adj_y[1] = a[0] - 0.1 * a[1];
        adj_p[0] -= y[0].sin() * a[1];
    }
}
impl Events for KickedPendulum {
    fn count(&self) -> usize {
        1
    }
    fn kind(&self, _e: usize) -> EventKind {
        EventKind { direction: Direction::Rising, action: Action::Jump }
    }
    fn eval(&mut self, _lane: usize, _t: f64, y: &[f64], g: &mut [f64]) {
        g[0] = y[0] - 0.1;
    }
    fn jump(&mut self, _lane: usize, _e: usize, _t: f64, y: &mut [f64]) {
        y[1] *= self.kick;
    }
    fn time_tolerance(&self) -> f64 {
        1e-14
    }
}
impl EventVjp for KickedPendulum {
    fn grad(&mut self, _lane: usize, _e: usize, _t: f64, _y: &[f64], gy: &mut [f64]) -> f64 {
        gy[0] = 1.0;
        gy[1] = 0.0;
        0.0
    }
    fn jump_vjp(&mut self, _lane: usize, _e: usize, _t: f64, y_minus: &[f64], a_plus: &[f64], a_minus: &mut [f64], pbar: &mut [f64]) {
        a_minus[0] = a_plus[0];
        a_minus[1] = self.kick * a_plus[1];
        pbar[1] += y_minus[1] * a_plus[1];
    }
}

#[test]
fn gradients_through_nonlinear_jumps_equal_central_differences() {
    let ts = grid(0.0, 6.0, 13);
    let weights: Vec<[f64; 2]> = (0..ts.len()).map(|k| [((k % 3) as f64 - 1.0) * 0.5, ((k % 4) as f64 - 1.5) * 0.25]).collect();
    let run = |theta: [f64; 4]| {
        let mut p = KickedPendulum { w2: theta[2], kick: theta[3] };
        let opts = SolveOptions::new(&DOPRI5).with_tol(1e-11, 1e-13);
        let sol = solve_with_events(&mut p.clone(), &vec![theta[0], theta[1]], &ts, &opts, &RmsNorm, &mut p, Record::Every(1)).unwrap();
        assert!(sol.hits.len() >= 2, "the pendulum swings through the bottom: {:?}", sol.hits);
        let mut l: f64 = weights.iter().zip(&sol.solution.ys).map(|(w, y)| w[0] * y[0] + w[1] * y[1]).sum();
        l += 0.9 * sol.hits[1].t;
        let ybar: Vec<Vec<f64>> = weights.iter().map(|w| w.to_vec()).collect();
        let bars: Vec<HitCotangent> = (0..sol.hits.len()).map(|k| HitCotangent { t: if k == 1 { 0.9 } else { 0.0 }, y: vec![] }).collect();
        let mut f = p;
        let g = event_gradients(&mut f, &mut p, 0, &opts, sol.tape.as_ref().unwrap(), &sol.hits, &vec![theta[0], theta[1]], &ybar, &bars)
            .unwrap();
        (l, [g.y0[0], g.y0[1], g.params[0], g.params[1]])
    };
    let theta = [1.2, 0.0, 4.0, 0.9];
    let (_, grad) = run(theta);
    for i in 0..4 {
        let eps = 1e-5;
        let mut p = theta;
        p[i] += eps;
        let lp = run(p).0;
        p[i] -= 2.0 * eps;
        let lm = run(p).0;
        let fd = (lp - lm) / (2.0 * eps);
        assert!((grad[i] - fd).abs() <= 1e-5 * fd.abs().max(1.0), "d/dtheta[{i}]: {} vs {fd}", grad[i]);
    }
}
