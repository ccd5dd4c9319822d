//! Adam on a flat parameter vector (Kingma & Ba 2015) with PyTorch's defaults (`beta1 = 0.9`,
//! `beta2 = 0.999`, `eps = 1e-8`, no weight decay), the optimiser of Dupont et al. (2019):
//! `m <- b1 m + (1 - b1) g`, `v <- b2 v + (1 - b2) g^2`,
//! `p <- p - lr (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps)` at step `k`.

use nodal_solve::Scalar;

/// Optimiser state for one flat parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first-moment average.
    pub beta1: f64,
    /// Decay of the second-moment average.
    pub beta2: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    m: Vec<f64>,
    v: Vec<f64>,
    k: i32,
}

impl Adam {
    /// New optimiser for `n` parameters.
    pub fn new(n: usize, lr: f64) -> Self {
        Self { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, m: vec![0.0; n], v: vec![0.0; n], k: 0 }
    }

    /// One update of `params` with gradient `grad` (both of the length given to [`Adam::new`]).
    pub fn step<T: Scalar>(&mut self, params: &mut [T], grad: &[T]) {
        self.k = self.k.saturating_add(1);
        let c1 = 1.0 - self.beta1.powi(self.k);
        let c2 = 1.0 - self.beta2.powi(self.k);
        for (((p, g), m), v) in params.iter_mut().zip(grad).zip(self.m.iter_mut()).zip(self.v.iter_mut()) {
            let g = g.to_f64();
            *m = self.beta1 * *m + (1.0 - self.beta1) * g;
            *v = self.beta2 * *v + (1.0 - self.beta2) * g * g;
            *p = T::from_f64(p.to_f64() - self.lr * (*m / c1) / ((*v / c2).sqrt() + self.eps));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first step moves every parameter by `lr` against the sign of its gradient (the bias
    /// corrections make `m / sqrt(v) = g / |g|`), and repeated steps minimise a quadratic.
    #[test]
    fn first_step_is_lr_times_sign_and_a_quadratic_is_minimised() {
        let mut opt = Adam::new(2, 0.1);
        let mut p = vec![1.0f64, -2.0];
        opt.step(&mut p, &[3.0, -0.5]);
        assert!((p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6, "{p:?}");
        for _ in 0..2000 {
            let g: Vec<f64> = p.iter().map(|x| 2.0 * (x - 0.5)).collect();
            opt.step(&mut p, &g);
        }
        assert!(p.iter().all(|x| (x - 0.5).abs() < 1e-3), "{p:?}");
    }
}
