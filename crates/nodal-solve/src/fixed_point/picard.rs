//! Damped Picard iteration `z <- (1 - beta) z + beta f(z)`: converges linearly, at the map's
//! contraction rate, when `f` is a contraction (Banach's fixed-point theorem).

use super::RowUpdate;
use crate::Scalar;

/// One row's Picard update (stateless apart from the damping).
#[derive(Debug, Clone, Copy)]
pub struct PicardRow {
    /// `beta` in `(0, 1]`.
    pub damping: f64,
}

impl<T: Scalar> RowUpdate<T> for PicardRow {
    fn next(&mut self, z: &mut [T], fz: &[T]) {
        if self.damping == 1.0 {
            z.copy_from_slice(fz);
            return;
        }
        let (b, a) = (T::from_f64(self.damping), T::from_f64(1.0 - self.damping));
        for (x, &y) in z.iter_mut().zip(fz) {
            *x = a * *x + b * y;
        }
    }
}
