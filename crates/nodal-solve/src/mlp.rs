//! A fused two-layer perceptron as dynamics: `f(t, y) = W2 tanh(W1 y + b1) + b2`, applied to each
//! row of a batch `y` stored row-major as `[batch][dim]`, with a hand-written vector-Jacobian
//! product. This is the shape of the shared benchmark problems and of torchdiffeq's spiral demo;
//! it runs without any framework overhead: two matrix products (via `matrixmultiply`), one
//! vectorised `tanh`, and, on large batches, rows split over the rayon pool.
//!
//! Parameters are one flat vector laid out as `[W1 (hidden x dim), b1 (hidden), W2 (dim x hidden),
//! b2 (dim)]`, row-major, the layout of `Linear` weights in PyTorch and burn.

use crate::dynamics::{Dynamics, VjpDynamics};
use crate::scalar::Scalar;
use crate::vector_tanh::bias_tanh_rows;

/// Work (in multiply-adds, tanh counted as `Mlp::chunks` says) above which a call splits its
/// rows across threads: below it, waking the pool costs more than the second core gains.
/// Measured here (two cores): `f32 d64 h64 b64` (590K) solved in 2.4 ms split and 1.5 ms on one
/// thread; `f64 d2 h256 b64` (1.1M) in 1.3 ms split and 1.7 ms on one thread.
const PARALLEL_WORK: usize = 1 << 20;

/// Above [`SMALL_DIM`], batches of at most this many rows evaluate the layers as dot products
/// with the weight rows: no transposed copies of the weights (whose refresh on every call
/// would cost more than the products themselves).
const TINY_ROWS: usize = 2;

/// Widths up to this use hand-written loops instead of `gemm` (whose packing dominates when one
/// side of the product is this thin).
const SMALL_DIM: usize = 4;

/// Rows per block of the forward: both layers run on one block before the next, so its
/// activations (`48 x hidden`: 96 KiB at width 256 in `f64`) stay in the core's cache instead
/// of a whole thread's share going through memory between the layers.
const FORWARD_BLOCK_ROWS: usize = 48;

/// Per-chunk scratch: pre-activations/activations and a private parameter-gradient buffer.
#[derive(Debug, Clone, Default)]
struct Scratch<T> {
    act: Vec<T>,
    dh: Vec<T>,
    grad: Vec<T>,
    /// Gradient of `W1` transposed (`[dim][hidden]`), small-width path only.
    gw1t: Vec<T>,
    /// One column of `W1` (small-width path).
    w1col: Vec<T>,
}

/// Dot product with eight independent accumulators (vectorises without reassociation flags).
#[inline(always)]
fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = T::ZERO;
    for (x, y) in ra.iter().zip(rb) {
        s += *x * *y;
    }
    acc.iter().fold(s, |s, v| s + *v)
}

/// `out += alpha * x`.
#[inline(always)]
fn axpy_slice<T: Scalar>(out: &mut [T], alpha: T, x: &[T]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += alpha * *v;
    }
}

/// The fused MLP dynamics. See the module docs.
#[derive(Debug, Clone)]
pub struct Mlp<T: Scalar> {
    dim: usize,
    hidden: usize,
    /// Flat parameters `[W1, b1, W2, b2]`.
    pub params: Vec<T>,
    scratch: Vec<Scratch<T>>,
    threads: usize,
    /// `W1` transposed (`[dim][hidden]`), refreshed when the weights change.
    w1t: Vec<T>,
    /// `W2` transposed (`[hidden][dim]`), for widths above [`SMALL_DIM`] (the right operand of
    /// the unpacked output product), refreshed when the weights change.
    w2t: Vec<T>,
    /// The `[W1, b1, W2]` the transposes were made from (`params` is public, so a change is
    /// found by comparing, bit for bit: a sequential read costs a fraction of a transpose).
    transposed_from: Vec<T>,
    /// Per-row buffers of the Jacobian-vector products ([`crate::jvp`]), reused across calls.
    pub(crate) jvp_buf: Vec<T>,
}

impl<T: Scalar> Mlp<T> {
    /// An MLP with the given sizes and flat parameters (length [`Mlp::num_params`]).
    ///
    /// # Panics
    /// Never; returns `None` if the parameter length does not match.
    pub fn new(dim: usize, hidden: usize, params: Vec<T>) -> Option<Self> {
        if params.len() != Self::num_params_for(dim, hidden) || dim == 0 || hidden == 0 {
            return None;
        }
        let threads = rayon::current_num_threads().max(1);
        Some(Self {
            dim,
            hidden,
            params,
            scratch: vec![Scratch::default(); threads],
            threads,
            w1t: Vec::new(),
            w2t: Vec::new(),
            transposed_from: Vec::new(),
            jvp_buf: Vec::new(),
        })
    }

    /// Number of parameters of an MLP with these sizes: `2 hidden dim + hidden + dim`.
    pub fn num_params_for(dim: usize, hidden: usize) -> usize {
        2 * hidden * dim + hidden + dim
    }

    /// Input/output width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Limit the number of row chunks evaluated in parallel (1 = sequential).
    pub fn set_threads(&mut self, n: usize) {
        self.threads = n.max(1);
        self.scratch.resize(self.threads, Scratch::default());
    }

    fn chunks(&self, batch: usize) -> usize {
        // Per hidden unit of a row: two products of `dim` multiply-adds and one tanh, which
        // costs about 16 multiply-adds in f32 and 64 in f64 (8 lanes and a longer polynomial).
        let tanh = if std::mem::size_of::<T>() == 8 { 64 } else { 16 };
        if batch * self.hidden * (2 * self.dim + tanh) >= PARALLEL_WORK { self.threads.min(batch).max(1) } else { 1 }
    }

    fn offsets(&self) -> (usize, usize, usize) {
        let (d, h) = (self.dim, self.hidden);
        (h * d, h * d + h, 2 * h * d + h)
    }
}

/// `act <- tanh(y W1^T + b1)` for `rows` rows (`w1t` is `W1` transposed): hand-written loops
/// for small widths, else the unpacked kernels of [`crate::thin_gemm`] where they apply, else
/// `gemm`.
#[allow(clippy::too_many_arguments)]
fn hidden_layer<T: Scalar>(y: &[T], w1: &[T], w1t: &[T], b1: &[T], act: &mut Vec<T>, rows: usize, dim: usize, hidden: usize) {
    act.resize(rows * hidden, T::ZERO);
    if dim > SMALL_DIM && rows > TINY_ROWS && T::thin_nn_then(y, w1t, act, rows, dim, hidden, Some(b1), true) {
        // The bias and tanh join in registers before the store (the same single rounding of
        // `Σ + b` as accumulating onto a bias-filled buffer, without the fill or a second pass).
        return;
    }
    if dim <= SMALL_DIM {
        // `Σ_i y_i W1[:, i]`, then the bias in the tanh pass (no bias-filled buffer).
        for r in 0..rows {
            let a = &mut act[r * hidden..(r + 1) * hidden];
            let w0 = &w1t[..hidden];
            let y0 = y[r * dim];
            for (v, w) in a.iter_mut().zip(w0) {
                *v = y0 * *w;
            }
            for i in 1..dim {
                axpy_slice(a, y[r * dim + i], &w1t[i * hidden..(i + 1) * hidden]);
            }
        }
        bias_tanh_rows(act, b1);
        return;
    }
    for r in 0..rows {
        act[r * hidden..(r + 1) * hidden].copy_from_slice(b1);
    }
    if rows <= TINY_ROWS {
        // Contiguous dot products with the rows of W1 (no transpose needed).
        for r in 0..rows {
            let yr = &y[r * dim..(r + 1) * dim];
            for (j, a) in act[r * hidden..(r + 1) * hidden].iter_mut().enumerate() {
                *a += dot(&w1[j * dim..(j + 1) * dim], yr);
            }
        }
    } else {
        unsafe {
            T::gemm(
                rows,
                dim,
                hidden,
                T::ONE,
                y.as_ptr(),
                dim as isize,
                1,
                w1.as_ptr(),
                1,
                dim as isize,
                T::ONE,
                act.as_mut_ptr(),
                hidden as isize,
                1,
            );
        }
    }
    bias_tanh_rows(act, &[]);
}

/// `out <- act W2^T + b2` (`w2t` is `W2` transposed, used above [`SMALL_DIM`]).
#[allow(clippy::too_many_arguments)]
fn output_layer<T: Scalar>(act: &[T], w2: &[T], w2t: &[T], b2: &[T], out: &mut [T], rows: usize, dim: usize, hidden: usize) {
    if dim <= SMALL_DIM {
        for r in 0..rows {
            let a = &act[r * hidden..(r + 1) * hidden];
            for i in 0..dim {
                out[r * dim + i] = b2[i] + dot(a, &w2[i * hidden..(i + 1) * hidden]);
            }
        }
        return;
    }
    if rows <= TINY_ROWS {
        for r in 0..rows {
            let a = &act[r * hidden..(r + 1) * hidden];
            for i in 0..dim {
                out[r * dim + i] = b2[i] + dot(a, &w2[i * hidden..(i + 1) * hidden]);
            }
        }
        return;
    }
    // `Σ + b2` in registers before the store.
    if T::thin_nn_then(act, w2t, out, rows, hidden, dim, Some(b2), false) {
        return;
    }
    for r in 0..rows {
        out[r * dim..(r + 1) * dim].copy_from_slice(b2);
    }
    unsafe {
        T::gemm(
            rows,
            hidden,
            dim,
            T::ONE,
            act.as_ptr(),
            hidden as isize,
            1,
            w2.as_ptr(),
            1,
            hidden as isize,
            T::ONE,
            out.as_mut_ptr(),
            dim as isize,
            1,
        );
    }
}

/// Backward through one chunk: given `act` (tanh activations) and cotangent `a`, write
/// `adj_y = ((a W2) * (1 - act^2)) W1` and accumulate the parameter gradient into `grad`.
#[allow(clippy::too_many_arguments)]
fn backward_chunk<T: Scalar>(
    y: &[T],
    a: &[T],
    params: &[T],
    sc: &mut Scratch<T>,
    adj_y: &mut [T],
    g: &mut [T],
    rows: usize,
    dim: usize,
    hidden: usize,
) {
    let (o_b1, o_w2, o_b2) = (hidden * dim, hidden * dim + hidden, 2 * hidden * dim + hidden);
    let w1 = &params[..o_b1];
    let w2 = &params[o_w2..o_b2];
    sc.dh.resize(rows * hidden, T::ZERO);
    if dim <= SMALL_DIM {
        backward_small(y, a, params, sc, adj_y, g, rows, dim, hidden);
        return;
    }
    // dA = a W2   (rows x hidden)
    if !T::thin_nn(a, w2, &mut sc.dh, rows, dim, hidden, false) {
        unsafe {
            T::gemm(
                rows,
                dim,
                hidden,
                T::ONE,
                a.as_ptr(),
                dim as isize,
                1,
                w2.as_ptr(),
                hidden as isize,
                1,
                T::ZERO,
                sc.dh.as_mut_ptr(),
                hidden as isize,
                1,
            );
        }
    }
    for (d, h) in sc.dh.iter_mut().zip(sc.act.iter()) {
        *d *= T::ONE - *h * *h;
    }
    // adj_y = dH W1   (rows x dim)
    if !T::thin_nn(&sc.dh, w1, adj_y, rows, hidden, dim, false) {
        unsafe {
            T::gemm(
                rows,
                hidden,
                dim,
                T::ONE,
                sc.dh.as_ptr(),
                hidden as isize,
                1,
                w1.as_ptr(),
                dim as isize,
                1,
                T::ZERO,
                adj_y.as_mut_ptr(),
                dim as isize,
                1,
            );
        }
    }
    // gW1 += dH^T y  (hidden x dim)
    if !T::thin_tn_accumulate(&sc.dh, y, &mut g[..o_b1], rows, hidden, dim) {
        unsafe {
            T::gemm(
                hidden,
                rows,
                dim,
                T::ONE,
                sc.dh.as_ptr(),
                1,
                hidden as isize,
                y.as_ptr(),
                dim as isize,
                1,
                T::ONE,
                g.as_mut_ptr(),
                dim as isize,
                1,
            );
        }
    }
    for r in 0..rows {
        for (gb, d) in g[o_b1..o_w2].iter_mut().zip(&sc.dh[r * hidden..(r + 1) * hidden]) {
            *gb += *d;
        }
    }
    // gW2 += a^T act  (dim x hidden)
    if !T::thin_tn_accumulate(a, &sc.act, &mut g[o_w2..o_b2], rows, dim, hidden) {
        unsafe {
            T::gemm(
                dim,
                rows,
                hidden,
                T::ONE,
                a.as_ptr(),
                1,
                dim as isize,
                sc.act.as_ptr(),
                hidden as isize,
                1,
                T::ONE,
                g[o_w2..].as_mut_ptr(),
                hidden as isize,
                1,
            );
        }
    }
    for r in 0..rows {
        for (gb, d) in g[o_b2..].iter_mut().zip(&a[r * dim..(r + 1) * dim]) {
            *gb += *d;
        }
    }
}

/// [`backward_chunk`] for widths up to [`SMALL_DIM`]: plain vectorised loops, no `gemm`.
#[allow(clippy::too_many_arguments)]
fn backward_small<T: Scalar>(
    y: &[T],
    a: &[T],
    params: &[T],
    sc: &mut Scratch<T>,
    adj_y: &mut [T],
    g: &mut [T],
    rows: usize,
    dim: usize,
    hidden: usize,
) {
    let (o_b1, o_w2, o_b2) = (hidden * dim, hidden * dim + hidden, 2 * hidden * dim + hidden);
    let w1 = &params[..o_b1];
    let w2 = &params[o_w2..o_b2];
    sc.gw1t.clear();
    sc.gw1t.resize(dim * hidden, T::ZERO);
    let mut w1t_row = std::mem::take(&mut sc.w1col);
    w1t_row.resize(hidden, T::ZERO);
    for r in 0..rows {
        let dh = &mut sc.dh[r * hidden..(r + 1) * hidden];
        dh.fill(T::ZERO);
        for i in 0..dim {
            axpy_slice(dh, a[r * dim + i], &w2[i * hidden..(i + 1) * hidden]);
        }
        for (d, h) in dh.iter_mut().zip(&sc.act[r * hidden..(r + 1) * hidden]) {
            *d *= T::ONE - *h * *h;
        }
    }
    for i in 0..dim {
        for (j, w) in w1t_row.iter_mut().enumerate() {
            *w = w1[j * dim + i];
        }
        for r in 0..rows {
            let dh = &sc.dh[r * hidden..(r + 1) * hidden];
            adj_y[r * dim + i] = dot(dh, &w1t_row);
            axpy_slice(&mut sc.gw1t[i * hidden..(i + 1) * hidden], y[r * dim + i], dh);
        }
    }
    sc.w1col = w1t_row;
    for j in 0..hidden {
        for i in 0..dim {
            g[j * dim + i] += sc.gw1t[i * hidden + j];
        }
    }
    for r in 0..rows {
        let dh = &sc.dh[r * hidden..(r + 1) * hidden];
        axpy_slice(&mut g[o_b1..o_w2], T::ONE, dh);
        let act = &sc.act[r * hidden..(r + 1) * hidden];
        for i in 0..dim {
            let ai = a[r * dim + i];
            axpy_slice(&mut g[o_w2 + i * hidden..o_w2 + (i + 1) * hidden], ai, act);
            g[o_b2 + i] += ai;
        }
    }
}

impl<T: Scalar> Mlp<T> {
    /// `W1ᵀ`, and `W2ᵀ` above [`SMALL_DIM`], from the current parameters, unless they were
    /// made from exactly these weights already.
    fn refresh_transposes(&mut self) {
        let (d, h) = (self.dim, self.hidden);
        let used = &self.params[..2 * h * d + h];
        let same = self.transposed_from.len() == used.len()
            && self.transposed_from.chunks(64).zip(used.chunks(64)).all(|(a, b)| {
                // No early exit inside a block, so the comparison vectorises.
                a.iter().zip(b).fold(true, |same, (x, y)| same & (x.to_f64().to_bits() == y.to_f64().to_bits()))
            });
        if same {
            return;
        }
        self.transposed_from.clear();
        self.transposed_from.extend_from_slice(used);
        self.w1t.resize(d * h, T::ZERO);
        for j in 0..h {
            for i in 0..d {
                self.w1t[i * h + j] = self.params[j * d + i];
            }
        }
        if d > SMALL_DIM {
            let w2 = &self.params[h * d + h..2 * h * d + h];
            self.w2t.resize(h * d, T::ZERO);
            for i in 0..d {
                for j in 0..h {
                    self.w2t[j * d + i] = w2[i * h + j];
                }
            }
        }
    }

    /// Refresh the transposed weights unless this batch takes the dot-product path.
    fn prepare(&mut self, rows: usize) {
        if self.dim <= SMALL_DIM || rows > TINY_ROWS {
            self.refresh_transposes();
        }
    }

    pub(crate) fn forward_into(&mut self, y: &[T], dy: &mut [T]) {
        self.prepare(y.len() / self.dim);
        let (dim, hidden) = (self.dim, self.hidden);
        let batch = y.len() / dim;
        let (o_b1, o_w2, o_b2) = self.offsets();
        let (w1t, w2t) = (&self.w1t[..], &self.w2t[..]);
        let p = &self.params;
        let (w1, b1, w2, b2) = (&p[..o_b1], &p[o_b1..o_w2], &p[o_w2..o_b2], &p[o_b2..]);
        let chunks = self.chunks(batch);
        // Both layers per block of rows, so the block's activations stay in cache between them.
        let forward_rows = move |y: &[T], dy: &mut [T], act: &mut Vec<T>| {
            // Narrow states: one sweep per row, activations kept in registers.
            if dim <= SMALL_DIM && T::narrow_mlp_forward(y, w1t, b1, w2, b2, dy, dim, hidden) {
                return;
            }
            for (yb, db) in y.chunks(FORWARD_BLOCK_ROWS * dim).zip(dy.chunks_mut(FORWARD_BLOCK_ROWS * dim)) {
                let rows = yb.len() / dim;
                hidden_layer(yb, w1, w1t, b1, act, rows, dim, hidden);
                output_layer(act, w2, w2t, b2, db, rows, dim, hidden);
            }
        };
        if chunks == 1 {
            forward_rows(y, dy, &mut self.scratch[0].act);
            return;
        }
        let rows_per = batch.div_ceil(chunks);
        // The calling thread runs the first chunk itself while the pool takes the others (a
        // caller outside the pool would otherwise sleep while the pool's threads wake up).
        rayon::in_place_scope(|s| {
            let mut parts = y.chunks(rows_per * dim).zip(dy.chunks_mut(rows_per * dim)).zip(self.scratch.iter_mut());
            let first = parts.next();
            for ((yc, dc), sc) in parts {
                s.spawn(move |_| forward_rows(yc, dc, &mut sc.act));
            }
            if let Some(((yc, dc), sc)) = first {
                forward_rows(yc, dc, &mut sc.act);
            }
        });
    }

    /// VJP; when `dy` is given also writes `f(y)` (sharing the hidden activations).
    pub(crate) fn vjp_into(&mut self, y: &[T], a: &[T], mut dy: Option<&mut [T]>, adj_y: &mut [T], adj_p: &mut [T]) {
        self.prepare(y.len() / self.dim);
        let (dim, hidden) = (self.dim, self.hidden);
        let batch = y.len() / dim;
        let (o_b1, o_w2, o_b2) = self.offsets();
        let np = self.params.len();
        let (w1t, w2t) = (&self.w1t[..], &self.w2t[..]);
        let chunks = self.chunks(batch);
        let rows_per = batch.div_ceil(chunks);
        let params = &self.params;
        let (w1, b1, w2, b2) = (&params[..o_b1], &params[o_b1..o_w2], &params[o_w2..o_b2], &params[o_b2..]);
        // `grad`: where the chunk's parameter gradient accumulates (the caller's `adj_p` when
        // there is one chunk, else the chunk's private buffer).
        let work = |yc: &[T], ac: &[T], dc: Option<&mut [T]>, adj: &mut [T], sc: &mut Scratch<T>, grad: Option<&mut [T]>| {
            let rows = yc.len() / dim;
            hidden_layer(yc, w1, w1t, b1, &mut sc.act, rows, dim, hidden);
            if let Some(dc) = dc {
                output_layer(&sc.act, w2, w2t, b2, dc, rows, dim, hidden);
            }
            match grad {
                Some(g) => backward_chunk(yc, ac, params, sc, adj, g, rows, dim, hidden),
                None => {
                    let mut g = std::mem::take(&mut sc.grad);
                    g.clear();
                    g.resize(np, T::ZERO);
                    backward_chunk(yc, ac, params, sc, adj, &mut g, rows, dim, hidden);
                    sc.grad = g;
                }
            }
        };
        if chunks == 1 {
            work(y, a, dy.as_deref_mut(), adj_y, &mut self.scratch[0], Some(adj_p));
            return;
        }
        let used = {
            let step = rows_per * dim;
            let mut dy_chunks: Vec<Option<&mut [T]>> = match dy.as_deref_mut() {
                Some(d) => d.chunks_mut(step).map(Some).collect(),
                None => (0..chunks).map(|_| None).collect(),
            };
            let n = y.chunks(step).len();
            rayon::scope(|s| {
                for ((((yc, ac), adj), sc), dc) in
                    y.chunks(step).zip(a.chunks(step)).zip(adj_y.chunks_mut(step)).zip(self.scratch.iter_mut()).zip(dy_chunks.iter_mut())
                {
                    let dc = dc.take();
                    let work = &work;
                    s.spawn(move |_| work(yc, ac, dc, adj, sc, None));
                }
            });
            n
        };
        for sc in &self.scratch[..used] {
            for (g, v) in adj_p.iter_mut().zip(sc.grad.iter()) {
                *g += *v;
            }
        }
    }
}

impl<T: Scalar> Dynamics<Vec<T>> for Mlp<T> {
    fn eval(&mut self, _t: f64, y: &Vec<T>, dy: &mut Vec<T>) {
        self.forward_into(y, dy);
    }
}

impl<T: Scalar> crate::lanes::RowDynamics<T> for Mlp<T> {
    fn eval_rows(&mut self, _t: &[f64], y: &[T], dy: &mut [T]) {
        // Autonomous: one batched pass over the gathered rows.
        self.forward_into(y, dy);
    }
}

impl<T: Scalar> VjpDynamics<Vec<T>> for Mlp<T> {
    type Params = Vec<T>;
    fn param_zeros(&self) -> Vec<T> {
        vec![T::ZERO; self.params.len()]
    }
    fn vjp(&mut self, _t: f64, y: &Vec<T>, a: &Vec<T>, adj_y: &mut Vec<T>, adj_p: &mut Vec<T>) {
        self.vjp_into(y, a, None, adj_y, adj_p);
    }
    fn eval_and_vjp(&mut self, _t: f64, y: &Vec<T>, a: &Vec<T>, dy: &mut Vec<T>, adj_y: &mut Vec<T>, adj_p: &mut Vec<T>) {
        self.vjp_into(y, a, Some(dy), adj_y, adj_p);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic values in [-0.5, 0.5) (an LCG), for the tests of this crate.
    pub(crate) fn seeded(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect()
    }

    fn reference_f(m: &Mlp<f64>, y: &[f64]) -> Vec<f64> {
        let (d, h) = (m.dim, m.hidden);
        let p = &m.params;
        let mut out = vec![0.0; y.len()];
        for (r, row) in y.chunks(d).enumerate() {
            let act: Vec<f64> = (0..h).map(|j| (p[h * d + j] + (0..d).map(|i| p[j * d + i] * row[i]).sum::<f64>()).tanh()).collect();
            for i in 0..d {
                out[r * d + i] = p[2 * h * d + h + i] + (0..h).map(|j| p[h * d + h + i * h + j] * act[j]).sum::<f64>();
            }
        }
        out
    }

    #[test]
    fn forward_matches_naive_loops_at_edge_sizes() {
        for &(d, h, b) in &[(1, 1, 1), (2, 3, 2), (3, 8, 255), (5, 64, 257)] {
            let mut m = Mlp::new(d, h, seeded(Mlp::<f64>::num_params_for(d, h), 1)).unwrap();
            let y = seeded(b * d, 2);
            let mut dy = vec![0.0; b * d];
            m.eval(0.0, &y, &mut dy);
            let r = reference_f(&m, &y);
            for (a, b) in dy.iter().zip(&r) {
                assert!((a - b).abs() < 1e-13, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn vjp_matches_central_differences() {
        let (d, h, b) = (3, 7, 300); // 300 rows: exercises the parallel split
        let mut m = Mlp::new(d, h, seeded(Mlp::<f64>::num_params_for(d, h), 3)).unwrap();
        let y = seeded(b * d, 4);
        let a = seeded(b * d, 5);
        let mut adj_y = vec![0.0; b * d];
        let mut adj_p = m.param_zeros();
        let mut dy = vec![0.0; b * d];
        m.eval_and_vjp(0.0, &y, &a, &mut dy, &mut adj_y, &mut adj_p);
        let loss = |m: &Mlp<f64>, y: &[f64]| reference_f(m, y).iter().zip(&a).map(|(f, a)| f * a).sum::<f64>();
        let eps = 1e-6;
        for i in [0, 1, 2, 100, b * d - 1] {
            let (mut yp, mut ym) = (y.clone(), y.clone());
            yp[i] += eps;
            ym[i] -= eps;
            let fd = (loss(&m, &yp) - loss(&m, &ym)) / (2.0 * eps);
            assert!((fd - adj_y[i]).abs() < 1e-7, "y[{i}]: fd {fd} vs {}", adj_y[i]);
        }
        for i in 0..m.params.len() {
            let (mut mp, mut mm) = (m.clone(), m.clone());
            mp.params[i] += eps;
            mm.params[i] -= eps;
            let fd = (loss(&mp, &y) - loss(&mm, &y)) / (2.0 * eps);
            assert!((fd - adj_p[i]).abs() < 1e-6 * (1.0 + fd.abs()), "p[{i}]: fd {fd} vs {}", adj_p[i]);
        }
    }

    /// In f32 the wide path runs on the unpacked kernels of `thin_gemm`, and the narrow
    /// forward (width <= 4) on `mlp_narrow`'s one-sweep rows (where the CPU has AVX-512F); their
    /// value and VJP equal the f64 network's (checked above against naive loops
    /// and central differences) to f32 rounding: 1e-4 of each output's scale covers sums of
    /// 64-256 products at 2^-24 each.
    #[test]
    fn single_precision_wide_path_matches_double_precision() {
        for &(d, h, b) in &[(64, 256, 300), (32, 48, 7), (2, 37, 50), (4, 64, 9), (1, 16, 3)] {
            let p64: Vec<f64> = seeded(Mlp::<f64>::num_params_for(d, h), 6).iter().map(|v| 0.4 * v).collect();
            let p32: Vec<f32> = p64.iter().map(|&v| v as f32).collect();
            let mut m64 = Mlp::new(d, h, p32.iter().map(|&v| v as f64).collect()).unwrap();
            let mut m32 = Mlp::new(d, h, p32).unwrap();
            let y32: Vec<f32> = seeded(b * d, 7).iter().map(|&v| v as f32).collect();
            let a32: Vec<f32> = seeded(b * d, 8).iter().map(|&v| v as f32).collect();
            let (y64, a64): (Vec<f64>, Vec<f64>) = (y32.iter().map(|&v| v as f64).collect(), a32.iter().map(|&v| v as f64).collect());
            let (mut d32, mut ay32, mut ap32) = (vec![0.0f32; b * d], vec![0.0f32; b * d], m32.param_zeros());
            let (mut d64, mut ay64, mut ap64) = (vec![0.0f64; b * d], vec![0.0f64; b * d], m64.param_zeros());
            m32.eval_and_vjp(0.0, &y32, &a32, &mut d32, &mut ay32, &mut ap32);
            m64.eval_and_vjp(0.0, &y64, &a64, &mut d64, &mut ay64, &mut ap64);
            let (mut e32, mut e64) = (vec![0.0f32; b * d], vec![0.0f64; b * d]);
            m32.eval(0.0, &y32, &mut e32);
            m64.eval(0.0, &y64, &mut e64);
            for (name, got, want) in [("f", &d32, &d64), ("eval", &e32, &e64), ("adj_y", &ay32, &ay64), ("adj_p", &ap32, &ap64)] {
                let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let err = got.iter().zip(want.iter()).fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
                assert!(err <= 1e-4 * scale, "d {d} h {h} {name}: error {err:e} at scale {scale:e}");
            }
        }
    }
}
