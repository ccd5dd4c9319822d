//! `nodal train spiral`: torchdiffeq's spiral demo, end to end, with metrics, weights and figures.

use crate::failure::{CliResult, Failure};
use crate::interrupt::Interrupt;
use crate::output::{emit_json, note};
use crate::plot;
use clap::Args;
use nodal::io::{MAX_JSON_BYTES, read_text_capped, write_atomic};
use nodal::solve::Dynamics;
use nodal::solve::grad::GradMethod;
use nodal::solve::regularise::Penalty;
use nodal_experiments::spiral::{MAX_ITERS, SpiralCheckpoint, SpiralConfig, SpiralTrainer};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `nodal train spiral`.
#[derive(Args)]
pub struct TrainArgs {
    /// Iterations.
    #[arg(long, default_value_t = 2000)]
    iters: usize,
    /// Seed of the initial weights and the batch sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Gradient method: backprop, checkpoint, checkpoint:M, adjoint or adjoint-checkpointed[:M].
    #[arg(long, value_parser = crate::solve_cmd::parse_grad, default_value = "backprop")]
    grad: GradMethod,
    /// Shorthand for --grad adjoint.
    #[arg(long)]
    adjoint: bool,
    /// Output folder.
    #[arg(long, default_value = "runs/spiral")]
    out: PathBuf,
    /// Training-time relative tolerance.
    #[arg(long, default_value_t = 1e-7)]
    rtol: f64,
    /// Training-time absolute tolerance.
    #[arg(long, default_value_t = 1e-9)]
    atol: f64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Weight of the kinetic-energy penalty, the integral of ||f||^2 (Finlay et al. 2020); 0 = off.
    #[arg(long, default_value_t = 0.0)]
    kinetic: f64,
    /// Weight of the Jacobian Frobenius penalty, the integral of ||df/dy||_F^2 by a Hutchinson
    /// estimate (Finlay et al. 2020); 0 = off.
    #[arg(long, default_value_t = 0.0)]
    jacobian: f64,
    /// Rademacher probe vectors of the Jacobian penalty (fresh ones every iteration), 1 to 1024.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    probes: u64,
    /// Weight of the second-order penalty, the integral of ||d^2y/dt^2||^2 (Kelly et al. 2020,
    /// K = 2); 0 = off.
    #[arg(long, default_value_t = 0.0)]
    order2: f64,
    /// Save a checkpoint every N iterations (and on interrupt and at the end); a checkpoint in
    /// --out is resumed by the same command.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    #[command(flatten)]
    device: crate::device_arg::DeviceArg,
}

/// The penalties switched on by the flags, with their weights.
pub fn penalties(kinetic: f64, jacobian: f64, probes: u64, order2: f64) -> Result<Vec<(Penalty, f64)>, Failure> {
    let mut v = Vec::new();
    for (name, w, p) in [
        ("kinetic", kinetic, Penalty::Kinetic),
        ("jacobian", jacobian, Penalty::JacobianFrobenius { probes: probes as usize }),
        ("order2", order2, Penalty::Order2),
    ] {
        if !w.is_finite() || w < 0.0 {
            return Err(Failure::Input(format!("--{name} must be a finite weight >= 0 (got {w})")));
        }
        if w > 0.0 {
            v.push((p, w));
        }
    }
    Ok(v)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The files of a run folder.
struct RunFiles {
    metrics: PathBuf,
    checkpoint: PathBuf,
    model: PathBuf,
}

impl RunFiles {
    fn in_dir(out: &Path) -> Self {
        Self { metrics: out.join("metrics.jsonl"), checkpoint: out.join("checkpoint.json"), model: out.join("model.safetensors") }
    }
}

/// Per-iteration figures kept for the summary (re-read from metrics.jsonl on resume).
#[derive(Default)]
struct History {
    ms: Vec<f64>,
    losses: Vec<f64>,
    nfe_fwd: Vec<f64>,
    nfe_total: usize,
}

impl History {
    fn push(&mut self, v: &serde_json::Value) -> Option<()> {
        self.ms.push(v.get("ms")?.as_f64()?);
        self.losses.push(v.get("loss")?.as_f64()?);
        let f = v.get("nfe_forward")?.as_u64()? as usize;
        self.nfe_fwd.push(f as f64);
        self.nfe_total += f + v.get("nfe_backward")?.as_u64()? as usize;
        Some(())
    }
}

/// Resume from `--out`'s checkpoint when there is one: the trainer continues from it and
/// metrics.jsonl is cut back to the checkpoint's iteration (lines written after it are redone).
fn resume(tr: &mut SpiralTrainer, files: &RunFiles) -> Result<History, Failure> {
    let mut h = History::default();
    if !files.checkpoint.is_file() {
        return Ok(h);
    }
    let bad = |r: String| Failure::Input(format!("{}: {r}; use another --out or delete the checkpoint", files.checkpoint.display()));
    let text = read_text_capped(&files.checkpoint, MAX_JSON_BYTES, "a checkpoint").map_err(|e| bad(e.to_string()))?;
    let ck: SpiralCheckpoint = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    tr.resume_from(&ck).map_err(bad)?;
    let metrics =
        read_text_capped(&files.metrics, 1 << 30, "a metrics file").map_err(|e| bad(format!("cannot resume its metrics: {e}")))?;
    let mut kept = String::new();
    for (i, line) in metrics.lines().take(ck.iter).enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(format!("metrics.jsonl line {}: {e}", i + 1)))?;
        h.push(&v).ok_or_else(|| bad(format!("metrics.jsonl line {} lacks loss, ms or nfe", i + 1)))?;
        kept.push_str(line);
        kept.push('\n');
    }
    if h.losses.len() != ck.iter {
        return Err(bad(format!("metrics.jsonl has {} lines, the checkpoint is at iteration {}", h.losses.len(), ck.iter)));
    }
    write_atomic(&files.metrics, kept.as_bytes()).map_err(Failure::file)?;
    Ok(h)
}

/// Metrics on disk first (flushed and synced), then the checkpoint that counts them, then the
/// model: a folder read at any moment has a checkpoint whose iterations are all in the metrics.
fn save_progress(tr: &SpiralTrainer, metrics: &mut std::io::BufWriter<std::fs::File>, files: &RunFiles) -> Result<(), Failure> {
    let werr = |e: std::io::Error| Failure::Output(format!("{}: {e}", files.metrics.display()));
    metrics.flush().map_err(werr)?;
    metrics.get_ref().sync_data().map_err(werr)?;
    let ck = serde_json::to_string(&tr.checkpoint()).map_err(Failure::output)?;
    write_atomic(&files.checkpoint, ck.as_bytes()).map_err(Failure::file)?;
    tr.model.save(&files.model).map_err(Failure::file)
}

/// Train; writes metrics.jsonl, checkpoint.json, summary.json, model.safetensors and PNG
/// figures into `--out`. Every option is checked before anything in `--out` is touched.
/// SIGINT or SIGTERM finishes the current iteration, saves the checkpoint and the model and
/// exits with 130 or 143; the same command then resumes.
pub fn run(a: TrainArgs, memory_limit: u64) -> CliResult {
    let interrupt = Interrupt::install();
    let grad = if a.adjoint { GradMethod::Adjoint } else { a.grad };
    let penalties = penalties(a.kinetic, a.jacobian, a.probes, a.order2)?;
    crate::validate::count("iters", a.iters, 1, MAX_ITERS)?;
    crate::validate::tolerances(a.rtol, a.atol, true)?;
    let cfg = SpiralConfig {
        iters: a.iters,
        seed: a.seed,
        grad,
        rtol: a.rtol,
        atol: a.atol,
        penalties,
        max_memory: memory_limit as usize,
        ..SpiralConfig::default()
    };
    cfg.validate().map_err(Failure::Input)?;
    // `None`: the fused host MLP (the CPU default); a device: burn modules there.
    let device = if a.device.is_cpu() { None } else { Some(a.device.device()?.autodiff()) };
    if device.is_some() && !cfg.penalties.is_empty() {
        return Err(Failure::Input(format!("--device {}: the penalties train on the CPU path only", a.device.device)));
    }
    let mut tr = SpiralTrainer::new(cfg).map_err(Failure::input)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Failure::Output(format!("{}: {e}", a.out.display())))?;
    let files = RunFiles::in_dir(&a.out);
    let mut hist = resume(&mut tr, &files)?;
    let start_iter = tr.iter();
    if start_iter > 0 {
        note(&format!("resuming at iteration {} of {} from {}", start_iter + 1, a.iters, files.checkpoint.display()));
    }
    let mut metrics = crate::output::open_metrics(&files.metrics, start_iter > 0)?;
    let bar = crate::output::iteration_bar(a.iters, start_iter, a.quiet);
    let every = a.checkpoint_every as usize;
    while tr.iter() < a.iters {
        if interrupt.requested() {
            bar.finish_and_clear();
            save_progress(&tr, &mut metrics, &files)?;
            return Err(interrupt.failure(format!(
                "interrupted after iteration {}: checkpoint and model saved in {}; rerun the same command to resume",
                tr.iter(),
                a.out.display()
            )));
        }
        let stepped = match &device {
            Some(d) => tr.step_on(d),
            None => tr.step(),
        };
        let r = match stepped {
            Ok(r) => r,
            Err(e) => {
                bar.finish_and_clear();
                let saved = save_progress(&tr, &mut metrics, &files);
                let what = if saved.is_ok() { "the checkpoint and model before it are saved" } else { "saving the checkpoint failed too" };
                return Err(Failure::Compute(format!("iteration {}: solve failed: {e} ({what})", tr.iter() + 1)));
            }
        };
        let line = json!({"iter": r.iter, "loss": r.loss, "ms": r.ms, "nfe_forward": r.nfe_forward, "nfe_backward": r.nfe_backward, "penalties": r.penalties});
        hist.push(&line);
        if let Err(e) = writeln!(metrics, "{line}") {
            bar.finish_and_clear();
            let model = tr.model.save(&files.model);
            return Err(Failure::Output(format!(
                "{}: {e} (at iteration {}; {})",
                files.metrics.display(),
                r.iter,
                if model.is_ok() { "the model was saved" } else { "the model could not be saved either" }
            )));
        }
        if r.iter % every == 0 {
            save_progress(&tr, &mut metrics, &files)?;
        }
        if r.iter % 50 == 0 {
            bar.set_message(format!("loss {:.4}  nfe {}+{}", r.loss, r.nfe_forward, r.nfe_backward));
        }
        bar.inc(1);
    }
    save_progress(&tr, &mut metrics, &files)?;
    bar.finish_and_clear();
    let (pred, test_loss, test_nfe) = tr.predict(1e-7, 1e-9).map_err(|e| Failure::Compute(format!("test solve failed: {e}")))?;
    let History { ms, mut losses, nfe_fwd, nfe_total } = hist;
    let done = losses.len();
    let mut block = |lo: usize, hi: usize| median(&mut losses.get_mut(lo.min(done)..hi.min(done)).map(|s| s.to_vec()).unwrap_or_default());
    let (b901, blast) = (block(900, 1000), block(done.saturating_sub(100), done));
    let test_by_rtol: Vec<serde_json::Value> = [1e-3, 1e-5, 1e-7]
        .iter()
        .map(|&rt| {
            let mut m = tr.model.clone();
            match nodal_experiments::spiral::predict(&mut m, &tr.ts, &tr.ys, rt, rt * 1e-2) {
                Ok((_, l, n)) => json!({"rtol": rt, "atol": rt * 1e-2, "nfe": n, "loss": l}),
                Err(e) => json!({"rtol": rt, "error": e.to_string()}),
            }
        })
        .collect();
    let summary = json!({
        "task": "spiral",
        "iters": done,
        "resumed_at": start_iter,
        "grad": grad.to_string(),
        "device": a.device.device,
        "seed": a.seed,
        "median_ms_per_iter": median(&mut ms.clone()),
        "test_loss": test_loss,
        "test_nfe": test_nfe,
        "nfe_total": nfe_total,
        "median_train_loss_901_1000": b901,
        "median_train_loss_last_100": blast,
        "median_nfe_forward_last_100": median(&mut nfe_fwd[done.saturating_sub(100)..].to_vec()),
        "penalties": tr.cfg.penalties.iter().map(|(p, w)| json!({"name": p.name(), "weight": w,
            "probes": if let Penalty::JacobianFrobenius { probes } = p { *probes } else { 0 }})).collect::<Vec<_>>(),
        "test_nfe_by_rtol": test_by_rtol,
        "ms_per_nfe": ms.iter().sum::<f64>() / nfe_total.max(1) as f64,
    });
    let pretty = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
    write_atomic(&a.out.join("summary.json"), pretty.as_bytes()).map_err(Failure::file)?;
    let title = format!("spiral after {done} iterations (test L1 {test_loss:.4})");
    plot::trajectories(&a.out.join("trajectories.png"), &tr.ts, &tr.ys, &pred, &title).map_err(Failure::Output)?;
    plot::phase(&a.out.join("phase.png"), &tr.ys, &pred, &format!("spiral phase portrait, {done} iterations: test L1 {test_loss:.4}"))
        .map_err(Failure::Output)?;
    let mut model = tr.model.clone();
    let mut field = |x: f64, y: f64| {
        let mut dy = vec![0.0f32; 2];
        model.eval(0.0, &vec![x as f32, y as f32], &mut dy);
        (dy[0] as f64, dy[1] as f64)
    };
    plot::vector_field(
        &a.out.join("vector_field.png"),
        &mut field,
        &tr.ys,
        &format!("learned spiral vector field after {done} iterations"),
    )
    .map_err(Failure::Output)?;
    emit_json(&summary, false)?;
    note(&format!(
        "wrote {}/{{metrics.jsonl, checkpoint.json, summary.json, model.safetensors, trajectories.png, phase.png, vector_field.png}}",
        a.out.display()
    ));
    if interrupt.requested() {
        return Err(interrupt.failure("interrupted while finishing; every output was written".into()));
    }
    Ok(())
}
