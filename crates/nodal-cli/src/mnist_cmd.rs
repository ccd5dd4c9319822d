//! `nodal train mnist` and `nodal eval mnist`: the ResNet, RK-Net and ODE-Net of Chen et al.
//! 2018 on MNIST, with progress bars, per-epoch metrics, checkpoints that resume, and weights.

use crate::device_arg::DeviceArg;
use crate::failure::{CliResult, Failure};
use crate::interrupt::Interrupt;
use crate::output::{emit_json, note};
use crate::validate;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use nodal::burn::module::Module;
use nodal::deq::{DeqError, DeqGradient, DeqSettings};
use nodal::io::write_atomic;
use nodal::solve::fixed_point::FixedPointMethod;
use nodal::solve::grad::GradMethod;
use nodal_experiments::mnist::models::{BlockError, ModelConfig, ModelKind, load_weights, mnist_deq_settings};
use nodal_experiments::mnist::train::{
    EpochMetrics, OptimizerKind, Outcome, ResultRow, TrainConfig, Trainer, evaluate, kind_of_weights, results_markdown,
};
use nodal_experiments::mnist::{Part, load};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The project's MNIST folder, relative to the repository root.
pub const DEFAULT_DATA: &str = "../shared/data/mnist";

/// Which model (command-line spelling).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    /// Six residual blocks (0.58M parameters).
    Resnet,
    /// One ODE block integrated by fixed-step RK4, backprop through the steps (0.21M).
    Rknet,
    /// One ODE block solved by dopri5, adjoint or checkpointed gradients (0.21M).
    Odenet,
    /// A deep equilibrium block: fixed point of one conv cell, implicit gradients (0.21M).
    Deq,
    /// The DEQ's cell applied --depth times with shared weights, backprop through all (0.21M).
    Tied,
}

impl From<ModelArg> for ModelKind {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Resnet => ModelKind::ResNet,
            ModelArg::Rknet => ModelKind::RkNet,
            ModelArg::Odenet => ModelKind::OdeNet,
            ModelArg::Deq => ModelKind::Deq,
            ModelArg::Tied => ModelKind::Tied,
        }
    }
}

/// Which optimiser (command-line spelling).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    /// Adam (PyTorch's defaults).
    Adam,
    /// SGD with momentum 0.9 (the paper's; use --lr 0.1).
    Sgd,
}

/// The DEQ's root solver (command-line spelling).
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SolverArg {
    /// Plain fixed-point iteration.
    Picard,
    /// Anderson acceleration, memory 5.
    Anderson,
    /// Limited-memory Broyden, 30 updates.
    Broyden,
}

impl SolverArg {
    fn method(self) -> FixedPointMethod {
        match self {
            SolverArg::Picard => FixedPointMethod::picard(),
            SolverArg::Anderson => FixedPointMethod::anderson(),
            SolverArg::Broyden => FixedPointMethod::broyden(),
        }
    }
}

/// The DEQ's gradient (command-line spelling).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DeqGradArg {
    /// Exact: the implicit function theorem, solved by the same solver on VJPs.
    Implicit,
    /// Inexact and cheap: one VJP at the equilibrium (Jacobian-free backprop).
    OneStep,
}

/// The DEQ's and weight-tied network's options, shared by `train`, `eval` and `memory`.
#[derive(Args, Debug, Clone)]
pub struct DeqArgs {
    /// DEQ: the root solver of the forward and backward solves.
    #[arg(long, value_enum, default_value = "anderson")]
    pub solver: SolverArg,
    /// DEQ: relative residual tolerance of the forward and backward solves.
    #[arg(long, default_value_t = 1e-2)]
    pub deq_rtol: f64,
    /// DEQ: iteration cap of each solve (rows at the cap go on with their last iterate unless
    /// --deq-strict).
    #[arg(long, default_value_t = 30)]
    pub deq_max_iter: usize,
    /// DEQ: a solve that reaches its cap is an error.
    #[arg(long)]
    pub deq_strict: bool,
    /// DEQ: exact implicit gradients or the one-step approximation.
    #[arg(long, value_enum, default_value = "implicit")]
    pub deq_grad: DeqGradArg,
    /// Weight-tied network: applications of the cell.
    #[arg(long, default_value_t = 10)]
    pub depth: usize,
}

impl DeqArgs {
    /// Checks the values and builds the layer's settings.
    pub fn settings(&self) -> Result<DeqSettings, Failure> {
        validate::non_negative("deq-rtol", self.deq_rtol)?;
        validate::count("deq-max-iter", self.deq_max_iter, 1, 10_000)?;
        validate::count("depth", self.depth, 1, 1000)?;
        let mut s = mnist_deq_settings().with_method(self.solver.method());
        s.forward = s.forward.with_tol(self.deq_rtol, 0.0).with_max_iter(self.deq_max_iter);
        s.backward = s.backward.with_tol(self.deq_rtol, 0.0).with_max_iter(self.deq_max_iter);
        s.accept_unconverged = !self.deq_strict;
        s.gradient = match self.deq_grad {
            DeqGradArg::Implicit => DeqGradient::Implicit,
            DeqGradArg::OneStep => DeqGradient::OneStep,
        };
        Ok(s)
    }

    /// The settings as summary fields.
    pub fn describe(&self, kind: ModelKind) -> serde_json::Value {
        match kind {
            ModelKind::Deq => json!({
                "solver": self.solver.method().name(),
                "deq_rtol": self.deq_rtol,
                "deq_max_iter": self.deq_max_iter,
                "deq_strict": self.deq_strict,
                "deq_grad": match self.deq_grad { DeqGradArg::Implicit => "implicit", DeqGradArg::OneStep => "one-step" },
            }),
            ModelKind::Tied => json!({ "depth": self.depth }),
            _ => json!({}),
        }
    }
}

/// The gradient method of each model, as written in summaries.
pub(crate) fn grad_name(kind: ModelKind, ode_grad: GradMethod) -> String {
    match kind {
        ModelKind::ResNet | ModelKind::Tied => "burn autodiff".to_string(),
        ModelKind::RkNet => "backprop".to_string(),
        ModelKind::OdeNet => ode_grad.to_string(),
        ModelKind::Deq => "implicit function theorem".to_string(),
    }
}

fn parse_grad(s: &str) -> Result<GradMethod, String> {
    GradMethod::parse(s).ok_or_else(|| format!("unknown gradient method {s:?}: use {}", GradMethod::NAMES))
}

/// Arguments of `nodal train mnist`.
#[derive(Args, Debug)]
pub struct MnistTrainArgs {
    /// The model.
    #[arg(long, value_enum)]
    model: ModelArg,
    /// Epochs in total (a resumed run continues up to this many).
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Examples per mini-batch.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Optimiser.
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,
    /// Seed of the initial weights and of the example order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder with the MNIST IDX files (gzipped or not).
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Output folder (default runs/mnist-MODEL); a checkpoint there is resumed.
    #[arg(long)]
    out: Option<PathBuf>,
    /// dopri5's relative tolerance (ODE-Net).
    #[arg(long, default_value_t = 1e-3)]
    rtol: f64,
    /// dopri5's absolute tolerance (ODE-Net).
    #[arg(long, default_value_t = 1e-3)]
    atol: f64,
    /// The ODE-Net's gradient method: adjoint, adjoint-checkpointed[:M], backprop, checkpoint or checkpoint:M.
    #[arg(long, value_parser = parse_grad, default_value = "adjoint")]
    grad: GradMethod,
    /// The RK-Net's RK4 step on [0, 1].
    #[arg(long, default_value_t = 0.25)]
    rk4_step: f64,
    /// Residual blocks of the ResNet (the paper's 6; other depths are for memory studies and
    /// give weights `nodal eval` cannot load).
    #[arg(long, default_value_t = 6)]
    blocks: usize,
    /// Weight of the kinetic-energy penalty on the ODE block, the integral of the mean ||f||^2
    /// over [0, 1] (Finlay et al. 2020); 0 = off. RK-Net and ODE-Net only.
    #[arg(long, default_value_t = 0.0)]
    kinetic: f64,
    #[command(flatten)]
    deq: DeqArgs,
    /// Start from these weights (fine-tuning) instead of the seeded initialisation.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Train on the first N training images only (quick runs).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Evaluate on the first N test images only (quick runs; the default is all 10,000).
    #[arg(long)]
    limit_test: Option<usize>,
    /// Save a checkpoint every N batches (and at every epoch's end); 0 = epoch ends only.
    #[arg(long, default_value_t = 50)]
    checkpoint_every: usize,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    dist: crate::distributed::DistributedArgs,
}

/// Arguments of `nodal eval mnist`.
#[derive(Args, Debug)]
pub struct MnistEvalArgs {
    /// Weights written by `nodal train mnist` (model.safetensors).
    #[arg(long)]
    weights: PathBuf,
    /// The model (default: the one named in the weights file).
    #[arg(long, value_enum)]
    model: Option<ModelArg>,
    /// Folder with the MNIST IDX files.
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// dopri5's relative tolerance (ODE-Net).
    #[arg(long, default_value_t = 1e-3)]
    rtol: f64,
    /// dopri5's absolute tolerance (ODE-Net).
    #[arg(long, default_value_t = 1e-3)]
    atol: f64,
    /// The RK-Net's RK4 step.
    #[arg(long, default_value_t = 0.25)]
    rk4_step: f64,
    #[command(flatten)]
    deq: DeqArgs,
    /// Examples per evaluation batch.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    limit_test: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    device: DeviceArg,
}

pub(crate) fn bar(len: usize, quiet: bool, template: &str) -> ProgressBar {
    let b = if quiet { ProgressBar::hidden() } else { ProgressBar::new(len as u64) };
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style);
    }
    b
}

/// Largest mini-batch (the training set's size).
const MAX_BATCH: usize = 60_000;
/// Most residual blocks (memory studies go to 100).
const MAX_BLOCKS: usize = 1000;

/// Check that `out` can be written before any work is done (a read-only folder fails now, not
/// after an epoch).
pub(crate) fn check_writable(out: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(out).map_err(|e| Failure::Output(format!("{}: {e}", out.display())))?;
    let probe = out.join(format!(".nodal-write-test-{}", std::process::id()));
    write_atomic(&probe, b"").map_err(Failure::file)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The MNIST test (and training) images, with the checks every command needs: 28x28 images,
/// at least one test image after `--limit-test`.
fn load_split(dir: &Path, part: Part, limit: Option<usize>) -> Result<nodal_experiments::mnist::Split, Failure> {
    if limit == Some(0) {
        return Err(Failure::Input(format!("--limit-{} 0 leaves no images", if part == Part::Test { "test" } else { "train" })));
    }
    let split = load(dir, part).map_err(Failure::input)?.truncate(limit.unwrap_or(usize::MAX));
    if split.is_empty() {
        let name = if part == Part::Test { "test" } else { "training" };
        return Err(Failure::Input(format!("{}: the {name} set holds no images", dir.display())));
    }
    Ok(split)
}

/// Train one model; writes checkpoints, `metrics.jsonl`, `summary.json` and `model.safetensors`
/// into the output folder and prints the summary as one JSON line. SIGINT or SIGTERM saves a
/// checkpoint (also during the test evaluation) and exits with 130 or 143; rerun the same
/// command to resume. Every option is checked, and the output folder tested for writing, before
/// any training.
pub fn train(a: MnistTrainArgs) -> CliResult {
    let interrupt = Interrupt::install();
    let kind: ModelKind = a.model.into();
    validate::non_negative("kinetic", a.kinetic)?;
    if a.kinetic > 0.0 && !kind.is_ode() {
        return Err(Failure::Input(format!(
            "--kinetic regularises an ODE block; the {} model has none (use --model rknet or odenet)",
            kind.name()
        )));
    }
    let deq = a.deq.settings()?;
    validate::count("epochs", a.epochs, 1, 100_000)?;
    validate::count("batch-size", a.batch_size, 1, MAX_BATCH)?;
    validate::count("blocks", a.blocks, 1, MAX_BLOCKS)?;
    validate::positive("lr", a.lr)?;
    validate::tolerances(a.rtol, a.atol, true)?;
    validate::rk4_step(a.rk4_step)?;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("runs/mnist-{}", kind.name())));
    let comm = a.dist.communicator()?;
    let root = comm.is_root();
    let train_split = load_split(&a.data, Part::Train, a.limit_train)?;
    let test_split = load_split(&a.data, Part::Test, a.limit_test)?;
    if root {
        check_writable(&out)?;
    }
    // Only rank 0 talks to the terminal.
    let quiet_rank = a.quiet || !root;
    let note = |m: &str| {
        if root {
            note(m)
        }
    };
    let data = (train_split, test_split);
    let model = ModelConfig::new(kind)
        .with_tol(a.rtol, a.atol)
        .with_grad(a.grad)
        .with_step(a.rk4_step)
        .with_blocks(a.blocks)
        .with_kinetic(a.kinetic)
        .with_deq(deq)
        .with_depth(a.deq.depth);
    let mut cfg = TrainConfig::new(model, out.clone());
    cfg.device = a.device.device()?;
    cfg.epochs = a.epochs;
    cfg.batch_size = a.batch_size;
    cfg.lr = a.lr;
    cfg.seed = a.seed;
    cfg.checkpoint_every = a.checkpoint_every;
    cfg.init_weights = a.init.clone();
    cfg.optimizer = match a.optimizer {
        OptimizerArg::Adam => OptimizerKind::Adam,
        OptimizerArg::Sgd => OptimizerKind::Sgd,
    };
    let (n_train, n_test) = (data.0.len(), data.1.len());
    let ranks = comm.size();
    let mut tr = Trainer::new_distributed(cfg, data.0, data.1, comm).map_err(|e| match e {
        nodal_experiments::mnist::train::TrainError::Distributed(e) => Failure::Compute(format!("distributed training: {e}")),
        e => Failure::input(e),
    })?;
    if ranks > 1 {
        note(&format!("data-parallel over {ranks} ranks: each takes its shard of every batch of {}", a.batch_size));
    }
    let params = tr.model.num_params();
    let (epoch0, batch0) = tr.position();
    if epoch0 > 0 || batch0 > 0 {
        note(&format!("resuming {} at epoch {}, batch {} from {}", kind.name(), epoch0 + 1, batch0 + 1, out.display()));
    }
    note(&format!("{}: {params} parameters, {n_train} training and {n_test} test images, output in {}", kind.name(), out.display()));
    let nb = tr.batches_per_epoch();
    let template = "{prefix} {bar:30} {pos}/{len} {msg} [{elapsed} < {eta}]";
    let train_bar = bar(nb, quiet_rank, template);
    train_bar.set_position(batch0 as u64);
    train_bar.set_prefix(format!("epoch {}/{}", epoch0 + 1, a.epochs));
    let eval_bar = bar(n_test, true, template);
    let eval_bar = std::cell::RefCell::new(eval_bar);
    let quiet = quiet_rank;
    let mut on_batch = |r: &nodal_experiments::mnist::train::BatchReport| {
        if r.batch == 1 {
            train_bar.reset();
            train_bar.set_prefix(format!("epoch {}/{}", r.epoch, a.epochs));
        }
        train_bar.set_position(r.batch as u64);
        let nfe = if kind.is_ode() {
            format!(" nfe {}+{}", r.nfe_forward, r.nfe_backward.max(r.nvjp_backward))
        } else if kind == ModelKind::Deq {
            format!(" iters {}+{} res {:.1e}", r.nfe_forward, r.nvjp_backward, r.residual)
        } else {
            String::new()
        };
        train_bar.set_message(format!("loss {:.4}{nfe} {:.0} ms", r.loss, r.ms));
        if r.batch == r.batches {
            train_bar.finish_and_clear();
            let b = bar(n_test, quiet, "{prefix} {bar:30} {pos}/{len} [{elapsed} < {eta}]");
            b.set_prefix("test");
            *eval_bar.borrow_mut() = b;
        }
    };
    let mut on_eval = |done: usize, _total: usize| eval_bar.borrow().set_position(done as u64);
    let mut on_epoch = |m: &EpochMetrics| {
        eval_bar.borrow().finish_and_clear();
        let line = serde_json::to_string(m).unwrap_or_default();
        if quiet { note(&line) } else { train_bar.println(line) }
    };
    let outcome = tr.run(&interrupt.flag, &mut on_batch, &mut on_eval, &mut on_epoch);
    train_bar.finish_and_clear();
    match outcome {
        Ok(Outcome::Interrupted) => {
            let (e, b) = tr.position();
            Err(interrupt.failure(format!(
                "interrupted at epoch {}, batch {}: checkpoint saved in {}; rerun the same command to resume",
                e + 1,
                b + 1,
                out.display()
            )))
        }
        Ok(Outcome::Finished) if !root => Ok(()),
        Ok(Outcome::Finished) => {
            let h = &tr.history;
            let last = h.last();
            let summary = json!({
                "model": kind.name(),
                "params": params,
                "epochs": h.len(),
                "train_examples": n_train,
                "test_examples": n_test,
                "test_accuracy": last.map(|m| m.test_accuracy),
                "test_error_percent": last.map(|m| 100.0 * (1.0 - m.test_accuracy)),
                "test_nfe": last.map(|m| m.test_nfe),
                "nfe_forward": last.map(|m| m.nfe_forward),
                "nfe_backward": last.map(|m| m.nfe_backward),
                "nvjp_backward": last.map(|m| m.nvjp_backward),
                "ms_per_batch": last.map(|m| m.ms_per_batch),
                "allreduce_ms_per_batch": last.map(|m| m.allreduce_ms_per_batch),
                "train_seconds_total": h.iter().map(|m| m.train_seconds).sum::<f64>(),
                "peak_rss_mib": h.iter().map(|m| m.peak_rss_mib).fold(0.0, f64::max),
                "batch_size": a.batch_size,
                "lr": a.lr,
                "optimizer": format!("{:?}", a.optimizer).to_lowercase(),
                "rtol": a.rtol,
                "atol": a.atol,
                "grad": grad_name(kind, a.grad),
                "deq": a.deq.describe(kind),
                "unconverged_share": last.map(|m| m.unconverged_share),
                "forward_row_iterations": last.map(|m| m.forward_row_iterations),
                "backward_row_iterations": last.map(|m| m.backward_row_iterations),
                "rk4_step": a.rk4_step,
                "blocks": a.blocks,
                "kinetic": a.kinetic,
                "seed": a.seed,
                "ranks": ranks,
            });
            let text = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
            write_atomic(&out.join("summary.json"), text.as_bytes()).map_err(Failure::file)?;
            emit_json(&summary, false)?;
            note(&format!("wrote {}/{{model.safetensors, metrics.jsonl, summary.json}}", out.display()));
            match write_results_table(&out) {
                Ok(p) => note(&format!("results table: {}", p.display())),
                Err(e) => note(&format!("warning: results table not written: {e}")),
            }
            Ok(())
        }
        Err(nodal_experiments::mnist::train::TrainError::File(e)) => Err(Failure::file(e)),
        Err(e) => Err(Failure::compute(e)),
    }
}

/// Gathers the `summary.json` of every `mnist-*` run beside `out` (and `out` itself) into
/// `mnist-results.md` in the same parent folder.
fn write_results_table(out: &std::path::Path) -> Result<PathBuf, String> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(parent)
        .map_err(|e| format!("{}: {e}", parent.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("mnist-")))
        .collect();
    if !dirs.iter().any(|d| d == out) {
        dirs.push(out.to_path_buf());
    }
    dirs.sort();
    let mut rows = Vec::new();
    for d in dirs {
        let Ok(text) = std::fs::read_to_string(d.join("summary.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
        rows.push(ResultRow {
            model: v.get("model").and_then(|x| x.as_str()).unwrap_or("?").to_string(),
            params: f("params") as usize,
            epochs: f("epochs") as usize,
            test_accuracy: f("test_accuracy"),
            test_nfe: f("test_nfe"),
            nfe_forward: f("nfe_forward"),
            nfe_backward: f("nfe_backward").max(f("nvjp_backward")),
            ms_per_batch: f("ms_per_batch"),
            peak_rss_mib: f("peak_rss_mib"),
        });
    }
    let path = parent.join("mnist-results.md");
    write_atomic(&path, results_markdown(&rows).as_bytes()).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Evaluate trained weights on the MNIST test set; prints one JSON object with `model`,
/// `params`, `accuracy` (a fraction), `nfe` (mean forward evaluations per batch; 0 for the
/// ResNet), `examples`, the tolerances and `seconds`. Exit codes: 0 done, 1 a solve failed, 2
/// unusable weights, data or options, 130/143 interrupted.
pub fn eval(a: MnistEvalArgs) -> CliResult {
    validate::tolerances(a.rtol, a.atol, true)?;
    validate::count("batch-size", a.batch_size, 1, MAX_BATCH)?;
    validate::rk4_step(a.rk4_step)?;
    let kind = match a.model {
        Some(m) => ModelKind::from(m),
        None => kind_of_weights(&a.weights)
            .map_err(Failure::input)?
            .ok_or_else(|| Failure::Input(format!("{}: the file does not name its model; pass --model", a.weights.display())))?,
    };
    let config = ModelConfig::new(kind).with_tol(a.rtol, a.atol).with_step(a.rk4_step).with_deq(a.deq.settings()?).with_depth(a.deq.depth);
    let device = a.device.device()?;
    let model = load_weights(config.init_seeded(&device, 0), &a.weights).map_err(Failure::input)?;
    let test = load_split(&a.data, Part::Test, a.limit_test)?;
    let interrupt = Interrupt::install();
    let b = bar(test.len(), a.quiet, "test {bar:30} {pos}/{len} [{elapsed} < {eta}]");
    let start = std::time::Instant::now();
    let r = evaluate(&model, &test, a.batch_size, &interrupt.flag, &mut |done, _| b.set_position(done as u64));
    b.finish_and_clear();
    let r = r.map_err(|e| {
        let hint = match &e {
            BlockError::Deq(DeqError::NotConverged { .. }) => "; raise --deq-max-iter or --deq-rtol, or drop --deq-strict",
            _ => "",
        };
        Failure::Compute(format!("solve failed: {e}{hint}"))
    })?;
    let Some(r) = r else {
        return Err(interrupt.failure("interrupted: the evaluation was not finished".into()));
    };
    let o = json!({
        "model": kind.name(),
        "params": model.num_params(),
        "accuracy": r.accuracy,
        "nfe": r.nfe,
        "examples": r.examples,
        "rtol": a.rtol,
        "atol": a.atol,
        "deq": a.deq.describe(kind),
        "unconverged_share": r.unconverged_share,
        "row_iterations": r.row_iterations,
        "seconds": start.elapsed().as_secs_f64(),
    });
    emit_json(&o, false)
}
