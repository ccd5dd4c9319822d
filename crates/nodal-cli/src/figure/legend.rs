//! Where a panel's legend goes: in the first corner of the plotting area where it covers no
//! data, else outside, to the right of the plot.

/// A legend position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Inside, top right.
    UpperRight,
    /// Inside, top left.
    UpperLeft,
    /// Inside, bottom right.
    LowerRight,
    /// Inside, bottom left.
    LowerLeft,
    /// Outside the plotting area, to its right.
    Outside,
}

/// Corners in order of preference.
pub const CORNERS: [Place; 4] = [Place::UpperRight, Place::UpperLeft, Place::LowerRight, Place::LowerLeft];

/// The box a legend of `size` (fractions of the plotting area's width and height) takes at
/// `place`, `margin` (same units) from the frame, as `(u0, v0, u1, v1)` with `v` upwards.
pub fn corner_box(place: Place, size: (f64, f64), margin: f64) -> (f64, f64, f64, f64) {
    let (w, h) = size;
    let (u0, u1) = match place {
        Place::UpperLeft | Place::LowerLeft => (margin, margin + w),
        _ => (1.0 - margin - w, 1.0 - margin),
    };
    let (v0, v1) = match place {
        Place::LowerLeft | Place::LowerRight => (margin, margin + h),
        _ => (1.0 - margin - h, 1.0 - margin),
    };
    (u0, v0, u1, v1)
}

/// Dense samples of what a panel draws, in unit coordinates of its plotting area (0 to 1 on
/// each axis): every vertex, and points along every segment no further than `spacing` apart,
/// so that a long straight segment through a corner counts too.
pub fn samples(polylines: &[Vec<(f64, f64)>], points: &[(f64, f64)], spacing: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = points.to_vec();
    for line in polylines {
        for w in line.windows(2) {
            let (a, b) = (w[0], w[1]);
            if !(a.0.is_finite() && a.1.is_finite() && b.0.is_finite() && b.1.is_finite()) {
                continue;
            }
            let n = (((b.0 - a.0).hypot(b.1 - a.1) / spacing).ceil() as usize).clamp(1, 4000);
            out.extend((0..n).map(|k| {
                let s = k as f64 / n as f64;
                (a.0 + s * (b.0 - a.0), a.1 + s * (b.1 - a.1))
            }));
        }
        if let Some(p) = line.last() {
            out.push(*p);
        }
    }
    out
}

/// The first corner (in [`CORNERS`] order) whose legend box, grown by `pad`, holds none of
/// `samples`; [`Place::Outside`] when every corner would hide data or the legend is larger than
/// half the plotting area.
pub fn place(samples: &[(f64, f64)], size: (f64, f64), margin: f64, pad: f64) -> Place {
    if size.0 > 0.5 || size.1 > 0.6 {
        return Place::Outside;
    }
    for c in CORNERS {
        let (u0, v0, u1, v1) = corner_box(c, size, margin);
        let hit = samples.iter().any(|&(u, v)| u >= u0 - pad && u <= u1 + pad && v >= v0 - pad && v <= v1 + pad);
        if !hit {
            return c;
        }
    }
    Place::Outside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legend_avoids_the_corners_that_hold_data() {
        let size = (0.3, 0.2);
        // A line rising from bottom left to top right: the upper left corner is free.
        let rising = samples(&[vec![(0.0, 0.0), (1.0, 1.0)]], &[], 0.01);
        assert_eq!(place(&rising, size, 0.02, 0.01), Place::UpperLeft);
        // Falling: the upper right is free.
        let falling = samples(&[vec![(0.0, 1.0), (1.0, 0.0)]], &[], 0.01);
        assert_eq!(place(&falling, size, 0.02, 0.01), Place::UpperRight);
        // Only the two vertices of a long segment lie outside the upper left box: the
        // segment itself crosses it and the box is refused.
        let across = samples(&[vec![(0.0, 0.9), (1.0, 0.9)]], &[], 0.01);
        assert_eq!(place(&across, size, 0.02, 0.01), Place::LowerRight);
        // Data in every corner: outside.
        let everywhere: Vec<(f64, f64)> = (0..=20).flat_map(|i| (0..=20).map(move |j| (i as f64 / 20.0, j as f64 / 20.0))).collect();
        assert_eq!(place(&everywhere, size, 0.02, 0.01), Place::Outside);
        // No data at all: the preferred corner.
        assert_eq!(place(&[], size, 0.02, 0.01), Place::UpperRight);
        // A legend too large for any corner goes outside even over empty space.
        assert_eq!(place(&[], (0.7, 0.2), 0.02, 0.01), Place::Outside);
    }

    #[test]
    fn corner_boxes_sit_inside_the_frame() {
        for c in CORNERS {
            let (u0, v0, u1, v1) = corner_box(c, (0.3, 0.2), 0.02);
            assert!(u0 >= 0.0 && v0 >= 0.0 && u1 <= 1.0 && v1 <= 1.0 && u1 - u0 > 0.29 && v1 - v0 > 0.19, "{c:?}");
        }
    }
}
