//! Host linear algebra of the implicit steppers: dense LU with partial pivoting and restarted
//! GMRES, both on `f64` slices.
//!
//! GMRES runs on a block of lanes in lockstep: every iteration applies each lane's operator to
//! its own vector in one call (one batched evaluation of the dynamics for matrix-free
//! Jacobian products), and each lane stops when its own residual is small enough.

/// LU factorisation with partial pivoting of the `n x n` row-major matrix `a`, in place
/// (`P A = L U`, `L` unit lower triangular below the diagonal, `U` on and above it; `piv[k]` is
/// the row swapped with row `k` at step `k`). Returns `false` when a pivot is zero or not finite
/// (the matrix is singular to working precision).
pub fn lu_factor(a: &mut [f64], n: usize, piv: &mut [usize]) -> bool {
    for k in 0..n {
        let mut p = k;
        let mut best = a[k * n + k].abs();
        for i in k + 1..n {
            let v = a[i * n + k].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        piv[k] = p;
        if best == 0.0 || !best.is_finite() {
            return false;
        }
        if p != k {
            for c in 0..n {
                a.swap(k * n + c, p * n + c);
            }
        }
        let inv = 1.0 / a[k * n + k];
        for i in k + 1..n {
            let l = a[i * n + k] * inv;
            a[i * n + k] = l;
            if l != 0.0 {
                for c in k + 1..n {
                    a[i * n + c] -= l * a[k * n + c];
                }
            }
        }
    }
    true
}

/// Solve `A x = b` in place (`b` becomes `x`) with the factors of [`lu_factor`].
pub fn lu_solve(lu: &[f64], n: usize, piv: &[usize], b: &mut [f64]) {
    for k in 0..n {
        if piv[k] != k {
            b.swap(k, piv[k]);
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for c in 0..i {
            s -= lu[i * n + c] * b[c];
        }
        b[i] = s;
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for c in i + 1..n {
            s -= lu[i * n + c] * b[c];
        }
        b[i] = s / lu[i * n + i];
    }
}

/// Solve `A^T x = b` in place with the factors of [`lu_factor`] (`A^T = U^T L^T P`).
pub fn lu_solve_transposed(lu: &[f64], n: usize, piv: &[usize], b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for r in 0..i {
            s -= lu[r * n + i] * b[r];
        }
        b[i] = s / lu[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for r in i + 1..n {
            s -= lu[r * n + i] * b[r];
        }
        b[i] = s;
    }
    for k in (0..n).rev() {
        if piv[k] != k {
            b.swap(k, piv[k]);
        }
    }
}

/// Outcome of one lane's GMRES solve.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GmresLane {
    /// Whether `||b - A x|| <= tol ||b||` was reached.
    pub converged: bool,
    /// Krylov iterations (operator applications) spent on this lane.
    pub iterations: usize,
    /// Final relative residual `||b - A x|| / ||b||` (0 for `b = 0`).
    pub residual: f64,
}

/// Restarted GMRES (Saad and Schultz 1986) with modified Gram-Schmidt and Givens rotations, on
/// `m` lanes of width `n` in lockstep. Buffers are kept between solves.
#[derive(Debug, Clone, Default)]
pub struct Gmres {
    basis: Vec<f64>,
    hess: Vec<f64>,
    cs: Vec<f64>,
    sn: Vec<f64>,
    g: Vec<f64>,
    w: Vec<f64>,
    av: Vec<f64>,
    y: Vec<f64>,
    /// Per-lane outcome of the last solve.
    pub lanes: Vec<GmresLane>,
}

impl Gmres {
    /// Solve `A_j x_j = b_j` for each lane `j < m` starting from the `x` given, where
    /// `apply(v, out)` writes `A_j v_j` into `out_j` for every lane (lanes already done are
    /// passed zero vectors; their outputs are ignored). Stops a lane at relative residual
    /// `tol` or after `max_iterations` applications; Krylov spaces hold at most `restart`
    /// vectors. Returns the number of `apply` calls.
    #[allow(clippy::too_many_arguments)]
    pub fn solve(
        &mut self,
        m: usize,
        n: usize,
        b: &[f64],
        x: &mut [f64],
        tol: f64,
        restart: usize,
        max_iterations: usize,
        mut apply: impl FnMut(&[f64], &mut [f64]),
    ) -> usize {
        let k_max = restart.clamp(1, n.max(1));
        self.basis.resize(m * (k_max + 1) * n, 0.0);
        self.hess.resize(m * (k_max + 1) * k_max, 0.0);
        self.cs.resize(m * k_max, 0.0);
        self.sn.resize(m * k_max, 0.0);
        self.g.resize(m * (k_max + 1), 0.0);
        self.w.resize(m * n, 0.0);
        self.av.resize(m * n, 0.0);
        self.y.resize(k_max, 0.0);
        self.lanes.clear();
        self.lanes.resize(m, GmresLane::default());
        let bnorm: Vec<f64> = (0..m).map(|j| norm2(&b[j * n..(j + 1) * n])).collect();
        let mut calls = 0;
        let mut active = vec![true; m];
        let mut steps = vec![0usize; m];
        for j in 0..m {
            if bnorm[j] == 0.0 {
                x[j * n..(j + 1) * n].fill(0.0);
                self.lanes[j] = GmresLane { converged: true, iterations: 0, residual: 0.0 };
                active[j] = false;
            }
        }
        while active.iter().any(|&a| a) {
            // r = b - A x, v_0 = r / |r|.
            self.w.copy_from_slice(&x[..m * n]);
            for j in 0..m {
                if !active[j] {
                    self.w[j * n..(j + 1) * n].fill(0.0);
                }
            }
            apply(&self.w, &mut self.av);
            calls += 1;
            for j in 0..m {
                if !active[j] {
                    continue;
                }
                self.lanes[j].iterations += 1;
                let v0 = &mut self.basis[j * (k_max + 1) * n..j * (k_max + 1) * n + n];
                for i in 0..n {
                    v0[i] = b[j * n + i] - self.av[j * n + i];
                }
                let beta = norm2(v0);
                self.lanes[j].residual = beta / bnorm[j];
                if beta <= tol * bnorm[j] || self.lanes[j].iterations >= max_iterations {
                    self.lanes[j].converged = beta <= tol * bnorm[j];
                    active[j] = false;
                    continue;
                }
                v0.iter_mut().for_each(|v| *v /= beta);
                let g = &mut self.g[j * (k_max + 1)..(j + 1) * (k_max + 1)];
                g.fill(0.0);
                g[0] = beta;
                steps[j] = 0;
            }
            let mut cycling: Vec<bool> = active.clone();
            for k in 0..k_max {
                if !cycling.iter().any(|&c| c) {
                    break;
                }
                for j in 0..m {
                    let dst = &mut self.w[j * n..(j + 1) * n];
                    if cycling[j] {
                        let base = j * (k_max + 1) * n + k * n;
                        dst.copy_from_slice(&self.basis[base..base + n]);
                    } else {
                        dst.fill(0.0);
                    }
                }
                apply(&self.w, &mut self.av);
                calls += 1;
                for j in 0..m {
                    if !cycling[j] {
                        continue;
                    }
                    self.lanes[j].iterations += 1;
                    let vb = j * (k_max + 1) * n;
                    let hb = j * (k_max + 1) * k_max;
                    let w = &mut self.av[j * n..(j + 1) * n];
                    for i in 0..=k {
                        let v = &self.basis[vb + i * n..vb + (i + 1) * n];
                        let hik = dot(w, v);
                        self.hess[hb + i * k_max + k] = hik;
                        for (wi, vi) in w.iter_mut().zip(v) {
                            *wi -= hik * vi;
                        }
                    }
                    let hk1 = norm2(w);
                    self.hess[hb + (k + 1) * k_max + k] = hk1;
                    if hk1 > 0.0 {
                        let next = &mut self.basis[vb + (k + 1) * n..vb + (k + 2) * n];
                        for (o, wi) in next.iter_mut().zip(w.iter()) {
                            *o = wi / hk1;
                        }
                    }
                    // Apply the previous rotations to column k, then a new one.
                    let (cs, sn) = (&mut self.cs[j * k_max..(j + 1) * k_max], &mut self.sn[j * k_max..(j + 1) * k_max]);
                    for i in 0..k {
                        let (a, bb) = (self.hess[hb + i * k_max + k], self.hess[hb + (i + 1) * k_max + k]);
                        self.hess[hb + i * k_max + k] = cs[i] * a + sn[i] * bb;
                        self.hess[hb + (i + 1) * k_max + k] = -sn[i] * a + cs[i] * bb;
                    }
                    let (a, bb) = (self.hess[hb + k * k_max + k], self.hess[hb + (k + 1) * k_max + k]);
                    let r = a.hypot(bb);
                    (cs[k], sn[k]) = if r == 0.0 { (1.0, 0.0) } else { (a / r, bb / r) };
                    self.hess[hb + k * k_max + k] = r;
                    self.hess[hb + (k + 1) * k_max + k] = 0.0;
                    let g = &mut self.g[j * (k_max + 1)..(j + 1) * (k_max + 1)];
                    g[k + 1] = -sn[k] * g[k];
                    g[k] *= cs[k];
                    steps[j] = k + 1;
                    let res = g[k + 1].abs();
                    self.lanes[j].residual = res / bnorm[j];
                    if res <= tol * bnorm[j] || hk1 == 0.0 || self.lanes[j].iterations >= max_iterations {
                        cycling[j] = false;
                    }
                }
            }
            // x += V y with R y = g (back substitution) for each lane of this cycle.
            for j in 0..m {
                if !active[j] {
                    continue;
                }
                let kk = steps[j];
                let hb = j * (k_max + 1) * k_max;
                let g = &self.g[j * (k_max + 1)..(j + 1) * (k_max + 1)];
                for i in (0..kk).rev() {
                    let mut s = g[i];
                    for c in i + 1..kk {
                        s -= self.hess[hb + i * k_max + c] * self.y[c];
                    }
                    let d = self.hess[hb + i * k_max + i];
                    self.y[i] = if d != 0.0 { s / d } else { 0.0 };
                }
                let vb = j * (k_max + 1) * n;
                for i in 0..kk {
                    let v = &self.basis[vb + i * n..vb + (i + 1) * n];
                    for (xi, vi) in x[j * n..(j + 1) * n].iter_mut().zip(v) {
                        *xi += self.y[i] * vi;
                    }
                }
                let lane = &mut self.lanes[j];
                if lane.residual <= tol {
                    lane.converged = true;
                    active[j] = false;
                } else if lane.iterations >= max_iterations {
                    active[j] = false;
                }
            }
        }
        calls
    }
}

/// Euclidean norm.
pub fn norm2(x: &[f64]) -> f64 {
    dot(x, x).sqrt()
}

/// Euclidean inner product.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matvec(a: &[f64], n: usize, x: &[f64], out: &mut [f64]) {
        for i in 0..n {
            out[i] = (0..n).map(|c| a[i * n + c] * x[c]).sum();
        }
    }

    /// A non-symmetric matrix that needs pivoting (zero leading entry).
    fn sample() -> (Vec<f64>, usize) {
        (vec![0.0, 2.0, 1.0, 1.0, -1.0, 4.0, 3.0, 1.0, -2.0], 3)
    }

    #[test]
    fn lu_solves_plain_and_transposed_systems() {
        let (a, n) = sample();
        let mut lu = a.clone();
        let mut piv = vec![0; n];
        assert!(lu_factor(&mut lu, n, &mut piv));
        let x = [1.0, -2.0, 0.5];
        let mut b = vec![0.0; n];
        matvec(&a, n, &x, &mut b);
        lu_solve(&lu, n, &piv, &mut b);
        let at: Vec<f64> = (0..n * n).map(|k| a[(k % n) * n + k / n]).collect();
        let mut bt = vec![0.0; n];
        matvec(&at, n, &x, &mut bt);
        lu_solve_transposed(&lu, n, &piv, &mut bt);
        for i in 0..n {
            assert!((b[i] - x[i]).abs() < 1e-14 && (bt[i] - x[i]).abs() < 1e-14, "{b:?} {bt:?}");
        }
        let mut singular = vec![1.0, 2.0, 2.0, 4.0];
        assert!(!lu_factor(&mut singular, 2, &mut [0; 2]));
    }

    #[test]
    fn gmres_solves_two_lanes_with_restarts() {
        let (a, n) = sample();
        // Lane 0 solves with A + 8 I, lane 1 with 2 A + 9 I (restarted GMRES converges on
        // diagonally dominant matrices; full GMRES, restart 3 = n, on any nonsingular one).
        let shifted =
            |s: f64, d: f64| -> Vec<f64> { a.iter().enumerate().map(|(k, v)| s * v + if k % (n + 1) == 0 { d } else { 0.0 }).collect() };
        let (a1, a2) = (shifted(1.0, 8.0), shifted(2.0, 9.0));
        let x_true = [0.3, -1.0, 2.0, 1.0, 1.0, -0.5];
        let mut b = vec![0.0; 2 * n];
        matvec(&a1, n, &x_true[..n], &mut b[..n]);
        matvec(&a2, n, &x_true[n..], &mut b[n..]);
        for restart in [1, 2, 3] {
            let mut x = vec![0.0; 2 * n];
            let mut g = Gmres::default();
            g.solve(2, n, &b, &mut x, 1e-13, restart, 500, |v, out| {
                matvec(&a1, n, &v[..n], &mut out[..n]);
                matvec(&a2, n, &v[n..], &mut out[n..]);
            });
            assert!(g.lanes.iter().all(|l| l.converged), "restart {restart}: {:?}", g.lanes);
            for i in 0..2 * n {
                assert!((x[i] - x_true[i]).abs() < 1e-10, "restart {restart}: {x:?}");
            }
        }
        // Full GMRES on the matrix that needs pivoting.
        let mut bb = vec![0.0; n];
        matvec(&a, n, &x_true[..n], &mut bb);
        let mut x = vec![0.0; n];
        let mut g = Gmres::default();
        g.solve(1, n, &bb, &mut x, 1e-13, n, 50, |v, out| matvec(&a, n, v, out));
        assert!(g.lanes[0].converged && g.lanes[0].iterations <= n + 2, "{:?}", g.lanes);
        for i in 0..n {
            assert!((x[i] - x_true[i]).abs() < 1e-10, "{x:?}");
        }
    }
}
