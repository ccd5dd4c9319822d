//! Colours and markers of every figure: the Okabe-Ito palette (Okabe & Ito 2008, "Color
//! Universal Design"), chosen so that its colours stay apart for readers with any of the common
//! colour-vision deficiencies, with a marker shape per series as a second cue that survives a
//! greyscale print; and one sequential map (viridis, van der Walt & Smith 2015) for ordered
//! quantities such as an input's position or a speed.

use plotters::style::RGBColor;

/// The eight Okabe-Ito colours, in the order series take them. Yellow is last: it is the one
/// that reads poorly as a thin line on white.
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

/// Vermillion: the second series, and the plain neural ODE in the toy figures (the first, blue,
/// is the augmented one).
pub const VERMILLION: RGBColor = OKABE_ITO[1];
/// Bluish green.
pub const GREEN: RGBColor = OKABE_ITO[2];
/// Reddish purple.
pub const PURPLE: RGBColor = OKABE_ITO[3];
/// Orange.
pub const ORANGE: RGBColor = OKABE_ITO[4];
/// Black, for references (the true trajectory, a decision line).
pub const INK: RGBColor = RGBColor(0, 0, 0);
/// Grey for context drawn behind the data (other inputs' trajectories).
pub const GREY: RGBColor = RGBColor(175, 175, 175);
/// Lighter context (a deformed background grid drawn under the data).
pub const CONTEXT_LIGHT: RGBColor = RGBColor(200, 200, 200);
/// Grid lines: light enough not to compete with the data.
pub const GRID: RGBColor = RGBColor(228, 228, 228);

/// A marker shape: the second cue beside the colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled square.
    Square,
    /// Filled triangle pointing up.
    Triangle,
    /// Filled diamond.
    Diamond,
    /// Diagonal cross.
    Cross,
    /// Filled triangle pointing down.
    TriangleDown,
    /// Upright plus.
    Plus,
    /// Open circle.
    Ring,
}

/// The markers in the order series take them.
pub const MARKERS: [Marker; 8] =
    [Marker::Circle, Marker::Square, Marker::Triangle, Marker::Diamond, Marker::Cross, Marker::TriangleDown, Marker::Plus, Marker::Ring];

/// Colour and marker of series `i` (0-based): distinct for the first eight, then repeating.
pub fn series(i: usize) -> (RGBColor, Marker) {
    (OKABE_ITO[i % OKABE_ITO.len()], MARKERS[i % MARKERS.len()])
}

/// `c` mixed with white: `amount` 0 keeps it, 1 gives white.
pub fn lighten(c: RGBColor, amount: f64) -> RGBColor {
    let a = amount.clamp(0.0, 1.0);
    let mix = |v: u8| (v as f64 + a * (255.0 - v as f64)).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// Viridis at `s` in `[0, 1]` (clamped), stopping short of its pale yellow end so that thin
/// lines stay visible on white.
pub fn sequential(s: f64) -> RGBColor {
    // Samples of viridis at 0, 0.25, 0.5, 0.75 and 0.9.
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [68.0, 1.0, 84.0]),
        (0.25, [59.0, 82.0, 139.0]),
        (0.5, [33.0, 145.0, 140.0]),
        (0.75, [94.0, 201.0, 98.0]),
        (1.0, [189.0, 223.0, 38.0]),
    ];
    let s = if s.is_finite() { s.clamp(0.0, 1.0) } else { 0.0 };
    let k = STOPS.windows(2).position(|w| s <= w[1].0).unwrap_or(STOPS.len() - 2);
    let ((s0, a), (s1, b)) = (STOPS[k], STOPS[k + 1]);
    let f = (s - s0) / (s1 - s0);
    let c = |j: usize| (a[j] + f * (b[j] - a[j])).round() as u8;
    RGBColor(c(0), c(1), c(2))
}

/// CIE L*a*b* of an sRGB colour (D65 white): the space in which [`delta_e`] measures how far
/// apart two colours look.
#[cfg(test)]
pub fn lab(c: RGBColor) -> [f64; 3] {
    let lin = |v: u8| {
        let v = v as f64 / 255.0;
        if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
    };
    let (r, g, b) = (lin(c.0), lin(c.1), lin(c.2));
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| if t > 216.0 / 24389.0 { t.cbrt() } else { (24389.0 / 27.0 * t + 16.0) / 116.0 };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIE76 colour difference: about 2.3 is just noticeable, above 20 two colours read as different.
#[cfg(test)]
pub fn delta_e(a: RGBColor, b: RGBColor) -> f64 {
    let (p, q) = (lab(a), lab(b));
    ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt()
}

/// The colour as a reader with deuteranopia (no green cones) sees it, by the Machado, Oliveira
/// and Fernandes (2009) matrix at full severity, applied in linear RGB.
#[cfg(test)]
pub fn deuteranopia(c: RGBColor) -> RGBColor {
    const M: [[f64; 3]; 3] = [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]];
    let lin = |v: u8| {
        let v = v as f64 / 255.0;
        if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
    };
    let enc = |v: f64| {
        let v = v.clamp(0.0, 1.0);
        let s = if v <= 0.0031308 { 12.92 * v } else { 1.055 * v.powf(1.0 / 2.4) - 0.055 };
        (255.0 * s).round() as u8
    };
    let l = [lin(c.0), lin(c.1), lin(c.2)];
    let o: Vec<u8> = M.iter().map(|row| enc(row[0] * l[0] + row[1] * l[1] + row[2] * l[2])).collect();
    RGBColor(o[0], o[1], o[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smallest pairwise difference among the first `n` series colours after `see`.
    fn closest(n: usize, see: impl Fn(RGBColor) -> RGBColor) -> f64 {
        let mut m = f64::INFINITY;
        for i in 0..n {
            for j in 0..i {
                m = m.min(delta_e(see(series(i).0), see(series(j).0)));
            }
        }
        m
    }

    #[test]
    fn eight_series_colours_stay_apart_for_normal_and_deuteranope_vision() {
        // Normal vision: every pair of the eight at least 25 apart (26.4 measured, sky blue
        // against blue); with deuteranopia at least 15 (16.9, yellow against orange).
        assert!(closest(8, |c| c) > 25.0, "{}", closest(8, |c| c));
        assert!(closest(8, deuteranopia) > 15.0, "{}", closest(8, deuteranopia));
        // The palette it replaces failed both: its "none" and "order2" reds were 18.6 apart,
        // and 7.6 for a deuteranope reader.
        let (none, order2) = (RGBColor(220, 50, 47), RGBColor(203, 75, 22));
        assert!(delta_e(none, order2) < 20.0 && delta_e(deuteranopia(none), deuteranopia(order2)) < 10.0);
    }

    #[test]
    fn each_of_eight_series_gets_its_own_colour_and_marker() {
        for i in 0..8 {
            for j in 0..i {
                assert_ne!(series(i).0, series(j).0);
                assert_ne!(series(i).1, series(j).1);
            }
        }
        assert_eq!(series(8), series(0));
    }

    #[test]
    fn lab_of_white_and_black_and_the_sequential_map_ends() {
        let w = lab(RGBColor(255, 255, 255));
        assert!((w[0] - 100.0).abs() < 0.02 && w[1].abs() < 0.02 && w[2].abs() < 0.02, "{w:?}");
        assert!(lab(RGBColor(0, 0, 0))[0].abs() < 1e-9);
        assert_eq!(sequential(0.0), RGBColor(68, 1, 84));
        assert_eq!(sequential(1.0), RGBColor(189, 223, 38));
        assert_eq!(sequential(f64::NAN), sequential(0.0));
        // Lightness rises monotonically along the map: order reads as order.
        let l: Vec<f64> = (0..=20).map(|k| lab(sequential(k as f64 / 20.0))[0]).collect();
        assert!(l.windows(2).all(|w| w[1] > w[0]), "{l:?}");
        assert_eq!(lighten(OKABE_ITO[0], 1.0), RGBColor(255, 255, 255));
        assert_eq!(lighten(OKABE_ITO[0], 0.0), OKABE_ITO[0]);
    }
}
