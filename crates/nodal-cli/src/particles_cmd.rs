//! `nodal train particles`: a Transformer vector field learns interacting-particle dynamics from
//! 5-particle trajectories and is tested on held-out 5-, 8- and 12-particle systems, beside MLP
//! fields (trained on 5 and, separately, on 12 particles; see `nodal_experiments::particles`).
//! Writes metrics.jsonl, summary.json, the weights and a figure.

use crate::failure::{CliResult, Failure};
use crate::figure::palette::INK;
use crate::figure::{Axis, Line, Panel, figure};
use crate::output::{emit_json, iteration_bar, note, open_metrics};
use clap::Args;
use nodal::burn::module::Module;
use nodal::burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::io::write_atomic;
use nodal::module_weights::save_module;
use nodal_experiments::particles::system::FEATURES;
use nodal_experiments::particles::{
    ParticleModel, ParticlesConfig, StepRecord, Trajectories, mean_error, mlp, rollout_errors, train as train_model, transformer,
};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `nodal train particles`.
#[derive(Args)]
pub struct TrainParticlesArgs {
    /// Training steps per model (the committed run: 3000, about 6 minutes here).
    #[arg(long, default_value_t = 3000)]
    iters: usize,
    /// Adam learning rate (cosine decay to a tenth).
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Training trajectories (5 particles).
    #[arg(long, default_value_t = 64)]
    trajectories: usize,
    /// Held-out trajectories per particle count.
    #[arg(long, default_value_t = 16)]
    test_trajectories: usize,
    /// Seed of data and initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip the MLP trained on 12-particle data (the comparison at 12 particles).
    #[arg(long)]
    no_mlp12: bool,
    /// Output folder.
    #[arg(long, default_value = "runs/particles")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Skip the figure.
    #[arg(long)]
    no_fig: bool,
}

/// Median of the step times after the first tenth (warm-up).
fn median_ms(records: &[StepRecord]) -> f64 {
    let mut ms: Vec<f64> = records.iter().skip(records.len() / 10).map(|r| r.ms).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() { f64::NAN } else { ms[ms.len() / 2] }
}

/// Train one model with a progress bar, writing its steps to `metrics`.
fn fit<M: ParticleModel>(
    cfg: &ParticlesConfig,
    model: M,
    data: &Trajectories,
    label: &str,
    metrics: &mut impl Write,
    quiet: bool,
) -> Result<(M, Vec<StepRecord>), Failure> {
    let device = Device::flex().autodiff();
    let bar = iteration_bar(cfg.iters, 0, quiet);
    let mut records = Vec::new();
    let mut write_err = None;
    let model = train_model(cfg, model, data, &device, |r| {
        bar.inc(1);
        bar.set_message(format!("{label}: loss {:.3e}", r.loss));
        let line = json!({"model": label, "iter": r.iter, "loss": r.loss, "ms": r.ms});
        if let Err(e) = writeln!(metrics, "{line}") {
            write_err.get_or_insert(e);
        }
        records.push(r.clone());
    })
    .map_err(|e| Failure::compute(format!("training the {label} field: {e}")))?;
    bar.finish_and_clear();
    if let Some(e) = write_err {
        return Err(Failure::output(format!("metrics.jsonl: {e}")));
    }
    Ok((model, records))
}

/// Run `nodal train particles`.
pub fn train(a: TrainParticlesArgs) -> CliResult {
    let cfg = ParticlesConfig {
        iters: a.iters,
        lr: a.lr,
        train_trajectories: a.trajectories,
        test_trajectories: a.test_trajectories,
        seed: a.seed,
        ..ParticlesConfig::default()
    };
    cfg.validate().map_err(Failure::Input)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Failure::output(format!("{}: {e}", a.out.display())))?;
    let sim = |n: usize, count: usize, seed: u64| {
        Trajectories::simulate(&cfg, n, count, seed).map_err(|e| Failure::compute(format!("simulating {n}-particle trajectories: {e}")))
    };
    let train5 = sim(cfg.train_particles, cfg.train_trajectories, cfg.seed)?;
    let tests: Vec<Trajectories> =
        cfg.test_particles.iter().map(|&n| sim(n, cfg.test_trajectories, cfg.seed.wrapping_add(1_000_003))).collect::<Result<_, _>>()?;
    let mut metrics = open_metrics(&a.out.join("metrics.jsonl"), false)?;
    let ad = Device::flex().autodiff();
    let plain = Device::flex();
    let start = Instant::now();
    let (tr, tr_steps) = fit(&cfg, transformer(&cfg, &ad), &train5, "transformer", &mut metrics, a.quiet)?;
    let (m5, m5_steps) = fit(&cfg, mlp(&cfg, cfg.train_particles, &ad), &train5, "mlp", &mut metrics, a.quiet)?;
    let m12 = if a.no_mlp12 {
        None
    } else {
        let train12 = sim(12, cfg.train_trajectories, cfg.seed.wrapping_add(77))?;
        Some(fit(&cfg, mlp(&cfg, 12, &ad), &train12, "mlp-12", &mut metrics, a.quiet)?)
    };
    metrics.flush().map_err(|e| Failure::output(format!("metrics.jsonl: {e}")))?;
    let seconds = start.elapsed().as_secs_f64();
    let (tr, m5) = (tr.valid(), m5.valid());
    let m12 = m12.map(|(m, s)| (m.valid(), s));

    let errors = |model: &dyn Fn(&Trajectories) -> Option<Result<Vec<f64>, Failure>>| -> Result<Vec<Option<Vec<f64>>>, Failure> {
        tests.iter().map(|t| model(t).transpose()).collect()
    };
    let eval = |what: &str, r: Result<Vec<f64>, nodal::solve::SolveError>| {
        r.map_err(|e| Failure::compute(format!("rolling out the {what} field: {e}")))
    };
    let tr_err = errors(&|t| Some(eval("transformer", rollout_errors(&tr, t, &plain))))?;
    let m5_err = errors(&|t| (t.particles == cfg.train_particles).then(|| eval("mlp", rollout_errors(&m5, t, &plain))))?;
    let m12_err = match &m12 {
        Some((m, _)) => errors(&|t| (t.particles == 12).then(|| eval("mlp-12", rollout_errors(m, t, &plain))))?,
        None => vec![None; tests.len()],
    };
    let per_count = |errs: &[Option<Vec<f64>>]| -> Value {
        let mut map = serde_json::Map::new();
        for (t, e) in tests.iter().zip(errs) {
            map.insert(t.particles.to_string(), e.as_ref().map(|e| json!(mean_error(e))).unwrap_or(Value::Null));
        }
        Value::Object(map)
    };
    let checkpoints = [5usize, 10, 20, 30];
    let vs_time = |errs: &[Option<Vec<f64>>]| -> Value {
        let mut map = serde_json::Map::new();
        for (t, e) in tests.iter().zip(errs) {
            if let Some(e) = e {
                let row: Vec<Value> =
                    checkpoints.iter().filter(|&&k| k < e.len()).map(|&k| json!({"t": t.times[k], "error": e[k]})).collect();
                map.insert(t.particles.to_string(), Value::Array(row));
            }
        }
        Value::Object(map)
    };
    let summary = json!({
        "rollout_error": {
            "transformer": per_count(&tr_err),
            "mlp": per_count(&m5_err),
            "mlp_trained_on_12": per_count(&m12_err),
        },
        "rollout_error_vs_time": {
            "transformer": vs_time(&tr_err),
            "mlp": vs_time(&m5_err),
            "mlp_trained_on_12": vs_time(&m12_err),
        },
        "ratio_12_to_5_transformer": match (&tr_err.first(), tr_err.iter().zip(&tests).find(|(_, t)| t.particles == 12)) {
            (Some(Some(e5)), Some((Some(e12), _))) => json!(mean_error(e12) / mean_error(e5)),
            _ => Value::Null,
        },
        "ms_per_step": {
            "transformer": median_ms(&tr_steps),
            "mlp": median_ms(&m5_steps),
            "mlp_trained_on_12": m12.as_ref().map(|(_, s)| median_ms(s)),
        },
        "final_loss": {
            "transformer": tr_steps.last().map(|r| r.loss),
            "mlp": m5_steps.last().map(|r| r.loss),
            "mlp_trained_on_12": m12.as_ref().and_then(|(_, s)| s.last().map(|r| r.loss)),
        },
        "parameters": {
            "transformer": nodal::neural_ode::module_dynamics::num_params(&tr),
            "mlp": nodal::neural_ode::module_dynamics::num_params(&m5),
        },
        "training_seconds": seconds,
        "how_compared": "rollout_error is the RMS position error averaged over the observation times after t = 0 of held-out trajectories; the MLP's input width fixes the particle count, so at 12 particles it is an MLP trained on 12-particle trajectories (same budget), and at 8 it has no entry",
        "config": cfg,
    });
    let text = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
    write_atomic(&a.out.join("summary.json"), text.as_bytes()).map_err(Failure::file)?;
    let meta = [("config", serde_json::to_string(&cfg).map_err(Failure::output)?)];
    save_module(&tr, "particles-transformer", &a.out.join("transformer.safetensors"), &meta, false).map_err(Failure::file)?;
    save_module(&m5, "particles-mlp", &a.out.join("mlp.safetensors"), &meta, false).map_err(Failure::file)?;
    if !a.no_fig {
        draw(&a.out.join("particles.png"), &tr, &tests, &tr_err, &m5_err, &m12_err, &plain)?;
    }
    note(&format!("wrote {}", a.out.display()));
    emit_json(&summary["rollout_error"], false)
}

/// Left: one held-out 12-particle system, true paths and the Transformer's rollout; right:
/// rollout error against time for every model and particle count.
fn draw<M: ParticleModel>(
    path: &Path,
    tr: &M,
    tests: &[Trajectories],
    tr_err: &[Option<Vec<f64>>],
    m5_err: &[Option<Vec<f64>>],
    m12_err: &[Option<Vec<f64>>],
    device: &Device,
) -> CliResult {
    let Some(t12) = tests.iter().max_by_key(|t| t.particles) else { return Ok(()) };
    let n = t12.particles;
    let y0: Vec<f32> = t12.sample(0, 0).iter().map(|v| *v as f32).collect();
    let y0 = Tensor::<3>::from_data(TensorData::new(y0, [1, n, FEATURES]), (device, DType::F32));
    let pred = tr.rollout(y0, &t12.times).map_err(|e| Failure::compute(format!("drawing the rollout: {e}")))?;
    let pred: Vec<Vec<f64>> = pred.into_iter().map(|s| s.into_data().convert::<f64>().try_into_vec::<f64>().unwrap_or_default()).collect();
    let mut left =
        Panel::new(format!("{n} particles (trained on 5): true (black) and Transformer rollout"), Axis::linear("x"), Axis::linear("y"))
            .square();
    for i in 0..n {
        let truth: Vec<(f64, f64)> =
            (0..t12.times.len()).map(|k| (t12.sample(k, 0)[i * FEATURES], t12.sample(k, 0)[i * FEATURES + 1])).collect();
        let learned: Vec<(f64, f64)> = pred.iter().map(|s| (s[i * FEATURES], s[i * FEATURES + 1])).collect();
        let (mut lt, mut ll) = (Line::new(truth, INK, 3), Line::series(1, learned).dashed());
        if i == 0 {
            lt = lt.label("true");
            ll = ll.label("Transformer");
        }
        left.lines.push(lt);
        left.lines.push(ll);
    }
    let mut right = Panel::new("RMS position error of held-out rollouts", Axis::linear("t"), Axis::log("error"));
    let mut series = 0;
    for (name, errs) in [("Transformer", tr_err), ("MLP", m5_err), ("MLP trained on 12", m12_err)] {
        for (t, e) in tests.iter().zip(errs) {
            if let Some(e) = e {
                let pts: Vec<(f64, f64)> = t.times.iter().zip(e).skip(1).map(|(t, v)| (*t, v.max(1e-6))).collect();
                right.lines.push(Line::series(series, pts).label(format!("{name}, {} particles", t.particles)));
                series += 1;
            }
        }
    }
    figure(path, "A Transformer field learns springs on 5 particles and rolls out 8 and 12", (1600, 760), 1, 2, &[left, right])
        .map_err(Failure::output)
}
