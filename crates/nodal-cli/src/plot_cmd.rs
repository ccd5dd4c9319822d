//! `nodal plot trajectories`: train NODEs, ANODEs and a ResNet on the toy tasks of Dupont et al.
//! (2019) and Chen et al. (2018) and draw their trajectories, losses and function evaluations.

use crate::failure::{CliResult, Failure};
use crate::figure::palette::{lighten, sequential};
use crate::figure::{Axis, Line, Marker, Panel, Point, figure};
use crate::plot::{CONTEXT as GREY, Curve, MINUS, PLUS, TrainingAxes, training};
use clap::{Args, ValueEnum};
use nodal::io::write_atomic;
use nodal_experiments::toy::circles::{self, CirclesConfig};
use nodal_experiments::toy::dupont1d::{self, Dupont1dConfig};
use nodal_experiments::toy::flow1d::{self, Flow1dConfig};
use nodal_experiments::toy::model::{Head, OdeModel};
use nodal_experiments::toy::train::ModelRun;
use plotters::style::RGBColor;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Tolerance of the solves drawn as trajectories: the exact flow of the learned field (training
/// solves use 1e-3, whose error could make neighbouring trajectories appear to swap).
const FIGURE_TOL: f64 = 1e-7;

/// Palette index of the plain neural ODE (vermillion, squares) and of the augmented one (blue,
/// circles) in every toy figure.
const NODE_SERIES: usize = 1;
const ANODE_SERIES: usize = 0;

/// Axes of the toy training figures: MSE per iteration.
const LOSS_AXES: TrainingAxes<'static> = TrainingAxes { loss_caption: "training loss", loss_label: "mean squared error", block: 1 };

/// Which toy task to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// ODE-Net trajectories against ResNet activations on a monotone 1-D regression.
    Flow1d,
    /// Dupont et al.'s g(-1) = 1, g(1) = -1: NODE against ANODE.
    Dupont1d,
    /// Dupont et al.'s concentric circles: NODE against ANODE.
    Circles,
    /// All three.
    All,
}

/// Arguments of `nodal plot trajectories`.
#[derive(Args)]
pub struct TrajectoriesArgs {
    /// Task to run.
    #[arg(long, value_enum, default_value = "all")]
    task: Task,
    /// Output folder (PNG figures and summary.json).
    #[arg(long, default_value = "runs/trajectories")]
    out: PathBuf,
    /// Seed of data and weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Adam iterations per model (default: 1000 for flow1d, 300 for dupont1d, 600 for circles).
    #[arg(long)]
    iters: Option<usize>,
    /// Augmented dimensions of the ANODEs.
    #[arg(long, default_value_t = 1)]
    augment: usize,
}

/// Run; exit 2 on invalid options, 4 when the output folder cannot be written, 1 when training
/// or a figure fails.
pub fn run(a: TrajectoriesArgs) -> CliResult {
    if a.augment == 0 || a.augment > 16 {
        return Err(Failure::Input(format!("--augment must be between 1 and 16, got {}", a.augment)));
    }
    if let Some(n) = a.iters {
        crate::validate::count("iters", n, 1, 10_000_000)?;
    }
    crate::mnist_cmd::check_writable(&a.out)?;
    let summary = trajectories(&a).map_err(Failure::Compute)?;
    crate::output::emit_json(&summary, false)
}

fn trajectories(a: &TrajectoriesArgs) -> Result<Value, String> {
    let start = std::time::Instant::now();
    let mut tasks = serde_json::Map::new();
    let mut files = Vec::new();
    let run = |t: Task| a.task == t || a.task == Task::All;
    if run(Task::Flow1d) {
        let (v, f) = flow1d_task(a)?;
        tasks.insert("flow1d".into(), v);
        files.extend(f);
    }
    if run(Task::Dupont1d) {
        let (v, f) = dupont1d_task(a)?;
        tasks.insert("dupont1d".into(), v);
        files.extend(f);
    }
    if run(Task::Circles) {
        let (v, f) = circles_task(a)?;
        tasks.insert("circles".into(), v);
        files.extend(f);
    }
    let summary = json!({
        "seed": a.seed,
        "augment": a.augment,
        "seconds": start.elapsed().as_secs_f64(),
        "tasks": tasks,
    });
    write_atomic(&a.out.join("summary.json"), serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?.as_bytes())
        .map_err(|e| e.to_string())?;
    crate::output::note(&format!("wrote {}/{{summary.json, {}}}", a.out.display(), files.join(", ")));
    Ok(summary)
}

fn model_json(r: &ModelRun) -> Value {
    let h = &r.history;
    json!({
        "state_dim": r.model.state_dim(),
        "final_loss": h.final_loss,
        "first_loss": h.loss.first(),
        "median_nfe_per_solve": h.median_nfe(),
        "first_nfe_per_solve": h.nfe_forward.first(),
        "last_train_nfe_per_solve": h.nfe_forward.last(),
        "final_nfe_per_solve": h.final_nfe,
        "median_nfe_backward": nodal_experiments::toy::median(&h.nfe_backward.iter().map(|&n| n as f64).collect::<Vec<_>>()),
        "seconds": h.seconds,
    })
}

fn write(out: &Path, name: &str, draw: impl FnOnce(&Path) -> Result<(), String>) -> Result<String, String> {
    draw(&out.join(name))?;
    Ok(name.to_string())
}

fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1).max(1) as f64).collect()
}

/// `(t, coordinate k of input i)` along the solve, states stored `[time][batch * d]`.
fn path_of(ts: &[f64], states: &[Vec<f64>], d: usize, i: usize, k: usize) -> Vec<(f64, f64)> {
    ts.iter().zip(states).map(|(t, z)| (*t, z[i * d + k])).collect()
}

fn flow1d_task(a: &TrajectoriesArgs) -> Result<(Value, Vec<String>), String> {
    let mut cfg = Flow1dConfig { seed: a.seed, ..Flow1dConfig::default() };
    cfg.iters = a.iters.unwrap_or(cfg.iters);
    crate::output::note(&format!("flow1d: training an ODE-Net and a {}-layer ResNet for {} iterations ...", cfg.layers, cfg.iters));
    let t0 = std::time::Instant::now();
    let mut r = flow1d::run(&cfg).map_err(|e| format!("flow1d: {e}"))?;
    let inputs = flow1d::grid(21);
    let p = flow1d::paths(&mut r, &inputs, 101).map_err(|e| format!("flow1d: {e}"))?;
    let n = inputs.len();
    let colour = |i: usize| sequential(i as f64 / (n - 1) as f64);
    let mut ode = Panel::new(
        format!("ODE-Net: x(t), continuous ({} crossings); black dots: targets {}", p.ode_crossings, flow1d::TARGET_NAME),
        Axis::linear("depth t (ODE time)"),
        Axis::linear("hidden state x"),
    );
    let mut res = Panel::new(
        format!("ResNet, {} layers: activations ({} crossings); black dots: targets", cfg.layers, p.resnet_crossings),
        Axis::linear("depth (layer k)").integer(),
        Axis::linear("hidden state x"),
    );
    for i in 0..n {
        ode.lines.push(Line::new(path_of(&p.times, &p.ode, 1, i, 0), colour(i), 2));
        let pts: Vec<(f64, f64)> = p.resnet.iter().enumerate().map(|(k, x)| (k as f64, x[i])).collect();
        res.lines.push(Line::new(pts, colour(i), 2).marker(Marker::Circle).at_vertices());
        ode.points.push(Point::dot(1.0, flow1d::target(inputs[i]), RGBColor(0, 0, 0), 3));
        res.points.push(Point::dot(cfg.layers as f64, flow1d::target(inputs[i]), RGBColor(0, 0, 0), 3));
    }
    let loss = Panel::new("training loss", Axis::linear("iteration").integer(), Axis::log("mean squared error"));
    let mut loss = loss;
    loss.lines.push(Line::series(NODE_SERIES, series(&r.ode.history.loss)).label("ODE-Net"));
    loss.lines.push(Line::series(ANODE_SERIES, series(&r.resnet.loss)).label(format!("ResNet ({} layers)", cfg.layers)));
    let title = format!(
        "1-D flow, y = {}: ODE-Net (MSE {:.2e}, {} NFE/solve) vs ResNet (MSE {:.2e})",
        flow1d::TARGET_NAME,
        r.ode.history.final_loss,
        r.ode.history.final_nfe,
        r.resnet.final_loss
    );
    let f = write(&a.out, "flow1d.png", |path| figure(path, &title, (1600, 560), 1, 3, &[ode, res, loss]))?;
    let v = json!({
        "iters": cfg.iters,
        "seconds": t0.elapsed().as_secs_f64(),
        "ode": model_json(&r.ode),
        "resnet": {"layers": cfg.layers, "final_loss": r.resnet.final_loss, "first_loss": r.resnet.loss.first(), "seconds": r.resnet.seconds},
        "ode_crossings": p.ode_crossings,
        "resnet_crossings": p.resnet_crossings,
        "crossings_inputs": n,
    });
    Ok((v, vec![f]))
}

fn series(v: &[f64]) -> Vec<(f64, f64)> {
    v.iter().enumerate().map(|(i, l)| ((i + 1) as f64, *l)).collect()
}

fn dupont1d_task(a: &TrajectoriesArgs) -> Result<(Value, Vec<String>), String> {
    let mut cfg = Dupont1dConfig { seed: a.seed, augment: a.augment, ..Dupont1dConfig::default() };
    cfg.iters = a.iters.unwrap_or(cfg.iters);
    crate::output::note(&format!("dupont1d: training a NODE and an ANODE (+{}) for {} iterations ...", cfg.augment, cfg.iters));
    let t0 = std::time::Instant::now();
    let mut r = dupont1d::run(&cfg).map_err(|e| format!("dupont1d: {e}"))?;
    let (node_l, anode_l) = ("NODE (R^1)".to_string(), format!("ANODE (R^{})", 1 + cfg.augment));
    let mut files = vec![write(&a.out, "dupont1d_training.png", |path| {
        let (n, an) = (&r.node.history, &r.anode.history);
        let title = format!(
            "g(-1) = 1, g(1) = -1: MSE NODE {:.3} vs ANODE {:.2e}; NFE/solve (median, last) NODE {}, {} vs ANODE {}, {}",
            n.final_loss,
            an.final_loss,
            n.median_nfe(),
            n.final_nfe,
            an.median_nfe(),
            an.final_nfe
        );
        let curves = [
            Curve { name: node_l.clone(), series: NODE_SERIES, loss: &n.loss, nfe: &n.nfe_forward },
            Curve { name: anode_l.clone(), series: ANODE_SERIES, loss: &an.loss, nfe: &an.nfe_forward },
        ];
        training(path, &title, &LOSS_AXES, &curves)
    })?];
    // Trajectories: the two training inputs (thick, coloured by target) and a grid (thin grey).
    let ts = linspace(0.0, 1.0, 101);
    let grid = linspace(-2.0, 2.0, 17);
    let mut inputs = vec![-1.0, 1.0];
    inputs.extend(&grid);
    let traj = |m: &mut OdeModel| m.trajectories_at(&inputs, &ts, FIGURE_TOL).map_err(|e| format!("dupont1d: {e}"));
    let (zn, za) = (traj(&mut r.node.model)?, traj(&mut r.anode.model)?);
    let da = r.anode.model.state_dim();
    let mut pn =
        Panel::new(format!("NODE on R^1: x(t) (final MSE {:.3})", r.node.history.final_loss), Axis::linear("t"), Axis::linear("x(t)"));
    let mut pa = Panel::new(
        format!("ANODE on R^{da}: first coordinate x1(t) (MSE {:.1e})", r.anode.history.final_loss),
        Axis::linear("t"),
        Axis::linear("x1(t)"),
    );
    let mut pp = Panel::new("ANODE trajectories in the (x1, x2) plane", Axis::linear("x1"), Axis::linear("x2 (augmented, starts at 0)"));
    for i in 2..inputs.len() {
        pn.lines.push(Line::new(path_of(&ts, &zn, 1, i, 0), GREY, 1));
        pa.lines.push(Line::new(path_of(&ts, &za, da, i, 0), GREY, 1));
        pp.lines.push(Line::new(ts.iter().zip(&za).map(|(_, z)| (z[i * da], z[i * da + 1])).collect(), GREY, 1));
    }
    for (i, (col, lab)) in [(PLUS, "x(0) = -1, target +1"), (MINUS, "x(0) = +1, target -1")].into_iter().enumerate() {
        pn.lines.push(Line::new(path_of(&ts, &zn, 1, i, 0), col, 4).label(lab));
        pa.lines.push(Line::new(path_of(&ts, &za, da, i, 0), col, 4).label(lab));
        pp.lines.push(Line::new(ts.iter().zip(&za).map(|(_, z)| (z[i * da], z[i * da + 1])).collect(), col, 4).label(lab));
        let target = [1.0, -1.0][i];
        pn.points.push(Point::dot(1.0, target, col, 7));
        pa.points.push(Point::dot(1.0, target, col, 7));
    }
    pn.point_legend.push(("targets at t = 1".into(), RGBColor(80, 80, 80), Marker::Circle));
    pa.point_legend.push(("targets at t = 1".into(), RGBColor(80, 80, 80), Marker::Circle));
    let title = "Dupont et al. 2019, 1-D: NODE trajectories cannot cross, ANODE routes them through x2 (grey: other inputs)";
    files.push(write(&a.out, "dupont1d_trajectories.png", |path| figure(path, title, (1700, 580), 1, 3, &[pn, pa, pp]))?);
    let v = json!({
        "iters": cfg.iters,
        "seconds": t0.elapsed().as_secs_f64(),
        "hidden": cfg.hidden,
        "lr": cfg.lr,
        "tol": cfg.tol,
        "node": model_json(&r.node),
        "anode": model_json(&r.anode),
    });
    Ok((v, files))
}

fn circles_task(a: &TrajectoriesArgs) -> Result<(Value, Vec<String>), String> {
    let mut cfg = CirclesConfig { seed: a.seed, augment: a.augment, ..CirclesConfig::default() };
    cfg.iters = a.iters.unwrap_or(cfg.iters);
    crate::output::note(&format!("circles: training a NODE and an ANODE (+{}) for {} iterations ...", cfg.augment, cfg.iters));
    let t0 = std::time::Instant::now();
    let mut r = circles::run(&cfg).map_err(|e| format!("circles: {e}"))?;
    let (x, y) = circles::data(&cfg);
    let da = r.anode.model.state_dim();
    let mut files = vec![write(&a.out, "circles_training.png", |path| {
        let (n, an) = (&r.node.history, &r.anode.history);
        let title = format!(
            "concentric circles: MSE NODE {:.2e} vs ANODE {:.2e}; NFE/solve (median, last) NODE {}, {} vs ANODE {}, {}",
            n.final_loss,
            an.final_loss,
            n.median_nfe(),
            n.final_nfe,
            an.median_nfe(),
            an.final_nfe
        );
        let curves = [
            Curve { name: "NODE (R^2)".into(), series: NODE_SERIES, loss: &n.loss, nfe: &n.nfe_forward },
            Curve { name: format!("ANODE (R^{da})"), series: ANODE_SERIES, loss: &an.loss, nfe: &an.nfe_forward },
        ];
        training(path, &title, &LOSS_AXES, &curves)
    })?];
    let colour = |l: f64| if l < 0.0 { MINUS } else { PLUS };
    let legend = || {
        vec![("||x|| < 0.5, label -1".to_string(), MINUS, Marker::Circle), ("1 < ||x|| < 1.5, label +1".to_string(), PLUS, Marker::Circle)]
    };
    let mut pd = Panel::new("input points", Axis::linear("x1"), Axis::linear("x2"));
    pd.square = true;
    pd.point_legend = legend();
    for (p, l) in x.chunks(2).zip(&y) {
        pd.points.push(Point::dot(p[0], p[1], colour(*l), 3));
    }
    // Final states, with the flow of every 8th point drawn as a thin line.
    let ts = linspace(0.0, 1.0, 41);
    let traj = |m: &mut OdeModel| m.trajectories_at(&x, &ts, FIGURE_TOL).map_err(|e| format!("circles: {e}"));
    let (zn, za) = (traj(&mut r.node.model)?, traj(&mut r.anode.model)?);
    let (Some(fn_), Some(fa)) = (zn.last(), za.last()) else {
        return Err("the trajectories hold no time".into());
    };
    let mut pn = Panel::new(
        format!("NODE: flow and final states z(1) (MSE {:.2e})", r.node.history.final_loss),
        Axis::linear("z1"),
        Axis::linear("z2"),
    );
    let mut pa = Panel::new(
        format!("ANODE: z(1) projected on (z1, z2) (MSE {:.2e})", r.anode.history.final_loss),
        Axis::linear("z1"),
        Axis::linear("z2"),
    );
    let mut po = Panel::new(
        "ANODE: output w.z(1) + b against augmented z3",
        Axis::linear("model output w.z(1) + b"),
        Axis::linear("z3 (augmented, starts at 0)"),
    );
    for (i, l) in y.iter().enumerate() {
        if i % 8 == 0 {
            let light = |c: RGBColor| lighten(c, 0.6);
            pn.lines.push(Line::new(zn.iter().map(|z| (z[2 * i], z[2 * i + 1])).collect(), light(colour(*l)), 1));
            pa.lines.push(Line::new(za.iter().map(|z| (z[da * i], z[da * i + 1])).collect(), light(colour(*l)), 1));
        }
    }
    let out_a = r.anode.model.readout(fa);
    for (i, l) in y.iter().enumerate() {
        pn.points.push(Point::dot(fn_[2 * i], fn_[2 * i + 1], colour(*l), 3));
        pa.points.push(Point::dot(fa[da * i], fa[da * i + 1], colour(*l), 3));
        po.points.push(Point::dot(out_a[i], fa[da * i + 2], colour(*l), 3));
    }
    // The NODE's decision line w . z + b = 0 within the data's range.
    if let Head::Linear { w, b } = &r.node.model.head {
        let (lo, hi) = fn_.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(p, q), v| (p.min(*v), q.max(*v)));
        let seg: Vec<(f64, f64)> = if w[1].abs() >= w[0].abs() {
            linspace(lo, hi, 50).into_iter().map(|s| (s, -(b + w[0] * s) / w[1])).filter(|p| p.1 >= lo && p.1 <= hi).collect()
        } else {
            linspace(lo, hi, 50).into_iter().map(|s| (-(b + w[1] * s) / w[0], s)).filter(|p| p.0 >= lo && p.0 <= hi).collect()
        };
        if seg.len() >= 2 {
            pn.lines.push(Line::new(seg, RGBColor(0, 0, 0), 2).label("decision line w.z + b = 0"));
        }
    }
    pn.point_legend = legend();
    pa.point_legend = legend();
    let zero: Vec<(f64, f64)> = {
        let (lo, hi) = fa.chunks(da).fold((f64::INFINITY, f64::NEG_INFINITY), |(p, q), z| (p.min(z[2]), q.max(z[2])));
        vec![(0.0, lo), (0.0, hi)]
    };
    po.lines.push(Line::new(zero, RGBColor(0, 0, 0), 2).label("decision threshold 0"));
    po.point_legend = legend();
    let title = format!(
        "Dupont et al. 2019 concentric circles: learned flows (NFE/solve at the end: NODE {}, ANODE {})",
        r.node.history.final_nfe, r.anode.history.final_nfe
    );
    files.push(write(&a.out, "circles_flow.png", |path| figure(path, &title, (1400, 1300), 2, 2, &[pd, pn, pa, po]))?);
    let v = json!({
        "iters": cfg.iters,
        "seconds": t0.elapsed().as_secs_f64(),
        "points": y.len(),
        "hidden": cfg.hidden,
        "lr": cfg.lr,
        "tol": cfg.tol,
        "node": model_json(&r.node),
        "anode": model_json(&r.anode),
    });
    Ok((v, files))
}
