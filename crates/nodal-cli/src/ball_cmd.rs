//! `nodal train bouncing-ball`: learn gravity and restitution of a bouncing ball from noisy
//! observed heights, with gradients through the located impacts (see
//! `nodal_experiments::bouncing_ball`). Writes metrics.jsonl, summary.json and figures.

use crate::failure::{CliResult, Failure};
use crate::output::{emit_json, iteration_bar, note, open_metrics};
use crate::plot_ball::{self, Track};
use clap::Args;
use nodal::io::write_atomic;
use nodal::solve::events::ball::zeno_time;
use nodal_experiments::bouncing_ball::{BallConfig, BallData, fit, trajectory};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `nodal train bouncing-ball`.
#[derive(Args)]
pub struct TrainBallArgs {
    /// True gravity of the simulated data (m/s²).
    #[arg(long, default_value_t = 9.81)]
    gravity: f64,
    /// True restitution of the simulated data, in (0, 1).
    #[arg(long, default_value_t = 0.8)]
    restitution: f64,
    /// Initial height (known to the model).
    #[arg(long, default_value_t = 1.0)]
    h0: f64,
    /// Initial velocity (known to the model).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    v0: f64,
    /// End of the observed span (s).
    #[arg(long, default_value_t = 3.0)]
    t_end: f64,
    /// Observed heights, evenly spaced on (0, t-end].
    #[arg(long, default_value_t = 100)]
    observations: usize,
    /// Standard deviation of the observation noise (m).
    #[arg(long, default_value_t = 0.01)]
    noise: f64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Initial guess for gravity.
    #[arg(long, default_value_t = 7.0)]
    init_gravity: f64,
    /// Initial guess for restitution.
    #[arg(long, default_value_t = 0.6)]
    init_restitution: f64,
    /// Adam iterations.
    #[arg(long, default_value_t = 400)]
    iters: usize,
    /// Adam learning rate (on ln g and logit e).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Output folder.
    #[arg(long, default_value = "runs/bouncing-ball")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Skip the figures.
    #[arg(long)]
    no_fig: bool,
}

/// Run `nodal train bouncing-ball`.
pub fn train(a: TrainBallArgs) -> CliResult {
    let cfg = BallConfig {
        gravity: a.gravity,
        restitution: a.restitution,
        h0: a.h0,
        v0: a.v0,
        t_end: a.t_end,
        observations: a.observations,
        noise: a.noise,
        seed: a.seed,
        init_gravity: a.init_gravity,
        init_restitution: a.init_restitution,
        iters: a.iters,
        lr: a.lr,
        ..BallConfig::default()
    };
    cfg.validate().map_err(Failure::Input)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Failure::output(format!("{}: {e}", a.out.display())))?;
    let data = BallData::generate(&cfg).map_err(|e| Failure::compute(format!("simulating the data: {e}")))?;
    let mut metrics = open_metrics(&a.out.join("metrics.jsonl"), false)?;
    let bar = iteration_bar(cfg.iters, 0, a.quiet);
    let mut write_err = None;
    let (mut iters, mut gs, mut es) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    let result = fit(&cfg, &data, |it| {
        bar.inc(1);
        bar.set_message(format!("loss {:.3e}  g {:.4}  e {:.4}", it.loss, it.gravity, it.restitution));
        iters.push(it.iter as f64);
        gs.push(it.gravity);
        es.push(it.restitution);
        if let Err(e) = serde_json::to_string(it).map(|s| writeln!(metrics, "{s}")).map_err(std::io::Error::other).and_then(|r| r) {
            write_err.get_or_insert(e);
        }
    })
    .map_err(|e| Failure::compute(format!("fitting the ball: {e}")))?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(e) = write_err {
        return Err(Failure::output(format!("metrics.jsonl: {e}")));
    }
    metrics.flush().map_err(|e| Failure::output(format!("metrics.jsonl: {e}")))?;
    let rel = |l: f64, t: f64| (l / t - 1.0).abs();
    let summary = json!({
        "true": {"gravity": cfg.gravity, "restitution": cfg.restitution},
        "initial": {"gravity": cfg.init_gravity, "restitution": cfg.init_restitution},
        "learned": {"gravity": result.gravity, "restitution": result.restitution},
        "relative_error": {"gravity": rel(result.gravity, cfg.gravity), "restitution": rel(result.restitution, cfg.restitution)},
        "within_1_percent": rel(result.gravity, cfg.gravity) < 0.01 && rel(result.restitution, cfg.restitution) < 0.01,
        "mse": {"learned": result.loss, "true_parameters": result.loss_at_truth, "noise_variance": cfg.noise * cfg.noise},
        "impacts": {"true": data.impacts, "learned": result.impacts},
        "iterations": result.iterations,
        "seconds": seconds,
        "solver": {"method": "dopri5", "rtol": cfg.rtol, "atol": cfg.atol, "event_time_tolerance": 1e-13},
        "config": cfg,
    });
    let text = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
    write_atomic(&a.out.join("summary.json"), text.as_bytes()).map_err(Failure::file)?;
    if !a.no_fig {
        let curve = |g: f64, e: f64| trajectory(&cfg, g, e, 600).map_err(|err| Failure::compute(format!("drawing the trajectory: {err}")));
        let (ts, truth) = curve(cfg.gravity, cfg.restitution)?;
        let (ts_init, initial) = curve(cfg.init_gravity, cfg.init_restitution)?;
        let (ts_learned, learned) = curve(result.gravity, result.restitution)?;
        let label_true = format!("true g = {}, e = {}", cfg.gravity, cfg.restitution);
        let zeno = zeno_time(cfg.h0, cfg.v0, cfg.init_gravity, cfg.init_restitution);
        let label_init = if zeno < cfg.t_end {
            format!("initial g = {}, e = {} (to its Zeno time {zeno:.2})", cfg.init_gravity, cfg.init_restitution)
        } else {
            format!("initial g = {}, e = {}", cfg.init_gravity, cfg.init_restitution)
        };
        let label_learned = format!("learned g = {:.4}, e = {:.4}", result.gravity, result.restitution);
        plot_ball::fit(
            &a.out.join("fit.png"),
            "A bouncing ball's gravity and restitution learned through its impacts",
            (&data.ts[1..], &data.observed),
            &Track { label: &label_true, ts: &ts, heights: &truth },
            &Track { label: &label_init, ts: &ts_init, heights: &initial },
            &Track { label: &label_learned, ts: &ts_learned, heights: &learned },
            &result.impacts,
        )
        .map_err(Failure::output)?;
        plot_ball::parameters(&a.out.join("parameters.png"), "Parameters over training", &iters, &gs, &es, (cfg.gravity, cfg.restitution))
            .map_err(Failure::output)?;
    }
    note(&format!("wrote {}", a.out.display()));
    emit_json(&summary["learned"], false)
}
