//! Where an axis puts its ticks and what they say: only readable values (1, 2 or 5 x 10^k),
//! integers on count axes, labels that never overlap, and ranges that stay within what the
//! quantity can take.

/// Smallest of 1, 2, 5 x 10^k at or above `raw` (> 0).
pub fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 { raw } else { 1.0 };
    let k = raw.log10().floor();
    let base = 10f64.powf(k);
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * base >= raw * (1.0 - 1e-12) {
            return m * base;
        }
    }
    10.0 * base
}

/// Multiples of `step` in `[lo, hi]`, rounded to the step so that no label reads 0.30000000004.
pub fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step + 0.0).collect()
}

/// Decimals a label needs to show multiples of `step` exactly.
pub fn decimals(step: f64) -> usize {
    (-(step.log10() + 1e-9).floor()).max(0.0) as usize
}

/// Label of a linear-axis tick at a multiple of `step`: no trailing ".0" on integers, as many
/// decimals as the step needs, powers of ten for very large or small magnitudes.
pub fn linear_label(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
        return sci(v);
    }
    format!("{:.*}", decimals(step), v)
}

/// `m e k` with the mantissa trimmed: 2e-5, 1.5e6.
fn sci(v: f64) -> String {
    let k = v.abs().log10().floor() as i32;
    let m = v / 10f64.powi(k);
    let m = format!("{m:.2}");
    let m = m.trim_end_matches('0').trim_end_matches('.');
    format!("{m}e{k}")
}

/// Label of a log-axis tick m x 10^k (m in 1, 2, 5): plain decimals from 0.001 to 10000
/// ("0.02", "500"), otherwise "2e-5".
pub fn log_label(v: f64) -> String {
    let k = (v.log10() + 1e-9).floor() as i32;
    if (-3..=4).contains(&k) { format!("{:.*}", (-k).max(0) as usize, v) } else { sci(v) }
}

/// Ticks and range of a linear axis. `lo..hi` is the data range, already padded; `integer`
/// keeps the step at whole numbers (counts); `fits(step, ticks)` says whether labels at that
/// spacing would stay apart. The coarsest acceptable step is never coarser than needed: steps
/// are tried from fine to coarse and the first that fits wins.
pub fn linear_ticks(lo: f64, hi: f64, integer: bool, fits: &dyn Fn(f64, &[f64]) -> bool) -> (f64, Vec<f64>) {
    let span = (hi - lo).abs().max(1e-300);
    let mut step = nice_step(span / 12.0);
    if integer {
        step = step.max(1.0);
    }
    for _ in 0..40 {
        let t = multiples(lo, hi, step);
        if t.len() <= 12 && fits(step, &t) {
            return (step, t);
        }
        step = nice_step(step * 1.5);
    }
    (step, multiples(lo, hi, step))
}

/// The smallest 1, 2, 5 x 10^k at or below `v` (> 0).
pub fn floor125(v: f64) -> f64 {
    let base = 10f64.powf(v.log10().floor());
    [5.0, 2.0, 1.0].into_iter().map(|m| m * base).find(|x| *x <= v * (1.0 + 1e-12)).unwrap_or(base)
}

/// The largest 1, 2, 5 x 10^k at or above `v` (> 0).
pub fn ceil125(v: f64) -> f64 {
    let base = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * base).find(|x| *x >= v * (1.0 - 1e-12)).unwrap_or(10.0 * base)
}

/// Range of a log axis over positive data `lo..hi`: widened by 6% at each end so that the end
/// markers are not cut, and further out to the enclosing 1-2-5 values when fewer than two of
/// them would fall inside (a narrow range still gets two readable ticks).
pub fn log_range(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if lo > 0.0 && hi >= lo && hi.is_finite() { (lo, hi) } else { (1e-3, 1.0) };
    let (a, b) = (lo / 1.06, hi * 1.06);
    if count125(a, b) >= 2 {
        return (a, b);
    }
    let (a, b) = (floor125(a), ceil125(b));
    if count125(a, b) >= 2 { (a, b) } else { (a, ceil125(b * 1.5)) }
}

/// How many of 1, 2, 5 x 10^k lie in `[a, b]`.
fn count125(a: f64, b: f64) -> usize {
    let (k0, k1) = (a.log10().floor() as i32, b.log10().ceil() as i32);
    (k0..=k1).flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k))).filter(|v| *v >= a * (1.0 - 1e-9) && *v <= b * (1.0 + 1e-9)).count()
}

/// Ticks of a log axis on `lo..hi` (ends from [`log_range`]): all of 1, 2 and 5 x 10^k when
/// their labels fit (`fits` is asked with the ticks), else powers of ten, thinned to every
/// second, third, ... decade until they fit; the two ends when nothing else does.
pub fn log_ticks(lo: f64, hi: f64, fits: &dyn Fn(&[f64]) -> bool) -> Vec<f64> {
    let in_range = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let all: Vec<f64> = (k0..=k1).flat_map(|k| [1.0, 2.0, 5.0].map(|m| round_sig(m * 10f64.powi(k)))).filter(|v| in_range(*v)).collect();
    if all.len() >= 2 && fits(&all) {
        return all;
    }
    for stride in [1, 2, 3, 5, 10, 20, 50, 100] {
        let decades: Vec<f64> =
            (k0..=k1).filter(|k| k.rem_euclid(stride) == 0).map(|k| round_sig(10f64.powi(k))).filter(|v| in_range(*v)).collect();
        if decades.len() >= 2 && fits(&decades) {
            return decades;
        }
    }
    vec![round_sig(lo), round_sig(hi)]
}

/// `v` rounded to 12 significant digits (10^-3 is not exactly 0.001 in binary).
fn round_sig(v: f64) -> f64 {
    let k = v.abs().log10().floor() as i32;
    let s = 10f64.powi(11 - k);
    (v * s).round() / s
}

/// Whether labels centred at `centres` (pixels, increasing) with half-widths `half` keep at
/// least `gap` pixels between neighbours.
pub fn apart(centres: &[f64], half: &[f64], gap: f64) -> bool {
    centres.windows(2).zip(half.windows(2)).all(|(c, h)| (c[1] - c[0]).abs() >= h[0] + h[1] + gap)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixel check as the figures do it, with text 9 px per character.
    fn fits_x(lo: f64, hi: f64, px: f64, labels: impl Fn(f64) -> String) -> impl Fn(&[f64]) -> bool {
        move |t: &[f64]| {
            let c: Vec<f64> = t.iter().map(|v| (v - lo) / (hi - lo) * px).collect();
            let h: Vec<f64> = t.iter().map(|v| 4.5 * labels(*v).len() as f64).collect();
            apart(&c, &h, 10.0)
        }
    }

    fn mantissa(v: f64) -> f64 {
        (v / 10f64.powf((v.log10() + 1e-9).floor()) * 1e6).round() / 1e6
    }

    #[test]
    fn log_ticks_are_only_at_one_two_five_and_never_overlap() {
        // The sweep figure's evaluation axis: 8 to 98 evaluations over 700 px.
        let (lo, hi) = log_range(8.0, 98.0);
        assert!((lo - 8.0 / 1.06).abs() < 1e-12 && (hi - 98.0 * 1.06).abs() < 1e-12);
        let fits = |px: f64| {
            move |t: &[f64]| {
                let c: Vec<f64> = t.iter().map(|v| (v.log10() - lo.log10()) / (hi.log10() - lo.log10()) * px).collect();
                let h: Vec<f64> = t.iter().map(|v| 4.5 * log_label(*v).len() as f64).collect();
                apart(&c, &h, 10.0)
            }
        };
        let wide = log_ticks(lo, hi, &fits(700.0));
        assert_eq!(wide, vec![10.0, 20.0, 50.0, 100.0]);
        let labels: Vec<String> = wide.iter().map(|v| log_label(*v)).collect();
        assert_eq!(labels, ["10", "20", "50", "100"]);
        // Narrow: only powers of ten remain.
        assert_eq!(log_ticks(lo, hi, &fits(60.0)), vec![10.0, 100.0]);
        // Twelve decades in 300 px: thinned decades, all apart, all powers of ten.
        let (a, b): (f64, f64) = (1e-13, 1e-1);
        let f = |t: &[f64]| {
            let c: Vec<f64> = t.iter().map(|v| (v.log10() - a.log10()) / (b.log10() - a.log10()) * 300.0).collect();
            let h: Vec<f64> = t.iter().map(|v| 4.5 * log_label(*v).len() as f64).collect();
            apart(&c, &h, 10.0)
        };
        let t = log_ticks(a, b, &f);
        assert!(t.len() >= 2 && f(&t), "{t:?}");
        assert!(t.iter().all(|v| mantissa(*v) == 1.0), "{t:?}");
        for v in log_ticks(1e-4, 1e3, &|_| true) {
            assert!([1.0, 2.0, 5.0].contains(&mantissa(v)), "{v}");
        }
    }

    #[test]
    fn log_labels_read_as_plain_numbers_in_the_middle_and_powers_outside() {
        assert_eq!(log_label(0.001), "0.001");
        assert_eq!(log_label(0.02), "0.02");
        assert_eq!(log_label(1.0), "1");
        assert_eq!(log_label(500.0), "500");
        assert_eq!(log_label(10000.0), "10000");
        assert_eq!(log_label(1e-5), "1e-5");
        assert_eq!(log_label(2e-13), "2e-13");
        assert_eq!(log_label(5e6), "5e6");
    }

    #[test]
    fn count_axes_tick_at_integers_without_decimals() {
        let (step, t) = linear_ticks(0.6, 4.4, true, &|_, _| true);
        assert!(step >= 1.0 && step.fract() == 0.0);
        assert_eq!(t, vec![1.0, 2.0, 3.0, 4.0]);
        let l: Vec<String> = t.iter().map(|v| linear_label(*v, step)).collect();
        assert_eq!(l, ["1", "2", "3", "4"]);
        // A wide count axis: 10-based steps, labels "0", "500", ...
        let f = fits_x(0.0, 2000.0, 600.0, |v| linear_label(v, 500.0));
        let (step, t) = linear_ticks(0.0, 2000.0, true, &|_, t| f(t));
        assert!(t.iter().all(|v| v.fract() == 0.0));
        assert_eq!(linear_label(t[1], step), format!("{}", t[1] as i64));
    }

    #[test]
    fn linear_ticks_are_round_apart_and_exact() {
        let (lo, hi) = (0.9865, 0.9965);
        let label = |v: f64, s: f64| linear_label(v, s);
        let fits = |step: f64, t: &[f64]| fits_x(lo, hi, 500.0, move |v| label(v, step))(t);
        let (step, t) = linear_ticks(lo, hi, false, &fits);
        assert!([1.0, 2.0, 5.0].contains(&mantissa(step)), "{step}");
        assert!(fits(step, &t) && t.len() >= 3, "{t:?}");
        for v in &t {
            let s = linear_label(*v, step);
            assert!(s.len() <= 6 && !s.contains("000000"), "{s}");
        }
        assert_eq!(linear_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(linear_label(-1e-17, 0.1), "0.0");
        assert_eq!(linear_label(2.5e-6, 1e-6), "2.5e-6");
        assert_eq!(multiples(-0.25, 1.0, 0.5), vec![0.0, 0.5, 1.0]);
        // The old sweep axis printed "90.0100.0": labels at 90 and 100 are now "90" and "100"
        // and a spacing check refuses steps whose labels touch.
        assert_eq!(linear_label(90.0, 10.0), "90");
        assert!(!apart(&[0.0, 20.0], &[18.0, 18.0], 4.0));
    }

    #[test]
    fn one_two_five_rounding() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(floor125(0.0034), 0.002);
        assert_eq!(ceil125(0.0034), 0.005);
        assert_eq!(ceil125(60.0), 100.0);
        // A range too narrow for two 1-2-5 values is widened out to them.
        let (a, b) = log_range(1.1e-3, 1.3e-3);
        assert!((a - 1e-3).abs() < 1e-15 && (b - 2e-3).abs() < 1e-15, "{a} {b}");
        assert_eq!(log_range(3.0, 3.0), (2.0, 5.0));
    }
}
