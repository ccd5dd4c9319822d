//! Tsitouras 5(4) coefficients.

use super::{DenseOutput, ErrorEstimator, Tableau};

/// Tsitouras 5(4): order 5 propagated (local extrapolation), embedded order 4, 7 stages, FSAL
/// (6 evaluations per step), the paper's free 4th-order interpolant expanded into monomials.
///
/// Ch. Tsitouras, *Runge-Kutta pairs of order 5(4) satisfying only the first column
/// simplifying assumption*, Computers & Mathematics with Applications 62 (2011) 770-775.
/// The default adaptive method of diffrax (`Tsit5`) and DifferentialEquations.jl (`Tsit5()`).
pub const TSIT5: Tableau = Tableau {
    name: "tsit5",
    order: 5,
    error_order: Some(4),
    c: &[0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
    a: &[
        &[],
        &[0.161],
        &[-0.008480655492356989, 0.335480655492357],
        &[2.8971530571054935, -6.359448489975075, 4.3622954328695815],
        &[5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
        &[5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383],
        &[0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774],
    ],
    b: &[0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081, 2.324710524099774, 0.0],
    // e = b - b_hat; b_hat_7 = 1/66.
    error: ErrorEstimator::Embedded(&[
        0.0017800110522257714,
        0.0008164344596567469,
        -0.007880878010261995,
        0.1447110071732629,
        -0.5823571654525552,
        0.45808210592918697,
        -0.015151515151515152,
    ]),
    fsal: true,
    // b_i(theta) = sum_p coeffs[i][p] theta^(p+1); b_i(1) = b_i.
    dense: DenseOutput::Polynomial {
        order: 4,
        extra_c: &[],
        extra_a: &[],
        coeffs: &[
            &[1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216],
            &[0.0, 0.13169999999999998, -0.2234, 0.1017],
            &[0.0, 3.9302962368947516, -5.941033872131505, 2.490627285651253],
            &[0.0, -12.411077166933676, 30.33818863028232, -16.548102889244902],
            &[0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928],
            &[0.0, -27.896526289197286, 65.09189467479366, -34.87065786149661],
            &[0.0, 1.5, -4.0, 2.5],
        ],
    },
    citation: "Ch. Tsitouras, Runge-Kutta pairs of order 5(4) satisfying only the first column simplifying assumption, Comput. Math. Appl. 62 (2011) 770-775",
};
