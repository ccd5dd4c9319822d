//! The conditional optimal-transport path of Lipman et al. 2023 (their eq. 20-23): from noise
//! `x0 ~ N(0, I)` at `t = 0` to a narrow Gaussian of width `σ_min` around the image `x1` at
//! `t = 1`, along straight lines,
//!
//! ```text
//! x_t = (1 − (1 − σ_min) t) x0 + t x1,      u_t = dx_t/dt = x1 − (1 − σ_min) x0.
//! ```
//!
//! The training loss is `E |v(t, x_t) − u_t|²` over `t ~ U[0, 1]`, `x0` and `x1`: its minimiser
//! is the marginal field that carries the noise distribution onto the data distribution.

/// `(x_t, u_t)` for rows of `x0` and `x1` (equal lengths, `t.len()` rows), row `r` at `t[r]`.
pub fn conditional_ot(x0: &[f32], x1: &[f32], t: &[f64], sigma_min: f64) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x0.len(), x1.len(), "noise and data differ in size");
    let width = if t.is_empty() { 0 } else { x0.len() / t.len() };
    let shrink = (1.0 - sigma_min) as f32;
    let mut xt = Vec::with_capacity(x0.len());
    let mut ut = Vec::with_capacity(x0.len());
    for (r, &tr) in t.iter().enumerate() {
        let tr = tr as f32;
        let a = 1.0 - shrink * tr;
        for k in r * width..(r + 1) * width {
            xt.push(a * x0[k] + tr * x1[k]);
            ut.push(x1[k] - shrink * x0[k]);
        }
    }
    (xt, ut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_starts_at_noise_ends_at_data_and_u_is_its_derivative() {
        let x0 = [0.5f32, -1.0, 2.0, 0.25];
        let x1 = [1.0f32, 0.0, -0.5, 0.75];
        let sigma = 0.01;
        let (start, _) = conditional_ot(&x0, &x1, &[0.0, 0.0], sigma);
        assert_eq!(start, x0.to_vec());
        let (end, _) = conditional_ot(&x0, &x1, &[1.0, 1.0], sigma);
        for k in 0..4 {
            assert!((end[k] - (sigma as f32 * x0[k] + x1[k])).abs() < 1e-6);
        }
        // u_t is dx_t/dt: central differences at t = 0.3 (row 0) and 0.8 (row 1).
        let (t, h) = ([0.3, 0.8], 1e-3);
        let (_, u) = conditional_ot(&x0, &x1, &t, sigma);
        let (plus, _) = conditional_ot(&x0, &x1, &[t[0] + h, t[1] + h], sigma);
        let (minus, _) = conditional_ot(&x0, &x1, &[t[0] - h, t[1] - h], sigma);
        for k in 0..4 {
            let fd = (plus[k] - minus[k]) as f64 / (2.0 * h);
            assert!((fd - u[k] as f64).abs() < 1e-3, "{k}: {fd} vs {}", u[k]);
        }
    }
}
