//! The networks: the latent ODE (an ODE-RNN encoder, a latent ODE decoder, Rubanova et al.
//! 2019) and its two baselines, an ODE-RNN alone and a GRU fed the time gaps.
//!
//! Every ODE here is an MLP field `dy/dt = W2 tanh(W1 y + b1) + b2` stepped by classic RK4, one
//! step per grid interval (`h = 5/99`); gradients are burn's reverse mode through the steps.
//!
//! - [`LatentOde`]: the encoder runs backwards from `t_99` to `t_0`: at each grid time a GRU
//!   cell reads `[x, m]` and the state takes its output where the point is observed
//!   (`h <- h + m (GRU(x, h) - h)`); between grid times `h` follows its own ODE. A linear map of
//!   `h(t_0)` gives `q(z_0) = N(μ, diag σ²)`; `z_0` (a sample, or `μ` for predictions) is solved
//!   forward through the whole grid by the latent ODE and read out linearly.
//!   Loss: the negative ELBO, `Σ_obs -log N(x; x̂, σ_obs²) + KL(q(z_0) || N(0, I))` per series.
//! - [`OdeRnnModel`]: the same ODE-RNN run forward in time; the prediction at `t_i` is read
//!   from the state before `t_i`'s observation, so it forecasts from the past alone, and keeps
//!   evolving by its ODE where nothing is observed (extrapolation).
//! - [`GruGaps`]: a GRU stepped at every grid time with input `[m x, m, Δt]` (`Δt` the time since
//!   the last observation), the prediction read from the state before the step.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::activation::tanh;

/// Inputs of one batch, one `[rows, 1]` tensor per grid time.
pub struct Batch {
    /// Series in the batch.
    pub rows: usize,
    /// Grid times.
    pub ts: Vec<f64>,
    /// Conditioning values (`m x`).
    pub xs: Vec<Tensor<2>>,
    /// Conditioning mask (what the model may read).
    pub ms: Vec<Tensor<2>>,
    /// Time since the last conditioning observation (for the GRU baseline).
    pub gaps: Vec<Tensor<2>>,
}

/// `[rows, cols]` from host `f32`s.
pub fn tensor2(v: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(v, [rows, cols]), (device, DType::F32))
}

/// `dy/dt = W2 tanh(W1 y + b1) + b2`.
#[derive(Module, Debug)]
pub struct Field {
    /// First layer.
    pub l1: Linear,
    /// Second layer.
    pub l2: Linear,
}

impl Field {
    /// A field on `dim` states with `width` hidden units.
    pub fn new(dim: usize, width: usize, device: &Device) -> Self {
        Self { l1: LinearConfig::new(dim, width).init(device), l2: LinearConfig::new(width, dim).init(device) }
    }
    /// `f(y)`.
    pub fn forward(&self, y: Tensor<2>) -> Tensor<2> {
        self.l2.forward(tanh(self.l1.forward(y)))
    }
    /// One classic RK4 step of size `h`.
    pub fn rk4(&self, y: Tensor<2>, h: f64) -> Tensor<2> {
        let k1 = self.forward(y.clone());
        let k2 = self.forward(y.clone() + k1.clone().mul_scalar(h / 2.0));
        let k3 = self.forward(y.clone() + k2.clone().mul_scalar(h / 2.0));
        let k4 = self.forward(y.clone() + k3.clone().mul_scalar(h));
        y + (k1 + (k2 + k3).mul_scalar(2.0) + k4).mul_scalar(h / 6.0)
    }
}

/// One GRU gate: `x W_i + b_i` and `h W_h + b_h`.
#[derive(Module, Debug)]
pub struct GruGate {
    /// Input map.
    pub input: Linear,
    /// Hidden map.
    pub hidden: Linear,
}

/// A GRU cell with PyTorch's gate convention (the reset gate multiplies `h W_hn + b_hn`).
#[derive(Module, Debug)]
pub struct GruCell {
    /// Reset gate.
    pub reset: GruGate,
    /// Update gate.
    pub update: GruGate,
    /// Candidate.
    pub new: GruGate,
}

impl GruCell {
    /// `d_in` inputs, `hidden` units.
    pub fn new(d_in: usize, hidden: usize, device: &Device) -> Self {
        let gate =
            || GruGate { input: LinearConfig::new(d_in, hidden).init(device), hidden: LinearConfig::new(hidden, hidden).init(device) };
        Self { reset: gate(), update: gate(), new: gate() }
    }
    /// The next state.
    pub fn forward(&self, x: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        let r = sigmoid(self.reset.input.forward(x.clone()) + self.reset.hidden.forward(h.clone()));
        let z = sigmoid(self.update.input.forward(x.clone()) + self.update.hidden.forward(h.clone()));
        let n = tanh(self.new.input.forward(x) + r * self.new.hidden.forward(h.clone()));
        n.clone() + z * (h - n)
    }
}

/// A GRU cell for the observations and an ODE between them.
#[derive(Module, Debug)]
pub struct OdeRnn {
    /// Update at observations (input `[x, m]`).
    pub gru: GruCell,
    /// Dynamics between observations.
    pub field: Field,
}

impl OdeRnn {
    fn new(hidden: usize, width: usize, device: &Device) -> Self {
        Self { gru: GruCell::new(2, hidden, device), field: Field::new(hidden, width, device) }
    }
    /// The masked update at grid time `i`.
    fn observe(&self, b: &Batch, i: usize, h: Tensor<2>) -> Tensor<2> {
        let upd = self.gru.forward(Tensor::cat(vec![b.xs[i].clone(), b.ms[i].clone()], 1), h.clone());
        h.clone() + b.ms[i].clone() * (upd - h)
    }
    /// The state at `t_0` after reading the batch backwards from `t_99`.
    pub fn encode_backwards(&self, b: &Batch, hidden: usize, device: &Device) -> Tensor<2> {
        let n = b.ts.len();
        let mut h = Tensor::<2>::zeros([b.rows, hidden], (device, DType::F32));
        for i in (0..n).rev() {
            h = self.observe(b, i, h);
            if i > 0 {
                h = self.field.rk4(h, b.ts[i - 1] - b.ts[i]);
            }
        }
        h
    }
}

impl OdeRnn {
    /// The state at `t_0` of one series read backwards on its own observation times `obs`
    /// (`(t, x)`, ascending; a `[1, 1]` batch): between observations the ODE takes
    /// `ceil(gap / h_max)` RK4 steps. The per-series alternative to
    /// [`OdeRnn::encode_backwards`]'s union grid, kept to measure the two.
    pub fn encode_own_times(&self, obs: &[(f64, f32)], t0: f64, h_max: f64, hidden: usize, device: &Device) -> Tensor<2> {
        let mut h = Tensor::<2>::zeros([1, hidden], (device, DType::F32));
        let one = tensor2(vec![1.0], 1, 1, device);
        let mut t = obs.last().map_or(t0, |o| o.0);
        for (k, &(to, x)) in obs.iter().enumerate().rev() {
            let upd = self.gru.forward(Tensor::cat(vec![tensor2(vec![x], 1, 1, device), one.clone()], 1), h);
            h = upd;
            t = to;
            let next = if k > 0 { obs[k - 1].0 } else { t0 };
            let steps = ((t - next) / h_max - 1e-9).ceil().max(0.0) as usize;
            for _ in 0..steps {
                h = self.field.rk4(h, (next - t) / steps as f64);
            }
        }
        let _ = t;
        h
    }
}

/// Sizes of the networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sizes {
    /// Latent state of the latent ODE.
    pub latent: usize,
    /// ODE-RNN (and GRU) state.
    pub hidden: usize,
    /// Hidden units of the ODE-RNN's field.
    pub rec_field: usize,
    /// Hidden units of the latent ODE's field.
    pub dec_field: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        Self { latent: 6, hidden: 16, rec_field: 32, dec_field: 32 }
    }
}

/// The latent ODE.
#[derive(Module, Debug)]
pub struct LatentOde {
    /// Encoder.
    pub encoder: OdeRnn,
    /// `h(t_0)` to `[μ, log σ²]`.
    pub head: Linear,
    /// Latent dynamics.
    pub decoder: Field,
    /// Latent state to observation.
    pub readout: Linear,
}

/// What one forward pass of a model gives.
pub struct Forward {
    /// Predictions at every grid time, time-major `[T rows, 1]` (index `i rows + r`).
    pub pred: Tensor<2>,
    /// `KL(q(z_0) || N(0, I))` per series, summed over the batch (zero for the baselines).
    pub kl: Option<Tensor<1>>,
}

impl LatentOde {
    /// Networks of `sizes` (burn's initialisation; the trainer redraws them from its seed).
    pub fn new(s: Sizes, device: &Device) -> Self {
        Self {
            encoder: OdeRnn::new(s.hidden, s.rec_field, device),
            head: LinearConfig::new(s.hidden, 2 * s.latent).init(device),
            decoder: Field::new(s.latent, s.dec_field, device),
            readout: LinearConfig::new(s.latent, 1).init(device),
        }
    }
    /// `q(z_0)`'s mean and log-variance.
    pub fn posterior(&self, b: &Batch, s: Sizes, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let h0 = self.encoder.encode_backwards(b, s.hidden, device);
        let q = self.head.forward(h0);
        (q.clone().narrow(1, 0, s.latent), q.narrow(1, s.latent, s.latent))
    }
    /// Decode `z_0` through the grid.
    pub fn decode(&self, z0: Tensor<2>, ts: &[f64]) -> Tensor<2> {
        let mut zs = Vec::with_capacity(ts.len());
        let mut z = z0;
        zs.push(z.clone());
        for i in 1..ts.len() {
            z = self.decoder.rk4(z, ts[i] - ts[i - 1]);
            zs.push(z.clone());
        }
        self.readout.forward(Tensor::cat(zs, 0))
    }
    /// Predictions from `z_0 = μ + σ ε` (`eps = None`: the posterior mean) and the KL term.
    pub fn forward(&self, b: &Batch, eps: Option<Tensor<2>>, s: Sizes, device: &Device) -> Forward {
        let (mu, logvar) = self.posterior(b, s, device);
        let z0 = match eps {
            Some(e) => mu.clone() + logvar.clone().mul_scalar(0.5).exp() * e,
            None => mu.clone(),
        };
        let kl = (mu.powi_scalar(2) + logvar.clone().exp() - logvar).sub_scalar(1.0).mul_scalar(0.5).sum();
        Forward { pred: self.decode(z0, &b.ts), kl: Some(kl) }
    }
}

/// The ODE-RNN baseline.
#[derive(Module, Debug)]
pub struct OdeRnnModel {
    /// The ODE-RNN.
    pub rnn: OdeRnn,
    /// State to observation.
    pub readout: Linear,
}

impl OdeRnnModel {
    /// Networks of `sizes`.
    pub fn new(s: Sizes, device: &Device) -> Self {
        Self { rnn: OdeRnn::new(s.hidden, s.rec_field, device), readout: LinearConfig::new(s.hidden, 1).init(device) }
    }
    /// One-step-ahead predictions at every grid time.
    pub fn forward(&self, b: &Batch, s: Sizes, device: &Device) -> Forward {
        let mut h = Tensor::<2>::zeros([b.rows, s.hidden], (device, DType::F32));
        let mut hs = Vec::with_capacity(b.ts.len());
        for i in 0..b.ts.len() {
            if i > 0 {
                h = self.rnn.field.rk4(h, b.ts[i] - b.ts[i - 1]);
            }
            hs.push(h.clone());
            h = self.rnn.observe(b, i, h);
        }
        Forward { pred: self.readout.forward(Tensor::cat(hs, 0)), kl: None }
    }
}

/// The GRU baseline with time-gap inputs.
#[derive(Module, Debug)]
pub struct GruGaps {
    /// The cell (input `[m x, m, Δt]`).
    pub gru: GruCell,
    /// State to observation.
    pub readout: Linear,
}

impl GruGaps {
    /// Networks of `sizes`.
    pub fn new(s: Sizes, device: &Device) -> Self {
        Self { gru: GruCell::new(3, s.hidden, device), readout: LinearConfig::new(s.hidden, 1).init(device) }
    }
    /// One-step-ahead predictions at every grid time.
    pub fn forward(&self, b: &Batch, s: Sizes, device: &Device) -> Forward {
        let mut h = Tensor::<2>::zeros([b.rows, s.hidden], (device, DType::F32));
        let mut hs = Vec::with_capacity(b.ts.len());
        for i in 0..b.ts.len() {
            hs.push(h.clone());
            h = self.gru.forward(Tensor::cat(vec![b.xs[i].clone(), b.ms[i].clone(), b.gaps[i].clone()], 1), h);
        }
        Forward { pred: self.readout.forward(Tensor::cat(hs, 0)), kl: None }
    }
}
