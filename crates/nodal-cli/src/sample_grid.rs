//! Generated images as one PNG: a near-square grid of 28 x 28 images (white digits on black,
//! as MNIST stores them), each pixel drawn as a 3 x 3 block, with 2-pixel grey gutters.

use crate::figure::atomically;
use plotters::prelude::*;
use std::path::Path;

/// Side of an image in pixels of the data.
const SIDE: usize = 28;
/// Screen pixels per data pixel.
const SCALE: usize = 3;
/// Gutter between images.
const GAP: usize = 2;

/// Write `n` images (`n * 784` values in `[0, 1]`) as a grid to `path`, atomically.
pub fn write_grid(path: &Path, pixels: &[f32], n: usize) -> Result<(), String> {
    if n == 0 || pixels.len() < n * SIDE * SIDE {
        return Err(format!("{}: {n} images need {} values, got {}", path.display(), n * SIDE * SIDE, pixels.len()));
    }
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let cell = SIDE * SCALE + GAP;
    let (w, h) = ((cols * cell + GAP) as u32, (rows * cell + GAP) as u32);
    atomically(path, |tmp| {
        let root = BitMapBackend::new(tmp, (w, h)).into_drawing_area();
        root.fill(&RGBColor(128, 128, 128)).map_err(|e| e.to_string())?;
        for (i, img) in pixels.chunks(SIDE * SIDE).take(n).enumerate() {
            let (x0, y0) = (GAP + (i % cols) * cell, GAP + (i / cols) * cell);
            for (k, v) in img.iter().enumerate() {
                let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                let (px, py) = (x0 + (k % SIDE) * SCALE, y0 + (k / SIDE) * SCALE);
                for dy in 0..SCALE {
                    for dx in 0..SCALE {
                        root.draw_pixel(((px + dx) as i32, (py + dy) as i32), &RGBColor(g, g, g)).map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        root.present().map_err(|e| e.to_string())
    })
}
