//! One step of each scheme of [`super::scheme`], and its exact reverse-mode derivative.
//!
//! [`StepKernel::step`] advances a state over `[t, t + h]` with the increment `w` (and, for
//! SRA1, the time integral `k`); [`StepKernel::step_back`] takes the cotangent of the state
//! after the step and returns the cotangent of the state before it, accumulating parameter
//! gradients. The backward pass re-evaluates the step's stages from the state before the step
//! (one step of recomputation, nothing stored per stage). Reversible Heun carries a second
//! state `z` and [`StepKernel::unstep`] recovers a step's start from its end.

use super::error::SdeError;
use super::scheme::Scheme;
use super::sri::SriScratch;
use super::terms::{MilsteinForm, Noise, SdeTerms};
use crate::scalar::Scalar;

/// Scratch buffers of one scheme's steps.
#[derive(Debug, Clone)]
pub(crate) struct StepKernel<T> {
    pub scheme: Scheme,
    fa: Vec<T>,
    fb: Vec<T>,
    ga: Vec<T>,
    gb: Vec<T>,
    yb: Vec<T>,
    m: Vec<T>,
    ab: Vec<T>,
    tmp: Vec<T>,
    tmp2: Vec<T>,
    kw: Vec<T>,
    /// Reversible Heun: `f(z)` at the current `z` is valid (reused from the last step).
    fz_valid: bool,
    /// SRI's stages.
    sri: SriScratch<T>,
}

#[inline]
fn axpy<T: Scalar>(out: &mut [T], alpha: T, x: &[T]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += alpha * *v;
    }
}

#[inline]
fn scaled<T: Scalar>(out: &mut Vec<T>, alpha: T, x: &[T]) {
    out.clear();
    out.extend(x.iter().map(|v| alpha * *v));
}

/// Check that `scheme` can integrate these terms.
pub fn check_scheme<T: Scalar>(scheme: Scheme, terms: &dyn SdeTerms<T>) -> Result<(), SdeError> {
    let noise = terms.noise();
    match scheme {
        Scheme::MilsteinIto(_) | Scheme::MilsteinStrat if !matches!(noise, Noise::Diagonal | Noise::Additive) => {
            Err(SdeError::Unsupported(format!(
                "{} needs diagonal (or additive) noise; these terms have {noise:?} noise (use euler_maruyama, or a derivative-free Stratonovich scheme)",
                scheme.name()
            )))
        }
        Scheme::Sra1 if noise != Noise::Additive => {
            Err(SdeError::Unsupported(format!("sra1 is a scheme for additive noise; these terms have {noise:?} noise")))
        }
        _ => Ok(()),
    }
}

impl<T: Scalar> StepKernel<T> {
    pub fn new(scheme: Scheme, n: usize) -> Self {
        let b = || vec![T::ZERO; n];
        Self {
            scheme,
            fa: b(),
            fb: b(),
            ga: b(),
            gb: b(),
            yb: b(),
            m: b(),
            ab: b(),
            tmp: b(),
            tmp2: b(),
            kw: Vec::new(),
            fz_valid: false,
            sri: SriScratch::default(),
        }
    }

    /// After a Heun step: its Euler-Maruyama predictor `y + f h + G(y) w` (the embedded
    /// lower-order solution of the adaptive solve).
    pub fn predictor(&self) -> &[T] {
        &self.yb
    }

    /// Forget cached evaluations (call when a new solve starts).
    pub fn reset(&mut self) {
        self.fz_valid = false;
    }

    fn milstein_q_dt(&self, h: T) -> Option<(MilsteinForm, T)> {
        match self.scheme {
            Scheme::MilsteinIto(form) => Some((form, h)),
            Scheme::MilsteinStrat => Some((MilsteinForm::Transposed, T::ZERO)),
            _ => None,
        }
    }

    /// Advance `y` (and `z` for reversible Heun) in place over `[t, t + h]`.
    pub fn step(
        &mut self,
        terms: &mut dyn SdeTerms<T>,
        t: f64,
        h: f64,
        w: &[T],
        k: Option<&[T]>,
        y: &mut [T],
        z: &mut [T],
    ) -> Result<(), SdeError> {
        let ht = T::from_f64(h);
        let half = T::from_f64(0.5);
        match self.scheme {
            Scheme::EulerMaruyama | Scheme::MilsteinIto(_) | Scheme::MilsteinStrat => {
                terms.drift(t, y, &mut self.fa);
                terms.diffusion_times(t, y, w, &mut self.ga);
                if let Some((form, q)) = self.milstein_q_dt(ht) {
                    terms.milstein(form, t, y, w, q, &mut self.m)?;
                    axpy(y, T::ONE, &self.m);
                }
                for i in 0..y.len() {
                    y[i] += ht * self.fa[i] + self.ga[i];
                }
            }
            Scheme::EulerHeun => {
                terms.drift(t, y, &mut self.fa);
                terms.diffusion_times(t, y, w, &mut self.ga);
                for i in 0..y.len() {
                    self.yb[i] = y[i] + self.ga[i];
                }
                terms.diffusion_times(t, &self.yb, w, &mut self.gb);
                for i in 0..y.len() {
                    y[i] += ht * self.fa[i] + half * (self.ga[i] + self.gb[i]);
                }
            }
            Scheme::Heun => {
                terms.drift(t, y, &mut self.fa);
                terms.diffusion_times(t, y, w, &mut self.ga);
                for i in 0..y.len() {
                    self.yb[i] = y[i] + ht * self.fa[i] + self.ga[i];
                }
                terms.drift(t + h, &self.yb, &mut self.fb);
                terms.diffusion_times(t + h, &self.yb, w, &mut self.gb);
                for i in 0..y.len() {
                    y[i] += half * (ht * (self.fa[i] + self.fb[i]) + self.ga[i] + self.gb[i]);
                }
            }
            Scheme::Midpoint => {
                terms.drift(t, y, &mut self.fa);
                terms.diffusion_times(t, y, w, &mut self.ga);
                for i in 0..y.len() {
                    self.yb[i] = y[i] + half * (ht * self.fa[i] + self.ga[i]);
                }
                let tm = t + 0.5 * h;
                terms.drift(tm, &self.yb, &mut self.fb);
                terms.diffusion_times(tm, &self.yb, w, &mut self.gb);
                for i in 0..y.len() {
                    y[i] += ht * self.fb[i] + self.gb[i];
                }
            }
            Scheme::ReversibleHeun => {
                if !self.fz_valid {
                    terms.drift(t, z, &mut self.fa);
                }
                terms.diffusion_times(t, z, w, &mut self.ga);
                // z' = 2y - z + f(z) h + G(z) w, into yb.
                for i in 0..y.len() {
                    self.yb[i] = T::from_f64(2.0) * y[i] - z[i] + ht * self.fa[i] + self.ga[i];
                }
                terms.drift(t + h, &self.yb, &mut self.fb);
                terms.diffusion_times(t + h, &self.yb, w, &mut self.gb);
                for i in 0..y.len() {
                    y[i] += half * (ht * (self.fa[i] + self.fb[i]) + self.ga[i] + self.gb[i]);
                }
                z.copy_from_slice(&self.yb);
                std::mem::swap(&mut self.fa, &mut self.fb);
                self.fz_valid = true;
            }
            Scheme::Sri => {
                let k = k.ok_or_else(|| SdeError::Unsupported("sri needs the time integral of W over each step".into()))?;
                self.sri.step(terms, t, h, w, k, y);
            }
            Scheme::Sra1 => {
                let k = k.ok_or_else(|| SdeError::Unsupported("sra1 needs the time integral of W over each step".into()))?;
                // kw = K / h (per noise entry).
                let inv_h = T::from_f64(1.0 / h);
                scaled(&mut self.kw, inv_h, k);
                terms.drift(t, y, &mut self.fa);
                terms.diffusion_times(t + h, y, &self.kw, &mut self.gb); // G(t + h) K / h
                for i in 0..y.len() {
                    self.yb[i] = y[i] + T::from_f64(0.75) * ht * self.fa[i] + T::from_f64(1.5) * self.gb[i];
                }
                terms.drift(t + 0.75 * h, &self.yb, &mut self.fb);
                terms.diffusion_times(t + h, y, w, &mut self.ga); // G(t + h) w
                terms.diffusion_times(t, y, &self.kw, &mut self.m); // G(t) K / h
                let third = T::from_f64(1.0 / 3.0);
                let two_thirds = T::from_f64(2.0 / 3.0);
                for i in 0..y.len() {
                    y[i] += ht * (third * self.fa[i] + two_thirds * self.fb[i]) + self.ga[i] + self.m[i] - self.gb[i];
                }
            }
        }
        Ok(())
    }

    /// Reversible Heun only: recover `(y, z)` at the start of a step from `(y1, z1)` at its
    /// end, in place (Kidger et al. 2021, section 3): `z = 2 y1 - z1 - f(z1) h - G(z1) w`,
    /// `y = y1 - (f(z) + f(z1)) h / 2 - (G(z) + G(z1)) w / 2`.
    pub fn unstep(&mut self, terms: &mut dyn SdeTerms<T>, t: f64, h: f64, w: &[T], y: &mut [T], z: &mut [T]) {
        let ht = T::from_f64(h);
        let half = T::from_f64(0.5);
        terms.drift(t + h, z, &mut self.fb);
        terms.diffusion_times(t + h, z, w, &mut self.gb);
        for i in 0..y.len() {
            self.yb[i] = T::from_f64(2.0) * y[i] - z[i] - ht * self.fb[i] - self.gb[i];
        }
        terms.drift(t, &self.yb, &mut self.fa);
        terms.diffusion_times(t, &self.yb, w, &mut self.ga);
        for i in 0..y.len() {
            y[i] -= half * (ht * (self.fa[i] + self.fb[i]) + self.ga[i] + self.gb[i]);
        }
        z.copy_from_slice(&self.yb);
        self.fz_valid = false;
    }

    /// Reverse-mode derivative of [`StepKernel::step`] from the start state `(y, z)`:
    /// `(ay, az)` hold the cotangents of the state after the step on entry and of the state
    /// before it on return; parameter gradients are added to `ap`.
    #[allow(clippy::too_many_arguments)]
    pub fn step_back(
        &mut self,
        terms: &mut dyn SdeTerms<T>,
        t: f64,
        h: f64,
        w: &[T],
        k: Option<&[T]>,
        y: &[T],
        z: &[T],
        ay: &mut [T],
        az: &mut [T],
        ap: &mut [T],
    ) -> Result<(), SdeError> {
        let ht = T::from_f64(h);
        let half = T::from_f64(0.5);
        let n = y.len();
        match self.scheme {
            Scheme::EulerMaruyama | Scheme::MilsteinIto(_) | Scheme::MilsteinStrat => {
                // ay_before = ay + J_f^T (h ay) + J_Gw^T ay (+ Milstein term's VJP).
                scaled(&mut self.tmp, ht, ay);
                terms.drift_vjp(t, y, &self.tmp, &mut self.fa, ap);
                terms.diffusion_times_vjp(t, y, w, ay, &mut self.ga, ap);
                if let Some((form, q)) = self.milstein_q_dt(ht) {
                    terms.milstein_vjp(form, t, y, w, q, ay, &mut self.m, ap)?;
                    axpy(ay, T::ONE, &self.m);
                }
                for i in 0..n {
                    ay[i] += self.fa[i] + self.ga[i];
                }
            }
            Scheme::EulerHeun => {
                // yb = y + Gw(y); y1 = y + f h + (Gw(y) + Gw(yb)) / 2.
                terms.diffusion_times(t, y, w, &mut self.ga);
                for i in 0..n {
                    self.yb[i] = y[i] + self.ga[i];
                }
                scaled(&mut self.tmp, half, ay);
                terms.diffusion_times_vjp(t, &self.yb, w, &self.tmp, &mut self.ab, ap); // a_yb
                for i in 0..n {
                    self.tmp2[i] = self.tmp[i] + self.ab[i];
                }
                terms.diffusion_times_vjp(t, y, w, &self.tmp2, &mut self.gb, ap);
                scaled(&mut self.tmp, ht, ay);
                terms.drift_vjp(t, y, &self.tmp, &mut self.fa, ap);
                for i in 0..n {
                    ay[i] += self.ab[i] + self.fa[i] + self.gb[i];
                }
            }
            Scheme::Heun => {
                terms.drift(t, y, &mut self.fa);
                terms.diffusion_times(t, y, w, &mut self.ga);
                for i in 0..n {
                    self.yb[i] = y[i] + ht * self.fa[i] + self.ga[i];
                }
                // a_yb = J_f(yb)^T (h/2 ay) + J_Gw(yb)^T (ay / 2).
                scaled(&mut self.tmp, half * ht, ay);
                terms.drift_vjp(t + h, &self.yb, &self.tmp, &mut self.fb, ap);
                scaled(&mut self.tmp, half, ay);
                terms.diffusion_times_vjp(t + h, &self.yb, w, &self.tmp, &mut self.gb, ap);
                for i in 0..n {
                    self.ab[i] = self.fb[i] + self.gb[i];
                }
                // a = ay + a_yb + J_f(y)^T (h/2 ay + h a_yb) + J_Gw(y)^T (ay/2 + a_yb).
                for i in 0..n {
                    self.tmp[i] = ht * (half * ay[i] + self.ab[i]);
                    self.tmp2[i] = half * ay[i] + self.ab[i];
                }
                terms.drift_vjp(t, y, &self.tmp, &mut self.fa, ap);
                terms.diffusion_times_vjp(t, y, w, &self.tmp2, &mut self.ga, ap);
                for i in 0..n {
                    ay[i] += self.ab[i] + self.fa[i] + self.ga[i];
                }
            }
            Scheme::Midpoint => {
                terms.drift(t, y, &mut self.fa);
                terms.diffusion_times(t, y, w, &mut self.ga);
                for i in 0..n {
                    self.yb[i] = y[i] + half * (ht * self.fa[i] + self.ga[i]);
                }
                let tm = t + 0.5 * h;
                // a_yb = J_f(yb)^T (h ay) + J_Gw(yb)^T ay.
                scaled(&mut self.tmp, ht, ay);
                terms.drift_vjp(tm, &self.yb, &self.tmp, &mut self.fb, ap);
                terms.diffusion_times_vjp(tm, &self.yb, w, ay, &mut self.gb, ap);
                for i in 0..n {
                    self.ab[i] = self.fb[i] + self.gb[i];
                }
                // a = ay + a_yb + J_f(y)^T (h/2 a_yb) + J_Gw(y)^T (a_yb / 2).
                scaled(&mut self.tmp, half * ht, &self.ab);
                scaled(&mut self.tmp2, half, &self.ab);
                terms.drift_vjp(t, y, &self.tmp, &mut self.fa, ap);
                terms.diffusion_times_vjp(t, y, w, &self.tmp2, &mut self.ga, ap);
                for i in 0..n {
                    ay[i] += self.ab[i] + self.fa[i] + self.ga[i];
                }
            }
            Scheme::ReversibleHeun => {
                // z1 = 2y - z + f(z) h + Gw(z); y1 = y + (f(z) + f(z1)) h/2 + (Gw(z) + Gw(z1))/2.
                terms.drift(t, z, &mut self.fa);
                terms.diffusion_times(t, z, w, &mut self.ga);
                for i in 0..n {
                    self.yb[i] = T::from_f64(2.0) * y[i] - z[i] + ht * self.fa[i] + self.ga[i];
                }
                // total cotangent of z1: az + J_f(z1)^T (h/2 ay) + J_Gw(z1)^T (ay / 2).
                scaled(&mut self.tmp, half * ht, ay);
                terms.drift_vjp(t + h, &self.yb, &self.tmp, &mut self.fb, ap);
                scaled(&mut self.tmp, half, ay);
                terms.diffusion_times_vjp(t + h, &self.yb, w, &self.tmp, &mut self.gb, ap);
                for i in 0..n {
                    self.ab[i] = az[i] + self.fb[i] + self.gb[i];
                }
                // az_before = -az1_tot + J_f(z)^T (h/2 ay + h az1_tot) + J_Gw(z)^T (ay/2 + az1_tot).
                for i in 0..n {
                    self.tmp[i] = ht * (half * ay[i] + self.ab[i]);
                    self.tmp2[i] = half * ay[i] + self.ab[i];
                }
                terms.drift_vjp(t, z, &self.tmp, &mut self.fa, ap);
                terms.diffusion_times_vjp(t, z, w, &self.tmp2, &mut self.ga, ap);
                for i in 0..n {
                    az[i] = -self.ab[i] + self.fa[i] + self.ga[i];
                    ay[i] += T::from_f64(2.0) * self.ab[i];
                }
            }
            Scheme::Sri => {
                return Err(SdeError::Unsupported("gradients through sri steps are not implemented (forward solves only)".into()));
            }
            Scheme::Sra1 => {
                let k = k.ok_or_else(|| SdeError::Unsupported("sra1 needs the time integral of W over each step".into()))?;
                let inv_h = T::from_f64(1.0 / h);
                scaled(&mut self.kw, inv_h, k);
                terms.drift(t, y, &mut self.fa);
                terms.diffusion_times(t + h, y, &self.kw, &mut self.gb);
                for i in 0..n {
                    self.yb[i] = y[i] + T::from_f64(0.75) * ht * self.fa[i] + T::from_f64(1.5) * self.gb[i];
                }
                // a_H = J_f(H)^T (2h/3 ay).
                scaled(&mut self.tmp, T::from_f64(2.0 / 3.0) * ht, ay);
                terms.drift_vjp(t + 0.75 * h, &self.yb, &self.tmp, &mut self.ab, ap);
                // Diffusion parameters: G(t+h) w, G(t) K/h, -G(t+h) K/h, and 3/2 G(t+h) K/h into H.
                terms.diffusion_times_vjp(t + h, y, w, ay, &mut self.ga, ap);
                terms.diffusion_times_vjp(t, y, &self.kw, ay, &mut self.ga, ap);
                for i in 0..n {
                    self.tmp2[i] = T::from_f64(1.5) * self.ab[i] - ay[i];
                }
                terms.diffusion_times_vjp(t + h, y, &self.kw, &self.tmp2, &mut self.ga, ap);
                // a = ay + a_H + J_f(y)^T (h/3 ay + 3h/4 a_H).
                for i in 0..n {
                    self.tmp[i] = ht * (T::from_f64(1.0 / 3.0) * ay[i] + T::from_f64(0.75) * self.ab[i]);
                }
                terms.drift_vjp(t, y, &self.tmp, &mut self.fa, ap);
                for i in 0..n {
                    ay[i] += self.ab[i] + self.fa[i];
                }
            }
        }
        Ok(())
    }
}
