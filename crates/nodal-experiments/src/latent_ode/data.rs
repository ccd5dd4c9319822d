//! Irregularly sampled series with missing values, generated here (Rubanova, Chen & Duvenaud
//! 2019, §4): every series lives on the same grid of `T = 100` times on `[0, 5]`, and each grid
//! point is observed with probability `keep` (at least two points per series), so series have
//! their own observation times and gaps.
//!
//! - [`SeriesKind::Periodic`]: `x(t) = a sin(2π f t + φ)`, `a ~ U[0.5, 1.5]`, `f ~ U[0.2, 1]`,
//!   `φ ~ U[0, 2π]`, observation noise `N(0, 0.01²)`.
//! - [`SeriesKind::Pendulum`]: `θ'' = -4 sin θ - 0.1 θ'`, `θ0 ~ U[-1.5, 1.5]`,
//!   `θ'0 ~ U[-1, 1]`, observed in one coordinate, `x = sin θ`, with noise `N(0, 0.05²)`;
//!   simulated by nodal per sample (dopri5, `rtol = atol = 1e-10`).

use nodal::solve::per_sample::{FnRows, solve_per_sample};
use nodal::solve::tableau::DOPRI5;
use nodal::solve::{Record, SolveError, SolveOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde::Serialize;

/// Grid points per series.
pub const POINTS: usize = 100;
/// End of the grid.
pub const T_END: f64 = 5.0;
/// Extrapolation: the model sees `t < SPLIT` and predicts `t >= SPLIT`.
pub const SPLIT: f64 = 2.5;

/// Which generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesKind {
    /// Sines of random amplitude, frequency and phase.
    Periodic,
    /// A damped pendulum observed through `sin θ`.
    Pendulum,
}

impl SeriesKind {
    /// From `periodic` or `pendulum`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "periodic" => Some(Self::Periodic),
            "pendulum" => Some(Self::Pendulum),
            _ => None,
        }
    }
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Periodic => "periodic",
            Self::Pendulum => "pendulum",
        }
    }
}

/// `n` series on the shared grid, row-major `[n][POINTS]`.
#[derive(Debug, Clone)]
pub struct SeriesSet {
    /// The grid.
    pub ts: Vec<f64>,
    /// Noisy values (0 where unobserved).
    pub values: Vec<f32>,
    /// Noise-free values everywhere.
    pub clean: Vec<f32>,
    /// 1 where observed.
    pub mask: Vec<f32>,
    /// Series.
    pub n: usize,
}

impl SeriesSet {
    /// Series `range` as a new set.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        let r = range.start * POINTS..range.end * POINTS;
        Self {
            ts: self.ts.clone(),
            values: self.values[r.clone()].to_vec(),
            clean: self.clean[r.clone()].to_vec(),
            mask: self.mask[r].to_vec(),
            n: range.len(),
        }
    }
    /// Observed points per series, on average.
    pub fn mean_observed(&self) -> f64 {
        self.mask.iter().map(|&m| m as f64).sum::<f64>() / self.n.max(1) as f64
    }
}

/// The grid `t_i = 5 i / 99`.
pub fn grid() -> Vec<f64> {
    (0..POINTS).map(|i| T_END * i as f64 / (POINTS - 1) as f64).collect()
}

/// Generate `n` series of `kind`, each grid point kept with probability `keep`.
pub fn generate(kind: SeriesKind, n: usize, keep: f64, seed: u64) -> Result<SeriesSet, SolveError> {
    let ts = grid();
    let mut rng = StdRng::seed_from_u64(seed);
    let (clean, noise): (Vec<f64>, f64) = match kind {
        SeriesKind::Periodic => {
            let params: Vec<[f64; 3]> =
                (0..n).map(|_| [rng.gen_range(0.5..1.5), rng.gen_range(0.2..1.0), rng.gen_range(0.0..std::f64::consts::TAU)]).collect();
            let mut v = Vec::with_capacity(n * POINTS);
            for [a, f, phi] in params {
                v.extend(ts.iter().map(|t| a * (std::f64::consts::TAU * f * t + phi).sin()));
            }
            (v, 0.01)
        }
        SeriesKind::Pendulum => {
            let y0: Vec<f64> = (0..n).flat_map(|_| [rng.gen_range(-1.5..1.5), rng.gen_range(-1.0..1.0)]).collect();
            let mut f = FnRows(|_t: &[f64], y: &[f64], dy: &mut [f64]| {
                for (yr, dr) in y.chunks_exact(2).zip(dy.chunks_exact_mut(2)) {
                    dr[0] = yr[1];
                    dr[1] = -4.0 * yr[0].sin() - 0.1 * yr[1];
                }
            });
            let grids: Vec<Vec<f64>> = (0..n).map(|_| ts.clone()).collect();
            let opts = SolveOptions::new(&DOPRI5).with_tol(1e-10, 1e-10);
            let sol = solve_per_sample(&mut f, &y0, 2, &grids, &opts, Record::None)?;
            if let Some(e) = sol.row_status.iter().flatten().next() {
                return Err(e.clone());
            }
            let mut v = vec![0.0; n * POINTS];
            for (k, y) in sol.ys.iter().enumerate() {
                for r in 0..n {
                    v[r * POINTS + k] = y[2 * r].sin();
                }
            }
            (v, 0.05)
        }
    };
    let normal = Normal::new(0.0, noise).expect("positive std");
    let noisy: Vec<f64> = clean.iter().map(|c| c + normal.sample(&mut rng)).collect();
    let mut mask: Vec<f32> = (0..n * POINTS).map(|_| if rng.r#gen::<f64>() < keep { 1.0 } else { 0.0 }).collect();
    for r in 0..n {
        let row = &mut mask[r * POINTS..(r + 1) * POINTS];
        while row.iter().sum::<f32>() < 2.0 {
            row[rng.gen_range(0..POINTS)] = 1.0;
        }
    }
    let values = noisy.iter().zip(&mask).map(|(v, m)| (*v as f32) * m).collect();
    Ok(SeriesSet { ts, values, clean: clean.iter().map(|&c| c as f32).collect(), mask, n })
}
