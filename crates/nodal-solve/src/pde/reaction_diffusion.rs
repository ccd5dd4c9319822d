//! Reaction-diffusion as a layer: `u_t = D Laplacian(u) + R(u)` on a [`Grid`], for a batch of
//! fields stacked in one state, with the reaction either Fisher-KPP's `r u (1 - u)` or a small
//! pointwise network `R_theta(u)` learned from snapshots.
//!
//! The diffusion term makes the system stiff: the discrete Laplacian's eigenvalues reach
//! `-4 D / dx^2` per axis, so explicit methods need `h < ~2.8 dx^2 / (4 D)` whatever the
//! solution's smoothness, while the implicit methods of [`crate::implicit`] step by accuracy.

use super::grid::Grid;
use crate::dynamics::{Dynamics, VjpDynamics};

/// A scalar network `R(u) = w3 . tanh(W2 tanh(w1 u + b1) + b2) + b3` applied at every grid point
/// (hidden width `h`; parameters `[w1 (h), b1 (h), W2 (h x h), b2 (h), w3 (h), b3]`).
#[derive(Debug, Clone, PartialEq)]
pub struct PointwiseMlp {
    /// Hidden width.
    pub hidden: usize,
    /// Flat parameters in the order above.
    pub params: Vec<f64>,
}

impl PointwiseMlp {
    /// Number of parameters for hidden width `h`.
    pub fn param_count(h: usize) -> usize {
        h * h + 4 * h + 1
    }

    /// A network with the given parameters (`params.len()` must be [`PointwiseMlp::param_count`]).
    pub fn new(hidden: usize, params: Vec<f64>) -> Self {
        assert_eq!(params.len(), Self::param_count(hidden), "pointwise MLP parameter count");
        Self { hidden, params }
    }

    /// `R(u)` and, into `a1`/`a2`, the hidden activations.
    #[inline]
    fn forward(&self, u: f64, a1: &mut [f64], a2: &mut [f64]) -> f64 {
        let h = self.hidden;
        let p = &self.params;
        let (w1, b1, w2, b2, w3, b3) = (
            &p[..h],
            &p[h..2 * h],
            &p[2 * h..2 * h + h * h],
            &p[2 * h + h * h..3 * h + h * h],
            &p[3 * h + h * h..4 * h + h * h],
            p[4 * h + h * h],
        );
        for k in 0..h {
            a1[k] = (w1[k] * u + b1[k]).tanh();
        }
        let mut r = b3;
        for k in 0..h {
            let row = &w2[k * h..(k + 1) * h];
            let z: f64 = b2[k] + row.iter().zip(a1.iter()).map(|(w, a)| w * a).sum::<f64>();
            a2[k] = z.tanh();
            r += w3[k] * a2[k];
        }
        r
    }

    /// `R(u)` at one point.
    pub fn eval(&self, u: f64) -> f64 {
        let mut a1 = vec![0.0; self.hidden];
        let mut a2 = vec![0.0; self.hidden];
        self.forward(u, &mut a1, &mut a2)
    }

    /// Given the cotangent `g` of `R(u)`: returns `g dR/du` and adds `g dR/dtheta` to `grad`.
    #[inline]
    fn backward(&self, u: f64, g: f64, a1: &[f64], a2: &[f64], d2: &mut [f64], grad: &mut [f64]) -> f64 {
        let h = self.hidden;
        let p = &self.params;
        let (w1, w2, w3) = (&p[..h], &p[2 * h..2 * h + h * h], &p[3 * h + h * h..4 * h + h * h]);
        let o_w1 = 0;
        let o_b1 = h;
        let o_w2 = 2 * h;
        let o_b2 = 2 * h + h * h;
        let o_w3 = 3 * h + h * h;
        let o_b3 = 4 * h + h * h;
        grad[o_b3] += g;
        for k in 0..h {
            grad[o_w3 + k] += g * a2[k];
            d2[k] = g * w3[k] * (1.0 - a2[k] * a2[k]);
            grad[o_b2 + k] += d2[k];
        }
        let mut du = 0.0;
        for m in 0..h {
            let mut s = 0.0;
            for k in 0..h {
                grad[o_w2 + k * h + m] += d2[k] * a1[m];
                s += d2[k] * w2[k * h + m];
            }
            let d1 = s * (1.0 - a1[m] * a1[m]);
            grad[o_w1 + m] += d1 * u;
            grad[o_b1 + m] += d1;
            du += d1 * w1[m];
        }
        du
    }
}

/// The reaction term.
#[derive(Debug, Clone, PartialEq)]
pub enum Reaction {
    /// Fisher-KPP logistic growth `r u (1 - u)`.
    FisherKpp {
        /// Growth rate `r`.
        rate: f64,
    },
    /// A learned pointwise network.
    Learned(PointwiseMlp),
}

/// `u_t = D Laplacian(u) + R(u)` for `batch` fields of [`Grid::len`] values stacked in one state.
#[derive(Debug, Clone)]
pub struct ReactionDiffusion {
    /// The grid and its boundary conditions.
    pub grid: Grid,
    /// Diffusion coefficient `D`.
    pub diffusion: f64,
    /// The reaction term.
    pub reaction: Reaction,
    a1: Vec<f64>,
    a2: Vec<f64>,
    d2: Vec<f64>,
}

impl ReactionDiffusion {
    /// The system on `grid` with diffusion `D` and `reaction`.
    pub fn new(grid: Grid, diffusion: f64, reaction: Reaction) -> Self {
        let h = match &reaction {
            Reaction::Learned(m) => m.hidden,
            Reaction::FisherKpp { .. } => 0,
        };
        Self { grid, diffusion, reaction, a1: vec![0.0; h], a2: vec![0.0; h], d2: vec![0.0; h] }
    }

    /// `R(u)` at one value.
    pub fn reaction_at(&self, u: f64) -> f64 {
        match &self.reaction {
            Reaction::FisherKpp { rate } => rate * u * (1.0 - u),
            Reaction::Learned(m) => m.eval(u),
        }
    }
}

impl Dynamics<Vec<f64>> for ReactionDiffusion {
    fn eval(&mut self, _t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        let n = self.grid.len();
        for (u, du) in y.chunks(n).zip(dy.chunks_mut(n)) {
            self.grid.laplacian(u, du, false);
            for (d, &v) in du.iter_mut().zip(u) {
                let r = match &self.reaction {
                    Reaction::FisherKpp { rate } => rate * v * (1.0 - v),
                    Reaction::Learned(m) => m.forward(v, &mut self.a1, &mut self.a2),
                };
                *d = self.diffusion * *d + r;
            }
        }
    }
}

impl VjpDynamics<Vec<f64>> for ReactionDiffusion {
    /// The learned network's parameters (empty for Fisher-KPP).
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        match &self.reaction {
            Reaction::Learned(m) => vec![0.0; m.params.len()],
            Reaction::FisherKpp { .. } => Vec::new(),
        }
    }
    fn vjp(&mut self, _t: f64, y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        let n = self.grid.len();
        // The Laplacian is symmetric under every boundary condition here (see `grid`).
        for ((u, g), out) in y.chunks(n).zip(a.chunks(n)).zip(adj_y.chunks_mut(n)) {
            self.grid.laplacian(g, out, false);
            for ((o, &v), &gi) in out.iter_mut().zip(u).zip(g) {
                let dr = match &self.reaction {
                    Reaction::FisherKpp { rate } => gi * rate * (1.0 - 2.0 * v),
                    Reaction::Learned(m) => {
                        m.forward(v, &mut self.a1, &mut self.a2);
                        m.backward(v, gi, &self.a1, &self.a2, &mut self.d2, adj_p)
                    }
                };
                *o = self.diffusion * *o + dr;
            }
        }
    }
}
