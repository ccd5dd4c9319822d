//! The spiral's training step on any burn device (`nodal train spiral --device wgpu`).
//!
//! The CPU path ([`crate::spiral::SpiralTrainer::step`]) runs the fused host MLP. This step
//! computes the same loss and gradient with burn modules on a device: the flat parameters
//! become `Linear(2, h) -> tanh -> Linear(h, 2)` applied to `y^3` on the device, the batch of
//! windows is one [`NeuralOde`] solve (dopri5 at the run's tolerances, the run's gradient
//! method), the L1 loss is differentiated by burn's autodiff, and the gradient comes back to the
//! same flat RMSprop as the CPU path. Checkpoints, resumption, prediction and figures are
//! shared with the CPU path (they work on the flat parameters). Penalties are CPU-only.

use crate::spiral::{BatchGradient, IterRecord, SpiralTrainer};
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::neural_ode::{NeuralOde, OdeFunc, OdeSettings};
use nodal::solve::SolveError;
use nodal::solve::grad::GradMethod;

/// `f(t, y) = W2 tanh(W1 y^3 + b1) + b2`, the spiral model as burn modules.
#[derive(Module, Debug)]
pub struct CubedField {
    l1: Linear,
    l2: Linear,
}

impl OdeFunc for CubedField {
    fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
        self.l2.forward(self.l1.forward(y.clone() * y.clone() * y).tanh())
    }
}

fn linear(w: &[f32], b: &[f32], out: usize, inp: usize, device: &Device) -> Linear {
    // The flat layout is PyTorch's `[out, in]`; burn's weight is `[in, out]`.
    let w = Tensor::<2>::from_data(TensorData::new(w.to_vec(), [out, inp]), (device, DType::F32)).transpose();
    let b = Tensor::<1>::from_data(TensorData::new(b.to_vec(), [out]), (device, DType::F32));
    Linear { weight: Param::from_tensor(w), bias: Some(Param::from_tensor(b)) }
}

impl CubedField {
    /// The field with the flat parameters `[W1, b1, W2, b2]` (PyTorch layout) on `device`.
    pub fn from_flat(params: &[f32], hidden: usize, device: &Device) -> Self {
        let h = hidden;
        Self {
            l1: linear(&params[..2 * h], &params[2 * h..3 * h], h, 2, device),
            l2: linear(&params[3 * h..5 * h], &params[5 * h..], 2, h, device),
        }
    }
}

fn host(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()
}

impl SpiralTrainer {
    /// One training iteration with the model on `device` (an autodiff device). The batch
    /// sampler, optimiser and iteration count are the trainer's, so a run can switch between
    /// this and [`SpiralTrainer::step`] at a checkpoint.
    pub fn step_on(&mut self, device: &Device) -> Result<IterRecord, SolveError> {
        let start = std::time::Instant::now();
        let starts = self.sample_starts();
        let b = self.batch_gradient_on(device, &starts)?;
        Ok(self.apply(b, start))
    }

    /// [`SpiralTrainer::batch_gradient`] computed with burn modules on `device` (an autodiff
    /// device): the same loss and gradient up to `f32` round-off and the solver's tolerance.
    pub fn batch_gradient_on(&self, device: &Device, starts: &[usize]) -> Result<BatchGradient, SolveError> {
        if !self.cfg.penalties.is_empty() {
            return Err(SolveError::Shape("penalties are trained on the CPU path only (drop --device or the penalty flags)".into()));
        }
        let (bs, bt, h) = (starts.len(), self.cfg.batch_time, self.cfg.hidden);
        let y0: Vec<f32> = starts.iter().flat_map(|&s| self.ys[s].map(|v| v as f32)).collect();
        let truth: Vec<f32> = (0..bt).flat_map(|k| starts.iter().flat_map(move |&s| self.ys[s + k].map(|v| v as f32))).collect();
        let field = CubedField::from_flat(&self.model.mlp.params, h, device);
        let settings = OdeSettings::new(self.options()).with_grad(self.cfg.grad);
        let ode = NeuralOde::new(field.clone(), settings.clone(), settings);
        let y0 = Tensor::<2>::from_data(TensorData::new(y0, [bs, 2]), (device, DType::F32));
        let out = ode.forward(y0, &self.ts[..bt])?;
        let truth = Tensor::<3>::from_data(TensorData::new(truth, [bt, bs, 2]), (device, DType::F32));
        let loss = (out.ys - truth).abs().mean();
        let loss_value = loss.clone().into_scalar::<f32>() as f64;
        let grads = loss.backward();
        let backward = match out.backward.lock().ok().and_then(|g| g.clone()) {
            Some(Err(e)) => return Err(e),
            Some(Ok(stats)) => stats,
            None => Default::default(),
        };
        let missing = || SolveError::Shape("the device step produced no gradient for a parameter".into());
        let gw1 = host(field.l1.weight.grad(&grads).ok_or_else(missing)?.transpose());
        let gb1 = field.l1.bias.as_ref().and_then(|b| b.grad(&grads)).ok_or_else(missing)?;
        let gw2 = host(field.l2.weight.grad(&grads).ok_or_else(missing)?.transpose());
        let gb2 = field.l2.bias.as_ref().and_then(|b| b.grad(&grads)).ok_or_else(missing)?;
        let mut grad = gw1;
        grad.extend(host(gb1.unsqueeze::<2>()));
        grad.extend(gw2);
        grad.extend(host(gb2.unsqueeze::<2>()));
        if grad.len() != self.model.mlp.params.len() || grad.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::Shape(format!("the device gradient has {} entries or is not finite", grad.len())));
        }
        let nfe_backward = match self.cfg.grad {
            GradMethod::Adjoint => backward.nfe,
            _ => backward.nfe + backward.nvjp,
        };
        Ok(BatchGradient { loss: loss_value, grad, nfe_forward: out.stats.nfe, nfe_backward, penalties: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spiral::SpiralConfig;

    /// On the flex backend, the module step gives the fused step's loss and gradient: the
    /// same model and windows, dopri5 at the training tolerances (rtol 1e-7, so the two
    /// solutions differ by f32 round-off accumulated over a few dozen steps), for backprop and
    /// the adjoint. 1e-3 of the largest gradient entry bounds that with margin.
    #[test]
    fn the_module_step_on_flex_gives_the_fused_steps_gradient() {
        let device = Device::flex().autodiff();
        for grad in [nodal::solve::grad::GradMethod::Backprop, nodal::solve::grad::GradMethod::Adjoint] {
            let mut tr = SpiralTrainer::new(SpiralConfig { grad, ..SpiralConfig::default() }).unwrap();
            let starts = tr.sample_starts();
            let on_device = tr.batch_gradient_on(&device, &starts).unwrap();
            let fused = tr.batch_gradient(&starts).unwrap();
            assert!(
                (on_device.loss - fused.loss).abs() <= 1e-5 * fused.loss.abs().max(1e-3),
                "{grad:?} loss {} vs {}",
                on_device.loss,
                fused.loss
            );
            let scale = fused.grad.iter().fold(0.0f32, |m, g| m.max(g.abs()));
            let worst = on_device.grad.iter().zip(&fused.grad).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(scale > 0.0 && worst <= 1e-3 * scale, "{grad:?}: gradients differ by {worst} (largest entry {scale})");
            assert!(on_device.nfe_forward > 0 && on_device.nfe_backward > 0);
        }
    }

    /// Penalties are refused on the module path (they are integrated by the fused MLP only).
    #[test]
    fn penalties_are_refused_on_a_device() {
        let cfg = SpiralConfig { penalties: vec![(nodal::solve::regularise::Penalty::Kinetic, 0.1)], ..SpiralConfig::default() };
        let mut tr = SpiralTrainer::new(cfg).unwrap();
        let starts = tr.sample_starts();
        let e = tr.batch_gradient_on(&Device::flex().autodiff(), &starts).unwrap_err().to_string();
        assert!(e.contains("CPU path"), "{e}");
    }
}
