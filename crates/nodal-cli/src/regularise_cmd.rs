//! `nodal regularise`: the same model trained without and with each regulariser (kinetic energy,
//! Jacobian Frobenius norm, second-order penalty), side by side on loss, accuracy and the function
//! evaluations the learned dynamics need (Finlay et al. 2020; Kelly et al. 2020).

use crate::failure::{CliResult, Failure};
use crate::plot::{Curve, TrainingAxes, training};
use clap::{Args, ValueEnum};
use nodal::io::write_atomic;
use nodal::solve::regularise::Penalty;
use nodal_experiments::spiral::{SpiralConfig, SpiralTrainer};
use nodal_experiments::toy::circles::CirclesConfig;
use nodal_experiments::toy::regularised;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Tasks to compare on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegTask {
    /// Dupont et al.'s concentric circles (classification: the flow is under-determined).
    Circles,
    /// torchdiffeq's spiral (regression on a trajectory: the data pin the dynamics down).
    Spiral,
}

/// Arguments of `nodal regularise`.
#[derive(Args)]
pub struct RegulariseArgs {
    /// Task.
    #[arg(long, value_enum, default_value = "circles")]
    task: RegTask,
    /// Weight of the kinetic-energy run (0 = skip it).
    #[arg(long, default_value_t = 0.05)]
    kinetic: f64,
    /// Weight of the Jacobian-Frobenius run (0 = skip it).
    #[arg(long, default_value_t = 0.01)]
    jacobian: f64,
    /// Rademacher probes of the Jacobian penalty.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    probes: u64,
    /// Weight of the second-order run (0 = skip it).
    #[arg(long, default_value_t = 0.001)]
    order2: f64,
    /// Training iterations (default: 600 for circles, 2000 for the spiral).
    #[arg(long)]
    iters: Option<usize>,
    /// Augmented dimensions of the circles model (0 = a plain NODE).
    #[arg(long, default_value_t = 0)]
    augment: usize,
    /// Seed of data, weights and probes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (summary.json, regularise.md, regularise.png).
    #[arg(long, default_value = "runs/regularise")]
    out: PathBuf,
}

/// Run; exit 2 on bad flags, 1 on a failed run, 4 on outputs not written.
pub fn run(a: RegulariseArgs) -> CliResult {
    if let Some(n) = a.iters {
        crate::validate::count("iters", n, 1, 10_000_000)?;
    }
    crate::mnist_cmd::check_writable(&a.out)?;
    let mut settings: Vec<(String, Vec<(Penalty, f64)>)> = vec![("none".into(), vec![])];
    for (name, w, p) in [
        ("kinetic", a.kinetic, Penalty::Kinetic),
        ("jacobian", a.jacobian, Penalty::JacobianFrobenius { probes: a.probes as usize }),
        ("order2", a.order2, Penalty::Order2),
    ] {
        crate::validate::non_negative(name, w)?;
        if w > 0.0 {
            settings.push((format!("{name} {w}"), vec![(p, w)]));
        }
    }
    match a.task {
        RegTask::Circles => circles(&a, &settings),
        RegTask::Spiral => spiral(&a, &settings),
    }
}

/// Write the table, the summary and the figure. `series`: name, loss and evaluations per
/// plotted point; `axes` says what a point is.
fn write(
    a: &RegulariseArgs,
    md: &str,
    rows: Vec<Value>,
    title: &str,
    axes: &TrainingAxes<'_>,
    series: &[(String, &[f64], &[usize])],
) -> CliResult {
    write_atomic(&a.out.join("regularise.md"), md.as_bytes()).map_err(Failure::file)?;
    let text = serde_json::to_string_pretty(&Value::Array(rows)).map_err(Failure::output)?;
    write_atomic(&a.out.join("summary.json"), text.as_bytes()).map_err(Failure::file)?;
    let curves: Vec<Curve<'_>> =
        series.iter().enumerate().map(|(i, (n, l, f))| Curve { name: n.clone(), series: i, loss: l, nfe: f }).collect();
    training(&a.out.join("regularise.png"), title, axes, &curves).map_err(Failure::Output)?;
    crate::output::emit(md.trim_end())?;
    crate::output::note(&format!("wrote {}/{{regularise.md, summary.json, regularise.png}}", a.out.display()));
    Ok(())
}

fn circles(a: &RegulariseArgs, settings: &[(String, Vec<(Penalty, f64)>)]) -> CliResult {
    let cfg = CirclesConfig { iters: a.iters.unwrap_or(600), seed: a.seed, ..CirclesConfig::default() };
    let tols = [1e-3, 1e-5, 1e-7];
    let start = std::time::Instant::now();
    let runs = regularised::run(&cfg, a.augment, settings, &tols).map_err(|e| e.to_string())?;
    let mut md = format!(
        "Concentric circles, {} (state R^{}), {} iterations, seed {}, training dopri5 rtol=atol={:e}; {:.1} s in all.\n\n",
        if a.augment == 0 { "NODE" } else { "ANODE" },
        2 + a.augment,
        cfg.iters,
        a.seed,
        cfg.tol,
        start.elapsed().as_secs_f64()
    );
    md += "| run | final MSE | accuracy | training NFE/solve (median, last) | NFE at tol 1e-3 | 1e-5 | 1e-7 | seconds |\n|---|---:|---:|---|---:|---:|---:|---:|\n";
    let mut rows = Vec::new();
    for r in &runs {
        let h = &r.history;
        md += &format!(
            "| {} | {:.3e} | {:.4} | {:.0}, {} | {} | {} | {} | {:.1} |\n",
            r.name,
            h.final_loss,
            r.accuracy,
            h.median_nfe(),
            h.final_nfe,
            r.test_nfe[0].1,
            r.test_nfe[1].1,
            r.test_nfe[2].1,
            h.seconds
        );
        rows.push(
            json!({"run": r.name, "final_mse": h.final_loss, "accuracy": r.accuracy, "median_nfe": h.median_nfe(), "final_nfe": h.final_nfe,
            "test_nfe": r.test_nfe.iter().map(|(t, n)| json!({"tol": t, "nfe": n})).collect::<Vec<_>>(), "seconds": h.seconds}),
        );
    }
    let series: Vec<(String, &[f64], &[usize])> =
        runs.iter().map(|r| (r.name.clone(), &r.history.loss[..], &r.history.nfe_forward[..])).collect();
    let fewest = runs.iter().skip(1).map(|r| r.test_nfe[2].1).min();
    let title = match (runs.first(), fewest) {
        (Some(plain), Some(f)) => format!(
            "concentric circles: plain vs regularised training (evaluations at tol 1e-7: plain {}, fewest regularised {f})",
            plain.test_nfe[2].1
        ),
        _ => "concentric circles: plain vs regularised training".to_string(),
    };
    let axes = TrainingAxes { loss_caption: "training loss", loss_label: "mean squared error", block: 1 };
    write(a, &md, rows, &title, &axes, &series)
}

fn spiral(a: &RegulariseArgs, settings: &[(String, Vec<(Penalty, f64)>)]) -> CliResult {
    let iters = a.iters.unwrap_or(2000);
    let mut md = format!("Spiral (torchdiffeq's demo), {iters} iterations, seed {}, training dopri5 rtol 1e-7, atol 1e-9.\n\n", a.seed);
    md += "| run | train L1 (median of last 100) | test L1 (whole trajectory, rtol 1e-7) | training NFE/solve (median of last 100) | test NFE at rtol 1e-3 | 1e-5 | 1e-7 | ms/iter |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
    let mut rows = Vec::new();
    let mut hist: Vec<(String, Vec<f64>, Vec<usize>)> = Vec::new();
    let mut tests: Vec<usize> = Vec::new();
    for (name, pens) in settings {
        let mut tr = SpiralTrainer::new(SpiralConfig { iters, seed: a.seed, penalties: pens.clone(), ..SpiralConfig::default() })
            .map_err(|e| e.to_string())?;
        let (mut loss, mut nfe, mut ms) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..iters {
            let r = tr.step().map_err(|e| format!("{name}, iteration {}: {e}", i + 1))?;
            loss.push(r.loss);
            nfe.push(r.nfe_forward);
            ms.push(r.ms);
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|x, y| x.total_cmp(y));
            v[v.len() / 2]
        };
        let tail = iters.saturating_sub(100);
        let train_l1 = med(&mut loss[tail..].to_vec());
        let train_nfe = med(&mut nfe[tail..].iter().map(|&n| n as f64).collect());
        let mut test = Vec::new();
        for rt in [1e-3, 1e-5, 1e-7] {
            let (_, l, n) = tr.predict(rt, rt * 1e-2).map_err(|e| format!("{name}: test solve at rtol {rt:e}: {e}"))?;
            test.push((rt, l, n));
        }
        tests.push(test[2].2);
        md += &format!(
            "| {name} | {train_l1:.5} | {:.4} | {train_nfe:.0} | {} | {} | {} | {:.2} |\n",
            test[2].1,
            test[0].2,
            test[1].2,
            test[2].2,
            med(&mut ms)
        );
        rows.push(json!({"run": name, "train_l1_last100": train_l1, "test_l1": test[2].1, "train_nfe_last100": train_nfe,
            "test": test.iter().map(|(r, l, n)| json!({"rtol": r, "loss": l, "nfe": n})).collect::<Vec<_>>()}));
        // Per-iteration values are noisy (random windows): draw medians over blocks of 50.
        let block = 50.min(iters.max(1));
        let lm: Vec<f64> = loss.chunks(block).map(|c| med(&mut c.to_vec())).collect();
        let nm: Vec<usize> = nfe.chunks(block).map(|c| med(&mut c.iter().map(|&n| n as f64).collect()) as usize).collect();
        hist.push((name.clone(), lm, nm));
    }
    let series: Vec<(String, &[f64], &[usize])> = hist.iter().map(|(n, l, f)| (n.clone(), &l[..], &f[..])).collect();
    let fewest = tests.iter().skip(1).map(|n| *n).min();
    let title = match (tests.first(), fewest) {
        (Some(plain), Some(f)) => {
            format!("spiral: plain vs regularised training (test evaluations at rtol 1e-7: plain {plain}, fewest regularised {f})")
        }
        _ => "spiral: plain vs regularised training".to_string(),
    };
    let axes = TrainingAxes { loss_caption: "training loss", loss_label: "mean absolute error", block: 50.min(iters.max(1)) };
    write(a, &md, rows, &title, &axes, &series)
}
