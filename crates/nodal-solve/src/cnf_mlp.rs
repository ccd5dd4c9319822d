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

/// `C = op(A) op(B) + beta C` on row-major slices: `op(A)` is `m x k`, `op(B)` is `k x n`, `C`
/// is `m x n` with row stride `n`; `ta`/`tb` mean the stored matrix is the transpose (`k x m` /
/// `n x k`), whose row length is `lda`/`ldb`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn mm<T: Scalar>(a: &[T], ta: bool, b: &[T], tb: bool, ldb: usize, c: &mut [T], m: usize, k: usize, n: usize, beta: T) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= m * k && c.len() >= m * n && b.len() >= if tb { (n - 1) * ldb + k } else { (k - 1) * ldb + n });
    let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (rsb, csb) = if tb { (1, ldb as isize) } else { (ldb as isize, 1) };
    // SAFETY: the asserted lengths cover every element the strides reach; C is a distinct
    // mutable borrow, so it aliases neither A nor B.
    unsafe { T::gemm(m, k, n, T::ONE, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, beta, c.as_mut_ptr(), n as isize, 1) }
}

/// `out = x Wᵀ` for a layer with weight `w` (`outw x inw`) and its transpose `wt`, `x` with
/// `rows` rows: the unpacked kernels where the shape suits them (wide outputs through `wt`,
/// narrow ones as dot products with `w`'s rows), else a general GEMM.
fn layer_product<T: Scalar>(x: &[T], w: &[T], wt: &[T], out: &mut [T], rows: usize, inw: usize, outw: usize) {
    if !T::thin_nn(x, wt, out, rows, inw, outw, false) && !T::thin_nt_narrow(x, w, out, rows, inw, outw) {
        mm(x, false, w, true, inw, out, rows, inw, outw, T::ZERO);
    }
}

/// `W̄ += gᵀ x` (`g` is `m x outw`, `x` is `m x inw`), also for narrow inputs (the first layer,
/// `inw = d + 1`) as `W̄ᵀ = xᵀ g` in the scratch `gt`.
fn weight_gradient<T: Scalar>(g: &[T], x: &[T], wbar: &mut [T], gt: &mut Vec<T>, m: usize, outw: usize, inw: usize) {
    if T::thin_tn_accumulate(g, x, wbar, m, outw, inw) {
        return;
    }
    gt.clear();
    gt.resize(inw * outw, T::ZERO);
    if T::thin_tn_accumulate(x, g, gt, m, inw, outw) {
        for (e, v) in gt.iter().enumerate() {
            wbar[(e % outw) * inw + e / outw] += *v;
        }
        return;
    }
    mm(g, true, x, false, inw, wbar, outw, m, inw, T::ONE);
}

/// `x̄ = g W` (`g` is `rows x outw`, `w` is `outw x inw`, `wt` its transpose).
fn input_cotangent<T: Scalar>(g: &[T], w: &[T], wt: &[T], xbar: &mut [T], rows: usize, outw: usize, inw: usize) {
    if !T::thin_nn(g, w, xbar, rows, outw, inw, false) && !T::thin_nt_narrow(g, wt, xbar, rows, outw, inw) {
        mm(g, false, w, false, inw, xbar, rows, outw, inw, T::ZERO);
    }
}

/// Rows per thread below which a call stays on one thread.
const MIN_ROWS_PER_THREAD: usize = 128;

/// One chunk of rows: its activations (kept for the reverse pass) and scratch. Every per-layer
/// matrix stacks the chunk's `n` primal rows first, then `K` blocks of `n` tangent rows, so one
/// matrix product per layer serves the value and all the tangents.
#[derive(Debug, Clone, Default)]
struct Chunk<T> {
    /// Layer inputs `[x_l; U_l]` (`(1 + K) n x in_l`); `x_0 = [z, t]`, `U_0 = [ε, 0]`.
    xs: Vec<Vec<T>>,
    /// Tangent pre-activations `du_l` of the hidden layers (`K n x out_l`).
    du: Vec<Vec<T>>,
    /// Slopes `s_l = 1 - h_l²` of the hidden layers (`n x out_l`).
    s: Vec<Vec<T>>,
    /// Last layer's output `[f; J ε]`.
    out: Vec<T>,
    /// Cotangent buffers.
    g: Vec<T>,
    g2: Vec<T>,
    /// Parameter-gradient accumulator.
    grad: Vec<T>,
    /// `s̄` of a hidden layer.
    sbar: Vec<T>,
    /// Every layer's weight transposed (`in x out`), the right operand of its forward product.
    wt: Vec<Vec<T>>,
    /// A transposed weight gradient (narrow layers).
    gt: Vec<T>,
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
    /// Hutchinson probes `[K * rows][d]` probe-major and `K`; `k == 0`: the exact basis.
    probes: Vec<T>,
    k: usize,
    threads: usize,
    chunks: Vec<Chunk<T>>,
    memo: Memo<T>,
}

/// Read-only view of the network a chunk works with.
struct Net<'a, T> {
    widths: &'a [usize],
    params: &'a [T],
    offs: &'a [(usize, usize)],
    mode: CnfMode,
    /// Tangent `p` of global row `r` at `[(p * rows + r) * d ..]`; `None`: the basis.
    probes: Option<&'a [T]>,
    k: usize,
    rows: usize,
}

impl<T: Scalar> Net<'_, T> {
    fn d(&self) -> usize {
        self.widths[self.widths.len() - 1]
    }
    fn tangents(&self) -> bool {
        matches!(self.mode, CnfMode::Augmented { .. })
    }
    fn weight(&self) -> T {
        if self.probes.is_some() { T::from_f64(1.0 / self.k as f64) } else { T::ONE }
    }

    /// Forward over global rows `r0..r0 + n` of `y` (row stride `w`).
    fn forward(&self, c: &mut Chunk<T>, t: f64, y: &[T], r0: usize, n: usize, w: usize) {
        let d = self.d();
        let nl = self.widths.len() - 1;
        let k = if self.tangents() { self.k } else { 0 };
        let m = (1 + k) * n;
        c.xs.resize(nl, Vec::new());
        c.du.resize(nl, Vec::new());
        c.s.resize(nl, Vec::new());
        let x0 = &mut c.xs[0];
        x0.clear();
        x0.resize(m * (d + 1), T::ZERO);
        for r in 0..n {
            x0[r * (d + 1)..r * (d + 1) + d].copy_from_slice(&y[(r0 + r) * w..(r0 + r) * w + d]);
            x0[r * (d + 1) + d] = T::from_f64(t);
        }
        for p in 0..k {
            for r in 0..n {
                let dst = ((1 + p) * n + r) * (d + 1);
                match self.probes {
                    Some(e) => x0[dst..dst + d].copy_from_slice(&e[(p * self.rows + r0 + r) * d..(p * self.rows + r0 + r + 1) * d]),
                    None => x0[dst + p] = T::ONE,
                }
            }
        }
        c.wt.resize(nl, Vec::new());
        for l in 0..nl {
            let (inw, outw) = (self.widths[l], self.widths[l + 1]);
            let (ow, ob) = self.offs[l];
            let (wl, bl) = (&self.params[ow..ob], &self.params[ob..ob + outw]);
            let wt = &mut c.wt[l];
            wt.clear();
            wt.extend((0..inw * outw).map(|e| wl[(e % outw) * inw + e / outw]));
            let mut pre = std::mem::take(if l + 1 < nl { &mut c.xs[l + 1] } else { &mut c.out });
            // Every entry is written by the products: no zeroing.
            pre.resize(m * outw, T::ZERO);
            let x = &c.xs[l];
            if l + 1 < nl {
                // Primal rows, then the tangents' pre-activations `du` straight into their own
                // buffer; the layer's tangent output is `s * du`.
                let (prim, tang) = pre.split_at_mut(n * outw);
                layer_product(&x[..n * inw], wl, wt, prim, n, inw, outw);
                for row in prim.chunks_exact_mut(outw) {
                    for (v, b) in row.iter_mut().zip(bl) {
                        *v += *b;
                    }
                }
                let s = &mut c.s[l];
                s.resize(n * outw, T::ZERO);
                for (h, sv) in prim.iter_mut().zip(s.iter_mut()) {
                    *h = h.tanh_fast();
                    *sv = T::ONE - *h * *h;
                }
                let du = &mut c.du[l];
                du.resize(k * n * outw, T::ZERO);
                layer_product(&x[n * inw..m * inw], wl, wt, du, k * n, inw, outw);
                for (blk, dblk) in tang.chunks_exact_mut(n * outw).zip(du.chunks_exact(n * outw)) {
                    for ((u, dv), sv) in blk.iter_mut().zip(dblk).zip(s.iter()) {
                        *u = *dv * *sv;
                    }
                }
                c.xs[l + 1] = pre;
            } else {
                layer_product(&x[..m * inw], wl, wt, &mut pre, m, inw, outw);
                for row in pre[..n * outw].chunks_exact_mut(outw) {
                    for (v, b) in row.iter_mut().zip(bl) {
                        *v += *b;
                    }
                }
                c.out = pre;
            }
        }
    }

    /// Derivative rows `r0..r0 + n` from the chunk's output.
    fn write_rows(&self, c: &Chunk<T>, n: usize, w: usize, dy: &mut [T]) {
        let d = self.d();
        let k = if self.tangents() { self.k } else { 0 };
        let weight = self.weight();
        let eps = &c.xs[0];
        for r in 0..n {
            let out = &mut dy[r * w..(r + 1) * w];
            out[..d].copy_from_slice(&c.out[r * d..(r + 1) * d]);
            if let CnfMode::Augmented { kinetic, jacobian } = self.mode {
                let (mut tr, mut fro) = (T::ZERO, T::ZERO);
                for p in 0..k {
                    let i = ((1 + p) * n + r) * d;
                    let e = ((1 + p) * n + r) * (d + 1);
                    for j in 0..d {
                        let jv = c.out[i + j];
                        tr += eps[e + j] * jv;
                        fro += jv * jv;
                    }
                }
                out[d] = -(tr * weight);
                let mut col = d + 1;
                if kinetic {
                    out[col] = c.out[r * d..(r + 1) * d].iter().fold(T::ZERO, |s, v| s + *v * *v);
                    col += 1;
                }
                if jacobian {
                    out[col] = fro * weight;
                }
            }
        }
    }

    /// Reverse pass over the chunk (after [`Net::forward`]) for cotangent rows `a` of the
    /// chunk's rows: `adj_y` rows and the chunk's parameter gradient (`c.grad`, overwritten).
    fn reverse(&self, c: &mut Chunk<T>, a: &[T], n: usize, w: usize, adj_y: &mut [T]) {
        let d = self.d();
        let nl = self.widths.len() - 1;
        let (kinetic, jacobian) = match self.mode {
            CnfMode::Augmented { kinetic, jacobian } => (kinetic, jacobian),
            CnfMode::Plain => (false, false),
        };
        let k = if self.tangents() { self.k } else { 0 };
        let m = (1 + k) * n;
        let weight = self.weight();
        c.grad.clear();
        c.grad.resize(self.params.len(), T::ZERO);
        let mut g = std::mem::take(&mut c.g);
        let mut g2 = std::mem::take(&mut c.g2);
        g.clear();
        g.resize(m * d, T::ZERO);
        for r in 0..n {
            let ar = &a[r * w..(r + 1) * w];
            let kb = if kinetic { ar[d + 1] } else { T::ZERO };
            for j in 0..d {
                g[r * d + j] = ar[j] + (kb + kb) * c.out[r * d + j];
            }
            if k > 0 {
                let gt = ar[d];
                let jb = if jacobian { ar[d + 1 + kinetic as usize] } else { T::ZERO };
                for p in 0..k {
                    let i = ((1 + p) * n + r) * d;
                    let e = ((1 + p) * n + r) * (d + 1);
                    for j in 0..d {
                        g[i + j] = weight * ((jb + jb) * c.out[i + j] - gt * c.xs[0][e + j]);
                    }
                }
            }
        }
        for l in (0..nl).rev() {
            let (inw, outw) = (self.widths[l], self.widths[l + 1]);
            let (ow, ob) = self.offs[l];
            if l + 1 < nl {
                // g holds the cotangent of [h; U] = xs[l + 1]: turn it into that of [a; du].
                let h = &c.xs[l + 1][..n * outw];
                let (s, du) = (&c.s[l], &c.du[l]);
                let (gp, gt) = g.split_at_mut(n * outw);
                let sbar = &mut c.sbar;
                sbar.clear();
                sbar.resize(n * outw, T::ZERO);
                for (gtp, dup) in gt.chunks_exact_mut(n * outw).zip(du.chunks_exact(n * outw)) {
                    for (((sb, gv), dv), sv) in sbar.iter_mut().zip(gtp.iter_mut()).zip(dup).zip(s) {
                        *sb += *gv * *dv;
                        *gv *= *sv;
                    }
                }
                for (((gv, hv), sb), sv) in gp.iter_mut().zip(h).zip(sbar.iter()).zip(s) {
                    *gv = (*gv - (*hv + *hv) * *sb) * *sv;
                }
            }
            // W̄ += gᵀ xs (all stacked rows), b̄ += Σ primal rows.
            weight_gradient(&g[..m * outw], &c.xs[l][..m * inw], &mut c.grad[ow..ob], &mut c.gt, m, outw, inw);
            let gb = &mut c.grad[ob..ob + outw];
            for row in g[..n * outw].chunks_exact(outw) {
                for (b, v) in gb.iter_mut().zip(row) {
                    *b += *v;
                }
            }
            // Cotangent of this layer's input (only the primal rows below the first layer).
            let rows_below = if l == 0 { n } else { m };
            g2.resize(rows_below * inw, T::ZERO);
            input_cotangent(&g[..rows_below * outw], &self.params[ow..ob], &c.wt[l], &mut g2, rows_below, outw, inw);
            std::mem::swap(&mut g, &mut g2);
        }
        for r in 0..n {
            let out = &mut adj_y[r * w..(r + 1) * w];
            out[..d].copy_from_slice(&g[r * (d + 1)..r * (d + 1) + d]);
            for v in out[d..].iter_mut() {
                *v = T::ZERO;
            }
        }
        c.g = g;
        c.g2 = g2;
    }
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
        let mut o = 0;
        let offs = widths
            .windows(2)
            .map(|w| {
                let at = (o, o + w[1] * w[0]);
                o += w[1] * w[0] + w[1];
                at
            })
            .collect();
        let threads = rayon::current_num_threads().max(1);
        let memo = Memo { limit: 256 << 20, ..Memo::default() };
        Some(Self { widths: widths.to_vec(), params, offs, mode, probes: Vec::new(), k: 0, threads, chunks: Vec::new(), memo })
    }

    /// Data dimension `d`.
    pub fn dim(&self) -> usize {
        self.widths[self.widths.len() - 1]
    }

    /// Layer widths.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    /// Most threads a call splits its rows over (default: rayon's pool size; 1 = sequential).
    /// Rows are split only in chunks of at least 128.
    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.max(1);
        self.forget();
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
        self.forget();
    }

    /// Use the exact trace (the basis vectors as tangents).
    pub fn use_exact_trace(&mut self) {
        self.probes.clear();
        self.k = 0;
        self.forget();
    }

    /// Use Hutchinson's estimator with `k` probes per row, `probes` laid out `[k * rows][d]`
    /// probe-major (fixed until changed; draw them once per solve).
    pub fn use_probes(&mut self, k: usize, probes: Vec<T>) {
        self.k = k.max(1);
        self.probes = probes;
        self.forget();
    }

    /// Split `rows` into chunks `(start, len)` and the view the chunks share.
    fn plan(&mut self, rows: usize) -> (Vec<(usize, usize)>, Net<'_, T>) {
        let parts = self.threads.min(rows / MIN_ROWS_PER_THREAD).max(1);
        let per = rows.div_ceil(parts);
        let spans: Vec<(usize, usize)> = (0..parts).map(|i| (i * per, per.min(rows.saturating_sub(i * per)))).filter(|s| s.1 > 0).collect();
        if self.chunks.len() < spans.len() {
            self.chunks.resize(spans.len(), Chunk::default());
        }
        let exact = self.k == 0;
        let net = Net {
            widths: &self.widths,
            params: &self.params,
            offs: &self.offs,
            mode: self.mode,
            probes: if exact { None } else { Some(&self.probes) },
            k: if exact { self.dim() } else { self.k },
            rows,
        };
        (spans, net)
    }
}

/// Evaluations kept for the reverse pass: the forward activations of recent calls, keyed by
/// the parameters, the time and the state's `z` columns (checked entry by entry on a hit), so
/// that a VJP at a point the solver already evaluated (every stage of backprop through the
/// solver, and the replay of stage inputs before it) skips the forward pass. Bounded by
/// [`CnfMlp::set_cache_bytes`]; a new parameter vector or new tangents empty it.
#[derive(Debug, Clone, Default)]
struct Memo<T> {
    params_sum: u64,
    entries: Vec<MemoEntry<T>>,
    bytes: usize,
    limit: usize,
    /// Hits, for tests and profiling.
    hits: usize,
    /// Buffers of dropped entries, reused before allocating (no page faults per evaluation).
    spare: Vec<Chunk<T>>,
}

#[derive(Debug, Clone)]
struct MemoEntry<T> {
    t: u64,
    key: u64,
    rows: usize,
    spans: Vec<(usize, usize)>,
    chunks: Vec<Chunk<T>>,
}

/// FNV-1a over the bits of `values`.
fn fnv<T: Scalar>(values: impl Iterator<Item = T>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for v in values {
        h ^= v.to_f64().to_bits();
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl<T: Scalar> Chunk<T> {
    fn bytes(&self) -> usize {
        let n: usize =
            self.xs.iter().chain(&self.du).chain(&self.s).chain(&self.wt).map(|v| v.capacity()).sum::<usize>() + self.out.capacity();
        n * std::mem::size_of::<T>()
    }
}

impl<T: Scalar> CnfMlp<T> {
    /// Memory the evaluation memo may hold (default 256 MiB; 0 turns it off).
    pub fn set_cache_bytes(&mut self, bytes: usize) {
        self.memo.limit = bytes;
        self.forget();
    }

    /// Evaluations served from the memo so far.
    pub fn cache_hits(&self) -> usize {
        self.memo.hits
    }

    fn forget(&mut self) {
        let entries = std::mem::take(&mut self.memo.entries);
        for e in entries {
            self.memo.spare.extend(e.chunks);
        }
        self.memo.bytes = 0;
    }

    /// The memo entry for `(t, y)`, after dropping a stale memo; `None` on a miss.
    fn lookup(&mut self, t: f64, y: &[T], w: usize) -> (u64, Option<usize>) {
        let d = self.dim();
        let ps = fnv(self.params.iter().copied());
        if ps != self.memo.params_sum {
            self.forget();
            self.memo.params_sum = ps;
        }
        let rows = y.len() / w.max(1);
        let key = fnv((0..rows).flat_map(|r| y[r * w..r * w + d].iter().copied()));
        let tb = t.to_bits();
        let hit = self.memo.entries.iter().position(|e| {
            e.t == tb
                && e.key == key
                && e.rows == rows
                && e.spans
                    .iter()
                    .zip(&e.chunks)
                    .all(|(&(r0, n), c)| (0..n).all(|r| c.xs[0][r * (d + 1)..r * (d + 1) + d] == y[(r0 + r) * w..(r0 + r) * w + d]))
        });
        if hit.is_some() {
            self.memo.hits += 1;
        }
        (key, hit)
    }

    /// Keep the just-computed chunks as a memo entry if they fit.
    fn remember(&mut self, t: f64, key: u64, rows: usize, spans: Vec<(usize, usize)>, chunks: &mut Vec<Chunk<T>>) {
        let bytes: usize = chunks.iter().take(spans.len()).map(|c| c.bytes()).sum();
        if self.memo.bytes + bytes > self.memo.limit {
            return;
        }
        let kept: Vec<Chunk<T>> = chunks.drain(..spans.len()).collect();
        // Refill the working chunks from the spares so the next evaluation reuses memory.
        while chunks.len() < kept.len() {
            chunks.push(self.memo.spare.pop().unwrap_or_default());
        }
        self.memo.bytes += bytes;
        self.memo.entries.push(MemoEntry { t: t.to_bits(), key, rows, spans, chunks: kept });
    }
}

/// One chunk's job: its buffers, its `(first row, rows)` span and its output rows.
type ChunkJob<'a, T> = (&'a mut Chunk<T>, (&'a (usize, usize), &'a mut &'a mut [T]));

/// Split `out` into the row blocks of `spans` (rows of width `w`).
fn split_rows<'a, T>(mut out: &'a mut [T], spans: &[(usize, usize)], w: usize) -> Vec<&'a mut [T]> {
    let mut v = Vec::with_capacity(spans.len());
    for &(_, n) in spans {
        let (a, b) = std::mem::take(&mut out).split_at_mut(n * w);
        v.push(a);
        out = b;
    }
    v
}

impl<T: Scalar> Dynamics<Vec<T>> for CnfMlp<T> {
    fn eval(&mut self, t: f64, y: &Vec<T>, dy: &mut Vec<T>) {
        use rayon::prelude::*;
        let w = self.row_width();
        let rows = y.len() / w;
        let (key, hit) = self.lookup(t, y, w);
        if let Some(i) = hit {
            let e = &self.memo.entries[i];
            let (spans, chunks) = (e.spans.clone(), std::mem::take(&mut self.memo.entries[i].chunks));
            let (_, net) = self.plan(rows);
            for ((&(_, n), c), out) in spans.iter().zip(&chunks).zip(split_rows(dy, &spans, w)) {
                net.write_rows(c, n, w, out);
            }
            self.memo.entries[i].chunks = chunks;
            return;
        }
        let mut chunks = std::mem::take(&mut self.chunks);
        let (spans, net) = self.plan(rows);
        chunks.resize(chunks.len().max(spans.len()), Chunk::default());
        let mut outs = split_rows(dy, &spans, w);
        let work = |(c, (&(r0, n), out)): ChunkJob<'_, T>| {
            net.forward(c, t, y, r0, n, w);
            net.write_rows(c, n, w, out);
        };
        if spans.len() == 1 {
            work((&mut chunks[0], (&spans[0], &mut outs[0])));
        } else {
            chunks.par_iter_mut().zip(spans.par_iter().zip(outs.par_iter_mut())).for_each(work);
        }
        self.remember(t, key, rows, spans, &mut chunks);
        self.chunks = chunks;
    }
}

impl<T: Scalar> VjpDynamics<Vec<T>> for CnfMlp<T> {
    type Params = Vec<T>;
    fn param_zeros(&self) -> Vec<T> {
        vec![T::ZERO; self.params.len()]
    }

    fn vjp(&mut self, t: f64, y: &Vec<T>, a: &Vec<T>, adj_y: &mut Vec<T>, adj_p: &mut Vec<T>) {
        use rayon::prelude::*;
        let w = self.row_width();
        let rows = y.len() / w;
        let (_, hit) = self.lookup(t, y, w);
        let (mut chunks, spans, cached) = match hit {
            Some(i) => (std::mem::take(&mut self.memo.entries[i].chunks), self.memo.entries[i].spans.clone(), Some(i)),
            None => {
                let c = std::mem::take(&mut self.chunks);
                let (spans, _) = self.plan(rows);
                (c, spans, None)
            }
        };
        let (_, net) = self.plan(rows);
        chunks.resize(chunks.len().max(spans.len()), Chunk::default());
        let mut outs = split_rows(adj_y, &spans, w);
        let fresh = cached.is_none();
        let work = |(c, (&(r0, n), out)): ChunkJob<'_, T>| {
            if fresh {
                net.forward(c, t, y, r0, n, w);
            }
            net.reverse(c, &a[r0 * w..(r0 + n) * w], n, w, out);
        };
        if spans.len() == 1 {
            work((&mut chunks[0], (&spans[0], &mut outs[0])));
        } else {
            chunks.par_iter_mut().zip(spans.par_iter().zip(outs.par_iter_mut())).for_each(work);
        }
        for c in chunks.iter().take(spans.len()) {
            for (p, g) in adj_p.iter_mut().zip(&c.grad) {
                *p += *g;
            }
        }
        match cached {
            Some(i) => self.memo.entries[i].chunks = chunks,
            None => self.chunks = chunks,
        }
    }
}

#[cfg(test)]
mod tests;
