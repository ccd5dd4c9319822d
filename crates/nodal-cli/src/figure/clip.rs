//! Clipping of lines and points to a panel's plotting area, so that data outside an axis range
//! (a reconstruction that blows up, an accuracy axis clamped at 1) stops at the frame instead
//! of being drawn over the axes.

/// `pts` (unit coordinates of the plotting area) cut to `[0, 1] x [0, 1]`: one polyline per
/// visible stretch; non-finite vertices break the line.
pub fn polyline(pts: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    let finite = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    if pts.len() == 1 && finite(&pts[0]) && inside(pts[0]) {
        return vec![pts.to_vec()];
    }
    for w in pts.windows(2) {
        let (a, b) = (w[0], w[1]);
        if !(finite(&a) && finite(&b)) {
            flush(&mut out, &mut cur);
            continue;
        }
        match segment(a, b) {
            Some((p, q)) => {
                if cur.last().is_none_or(|l| (l.0 - p.0).abs() > 1e-12 || (l.1 - p.1).abs() > 1e-12) {
                    flush(&mut out, &mut cur);
                    cur.push(p);
                }
                cur.push(q);
                // The segment left the box: the stretch ends here.
                if q != b {
                    flush(&mut out, &mut cur);
                }
            }
            None => flush(&mut out, &mut cur),
        }
    }
    flush(&mut out, &mut cur);
    out
}

fn flush(out: &mut Vec<Vec<(f64, f64)>>, cur: &mut Vec<(f64, f64)>) {
    if cur.len() >= 2 {
        out.push(std::mem::take(cur));
    } else {
        cur.clear();
    }
}

/// Whether a point lies in the unit box (with a hair of slack for points on the frame).
pub fn inside(p: (f64, f64)) -> bool {
    let e = 1e-9;
    p.0 >= -e && p.0 <= 1.0 + e && p.1 >= -e && p.1 <= 1.0 + e
}

/// The part of segment `a -> b` inside the unit box (Liang-Barsky), if any.
pub fn segment(a: (f64, f64), b: (f64, f64)) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0), (dx, 1.0 - a.0), (-dy, a.1), (dy, 1.0 - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    let at = |t: f64| {
        if t == 0.0 {
            a
        } else if t == 1.0 {
            b
        } else {
            (a.0 + t * dx, a.1 + t * dy)
        }
    };
    Some((at(t0), at(t1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_stop_at_the_frame() {
        // Inside, out through the top, back in: two stretches, cut exactly at v = 1.
        let l = polyline(&[(0.0, 0.5), (0.2, 0.5), (0.4, 1.5), (0.6, 0.5), (1.0, 0.5)]);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!((l[0].last().unwrap().1 - 1.0).abs() < 1e-12 && (l[0].last().unwrap().0 - 0.3).abs() < 1e-12);
        assert!((l[1][0].0 - 0.5).abs() < 1e-12 && (l[1][0].1 - 1.0).abs() < 1e-12);
        assert_eq!(*l[1].last().unwrap(), (1.0, 0.5));
        // Entirely outside: nothing.
        assert!(polyline(&[(2.0, 2.0), (3.0, 3.0)]).is_empty());
        // A NaN breaks the line.
        assert_eq!(polyline(&[(0.1, 0.1), (0.2, 0.2), (f64::NAN, 0.3), (0.4, 0.4), (0.5, 0.5)]).len(), 2);
        // Crossing the whole box diagonally from outside.
        let d = polyline(&[(-1.0, -1.0), (2.0, 2.0)]);
        assert_eq!(d, vec![vec![(0.0, 0.0), (1.0, 1.0)]]);
        // An inside polyline is unchanged.
        let p = vec![(0.1, 0.1), (0.5, 0.9), (0.9, 0.2)];
        assert_eq!(polyline(&p), vec![p.clone()]);
    }
}
