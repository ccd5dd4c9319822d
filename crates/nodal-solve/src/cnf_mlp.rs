//! A fused tanh MLP as the dynamics of a continuous normalising flow, with the trace of its
//! Jacobian and its exact reverse (second derivatives included) written by hand, so a CNF on
//! small data runs without any framework overhead.
//!
//! The network is `f(t, z) = W_L tanh(... tanh(W_1 [z, t] + b_1) ...) + b_L` (time concatenated
//! at the input, the FFJORD toys' model), parameters laid out per layer as `[W_l (out x in,
//! row-major, PyTorch's layout), b_l]`. With [`CnfMode::Augmented`] the state rows are
//! `[z (d), Δ, r_kin?, r_jac?]` and
//!
//! ```text
//! d/dt [z, Δ, r_kin, r_jac] = [f, -w Σ_k ε_kᵀ J ε_k, ‖f‖², w Σ_k ‖J ε_k‖²]
//! ```
//!
//! with `J = ∂f/∂z`, tangents `ε_k` (the basis vectors and `w = 1` for the exact trace, probes
//! and `w = 1/K` for Hutchinson's) pushed forward through every layer in one batched product:
//! `U_0 = ε`, `U_l = s_l * (U_{l-1} W_lᵀ)` with `s_l = 1 - tanh²(a_l)`, `J ε = U_{L-1} W_Lᵀ`.
//!
//! Reverse mode, for the cotangent `[f̄, ḡ, k̄, j̄]` of a row: `J̄ε_k = -w ḡ ε_k + 2 w j̄ J ε_k`,
//! `f̄ += 2 k̄ f`; then per layer, from the top, with `du_l = U_{l-1} W_lᵀ`:
//!
//! ```text
//! W̄_l += āᵀ x_{l-1} + d̄uᵀ U_{l-1},   b̄_l += Σ_rows ā,   x̄_{l-1} = ā W_l,   Ū_{l-1} = d̄u W_l
//! below a tanh layer:  d̄u = Ū * s,   s̄ = Σ_k Ū * du,   ā = (x̄ - 2 h s̄) * s
//! ```
//!
//! (`h = tanh a`, `ds/da = -2 h s`). The state's adjoint is `x̄_0`'s `z` part; `Δ` and the
//! accumulators do not feed back. Checked against central differences in the tests.

use crate::dynamics::{Dynamics, VjpDynamics};
use crate::scalar::Scalar;

/// What the network's state rows hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CnfMode {
    /// `[z, Δ, kinetic?, jacobian?]`: the flow with its log-density change and penalties.
    Augmented {
        /// Integrate `‖f‖²`.
        kinetic: bool,
        /// Integrate the Jacobian's Frobenius norm (exact or Hutchinson, as the trace).
        jacobian: bool,
    },
    /// `[z]`: the plain flow (sampling).
    Plain,
}

/// `C = op(A) op(B) + beta C` on row-major slices: `op(A)` is `m x k`, `op(B)` is `k x n`;
/// `ta`/`tb` mean the stored matrix is the transpose (`k x m` / `n x k`). `ldb` is the stored
/// row length of `B` (to use the first columns of a wider matrix).
#[allow(clippy::too_many_arguments)]
#[inline]
fn mm<T: Scalar>(a: &[T], ta: bool, b: &[T], tb: bool, ldb: usize, c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    if m == 0 || n == 0 {
        return;
    }
    debug_assert!(a.len() >= m * k && c.len() >= m * n);
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, ldb as isize) } else { (ldb as isize, 1) };
    // SAFETY: the slices hold the matrices the strides describe (checked above for A and C; B
    // is `k x n` with row stride `ldb`, or its transpose, by the callers' layouts); C does not
    // alias A or B (distinct borrows).
    unsafe { T::gemm(m, k, n, T::ONE, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), n as isize, 1) }
}

/// Activations of one evaluation, kept for the reverse pass.
#[derive(Debug, Clone, Default)]
struct Tape<T> {
    /// Layer inputs `x_l` (`rows x in_l`), `x_0 = [z, t]`.
    x: Vec<Vec<T>>,
    /// Tangent inputs `U_l` (`K rows x in_l`); `U_0` is the tangents (width `d`).
    u: Vec<Vec<T>>,
    /// Pre-scaling tangent products `du_l = U_{l-1} W_lᵀ` (hidden layers).
    du: Vec<Vec<T>>,
    /// Slopes `s_l = 1 - h_l²` (hidden layers).
    s: Vec<Vec<T>>,
    /// Output `f` and `J ε`.
    f: Vec<T>,
    jv: Vec<T>,
}

/// The fused CNF network. See the module docs.
#[derive(Debug, Clone)]
pub struct CnfMlp<T: Scalar> {
    /// Layer widths `[d + 1, h_1, ..., d]`.
    widths: Vec<usize>,
    /// Flat parameters.
    pub params: Vec<T>,
    offs: Vec<(usize, usize)>,
    mode: CnfMode,
    /// Tangents `[K * rows][d]` probe-major, and `K`; empty: the exact basis for the call's rows.
    probes: Vec<T>,
    k: usize,
    tape: Tape<T>,
    grad_x: Vec<T>,
    grad_u: Vec<T>,
    abar: Vec<T>,
    dubar: Vec<T>,
    basis: Vec<T>,
}

impl<T: Scalar> CnfMlp<T> {
    /// Number of parameters for these widths.
    pub fn num_params_for(widths: &[usize]) -> usize {
        widths.windows(2).map(|w| w[1] * w[0] + w[1]).sum()
    }

    /// A network with `widths = [d + 1, hidden..., d]` and flat `params`; `None` if the
    /// widths are not of that form or the parameter count does not match.
    pub fn new(widths: &[usize], params: Vec<T>, mode: CnfMode) -> Option<Self> {
        let ok = widths.len() >= 2 && widths[0] >= 2 && widths[0] == widths[widths.len() - 1] + 1 && widths.iter().all(|&w| w > 0);
        if !ok || params.len() != Self::num_params_for(widths) {
            return None;
        }
        Some(Self {
            widths: widths.to_vec(),
            offs: Self::offsets(widths),
            params,
            mode,
            probes: Vec::new(),
            k: 0,
            tape: Tape::default(),
            grad_x: Vec::new(),
            grad_u: Vec::new(),
            abar: Vec::new(),
            dubar: Vec::new(),
            basis: Vec::new(),
        })
    }

    /// Data dimension `d`.
    pub fn dim(&self) -> usize {
        self.widths[self.widths.len() - 1]
    }

    /// Layer widths.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// State row width for the current mode.
    pub fn row_width(&self) -> usize {
        match self.mode {
            CnfMode::Plain => self.dim(),
            CnfMode::Augmented { kinetic, jacobian } => self.dim() + 1 + kinetic as usize + jacobian as usize,
        }
    }

    /// Switch mode (the parameters stay).
    pub fn set_mode(&mut self, mode: CnfMode) {
        self.mode = mode;
    }

    /// Use the exact trace (the basis vectors as tangents).
    pub fn use_exact_trace(&mut self) {
        self.probes.clear();
        self.k = 0;
    }

    /// Use Hutchinson's estimator with `k` probes per row, `probes` laid out `[k * rows][d]`
    /// probe-major (fixed until changed; draw them once per solve).
    pub fn use_probes(&mut self, k: usize, probes: Vec<T>) {
        self.k = k.max(1);
        self.probes = probes;
    }

    /// Offsets of `(W_l, b_l)` in the flat parameters.
    fn offsets(widths: &[usize]) -> Vec<(usize, usize)> {
        let mut o = 0;
        widths
            .windows(2)
            .map(|w| {
                let at = (o, o + w[1] * w[0]);
                o += w[1] * w[0] + w[1];
                at
            })
            .collect()
    }

    /// Tangents for `rows` rows: `(K, weight, data)`.
    fn tangents(&mut self, rows: usize) -> (usize, T) {
        let d = self.dim();
        if self.k == 0 {
            if self.basis.len() != d * rows * d {
                self.basis = vec![T::ZERO; d * rows * d];
                for k in 0..d {
                    for r in 0..rows {
                        self.basis[(k * rows + r) * d + k] = T::ONE;
                    }
                }
            }
            (d, T::ONE)
        } else {
            (self.k, T::from_f64(1.0 / self.k as f64))
        }
    }

    /// The forward pass over `rows` rows of `z` (row stride `w`): fills the tape.
    fn forward(&mut self, t: f64, y: &[T], rows: usize, w: usize, tangents: bool) -> usize {
        let d = self.dim();
        let nl = self.widths.len() - 1;
        let (k, _) = if tangents { self.tangents(rows) } else { (0, T::ONE) };
        let offs = std::mem::take(&mut self.offs);
        let tape = &mut self.tape;
        tape.x.resize(nl, Vec::new());
        tape.u.resize(nl, Vec::new());
        tape.du.resize(nl, Vec::new());
        tape.s.resize(nl, Vec::new());
        let x0 = &mut tape.x[0];
        x0.resize(rows * (d + 1), T::ZERO);
        for r in 0..rows {
            x0[r * (d + 1)..r * (d + 1) + d].copy_from_slice(&y[r * w..r * w + d]);
            x0[r * (d + 1) + d] = T::from_f64(t);
        }
        if tangents {
            let src = if self.k == 0 { &self.basis } else { &self.probes };
            tape.u[0].clear();
            tape.u[0].extend_from_slice(&src[..k * rows * d]);
        }
        for l in 0..nl {
            let (inw, outw) = (self.widths[l], self.widths[l + 1]);
            let (ow, ob) = offs[l];
            let wl = &self.params[ow..ob];
            let bl = &self.params[ob..ob + outw];
            let mut a = std::mem::take(if l + 1 < nl { &mut tape.x[l + 1] } else { &mut tape.f });
            a.resize(rows * outw, T::ZERO);
            for r in 0..rows {
                a[r * outw..(r + 1) * outw].copy_from_slice(bl);
            }
            mm(&tape.x[l], false, wl, true, inw, &mut a, rows, inw, outw, T::ONE);
            let mut du = std::mem::take(if l + 1 < nl { &mut tape.du[l] } else { &mut tape.jv });
            if tangents {
                // U_0 has width d: the first d columns of W_1 (time has no tangent).
                let kin = if l == 0 { d } else { inw };
                du.resize(k * rows * outw, T::ZERO);
                mm(&tape.u[l], false, wl, true, inw, &mut du, k * rows, kin, outw, T::ZERO);
            }
            if l + 1 < nl {
                let s = &mut tape.s[l];
                s.resize(rows * outw, T::ZERO);
                for (h, sv) in a.iter_mut().zip(s.iter_mut()) {
                    *h = h.tanh_fast();
                    *sv = T::ONE - *h * *h;
                }
                if tangents {
                    let u = &mut tape.u[l + 1];
                    u.resize(k * rows * outw, T::ZERO);
                    let n = rows * outw;
                    for p in 0..k {
                        for ((uv, dv), sv) in u[p * n..(p + 1) * n].iter_mut().zip(&du[p * n..(p + 1) * n]).zip(s.iter()) {
                            *uv = *dv * *sv;
                        }
                    }
                }
                tape.x[l + 1] = a;
                tape.du[l] = du;
            } else {
                tape.f = a;
                tape.jv = du;
            }
        }
        self.offs = offs;
        k
    }

    /// Write the derivative rows from the tape.
    fn write_rows(&self, rows: usize, w: usize, k: usize, weight: T, dy: &mut [T]) {
        let d = self.dim();
        let (f, jv, eps) = (&self.tape.f, &self.tape.jv, &self.tape.u[0]);
        for r in 0..rows {
            let out = &mut dy[r * w..(r + 1) * w];
            out[..d].copy_from_slice(&f[r * d..(r + 1) * d]);
            if let CnfMode::Augmented { kinetic, jacobian } = self.mode {
                let (mut tr, mut fro) = (T::ZERO, T::ZERO);
                for p in 0..k {
                    let i = (p * rows + r) * d;
                    for j in 0..d {
                        tr += eps[i + j] * jv[i + j];
                        fro += jv[i + j] * jv[i + j];
                    }
                }
                out[d] = -(tr * weight);
                let mut c = d + 1;
                if kinetic {
                    out[c] = f[r * d..(r + 1) * d].iter().fold(T::ZERO, |s, v| s + *v * *v);
                    c += 1;
                }
                if jacobian {
                    out[c] = fro * weight;
                }
            }
        }
    }
}

impl<T: Scalar> Dynamics<Vec<T>> for CnfMlp<T> {
    fn eval(&mut self, t: f64, y: &Vec<T>, dy: &mut Vec<T>) {
        let w = self.row_width();
        let rows = y.len() / w;
        let aug = matches!(self.mode, CnfMode::Augmented { .. });
        let k = self.forward(t, y, rows, w, aug);
        let weight = if aug { self.tangents(rows).1 } else { T::ONE };
        self.write_rows(rows, w, k, weight, dy);
    }
}

impl<T: Scalar> VjpDynamics<Vec<T>> for CnfMlp<T> {
    type Params = Vec<T>;
    fn param_zeros(&self) -> Vec<T> {
        vec![T::ZERO; self.params.len()]
    }

    fn vjp(&mut self, t: f64, y: &Vec<T>, a: &Vec<T>, adj_y: &mut Vec<T>, adj_p: &mut Vec<T>) {
        let w = self.row_width();
        let rows = y.len() / w;
        let d = self.dim();
        let nl = self.widths.len() - 1;
        let (aug, kinetic, jacobian) = match self.mode {
            CnfMode::Augmented { kinetic, jacobian } => (true, kinetic, jacobian),
            CnfMode::Plain => (false, false, false),
        };
        let k = self.forward(t, y, rows, w, aug);
        let weight = if aug { self.tangents(rows).1 } else { T::ONE };
        // Cotangents of the outputs: x̄ (= f̄) and Ū (= J̄ε).
        let mut xbar = std::mem::take(&mut self.grad_x);
        let mut ubar = std::mem::take(&mut self.grad_u);
        xbar.resize(rows * d, T::ZERO);
        ubar.resize(if aug { k * rows * d } else { 0 }, T::ZERO);
        for r in 0..rows {
            let ar = &a[r * w..(r + 1) * w];
            let fr = &self.tape.f[r * d..(r + 1) * d];
            let kb = if kinetic { ar[d + 1] } else { T::ZERO };
            for j in 0..d {
                xbar[r * d + j] = ar[j] + (kb + kb) * fr[j];
            }
            if aug {
                let g = ar[d];
                let jb = if jacobian { ar[d + 1 + kinetic as usize] } else { T::ZERO };
                for p in 0..k {
                    let i = (p * rows + r) * d;
                    for j in 0..d {
                        ubar[i + j] = weight * (-(g * self.tape.u[0][i + j]) + (jb + jb) * self.tape.jv[i + j]);
                    }
                }
            }
        }
        let mut abar = std::mem::take(&mut self.abar);
        let mut dubar = std::mem::take(&mut self.dubar);
        for l in (0..nl).rev() {
            let (inw, outw) = (self.widths[l], self.widths[l + 1]);
            let (ow, ob) = self.offs[l];
            // ā and d̄u of this layer's pre-activations.
            if l + 1 == nl {
                abar.clear();
                abar.extend_from_slice(&xbar);
                dubar.clear();
                dubar.extend_from_slice(&ubar);
            } else {
                let (h, s, du) = (&self.tape.x[l + 1], &self.tape.s[l], &self.tape.du[l]);
                let n = rows * outw;
                abar.resize(n, T::ZERO);
                dubar.resize(if aug { k * n } else { 0 }, T::ZERO);
                for i in 0..n {
                    let mut sbar = T::ZERO;
                    if aug {
                        for p in 0..k {
                            let j = p * n + i;
                            sbar += ubar[j] * du[j];
                            dubar[j] = ubar[j] * s[i];
                        }
                    }
                    abar[i] = (xbar[i] - (h[i] + h[i]) * sbar) * s[i];
                }
            }
            {
                let gw = &mut adj_p[ow..ob];
                // W̄ (out x in) += āᵀ x + d̄uᵀ U.
                mm(&abar, true, &self.tape.x[l], false, inw, gw, outw, rows, inw, T::ONE);
                if aug {
                    if l == 0 {
                        // U_0 has width d: only the first d columns of W_1 see tangents.
                        for o in 0..outw {
                            for c in 0..d {
                                let mut acc = T::ZERO;
                                for r in 0..k * rows {
                                    acc += dubar[r * outw + o] * self.tape.u[0][r * d + c];
                                }
                                gw[o * inw + c] += acc;
                            }
                        }
                    } else {
                        mm(&dubar, true, &self.tape.u[l], false, inw, gw, outw, k * rows, inw, T::ONE);
                    }
                }
            }
            for r in 0..rows {
                for o in 0..outw {
                    adj_p[ob + o] += abar[r * outw + o];
                }
            }
            // x̄_{l-1} = ā W, Ū_{l-1} = d̄u W (not needed below the first layer's tangents).
            let wl = &self.params[ow..ob];
            xbar.resize(rows * inw, T::ZERO);
            mm(&abar, false, wl, false, inw, &mut xbar, rows, outw, inw, T::ZERO);
            if aug && l > 0 {
                ubar.resize(k * rows * inw, T::ZERO);
                mm(&dubar, false, wl, false, inw, &mut ubar, k * rows, outw, inw, T::ZERO);
            }
        }
        for r in 0..rows {
            let out = &mut adj_y[r * w..(r + 1) * w];
            out[..d].copy_from_slice(&xbar[r * (d + 1)..r * (d + 1) + d]);
            for v in out[d..].iter_mut() {
                *v = T::ZERO;
            }
        }
        self.grad_x = xbar;
        self.grad_u = ubar;
        self.abar = abar;
        self.dubar = dubar;
    }
}

#[cfg(test)]
mod tests;
