//! Counting where curves cross: the self-intersections of a closed curve, of an open polyline,
//! and the crossings between two polylines. A homeomorphism of the plane maps a simple closed
//! curve to a simple closed curve and keeps disjoint grid lines disjoint, so every count here is
//! zero for it; a map that folds makes some of them positive.

/// A point of the plane.
pub type P = (f64, f64);

/// Twice the signed area of the triangle `a, b, c`: positive when `c` lies left of `a -> b`.
fn orient(a: P, b: P, c: P) -> f64 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

/// Whether `c`, known to be collinear with `a -> b`, lies within that segment's bounding box.
fn on_segment(a: P, b: P, c: P) -> bool {
    c.0 >= a.0.min(b.0) && c.0 <= a.0.max(b.0) && c.1 >= a.1.min(b.1) && c.1 <= a.1.max(b.1)
}

/// Whether the closed segments `a-b` and `c-d` share a point (touching and collinear overlap
/// count; exact orientation signs in floating point).
pub fn segments_intersect(a: P, b: P, c: P, d: P) -> bool {
    // Cheap rejection by bounding boxes first.
    if a.0.max(b.0) < c.0.min(d.0) || c.0.max(d.0) < a.0.min(b.0) || a.1.max(b.1) < c.1.min(d.1) || c.1.max(d.1) < a.1.min(b.1) {
        return false;
    }
    let (o1, o2, o3, o4) = (orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b));
    if ((o1 > 0.0 && o2 < 0.0) || (o1 < 0.0 && o2 > 0.0)) && ((o3 > 0.0 && o4 < 0.0) || (o3 < 0.0 && o4 > 0.0)) {
        return true;
    }
    (o1 == 0.0 && on_segment(a, b, c))
        || (o2 == 0.0 && on_segment(a, b, d))
        || (o3 == 0.0 && on_segment(c, d, a))
        || (o4 == 0.0 && on_segment(c, d, b))
}

/// Self-intersections of the closed curve through `pts` (the last point joins the first): the
/// number of pairs of non-adjacent edges that meet. A simple closed curve gives 0, a figure
/// eight 1, a pentagram 5.
pub fn closed_self_intersections(pts: &[P]) -> usize {
    let n = pts.len();
    if n < 4 {
        return 0;
    }
    let edge = |i: usize| (pts[i], pts[(i + 1) % n]);
    let mut count = 0;
    for i in 0..n {
        let (a, b) = edge(i);
        // Edges i and j are adjacent when j = i + 1, or i = 0 and j = n - 1.
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue;
            }
            let (c, d) = edge(j);
            if segments_intersect(a, b, c, d) {
                count += 1;
            }
        }
    }
    count
}

/// Where segments `a-b` and `c-d` cross (their lines' intersection; the first shared endpoint
/// for collinear ones), if they meet.
pub fn crossing_point(a: P, b: P, c: P, d: P) -> Option<P> {
    if !segments_intersect(a, b, c, d) {
        return None;
    }
    let den = (b.0 - a.0) * (d.1 - c.1) - (b.1 - a.1) * (d.0 - c.0);
    if den == 0.0 {
        return Some(if on_segment(c, d, a) { a } else { b });
    }
    let s = ((c.0 - a.0) * (d.1 - c.1) - (c.1 - a.1) * (d.0 - c.0)) / den;
    Some((a.0 + s * (b.0 - a.0), a.1 + s * (b.1 - a.1)))
}

/// The points where the closed curve through `pts` crosses itself (one per pair counted by
/// [`closed_self_intersections`]).
pub fn closed_self_intersection_points(pts: &[P]) -> Vec<P> {
    let n = pts.len();
    let mut out = Vec::new();
    if n < 4 {
        return out;
    }
    for i in 0..n {
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue;
            }
            if let Some(p) = crossing_point(pts[i], pts[(i + 1) % n], pts[j], pts[(j + 1) % n]) {
                out.push(p);
            }
        }
    }
    out
}

/// Self-intersections of the open polyline through `pts`: pairs of non-adjacent edges that meet.
pub fn open_self_intersections(pts: &[P]) -> usize {
    let mut count = 0;
    for i in 0..pts.len().saturating_sub(1) {
        for j in i + 2..pts.len().saturating_sub(1) {
            if segments_intersect(pts[i], pts[i + 1], pts[j], pts[j + 1]) {
                count += 1;
            }
        }
    }
    count
}

/// Crossings between the open polylines `a` and `b`: pairs of edges, one from each, that meet.
pub fn crossings(a: &[P], b: &[P]) -> usize {
    let mut count = 0;
    for s in a.windows(2) {
        for t in b.windows(2) {
            if segments_intersect(s[0], s[1], t[0], t[1]) {
                count += 1;
            }
        }
    }
    count
}

/// Folds of a deformed grid: `lines` are the images of grid lines of one family (all the
/// horizontal ones, or all the vertical ones), which are disjoint before the map. Counts the
/// self-intersections of each line plus the crossings between every two lines of the family
/// (the sum of [`open_self_intersections`] and [`crossings`], found through [`meeting_pairs`]).
pub fn grid_folds(lines: &[Vec<P>]) -> usize {
    let segs: Vec<Seg> = lines
        .iter()
        .enumerate()
        .flat_map(|(c, l)| l.windows(2).enumerate().map(move |(i, w)| Seg { a: w[0], b: w[1], curve: c, index: i }))
        .collect();
    meeting_pairs(&segs, |s, t| s.curve == t.curve && s.index.abs_diff(t.index) == 1).len()
}

/// Self-intersections of a long closed curve: the count of [`closed_self_intersections`] and
/// the crossing points of [`closed_self_intersection_points`], through [`meeting_pairs`].
pub fn closed_crossings(pts: &[P]) -> Vec<P> {
    let n = pts.len();
    if n < 4 {
        return Vec::new();
    }
    let segs: Vec<Seg> = (0..n).map(|i| Seg { a: pts[i], b: pts[(i + 1) % n], curve: 0, index: i }).collect();
    meeting_pairs(&segs, |s, t| {
        let d = s.index.abs_diff(t.index);
        d == 1 || d == n - 1
    })
    .into_iter()
    .filter_map(|(i, j)| crossing_point(segs[i].a, segs[i].b, segs[j].a, segs[j].b))
    .collect()
}

/// A segment of curve `curve`, its `index`-th edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seg {
    /// Start.
    pub a: P,
    /// End.
    pub b: P,
    /// Which curve.
    pub curve: usize,
    /// Which edge of it.
    pub index: usize,
}

/// Every pair `(i, j)`, `i < j`, of `segs` that meet and are not `adjacent`, found through a
/// uniform spatial hash (cells as large as the longest segment), so that curves of 10^5 edges
/// are counted in about linear time. Each pair is tested in one cell only: the lowest cell
/// both segments' bounding boxes cover.
pub fn meeting_pairs(segs: &[Seg], adjacent: impl Fn(&Seg, &Seg) -> bool) -> Vec<(usize, usize)> {
    let finite = |s: &Seg| s.a.0.is_finite() && s.a.1.is_finite() && s.b.0.is_finite() && s.b.1.is_finite();
    let longest = segs.iter().filter(|s| finite(s)).map(|s| (s.b.0 - s.a.0).abs().max((s.b.1 - s.a.1).abs())).fold(0.0f64, f64::max);
    let cell = longest.max(1e-9);
    let key = |v: f64| (v / cell).floor() as i64;
    let range = |s: &Seg| (key(s.a.0.min(s.b.0)), key(s.a.1.min(s.b.1)), key(s.a.0.max(s.b.0)), key(s.a.1.max(s.b.1)));
    let mut buckets: std::collections::HashMap<(i64, i64), Vec<usize>> = std::collections::HashMap::new();
    for (i, s) in segs.iter().enumerate().filter(|(_, s)| finite(s)) {
        let (x0, y0, x1, y1) = range(s);
        for x in x0..=x1 {
            for y in y0..=y1 {
                buckets.entry((x, y)).or_default().push(i);
            }
        }
    }
    let mut out = Vec::new();
    for (&(cx, cy), v) in &buckets {
        for (k, &i) in v.iter().enumerate() {
            for &j in &v[k + 1..] {
                let (si, sj) = (&segs[i], &segs[j]);
                let (ri, rj) = (range(si), range(sj));
                if (ri.0.max(rj.0), ri.1.max(rj.1)) != (cx, cy) || adjacent(si, sj) {
                    continue;
                }
                if segments_intersect(si.a, si.b, sj.a, sj.b) {
                    out.push((i.min(j), i.max(j)));
                }
            }
        }
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn param(n: usize, f: impl Fn(f64) -> P) -> Vec<P> {
        // Half-step offsets keep sample points off the crossing itself.
        (0..n).map(|k| f(2.0 * PI * (k as f64 + 0.5) / n as f64)).collect()
    }

    #[test]
    fn simple_curves_have_no_self_intersections() {
        assert_eq!(closed_self_intersections(&param(200, |t| (t.cos(), t.sin()))), 0);
        assert_eq!(closed_self_intersections(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]), 0);
        // A non-convex but simple polygon: the letter C outline.
        let c = [(-1.0, -1.0), (1.0, -1.0), (1.0, -0.5), (-0.4, -0.5), (-0.4, 0.5), (1.0, 0.5), (1.0, 1.0), (-1.0, 1.0)];
        assert_eq!(closed_self_intersections(&c), 0);
        // A five-pointed star drawn round its outline (alternating radii) is simple too.
        let star: Vec<P> = (0..10)
            .map(|k| {
                let r = if k % 2 == 0 { 1.0 } else { 0.4 };
                let a = PI / 2.0 + k as f64 * PI / 5.0;
                (r * a.cos(), r * a.sin())
            })
            .collect();
        assert_eq!(closed_self_intersections(&star), 0);
    }

    #[test]
    fn crossing_curves_are_counted_once_per_crossing() {
        // Figure eight (lemniscate of Gerono): one crossing at the origin, at any sampling.
        for n in [16, 101, 400] {
            assert_eq!(closed_self_intersections(&param(n, |t| (t.cos(), (2.0 * t).sin() / 2.0))), 1, "n = {n}");
        }
        // Bow tie: one, at its centre.
        let bow = [(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)];
        assert_eq!(closed_self_intersections(&bow), 1);
        let at = closed_self_intersection_points(&bow);
        assert_eq!(at.len(), 1);
        assert!((at[0].0 - 0.5).abs() < 1e-12 && (at[0].1 - 0.5).abs() < 1e-12, "{at:?}");
        let eight = closed_self_intersection_points(&param(101, |t| (t.cos(), (2.0 * t).sin() / 2.0)));
        // The sampled curve's chords cross within a sample spacing of the true crossing, the origin.
        assert!(eight.len() == 1 && eight[0].0.abs() < 1e-3 && eight[0].1.abs() < 1e-3, "{eight:?}");
        // Pentagram {5/2}: five.
        let penta: Vec<P> = (0..5)
            .map(|k| {
                let a = PI / 2.0 + k as f64 * 4.0 * PI / 5.0;
                (a.cos(), a.sin())
            })
            .collect();
        assert_eq!(closed_self_intersections(&penta), 5);
        // Limacon r = 1 + 2 cos t: its inner loop crosses the outer one once.
        assert_eq!(closed_self_intersections(&param(300, |t| ((1.0 + 2.0 * t.cos()) * t.cos(), (1.0 + 2.0 * t.cos()) * t.sin()))), 1);
        // Two full turns of a circle: every edge lies on another; the overlaps are all counted.
        assert!(closed_self_intersections(&param(40, |t| ((2.0 * t).cos(), (2.0 * t).sin()))) >= 20);
    }

    #[test]
    fn touching_and_collinear_segments_meet_and_parallel_ones_do_not() {
        assert!(segments_intersect((0.0, 0.0), (1.0, 0.0), (1.0, 0.0), (2.0, 1.0)));
        assert!(segments_intersect((0.0, 0.0), (2.0, 0.0), (1.0, 0.0), (3.0, 0.0)));
        assert!(!segments_intersect((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)));
        assert!(!segments_intersect((0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (3.0, 0.0)));
        assert!(!segments_intersect((0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (2.0, -1.0)));
    }

    /// The hashed counts agree with the brute-force ones on random wiggly curves.
    #[test]
    fn hashed_counts_equal_brute_force_counts() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for trial in 0..20 {
            let n = 30 + trial * 7;
            let wiggle: Vec<P> = (0..n)
                .map(|k| {
                    let t = 2.0 * PI * k as f64 / n as f64;
                    let r = 1.0 + rng.gen_range(-0.6..0.6);
                    (r * t.cos() + rng.gen_range(-0.2..0.2), r * t.sin())
                })
                .collect();
            assert_eq!(closed_crossings(&wiggle).len(), closed_self_intersections(&wiggle), "trial {trial}");
            let lines: Vec<Vec<P>> = (0..4)
                .map(|j| {
                    (0..25).map(|i| (i as f64 * 0.1 + rng.gen_range(-0.08..0.08), j as f64 * 0.15 + rng.gen_range(-0.3..0.3))).collect()
                })
                .collect();
            let mut brute: usize = lines.iter().map(|l| open_self_intersections(l)).sum();
            for i in 0..4 {
                for j in i + 1..4 {
                    brute += crossings(&lines[i], &lines[j]);
                }
            }
            assert_eq!(grid_folds(&lines), brute, "trial {trial}");
        }
    }

    #[test]
    fn grids_fold_only_when_lines_cross() {
        let line = |y: f64| -> Vec<P> { (0..=20).map(|i| (i as f64 / 10.0 - 1.0, y)).collect() };
        let flat: Vec<Vec<P>> = (0..5).map(|j| line(j as f64 * 0.5 - 1.0)).collect();
        assert_eq!(grid_folds(&flat), 0);
        // A smooth shear keeps them apart.
        let sheared: Vec<Vec<P>> = flat.iter().map(|l| l.iter().map(|p| (p.0, p.1 + 0.3 * p.0.sin())).collect()).collect();
        assert_eq!(grid_folds(&sheared), 0);
        // (x, y) -> (x, y (1 - 2x)) folds the plane along x = 0.5 (its determinant 1 - 2x changes
        // sign there): every horizontal line passes through (0.5, 0), so all ten pairs of the
        // five lines meet.
        let folded: Vec<Vec<P>> = flat.iter().map(|l| l.iter().map(|p| (p.0, p.1 * (1.0 - 2.0 * p.0))).collect()).collect();
        assert!(grid_folds(&folded) >= 10, "{}", grid_folds(&folded));
        // An S-shaped back-and-forth in one line: it crosses itself.
        let s: Vec<P> = vec![(0.0, 0.0), (2.0, 0.0), (2.0, 1.0), (1.0, -1.0)];
        assert_eq!(open_self_intersections(&s), 1);
    }
}
