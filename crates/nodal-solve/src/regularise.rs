//! Regularisers that make learned dynamics cheap to solve, carried along the solve as extra
//! state components so that every gradient method (backprop, checkpointing, the continuous
//! adjoint) differentiates them with no special casing.
//!
//! With `y` of `rows` rows of width `dim`, the augmented state is `[y, r_1, ..., r_P]`, one
//! accumulator per penalty, `r_i(t0) = 0` and `dr_i/dt = q_i(t, y)`, each `q_i` a mean over rows:
//!
//! | penalty | `q(t, y)` per row, averaged over rows | reference |
//! |---|---|---|
//! | [`Penalty::Kinetic`] | `‖f‖²` | Finlay et al. 2020, "How to train your neural ODE" |
//! | [`Penalty::JacobianFrobenius`] | `(1/m) Σ_k ‖J ε_k‖²`, `m` Rademacher probes `ε_k`: unbiased for `‖J‖_F²` since `E[ε εᵀ] = I` (Hutchinson 1990) | Finlay et al. 2020 |
//! | [`Penalty::Order2`] | `‖d²y/dt²‖² = ‖J f‖²` (autonomous `f`) | Kelly et al. 2020, "Learning differential equations that are easy to solve", K = 2 |
//!
//! `J = df/dy`. The second derivative along the trajectory is computed exactly in forward mode:
//! `d²y/dt² = d f(y(t))/dt = J(y) f(y)`, one Jacobian-vector product along `f` (no Taylor
//! series library, no finite differences). Its gradient needs second derivatives of `f`, which
//! [`JvpDynamics::jvp_vjp`] provides; see [`Regularised`] for the chain rule.
//! Dynamics with an explicit time dependence would add `∂f/∂t` to `d²y/dt²`; the penalties here
//! use `J f` only, exact for autonomous dynamics such as the fused MLP.
//!
//! The loss then adds `Σ_i λ_i r_i(T)`: put `λ_i` in the cotangent of `r_i` at the final output time.

use crate::dynamics::{Dynamics, VjpDynamics};
use crate::jvp::JvpDynamics;
use crate::scalar::Scalar;
use thiserror::Error;

/// One integrated penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// Kinetic energy `∫ ‖f‖² dt`.
    Kinetic,
    /// Jacobian Frobenius norm `∫ ‖df/dy‖_F² dt`, Hutchinson estimate with this many probes.
    JacobianFrobenius {
        /// Rademacher probe vectors per evaluation (fixed for a solve; see [`Regularised::reseed`]).
        probes: usize,
    },
    /// Second-order penalty `∫ ‖d²y/dt²‖² dt` (Kelly et al.'s `R_K` with `K = 2`).
    Order2,
}

impl Penalty {
    /// Short name (`kinetic`, `jacobian`, `order2`), as used on the command line and in files.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Kinetic => "kinetic",
            Self::JacobianFrobenius { .. } => "jacobian",
            Self::Order2 => "order2",
        }
    }
    /// Whether it needs Jacobian-vector products ([`JvpDynamics`]).
    pub fn needs_jvp(&self) -> bool {
        !matches!(self, Self::Kinetic)
    }
}

/// Why a regularised system could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegulariseError {
    /// A Jacobian penalty was asked of dynamics without Jacobian-vector products.
    #[error(
        "the {penalty} penalty needs Jacobian-vector products, which these dynamics do not provide (only the kinetic penalty is available)"
    )]
    NeedsJvp {
        /// Penalty name.
        penalty: &'static str,
    },
    /// The Hutchinson estimator needs at least one probe.
    #[error("the jacobian penalty needs at least one probe vector (got 0)")]
    NoProbes,
    /// Zero row width.
    #[error("row width must be positive")]
    ZeroDim,
    /// A combination the caller does not support.
    #[error("{0}")]
    Unsupported(String),
}

/// Dynamics `f` augmented with the accumulators of [`Penalty`]s. See the module docs.
///
/// Reverse mode through the augmented right-hand side, for the cotangent `[a, ā_1..ā_P]`
/// (the accumulators never feed back, so their own adjoints are zero):
///
/// - kinetic: `q = ‖f‖²/rows` adds `(2ā/rows) f` to the cotangent of `f`;
/// - Jacobian: `q = Σ_k ‖J ε_k‖²/(rows m)`; with `c_k = (2ā/(rows m)) J ε_k`, each probe adds
///   `c_kᵀ d(J ε_k)/d(y, θ)` (the probes are constants);
/// - order 2: `q = ‖J f‖²/rows`; with `c = (2ā/rows) J f`, adds `cᵀ d(J v)/d(y, θ)` at `v = f` and,
///   because `v = f` itself depends on `(y, θ)`, adds `Jᵀ c` to the cotangent of `f`;
/// - finally one VJP of `f` with the accumulated cotangent `a + ...`.
pub struct Regularised<T: Scalar, F> {
    /// The wrapped dynamics.
    pub inner: F,
    dim: usize,
    penalties: Vec<Penalty>,
    seed: u64,
    probes: Vec<Vec<T>>,
    y: Vec<T>,
    f: Vec<T>,
    tmp: Vec<T>,
    jv: Vec<T>,
    cf: Vec<T>,
    cu: Vec<T>,
    acc: Vec<T>,
    av: Vec<T>,
}

impl<T: Scalar, F: JvpDynamics<Vec<T>>> Regularised<T, F> {
    /// Wrap `inner` (rows of width `dim`) with `penalties`; `seed` draws the Hutchinson probes.
    pub fn new(inner: F, dim: usize, penalties: &[Penalty], seed: u64) -> Result<Self, RegulariseError> {
        if dim == 0 {
            return Err(RegulariseError::ZeroDim);
        }
        for p in penalties {
            if p.needs_jvp() && !inner.has_jvp() {
                return Err(RegulariseError::NeedsJvp { penalty: p.name() });
            }
            if let Penalty::JacobianFrobenius { probes: 0 } = p {
                return Err(RegulariseError::NoProbes);
            }
        }
        let e = Vec::new();
        Ok(Self {
            inner,
            dim,
            penalties: penalties.to_vec(),
            seed,
            probes: Vec::new(),
            y: e.clone(),
            f: e.clone(),
            tmp: e.clone(),
            jv: e.clone(),
            cf: e.clone(),
            cu: e.clone(),
            acc: e.clone(),
            av: e,
        })
    }

    /// The penalties, in accumulator order.
    pub fn penalties(&self) -> &[Penalty] {
        &self.penalties
    }

    /// Number of accumulators appended to the state.
    pub fn extra(&self) -> usize {
        self.penalties.len()
    }

    /// Draw fresh probe vectors (call between training iterations; within one solve and its
    /// backward pass the probes must stay fixed so that the augmented system is one ODE).
    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.probes.clear();
    }

    /// `[y0, 0, ..., 0]`.
    pub fn augment(&self, y0: &[T]) -> Vec<T> {
        let mut v = y0.to_vec();
        v.extend(std::iter::repeat_n(T::ZERO, self.extra()));
        v
    }

    /// The accumulators `r_i` of an augmented state, as `f64`.
    pub fn values(&self, y_aug: &[T]) -> Vec<f64> {
        y_aug[y_aug.len() - self.extra()..].iter().map(|v| v.to_f64()).collect()
    }

    fn probe_count(&self) -> usize {
        self.penalties.iter().map(|p| if let Penalty::JacobianFrobenius { probes } = p { *probes } else { 0 }).max().unwrap_or(0)
    }

    /// Rademacher vectors from a splitmix64 stream of `seed` (reproducible, platform independent).
    fn ensure_probes(&mut self, n: usize) {
        let m = self.probe_count();
        if self.probes.len() == m && self.probes.iter().all(|p| p.len() == n) {
            return;
        }
        let mut s = self.seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        self.probes = (0..m).map(|_| (0..n).map(|_| if next() >> 63 == 0 { T::ONE } else { T::ZERO - T::ONE }).collect()).collect();
    }

    /// Copy `y` out of the augmented state and size the buffers.
    fn load(&mut self, y_aug: &[T]) -> usize {
        let n = y_aug.len() - self.extra();
        self.y.clear();
        self.y.extend_from_slice(&y_aug[..n]);
        for b in [&mut self.f, &mut self.tmp, &mut self.jv, &mut self.cf, &mut self.cu, &mut self.acc, &mut self.av] {
            b.resize(n, T::ZERO);
        }
        self.ensure_probes(n);
        n
    }
}

fn sq_sum<T: Scalar>(v: &[T]) -> f64 {
    v.iter().map(|x| x.to_f64() * x.to_f64()).sum()
}

impl<T: Scalar, F: JvpDynamics<Vec<T>>> Dynamics<Vec<T>> for Regularised<T, F> {
    fn eval(&mut self, t: f64, y_aug: &Vec<T>, dy_aug: &mut Vec<T>) {
        let n = self.load(y_aug);
        let rows = (n / self.dim).max(1) as f64;
        self.inner.eval(t, &self.y, &mut self.f);
        dy_aug[..n].copy_from_slice(&self.f);
        for i in 0..self.penalties.len() {
            let q = match self.penalties[i] {
                Penalty::Kinetic => sq_sum(&self.f) / rows,
                Penalty::JacobianFrobenius { probes } => {
                    let mut s = 0.0;
                    for k in 0..probes {
                        self.inner.eval_and_jvp(t, &self.y, &self.probes[k], &mut self.tmp, &mut self.jv);
                        s += sq_sum(&self.jv);
                    }
                    s / (rows * probes as f64)
                }
                Penalty::Order2 => {
                    self.inner.eval_and_jvp(t, &self.y, &self.f, &mut self.tmp, &mut self.jv);
                    sq_sum(&self.jv) / rows
                }
            };
            dy_aug[n + i] = T::from_f64(q);
        }
    }
}

impl<T: Scalar, F: JvpDynamics<Vec<T>>> VjpDynamics<Vec<T>> for Regularised<T, F> {
    type Params = F::Params;

    fn param_zeros(&self) -> F::Params {
        self.inner.param_zeros()
    }

    fn vjp(&mut self, t: f64, y_aug: &Vec<T>, a_aug: &Vec<T>, adj_y_aug: &mut Vec<T>, adj_p: &mut F::Params) {
        let n = self.load(y_aug);
        let rows = (n / self.dim).max(1) as f64;
        self.cf.copy_from_slice(&a_aug[..n]);
        self.acc.iter_mut().for_each(|v| *v = T::ZERO);
        let active = (0..self.penalties.len()).any(|i| a_aug[n + i].to_f64() != 0.0);
        if active {
            self.inner.eval(t, &self.y, &mut self.f);
        }
        for i in 0..self.penalties.len() {
            let abar = a_aug[n + i].to_f64();
            if abar == 0.0 {
                continue;
            }
            match self.penalties[i] {
                Penalty::Kinetic => {
                    let s = T::from_f64(2.0 * abar / rows);
                    for (c, f) in self.cf.iter_mut().zip(&self.f) {
                        *c += s * *f;
                    }
                }
                Penalty::JacobianFrobenius { probes } => {
                    let s = T::from_f64(2.0 * abar / (rows * probes as f64));
                    for k in 0..probes {
                        self.inner.eval_and_jvp(t, &self.y, &self.probes[k], &mut self.tmp, &mut self.jv);
                        for (c, j) in self.cu.iter_mut().zip(&self.jv) {
                            *c = s * *j;
                        }
                        self.inner.jvp_vjp(t, &self.y, &self.probes[k], &self.cu, &mut self.tmp, &mut self.av, adj_p);
                        for (a, v) in self.acc.iter_mut().zip(&self.tmp) {
                            *a += *v;
                        }
                    }
                }
                Penalty::Order2 => {
                    let s = T::from_f64(2.0 * abar / rows);
                    self.inner.eval_and_jvp(t, &self.y, &self.f, &mut self.tmp, &mut self.jv);
                    for (c, j) in self.cu.iter_mut().zip(&self.jv) {
                        *c = s * *j;
                    }
                    self.inner.jvp_vjp(t, &self.y, &self.f, &self.cu, &mut self.tmp, &mut self.av, adj_p);
                    for (a, v) in self.acc.iter_mut().zip(&self.tmp) {
                        *a += *v;
                    }
                    for (c, v) in self.cf.iter_mut().zip(&self.av) {
                        *c += *v;
                    }
                }
            }
        }
        self.inner.vjp(t, &self.y, &self.cf, &mut self.tmp, adj_p);
        for ((o, a), v) in adj_y_aug[..n].iter_mut().zip(&self.acc).zip(&self.tmp) {
            *o = *a + *v;
        }
        adj_y_aug[n..].iter_mut().for_each(|v| *v = T::ZERO);
    }
}

/// Per-sample solving with penalties: every row carries its own accumulators, `[y_r, r_r1..r_rP]`
/// (width `dim + P`), and `q` is that row's value (rows = 1 in the module's table), so each row of
/// a per-sample solve is the same ODE as the row solved alone with [`Regularised::augment`].
/// One batched evaluation of `f` (and one JVP per probe or for `J f`) serves the whole block;
/// the Hutchinson probes are the one-row probes, the same for every row. The JVP terms are taken
/// at the first row's time (exact for autonomous dynamics, as everywhere in this module).
impl<T: Scalar, F: JvpDynamics<Vec<T>> + crate::lanes::RowDynamics<T>> crate::lanes::RowDynamics<T> for Regularised<T, F> {
    fn eval_rows(&mut self, t: &[f64], y_aug: &[T], dy_aug: &mut [T]) {
        let (d, p, rows) = (self.dim, self.penalties.len(), t.len());
        let w = d + p;
        self.y.clear();
        for r in 0..rows {
            self.y.extend_from_slice(&y_aug[r * w..r * w + d]);
        }
        let n = rows * d;
        for b in [&mut self.f, &mut self.tmp, &mut self.jv, &mut self.av] {
            b.resize(n, T::ZERO);
        }
        self.ensure_probes(d);
        self.inner.eval_rows(t, &self.y, &mut self.f);
        for r in 0..rows {
            dy_aug[r * w..r * w + d].copy_from_slice(&self.f[r * d..(r + 1) * d]);
        }
        let per_row = |v: &[T], r: usize| sq_sum(&v[r * d..(r + 1) * d]);
        for i in 0..p {
            match self.penalties[i] {
                Penalty::Kinetic => (0..rows).for_each(|r| dy_aug[r * w + d + i] = T::from_f64(per_row(&self.f, r))),
                Penalty::JacobianFrobenius { probes } => {
                    let mut s = vec![0.0; rows];
                    for k in 0..probes {
                        for r in 0..rows {
                            self.av[r * d..(r + 1) * d].copy_from_slice(&self.probes[k]);
                        }
                        self.inner.eval_and_jvp(t[0], &self.y, &self.av, &mut self.tmp, &mut self.jv);
                        s.iter_mut().enumerate().for_each(|(r, acc)| *acc += per_row(&self.jv, r));
                    }
                    (0..rows).for_each(|r| dy_aug[r * w + d + i] = T::from_f64(s[r] / probes as f64));
                }
                Penalty::Order2 => {
                    self.inner.eval_and_jvp(t[0], &self.y, &self.f, &mut self.tmp, &mut self.jv);
                    (0..rows).for_each(|r| dy_aug[r * w + d + i] = T::from_f64(per_row(&self.jv, r)));
                }
            }
        }
    }
}

/// First-order dynamics (no Jacobian-vector products) usable with [`Penalty::Kinetic`] only:
/// wrap any [`VjpDynamics`] (e.g. a burn module) to regularise its kinetic energy.
pub struct FirstOrder<F>(pub F);

impl<T: Scalar, F: Dynamics<Vec<T>>> Dynamics<Vec<T>> for FirstOrder<F> {
    fn eval(&mut self, t: f64, y: &Vec<T>, dy: &mut Vec<T>) {
        self.0.eval(t, y, dy)
    }
}

impl<T: Scalar, F: VjpDynamics<Vec<T>>> VjpDynamics<Vec<T>> for FirstOrder<F> {
    type Params = F::Params;
    fn param_zeros(&self) -> F::Params {
        self.0.param_zeros()
    }
    fn vjp(&mut self, t: f64, y: &Vec<T>, a: &Vec<T>, adj_y: &mut Vec<T>, adj_p: &mut F::Params) {
        self.0.vjp(t, y, a, adj_y, adj_p)
    }
    fn eval_and_vjp(&mut self, t: f64, y: &Vec<T>, a: &Vec<T>, dy: &mut Vec<T>, adj_y: &mut Vec<T>, adj_p: &mut F::Params) {
        self.0.eval_and_vjp(t, y, a, dy, adj_y, adj_p)
    }
}

impl<T: Scalar, F: crate::lanes::RowDynamics<T>> crate::lanes::RowDynamics<T> for FirstOrder<F> {
    fn eval_rows(&mut self, t: &[f64], y: &[T], dy: &mut [T]) {
        self.0.eval_rows(t, y, dy)
    }
}

/// Never reached: [`Regularised::new`] rejects Jacobian penalties when `has_jvp` is false. The
/// products are filled with NaN so that a misuse could never pass as a number.
impl<T: Scalar, F: VjpDynamics<Vec<T>>> JvpDynamics<Vec<T>> for FirstOrder<F> {
    fn has_jvp(&self) -> bool {
        false
    }
    fn eval_and_jvp(&mut self, t: f64, y: &Vec<T>, _v: &Vec<T>, dy: &mut Vec<T>, jv: &mut Vec<T>) {
        self.0.eval(t, y, dy);
        jv.iter_mut().for_each(|x| *x = T::from_f64(f64::NAN));
    }
    fn jvp_vjp(&mut self, _t: f64, _y: &Vec<T>, _v: &Vec<T>, _c: &Vec<T>, adj_y: &mut Vec<T>, adj_v: &mut Vec<T>, _adj_p: &mut F::Params) {
        adj_y.iter_mut().chain(adj_v.iter_mut()).for_each(|x| *x = T::from_f64(f64::NAN));
    }
}
