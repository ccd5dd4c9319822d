//! The one plotting style every PNG of nodal goes through.
//!
//! - Colours: the Okabe-Ito palette, with a marker shape per series as a second cue
//!   ([`palette`]); a viridis ramp for ordered quantities.
//! - Ticks only at readable values: 1, 2, 5 x 10^k on log axes, round steps on linear ones,
//!   whole numbers on counts, never two labels touching ([`ticks`]).
//! - Ranges clamped to what the quantity can take (accuracy in `[0, 1]`), lines clipped at the
//!   frame rather than drawn over the axes.
//! - The legend in a corner where it hides no data, else outside the plot ([`legend`]).
//! - One light major grid and no minor grid; text sizes that stay legible at half size (tick
//!   labels 18 px, axis labels 20, captions 22, titles 28: 9 px and more at half size); titles and captions wrapped to fit.
//! - Text in the bundled DejaVu Sans (no system fonts needed); every PNG written to a temporary
//!   file and renamed into place, so an interrupted run never leaves half a figure.

mod clip;
pub mod legend;
pub mod palette;
mod panel;
mod text;
pub mod ticks;

pub use palette::Marker;
pub use panel::{Arrow, Axis, Line, Panel, Point};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

/// Figure title size in pixels.
pub const TITLE_PX: u32 = 28;
/// Panel caption size.
pub const CAPTION_PX: u32 = 22;
/// Axis label size.
pub const AXIS_PX: u32 = 20;
/// Tick label size.
pub const TICK_PX: u32 = 18;
/// Legend text size.
pub const LEGEND_PX: u32 = 18;

/// Result of drawing a figure: the error names the file.
pub type PlotResult = Result<(), String>;

static FONT: Once = Once::new();

/// Register the bundled font once per process.
pub(crate) fn font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        // Registration only fails on a malformed font, which the bundled one is not.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// Draw into a temporary PNG beside `path`, then rename it over `path`: an interrupted run never
/// leaves a half-written figure.
pub fn atomically(path: &Path, draw: impl FnOnce(&Path) -> PlotResult) -> PlotResult {
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

/// `panels` on a `rows x cols` grid of a `size` pixel PNG under `title` (wrapped to fit),
/// written atomically to `path`. Panels beyond the grid are an error, not silently dropped.
pub fn figure(path: &Path, title: &str, size: (u32, u32), rows: usize, cols: usize, panels: &[Panel]) -> PlotResult {
    if panels.len() > rows * cols {
        return Err(format!("{}: {} panels do not fit a {rows} x {cols} grid", path.display(), panels.len()));
    }
    atomically(path, |p| {
        draw_figure(p, title, size, rows, cols, panels).map_err(|m| format!("{}: cannot draw figure: {m}", path.display()))
    })
}

fn draw_figure(path: &Path, title: &str, size: (u32, u32), rows: usize, cols: usize, panels: &[Panel]) -> Result<(), String> {
    font();
    let s = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(s)?;
    let width = |t: &str| {
        let style: TextStyle = ("sans-serif", TITLE_PX).into();
        root.estimate_text_size(t, &style).map(|(w, _)| w as f64).unwrap_or(0.6 * TITLE_PX as f64 * t.chars().count() as f64)
    };
    let lines = text::wrap(title, size.0 as f64 - 40.0, &width);
    let line_h = TITLE_PX as i32 + 6;
    let centre = TextStyle::from(("sans-serif", TITLE_PX)).pos(Pos::new(HPos::Center, VPos::Top));
    for (k, l) in lines.iter().enumerate() {
        root.draw_text(l, &centre, (size.0 as i32 / 2, 8 + k as i32 * line_h)).map_err(s)?;
    }
    let top = if lines.is_empty() { 0 } else { 14 + lines.len() as i32 * line_h };
    let body = root.margin(top, 0, 0, 0);
    for (area, panel) in body.split_evenly((rows, cols)).iter().zip(panels) {
        panel::draw(&root, area, panel)?;
    }
    root.present().map_err(s)
}
