//! `n` lanes over the rows of row-major data: per-sample solving.
//!
//! Each row has its own time, step size, error norm (over the row), accept/reject decision,
//! output grid and status. The dynamics are evaluated only on the rows stepping this iteration,
//! gathered into a contiguous block, so work follows the rows that need it.

use super::{Evaluate, LaneArith, Lanes};
use crate::norm::RmsNorm;
use crate::scalar::Scalar;
use crate::stepper::Workspace;

/// Dynamics evaluated on a block of rows, each at its own time.
pub trait RowDynamics<T: Scalar> {
    /// Write `f(t[r], y_r)` for the `t.len()` rows of `y` (row-major, `dim` wide) into `dy`.
    fn eval_rows(&mut self, t: &[f64], y: &[T], dy: &mut [T]);
}

impl<T: Scalar, D: RowDynamics<T> + ?Sized> RowDynamics<T> for &mut D {
    fn eval_rows(&mut self, t: &[f64], y: &[T], dy: &mut [T]) {
        (**self).eval_rows(t, y, dy)
    }
}

/// Adapts a closure `|t: &[f64], y: &[T], dy: &mut [T]| ...` (one time per row) into
/// [`RowDynamics`].
pub struct FnRows<F>(pub F);

impl<T: Scalar, F: FnMut(&[f64], &[T], &mut [T])> RowDynamics<T> for FnRows<F> {
    fn eval_rows(&mut self, t: &[f64], y: &[T], dy: &mut [T]) {
        (self.0)(t, y, dy)
    }
}

/// The error norm of one row.
pub trait RowNorm<T> {
    /// Norm of `err` scaled entrywise by `atol + rtol * max(|y0|, |y1|)`.
    fn row_norm(&self, err: &[T], y0: &[T], y1: &[T], rtol: f64, atol: f64) -> f64;
}

/// Sum of squares of the scaled error over `0..n`.
fn scaled_sq<T: Scalar>(err: &[T], y0: &[T], y1: &[T], rtol: f64, atol: f64) -> f64 {
    let mut s = 0.0;
    for i in 0..err.len() {
        let sc = atol + rtol * y0[i].abs().to_f64().max(y1[i].abs().to_f64());
        let r = err[i].to_f64() / sc;
        s += r * r;
    }
    s
}

impl<T: Scalar> RowNorm<T> for RmsNorm {
    fn row_norm(&self, err: &[T], y0: &[T], y1: &[T], rtol: f64, atol: f64) -> f64 {
        if err.is_empty() { 0.0 } else { (scaled_sq(err, y0, y1, rtol, atol) / err.len() as f64).sqrt() }
    }
}

/// RMS over the first `n` entries of each row only: a seminorm for rows that carry components
/// which should not steer the step size (penalty accumulators, the adjoint's `a_theta`; Kidger,
/// Chen, Lyons 2021, "Hey, that's not an ODE").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixNorm(pub usize);

impl<T: Scalar> RowNorm<T> for PrefixNorm {
    fn row_norm(&self, err: &[T], y0: &[T], y1: &[T], rtol: f64, atol: f64) -> f64 {
        let n = self.0.min(err.len());
        if n == 0 { 0.0 } else { (scaled_sq(&err[..n], &y0[..n], &y1[..n], rtol, atol) / n as f64).sqrt() }
    }
}

/// Rows of width `dim` with dynamics `f` and row norm `N`; outputs `[times][rows * dim]`, NaN
/// where a row did not reach an output.
pub struct Rows<'a, T, D, N> {
    f: &'a mut D,
    norm: N,
    dim: usize,
    rows: usize,
    y: Vec<T>,
    k0: Vec<T>,
    gather_y: Vec<T>,
    gather_dy: Vec<T>,
    /// Outputs `[times][rows * dim]`.
    pub ys: Vec<Vec<T>>,
    /// Batched calls of `f` (each on the rows stepping).
    pub calls: usize,
    /// Row evaluations computed (the sum over calls of the rows evaluated).
    pub row_evaluations: usize,
}

impl<'a, T: Scalar, D: RowDynamics<T>, N: RowNorm<T>> Rows<'a, T, D, N> {
    /// Rows of `y0` (`rows * dim` entries), `n_out` outputs each; output 0 is `y0`.
    pub fn new(f: &'a mut D, norm: N, y0: &[T], dim: usize, n_out: usize) -> Self {
        let n = y0.len();
        let mut ys = vec![vec![T::from_f64(f64::NAN); n]; n_out];
        if let Some(first) = ys.first_mut() {
            first.copy_from_slice(y0);
        }
        Self {
            f,
            norm,
            dim,
            rows: n / dim.max(1),
            y: y0.to_vec(),
            k0: vec![T::ZERO; n],
            gather_y: vec![T::ZERO; n],
            gather_dy: vec![T::ZERO; n],
            ys,
            calls: 0,
            row_evaluations: 0,
        }
    }

    fn row(&self, j: usize) -> std::ops::Range<usize> {
        j * self.dim..(j + 1) * self.dim
    }

    fn gather(&self, lanes: &[usize], src: &[T], dst: &mut [T]) {
        for (j, &r) in lanes.iter().enumerate() {
            dst[self.row(j)].copy_from_slice(&src[self.row(r)]);
        }
    }

    /// Fill a failed row's outputs with NaN from output `from` on.
    pub fn poison(&mut self, lane: usize, from: usize) {
        let (nan, rg) = (T::from_f64(f64::NAN), self.row(lane));
        for y in self.ys.iter_mut().skip(from) {
            y[rg.clone()].fill(nan);
        }
    }
}

impl<T: Scalar, D, N> LaneArith for Rows<'_, T, D, N> {
    type Buf = Vec<T>;
    /// Coefficient by coefficient, row by row (the same operation order as the joint mode's
    /// `set_lincomb`, so a row stepped here equals the row stepped alone bit for bit).
    fn lincomb(&self, out: &mut Vec<T>, base: &Vec<T>, hs: &[f64], coeffs: &[f64], ks: &[Vec<T>]) {
        let (d, m) = (self.dim, hs.len() * self.dim);
        out[..m].copy_from_slice(&base[..m]);
        for (c, k) in coeffs.iter().zip(ks) {
            if *c == 0.0 {
                continue;
            }
            for (j, h) in hs.iter().enumerate() {
                let w = T::from_f64(h * c);
                for (o, x) in out[j * d..(j + 1) * d].iter_mut().zip(&k[j * d..(j + 1) * d]) {
                    *o += w * *x;
                }
            }
        }
    }
    fn lincomb_lane(&self, j: usize, out: &mut Vec<T>, base: &Vec<T>, h: f64, coeffs: &[f64], ks: &[Vec<T>]) {
        let rg = j * self.dim..(j + 1) * self.dim;
        out[rg.clone()].copy_from_slice(&base[rg.clone()]);
        for (c, k) in coeffs.iter().zip(ks) {
            if *c != 0.0 {
                let w = T::from_f64(h * c);
                for (o, x) in out[rg.clone()].iter_mut().zip(&k[rg.clone()]) {
                    *o += w * *x;
                }
            }
        }
    }
    fn combine4_lane(&self, j: usize, out: &mut Vec<T>, w: [f64; 4], x: [&Vec<T>; 4]) {
        let w = w.map(T::from_f64);
        for i in j * self.dim..(j + 1) * self.dim {
            out[i] = w[0] * x[0][i] + w[1] * x[1][i] + w[2] * x[2][i] + w[3] * x[3][i];
        }
    }
    fn lane_width(&self, _buf: &Vec<T>) -> usize {
        self.dim
    }
    fn lane_to_f64(&self, j: usize, buf: &Vec<T>, out: &mut [f64]) {
        for (o, x) in out.iter_mut().zip(&buf[j * self.dim..(j + 1) * self.dim]) {
            *o = x.to_f64();
        }
    }
    fn lane_from_f64(&self, j: usize, buf: &mut Vec<T>, src: &[f64]) {
        for (o, x) in buf[j * self.dim..(j + 1) * self.dim].iter_mut().zip(src) {
            *o = T::from_f64(*x);
        }
    }
}

impl<T: Scalar, D: RowDynamics<T>, N> Evaluate for Rows<'_, T, D, N> {
    fn eval(&mut self, ts: &[f64], y: &Vec<T>, dy: &mut Vec<T>) {
        let m = ts.len() * self.dim;
        self.calls += 1;
        self.row_evaluations += ts.len();
        self.f.eval_rows(ts, &y[..m], &mut dy[..m]);
    }
}

impl<T: Scalar, D: RowDynamics<T>, N: RowNorm<T>> Lanes for Rows<'_, T, D, N> {
    type Lane = Vec<T>;
    fn count(&self) -> usize {
        self.rows
    }
    fn lane_bytes(&self) -> usize {
        (self.y.len() / self.rows.max(1)) * std::mem::size_of::<T>()
    }
    fn buf(&self) -> Vec<T> {
        vec![T::ZERO; self.y.len()]
    }
    fn error_ratios(&self, err: &Vec<T>, y0: &Vec<T>, y1: &Vec<T>, rtol: f64, atol: f64, out: &mut [f64]) {
        for (j, r) in out.iter_mut().enumerate() {
            let rg = self.row(j);
            *r = self.norm.row_norm(&err[rg.clone()], &y0[rg.clone()], &y1[rg], rtol, atol);
        }
    }
    fn finite(&self, y: &Vec<T>, out: &mut [bool]) {
        for (j, ok) in out.iter_mut().enumerate() {
            *ok = y[self.row(j)].iter().all(|v| v.is_finite());
        }
    }
    fn lane(&self, j: usize, buf: &Vec<T>) -> Vec<T> {
        buf[self.row(j)].to_vec()
    }
    fn initial_finite(&self, lane: usize) -> bool {
        self.y[self.row(lane)].iter().all(|v| v.is_finite())
    }
    fn first_stages(&mut self, lanes: &[usize], ts: &[f64], finite: &mut [bool]) {
        let (mut gy, mut gdy) = (std::mem::take(&mut self.gather_y), std::mem::take(&mut self.gather_dy));
        self.gather(lanes, &self.y, &mut gy);
        self.eval(ts, &gy, &mut gdy);
        for (j, &r) in lanes.iter().enumerate() {
            let (src, dst) = (self.row(j), self.row(r));
            self.k0[dst].copy_from_slice(&gdy[src.clone()]);
            finite[j] = gdy[src].iter().all(|v| v.is_finite());
        }
        (self.gather_y, self.gather_dy) = (gy, gdy);
    }
    fn load(&mut self, block: &[usize], ws: &mut Workspace<Vec<T>>) {
        self.gather(block, &self.y, &mut ws.y);
        self.gather(block, &self.k0, &mut ws.k[0]);
    }
    fn advance(&mut self, j: usize, lane: usize, ws: &mut Workspace<Vec<T>>, end: Option<usize>) {
        let (src, dst) = (self.row(j), self.row(lane));
        self.y[dst.clone()].copy_from_slice(&ws.y1[src.clone()]);
        if let Some(e) = end {
            self.k0[dst].copy_from_slice(&ws.k[e][src]);
        }
    }
    fn unload(&mut self, _block: &[usize], _ws: &mut Workspace<Vec<T>>) {}
    fn record(&mut self, index: usize, j: usize, lane: usize, buf: &Vec<T>) {
        let (src, dst) = (self.row(j), self.row(lane));
        self.ys[index][dst].copy_from_slice(&buf[src]);
    }
}
