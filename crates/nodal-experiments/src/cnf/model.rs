//! The toy flows' dynamics `f(t, z) = MLP([z, t])` (tanh, time at the input only), as a burn
//! module with JVPs ([`ToyField`], the general path any user module takes) and as the fused
//! network of [`nodal::solve::cnf_mlp`]; both read and write the same flat parameters
//! (PyTorch's layout: per layer `W (out x in)`, then `b`).

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::jvp::activation::tanh;
use nodal::jvp::time::{concat_time, with_time};
use nodal::jvp::{Dual, JvpError, JvpLayer};
use nodal::neural_ode::OdeFunc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The anchor's widths for 2-D data: 3 -> 64 -> 64 -> 64 -> 2.
pub const TOY_WIDTHS: [usize; 5] = [3, 64, 64, 64, 2];

/// `MLP([z, t])` as a burn module: linear layers with tanh between them.
#[derive(Module, Debug)]
pub struct ToyField {
    /// The layers, input first.
    pub layers: Vec<Linear>,
}

impl ToyField {
    /// Layers of the given widths holding `params` (flat, PyTorch layout) on `device`.
    pub fn from_flat(widths: &[usize], params: &[f32], device: &Device) -> Self {
        let mut o = 0;
        let layers = widths
            .windows(2)
            .map(|w| {
                let (i, out) = (w[0], w[1]);
                let wt: Vec<f32> = (0..i * out).map(|j| params[o + (j % out) * i + j / out]).collect();
                let b = params[o + i * out..o + i * out + out].to_vec();
                o += i * out + out;
                let mut l = LinearConfig::new(i, out).init(device);
                l.weight = Param::from_tensor(Tensor::from_data(TensorData::new(wt, [i, out]), (device, DType::F32)));
                l.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [out]), (device, DType::F32))));
                l
            })
            .collect();
        Self { layers }
    }

    /// The flat parameters (PyTorch layout).
    pub fn to_flat(&self) -> Vec<f32> {
        let mut out = Vec::new();
        for l in &self.layers {
            let [i, o] = l.weight.val().dims();
            let w: Vec<f32> = l.weight.val().into_data().convert::<f32>().try_into_vec().unwrap_or_default();
            out.extend((0..o * i).map(|j| w[(j % i) * o + j / i]));
            if let Some(b) = &l.bias {
                out.extend(b.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default());
            }
        }
        out
    }
}

impl OdeFunc for ToyField {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut x = with_time(t, y);
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i < last {
                x = x.tanh();
            }
        }
        x
    }
    fn has_jvp(&self) -> bool {
        true
    }
    fn forward_jvp(&self, t: f64, y: Dual<2>) -> Result<Dual<2>, JvpError> {
        let last = self.layers.len() - 1;
        let mut x = concat_time(t, y);
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward_jvp(x);
            if i < last {
                x = tanh(x);
            }
        }
        Ok(x)
    }
}

/// PyTorch's default `Linear` initialisation, seeded: weights and biases uniform in
/// `±1/√fan_in`.
pub fn init_params(widths: &[usize], seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for w in widths.windows(2) {
        let bound = 1.0 / (w[0] as f64).sqrt();
        out.extend((0..w[0] * w[1] + w[1]).map(|_| rng.gen_range(-bound..bound) as f32));
    }
    out
}
