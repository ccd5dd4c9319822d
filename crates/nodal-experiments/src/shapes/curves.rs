//! The closed curves of the shape-morphing experiment: the source circle and the targets, each
//! sampled at `n` points that correspond by arc length (point `k` of the circle is meant to land
//! on point `k` of the target).

use super::intersections::P;
use std::f64::consts::PI;

/// The shape a circle is deformed onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A five-pointed star (outer radius 1.2, inner 0.5): simple, non-convex, with sharp corners.
    Star,
    /// A block letter C (1.1 wide): simple, with a deep slot.
    Letter,
    /// A figure eight (x = 1.2 cos s, y = 0.9 sin 2s): it crosses itself once, so no
    /// homeomorphism of the plane maps the circle onto it.
    FigureEight,
}

impl Target {
    /// Every target, in the order of the figures.
    pub const ALL: [Target; 3] = [Target::Star, Target::Letter, Target::FigureEight];

    /// Name on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Target::Star => "star",
            Target::Letter => "letter",
            Target::FigureEight => "figure-eight",
        }
    }

    /// `n` points of the target, counter-clockwise (each lobe's own sense for the figure eight),
    /// starting near angle 0 like [`circle`].
    pub fn points(self, n: usize) -> Vec<P> {
        match self {
            Target::Star => {
                let v: Vec<P> = (0..10)
                    .map(|k| {
                        let r = if k % 2 == 0 { 1.2 } else { 0.5 };
                        let a = k as f64 * PI / 5.0;
                        (r * a.cos(), r * a.sin())
                    })
                    .collect();
                resample_closed(&v, n)
            }
            Target::Letter => {
                let s = 1.1;
                let v: Vec<P> =
                    [(1.0, -0.75), (1.0, -0.5), (-0.4, -0.5), (-0.4, 0.5), (1.0, 0.5), (1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)]
                        .iter()
                        .map(|(x, y)| (s * x, s * y))
                        .collect();
                resample_closed(&v, n)
            }
            Target::FigureEight => (0..n)
                .map(|k| {
                    let t = 2.0 * PI * k as f64 / n as f64;
                    (1.2 * t.cos(), 0.9 * (2.0 * t).sin())
                })
                .collect(),
        }
    }
}

/// `n` points of the unit circle at angles `2 pi k / n`.
pub fn circle(n: usize) -> Vec<P> {
    (0..n)
        .map(|k| {
            let t = 2.0 * PI * k as f64 / n as f64;
            (t.cos(), t.sin())
        })
        .collect()
}

/// `n` points spaced evenly by arc length along the closed polygon `v` (the last vertex joins the
/// first), starting at `v[0]`.
pub fn resample_closed(v: &[P], n: usize) -> Vec<P> {
    let m = v.len();
    let len = |i: usize| {
        let (a, b) = (v[i], v[(i + 1) % m]);
        (b.0 - a.0).hypot(b.1 - a.1)
    };
    let total: f64 = (0..m).map(len).sum();
    let mut out = Vec::with_capacity(n);
    let (mut edge, mut start) = (0usize, 0.0f64);
    for k in 0..n {
        let s = total * k as f64 / n as f64;
        while edge + 1 < m && start + len(edge) < s {
            start += len(edge);
            edge += 1;
        }
        let (a, b) = (v[edge], v[(edge + 1) % m]);
        let f = ((s - start) / len(edge).max(1e-300)).clamp(0.0, 1.0);
        out.push((a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::intersections::closed_self_intersections;
    use super::*;

    #[test]
    fn targets_are_simple_except_the_figure_eight() {
        for n in [64, 400] {
            assert_eq!(closed_self_intersections(&circle(n)), 0);
            assert_eq!(closed_self_intersections(&Target::Star.points(n)), 0);
            assert_eq!(closed_self_intersections(&Target::Letter.points(n)), 0);
            assert_eq!(closed_self_intersections(&Target::FigureEight.points(n)), 1);
        }
    }

    #[test]
    fn resampling_spaces_points_evenly_and_keeps_the_vertices_of_a_square() {
        let sq = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
        let r = resample_closed(&sq, 8);
        let want = [(0.0, 0.0), (0.5, 0.0), (1.0, 0.0), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0), (0.0, 1.0), (0.0, 0.5)];
        for (a, b) in r.iter().zip(want) {
            assert!((a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12, "{r:?}");
        }
        // Star: consecutive samples equally far apart along the outline (chords differ only at
        // the corners).
        let s = Target::Star.points(200);
        let d: Vec<f64> = (0..200).map(|k| (s[(k + 1) % 200].0 - s[k].0).hypot(s[(k + 1) % 200].1 - s[k].1)).collect();
        let max = d.iter().cloned().fold(0.0, f64::max);
        assert!(d.iter().filter(|x| **x < 0.9 * max).count() <= 10, "{d:?}");
    }
}
