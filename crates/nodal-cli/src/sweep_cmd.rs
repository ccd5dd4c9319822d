//! `nodal sweep`: trained models evaluated over a grid of test-time tolerances and methods, to
//! show where loosening the tolerance stops saving work and starts costing accuracy; and, for the
//! spiral, a training-tolerance study (models trained at several tolerances, each evaluated at
//! several).

use crate::failure::{CliResult, Failure};
use crate::figure::Axis;
use crate::interrupt::Interrupt;
use crate::mnist_cmd::{DEFAULT_DATA, bar};
use crate::output::{emit, note};
use crate::plot;
use clap::{Args, ValueEnum};
use nodal::burn::tensor::Device;
use nodal::io::write_atomic;
use nodal::neural_ode::OdeSettings;
use nodal::solve::{SolveOptions, Tableau, method_by_name};
use nodal_experiments::mnist::models::{ModelConfig, load_weights};
use nodal_experiments::mnist::train::{evaluate, kind_of_weights};
use nodal_experiments::mnist::{Part, load};
use nodal_experiments::spiral::{CubedMlp, SpiralConfig, SpiralTrainer, predict_with, true_trajectory};
use serde_json::{Value, json};
use std::path::PathBuf;

/// Tasks a sweep can evaluate.
#[derive(Clone, Copy, ValueEnum)]
pub enum SweepTask {
    /// The spiral demo (test loss: mean absolute error over the whole trajectory).
    Spiral,
    /// MNIST ODE-Net (test accuracy on the test images).
    Mnist,
}

/// Arguments of `nodal sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The task.
    #[arg(long, value_enum)]
    task: SweepTask,
    /// Trained weights (model.safetensors from `nodal train`); not needed with --train-rtol.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Test-time relative tolerances (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8])]
    rtol: Vec<f64>,
    /// atol = rtol x this ratio.
    #[arg(long, default_value_t = 1e-2)]
    atol_ratio: f64,
    /// Methods (adaptive ones).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["dopri5".to_string(), "bosh3".to_string(), "tsit5".to_string()])]
    method: Vec<String>,
    /// Repeats per point (median time; MNIST always runs once per point).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Spiral training-tolerance study: train one model per relative tolerance listed here
    /// (atol = rtol x 1e-2, --iters iterations, --seed) and evaluate each over the grid.
    #[arg(long, value_delimiter = ',')]
    train_rtol: Vec<f64>,
    /// Training iterations per model of the training-tolerance study.
    #[arg(long, default_value_t = 2000)]
    iters: usize,
    /// Seed of the training-tolerance study.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder with the MNIST IDX files.
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Evaluate on the first N MNIST test images only (default: all 10,000).
    #[arg(long)]
    limit_test: Option<usize>,
    /// Examples per MNIST evaluation batch.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Print one JSON array instead of a markdown table.
    #[arg(long)]
    json: bool,
    /// Also write sweep.md, sweep.json and sweep.png into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Run the sweep. Points that fail are rows with an `error`; when every point failed the
/// sweep fails (exit 1) after writing them.
pub fn run(a: SweepArgs) -> CliResult {
    sweep(&a)
}

fn usage(e: impl std::fmt::Display) -> Failure {
    Failure::input(e)
}

fn methods(a: &SweepArgs) -> Result<Vec<(String, &'static Tableau)>, Failure> {
    a.method
        .iter()
        .map(|name| match method_by_name(name).filter(|t| t.error_order.is_some()) {
            Some(t) => Ok((name.clone(), t)),
            None => Err(usage(format!("{name:?} is not an adaptive method"))),
        })
        .collect()
}

fn sweep(a: &SweepArgs) -> Result<(), Failure> {
    if a.rtol.iter().chain(&a.train_rtol).any(|r| !(r.is_finite() && *r >= f32::MIN_POSITIVE as f64))
        || !(a.atol_ratio.is_finite() && a.atol_ratio > 0.0)
    {
        return Err(usage("tolerances must be finite and positive (and representable in float32, the models' type)"));
    }
    if a.rtol.is_empty() || a.method.is_empty() {
        return Err(usage("--rtol and --method need at least one value each"));
    }
    crate::validate::count("repeats", a.repeats, 1, 10_000)?;
    crate::validate::count("iters", a.iters, 1, nodal_experiments::spiral::MAX_ITERS)?;
    crate::validate::count("batch-size", a.batch_size, 1, 60_000)?;
    if a.limit_test == Some(0) {
        return Err(usage("--limit-test 0 leaves no images"));
    }
    let methods = methods(a)?;
    if let Some(dir) = &a.out {
        crate::mnist_cmd::check_writable(dir)?;
    }
    let (rows, metric) = match a.task {
        SweepTask::Spiral => (spiral(a, &methods)?, "loss"),
        SweepTask::Mnist => (mnist(a, &methods)?, "accuracy"),
    };
    let md = markdown(&rows, metric);
    let arr = Value::Array(rows.clone());
    if a.json {
        emit(&arr.to_string())?;
    } else {
        emit(md.trim_end())?;
    }
    if let Some(dir) = &a.out {
        write_atomic(&dir.join("sweep.md"), md.as_bytes()).map_err(Failure::file)?;
        write_atomic(&dir.join("sweep.json"), arr.to_string().as_bytes()).map_err(Failure::file)?;
        let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for r in rows.iter().filter(|r| r.get(metric).is_some()) {
            let name = match r.get("train_rtol") {
                Some(t) => format!("{} trained at {:.0e}", r["method"].as_str().unwrap_or(""), t.as_f64().unwrap_or(f64::NAN)),
                None => r["method"].as_str().unwrap_or("").to_string(),
            };
            let pt = (r["nfe"].as_f64().unwrap_or(f64::NAN), r[metric].as_f64().unwrap_or(f64::NAN));
            match series.iter_mut().find(|s| s.0 == name) {
                Some(s) => s.1.push(pt),
                None => series.push((name, vec![pt])),
            }
        }
        let values: Vec<f64> = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).filter(|v| v.is_finite()).collect();
        let best = |better: fn(f64, f64) -> bool| values.iter().copied().reduce(|x, y| if better(y, x) { y } else { x });
        let (title, x, y) = match a.task {
            SweepTask::Spiral => (
                format!(
                    "spiral: test loss vs evaluations over test-time tolerances (best L1 {:.4})",
                    best(|y, x| y < x).unwrap_or(f64::NAN)
                ),
                Axis::log("function evaluations per solve"),
                Axis::linear("test loss (mean absolute error)").clamp(0.0, f64::INFINITY),
            ),
            SweepTask::Mnist => {
                // Accuracy in percent, never past 100, at least one point wide so that one test
                // image's difference does not fill the axis.
                for s in &mut series {
                    for p in &mut s.1 {
                        p.1 *= 100.0;
                    }
                }
                (
                    format!(
                        "MNIST ODE-Net: test accuracy vs evaluations per batch over test-time tolerances (best {:.2}%)",
                        best(|y, x| y > x).map_or(f64::NAN, |v| 100.0 * v)
                    ),
                    Axis::log("function evaluations per batch"),
                    Axis::linear("test accuracy (%)").clamp(0.0, 100.0).min_span(1.0),
                )
            }
        };
        let rtols: Vec<f64> = rows.iter().filter_map(|r| r["rtol"].as_f64()).collect();
        let (lo, hi) = rtols.iter().fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(*v), b.max(*v)));
        let caption = format!("one point per test-time rtol, {lo:.0e} (most evaluations) to {hi:.0e}");
        plot::metric_vs_nfe(&dir.join("sweep.png"), &series, &title, &caption, x, y).map_err(Failure::Output)?;
    }
    let failed = rows.iter().filter(|r| r.get("error").is_some()).count();
    if failed == rows.len() {
        return Err(Failure::Compute(format!("every one of the {failed} points failed (see their errors above)")));
    }
    if failed > 0 {
        note(&format!("warning: {failed} of {} points failed", rows.len()));
    }
    Ok(())
}

/// Spiral: the weights given, or one model per training tolerance.
fn spiral(a: &SweepArgs, methods: &[(String, &'static Tableau)]) -> Result<Vec<Value>, Failure> {
    let (ts, truth) = true_trajectory();
    let mut models: Vec<(Option<f64>, CubedMlp)> = Vec::new();
    if a.train_rtol.is_empty() {
        let w = a.weights.as_ref().ok_or_else(|| usage("--weights is required (or --train-rtol for a training-tolerance study)"))?;
        models.push((None, CubedMlp::load(w).map_err(usage)?));
    }
    for &tr_rtol in &a.train_rtol {
        let cfg = SpiralConfig { iters: a.iters, seed: a.seed, rtol: tr_rtol, atol: tr_rtol * 1e-2, ..SpiralConfig::default() };
        cfg.validate().map_err(usage)?;
        let mut tr = SpiralTrainer::new(cfg).map_err(usage)?;
        let interrupt = Interrupt::install();
        let b = bar(a.iters, a.quiet, &format!("train at rtol {tr_rtol:.0e} {{bar:30}} {{pos}}/{{len}} [{{elapsed}} < {{eta}}]"));
        let mut nfe = 0;
        for i in 0..a.iters {
            if interrupt.requested() {
                b.finish_and_clear();
                return Err(
                    interrupt.failure(format!("interrupted while training at rtol {tr_rtol:e} (iteration {i}); nothing was written"))
                );
            }
            nfe += tr.step().map_err(|e| Failure::Compute(format!("training at rtol {tr_rtol:e}, iteration {}: {e}", i + 1)))?.nfe_forward;
            b.inc(1);
        }
        b.finish_and_clear();
        if !a.quiet {
            note(&format!("trained at rtol {tr_rtol:.0e}: {:.1} forward evaluations per iteration", nfe as f64 / a.iters.max(1) as f64));
        }
        models.push((Some(tr_rtol), tr.model));
    }
    let mut rows = Vec::new();
    for (train_rtol, model) in &mut models {
        for (name, tab) in methods {
            for &rtol in &a.rtol {
                let atol = rtol * a.atol_ratio;
                let opts = SolveOptions::new(tab).with_tol(rtol, atol).with_max_steps(1_000_000);
                let mut times = Vec::new();
                let mut last = None;
                for _ in 0..a.repeats.max(1) {
                    let start = std::time::Instant::now();
                    let r = predict_with(model, &ts, &truth, &opts);
                    times.push(start.elapsed().as_secs_f64());
                    last = Some(r);
                }
                times.sort_by(|x, y| x.total_cmp(y));
                let mut row = match last.unwrap_or_else(|| Err(nodal::solve::SolveError::InvalidStep("no repeat ran".into()))) {
                    Ok((_, loss, nfe)) => {
                        json!({"method": name, "rtol": rtol, "atol": atol, "nfe": nfe, "seconds": times[times.len() / 2], "loss": loss})
                    }
                    Err(e) => json!({"method": name, "rtol": rtol, "atol": atol, "error": e.to_string()}),
                };
                if let Some(t) = train_rtol {
                    row["train_rtol"] = json!(t);
                }
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// MNIST: an ODE-Net's weights evaluated at every (method, tolerance).
fn mnist(a: &SweepArgs, methods: &[(String, &'static Tableau)]) -> Result<Vec<Value>, Failure> {
    if !a.train_rtol.is_empty() {
        return Err(usage("--train-rtol is available for the spiral only (each MNIST model takes an hour or more to train here)"));
    }
    let w = a.weights.as_ref().ok_or_else(|| usage("--weights is required"))?;
    let kind = kind_of_weights(w).map_err(usage)?.ok_or_else(|| usage(format!("{}: the file does not name its model", w.display())))?;
    if !kind.is_ode() {
        return Err(usage(format!("{}: a {} has no ODE block to sweep (use ODE-Net weights)", w.display(), kind.name())));
    }
    let mut model = load_weights(ModelConfig::new(kind).init_seeded(&Device::flex(), 0), w).map_err(usage)?;
    let test = load(&a.data, Part::Test).map_err(usage)?.truncate(a.limit_test.unwrap_or(usize::MAX));
    if test.is_empty() {
        return Err(usage("the test set is empty"));
    }
    let interrupt = Interrupt::install();
    let mut rows = Vec::new();
    for (name, tab) in methods {
        for &rtol in &a.rtol {
            let atol = rtol * a.atol_ratio;
            let s = OdeSettings::new(SolveOptions::new(tab).with_tol(rtol, atol).with_max_steps(100_000));
            model.set_ode_settings(s.clone(), s);
            let b = bar(test.len(), a.quiet, &format!("{name} rtol {rtol:.0e} {{bar:30}} {{pos}}/{{len}} [{{elapsed}} < {{eta}}]"));
            let start = std::time::Instant::now();
            let r = evaluate(&model, &test, a.batch_size, &interrupt.flag, &mut |done, _| b.set_position(done as u64));
            b.finish_and_clear();
            let secs = start.elapsed().as_secs_f64();
            rows.push(match r {
                Ok(None) => return Err(interrupt.failure("interrupted during the sweep; nothing was written".into())),
                Ok(Some(r)) => json!({"method": name, "rtol": rtol, "atol": atol, "nfe": r.nfe, "seconds": secs, "accuracy": r.accuracy, "examples": r.examples}),
                Err(e) => json!({"method": name, "rtol": rtol, "atol": atol, "error": e.to_string()}),
            });
        }
    }
    Ok(rows)
}

fn markdown(rows: &[Value], metric: &str) -> String {
    let study = rows.iter().any(|r| r.get("train_rtol").is_some());
    let head = if metric == "loss" { "test loss (L1)" } else { "test accuracy" };
    let nfe = if metric == "loss" { "nfe" } else { "nfe per batch" };
    let mut md = String::new();
    if study {
        md += "| train rtol ";
    }
    md += &format!("| method | rtol | atol | {nfe} | ms | {head} |\n");
    if study {
        md += "|---";
    }
    md += "|---|---|---|---|---|---|\n";
    for r in rows {
        if let Some(t) = r.get("train_rtol") {
            md += &format!("| {:.0e} ", t.as_f64().unwrap_or(f64::NAN));
        }
        let (m, rt, at) =
            (r["method"].as_str().unwrap_or(""), r["rtol"].as_f64().unwrap_or(f64::NAN), r["atol"].as_f64().unwrap_or(f64::NAN));
        if let Some(e) = r.get("error") {
            md += &format!("| {m} | {rt:.0e} | {at:.0e} | failed: {} | | |\n", e.as_str().unwrap_or(""));
        } else {
            md += &format!(
                "| {m} | {rt:.0e} | {at:.0e} | {} | {:.3} | {:.5} |\n",
                r["nfe"],
                r["seconds"].as_f64().unwrap_or(f64::NAN) * 1e3,
                r[metric].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    md
}
