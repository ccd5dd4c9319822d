//! One chart of a figure: axes, lines, points, arrows and a legend, drawn in the house style
//! (see the module docs of [`crate::figure`]).

use super::palette::{self, GRID, INK, Marker};
use super::{AXIS_PX, CAPTION_PX, LEGEND_PX, TICK_PX, clip, legend, text, ticks};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Drawing area of one bitmap.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Linear or logarithmic axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic; values at or below zero sit on the lower edge.
    Log,
}

/// One axis: its label (with units), scale, and what its quantity can take.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Axis label, with units where the quantity has them.
    pub label: String,
    /// Linear or log.
    pub scale: Scale,
    /// A count: ticks at whole numbers only.
    pub integer: bool,
    /// The range the quantity can take (accuracy `[0, 1]`): the axis never extends past it.
    pub clamp: Option<(f64, f64)>,
    /// A fixed range instead of one fitted to the data.
    pub range: Option<(f64, f64)>,
    /// Smallest span of a fitted linear range, so that differences below it do not fill the
    /// axis (one test image in a 99% accuracy).
    pub min_span: f64,
    /// Keep zero in a fitted linear range (levels that compare honestly).
    pub with_zero: bool,
}

impl Axis {
    /// A linear axis fitted to the data.
    pub fn linear(label: impl Into<String>) -> Self {
        Self { label: label.into(), scale: Scale::Linear, integer: false, clamp: None, range: None, min_span: 0.0, with_zero: false }
    }
    /// A logarithmic axis fitted to the positive data.
    pub fn log(label: impl Into<String>) -> Self {
        Self { scale: Scale::Log, ..Self::linear(label) }
    }
    /// Ticks at whole numbers only.
    pub fn integer(mut self) -> Self {
        self.integer = true;
        self
    }
    /// Never extend past `[lo, hi]`.
    pub fn clamp(mut self, lo: f64, hi: f64) -> Self {
        self.clamp = Some((lo, hi));
        self
    }
    /// A fixed range.
    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }
    /// Smallest span of the fitted range.
    pub fn min_span(mut self, s: f64) -> Self {
        self.min_span = s;
        self
    }
    /// Keep zero in the fitted range.
    pub fn with_zero(mut self) -> Self {
        self.with_zero = true;
        self
    }
}

/// Where a line's markers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerAt {
    /// About a dozen spread along the line (a second cue on dense curves).
    Spread,
    /// At every vertex (a line through measured points).
    Vertices,
    /// At the last vertex only (where a trajectory ends).
    End,
}

/// One polyline, optionally with markers along it.
#[derive(Debug, Clone)]
pub struct Line {
    /// Vertices in data coordinates.
    pub pts: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Stroke width in pixels.
    pub width: u32,
    /// Legend entry.
    pub label: Option<String>,
    /// Marker shape drawn along the line (and in the legend).
    pub marker: Option<Marker>,
    /// Where the markers go.
    pub marker_at: MarkerAt,
    /// Dashed stroke.
    pub dashed: bool,
}

impl Line {
    /// A plain line without legend entry or markers.
    pub fn new(pts: Vec<(f64, f64)>, color: RGBColor, width: u32) -> Self {
        Self { pts, color, width, label: None, marker: None, marker_at: MarkerAt::Spread, dashed: false }
    }
    /// Series `i` of a panel: its palette colour and marker, a 3 px stroke.
    pub fn series(i: usize, pts: Vec<(f64, f64)>) -> Self {
        let (color, marker) = palette::series(i);
        Self { marker: Some(marker), ..Self::new(pts, color, 3) }
    }
    /// With a legend entry.
    pub fn label(mut self, l: impl Into<String>) -> Self {
        self.label = Some(l.into());
        self
    }
    /// With this marker.
    pub fn marker(mut self, m: Marker) -> Self {
        self.marker = Some(m);
        self
    }
    /// Markers at every vertex (a line through measured points).
    pub fn at_vertices(mut self) -> Self {
        self.marker_at = MarkerAt::Vertices;
        self
    }
    /// A marker at the end only.
    pub fn at_end(mut self) -> Self {
        self.marker_at = MarkerAt::End;
        self
    }
    /// Dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// One marker in data coordinates.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// Position.
    pub at: (f64, f64),
    /// Colour.
    pub color: RGBColor,
    /// Radius in pixels.
    pub size: u32,
    /// Shape.
    pub marker: Marker,
}

impl Point {
    /// A filled circle.
    pub fn dot(x: f64, y: f64, color: RGBColor, size: u32) -> Self {
        Self { at: (x, y), color, size, marker: Marker::Circle }
    }
}

/// An arrow from `from` to `to` (data coordinates).
#[derive(Debug, Clone, Copy)]
pub struct Arrow {
    /// Tail.
    pub from: (f64, f64),
    /// Head.
    pub to: (f64, f64),
    /// Colour.
    pub color: RGBColor,
}

/// One chart.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Caption above the chart: what it shows, and its key number.
    pub caption: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Lines, drawn in order (later ones on top).
    pub lines: Vec<Line>,
    /// Markers, drawn over the lines.
    pub points: Vec<Point>,
    /// Arrows, drawn under the lines.
    pub arrows: Vec<Arrow>,
    /// Legend entries for markers: label, colour, shape.
    pub point_legend: Vec<(String, RGBColor, Marker)>,
    /// Same range and scale on both axes (shapes in the plane).
    pub square: bool,
}

impl Panel {
    /// An empty panel.
    pub fn new(caption: impl Into<String>, x: Axis, y: Axis) -> Self {
        Self {
            caption: caption.into(),
            x,
            y,
            lines: Vec::new(),
            points: Vec::new(),
            arrows: Vec::new(),
            point_legend: Vec::new(),
            square: false,
        }
    }
    /// Same range on both axes.
    pub fn square(mut self) -> Self {
        self.square = true;
        self
    }
    /// Every x value the panel draws.
    fn xs(&self) -> Vec<f64> {
        let l = self.lines.iter().flat_map(|l| l.pts.iter().map(|p| p.0));
        let a = self.arrows.iter().flat_map(|a| [a.from.0, a.to.0]);
        l.chain(self.points.iter().map(|p| p.at.0)).chain(a).collect()
    }
    /// Every y value the panel draws.
    fn ys(&self) -> Vec<f64> {
        let l = self.lines.iter().flat_map(|l| l.pts.iter().map(|p| p.1));
        let a = self.arrows.iter().flat_map(|a| [a.from.1, a.to.1]);
        l.chain(self.points.iter().map(|p| p.at.1)).chain(a).collect()
    }
}

/// An axis laid out: range (in plotted units: log10 of the value on log axes), ticks, labels.
#[derive(Debug, Clone)]
pub struct AxisPlan {
    /// Log axis.
    pub log: bool,
    /// Lower end, plotted units.
    pub lo: f64,
    /// Upper end, plotted units.
    pub hi: f64,
    /// Ticks, plotted units.
    pub ticks: Vec<f64>,
    /// Their labels.
    pub labels: Vec<String>,
}

impl AxisPlan {
    /// Plotted units of a data value (log10 on log axes; non-positive values at the lower end).
    pub fn to_plot(&self, v: f64) -> f64 {
        if !self.log {
            v
        } else if v > 0.0 {
            v.log10()
        } else if v.is_nan() {
            f64::NAN
        } else {
            self.lo
        }
    }
    /// Position of a data value as a fraction of the axis (0 at the lower end).
    pub fn unit(&self, v: f64) -> f64 {
        (self.to_plot(v) - self.lo) / (self.hi - self.lo)
    }
}

/// The fitted data range of `axis` over `vals`, before ticks: padded, widened to the minimum
/// span, clamped. `None` when no value is usable (no finite value; no positive one on a log axis).
pub fn data_range(axis: &Axis, vals: &[f64]) -> Option<(f64, f64)> {
    if let Some(r) = axis.range {
        return Some(r);
    }
    let usable = |v: &&f64| v.is_finite() && (axis.scale == Scale::Linear || **v > 0.0);
    let (lo, hi) = vals.iter().filter(usable).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    if lo > hi {
        return None;
    }
    let (lo, hi) = match axis.scale {
        Scale::Log => ticks::log_range(lo, hi),
        Scale::Linear => {
            let (lo, hi) = if axis.with_zero { (lo.min(0.0), hi.max(0.0)) } else { (lo, hi) };
            let span = (hi - lo).max(axis.min_span).max(1e-9 * lo.abs().max(hi.abs())).max(1e-12);
            let mid = 0.5 * (lo + hi);
            let (lo, hi) = (lo.min(mid - span / 2.0), hi.max(mid + span / 2.0));
            let pad = 0.04 * (hi - lo);
            (if axis.with_zero && lo == 0.0 { 0.0 } else { lo - pad }, hi + pad)
        }
    };
    Some(match axis.clamp {
        Some((a, b)) => {
            let (lo, hi) = (lo.max(a), hi.min(b));
            // Data entirely outside the clamp (a bug upstream) still gets a visible frame.
            if hi > lo { (lo, hi) } else { (a, b) }
        }
        None => (lo, hi),
    })
}

/// Lay out an axis of `px` pixels over the data range `(lo, hi)`. `label_px(text)` measures a
/// tick label along the axis (its width on a horizontal axis, its height on a vertical one).
pub fn plan_axis(axis: &Axis, (lo, hi): (f64, f64), px: f64, label_px: &dyn Fn(&str) -> f64) -> AxisPlan {
    let gap = 14.0;
    match axis.scale {
        Scale::Log => {
            let (lu, hu) = (lo.log10(), hi.log10());
            let fits = |t: &[f64]| {
                let c: Vec<f64> = t.iter().map(|v| (v.log10() - lu) / (hu - lu) * px).collect();
                let h: Vec<f64> = t.iter().map(|v| 0.5 * label_px(&ticks::log_label(*v))).collect();
                ticks::apart(&c, &h, gap)
            };
            let t = ticks::log_ticks(lo, hi, &fits);
            AxisPlan {
                log: true,
                lo: lu,
                hi: hu,
                labels: t.iter().map(|v| ticks::log_label(*v)).collect(),
                ticks: t.iter().map(|v| v.log10()).collect(),
            }
        }
        Scale::Linear => {
            let fits = |step: f64, t: &[f64]| {
                let c: Vec<f64> = t.iter().map(|v| (v - lo) / (hi - lo) * px).collect();
                let h: Vec<f64> = t.iter().map(|v| 0.5 * label_px(&ticks::linear_label(*v, step))).collect();
                ticks::apart(&c, &h, gap) && c.windows(2).all(|w| w[1] - w[0] >= 40.0)
            };
            let (step, t) = ticks::linear_ticks(lo, hi, axis.integer, &fits);
            AxisPlan { log: false, lo, hi, labels: t.iter().map(|v| ticks::linear_label(*v, step)).collect(), ticks: t }
        }
    }
}

/// Pixel sizes of the chart layout.
const MARGIN: i32 = 10;
const X_LABEL_AREA: i32 = 64;
const LEGEND_ROW: i32 = 28;

/// Legend entries of a panel: label, colour, stroke width (0 for a marker only), marker.
fn entries(p: &Panel) -> Vec<(String, RGBColor, u32, Option<Marker>, bool)> {
    let mut e: Vec<_> = p.lines.iter().filter_map(|l| l.label.clone().map(|t| (t, l.color, l.width.max(2), l.marker, l.dashed))).collect();
    e.extend(p.point_legend.iter().map(|(t, c, m)| (t.clone(), *c, 0, Some(*m), false)));
    e
}

/// Draw panel `p` into `area`; `root` is the whole bitmap (every element is drawn on it in
/// absolute pixels, clipped to the plotting area first).
pub fn draw(root: &Area<'_>, area: &Area<'_>, p: &Panel) -> Result<(), String> {
    let s = |e: DrawingAreaErrorKind<_>| e.to_string();
    let measure = |t: &str, size: u32| -> (f64, f64) {
        let style: TextStyle = ("sans-serif", size).into();
        root.estimate_text_size(t, &style)
            .map(|(w, h)| (w as f64, h as f64))
            .unwrap_or((0.6 * size as f64 * t.chars().count() as f64, size as f64))
    };
    let w = area.dim_in_pixel().0;
    // Caption, wrapped to the panel's width.
    let lines = text::wrap(&p.caption, w as f64 - 20.0, &|t| measure(t, CAPTION_PX).0);
    let line_h = CAPTION_PX as i32 + 4;
    let base = area.get_base_pixel();
    for (k, l) in lines.iter().enumerate() {
        let style = TextStyle::from(("sans-serif", CAPTION_PX)).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(l, &style, (base.0 + w as i32 / 2, base.1 + 6 + k as i32 * line_h)).map_err(s)?;
    }
    let top = 10 + lines.len() as i32 * line_h;
    let body = area.margin(top, 0, 0, 0);
    let (bw, bh) = body.dim_in_pixel();

    let (mut xr, mut yr) = match (data_range(&p.x, &p.xs()), data_range(&p.y, &p.ys())) {
        (Some(x), Some(y)) => (x, y),
        _ => return Err(format!("panel '{}' has no data to draw", p.caption)),
    };
    if p.square && p.x.scale == Scale::Linear && p.y.scale == Scale::Linear {
        let (lo, hi) = (xr.0.min(yr.0), xr.1.max(yr.1));
        (xr, yr) = ((lo, hi), (lo, hi));
    }
    // Vertical axis first: its labels' width sets how much room the horizontal one has.
    let plot_h = (bh as i32 - MARGIN - X_LABEL_AREA).max(40) as f64;
    let ypl = plan_axis(&p.y, yr, plot_h, &|t| measure(t, TICK_PX).1);
    let y_label_w = ypl.labels.iter().map(|l| measure(l, TICK_PX).0).fold(0.0, f64::max);
    let y_area = (y_label_w + 18.0 + AXIS_PX as f64 + 12.0).ceil() as i32;
    let ents = entries(p);
    let legend_w = ents.iter().map(|e| measure(&e.0, LEGEND_PX).0).fold(0.0, f64::max) as i32 + 56;
    let legend_h = ents.len() as i32 * LEGEND_ROW + 10;
    let full_w = (bw as i32 - y_area - 2 * MARGIN).max(40) as f64;
    let mut xpl = plan_axis(&p.x, xr, full_w, &|t| measure(t, TICK_PX).0);
    let mut place = None;
    if !ents.is_empty() {
        let u = |q: (f64, f64)| (xpl.unit(q.0), ypl.unit(q.1));
        let polys: Vec<Vec<(f64, f64)>> = p.lines.iter().map(|l| l.pts.iter().map(|q| u(*q)).collect()).collect();
        let mut pts: Vec<(f64, f64)> = p.points.iter().map(|q| u(q.at)).collect();
        pts.extend(p.arrows.iter().flat_map(|a| [u(a.from), u(a.to)]));
        let samples = legend::samples(&polys, &pts, 0.004);
        let size = (legend_w as f64 / full_w, legend_h as f64 / plot_h);
        place = Some(legend::place(&samples, size, 0.02, 0.012));
    }
    // A square panel wider than tall has room for the legend beside its plot: no need to shrink.
    let beside_square = p.square && full_w - plot_h >= (legend_w + 24) as f64;
    let chart_area = if place == Some(legend::Place::Outside) && !beside_square {
        let cw = (bw as i32 - legend_w - 16).max(80);
        xpl = plan_axis(&p.x, xr, (cw - y_area - 2 * MARGIN).max(40) as f64, &|t| measure(t, TICK_PX).0);
        body.split_horizontally(cw).0
    } else {
        body.clone()
    };
    // The plotting rectangle in absolute pixels.
    let (cb, (cw, ch)) = (chart_area.get_base_pixel(), chart_area.dim_in_pixel());
    let (mut left, mut right) = (cb.0 + MARGIN + y_area, cb.0 + cw as i32 - MARGIN - 6);
    let (mut top, mut bottom) = (cb.1 + MARGIN, cb.1 + ch as i32 - X_LABEL_AREA);
    if p.square {
        // Equal scales: one unit is as long across as up, so that shapes keep their form.
        let side = (right - left).min(bottom - top);
        let dx = if place == Some(legend::Place::Outside) { 0 } else { (right - left - side) / 2 };
        let dy = (bottom - top - side) / 2;
        (left, right, top, bottom) = (left + dx, left + dx + side, top + dy, top + dy + side);
    }
    if right - left < 20 || bottom - top < 20 {
        return Err(format!("panel '{}' is too small to draw ({cw} x {ch} pixels)", p.caption));
    }
    // Unit coordinates of the plotting area (0 to 1 on each axis, y upwards) to pixels.
    let px = |q: (f64, f64)| -> (i32, i32) {
        ((left as f64 + q.0 * (right - left) as f64).round() as i32, (bottom as f64 - q.1 * (bottom - top) as f64).round() as i32)
    };
    draw_axes(root, &xpl, &ypl, &p.x.label, &p.y.label, (left, top, right, bottom), y_area).map_err(s)?;
    let unit = |q: (f64, f64)| (xpl.unit(q.0), ypl.unit(q.1));
    for a in &p.arrows {
        let (f, t) = (unit(a.from), unit(a.to));
        if let Some((f, t)) = clip::segment(f, t) {
            draw_arrow(root, px(f), px(t), a.color)?;
        }
    }
    for l in &p.lines {
        let style = l.color.stroke_width(l.width);
        let upts: Vec<(f64, f64)> = l.pts.iter().map(|q| unit(*q)).collect();
        for stretch in clip::polyline(&upts) {
            let pix: Vec<(i32, i32)> = stretch.iter().map(|q| px(*q)).collect();
            if l.dashed {
                root.draw(&DashedPathElement::new(pix, 10, 7, style)).map_err(s)?;
            } else {
                root.draw(&PathElement::new(pix, style)).map_err(s)?;
            }
        }
        if let Some(m) = l.marker {
            let n = upts.len();
            let every = match l.marker_at {
                MarkerAt::Vertices => 1,
                MarkerAt::Spread => n.div_ceil(12).max(1),
                MarkerAt::End => n.max(1),
            };
            for (k, q) in upts.iter().enumerate() {
                let here = match l.marker_at {
                    MarkerAt::End => k + 1 == n,
                    _ => k % every == 0 || k + 1 == n,
                };
                if here && q.0.is_finite() && q.1.is_finite() && clip::inside(*q) {
                    draw_marker(root, px(*q), m, 5 + l.width as i32 / 2, l.color)?;
                }
            }
        }
    }
    for q in &p.points {
        let u = unit(q.at);
        if u.0.is_finite() && u.1.is_finite() && clip::inside(u) {
            draw_marker(root, px(u), q.marker, q.size as i32, q.color)?;
        }
    }
    // The legend.
    if let Some(place) = place {
        let (lx, ly) = match place {
            legend::Place::Outside if beside_square => (right + 24, top),
            legend::Place::Outside => {
                let b = body.get_base_pixel();
                (b.0 + body.dim_in_pixel().0 as i32 - legend_w - 4, top)
            }
            _ => {
                let size = (legend_w as f64 / (right - left) as f64, legend_h as f64 / (bottom - top) as f64);
                let (u0, _, _, v1) = legend::corner_box(place, size, 0.02);
                px((u0, v1))
            }
        };
        root.draw(&Rectangle::new([(lx, ly), (lx + legend_w, ly + legend_h)], WHITE.mix(0.92).filled())).map_err(s)?;
        root.draw(&Rectangle::new([(lx, ly), (lx + legend_w, ly + legend_h)], RGBColor(150, 150, 150).stroke_width(1))).map_err(s)?;
        for (k, (label, col, width, marker, dashed)) in ents.iter().enumerate() {
            let cy = ly + 5 + LEGEND_ROW / 2 + k as i32 * LEGEND_ROW;
            if *width > 0 {
                let seg = vec![(lx + 8, cy), (lx + 40, cy)];
                if *dashed {
                    root.draw(&DashedPathElement::new(seg, 8, 5, col.stroke_width(*width))).map_err(s)?;
                } else {
                    root.draw(&PathElement::new(seg, col.stroke_width(*width))).map_err(s)?;
                }
            }
            if let Some(m) = marker {
                draw_marker(root, (lx + 24, cy), *m, 6, *col)?;
            }
            let style = TextStyle::from(("sans-serif", LEGEND_PX)).pos(Pos::new(HPos::Left, VPos::Center));
            root.draw_text(label, &style, (lx + 48, cy)).map_err(s)?;
        }
    }
    Ok(())
}

/// Grid, frame, ticks, tick labels and axis labels of the plotting rectangle
/// `(left, top, right, bottom)` (pixels).
fn draw_axes(
    root: &Area<'_>,
    x: &AxisPlan,
    y: &AxisPlan,
    x_label: &str,
    y_label: &str,
    (left, top, right, bottom): (i32, i32, i32, i32),
    y_area: i32,
) -> Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>> {
    let grid = GRID.stroke_width(1);
    let ink = INK.stroke_width(1);
    let xp = |u: f64| left as f64 + (u - x.lo) / (x.hi - x.lo) * (right - left) as f64;
    let yp = |u: f64| bottom as f64 - (u - y.lo) / (y.hi - y.lo) * (bottom - top) as f64;
    for t in &x.ticks {
        let c = xp(*t).round() as i32;
        root.draw(&PathElement::new(vec![(c, top), (c, bottom)], grid))?;
    }
    for t in &y.ticks {
        let c = yp(*t).round() as i32;
        root.draw(&PathElement::new(vec![(left, c), (right, c)], grid))?;
    }
    root.draw(&Rectangle::new([(left, top), (right, bottom)], ink))?;
    let tick_font = TextStyle::from(("sans-serif", TICK_PX));
    let below = tick_font.pos(Pos::new(HPos::Center, VPos::Top));
    for (t, l) in x.ticks.iter().zip(&x.labels) {
        let c = xp(*t).round() as i32;
        root.draw(&PathElement::new(vec![(c, bottom), (c, bottom + 6)], ink))?;
        root.draw_text(l, &below, (c, bottom + 9))?;
    }
    let beside = tick_font.pos(Pos::new(HPos::Right, VPos::Center));
    for (t, l) in y.ticks.iter().zip(&y.labels) {
        let c = yp(*t).round() as i32;
        root.draw(&PathElement::new(vec![(left - 6, c), (left, c)], ink))?;
        root.draw_text(l, &beside, (left - 9, c))?;
    }
    let axis_font = TextStyle::from(("sans-serif", AXIS_PX));
    root.draw_text(x_label, &axis_font.pos(Pos::new(HPos::Center, VPos::Top)), ((left + right) / 2, bottom + 12 + TICK_PX as i32 + 6))?;
    let rotated = axis_font.transform(FontTransform::Rotate270).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw_text(y_label, &rotated, (left - y_area + 2, (top + bottom) / 2))?;
    Ok(())
}

/// A marker of radius `r` pixels centred at `c`.
pub fn draw_marker(root: &Area<'_>, c: (i32, i32), m: Marker, r: i32, col: RGBColor) -> Result<(), String> {
    let (x, y) = c;
    let fill = col.filled();
    let r = r.max(2);
    let res = match m {
        Marker::Circle => root.draw(&Circle::new(c, r, fill)),
        Marker::Ring => root.draw(&Circle::new(c, r, col.stroke_width(2))),
        Marker::Square => {
            let a = (r as f64 * 0.85).round() as i32;
            root.draw(&Rectangle::new([(x - a, y - a), (x + a, y + a)], fill))
        }
        Marker::Triangle => root.draw(&Polygon::new(vec![(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)], fill)),
        Marker::TriangleDown => root.draw(&Polygon::new(vec![(x, y + r + 1), (x + r + 1, y - r), (x - r - 1, y - r)], fill)),
        Marker::Diamond => {
            let a = r + 1;
            root.draw(&Polygon::new(vec![(x, y - a), (x + a, y), (x, y + a), (x - a, y)], fill))
        }
        Marker::Cross => {
            root.draw(&PathElement::new(vec![(x - r, y - r), (x + r, y + r)], col.stroke_width(3))).map_err(|e| e.to_string())?;
            root.draw(&PathElement::new(vec![(x - r, y + r), (x + r, y - r)], col.stroke_width(3)))
        }
        Marker::Plus => {
            root.draw(&PathElement::new(vec![(x - r - 1, y), (x + r + 1, y)], col.stroke_width(3))).map_err(|e| e.to_string())?;
            root.draw(&PathElement::new(vec![(x, y - r - 1), (x, y + r + 1)], col.stroke_width(3)))
        }
    };
    res.map_err(|e| e.to_string())
}

/// A line from `f` to `t` with a filled head at `t` (pixels).
fn draw_arrow(root: &Area<'_>, f: (i32, i32), t: (i32, i32), col: RGBColor) -> Result<(), String> {
    root.draw(&PathElement::new(vec![f, t], col.stroke_width(2))).map_err(|e| e.to_string())?;
    let (dx, dy) = ((t.0 - f.0) as f64, (t.1 - f.1) as f64);
    let n = dx.hypot(dy);
    if n < 1.0 {
        return Ok(());
    }
    let (ux, uy) = (dx / n, dy / n);
    let (len, half) = (7.0f64.min(0.6 * n), 4.0);
    let bx = t.0 as f64 - len * ux;
    let by = t.1 as f64 - len * uy;
    let head = vec![
        t,
        ((bx - half * uy).round() as i32, (by + half * ux).round() as i32),
        ((bx + half * uy).round() as i32, (by - half * ux).round() as i32),
    ];
    root.draw(&Polygon::new(head, col.filled())).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_axis_never_passes_one_hundred_percent_and_spans_at_least_a_point() {
        let a = Axis::linear("test accuracy (%)").clamp(0.0, 100.0).min_span(1.0);
        let (lo, hi) = data_range(&a, &[99.1, 99.15, 99.2]).unwrap();
        assert!(hi <= 100.0 && hi > 99.2 && lo < 99.1 && hi - lo >= 1.0, "{lo} {hi}");
        let plan = plan_axis(&a, (lo, hi), 500.0, &|_| 16.0);
        assert!(plan.ticks.iter().all(|t| *t <= 100.0 && *t >= lo));
        assert!(plan.labels.iter().all(|l| !l.contains("100.0") && l.len() <= 5), "{:?}", plan.labels);
    }

    #[test]
    fn count_axes_and_log_axes_label_readably() {
        let x = Axis::linear("iteration").integer();
        let (lo, hi) = data_range(&x, &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let plan = plan_axis(&x, (lo, hi), 600.0, &|t| 9.0 * t.len() as f64);
        assert!(plan.labels.iter().all(|l| l.parse::<i64>().is_ok()), "{:?}", plan.labels);
        // The sweep's evaluations: 8 to 98 on a log axis.
        let n = Axis::log("evaluations");
        let r = data_range(&n, &[8.0, 14.0, 98.0, 0.0, -3.0]).unwrap();
        let plan = plan_axis(&n, r, 700.0, &|t| 9.0 * t.len() as f64);
        assert_eq!(plan.labels, ["10", "20", "50", "100"]);
        assert!(plan.log && (plan.unit(10.0) - (1.0 - plan.lo) / (plan.hi - plan.lo)).abs() < 1e-12);
        // Zero and below sit on the lower edge of a log axis rather than vanishing.
        assert_eq!(plan.unit(0.0), 0.0);
        assert!(data_range(&n, &[0.0, -1.0]).is_none());
        assert!(data_range(&Axis::linear("y"), &[f64::NAN]).is_none());
        // A fixed range wins over the data.
        assert_eq!(data_range(&Axis::linear("y").range(-2.0, 2.0), &[5.0]), Some((-2.0, 2.0)));
        // Keeping zero in the range.
        assert_eq!(data_range(&Axis::linear("nfe").with_zero(), &[14.0, 20.0]).unwrap().0, 0.0);
    }
}
