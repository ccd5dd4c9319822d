//! Figure of `nodal train latent-ode`: held-out series with their observed points, the true
//! curve, the model's prediction and (latent ODE) posterior samples, for interpolation and
//! extrapolation.

use crate::figure::palette::{self, GREY, INK, Marker, VERMILLION};
use crate::figure::{Axis, Line, Panel, PlotResult, Point, figure};
use std::path::Path;

/// One held-out series in one setting.
pub struct SeriesPanel<'a> {
    /// Caption.
    pub caption: String,
    /// Grid.
    pub ts: &'a [f64],
    /// Noise-free values.
    pub clean: &'a [f32],
    /// Observed `(t, x)` the model was conditioned on.
    pub seen: Vec<(f64, f64)>,
    /// Observed points it was not shown (extrapolation).
    pub hidden: Vec<(f64, f64)>,
    /// Prediction (posterior mean for the latent ODE).
    pub mean: &'a [f32],
    /// Posterior samples.
    pub samples: Vec<&'a [f32]>,
    /// Where conditioning ends (extrapolation).
    pub split: Option<f64>,
}

/// The panels in `rows` rows.
pub fn series(path: &Path, title: &str, rows: usize, panels: &[SeriesPanel<'_>], model: &str) -> PlotResult {
    let mut out = Vec::new();
    let cols = panels.len().div_ceil(rows.max(1));
    for (n, sp) in panels.iter().enumerate() {
        // One legend per row, on its first panel.
        let legend = n % cols == 0;
        let mut p = Panel::new(sp.caption.clone(), Axis::linear("t"), Axis::linear("x"));
        let pts = |v: &[f32]| sp.ts.iter().copied().zip(v.iter().map(|&x| x as f64)).collect::<Vec<_>>();
        for (k, s) in sp.samples.iter().enumerate() {
            let l = Line::new(pts(s), palette::lighten(VERMILLION, 0.65), 1);
            p.lines.push(if k == 0 && legend { l.label("posterior samples") } else { l });
        }
        let truth = Line::new(pts(sp.clean), INK, 2);
        p.lines.push(if legend { truth.label("true curve") } else { truth });
        let mean = Line::new(pts(sp.mean), VERMILLION, 3).dashed();
        p.lines.push(if legend { mean.label(model.to_string()) } else { mean });
        if let Some(s) = sp.split {
            let lo = sp.clean.iter().fold(f32::INFINITY, |a, &b| a.min(b)) as f64 - 0.3;
            let hi = sp.clean.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64 + 0.3;
            p.lines.push(Line::new(vec![(s, lo), (s, hi)], GREY, 2).dashed());
        }
        for &(t, x) in &sp.seen {
            p.points.push(Point::dot(t, x, INK, 4));
        }
        for &(t, x) in &sp.hidden {
            p.points.push(Point { at: (t, x), color: GREY, size: 4, marker: Marker::Circle });
        }
        if legend {
            p.point_legend.push(("observed, shown".into(), INK, Marker::Circle));
            if !sp.hidden.is_empty() {
                p.point_legend.push(("observed, held back".into(), GREY, Marker::Circle));
            }
        }
        out.push(p);
    }
    figure(path, title, (560 * cols as u32, 440 * rows as u32), rows, cols, &out)
}
