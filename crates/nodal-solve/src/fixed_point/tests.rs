//! Fixed-point solvers against closed forms and exact linear solves.

use super::*;

/// A seeded affine contraction per row: `f(z) = A z + b`, `A = Q diag(lambda) Q^T` with `Q` a
/// random orthogonal matrix (Gram-Schmidt) and eigenvalues spread evenly over `[-rho, rho]`, so
/// Picard iteration contracts at exactly `rho` in the worst direction.
struct Affine {
    dim: usize,
    a: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
}

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

impl Affine {
    fn new(rows: usize, dim: usize, rho: &[f64], seed: u64) -> Self {
        let mut s = seed;
        let mut a = Vec::new();
        let mut b = Vec::new();
        for r in 0..rows {
            let mut q: Vec<Vec<f64>> = Vec::new();
            while q.len() < dim {
                let mut v: Vec<f64> = (0..dim).map(|_| lcg(&mut s)).collect();
                for u in &q {
                    let c: f64 = u.iter().zip(&v).map(|(x, y)| x * y).sum();
                    v.iter_mut().zip(u).for_each(|(x, y)| *x -= c * y);
                }
                let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                q.push(v.into_iter().map(|x| x / n).collect());
            }
            let rho = rho[r % rho.len()];
            let lam: Vec<f64> = (0..dim).map(|i| if dim == 1 { rho } else { rho * (1.0 - 2.0 * i as f64 / (dim - 1) as f64) }).collect();
            let mut m = vec![0.0; dim * dim];
            for i in 0..dim {
                for j in 0..dim {
                    m[i * dim + j] = (0..dim).map(|k| q[k][i] * lam[k] * q[k][j]).sum();
                }
            }
            a.push(m);
            b.push((0..dim).map(|_| lcg(&mut s)).collect());
        }
        Self { dim, a, b }
    }

    /// The exact fixed point of row `r`: `(I - A) z = b`.
    fn exact(&self, r: usize) -> Vec<f64> {
        let d = self.dim;
        let mut m = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                m[i * d + j] = if i == j { 1.0 } else { 0.0 } - self.a[r][i * d + j];
            }
        }
        small_solve::solve_dense(m, self.b[r].clone()).unwrap()
    }
}

impl RowMap<f64> for Affine {
    fn apply(&mut self, rows: &[usize], z: &[f64], out: &mut [f64]) {
        let d = self.dim;
        for (j, &r) in rows.iter().enumerate() {
            for i in 0..d {
                out[j * d + i] = self.b[r][i] + (0..d).map(|k| self.a[r][i * d + k] * z[j * d + k]).sum::<f64>();
            }
        }
    }
}

fn methods() -> [FixedPointMethod; 3] {
    [FixedPointMethod::picard(), FixedPointMethod::anderson(), FixedPointMethod::Broyden { memory: 100 }]
}

#[test]
fn every_method_finds_the_dottie_number() {
    // cos(z) = z has the single real root 0.7390851332151606416553120876738734 (OEIS A003957).
    for m in methods() {
        let mut f = FnRowMap(|_r: &[usize], z: &[f64], o: &mut [f64]| o[0] = z[0].cos());
        let opts = FixedPointOptions::new(m).with_tol(1e-13, 0.0).with_max_iter(200);
        let sol = solve_fixed_point(&mut f, &[1.0], 1, &opts).unwrap();
        assert!((sol.z[0] - 0.739_085_133_215_160_6).abs() < 2e-13, "{}: {}", m.name(), sol.z[0]);
        eprintln!("{}: {} iterations", m.name(), sol.stats.iterations());
    }
}

#[test]
fn affine_contractions_converge_to_the_exact_solution_and_acceleration_pays() {
    // dim 40, contraction 0.95: Picard needs ~log(1e-10)/log(0.95) ~ 450 steps at worst.
    let (rows, dim) = (3, 40);
    let mut iters = Vec::new();
    for m in methods() {
        let mut f = Affine::new(rows, dim, &[0.95], 7);
        let opts = FixedPointOptions::new(m).with_tol(1e-11, 0.0).with_max_iter(2000);
        let sol = solve_fixed_point(&mut f, &vec![0.0; rows * dim], dim, &opts).unwrap();
        for r in 0..rows {
            let exact = f.exact(r);
            let err = sol.z[r * dim..(r + 1) * dim].iter().zip(&exact).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            let scale = exact.iter().map(|v| v.abs()).fold(0.0, f64::max);
            // Residual 1e-11 relative; error <= residual / (1 - rho) = 20x that.
            assert!(err < 1e-9 * scale, "{} row {r}: error {err:e}", m.name());
        }
        assert_eq!(sol.stats.converged, rows);
        iters.push(sol.stats.iterations());
    }
    eprintln!("picard / anderson / broyden iterations: {iters:?}");
    // Anderson(5) at least halves Picard's count; Broyden with memory >= 2 dim terminates on a
    // linear problem within 2 dim steps (Gay 1979), plus the final evaluation.
    assert!(iters[1] * 2 < iters[0], "Anderson should need far fewer iterations: {iters:?}");
    assert!(iters[2] <= 2 * dim + 1, "Broyden beyond Gay's bound: {iters:?}");
    // Restarted (memory 10 < dim) Broyden still converges, and still beats Picard.
    let mut f = Affine::new(rows, dim, &[0.95], 7);
    let opts = FixedPointOptions::new(FixedPointMethod::Broyden { memory: 10 }).with_tol(1e-11, 0.0).with_max_iter(2000);
    let sol = solve_fixed_point(&mut f, &vec![0.0; rows * dim], dim, &opts).unwrap();
    eprintln!("restarted broyden(10): {} iterations", sol.stats.iterations());
    assert!(sol.stats.iterations() * 2 < iters[0]);
}

#[test]
fn rows_leave_the_batch_when_they_converge_and_match_rows_solved_alone() {
    // Row 0 contracts at 0.2, row 1 at 0.9: row 0 is done long before row 1.
    let (rows, dim) = (2, 6);
    for m in methods() {
        let opts = FixedPointOptions::new(m).with_tol(1e-10, 0.0).with_max_iter(1000);
        let mut calls = Vec::new();
        let mut f = Affine::new(rows, dim, &[0.2, 0.9], 3);
        let mut counted = FnRowMap(|r: &[usize], z: &[f64], o: &mut [f64]| {
            calls.push(r.len());
            f.apply(r, z, o)
        });
        let sol = solve_fixed_point(&mut counted, &vec![0.0; rows * dim], dim, &opts).unwrap();
        let st = &sol.stats;
        assert!(st.row_iterations[0] < st.row_iterations[1], "{}: {:?}", m.name(), st.row_iterations);
        assert_eq!(st.row_evaluations, st.row_iterations.iter().sum::<usize>());
        assert_eq!(calls.iter().sum::<usize>(), st.row_evaluations);
        assert!(calls.iter().any(|&n| n == 1), "{}: the converged row should have left the batch", m.name());
        // Row 1 alone: its own problem, same iterates bit for bit.
        let mut g = Affine::new(rows, dim, &[0.2, 0.9], 3);
        let mut only1 = FnRowMap(|_r: &[usize], z: &[f64], o: &mut [f64]| g.apply(&[1], z, o));
        let alone = solve_fixed_point(&mut only1, &vec![0.0; dim], dim, &opts).unwrap();
        assert_eq!(&sol.z[dim..], &alone.z[..], "{}", m.name());
        assert_eq!(alone.stats.row_iterations[0], st.row_iterations[1]);
    }
}

#[test]
fn running_out_of_iterations_keeps_the_last_iterate() {
    let mut f = FnRowMap(|_r: &[usize], z: &[f64], o: &mut [f64]| o[0] = 0.99 * z[0] + 1.0);
    let opts = FixedPointOptions::new(FixedPointMethod::picard()).with_tol(1e-12, 0.0).with_max_iter(5);
    match solve_fixed_point(&mut f, &[0.0], 1, &opts) {
        Err(FixedPointError::NotConverged { unconverged: 1, rows: 1, max_iter: 5, worst, last, .. }) => {
            // Five images from 0: z_k = (1 - 0.99^k) / 0.01, the fifth image is z_5.
            let z5 = (1.0 - 0.99f64.powi(5)) / 0.01;
            assert!((last.z[0] - z5).abs() < 1e-12, "{}", last.z[0]);
            assert_eq!(last.stats.row_iterations, vec![5]);
            assert!(worst > 1e-3, "{worst}");
        }
        other => panic!("expected NotConverged, got {other:?}"),
    }
}

#[test]
fn non_finite_maps_and_bad_settings_are_typed_errors() {
    // Row 0 is the identity (fixed at once); row 1 goes 0.5 -> 2 -> 5 -> NaN.
    let mut f = FnRowMap(|rows: &[usize], z: &[f64], o: &mut [f64]| {
        for (j, &r) in rows.iter().enumerate() {
            o[j] = if r == 0 {
                z[j]
            } else if z[j] > 2.0 {
                f64::NAN
            } else {
                2.0 * z[j] + 1.0
            };
        }
    });
    let e = solve_fixed_point(&mut f, &[0.0, 0.5], 1, &FixedPointOptions::new(FixedPointMethod::picard())).unwrap_err();
    assert!(matches!(e, FixedPointError::NonFinite { row: 1, iteration: 3 }), "{e:?}");
    let ok = |m| FixedPointOptions::new(m);
    for (opts, field) in [
        (ok(FixedPointMethod::Picard { damping: 0.0 }), "damping"),
        (ok(FixedPointMethod::Anderson { memory: 0, damping: 1.0, regularisation: 0.0 }), "memory"),
        (ok(FixedPointMethod::Broyden { memory: 0 }), "memory"),
        (ok(FixedPointMethod::anderson()).with_tol(-1.0, 0.0), "rtol"),
        (ok(FixedPointMethod::anderson()).with_tol(1e-3, f64::NAN), "atol"),
        (ok(FixedPointMethod::anderson()).with_max_iter(0), "max_iter"),
    ] {
        let mut g = FnRowMap(|_r: &[usize], z: &[f64], o: &mut [f64]| o.copy_from_slice(z));
        match solve_fixed_point(&mut g, &[0.0], 1, &opts) {
            Err(FixedPointError::BadOptions { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut g = FnRowMap(|_r: &[usize], z: &[f64], o: &mut [f64]| o.copy_from_slice(z));
    assert!(matches!(
        solve_fixed_point(&mut g, &[0.0; 3], 2, &ok(FixedPointMethod::picard())),
        Err(FixedPointError::BadOptions { field: "z0", .. })
    ));
}

#[test]
fn single_precision_rows_converge_to_their_tolerance() {
    let (rows, dim) = (2, 10);
    let f64map = Affine::new(rows, dim, &[0.8], 11);
    let exact: Vec<f64> = (0..rows).flat_map(|r| f64map.exact(r)).collect();
    for m in methods() {
        let mut f = FnRowMap(|r: &[usize], z: &[f32], o: &mut [f32]| {
            let zd: Vec<f64> = z.iter().map(|&v| v as f64).collect();
            let mut od = vec![0.0; o.len()];
            Affine::new(rows, dim, &[0.8], 11).apply(r, &zd, &mut od);
            o.iter_mut().zip(od).for_each(|(a, b)| *a = b as f32);
        });
        let opts = FixedPointOptions::new(m).with_tol(1e-5, 0.0).with_max_iter(500);
        let sol = solve_fixed_point(&mut f, &vec![0.0f32; rows * dim], dim, &opts).unwrap();
        let err = sol.z.iter().zip(&exact).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-4, "{}: {err:e}", m.name());
    }
}
