//! Hairer's initial step selection (Hairer, Norsett, Wanner, *Solving ODEs I*, sec. II.4), for
//! a block of lanes at once: one extra evaluation per lane.

use crate::lanes::Lanes;
use crate::stepper::Workspace;

/// Initial step magnitudes of the block lanes `j < ts.len()` into `out`. On entry `ws.y` holds
/// the states and `ws.k[0]` their derivatives; `ws.ytmp`, `ws.y1` and `ws.out` are overwritten.
///
/// With `d0 = ||y0||`, `d1 = ||f0||` (in the error norm): `h0 = 0.01 d0 / d1` (or `1e-6` when
/// either is tiny), one Euler step of `h0`, `d2 = ||f(t0 + h0, y0 + h0 f0) - f0|| / h0`, and
/// `h = min(100 h0, (0.01 / max(d1, d2))^(1/order))`.
#[allow(clippy::too_many_arguments)]
pub fn initial_step<L: Lanes>(
    lanes: &mut L,
    ws: &mut Workspace<L::Buf>,
    ts: &[f64],
    dirs: &[f64],
    order: u32,
    rtol: f64,
    atol: f64,
    out: &mut [f64],
) {
    let n = ts.len();
    let (mut d0, mut d1, mut d2) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    lanes.error_ratios(&ws.y, &ws.y, &ws.y, rtol, atol, &mut d0);
    lanes.error_ratios(&ws.k[0], &ws.y, &ws.y, rtol, atol, &mut d1);
    let h0: Vec<f64> = d0.iter().zip(&d1).map(|(&a, &b)| if a < 1e-5 || b < 1e-5 { 1e-6 } else { 0.01 * a / b }).collect();
    let signed: Vec<f64> = h0.iter().zip(dirs).map(|(h, d)| d * h).collect();
    lanes.lincomb(&mut ws.ytmp, &ws.y, &signed, &[1.0], &ws.k[..1]);
    ws.times.clear();
    ws.times.extend(ts.iter().zip(&signed).map(|(t, h)| t + h));
    lanes.eval(&ws.times, &ws.ytmp, &mut ws.y1);
    let ones = vec![1.0; n];
    lanes.lincomb(&mut ws.out, &ws.y1, &ones, &[-1.0], &ws.k[..1]);
    lanes.error_ratios(&ws.out, &ws.y, &ws.y, rtol, atol, &mut d2);
    for j in 0..n {
        let (h0, d1, d2) = (h0[j], d1[j], d2[j] / h0[j]);
        let h1 = if d1 <= 1e-15 && d2 <= 1e-15 { (h0 * 1e-3).max(1e-6) } else { (0.01 / d1.max(d2)).powf(1.0 / order as f64) };
        let h = (100.0 * h0).min(h1);
        out[j] = if h.is_finite() && h > 0.0 { h } else { h0 };
    }
}
