//! `nodal plot homeomorphism`: a neural ODE deforms a circle onto a star, a letter and a figure
//! eight, beside an MLP and a ResNet of the same size; figures of the deformed curve and grid,
//! a table of fitting error, self-intersections, grid folds and Jacobian determinants
//! (see `nodal_experiments::shapes`).

use crate::failure::{CliResult, Failure};
use crate::figure::palette::{CONTEXT_LIGHT, INK, ORANGE};
use crate::figure::{Axis, Line, Marker, Panel, Point, figure};
use clap::{Args, ValueEnum};
use nodal::io::write_atomic;
use nodal_experiments::shapes::curves::Target;
use nodal_experiments::shapes::experiment::{Config, Outcome, maps_for, markdown, run as run_one};
use std::path::PathBuf;

/// Which targets to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    /// A five-pointed star.
    Star,
    /// A block letter C.
    Letter,
    /// A figure eight (crosses itself: no homeomorphism reaches it).
    FigureEight,
    /// All three.
    All,
}

/// Arguments of `nodal plot homeomorphism`.
#[derive(Args)]
pub struct HomeomorphismArgs {
    /// Target shape.
    #[arg(long, value_enum, default_value = "all")]
    target: TargetArg,
    /// Output folder (homeomorphism_<target>.png, homeomorphism.md, homeomorphism.json).
    #[arg(long, default_value = "runs/homeomorphism")]
    out: PathBuf,
    /// Adam iterations per map.
    #[arg(long, default_value_t = 1500)]
    iters: usize,
    /// Seed of the weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Palette index of each map: the ODE blue, the MLP vermillion, the ResNet green, the
/// augmented ODE purple.
fn series_of(map: &str) -> usize {
    if map.starts_with("neural ODE") {
        0
    } else if map.starts_with("MLP") {
        1
    } else if map.starts_with("ResNet") {
        2
    } else {
        3
    }
}

/// Run; exit 2 on invalid options, 4 when the output folder cannot be written, 1 when a
/// training solve fails.
pub fn run(a: HomeomorphismArgs) -> CliResult {
    crate::validate::count("iters", a.iters, 1, 1_000_000)?;
    crate::mnist_cmd::check_writable(&a.out)?;
    let targets: Vec<Target> = match a.target {
        TargetArg::Star => vec![Target::Star],
        TargetArg::Letter => vec![Target::Letter],
        TargetArg::FigureEight => vec![Target::FigureEight],
        TargetArg::All => Target::ALL.to_vec(),
    };
    let cfg = Config { iters: a.iters, seed: a.seed, ..Config::default() };
    let mut rows = Vec::new();
    for t in targets {
        let mut outs = Vec::new();
        for m in maps_for(t, a.seed) {
            crate::output::note(&format!("{}: training the {} for {} iterations ...", t.name(), m.kind.name(), cfg.iters));
            outs.push(run_one(t, m, &cfg).map_err(|e| Failure::Compute(format!("{}: {e}", t.name())))?);
        }
        draw(&a, t, &outs, &cfg)?;
        rows.extend(outs);
    }
    let md = markdown(&rows);
    write_atomic(&a.out.join("homeomorphism.md"), md.as_bytes()).map_err(Failure::file)?;
    let json = serde_json::to_string_pretty(&rows).map_err(Failure::output)?;
    write_atomic(&a.out.join("homeomorphism.json"), json.as_bytes()).map_err(Failure::file)?;
    crate::output::emit(md.trim_end())?;
    crate::output::note(&format!("wrote {}/{{homeomorphism.md, homeomorphism.json, homeomorphism_*.png}}", a.out.display()));
    Ok(())
}

/// One panel: the grid and curve after the map (snapshot `k`), the target dashed.
fn map_panel(o: &Outcome, k: usize, target: &[(f64, f64)], caption: String) -> Panel {
    let lim = 1.9;
    let mut p = Panel::new(caption, Axis::linear("x").range(-lim, lim), Axis::linear("y").range(-lim, lim)).square();
    for l in &o.grids[k] {
        p.lines.push(Line::new(l.clone(), CONTEXT_LIGHT, 1));
    }
    let mut closed = target.to_vec();
    closed.extend(target.first());
    p.lines.push(Line::new(closed, INK, 2).dashed());
    let mut c = o.curves[k].clone();
    c.extend(o.curves[k].first().copied());
    p.lines.push(Line::series(series_of(&o.map), c));
    if k + 1 == o.curves.len() {
        if !o.folds_image.is_empty() {
            p.points.extend(o.folds_image.iter().map(|q| Point { at: *q, color: ORANGE, size: 2, marker: Marker::Circle }));
        }
        if !o.crossings_at.is_empty() {
            p.points.extend(o.crossings_at.iter().map(|q| Point { at: *q, color: INK, size: 8, marker: Marker::Ring }));
        }
    }
    p
}

fn summary(o: &Outcome) -> String {
    format!(
        "{}: RMSE {:.3}, {} self-intersections, {} grid folds, min det J {:.2}",
        o.map, o.fit_rmse, o.curve_crossings, o.grid_folds, o.min_det
    )
}

fn draw(a: &HomeomorphismArgs, t: Target, outs: &[Outcome], cfg: &Config) -> CliResult {
    let target = t.points(cfg.n_eval);
    let ode = &outs[0];
    let mut panels = Vec::new();
    for (k, time) in ode.times.iter().enumerate().filter(|(_, s)| [0.0, 0.5].contains(*s)) {
        panels.push(map_panel(ode, k, &target, format!("neural ODE at t = {time}")));
    }
    panels.push(map_panel(ode, ode.curves.len() - 1, &target, format!("t = 1: {}", summary(ode))));
    for o in &outs[1..] {
        panels.push(map_panel(o, o.curves.len() - 1, &target, summary(o)));
    }
    if panels.len() < 6 {
        let mut loss = Panel::new("training loss", Axis::linear("iteration").integer(), Axis::log("mean squared distance"));
        for o in outs {
            let pts = o.loss.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)).collect();
            loss.lines.push(Line::series(series_of(&o.map), pts).label(o.map.clone()));
        }
        panels.push(loss);
    }
    let others: Vec<String> = outs[1..].iter().map(|o| format!("{} {:.2}", o.map, o.min_det)).collect();
    let title = format!(
        "circle -> {}: min det J of the neural ODE {:.2} ({} self-intersections, {} grid folds), of the {}. \
         Dashed: the target; grey: the deformed grid of [-1.5, 1.5]^2; orange dots: det J < 0; black rings: the curve crosses itself",
        t.name(),
        ode.min_det,
        ode.curve_crossings,
        ode.grid_folds,
        others.join(", of the ")
    );
    let path = a.out.join(format!("homeomorphism_{}.png", t.name()));
    figure(&path, &title, (1800, 1320), 2, 3, &panels).map_err(Failure::Output)
}
