//! Learning smooth homeomorphisms: a neural ODE deforms a circle onto a target shape, beside an
//! MLP and a ResNet of similar size doing the same. The ODE's time-1 flow is a diffeomorphism of
//! the plane (its Jacobian determinant is `exp` of the integrated divergence, so positive), so
//! the deformed curve and background grid can never fold or cross; the unconstrained maps can.
//! A figure eight, which crosses itself, is out of any homeomorphism's reach; lifted to 3-D (an
//! augmented ODE) and projected back, it is reachable (Dupont et al. 2019's argument in the
//! plane).
//!
//! - [`curves`]: the source circle and the targets.
//! - [`intersections`]: counting self-intersections and grid folds.
//! - [`maps`]: the maps and their exact gradients.
//! - [`experiment`]: training, measuring and the table.

pub mod curves;
pub mod experiment;
pub mod intersections;
pub mod maps;

use thiserror::Error;

/// Why a shape experiment could not run.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ShapeError {
    /// An ODE solve failed (the learned field became too stiff for the step budget).
    #[error("solve failed: {0}")]
    Solve(String),
    /// Settings that do not make sense.
    #[error("invalid settings: {0}")]
    Config(String),
}
