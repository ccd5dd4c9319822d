//! The flow-matching training loop: each step draws a batch of training images `x1` (a fresh
//! shuffle per epoch), noise `x0`, one time per image (uniform or logit-normal:
//! [`super::path::TimeSampling`]), forms the conditional path
//! ([`super::path`]) and takes an Adam step on `mean |v(t, x_t) − u_t|²`. No ODE is solved
//! during training. The learning rate warms up linearly, then decays on a cosine to a tenth;
//! the EMA of the weights ([`super::ema`]) is updated after every step.

use super::ema::Ema;
use super::path::conditional_ot;
use super::{FlowError, FlowMatchingConfig, PIXELS, SIDE, to_signed};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::blocks::unet::UNet;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use std::time::Instant;

/// One training step's record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepRecord {
    /// Step index (from 0).
    pub iter: usize,
    /// The batch's flow-matching loss (mean squared error per pixel).
    pub loss: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Wall time of the step in milliseconds.
    pub ms: f64,
}

/// Learning rate at `iter`: linear warm-up over `warmup` steps to `lr`, then a cosine from `lr`
/// down to `lr / 10` at the last step.
pub fn learning_rate(cfg: &FlowMatchingConfig, iter: usize) -> f64 {
    if iter < cfg.warmup {
        return cfg.lr * (iter + 1) as f64 / cfg.warmup as f64;
    }
    let span = cfg.iters.saturating_sub(cfg.warmup).max(1) as f64;
    let progress = ((iter - cfg.warmup) as f64 / span).min(1.0);
    cfg.lr * (0.1 + 0.45 * (1.0 + (std::f64::consts::PI * progress).cos()))
}

/// Training state: the model on an autodiff device, its optimiser, its EMA and the data order.
pub struct Trainer {
    /// The settings.
    pub cfg: FlowMatchingConfig,
    /// The U-Net being trained.
    pub model: UNet,
    /// The moving average of its weights (what is saved and sampled).
    pub ema: Ema,
    /// Steps taken.
    pub iter: usize,
    opt: ModuleOptimizer,
    rng: StdRng,
    order: Vec<usize>,
    cursor: usize,
    device: Device,
}

impl Trainer {
    /// A fresh U-Net (initialised from `cfg.seed`) on `device` (an autodiff device).
    pub fn new(cfg: FlowMatchingConfig, device: &Device) -> Result<Self, FlowError> {
        cfg.validate().map_err(FlowError::Settings)?;
        device.seed(cfg.seed ^ 0xF10E);
        let model = cfg.unet.init(device);
        let ema = Ema::new(&model, cfg.ema_decay);
        let rng = StdRng::seed_from_u64(cfg.seed.wrapping_add(0xF1A7));
        Ok(Self { cfg, model, ema, iter: 0, opt: AdamConfig::new().init(), rng, order: Vec::new(), cursor: 0, device: device.clone() })
    }

    /// Continue training from `model` (trained weights of the same architecture, on this
    /// trainer's device) instead of the fresh initialisation: the moving average restarts from
    /// it; Adam's state and the learning-rate schedule start fresh. Call before the first step.
    pub fn start_from(&mut self, model: UNet) -> Result<(), FlowError> {
        let (have, want) = (nodal::module_weights::param_count(&model), nodal::module_weights::param_count(&self.model));
        if have != want {
            return Err(FlowError::Settings(format!("starting weights hold {have} parameters; this U-Net has {want}")));
        }
        if self.iter != 0 {
            return Err(FlowError::Settings(format!("starting weights given after {} steps", self.iter)));
        }
        self.ema = Ema::new(&model, self.cfg.ema_decay);
        self.model = model;
        Ok(())
    }

    /// The next batch's image indices, reshuffling at each epoch's end.
    fn next_indices(&mut self, count: usize) -> Vec<usize> {
        let mut picks = Vec::with_capacity(self.cfg.batch);
        while picks.len() < self.cfg.batch {
            if self.cursor >= self.order.len() {
                self.order = (0..count).collect();
                self.order.shuffle(&mut self.rng);
                self.cursor = 0;
            }
            picks.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        picks
    }

    /// One step on `pixels` (`count` 28 x 28 images, bytes 0..=255).
    pub fn step(&mut self, pixels: &[u8]) -> Result<StepRecord, FlowError> {
        let start = Instant::now();
        let count = pixels.len() / PIXELS;
        if count == 0 {
            return Err(FlowError::NoData);
        }
        let b = self.cfg.batch;
        let picks = self.next_indices(count);
        let x1: Vec<f32> = picks.iter().flat_map(|&i| pixels[i * PIXELS..(i + 1) * PIXELS].iter().map(|&p| to_signed(p))).collect();
        let x0: Vec<f32> = (0..b * PIXELS).map(|_| self.rng.sample(StandardNormal)).collect();
        let sampling = self.cfg.time_sampling;
        let t: Vec<f64> = (0..b).map(|_| sampling.draw(&mut self.rng)).collect();
        let (xt, ut) = conditional_ot(&x0, &x1, &t, self.cfg.sigma_min);
        let shape = [b, 1, SIDE, SIDE];
        let xt = Tensor::<4>::from_data(TensorData::new(xt, shape), (&self.device, DType::F32));
        let ut = Tensor::<4>::from_data(TensorData::new(ut, shape), (&self.device, DType::F32));
        let loss = (self.model.forward_times(&t, xt) - ut).square().mean();
        let value = loss.clone().into_data().convert::<f64>().try_into_vec::<f64>().map(|v| v[0]).unwrap_or(f64::NAN);
        if !value.is_finite() {
            return Err(FlowError::Diverged { iter: self.iter, loss: value });
        }
        let grads = loss.backward();
        let gp = GradientsParams::from_grads(grads, &self.model);
        let lr = learning_rate(&self.cfg, self.iter);
        self.model = self.opt.step(lr, self.model.clone(), gp);
        self.ema.update(&self.model);
        let record = StepRecord { iter: self.iter, loss: value, lr, ms: start.elapsed().as_secs_f64() * 1e3 };
        self.iter += 1;
        Ok(record)
    }

    /// Adam's state as bytes (for [`super::checkpoint`]).
    pub fn optimizer_bytes(&mut self) -> Result<Vec<u8>, String> {
        self.opt.into_bytes().map(|b| b.to_vec()).map_err(|e| format!("{e:?}"))
    }

    /// Restore Adam's state saved by [`Trainer::optimizer_bytes`] (the model's parameter ids must
    /// be the saved ones).
    pub fn set_optimizer_bytes(&mut self, bytes: burn::tensor::Bytes) -> Result<(), String> {
        let opt = std::mem::replace(&mut self.opt, AdamConfig::new().init());
        self.opt = opt.from_bytes(bytes).map_err(|e| format!("{e:?}"))?;
        Ok(())
    }

    /// Continue from step `iter`: the data order and random stream restart from `(seed, iter)`.
    pub fn seek(&mut self, iter: usize) {
        self.iter = iter;
        self.rng =
            StdRng::seed_from_u64(self.cfg.seed.wrapping_add(0xF1A7).wrapping_add((iter as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        self.order.clear();
        self.cursor = 0;
    }

    /// The averaged weights as a plain (inference) U-Net.
    pub fn ema_model(&self) -> UNet {
        self.ema.to_module(self.model.valid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal::blocks::unet::UNetConfig;

    #[test]
    fn the_schedule_warms_up_and_decays_to_a_tenth() {
        let cfg = FlowMatchingConfig { iters: 1000, warmup: 100, lr: 1e-3, ..FlowMatchingConfig::default() };
        assert!((learning_rate(&cfg, 0) - 1e-5).abs() < 1e-15);
        assert!((learning_rate(&cfg, 99) - 1e-3).abs() < 1e-15);
        assert!((learning_rate(&cfg, 100) - 1e-3).abs() < 1e-15);
        assert!((learning_rate(&cfg, 1000) - 1e-4).abs() < 1e-15);
        assert!(learning_rate(&cfg, 550) < 1e-3 && learning_rate(&cfg, 550) > 1e-4);
    }

    #[test]
    fn a_few_steps_lower_the_loss_on_a_tiny_set() {
        // Two fixed "images": a few dozen steps of a small U-Net must cut the loss well below
        // its starting value (the untrained field is 0, so the first loss is E|u|² ≈ 1 + E|x1|²).
        let dev = Device::flex().autodiff();
        let unet = UNetConfig { image_channels: 1, channels: 8, time_features: 8, time_width: 16, middle_attention: 0 };
        let cfg = FlowMatchingConfig { unet, iters: 60, batch: 8, lr: 3e-3, warmup: 5, ..FlowMatchingConfig::default() };
        let mut pixels = vec![0u8; 2 * PIXELS];
        for k in 0..PIXELS {
            let (r, c) = (k / SIDE, k % SIDE);
            pixels[k] = if (10..18).contains(&c) { 255 } else { 0 };
            pixels[PIXELS + k] = if (10..18).contains(&r) { 255 } else { 0 };
        }
        let mut tr = Trainer::new(cfg, &dev).unwrap();
        let losses: Vec<f64> = (0..60).map(|_| tr.step(&pixels).unwrap().loss).collect();
        let first = losses[..5].iter().sum::<f64>() / 5.0;
        let last = losses[55..].iter().sum::<f64>() / 5.0;
        assert!(last < 0.7 * first, "loss {first} -> {last}");
        assert_eq!(tr.iter, 60);
        assert_eq!(tr.ema.updates, 60);
    }

    #[test]
    fn training_can_start_from_given_weights() {
        let dev = Device::flex().autodiff();
        let unet = UNetConfig { image_channels: 1, channels: 8, time_features: 8, time_width: 16, middle_attention: 0 };
        let cfg = FlowMatchingConfig { unet, iters: 4, batch: 2, warmup: 1, ..FlowMatchingConfig::default() };
        let pixels: Vec<u8> = (0..2 * PIXELS).map(|k| ((k * 53) % 256) as u8).collect();
        let mut donor = Trainer::new(FlowMatchingConfig { seed: 7, ..cfg.clone() }, &dev).unwrap();
        donor.step(&pixels).unwrap();
        let mut tr = Trainer::new(cfg.clone(), &dev).unwrap();
        assert_ne!(nodal::module_weights::flat_params(&tr.model), nodal::module_weights::flat_params(&donor.model));
        tr.start_from(donor.model.clone()).unwrap();
        assert_eq!(nodal::module_weights::flat_params(&tr.model), nodal::module_weights::flat_params(&donor.model));
        assert_eq!(tr.ema.values, nodal::module_weights::flat_params(&donor.model));
        tr.step(&pixels).unwrap();
        // Another architecture, or weights given mid-run, are refused.
        let wide = UNetConfig { channels: 12, ..unet };
        assert!(matches!(tr.start_from(donor.model.clone()), Err(FlowError::Settings(_))));
        let mut fresh = Trainer::new(cfg, &dev).unwrap();
        assert!(matches!(fresh.start_from(wide.init(&dev)), Err(FlowError::Settings(_))));
    }
}
