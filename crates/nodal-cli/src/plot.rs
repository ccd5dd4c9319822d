//! The figure kinds nodal's commands write, each a layout of [`crate::figure`] panels: the
//! spiral's trajectories, phase portrait and vector field (`nodal train spiral`), a metric
//! against evaluations (`nodal sweep`), and training curves of loss and evaluations per solve
//! (`nodal plot trajectories`, `nodal regularise`).

use crate::figure::palette::{self, GREEN, GREY, INK, ORANGE, VERMILLION};
use crate::figure::{Arrow, Axis, Line, Panel, PlotResult, figure};
use plotters::style::RGBColor;
use std::path::Path;

/// Colour of the class / target `-1`.
pub const MINUS: RGBColor = ORANGE;
/// Colour of the class / target `+1`.
pub const PLUS: RGBColor = GREEN;
/// Context drawn behind the data.
pub const CONTEXT: RGBColor = GREY;

/// Components of the true and learned trajectories against time.
pub fn trajectories(path: &Path, ts: &[f64], truth: &[[f64; 2]], learned: &[[f64; 2]], title: &str) -> PlotResult {
    let mut p = Panel::new("true (black: x solid, y dashed) and learned (colour) components", Axis::linear("t"), Axis::linear("state"));
    let comp = |d: &[[f64; 2]], k: usize| -> Vec<(f64, f64)> { ts.iter().zip(d).map(|(t, q)| (*t, q[k])).collect() };
    p.lines.push(Line::new(comp(truth, 0), INK, 4).label("true x"));
    p.lines.push(Line::new(comp(truth, 1), INK, 4).dashed().label("true y"));
    p.lines.push(Line::series(0, comp(learned, 0)).label("learned x"));
    p.lines.push(Line::series(1, comp(learned, 1)).label("learned y"));
    figure(path, title, (1200, 600), 1, 1, &[p])
}

/// Phase portrait: true and learned trajectories in the plane.
pub fn phase(path: &Path, truth: &[[f64; 2]], learned: &[[f64; 2]], title: &str) -> PlotResult {
    let mut p = Panel::new("trajectory in the (x, y) plane", Axis::linear("x"), Axis::linear("y")).square();
    p.lines.push(Line::new(truth.iter().map(|q| (q[0], q[1])).collect(), INK, 4).label("true"));
    p.lines.push(Line::series(1, learned.iter().map(|q| (q[0], q[1])).collect()).label("learned"));
    figure(path, title, (760, 800), 1, 1, &[p])
}

/// Learned vector field on a 21 x 21 grid over `[-2.2, 2.2]^2` (arrows of one length, coloured
/// by speed on the viridis ramp), with the true trajectory on top.
pub fn vector_field(path: &Path, field: &mut dyn FnMut(f64, f64) -> (f64, f64), truth: &[[f64; 2]], title: &str) -> PlotResult {
    let (lo, hi, n) = (-2.2, 2.2, 21);
    let step = (hi - lo) / n as f64;
    let mut grid = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let (x, y) = (lo + (i as f64 + 0.5) * step, lo + (j as f64 + 0.5) * step);
            let (u, v) = field(x, y);
            grid.push((x, y, u, v, u.hypot(v)));
        }
    }
    let vmax = grid.iter().map(|g| g.4).filter(|s| s.is_finite()).fold(1e-12, f64::max);
    let mut p = Panel::new(
        format!("direction of f on a grid, coloured by speed |f| (dark slow, light fast; max {vmax:.2}); vermillion: the true trajectory"),
        Axis::linear("x").range(lo, hi),
        Axis::linear("y").range(lo, hi),
    );
    for (x, y, u, v, s) in grid {
        if !(s.is_finite() && s > 0.0) {
            continue;
        }
        let len = 0.8 * step;
        let (dx, dy) = (u / s * len, v / s * len);
        p.arrows.push(Arrow { from: (x - dx / 2.0, y - dy / 2.0), to: (x + dx / 2.0, y + dy / 2.0), color: palette::sequential(s / vmax) });
    }
    p.lines.push(Line::new(truth.iter().map(|q| (q[0], q[1])).collect(), VERMILLION, 3));
    let mut p = p;
    p.square = true;
    figure(path, title, (760, 820), 1, 1, &[p])
}

/// A metric against function evaluations (log axis), one line of measured points per series.
pub fn metric_vs_nfe(path: &Path, series: &[(String, Vec<(f64, f64)>)], title: &str, caption: &str, x: Axis, y: Axis) -> PlotResult {
    let mut p = Panel::new(caption, x, y);
    for (i, (name, pts)) in series.iter().enumerate() {
        p.lines.push(Line::series(i, pts.clone()).at_vertices().label(name.as_str()));
    }
    figure(path, title, (1000, 640), 1, 1, &[p])
}

/// One model's training history: name, palette index (colour and marker), loss and forward
/// evaluations per solve, one value per plotted point.
pub struct Curve<'a> {
    /// Legend entry.
    pub name: String,
    /// Index into [`palette::series`].
    pub series: usize,
    /// Loss per point.
    pub loss: &'a [f64],
    /// Forward evaluations per solve, per point.
    pub nfe: &'a [usize],
}

/// How the training panels label their axes.
pub struct TrainingAxes<'a> {
    /// Caption of the loss panel.
    pub loss_caption: &'a str,
    /// Label of the loss axis, with the loss's name.
    pub loss_label: &'a str,
    /// Iterations per plotted point (1: every iteration; 50: medians over blocks of 50, drawn
    /// at each block's last iteration).
    pub block: usize,
}

/// Loss (log axis) and forward evaluations per solve against iteration, one line per model.
pub fn training(path: &Path, title: &str, axes: &TrainingAxes<'_>, curves: &[Curve<'_>]) -> PlotResult {
    let xl = if axes.block > 1 { format!("iteration (median of each block of {})", axes.block) } else { "iteration".to_string() };
    let x = |i: usize| ((i + 1) * axes.block.max(1)) as f64;
    let mut loss = Panel::new(axes.loss_caption, Axis::linear(xl.clone()).integer(), Axis::log(axes.loss_label));
    let mut nfe = Panel::new(
        "function evaluations per forward solve",
        Axis::linear(xl).integer(),
        Axis::linear("evaluations per solve").integer().with_zero(),
    );
    for c in curves {
        loss.lines.push(Line::series(c.series, c.loss.iter().enumerate().map(|(i, v)| (x(i), *v)).collect()).label(c.name.clone()));
        nfe.lines.push(Line::series(c.series, c.nfe.iter().enumerate().map(|(i, v)| (x(i), *v as f64)).collect()).label(c.name.clone()));
    }
    figure(path, title, (1600, 640), 1, 2, &[loss, nfe])
}

#[cfg(test)]
mod tests {
    //! Every figure kind rendered from fixed data: it must draw without error, decode as a PNG
    //! of the stated size, and carry data in the series colours (not a blank frame).

    use super::*;
    use crate::figure::palette::OKABE_ITO;
    use crate::figure::{Marker, Point};

    /// Width, height and the RGB pixels of a PNG.
    fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).expect("figure written")));
        let mut r = dec.read_info().expect("a PNG");
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).expect("one frame");
        assert_eq!(info.color_type, png::ColorType::Rgb, "{}", path.display());
        let px = buf[..info.buffer_size()].chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        (info.width, info.height, px)
    }

    /// Pixels of exactly colour `c`.
    fn count(px: &[[u8; 3]], c: RGBColor) -> usize {
        px.iter().filter(|p| **p == [c.0, c.1, c.2]).count()
    }

    fn check(path: &Path, size: (u32, u32), colours: &[RGBColor]) {
        let (w, h, px) = decode(path);
        assert_eq!((w, h), size, "{}", path.display());
        let ink = px.iter().filter(|p| **p != [255, 255, 255]).count();
        assert!(ink > (w * h / 100) as usize, "{}: only {ink} non-white pixels", path.display());
        for c in colours {
            assert!(count(&px, *c) > 50, "{}: colour {c:?} drawn on {} pixels", path.display(), count(&px, *c));
        }
        // Atomic write: no temporary file left beside the figure.
        let dir = path.parent().unwrap();
        assert!(std::fs::read_dir(dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".tmp-")));
    }

    fn spiral() -> (Vec<f64>, Vec<[f64; 2]>, Vec<[f64; 2]>) {
        let ts: Vec<f64> = (0..200).map(|i| i as f64 * 0.1).collect();
        let truth = ts.iter().map(|t| [2.0 * (-0.1 * t).exp() * t.cos(), 2.0 * (-0.1 * t).exp() * t.sin()]).collect();
        let learned = ts.iter().map(|t| [2.0 * (-0.11 * t).exp() * (1.02 * t).cos(), 2.0 * (-0.11 * t).exp() * (1.02 * t).sin()]).collect();
        (ts, truth, learned)
    }

    #[test]
    fn time_series_phase_and_vector_field_figures() {
        let dir = tempdir();
        let (ts, truth, learned) = spiral();
        trajectories(&dir.join("t.png"), &ts, &truth, &learned, "trajectories (test L1 0.1)").unwrap();
        check(&dir.join("t.png"), (1200, 600), &[INK, OKABE_ITO[0], OKABE_ITO[1]]);
        phase(&dir.join("p.png"), &truth, &learned, "phase").unwrap();
        check(&dir.join("p.png"), (760, 800), &[INK, OKABE_ITO[1]]);
        let mut f = |x: f64, y: f64| (-y - 0.1 * x, x - 0.1 * y);
        vector_field(&dir.join("v.png"), &mut f, &truth, "field").unwrap();
        check(&dir.join("v.png"), (760, 820), &[VERMILLION]);
    }

    #[test]
    fn metric_against_evaluations_figure_with_a_clamped_accuracy_axis() {
        let dir = tempdir();
        let s = vec![
            ("dopri5".to_string(), vec![(56.0, 99.15), (38.0, 99.15), (26.0, 99.2), (14.0, 99.1)]),
            ("bosh3".to_string(), vec![(98.0, 99.15), (47.0, 99.15), (8.0, 99.1)]),
        ];
        let y = Axis::linear("test accuracy (%)").clamp(0.0, 100.0).min_span(1.0);
        metric_vs_nfe(&dir.join("m.png"), &s, "accuracy vs evaluations", "one point per rtol", Axis::log("evaluations"), y).unwrap();
        check(&dir.join("m.png"), (1000, 640), &[OKABE_ITO[0], OKABE_ITO[1]]);
    }

    #[test]
    fn training_curves_figure() {
        let dir = tempdir();
        let loss: Vec<f64> = (0..300).map(|i| 1.0 / (1.0 + i as f64)).collect();
        let nfe: Vec<usize> = (0..300).map(|i| 14 + 6 * (i / 100)).collect();
        let loss2: Vec<f64> = loss.iter().map(|l| l * 0.3).collect();
        let curves =
            [Curve { name: "a".into(), series: 0, loss: &loss, nfe: &nfe }, Curve { name: "b".into(), series: 1, loss: &loss2, nfe: &nfe }];
        let axes = TrainingAxes { loss_caption: "loss", loss_label: "mean squared error", block: 50 };
        training(&dir.join("tr.png"), "training", &axes, &curves).unwrap();
        check(&dir.join("tr.png"), (1600, 640), &[OKABE_ITO[0], OKABE_ITO[1]]);
    }

    #[test]
    fn multi_panel_figure_with_scatter_dashes_and_data_past_the_axis() {
        let dir = tempdir();
        let mut a = Panel::new("scatter with a point legend", Axis::linear("x1"), Axis::linear("x2")).square();
        for k in 0..200 {
            let t = k as f64 * 0.1;
            a.points.push(Point::dot(t.cos() * (1.0 + (k % 2) as f64), t.sin() * (1.0 + (k % 2) as f64), [MINUS, PLUS][k % 2], 3));
        }
        a.point_legend = vec![("class -1".into(), MINUS, Marker::Circle), ("class +1".into(), PLUS, Marker::Circle)];
        // A reconstruction that blows up: drawn dashed, clipped at the fixed range.
        let mut b = Panel::new("clipped", Axis::linear("t"), Axis::linear("y").range(-1.0, 1.0));
        b.lines.push(Line::new((0..100).map(|i| (i as f64, (i as f64 * 0.1).sin())).collect(), GREEN, 3).label("forward"));
        b.lines.push(
            Line::new((0..100).map(|i| (i as f64, (i as f64 * 0.1).exp() - 1.0)).collect(), ORANGE, 3).dashed().label("reconstructed"),
        );
        let c = Panel::new("log-log with an empty series", Axis::log("k"), Axis::log("error"));
        let mut c = c;
        c.lines.push(Line::series(2, vec![(5.0, 1e-8), (10.0, 1e-6), (80.0, 5.0)]).at_vertices().label("adjoint"));
        c.lines.push(Line::series(3, vec![]).label("nothing"));
        figure(&dir.join("g.png"), "three panels", (1800, 600), 1, 3, &[a, b, c]).unwrap();
        check(&dir.join("g.png"), (1800, 600), &[MINUS, PLUS, GREEN, ORANGE, OKABE_ITO[2]]);
        // More panels than the grid holds, and a panel with nothing drawable: typed errors.
        let e = figure(
            &dir.join("x.png"),
            "x",
            (400, 300),
            1,
            1,
            &[Panel::new("a", Axis::linear("x"), Axis::linear("y")), Panel::new("b", Axis::linear("x"), Axis::linear("y"))],
        );
        assert!(e.unwrap_err().contains("do not fit"));
        let mut nan = Panel::new("nan", Axis::linear("x"), Axis::log("y"));
        nan.lines.push(Line::new(vec![(0.0, f64::NAN), (1.0, -1.0)], INK, 2));
        let e = figure(&dir.join("n.png"), "n", (400, 300), 1, 1, &[nan]).unwrap_err();
        assert!(e.contains("no data to draw") && e.contains("n.png"), "{e}");
        assert!(!dir.join("n.png").exists());
    }

    fn tempdir() -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let d =
            std::env::temp_dir().join(format!("nodal-fig-{}-{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
