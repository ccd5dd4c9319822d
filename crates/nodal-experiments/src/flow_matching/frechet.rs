//! Gaussian statistics of feature vectors and the Fréchet distance between two Gaussians
//! (Dowson and Landau 1982), the measure behind FID (Heusel et al. 2017) when the features are
//! a classifier's penultimate layer:
//!
//! ```text
//! d²(N(μa, Σa), N(μb, Σb)) = |μa − μb|² + tr Σa + tr Σb − 2 tr (Σa^½ Σb Σa^½)^½
//! ```
//!
//! The square roots of the symmetric positive semi-definite matrices come from a cyclic Jacobi
//! eigen-decomposition in f64 (Golub and Van Loan, §8.5), so no linear-algebra dependency is
//! needed; eigenvalues that round-off pushes below zero are taken as zero.

/// Why statistics or a distance could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrechetError {
    /// Fewer than two vectors: no covariance.
    #[error("{count} feature vectors: a covariance needs at least 2")]
    TooFew {
        /// How many were given.
        count: usize,
    },
    /// The values are not a whole number of vectors of the stated width.
    #[error("{len} values are not a whole number of {dim}-dimensional vectors")]
    Ragged {
        /// Number of values.
        len: usize,
        /// Width of a vector.
        dim: usize,
    },
    /// The two Gaussians live in different dimensions.
    #[error("dimensions differ: {a} and {b}")]
    DimensionMismatch {
        /// First dimension.
        a: usize,
        /// Second dimension.
        b: usize,
    },
    /// A value is NaN or infinite.
    #[error("feature {index} is not finite ({value})")]
    NonFinite {
        /// Position of the value.
        index: usize,
        /// The value.
        value: f64,
    },
}

/// Mean and covariance (unbiased, `n − 1`) of a set of vectors.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianStats {
    /// Width of a vector.
    pub dim: usize,
    /// Number of vectors the statistics came from.
    pub count: usize,
    /// The mean, `dim` values.
    pub mean: Vec<f64>,
    /// The covariance, `dim x dim`, row-major.
    pub cov: Vec<f64>,
}

impl GaussianStats {
    /// Statistics of `values.len() / dim` vectors stored one after another.
    pub fn from_rows(values: &[f32], dim: usize) -> Result<Self, FrechetError> {
        if dim == 0 || values.len() % dim != 0 {
            return Err(FrechetError::Ragged { len: values.len(), dim });
        }
        if let Some((index, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(FrechetError::NonFinite { index, value: *v as f64 });
        }
        let count = values.len() / dim;
        if count < 2 {
            return Err(FrechetError::TooFew { count });
        }
        let mut mean = vec![0.0; dim];
        for row in values.chunks(dim) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= count as f64);
        let mut cov = vec![0.0; dim * dim];
        let mut centred = vec![0.0; dim];
        for row in values.chunks(dim) {
            for ((c, v), m) in centred.iter_mut().zip(row).zip(&mean) {
                *c = *v as f64 - m;
            }
            for i in 0..dim {
                let ci = centred[i];
                for j in i..dim {
                    cov[i * dim + j] += ci * centred[j];
                }
            }
        }
        for i in 0..dim {
            for j in i..dim {
                let v = cov[i * dim + j] / (count - 1) as f64;
                cov[i * dim + j] = v;
                cov[j * dim + i] = v;
            }
        }
        Ok(Self { dim, count, mean, cov })
    }
}

/// The Fréchet distance `d²` between the Gaussians of `a` and `b` (see the module docs). It is
/// symmetric, zero for equal statistics and, like FID, reported squared.
pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> Result<f64, FrechetError> {
    if a.dim != b.dim {
        return Err(FrechetError::DimensionMismatch { a: a.dim, b: b.dim });
    }
    let n = a.dim;
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum();
    let trace = |m: &[f64]| (0..n).map(|i| m[i * n + i]).sum::<f64>();
    let root_a = sqrt_psd(&a.cov, n);
    let inner = matmul(&matmul(&root_a, &b.cov, n), &root_a, n);
    let (values, _) = symmetric_eigen(&symmetrise(&inner, n), n);
    let cross: f64 = values.iter().map(|v| v.max(0.0).sqrt()).sum();
    Ok((mean_term + trace(&a.cov) + trace(&b.cov) - 2.0 * cross).max(0.0))
}

/// `(A + Aᵀ) / 2`: removes the round-off asymmetry of a product that is symmetric in exact
/// arithmetic.
fn symmetrise(m: &[f64], n: usize) -> Vec<f64> {
    let mut s = m.to_vec();
    for i in 0..n {
        for j in 0..n {
            s[i * n + j] = 0.5 * (m[i * n + j] + m[j * n + i]);
        }
    }
    s
}

/// `A B` for row-major `n x n` matrices.
fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c
}

/// The principal square root `V diag(√max(λ, 0)) Vᵀ` of a symmetric positive semi-definite
/// `n x n` matrix.
pub fn sqrt_psd(m: &[f64], n: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(m, n);
    let mut out = vec![0.0; n * n];
    for (k, lambda) in values.iter().enumerate() {
        let s = lambda.max(0.0).sqrt();
        for i in 0..n {
            let vik = vectors[i * n + k] * s;
            for j in 0..n {
                out[i * n + j] += vik * vectors[j * n + k];
            }
        }
    }
    out
}

/// Eigenvalues and eigenvectors of a symmetric `n x n` matrix by cyclic Jacobi rotations:
/// `(λ, V)` with `A = V diag(λ) Vᵀ`, the eigenvectors in `V`'s columns (row-major). Sweeps stop
/// when the off-diagonal mass is below `1e-30` of the total (or after 100 sweeps).
pub fn symmetric_eigen(m: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * n + j].powi(2)).sum();
        if off <= 1e-30 * total || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Golub and Van Loan, Algorithm 8.5.1).
                let tau = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
                let t = if tau == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(mean: Vec<f64>, cov: Vec<f64>) -> GaussianStats {
        GaussianStats { dim: mean.len(), count: 100, mean, cov }
    }

    /// `R A Rᵀ` for the rotation by `angle` in the plane of coordinates 0 and 1.
    fn rotate(a: &[f64], n: usize, angle: f64) -> Vec<f64> {
        let mut r = vec![0.0; n * n];
        (0..n).for_each(|i| r[i * n + i] = 1.0);
        let (c, s) = (angle.cos(), angle.sin());
        r[0] = c;
        r[1] = -s;
        r[n] = s;
        r[n + 1] = c;
        let mut rt = r.clone();
        for i in 0..n {
            for j in 0..n {
                rt[i * n + j] = r[j * n + i];
            }
        }
        matmul(&matmul(&r, a, n), &rt, n)
    }

    #[test]
    fn eigen_decomposition_reconstructs_the_matrix() {
        let n = 6;
        // A symmetric matrix with a repeated and a negative eigenvalue's worth of structure.
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] = 1.0 / (1 + i + j) as f64 + if i == j { (i as f64 - 2.0) * 0.3 } else { 0.0 };
            }
        }
        let (values, vectors) = symmetric_eigen(&m, n);
        let mut back = vec![0.0; n * n];
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    back[i * n + j] += vectors[i * n + k] * values[k] * vectors[j * n + k];
                }
            }
        }
        let err = m.iter().zip(&back).fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
        assert!(err < 1e-12, "reconstruction error {err}");
        // The trace is the sum of the eigenvalues.
        let trace: f64 = (0..n).map(|i| m[i * n + i]).sum();
        assert!((trace - values.iter().sum::<f64>()).abs() < 1e-12);
    }

    #[test]
    fn one_dimension_is_the_closed_form() {
        // d² = (m1 − m2)² + (s1 − s2)².
        let d = frechet_distance(&stats(vec![1.0], vec![4.0]), &stats(vec![-0.5], vec![0.25])).unwrap();
        let exact = 1.5f64.powi(2) + (2.0f64 - 0.5).powi(2);
        assert!((d - exact).abs() < 1e-12, "{d} vs {exact}");
    }

    #[test]
    fn diagonal_covariances_are_the_closed_form() {
        let (va, vb) = ([1.0, 2.0, 9.0], [4.0, 0.5, 1.0]);
        let diag = |v: &[f64; 3]| {
            let mut c = vec![0.0; 9];
            (0..3).for_each(|i| c[i * 3 + i] = v[i]);
            c
        };
        let d = frechet_distance(&stats(vec![0.0; 3], diag(&va)), &stats(vec![1.0, 0.0, 0.0], diag(&vb))).unwrap();
        let exact = 1.0 + va.iter().zip(&vb).map(|(a, b): (&f64, &f64)| (a.sqrt() - b.sqrt()).powi(2)).sum::<f64>();
        assert!((d - exact).abs() < 1e-12, "{d} vs {exact}");
    }

    #[test]
    fn non_commuting_covariances_match_the_two_by_two_formula() {
        // For 2x2 PSD M, tr √M = √(tr M + 2 √det M): an independent route to the cross term.
        let a = vec![2.0, 0.7, 0.7, 1.0];
        let b = rotate(&[3.0, 0.0, 0.0, 0.2], 2, 0.9);
        let ra = sqrt_psd(&a, 2);
        let m = matmul(&matmul(&ra, &b, 2), &ra, 2);
        let det = m[0] * m[3] - m[1] * m[2];
        let cross = (m[0] + m[3] + 2.0 * det.sqrt()).sqrt();
        let exact = (1.0f64 - 0.2).powi(2) + 3.0 + 3.2 - 2.0 * cross;
        let d = frechet_distance(&stats(vec![1.0, 0.0], a.clone()), &stats(vec![0.2, 0.0], b.clone())).unwrap();
        assert!((d - exact).abs() < 1e-12, "{d} vs {exact}");
        // The square root squares back.
        let sq = matmul(&ra, &ra, 2);
        assert!(sq.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-12));
        // Symmetric, invariant under a common rotation, zero against itself.
        let back = frechet_distance(&stats(vec![0.2, 0.0], b.clone()), &stats(vec![1.0, 0.0], a.clone())).unwrap();
        assert!((d - back).abs() < 1e-12);
        let rotated = frechet_distance(&stats(vec![0.0; 2], rotate(&a, 2, 0.3)), &stats(vec![0.0; 2], rotate(&b, 2, 0.3))).unwrap();
        let plain = frechet_distance(&stats(vec![0.0; 2], a.clone()), &stats(vec![0.0; 2], b)).unwrap();
        assert!((rotated - plain).abs() < 1e-12);
        assert!(frechet_distance(&stats(vec![0.3, 0.1], a.clone()), &stats(vec![0.3, 0.1], a)).unwrap() < 1e-12);
    }

    #[test]
    fn statistics_of_rows_and_their_errors() {
        // Two vectors: mean (2, 3), covariance from (1, 2) and (3, 4): all entries 2.
        let s = GaussianStats::from_rows(&[1.0, 2.0, 3.0, 4.0], 2).unwrap();
        assert_eq!((s.count, s.mean.clone(), s.cov.clone()), (2, vec![2.0, 3.0], vec![2.0, 2.0, 2.0, 2.0]));
        assert_eq!(GaussianStats::from_rows(&[1.0, 2.0], 2), Err(FrechetError::TooFew { count: 1 }));
        assert_eq!(GaussianStats::from_rows(&[1.0, 2.0, 3.0], 2), Err(FrechetError::Ragged { len: 3, dim: 2 }));
        assert!(matches!(GaussianStats::from_rows(&[1.0, f32::NAN, 3.0, 4.0], 2), Err(FrechetError::NonFinite { index: 1, .. })));
        let other = stats(vec![0.0; 3], vec![0.0; 9]);
        assert_eq!(frechet_distance(&s, &other), Err(FrechetError::DimensionMismatch { a: 2, b: 3 }));
    }
}
