//! A density on images at CPU scale: a continuous normalising flow on MNIST digits downsampled
//! to 14 x 14 (2 x 2 means), with convolutional dynamics built from [`nodal::jvp`] layers and
//! Hutchinson's trace (FFJORD, Grathwohl et al. 2019, at a size two cores can train).
//!
//! Data: pixels `p ∈ [0, 255]` (the 2 x 2 means are multiples of 0.25), dequantised with uniform
//! noise and scaled, `x = (p + u) / 256 - 1/2`, `u ~ U(0, 1)` per pixel (fresh every batch);
//! `log p_model(p) >= E_u[log p_x(x)] - D ln 256` (Theis et al. 2016), so
//!
//! ```text
//! bits/dim = (-log p_x(x) + D ln 256) / (D ln 2),      D = 196
//! ```
//!
//! (an upper bound on the discrete model's bits/dim). `log p_x` uses Hutchinson's estimate of the
//! trace, which is unbiased for `log p_x` itself (`Δ` is linear in the trace), so the test-set
//! mean is unbiased too.
//!
//! Dynamics: `f(t, x) = conv(σ(conv(σ(conv([x, t])), t)), t)`, 3 x 3 convolutions with `t` as an
//! extra input channel at every layer, softplus `σ`, widths 1 -> C -> C -> 1.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::cnf::{Cnf, CnfSettings, Trace};
use nodal::jvp::activation::softplus;
use nodal::jvp::time::{concat_time, with_time};
use nodal::jvp::{Dual, JvpError, JvpLayer};
use nodal::neural_ode::{OdeFunc, OdeSettings};
use nodal::solve::SolveOptions;
use nodal::solve::tableau::DOPRI5;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Side of the downsampled images.
pub const SIDE: usize = 14;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;

/// The convolutional dynamics. See the module docs.
#[derive(Module, Debug)]
pub struct ConvField {
    /// `[x, t] -> C` channels.
    pub c1: Conv2d,
    /// `[h, t] -> C`.
    pub c2: Conv2d,
    /// `[h, t] -> 1`.
    pub c3: Conv2d,
}

impl ConvField {
    /// A field with `channels` hidden channels (burn's default initialisation, seeded by the
    /// device's RNG state).
    pub fn new(channels: usize, device: &Device) -> Self {
        let conv =
            |i: usize, o: usize| Conv2dConfig::new([i + 1, o], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
        Self { c1: conv(1, channels), c2: conv(channels, channels), c3: conv(channels, 1) }
    }
}

fn image<const R: usize>(x: Tensor<R>) -> Tensor<4> {
    let n = x.dims()[0];
    x.reshape([n, 1, SIDE, SIDE])
}

impl OdeFunc for ConvField {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        let n = y.dims()[0];
        let sp = |x: Tensor<4>| burn::tensor::activation::softplus(x, 1.0);
        let h = sp(self.c1.forward(with_time(t, image(y))));
        let h = sp(self.c2.forward(with_time(t, h)));
        self.c3.forward(with_time(t, h)).reshape([n, PIXELS])
    }
    fn has_jvp(&self) -> bool {
        true
    }
    fn forward_jvp(&self, t: f64, y: Dual<2>) -> Result<Dual<2>, JvpError> {
        let (n, kn) = (y.primal.dims()[0], y.tangent.dims()[0]);
        let x = Dual::new(image(y.primal), image(y.tangent));
        let h = softplus(self.c1.forward_jvp(concat_time(t, x)), 1.0, 20.0);
        let h = softplus(self.c2.forward_jvp(concat_time(t, h)), 1.0, 20.0);
        let o = self.c3.forward_jvp(concat_time(t, h));
        Ok(Dual::new(o.primal.reshape([n, PIXELS]), o.tangent.reshape([kn, PIXELS])))
    }
}

/// MNIST images averaged over 2 x 2 blocks: `[count][196]` pixel values in `[0, 255]`.
pub fn downsample(pixels: &[u8], count: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; count * PIXELS];
    for i in 0..count {
        let img = &pixels[i * 784..(i + 1) * 784];
        for r in 0..SIDE {
            for c in 0..SIDE {
                let s: u32 = [(2 * r) * 28 + 2 * c, (2 * r) * 28 + 2 * c + 1, (2 * r + 1) * 28 + 2 * c, (2 * r + 1) * 28 + 2 * c + 1]
                    .iter()
                    .map(|&j| img[j] as u32)
                    .sum();
                out[i * PIXELS + r * SIDE + c] = s as f32 / 4.0;
            }
        }
    }
    out
}

/// `x = (p + u) / 256 - 1/2` for the images `rows` of `pixels` (`u` uniform, seeded).
pub fn dequantise(pixels: &[f32], rows: &[usize], rng: &mut StdRng) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * PIXELS);
    for &r in rows {
        for &p in &pixels[r * PIXELS..(r + 1) * PIXELS] {
            out.push((p + rng.gen_range(0.0f32..1.0)) / 256.0 - 0.5);
        }
    }
    out
}

/// Bits per dimension from the mean `log p_x` of dequantised, scaled images.
pub fn bits_per_dim(mean_log_px: f64) -> f64 {
    let d = PIXELS as f64;
    (-mean_log_px + d * 256f64.ln()) / (d * std::f64::consts::LN_2)
}

/// Settings of an image-flow run.
#[derive(Debug, Clone)]
pub struct ImageCnfConfig {
    /// Hidden channels.
    pub channels: usize,
    /// Batch size.
    pub batch: usize,
    /// Iterations.
    pub iters: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// `rtol = atol` during training.
    pub tol: f64,
    /// Seed (batches, dequantisation, probes).
    pub seed: u64,
}

impl Default for ImageCnfConfig {
    fn default() -> Self {
        Self { channels: 16, batch: 64, iters: 1000, lr: 1e-3, tol: 1e-4, seed: 0 }
    }
}

/// The flow for `cfg` around `field` (Hutchinson's trace, one Rademacher probe).
pub fn image_flow(field: ConvField, cfg: &ImageCnfConfig) -> Cnf<ConvField> {
    let s = OdeSettings::new(SolveOptions::new(&DOPRI5).with_tol(cfg.tol, cfg.tol));
    Cnf::new(field, CnfSettings::default().with_trace(Trace::hutchinson()), s.clone(), s)
}

/// `[n, 196]` f32 tensor on `device`.
pub fn batch_tensor(x: Vec<f32>, device: &Device) -> Tensor<2> {
    let n = x.len() / PIXELS;
    Tensor::from_data(TensorData::new(x, [n, PIXELS]), (device, DType::F32))
}

/// One training iteration's record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageIter {
    /// 1-based iteration.
    pub iter: usize,
    /// Training-batch bits per dimension.
    pub bits_per_dim: f64,
    /// Step wall time, ms.
    pub ms: f64,
    /// Forward evaluations.
    pub nfe_forward: usize,
    /// Backward evaluations.
    pub nfe_backward: usize,
}

/// Training of the image flow with Adam on the autodiff device.
pub struct ImageCnfTrainer {
    /// Settings.
    pub cfg: ImageCnfConfig,
    /// The flow (autodiff device).
    pub cnf: Cnf<ConvField>,
    opt: burn::optim::ModuleOptimizer,
    device: Device,
    train: Vec<f32>,
    n_train: usize,
    rng: StdRng,
    iter: usize,
}

fn mean_scalar(t: Tensor<1>) -> f64 {
    t.mean().into_data().convert::<f64>().try_into_vec::<f64>().ok().and_then(|v| v.first().copied()).unwrap_or(f64::NAN)
}

impl ImageCnfTrainer {
    /// A run on downsampled training images `train` (`[n][196]`, values in `[0, 255]`).
    pub fn new(cfg: ImageCnfConfig, train: Vec<f32>) -> Self {
        let device = Device::flex().autodiff();
        device.seed(cfg.seed);
        let cnf = image_flow(ConvField::new(cfg.channels, &device), &cfg);
        let n_train = train.len() / PIXELS;
        let opt = burn::optim::AdamConfig::new().with_epsilon(1e-8).init();
        let rng = StdRng::seed_from_u64(cfg.seed ^ 0x1AA6E);
        Self { cfg, cnf, opt, device, train, n_train, rng, iter: 0 }
    }

    /// Iterations done.
    pub fn iter(&self) -> usize {
        self.iter
    }

    /// One step on a random batch (fresh dequantisation noise and probes).
    pub fn step(&mut self) -> Result<ImageIter, nodal::cnf::CnfError> {
        let start = std::time::Instant::now();
        let rows: Vec<usize> = (0..self.cfg.batch).map(|_| self.rng.gen_range(0..self.n_train)).collect();
        let x = batch_tensor(dequantise(&self.train, &rows, &mut self.rng), &self.device);
        let out = self.cnf.log_prob(x, self.rng.r#gen())?;
        let d = PIXELS as f64;
        // Loss in bits per dimension (the constant D ln 256 dropped from the gradient).
        let loss = out.log_prob.mean().neg().div_scalar(d * std::f64::consts::LN_2);
        let bpd = bits_per_dim(-mean_scalar(loss.clone()) * d * std::f64::consts::LN_2);
        let grads = loss.backward();
        let nfe_backward = match out.backward.lock().ok().and_then(|g| g.clone()) {
            Some(Ok(s)) => s.nfe + s.nvjp,
            Some(Err(e)) => return Err(e.into()),
            None => 0,
        };
        let gp = burn::optim::GradientsParams::from_grads(grads, &self.cnf);
        self.cnf = self.opt.step(self.cfg.lr, self.cnf.clone(), gp);
        self.iter += 1;
        Ok(ImageIter {
            iter: self.iter,
            bits_per_dim: bpd,
            ms: start.elapsed().as_secs_f64() * 1e3,
            nfe_forward: out.stats.nfe,
            nfe_backward,
        })
    }

    /// Mean bits per dimension over `images` (`[n][196]`, pixel values), in batches, with
    /// seeded dequantisation and probes; and the mean forward evaluations per batch.
    pub fn evaluate(&self, images: &[f32], batch: usize, seed: u64) -> Result<(f64, f64), nodal::cnf::CnfError> {
        let plain = Device::flex();
        let cnf = image_flow(self.cnf.func.clone().valid(), &self.cfg);
        let n = images.len() / PIXELS;
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut sum, mut nfe, mut batches) = (0.0f64, 0.0f64, 0.0f64);
        for start in (0..n).step_by(batch.max(1)) {
            let rows: Vec<usize> = (start..(start + batch).min(n)).collect();
            let x = batch_tensor(dequantise(images, &rows, &mut rng), &plain);
            let out = cnf.log_prob(x, rng.r#gen())?;
            let lp: Vec<f64> = out.log_prob.into_data().convert::<f64>().try_into_vec::<f64>().unwrap_or_default();
            sum += lp.iter().sum::<f64>();
            nfe += out.stats.nfe as f64;
            batches += 1.0;
        }
        Ok((bits_per_dim(sum / n as f64), nfe / batches.max(1.0)))
    }

    /// `n` samples as pixel intensities in `[0, 1]` (`[n][196]`): `z ~ N(0, I)` solved back.
    pub fn sample(&self, n: usize, seed: u64) -> Result<Vec<f32>, nodal::cnf::CnfError> {
        let plain = Device::flex();
        let cnf = image_flow(self.cnf.func.clone().valid(), &self.cfg);
        let mut rng = StdRng::seed_from_u64(seed);
        let z: Vec<f32> = (0..n * PIXELS).map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal) as f32).collect();
        let (x, _) = cnf.sample(batch_tensor(z, &plain))?;
        let v: Vec<f32> = x.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
        Ok(v.into_iter().map(|p| (p + 0.5).clamp(0.0, 1.0)).collect())
    }

    /// Named weights `(name, shape, values)` for a safetensors file.
    pub fn named_weights(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let f = &self.cnf.func;
        let mut v = Vec::new();
        for (name, c) in [("c1", &f.c1), ("c2", &f.c2), ("c3", &f.c3)] {
            let w = c.weight.val();
            v.push((format!("{name}.weight"), w.dims().to_vec(), w.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default()));
            if let Some(b) = &c.bias {
                let b = b.val();
                v.push((
                    format!("{name}.bias"),
                    b.dims().to_vec(),
                    b.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default(),
                ));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_averages_blocks_and_bits_per_dim_counts_the_scaling() {
        let mut img = vec![0u8; 784];
        img[0] = 4;
        img[1] = 8;
        img[28] = 12;
        img[29] = 16;
        let d = downsample(&img, 1);
        assert_eq!(d[0], 10.0);
        assert!(d[1..].iter().all(|v| *v == 0.0));
        // A density uniform on the unit cube has log p_x = 0: exactly 8 bits per dimension.
        assert!((bits_per_dim(0.0) - 8.0).abs() < 1e-12);
    }

    /// The conv field's JVP (what the Hutchinson trace is built from) against a central
    /// difference of its forward pass.
    #[test]
    fn conv_field_jvp_matches_a_central_difference() {
        let dev = Device::flex();
        let f = ConvField::new(4, &dev);
        let mut rng = StdRng::seed_from_u64(1);
        let x: Vec<f32> = (0..2 * PIXELS).map(|_| rng.gen_range(-0.5..0.5)).collect();
        let v: Vec<f32> = (0..2 * PIXELS).map(|_| if rng.gen_bool(0.5) { 1.0 } else { -1.0 }).collect();
        let (xt, vt) = (batch_tensor(x, &dev), batch_tensor(v, &dev));
        let jv = f.forward_jvp(0.3, Dual::new(xt.clone(), vt.clone())).unwrap().tangent;
        let h = 1e-2;
        let fd = (f.forward(0.3, xt.clone() + vt.clone().mul_scalar(h)) - f.forward(0.3, xt - vt.mul_scalar(h))).div_scalar(2.0 * h);
        let (a, b): (Vec<f32>, Vec<f32>) = (jv.into_data().try_into_vec().unwrap(), fd.into_data().try_into_vec().unwrap());
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (u, w) in a.iter().zip(&b) {
            assert!((u - w).abs() < 2e-3 * scale, "{u} vs {w}");
        }
    }
}
