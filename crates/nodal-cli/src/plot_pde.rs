//! Figures of `nodal train pde`: space-time heat maps of the true and learned fields and their
//! difference; the rollout error against time; the learned term against the true one.

use crate::figure::palette::{self, GREY, INK, VERMILLION};
use crate::figure::{Axis, Line, Panel, PlotResult, TICK_PX, atomically, figure, font};
use plotters::prelude::*;
use std::path::Path;

/// Heat maps of fields `maps[j] = (caption, values[t][x])` over space `xs` and times `ts`, side by
/// side; the first `shared` maps share one colour scale, the others have their own.
pub fn heatmaps(path: &Path, title: &str, xs: &[f64], ts: &[f64], maps: &[(String, &[Vec<f64>])], shared: usize) -> PlotResult {
    let range = |ms: &[(String, &[Vec<f64>])]| {
        let vals = ms.iter().flat_map(|(_, m)| m.iter().flatten().copied()).filter(|v| v.is_finite());
        let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        if lo.is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) }
    };
    let shared_range = range(&maps[..shared.min(maps.len())]);
    atomically(path, |p| {
        font();
        let s = |e: DrawingAreaErrorKind<_>| e.to_string();
        let width = 520 * maps.len() as u32;
        let root = BitMapBackend::new(p, (width, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(s)?;
        let title_style = TextStyle::from(("sans-serif", 28)).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
        root.draw_text(title, &title_style, (width as i32 / 2, 8)).map_err(s)?;
        let body = root.margin(48, 8, 8, 8);
        let (x0, x1) = (xs[0], xs[xs.len() - 1]);
        let dx = if xs.len() > 1 { xs[1] - xs[0] } else { 1.0 };
        let dt = if ts.len() > 1 { ts[1] - ts[0] } else { 1.0 };
        for (j, (area, (caption, values))) in body.split_evenly((1, maps.len())).iter().zip(maps).enumerate() {
            let (lo, hi) = if j < shared { shared_range } else { range(&maps[j..j + 1]) };
            let cap = format!("{caption} (colour {lo:.2} to {hi:.2})");
            let mut chart = ChartBuilder::on(area)
                .caption(cap, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(x0 - dx / 2.0..x1 + dx / 2.0, ts[0] - dt / 2.0..ts[ts.len() - 1] + dt / 2.0)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("x")
                .y_desc("t")
                .label_style(("sans-serif", TICK_PX))
                .axis_desc_style(("sans-serif", 20))
                .draw()
                .map_err(|e| e.to_string())?;
            let cells = values.iter().enumerate().flat_map(|(k, row)| {
                row.iter().enumerate().map(move |(i, &v)| {
                    let c = palette::sequential((v - lo) / (hi - lo));
                    Rectangle::new([(xs[i] - dx / 2.0, ts[k] - dt / 2.0), (xs[i] + dx / 2.0, ts[k] + dt / 2.0)], c.filled())
                })
            });
            chart.draw_series(cells).map_err(|e| e.to_string())?;
        }
        root.present().map_err(s)
    })
}

/// Rollout RMSE against time for the learned model, the baseline and the initial parameters,
/// with the training horizon marked.
pub fn rollout(path: &Path, title: &str, ts: &[f64], series: &[(&str, &[f64])], horizon: f64) -> PlotResult {
    let hi = series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite() && *v > 0.0).fold(1e-12, f64::max);
    let lo = series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite() && *v > 0.0).fold(hi, f64::min);
    let mut p = Panel::new(
        format!("mean over held-out fields; training horizon T = {horizon} (dashed), evaluated to 2T"),
        Axis::linear("t"),
        Axis::log("RMSE against the true PDE").range(lo / 2.0, hi * 2.0),
    );
    for (i, (name, v)) in series.iter().enumerate() {
        let pts: Vec<(f64, f64)> = ts.iter().zip(v.iter()).skip(1).map(|(t, e)| (*t, *e)).collect();
        p.lines.push(Line::series(i, pts).label(*name).at_vertices());
    }
    p.lines.push(Line::new(vec![(horizon, lo / 2.0), (horizon, hi * 2.0)], GREY, 2).dashed());
    figure(path, title, (1000, 640), 1, 1, &[p])
}

/// The learned reaction `R(u)` against the true one over `u` in `[0, 1]`.
pub fn reaction(path: &Path, title: &str, us: &[f64], learned: &[f64], truth: &[f64]) -> PlotResult {
    let mut p = Panel::new("on [0, 1], the range the data visit", Axis::linear("u"), Axis::linear("R(u)"));
    p.lines.push(Line::new(us.iter().copied().zip(truth.iter().copied()).collect(), INK, 3).label("true r u (1 - u)"));
    p.lines.push(Line::new(us.iter().copied().zip(learned.iter().copied()).collect(), VERMILLION, 3).label("learned network").dashed());
    figure(path, title, (900, 640), 1, 1, &[p])
}

/// Learned convection weights against the central scheme's, per stencil offset.
pub fn stencil(path: &Path, title: &str, learned: &[f64], central: &[f64]) -> PlotResult {
    let offsets = [-2.0, -1.0, 0.0, 1.0, 2.0];
    let mut panels = Vec::new();
    for (c, name) in [(0usize, "weights on u"), (5, "weights on u^2")] {
        let mut p = Panel::new(name, Axis::linear("stencil offset k").integer(), Axis::linear("weight"));
        p.lines.push(
            Line::new(offsets.iter().copied().zip(central[c..c + 5].iter().copied()).collect(), INK, 3)
                .label("central scheme")
                .at_vertices(),
        );
        p.lines.push(
            Line::new(offsets.iter().copied().zip(learned[c..c + 5].iter().copied()).collect(), VERMILLION, 3)
                .label("learned")
                .at_vertices()
                .dashed(),
        );
        panels.push(p);
    }
    figure(path, title, (1200, 600), 1, 2, &panels)
}
