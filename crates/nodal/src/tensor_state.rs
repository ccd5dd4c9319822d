//! burn tensors as solver states: the same integration loop and gradient engine run on a
//! `Tensor<D>` of any shape (a whole batch as one state), on whatever device it lives.
//!
//! `NeuralOde` itself integrates host vectors (one copy in and out per evaluation is cheaper than
//! a dozen small tensor ops per stage on the CPU); this state is for dynamics written directly as
//! tensor code and for devices where the data should stay put.

use burn::tensor::Tensor;
use nodal_solve::State;

/// A tensor of any rank as an ODE state.
#[derive(Clone, Debug)]
pub struct TensorState<const D: usize>(pub Tensor<D>);

impl<const D: usize> State for TensorState<D> {
    fn len(&self) -> usize {
        self.0.shape().num_elements()
    }
    fn zeros_like(&self) -> Self {
        Self(self.0.zeros_like())
    }
    fn assign(&mut self, other: &Self) {
        self.0 = other.0.clone();
    }
    fn set_lincomb(&mut self, base: &Self, h: f64, coeffs: &[f64], ks: &[Self]) {
        let mut acc = base.0.clone();
        for (c, k) in coeffs.iter().zip(ks) {
            if *c != 0.0 {
                acc = acc + k.0.clone() * (h * c);
            }
        }
        self.0 = acc;
    }
    fn axpy(&mut self, alpha: f64, x: &Self) {
        self.0 = self.0.clone() + x.0.clone() * alpha;
    }
    fn scale(&mut self, alpha: f64) {
        self.0 = self.0.clone() * alpha;
    }
    fn weighted_sq_sum(err: &Self, y0: &Self, y1: &Self, rtol: f64, atol: f64) -> (f64, usize) {
        let scale = y0.0.clone().abs().max_pair(y1.0.clone().abs()) * rtol + atol;
        let r = err.0.clone() / scale;
        ((r.clone() * r).sum().into_scalar::<f64>(), err.len())
    }
    fn all_finite(&self) -> bool {
        // x * 0 is 0 for finite x and NaN for NaN or infinity.
        (self.0.clone() * 0.0).sum().into_scalar::<f64>() == 0.0
    }
    fn dot(&self, other: &Self) -> f64 {
        (self.0.clone() * other.0.clone()).sum().into_scalar::<f64>()
    }
    fn write_f64(&self, out: &mut [f64]) {
        let data = self.0.clone().into_data().convert::<f64>();
        let values: &[f64] = data.as_slice().expect("f64 tensor data after convert");
        out.copy_from_slice(values);
    }
    fn read_f64(&mut self, src: &[f64]) {
        let (shape, device, dtype) = (self.0.shape(), self.0.device(), self.0.dtype());
        let data = burn::tensor::TensorData::new(src.to_vec(), shape);
        self.0 = Tensor::from_data(data, (&device, dtype));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use nodal_solve::tableau::{DOPRI5, TSIT5};
    use nodal_solve::{FnDynamics, RmsNorm, SolveOptions, solve};

    /// A rotating, decaying 2-D system on a [3, 2] batch, solved on tensors and on host vectors:
    /// the same steps and the closed form.
    #[test]
    fn tensor_states_take_the_same_steps_as_vectors() {
        let dev = Device::flex();
        let y0v = vec![1.0f32, 0.0, 0.5, 0.5, -1.0, 2.0];
        let y0 = TensorState(Tensor::<2>::from_data(burn::tensor::TensorData::new(y0v.clone(), [3, 2]), &dev));
        let a = Tensor::<2>::from_data([[-0.1f32, 1.0], [-1.0, -0.1]], &dev);
        for tab in [&DOPRI5, &TSIT5] {
            let opts = SolveOptions::new(tab).with_tol(1e-5, 1e-6);
            let mut ft = FnDynamics(|_t: f64, y: &TensorState<2>, dy: &mut TensorState<2>| dy.0 = y.0.clone().matmul(a.clone()));
            let st = solve(&mut ft, &y0, &[0.0, 1.0, 3.0], &opts, &RmsNorm).unwrap();
            let mut fv = FnDynamics(|_t: f64, y: &Vec<f32>, dy: &mut Vec<f32>| {
                for r in 0..3 {
                    let (u, v) = (y[2 * r], y[2 * r + 1]);
                    dy[2 * r] = -0.1 * u - v;
                    dy[2 * r + 1] = u - 0.1 * v;
                }
            });
            let sv = solve(&mut fv, &y0v, &[0.0, 1.0, 3.0], &opts, &RmsNorm).unwrap();
            assert_eq!(st.stats.accepted, sv.stats.accepted, "{}", tab.name);
            for (k, t) in [(1, 1.0f64), (2, 3.0)] {
                let got: Vec<f32> = st.ys[k].0.clone().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
                for (r, pair) in got.chunks(2).enumerate() {
                    // Closed form: e^{-0.1 t} R(t) y0 (row-vector convention y A).
                    let (c, s, d) = (t.cos(), t.sin(), (-0.1 * t).exp());
                    let (u0, v0) = (y0v[2 * r] as f64, y0v[2 * r + 1] as f64);
                    let (u, v) = (d * (u0 * c - v0 * s), d * (u0 * s + v0 * c));
                    assert!((pair[0] as f64 - u).abs() < 1e-4 && (pair[1] as f64 - v).abs() < 1e-4, "{pair:?} vs {u},{v}");
                    assert!((pair[0] - sv.ys[k][2 * r]).abs() < 1e-5 && (pair[1] - sv.ys[k][2 * r + 1]).abs() < 1e-5);
                }
            }
        }
        let bad = TensorState(Tensor::<1>::from_data([1.0f32, f32::NAN], &dev));
        assert!(!bad.all_finite());
    }
}
