//! Dense solves of the tiny systems the accelerators need (`n <= memory`), in `f64`.

/// Solve `a x = b` for an `n x n` row-major `a` by Gaussian elimination with partial pivoting;
/// `None` when a pivot is zero or the result is not finite.
pub(crate) fn solve_dense(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    debug_assert_eq!(a.len(), n * n);
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))?;
        if a[piv * n + col] == 0.0 || !a[piv * n + col].is_finite() {
            return None;
        }
        if piv != col {
            for k in 0..n {
                a.swap(piv * n + k, col * n + k);
            }
            b.swap(piv, col);
        }
        for i in col + 1..n {
            let m = a[i * n + col] / a[col * n + col];
            for k in col..n {
                a[i * n + k] -= m * a[col * n + k];
            }
            b[i] -= m * b[col];
        }
    }
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| a[i * n + k] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * n + i];
    }
    b.iter().all(|v| v.is_finite()).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_pivoting_system_and_refuses_a_singular_one() {
        // [[0, 2], [1, 1]] x = [4, 3] -> x = [1, 2] (needs a row swap).
        let x = solve_dense(vec![0.0, 2.0, 1.0, 1.0], vec![4.0, 3.0]).unwrap();
        assert!((x[0] - 1.0).abs() < 1e-15 && (x[1] - 2.0).abs() < 1e-15, "{x:?}");
        assert!(solve_dense(vec![1.0, 2.0, 2.0, 4.0], vec![1.0, 1.0]).is_none());
    }
}
