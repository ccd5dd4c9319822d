//! MLP problem files: the format of the shared reference vectors, read, validated and solved.
//!
//! A problem is either a whole reference file (its `problem` object is used) or a bare object:
//!
//! ```json
//! { "dtype": "float64", "t": [0, 0.5, 1], "solver": "dopri5", "rtol": 1e-6, "atol": 1e-8,
//!   "step_size": null, "max_steps": 10000,
//!   "weights": { "W1": [[..]], "b1": [..], "W2": [[..]], "b2": [..] },
//!   "y0": [[..], ..] }
//! ```
//!
//! with `f(t, y) = W2 tanh(W1 y + b1) + b2` applied to each row of `y0` (`[batch][dim]`).
//! The loss reported is the sum of squares of all outputs, `L = sum_k sum ||y(t_k)||^2`.

use nodal_solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal_solve::mlp::Mlp;
use nodal_solve::per_sample::{per_sample_gradients, solve_per_sample};
use nodal_solve::{Record, RmsNorm, Scalar, SolveError, SolveOptions, Stats, method_by_name};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;
use thiserror::Error;

/// Why a problem file could not be used.
#[derive(Debug, Error)]
pub enum ProblemError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path}: invalid problem JSON: {source}")]
    Json {
        /// File path.
        path: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// A field has an invalid value.
    #[error("{path}: field `{field}`: {reason}")]
    Field {
        /// File path.
        path: String,
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Replace the non-standard JSON tokens `NaN`, `Infinity` and `-Infinity` (which Python's
/// `json.dumps` writes) outside string literals by `null`, which the numeric fields read as NaN.
fn nan_tokens_to_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_str, mut escaped) = (false, false);
    let mut i = 0;
    while let Some(ch) = text[i..].chars().next() {
        if in_str {
            match (escaped, ch) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else if ch == '"' {
            in_str = true;
        } else if let Some(tok) = ["-Infinity", "Infinity", "NaN"].iter().find(|t| text[i..].starts_with(**t)) {
            out.push_str("null");
            i += tok.len();
            continue;
        }
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Numbers where `null` (or `NaN` in the file) stands for NaN.
mod nullable {
    use serde::{Deserialize, Deserializer};

    fn f(v: Option<f64>) -> f64 {
        v.unwrap_or(f64::NAN)
    }
    pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?.into_iter().map(f).collect())
    }
    pub fn mat<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        Ok(Vec::<Vec<Option<f64>>>::deserialize(d)?.into_iter().map(|r| r.into_iter().map(f).collect()).collect())
    }
}

/// Weights of the MLP, in the reference layout.
#[derive(Debug, Clone, Deserialize)]
#[allow(non_snake_case)]
pub struct MlpWeights {
    /// `[hidden][dim]`.
    #[serde(deserialize_with = "nullable::mat")]
    pub W1: Vec<Vec<f64>>,
    /// `[hidden]`.
    #[serde(deserialize_with = "nullable::vec")]
    pub b1: Vec<f64>,
    /// `[dim][hidden]`.
    #[serde(deserialize_with = "nullable::mat")]
    pub W2: Vec<Vec<f64>>,
    /// `[dim]`.
    #[serde(deserialize_with = "nullable::vec")]
    pub b2: Vec<f64>,
}

/// A parsed, validated problem.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    /// Element type (default float64).
    #[serde(default)]
    pub dtype: Dtype,
    /// Output times; `t[0]` is the start.
    pub t: Vec<f64>,
    /// Method name (`"dopri5"`, `"tsit5"`, `"bosh3"`, `"dopri8"`, `"rk4"`, ...).
    pub solver: String,
    /// Relative tolerance (default 1e-6).
    pub rtol: Option<f64>,
    /// Absolute tolerance (default 1e-8).
    pub atol: Option<f64>,
    /// Fixed step size (fixed-step solvers).
    pub step_size: Option<f64>,
    /// Step limit (default 10 000).
    pub max_steps: Option<usize>,
    /// MLP weights.
    pub weights: MlpWeights,
    /// Initial states `[batch][dim]` (`null` or `NaN` entries are NaN: that row fails).
    #[serde(deserialize_with = "nullable::mat")]
    pub y0: Vec<Vec<f64>>,
    /// How the batch is solved (default joint).
    #[serde(default)]
    pub batch_mode: BatchMode,
    /// Relative tolerance of the adjoint's reverse solve (default: `rtol`).
    #[serde(default)]
    pub adjoint_rtol: Option<f64>,
    /// Absolute tolerance of the adjoint's reverse solve (default: `atol`).
    #[serde(default)]
    pub adjoint_atol: Option<f64>,
    /// Error control on `y` and `a` only in the adjoint's reverse solve (default false).
    #[serde(default)]
    pub adjoint_seminorm: Option<bool>,
}

/// Element type of a problem's solve: `"float32"` or `"float64"` in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum Dtype {
    /// 32-bit floats.
    Float32,
    /// 64-bit floats (the default).
    #[default]
    Float64,
}

impl TryFrom<String> for Dtype {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "float32" => Ok(Self::Float32),
            "float64" => Ok(Self::Float64),
            _ => Err(format!("dtype must be \"float64\" or \"float32\", got {s:?}")),
        }
    }
}

/// How a problem's batch is solved: `"joint"` or `"per_sample"` in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum BatchMode {
    /// The batch is one ODE with one step size (the default; torchdiffeq's and diffrax's way).
    #[default]
    Joint,
    /// Every row takes its own steps ([`nodal_solve::per_sample`]).
    PerSample,
}

impl TryFrom<String> for BatchMode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "joint" => Ok(Self::Joint),
            "per_sample" => Ok(Self::PerSample),
            _ => Err(format!("batch_mode must be \"joint\" or \"per_sample\", got {s:?}")),
        }
    }
}

impl Problem {
    /// Read a problem from a JSON file (a whole reference file or a bare problem object).
    pub fn from_file(path: &Path) -> Result<Self, ProblemError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProblemError::Io { path: p.clone(), source })?;
        Self::from_json_str(&text, &p)
    }

    /// Parse and validate; `origin` names the source in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, ProblemError> {
        let jerr = |source| ProblemError::Json { path: origin.to_string(), source };
        let mut v: Value = serde_json::from_str(&nan_tokens_to_null(text)).map_err(jerr)?;
        if let Some(inner) = v.get_mut("problem") {
            v = inner.take();
        }
        let p: Problem = serde_json::from_value(v).map_err(jerr)?;
        p.validate(origin)?;
        Ok(p)
    }

    /// Input width.
    pub fn dim(&self) -> usize {
        self.weights.b2.len()
    }

    /// Hidden width.
    pub fn hidden(&self) -> usize {
        self.weights.b1.len()
    }

    fn validate(&self, origin: &str) -> Result<(), ProblemError> {
        let bad = |field: &'static str, reason: String| Err(ProblemError::Field { path: origin.to_string(), field, reason });
        if method_by_name(&self.solver).is_none() {
            let names: Vec<&str> = nodal_solve::METHODS.iter().map(|m| m.name).collect();
            return bad("solver", format!("unknown solver {:?}; known: {}", self.solver, names.join(", ")));
        }
        let (d, h) = (self.dim(), self.hidden());
        if d == 0 || h == 0 {
            return bad("weights", "b1 and b2 must be non-empty".into());
        }
        let w = &self.weights;
        if w.W1.len() != h || w.W1.iter().any(|r| r.len() != d) {
            return bad("weights.W1", format!("must be [hidden={h}][dim={d}]"));
        }
        if w.W2.len() != d || w.W2.iter().any(|r| r.len() != h) {
            return bad("weights.W2", format!("must be [dim={d}][hidden={h}]"));
        }
        let all_w = w.W1.iter().flatten().chain(&w.b1).chain(w.W2.iter().flatten()).chain(&w.b2);
        if all_w.clone().any(|x| !x.is_finite()) {
            return bad("weights", "contain a non-finite value".into());
        }
        if self.y0.is_empty() || self.y0.iter().any(|r| r.len() != d) {
            return bad("y0", format!("must be a non-empty [batch][dim={d}] array"));
        }
        if self.t.iter().any(|t| !t.is_finite()) {
            return bad("t", "times must be finite".into());
        }
        if self.t.is_empty() {
            return bad("t", "must hold at least one time".into());
        }
        if let Some(h) = self.step_size
            && !(h.is_finite() && h > 0.0)
        {
            return bad("step_size", format!("must be positive and finite, got {h}"));
        }
        Ok(())
    }

    /// Flat parameters `[W1, b1, W2, b2]`.
    pub fn flat_params<T: Scalar>(&self) -> Vec<T> {
        let w = &self.weights;
        w.W1.iter().flatten().chain(&w.b1).chain(w.W2.iter().flatten()).chain(&w.b2).map(|&x| T::from_f64(x)).collect()
    }

    /// Options of the adjoint's reverse solve from the file's fields.
    pub fn adjoint_options(&self) -> AdjointOptions {
        let o = self.options();
        let (r, a) = (self.adjoint_rtol.unwrap_or(o.rtol), self.adjoint_atol.unwrap_or(o.atol));
        AdjointOptions { solve: o.with_tol(r, a), seminorm: self.adjoint_seminorm.unwrap_or(false) }
    }

    /// Solver options from the file's fields.
    pub fn options(&self) -> SolveOptions {
        let tab = method_by_name(&self.solver).expect("validated");
        let mut o = SolveOptions::new(tab).with_tol(self.rtol.unwrap_or(1e-6), self.atol.unwrap_or(1e-8));
        if let Some(h) = self.step_size {
            o = o.with_fixed_step(h);
        }
        if let Some(m) = self.max_steps {
            o = o.with_max_steps(m);
        }
        o
    }
}

/// Result of [`run_problem`]: the JSON to print, and the solve error if the solve failed.
pub struct ProblemRun {
    /// The output object.
    pub json: Value,
    /// The failure, if any (the JSON then holds the partial solution).
    pub error: Option<SolveError>,
    /// Rows that failed in per-sample mode (the others are complete).
    pub failed_rows: usize,
}

fn to_nested<T: Scalar>(flat: &[T], dim: usize) -> Vec<Vec<f64>> {
    flat.chunks(dim).map(|r| r.iter().map(|x| x.to_f64()).collect()).collect()
}

fn stats_json(s: &Stats) -> Value {
    json!({ "nfe": s.nfe, "nvjp": s.nvjp, "accepted": s.accepted, "rejected": s.rejected })
}

/// Solve a problem, optionally with gradients of `L = sum of squares of all ys`.
pub fn run_problem(p: &Problem, grad: Option<GradMethod>, want_t: bool) -> ProblemRun {
    match p.dtype {
        Dtype::Float32 => run_typed::<f32>(p, grad, want_t),
        Dtype::Float64 => run_typed::<f64>(p, grad, want_t),
    }
}

fn grads_json<T: Scalar>(y0: &[T], gp: &[T], d: usize, h: usize) -> Value {
    let gp: Vec<f64> = gp.iter().map(|x| x.to_f64()).collect();
    let (o_b1, o_w2, o_b2) = (h * d, h * d + h, 2 * h * d + h);
    json!({
        "y0": to_nested(y0, d),
        "W1": gp[..o_b1].chunks(d).collect::<Vec<_>>(),
        "b1": &gp[o_b1..o_w2],
        "W2": gp[o_w2..o_b2].chunks(h).collect::<Vec<_>>(),
        "b2": &gp[o_b2..],
    })
}

fn run_per_sample<T: Scalar>(p: &Problem, grad: Option<GradMethod>) -> ProblemRun {
    let (d, h) = (p.dim(), p.hidden());
    let mut mlp = Mlp::<T>::new(d, h, p.flat_params()).expect("validated shapes");
    let y0: Vec<T> = p.y0.iter().flatten().map(|&x| T::from_f64(x)).collect();
    let opts = p.options();
    let batch = p.y0.len();
    let ts = vec![p.t.clone(); batch];
    let start = Instant::now();
    let sol = match solve_per_sample(&mut mlp, &y0, d, &ts, &opts, grad.map_or(Record::None, |g| g.record(&p.t, opts.step))) {
        Ok(s) => s,
        Err(e) => return ProblemRun { json: json!({ "error": e.to_string() }), error: Some(e), failed_rows: 0 },
    };
    let seconds = start.elapsed().as_secs_f64();
    let failed_rows = sol.row_status.iter().filter(|s| s.is_some()).count();
    let loss: f64 = sol.ys.iter().flatten().map(|x| x.to_f64()).filter(|x| x.is_finite()).map(|x| x * x).sum();
    let ys: Vec<Vec<Vec<f64>>> = sol.ys.iter().map(|y| to_nested(y, d)).collect();
    let accepted: usize = sol.row_stats.iter().map(|s| s.accepted).sum();
    let rejected: usize = sol.row_stats.iter().map(|s| s.rejected).sum();
    let status: Vec<String> = sol.row_status.iter().map(|s| s.as_ref().map_or("ok".to_string(), |e| e.to_string())).collect();
    let mut out = json!({
        "ys": ys, "loss": loss, "seconds": seconds, "batch_mode": "per_sample", "row_status": status,
        "stats": { "nfe": sol.calls, "accepted": accepted, "rejected": rejected,
                   "row_nfe": sol.row_stats.iter().map(|s| s.nfe).collect::<Vec<_>>(),
                   "row_accepted": sol.row_stats.iter().map(|s| s.accepted).collect::<Vec<_>>(),
                   "row_rejected": sol.row_stats.iter().map(|s| s.rejected).collect::<Vec<_>>(),
                   "row_evaluations": sol.row_evaluations },
    });
    if let Some(method) = grad {
        let ybar: Vec<Vec<T>> = sol.ys.iter().map(|y| y.iter().map(|&x| if x.is_finite() { x + x } else { T::ZERO }).collect()).collect();
        let start = Instant::now();
        match per_sample_gradients(&mut mlp, &sol, &ts, &ybar, d, method, &opts, &p.adjoint_options()) {
            Ok((g, per_row)) => {
                out["grads"] = grads_json(&g.y0, &g.params, d, h);
                out["backward_stats"] = stats_json(&g.stats);
                out["backward_stats"]["row_nfe"] = json!(per_row.iter().map(|s| s.nfe).collect::<Vec<_>>());
                out["backward_seconds"] = json!(start.elapsed().as_secs_f64());
                out["grad_method"] = json!(format!("{method:?}").to_lowercase());
            }
            Err(e) => {
                out["error"] = json!(format!("backward solve failed: {e}"));
                return ProblemRun { json: out, error: Some(e), failed_rows };
            }
        }
    }
    ProblemRun { json: out, error: None, failed_rows }
}

fn run_typed<T: Scalar>(p: &Problem, grad: Option<GradMethod>, want_t: bool) -> ProblemRun {
    if p.batch_mode == BatchMode::PerSample {
        return run_per_sample::<T>(p, grad);
    }
    let (d, h) = (p.dim(), p.hidden());
    let mut mlp = Mlp::<T>::new(d, h, p.flat_params()).expect("validated shapes");
    let y0: Vec<T> = p.y0.iter().flatten().map(|&x| T::from_f64(x)).collect();
    let opts = p.options();
    let start = Instant::now();
    // Without gradients, the adjoint's recording (none) is the plain solve's.
    let res = solve_for_gradients(&mut mlp, &y0, &p.t, &opts, &RmsNorm, grad.unwrap_or(GradMethod::Adjoint));
    let seconds = start.elapsed().as_secs_f64();
    let (sol, backward) = match res {
        Ok(x) => x,
        Err(fail) => {
            let ys: Vec<Vec<Vec<f64>>> = fail.partial.ys.iter().map(|y| to_nested(y, d)).collect();
            let json = json!({ "ys": ys, "stats": stats_json(&fail.partial.stats), "seconds": seconds, "error": fail.error.to_string() });
            return ProblemRun { json, error: Some(fail.error), failed_rows: 0 };
        }
    };
    let loss: f64 = sol.ys.iter().flatten().map(|x| x.to_f64() * x.to_f64()).sum();
    let ys: Vec<Vec<Vec<f64>>> = sol.ys.iter().map(|y| to_nested(y, d)).collect();
    let mut out = json!({ "ys": ys, "loss": loss, "stats": stats_json(&sol.stats), "seconds": seconds, "batch_mode": "joint" });
    out["stats"]["row_evaluations"] = json!(sol.stats.nfe * p.y0.len());
    if let Some(method) = grad {
        let ybar: Vec<Vec<T>> = sol.ys.iter().map(|y| y.iter().map(|&x| x + x).collect()).collect();
        let start = Instant::now();
        let g = backward.gradients(&mut mlp, &p.t, &sol.ys, &ybar, &p.adjoint_options(), want_t);
        let bseconds = start.elapsed().as_secs_f64();
        match g {
            Ok(g) => {
                let mut grads = grads_json(&g.y0, &g.params, d, h);
                if let Some(tg) = g.ts {
                    grads["t"] = json!(tg);
                }
                out["grads"] = grads;
                out["backward_stats"] = stats_json(&g.stats);
                out["backward_seconds"] = json!(bseconds);
                out["grad_method"] = json!(format!("{method:?}").to_lowercase());
            }
            Err(e) => {
                out["error"] = json!(format!("backward solve failed: {e}"));
                return ProblemRun { json: out, error: Some(e), failed_rows: 0 };
            }
        }
    }
    ProblemRun { json: out, error: None, failed_rows: 0 }
}
