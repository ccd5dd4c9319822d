//! The host side of a DEQ layer: the forward map on burn's plain device, the backward map
//! `g -> J^T g + v` by reverse passes of burn's autodiff with respect to `z` only, and the
//! final product that gives the parameter and input gradients.

use super::{DeqError, DeqFunc, DeqGradient, DeqSettings, layer_error, solve_with_policy};
use crate::neural_ode::module_dynamics::{Element, FlatGrads, host};
use crate::neural_ode::node::HostBackward;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use nodal_solve::fixed_point::{FixedPointStats, RowMap};

/// Rows `rows` of `t` (all of it when every row is asked for).
fn rows_of(t: &Tensor<2>, rows: &[usize], batch: usize) -> Tensor<2> {
    if rows.len() == batch {
        return t.clone();
    }
    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), &t.device());
    t.clone().select(0, idx)
}

/// `z -> f(z, x)` on the plain device.
pub(super) struct ForwardMap<'a, M> {
    pub func: &'a M,
    pub x: &'a Tensor<2>,
    pub dim: usize,
    pub batch: usize,
}

impl<M: DeqFunc, T: Element> RowMap<T> for ForwardMap<'_, M> {
    fn apply(&mut self, rows: &[usize], z: &[T], out: &mut [T]) {
        let zt = Tensor::<2>::from_data(TensorData::new(z.to_vec(), [rows.len(), self.dim]), (&self.x.device(), T::BURN));
        let fz = self.func.forward(zt, rows_of(self.x, rows, self.batch));
        out.copy_from_slice(&host::<T, 2>(fz));
    }
}

/// `g -> J^T g + v` with `J = df/dz` at `z*`: one reverse pass per call, parameters untracked.
struct AdjointMap<'a, M, T> {
    func: &'a M,
    zstar: &'a [T],
    x: &'a Tensor<2>,
    v: &'a [T],
    dim: usize,
    batch: usize,
}

impl<M: DeqFunc, T: Element> RowMap<T> for AdjointMap<'_, M, T> {
    fn apply(&mut self, rows: &[usize], g: &[T], out: &mut [T]) {
        let d = self.dim;
        let ad = self.x.device().autodiff();
        let mut zr = Vec::with_capacity(rows.len() * d);
        for &r in rows {
            zr.extend_from_slice(&self.zstar[r * d..(r + 1) * d]);
        }
        let zt = Tensor::<2>::from_data(TensorData::new(zr, [rows.len(), d]), (&ad, T::BURN)).require_grad();
        let xt = Tensor::from_inner(rows_of(self.x, rows, self.batch));
        let gt = Tensor::from_inner(Tensor::<2>::from_data(TensorData::new(g.to_vec(), [rows.len(), d]), (&self.x.device(), T::BURN)));
        let grads = (self.func.forward(zt.clone(), xt) * gt).sum().backward();
        match zt.grad(&grads) {
            Some(jtg) => out.copy_from_slice(&host::<T, 2>(jtg)),
            None => out.iter_mut().for_each(|o| *o = T::ZERO),
        }
        for (j, &r) in rows.iter().enumerate() {
            for (o, &v) in out[j * d..(j + 1) * d].iter_mut().zip(&self.v[r * d..(r + 1) * d]) {
                *o += v;
            }
        }
    }
}

/// What the layer's node keeps for its backward pass: the equilibrium and the injection, no
/// forward iterate.
pub(super) struct DeqHost<M, T> {
    pub plain: M,
    pub x: Tensor<2>,
    pub zstar: Vec<T>,
    pub dz: usize,
    pub settings: DeqSettings,
    pub n_theta: usize,
    pub report: super::DeqBackwardReport,
}

impl<M: DeqFunc, T: Element> DeqHost<M, T> {
    /// `(dL/dx, dL/dtheta)` from `v = dL/dz*`.
    fn gradients(&self, v: Vec<T>) -> Result<(Vec<T>, Vec<T>, FixedPointStats), DeqError> {
        let [b, dx] = self.x.dims();
        let d = self.dz;
        let (g, stats) = match self.settings.gradient {
            DeqGradient::OneStep => (v, FixedPointStats::default()),
            DeqGradient::Implicit => {
                let frozen = self.plain.clone().train().no_grad();
                let mut map = AdjointMap { func: &frozen, zstar: &self.zstar, x: &self.x, v: &v, dim: d, batch: b };
                let sol = solve_with_policy(&mut map, &v, d, &self.settings.backward, self.settings.accept_unconverged)
                    .map_err(|e| layer_error("backward", e, [b, d], &self.x.device()))?;
                (sol.z, sol.stats)
            }
        };
        // g^T df/dx and g^T df/dtheta in one reverse pass at z*.
        let tracked = self.plain.clone().train();
        let zt = Tensor::from_inner(Tensor::<2>::from_data(TensorData::new(self.zstar.clone(), [b, d]), (&self.x.device(), T::BURN)));
        let xt = Tensor::from_inner(self.x.clone()).require_grad();
        let gt = Tensor::from_inner(Tensor::<2>::from_data(TensorData::new(g, [b, d]), (&self.x.device(), T::BURN)));
        let grads = (tracked.forward(zt, xt.clone()) * gt).sum().backward();
        let gx = match xt.grad(&grads) {
            Some(t) => host::<T, 2>(t),
            None => vec![T::ZERO; b * dx],
        };
        let gp = GradientsParams::from_grads(grads, &tracked);
        let mut gtheta = vec![T::ZERO; self.n_theta];
        tracked.visit(&mut FlatGrads { grads: &gp, out: &mut gtheta, offset: 0 });
        Ok((gx, gtheta, stats))
    }
}

impl<M: DeqFunc, T: Element> HostBackward for DeqHost<M, T> {
    fn outputs(&self) -> TensorData {
        TensorData::new(self.zstar.clone(), [self.zstar.len()])
    }

    fn backward(&mut self, gz: TensorData) -> (TensorData, TensorData) {
        let [b, dx] = self.x.dims();
        let v: Vec<T> = gz.convert::<T>().try_into_vec::<T>().expect("converted to the state's element type");
        let res = self.gradients(v);
        let (gx, gp, outcome) = match res {
            Ok((gx, gp, stats)) => (gx, gp, Ok(stats)),
            Err(e) => (vec![T::from_f64(f64::NAN); b * dx], vec![T::from_f64(f64::NAN); self.n_theta], Err(e)),
        };
        *self.report.lock().expect("report lock") = Some(outcome);
        (TensorData::new(gx, [b, dx]), TensorData::new(gp, [self.n_theta]))
    }
}
