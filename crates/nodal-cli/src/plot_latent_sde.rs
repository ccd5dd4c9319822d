//! The latent SDE's figures (`nodal train latent-sde`): held-out data, posterior and prior
//! sample paths side by side in the (x, z) plane; one series' posterior samples against time;
//! training curves.

use crate::figure::palette::{self, GREY, INK, VERMILLION};
use crate::figure::{Axis, Line, Panel, PlotResult, Point, figure};
use nodal_experiments::latent_sde::{IterRecord, Samples};
use std::path::Path;

const COORDS: [&str; 3] = ["x", "y", "z"];

fn plane(path: &[[f32; 3]], a: usize, b: usize) -> Vec<(f64, f64)> {
    path.iter().map(|p| (p[a] as f64, p[b] as f64)).collect()
}

fn range(paths: &[&Vec<Vec<[f32; 3]>>], k: usize) -> (f64, f64) {
    let vals = paths.iter().flat_map(|set| set.iter().flat_map(|p| p.iter().map(|v| v[k] as f64))).filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() { (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo) + 1e-9) } else { (-1.0, 1.0) }
}

/// Three panels over one (x, z) range: held-out series (noisy observations), one posterior sample
/// for each of them (same colour), and prior samples.
pub fn samples(path: &Path, s: &Samples, title: &str) -> PlotResult {
    let posterior: Vec<Vec<[f32; 3]>> = s.posterior.iter().step_by(s.per_series.max(1)).cloned().collect();
    let sets = [&s.data, &posterior, &s.prior];
    let (xr, zr) = (range(&sets, 0), range(&sets, 2));
    let captions = [
        format!("data: {} held-out series, observed with noise", s.data.len()),
        "posterior: one sample per series, given its observations".to_string(),
        format!("prior: {} samples from the learned prior SDE", s.prior.len()),
    ];
    let panels: Vec<Panel> = sets
        .iter()
        .zip(captions)
        .map(|(set, caption)| {
            let mut p =
                Panel::new(caption, Axis::linear("x (standardised)").range(xr.0, xr.1), Axis::linear("z (standardised)").range(zr.0, zr.1));
            for (i, path) in set.iter().enumerate() {
                let (color, _) = palette::series(i);
                p.lines.push(Line::new(plane(path, 0, 2), color, 2));
                if let Some(first) = path.first() {
                    p.points.push(Point::dot(first[0] as f64, first[2] as f64, color, 4));
                }
            }
            p
        })
        .collect();
    figure(path, title, (1950, 680), 1, 3, &panels)
}

/// The first held-out series against time, one panel per coordinate: noisy observations (dots),
/// the noiseless path (black) and the posterior samples (vermillion).
pub fn posterior(path: &Path, s: &Samples, title: &str) -> PlotResult {
    let n = s.per_series.max(1).min(s.posterior.len());
    let panels: Vec<Panel> = (0..3)
        .map(|k| {
            let mut p = Panel::new(
                format!("{}: observations (grey), noiseless (black), {n} posterior samples", COORDS[k]),
                Axis::linear("t"),
                Axis::linear(format!("{} (standardised)", COORDS[k])),
            );
            for post in &s.posterior[..n] {
                p.lines.push(Line::new(
                    s.ts.iter().zip(post).map(|(t, v)| (*t, v[k] as f64)).collect(),
                    palette::lighten(VERMILLION, 0.35),
                    2,
                ));
            }
            if let Some(clean) = s.clean.first() {
                p.lines.push(Line::new(s.ts.iter().zip(clean).map(|(t, v)| (*t, v[k] as f64)).collect(), INK, 2).label("noiseless"));
            }
            if let Some(data) = s.data.first() {
                p.points.extend(s.ts.iter().zip(data).map(|(t, v)| Point::dot(*t, v[k] as f64, GREY, 3)));
            }
            p
        })
        .collect();
    figure(path, title, (1950, 600), 1, 3, &panels)
}

/// `[lo, hi]` covering `v` after its first tenth (the first iterations, where the untrained
/// networks' values are orders of magnitude larger, are left above the frame).
fn settled_range(v: &[f64]) -> (f64, f64) {
    let tail = &v[v.len() / 10..];
    let (lo, hi) = tail.iter().filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = 0.05 * (hi - lo).max(1e-9);
    (lo - pad, hi + pad)
}

/// Medians of `v` over blocks of `block` iterations, at each block's last iteration.
fn block_medians(hist: &[IterRecord], block: usize, v: impl Fn(&IterRecord) -> f64) -> Vec<(f64, f64)> {
    hist.chunks(block)
        .map(|c| {
            let mut xs: Vec<f64> = c.iter().map(&v).collect();
            xs.sort_by(f64::total_cmp);
            (c[c.len() - 1].iter as f64, xs[xs.len() / 2])
        })
        .collect()
}

/// Negative ELBO per series and the two KL terms against iteration (medians over blocks, about
/// 200 points per line), each axis fitted to the iterations after the first tenth.
pub fn training(path: &Path, hist: &[IterRecord], title: &str) -> PlotResult {
    let block = hist.len().div_ceil(200).max(1);
    let xl = if block > 1 { format!("iteration (median of each block of {block})") } else { "iteration".to_string() };
    let elbo_pts = block_medians(hist, block, |r| r.neg_elbo);
    let (lo, hi) = settled_range(&elbo_pts.iter().map(|p| p.1).collect::<Vec<_>>());
    let first = hist.first().map_or(f64::NAN, |r| r.neg_elbo);
    let mut elbo = Panel::new(
        format!("negative ELBO per series (unweighted KL; iteration 1: {first:.0}, above the frame)"),
        Axis::linear(xl.clone()).integer(),
        Axis::linear("-ELBO (nats)").range(lo, hi),
    );
    elbo.lines.push(Line::new(elbo_pts, palette::series(0).0, 2).label("-ELBO"));
    let (path_kl, kl_z0) = (block_medians(hist, block, |r| r.kl_path), block_medians(hist, block, |r| r.kl_z0));
    let (_, hi) = settled_range(&path_kl.iter().chain(&kl_z0).map(|p| p.1).collect::<Vec<_>>());
    let mut kl = Panel::new("KL terms per series", Axis::linear(xl).integer(), Axis::linear("KL (nats)").range(0.0, hi.max(1e-6)));
    kl.lines.push(Line::new(path_kl, palette::series(1).0, 2).label("path KL (extra state)"));
    kl.lines.push(Line::new(kl_z0, palette::series(2).0, 2).label("KL of z0"));
    figure(path, title, (1600, 640), 1, 2, &[elbo, kl])
}
