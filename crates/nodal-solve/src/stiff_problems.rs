//! The stiff test problems of the Hairer-Wanner / Mazzia-Magherini IVP test set that nodal's
//! stiff solvers are measured on, with their standard end times and high-precision reference
//! values at those times.
//!
//! | problem | dimension | span | stiffness |
//! |---|---|---|---|
//! | Robertson (chemical kinetics) | 3 | `[0, 1e11]` | rate constants 0.04, 1e4, 3e7 |
//! | Van der Pol, `mu = 1000` | 2 | `[0, 3000]` | relaxation oscillation, eigenvalues to `-2 mu` |
//! | HIRES (plant physiology, Schäfer 1975) | 8 | `[0, 321.8122]` | eigenvalues to about `-1e4` |
//! | OREGO (Oregonator, Field-Noyes 1974) | 3 | `[0, 360]` | limit cycle with fast jumps |
//!
//! References: Robertson, HIRES and OREGO are the values published with the test set (Mazzia
//! and Magherini, "Test Set for IVP Solvers", release 2.4, 2008), confirmed by scipy's Radau at
//! rtol 1e-13 with analytic Jacobians to 1e-12 relative (`bench/stiff_anchors.py
//! --make-reference`); Van der Pol at `t = 3000` has no published value and is that Radau
//! solve, which Radau at 1e-12 and diffrax's Kvaerno5 at 1e-10 confirm to 1e-12 and 2e-11
//! relative (`bench/stiff_reference.json`).

/// A stiff initial-value problem with a reference solution at its end time.
#[derive(Debug, Clone, Copy)]
pub struct StiffProblem {
    /// Name used on the command line (`robertson`, `vdp1000`, `hires`, `orego`).
    pub name: &'static str,
    /// Initial state at `t = 0`.
    pub y0: &'static [f64],
    /// Standard end time.
    pub t_end: f64,
    /// Reference solution at `t_end`.
    pub reference: &'static [f64],
    /// Right-hand side `dy = f(t, y)`.
    pub f: fn(f64, &[f64], &mut [f64]),
}

impl StiffProblem {
    /// Mixed error of `y` against the reference: `max_i |y_i - ref_i| / (|ref_i| + atol)`.
    pub fn error(&self, y: &[f64], atol: f64) -> f64 {
        y.iter().zip(self.reference).map(|(v, r)| (v - r).abs() / (r.abs() + atol)).fold(0.0, f64::max)
    }
}

fn robertson(_t: f64, y: &[f64], dy: &mut [f64]) {
    let (k1, k2, k3) = (0.04, 3e7, 1e4);
    dy[0] = -k1 * y[0] + k3 * y[1] * y[2];
    dy[1] = k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] * y[1];
    dy[2] = k2 * y[1] * y[1];
}

fn vdp1000(_t: f64, y: &[f64], dy: &mut [f64]) {
    let mu = 1000.0;
    dy[0] = y[1];
    dy[1] = mu * (1.0 - y[0] * y[0]) * y[1] - y[0];
}

fn hires(_t: f64, y: &[f64], dy: &mut [f64]) {
    dy[0] = -1.71 * y[0] + 0.43 * y[1] + 8.32 * y[2] + 0.0007;
    dy[1] = 1.71 * y[0] - 8.75 * y[1];
    dy[2] = -10.03 * y[2] + 0.43 * y[3] + 0.035 * y[4];
    dy[3] = 8.32 * y[1] + 1.71 * y[2] - 1.12 * y[3];
    dy[4] = -1.745 * y[4] + 0.43 * y[5] + 0.43 * y[6];
    dy[5] = -280.0 * y[5] * y[7] + 0.69 * y[3] + 1.71 * y[4] - 0.43 * y[5] + 0.69 * y[6];
    dy[6] = 280.0 * y[5] * y[7] - 1.81 * y[6];
    dy[7] = -dy[6];
}

fn orego(_t: f64, y: &[f64], dy: &mut [f64]) {
    let (s, w, q) = (77.27, 0.161, 8.375e-6);
    dy[0] = s * (y[1] + y[0] * (1.0 - q * y[0] - y[1]));
    dy[1] = (y[2] - (1.0 + y[0]) * y[1]) / s;
    dy[2] = w * (y[0] - y[2]);
}

/// Robertson's chemical kinetics at `t = 1e11`.
pub const ROBERTSON: StiffProblem = StiffProblem {
    name: "robertson",
    y0: &[1.0, 0.0, 0.0],
    t_end: 1e11,
    reference: &[0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050],
    f: robertson,
};

/// Van der Pol, `y'' = mu (1 - y^2) y' - y` with `mu = 1000`, `y(0) = 2`, `y'(0) = 0`, at
/// `t = 3000`.
pub const VDP1000: StiffProblem =
    StiffProblem { name: "vdp1000", y0: &[2.0, 0.0], t_end: 3000.0, reference: &VDP1000_REFERENCE, f: vdp1000 };

/// Reference of [`VDP1000`] (see the module docs).
pub const VDP1000_REFERENCE: [f64; 2] = [-1.5106069367448336, 0.0011783800007294709];

/// HIRES at `t = 321.8122`.
pub const HIRES: StiffProblem = StiffProblem {
    name: "hires",
    y0: &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057],
    t_end: 321.8122,
    reference: &[
        0.7371312573325668e-3,
        0.1442485726316185e-3,
        0.5888729740967575e-4,
        0.1175651343283149e-2,
        0.2386356198831331e-2,
        0.6238968252742796e-2,
        0.2849998395185769e-2,
        0.2850001604814231e-2,
    ],
    f: hires,
};

/// The Oregonator at `t = 360`.
pub const OREGO: StiffProblem = StiffProblem {
    name: "orego",
    y0: &[1.0, 2.0, 3.0],
    t_end: 360.0,
    reference: &[0.1000814870318523e1, 0.1228178521549917e4, 0.1320554942846706e3],
    f: orego,
};

/// Every stiff test problem.
pub const STIFF_PROBLEMS: [StiffProblem; 4] = [ROBERTSON, VDP1000, HIRES, OREGO];

/// The problem called `name`.
pub fn stiff_problem(name: &str) -> Option<StiffProblem> {
    STIFF_PROBLEMS.into_iter().find(|p| p.name == name)
}
