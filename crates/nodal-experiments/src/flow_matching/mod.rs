//! Conditional flow matching on MNIST (Lipman et al. 2023, "Flow Matching for Generative
//! Modeling"): a time-conditioned U-Net ([`nodal::blocks::unet`]) learns a vector field `v(t, x)`
//! that carries Gaussian noise at `t = 0` to digits at `t = 1`; samples come from solving
//! `dx/dt = v(t, x)` with any of nodal's solvers and tolerances.
//!
//! - [`path`]: the conditional optimal-transport path and its target velocity. Training
//!   regresses `v` on that velocity at random `(t, x0, x1)`, with no solve in the loop.
//! - [`train`]: the training loop (Adam with warm-up and cosine decay, an EMA of the weights).
//! - [`checkpoint`]: resumable checkpoints of a run.
//! - [`ema`]: the moving average of the parameters that is sampled from.
//! - [`sample`]: noise to images through a [`nodal::neural_ode::NeuralOde`] over `[n, 1, 28, 28]`
//!   states, with the work (NFE) it took.
//! - [`quality`]: what the committed MNIST classifier makes of the samples (confident share,
//!   class histogram) and the Fréchet distance of its penultimate features ([`frechet`]) to the
//!   test set's.
//!
//! Pixels are scaled to `[-1, 1]` for the model; images for the classifier and for pictures
//! are clamped back to `[0, 1]`.

pub mod checkpoint;
pub mod ema;
pub mod frechet;
pub mod path;
pub mod quality;
pub mod sample;
pub mod train;
pub mod weights;

use nodal::blocks::unet::UNetConfig;
use nodal::solve::SolveError;

/// Side of an MNIST image.
pub const SIDE: usize = 28;
/// Pixels of an MNIST image.
pub const PIXELS: usize = SIDE * SIDE;
/// Model name stored in (and required of) flow-matching weight files.
pub const MODEL_NAME: &str = "flow-matching-unet";

/// Settings of a flow-matching run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlowMatchingConfig {
    /// The U-Net's sizes.
    pub unet: UNetConfig,
    /// Training steps.
    pub iters: usize,
    /// Images per step.
    pub batch: usize,
    /// Peak Adam learning rate.
    pub lr: f64,
    /// Steps of linear warm-up to the peak rate (cosine decay to a tenth after).
    pub warmup: usize,
    /// `σ_min` of the conditional path (the width of the target around each image).
    pub sigma_min: f64,
    /// Target decay of the weights' moving average.
    pub ema_decay: f64,
    /// Seed of initialisation, batch order, noise and times.
    pub seed: u64,
    /// How each example's time on the path is drawn (files from runs before this setting
    /// existed read as uniform, which is what those runs used).
    #[serde(default)]
    pub time_sampling: path::TimeSampling,
}

impl Default for FlowMatchingConfig {
    /// The committed run's settings (see docs/any_layer.md).
    fn default() -> Self {
        Self {
            unet: UNetConfig { channels: 32, ..UNetConfig::default() },
            iters: 12_000,
            batch: 48,
            lr: 1e-3,
            warmup: 200,
            sigma_min: 1e-4,
            ema_decay: 0.999,
            seed: 0,
            time_sampling: path::TimeSampling::LogitNormal,
        }
    }
}

impl FlowMatchingConfig {
    /// Check every setting; the message names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        let u = &self.unet;
        if u.image_channels != 1 {
            return Err(format!("image_channels {}: MNIST images have 1 channel", u.image_channels));
        }
        if u.channels == 0 || u.channels > 512 {
            return Err(format!("channels {}: must be 1..=512", u.channels));
        }
        u.check()?;
        if self.batch == 0 || self.batch > 4096 {
            return Err(format!("batch {}: must be 1..=4096", self.batch));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("lr {}: must be positive and finite", self.lr));
        }
        if !(0.0..1.0).contains(&self.sigma_min) {
            return Err(format!("sigma_min {}: must be in [0, 1)", self.sigma_min));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(format!("ema_decay {}: must be in [0, 1)", self.ema_decay));
        }
        Ok(())
    }
}

/// Why flow-matching training, sampling or scoring failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlowError {
    /// The training loss became NaN or infinite.
    #[error("training diverged at step {iter}: loss {loss}")]
    Diverged {
        /// The step.
        iter: usize,
        /// Its loss.
        loss: f64,
    },
    /// Sampling's ODE solve failed (its error carries the time and step size).
    #[error("sampling images {first}..{end}: {source}")]
    Solve {
        /// First image of the failed chunk.
        first: usize,
        /// One past its last image.
        end: usize,
        /// The solver's error.
        source: SolveError,
    },
    /// The classifier's forward pass failed.
    #[error("classifier: {0}")]
    Classifier(String),
    /// Feature statistics could not be formed.
    #[error("feature statistics: {0}")]
    Frechet(#[from] frechet::FrechetError),
    /// Settings that cannot be used.
    #[error("{0}")]
    Settings(String),
    /// A checkpoint could not be written or resumed (the message names the file).
    #[error("checkpoint {0}")]
    Checkpoint(String),
    /// No training images.
    #[error("the training set holds no images")]
    NoData,
}

/// A pixel `0..=255` to the model's `[-1, 1]`.
pub fn to_signed(p: u8) -> f32 {
    p as f32 / 127.5 - 1.0
}

/// A model value back to `[0, 1]` (clamped).
pub fn to_unit(x: f32) -> f32 {
    ((x + 1.0) * 0.5).clamp(0.0, 1.0)
}
