//! The SDE step formulas nodal implements, by name.
//!
//! With `h` the step, `w = W(t + h) - W(t)` and `G(y) w` the diffusion times the increment:
//!
//! | scheme | calculus | step | strong order |
//! |---|---|---|---|
//! | `euler_maruyama` | Ito | `y' = y + f h + G(y) w` | 0.5 (1 for additive noise) |
//! | `milstein_ito` | Ito | Euler-Maruyama + [`MilsteinForm::Transposed`] with `q = w^2 - h` | 1 (commutative noise) |
//! | `milstein_ito_commutative` | Ito | Euler-Maruyama + [`MilsteinForm::Commutative`] | 1 (commutative noise) |
//! | `milstein_ito_diag` | Ito | Euler-Maruyama + [`MilsteinForm::DiagonalOnly`] | 1 (when `g_i` depends on `y_i` only) |
//! | `milstein_strat` | Stratonovich | Euler-Maruyama + [`MilsteinForm::Transposed`] with `q = w^2` | 1 (commutative noise) |
//! | `euler_heun` | Stratonovich | `yb = y + G(y) w`; `y' = y + f h + (G(y) + G(yb)) w / 2` | 0.5 (1 for commutative noise) |
//! | `heun` | Stratonovich | `yb = y + f h + G(y) w`; `y' = y + (f(y) + f(yb)) h / 2 + (G(y) + G(yb)) w / 2` | 0.5 (1 commutative) |
//! | `midpoint` | Stratonovich | `yb = y + f h / 2 + G(y) w / 2`; `y' = y + f(yb) h + G(yb) w` | 0.5 (1 commutative) |
//! | `reversible_heun` | Stratonovich | two states, `z' = 2y - z + f(z) h + G(z) w`; `y' = y + (f(z) + f(z')) h / 2 + (G(z) + G(z')) w / 2` (Kidger et al. 2021) | 0.5 (1 commutative); algebraically reversible |
//! | `sri` | Ito (diagonal, scalar or additive noise) | Rößler's SRI (2010), four stages, see [`super::sri`] | 1.5; forward only |
//! | `sra1` | either (additive noise) | Rößler's SRA1 (2010): `H = y + 3/4 f h + 3/2 G K / h`; `y' = y + (f(y) / 3 + 2 f(H) / 3) h + G w`, with `K = ∫ (W(s) - W(t)) ds` | 1.5 (additive noise) |
//!
//! Milstein on diagonal noise needs derivatives of `g`: the three forms coincide only when
//! `g_i` depends on `y_i` alone; none is strong order 1 when the noise is not commutative.

use super::terms::{Calculus, MilsteinForm};

/// An SDE step formula. See the module docs for the formulas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Euler-Maruyama (Ito).
    EulerMaruyama,
    /// Ito Milstein in one of its diagonal-noise forms.
    MilsteinIto(MilsteinForm),
    /// Stratonovich Milstein (transposed form, `q = w^2`).
    MilsteinStrat,
    /// Euler-Heun (Stratonovich).
    EulerHeun,
    /// Stochastic Heun (Stratonovich).
    Heun,
    /// Stochastic midpoint (Stratonovich).
    Midpoint,
    /// Reversible Heun (Stratonovich), Kidger et al. 2021.
    ReversibleHeun,
    /// Rößler's SRA1 for additive noise.
    Sra1,
    /// Rößler's SRI (strong order 1.5, Ito, diagonal noise); forward solves only.
    Sri,
}

/// Every scheme with its name, in the order of the module docs.
pub const SCHEMES: [(&str, Scheme); 11] = [
    ("euler_maruyama", Scheme::EulerMaruyama),
    ("milstein_ito", Scheme::MilsteinIto(MilsteinForm::Transposed)),
    ("milstein_ito_commutative", Scheme::MilsteinIto(MilsteinForm::Commutative)),
    ("milstein_ito_diag", Scheme::MilsteinIto(MilsteinForm::DiagonalOnly)),
    ("milstein_strat", Scheme::MilsteinStrat),
    ("euler_heun", Scheme::EulerHeun),
    ("heun", Scheme::Heun),
    ("midpoint", Scheme::Midpoint),
    ("reversible_heun", Scheme::ReversibleHeun),
    ("sra1", Scheme::Sra1),
    ("sri", Scheme::Sri),
];

impl Scheme {
    /// The scheme called `name` (the names of [`SCHEMES`]; `euler` is Euler-Maruyama).
    pub fn by_name(name: &str) -> Option<Scheme> {
        if name == "euler" {
            return Some(Scheme::EulerMaruyama);
        }
        SCHEMES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// The scheme's name.
    pub fn name(self) -> &'static str {
        SCHEMES.iter().find(|(_, s)| *s == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// The calculus the scheme converges to (`None`: both agree, additive noise).
    pub fn calculus(self) -> Option<Calculus> {
        match self {
            Scheme::EulerMaruyama | Scheme::MilsteinIto(_) | Scheme::Sri => Some(Calculus::Ito),
            Scheme::Sra1 => None,
            _ => Some(Calculus::Stratonovich),
        }
    }

    /// Drift evaluations per step (reversible Heun reuses `f(z')` in the next step).
    pub fn drift_evals(self) -> usize {
        match self {
            Scheme::Heun | Scheme::Midpoint | Scheme::Sra1 => 2,
            Scheme::Sri => 4,
            _ => 1,
        }
    }
}
