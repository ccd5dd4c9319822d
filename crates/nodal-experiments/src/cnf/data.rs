//! The five 2-D toy densities of the FFJORD and RNODE papers, with the sampling formulas of the
//! shared anchor (so that nodal and torchdiffeq train on the same distributions; the random
//! streams differ, the distributions do not).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::f64::consts::PI;

/// A toy density.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toy {
    /// Eight Gaussians of std `1/(2√2)` on a circle of radius `2√2`.
    EightGaussians,
    /// Two interleaved half-circles of radius 2 with isotropic noise of std 0.2.
    Moons,
    /// Five curved arms.
    Pinwheel,
    /// Uniform on 8 of the 16 squares (side 2) of `[-4, 4]²`.
    Checkerboard,
    /// Two noisy rings of radii 3 and 1.5 (noise std 0.24).
    Circles,
}

impl Toy {
    /// Every toy.
    pub const ALL: [Toy; 5] = [Toy::EightGaussians, Toy::Moons, Toy::Pinwheel, Toy::Checkerboard, Toy::Circles];

    /// Parse `8gaussians`, `moons`, `pinwheel`, `checkerboard`, `circles`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EightGaussians => "8gaussians",
            Self::Moons => "moons",
            Self::Pinwheel => "pinwheel",
            Self::Checkerboard => "checkerboard",
            Self::Circles => "circles",
        }
    }

    /// The data's entropy in nats, the best possible test NLL (the anchor's Monte Carlo values
    /// from the closed-form or quadrature densities; pinwheel's is approximate).
    pub fn entropy(&self) -> f64 {
        match self {
            Self::EightGaussians => 2.829,
            Self::Moons => 2.393,
            Self::Pinwheel => 2.324,
            Self::Checkerboard => 32f64.ln(),
            Self::Circles => 3.267,
        }
    }

    /// `n` samples, row-major `[n][2]`, from the stream seeded by `seed`.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let e0: f64 = rng.sample(StandardNormal);
            let e1: f64 = rng.sample(StandardNormal);
            let (x, y) = match self {
                Self::EightGaussians => {
                    let a = rng.gen_range(0..8) as f64 * PI / 4.0;
                    let (r, s) = (2.0 * 2f64.sqrt(), 1.0 / (2.0 * 2f64.sqrt()));
                    (r * a.cos() + s * e0, r * a.sin() + s * e1)
                }
                Self::Moons => {
                    let th = rng.gen_range(0.0..PI);
                    let (px, py) = if rng.gen_bool(0.5) { (th.cos(), th.sin()) } else { (1.0 - th.cos(), 0.5 - th.sin()) };
                    (2.0 * (px + 0.1 * e0) - 1.0, 2.0 * (py + 0.1 * e1) - 0.2)
                }
                Self::Pinwheel => {
                    let k = rng.gen_range(0..5) as f64;
                    let (a, b) = (1.0 + 0.3 * e0, 0.1 * e1);
                    let phi = 2.0 * PI * k / 5.0 + 0.25 * a.exp();
                    let (c, s) = (phi.cos(), phi.sin());
                    (2.0 * (c * a - s * b), 2.0 * (s * a + c * b))
                }
                Self::Checkerboard => {
                    let x1: f64 = 4.0 * rng.gen_range(0.0..1.0) - 2.0;
                    let b = rng.gen_range(0..2) as f64;
                    let x2 = rng.gen_range(0.0..1.0) - 2.0 * b + x1.floor().rem_euclid(2.0);
                    (2.0 * x1, 2.0 * x2)
                }
                Self::Circles => {
                    let r = if rng.gen_bool(0.5) { 1.0 } else { 0.5 };
                    let th = rng.gen_range(0.0..2.0 * PI);
                    (3.0 * (r * th.cos() + 0.08 * e0), 3.0 * (r * th.sin() + 0.08 * e1))
                }
            };
            out.push(x);
            out.push(y);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moments and supports of every toy against their definitions (20,000 samples, bounds of
    /// five standard errors or exact support checks).
    #[test]
    fn toys_have_their_defining_moments() {
        let n = 20_000;
        for toy in Toy::ALL {
            let x = toy.sample(n, 1);
            assert_eq!(x, toy.sample(n, 1), "{}: seeded", toy.name());
            let r: Vec<f64> = x.chunks(2).map(|p| (p[0] * p[0] + p[1] * p[1]).sqrt()).collect();
            let mean_r = r.iter().sum::<f64>() / n as f64;
            match toy {
                // E|x|² = r² + 2 s² = 8 + 0.25.
                Toy::EightGaussians => {
                    let m2 = r.iter().map(|v| v * v).sum::<f64>() / n as f64;
                    assert!((m2 - 8.25).abs() < 0.1, "8gaussians E|x|^2 = {m2}");
                }
                Toy::Circles => {
                    let outer = r.iter().filter(|&&v| v > 2.25).count() as f64 / n as f64;
                    assert!((outer - 0.5).abs() < 0.02, "circles: outer share {outer}");
                }
                Toy::Checkerboard => {
                    for p in x.chunks(2) {
                        let (i, j) = (((p[0] + 4.0) / 2.0).floor() as i64, ((p[1] + 4.0) / 2.0).floor() as i64);
                        assert!(p[0].abs() <= 4.0 && p[1].abs() <= 4.0 && (i + j) % 2 == 0, "checkerboard point {p:?} off the board");
                    }
                }
                Toy::Moons => {
                    let mx = x.chunks(2).map(|p| p[0]).sum::<f64>() / n as f64;
                    // Both moons have mean x = 2 * 0.5 - 1 = 0 (cos θ averages to 0).
                    assert!(mx.abs() < 0.05, "moons mean x {mx}");
                }
                Toy::Pinwheel => assert!(mean_r > 1.5 && mean_r < 2.5, "pinwheel mean radius {mean_r}"),
            }
        }
    }
}
