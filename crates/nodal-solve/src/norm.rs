//! Error norms for step-size control.

use crate::state::State;

/// Measures a local error estimate relative to the tolerances; a step is accepted when the
/// result is at most 1.
pub trait ErrorNorm<S> {
    /// Norm of `err` scaled entrywise by `atol + rtol * max(|y0|, |y1|)`.
    fn norm(&self, err: &S, y0: &S, y1: &S, rtol: f64, atol: f64) -> f64;
}

/// Root-mean-square over the whole state (torchdiffeq's and diffrax's default, so that a batch
/// solved as one "giant ODE" takes the same steps as in those tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct RmsNorm;

impl<S: State> ErrorNorm<S> for RmsNorm {
    fn norm(&self, err: &S, y0: &S, y1: &S, rtol: f64, atol: f64) -> f64 {
        let (s, n) = S::weighted_sq_sum(err, y0, y1, rtol, atol);
        if n == 0 { 0.0 } else { (s / n as f64).sqrt() }
    }
}

/// Error norm over row-major states `[rows][width]` that measures column groups separately and
/// takes the largest: `max_g RMS_g`, where `RMS_g` is the root mean square of the scaled error
/// over every row and the columns of group `g`. Columns outside every group are left out of step
/// control (RNODE practice for penalty accumulators, Finlay et al. 2020: they are integrated,
/// but do not shrink the step). A continuous normalising flow's state `[z, Δlog p]` takes the
/// groups `[0, d)` and `[d, d + 1)`, so the scalar log-density change weighs as much as all of `z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnGroupsNorm {
    /// Row width.
    pub width: usize,
    /// Half-open column ranges `(start, end)`.
    pub groups: Vec<(usize, usize)>,
}

impl ColumnGroupsNorm {
    /// Groups over rows of `width` columns (ranges clipped to the width, empty ones dropped).
    pub fn new(width: usize, groups: &[(usize, usize)]) -> Self {
        let groups = groups.iter().map(|&(a, b)| (a.min(width), b.min(width))).filter(|(a, b)| a < b).collect();
        Self { width, groups }
    }
}

impl<T: crate::scalar::Scalar> ErrorNorm<Vec<T>> for ColumnGroupsNorm {
    fn norm(&self, err: &Vec<T>, y0: &Vec<T>, y1: &Vec<T>, rtol: f64, atol: f64) -> f64 {
        let w = self.width.max(1);
        let rows = err.len() / w;
        let mut worst = 0.0f64;
        for &(a, b) in &self.groups {
            let mut s = 0.0;
            for r in 0..rows {
                for c in a..b {
                    let i = r * w + c;
                    let scale = atol + rtol * y0[i].to_f64().abs().max(y1[i].to_f64().abs());
                    let e = err[i].to_f64() / scale;
                    s += e * e;
                }
            }
            let n = rows * (b - a);
            if n > 0 {
                worst = worst.max((s / n as f64).sqrt());
            }
        }
        worst
    }
}

/// The error norms a neural ODE layer can choose between.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NormChoice {
    /// [`RmsNorm`] over the whole state.
    #[default]
    Rms,
    /// [`ColumnGroupsNorm`].
    Columns(ColumnGroupsNorm),
}

impl<T: crate::scalar::Scalar> ErrorNorm<Vec<T>> for NormChoice {
    fn norm(&self, err: &Vec<T>, y0: &Vec<T>, y1: &Vec<T>, rtol: f64, atol: f64) -> f64 {
        match self {
            Self::Rms => RmsNorm.norm(err, y0, y1, rtol, atol),
            Self::Columns(c) => c.norm(err, y0, y1, rtol, atol),
        }
    }
}

#[cfg(test)]
mod column_tests {
    use super::*;

    #[test]
    fn groups_take_the_worst_rms_and_skip_other_columns() {
        // Two rows of width 3: groups {0, 1} and {2}; tolerance scale 1 (atol 1, rtol 0).
        let err = vec![3.0f64, 4.0, 1.0, 0.0, 0.0, 1.0];
        let zeros = vec![0.0; 6];
        let n = ColumnGroupsNorm::new(3, &[(0, 2), (2, 3)]);
        // Group 0: sqrt((9 + 16) / 4) = 2.5; group 1: sqrt(2 / 2) = 1.
        assert!((n.norm(&err, &zeros, &zeros, 0.0, 1.0) - 2.5).abs() < 1e-15);
        let only_last = ColumnGroupsNorm::new(3, &[(2, 3)]);
        assert!((only_last.norm(&err, &zeros, &zeros, 0.0, 1.0) - 1.0).abs() < 1e-15);
        assert_eq!(ColumnGroupsNorm::new(3, &[(2, 9), (3, 4)]).groups, vec![(2, 3)]);
    }
}
