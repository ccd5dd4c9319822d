//! `nodal plot mnist-states`: the ODE block's hidden state over time for a few MNIST test
//! digits, projected on its first two principal components, and how far each state moves.

use crate::failure::{CliResult, Failure};
use crate::figure::palette;
use crate::figure::{Axis, Line, Marker, Panel, Point, figure};
use crate::mnist_cmd::DEFAULT_DATA;
use clap::Args;
use nodal::burn::tensor::Device;
use nodal::io::write_atomic;
use nodal_experiments::mnist::models::{ModelConfig, load_weights};
use nodal_experiments::mnist::states::{hidden_states, pca2};
use nodal_experiments::mnist::train::kind_of_weights;
use nodal_experiments::mnist::{Part, load};
use plotters::style::RGBColor;
use serde_json::json;
use std::path::PathBuf;

/// Arguments of `nodal plot mnist-states`.
#[derive(Args)]
pub struct MnistStatesArgs {
    /// Weights of an ODE-Net or RK-Net (model.safetensors from `nodal train mnist`).
    #[arg(long)]
    weights: PathBuf,
    /// Folder with the MNIST IDX files.
    #[arg(long, default_value = DEFAULT_DATA)]
    data: PathBuf,
    /// Test digits per class (the first ones of each class in the test set).
    #[arg(long, default_value_t = 3)]
    per_class: usize,
    /// Output times on [0, 1].
    #[arg(long, default_value_t = 21)]
    times: usize,
    /// Output folder (mnist_states.png, mnist_states.json).
    #[arg(long, default_value = "runs/mnist-states")]
    out: PathBuf,
}

/// One colour per digit: the eight Okabe-Ito colours, then grey and brown; with a marker per
/// digit as the second cue.
const DIGIT: [RGBColor; 10] = [
    palette::OKABE_ITO[0],
    palette::OKABE_ITO[1],
    palette::OKABE_ITO[2],
    palette::OKABE_ITO[3],
    palette::OKABE_ITO[4],
    palette::OKABE_ITO[5],
    palette::OKABE_ITO[6],
    palette::OKABE_ITO[7],
    RGBColor(128, 128, 128),
    RGBColor(140, 86, 45),
];

/// Marker of each digit's end point and line.
const DIGIT_MARKER: [Marker; 10] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::Cross,
    Marker::TriangleDown,
    Marker::Plus,
    Marker::Ring,
    Marker::Square,
    Marker::Triangle,
];

/// Run; exit 2 on unusable inputs, 1 on a failed solve, 4 on a figure or file not written.
pub fn run(a: MnistStatesArgs) -> CliResult {
    if a.per_class == 0 || a.per_class > 1000 || a.times < 2 || a.times > 10_000 {
        return Err(Failure::Input("--per-class must be in 1..=1000 and --times in 2..=10000".into()));
    }
    crate::mnist_cmd::check_writable(&a.out)?;
    states(&a).map_err(|(code, e)| match code {
        2 => Failure::Input(e),
        4 => Failure::Output(e),
        _ => Failure::Compute(e),
    })
}

fn states(a: &MnistStatesArgs) -> Result<(), (u8, String)> {
    let kind = kind_of_weights(&a.weights)
        .map_err(|e| (2, e.to_string()))?
        .ok_or_else(|| (2, format!("{}: the file does not name its model", a.weights.display())))?;
    let model = load_weights(ModelConfig::new(kind).init_seeded(&Device::flex(), 0), &a.weights).map_err(|e| (2, e.to_string()))?;
    let test = load(&a.data, Part::Test).map_err(|e| (2, e.to_string()))?;
    let per = test.images.image_len();
    let mut picked: Vec<(usize, u8)> = Vec::new();
    for digit in 0..10u8 {
        picked.extend(test.labels.iter().enumerate().filter(|(_, l)| **l == digit).take(a.per_class).map(|(i, l)| (i, *l)));
    }
    if picked.is_empty() {
        return Err((2, format!("{}: the test set holds no images", a.data.display())));
    }
    let pixels: Vec<u8> = picked.iter().flat_map(|(i, _)| test.images.pixels[i * per..(i + 1) * per].iter().copied()).collect();
    let ts: Vec<f64> = (0..a.times).map(|k| k as f64 / (a.times - 1) as f64).collect();
    let hs = hidden_states(&model, &pixels, &ts)
        .map_err(|e| (1, format!("solve failed: {e}")))?
        .ok_or_else(|| (2, format!("{}: a {} has no ODE block", a.weights.display(), kind.name())))?;
    let n = picked.len();
    let all: Vec<Vec<f32>> = hs.iter().flat_map(|t| t.iter().cloned()).collect();
    let (proj, frac) = pca2(&all);
    let mut pca = Panel::new(
        format!(
            "hidden state h(t), t in [0, 1], on its first two principal components ({:.0}% + {:.0}% of variance)",
            100.0 * frac[0],
            100.0 * frac[1]
        ),
        Axis::linear("principal component 1"),
        Axis::linear("principal component 2"),
    );
    let mut dist = Panel::new(
        "relative distance travelled: |h(t) - h(0)| / |h(0)|",
        Axis::linear("t (ODE time)"),
        Axis::linear("relative distance").with_zero(),
    );
    let mut moved = Vec::new();
    for (i, (_, label)) in picked.iter().enumerate() {
        let col = DIGIT[*label as usize];
        let path: Vec<(f64, f64)> = (0..ts.len()).map(|k| proj[k * n + i]).collect();
        let start = path[0];
        let first = i == 0 || picked[i - 1].1 != *label;
        let mut line = Line::new(path, col, 2).marker(DIGIT_MARKER[*label as usize]).at_end();
        if first {
            line = line.label(format!("digit {label}"));
        }
        pca.lines.push(line);
        pca.points.push(Point::dot(start.0, start.1, col, 3));
        let h0 = &hs[0][i];
        let n0 = h0.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
        let d: Vec<(f64, f64)> = ts
            .iter()
            .enumerate()
            .map(|(k, t)| (*t, hs[k][i].iter().zip(h0).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt() / n0))
            .collect();
        moved.push(d.last().map_or(0.0, |p| p.1));
        dist.lines.push(Line::new(d, col, 2));
    }
    pca.point_legend.push(("small dot: t = 0; marker: t = 1".into(), RGBColor(0, 0, 0), Marker::Circle));
    let title = format!("MNIST {}: the ODE block's hidden state over time, {} test digits per class", kind.name(), a.per_class);
    figure(&a.out.join("mnist_states.png"), &title, (1500, 650), 1, 2, &[pca, dist]).map_err(|e| (4, e))?;
    let summary = json!({
        "model": kind.name(),
        "images": picked.iter().map(|(i, l)| json!({"index": i, "label": l})).collect::<Vec<_>>(),
        "times": ts,
        "explained_variance": frac,
        "relative_distance_at_t1": moved,
    });
    write_atomic(&a.out.join("mnist_states.json"), serde_json::to_string_pretty(&summary).unwrap_or_default().as_bytes())
        .map_err(|e| (4, e.to_string()))?;
    crate::output::note(&format!("wrote {}/{{mnist_states.png, mnist_states.json}}", a.out.display()));
    Ok(())
}
