//! `nodal train latent-sde` and `nodal eval latent-sde`: a latent SDE (Li et al. 2020) on noisy stochastic Lorenz paths,
//! with metrics, checkpoints, weights, a summary and figures (see
//! `nodal_experiments::latent_sde`).

use crate::failure::{CliResult, Failure};
use crate::interrupt::Interrupt;
use crate::output::{emit_json, note};
use crate::plot_latent_sde;
use clap::Args;
use nodal::io::{read_text_capped, write_atomic};
use nodal::solve::sde::Scheme;
use nodal_experiments::latent_sde::{
    Activation, Evaluation, IterRecord, LatentSdeConfig, LatentSdeTrainer, MAX_ITERS, SolveSetup, TrainedModel, Widths, evaluate, samples,
};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

fn parse_scheme(s: &str) -> Result<Scheme, String> {
    match Scheme::by_name(s) {
        Some(sc) if nodal::sde::TENSOR_SCHEMES.contains(&sc) => Ok(sc),
        _ => Err(format!("unknown or unsupported scheme {s:?}: use euler_maruyama, heun or midpoint")),
    }
}

fn parse_activation(s: &str) -> Result<Activation, String> {
    Activation::parse(s).ok_or_else(|| format!("unknown activation {s:?}: use tanh or softplus"))
}

/// Arguments of `nodal train latent-sde`.
#[derive(Args)]
pub struct TrainLatentSdeArgs {
    /// Iterations.
    #[arg(long, default_value_t = 1000)]
    iters: usize,
    /// Seed of the data, weights, batches, z0 samples and Brownian paths (test data: seed + 1000).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Series per iteration.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Initial Adam learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Learning-rate factor per iteration.
    #[arg(long, default_value_t = 0.999)]
    lr_decay: f64,
    /// Iterations over which the KL weight rises from 0 to 1 (0: weight 1 throughout).
    #[arg(long, default_value_t = 500)]
    kl_anneal: usize,
    /// Step formula: euler_maruyama (Ito), heun or midpoint (Stratonovich).
    #[arg(long, value_parser = parse_scheme, default_value = "euler_maruyama")]
    scheme: Scheme,
    /// Solver steps per observation interval.
    #[arg(long, default_value_t = 1)]
    substeps: usize,
    /// Latent width.
    #[arg(long, default_value_t = 4)]
    latent: usize,
    /// Encoder context width.
    #[arg(long, default_value_t = 32)]
    context: usize,
    /// Hidden width of the drifts and the GRU.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Hidden activation of the drifts and the diffusion: tanh or softplus.
    #[arg(long, value_parser = parse_activation, default_value = "tanh")]
    activation: Activation,
    /// Training series.
    #[arg(long, default_value_t = 1024)]
    n_train: usize,
    /// Held-out series.
    #[arg(long, default_value_t = 256)]
    n_test: usize,
    /// Observation times per series on [0, 1].
    #[arg(long, default_value_t = 100)]
    points: usize,
    /// Observation noise (standard deviation in standardised units; also the likelihood's
    /// Laplace scale).
    #[arg(long, default_value_t = 0.01)]
    noise: f64,
    /// Save a checkpoint every N iterations (and on interrupt and at the end); a checkpoint in
    /// --out is resumed by the same command.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_every: u64,
    /// Output folder.
    #[arg(long, default_value = "runs/latent-sde")]
    out: PathBuf,
    /// No figures.
    #[arg(long)]
    no_fig: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl TrainLatentSdeArgs {
    fn config(&self) -> LatentSdeConfig {
        LatentSdeConfig {
            widths: Widths {
                latent: self.latent,
                context: self.context,
                hidden: self.hidden,
                activation: self.activation,
                ..Widths::default()
            },
            n_train: self.n_train,
            n_test: self.n_test,
            points: self.points,
            noise_std: self.noise,
            batch: self.batch,
            iters: self.iters,
            lr: self.lr,
            lr_decay: self.lr_decay,
            kl_anneal: self.kl_anneal,
            setup: SolveSetup { scheme: self.scheme, substeps: self.substeps },
            seed: self.seed,
            ..LatentSdeConfig::default()
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Keep the first `iters` lines of metrics.jsonl (those the checkpoint counts), parsed.
fn resume_metrics(path: &Path, iters: usize) -> Result<Vec<IterRecord>, Failure> {
    let bad = |r: String| Failure::Input(format!("{}: {r}; use another --out or delete the checkpoint", path.display()));
    let text = read_text_capped(path, 1 << 30, "a metrics file").map_err(|e| bad(format!("cannot resume its metrics: {e}")))?;
    let mut kept = String::new();
    let mut recs = Vec::with_capacity(iters);
    for (i, line) in text.lines().take(iters).enumerate() {
        recs.push(serde_json::from_str::<IterRecord>(line).map_err(|e| bad(format!("line {}: {e}", i + 1)))?);
        kept.push_str(line);
        kept.push('\n');
    }
    if recs.len() != iters {
        return Err(bad(format!("has {} lines, the checkpoint is at iteration {iters}", recs.len())));
    }
    write_atomic(path, kept.as_bytes()).map_err(Failure::file)?;
    Ok(recs)
}

fn evaluation_json(e: &Evaluation) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or(serde_json::Value::Null)
}

/// Metrics flushed to disk, then the checkpoint that counts them.
fn save_progress(tr: &mut LatentSdeTrainer, metrics: &mut std::io::BufWriter<std::fs::File>, out: &Path) -> Result<(), Failure> {
    let path = out.join("metrics.jsonl");
    let werr = |e: std::io::Error| Failure::Output(format!("{}: {e}", path.display()));
    metrics.flush().map_err(werr)?;
    metrics.get_ref().sync_data().map_err(werr)?;
    tr.save_checkpoint(out).map_err(|e| Failure::Output(e.to_string()))
}

/// Train; writes metrics.jsonl, checkpoint files, model.safetensors, summary.json and figures
/// into `--out`. Every option is checked before anything in `--out` is touched. SIGINT or
/// SIGTERM finishes the current iteration, saves a checkpoint and exits with 130 or 143; the same
/// command then resumes.
pub fn train(a: TrainLatentSdeArgs) -> CliResult {
    let interrupt = Interrupt::install();
    crate::validate::count("iters", a.iters, 1, MAX_ITERS)?;
    let cfg = a.config();
    cfg.validate().map_err(Failure::Input)?;
    let mut tr = LatentSdeTrainer::new(cfg).map_err(|e| Failure::Compute(format!("generating the data: {e}")))?;
    std::fs::create_dir_all(&a.out).map_err(|e| Failure::Output(format!("{}: {e}", a.out.display())))?;
    let start_iter = tr.resume(&a.out).map_err(Failure::input)?;
    let metrics_path = a.out.join("metrics.jsonl");
    let mut hist = if start_iter > 0 {
        let ck = a.out.join("checkpoint.json");
        if start_iter < a.iters {
            note(&format!("resuming at iteration {} of {} from {}", start_iter + 1, a.iters, ck.display()));
        } else {
            note(&format!("{} holds all {} iterations: writing the outputs", ck.display(), a.iters));
        }
        resume_metrics(&metrics_path, start_iter)?
    } else {
        Vec::new()
    };
    // The untrained networks' held-out figures, for the summary (same seed: the same networks
    // whether or not the run was resumed).
    let untrained = tr.evaluate_untrained().map_err(Failure::compute)?;
    let mut metrics = crate::output::open_metrics(&metrics_path, start_iter > 0)?;
    let bar = crate::output::iteration_bar(a.iters, start_iter, a.quiet);
    let every = a.checkpoint_every as usize;
    while tr.iter() < a.iters {
        if interrupt.requested() {
            bar.finish_and_clear();
            save_progress(&mut tr, &mut metrics, &a.out)?;
            return Err(interrupt.failure(format!(
                "interrupted after iteration {}: checkpoint saved in {}; rerun the same command to resume",
                tr.iter(),
                a.out.display()
            )));
        }
        let r = match tr.step() {
            Ok(r) => r,
            Err(e) => {
                bar.finish_and_clear();
                let saved = save_progress(&mut tr, &mut metrics, &a.out);
                let what = if saved.is_ok() { "the checkpoint before it is saved" } else { "saving the checkpoint failed too" };
                return Err(Failure::Compute(format!("{e} ({what})")));
            }
        };
        let line = serde_json::to_string(&r).map_err(Failure::output)?;
        writeln!(metrics, "{line}").map_err(|e| Failure::Output(format!("{}: {e} (at iteration {})", metrics_path.display(), r.iter)))?;
        if r.iter % every == 0 {
            save_progress(&mut tr, &mut metrics, &a.out)?;
        }
        if r.iter % 10 == 0 || r.iter == 1 {
            bar.set_message(format!("-elbo {:.1}  kl {:.2}+{:.2}  {:.0} ms", r.neg_elbo, r.kl_z0, r.kl_path, r.ms));
        }
        hist.push(r);
        bar.inc(1);
    }
    save_progress(&mut tr, &mut metrics, &a.out)?;
    bar.finish_and_clear();
    tr.save_weights(&a.out.join("model.safetensors")).map_err(|e| Failure::Output(e.to_string()))?;
    let trained = tr.evaluate().map_err(Failure::compute)?;
    let done = hist.len();
    let last = &hist[done.saturating_sub(100)..];
    let cfg = &tr.cfg;
    let summary = json!({
        "task": "latent-sde",
        "data": {"system": "stochastic Lorenz", "sigma": cfg.system.sigma, "rho": cfg.system.rho, "beta": cfg.system.beta,
                 "alpha": cfg.system.alpha, "train_series": cfg.n_train, "test_series": cfg.n_test, "points": cfg.points,
                 "noise_std": cfg.noise_std, "standardise_mean": tr.data.norm.mean, "standardise_std": tr.data.norm.std},
        "model": {"latent": cfg.widths.latent, "context": cfg.widths.context, "hidden": cfg.widths.hidden,
                  "diffusion_hidden": cfg.widths.diffusion_hidden, "activation": cfg.widths.activation.name(), "parameters": nodal::module_weights::param_count(&tr.net)},
        "solver": {"scheme": cfg.setup.scheme.name(), "substeps": cfg.setup.substeps, "gradient": "backprop through the unrolled solve (burn autodiff)"},
        "training": {"iters": done, "resumed_at": start_iter, "seed": cfg.seed, "batch": cfg.batch, "lr": cfg.lr, "lr_decay": cfg.lr_decay,
                     "kl_anneal": cfg.kl_anneal},
        "median_ms_per_iter": median(hist.iter().map(|r| r.ms).collect()),
        "median_train_neg_elbo_last_100": median(last.iter().map(|r| r.neg_elbo).collect()),
        "median_train_kl_path_last_100": median(last.iter().map(|r| r.kl_path).collect()),
        "test_untrained": evaluation_json(&untrained),
        "test": evaluation_json(&trained),
    });
    let pretty = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
    write_atomic(&a.out.join("summary.json"), pretty.as_bytes()).map_err(Failure::file)?;
    let mut written = vec!["metrics.jsonl", "checkpoint.json", "model.safetensors", "summary.json"];
    if !a.no_fig {
        let s = tr.samples(12, 8, 12).map_err(Failure::compute)?;
        let tag = format!("{done} iterations, test -ELBO {:.0}", trained.neg_elbo);
        plot_latent_sde::samples(
            &a.out.join("samples.png"),
            &s,
            &format!("latent SDE on stochastic Lorenz: data, posterior and prior ({tag})"),
        )
        .map_err(Failure::Output)?;
        plot_latent_sde::posterior(&a.out.join("posterior.png"), &s, &format!("posterior samples of one held-out series ({tag})"))
            .map_err(Failure::Output)?;
        plot_latent_sde::training(&a.out.join("training.png"), &hist, "latent SDE training").map_err(Failure::Output)?;
        written.extend(["samples.png", "posterior.png", "training.png"]);
    }
    emit_json(&summary, false)?;
    note(&format!("wrote {}/{{{}}}", a.out.display(), written.join(", ")));
    if interrupt.requested() {
        return Err(interrupt.failure("interrupted while finishing; every output was written".into()));
    }
    Ok(())
}

/// Arguments of `nodal eval latent-sde`.
#[derive(Args)]
pub struct EvalLatentSdeArgs {
    /// Weights written by `nodal train latent-sde` (model.safetensors); the settings, the data
    /// seed and the standardisation are read from its metadata.
    #[arg(long)]
    weights: PathBuf,
    /// Write summary.json, samples.png and posterior.png into this folder.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Held-out figures of trained weights on their run's test series (regenerated from the seed),
/// printed as JSON; with `--out`, also the summary and the sample figures.
pub fn eval(a: EvalLatentSdeArgs) -> CliResult {
    let m = TrainedModel::load(&a.weights).map_err(Failure::input)?;
    let test = m.test_set().map_err(Failure::compute)?;
    let e = evaluate(&m.net, &test, &m.cfg).map_err(Failure::compute)?;
    let summary = json!({
        "task": "latent-sde",
        "weights": a.weights.display().to_string(),
        "iters": m.iters,
        "seed": m.cfg.seed,
        "test_series": m.cfg.n_test,
        "scheme": m.cfg.setup.scheme.name(),
        "substeps": m.cfg.setup.substeps,
        "test": evaluation_json(&e),
    });
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).map_err(|e| Failure::Output(format!("{}: {e}", out.display())))?;
        let pretty = serde_json::to_string_pretty(&summary).map_err(Failure::output)?;
        write_atomic(&out.join("summary.json"), pretty.as_bytes()).map_err(Failure::file)?;
        let s = samples(&m.net, &test, &m.cfg, 12, 8, 12).map_err(Failure::compute)?;
        let tag = format!("{} iterations, test -ELBO {:.0}", m.iters, e.neg_elbo);
        plot_latent_sde::samples(
            &out.join("samples.png"),
            &s,
            &format!("latent SDE on stochastic Lorenz: data, posterior and prior ({tag})"),
        )
        .map_err(Failure::Output)?;
        plot_latent_sde::posterior(&out.join("posterior.png"), &s, &format!("posterior samples of one held-out series ({tag})"))
            .map_err(Failure::Output)?;
        note(&format!("wrote {}/{{summary.json, samples.png, posterior.png}}", out.display()));
    }
    emit_json(&summary, false)
}
