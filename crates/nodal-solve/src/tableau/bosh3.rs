use super::{DenseOutput, ErrorEstimator, Tableau};

/// Bogacki-Shampine 3(2): order 3, embedded order 2, 4 stages, FSAL (3 evaluations per step),
/// cubic Hermite interpolant (uses the FSAL stage as f(y_{n+1})).
pub const BOSH3: Tableau = Tableau {
    name: "bosh3",
    order: 3,
    error_order: Some(2),
    c: &[0.0, 0.5, 0.75, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.75], &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0]],
    b: &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
    error: ErrorEstimator::Embedded(&[2.0 / 9.0 - 7.0 / 24.0, 1.0 / 3.0 - 1.0 / 4.0, 4.0 / 9.0 - 1.0 / 3.0, -1.0 / 8.0]),
    fsal: true,
    dense: DenseOutput::Hermite,
    citation: "P. Bogacki, L. F. Shampine, A 3(2) pair of Runge-Kutta formulas, Appl. Math. Lett. 2 (1989) 321-325",
};
