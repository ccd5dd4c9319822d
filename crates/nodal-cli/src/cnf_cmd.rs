//! `nodal train cnf` and `nodal eval cnf`: continuous normalising flows on the 2-D toy
//! densities, with the shared anchor's setup (see `nodal_experiments::cnf`).

use crate::device_arg::DeviceArg;
use crate::failure::{CliResult, Failure};
use crate::interrupt::Interrupt;
use crate::output::{emit_json, note};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nodal::burn::tensor::Device;
use nodal::cnf::Trace;
use nodal::io::{load_f32_tensors, write_atomic};
use nodal::solve::grad::GradMethod;
use nodal_experiments::cnf::{CnfConfig, CnfTrainer, Engine, IterRecord, TOY_WIDTHS, Toy, log_prob, sample};
use serde_json::json;
use std::path::{Path, PathBuf};

fn parse_toy(s: &str) -> Result<Toy, String> {
    Toy::parse(s).ok_or_else(|| format!("unknown data set {s:?}: use 8gaussians, moons, pinwheel, checkerboard or circles"))
}
fn parse_trace(s: &str) -> Result<Trace, String> {
    Trace::parse(s).ok_or_else(|| format!("unknown trace {s:?}: use exact, hutchinson or gaussian"))
}
fn parse_engine(s: &str) -> Result<Engine, String> {
    Engine::parse(s).ok_or_else(|| format!("unknown engine {s:?}: use fused or module"))
}

/// Arguments of `nodal train cnf`.
#[derive(Args)]
pub struct TrainCnfArgs {
    /// Toy density: 8gaussians, moons, pinwheel, checkerboard or circles.
    #[arg(long, value_parser = parse_toy, default_value = "8gaussians")]
    data: Toy,
    /// Trace during training: exact, hutchinson (one Rademacher probe) or gaussian.
    #[arg(long, value_parser = parse_trace, default_value = "exact")]
    trace: Trace,
    /// Weight of the kinetic penalty, the integral of ||f||^2 (RNODE; 0 = off).
    #[arg(long, default_value_t = 0.0)]
    kinetic: f64,
    /// Weight of the Jacobian Frobenius penalty (RNODE; 0 = off).
    #[arg(long, default_value_t = 0.0)]
    jacobian: f64,
    /// Keep the penalty accumulators in the step-size error norm.
    #[arg(long)]
    penalties_in_norm: bool,
    /// Iterations.
    #[arg(long, default_value_t = 1000)]
    iters: usize,
    /// Seed of the weights and batches (the test set uses seed + 1000).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Batch size (fresh samples every iteration).
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// rtol = atol of every solve.
    #[arg(long, default_value_t = 1e-5)]
    tol: f64,
    /// Gradient method: backprop, checkpoint[:M], adjoint or adjoint-checkpointed[:M].
    #[arg(long, value_parser = crate::solve_cmd::parse_grad, default_value = "backprop")]
    grad: GradMethod,
    /// Dynamics implementation: fused (hand-written kernels) or module (a burn module with JVP
    /// layers, burn's autodiff).
    #[arg(long, value_parser = parse_engine, default_value = "fused")]
    engine: Engine,
    /// Held-out samples for the test NLL.
    #[arg(long, default_value_t = 10_000)]
    n_test: usize,
    /// Threads (0: every core). The fused engine splits each batch's rows over them.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Output folder.
    #[arg(long, default_value = "runs/cnf")]
    out: PathBuf,
    /// No figures.
    #[arg(long)]
    no_fig: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    device: DeviceArg,
    #[command(flatten)]
    dist: crate::distributed::DistributedArgs,
}

/// Arguments of `nodal eval cnf`.
#[derive(Args)]
pub struct EvalCnfArgs {
    /// Weights written by `nodal train cnf` (model.safetensors).
    #[arg(long)]
    weights: PathBuf,
    /// Toy density the test samples come from.
    #[arg(long, value_parser = parse_toy)]
    data: Toy,
    /// Seed of the test set (the training seed + 1000 gives train's own test set).
    #[arg(long, default_value_t = 1000)]
    test_seed: u64,
    /// Held-out samples.
    #[arg(long, default_value_t = 10_000)]
    n_test: usize,
    /// rtol = atol of the solve.
    #[arg(long, default_value_t = 1e-5)]
    tol: f64,
    #[command(flatten)]
    device: DeviceArg,
}

/// Layer names as in PyTorch's `nn.Sequential` of the anchor (`net.0`, `net.2`, ...).
fn tensor_specs() -> Vec<(String, Vec<usize>)> {
    let mut v = Vec::new();
    for (l, w) in TOY_WIDTHS.windows(2).enumerate() {
        v.push((format!("net.{}.weight", 2 * l), vec![w[1], w[0]]));
        v.push((format!("net.{}.bias", 2 * l), vec![w[1]]));
    }
    v
}

fn save_params(path: &Path, params: &[f32]) -> Result<(), Failure> {
    let specs = tensor_specs();
    let mut o = 0;
    let mut parts = Vec::new();
    for (name, shape) in &specs {
        let n: usize = shape.iter().product();
        parts.push((name.as_str(), shape.clone(), &params[o..o + n]));
        o += n;
    }
    nodal::io::save_f32_tensors(path, &parts).map_err(Failure::output)
}

fn load_params(path: &Path) -> Result<Vec<f32>, Failure> {
    let specs = tensor_specs();
    let wanted: Vec<(&str, Vec<usize>)> = specs.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    Ok(load_f32_tensors(path, &wanted).map_err(Failure::input)?.concat())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// Mean and standard error of `-log p`.
fn nll_stats(lp: &[f64]) -> (f64, f64) {
    let n = lp.len() as f64;
    let mean = -lp.iter().sum::<f64>() / n;
    let var = lp.iter().map(|v| (-v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// Train, then write metrics.jsonl, summary.json, model.safetensors and cnf.png into `--out`;
/// print the summary. Exit codes: 0 done, 1 a solve failed or training diverged, 2 bad
/// options, 4 an output could not be written, 130/143 interrupted (what was done is saved).
pub fn train(a: TrainCnfArgs) -> CliResult {
    let threads = if a.threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { a.threads.min(256) };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(|e| Failure::Compute(format!("thread pool: {e}")))?;
    pool.install(|| train_in_pool(a, threads))
}

fn train_in_pool(a: TrainCnfArgs, threads: usize) -> CliResult {
    crate::validate::tolerances(a.tol, a.tol, true)?;
    crate::validate::non_negative("--kinetic", a.kinetic)?;
    crate::validate::non_negative("--jacobian", a.jacobian)?;
    crate::validate::positive("--lr", a.lr)?;
    crate::validate::count("--iters", a.iters, 1, 1_000_000)?;
    crate::validate::count("--batch", a.batch, 1, 1 << 20)?;
    crate::validate::count("--n-test", a.n_test, 2, 1 << 22)?;
    let (device, engine) = device_and_engine(&a.device, a.engine)?;
    let comm = a.dist.communicator()?;
    let root = comm.is_root();
    if root {
        std::fs::create_dir_all(&a.out).map_err(|e| Failure::Output(format!("{}: {e}", a.out.display())))?;
    }
    let cfg = CnfConfig {
        data: a.data,
        trace: a.trace,
        kinetic: a.kinetic,
        jacobian: a.jacobian,
        penalties_in_norm: a.penalties_in_norm,
        iters: a.iters,
        seed: a.seed,
        batch: a.batch,
        lr: a.lr,
        tol: a.tol,
        grad: a.grad,
        engine,
        n_test: a.n_test,
        device,
    };
    let interrupt = Interrupt::install();
    let ranks = comm.size();
    let mut trainer = CnfTrainer::new(cfg.clone()).with_communicator(comm).map_err(|e| Failure::Input(e.to_string()))?;
    if ranks > 1 && root {
        note(&format!("data-parallel over {ranks} ranks: each solves its shard of every batch of {}", a.batch));
    }
    let bar = if a.quiet || !root { ProgressBar::hidden() } else { ProgressBar::new(a.iters as u64) };
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed} < {eta}]").unwrap_or(ProgressStyle::default_bar()));
    let mut records: Vec<IterRecord> = Vec::with_capacity(a.iters);
    let mut metrics = String::new();
    let start = std::time::Instant::now();
    let mut failure = None;
    while trainer.iter() < a.iters {
        // Distributed: every rank stops at the same iteration when any was signalled.
        if trainer.comm().any(interrupt.requested()).map_err(|e| Failure::Compute(format!("distributed training: {e}")))? {
            break;
        }
        match trainer.step() {
            Ok(r) => {
                if r.iter % 10 == 0 {
                    bar.set_message(format!("nll {:.3} nfe {}", r.nll, r.nfe_forward));
                }
                bar.inc(1);
                metrics.push_str(&serde_json::to_string(&r).map_err(Failure::output)?);
                metrics.push('\n');
                records.push(r);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    bar.finish_and_clear();
    let train_s = start.elapsed().as_secs_f64();
    if !root {
        // Rank 0 writes, evaluates and prints; the others only report their own failure.
        return match failure {
            Some(e) => Err(Failure::Compute(e.to_string())),
            None if interrupt.requested() => Err(interrupt.failure("stopped; rank 0 saved the outputs".into())),
            None => Ok(()),
        };
    }
    write_atomic(&a.out.join("metrics.jsonl"), metrics.as_bytes()).map_err(Failure::output)?;
    let params = trainer.params();
    save_params(&a.out.join("model.safetensors"), &params)?;
    if let Some(e) = failure {
        return Err(Failure::Compute(format!("{e} (metrics and the last weights are in {})", a.out.display())));
    }
    let test = a.data.sample(a.n_test, a.seed + 1000);
    let t_eval = std::time::Instant::now();
    let (lp, test_nfe) = log_prob(&cfg, &params, &test).map_err(Failure::compute)?;
    let eval_s = t_eval.elapsed().as_secs_f64();
    let (test_nll, stderr) = nll_stats(&lp);
    let last: Vec<&IterRecord> = records.iter().rev().take(100).collect();
    let summary = json!({
        "task": "cnf",
        "data": a.data.name(),
        "trace": a.trace.name(),
        "engine": engine.name(),
        "device": a.device.device,
        "grad": a.grad.to_string(),
        "kinetic": a.kinetic,
        "jacobian": a.jacobian,
        "penalties_in_norm": a.penalties_in_norm,
        "iters": records.len(),
        "batch": a.batch,
        "tol": a.tol,
        "seed": a.seed,
        "test_nll": test_nll,
        "test_nll_stderr": stderr,
        "data_entropy": a.data.entropy(),
        "test_nfe": test_nfe,
        "median_ms_per_iter": median(records.iter().map(|r| r.ms).collect()),
        "nfe_forward": median(last.iter().map(|r| r.nfe_forward as f64).collect()),
        "nfe_backward": median(last.iter().map(|r| r.nfe_backward as f64).collect()),
        "train_seconds": train_s,
        "eval_seconds": eval_s,
        "parameters": params.len(),
        "threads": threads,
        "ranks": ranks,
    });
    let text = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
    write_atomic(&a.out.join("summary.json"), text.as_bytes()).map_err(Failure::output)?;
    if !a.no_fig {
        let fig = a.out.join("cnf.png");
        figure(&fig, &cfg, &params).map_err(Failure::Output)?;
        note(&format!("figure: {}", fig.display()));
    }
    if interrupt.requested() {
        return Err(interrupt.failure(format!("stopped after {} iterations; outputs in {}", records.len(), a.out.display())));
    }
    emit_json(&summary, false)
}

/// Print `{test_nll, test_nll_stderr, nfe, ...}` for saved weights on held-out samples.
/// Exit codes: 0 done, 1 the solve failed, 2 unusable weights or options.
pub fn eval(a: EvalCnfArgs) -> CliResult {
    crate::validate::tolerances(a.tol, a.tol, true)?;
    crate::validate::count("--n-test", a.n_test, 2, 1 << 22)?;
    let params = load_params(&a.weights)?;
    let mut cfg = CnfConfig::new(a.data);
    cfg.tol = a.tol;
    (cfg.device, cfg.engine) = device_and_engine(&a.device, Engine::Fused)?;
    let test = a.data.sample(a.n_test, a.test_seed);
    let start = std::time::Instant::now();
    let (lp, nfe) = log_prob(&cfg, &params, &test).map_err(Failure::compute)?;
    let (nll, se) = nll_stats(&lp);
    let o = json!({"task": "cnf", "data": a.data.name(), "test_nll": nll, "test_nll_stderr": se, "nfe": nfe,
        "data_entropy": a.data.entropy(), "n_test": a.n_test, "tol": a.tol, "seconds": start.elapsed().as_secs_f64()});
    emit_json(&o, false)
}

/// The device of `--device` and the engine that runs there: the fused engine is CPU code, so
/// any other device takes the module engine (with a note when `--engine fused` was given).
fn device_and_engine(arg: &DeviceArg, engine: Engine) -> Result<(Device, Engine), Failure> {
    let device = arg.device()?;
    if arg.is_cpu() || engine == Engine::Module {
        return Ok((device, engine));
    }
    note(&format!("--device {}: the module engine runs there (the fused engine is CPU-only)", arg.device));
    Ok((device, Engine::Module))
}

/// Three panels over `[-4, 4]²`: a histogram of the data, the learned density `exp(log p)` on a
/// grid, and a histogram of the model's samples, each on its own viridis scale.
fn figure(path: &Path, cfg: &CnfConfig, params: &[f32]) -> Result<(), String> {
    use plotters::prelude::*;
    const N: usize = 120;
    const LIM: f64 = 4.0;
    let cell = 2.0 * LIM / N as f64;
    let hist = |pts: &[f64]| {
        let mut h = vec![0.0; N * N];
        for p in pts.chunks(2) {
            let (i, j) = (((p[0] + LIM) / cell).floor(), ((p[1] + LIM) / cell).floor());
            if i >= 0.0 && j >= 0.0 && (i as usize) < N && (j as usize) < N {
                h[(j as usize) * N + i as usize] += 1.0;
            }
        }
        h
    };
    let data = hist(&cfg.data.sample(50_000, 7));
    let grid: Vec<f64> =
        (0..N * N).flat_map(|k| [-LIM + (k % N) as f64 * cell + 0.5 * cell, -LIM + (k / N) as f64 * cell + 0.5 * cell]).collect();
    let (lp, _) = log_prob(cfg, params, &grid).map_err(|e| format!("density grid: {e}"))?;
    let density: Vec<f64> = lp.iter().map(|v| v.exp()).collect();
    let samples = hist(&sample(cfg, params, 50_000, 11).map_err(|e| format!("sampling: {e}"))?);
    crate::figure::font();
    crate::figure::atomically(path, |tmp| {
        let root = BitMapBackend::new(tmp, (1260, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let title = format!("CNF on {}: data, learned density, samples", cfg.data.name());
        root.draw(&Text::new(title, (20, 12), ("sans-serif", 28).into_font())).map_err(|e| e.to_string())?;
        let panels = [("data", &data), ("learned density", &density), ("samples", &samples)];
        for (p, (caption, vals)) in panels.iter().enumerate() {
            let (x0, y0, side) = (20 + p as i32 * 415, 80, 380i32);
            let max = vals.iter().cloned().fold(0.0f64, f64::max).max(1e-300);
            let px = side as f64 / N as f64;
            for j in 0..N {
                for i in 0..N {
                    let s = (vals[j * N + i] / max).sqrt();
                    let c = crate::figure::palette::sequential(s);
                    let (xa, ya) = (x0 + (i as f64 * px) as i32, y0 + side - ((j + 1) as f64 * px) as i32);
                    let (xb, yb) = (x0 + ((i + 1) as f64 * px) as i32, y0 + side - (j as f64 * px) as i32);
                    root.draw(&Rectangle::new([(xa, ya), (xb, yb)], c.filled())).map_err(|e| e.to_string())?;
                }
            }
            root.draw(&Text::new(caption.to_string(), (x0, y0 - 30), ("sans-serif", 22).into_font())).map_err(|e| e.to_string())?;
        }
        root.draw(&Text::new("[-4, 4] x [-4, 4]; colour ~ sqrt of density".to_string(), (20, 472), ("sans-serif", 18).into_font()))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })
}

/// Arguments of `nodal train cnf-mnist`.
#[derive(Args)]
pub struct TrainCnfMnistArgs {
    /// Folder with the four MNIST IDX files (.gz or plain).
    #[arg(long, default_value = crate::mnist_cmd::DEFAULT_DATA)]
    data_dir: PathBuf,
    /// Iterations.
    #[arg(long, default_value_t = 1000)]
    iters: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Hidden channels of the conv dynamics.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// rtol = atol of the training solves (evaluation uses the same).
    #[arg(long, default_value_t = 1e-4)]
    tol: f64,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Test images scored at the end (bits per dimension).
    #[arg(long, default_value_t = 1000)]
    n_test: usize,
    /// Output folder.
    #[arg(long, default_value = "runs/cnf-mnist")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Train the 14 x 14 MNIST flow; write metrics.jsonl, summary.json (test bits/dim),
/// model.safetensors and samples.png. Exit codes as `train cnf`.
pub fn train_mnist(a: TrainCnfMnistArgs) -> CliResult {
    use nodal_experiments::cnf::images::{ImageCnfConfig, ImageCnfTrainer, PIXELS, SIDE, downsample};
    use nodal_experiments::mnist::{Part, load};
    crate::validate::tolerances(a.tol, a.tol, true)?;
    crate::validate::count("--iters", a.iters, 1, 1_000_000)?;
    crate::validate::count("--batch", a.batch, 1, 4096)?;
    crate::validate::count("--channels", a.channels, 1, 256)?;
    crate::validate::count("--n-test", a.n_test, 1, 10_000)?;
    crate::validate::positive("--lr", a.lr)?;
    let train = load(&a.data_dir, Part::Train).map_err(Failure::input)?;
    let test = load(&a.data_dir, Part::Test).map_err(Failure::input)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Failure::Output(format!("{}: {e}", a.out.display())))?;
    let cfg = ImageCnfConfig { channels: a.channels, batch: a.batch, iters: a.iters, lr: a.lr, tol: a.tol, seed: a.seed };
    let mut t = ImageCnfTrainer::new(cfg, downsample(&train.images.pixels, train.len()));
    let interrupt = Interrupt::install();
    let bar = if a.quiet { ProgressBar::hidden() } else { ProgressBar::new(a.iters as u64) };
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed} < {eta}]").unwrap_or(ProgressStyle::default_bar()));
    let (mut metrics, mut ms, mut nfe) = (String::new(), Vec::new(), Vec::new());
    let start = std::time::Instant::now();
    let mut failure = None;
    while t.iter() < a.iters && !interrupt.requested() {
        match t.step() {
            Ok(r) => {
                bar.set_message(format!("bpd {:.3} nfe {}", r.bits_per_dim, r.nfe_forward));
                bar.inc(1);
                metrics.push_str(&serde_json::to_string(&r).map_err(Failure::output)?);
                metrics.push('\n');
                ms.push(r.ms);
                nfe.push(r.nfe_forward as f64);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        if t.iter() % 50 == 0 {
            write_atomic(&a.out.join("metrics.jsonl"), metrics.as_bytes()).map_err(Failure::output)?;
        }
    }
    bar.finish_and_clear();
    let train_s = start.elapsed().as_secs_f64();
    write_atomic(&a.out.join("metrics.jsonl"), metrics.as_bytes()).map_err(Failure::output)?;
    let named = t.named_weights();
    let parts: Vec<(&str, Vec<usize>, &[f32])> = named.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.as_slice())).collect();
    nodal::io::save_f32_tensors(&a.out.join("model.safetensors"), &parts).map_err(Failure::output)?;
    if let Some(e) = failure {
        return Err(Failure::Compute(format!("{e} (metrics and the last weights are in {})", a.out.display())));
    }
    let test_px = downsample(&test.images.pixels, a.n_test.min(test.len()));
    let t_eval = std::time::Instant::now();
    let (bpd, test_nfe) = t.evaluate(&test_px, 100, 1).map_err(Failure::compute)?;
    let eval_s = t_eval.elapsed().as_secs_f64();
    let samples = t.sample(64, 2).map_err(Failure::compute)?;
    let fig = a.out.join("samples.png");
    sample_grid(&fig, &samples, SIDE, PIXELS, 8).map_err(Failure::Output)?;
    let last = nfe.len().saturating_sub(100);
    let summary = json!({
        "task": "cnf-mnist", "side": SIDE, "channels": a.channels, "batch": a.batch, "iters": t.iter(), "tol": a.tol, "lr": a.lr,
        "seed": a.seed, "trace": "hutchinson", "test_bits_per_dim": bpd, "n_test": test_px.len() / PIXELS, "test_nfe": test_nfe,
        "median_ms_per_iter": median(ms), "nfe_forward": median(nfe[last..].to_vec()), "train_seconds": train_s, "eval_seconds": eval_s,
    });
    write_atomic(&a.out.join("summary.json"), serde_json::to_string_pretty(&summary).map_err(Failure::output)?.as_bytes())
        .map_err(Failure::output)?;
    note(&format!("samples: {}", fig.display()));
    if interrupt.requested() {
        return Err(interrupt.failure(format!("stopped after {} iterations; outputs in {}", t.iter(), a.out.display())));
    }
    emit_json(&summary, false)
}

/// A `cols`-wide grid of grey images (`side x side`, intensities in `[0, 1]`), 4 px per pixel.
fn sample_grid(path: &Path, images: &[f32], side: usize, pixels: usize, cols: usize) -> Result<(), String> {
    use plotters::prelude::*;
    let n = images.len() / pixels;
    let rows = n.div_ceil(cols);
    let (cell, gap) = (4 * side as u32, 4u32);
    let (w, h) = (cols as u32 * (cell + gap) + gap, rows as u32 * (cell + gap) + gap);
    crate::figure::atomically(path, |tmp| {
        let root = BitMapBackend::new(tmp, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for i in 0..n {
            let (gx, gy) = (gap + (i % cols) as u32 * (cell + gap), gap + (i / cols) as u32 * (cell + gap));
            for p in 0..pixels {
                let v = (255.0 * (1.0 - images[i * pixels + p])).round().clamp(0.0, 255.0) as u8;
                let (x, y) = (gx + 4 * (p % side) as u32, gy + 4 * (p / side) as u32);
                root.draw(&Rectangle::new([(x as i32, y as i32), (x as i32 + 4, y as i32 + 4)], RGBColor(v, v, v).filled()))
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())
    })
}
