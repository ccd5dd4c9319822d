//! Toy experiments that show what continuous-depth models can and cannot represent, sized to
//! train in seconds on a CPU:
//!
//! - [`flow1d`]: an ODE-Net's continuous trajectories against a ResNet's per-layer activations on
//!   a monotone 1-D regression (the picture of Chen et al. 2018, Figure 1);
//! - [`dupont1d`]: `g(1) = -1, g(-1) = 1`, which no neural ODE on `R` can represent because its
//!   trajectories cannot cross, while an augmented one can (Dupont, Doucet & Teh 2019, sec. 3-4);
//! - [`circles`]: Dupont et al.'s concentric-circles classification, NODE against ANODE, with the
//!   function evaluations each needs.
//!
//! The models ([`model::OdeModel`], [`resnet::ResNet1d`]) run on the pure-numerics engine
//! ([`nodal_solve`]): dopri5 solves and exact gradients by backpropagation through the steps.

pub mod circles;
pub mod dupont1d;
pub mod flow1d;
pub mod model;
pub mod regularised;
pub mod resnet;
pub mod train;

use nodal_solve::SolveError;
use thiserror::Error;

/// Why a toy experiment could not run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ToyError {
    /// A solve failed (for example the learned dynamics became too stiff for the step budget).
    #[error("solve failed: {0}")]
    Solve(#[from] SolveError),
    /// Sizes or settings that do not make sense.
    #[error("invalid settings: {0}")]
    Config(String),
}

/// Count order changes between consecutive snapshots: for every pair of inputs `i < j` and every
/// consecutive pair of snapshots, one crossing if the sign of `x_j - x_i` changes. `snaps[k]` holds
/// the positions of all inputs at snapshot `k` (a time or a layer). Ties count as no crossing.
pub fn count_crossings(snaps: &[Vec<f64>]) -> usize {
    let mut n = 0;
    for w in snaps.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        for i in 0..a.len() {
            for j in i + 1..a.len() {
                let (s, t) = (a[j] - a[i], b[j] - b[i]);
                if s * t < 0.0 {
                    n += 1;
                }
            }
        }
    }
    n
}

/// Median of a slice (the upper median for even lengths; NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossings_are_counted_per_pair_and_step() {
        assert_eq!(count_crossings(&[vec![0.0, 1.0, 2.0], vec![0.5, 1.5, 2.5]]), 0);
        assert_eq!(count_crossings(&[vec![0.0, 1.0, 2.0], vec![1.5, 1.0, 2.0]]), 1);
        assert_eq!(count_crossings(&[vec![0.0, 1.0], vec![2.0, 1.0], vec![0.0, 1.0]]), 2);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }
}
