//! Memory of one training step (forward, loss, backward) of an MNIST model's residual part or
//! ODE block and head, measured in isolation: synthetic images, no data set in memory, the stem's
//! features computed first and detached, the process's peak resident set size reset just before
//! the step (Chen et al. 2018, Table 1's memory column: `O(L)` for ResNet and RK-Net,
//! `O(1)` for the ODE-Net trained with the adjoint).

use super::models::{Forward, ModelConfig, images_tensor};
use super::train::{TrainError, one_hot, peak_rss_mib, reset_peak_rss};
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};

/// What one training step used.
#[derive(Debug, Clone, Copy)]
pub struct StepMemory {
    /// Resident memory just before the step, MiB.
    pub before_mib: f64,
    /// Peak resident memory during the step, MiB.
    pub peak_mib: f64,
    /// Forward evaluations of the ODE block (0 for the ResNet).
    pub nfe_forward: usize,
    /// Backward evaluations plus vector-Jacobian products of the ODE block.
    pub nfe_backward: usize,
    /// Wall time of the step, seconds.
    pub seconds: f64,
}

/// Current resident memory, MiB (`VmRSS`; 0 where `/proc` is missing).
pub fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Run `warmup` unmeasured steps, then one measured step of `config`'s model on `batch` random
/// images (seeded), and report its memory.
pub fn measure_step(config: &ModelConfig, batch: usize, seed: u64, warmup: usize) -> Result<StepMemory, TrainError> {
    let device = Device::flex().autodiff();
    let model = config.init_seeded(&device, seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let pixels: Vec<u8> = (0..batch * 28 * 28).map(|_| rng.gen_range(0..=255u8)).collect();
    let labels: Vec<u8> = (0..batch).map(|_| rng.gen_range(0..10u8)).collect();
    let mut result = None;
    for i in 0..=warmup {
        let x = images_tensor(&pixels, &Device::flex());
        let target = one_hot(&labels, &device);
        // The stem's features, detached: the measurement covers the part the models differ in
        // (residual blocks or the ODE block) and the head, not the shared stem, whose
        // convolutions on 28x28 maps would dominate the peak.
        let features = model.clone().valid().stem.forward(x).into_data();
        let features = Tensor::<4>::from_data(features, &device).require_grad();
        let before = rss_mib();
        reset_peak_rss();
        let start = std::time::Instant::now();
        let Forward { logits, nfe, backward, .. } =
            model.forward_features(features).map_err(|source| TrainError::Solve { epoch: 0, batch: i + 1, source })?;
        let loss = (log_softmax(logits, 1) * target).sum().neg() / batch as f64;
        let _grads = loss.backward();
        let peak = peak_rss_mib();
        let nb = backward.and_then(|r| r.work()).and_then(|r| r.ok()).map_or(0, |(nfe, nvjp)| nfe + nvjp);
        result = Some(StepMemory {
            before_mib: before,
            peak_mib: peak,
            nfe_forward: nfe,
            nfe_backward: nb,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    Ok(result.expect("at least one step"))
}
