//! Flow matching on MNIST (see `nodal_experiments::flow_matching`):
//! - `nodal train flow-matching`: trains the U-Net field, writes metrics, the averaged weights,
//!   a summary and a grid of samples;
//! - `nodal sample --weights F --n N [--method M --rtol R | --steps K]`: a PNG grid of samples;
//! - `nodal eval flow-matching --weights F [--n N] [--seed S] [--method M --rtol R]`: one JSON
//!   object with what the committed MNIST classifier makes of `n` samples.

use crate::failure::{CliResult, Failure};
use crate::interrupt::Interrupt;
use crate::mnist_cmd::DEFAULT_DATA;
use crate::output::{emit_json, iteration_bar, note, open_metrics};
use crate::sample_grid::write_grid;
use clap::Args;
use nodal::blocks::unet::UNetConfig;
use nodal::burn::tensor::Device;
use nodal::io::write_atomic;
use nodal_experiments::flow_matching::checkpoint;
use nodal_experiments::flow_matching::frechet::GaussianStats;
use nodal_experiments::flow_matching::path::TimeSampling;
use nodal_experiments::flow_matching::quality::{Classifier, FEATURES, score, unit_pixels};
use nodal_experiments::flow_matching::sample::{Sampler, Samples, generate};
use nodal_experiments::flow_matching::train::Trainer;
use nodal_experiments::flow_matching::weights::{load_unet, save_unet};
use nodal_experiments::flow_matching::{FlowMatchingConfig, PIXELS};
use nodal_experiments::mnist::{Part, load};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The classifier that scores samples.
const DEFAULT_CLASSIFIER: &str = "models/mnist-resnet.safetensors";

/// How to solve from noise to images (shared by `sample` and `eval flow-matching`).
#[derive(Args, Clone)]
pub struct SamplerArgs {
    /// Solver: dopri5, tsit5, bosh3 (adaptive, with --rtol) or euler, midpoint, heun, rk4 (with
    /// --steps; adaptive methods take --steps too).
    #[arg(long, default_value = "dopri5")]
    method: String,
    /// Relative tolerance of an adaptive method.
    #[arg(long, default_value_t = 1e-3)]
    rtol: f64,
    /// Absolute tolerance of an adaptive method.
    #[arg(long, default_value_t = 1e-3)]
    atol: f64,
    /// Fixed steps over [0, 1] instead of adaptive stepping.
    #[arg(long)]
    steps: Option<usize>,
    /// Images per joint solve.
    #[arg(long, default_value_t = 100)]
    chunk: usize,
}

impl SamplerArgs {
    fn sampler(&self) -> Result<Sampler, Failure> {
        let s = Sampler { method: self.method.clone(), rtol: self.rtol, atol: self.atol, steps: self.steps };
        s.options().map_err(Failure::input)?;
        crate::validate::count("chunk", self.chunk, 1, 10_000)?;
        Ok(s)
    }
}

/// Arguments of `nodal train flow-matching`.
#[derive(Args)]
pub struct TrainFlowArgs {
    /// Training steps (the defaults are the committed model's run: docs/any_layer.md).
    #[arg(long, default_value_t = 12_000)]
    iters: usize,
    /// Images per step.
    #[arg(long, default_value_t = 48)]
    batch: usize,
    /// Peak Adam learning rate (linear warm-up, cosine decay to a tenth).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Width C of the U-Net's top level (2C below).
    #[arg(long, default_value_t = 32)]
    channels: usize,
    /// Heads of a self-attention over the middle (7 x 7) positions, which also adds a second
    /// middle residual block (0: neither). Must divide 2C. With --init from weights without
    /// them, the model grows: the new parts start as the identity, so training continues from
    /// the same field.
    #[arg(long, default_value_t = 0)]
    middle_attention: usize,
    /// Seed of initialisation, batches, noise and times.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How each image's time on the path is drawn: uniform, or logit-normal (more steps in the
    /// middle of the path; Esser et al. 2024).
    #[arg(long, value_parser = TimeSampling::parse, default_value = "logit-normal")]
    time_sampling: TimeSampling,
    /// Start from these weights (written by `nodal train flow-matching`, same U-Net sizes, or
    /// the same without the middle attention that --middle-attention adds) instead of a fresh
    /// initialisation, to train a finished model further: Adam, the moving
    /// average and the learning-rate schedule start fresh; the summary and weights record the
    /// total steps and time. A checkpoint in --out takes precedence (rerun the same command to
    /// resume).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Folder with the MNIST IDX files.
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Use only the first N training images.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Save the averaged weights and a checkpoint every N steps (and at the end, and on
    /// SIGINT/SIGTERM); rerunning the same command resumes from the checkpoint.
    #[arg(long, default_value_t = 250)]
    save_every: usize,
    /// Images in the final grid (0: none).
    #[arg(long, default_value_t = 64)]
    grid: usize,
    /// Output folder.
    #[arg(long, default_value = "runs/flow-matching")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Arguments of `nodal sample`.
#[derive(Args)]
pub struct SampleArgs {
    /// Weights written by `nodal train flow-matching`.
    #[arg(long)]
    weights: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    sampler: SamplerArgs,
    /// The PNG grid to write.
    #[arg(long, default_value = "samples.png")]
    out: PathBuf,
}

/// Arguments of `nodal eval flow-matching`.
#[derive(Args)]
pub struct EvalFlowArgs {
    /// Weights written by `nodal train flow-matching` (not needed with --real-images).
    #[arg(long, required_unless_present = "real_images")]
    weights: Option<PathBuf>,
    /// Score N real training images (a seeded random choice) instead of samples: the values
    /// the measures take for real digits, their floor at this N.
    #[arg(long)]
    real_images: bool,
    /// Number of samples to score.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    sampler: SamplerArgs,
    /// MNIST classifier weights (features, probabilities).
    #[arg(long, default_value = DEFAULT_CLASSIFIER)]
    classifier: PathBuf,
    /// Folder with the MNIST IDX files (the test set is the reference).
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Use only the first N test images as the reference (quick checks; the measured figures
    /// use all 10,000).
    #[arg(long)]
    limit_test: Option<usize>,
    /// Also write the samples' grid (first 64) here.
    #[arg(long)]
    grid: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Median of step times after the first tenth (warm-up).
fn median_ms(ms: &[f64]) -> f64 {
    let mut v: Vec<f64> = ms.iter().skip(ms.len() / 10).copied().collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Check that `out` can hold files before any long work.
fn prepare_out(out: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(out).map_err(|e| Failure::output(format!("{}: {e}", out.display())))?;
    let probe = out.join(".nodal-write-test");
    std::fs::write(&probe, b"").map_err(|e| Failure::output(format!("{}: {e}", out.display())))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Run `nodal train flow-matching`.
pub fn train(a: TrainFlowArgs) -> CliResult {
    let interrupt = Interrupt::install();
    let cfg = FlowMatchingConfig {
        unet: UNetConfig { channels: a.channels, middle_attention: a.middle_attention, ..UNetConfig::default() },
        iters: a.iters,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        time_sampling: a.time_sampling,
        ..FlowMatchingConfig::default()
    };
    cfg.validate().map_err(Failure::Input)?;
    crate::validate::count("iters", a.iters, 1, 10_000_000)?;
    crate::validate::count("save-every", a.save_every, 1, usize::MAX)?;
    if a.limit_train == Some(0) {
        return Err(Failure::Input("--limit-train 0 leaves no images".into()));
    }
    prepare_out(&a.out)?;
    let train_set = load(&a.data, Part::Train).map_err(Failure::input)?.truncate(a.limit_train.unwrap_or(usize::MAX));
    let device = Device::flex().autodiff();
    let init = match &a.init {
        Some(path) => Some(starting_weights(path, &cfg, &device)?),
        None => None,
    };
    let resumed = checkpoint::resume(&cfg, &a.out, &device).map_err(Failure::input)?;
    let resuming = resumed.is_some();
    let mut tr = match resumed {
        Some(tr) => {
            note(&format!("resuming {} at step {}", a.out.display(), tr.iter));
            tr
        }
        None => {
            let mut tr = Trainer::new(cfg.clone(), &device).map_err(Failure::input)?;
            if let Some(start) = &init {
                tr.start_from(start.model.clone()).map_err(Failure::input)?;
                note(&format!("starting from {} ({} steps, {:.0} s of training)", start.path.display(), start.iters, start.seconds));
            }
            tr
        }
    };
    let (prior_iters, prior_seconds) = init.as_ref().map_or((0, 0.0), |s| (s.iters, s.seconds));
    let params = nodal::module_weights::param_count(&tr.model);
    note(&format!("U-Net C = {}: {params} parameters, {} training images", a.channels, train_set.len()));
    let mut metrics = open_metrics(&a.out.join("metrics.jsonl"), resuming)?;
    let weights = a.out.join("model.safetensors");
    let bar = iteration_bar(a.iters, tr.iter, a.quiet);
    let start = Instant::now();
    let mut step_ms = Vec::with_capacity(a.iters);
    let mut recent = std::collections::VecDeque::new();
    // The averaged weights for sampling, then the resumable state.
    let save = |tr: &mut Trainer, seconds: f64| {
        let mut extra = vec![("iters_done", tr.iter.to_string()), ("train_seconds", format!("{seconds:.1}"))];
        if let Some(start) = &init {
            extra.push(("init", start.path.display().to_string()));
            extra.push(("total_iters", (prior_iters + tr.iter).to_string()));
            extra.push(("total_train_seconds", format!("{:.1}", prior_seconds + seconds)));
        }
        save_unet(&tr.ema_model(), &tr.cfg, &weights, &extra).map_err(Failure::file)?;
        checkpoint::save(tr, &a.out).map_err(Failure::compute)
    };
    while tr.iter < a.iters {
        if interrupt.requested() {
            bar.finish_and_clear();
            metrics.flush().map_err(|e| Failure::output(format!("metrics.jsonl: {e}")))?;
            save(&mut tr, start.elapsed().as_secs_f64())?;
            return Err(interrupt.failure(format!(
                "stopped after {} steps; checkpoint and averaged weights saved in {} (rerun the same command to resume)",
                tr.iter,
                a.out.display()
            )));
        }
        let r = tr.step(&train_set.images.pixels).map_err(Failure::compute)?;
        step_ms.push(r.ms);
        recent.push_back(r.loss);
        if recent.len() > 100 {
            recent.pop_front();
        }
        writeln!(metrics, "{}", json!({"iter": r.iter, "loss": r.loss, "lr": r.lr, "ms": r.ms}))
            .map_err(|e| Failure::output(format!("metrics.jsonl: {e}")))?;
        bar.inc(1);
        bar.set_message(format!("loss {:.4}", recent.iter().sum::<f64>() / recent.len() as f64));
        if tr.iter % a.save_every == 0 {
            save(&mut tr, start.elapsed().as_secs_f64())?;
        }
    }
    bar.finish_and_clear();
    metrics.flush().map_err(|e| Failure::output(format!("metrics.jsonl: {e}")))?;
    let seconds = start.elapsed().as_secs_f64();
    save(&mut tr, seconds)?;
    let mut summary = json!({
        "task": "flow-matching",
        "config": cfg,
        "parameters": params,
        "train_images": train_set.len(),
        "iters": tr.iter,
        "train_seconds": seconds,
        "ms_per_step": median_ms(&step_ms),
        "final_loss_mean_last_100": recent.iter().sum::<f64>() / recent.len().max(1) as f64,
        "weights": weights.display().to_string(),
    });
    if let Some(start) = &init {
        summary["init"] = json!({"weights": start.path.display().to_string(), "iters": start.iters, "train_seconds": start.seconds});
        summary["total_iters"] = json!(prior_iters + tr.iter);
        summary["total_train_seconds"] = json!(prior_seconds + seconds);
    }
    if a.grid > 0 {
        let sampler = Sampler { method: "dopri5".into(), rtol: 1e-3, atol: 1e-3, steps: None };
        let plain = Device::flex();
        let s = generate(&tr.ema_model(), a.grid, a.seed, &sampler, 100, &plain, |_| {}).map_err(Failure::compute)?;
        let grid = a.out.join("samples.png");
        write_grid(&grid, &s.pixels, s.len()).map_err(Failure::Output)?;
        summary["grid"] = json!({"file": grid.display().to_string(), "method": sampler.label(), "nfe": s.mean_nfe()});
    }
    let text = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
    write_atomic(&a.out.join("summary.json"), text.as_bytes()).map_err(Failure::file)?;
    emit_json(&summary, false)
}

/// Trained weights a run starts from (`--init`), with the training they already had.
struct StartingWeights {
    path: PathBuf,
    model: nodal::blocks::unet::UNet,
    /// Steps behind them (their `total_iters`, else `iters_done`).
    iters: usize,
    /// Seconds of training behind them.
    seconds: f64,
}

/// Read `--init`: the U-Net must have the sizes this run asks for, or grow into them.
fn starting_weights(path: &Path, cfg: &FlowMatchingConfig, device: &Device) -> Result<StartingWeights, Failure> {
    let (model, theirs) = load_unet(path, device).map_err(Failure::Input)?;
    let model = if theirs.unet == cfg.unet {
        model
    } else {
        let grown = nodal::blocks::unet::UNet::grown_from(model, &theirs.unet, &cfg.unet, device)
            .map_err(|e| Failure::Input(format!("--init {}: {e} (set --channels and --middle-attention to match)", path.display())))?;
        note(&format!(
            "--init {}: adding the middle attention ({} heads) and second middle block, both starting as the identity",
            path.display(),
            cfg.unet.middle_attention
        ));
        grown
    };
    let meta = nodal::module_weights::read_metadata(path).map_err(Failure::file)?;
    let number = |keys: [&str; 2]| keys.iter().find_map(|k| meta.get(*k).and_then(|v| v.parse::<f64>().ok())).unwrap_or(0.0);
    let iters = number(["total_iters", "iters_done"]) as usize;
    let seconds = number(["total_train_seconds", "train_seconds"]);
    Ok(StartingWeights { path: path.to_path_buf(), model, iters, seconds })
}

/// Load weights for sampling, on the plain CPU device.
fn load_model(path: &Path) -> Result<(nodal::blocks::unet::UNet, FlowMatchingConfig), Failure> {
    load_unet(path, &Device::flex()).map_err(Failure::Input)
}

/// Generate with a progress bar.
fn sample_with_bar(
    model: &nodal::blocks::unet::UNet,
    n: usize,
    seed: u64,
    sampler: &Sampler,
    chunk: usize,
    quiet: bool,
) -> Result<Samples, Failure> {
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(n as u64) };
    if let Ok(style) = indicatif::ProgressStyle::with_template("sampling {bar:30} {pos}/{len} images [{elapsed} < {eta}]") {
        bar.set_style(style);
    }
    let s = generate(model, n, seed, sampler, chunk, &Device::flex(), |done| bar.set_position(done as u64)).map_err(Failure::compute);
    bar.finish_and_clear();
    s
}

/// Run `nodal sample`.
pub fn sample(a: SampleArgs) -> CliResult {
    let sampler = a.sampler.sampler()?;
    crate::validate::count("n", a.n, 1, 100_000)?;
    let (model, _) = load_model(&a.weights)?;
    let start = Instant::now();
    let s = sample_with_bar(&model, a.n, a.seed, &sampler, a.sampler.chunk, false)?;
    let seconds = start.elapsed().as_secs_f64();
    write_grid(&a.out, &s.pixels, s.len()).map_err(Failure::Output)?;
    emit_json(
        &json!({"n": s.len(), "method": sampler.method, "rtol": sampler.rtol, "atol": sampler.atol, "steps": sampler.steps,
            "nfe": s.mean_nfe(), "seconds": seconds, "out": a.out.display().to_string()}),
        false,
    )
}

/// `n` training images chosen at random from `seed`, as [`Samples`] that took no work.
fn real_images(data: &Path, n: usize, seed: u64) -> Result<Samples, Failure> {
    use rand::SeedableRng;
    use rand::seq::index::sample;
    let train = load(data, Part::Train).map_err(Failure::input)?;
    if n > train.len() {
        return Err(Failure::Input(format!("--n {n}: the training set holds {} images", train.len())));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut pixels = Vec::with_capacity(n * PIXELS);
    for i in sample(&mut rng, train.len(), n).into_iter() {
        pixels.extend(unit_pixels(&train.images.pixels[i * PIXELS..(i + 1) * PIXELS]));
    }
    Ok(Samples { pixels, nfe_per_chunk: Vec::new() })
}

/// Run `nodal eval flow-matching`.
pub fn eval(a: EvalFlowArgs) -> CliResult {
    let sampler = a.sampler.sampler()?;
    crate::validate::count("n", a.n, 2, 100_000)?;
    let model = match (&a.weights, a.real_images) {
        (Some(w), false) => Some(load_model(w)?.0),
        _ => None,
    };
    let device = Device::flex();
    let classifier = Classifier::load(&a.classifier, &device).map_err(Failure::Input)?;
    if a.limit_test.is_some_and(|n| n < 2) {
        return Err(Failure::Input("--limit-test must leave at least 2 images".into()));
    }
    let test = load(&a.data, Part::Test).map_err(Failure::input)?.truncate(a.limit_test.unwrap_or(usize::MAX));
    let start = Instant::now();
    let reference = classifier.read(&unit_pixels(&test.images.pixels), 500).map_err(Failure::compute)?;
    let reference = GaussianStats::from_rows(&reference.features, FEATURES).map_err(Failure::compute)?;
    let sample_start = Instant::now();
    let s = match &model {
        Some(model) => sample_with_bar(model, a.n, a.seed, &sampler, a.sampler.chunk, a.quiet)?,
        None => real_images(&a.data, a.n, a.seed)?,
    };
    let sample_seconds = sample_start.elapsed().as_secs_f64();
    if let Some(grid) = &a.grid {
        let k = s.len().min(64);
        write_grid(grid, &s.pixels[..k * PIXELS], k).map_err(Failure::Output)?;
    }
    let readout = classifier.read(&s.pixels, 500).map_err(Failure::compute)?;
    let q = score(&readout, &reference).map_err(Failure::compute)?;
    emit_json(
        &json!({
            "confident_share": q.confident_share,
            "class_counts": q.class_counts,
            "classes_within_2x_uniform": q.classes_within_2x_uniform,
            "frechet_distance": q.frechet_distance,
            "nfe": s.mean_nfe(),
            "n": q.n,
            "seed": a.seed,
            "method": if model.is_some() { json!(sampler.method) } else { json!("real training images") },
            "rtol": if model.is_some() && sampler.steps.is_none() { json!(sampler.rtol) } else { json!(null) },
            "atol": if model.is_some() && sampler.steps.is_none() { json!(sampler.atol) } else { json!(null) },
            "steps": if model.is_some() { json!(sampler.steps) } else { json!(null) },
            "reference": format!("MNIST test set ({} images)", test.len()),
            "seconds": start.elapsed().as_secs_f64(),
            "sample_seconds": sample_seconds,
        }),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_skips_the_warm_up() {
        let ms: Vec<f64> = (0..20).map(|k| if k < 2 { 1000.0 } else { k as f64 }).collect();
        assert_eq!(median_ms(&ms), 11.0);
    }
}
