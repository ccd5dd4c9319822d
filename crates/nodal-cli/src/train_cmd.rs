//! `nodal train spiral`: torchdiffeq's spiral demo, end to end, with metrics, weights and figures.

use crate::plot;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nodal::io::write_atomic;
use nodal::solve::Dynamics;
use nodal::solve::grad::GradMethod;
use nodal::solve::regularise::Penalty;
use nodal_experiments::spiral::{SpiralConfig, SpiralTrainer};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Arguments of `nodal train spiral`.
#[derive(Args)]
pub struct TrainArgs {
    /// Iterations.
    #[arg(long, default_value_t = 2000)]
    iters: usize,
    /// Seed of the initial weights and the batch sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Gradient method: backprop, checkpoint, checkpoint:M or adjoint.
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
    /// Rademacher probe vectors of the Jacobian penalty (fresh ones every iteration).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    probes: u64,
    /// Weight of the second-order penalty, the integral of ||d^2y/dt^2||^2 (Kelly et al. 2020,
    /// K = 2); 0 = off.
    #[arg(long, default_value_t = 0.0)]
    order2: f64,
}

/// The penalties switched on by the flags, with their weights.
pub fn penalties(kinetic: f64, jacobian: f64, probes: u64, order2: f64) -> Result<Vec<(Penalty, f64)>, String> {
    let mut v = Vec::new();
    for (name, w, p) in [
        ("kinetic", kinetic, Penalty::Kinetic),
        ("jacobian", jacobian, Penalty::JacobianFrobenius { probes: probes as usize }),
        ("order2", order2, Penalty::Order2),
    ] {
        if !w.is_finite() || w < 0.0 {
            return Err(format!("--{name} must be a finite weight >= 0 (got {w})"));
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
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Train; writes metrics.jsonl, summary.json, model.safetensors and PNG figures into `--out`.
pub fn run(a: TrainArgs) -> ExitCode {
    match train(a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn train(a: TrainArgs) -> Result<(), String> {
    let grad = if a.adjoint { GradMethod::Adjoint } else { a.grad };
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let penalties = penalties(a.kinetic, a.jacobian, a.probes, a.order2)?;
    let cfg = SpiralConfig { iters: a.iters, seed: a.seed, grad, rtol: a.rtol, atol: a.atol, penalties, ..SpiralConfig::default() };
    let mut tr = SpiralTrainer::new(cfg).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while finishing up falls through to the default handler.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let metrics_path = a.out.join("metrics.jsonl");
    let file = std::fs::File::create(&metrics_path).map_err(|e| format!("{}: {e}", metrics_path.display()))?;
    let mut metrics = std::io::BufWriter::new(file);
    let bar = if a.quiet { ProgressBar::hidden() } else { ProgressBar::new(a.iters as u64) };
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} iters  {msg}  [{elapsed} < {eta}]").expect("valid template"));
    let (mut ms, mut nfe_total, mut losses, mut nfe_fwd) = (Vec::new(), 0usize, Vec::new(), Vec::new());
    for i in 0..a.iters {
        if stop.load(Ordering::SeqCst) {
            bar.println("interrupted: writing what was trained so far");
            break;
        }
        let r = tr.step().map_err(|e| format!("iteration {}: solve failed: {e}", i + 1))?;
        ms.push(r.ms);
        losses.push(r.loss);
        nfe_fwd.push(r.nfe_forward as f64);
        nfe_total += r.nfe_forward + r.nfe_backward;
        let line = json!({"iter": r.iter, "loss": r.loss, "ms": r.ms, "nfe_forward": r.nfe_forward, "nfe_backward": r.nfe_backward, "penalties": r.penalties});
        writeln!(metrics, "{line}").map_err(|e| format!("{}: {e}", metrics_path.display()))?;
        if r.iter % 50 == 0 {
            metrics.flush().map_err(|e| format!("{}: {e}", metrics_path.display()))?;
            bar.set_message(format!("loss {:.4}  nfe {}+{}", r.loss, r.nfe_forward, r.nfe_backward));
        }
        bar.inc(1);
    }
    metrics.flush().map_err(|e| format!("{}: {e}", metrics_path.display()))?;
    bar.finish_and_clear();
    tr.model.save(&a.out.join("model.safetensors")).map_err(|e| e.to_string())?;
    let (pred, test_loss, test_nfe) = tr.predict(1e-7, 1e-9).map_err(|e| format!("test solve failed: {e}"))?;
    let done = losses.len();
    let block = |lo: usize, hi: usize| median(&mut losses.get(lo.min(done)..hi.min(done)).unwrap_or(&[]).to_vec());
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
        "grad": format!("{grad:?}").to_lowercase(),
        "seed": a.seed,
        "median_ms_per_iter": median(&mut ms.clone()),
        "test_loss": test_loss,
        "test_nfe": test_nfe,
        "nfe_total": nfe_total,
        "median_train_loss_901_1000": block(900, 1000),
        "median_train_loss_last_100": block(done.saturating_sub(100), done),
        "median_nfe_forward_last_100": median(&mut nfe_fwd[done.saturating_sub(100)..].to_vec()),
        "penalties": tr.cfg.penalties.iter().map(|(p, w)| json!({"name": p.name(), "weight": w,
            "probes": if let Penalty::JacobianFrobenius { probes } = p { *probes } else { 0 }})).collect::<Vec<_>>(),
        "test_nfe_by_rtol": test_by_rtol,
        "ms_per_nfe": ms.iter().sum::<f64>() / nfe_total.max(1) as f64,
    });
    write_atomic(&a.out.join("summary.json"), serde_json::to_string_pretty(&summary).expect("json").as_bytes())
        .map_err(|e| e.to_string())?;
    let title = format!("spiral after {done} iterations (test L1 {test_loss:.4})");
    plot::trajectories(&a.out.join("trajectories.png"), &tr.ts, &tr.ys, &pred, &title)?;
    plot::phase(&a.out.join("phase.png"), &tr.ys, &pred, "phase portrait: true vs learned")?;
    let mut model = tr.model.clone();
    let mut field = |x: f64, y: f64| {
        let mut dy = vec![0.0f32; 2];
        model.eval(0.0, &vec![x as f32, y as f32], &mut dy);
        (dy[0] as f64, dy[1] as f64)
    };
    plot::vector_field(&a.out.join("vector_field.png"), &mut field, &tr.ys, "learned vector field")?;
    println!("{}", serde_json::to_string(&summary).expect("json"));
    eprintln!(
        "wrote {}/{{metrics.jsonl, summary.json, model.safetensors, trajectories.png, phase.png, vector_field.png}}",
        a.out.display()
    );
    Ok(())
}
