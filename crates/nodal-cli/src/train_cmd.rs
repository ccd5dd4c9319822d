//! `nodal train spiral`: torchdiffeq's spiral demo, end to end, with metrics, weights and figures.

use crate::plot;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nodal::io::write_atomic;
use nodal::solve::Dynamics;
use nodal::solve::grad::GradMethod;
use nodal::spiral::{SpiralConfig, SpiralTrainer};
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
    let cfg = SpiralConfig { iters: a.iters, seed: a.seed, grad, rtol: a.rtol, atol: a.atol, ..SpiralConfig::default() };
    let mut tr = SpiralTrainer::new(cfg);
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
    let (mut ms, mut nfe_total, mut losses) = (Vec::new(), 0usize, Vec::new());
    for i in 0..a.iters {
        if stop.load(Ordering::SeqCst) {
            bar.println("interrupted: writing what was trained so far");
            break;
        }
        let r = tr.step().map_err(|e| format!("iteration {}: solve failed: {e}", i + 1))?;
        ms.push(r.ms);
        losses.push(r.loss);
        nfe_total += r.nfe_forward + r.nfe_backward;
        let line = json!({"iter": r.iter, "loss": r.loss, "ms": r.ms, "nfe_forward": r.nfe_forward, "nfe_backward": r.nfe_backward});
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
