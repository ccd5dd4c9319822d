//! A neural SDE with fused kernels: the fused MLP drift of [`crate::mlp`] and a one-layer
//! sigmoid diffusion, the shape of the shared SDE reference vectors and speed benchmarks:
//!
//! `dy = (W2 tanh(W1 y + b1) + b2) dt + g(y) dW`, with one of
//!
//! - [`Diffusion::DiagonalSigmoid`]: `g(y) = sigmoid(V y + c)` elementwise, diagonal noise with a
//!   full `V` (so `g_i` depends on every component: the case where the three Milstein forms and
//!   the Ito adjoints differ);
//! - [`Diffusion::GeneralSigmoid`]: `g(y) = sigmoid(V y + c)` reshaped to `dim x channels`
//!   (general noise; `channels = 1` is scalar noise);
//! - [`Diffusion::Additive`]: a constant `dim x channels` matrix `Sigma`.
//!
//! Parameters: the MLP's `[W1, b1, W2, b2]` then the diffusion's (`[V, c]` or `[Sigma]`).

use super::error::SdeError;
use super::terms::{MilsteinForm, Noise, SdeTerms};
use crate::mlp::Mlp;
use crate::scalar::Scalar;

/// The diffusion of a [`NeuralSde`]. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diffusion {
    /// `g = sigmoid(V y + c)`, `V` `dim x dim`, diagonal noise.
    DiagonalSigmoid,
    /// `g = sigmoid(V y + c)` as a `dim x channels` matrix, `V` `(dim channels) x dim`.
    GeneralSigmoid {
        /// Brownian channels per row.
        channels: usize,
    },
    /// Constant `Sigma`, `dim x channels`.
    Additive {
        /// Brownian channels per row.
        channels: usize,
    },
}

/// MLP drift plus a [`Diffusion`]. See the module docs.
#[derive(Debug, Clone)]
pub struct NeuralSde<T: Scalar> {
    /// The drift.
    pub drift: Mlp<T>,
    /// The diffusion's kind.
    pub kind: Diffusion,
    /// The diffusion's flat parameters (`[V, c]` or `[Sigma]`).
    pub diffusion_params: Vec<T>,
    dim: usize,
    /// Scratch: pre-activations / diffusion values, derivatives, cotangents.
    z: Vec<T>,
    g: Vec<T>,
    s: Vec<T>,
    dz: Vec<T>,
    aux: Vec<T>,
    /// `V` transposed.
    vt: Vec<T>,
    /// Per-chunk diffusion-parameter gradients.
    part: Vec<Vec<T>>,
}

/// `1 / (1 + exp(-x)) = (1 + tanh(x / 2)) / 2`, through the vectorisable `tanh` of
/// [`crate::fastmath`] (no overflow for any `x`).
#[inline(always)]
fn sigmoid<T: Scalar>(x: T) -> T {
    let half = T::from_f64(0.5);
    half + half * (half * x).tanh_fast()
}

impl<T: Scalar> NeuralSde<T> {
    /// A neural SDE from the drift MLP's sizes and parameters and the diffusion's parameters.
    pub fn new(dim: usize, hidden: usize, drift_params: Vec<T>, kind: Diffusion, diffusion_params: Vec<T>) -> Result<Self, SdeError> {
        let drift = Mlp::new(dim, hidden, drift_params).ok_or_else(|| {
            SdeError::Shape(format!("drift MLP dim {dim}, hidden {hidden} needs {} parameters", Mlp::<T>::num_params_for(dim, hidden)))
        })?;
        let want = Self::diffusion_len(dim, kind);
        if diffusion_params.len() != want {
            return Err(SdeError::Shape(format!(
                "{kind:?} diffusion at dim {dim} needs {want} parameters, got {}",
                diffusion_params.len()
            )));
        }
        if matches!(kind, Diffusion::GeneralSigmoid { channels: 0 } | Diffusion::Additive { channels: 0 }) {
            return Err(SdeError::InvalidArgument("a diffusion needs at least one Brownian channel".into()));
        }
        Ok(Self { drift, kind, diffusion_params, dim, z: vec![], g: vec![], s: vec![], dz: vec![], aux: vec![], vt: vec![], part: vec![] })
    }

    /// Number of diffusion parameters for `kind` at `dim`.
    pub fn diffusion_len(dim: usize, kind: Diffusion) -> usize {
        match kind {
            Diffusion::DiagonalSigmoid => dim * dim + dim,
            Diffusion::GeneralSigmoid { channels } => dim * channels * dim + dim * channels,
            Diffusion::Additive { channels } => dim * channels,
        }
    }

    /// Rows of the sigmoid layer's output per state row.
    fn width(&self) -> usize {
        match self.kind {
            Diffusion::DiagonalSigmoid => self.dim,
            Diffusion::GeneralSigmoid { channels } | Diffusion::Additive { channels } => self.dim * channels,
        }
    }

    /// `z = Y V^T + c`, `g = sigmoid(z)`, `s = g (1 - g)` for the sigmoid diffusions, row
    /// chunks over the rayon pool on large batches.
    fn sigmoid_layer(&mut self, y: &[T]) {
        let (d, w) = (self.dim, self.width());
        let rows = y.len() / d;
        let (v, c) = self.diffusion_params.split_at(w * d);
        // V transposed (d x w), the right operand of the unpacked product.
        self.vt.resize(d * w, T::ZERO);
        for j in 0..w {
            for i in 0..d {
                self.vt[i * w + j] = v[j * d + i];
            }
        }
        self.z.resize(rows * w, T::ZERO);
        self.g.resize(rows * w, T::ZERO);
        self.s.resize(rows * w, T::ZERO);
        let vt = &self.vt;
        let layer = |yc: &[T], zc: &mut [T], gc: &mut [T], sc: &mut [T]| {
            let r = yc.len() / d;
            if !T::thin_nn(yc, vt, zc, r, d, w, false) {
                for (yr, zr) in yc.chunks(d).zip(zc.chunks_mut(w)) {
                    for (j, zj) in zr.iter_mut().enumerate() {
                        let vr = &v[j * d..(j + 1) * d];
                        *zj = vr.iter().zip(yr).map(|(a, b)| *a * *b).sum();
                    }
                }
            }
            for (zr, (gr, sr)) in zc.chunks_mut(w).zip(gc.chunks_mut(w).zip(sc.chunks_mut(w))) {
                for j in 0..w {
                    let g = sigmoid(zr[j] + c[j]);
                    zr[j] += c[j];
                    gr[j] = g;
                    sr[j] = g * (T::ONE - g);
                }
            }
        };
        let chunks = parallel_chunks(rows, d * w);
        if chunks == 1 {
            layer(y, &mut self.z, &mut self.g, &mut self.s);
            return;
        }
        let per = rows.div_ceil(chunks);
        rayon::scope(|sc| {
            for (((yc, zc), gc), scc) in
                y.chunks(per * d).zip(self.z.chunks_mut(per * w)).zip(self.g.chunks_mut(per * w)).zip(self.s.chunks_mut(per * w))
            {
                let layer = &layer;
                sc.spawn(move |_| layer(yc, zc, gc, scc));
            }
        });
    }

    /// Back through the sigmoid layer: with `dz` (rows x w) the cotangent of `z`,
    /// `adj_y <- dz V` and `adj_p[V, c] += (dz^T Y, sum dz)`.
    fn sigmoid_layer_back(&mut self, y: &[T], adj_y: &mut [T], adj_p: &mut [T]) {
        let (d, w) = (self.dim, self.width());
        let rows = y.len() / d;
        let off = self.drift.params.len();
        let (v, _) = self.diffusion_params.split_at(w * d);
        let chunks = parallel_chunks(rows, d * w);
        let per = rows.div_ceil(chunks);
        self.part.resize(chunks, Vec::new());
        let back = |yc: &[T], dzc: &[T], ac: &mut [T], part: &mut Vec<T>| {
            let r = yc.len() / d;
            part.clear();
            part.resize(w * d + w, T::ZERO);
            let (gv, gc) = part.split_at_mut(w * d);
            if !T::thin_nn(dzc, v, ac, r, w, d, false) {
                for (dzr, ar) in dzc.chunks(w).zip(ac.chunks_mut(d)) {
                    ar.iter_mut().for_each(|x| *x = T::ZERO);
                    for (j, g) in dzr.iter().enumerate() {
                        for (a, vv) in ar.iter_mut().zip(&v[j * d..(j + 1) * d]) {
                            *a += *g * *vv;
                        }
                    }
                }
            }
            if !T::thin_tn_accumulate(dzc, yc, gv, r, w, d) {
                for (dzr, yr) in dzc.chunks(w).zip(yc.chunks(d)) {
                    for (j, g) in dzr.iter().enumerate() {
                        for (gvv, yv) in gv[j * d..(j + 1) * d].iter_mut().zip(yr) {
                            *gvv += *g * *yv;
                        }
                    }
                }
            }
            for dzr in dzc.chunks(w) {
                for (a, b) in gc.iter_mut().zip(dzr) {
                    *a += *b;
                }
            }
        };
        let dz = &self.dz;
        if chunks == 1 {
            back(y, dz, adj_y, &mut self.part[0]);
        } else {
            rayon::scope(|sc| {
                for (((yc, dzc), ac), part) in
                    y.chunks(per * d).zip(dz.chunks(per * w)).zip(adj_y.chunks_mut(per * d)).zip(self.part.iter_mut())
                {
                    let back = &back;
                    sc.spawn(move |_| back(yc, dzc, ac, part));
                }
            });
        }
        for part in &self.part[..chunks] {
            for (a, b) in adj_p[off..].iter_mut().zip(part) {
                *a += *b;
            }
        }
    }
}

/// Row chunks for a layer of `width` multiply-adds per row: one per pool thread above about
/// 2^17 multiply-adds in total, else one.
fn parallel_chunks(rows: usize, width: usize) -> usize {
    if rows * width >= 1 << 17 { rayon::current_num_threads().clamp(1, rows.max(1)) } else { 1 }
}

impl<T: Scalar> SdeTerms<T> for NeuralSde<T> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn channels(&self) -> usize {
        match self.kind {
            Diffusion::DiagonalSigmoid => self.dim,
            Diffusion::GeneralSigmoid { channels } | Diffusion::Additive { channels } => channels,
        }
    }

    fn noise(&self) -> Noise {
        match self.kind {
            Diffusion::DiagonalSigmoid => Noise::Diagonal,
            Diffusion::GeneralSigmoid { channels: 1 } => Noise::Scalar,
            Diffusion::GeneralSigmoid { .. } => Noise::General,
            Diffusion::Additive { .. } => Noise::Additive,
        }
    }

    fn num_params(&self) -> usize {
        self.drift.params.len() + self.diffusion_params.len()
    }

    fn drift(&mut self, _t: f64, y: &[T], out: &mut [T]) {
        self.drift.forward_into(y, out);
    }

    fn diffusion_times(&mut self, _t: f64, y: &[T], dw: &[T], out: &mut [T]) {
        let d = self.dim;
        match self.kind {
            Diffusion::DiagonalSigmoid => {
                self.sigmoid_layer(y);
                for i in 0..out.len() {
                    out[i] = self.g[i] * dw[i];
                }
            }
            Diffusion::GeneralSigmoid { channels: m } => {
                self.sigmoid_layer(y);
                for (r, o) in out.chunks_mut(d).enumerate() {
                    for (i, oi) in o.iter_mut().enumerate() {
                        let gr = &self.g[(r * d + i) * m..(r * d + i + 1) * m];
                        *oi = gr.iter().zip(&dw[r * m..(r + 1) * m]).map(|(a, b)| *a * *b).sum();
                    }
                }
            }
            Diffusion::Additive { channels: m } => {
                let sigma = &self.diffusion_params;
                for (r, o) in out.chunks_mut(d).enumerate() {
                    for (i, oi) in o.iter_mut().enumerate() {
                        *oi = sigma[i * m..(i + 1) * m].iter().zip(&dw[r * m..(r + 1) * m]).map(|(a, b)| *a * *b).sum();
                    }
                }
            }
        }
    }

    fn drift_vjp(&mut self, _t: f64, y: &[T], a: &[T], adj_y: &mut [T], adj_p: &mut [T]) {
        let n = self.drift.params.len();
        self.drift.vjp_into(y, a, None, adj_y, &mut adj_p[..n]);
    }

    fn diffusion_times_vjp(&mut self, _t: f64, y: &[T], dw: &[T], a: &[T], adj_y: &mut [T], adj_p: &mut [T]) {
        let d = self.dim;
        match self.kind {
            Diffusion::DiagonalSigmoid => {
                self.sigmoid_layer(y);
                self.dz.resize(y.len(), T::ZERO);
                for i in 0..y.len() {
                    self.dz[i] = a[i] * dw[i] * self.s[i];
                }
                self.sigmoid_layer_back(y, adj_y, adj_p);
            }
            Diffusion::GeneralSigmoid { channels: m } => {
                self.sigmoid_layer(y);
                let rows = y.len() / d;
                self.dz.resize(rows * d * m, T::ZERO);
                for r in 0..rows {
                    for i in 0..d {
                        for k in 0..m {
                            let e = (r * d + i) * m + k;
                            self.dz[e] = a[r * d + i] * dw[r * m + k] * self.s[e];
                        }
                    }
                }
                self.sigmoid_layer_back(y, adj_y, adj_p);
            }
            Diffusion::Additive { channels: m } => {
                adj_y.iter_mut().for_each(|x| *x = T::ZERO);
                let off = self.drift.params.len();
                let gs = &mut adj_p[off..];
                for r in 0..y.len() / d {
                    for i in 0..d {
                        for k in 0..m {
                            gs[i * m + k] += a[r * d + i] * dw[r * m + k];
                        }
                    }
                }
            }
        }
    }

    fn milstein(&mut self, form: MilsteinForm, _t: f64, y: &[T], dw: &[T], ito_dt: T, out: &mut [T]) -> Result<(), SdeError> {
        let d = self.dim;
        match self.kind {
            Diffusion::Additive { .. } => {
                // g does not depend on y: every correction vanishes.
                out.iter_mut().for_each(|x| *x = T::ZERO);
                return Ok(());
            }
            Diffusion::GeneralSigmoid { .. } => {
                return Err(SdeError::Unsupported("Milstein corrections are implemented for diagonal noise (and additive, where they vanish); general noise needs Levy areas".into()));
            }
            Diffusion::DiagonalSigmoid => {}
        }
        self.sigmoid_layer(y);
        let v = &self.diffusion_params[..d * d];
        let half = T::from_f64(0.5);
        for r in 0..y.len() / d {
            let (g, s) = (&self.g[r * d..(r + 1) * d], &self.s[r * d..(r + 1) * d]);
            let w = &dw[r * d..(r + 1) * d];
            let o = &mut out[r * d..(r + 1) * d];
            match form {
                MilsteinForm::Transposed => {
                    o.iter_mut().for_each(|x| *x = T::ZERO);
                    for j in 0..d {
                        let coef = half * s[j] * g[j] * (w[j] * w[j] - ito_dt);
                        for i in 0..d {
                            o[i] += coef * v[j * d + i];
                        }
                    }
                }
                MilsteinForm::Commutative => {
                    for i in 0..d {
                        let p: T = (0..d).map(|j| v[i * d + j] * g[j] * w[j]).sum();
                        o[i] = half * s[i] * (w[i] * p - ito_dt * v[i * d + i] * g[i]);
                    }
                }
                MilsteinForm::DiagonalOnly => {
                    for i in 0..d {
                        o[i] = half * s[i] * g[i] * v[i * d + i] * (w[i] * w[i] - ito_dt);
                    }
                }
            }
        }
        Ok(())
    }

    fn milstein_vjp(
        &mut self,
        form: MilsteinForm,
        _t: f64,
        y: &[T],
        dw: &[T],
        ito_dt: T,
        a: &[T],
        adj_y: &mut [T],
        adj_p: &mut [T],
    ) -> Result<(), SdeError> {
        let d = self.dim;
        match self.kind {
            Diffusion::Additive { .. } => {
                adj_y.iter_mut().for_each(|x| *x = T::ZERO);
                return Ok(());
            }
            Diffusion::GeneralSigmoid { .. } => {
                return Err(SdeError::Unsupported("Milstein corrections are implemented for diagonal and additive noise only".into()));
            }
            Diffusion::DiagonalSigmoid => {}
        }
        self.sigmoid_layer(y);
        let rows = y.len() / d;
        self.dz.resize(rows * d, T::ZERO);
        self.aux.resize(d, T::ZERO);
        let off = self.drift.params.len();
        let half = T::from_f64(0.5);
        let two = T::from_f64(2.0);
        {
            let v = &self.diffusion_params[..d * d];
            let gv = &mut adj_p[off..off + d * d];
            for r in 0..rows {
                let (g, s) = (&self.g[r * d..(r + 1) * d], &self.s[r * d..(r + 1) * d]);
                let w = &dw[r * d..(r + 1) * d];
                let ar = &a[r * d..(r + 1) * d];
                let dz = &mut self.dz[r * d..(r + 1) * d];
                match form {
                    MilsteinForm::Transposed => {
                        // corr = 1/2 (u q) V with u = s g, du/dz = s (1 - 2 g) g + s^2.
                        for j in 0..d {
                            let q = w[j] * w[j] - ito_dt;
                            let u = s[j] * g[j];
                            let du = s[j] * (T::ONE - two * g[j]) * g[j] + s[j] * s[j];
                            let va: T = (0..d).map(|i| v[j * d + i] * ar[i]).sum();
                            for i in 0..d {
                                gv[j * d + i] += half * u * q * ar[i];
                            }
                            dz[j] = half * q * du * va;
                        }
                    }
                    MilsteinForm::Commutative => {
                        // corr_i = 1/2 s_i e_i, e_i = dW_i p_i - dt V_ii g_i, p = V (g dW).
                        let dg = &mut self.aux;
                        dg.iter_mut().for_each(|x| *x = T::ZERO);
                        for i in 0..d {
                            let p: T = (0..d).map(|j| v[i * d + j] * g[j] * w[j]).sum();
                            let e = w[i] * p - ito_dt * v[i * d + i] * g[i];
                            dz[i] = half * ar[i] * e * s[i] * (T::ONE - two * g[i]);
                            let b = half * ar[i] * s[i];
                            let dp = b * w[i];
                            for j in 0..d {
                                gv[i * d + j] += dp * g[j] * w[j];
                                dg[j] += dp * v[i * d + j] * w[j];
                            }
                            gv[i * d + i] -= ito_dt * g[i] * b;
                            dg[i] -= ito_dt * v[i * d + i] * b;
                        }
                        for i in 0..d {
                            dz[i] += dg[i] * s[i];
                        }
                    }
                    MilsteinForm::DiagonalOnly => {
                        for i in 0..d {
                            let q = w[i] * w[i] - ito_dt;
                            let u = s[i] * g[i];
                            let du = s[i] * (T::ONE - two * g[i]) * g[i] + s[i] * s[i];
                            gv[i * d + i] += half * u * q * ar[i];
                            dz[i] = half * du * v[i * d + i] * q * ar[i];
                        }
                    }
                }
            }
        }
        self.sigmoid_layer_back(y, adj_y, adj_p);
        Ok(())
    }
}
