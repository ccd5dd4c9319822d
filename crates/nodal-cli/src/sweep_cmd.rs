//! `nodal sweep`: one trained model evaluated over a grid of test-time tolerances and methods,
//! to show where loosening the tolerance stops saving work and starts costing accuracy.

use crate::plot;
use clap::{Args, ValueEnum};
use nodal::io::write_atomic;
use nodal::solve::{SolveOptions, method_by_name};
use nodal::spiral::{CubedMlp, predict_with, true_trajectory};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;

/// Tasks a sweep can evaluate.
#[derive(Clone, Copy, ValueEnum)]
pub enum SweepTask {
    /// The spiral demo (test loss: mean absolute error over the whole trajectory).
    Spiral,
    /// MNIST (not available yet).
    Mnist,
}

/// Arguments of `nodal sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The task.
    #[arg(long, value_enum)]
    task: SweepTask,
    /// Trained weights (model.safetensors from `nodal train`).
    #[arg(long)]
    weights: PathBuf,
    /// Relative tolerances to evaluate (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8])]
    rtol: Vec<f64>,
    /// atol = rtol x this ratio.
    #[arg(long, default_value_t = 1e-2)]
    atol_ratio: f64,
    /// Methods (adaptive ones).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["dopri5".to_string(), "bosh3".to_string(), "tsit5".to_string()])]
    method: Vec<String>,
    /// Repeats per point (median time).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Print one JSON array instead of a markdown table.
    #[arg(long)]
    json: bool,
    /// Also write sweep.md, sweep.json and sweep.png into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Run the sweep.
pub fn run(a: SweepArgs) -> ExitCode {
    if matches!(a.task, SweepTask::Mnist) {
        eprintln!("error: the MNIST sweep is not available yet (no MNIST models in this build)");
        return ExitCode::from(2);
    }
    let mut model = match CubedMlp::load(&a.weights) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (ts, truth) = true_trajectory();
    let mut rows = Vec::new();
    for name in &a.method {
        let Some(tab) = method_by_name(name).filter(|t| t.error_order.is_some()) else {
            eprintln!("error: {name:?} is not an adaptive method");
            return ExitCode::from(2);
        };
        for &rtol in &a.rtol {
            let atol = rtol * a.atol_ratio;
            let opts = SolveOptions::new(tab).with_tol(rtol, atol).with_max_steps(1_000_000);
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..a.repeats.max(1) {
                let start = std::time::Instant::now();
                let r = predict_with(&mut model, &ts, &truth, &opts);
                times.push(start.elapsed().as_secs_f64());
                last = Some(r);
            }
            times.sort_by(|x, y| x.partial_cmp(y).unwrap());
            match last.expect("at least one repeat") {
                Ok((_, loss, nfe)) => rows
                    .push(json!({"method": name, "rtol": rtol, "atol": atol, "nfe": nfe, "seconds": times[times.len() / 2], "loss": loss})),
                Err(e) => rows.push(json!({"method": name, "rtol": rtol, "atol": atol, "error": e.to_string()})),
            }
        }
    }
    let mut md = String::from("| method | rtol | atol | nfe | ms | test loss (L1) |\n|---|---|---|---|---|---|\n");
    for r in &rows {
        if let Some(e) = r.get("error") {
            md += &format!("| {} | {} | {} | failed: {} | | |\n", r["method"].as_str().unwrap_or(""), r["rtol"], r["atol"], e);
        } else {
            md += &format!(
                "| {} | {:.0e} | {:.0e} | {} | {:.3} | {:.5} |\n",
                r["method"].as_str().unwrap_or(""),
                r["rtol"].as_f64().unwrap_or(f64::NAN),
                r["atol"].as_f64().unwrap_or(f64::NAN),
                r["nfe"],
                r["seconds"].as_f64().unwrap_or(f64::NAN) * 1e3,
                r["loss"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    let arr = serde_json::Value::Array(rows.clone());
    if a.json {
        println!("{arr}");
    } else {
        print!("{md}");
    }
    if let Some(dir) = &a.out {
        let write = || -> Result<(), String> {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            write_atomic(&dir.join("sweep.md"), md.as_bytes()).map_err(|e| e.to_string())?;
            write_atomic(&dir.join("sweep.json"), arr.to_string().as_bytes()).map_err(|e| e.to_string())?;
            let series: Vec<(String, Vec<(f64, f64)>)> = a
                .method
                .iter()
                .map(|m| {
                    let pts = rows
                        .iter()
                        .filter(|r| r["method"] == m.as_str() && r.get("loss").is_some())
                        .map(|r| (r["nfe"].as_f64().unwrap_or(f64::NAN), r["loss"].as_f64().unwrap_or(f64::NAN)))
                        .collect();
                    (m.clone(), pts)
                })
                .collect();
            plot::loss_vs_nfe(&dir.join("sweep.png"), &series, "spiral: test loss vs evaluations over test-time tolerances")
        };
        if let Err(e) = write() {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
