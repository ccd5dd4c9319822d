//! Training and evaluation of the MNIST models: mini-batches in a seeded order, Adam or SGD,
//! per-epoch metrics (loss, test accuracy, forward and backward evaluations, wall time, peak
//! memory), checkpoints that resume after an interruption, and safetensors weights.
//!
//! Files in the output folder:
//! - `checkpoint.json` (+ `ckpt-N.safetensors`, `ckpt-N.optim`): written every
//!   `checkpoint_every` batches and at the end of every epoch; the JSON is written last and
//!   names the weight and optimizer files, so an interruption at any moment leaves the previous
//!   consistent checkpoint (every write is atomic);
//! - `metrics.jsonl`: one line per finished epoch ([`EpochMetrics`]), rewritten atomically;
//! - `model.safetensors`: the final weights (metadata: model, epochs, test accuracy).
//!
//! The order of the examples in epoch `e` depends only on the seed and `e`, so a resumed run sees
//! the same batches as an uninterrupted one.

use super::Split;
use super::models::{BlockError, Forward, IMAGE_SIDE, MnistNet, ModelConfig, ModelKind, images_tensor, load_weights, save_weights};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig, momentum::MomentumConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bytes, DType, Device, Tensor, TensorData};
use nodal::io::{FileError, MAX_JSON_BYTES, MAX_WEIGHTS_BYTES, read_capped, read_text_capped, write_atomic};
use nodal_distributed::{CommError, Communicator, SingleProcess, all_reduce_gradients, shard_range};
use nodal_solve::SolveError;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use thiserror::Error;

/// Which optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// Adam (beta 0.9 / 0.999, eps 1e-8, as PyTorch).
    Adam,
    /// SGD with momentum 0.9 (the paper's choice, with lr 0.1).
    Sgd,
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// The model and its solver settings.
    pub model: ModelConfig,
    /// Epochs to train (in total, counting those of a resumed run).
    pub epochs: usize,
    /// Examples per mini-batch.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// Optimiser.
    pub optimizer: OptimizerKind,
    /// Seed of the initial weights and of the example order.
    pub seed: u64,
    /// Save a checkpoint every this many batches (and at every epoch's end); 0 = epoch ends only.
    pub checkpoint_every: usize,
    /// Examples per evaluation batch.
    pub eval_batch: usize,
    /// Output folder.
    pub out: PathBuf,
    /// Start from these weights instead of the seeded initialisation (fine-tuning; a checkpoint
    /// in `out` still takes precedence).
    pub init_weights: Option<PathBuf>,
    /// Where the model and batches live (without autodiff; the trainer adds it): burn's flex
    /// CPU backend by default, or any device of [`nodal::backend::Backend`].
    pub device: Device,
}

impl TrainConfig {
    /// Defaults: 1 epoch, batch 128, Adam at 1e-3, seed 0, a checkpoint every 50 batches.
    pub fn new(model: ModelConfig, out: PathBuf) -> Self {
        Self {
            model,
            epochs: 1,
            batch_size: 128,
            lr: 1e-3,
            optimizer: OptimizerKind::Adam,
            seed: 0,
            checkpoint_every: 50,
            eval_batch: 500,
            out,
            init_weights: None,
            device: Device::flex(),
        }
    }
}

/// What went wrong in training or evaluation.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A file could not be written or read.
    #[error(transparent)]
    File(#[from] FileError),
    /// The forward solve of the ODE block failed.
    #[error("epoch {epoch}, batch {batch}: forward solve failed: {source}")]
    Solve {
        /// Epoch (1-based).
        epoch: usize,
        /// Batch in the epoch (1-based; 0 in evaluation).
        batch: usize,
        /// Cause.
        source: BlockError,
    },
    /// The backward solve failed or the loss is not finite; no update was made.
    #[error("epoch {epoch}, batch {batch}: {reason}")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Batch in the epoch (1-based).
        batch: usize,
        /// What happened.
        reason: String,
    },
    /// The checkpoint in the output folder does not fit these settings or is unreadable.
    #[error("{path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Nothing to train on.
    #[error("the training set is empty")]
    Empty,
    /// Data-parallel training: a collective failed, the ranks disagree, or another rank failed.
    #[error("distributed training: {0}")]
    Distributed(#[from] CommError),
    /// The data or the settings cannot be trained on (images not 28 x 28, no test images, a
    /// batch size of 0, a learning rate that is not positive).
    #[error("{0}")]
    Settings(String),
}

/// One training step's report (for progress bars).
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Batch in the epoch (1-based).
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Mean cross-entropy of the batch.
    pub loss: f64,
    /// Forward evaluations of the ODE block (0 for the ResNet).
    pub nfe_forward: usize,
    /// Backward evaluations of the ODE block's dynamics (adjoint: the reverse solve of `y`).
    pub nfe_backward: usize,
    /// Vector-Jacobian products of the dynamics in the backward pass.
    pub nvjp_backward: usize,
    /// DEQ: the largest relative residual of the forward solve (0 for other models).
    pub residual: f64,
    /// Wall time of the step (forward, backward, update), milliseconds.
    pub ms: f64,
}

/// Metrics of one finished epoch (one line of `metrics.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training cross-entropy.
    pub train_loss: f64,
    /// Training accuracy (fraction) on the batches as they were seen.
    pub train_accuracy: f64,
    /// Accuracy (fraction) on the test set.
    pub test_accuracy: f64,
    /// Mean forward evaluations per test batch (ODE models).
    pub test_nfe: f64,
    /// Mean forward evaluations per training batch.
    pub nfe_forward: f64,
    /// Mean backward evaluations of the dynamics per training batch.
    pub nfe_backward: f64,
    /// Mean vector-Jacobian products per training batch.
    pub nvjp_backward: f64,
    /// Mean milliseconds per training step.
    pub ms_per_batch: f64,
    /// Training wall time of the epoch, seconds (without evaluation; summed over resumes).
    pub train_seconds: f64,
    /// Evaluation wall time, seconds.
    pub eval_seconds: f64,
    /// Peak resident memory of the process during the epoch, MiB (`VmHWM`; reset at the epoch
    /// start where the kernel allows).
    pub peak_rss_mib: f64,
    /// Training examples per epoch.
    pub examples: usize,
    /// DEQ: share of training rows whose forward solve reached the iteration cap (they go on
    /// with their last iterate); 0 for other models.
    #[serde(default)]
    pub unconverged_share: f64,
    /// DEQ: mean over training batches of the forward solve's largest relative residual.
    #[serde(default)]
    pub forward_residual: f64,
    /// DEQ: mean forward iterations per training row (`nfe_forward` is the deepest row's).
    #[serde(default)]
    pub forward_row_iterations: f64,
    /// DEQ: mean backward-solve iterations per training row.
    #[serde(default)]
    pub backward_row_iterations: f64,
    /// Distributed runs: mean milliseconds per step in the gradient all-reduce (including the
    /// wait for the slowest rank); 0 for one process.
    #[serde(default)]
    pub allreduce_ms_per_batch: f64,
}

/// Result of [`evaluate`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EvalResult {
    /// Fraction of correctly classified examples.
    pub accuracy: f64,
    /// Mean forward evaluations of the ODE block per batch (0 for the ResNet); DEQ: mean
    /// iterations of the forward solve per batch (its deepest row).
    pub nfe: f64,
    /// Examples evaluated.
    pub examples: usize,
    /// DEQ: share of test rows whose forward solve reached the cap (0 for other models).
    pub unconverged_share: f64,
    /// DEQ: mean forward iterations per test row (`nfe` counts the deepest row of each batch).
    pub row_iterations: f64,
}

/// Running sums of an epoch in progress (saved in checkpoints).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Accum {
    loss: f64,
    correct: usize,
    seen: usize,
    batches: usize,
    nfe_forward: usize,
    nfe_backward: usize,
    nvjp_backward: usize,
    ms: f64,
    seconds: f64,
    #[serde(default)]
    rows: usize,
    #[serde(default)]
    unconverged: usize,
    #[serde(default)]
    residual: f64,
    #[serde(default)]
    row_evaluations: usize,
    #[serde(default)]
    backward_row_evaluations: usize,
    #[serde(default)]
    allreduce_ms: f64,
}

/// The checkpoint's JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    model: String,
    seed: u64,
    batch_size: usize,
    examples: usize,
    optimizer: OptimizerKind,
    /// Epoch in progress (0-based) and the next batch in it.
    epoch: usize,
    batch: usize,
    seq: u64,
    weights: String,
    optim: String,
    accum: Accum,
    history: Vec<EpochMetrics>,
    /// The learning rate (absent in checkpoints of earlier versions).
    #[serde(default)]
    lr: Option<f64>,
    /// Ranks of the run that wrote it (1 for single-process runs and earlier versions). The
    /// updates do not depend on it (see [`Trainer::new_distributed`]).
    #[serde(default = "one")]
    world_size: usize,
}

fn one() -> usize {
    1
}

const CHECKPOINT: &str = "checkpoint.json";

/// Peak resident memory of this process in MiB (`VmHWM` of `/proc/self/status`; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Reset the peak-RSS counter (Linux >= 4.0; silently does nothing elsewhere).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Labels as a one-hot `[n, 10]` tensor.
pub(crate) fn one_hot(labels: &[u8], device: &Device) -> Tensor<2> {
    let mut v = vec![0.0f32; labels.len() * 10];
    for (i, &l) in labels.iter().enumerate() {
        v[i * 10 + l as usize] = 1.0;
    }
    Tensor::<2>::from_data(TensorData::new(v, [labels.len(), 10]), (device, DType::F32))
}

/// Number of rows whose largest logit is at the label.
fn count_correct(logits: Tensor<2>, labels: &[u8]) -> usize {
    let v: Vec<f32> = logits.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    v.chunks(10)
        .zip(labels)
        .filter(|(row, l)| {
            row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 == **l as usize
        })
        .count()
}

/// Accuracy of `model` on `split` (on the model's device without autodiff, evaluation settings
/// of the ODE block), in
/// batches of `batch` examples. `on_batch(done, total)` reports progress. `stop` is polled
/// between batches: once it is set the evaluation ends with `Ok(None)`. An empty split is an
/// error (an accuracy of nothing is not 0).
pub fn evaluate(
    model: &MnistNet,
    split: &Split,
    batch: usize,
    stop: &AtomicBool,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<Option<EvalResult>, BlockError> {
    if split.is_empty() {
        return Err(SolveError::Shape("no examples to evaluate".into()).into());
    }
    let model = model.clone().valid();
    let device = model.devices().into_iter().next().unwrap_or_else(Device::flex);
    let n = split.len();
    let per = split.images.image_len();
    let (mut correct, mut nfe, mut batches, mut unconverged, mut row_evals) = (0, 0, 0, 0, 0);
    let batch = batch.max(1);
    for start in (0..n).step_by(batch) {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let end = (start + batch).min(n);
        let x = images_tensor(&split.images.pixels[start * per..end * per], &device);
        let f = model.forward(x)?;
        correct += count_correct(f.logits, &split.labels[start..end]);
        nfe += f.nfe;
        unconverged += f.deq.as_ref().map_or(0, |s| s.row_iterations.len() - s.converged);
        row_evals += f.deq.map_or(0, |s| s.row_evaluations);
        batches += 1;
        on_batch(end, n);
    }
    Ok(Some(EvalResult {
        accuracy: correct as f64 / n as f64,
        nfe: nfe as f64 / batches.max(1) as f64,
        examples: n,
        unconverged_share: unconverged as f64 / n as f64,
        row_iterations: row_evals as f64 / n as f64,
    }))
}

/// The example order of epoch `epoch` (0-based): a permutation seeded by `(seed, epoch)`.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (epoch as u64 + 1));
    idx.shuffle(&mut rng);
    idx
}

/// A training run: the model, the optimiser and the progress, resumable from the output folder.
pub struct Trainer {
    /// Settings.
    pub cfg: TrainConfig,
    /// The model (on the autodiff device).
    pub model: MnistNet,
    opt: ModuleOptimizer,
    device: Device,
    train: Split,
    test: Split,
    epoch: usize,
    batch: usize,
    seq: u64,
    accum: Accum,
    /// Metrics of the finished epochs.
    pub history: Vec<EpochMetrics>,
    comm: Arc<dyn Communicator>,
    /// Ranks `!= 0` resume from a private copy of rank 0's checkpoint, removed on drop.
    private_dir: Option<PathBuf>,
}

impl Drop for Trainer {
    fn drop(&mut self) {
        if let Some(d) = &self.private_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A step's local outcome on one rank, before the all-reduce.
struct LocalStep {
    grads: GradientsParams,
    loss_sum: f64,
    correct: usize,
    nfe: usize,
    nfe_b: usize,
    nvjp_b: usize,
    deq: Option<nodal::deq::DeqStats>,
    backward_rows: usize,
}

impl LocalStep {
    fn empty() -> Self {
        Self { grads: GradientsParams::new(), loss_sum: 0.0, correct: 0, nfe: 0, nfe_b: 0, nvjp_b: 0, deq: None, backward_rows: 0 }
    }
}

/// How [`Trainer::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All epochs done.
    Finished,
    /// Stopped on request after saving a checkpoint.
    Interrupted,
}

impl Trainer {
    /// A run in `cfg.out`: resumed from its checkpoint when there is one (which must have been
    /// made with the same model, seed, batch size, optimiser and training-set size), fresh
    /// otherwise.
    pub fn new(cfg: TrainConfig, train: Split, test: Split) -> Result<Self, TrainError> {
        if train.is_empty() {
            return Err(TrainError::Empty);
        }
        for (name, split) in [("training", &train), ("test", &test)] {
            let im = &split.images;
            if (im.rows, im.cols) != (IMAGE_SIDE, IMAGE_SIDE) {
                return Err(TrainError::Settings(format!(
                    "{name} images are {}x{}; the models take {IMAGE_SIDE}x{IMAGE_SIDE}",
                    im.rows, im.cols
                )));
            }
        }
        if test.is_empty() {
            return Err(TrainError::Settings("the test set is empty: every epoch ends with a test evaluation".into()));
        }
        if cfg.batch_size == 0 || cfg.eval_batch == 0 {
            return Err(TrainError::Settings("batch sizes must be at least 1".into()));
        }
        if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
            return Err(TrainError::Settings(format!("the learning rate must be positive and finite (got {})", cfg.lr)));
        }
        std::fs::create_dir_all(&cfg.out).map_err(|source| FileError::Io { path: cfg.out.clone(), source })?;
        let device = cfg.device.clone().autodiff();
        let mut model = cfg.model.init_seeded(&device, cfg.seed);
        if let Some(w) = &cfg.init_weights {
            model = load_weights(model, w)?;
        }
        let opt = match cfg.optimizer {
            OptimizerKind::Adam => AdamConfig::new().with_epsilon(1e-8).init(),
            OptimizerKind::Sgd => SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_dampening(0.0))).init(),
        };
        let mut t = Self {
            cfg,
            model,
            opt,
            device,
            train,
            test,
            epoch: 0,
            batch: 0,
            seq: 0,
            accum: Accum::default(),
            history: Vec::new(),
            comm: Arc::new(SingleProcess),
            private_dir: None,
        };
        t.resume()?;
        Ok(t)
    }

    /// A data-parallel run: this process is rank `comm.rank()` of `comm.size()`. Every rank must
    /// be given the same settings and data (checked: sizes, seed, batch size, learning rate, and a
    /// checksum of the weights after initialisation or resumption). Each global batch of the
    /// seeded order is cut into [`shard_range`] shards; each rank differentiates
    /// `sum over its rows of the loss / B` (`B` the global batch) and the gradients are summed by
    /// one all-reduce, so every rank applies the same update, the one a single process makes on
    /// the whole batch (up to the order of additions) when the forward pass treats rows
    /// independently. Rank 0 alone writes metrics, checkpoints and weights into `cfg.out`; it
    /// reads the checkpoint there and broadcasts its three files, which the other ranks resume
    /// from in a private folder, so no shared file system is needed. A checkpoint written with
    /// another number of ranks resumes too (the updates do not depend on it). Evaluation is
    /// sharded the same way and its counts summed.
    pub fn new_distributed(mut cfg: TrainConfig, train: Split, test: Split, comm: Arc<dyn Communicator>) -> Result<Self, TrainError> {
        let c = comm.as_ref();
        if c.size() == 1 {
            let mut t = Self::new(cfg, train, test)?;
            t.comm = comm;
            return Ok(t);
        }
        c.check_same("the number of training images", train.len() as f64)?;
        c.check_same("the number of test images", test.len() as f64)?;
        c.check_same("the batch size", cfg.batch_size as f64)?;
        c.check_same("the seed", cfg.seed as f64)?;
        c.check_same("the learning rate", cfg.lr)?;
        c.check_same("the epochs", cfg.epochs as f64)?;
        c.check_same("the model", name_code(cfg.model.kind.name()))?;
        // Rank 0's checkpoint files, broadcast as one message: [n][len name bytes]...
        let mut pack = Vec::new();
        let read = if c.is_root() { pack_checkpoint(&cfg.out).map(|p| pack = p) } else { Ok(()) };
        c.agree(read.map_err(|e| e.to_string()))?;
        c.broadcast_bytes(&mut pack, 0)?;
        let mut private_dir = None;
        if !c.is_root() {
            let dir = std::env::temp_dir().join(format!("nodal-rank-{}-{}", c.rank(), std::process::id()));
            let unpacked = unpack_checkpoint(&pack, &dir);
            c.agree(unpacked.as_ref().map(|_| ()).map_err(|e| e.to_string()))?;
            cfg.out = dir.clone();
            private_dir = Some(dir);
        } else {
            c.agree(Ok(()))?;
        }
        let t = Self::new(cfg, train, test);
        c.agree(t.as_ref().map(|_| ()).map_err(|e| e.to_string()))?;
        let mut t = t?;
        t.comm = comm;
        t.private_dir = private_dir;
        let w = crate::mnist::models::flat_params(&t.model);
        let (sum, sq) = w.iter().fold((0.0f64, 0.0f64), |(a, b), &x| (a + x as f64, b + (x as f64) * (x as f64)));
        let c = t.comm.clone();
        c.check_same("the sum of the weights", sum)?;
        c.check_same("the sum of the squared weights", sq)?;
        c.check_same("the position (epoch * 1e6 + batch)", (t.epoch * 1_000_000 + t.batch) as f64)?;
        Ok(t)
    }

    /// This run's communicator (a single process unless made by [`Trainer::new_distributed`]).
    pub fn comm(&self) -> &dyn Communicator {
        self.comm.as_ref()
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.history.len()
    }

    /// `(epoch, batch)`: the epoch in progress (0-based) and its next batch.
    pub fn position(&self) -> (usize, usize) {
        (self.epoch, self.batch)
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.cfg.batch_size.max(1))
    }

    fn resume(&mut self) -> Result<(), TrainError> {
        let path = self.cfg.out.join(CHECKPOINT);
        if !path.is_file() {
            return Ok(());
        }
        let bad = |reason: String| TrainError::Checkpoint { path: path.clone(), reason };
        let text = read_text_capped(&path, MAX_JSON_BYTES, "a checkpoint").map_err(|e| bad(e.to_string()))?;
        let ck: Checkpoint = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let want = (self.cfg.model.kind.name(), self.cfg.seed, self.cfg.batch_size, self.train.len(), self.cfg.optimizer);
        let have = (ck.model.as_str(), ck.seed, ck.batch_size, ck.examples, ck.optimizer);
        if want != have {
            return Err(bad(format!(
                "made with (model, seed, batch size, examples, optimizer) = {have:?}, this run has {want:?}; use another --out or delete the checkpoint"
            )));
        }
        if let Some(lr) = ck.lr
            && lr != self.cfg.lr
        {
            return Err(bad(format!(
                "made with learning rate {lr}, this run has {}; resume with --lr {lr}, or start from its weights with --init and another --out",
                self.cfg.lr
            )));
        }
        if ck.batch > self.batches_per_epoch() {
            return Err(bad(format!("batch {} is past the {} batches of an epoch", ck.batch, self.batches_per_epoch())));
        }
        let model = std::mem::replace(&mut self.model, self.cfg.model.init(&self.device));
        self.model = load_weights(model, &self.cfg.out.join(&ck.weights))?;
        let optim_path = self.cfg.out.join(&ck.optim);
        let bytes = read_capped(&optim_path, MAX_WEIGHTS_BYTES, "an optimiser state")?;
        let opt = std::mem::replace(&mut self.opt, AdamConfig::new().init());
        self.opt = opt
            .from_bytes(Bytes::from_bytes_vec(bytes))
            .map_err(|e| TrainError::Checkpoint { path: optim_path, reason: format!("{e:?}") })?;
        (self.epoch, self.batch, self.seq, self.accum, self.history) = (ck.epoch, ck.batch, ck.seq, ck.accum, ck.history);
        Ok(())
    }

    /// Save a checkpoint of the current position (see the module docs for the file protocol).
    pub fn save_checkpoint(&mut self) -> Result<(), TrainError> {
        if !self.comm.is_root() {
            self.seq += 1;
            return Ok(());
        }
        let out = &self.cfg.out;
        let seq = self.seq + 1;
        let (weights, optim) = (format!("ckpt-{seq}.safetensors"), format!("ckpt-{seq}.optim"));
        save_weights(&self.model, &out.join(&weights), &[("epoch", self.epoch.to_string()), ("batch", self.batch.to_string())], true)?;
        let bytes = self.opt.into_bytes().map_err(|e| TrainError::Checkpoint { path: out.join(&optim), reason: format!("{e:?}") })?;
        write_atomic(&out.join(&optim), &bytes)?;
        let ck = Checkpoint {
            model: self.cfg.model.kind.name().into(),
            seed: self.cfg.seed,
            batch_size: self.cfg.batch_size,
            examples: self.train.len(),
            optimizer: self.cfg.optimizer,
            epoch: self.epoch,
            batch: self.batch,
            seq,
            weights,
            optim,
            accum: self.accum.clone(),
            history: self.history.clone(),
            lr: Some(self.cfg.lr),
            world_size: self.comm.size(),
        };
        let json =
            serde_json::to_string_pretty(&ck).map_err(|e| TrainError::Checkpoint { path: out.join(CHECKPOINT), reason: e.to_string() })?;
        write_atomic(&out.join(CHECKPOINT), json.as_bytes())?;
        if self.seq > 0 {
            let _ = std::fs::remove_file(out.join(format!("ckpt-{}.safetensors", self.seq)));
            let _ = std::fs::remove_file(out.join(format!("ckpt-{}.optim", self.seq)));
        }
        self.seq = seq;
        Ok(())
    }

    /// Forward and backward on this rank's rows `idx` of a global batch of `global` examples:
    /// the gradient of `sum over idx of the cross-entropy / global` (plus the kinetic penalty,
    /// weighted by this rank's share of the batch). An empty shard gives no gradients.
    fn local_step(&mut self, idx: &[usize], global: usize, epoch: usize, batch: usize) -> Result<LocalStep, TrainError> {
        let mut out = LocalStep::empty();
        if idx.is_empty() {
            return Ok(out);
        }
        let per = self.train.images.image_len();
        let mut pixels = Vec::with_capacity(idx.len() * per);
        let mut labels = Vec::with_capacity(idx.len());
        for &i in idx {
            pixels.extend_from_slice(&self.train.images.pixels[i * per..(i + 1) * per]);
            labels.push(self.train.labels[i]);
        }
        let x = images_tensor(&pixels, &self.device);
        let target = one_hot(&labels, &self.device);
        let Forward { logits, nfe, backward, penalties, deq } =
            self.model.forward(x).map_err(|source| TrainError::Solve { epoch: epoch + 1, batch: batch + 1, source })?;
        let b = global as f64;
        let loss = (log_softmax(logits.clone(), 1) * target).sum().neg() / b;
        let loss_v: f64 = loss.clone().into_scalar::<f32>() as f64;
        let diverged = |reason: String| TrainError::Diverged { epoch: epoch + 1, batch: batch + 1, reason };
        if !loss_v.is_finite() {
            return Err(diverged(format!("loss is {loss_v}")));
        }
        out.correct = count_correct(logits.inner(), &labels);
        // The reported loss is the cross-entropy; the objective adds the weighted penalty (a
        // mean over this rank's rows, so weighted by their share of the global batch).
        let share = idx.len() as f64 / b;
        let objective = match penalties {
            Some(p) => loss + p.sum() * (self.cfg.model.kinetic * share),
            None => loss,
        };
        let grads = objective.backward();
        if let Some(report) = &backward {
            match report.work() {
                Some(Ok(w)) => (out.nfe_b, out.nvjp_b) = w,
                Some(Err(e)) => return Err(diverged(format!("backward solve failed: {e}"))),
                None => return Err(diverged("the implicit block's backward did not run".into())),
            }
        }
        out.backward_rows = backward.as_ref().and_then(|b| b.deq_stats()).map_or(0, |s| s.row_evaluations);
        out.grads = GradientsParams::from_grads(grads, &self.model);
        out.loss_sum = loss_v * b;
        out.nfe = nfe;
        out.deq = deq;
        Ok(out)
    }

    /// One optimisation step on the examples `idx` of the training set (this rank's shard of
    /// them when distributed; the gradients are then summed over ranks before the update).
    fn step(&mut self, idx: &[usize], epoch: usize, batch: usize) -> Result<BatchReport, TrainError> {
        let start = Instant::now();
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let mine = &idx[shard_range(idx.len(), rank, size)];
        let local = self.local_step(mine, idx.len(), epoch, batch);
        let mut l = if size == 1 {
            local?
        } else {
            // Every rank reaches the all-reduce, failed or not, so that none waits forever; a
            // failure is then agreed on and reported by every rank.
            let (step, local_err) = match local {
                Ok(s) => (s, None),
                Err(e) => (LocalStep::empty(), Some(e)),
            };
            let failed = f32::from(u8::from(local_err.is_some()));
            let mut extra = [step.loss_sum as f32, step.correct as f32, failed, step.nfe as f32, step.nfe_b as f32, step.nvjp_b as f32];
            let t_comm = Instant::now();
            let grads = all_reduce_gradients(step.grads, &self.model, self.comm.as_ref(), &mut extra)?;
            self.accum.allreduce_ms += t_comm.elapsed().as_secs_f64() * 1e3;
            if extra[2] > 0.0 {
                let agreed = self.comm.agree(local_err.as_ref().map_or(Ok(()), |e| Err(e.to_string())));
                return Err(match (local_err, agreed) {
                    (Some(e), _) => e,
                    (None, Err(e)) => TrainError::Distributed(e),
                    (None, Ok(())) => TrainError::Distributed(CommError::Mismatch("a failure was counted that no rank reports".into())),
                });
            }
            let n = size as f32;
            LocalStep {
                grads,
                loss_sum: extra[0] as f64,
                correct: extra[1].round() as usize,
                nfe: (extra[3] / n).round() as usize,
                nfe_b: (extra[4] / n).round() as usize,
                nvjp_b: (extra[5] / n).round() as usize,
                deq: step.deq,
                backward_rows: step.backward_rows,
            }
        };
        let gp = std::mem::replace(&mut l.grads, GradientsParams::new());
        self.model = self.opt.step(self.cfg.lr, self.model.clone(), gp);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let b = idx.len() as f64;
        let a = &mut self.accum;
        a.loss += l.loss_sum;
        a.correct += l.correct;
        a.seen += idx.len();
        a.batches += 1;
        a.nfe_forward += l.nfe;
        a.nfe_backward += l.nfe_b;
        a.nvjp_backward += l.nvjp_b;
        let residual = l.deq.as_ref().map_or(0.0, |s| s.max_residual());
        if let Some(s) = &l.deq {
            a.rows += s.row_iterations.len();
            a.unconverged += s.row_iterations.len() - s.converged;
            a.residual += residual;
            a.row_evaluations += s.row_evaluations;
        }
        a.backward_row_evaluations += l.backward_rows;
        a.ms += ms;
        a.seconds += ms / 1e3;
        let batches = self.batches_per_epoch();
        Ok(BatchReport {
            epoch: epoch + 1,
            batch: batch + 1,
            batches,
            loss: l.loss_sum / b,
            nfe_forward: l.nfe,
            nfe_backward: l.nfe_b,
            nvjp_backward: l.nvjp_b,
            residual,
            ms,
        })
    }

    /// Train until `cfg.epochs` epochs are done or `stop` is set (then a checkpoint is saved and
    /// [`Outcome::Interrupted`] returned). `on_batch` sees every step, `on_eval(done, total)`
    /// the test evaluation's progress, `on_epoch` every finished epoch. Writes
    /// `metrics.jsonl` after every epoch and `model.safetensors` at the end.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        on_batch: &mut dyn FnMut(&BatchReport),
        on_eval: &mut dyn FnMut(usize, usize),
        on_epoch: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<Outcome, TrainError> {
        let bs = self.cfg.batch_size.max(1);
        let n = self.train.len();
        let batches = self.batches_per_epoch();
        while self.epoch < self.cfg.epochs {
            if self.batch == 0 {
                reset_peak_rss();
            }
            let order = epoch_order(n, self.cfg.seed, self.epoch);
            while self.batch < batches {
                // Distributed: every rank stops at the same step when any rank was signalled.
                if self.comm.any(stop.load(Ordering::SeqCst))? {
                    self.save_checkpoint()?;
                    return Ok(Outcome::Interrupted);
                }
                let idx = &order[self.batch * bs..((self.batch + 1) * bs).min(n)];
                let r = self.step(idx, self.epoch, self.batch)?;
                self.batch += 1;
                on_batch(&r);
                if self.cfg.checkpoint_every > 0 && self.batch % self.cfg.checkpoint_every == 0 && self.batch < batches {
                    self.save_checkpoint()?;
                }
            }
            let t0 = Instant::now();
            let ev = self.evaluate_sharded(stop, on_eval)?;
            // Interrupted during the evaluation: the epoch's training is saved (batch =
            // batches), and a resumed run starts with this evaluation.
            let Some(ev) = ev else {
                self.save_checkpoint()?;
                return Ok(Outcome::Interrupted);
            };
            let a = std::mem::take(&mut self.accum);
            let nb = a.batches.max(1) as f64;
            let m = EpochMetrics {
                epoch: self.epoch + 1,
                train_loss: a.loss / a.seen.max(1) as f64,
                train_accuracy: a.correct as f64 / a.seen.max(1) as f64,
                test_accuracy: ev.accuracy,
                test_nfe: ev.nfe,
                nfe_forward: a.nfe_forward as f64 / nb,
                nfe_backward: a.nfe_backward as f64 / nb,
                nvjp_backward: a.nvjp_backward as f64 / nb,
                ms_per_batch: a.ms / nb,
                train_seconds: a.seconds,
                eval_seconds: t0.elapsed().as_secs_f64(),
                peak_rss_mib: peak_rss_mib(),
                examples: n,
                unconverged_share: a.unconverged as f64 / a.rows.max(1) as f64,
                forward_residual: a.residual / nb,
                forward_row_iterations: a.row_evaluations as f64 / a.rows.max(1) as f64,
                backward_row_iterations: a.backward_row_evaluations as f64 / a.rows.max(1) as f64,
                allreduce_ms_per_batch: a.allreduce_ms / nb,
            };
            self.history.push(m.clone());
            (self.epoch, self.batch) = (self.epoch + 1, 0);
            self.write_metrics()?;
            self.save_checkpoint()?;
            on_epoch(&m);
        }
        let last = self.history.last().map(|m| m.test_accuracy.to_string()).unwrap_or_default();
        let meta = [("epochs", self.history.len().to_string()), ("test_accuracy", last), ("seed", self.cfg.seed.to_string())];
        if self.comm.is_root() {
            save_weights(&self.model, &self.cfg.out.join("model.safetensors"), &meta, false)?;
        }
        if stop.load(Ordering::SeqCst) {
            // The signal came while the last epoch was being finished: everything is saved.
            return Ok(Outcome::Interrupted);
        }
        Ok(Outcome::Finished)
    }

    /// The test evaluation: the whole test set on one rank; distributed, each rank takes its
    /// [`shard_range`] of it and the counts are summed (every rank gets the same result). A
    /// distributed evaluation is not interrupted midway (ranks must agree on stopping); the
    /// signal is seen at the next step.
    fn evaluate_sharded(&self, stop: &AtomicBool, on_eval: &mut dyn FnMut(usize, usize)) -> Result<Option<EvalResult>, TrainError> {
        let solve_err = |source| TrainError::Solve { epoch: self.epoch + 1, batch: 0, source };
        let (rank, size) = (self.comm.rank(), self.comm.size());
        if size == 1 {
            return evaluate(&self.model, &self.test, self.cfg.eval_batch, stop, on_eval).map_err(solve_err);
        }
        let range = shard_range(self.test.len(), rank, size);
        let per = self.test.images.image_len();
        let part = Split {
            images: super::idx::Images {
                count: range.len(),
                rows: self.test.images.rows,
                cols: self.test.images.cols,
                pixels: self.test.images.pixels[range.start * per..range.end * per].to_vec(),
            },
            labels: self.test.labels[range.clone()].to_vec(),
        };
        let never = AtomicBool::new(false);
        let local = if part.is_empty() { Ok(None) } else { evaluate(&self.model, &part, self.cfg.eval_batch, &never, on_eval) };
        let failed = local.as_ref().err().map(|e| e.to_string());
        self.comm.agree(failed.map_or(Ok(()), Err)).map_err(|e| match local.as_ref() {
            Err(_) => TrainError::Settings(e.to_string()),
            Ok(_) => TrainError::Distributed(e),
        })?;
        let local = local.map_err(solve_err)?;
        let n = part.len() as f64;
        let batches = part.len().div_ceil(self.cfg.eval_batch.max(1)) as f64;
        let mut v = match local {
            Some(r) => [(r.accuracy * n).round(), r.nfe * batches, batches, (r.unconverged_share * n).round(), r.row_iterations * n, n],
            None => [0.0; 6],
        };
        self.comm.all_reduce_sum_f64(&mut v)?;
        let total = v[5].max(1.0);
        Ok(Some(EvalResult {
            accuracy: v[0] / total,
            nfe: v[1] / v[2].max(1.0),
            examples: v[5] as usize,
            unconverged_share: v[3] / total,
            row_iterations: v[4] / total,
        }))
    }

    fn write_metrics(&self) -> Result<(), TrainError> {
        if !self.comm.is_root() {
            return Ok(());
        }
        let mut s = String::new();
        for m in &self.history {
            s.push_str(&serde_json::to_string(m).unwrap_or_default());
            s.push('\n');
        }
        Ok(write_atomic(&self.cfg.out.join("metrics.jsonl"), s.as_bytes())?)
    }
}

/// A stable number for a model name (compared across ranks).
fn name_code(name: &str) -> f64 {
    name.bytes().fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(b as u64)) as f64
}

/// The checkpoint in `out` (its JSON and the two files it names) as one message, empty when
/// there is none: `[count u64] ([name len u64][name][data len u64][data])*`.
fn pack_checkpoint(out: &Path) -> Result<Vec<u8>, TrainError> {
    let path = out.join(CHECKPOINT);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let bad = |reason: String| TrainError::Checkpoint { path: path.clone(), reason };
    let text = read_text_capped(&path, MAX_JSON_BYTES, "a checkpoint").map_err(|e| bad(e.to_string()))?;
    let ck: Checkpoint = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut files = vec![(CHECKPOINT.to_string(), text.into_bytes())];
    for name in [&ck.weights, &ck.optim] {
        files.push((name.clone(), read_capped(&out.join(name), MAX_WEIGHTS_BYTES, "a checkpoint file")?));
    }
    let mut buf = (files.len() as u64).to_le_bytes().to_vec();
    for (name, data) in files {
        for part in [name.as_bytes(), &data[..]] {
            buf.extend_from_slice(&(part.len() as u64).to_le_bytes());
            buf.extend_from_slice(part);
        }
    }
    Ok(buf)
}

/// Writes the files of [`pack_checkpoint`]'s message into a fresh folder `dir` (created; any
/// earlier content removed). Names must be plain file names.
fn unpack_checkpoint(pack: &[u8], dir: &Path) -> Result<(), TrainError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|source| FileError::Io { path: dir.to_path_buf(), source })?;
    let bad =
        |reason: &str| TrainError::Checkpoint { path: dir.join(CHECKPOINT), reason: format!("rank 0's checkpoint message: {reason}") };
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], TrainError> {
        let s = pack.get(at..at + n).ok_or_else(|| bad("truncated"))?;
        at += n;
        Ok(s)
    };
    if pack.is_empty() {
        return Ok(());
    }
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize;
    let count = word(take(8)?);
    for _ in 0..count {
        let n = word(take(8)?);
        let name = String::from_utf8(take(n)?.to_vec()).map_err(|_| bad("a file name is not UTF-8"))?;
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(bad(&format!("unsafe file name {name:?}")));
        }
        let n = word(take(8)?);
        write_atomic(&dir.join(&name), take(n)?)?;
    }
    Ok(())
}

/// Mean milliseconds of a training step (forward, backward, optimiser update) at `batch`
/// examples, over `reps` steps after one warm-up step, on random images.
pub fn time_training_step(model: &ModelConfig, batch: usize, reps: usize) -> Result<f64, TrainError> {
    let images = super::idx::Images { count: batch, rows: 28, cols: 28, pixels: (0..batch * 784).map(|i| (i * 37 % 256) as u8).collect() };
    let labels = (0..batch).map(|i| (i % 10) as u8).collect();
    let split = Split { images, labels };
    let out = std::env::temp_dir().join(format!("nodal-mnist-timing-{}", std::process::id()));
    let mut cfg = TrainConfig::new(model.clone(), out.clone());
    cfg.batch_size = batch;
    let mut t = Trainer::new(cfg, split.clone(), split)?;
    let idx: Vec<usize> = (0..batch).collect();
    let mut total = 0.0;
    for r in 0..=reps {
        let ms = t.step(&idx, 0, r)?.ms;
        if r > 0 {
            total += ms;
        }
    }
    let _ = std::fs::remove_dir_all(out);
    Ok(total / reps.max(1) as f64)
}

/// One model's line of the results table (from its run's `summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ResultRow {
    /// Model name.
    pub model: String,
    /// Parameters.
    pub params: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Test accuracy (fraction).
    pub test_accuracy: f64,
    /// Mean forward evaluations per test batch (ODE models).
    pub test_nfe: f64,
    /// Mean forward evaluations per training batch.
    pub nfe_forward: f64,
    /// Mean backward evaluations (or VJPs, whichever is larger) per training batch.
    pub nfe_backward: f64,
    /// Mean milliseconds per training step.
    pub ms_per_batch: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
}

/// The results table as markdown: parameters, test error, evaluations, time and memory per model.
pub fn results_markdown(rows: &[ResultRow]) -> String {
    let mut s = String::from(
        "| model | params | epochs | test error (%) | NFE forward (test) | NFE forward (train) | NFE backward (train) | ms / batch | peak RSS (MiB) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} |\n",
            r.model,
            r.params,
            r.epochs,
            100.0 * (1.0 - r.test_accuracy),
            r.test_nfe,
            r.nfe_forward,
            r.nfe_backward,
            r.ms_per_batch,
            r.peak_rss_mib
        ));
    }
    s
}

/// The kind named in a weights file's metadata.
pub fn kind_of_weights(path: &Path) -> Result<Option<ModelKind>, FileError> {
    Ok(super::models::read_metadata(path)?.get(super::models::META_MODEL).and_then(|s| ModelKind::from_name(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mnist::idx::Images;

    /// A toy "MNIST" whose class is written in the image: a centred bright square of side
    /// `2 + 2 * class`, with seeded noise.
    fn toy(n: usize, seed: u64) -> Split {
        use rand::Rng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut pixels = vec![0u8; n * 784];
        let mut labels = Vec::new();
        for i in 0..n {
            let l = rng.gen_range(0..10u8);
            labels.push(l);
            let side = 2 + 2 * l as usize;
            let r0 = 14 - side / 2;
            for r in r0..r0 + side {
                for c in r0..r0 + side {
                    pixels[i * 784 + r * 28 + c] = 255;
                }
            }
            for p in &mut pixels[i * 784..(i + 1) * 784] {
                *p = p.saturating_add(rng.gen_range(0..40));
            }
        }
        Split { images: Images { count: n, rows: 28, cols: 28, pixels }, labels }
    }

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("nodal-mnist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    /// `init_weights` starts from the given file instead of the seeded initialisation, and a
    /// missing file is a typed error.
    #[test]
    fn training_can_start_from_saved_weights() {
        let dir = tmp("init");
        std::fs::create_dir_all(&dir).unwrap();
        let source = ModelConfig::new(ModelKind::RkNet).init_seeded(&Device::flex(), 5);
        let w = dir.join("w.safetensors");
        save_weights(&source, &w, &[("model", "rknet".into())], false).unwrap();
        let mut cfg = TrainConfig::new(ModelConfig::new(ModelKind::RkNet), dir.join("run"));
        cfg.init_weights = Some(w.clone());
        let t = Trainer::new(cfg.clone(), toy(8, 1), toy(4, 2)).unwrap();
        use crate::mnist::models::flat_params;
        assert_eq!(flat_params(&t.model), flat_params(&source));
        let fresh = ModelConfig::new(ModelKind::RkNet).init_seeded(&Device::flex(), 0);
        assert_ne!(flat_params(&fresh), flat_params(&source), "the seeds give different weights");
        cfg.init_weights = Some(dir.join("missing.safetensors"));
        cfg.out = dir.join("run2");
        assert!(Trainer::new(cfg, toy(8, 1), toy(4, 2)).is_err());
    }

    /// Milliseconds per training step at batch 128 for each model (not a correctness test:
    /// `cargo test --release -p nodal --lib time_training_steps -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn time_training_steps() {
        for kind in ModelKind::ALL {
            let ms = time_training_step(&ModelConfig::new(kind), 128, 3).unwrap();
            eprintln!("{}: {ms:.0} ms per training step at batch 128", kind.name());
        }
    }

    #[test]
    fn results_table_has_one_line_per_model() {
        let row = ResultRow {
            model: "odenet".into(),
            params: 208_266,
            epochs: 3,
            test_accuracy: 0.9912,
            test_nfe: 26.0,
            nfe_forward: 20.0,
            nfe_backward: 33.5,
            ms_per_batch: 1900.0,
            peak_rss_mib: 310.0,
        };
        let md = results_markdown(&[row.clone(), ResultRow { model: "resnet".into(), ..row }]);
        assert_eq!(md.lines().count(), 4);
        assert!(md.contains("| odenet | 208266 | 3 | 0.88 | 26.0 | 20.0 | 33.5 | 1900 | 310 |"), "{md}");
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(100, 3, 0);
        assert_eq!(a, epoch_order(100, 3, 0));
        assert_ne!(a, epoch_order(100, 3, 1));
        assert_ne!(a, epoch_order(100, 4, 0));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn resnet_learns_the_toy_task() {
        let out = tmp("learn");
        let mut cfg = TrainConfig::new(ModelConfig::new(ModelKind::ResNet), out.clone());
        (cfg.batch_size, cfg.epochs, cfg.checkpoint_every, cfg.lr) = (32, 2, 0, 1e-3);
        let mut t = Trainer::new(cfg, toy(192, 1), toy(100, 2)).unwrap();
        let stop = AtomicBool::new(false);
        let mut losses = Vec::new();
        let r = t.run(&stop, &mut |b| losses.push(b.loss), &mut |_, _| {}, &mut |_| {}).unwrap();
        assert_eq!(r, Outcome::Finished);
        assert_eq!(losses.len(), 12);
        let m = t.history.last().unwrap();
        // 12 Adam steps: well above chance (0.1), and the loss falls.
        assert!(m.test_accuracy > 0.3, "{m:?}");
        assert!(t.history[1].train_loss < t.history[0].train_loss, "{:?}", t.history);
        assert!(m.peak_rss_mib > 0.0);
        assert_eq!(std::fs::read_to_string(out.join("metrics.jsonl")).unwrap().lines().count(), 2);
        // The final weights evaluate to the same accuracy.
        let w = load_weights(ModelConfig::new(ModelKind::ResNet).init(&Device::flex()), &out.join("model.safetensors")).unwrap();
        let ev = evaluate(&w, &toy(100, 2), 50, &AtomicBool::new(false), &mut |_, _| {}).unwrap().unwrap();
        assert_eq!(ev.accuracy, m.test_accuracy);
        assert_eq!(kind_of_weights(&out.join("model.safetensors")).unwrap(), Some(ModelKind::ResNet));
        std::fs::remove_dir_all(&out).unwrap();
    }

    /// Trains `model` on `ranks` threads (a [`nodal_distributed::LocalGroup`]), each with its
    /// own trainer; `stop_after` interrupts every rank after that many steps. Returns each rank's
    /// final weights and outcome.
    fn train_on_ranks(
        model: &ModelConfig,
        ranks: usize,
        out: &Path,
        batch: usize,
        stop_after: Option<usize>,
        sgd: bool,
        epochs: usize,
    ) -> Vec<(Outcome, Vec<f32>, Vec<EpochMetrics>)> {
        let (train, test) = (toy(40, 3), toy(20, 4));
        let handles: Vec<_> = nodal_distributed::LocalGroup::new(ranks)
            .into_iter()
            .map(|c| {
                let (model, out, train, test) = (model.clone(), out.to_path_buf(), train.clone(), test.clone());
                std::thread::spawn(move || {
                    let mut cfg = TrainConfig::new(model, out);
                    (cfg.batch_size, cfg.epochs, cfg.checkpoint_every, cfg.eval_batch) = (batch, epochs, 2, 7);
                    if sgd {
                        (cfg.optimizer, cfg.lr) = (OptimizerKind::Sgd, 0.05);
                    }
                    let mut t = Trainer::new_distributed(cfg, train, test, Arc::new(c)).unwrap();
                    let stop = AtomicBool::new(false);
                    let mut seen = 0;
                    let r = t
                        .run(
                            &stop,
                            &mut |_| {
                                seen += 1;
                                if Some(seen) == stop_after {
                                    stop.store(true, Ordering::SeqCst);
                                }
                            },
                            &mut |_, _| {},
                            &mut |_| {},
                        )
                        .unwrap();
                    (r, crate::mnist::models::flat_params(&t.model), t.history.clone())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    /// Data-parallel training on 2 and 3 ranks (shards of 10+10 and 7+7+6 rows of each batch of
    /// 20) makes the single process's updates. What is left is f32 addition in another order
    /// (the weight gradients are sums over the shard's pixels, then over the ranks).
    ///
    /// - After the first step of SGD with momentum the weights differ from the single process's
    ///   by less than 1e-4 of the distance they travelled (~5e-3; seen: 1.5e-8 to 3e-8, one or
    ///   two f32 ulp). A wrong reduction (a missing average, a shard counted twice) would be
    ///   off by a fraction of the step itself.
    /// - Over more steps a ReLU network amplifies the round-off: a pre-activation within
    ///   round-off of 0 takes the other side, which changes the gradient by a finite amount.
    ///   With the direct convolution kernel this happens at the second step (1.0e-5 for the
    ///   RK-Net on 2 ranks, 2.7e-5 for the ResNet on 3: 1.3e-3 and 2.3e-3 of the distance
    ///   travelled; with the im2col kernel one ulp for two steps, then 1.2e-5 at step 3). After
    ///   the whole epoch (2 steps) the bound is therefore 1e-2 of the distance travelled, still
    ///   well below what a wrong reduction gives. Every rank holds the same weights, the test
    ///   accuracy and the mean loss agree, and only rank 0 writes files.
    ///
    /// SGD, because Adam divides by the gradient's running RMS: a parameter whose exact
    /// gradient is zero (a convolution bias followed by GroupNorm) gets round-off for a
    /// gradient, and Adam turns any round-off into a step of about `lr`. Two sums of the same
    /// gradients in different orders then move it differently, in one process too.
    #[test]
    fn data_parallel_ranks_make_the_single_process_updates() {
        for model in [ModelConfig::new(ModelKind::RkNet).with_step(0.5), ModelConfig::new(ModelKind::ResNet)] {
            let name = model.kind.name();
            let init = crate::mnist::models::flat_params(&model.init_seeded(&Device::flex(), 0));
            // The first step alone, at the tight bound.
            let first = train_on_ranks(&model, 1, &tmp(&format!("dp-first-single-{name}")), 20, Some(1), true, 1);
            let first_travelled = max_abs_diff(&first[0].1, &init);
            assert!(first_travelled > 1e-3, "{name}: the first step moved the weights by {first_travelled}");
            for ranks in [2, 3] {
                let runs = train_on_ranks(&model, ranks, &tmp(&format!("dp-first-{ranks}-{name}")), 20, Some(1), true, 1);
                let d = max_abs_diff(&runs[0].1, &first[0].1);
                assert!(
                    d < 1e-4 * first_travelled,
                    "{name}, {ranks} ranks, first step: weights differ by {d} (travelled {first_travelled})"
                );
            }
            let single_out = tmp(&format!("dp-single-{name}"));
            let single = train_on_ranks(&model, 1, &single_out, 20, None, true, 1);
            let (_, w1, h1) = &single[0];
            let travelled = max_abs_diff(w1, &init);
            assert!(travelled > 1e-3, "{name}: training moved the weights by {travelled}");
            for ranks in [2, 3] {
                let out = tmp(&format!("dp-{ranks}-{name}"));
                let runs = train_on_ranks(&model, ranks, &out, 20, None, true, 1);
                for (r, (outcome, w, h)) in runs.iter().enumerate() {
                    assert_eq!(*outcome, Outcome::Finished);
                    assert!(w == &runs[0].1, "{name}: rank {r} of {ranks} holds other weights than rank 0");
                    let d = max_abs_diff(w, w1);
                    assert!(d < 1e-2 * travelled, "{name}, {ranks} ranks: weights differ from one process by {d} (travelled {travelled})");
                    assert_eq!(h.len(), 1);
                    assert_eq!(h[0].test_accuracy, h1[0].test_accuracy);
                    assert!((h[0].train_loss - h1[0].train_loss).abs() < 1e-5, "{} vs {}", h[0].train_loss, h1[0].train_loss);
                    assert_eq!(h[0].train_accuracy, h1[0].train_accuracy);
                }
                assert!(out.join("model.safetensors").is_file() && out.join("metrics.jsonl").is_file());
                let ck: Checkpoint = serde_json::from_str(&std::fs::read_to_string(out.join(CHECKPOINT)).unwrap()).unwrap();
                assert_eq!(ck.world_size, ranks);
                std::fs::remove_dir_all(&out).unwrap();
            }
            std::fs::remove_dir_all(&single_out).unwrap();
        }
    }

    /// A distributed run interrupted mid-epoch resumes from rank 0's checkpoint (which the other
    /// ranks receive by broadcast) to the weights of an uninterrupted run: bit for bit with the
    /// same number of ranks (same sums in the same order; two epochs, 10 steps, interrupted at
    /// step 3), and within 1e-4 of the distance travelled with another. With another number of
    /// ranks the sums change order, which a ReLU network amplifies over steps (see the test
    /// above: up to 2e-4 by step 8), so that run is one epoch (5 steps), interrupted at step 3:
    /// two steps after the resume, as in the test above.
    #[test]
    fn a_distributed_run_resumes_from_rank_zeros_checkpoint() {
        let model = ModelConfig::new(ModelKind::ResNet);
        let init = crate::mnist::models::flat_params(&model.init_seeded(&Device::flex(), 0));
        for (resume_ranks, epochs) in [(2, 2), (3, 1)] {
            let whole_out = tmp(&format!("dp-whole-{resume_ranks}"));
            let whole = train_on_ranks(&model, 2, &whole_out, 8, None, true, epochs);
            let travelled = max_abs_diff(&whole[0].1, &init);
            assert!(travelled > 1e-3, "training moved the weights by {travelled}");
            let out = tmp(&format!("dp-resume-{resume_ranks}"));
            let first = train_on_ranks(&model, 2, &out, 8, Some(3), true, epochs);
            assert!(first.iter().all(|(o, _, _)| *o == Outcome::Interrupted));
            let resumed = train_on_ranks(&model, resume_ranks, &out, 8, None, true, epochs);
            for (o, w, _) in &resumed {
                assert_eq!(*o, Outcome::Finished);
                if resume_ranks == 2 {
                    assert!(w == &whole[0].1, "resumed on the same ranks: weights differ");
                }
                let d = max_abs_diff(w, &whole[0].1);
                assert!(d < 1e-4 * travelled, "resumed on {resume_ranks} ranks: weights differ by {d} (travelled {travelled})");
            }
            std::fs::remove_dir_all(&out).unwrap();
            std::fs::remove_dir_all(&whole_out).unwrap();
        }
    }

    #[test]
    fn an_interrupted_run_resumes_to_the_same_weights() {
        // RK-Net with 2 RK4 steps: also checks the ODE block's optimiser state survives.
        let model = ModelConfig::new(ModelKind::RkNet).with_step(0.5);
        let (train, test) = (toy(40, 3), toy(20, 4));
        let run = |out: &Path, stop_after: Option<usize>| {
            let mut cfg = TrainConfig::new(model.clone(), out.to_path_buf());
            (cfg.batch_size, cfg.epochs, cfg.checkpoint_every, cfg.eval_batch) = (8, 2, 3, 20);
            let mut t = Trainer::new(cfg, train.clone(), test.clone()).unwrap();
            let stop = AtomicBool::new(false);
            let mut seen = 0;
            let r = t
                .run(
                    &stop,
                    &mut |_| {
                        seen += 1;
                        if Some(seen) == stop_after {
                            stop.store(true, Ordering::SeqCst);
                        }
                    },
                    &mut |_, _| {},
                    &mut |_| {},
                )
                .unwrap();
            (r, t)
        };
        let (a_out, b_out) = (tmp("resume-a"), tmp("resume-b"));
        let (r, a) = run(&a_out, None);
        assert_eq!(r, Outcome::Finished);
        // Interrupt in the second epoch (batch 7 of 10), then resume in a fresh trainer.
        let (r, b) = run(&b_out, Some(7));
        assert_eq!(r, Outcome::Interrupted);
        assert_eq!(b.position(), (1, 2));
        drop(b);
        let (r, b) = run(&b_out, None);
        assert_eq!(r, Outcome::Finished);
        let w = |t: &Trainer| crate::mnist::models::flat_params(&t.model);
        assert!(w(&a) == w(&b), "resumed weights differ from the uninterrupted run");
        assert_eq!(a.history.len(), 2);
        assert_eq!(a.history[1].test_accuracy, b.history[1].test_accuracy);
        assert_eq!(a.history[1].train_loss, b.history[1].train_loss);
        // A checkpoint made with other settings is refused.
        let mut cfg = TrainConfig::new(model.clone(), b_out.clone());
        cfg.batch_size = 4;
        assert!(matches!(Trainer::new(cfg, train.clone(), test.clone()), Err(TrainError::Checkpoint { .. })));
        for d in [a_out, b_out] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
