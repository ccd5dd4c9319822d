//! Figures of `nodal plot trajectories`: training curves (loss and NFE per solve) and
//! trajectories of NODEs, ANODEs and a ResNet, drawn as panels of lines and points.

use crate::plot::{PlotResult, atomically, bounds, err, font};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Colour of the plain neural ODE in every figure.
pub const NODE: RGBColor = RGBColor(220, 50, 47);
/// Colour of the augmented neural ODE.
pub const ANODE: RGBColor = RGBColor(38, 139, 210);
/// Colour of the class / target `-1`.
pub const MINUS: RGBColor = RGBColor(203, 75, 22);
/// Colour of the class / target `+1`.
pub const PLUS: RGBColor = RGBColor(42, 161, 152);
/// Thin background trajectories.
pub const GREY: RGBColor = RGBColor(170, 170, 170);

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Blue-to-red colour for `s` in `[0, 1]` (inputs ordered along a line).
pub fn ramp(s: f64) -> RGBColor {
    let s = s.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + s * (b as f64 - a as f64)) as u8;
    RGBColor(mix(38, 220), mix(139, 50), mix(210, 47))
}

/// Tick label: integers without decimals, others with at most two.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{:.0}", v.round())
    } else {
        let t = format!("{v:.2}");
        t.trim_end_matches('0').to_string()
    }
}

/// One polyline (optionally with a dot at every vertex).
pub struct Line {
    /// Vertices.
    pub pts: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Stroke width in pixels.
    pub width: u32,
    /// Legend entry.
    pub label: Option<String>,
    /// Dots at the vertices.
    pub dots: bool,
}

impl Line {
    /// A plain line without legend entry.
    pub fn new(pts: Vec<(f64, f64)>, color: RGBColor, width: u32) -> Self {
        Self { pts, color, width, label: None, dots: false }
    }
    /// With a legend entry.
    pub fn label(mut self, l: impl Into<String>) -> Self {
        self.label = Some(l.into());
        self
    }
    /// With dots at the vertices.
    pub fn dots(mut self) -> Self {
        self.dots = true;
        self
    }
}

/// One chart: lines, scattered points, axis names; ranges fit the data.
pub struct Panel {
    /// Caption above the chart.
    pub caption: String,
    /// Name of the horizontal axis.
    pub x_desc: String,
    /// Name of the vertical axis.
    pub y_desc: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Points `(x, y, colour, radius)`.
    pub points: Vec<(f64, f64, RGBColor, u32)>,
    /// Legend entries for the points (`label`, colour).
    pub point_legend: Vec<(String, RGBColor)>,
    /// Logarithmic vertical axis (values clamped to at least 1e-12).
    pub log_y: bool,
    /// Same range on both axes.
    pub square: bool,
}

impl Panel {
    /// An empty panel.
    pub fn new(caption: impl Into<String>, x_desc: impl Into<String>, y_desc: impl Into<String>) -> Self {
        Self {
            caption: caption.into(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            lines: Vec::new(),
            points: Vec::new(),
            point_legend: Vec::new(),
            log_y: false,
            square: false,
        }
    }
}

/// Draw `panels` on a `rows x cols` grid under `title`, atomically into `path`.
pub fn figure(path: &Path, title: &str, size: (u32, u32), rows: usize, cols: usize, panels: &[Panel]) -> PlotResult {
    atomically(path, |p| draw_figure(p, title, size, rows, cols, panels))
}

fn draw_figure(path: &Path, title: &str, size: (u32, u32), rows: usize, cols: usize, panels: &[Panel]) -> PlotResult {
    font();
    let e = err(path);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let root = root.titled(title, ("sans-serif", 24)).map_err(&e)?;
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
        draw_panel(area, panel).map_err(|m| format!("{}: cannot draw figure: {m}", path.display()))?;
    }
    root.present().map_err(&e)
}

fn draw_panel(area: &Area<'_>, p: &Panel) -> Result<(), String> {
    let s = |e: DrawingAreaErrorKind<_>| e.to_string();
    let xs = p.lines.iter().flat_map(|l| l.pts.iter().map(|q| q.0)).chain(p.points.iter().map(|q| q.0));
    let ys = || p.lines.iter().flat_map(|l| l.pts.iter().map(|q| q.1)).chain(p.points.iter().map(|q| q.1));
    let (mut x0, mut x1) = bounds(xs);
    let (mut y0, mut y1) = bounds(ys());
    if !(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite()) {
        return Err(format!("panel '{}' has no finite data", p.caption));
    }
    if p.square {
        let (lo, hi) = (x0.min(y0), x1.max(y1));
        (x0, x1, y0, y1) = (lo, hi, lo, hi);
    }
    let mut b = ChartBuilder::on(area);
    b.caption(&p.caption, ("sans-serif", 17)).margin(10).x_label_area_size(40).y_label_area_size(62);
    let style = ("sans-serif", 14);
    if p.log_y {
        let pos = ys().filter(|v| *v > 0.0).map(|v| v.max(1e-12));
        let (lo, hi) = pos.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, c), v| (a.min(v), c.max(v)));
        let (lo, hi) = if lo.is_finite() { (lo / 2.0, hi * 2.0) } else { (1e-3, 1.0) };
        let mut c = b.build_cartesian_2d(x0..x1, (lo..hi).log_scale()).map_err(s)?;
        c.configure_mesh()
            .x_desc(&p.x_desc)
            .y_desc(&p.y_desc)
            .label_style(style)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(s)?;
        for l in &p.lines {
            let pts: Vec<(f64, f64)> = l.pts.iter().map(|&(x, y)| (x, y.max(1e-12))).collect();
            let a = c.draw_series(LineSeries::new(pts, l.color.stroke_width(l.width))).map_err(s)?;
            if let Some(lab) = &l.label {
                let col = l.color;
                a.label(lab.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
            }
        }
        if p.lines.iter().any(|l| l.label.is_some()) {
            c.configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(style)
                .draw()
                .map_err(s)?;
        }
        return Ok(());
    }
    let mut c = b.build_cartesian_2d(x0..x1, y0..y1).map_err(s)?;
    c.configure_mesh()
        .x_desc(&p.x_desc)
        .y_desc(&p.y_desc)
        .label_style(style)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(s)?;
    let mut legend = false;
    for l in &p.lines {
        let a = c.draw_series(LineSeries::new(l.pts.iter().copied(), l.color.stroke_width(l.width))).map_err(s)?;
        if let Some(lab) = &l.label {
            legend = true;
            let col = l.color;
            a.label(lab.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col.stroke_width(3)));
        }
        if l.dots {
            c.draw_series(l.pts.iter().map(|&q| Circle::new(q, 3, l.color.filled()))).map_err(s)?;
        }
    }
    c.draw_series(p.points.iter().map(|&(x, y, col, r)| Circle::new((x, y), r, col.filled()))).map_err(s)?;
    for (lab, col) in &p.point_legend {
        legend = true;
        let col = *col;
        c.draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())
            .map_err(s)?
            .label(lab.as_str())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, col.filled()));
    }
    if legend {
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(style)
            .draw()
            .map_err(s)?;
    }
    Ok(())
}

/// Loss (log scale) and forward NFE per solve against iteration, one line per model.
pub fn training(path: &Path, title: &str, series: &[(String, RGBColor, &[f64], &[usize])]) -> PlotResult {
    training_with(path, title, "training loss (MSE, log scale)", series)
}

/// [`training`] with another caption for the loss panel.
pub fn training_with(path: &Path, title: &str, loss_caption: &str, series: &[(String, RGBColor, &[f64], &[usize])]) -> PlotResult {
    let mut loss = Panel::new(loss_caption, "iteration", "loss");
    loss.log_y = true;
    let mut nfe = Panel::new("function evaluations per forward dopri5 solve", "iteration", "NFE per solve");
    for (label, color, l, n) in series {
        loss.lines.push(Line::new(l.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)).collect(), *color, 2).label(label.clone()));
        nfe.lines.push(Line::new(n.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v as f64)).collect(), *color, 2).label(label.clone()));
    }
    // Keep 0 on the NFE axis so that the levels compare honestly.
    nfe.points.push((1.0, 0.0, WHITE, 0));
    figure(path, title, (1400, 520), 1, 2, &[loss, nfe])
}
