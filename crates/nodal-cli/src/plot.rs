//! PNG figures with plotters, text in the bundled DejaVu Sans (no system fonts needed).

use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

/// Register the bundled font once per process.
pub(crate) fn font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        // Registration only fails on a malformed font, which the bundled one is not.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

pub(crate) type PlotResult = Result<(), String>;

/// Draw into a temporary PNG beside `path`, then rename it over `path`: an interrupted run never
/// leaves a half-written figure.
pub(crate) fn atomically(path: &Path, draw: impl FnOnce(&Path) -> PlotResult) -> PlotResult {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{}-{name}", std::process::id()));
    let r = draw(&tmp);
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return r;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

pub(crate) fn err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("{}: cannot draw figure: {e}", path.display())
}

pub(crate) fn bounds(pts: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = pts.filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    // No finite point at all (a diverged model): draw an empty unit frame rather than fail.
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (-1.0, 1.0) };
    let pad = 0.05 * (hi - lo).max(1e-9);
    (lo - pad, hi + pad)
}

/// Components of the true and learned trajectories against time.
pub fn trajectories(path: &Path, ts: &[f64], truth: &[[f64; 2]], learned: &[[f64; 2]], title: &str) -> PlotResult {
    atomically(path, |p| draw_trajectories(p, ts, truth, learned, title))
}

fn draw_trajectories(path: &Path, ts: &[f64], truth: &[[f64; 2]], learned: &[[f64; 2]], title: &str) -> PlotResult {
    font();
    let e = err(path);
    let root = BitMapBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let (lo, hi) = bounds(truth.iter().chain(learned).flat_map(|p| [p[0], p[1]]));
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(ts[0]..ts[ts.len() - 1], lo..hi)
        .map_err(&e)?;
    c.configure_mesh().x_desc("t").y_desc("y").label_style(("sans-serif", 14)).draw().map_err(&e)?;
    let series: [(&[[f64; 2]], usize, RGBColor, &str); 4] = [
        (truth, 0, RGBColor(30, 30, 30), "true x"),
        (truth, 1, RGBColor(120, 120, 120), "true y"),
        (learned, 0, RGBColor(220, 50, 47), "learned x"),
        (learned, 1, RGBColor(38, 139, 210), "learned y"),
    ];
    for (data, k, color, label) in series {
        let w = if label.starts_with("true") { 4 } else { 2 };
        c.draw_series(LineSeries::new(ts.iter().zip(data).map(|(t, p)| (*t, p[k])), color.stroke_width(w)))
            .map_err(&e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 14)).draw().map_err(&e)?;
    root.present().map_err(&e)
}

/// Phase portrait: true and learned trajectories in the plane.
pub fn phase(path: &Path, truth: &[[f64; 2]], learned: &[[f64; 2]], title: &str) -> PlotResult {
    atomically(path, |p| draw_phase(p, truth, learned, title))
}

fn draw_phase(path: &Path, truth: &[[f64; 2]], learned: &[[f64; 2]], title: &str) -> PlotResult {
    font();
    let e = err(path);
    let root = BitMapBackend::new(path, (640, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let (lo, hi) = bounds(truth.iter().chain(learned).flat_map(|p| [p[0], p[1]]));
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(&e)?;
    c.configure_mesh().x_desc("x").y_desc("y").label_style(("sans-serif", 14)).draw().map_err(&e)?;
    let black = RGBColor(30, 30, 30);
    let red = RGBColor(220, 50, 47);
    c.draw_series(LineSeries::new(truth.iter().map(|p| (p[0], p[1])), black.stroke_width(4)))
        .map_err(&e)?
        .label("true")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], black.stroke_width(3)));
    c.draw_series(LineSeries::new(learned.iter().map(|p| (p[0], p[1])), red.stroke_width(2)))
        .map_err(&e)?
        .label("learned")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(3)));
    c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 14)).draw().map_err(&e)?;
    root.present().map_err(&e)
}

/// Learned vector field on a grid (arrows scaled to a common length, coloured by speed), with
/// the true trajectory on top.
pub fn vector_field(path: &Path, field: &mut dyn FnMut(f64, f64) -> (f64, f64), truth: &[[f64; 2]], title: &str) -> PlotResult {
    atomically(path, |p| draw_vector_field(p, field, truth, title))
}

fn draw_vector_field(path: &Path, field: &mut dyn FnMut(f64, f64) -> (f64, f64), truth: &[[f64; 2]], title: &str) -> PlotResult {
    font();
    let e = err(path);
    let root = BitMapBackend::new(path, (640, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let (lo, hi) = (-2.2, 2.2);
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(lo..hi, lo..hi)
        .map_err(&e)?;
    c.configure_mesh().x_desc("x").y_desc("y").label_style(("sans-serif", 14)).draw().map_err(&e)?;
    let n = 21;
    let step = (hi - lo) / (n as f64);
    let mut arrows = Vec::new();
    let mut vmax = 1e-12f64;
    for i in 0..n {
        for j in 0..n {
            let (x, y) = (lo + (i as f64 + 0.5) * step, lo + (j as f64 + 0.5) * step);
            let (u, v) = field(x, y);
            let s = (u * u + v * v).sqrt();
            vmax = vmax.max(s);
            arrows.push((x, y, u, v, s));
        }
    }
    for (x, y, u, v, s) in arrows {
        let len = 0.8 * step;
        let (dx, dy) = if s > 0.0 { (u / s * len, v / s * len) } else { (0.0, 0.0) };
        let a = (s / vmax).sqrt();
        let color = RGBColor((40.0 + 200.0 * a) as u8, 60, (220.0 - 180.0 * a) as u8);
        c.draw_series(std::iter::once(PathElement::new(
            vec![(x - dx / 2.0, y - dy / 2.0), (x + dx / 2.0, y + dy / 2.0)],
            color.stroke_width(2),
        )))
        .map_err(&e)?;
        c.draw_series(std::iter::once(Circle::new((x + dx / 2.0, y + dy / 2.0), 2, color.filled()))).map_err(&e)?;
    }
    c.draw_series(LineSeries::new(truth.iter().map(|p| (p[0], p[1])), RGBColor(30, 30, 30).stroke_width(2))).map_err(&e)?;
    root.present().map_err(&e)
}

/// Loss against function evaluations (log scale), one line per method.
pub fn loss_vs_nfe(path: &Path, series: &[(String, Vec<(f64, f64)>)], title: &str, y_desc: &str) -> PlotResult {
    atomically(path, |p| draw_loss_vs_nfe(p, series, title, y_desc))
}

fn draw_loss_vs_nfe(path: &Path, series: &[(String, Vec<(f64, f64)>)], title: &str, y_desc: &str) -> PlotResult {
    font();
    let e = err(path);
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).filter(|(x, y)| *x > 0.0 && *y > 0.0).collect();
    if pts.is_empty() {
        return Err(format!("{}: nothing to plot", path.display()));
    }
    let (x0, x1) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts.iter().fold((f64::INFINITY, 0.0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
    // A span of at least 2% of the largest value, so that a one-example difference in accuracy
    // does not fill the whole axis.
    let pad = ((0.02 * y1.abs()) - (y1 - y0)).max(0.0) / 2.0;
    let (y0, y1) = (y0 - pad, y1 + pad);
    let root = BitMapBackend::new(path, (800, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x0 * 0.8..x1 * 1.25).log_scale(), (y0 - 0.05 * (y1 - y0).max(1e-12))..(y1 + 0.05 * (y1 - y0).max(1e-12)))
        .map_err(&e)?;
    c.configure_mesh().x_desc("function evaluations").y_desc(y_desc).label_style(("sans-serif", 14)).draw().map_err(&e)?;
    let colors = [RGBColor(220, 50, 47), RGBColor(38, 139, 210), RGBColor(133, 153, 0), RGBColor(108, 113, 196)];
    for (k, (name, p)) in series.iter().enumerate() {
        let color = colors[k % colors.len()];
        c.draw_series(LineSeries::new(p.iter().copied(), color.stroke_width(2)))
            .map_err(&e)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        c.draw_series(p.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled()))).map_err(&e)?;
    }
    c.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).label_font(("sans-serif", 14)).draw().map_err(&e)?;
    root.present().map_err(&e)
}
