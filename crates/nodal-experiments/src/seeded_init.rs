//! Reproducible initialisation of any burn module: every weight and bias redrawn uniformly in
//! `±1/sqrt(fan_in)` (PyTorch's default for linear and convolution layers, and for its GRU when
//! the fan-in is the hidden width) from a seeded generator, in burn's visiting order. burn's own
//! initialisers draw from a process-wide generator, so two runs with one seed would differ.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seeded redraw (a [`ModuleMapper`]); parameters not named `weight` or `bias` (norm scales,
/// free tensors) are left alone.
pub struct SeededUniform {
    rng: StdRng,
    path: Vec<String>,
    fan_in: usize,
}

impl SeededUniform {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), path: Vec::new(), fan_in: 1 }
    }
    /// `module` with its weights and biases redrawn.
    pub fn apply<M: Module>(&mut self, module: M) -> M {
        module.map(self)
    }
    /// The generator, to draw further parameters from the same stream.
    pub fn into_rng(self) -> StdRng {
        self.rng
    }
    /// The generator, borrowed.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

impl ModuleMapper for SeededUniform {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let shape = p.lazy_shape();
        let dims = shape.as_slice().to_vec();
        match self.path.last().map(String::as_str) {
            // Conv weights are [out, in, kh, kw]; linear weights [in, out] (burn's layout).
            Some("weight") => self.fan_in = if D == 4 { dims[1] * dims[2] * dims[3] } else { dims[0] },
            Some("bias") => {}
            _ => return p,
        }
        let bound = 1.0 / (self.fan_in.max(1) as f64).sqrt();
        let vals: Vec<f32> = (0..shape.num_elements()).map(|_| self.rng.gen_range(-bound..bound) as f32).collect();
        p.map(move |t| {
            let (dev, dt, rg) = (t.device(), t.dtype(), t.is_require_grad());
            let nt = Tensor::<D>::from_data(TensorData::new(vals, shape), (&dev, dt));
            if rg { nt.require_grad() } else { nt }
        })
    }
}
