//! Neural-SDE problem files: the format of the shared SDE reference vectors
//! (`sde_vectors_seed0.json`), read and validated.
//!
//! A problem is a whole reference file (its `problem` object is used) or a bare object:
//!
//! ```json
//! { "dtype": "float64", "t0": 0, "dt": 0.015625, "n_steps": 64, "out_steps": [32, 64],
//!   "weights": { "W1": [[..]], "b1": [..], "W2": [[..]], "b2": [..], "V": [[..]], "c": [..] },
//!   "y0": [[..], ..], "dW": [[[..]]] }
//! ```
//!
//! Drift `f(y) = W2 tanh(W1 y + b1) + b2`, diagonal diffusion `g(y) = sigmoid(V y + c)`, for
//! each row of `y0` (`[batch][dim]`); `dW[k][b][i] = W_i(t_{k+1}) - W_i(t_k)` for row `b` is the
//! increment consumed by step `k`. When `dW` is absent, a seeded path is drawn (`seed`,
//! default 0). The loss is the sum of squares of the states at every output step.

use crate::problem::ProblemError;
use nodal_solve::Scalar;
use serde::Deserialize;
use std::path::Path;

/// The drift and diffusion weights.
#[derive(Debug, Clone, Deserialize)]
#[allow(non_snake_case)]
pub struct SdeWeights {
    /// `[hidden][dim]`.
    pub W1: Vec<Vec<f64>>,
    /// `[hidden]`.
    pub b1: Vec<f64>,
    /// `[dim][hidden]`.
    pub W2: Vec<Vec<f64>>,
    /// `[dim]`.
    pub b2: Vec<f64>,
    /// `[dim][dim]`.
    pub V: Vec<Vec<f64>>,
    /// `[dim]`.
    pub c: Vec<f64>,
}

/// A neural-SDE problem. See the module docs.
#[derive(Debug, Clone, Deserialize)]
pub struct SdeProblem {
    /// `"float64"` (default) or `"float32"`.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// Start time.
    #[serde(default)]
    pub t0: f64,
    /// Step size.
    pub dt: f64,
    /// Number of steps.
    pub n_steps: usize,
    /// Steps after which the state is output (strictly increasing, at most `n_steps`).
    pub out_steps: Vec<usize>,
    /// Weights.
    pub weights: SdeWeights,
    /// Initial states `[batch][dim]`.
    pub y0: Vec<Vec<f64>>,
    /// Brownian increments `[n_steps][batch][dim]`, or absent for a seeded path.
    #[serde(default, rename = "dW")]
    pub dw: Option<Vec<Vec<Vec<f64>>>>,
    /// Seed of the path drawn when `dW` is absent.
    #[serde(default)]
    pub seed: u64,
}

fn default_dtype() -> String {
    "float64".into()
}

impl SdeProblem {
    /// Read a problem from a JSON file (whole reference file or bare problem object).
    pub fn from_file(path: &Path) -> Result<Self, ProblemError> {
        let text = crate::io::read_text_capped(path, crate::io::MAX_JSON_BYTES, "an SDE problem file")?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Whether a JSON text looks like an SDE problem (has `dW`, `noise_type` or weight `V`).
    pub fn looks_like_sde(text: &str) -> bool {
        text.contains("\"dW\"") || text.contains("\"noise_type\"") || text.contains("\"V\"")
    }

    /// Parse and validate; `origin` names the source in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, ProblemError> {
        let p: SdeProblem = crate::problem::problem_object(text, origin)?;
        p.validate(origin)?;
        Ok(p)
    }

    /// State width.
    pub fn dim(&self) -> usize {
        self.weights.b2.len()
    }

    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.weights.b1.len()
    }

    /// Batch rows.
    pub fn batch(&self) -> usize {
        self.y0.len()
    }

    /// Every check before solving, each naming its field.
    pub fn validate(&self, origin: &str) -> Result<(), ProblemError> {
        let bad = |field: &'static str, reason: String| Err(ProblemError::Field { path: origin.to_string(), field, reason });
        if self.dtype != "float64" && self.dtype != "float32" {
            return bad("dtype", format!("must be \"float64\" or \"float32\", got {:?}", self.dtype));
        }
        let (d, h) = (self.dim(), self.hidden());
        if d == 0 || h == 0 {
            return bad("weights", "b1 and b2 must be non-empty".into());
        }
        let w = &self.weights;
        let mat = |m: &Vec<Vec<f64>>, rows: usize, cols: usize| m.len() == rows && m.iter().all(|r| r.len() == cols);
        if !mat(&w.W1, h, d) {
            return bad("weights.W1", format!("must be [{h}][{d}] (hidden x dim)"));
        }
        if !mat(&w.W2, d, h) {
            return bad("weights.W2", format!("must be [{d}][{h}] (dim x hidden)"));
        }
        if !mat(&w.V, d, d) {
            return bad("weights.V", format!("must be [{d}][{d}] (dim x dim)"));
        }
        if w.c.len() != d {
            return bad("weights.c", format!("must have {d} entries"));
        }
        let all = w.W1.iter().flatten().chain(&w.b1).chain(w.W2.iter().flatten()).chain(&w.b2).chain(w.V.iter().flatten()).chain(&w.c);
        if all.clone().any(|v| !v.is_finite()) {
            return bad("weights", "every weight must be finite".into());
        }
        if !(self.dt.is_finite() && self.dt > 0.0) || !self.t0.is_finite() {
            return bad("dt", format!("t0 must be finite and dt > 0 (got t0 = {}, dt = {})", self.t0, self.dt));
        }
        if self.n_steps == 0 {
            return bad("n_steps", "must be at least 1".into());
        }
        if self.out_steps.is_empty() || self.out_steps.windows(2).any(|p| p[1] <= p[0]) || *self.out_steps.last().unwrap() > self.n_steps {
            return bad("out_steps", format!("must be non-empty, strictly increasing and at most n_steps = {}", self.n_steps));
        }
        if self.y0.is_empty() || self.y0.iter().any(|r| r.len() != d) {
            return bad("y0", format!("must be [batch][{d}] with batch >= 1"));
        }
        if self.y0.iter().flatten().any(|v| !v.is_finite()) {
            return bad("y0", "every entry must be finite".into());
        }
        if let Some(dw) = &self.dw {
            if dw.len() != self.n_steps || dw.iter().any(|s| s.len() != self.batch() || s.iter().any(|r| r.len() != d)) {
                return bad("dW", format!("must be [n_steps = {}][batch = {}][dim = {d}]", self.n_steps, self.batch()));
            }
            if dw.iter().flatten().flatten().any(|v| !v.is_finite()) {
                return bad("dW", "every increment must be finite".into());
            }
        }
        Ok(())
    }

    /// Drift parameters in the fused MLP's flat layout `[W1, b1, W2, b2]`.
    pub fn drift_params<T: Scalar>(&self) -> Vec<T> {
        let w = &self.weights;
        w.W1.iter().flatten().chain(&w.b1).chain(w.W2.iter().flatten()).chain(&w.b2).map(|v| T::from_f64(*v)).collect()
    }

    /// Diffusion parameters `[V, c]`.
    pub fn diffusion_params<T: Scalar>(&self) -> Vec<T> {
        let w = &self.weights;
        w.V.iter().flatten().chain(&w.c).map(|v| T::from_f64(*v)).collect()
    }

    /// `y0` flattened row-major.
    pub fn flat_y0<T: Scalar>(&self) -> Vec<T> {
        self.y0.iter().flatten().map(|v| T::from_f64(*v)).collect()
    }

    /// Stored increments per step, flattened (`[n_steps][batch * dim]`).
    pub fn flat_dw<T: Scalar>(&self) -> Option<Vec<Vec<T>>> {
        self.dw.as_ref().map(|dw| dw.iter().map(|s| s.iter().flatten().map(|v| T::from_f64(*v)).collect()).collect())
    }
}
