//! An exponential moving average of a module's parameters, the weights generative models are
//! sampled with (Polyak averaging; Song et al. 2021, Lipman et al. 2023 sample from it):
//!
//! ```text
//! θ̄ ← β_k θ̄ + (1 − β_k) θ,   β_k = min(β, (1 + k) / (10 + k))
//! ```
//!
//! after the `k`-th update (the warm-up keeps the average from remembering the random
//! initialisation for ~1/(1 − β) steps). The average lives on the host as one f32 vector in the
//! module's visiting order; [`Ema::to_module`] writes it into a copy of the module.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};

/// The running average (see the module docs).
#[derive(Debug, Clone)]
pub struct Ema {
    /// Target decay `β`.
    pub decay: f64,
    /// Updates so far (`k`).
    pub updates: usize,
    /// The averaged parameters in visiting order.
    pub values: Vec<f32>,
}

impl Ema {
    /// Start from `module`'s current parameters.
    pub fn new<M: Module>(module: &M, decay: f64) -> Self {
        Self { decay, updates: 0, values: nodal::module_weights::flat_params(module) }
    }

    /// Fold in `module`'s current parameters (the same architecture as at [`Ema::new`]).
    pub fn update<M: Module>(&mut self, module: &M) {
        let k = self.updates as f64;
        let beta = self.decay.min((1.0 + k) / (10.0 + k)) as f32;
        let current = nodal::module_weights::flat_params(module);
        debug_assert_eq!(current.len(), self.values.len());
        for (avg, x) in self.values.iter_mut().zip(current) {
            *avg = beta * *avg + (1.0 - beta) * x;
        }
        self.updates += 1;
    }

    /// `template` with its parameters replaced by the average (device, precision and gradient
    /// tracking of each parameter kept).
    pub fn to_module<M: Module>(&self, template: M) -> M {
        template.map(&mut LoadFlat { values: &self.values, at: 0 })
    }
}

/// Writes consecutive slices of a flat vector into the parameters, in visiting order.
struct LoadFlat<'a> {
    values: &'a [f32],
    at: usize,
}

impl ModuleMapper for LoadFlat<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let shape = p.lazy_shape();
        let n = shape.num_elements();
        let vals = self.values[self.at..self.at + n].to_vec();
        self.at += n;
        p.map(move |t| {
            let (dev, dt, rg) = (t.device(), t.dtype(), t.is_require_grad());
            let nt = Tensor::<D>::from_data(TensorData::new(vals, shape), (&dev, burn::tensor::DType::F32)).cast(dt);
            if rg { nt.require_grad() } else { nt }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    #[test]
    fn the_average_follows_the_formula_and_loads_back() {
        let dev = Device::flex();
        let a: Linear = LinearConfig::new(3, 2).init(&dev);
        let b: Linear = LinearConfig::new(3, 2).init(&dev);
        let (pa, pb) = (nodal::module_weights::flat_params(&a), nodal::module_weights::flat_params(&b));
        let mut ema = Ema::new(&a, 0.999);
        // First update: β_0 = min(0.999, 1/10) = 0.1.
        ema.update(&b);
        for ((avg, x), y) in ema.values.iter().zip(&pa).zip(&pb) {
            assert!((avg - (0.1 * x + 0.9 * y)).abs() < 1e-6);
        }
        let loaded = ema.to_module(a.clone());
        assert_eq!(nodal::module_weights::flat_params(&loaded), ema.values);
        // The template itself is untouched.
        assert_eq!(nodal::module_weights::flat_params(&a), pa);
    }
}
