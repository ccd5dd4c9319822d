//! Figures of `nodal train bouncing-ball`: the observed heights with the true, initial and
//! learned trajectories; the parameters over training.

use crate::figure::palette::{GREY, INK, Marker, VERMILLION};
use crate::figure::{Axis, Line, Panel, PlotResult, Point, figure};
use std::path::Path;

/// One trajectory `(t, height)` to draw.
pub struct Track<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Times.
    pub ts: &'a [f64],
    /// Heights.
    pub heights: &'a [f64],
}

/// Observations as dots, the true trajectory, the initial guess (dashed grey) and the learned
/// one (dashed), with the learned impacts marked on the floor.
pub fn fit(
    path: &Path,
    title: &str,
    obs: (&[f64], &[f64]),
    truth: &Track<'_>,
    initial: &Track<'_>,
    learned: &Track<'_>,
    impacts: &[f64],
) -> PlotResult {
    let mut p = Panel::new(
        "dots: noisy observed heights; crosses on the floor: the learned ball's impacts (located events)",
        Axis::linear("t (s)"),
        Axis::linear("height (m)"),
    );
    let pts = |t: &Track<'_>| t.ts.iter().copied().zip(t.heights.iter().copied()).collect::<Vec<_>>();
    p.lines.push(Line::new(pts(initial), GREY, 2).label(initial.label).dashed());
    p.lines.push(Line::new(pts(truth), INK, 3).label(truth.label));
    p.lines.push(Line::new(pts(learned), VERMILLION, 3).label(learned.label).dashed());
    for (t, h) in obs.0.iter().zip(obs.1) {
        p.points.push(Point::dot(*t, *h, INK, 3));
    }
    for &t in impacts {
        p.points.push(Point { at: (t, 0.0), color: VERMILLION, size: 7, marker: Marker::Cross });
    }
    p.point_legend.push(("observations".into(), INK, Marker::Circle));
    p.point_legend.push(("learned impacts".into(), VERMILLION, Marker::Cross));
    figure(path, title, (1100, 640), 1, 1, &[p])
}

/// Gravity and restitution over the iterations, against their true values.
pub fn parameters(path: &Path, title: &str, iters: &[f64], gravity: &[f64], restitution: &[f64], truth: (f64, f64)) -> PlotResult {
    let mut panels = Vec::new();
    for (name, v, t) in [("gravity g (m/s²)", gravity, truth.0), ("restitution e", restitution, truth.1)] {
        let mut p = Panel::new(format!("{name}: true value {t} (black)"), Axis::linear("iteration"), Axis::linear(name));
        let last = iters.last().copied().unwrap_or(1.0);
        p.lines.push(Line::new(vec![(0.0, t), (last, t)], INK, 2).label("true"));
        p.lines.push(Line::new(iters.iter().copied().zip(v.iter().copied()).collect(), VERMILLION, 3).label("learned"));
        panels.push(p);
    }
    figure(path, title, (1200, 560), 1, 2, &panels)
}
