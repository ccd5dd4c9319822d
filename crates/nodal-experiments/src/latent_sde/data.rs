//! The synthetic data set: sample paths of a stochastic Lorenz system, observed with noise.
//!
//! The system (Li et al. 2020, §7.3 and appendix) is the Lorenz attractor with multiplicative
//! diagonal noise, in the Ito sense:
//!
//! ```text
//! dx = σ (y - x) dt       + α x dW₁
//! dy = (x (ρ - z) - y) dt + α y dW₂
//! dz = (x y - β z) dt     + α z dW₃,     σ = 10, ρ = 28, β = 8/3, α = 0.15,
//! ```
//!
//! from `(x, y, z)(0) ~ N(0, I)`, observed at `points` equally spaced times on `[0, 1]`. Paths
//! are solved by Euler-Maruyama with [`GENERATION_SUBSTEPS`] steps per observation interval
//! (`dt ≈ 1e-3`) on a seeded Brownian path, then every coordinate is standardised with the
//! training set's mean and standard deviation over all series and times, and Gaussian noise of
//! standard deviation `noise_std` is added.

use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::sde::{TensorSdeTerms, sde_solve_tensor};
use nodal::solve::sde::{Scheme, SdeError, SeededBrownian, StepTimes};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// Observed coordinates per time.
pub const OBS_DIM: usize = 3;
/// Euler-Maruyama steps per observation interval when generating paths.
pub const GENERATION_SUBSTEPS: usize = 10;

/// The stochastic Lorenz system's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StochasticLorenz {
    /// σ.
    pub sigma: f64,
    /// ρ.
    pub rho: f64,
    /// β.
    pub beta: f64,
    /// Noise scale α (the same for the three coordinates).
    pub alpha: f64,
}

impl Default for StochasticLorenz {
    fn default() -> Self {
        Self { sigma: 10.0, rho: 28.0, beta: 8.0 / 3.0, alpha: 0.15 }
    }
}

impl TensorSdeTerms for StochasticLorenz {
    fn drift_diffusion(&self, _t: f64, s: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let [rows, _] = s.dims();
        let col = |j: usize| s.clone().slice([0..rows, j..j + 1]);
        let (x, y, z) = (col(0), col(1), col(2));
        let dx = (y.clone() - x.clone()).mul_scalar(self.sigma);
        let dy = x.clone() * (z.clone().neg().add_scalar(self.rho)) - y.clone();
        let dz = x * y - z.mul_scalar(self.beta);
        (Tensor::cat(vec![dx, dy, dz], 1), s.mul_scalar(self.alpha))
    }
}

/// Noisy, standardised observations of `series` paths at common times.
#[derive(Debug, Clone)]
pub struct Observations {
    /// Observation times (increasing).
    pub ts: Vec<f64>,
    /// Series.
    pub series: usize,
    /// Noisy values, `[series][time][OBS_DIM]` row-major.
    pub xs: Vec<f32>,
    /// The same without observation noise (for reconstruction errors).
    pub clean: Vec<f32>,
}

impl Observations {
    /// Entries per series.
    pub fn series_len(&self) -> usize {
        self.ts.len() * OBS_DIM
    }
    /// Series `idx` stacked as a `[idx.len(), T, OBS_DIM]` tensor (noisy values).
    pub fn batch(&self, idx: &[usize], device: &Device) -> Tensor<3> {
        let n = self.series_len();
        let mut v = Vec::with_capacity(idx.len() * n);
        for &i in idx {
            v.extend_from_slice(&self.xs[i * n..(i + 1) * n]);
        }
        Tensor::<3>::from_data(TensorData::new(v, [idx.len(), self.ts.len(), OBS_DIM]), (device, DType::F32))
    }
}

/// Per-coordinate standardisation `(v - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standardise {
    /// Means of x, y, z.
    pub mean: [f64; OBS_DIM],
    /// Standard deviations of x, y, z.
    pub std: [f64; OBS_DIM],
}

impl Standardise {
    /// Mean and standard deviation over every series and time of `raw` (`[..][OBS_DIM]`).
    pub fn fit(raw: &[f64]) -> Self {
        let n = (raw.len() / OBS_DIM).max(1) as f64;
        let mut mean = [0.0; OBS_DIM];
        let mut std = [0.0; OBS_DIM];
        for (k, v) in raw.iter().enumerate() {
            mean[k % OBS_DIM] += v / n;
        }
        for (k, v) in raw.iter().enumerate() {
            std[k % OBS_DIM] += (v - mean[k % OBS_DIM]).powi(2) / n;
        }
        Self { mean, std: std.map(|s| s.sqrt().max(1e-12)) }
    }
}

/// Paths of the system on `points` equally spaced times of `[0, 1]`, unstandardised:
/// `[series][time][OBS_DIM]`, every path from its own initial state and Brownian path (seeded).
pub fn simulate(system: &StochasticLorenz, series: usize, points: usize, seed: u64) -> Result<(Vec<f64>, Vec<f64>), SdeError> {
    if series == 0 || points < 2 {
        return Err(SdeError::InvalidArgument(format!("need at least one series and two observation times (got {series}, {points})")));
    }
    let device = Device::flex();
    let ts: Vec<f64> = (0..points).map(|i| i as f64 / (points - 1) as f64).collect();
    let fine: Vec<f64> =
        (0..(points - 1) * GENERATION_SUBSTEPS + 1).map(|k| k as f64 / ((points - 1) * GENERATION_SUBSTEPS) as f64).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let x0: Vec<f64> = (0..series * OBS_DIM).map(|_| StandardNormal.sample(&mut rng)).collect();
    let y0 = Tensor::<2>::from_data(TensorData::new(x0.clone(), [series, OBS_DIM]), (&device, DType::F64));
    let cell = 1.0 / ((points - 1) * GENERATION_SUBSTEPS) as f64;
    let mut path = SeededBrownian::new(seed.wrapping_add(0x5eed), 0.0, 1.0, series, OBS_DIM, cell)?;
    let out: Vec<usize> = (1..points).map(|i| i * GENERATION_SUBSTEPS).collect();
    let ys = sde_solve_tensor(system, &mut path, Scheme::EulerMaruyama, &StepTimes(fine), y0, &out)?;
    let mut states = vec![x0];
    for y in ys {
        states.push(y.into_data().convert::<f64>().try_to_vec::<f64>().map_err(|e| SdeError::InvalidArgument(format!("{e:?}")))?);
    }
    // [time][series][dim] -> [series][time][dim]
    let mut raw = vec![0.0; series * points * OBS_DIM];
    for (t, s) in states.iter().enumerate() {
        for r in 0..series {
            for d in 0..OBS_DIM {
                raw[(r * points + t) * OBS_DIM + d] = s[r * OBS_DIM + d];
            }
        }
    }
    Ok((ts, raw))
}

/// Standardise `raw` with `norm` and add observation noise of standard deviation `noise_std`.
pub fn observe(ts: Vec<f64>, raw: &[f64], norm: &Standardise, noise_std: f64, seed: u64) -> Observations {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0b5e_4e);
    let clean: Vec<f32> = raw.iter().enumerate().map(|(k, v)| ((v - norm.mean[k % OBS_DIM]) / norm.std[k % OBS_DIM]) as f32).collect();
    let xs = clean
        .iter()
        .map(|&c| {
            let e: f64 = StandardNormal.sample(&mut rng);
            (c as f64 + noise_std * e) as f32
        })
        .collect();
    let series = raw.len() / (ts.len() * OBS_DIM);
    Observations { ts, series, xs, clean }
}
