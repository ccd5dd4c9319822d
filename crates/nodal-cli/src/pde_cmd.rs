//! `nodal train pde`: a PDE layer (method of lines, stiff solver, gradients through its implicit
//! steps) trained on data nodal simulates, then evaluated on held-out initial fields to twice the
//! training horizon (see `nodal_experiments::pde`). Writes metrics.jsonl, summary.json,
//! model.safetensors and figures.

use crate::failure::{CliResult, Failure};
use crate::output::{emit_json, iteration_bar, note, open_metrics};
use crate::plot_pde;
use clap::Args;
use nodal::io::write_atomic;
use nodal::solve::pde::{Convection, Grid};
use nodal_experiments::pde::{self, PdeConfig, PdeLayer, PdeSystem};
use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

fn parse_system(s: &str) -> Result<PdeSystem, String> {
    PdeSystem::parse(s).ok_or_else(|| format!("unknown system {s:?}: use reaction-diffusion or burgers"))
}

/// Arguments of `nodal train pde`.
#[derive(Args)]
pub struct TrainPdeArgs {
    /// reaction-diffusion (Fisher-KPP, learned reaction) or burgers (coarse grid, learned
    /// convection stencil).
    #[arg(long, value_parser = parse_system, default_value = "reaction-diffusion")]
    system: PdeSystem,
    /// Adam iterations (default: 400 reaction-diffusion, 300 burgers).
    #[arg(long)]
    iters: Option<usize>,
    /// Adam learning rate at the first iteration (default: 1e-2 reaction-diffusion, decaying by
    /// 0.998 per iteration; 5e-3 burgers, decaying by 0.99).
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of the data and the initial weights (held-out fields use seed + 1000003).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training initial fields.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1000))]
    train_fields: u64,
    /// Held-out initial fields.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1000))]
    test_fields: u64,
    /// Output folder (default runs/pde-SYSTEM).
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Skip the figures.
    #[arg(long)]
    no_fig: bool,
}

fn save_params(path: &std::path::Path, params: &[f64], meta: HashMap<String, String>) -> Result<(), Failure> {
    let bytes: Vec<u8> = params.iter().flat_map(|x| x.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F64, vec![params.len()], &bytes).map_err(|e| Failure::output(format!("{}: {e}", path.display())))?;
    let data = safetensors::serialize([("params".to_string(), view)], &Some(meta))
        .map_err(|e| Failure::output(format!("{}: {e}", path.display())))?;
    write_atomic(path, &data).map_err(Failure::file)
}

/// Run `nodal train pde`.
pub fn train(a: TrainPdeArgs) -> CliResult {
    let mut config = PdeConfig::new(a.system);
    if let Some(i) = a.iters {
        config.iters = i;
    }
    if let Some(lr) = a.lr {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Failure::Input(format!("--lr must be positive and finite, got {lr}")));
        }
        config.lr = lr;
    }
    config.seed = a.seed;
    config.train_fields = a.train_fields as usize;
    config.test_fields = a.test_fields as usize;
    let out = a.out.clone().unwrap_or_else(|| PathBuf::from(format!("runs/pde-{}", a.system.name())));
    std::fs::create_dir_all(&out).map_err(|e| Failure::output(format!("{}: {e}", out.display())))?;
    let mut metrics = open_metrics(&out.join("metrics.jsonl"), false)?;
    let bar = iteration_bar(config.iters, 0, a.quiet);
    let mut write_err = None;
    let run = pde::train(&config, |it, loss| {
        bar.inc(1);
        bar.set_message(format!("loss {loss:.3e}"));
        if let Err(e) = writeln!(metrics, "{}", json!({"iter": it, "loss": loss})) {
            write_err.get_or_insert(e);
        }
    })
    .map_err(|e| Failure::compute(format!("training the {} layer: {e}", a.system.name())))?;
    bar.finish_and_clear();
    if let Some(e) = write_err {
        return Err(Failure::output(format!("metrics.jsonl: {e}")));
    }
    metrics.flush().map_err(|e| Failure::output(format!("metrics.jsonl: {e}")))?;
    let test_ts = &run.data.test.ts;
    let horizon = config.horizon;
    let k_t = test_ts.iter().position(|t| (t - horizon).abs() < 1e-12).unwrap_or(test_ts.len() / 2);
    let [learned, baseline, initial] = &run.rollout;
    let baseline_name = match a.system {
        PdeSystem::ReactionDiffusion => "diffusion only (no reaction)",
        PdeSystem::Burgers => "coarse central scheme (no closure)",
    };
    let mut summary = json!({
        "system": a.system.name(),
        "config": config,
        "params": run.params.len(),
        "final_loss": run.losses.last(),
        "seconds_per_iter": run.seconds_per_iter,
        "rollout_times": test_ts,
        "rollout_error": {"learned": learned, "baseline": baseline, "initial": initial, "baseline_is": baseline_name},
        "rollout_error_at_T": {"learned": learned[k_t], "baseline": baseline[k_t], "initial": initial[k_t]},
        "rollout_error_at_2T": {"learned": learned.last(), "baseline": baseline.last(), "initial": initial.last()},
    });
    let mut meta = HashMap::from([("system".to_string(), a.system.name().to_string()), ("seed".to_string(), a.seed.to_string())]);
    let us: Vec<f64> = (0..=100).map(|i| i as f64 / 100.0).collect();
    let layer = PdeLayer::learned(a.system, run.params.clone());
    match &layer {
        PdeLayer::ReactionDiffusion(f) => {
            let learned_r: Vec<f64> = us.iter().map(|&u| f.reaction_at(u)).collect();
            let true_r: Vec<f64> = us.iter().map(|&u| pde::RD_RATE * u * (1.0 - u)).collect();
            let err = learned_r.iter().zip(&true_r).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            summary["reaction_max_error_on_0_1"] = json!(err);
            summary["reaction_max_true_on_0_1"] = json!(pde::RD_RATE / 4.0);
            meta.insert("hidden".into(), pde::RD_HIDDEN.to_string());
            if !a.no_fig {
                plot_pde::reaction(&out.join("reaction.png"), "Learned reaction term against Fisher-KPP's", &us, &learned_r, &true_r)
                    .map_err(Failure::output)?;
            }
        }
        PdeLayer::Burgers(f) => {
            let central = Convection::central_weights(&f.axis);
            summary["learned_weights"] = json!(run.params);
            summary["central_weights"] = json!(central);
            summary["fine_simulation_max_error_vs_cole_hopf"] = json!(run.data.fine_vs_exact);
            if !a.no_fig {
                plot_pde::stencil(&out.join("stencil.png"), "Learned convection stencil against the central scheme", &run.params, &central)
                    .map_err(Failure::output)?;
            }
        }
    }
    save_params(&out.join("model.safetensors"), &run.params, meta)?;
    let text = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
    write_atomic(&out.join("summary.json"), text.as_bytes()).map_err(Failure::file)?;
    if !a.no_fig {
        let xs: Vec<f64> = match (&layer, pde::rd_grid()) {
            (PdeLayer::ReactionDiffusion(_), Grid::OneD(ax)) => (0..ax.n).map(|i| ax.x(i)).collect(),
            (PdeLayer::Burgers(f), _) => (0..f.axis.n).map(|i| f.axis.x(i)).collect(),
            _ => Vec::new(),
        };
        let [ex_learned, ex_true] = &run.example;
        let diff: Vec<Vec<f64>> =
            ex_learned.iter().zip(ex_true).map(|(l, t)| l.iter().zip(t).map(|(a, b)| (a - b).abs()).collect()).collect();
        let maps = [
            ("true PDE".to_string(), ex_true.as_slice()),
            ("learned layer".to_string(), ex_learned.as_slice()),
            ("|learned - true|".to_string(), diff.as_slice()),
        ];
        let title = format!("{}: a held-out initial field to t = 2T = {}", a.system.name(), 2.0 * horizon);
        plot_pde::heatmaps(&out.join("heatmap.png"), &title, &xs, test_ts, &maps, 2).map_err(Failure::output)?;
        plot_pde::rollout(
            &out.join("rollout.png"),
            &format!("{}: rollout error on held-out initial fields", a.system.name()),
            test_ts,
            &[("learned", learned), (baseline_name, baseline), ("initial parameters", initial)],
            horizon,
        )
        .map_err(Failure::output)?;
    }
    note(&format!("wrote {}", out.display()));
    emit_json(&summary["rollout_error_at_2T"], false)
}
