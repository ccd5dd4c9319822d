//! burn's optimisers on a flat parameter vector whose gradient is computed outside burn (the
//! fused MLP's exact discrete adjoint): the vector becomes one `Tensor<1>` on the CPU device,
//! burn's per-tensor [`Optimizer`] updates it, and its state is kept between steps.
//!
//! Both are set to PyTorch's defaults so that training curves compare with torchdiffeq's and
//! Dupont et al.'s scripts: RMSprop (Tieleman & Hinton 2012, lecture 6.5) with `alpha = 0.99`,
//! `eps = 1e-8` outside the square root, no momentum; Adam (Kingma & Ba 2015) with
//! `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`. The update runs in float64 whatever the
//! parameters' element type.

use burn::optim::{Adam, AdamConfig, AdamState, Optimizer, RmsProp, RmsPropConfig, RmsPropState};
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal_solve::Scalar;

/// The optimiser and its state.
enum Rule {
    RmsProp(RmsProp, Option<RmsPropState<1>>),
    Adam(Adam, Option<AdamState<1>>),
}

/// One burn optimiser over one flat parameter vector.
pub struct FlatOptimizer {
    /// Learning rate.
    pub lr: f64,
    rule: Rule,
    device: Device,
    n: usize,
    buf: Vec<f64>,
}

impl FlatOptimizer {
    /// RMSprop with PyTorch's defaults for `n` parameters.
    pub fn rmsprop(n: usize, lr: f64) -> Self {
        let rule = RmsPropConfig::new().with_alpha(0.99).with_momentum(0.0).with_epsilon(1e-8).with_centered(false).build();
        Self::with_rule(Rule::RmsProp(rule, None), n, lr)
    }

    /// Adam with PyTorch's defaults for `n` parameters.
    pub fn adam(n: usize, lr: f64) -> Self {
        let rule = AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).build();
        Self::with_rule(Rule::Adam(rule, None), n, lr)
    }

    fn with_rule(rule: Rule, n: usize, lr: f64) -> Self {
        Self { lr, rule, device: Device::flex(), n, buf: Vec::with_capacity(n) }
    }

    fn tensor<T: Scalar>(&mut self, v: &[T]) -> Tensor<1> {
        self.buf.clear();
        self.buf.extend(v.iter().map(|x| x.to_f64()));
        Tensor::<1>::from_data(TensorData::new(self.buf.clone(), [v.len()]), (&self.device, DType::F64))
    }

    /// One update of `params` with gradient `grad` (both of the length given at construction;
    /// other lengths leave the parameters unchanged).
    pub fn step<T: Scalar>(&mut self, params: &mut [T], grad: &[T]) {
        if params.len() != self.n || grad.len() != self.n {
            return;
        }
        let (p, g) = (self.tensor(params), self.tensor(grad));
        let updated = match &mut self.rule {
            Rule::RmsProp(rule, state) => {
                let (p, s) = rule.step(self.lr, p, g, state.take());
                *state = s;
                p
            }
            Rule::Adam(rule, state) => {
                let (p, s) = rule.step(self.lr, p, g, state.take());
                *state = s;
                p
            }
        };
        let out = updated.into_data().try_into_vec_as::<f64>();
        if let Ok(out) = out {
            for (p, v) in params.iter_mut().zip(out) {
                *p = T::from_f64(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adam's first step moves every parameter by `lr` against the sign of its gradient (the
    /// bias corrections make `m / sqrt(v) = g / |g|`), and repeated steps minimise a quadratic.
    #[test]
    fn adam_first_step_is_lr_times_sign_and_it_minimises_a_quadratic() {
        let mut opt = FlatOptimizer::adam(2, 0.1);
        let mut p = [1.0f64, -2.0];
        opt.step(&mut p, &[3.0, -0.5]);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6, "{p:?}");
        for _ in 0..2000 {
            let g = [2.0 * (p[0] - 0.5), 2.0 * (p[1] + 0.25)];
            opt.step(&mut p, &g);
        }
        assert!((p[0] - 0.5).abs() < 1e-3 && (p[1] + 0.25).abs() < 1e-3, "{p:?}");
    }

    /// RMSprop's update against the formula written out: `v = (1 - alpha) g^2` on the first step,
    /// `p -= lr g / (sqrt(v) + eps)`.
    #[test]
    fn rmsprop_matches_its_formula() {
        let mut opt = FlatOptimizer::rmsprop(2, 0.01);
        let mut p = [0.5f32, -1.0];
        let g = [0.2f32, -4.0];
        opt.step(&mut p, &g);
        for k in 0..2 {
            let v = 0.01 * (g[k] as f64).powi(2);
            let want = [0.5, -1.0][k] - 0.01 * g[k] as f64 / (v.sqrt() + 1e-8);
            assert!((p[k] as f64 - want).abs() < 1e-6, "{k}: {} vs {want}", p[k]);
        }
    }
}
