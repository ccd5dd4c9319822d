//! Low-order classic methods. Euler, midpoint and RK4 are fixed-step only; Heun carries an
//! embedded Euler estimate so it can also adapt. All use the cubic Hermite interpolant.

use super::{DenseOutput, ErrorEstimator, Tableau};

/// Forward Euler: order 1, 1 stage.
pub const EULER: Tableau = Tableau {
    name: "euler",
    order: 1,
    error_order: None,
    c: &[0.0],
    a: &[&[]],
    b: &[1.0],
    error: ErrorEstimator::None,
    fsal: false,
    dense: DenseOutput::Hermite,
    citation: "L. Euler, Institutionum calculi integralis (1768); Hairer, Norsett, Wanner, Solving ODEs I, sec. I.7",
};

/// Explicit midpoint rule: order 2, 2 stages.
pub const MIDPOINT: Tableau = Tableau {
    name: "midpoint",
    order: 2,
    error_order: None,
    c: &[0.0, 0.5],
    a: &[&[], &[0.5]],
    b: &[0.0, 1.0],
    error: ErrorEstimator::None,
    fsal: false,
    dense: DenseOutput::Hermite,
    citation: "C. Runge, Ueber die numerische Aufloesung von Differentialgleichungen, Math. Ann. 46 (1895) 167-178",
};

/// Heun's method (explicit trapezoid): order 2, 2 stages, embedded Euler (order 1) for error control.
pub const HEUN: Tableau = Tableau {
    name: "heun",
    order: 2,
    error_order: Some(1),
    c: &[0.0, 1.0],
    a: &[&[], &[1.0]],
    b: &[0.5, 0.5],
    error: ErrorEstimator::Embedded(&[-0.5, 0.5]),
    fsal: false,
    dense: DenseOutput::Hermite,
    citation: "K. Heun, Neue Methode zur approximativen Integration der Differentialgleichungen einer unabhaengigen Veraenderlichen, Z. Math. Phys. 45 (1900) 23-38",
};

/// The classic fourth-order Runge-Kutta method: order 4, 4 stages.
pub const RK4: Tableau = Tableau {
    name: "rk4",
    order: 4,
    error_order: None,
    c: &[0.0, 0.5, 0.5, 1.0],
    a: &[&[], &[0.5], &[0.0, 0.5], &[0.0, 0.0, 1.0]],
    b: &[1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0],
    error: ErrorEstimator::None,
    fsal: false,
    dense: DenseOutput::Hermite,
    citation: "W. Kutta, Beitrag zur naeherungsweisen Integration totaler Differentialgleichungen, Z. Math. Phys. 46 (1901) 435-453",
};
