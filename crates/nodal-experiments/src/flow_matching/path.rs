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
//!
//! Which times training sees is a free choice that does not move the minimiser (the loss is
//! minimised pointwise in `t`), only where the model spends its capacity: [`TimeSampling`].

/// How training draws each example's time `t` on the path.
///
/// - `Uniform`: `t ~ U[0, 1)` (Lipman et al. 2023).
/// - `LogitNormal`: `t = σ(z)` with `z ~ N(0, 1)` and `σ` the logistic function, whose density
///   `φ(logit t) / (t (1 − t))` puts more weight on the middle of the path, where the target
///   velocity is hardest to predict, and less near the ends. Esser et al. 2024 ("Scaling
///   Rectified Flow Transformers for High-Resolution Image Synthesis", their section 3.1 and
///   table 1) found it the best of the samplings they compared for this straight path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimeSampling {
    /// `t ~ U[0, 1)` (what weight files and checkpoints that name no sampling were trained with).
    #[default]
    Uniform,
    /// `t = 1 / (1 + exp(−z))`, `z ~ N(0, 1)`.
    LogitNormal,
}

impl TimeSampling {
    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::LogitNormal => "logit-normal",
        }
    }

    /// Parse [`TimeSampling::name`]'s output.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "logit-normal" => Ok(Self::LogitNormal),
            _ => Err(format!("time sampling {s:?}: expected uniform or logit-normal")),
        }
    }

    /// One time in `[0, 1)` (logit-normal draws are in `(0, 1)`; a draw that rounds to `1.0` in
    /// `f64` is put just below it).
    pub fn draw<R: rand::Rng + ?Sized>(self, rng: &mut R) -> f64 {
        match self {
            Self::Uniform => rng.r#gen::<f64>(),
            Self::LogitNormal => {
                let z: f64 = rng.sample(rand_distr::StandardNormal);
                (1.0 / (1.0 + (-z).exp())).min(1.0 - f64::EPSILON)
            }
        }
    }
}

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
    use rand::SeedableRng;

    #[test]
    fn logit_normal_times_have_the_logistic_normals_quantiles() {
        // If t = σ(z), z ~ N(0, 1), then P(t <= σ(q)) = Φ(q): check Φ(q) at q = -1, 0, 1 on
        // 200,000 draws (standard error of a share below 0.0012; tolerance 0.005 is 4 of them).
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let draws: Vec<f64> = (0..200_000).map(|_| TimeSampling::LogitNormal.draw(&mut rng)).collect();
        assert!(draws.iter().all(|&t| t > 0.0 && t < 1.0));
        let sigma = |q: f64| 1.0 / (1.0 + (-q).exp());
        for (q, phi) in [(-1.0, 0.158_655_253_9), (0.0, 0.5), (1.0, 0.841_344_746_1)] {
            let share = draws.iter().filter(|&&t| t <= sigma(q)).count() as f64 / draws.len() as f64;
            assert!((share - phi).abs() < 0.005, "q = {q}: {share} vs {phi}");
        }
        // Uniform draws: the share below 0.25 is 0.25.
        let below = (0..200_000).filter(|_| TimeSampling::Uniform.draw(&mut rng) < 0.25).count();
        assert!((below as f64 / 200_000.0 - 0.25).abs() < 0.005);
        for s in [TimeSampling::Uniform, TimeSampling::LogitNormal] {
            assert_eq!(TimeSampling::parse(s.name()), Ok(s));
        }
        assert!(TimeSampling::parse("beta").unwrap_err().contains("beta"));
    }

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
