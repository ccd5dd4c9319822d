//! The latent SDE's encoder: a GRU (Cho et al. 2014, with PyTorch's gate convention) run from the
//! last observation to the first, and a linear map of its state to a context per time.
//!
//! ```text
//! r = σ(x W_ir + b_ir + h W_hr + b_hr)      z = σ(x W_iz + b_iz + h W_hz + b_hz)
//! n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn))      h' = (1 - z) ⊙ n + z ⊙ h
//! ```
//!
//! It returns one `[rows, context]` tensor per time instead of one `[rows, T, context]` tensor:
//! the posterior drift reads the context of one time per step, and slicing a stacked tensor
//! would cost a full-size zero-and-copy per slice in the backward pass (the previous version,
//! burn's `Gru` plus slices, spent a third of each training iteration there). `tanh` is
//! [`nodal::activation::tanh`].

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

/// One gate's input and hidden maps.
#[derive(Module, Debug)]
pub struct Gate {
    /// `x W_i + b_i`.
    pub input: Linear,
    /// `h W_h + b_h`.
    pub hidden: Linear,
}

impl Gate {
    fn new(d_in: usize, hidden: usize, device: &Device) -> Self {
        Self { input: LinearConfig::new(d_in, hidden).init(device), hidden: LinearConfig::new(hidden, hidden).init(device) }
    }
}

/// The GRU and the context map.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Reset gate.
    pub reset: Gate,
    /// Update gate.
    pub update: Gate,
    /// Candidate state.
    pub new: Gate,
    /// GRU state to context.
    pub context: Linear,
}

impl Encoder {
    /// A GRU of `hidden` units over `d_in` inputs and a map to `context` (burn's default
    /// initialisation; the model redraws it from its seed).
    pub fn new(d_in: usize, hidden: usize, context: usize, device: &Device) -> Self {
        Self {
            reset: Gate::new(d_in, hidden, device),
            update: Gate::new(d_in, hidden, device),
            new: Gate::new(d_in, hidden, device),
            context: LinearConfig::new(hidden, context).init(device),
        }
    }

    /// Contexts `c_0, ..., c_{T-1}` (`[rows, context]` each) of the series `xs[t]`
    /// (`[rows, d_in]` each, in time order): `c_t` depends on `xs[t..]`.
    pub fn forward(&self, xs: &[Tensor<2>]) -> Vec<Tensor<2>> {
        let mut out: Vec<Option<Tensor<2>>> = vec![None; xs.len()];
        let mut h: Option<Tensor<2>> = None;
        for t in (0..xs.len()).rev() {
            let x = xs[t].clone();
            let (ir, iz, inn) = (self.reset.input.forward(x.clone()), self.update.input.forward(x.clone()), self.new.input.forward(x));
            let next = match h {
                // h = 0: every hidden map is its bias.
                None => {
                    let b = |g: &Gate| g.hidden.bias.as_ref().map(|b| b.val().unsqueeze::<2>());
                    let add = |a: Tensor<2>, g: &Gate| match b(g) {
                        Some(b) => a + b,
                        None => a,
                    };
                    let (r, z) = (sigmoid(add(ir, &self.reset)), sigmoid(add(iz, &self.update)));
                    let hn = match b(&self.new) {
                        Some(b) => r * b,
                        None => r.zeros_like(),
                    };
                    let n = nodal::activation::tanh(inn + hn);
                    n.clone() - z * n
                }
                Some(h) => {
                    let r = sigmoid(ir + self.reset.hidden.forward(h.clone()));
                    let z = sigmoid(iz + self.update.hidden.forward(h.clone()));
                    let n = nodal::activation::tanh(inn + r * self.new.hidden.forward(h.clone()));
                    n.clone() + z * (h - n)
                }
            };
            out[t] = Some(self.context.forward(next.clone()));
            h = Some(next);
        }
        out.into_iter().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::gru::GruConfig;
    use burn::tensor::{DType, Distribution};

    /// The encoder equals burn's `Gru` (PyTorch's convention, reset after the hidden map) run
    /// over the reversed series with the same weights, followed by the same context map.
    #[test]
    fn encoder_matches_burns_gru_on_the_reversed_series() {
        let dev = Device::flex();
        let (rows, steps, d_in, hidden, context) = (3, 7, 3, 5, 4);
        let enc = crate::seeded_init::SeededUniform::new(4).apply(Encoder::new(d_in, hidden, context, &dev));
        let mut gru = GruConfig::new(d_in, hidden, true).init(&dev);
        let copy = |g: &Gate| burn::nn::GateController { input_transform: g.input.clone(), hidden_transform: g.hidden.clone() };
        gru.reset_gate = copy(&enc.reset);
        gru.update_gate = copy(&enc.update);
        gru.new_gate = copy(&enc.new);
        let xs = Tensor::<3>::random([rows, steps, d_in], Distribution::Normal(0.0, 1.0), (&dev, DType::F32));
        let per_time: Vec<Tensor<2>> = (0..steps).map(|t| xs.clone().slice([0..rows, t..t + 1, 0..d_in]).squeeze_dim(1)).collect();
        let ours = enc.forward(&per_time);
        // burn's GRU reads the flipped series; its state after reading x_{T-1}, ..., x_t sits at
        // position T-1-t.
        let states = gru.forward(xs.flip([1]), None);
        for (t, c) in ours.iter().enumerate() {
            let s: Tensor<2> = states.clone().slice([0..rows, steps - 1 - t..steps - t, 0..hidden]).squeeze_dim(1);
            let want = enc.context.forward(s).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
            let got = c.clone().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
            let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(err < 2e-6, "time {t}: off by {err:e}");
        }
    }
}
