//! burn's optimisers on a flat parameter vector whose gradient is computed outside burn (the
//! fused MLP's exact discrete adjoint): the vector becomes one `Tensor<1>` on the CPU device,
//! burn's per-tensor [`Optimizer`] updates it, and its state is kept between steps.
//!
//! Both are set to PyTorch's defaults so that training curves compare with torchdiffeq's and
//! Dupont et al.'s scripts: RMSprop (Tieleman & Hinton 2012, lecture 6.5) with `alpha = 0.99`,
//! `eps = 1e-8` outside the square root, no momentum; Adam (Kingma & Ba 2015) with
//! `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`. The update runs in float64 whatever the
//! parameters' element type.

use burn::optim::{Adam, AdamConfig, AdamState, AdaptiveMomentumState, Optimizer, RmsProp, RmsPropConfig, RmsPropState};
use burn::optim::{CenteredState, SquareAvgState};
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

/// The optimiser's state as plain numbers (what a checkpoint stores to resume bit for bit):
/// RMSprop's running mean of squared gradients and its (unused, uncentred) mean; Adam's step
/// count and two moments.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlatState {
    /// `"rmsprop"` or `"adam"`.
    pub rule: String,
    /// Steps taken (Adam's bias correction).
    pub time: usize,
    /// The state vectors, each of the parameters' length.
    pub vectors: Vec<Vec<f64>>,
}

fn to_vec(t: &Tensor<1>) -> Vec<f64> {
    t.clone().into_data().try_into_vec_as::<f64>().unwrap_or_default()
}

impl FlatOptimizer {
    /// The state after the steps taken so far (`None` before the first step).
    pub fn state(&self) -> Option<FlatState> {
        match &self.rule {
            Rule::RmsProp(_, Some(s)) => Some(FlatState {
                rule: "rmsprop".into(),
                time: 0,
                vectors: vec![to_vec(&s.square_avg.square_avg), to_vec(&s.centered.avg)],
            }),
            Rule::Adam(_, Some(s)) => Some(FlatState {
                rule: "adam".into(),
                time: s.momentum.time,
                vectors: vec![to_vec(&s.momentum.moment_1), to_vec(&s.momentum.moment_2)],
            }),
            _ => None,
        }
    }

    /// Continue from a saved state (which must be of this optimiser and of its length).
    pub fn restore(&mut self, state: &FlatState) -> Result<(), String> {
        if state.vectors.len() != 2 || state.vectors.iter().any(|v| v.len() != self.n) {
            return Err(format!("optimiser state holds {} vectors, expected 2 of length {}", state.vectors.len(), self.n));
        }
        if state.vectors.iter().flatten().any(|x| !x.is_finite()) {
            return Err("optimiser state holds a non-finite value".into());
        }
        let t = |v: &Vec<f64>| Tensor::<1>::from_data(TensorData::new(v.clone(), [v.len()]), (&self.device, DType::F64));
        match (&mut self.rule, state.rule.as_str()) {
            (Rule::RmsProp(_, s), "rmsprop") => {
                *s = Some(RmsPropState {
                    square_avg: SquareAvgState { square_avg: t(&state.vectors[0]) },
                    centered: CenteredState { grad_avg: None, avg: t(&state.vectors[1]) },
                    momentum: None,
                })
            }
            (Rule::Adam(_, s), "adam") => {
                *s = Some(AdamState {
                    momentum: AdaptiveMomentumState {
                        time: state.time,
                        moment_1: t(&state.vectors[0]),
                        moment_2: t(&state.vectors[1]),
                        max_moment_2: None,
                    },
                })
            }
            (_, other) => return Err(format!("optimiser state is for {other:?}, not this optimiser")),
        }
        Ok(())
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

    /// Saving the state after some steps and restoring it into a fresh optimiser continues
    /// exactly as the original does.
    #[test]
    fn a_restored_state_continues_bit_for_bit() {
        for make in [FlatOptimizer::rmsprop as fn(usize, f64) -> FlatOptimizer, FlatOptimizer::adam] {
            let mut a = make(3, 0.01);
            let mut p = [0.3f32, -0.7, 1.1];
            let grad = |p: &[f32; 3]| [p[0] * 2.0, p[1] - 0.5, p[2].sin()];
            for _ in 0..5 {
                let g = grad(&p);
                a.step(&mut p, &g);
            }
            let mut b = make(3, 0.01);
            b.restore(&a.state().unwrap()).unwrap();
            let mut q = p;
            for _ in 0..5 {
                let (g, h) = (grad(&p), grad(&q));
                a.step(&mut p, &g);
                b.step(&mut q, &h);
            }
            assert_eq!(p, q);
        }
        assert!(FlatOptimizer::adam(3, 0.1).restore(&FlatState { rule: "adam".into(), time: 1, vectors: vec![vec![0.0; 2]; 2] }).is_err());
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
