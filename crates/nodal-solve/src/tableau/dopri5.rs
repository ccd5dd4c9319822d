use super::{DenseOutput, ErrorEstimator, Tableau};

/// Dormand-Prince 5(4): order 5 propagated (local extrapolation), embedded order 4, 7 stages,
/// FSAL (6 evaluations per step), native 4th-order interpolant (Hairer's continuous extension).
///
/// The default adaptive method of torchdiffeq (`dopri5`) and diffrax (`Dopri5`), so the same
/// tolerances take the same steps.
pub const DOPRI5: Tableau = Tableau {
    name: "dopri5",
    order: 5,
    error_order: Some(4),
    c: &[0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0],
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
        &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
        &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
    ],
    b: &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0, 0.0],
    // Error weights e = b - b_hat with Shampine's fourth-order companion (the one torchdiffeq
    // and diffrax use), so that the same tolerances take the same steps as those tools.
    error: ErrorEstimator::Embedded(&[
        35.0 / 384.0 - 1951.0 / 21600.0,
        0.0,
        500.0 / 1113.0 - 22642.0 / 50085.0,
        125.0 / 192.0 - 451.0 / 720.0,
        -2187.0 / 6784.0 + 12231.0 / 42400.0,
        11.0 / 84.0 - 649.0 / 6300.0,
        -1.0 / 60.0,
    ]),
    fsal: true,
    // b_i(theta) expanded from Hairer's contd5 form
    // theta*B + theta(1-theta)(h k1 - B) + theta^2(1-theta)(2B - h k1 - h k7) + theta^2(1-theta)^2 D.
    dense: DenseOutput::Polynomial {
        order: 4,
        extra_c: &[],
        extra_a: &[],
        coeffs: &[
            &[1.0, -2.8535800653862835, 3.0717434641059005, -1.1270175653862835],
            &[0.0, 0.0, 0.0, 0.0],
            &[0.0, 4.023133379230305, -6.249321565289, 2.675424484351598],
            &[0.0, -3.7324019615885042, 10.068970589843675, -5.685526961588504],
            &[0.0, 2.5548038301849423, -6.399112377351017, 3.5219323679207912],
            &[0.0, -1.3744241142186024, 3.272657752246729, -1.7672812570757455],
            &[0.0, 1.3824689317781436, -3.764937863556287, 2.382468931778144],
        ],
    },
    citation: "J. R. Dormand, P. J. Prince, A family of embedded Runge-Kutta formulae, J. Comput. Appl. Math. 6 (1980) 19-26; embedded weights: L. F. Shampine, Some practical Runge-Kutta formulas, Math. Comp. 46 (1986) 135-150; dense output: Hairer, Norsett, Wanner, Solving ODEs I, 2nd ed., sec. II.6",
};
