//! The three kinds of map from the plane to the plane that the shape experiment trains, all
//! built from one-hidden-layer tanh networks with exact hand-written gradients:
//!
//! - [`MapKind::Ode`]: the time-1 flow of `dz/dt = f(z, t)`, `f = W2 tanh(W1 [z, t] + b1) + b2`,
//!   solved by dopri5 (gradients by backpropagation through the solver's steps). With
//!   `augment = 0` it is a homeomorphism of the plane, orientation-preserving, whatever the
//!   weights; with `augment = p` the points are lifted to `(x, y, 0, ..., 0)` in `R^(2 + p)` and
//!   the final state projected back on its first two coordinates (Dupont et al. 2019's ANODE),
//!   which is no longer injective in general.
//! - [`MapKind::Mlp`]: `z -> W2 tanh(W1 z + b1) + b2`, unconstrained.
//! - [`MapKind::ResNet`]: `z_{k+1} = z_k + g_k(z_k)` for `blocks` blocks with their own weights;
//!   a residual step is invertible only while `g_k` is a contraction, which nothing enforces.

use super::ShapeError;
use super::intersections::P;
use nodal_solve::dynamics::{Dynamics, VjpDynamics};
use nodal_solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal_solve::tableau::DOPRI5;
use nodal_solve::{RmsNorm, SolveOptions, solve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `out = W2 tanh(W1 x + b1) + b2`, parameters flat as `[W1 (hidden x d_in), b1, W2 (d_out x
/// hidden), b2]`, initialised like PyTorch's `Linear` (uniform in `+-1/sqrt(fan_in)`).
#[derive(Debug, Clone)]
pub struct TanhNet {
    /// Input width.
    pub d_in: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Output width.
    pub d_out: usize,
    /// Flat parameters.
    pub p: Vec<f64>,
}

impl TanhNet {
    /// A freshly initialised network; `out_scale` multiplies the output layer's initial weights.
    pub fn new(d_in: usize, hidden: usize, d_out: usize, out_scale: f64, rng: &mut StdRng) -> Self {
        let mut p = Vec::with_capacity(Self::count(d_in, hidden, d_out));
        let k1 = 1.0 / (d_in as f64).sqrt();
        p.extend((0..hidden * d_in + hidden).map(|_| rng.gen_range(-k1..k1)));
        let k2 = 1.0 / (hidden as f64).sqrt();
        p.extend((0..d_out * hidden + d_out).map(|_| out_scale * rng.gen_range(-k2..k2)));
        Self { d_in, hidden, d_out, p }
    }

    /// Number of parameters.
    pub fn count(d_in: usize, hidden: usize, d_out: usize) -> usize {
        hidden * d_in + hidden + d_out * hidden + d_out
    }

    /// `out = net(x)` for one row; `h` receives the hidden activations.
    pub fn forward(&self, x: &[f64], h: &mut [f64], out: &mut [f64]) {
        let (di, hd) = (self.d_in, self.hidden);
        let (w1, rest) = self.p.split_at(hd * di);
        let (b1, rest) = rest.split_at(hd);
        let (w2, b2) = rest.split_at(self.d_out * hd);
        for j in 0..hd {
            let row = &w1[j * di..(j + 1) * di];
            h[j] = (b1[j] + row.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()).tanh();
        }
        for i in 0..self.d_out {
            out[i] = b2[i] + w2[i * hd..(i + 1) * hd].iter().zip(h.iter()).map(|(w, v)| w * v).sum::<f64>();
        }
    }

    /// Backward pass of one row: `gx <- (d out / d x)^T gout` (overwritten) and
    /// `gp <- gp + (d out / d theta)^T gout`, given the row's input `x` and activations `h`.
    pub fn backward(&self, x: &[f64], h: &[f64], gout: &[f64], gx: &mut [f64], gp: &mut [f64]) {
        let (di, hd, d_out) = (self.d_in, self.hidden, self.d_out);
        let w1 = &self.p[..hd * di];
        let w2 = &self.p[hd * di + hd..hd * di + hd + d_out * hd];
        let (gw1, rest) = gp.split_at_mut(hd * di);
        let (gb1, rest) = rest.split_at_mut(hd);
        let (gw2, gb2) = rest.split_at_mut(d_out * hd);
        gx.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..d_out {
            gb2[i] += gout[i];
            for j in 0..hd {
                gw2[i * hd + j] += gout[i] * h[j];
            }
        }
        for j in 0..hd {
            let gh: f64 = (0..d_out).map(|i| w2[i * hd + j] * gout[i]).sum();
            let ga = gh * (1.0 - h[j] * h[j]);
            gb1[j] += ga;
            for k in 0..di {
                gw1[j * di + k] += ga * x[k];
                gx[k] += ga * w1[j * di + k];
            }
        }
    }
}

impl TanhNet {
    /// `J[i][k] = d out_i / d x_k` for `k < cols` at a row whose activations are `h`:
    /// `W2 diag(1 - h^2) W1[:, ..cols]`, row-major `d_out x cols` into `jac`.
    pub fn jacobian(&self, h: &[f64], cols: usize, jac: &mut [f64]) {
        let (di, hd) = (self.d_in, self.hidden);
        let w1 = &self.p[..hd * di];
        let w2 = &self.p[hd * di + hd..hd * di + hd + self.d_out * hd];
        jac.iter_mut().for_each(|v| *v = 0.0);
        for j in 0..hd {
            let g = 1.0 - h[j] * h[j];
            for i in 0..self.d_out {
                let a = w2[i * hd + j] * g;
                for k in 0..cols {
                    jac[i * cols + k] += a * w1[j * di + k];
                }
            }
        }
    }
}

/// The variational equation of a [`FlowField`]: rows `[z (d), J (d x d, row-major)]` with
/// `dz/dt = f(z, t)` and `dJ/dt = (df/dz) J`, so that `J(1)` is the Jacobian of the time-1 flow.
struct Variational<'a> {
    field: &'a FlowField,
    x: Vec<f64>,
    h: Vec<f64>,
    a: Vec<f64>,
}

impl Dynamics<Vec<f64>> for Variational<'_> {
    fn eval(&mut self, t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        let net = &self.field.net;
        let d = net.d_out;
        let w = d + d * d;
        for (r, o) in y.chunks(w).zip(dy.chunks_mut(w)) {
            self.x[..d].copy_from_slice(&r[..d]);
            self.x[d] = t;
            net.forward(&self.x, &mut self.h, &mut o[..d]);
            net.jacobian(&self.h, d, &mut self.a);
            let (jm, dj) = (&r[d..], &mut o[d..]);
            for i in 0..d {
                for k in 0..d {
                    dj[i * d + k] = (0..d).map(|m| self.a[i * d + m] * jm[m * d + k]).sum();
                }
            }
        }
    }
}

/// `f(z, t)` on a batch of points in `R^d`, rows of `y` (a flat `[batch][d]` vector): the
/// network sees `[z, t]`.
#[derive(Debug, Clone)]
pub struct FlowField {
    /// The network, `d + 1 -> d`.
    pub net: TanhNet,
    x: Vec<f64>,
    h: Vec<f64>,
    gx: Vec<f64>,
    out: Vec<f64>,
}

impl FlowField {
    /// A field on `R^d` with `hidden` units.
    pub fn new(d: usize, hidden: usize, rng: &mut StdRng) -> Self {
        let net = TanhNet::new(d + 1, hidden, d, 0.1, rng);
        Self { x: vec![0.0; d + 1], h: vec![0.0; hidden], gx: vec![0.0; d + 1], out: vec![0.0; d], net }
    }
}

impl Dynamics<Vec<f64>> for FlowField {
    fn eval(&mut self, t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        let d = self.net.d_out;
        for (z, o) in y.chunks(d).zip(dy.chunks_mut(d)) {
            self.x[..d].copy_from_slice(z);
            self.x[d] = t;
            self.net.forward(&self.x, &mut self.h, o);
        }
    }
}

impl VjpDynamics<Vec<f64>> for FlowField {
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        vec![0.0; self.net.p.len()]
    }
    fn vjp(&mut self, t: f64, y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        let d = self.net.d_out;
        for ((z, g), r) in y.chunks(d).zip(a.chunks(d)).zip(adj_y.chunks_mut(d)) {
            self.x[..d].copy_from_slice(z);
            self.x[d] = t;
            // Only the activations are needed; the output goes to a reused buffer.
            self.net.forward(&self.x, &mut self.h, &mut self.out);
            self.net.backward(&self.x, &self.h, g, &mut self.gx, adj_p);
            r.copy_from_slice(&self.gx[..d]);
        }
    }
}

/// Which map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// The flow of a neural ODE on `R^(2 + augment)`, projected on the plane.
    Ode {
        /// Extra zero-initialised dimensions (0: a plain neural ODE).
        augment: usize,
    },
    /// A one-hidden-layer tanh network from the plane to the plane.
    Mlp,
    /// A residual network of `blocks` tanh blocks.
    ResNet {
        /// Residual blocks.
        blocks: usize,
    },
}

impl MapKind {
    /// Short name for tables and legends.
    pub fn name(self) -> String {
        match self {
            MapKind::Ode { augment: 0 } => "neural ODE".into(),
            MapKind::Ode { augment } => format!("augmented ODE (R^{})", 2 + augment),
            MapKind::Mlp => "MLP".into(),
            MapKind::ResNet { blocks } => format!("ResNet ({blocks} blocks)"),
        }
    }
}

/// A trainable map of the plane. See the module docs.
#[derive(Debug, Clone)]
pub struct Map {
    /// Which map.
    pub kind: MapKind,
    /// The ODE's field (for [`MapKind::Ode`]).
    pub field: Option<FlowField>,
    /// The networks of the MLP (one) or the ResNet (one per block).
    pub nets: Vec<TanhNet>,
    /// Tolerance (rtol = atol) of the training solves.
    pub train_tol: f64,
}

fn solve_err(e: nodal_solve::SolveError) -> ShapeError {
    ShapeError::Solve(e.to_string())
}

impl Map {
    /// A freshly initialised map; `hidden` units per network.
    pub fn new(kind: MapKind, hidden: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let (field, nets) = match kind {
            MapKind::Ode { augment } => (Some(FlowField::new(2 + augment, hidden, &mut rng)), vec![]),
            MapKind::Mlp => (None, vec![TanhNet::new(2, hidden, 2, 1.0, &mut rng)]),
            MapKind::ResNet { blocks } => (None, (0..blocks).map(|_| TanhNet::new(2, hidden, 2, 0.1, &mut rng)).collect()),
        };
        Self { kind, field, nets, train_tol: 1e-5 }
    }

    /// State width of the ODE (2 for the other maps).
    fn dim(&self) -> usize {
        match self.kind {
            MapKind::Ode { augment } => 2 + augment,
            _ => 2,
        }
    }

    /// All parameters, flat.
    pub fn params(&self) -> Vec<f64> {
        match &self.field {
            Some(f) => f.net.p.clone(),
            None => self.nets.iter().flat_map(|n| n.p.iter().copied()).collect(),
        }
    }

    /// Set all parameters from a flat vector of [`Map::params`]' layout.
    pub fn set_params(&mut self, p: &[f64]) {
        match &mut self.field {
            Some(f) => f.net.p.copy_from_slice(p),
            None => {
                let mut off = 0;
                for n in &mut self.nets {
                    let k = n.p.len();
                    n.p.copy_from_slice(&p[off..off + k]);
                    off += k;
                }
            }
        }
    }

    fn lift(&self, pts: &[P]) -> Vec<f64> {
        let d = self.dim();
        pts.iter().flat_map(|p| [p.0, p.1].into_iter().chain(std::iter::repeat_n(0.0, d - 2))).collect()
    }

    /// The images of `pts`; ODE solves at rtol = atol = `tol`.
    pub fn apply(&mut self, pts: &[P], tol: f64) -> Result<Vec<P>, ShapeError> {
        Ok(self.snapshots(pts, &[0.0, 1.0], tol)?.pop().unwrap_or_default())
    }

    /// The images of `pts` at every time of `ts` (from 0; the ODE's flow at those times, the other
    /// maps' input at 0 and output at any later time).
    pub fn snapshots(&mut self, pts: &[P], ts: &[f64], tol: f64) -> Result<Vec<Vec<P>>, ShapeError> {
        let d = self.dim();
        let z0 = self.lift(pts);
        let proj = |z: &[f64]| -> Vec<P> { z.chunks(d).map(|r| (r[0], r[1])).collect() };
        match &mut self.field {
            Some(f) => {
                let opts = SolveOptions::new(&DOPRI5).with_tol(tol, tol).with_max_steps(100_000);
                let sol = solve(f, &z0, ts, &opts, &RmsNorm).map_err(|e| solve_err(e.error))?;
                Ok(sol.ys.iter().map(|z| proj(z)).collect())
            }
            None => {
                let out = self.discrete(&z0);
                Ok(ts.iter().map(|t| if *t == 0.0 { pts.to_vec() } else { proj(&out) }).collect())
            }
        }
    }

    /// The MLP's or ResNet's output for flat rows `z` (2 wide).
    fn discrete(&self, z: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; z.len()];
        for (zi, oi) in z.chunks(2).zip(out.chunks_mut(2)) {
            let mut cur = [zi[0], zi[1]];
            match self.kind {
                MapKind::Mlp => {
                    let n = &self.nets[0];
                    let mut h = vec![0.0; n.hidden];
                    n.forward(&cur, &mut h, oi);
                }
                _ => {
                    for n in &self.nets {
                        let mut h = vec![0.0; n.hidden];
                        let mut g = [0.0; 2];
                        n.forward(&cur, &mut h, &mut g);
                        cur = [cur[0] + g[0], cur[1] + g[1]];
                    }
                    oi.copy_from_slice(&cur);
                }
            }
        }
        out
    }

    /// Mean squared distance between the images of `src` and `tgt` (point by point) and its
    /// gradient with respect to [`Map::params`]; the forward evaluations of an ODE solve.
    pub fn loss_and_grad(&mut self, src: &[P], tgt: &[P]) -> Result<(f64, Vec<f64>, usize), ShapeError> {
        let n = src.len() as f64;
        let d = self.dim();
        let z0 = self.lift(src);
        if let Some(f) = &mut self.field {
            let opts = SolveOptions::new(&DOPRI5).with_tol(self.train_tol, self.train_tol).with_max_steps(100_000);
            let ts = [0.0, 1.0];
            let (sol, backward) =
                solve_for_gradients(f, &z0, &ts, &opts, &RmsNorm, GradMethod::Backprop).map_err(|e| solve_err(e.error))?;
            let z1 = &sol.ys[1];
            let mut loss = 0.0;
            let mut zbar = vec![0.0; z1.len()];
            for (i, t) in tgt.iter().enumerate() {
                let (ex, ey) = (z1[i * d] - t.0, z1[i * d + 1] - t.1);
                loss += ex * ex + ey * ey;
                zbar[i * d] = 2.0 * ex / n;
                zbar[i * d + 1] = 2.0 * ey / n;
            }
            let ybar = vec![vec![0.0; zbar.len()], zbar];
            let no_adjoint = AdjointOptions { solve: opts.clone(), seminorm: false };
            let g = backward.gradients(f, &ts, &sol.ys, &ybar, &no_adjoint, false).map_err(solve_err)?;
            return Ok((loss / n, g.params, sol.stats.nfe));
        }
        let mut grad: Vec<Vec<f64>> = self.nets.iter().map(|k| vec![0.0; k.p.len()]).collect();
        let mut loss = 0.0;
        for (s, t) in src.iter().zip(tgt) {
            // Forward, keeping each block's input and activations.
            let mut xs: Vec<[f64; 2]> = vec![[s.0, s.1]];
            let mut hs: Vec<Vec<f64>> = Vec::new();
            for k in &self.nets {
                let x = *xs.last().expect("starts with the input");
                let mut h = vec![0.0; k.hidden];
                let mut o = [0.0; 2];
                k.forward(&x, &mut h, &mut o);
                hs.push(h);
                xs.push(if self.kind == MapKind::Mlp { o } else { [x[0] + o[0], x[1] + o[1]] });
            }
            let out = xs[xs.len() - 1];
            let (ex, ey) = (out[0] - t.0, out[1] - t.1);
            loss += ex * ex + ey * ey;
            let mut g = [2.0 * ex / n, 2.0 * ey / n];
            for b in (0..self.nets.len()).rev() {
                let mut gx = [0.0; 2];
                self.nets[b].backward(&xs[b], &hs[b], &g, &mut gx, &mut grad[b]);
                g = if self.kind == MapKind::Mlp { gx } else { [g[0] + gx[0], g[1] + gx[1]] };
            }
        }
        Ok((loss / n, grad.concat(), 0))
    }

    /// Determinant of the Jacobian of the (projected) map at each of `pts`, from the exact
    /// Jacobian: for the ODE by solving the variational equation `dJ/dt = (df/dz) J`, `J(0) = I`
    /// beside the state (at rtol = atol = `tol`) and taking the top-left 2 x 2 block of `J(1)`
    /// (the lift `(x, y) -> (x, y, 0, ...)` and the projection back keep exactly that block);
    /// for the MLP `W2 diag(1 - h^2) W1`; for the ResNet the product of the blocks' `I + J_k`.
    /// A numerical solve can still return a negative value: the positivity of the ODE's
    /// determinant is measured, not built in (unlike `exp` of an integrated divergence).
    pub fn jacobian_det(&mut self, pts: &[P], tol: f64) -> Result<Vec<f64>, ShapeError> {
        let det2 = |j: [f64; 4]| j[0] * j[3] - j[1] * j[2];
        if let Some(field) = &self.field {
            let d = field.net.d_out;
            let mut y0 = Vec::with_capacity(pts.len() * (d + d * d));
            for p in pts {
                y0.extend([p.0, p.1].into_iter().chain(std::iter::repeat_n(0.0, d - 2)));
                y0.extend((0..d * d).map(|k| if k / d == k % d { 1.0 } else { 0.0 }));
            }
            let mut var = Variational { field, x: vec![0.0; d + 1], h: vec![0.0; field.net.hidden], a: vec![0.0; d * d] };
            let opts = SolveOptions::new(&DOPRI5).with_tol(tol, tol).with_max_steps(200_000);
            let sol = solve(&mut var, &y0, &[0.0, 1.0], &opts, &RmsNorm).map_err(|e| solve_err(e.error))?;
            let w = d + d * d;
            return Ok(sol.ys[1].chunks(w).map(|r| det2([r[d], r[d + 1], r[d + d], r[d + d + 1]])).collect());
        }
        let mut out = Vec::with_capacity(pts.len());
        for p in pts {
            let mut x = [p.0, p.1];
            let mut jac = [1.0, 0.0, 0.0, 1.0];
            for n in &self.nets {
                let mut h = vec![0.0; n.hidden];
                let mut o = [0.0; 2];
                n.forward(&x, &mut h, &mut o);
                let mut jk = [0.0; 4];
                n.jacobian(&h, 2, &mut jk);
                if self.kind == MapKind::Mlp {
                    jac = jk;
                } else {
                    // (I + J_k) times the Jacobian so far.
                    let b = [1.0 + jk[0], jk[1], jk[2], 1.0 + jk[3]];
                    jac = [
                        b[0] * jac[0] + b[1] * jac[2],
                        b[0] * jac[1] + b[1] * jac[3],
                        b[2] * jac[0] + b[3] * jac[2],
                        b[2] * jac[1] + b[3] * jac[3],
                    ];
                    o = [x[0] + o[0], x[1] + o[1]];
                }
                x = o;
            }
            out.push(det2(jac));
        }
        Ok(out)
    }

    /// The same determinant by central differences of [`Map::apply`] with step `h`: an
    /// independent check of [`Map::jacobian_det`] while the map is moderate (it breaks down
    /// where the flow stretches by orders of magnitude within `h`).
    pub fn jacobian_det_fd(&mut self, pts: &[P], h: f64, tol: f64) -> Result<Vec<f64>, ShapeError> {
        let mut probe = Vec::with_capacity(4 * pts.len());
        for p in pts {
            probe.extend([(p.0 + h, p.1), (p.0 - h, p.1), (p.0, p.1 + h), (p.0, p.1 - h)]);
        }
        let img = self.apply(&probe, tol)?;
        Ok(img
            .chunks(4)
            .map(|q| {
                let (dxx, dyx) = ((q[0].0 - q[1].0) / (2.0 * h), (q[0].1 - q[1].1) / (2.0 * h));
                let (dxy, dyy) = ((q[2].0 - q[3].0) / (2.0 * h), (q[2].1 - q[3].1) / (2.0 * h));
                dxx * dyy - dxy * dyx
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts() -> Vec<P> {
        vec![(0.3, -0.2), (-0.7, 0.5), (1.1, 0.9), (-0.4, -1.2)]
    }

    /// The training gradient of every kind of map matches central differences of its loss.
    #[test]
    fn gradients_match_central_differences() {
        let tgt: Vec<P> = pts().iter().map(|p| (p.0 * 0.8 + 0.1, p.1 * 1.3 - p.0 * 0.2)).collect();
        for kind in [MapKind::Ode { augment: 0 }, MapKind::Ode { augment: 1 }, MapKind::Mlp, MapKind::ResNet { blocks: 3 }] {
            let mut m = Map::new(kind, 5, 3);
            // Larger output weights than the initial ones, so that the maps are far from identity.
            let p0: Vec<f64> = m.params().iter().enumerate().map(|(i, v)| v * 4.0 + 0.05 * (i as f64).sin()).collect();
            m.set_params(&p0);
            m.train_tol = 1e-11;
            let (_, g, _) = m.loss_and_grad(&pts(), &tgt).unwrap();
            let eps = 1e-6;
            for k in 0..p0.len() {
                let mut p = p0.clone();
                p[k] += eps;
                m.set_params(&p);
                let up = m.loss_and_grad(&pts(), &tgt).unwrap().0;
                p[k] -= 2.0 * eps;
                m.set_params(&p);
                let down = m.loss_and_grad(&pts(), &tgt).unwrap().0;
                let fd = (up - down) / (2.0 * eps);
                assert!((fd - g[k]).abs() <= 1e-6 * (1.0 + fd.abs()), "{kind:?} param {k}: {} vs {fd}", g[k]);
            }
            m.set_params(&p0);
        }
    }

    /// The exact Jacobian determinants (variational equation, analytic products) agree with
    /// central differences on maps far from the identity, for every kind of map.
    #[test]
    fn exact_determinants_match_central_differences() {
        for kind in [MapKind::Ode { augment: 0 }, MapKind::Ode { augment: 1 }, MapKind::Mlp, MapKind::ResNet { blocks: 3 }] {
            let mut m = Map::new(kind, 6, 11);
            let p: Vec<f64> = m.params().iter().enumerate().map(|(i, v)| v * 5.0 + 0.1 * (i as f64 * 0.7).cos()).collect();
            m.set_params(&p);
            let exact = m.jacobian_det(&pts(), 1e-11).unwrap();
            let fd = m.jacobian_det_fd(&pts(), 1e-5, 1e-12).unwrap();
            for (e, f) in exact.iter().zip(&fd) {
                assert!((e - f).abs() <= 1e-5 * (1.0 + f.abs()), "{kind:?}: {e} vs {f}");
            }
            // Far from the identity: not all determinants are 1.
            assert!(exact.iter().any(|d| (d - 1.0).abs() > 1e-2), "{kind:?}: {exact:?}");
        }
    }

    /// The Jacobian determinant of the identity, for the ResNet and the ODE.
    #[test]
    fn jacobian_determinant_of_known_maps() {
        // One ResNet block whose network is exactly linear in the small-activation limit is
        // awkward to build; instead a map with zero output weights is the identity.
        let mut m = Map::new(MapKind::ResNet { blocks: 2 }, 4, 1);
        let zero = vec![0.0; m.params().len()];
        m.set_params(&zero);
        for d in m.jacobian_det(&pts(), 1e-10).unwrap() {
            assert!((d - 1.0).abs() < 1e-9, "{d}");
        }
        let mut ode = Map::new(MapKind::Ode { augment: 0 }, 4, 1);
        ode.set_params(&vec![0.0; ode.params().len()]);
        for d in ode.jacobian_det(&pts(), 1e-10).unwrap() {
            assert!((d - 1.0).abs() < 1e-8, "{d}");
        }
    }
}
