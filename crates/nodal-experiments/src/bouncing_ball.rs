//! Learning a hybrid system: gravity `g` and restitution `e` of a bouncing ball, from noisy
//! observed heights, by gradient descent through a solve with events.
//!
//! The data are heights of a ball dropped from `(h0, v0)` (known), observed at evenly spaced
//! times with Gaussian noise, simulated by nodal itself (events located on the interpolant and
//! landed on; the flight is a parabola, which the Runge-Kutta steps integrate exactly, so the
//! simulated impacts equal the closed form to round-off). The model is the same ball with
//! unknown `(g, e)`, parameterised as `g = exp(γ)` and `e = sigmoid(ρ)` so both stay in range.
//! The loss is the mean squared height error; its gradient goes through every bounce: the
//! discrete adjoint of the steps, the impact's velocity jump, and the implicit-function-theorem
//! term for the impact times ([`nodal::solve::grad::events`]). Adam minimises it, with the
//! observation window growing from the first bounce to the whole span over the first third of
//! the iterations (fitting the first flights first keeps later bounces from being matched to
//! the wrong impacts).

use crate::flat_optim::FlatOptimizer;
use nodal::solve::events::ball::{BouncingBall, impact_times, zeno_time};
use nodal::solve::events::solve_with_events;
use nodal::solve::grad::events::event_gradients;
use nodal::solve::tableau::DOPRI5;
use nodal::solve::{Record, RmsNorm, SolveError, SolveOptions};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

/// Everything a run depends on.
#[derive(Debug, Clone, Serialize)]
pub struct BallConfig {
    /// True gravity.
    pub gravity: f64,
    /// True restitution.
    pub restitution: f64,
    /// Initial height (known).
    pub h0: f64,
    /// Initial velocity (known).
    pub v0: f64,
    /// End of the observed span.
    pub t_end: f64,
    /// Observations, evenly spaced on `(0, t_end]`.
    pub observations: usize,
    /// Standard deviation of the observation noise.
    pub noise: f64,
    /// Seed of the noise.
    pub seed: u64,
    /// Initial guess for gravity.
    pub init_gravity: f64,
    /// Initial guess for restitution.
    pub init_restitution: f64,
    /// Adam iterations.
    pub iters: usize,
    /// Adam learning rate at the first iteration (on `ln g` and `logit e`).
    pub lr: f64,
    /// Factor the learning rate decays by per iteration.
    pub lr_decay: f64,
    /// Solver tolerances (dopri5).
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
}

impl Default for BallConfig {
    fn default() -> Self {
        Self {
            gravity: 9.81,
            restitution: 0.8,
            h0: 1.0,
            v0: 0.0,
            t_end: 3.0,
            observations: 100,
            noise: 0.01,
            seed: 0,
            init_gravity: 7.0,
            init_restitution: 0.6,
            iters: 400,
            lr: 0.05,
            lr_decay: 0.99,
            rtol: 1e-8,
            atol: 1e-10,
        }
    }
}

impl BallConfig {
    /// Reject settings that cannot run.
    pub fn validate(&self) -> Result<(), String> {
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("{name} must be positive and finite, got {v}")) }
        };
        pos("gravity", self.gravity)?;
        pos("init-gravity", self.init_gravity)?;
        pos("t-end", self.t_end)?;
        pos("lr", self.lr)?;
        for (name, e) in [("restitution", self.restitution), ("init-restitution", self.init_restitution)] {
            if !(e > 0.0 && e < 1.0) {
                return Err(format!("{name} must be in (0, 1), got {e}"));
            }
        }
        if !(self.h0.is_finite() && self.h0 > 0.0 && self.v0.is_finite()) {
            return Err(format!("the ball must start above the floor with a finite velocity, got h0 = {}, v0 = {}", self.h0, self.v0));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(format!("noise must be >= 0, got {}", self.noise));
        }
        if self.observations < 2 {
            return Err("at least 2 observations are needed".into());
        }
        if self.iters == 0 {
            return Err("iters must be at least 1".into());
        }
        // The span must end before the bounces accumulate (the model has no resting contact).
        let zeno = zeno_time(self.h0, self.v0, self.gravity, self.restitution);
        if self.t_end >= 0.95 * zeno {
            return Err(format!(
                "t-end {} is too close to where the true bounces accumulate (t = {zeno:.3}): shorten the span",
                self.t_end
            ));
        }
        Ok(())
    }

    fn options(&self) -> SolveOptions {
        SolveOptions::new(&DOPRI5).with_tol(self.rtol, self.atol).with_max_steps(100_000)
    }
}

/// Observed heights.
#[derive(Debug, Clone, Serialize)]
pub struct BallData {
    /// Output grid: `0` then the observation times.
    pub ts: Vec<f64>,
    /// Noisy heights at `ts[1..]`.
    pub observed: Vec<f64>,
    /// Noise-free heights at `ts[1..]`.
    pub clean: Vec<f64>,
    /// The true impact times inside the span.
    pub impacts: Vec<f64>,
}

/// A solve of the ball with `(g, e)` on `ts`: heights at `ts` and impact times.
fn simulate(cfg: &BallConfig, ts: &[f64], g: f64, e: f64) -> Result<(Vec<f64>, Vec<f64>), SolveError> {
    let mut ball = BouncingBall::new(g, e);
    let sol = solve_with_events(&mut ball.clone(), &vec![cfg.h0, cfg.v0], ts, &cfg.options(), &RmsNorm, &mut ball, Record::None)
        .map_err(|f| f.error)?;
    Ok((sol.solution.ys.iter().map(|y| y[0]).collect(), sol.hits.iter().map(|h| h.t).collect()))
}

impl BallData {
    /// Simulate the true ball and add noise.
    pub fn generate(cfg: &BallConfig) -> Result<Self, SolveError> {
        let ts: Vec<f64> = (0..=cfg.observations).map(|i| cfg.t_end * i as f64 / cfg.observations as f64).collect();
        let (heights, impacts) = simulate(cfg, &ts, cfg.gravity, cfg.restitution)?;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let normal = Normal::new(0.0, cfg.noise.max(f64::MIN_POSITIVE)).expect("positive std");
        let clean = heights[1..].to_vec();
        let observed = clean.iter().map(|h| h + if cfg.noise > 0.0 { normal.sample(&mut rng) } else { 0.0 }).collect();
        Ok(Self { ts, observed, clean, impacts })
    }
}

/// One training iteration.
#[derive(Debug, Clone, Serialize)]
pub struct BallIter {
    /// Iteration (from 0).
    pub iter: usize,
    /// Mean squared height error over the observations in the window.
    pub loss: f64,
    /// End of the observation window used.
    pub window: f64,
    /// Gravity before the update.
    pub gravity: f64,
    /// Restitution before the update.
    pub restitution: f64,
    /// `dL/dg`.
    pub grad_gravity: f64,
    /// `dL/de`.
    pub grad_restitution: f64,
    /// Impacts the model hit in the window.
    pub impacts: usize,
}

/// The fitted ball.
#[derive(Debug, Clone, Serialize)]
pub struct BallFit {
    /// Learned gravity.
    pub gravity: f64,
    /// Learned restitution.
    pub restitution: f64,
    /// Mean squared error of the learned heights against the observations (whole span).
    pub loss: f64,
    /// Its value with the true parameters (the noise floor).
    pub loss_at_truth: f64,
    /// Impact times of the learned ball inside the span.
    pub impacts: Vec<f64>,
    /// Iterations run.
    pub iterations: usize,
}

/// Loss over the observations up to `window` and its gradient in `(g, e)`.
fn loss_and_grad(cfg: &BallConfig, data: &BallData, g: f64, e: f64, window: f64) -> Result<(f64, [f64; 2], usize), SolveError> {
    let mut ball = BouncingBall::new(g, e);
    let opts = cfg.options();
    let y0 = vec![cfg.h0, cfg.v0];
    let sol = solve_with_events(&mut ball.clone(), &y0, &data.ts, &opts, &RmsNorm, &mut ball, Record::Every(1)).map_err(|f| f.error)?;
    let used: Vec<bool> = data.ts[1..].iter().map(|&t| t <= window).collect();
    let n_used = used.iter().filter(|&&u| u).count().max(1) as f64;
    let mut loss = 0.0;
    let mut ybar = vec![vec![0.0, 0.0]; sol.solution.ys.len()];
    for (k, y) in sol.solution.ys.iter().enumerate().skip(1) {
        if used[k - 1] {
            let r = y[0] - data.observed[k - 1];
            loss += r * r / n_used;
            ybar[k][0] = 2.0 * r / n_used;
        }
    }
    let tape = sol.tape.as_ref().expect("recorded");
    let mut f = ball;
    let grads = event_gradients(&mut f, &mut ball, 0, &opts, tape, &sol.hits, &y0, &ybar, &[])?;
    let impacts = sol.hits.iter().filter(|h| h.t <= window).count();
    Ok((loss, [grads.params[0], grads.params[1]], impacts))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Fit `(g, e)` to `data`; `on_iter` sees every iteration.
pub fn fit(cfg: &BallConfig, data: &BallData, mut on_iter: impl FnMut(&BallIter)) -> Result<BallFit, SolveError> {
    let mut theta = [cfg.init_gravity.ln(), (cfg.init_restitution / (1.0 - cfg.init_restitution)).ln()];
    let mut adam = FlatOptimizer::adam(2, cfg.lr);
    let first = impact_times(cfg.h0, cfg.v0, cfg.init_gravity, cfg.init_restitution, 1)[0];
    let ramp = (cfg.iters / 3).max(1);
    for it in 0..cfg.iters {
        let (g, e) = (theta[0].exp(), sigmoid(theta[1]));
        // The window grows from just past the first (guessed) impact to the whole span.
        let start = (1.5 * first).min(cfg.t_end);
        let window = start + (cfg.t_end - start) * (it as f64 / ramp as f64).min(1.0);
        let (loss, grad, impacts) = loss_and_grad(cfg, data, g, e, window)?;
        on_iter(&BallIter {
            iter: it,
            loss,
            window,
            gravity: g,
            restitution: e,
            grad_gravity: grad[0],
            grad_restitution: grad[1],
            impacts,
        });
        let gtheta = [grad[0] * g, grad[1] * e * (1.0 - e)];
        adam.lr = cfg.lr * cfg.lr_decay.powi(it.saturating_sub(ramp) as i32);
        adam.step(&mut theta, &gtheta);
    }
    let (g, e) = (theta[0].exp(), sigmoid(theta[1]));
    let (loss, _, _) = loss_and_grad(cfg, data, g, e, cfg.t_end)?;
    let (loss_at_truth, _, _) = loss_and_grad(cfg, data, cfg.gravity, cfg.restitution, cfg.t_end)?;
    let (_, impacts) = simulate(cfg, &data.ts, g, e)?;
    Ok(BallFit { gravity: g, restitution: e, loss, loss_at_truth, impacts, iterations: cfg.iters })
}

/// Heights of the ball with `(g, e)` on a fine grid over the span, or up to just before its
/// impacts accumulate if that comes first (for figures).
pub fn trajectory(cfg: &BallConfig, g: f64, e: f64, points: usize) -> Result<(Vec<f64>, Vec<f64>), SolveError> {
    let end = cfg.t_end.min(0.98 * zeno_time(cfg.h0, cfg.v0, g, e));
    let ts: Vec<f64> = (0..points).map(|i| end * i as f64 / (points - 1) as f64).collect();
    let (h, _) = simulate(cfg, &ts, g, e)?;
    Ok((ts, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_impacts_equal_the_closed_form() {
        let cfg = BallConfig::default();
        let data = BallData::generate(&cfg).unwrap();
        let exact = impact_times(cfg.h0, cfg.v0, cfg.gravity, cfg.restitution, data.impacts.len());
        assert!(data.impacts.len() >= 5);
        for (a, b) in data.impacts.iter().zip(exact) {
            assert!((a - b).abs() < 1e-10);
        }
    }

    #[test]
    fn the_default_fit_recovers_gravity_and_restitution_within_one_percent() {
        let cfg = BallConfig::default();
        let data = BallData::generate(&cfg).unwrap();
        let fit = fit(&cfg, &data, |_| {}).unwrap();
        let (eg, ee) = ((fit.gravity / cfg.gravity - 1.0).abs(), (fit.restitution / cfg.restitution - 1.0).abs());
        assert!(eg < 0.01 && ee < 0.01, "g = {}, e = {}", fit.gravity, fit.restitution);
        // The fit reaches the noise floor (the true parameters' error).
        assert!(fit.loss <= fit.loss_at_truth * 1.01, "{} vs {}", fit.loss, fit.loss_at_truth);
    }

    #[test]
    fn impossible_settings_are_rejected() {
        let cfg = BallConfig { restitution: 1.2, ..BallConfig::default() };
        assert!(cfg.validate().is_err());
        let cfg = BallConfig { t_end: 10.0, ..BallConfig::default() };
        assert!(cfg.validate().unwrap_err().contains("accumulate"));
    }
}
