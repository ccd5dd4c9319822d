//! Time conditioning. The tangents are directions in the state, so time is a constant for them:
//! its columns in a tangent are zero.
//!
//! - [`concat_time`]: `[x, t]`, time appended as one more feature (or channel), the usual
//!   `MLP([z, t])` of neural ODEs and torchdiffeq's examples.
//! - [`ConcatSquashLinear`]: FFJORD's layer (Grathwohl et al. 2019),
//!   `y = (W x + b) * σ(W_g t + b_g) + W_b t`, so `J v = (W v) * σ(W_g t + b_g)`.

use super::Dual;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

/// `x` with time appended along axis 1 (a feature for `[n, d]`, a constant channel for
/// `[n, c, h, w]`), and zeros appended to the tangents.
pub fn concat_time<const D: usize>(t: f64, x: Dual<D>) -> Dual<D> {
    let column = |like: &Tensor<D>, value: f64| {
        let mut shape = like.dims();
        shape[1] = 1;
        Tensor::<D>::full(shape, value, (&like.device(), like.dtype()))
    };
    let (tp, tt) = (column(&x.primal, t), column(&x.tangent, 0.0));
    Dual { primal: Tensor::cat(vec![x.primal, tp], 1), tangent: Tensor::cat(vec![x.tangent, tt], 1) }
}

/// The plain forward of [`concat_time`]: `[x, t]` along axis 1.
pub fn with_time<const D: usize>(t: f64, x: Tensor<D>) -> Tensor<D> {
    let mut shape = x.dims();
    shape[1] = 1;
    let col = Tensor::<D>::full(shape, t, (&x.device(), x.dtype()));
    Tensor::cat(vec![x, col], 1)
}

/// FFJORD's ConcatSquash linear layer. See the module docs.
#[derive(Module, Debug)]
pub struct ConcatSquashLinear {
    /// `W x + b`.
    pub layer: Linear,
    /// `W_g t + b_g`, the gate.
    pub gate: Linear,
    /// `W_b t`, the time bias (no bias of its own).
    pub time_bias: Linear,
}

impl ConcatSquashLinear {
    /// A layer `d_in -> d_out` with burn's default initialisation.
    pub fn new(d_in: usize, d_out: usize, device: &Device) -> Self {
        Self {
            layer: LinearConfig::new(d_in, d_out).init(device),
            gate: LinearConfig::new(1, d_out).init(device),
            time_bias: LinearConfig::new(1, d_out).with_bias(false).init(device),
        }
    }

    /// `(gate, time bias)`, each `[1, d_out]`, at time `t`.
    fn modulation(&self, t: f64, like: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let tt = Tensor::<2>::full([1, 1], t, (&like.device(), like.dtype()));
        (sigmoid(self.gate.forward(tt.clone())), self.time_bias.forward(tt))
    }

    /// `y = (W x + b) * σ(W_g t + b_g) + W_b t` for `x: [n, d_in]`.
    pub fn forward(&self, t: f64, x: Tensor<2>) -> Tensor<2> {
        let (g, b) = self.modulation(t, &x);
        self.layer.forward(x) * g + b
    }

    /// The output and `J V = (W V) * σ(W_g t + b_g)`.
    pub fn forward_jvp(&self, t: f64, x: Dual<2>) -> Dual<2> {
        let (g, b) = self.modulation(t, &x.primal);
        let tangent = burn::tensor::module::linear(x.tangent, self.layer.weight.val(), None) * g.clone();
        Dual { primal: self.layer.forward(x.primal) * g + b, tangent }
    }
}
