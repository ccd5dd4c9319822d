//! RMSprop on a flat parameter vector (Tieleman & Hinton 2012, lecture 6.5), with PyTorch's
//! defaults (`alpha = 0.99`, `eps = 1e-8`, no momentum) so that training curves compare with
//! torchdiffeq's demos: `v <- alpha v + (1 - alpha) g^2`, `p <- p - lr g / (sqrt(v) + eps)`.

use nodal_solve::Scalar;

/// Optimiser state for one flat parameter vector.
#[derive(Debug, Clone)]
pub struct RmsProp {
    /// Learning rate.
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f64,
    /// Added to the denominator for stability.
    pub eps: f64,
    square_avg: Vec<f64>,
}

impl RmsProp {
    /// New optimiser for `n` parameters.
    pub fn new(n: usize, lr: f64) -> Self {
        Self { lr, alpha: 0.99, eps: 1e-8, square_avg: vec![0.0; n] }
    }

    /// One update of `params` with gradient `grad`.
    pub fn step<T: Scalar>(&mut self, params: &mut [T], grad: &[T]) {
        for ((p, g), v) in params.iter_mut().zip(grad).zip(self.square_avg.iter_mut()) {
            let g = g.to_f64();
            *v = self.alpha * *v + (1.0 - self.alpha) * g * g;
            *p = T::from_f64(p.to_f64() - self.lr * g / (v.sqrt() + self.eps));
        }
    }
}
