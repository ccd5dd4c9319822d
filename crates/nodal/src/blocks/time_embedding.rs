//! Sinusoidal time features and the MLP that turns them into a conditioning vector.
//!
//! For `k < m = dim / 2`, with frequencies `ω_k = exp(-ln(10000) · k / m)` and a scale `s`
//! (1000 for times in `[0, 1]`, so that the slowest and fastest features span the usual range
//! of positions in Vaswani et al. 2017):
//!
//! ```text
//! e(t) = [sin(s t ω_0), …, sin(s t ω_{m-1}), cos(s t ω_0), …, cos(s t ω_{m-1})]
//! c(t) = W₂ silu(W₁ e(t) + b₁) + b₂
//! ```
//!
//! In a joint solve `t` is one scalar for the whole batch, so `c(t)` is computed once per call as
//! a `[1, out]` row and broadcast by the blocks; training objectives that draw a time per example
//! (flow matching) ask for one row per example with [`TimeEmbedding::forward_times`].

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// Scale of `t` inside the sinusoids (times are expected in `[0, 1]`).
pub const TIME_SCALE: f64 = 1000.0;

/// The sinusoidal features `e(t)` (see the module docs), `dim` of them (`dim` even).
pub fn sinusoidal(t: f64, dim: usize) -> Vec<f64> {
    let m = dim / 2;
    let mut e = vec![0.0; 2 * m];
    for k in 0..m {
        let w = (-(10000f64.ln()) * k as f64 / m as f64).exp();
        e[k] = (TIME_SCALE * t * w).sin();
        e[m + k] = (TIME_SCALE * t * w).cos();
    }
    e
}

/// `c(t)`: sinusoidal features through a two-layer SiLU MLP.
#[derive(Module, Debug)]
pub struct TimeEmbedding {
    /// Features to hidden.
    pub l1: Linear,
    /// Hidden to output.
    pub l2: Linear,
    /// Number of sinusoidal features.
    #[module(skip)]
    pub features: usize,
}

impl TimeEmbedding {
    /// `features` sinusoids (even), a hidden layer and an output of width `out`.
    pub fn new(features: usize, out: usize, device: &Device) -> Self {
        Self { l1: LinearConfig::new(features, out).init(device), l2: LinearConfig::new(out, out).init(device), features: features / 2 * 2 }
    }

    /// Width of `c(t)`.
    pub fn width(&self) -> usize {
        self.l2.weight.dims()[1]
    }

    /// `c(t)` as a `[1, out]` row on the parameters' device and dtype.
    pub fn forward(&self, t: f64) -> Tensor<2> {
        self.forward_times(&[t])
    }

    /// `c(t_r)` for every time, as `[ts.len(), out]` rows.
    pub fn forward_times(&self, ts: &[f64]) -> Tensor<2> {
        let w = self.l1.weight.val();
        let (device, dtype) = (w.device(), w.dtype());
        let e: Vec<f64> = ts.iter().flat_map(|&t| sinusoidal(t, self.features)).collect();
        let e = Tensor::<2>::from_data(TensorData::new(e, [ts.len(), self.features]), (&device, DType::F64));
        self.l2.forward(silu(self.l1.forward(e.cast(dtype))))
    }
}
