//! Viscous Burgers as a layer on a periodic 1-D grid: `u_t = nu u_xx + F(u)`, with the
//! convection `F` either the central discretisation of `-(u^2 / 2)_x` or a learned convolution
//! over the channels `[u, u^2]` (width 5, 10 weights): a data-driven closure that can correct a
//! coarse grid's discretisation error.
//!
//! The exact solutions the discretisation is checked against come from the Cole-Hopf transform
//! ([`cole_hopf`]): `u = -2 nu phi_x / phi` with `phi_t = nu phi_xx`.

use super::grid::Axis;
use crate::dynamics::{Dynamics, VjpDynamics};

/// Half-width of the learned convection stencil.
pub const FLUX_RADIUS: usize = 2;
/// Weights of the learned convection: `[a_{-2..2} on u, b_{-2..2} on u^2]`.
pub const FLUX_WEIGHTS: usize = 2 * (2 * FLUX_RADIUS + 1);

/// The convection term.
#[derive(Debug, Clone, PartialEq)]
pub enum Convection {
    /// `-(u^2 / 2)_x` by central differences.
    Central,
    /// `sum_k a_k u_{i+k} + b_k (u^2)_{i+k}`, weights `[a, b]` ([`FLUX_WEIGHTS`]).
    Learned(Vec<f64>),
}

impl Convection {
    /// The central scheme written as learned weights (`b = [0, 1, 0, -1, 0] / (4 dx)`, `a = 0`):
    /// the starting point of training, and the reference the learned weights are compared to.
    pub fn central_weights(axis: &Axis) -> Vec<f64> {
        let c = 0.25 / axis.dx();
        vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0, c, 0.0, -c, 0.0]
    }
}

/// `u_t = nu u_xx + F(u)` for `batch` fields of `axis.n` values stacked in one state.
#[derive(Debug, Clone)]
pub struct Burgers {
    /// The periodic axis.
    pub axis: Axis,
    /// Viscosity `nu`.
    pub viscosity: f64,
    /// The convection term.
    pub convection: Convection,
    sq: Vec<f64>,
}

impl Burgers {
    /// Burgers on `axis` with viscosity `nu` and `convection`.
    pub fn new(axis: Axis, viscosity: f64, convection: Convection) -> Self {
        Self { axis, viscosity, convection, sq: vec![0.0; axis.n] }
    }

    fn kernels(&self) -> ([f64; 5], [f64; 5]) {
        match &self.convection {
            Convection::Central => {
                let w = Convection::central_weights(&self.axis);
                (w[..5].try_into().expect("5 weights"), w[5..].try_into().expect("5 weights"))
            }
            Convection::Learned(w) => (w[..5].try_into().expect("5 weights"), w[5..].try_into().expect("5 weights")),
        }
    }
}

impl Dynamics<Vec<f64>> for Burgers {
    fn eval(&mut self, _t: f64, y: &Vec<f64>, dy: &mut Vec<f64>) {
        let n = self.axis.n;
        let (ka, kb) = self.kernels();
        let lap = self.axis.second_difference();
        let lap5 = [0.0, lap[0] * self.viscosity, lap[1] * self.viscosity, lap[2] * self.viscosity, 0.0];
        let ka: Vec<f64> = ka.iter().zip(&lap5).map(|(a, l)| a + l).collect();
        for (u, du) in y.chunks(n).zip(dy.chunks_mut(n)) {
            for (s, v) in self.sq.iter_mut().zip(u) {
                *s = v * v;
            }
            self.axis.conv(&ka, u, du, 1, &[0], false);
            self.axis.conv(&kb, &self.sq, du, 1, &[0], true);
        }
    }
}

impl VjpDynamics<Vec<f64>> for Burgers {
    /// The learned weights (empty for the central scheme).
    type Params = Vec<f64>;
    fn param_zeros(&self) -> Vec<f64> {
        match &self.convection {
            Convection::Learned(w) => vec![0.0; w.len()],
            Convection::Central => Vec::new(),
        }
    }
    fn vjp(&mut self, _t: f64, y: &Vec<f64>, a: &Vec<f64>, adj_y: &mut Vec<f64>, adj_p: &mut Vec<f64>) {
        let n = self.axis.n;
        let (ka, kb) = self.kernels();
        let lap = self.axis.second_difference();
        let lap5 = [0.0, lap[0] * self.viscosity, lap[1] * self.viscosity, lap[2] * self.viscosity, 0.0];
        let ka_full: Vec<f64> = ka.iter().zip(&lap5).map(|(a, l)| a + l).collect();
        let learned = matches!(self.convection, Convection::Learned(_));
        let r = FLUX_RADIUS as isize;
        for ((u, g), out) in y.chunks(n).zip(a.chunks(n)).zip(adj_y.chunks_mut(n)) {
            out.fill(0.0);
            self.axis.conv_transpose(&ka_full, g, out, 1, &[0]);
            // d/du of b * (u^2): 2 u (B^T g).
            self.sq.fill(0.0);
            self.axis.conv_transpose(&kb, g, &mut self.sq, 1, &[0]);
            for ((o, s), v) in out.iter_mut().zip(&self.sq).zip(u) {
                *o += 2.0 * v * s;
            }
            if learned {
                // d/da_k = sum_i g_i u_{i+k}, d/db_k = sum_i g_i u_{i+k}^2 (periodic indices).
                for k in 0..5 {
                    let (mut sa, mut sb) = (0.0, 0.0);
                    for i in 0..n {
                        let j = (i as isize + k as isize - r).rem_euclid(n as isize) as usize;
                        sa += g[i] * u[j];
                        sb += g[i] * u[j] * u[j];
                    }
                    adj_p[k] += sa;
                    adj_p[5 + k] += sb;
                }
            }
        }
    }
}

/// The Cole-Hopf solution of viscous Burgers on `[0, 2 pi)` (periodic) with
/// `phi(x, t) = c0 + sum_m c_m e^{-nu m^2 t} cos(m x + s_m)` (`modes[m-1] = (c_m, s_m)`,
/// `c0 > sum |c_m|` keeps `phi > 0`): `u = -2 nu phi_x / phi`.
pub fn cole_hopf(x: f64, t: f64, nu: f64, c0: f64, modes: &[(f64, f64)]) -> f64 {
    let (mut phi, mut phi_x) = (c0, 0.0);
    for (m, &(c, s)) in modes.iter().enumerate() {
        let k = (m + 1) as f64;
        let e = c * (-nu * k * k * t).exp();
        phi += e * (k * x + s).cos();
        phi_x -= e * k * (k * x + s).sin();
    }
    -2.0 * nu * phi_x / phi
}
