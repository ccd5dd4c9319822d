//! `nodal train latent-ode`: a latent ODE (or the ODE-RNN or GRU baseline) on irregularly
//! sampled series (see `nodal_experiments::latent_ode`). Writes metrics.jsonl, summary.json
//! (held-out interpolation and extrapolation MSE, time per epoch), model.safetensors and a
//! figure of held-out series.

use crate::failure::{CliResult, Failure};
use crate::output::{emit_json, iteration_bar, note, open_metrics};
use crate::plot_latent_ode::{self, SeriesPanel};
use clap::Args;
use nodal::io::write_atomic;
use nodal_experiments::latent_ode::{LatentOdeConfig, LatentOdeTrainer, ModelKind, POINTS, SPLIT, SeriesKind, Sizes};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

fn parse_data(s: &str) -> Result<SeriesKind, String> {
    SeriesKind::parse(s).ok_or_else(|| format!("unknown data set {s:?}: use periodic or pendulum"))
}

fn parse_model(s: &str) -> Result<ModelKind, String> {
    ModelKind::parse(s).ok_or_else(|| format!("unknown model {s:?}: use latent-ode, ode-rnn or gru"))
}

/// Arguments of `nodal train latent-ode`.
#[derive(Args)]
pub struct TrainLatentOdeArgs {
    /// periodic (random sines) or pendulum (damped, observed through sin θ).
    #[arg(long, value_parser = parse_data, default_value = "periodic")]
    data: SeriesKind,
    /// Probability that a grid point is observed (0.1, 0.3 and 0.5 in the docs' table).
    #[arg(long, default_value_t = 0.3)]
    keep: f64,
    /// latent-ode, or a baseline: ode-rnn, gru (with time-gap inputs).
    #[arg(long, value_parser = parse_model, default_value = "latent-ode")]
    model: ModelKind,
    /// Passes over the training series.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Series generated (the first 80% train, the rest are held out).
    #[arg(long, default_value_t = 1000)]
    series: usize,
    /// Series per batch.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Seed of the data, the initial weights and the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (default runs/latent-ode-DATA-keepK-MODEL-sSEED).
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Skip the figure.
    #[arg(long)]
    no_fig: bool,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

/// Run `nodal train latent-ode`.
pub fn train(a: TrainLatentOdeArgs) -> CliResult {
    let cfg = LatentOdeConfig {
        data: a.data,
        keep: a.keep,
        model: a.model,
        series: a.series,
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        sizes: Sizes::default(),
        ..LatentOdeConfig::default()
    };
    cfg.validate().map_err(Failure::Input)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/latent-ode-{}-keep{}-{}-s{}", a.data.name(), a.keep, a.model.name(), a.seed)));
    std::fs::create_dir_all(&out).map_err(|e| Failure::output(format!("{}: {e}", out.display())))?;
    let mut trainer = LatentOdeTrainer::new(cfg.clone()).map_err(|e| Failure::compute(e.to_string()))?;
    let mut metrics = open_metrics(&out.join("metrics.jsonl"), false)?;
    let bar = iteration_bar(cfg.epochs, 0, a.quiet);
    let mut seconds = Vec::new();
    let mut last_loss = f64::NAN;
    for _ in 0..cfg.epochs {
        let rec = trainer.epoch().map_err(|e| Failure::compute(e.to_string()))?;
        bar.inc(1);
        bar.set_message(format!("loss {:.3}", rec.loss));
        seconds.push(rec.seconds);
        last_loss = rec.loss;
        let line = serde_json::to_string(&rec).map_err(Failure::output)?;
        writeln!(metrics, "{line}").map_err(|e| Failure::output(format!("metrics.jsonl: {e}")))?;
    }
    bar.finish_and_clear();
    metrics.flush().map_err(|e| Failure::output(format!("metrics.jsonl: {e}")))?;
    let scores = trainer.scores();
    let per_epoch = median(&mut seconds.clone());
    let summary = json!({
        "data": a.data.name(),
        "keep": a.keep,
        "model": a.model.name(),
        "seed": a.seed,
        "params": trainer.net.num_params(),
        "epochs": cfg.epochs,
        "iterations_per_epoch": trainer.train.n.div_ceil(cfg.batch),
        "median_epoch_seconds": per_epoch,
        "total_train_seconds": seconds.iter().sum::<f64>(),
        "final_train_loss": last_loss,
        "interp_mse": scores.interp_mse,
        "extrap_mse": scores.extrap_mse,
        "mean_observed_points": trainer.train.mean_observed(),
        "solver": {"method": "rk4", "steps": "one per grid interval (h = 5/99)"},
        "config": cfg,
    });
    trainer
        .net
        .save(&out.join("model.safetensors"), &[("data", a.data.name().into()), ("keep", a.keep.to_string()), ("seed", a.seed.to_string())])
        .map_err(Failure::file)?;
    let text = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
    write_atomic(&out.join("summary.json"), text.as_bytes()).map_err(Failure::file)?;
    if !a.no_fig {
        let idx = [0usize, 1, 2];
        let (mean_i, draws_i) = trainer.predictions(&idx, false, 8);
        let (mean_e, draws_e) = trainer.predictions(&idx, true, 8);
        let test = &trainer.test;
        let mut panels = Vec::new();
        for (setting, mean, draws) in [(false, &mean_i, &draws_i), (true, &mean_e, &draws_e)] {
            for (j, &r) in idx.iter().enumerate() {
                let row = r * POINTS..(r + 1) * POINTS;
                let (mut seen, mut hidden) = (Vec::new(), Vec::new());
                for (i, k) in row.clone().enumerate() {
                    if test.mask[k] > 0.0 {
                        let p = (test.ts[i], test.values[k] as f64);
                        if setting && test.ts[i] >= SPLIT { hidden.push(p) } else { seen.push(p) }
                    }
                }
                panels.push(SeriesPanel {
                    caption: format!("{} {}: held-out series {r}", if setting { "extrapolation" } else { "interpolation" }, a.data.name()),
                    ts: &test.ts,
                    clean: &test.clean[row],
                    seen,
                    hidden,
                    mean: &mean[j],
                    samples: draws.iter().map(|d| d[j].as_slice()).collect(),
                    split: setting.then_some(SPLIT),
                });
            }
        }
        let title = format!(
            "{} on {} (keep {}): interpolation MSE {:.4}, extrapolation MSE {:.4}",
            a.model.name(),
            a.data.name(),
            a.keep,
            scores.interp_mse,
            scores.extrap_mse
        );
        let label = if a.model == ModelKind::LatentOde { "posterior mean" } else { "prediction" };
        plot_latent_ode::series(&out.join("series.png"), &title, 2, &panels, label).map_err(Failure::output)?;
    }
    note(&format!("wrote {}", out.display()));
    emit_json(&json!({"interp_mse": scores.interp_mse, "extrap_mse": scores.extrap_mse, "median_epoch_seconds": per_epoch}), false)
}
