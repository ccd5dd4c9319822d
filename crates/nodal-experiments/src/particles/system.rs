//! The physical system: particles in the plane joined pairwise by springs of rest length `L`,
//! with mean-field coupling (every spring's stiffness is `k / N`, so the force on a particle
//! stays of the same size whatever the number of particles `N`):
//!
//! ```text
//! q̇ᵢ = vᵢ,     v̇ᵢ = (k / N) Σ_{j ≠ i} (|rᵢⱼ| - L) rᵢⱼ / |rᵢⱼ|,     rᵢⱼ = qⱼ - qᵢ
//! ```
//!
//! The total energy `Σ |vᵢ|² / 2 + (k / 2N) Σ_{i<j} (|rᵢⱼ| - L)²` and the momentum are
//! conserved. A state is `[batch][N][4]` row-major, each particle `[x, y, vx, vy]`. Reference
//! trajectories come from nodal's dopri5 at `rtol = 1e-10`, checked against the two-body closed
//! form (the distance oscillates as `L + (d₀ - L) cos(√k t)` for `N = 2` without rotation).

use nodal_solve::tableau::DOPRI5;
use nodal_solve::{FnDynamics, RmsNorm, SolveError, SolveOptions, solve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// Features per particle: position and velocity.
pub const FEATURES: usize = 4;

/// The spring system. See the module docs.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Springs {
    /// Total stiffness `k` (each spring has `k / N`).
    pub stiffness: f64,
    /// Rest length `L`.
    pub rest_length: f64,
}

impl Default for Springs {
    fn default() -> Self {
        Self { stiffness: 4.0, rest_length: 1.0 }
    }
}

impl Springs {
    /// `dy/dt` for a batch of `n`-particle states `y` (`[batch][n][4]`).
    pub fn derivative(&self, n: usize, y: &[f64], dy: &mut [f64]) {
        let c = self.stiffness / n as f64;
        for (sample, out) in y.chunks(n * FEATURES).zip(dy.chunks_mut(n * FEATURES)) {
            for i in 0..n {
                let (xi, yi) = (sample[i * FEATURES], sample[i * FEATURES + 1]);
                let (mut ax, mut ay) = (0.0, 0.0);
                for j in 0..n {
                    if j == i {
                        continue;
                    }
                    let (rx, ry) = (sample[j * FEATURES] - xi, sample[j * FEATURES + 1] - yi);
                    let d = (rx * rx + ry * ry).sqrt();
                    if d > 1e-12 {
                        let s = c * (d - self.rest_length) / d;
                        ax += s * rx;
                        ay += s * ry;
                    }
                }
                out[i * FEATURES] = sample[i * FEATURES + 2];
                out[i * FEATURES + 1] = sample[i * FEATURES + 3];
                out[i * FEATURES + 2] = ax;
                out[i * FEATURES + 3] = ay;
            }
        }
    }

    /// Total energy of each sample of `y`.
    pub fn energy(&self, n: usize, y: &[f64]) -> Vec<f64> {
        let c = self.stiffness / n as f64;
        y.chunks(n * FEATURES)
            .map(|s| {
                let mut e = 0.0;
                for i in 0..n {
                    e += 0.5 * (s[i * FEATURES + 2].powi(2) + s[i * FEATURES + 3].powi(2));
                    for j in i + 1..n {
                        let d = ((s[j * FEATURES] - s[i * FEATURES]).powi(2) + (s[j * FEATURES + 1] - s[i * FEATURES + 1]).powi(2)).sqrt();
                        e += 0.5 * c * (d - self.rest_length).powi(2);
                    }
                }
                e
            })
            .collect()
    }

    /// The states at `ts` from `y0` (a batch of `n`-particle states), dopri5 at `rtol = 1e-10`,
    /// `atol = 1e-12`.
    pub fn simulate(&self, n: usize, y0: &[f64], ts: &[f64]) -> Result<Vec<Vec<f64>>, SolveError> {
        let opts = SolveOptions::new(&DOPRI5).with_tol(1e-10, 1e-12).with_max_steps(1_000_000);
        let mut f = FnDynamics(|_t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| self.derivative(n, y, dy));
        solve(&mut f, &y0.to_vec(), ts, &opts, &RmsNorm).map(|s| s.ys).map_err(|f| f.error)
    }
}

/// `count` initial states of `n` particles: positions uniform in a disc of radius 1.5,
/// velocities normal with standard deviation 0.5, less their mean (no drift of the centre).
pub fn initial_states(n: usize, count: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n as u64);
    let mut out = Vec::with_capacity(count * n * FEATURES);
    for _ in 0..count {
        let start = out.len();
        for _ in 0..n {
            let (x, y) = loop {
                let (x, y) = (rng.gen_range(-1.5..1.5), rng.gen_range(-1.5..1.5));
                if x * x + y * y <= 2.25 {
                    break (x, y);
                }
            };
            let vx: f64 = StandardNormal.sample(&mut rng);
            let vy: f64 = StandardNormal.sample(&mut rng);
            out.extend_from_slice(&[x, y, 0.5 * vx, 0.5 * vy]);
        }
        for k in 2..FEATURES {
            let mean = (0..n).map(|i| out[start + i * FEATURES + k]).sum::<f64>() / n as f64;
            (0..n).for_each(|i| out[start + i * FEATURES + k] -= mean);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_bodies_follow_the_closed_form() {
        let s = Springs::default();
        // Along the x axis, at rest, distance 1.6: d(t) = L + 0.6 cos(√k t).
        let y0 = [-0.8, 0.0, 0.0, 0.0, 0.8, 0.0, 0.0, 0.0];
        let ts: Vec<f64> = (0..=20).map(|i| 0.25 * i as f64).collect();
        let ys = s.simulate(2, &y0, &ts).unwrap();
        for (t, y) in ts.iter().zip(&ys) {
            let d = y[4] - y[0];
            let exact = 1.0 + 0.6 * (s.stiffness.sqrt() * t).cos();
            assert!((d - exact).abs() < 1e-8, "t = {t}: {d} vs {exact}");
        }
    }

    #[test]
    fn energy_and_momentum_are_conserved() {
        let s = Springs::default();
        for n in [5, 12] {
            let y0 = initial_states(n, 3, 7);
            let ys = s.simulate(n, &y0, &[0.0, 3.0]).unwrap();
            for (e0, e1) in s.energy(n, &ys[0]).iter().zip(s.energy(n, &ys[1])) {
                assert!((e0 - e1).abs() < 1e-8 * e0.abs().max(1.0), "{n} particles: {e0} -> {e1}");
            }
            for sample in ys[1].chunks(n * FEATURES) {
                let px: f64 = (0..n).map(|i| sample[i * FEATURES + 2]).sum();
                assert!(px.abs() < 1e-9, "momentum {px}");
            }
        }
    }
}
