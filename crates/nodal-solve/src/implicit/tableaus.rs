//! Coefficients of the implicit methods, as data.
//!
//! - ESDIRK (explicit first stage, singly diagonally implicit Runge-Kutta): stage `i >= 1` solves
//!   `z_i = y0 + h sum_{j<i} a_ij k_j + h gamma k_i`, `k_i = f(t0 + c_i h, z_i)`. Kvaerno's
//!   methods (A. Kvaerno, "Singly diagonally implicit Runge-Kutta methods with an explicit first
//!   stage", BIT 44, 2004) are stiffly accurate (the last stage is the solution) and L-stable.
//!   The predictor rows give each stage's first Newton guess `k_i ~ sum_j alpha_ij k_j`
//!   (coefficients as published with diffrax's implementation).
//! - Rosenbrock in Hairer-Wanner's transformed form ("Solving ODEs II", IV.7): with
//!   `W = I / (h gamma) - J`, stage `i` solves
//!   `W u_i = f(t0 + alpha_i h, y0 + sum_{j<i} a_ij u_j) + sum_{j<i} (c_ij / h) u_j + h gamma_i f_t`,
//!   and `y1 = y0 + sum m_i u_i`. Rodas5 is Di Marzo's 5(4) pair (G. Di Marzo, "RODAS5(4)",
//!   University of Geneva, 1993): the last stage's argument is the embedded 4th-order solution
//!   `y_hat`, and `y1 = y_hat + u_8`, so the error estimate is `u_8`. (Propagating `y_hat`
//!   instead, with weights ending `1, 1, 0`, gives a method of order 4 only: the order test in
//!   `tests/stiff.rs` and an independent script showed global slopes of 4.3-4.5 that way and
//!   5.0-5.1 this way.)

/// An ESDIRK method.
#[derive(Debug)]
pub struct EsdirkTableau {
    /// Short name.
    pub name: &'static str,
    /// Order of the solution (the controller's exponent uses it).
    pub order: u32,
    /// The diagonal coefficient of every implicit stage.
    pub gamma: f64,
    /// Stage times `c_i` (`c_0 = 0`).
    pub c: &'static [f64],
    /// Strictly lower rows `a_i` (`a[0]` is empty).
    pub a: &'static [&'static [f64]],
    /// Solution weights (the diagonal included: `b[s-1] = gamma`).
    pub b: &'static [f64],
    /// Error weights `b - b_hat`.
    pub e: &'static [f64],
    /// Newton predictor rows (`predictor[0]` is empty; each row sums to 1).
    pub predictor: &'static [&'static [f64]],
}

const K3_G: f64 = 0.43586652150;
const K3_A31: f64 = (-4.0 * K3_G * K3_G + 6.0 * K3_G - 1.0) / (4.0 * K3_G);
const K3_A32: f64 = (-2.0 * K3_G + 1.0) / (4.0 * K3_G);
const K3_A41: f64 = (6.0 * K3_G - 1.0) / (12.0 * K3_G);
const K3_A42: f64 = -1.0 / ((24.0 * K3_G - 12.0) * K3_G);
const K3_A43: f64 = (-6.0 * K3_G * K3_G + 6.0 * K3_G - 1.0) / (6.0 * K3_G - 3.0);
const K3_TH: f64 = 1.0 / (2.0 * K3_G);

/// Kvaerno's 3(2) method: 4 stages, L-stable, stiffly accurate.
pub static KVAERNO3: EsdirkTableau = EsdirkTableau {
    name: "kvaerno3",
    order: 3,
    gamma: K3_G,
    c: &[0.0, 2.0 * K3_G, 1.0, 1.0],
    a: &[&[], &[K3_G], &[K3_A31, K3_A32], &[K3_A41, K3_A42, K3_A43]],
    b: &[K3_A41, K3_A42, K3_A43, K3_G],
    e: &[K3_A41 - K3_A31, K3_A42 - K3_A32, K3_A43 - K3_G, K3_G],
    predictor: &[&[], &[1.0], &[1.0 - K3_TH, K3_TH], &[K3_A31, K3_A32, K3_G]],
};

const K5_G: f64 = 0.26;
const K5_A6: [f64; 5] = [0.13855640231268224, 0.0, -0.04245337201752043, 0.02446657898003141, 0.61943039072480676];
const K5_A7: [f64; 6] = [0.13659751177640291, 0.0, -0.05496908796538376, -0.04118626728321046, 0.62993304899016403, 0.06962479448202728];

/// Kvaerno's 5(4) method: 7 stages, L-stable, stiffly accurate.
pub static KVAERNO5: EsdirkTableau = EsdirkTableau {
    name: "kvaerno5",
    order: 5,
    gamma: K5_G,
    c: &[0.0, 0.52, 1.230333209967908, 0.8957659843500759, 0.43639360985864756, 1.0, 1.0],
    a: &[
        &[],
        &[K5_G],
        &[0.13, 0.84033320996790809],
        &[0.22371961478320505, 0.47675532319799699, -0.06470895363112615],
        &[0.16648564323248321, 0.10450018841591720, 0.03631482272098715, -0.13090704451073998],
        &K5_A6,
        &K5_A7,
    ],
    b: &[K5_A7[0], K5_A7[1], K5_A7[2], K5_A7[3], K5_A7[4], K5_A7[5], K5_G],
    e: &[K5_A7[0] - K5_A6[0], K5_A7[1] - K5_A6[1], K5_A7[2] - K5_A6[2], K5_A7[3] - K5_A6[3], K5_A7[4] - K5_A6[4], K5_A7[5] - K5_G, K5_G],
    predictor: &[
        &[],
        &[1.0],
        &[-1.366025403784441, 2.3660254037844357],
        &[-0.19650552613122207, 0.8113579546496623, 0.38514757148155954],
        &[0.10375304369958693, 0.937994698066431, -0.04174774176601781, 0.0],
        &[-0.17281112873898072, 0.6235784481025847, 0.5492326806363959, 0.0, 0.0],
        &[K5_A6[0], K5_A6[1], K5_A6[2], K5_A6[3], K5_A6[4], K5_G],
    ],
};

/// A Rosenbrock method in transformed form (see the module docs).
#[derive(Debug)]
pub struct RosenbrockTableau {
    /// Short name.
    pub name: &'static str,
    /// Order of the solution.
    pub order: u32,
    /// The diagonal `gamma` of `W = I / (h gamma) - J`.
    pub gamma: f64,
    /// Stage times `alpha_i`.
    pub alpha: &'static [f64],
    /// Time-derivative weights `gamma_i` (row sums of the method's gamma matrix).
    pub gamma_sum: &'static [f64],
    /// Strictly lower rows `a_i` of the stage arguments.
    pub a: &'static [&'static [f64]],
    /// Strictly lower rows `c_i` of the stage right-hand sides.
    pub c: &'static [&'static [f64]],
    /// Solution weights `m_i`.
    pub m: &'static [f64],
    /// Error weights `m_i - m_hat_i`.
    pub e: &'static [f64],
}

const R5_A6: [f64; 5] = [-14.09640773051259, 6.925207756232704, -41.47510893210728, 2.343771018586405, 24.13215229196062];

/// Rodas5: 8 stages, order 5(4), L-stable, stiffly accurate.
pub static RODAS5: RosenbrockTableau = RosenbrockTableau {
    name: "rodas5",
    order: 5,
    gamma: 0.19,
    alpha: &[0.0, 0.38, 0.3878509998321533, 0.4839718937873840, 0.4570477008819580, 1.0, 1.0, 1.0],
    gamma_sum: &[0.19, -0.1823079225333714636, -0.319231832186874912, 0.3449828624725343, -0.377417564392089818, 0.0, 0.0, 0.0],
    a: &[
        &[],
        &[2.0],
        &[3.040894194418781, 1.041747909077569],
        &[2.576417536461461, 1.622083060776640, -0.9089668560264532],
        &[2.760842080225597, 1.446624659844071, -0.3036980084553738, 0.2877498600325443],
        &R5_A6,
        &[R5_A6[0], R5_A6[1], R5_A6[2], R5_A6[3], R5_A6[4], 1.0],
        &[R5_A6[0], R5_A6[1], R5_A6[2], R5_A6[3], R5_A6[4], 1.0, 1.0],
    ],
    c: &[
        &[],
        &[-10.31323885133993],
        &[-21.04823117650003, -7.234992135176716],
        &[32.22751541853323, -4.943732386540191, 19.44922031041879],
        &[-20.69865579590063, -8.816374604402768, 1.260436877740897, -0.7495647613787146],
        &[-46.22004352711257, -17.49534862857472, -289.6389582892057, 93.60855400400906, 318.3822534212147],
        &[34.20013733472935, -14.15535402717690, 57.82335640988400, 25.83362985412365, 1.408950972071624, -6.551835421242162],
        &[
            42.57076742291101,
            -13.80770672017997,
            93.98938432427124,
            18.77919633714503,
            -31.58359187223370,
            -6.685968952921985,
            -5.810979938412932,
        ],
    ],
    m: &[R5_A6[0], R5_A6[1], R5_A6[2], R5_A6[3], R5_A6[4], 1.0, 1.0, 1.0],
    e: &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Consistency of the ESDIRK data: `c_i = sum_j a_ij + gamma`, `b` sums to 1, the error
    /// weights sum to 0, predictor rows sum to 1, and stiff accuracy (`b` is the last row).
    #[test]
    fn esdirk_tables_are_consistent() {
        for tab in [&KVAERNO3, &KVAERNO5] {
            let s = tab.c.len();
            assert_eq!(tab.a.len(), s);
            for i in 1..s {
                let row: f64 = tab.a[i].iter().sum::<f64>() + tab.gamma;
                assert!((row - tab.c[i]).abs() < 1e-9, "{} row {i}: {row} vs {}", tab.name, tab.c[i]);
                assert!((tab.predictor[i].iter().sum::<f64>() - 1.0).abs() < 1e-12, "{} predictor {i}", tab.name);
                assert_eq!(tab.a[i].len(), i);
            }
            assert!((tab.b.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{}", tab.name);
            assert!(tab.e.iter().sum::<f64>().abs() < 1e-12, "{}", tab.name);
            assert_eq!(&tab.b[..s - 1], tab.a[s - 1], "{} is stiffly accurate", tab.name);
        }
    }

    /// Structure of Rodas5: lower-triangular rows; the last stage's argument is the embedded
    /// solution (`a_8 = m[..7]`) and the error estimate is the last increment.
    #[test]
    fn rodas5_table_has_its_embedded_structure() {
        let t = &RODAS5;
        let s = t.alpha.len();
        for i in 1..s {
            assert_eq!((t.a[i].len(), t.c[i].len()), (i, i));
        }
        assert_eq!(&t.m[..s - 1], t.a[s - 1]);
        assert_eq!((t.m[s - 1], t.e[s - 1], t.alpha[s - 1]), (1.0, 1.0, 1.0));
        assert!(t.e[..s - 1].iter().all(|&e| e == 0.0));
    }
}
