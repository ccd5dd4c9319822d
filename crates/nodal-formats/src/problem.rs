//! MLP problem files: the format of the shared reference vectors, read and validated.
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
//!
//! Numbers may also be written `NaN`, `Infinity` or `-Infinity` (as Python's `json.dumps`
//! writes them). In the weights and `y0`, `null` and `NaN` stand for NaN (a NaN row fails in
//! per-sample mode); in an optional field (`rtol`, `step_size`, ...) `null` means absent, and a
//! non-finite value is an error, never a silent default. Files are read with a cap of
//! [`MAX_JSON_BYTES`](crate::io::MAX_JSON_BYTES), parsed straight into the typed fields (no
//! intermediate JSON tree), and every field is validated before anything is solved.

use nodal_solve::grad::AdjointOptions;
use nodal_solve::{Scalar, SolveOptions, method_by_name};
use serde::Deserialize;
use std::path::Path;
use thiserror::Error;

/// Why a problem file could not be used.
#[derive(Debug, Error)]
pub enum ProblemError {
    /// The file could not be read (or is over the size cap).
    #[error("cannot read {0}")]
    Io(#[from] crate::io::FileError),
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

/// Quote the non-standard JSON tokens `NaN`, `Infinity` and `-Infinity` (which Python's
/// `json.dumps` writes) outside string literals, so that the numeric fields read them as the
/// values they name.
fn quote_nan_tokens(text: &str) -> String {
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
            out.push('"');
            out.push_str(tok);
            out.push('"');
            i += tok.len();
            continue;
        }
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Numbers as problem files write them: JSON numbers, or the strings `"NaN"`, `"Infinity"`,
/// `"-Infinity"` (what [`quote_nan_tokens`] makes of the bare tokens); `null` is `None`.
mod lenient {
    use serde::de::{self, Deserializer, Visitor};

    struct Num;
    impl<'de> Visitor<'de> for Num {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number, NaN, Infinity, -Infinity or null")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v {
                "NaN" => Ok(Some(f64::NAN)),
                "Infinity" => Ok(Some(f64::INFINITY)),
                "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    /// One number, `null` or the token.
    #[derive(Clone, Copy)]
    pub struct N(pub Option<f64>);
    impl<'de> serde::Deserialize<'de> for N {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Num).map(N)
        }
    }

    /// An optional number: `null` or absent is `None`; NaN and infinities are kept (and refused
    /// by validation).
    pub fn opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        <N as serde::Deserialize>::deserialize(d).map(|n| n.0)
    }
    /// A vector where `null` is NaN.
    pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(<Vec<N> as serde::Deserialize>::deserialize(d)?.into_iter().map(|n| n.0.unwrap_or(f64::NAN)).collect())
    }
    /// A matrix where `null` is NaN.
    pub fn mat<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        Ok(<Vec<Vec<N>> as serde::Deserialize>::deserialize(d)?
            .into_iter()
            .map(|r| r.into_iter().map(|n| n.0.unwrap_or(f64::NAN)).collect())
            .collect())
    }
}

/// Weights of the MLP, in the reference layout.
#[derive(Debug, Clone, Deserialize)]
#[allow(non_snake_case)]
pub struct MlpWeights {
    /// `[hidden][dim]`.
    #[serde(deserialize_with = "lenient::mat")]
    pub W1: Vec<Vec<f64>>,
    /// `[hidden]`.
    #[serde(deserialize_with = "lenient::vec")]
    pub b1: Vec<f64>,
    /// `[dim][hidden]`.
    #[serde(deserialize_with = "lenient::mat")]
    pub W2: Vec<Vec<f64>>,
    /// `[dim]`.
    #[serde(deserialize_with = "lenient::vec")]
    pub b2: Vec<f64>,
}

/// A parsed, validated problem.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    /// Element type (default float64).
    #[serde(default)]
    pub dtype: Dtype,
    /// Output times; `t[0]` is the start.
    #[serde(deserialize_with = "lenient::vec")]
    pub t: Vec<f64>,
    /// Method name (`"dopri5"`, `"tsit5"`, `"bosh3"`, `"dopri8"`, `"rk4"`, ...).
    pub solver: String,
    /// Relative tolerance (default 1e-6).
    #[serde(default, deserialize_with = "lenient::opt")]
    pub rtol: Option<f64>,
    /// Absolute tolerance (default 1e-8).
    #[serde(default, deserialize_with = "lenient::opt")]
    pub atol: Option<f64>,
    /// Fixed step size (fixed-step solvers).
    #[serde(default, deserialize_with = "lenient::opt")]
    pub step_size: Option<f64>,
    /// Step limit (default 10 000).
    pub max_steps: Option<usize>,
    /// MLP weights.
    pub weights: MlpWeights,
    /// Initial states `[batch][dim]` (`null` or `NaN` entries are NaN: that row fails).
    #[serde(deserialize_with = "lenient::mat")]
    pub y0: Vec<Vec<f64>>,
    /// How the batch is solved (default joint).
    #[serde(default)]
    pub batch_mode: BatchMode,
    /// Relative tolerance of the adjoint's reverse solve (default: `rtol`).
    #[serde(default, deserialize_with = "lenient::opt")]
    pub adjoint_rtol: Option<f64>,
    /// Absolute tolerance of the adjoint's reverse solve (default: `atol`).
    #[serde(default, deserialize_with = "lenient::opt")]
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

impl Dtype {
    /// The file spelling: `"float32"` or `"float64"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::Float64 => "float64",
        }
    }
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

/// The problem object of a JSON text: a reference file's `problem` field (its other fields are
/// skipped unread), or the whole text when there is none. Shared by the ODE and SDE formats.
pub(crate) fn problem_object<P: serde::de::DeserializeOwned>(text: &str, origin: &str) -> Result<P, ProblemError> {
    #[derive(Deserialize)]
    struct Wrapped<P> {
        problem: Option<P>,
    }
    let jerr = |source| ProblemError::Json { path: origin.to_string(), source };
    match serde_json::from_str::<Wrapped<P>>(text).map_err(jerr)? {
        Wrapped { problem: Some(p) } => Ok(p),
        Wrapped { problem: None } => serde_json::from_str::<P>(text).map_err(jerr),
    }
}

impl Problem {
    /// Read a problem from a JSON file (a whole reference file or a bare problem object), at
    /// most [`MAX_JSON_BYTES`](crate::io::MAX_JSON_BYTES) long.
    pub fn from_file(path: &Path) -> Result<Self, ProblemError> {
        let text = crate::io::read_text_capped(path, crate::io::MAX_JSON_BYTES, "a problem file")?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Parse and validate; `origin` names the source in errors.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self, ProblemError> {
        let p: Problem = problem_object(&quote_nan_tokens(text), origin)?;
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

    /// Every check a solve would make before its first step, and the file-specific ones, each
    /// naming its field: the solver, shapes, finite weights (and within float32's range for a
    /// float32 problem), times finite and strictly monotone, tolerances finite, >= 0, not both
    /// 0 and representable in the problem's type, the step size, `max_steps >= 1`.
    pub fn validate(&self, origin: &str) -> Result<(), ProblemError> {
        let bad = |field: &'static str, reason: String| Err(ProblemError::Field { path: origin.to_string(), field, reason });
        let implicit = nodal_solve::ImplicitMethod::by_name(&self.solver);
        let Some(tableau) = method_by_name(&self.solver).or(implicit.map(|_| &nodal_solve::tableau::DOPRI5)) else {
            let mut names: Vec<&str> = nodal_solve::METHODS.iter().map(|m| m.name).collect();
            names.extend(nodal_solve::ImplicitMethod::ALL.iter().map(|m| m.name()));
            return bad("solver", format!("unknown solver {:?}; known: {}", self.solver, names.join(", ")));
        };
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
        let max = if self.dtype == Dtype::Float32 { f32::MAX as f64 } else { f64::MAX };
        for (name, mut vals) in [
            ("weights.W1", Box::new(w.W1.iter().flatten()) as Box<dyn Iterator<Item = &f64>>),
            ("weights.b1", Box::new(w.b1.iter())),
            ("weights.W2", Box::new(w.W2.iter().flatten())),
            ("weights.b2", Box::new(w.b2.iter())),
        ] {
            if let Some(x) = vals.find(|x| !(x.abs() <= max)) {
                let what = if x.is_finite() { "a value outside float32's range" } else { "a non-finite value" };
                return bad(name, format!("contains {what} ({x})"));
            }
        }
        if self.y0.is_empty() || self.y0.iter().any(|r| r.len() != d) {
            return bad("y0", format!("must be a non-empty [batch][dim={d}] array"));
        }
        if let Err(e) = nodal_solve::check_times(&self.t) {
            return bad("t", e.to_string());
        }
        let tiny = if self.dtype == Dtype::Float32 { f32::MIN_POSITIVE as f64 } else { f64::MIN_POSITIVE };
        for (field, v) in
            [("rtol", self.rtol), ("atol", self.atol), ("adjoint_rtol", self.adjoint_rtol), ("adjoint_atol", self.adjoint_atol)]
        {
            match v {
                Some(x) if !(x.is_finite() && x >= 0.0) => return bad(field, format!("must be finite and >= 0, got {x}")),
                Some(x) if x > 0.0 && x < tiny => {
                    return bad(field, format!("{x:e} underflows {} (smallest normal {tiny:e})", self.dtype.name()));
                }
                _ => {}
            }
        }
        if let Some(h) = self.step_size
            && !(h.is_finite() && h > 0.0)
        {
            return bad("step_size", format!("must be positive and finite, got {h}"));
        }
        if self.step_size.is_none() && tableau.error_order.is_none() {
            return bad("step_size", format!("solver {:?} has no error estimator: give a fixed step_size", self.solver));
        }
        if self.max_steps == Some(0) {
            return bad("max_steps", "must be at least 1".into());
        }
        for (field, o) in [("rtol", self.options()), ("adjoint_rtol", self.adjoint_options().solve)] {
            if let Err(e) = o.validate() {
                return bad(field, e.to_string());
            }
        }
        Ok(())
    }

    /// Bytes a solve of this problem is estimated to hold at its peak, without the gradient
    /// tape (which the solve's own memory limit bounds): the parsed file, the outputs, the
    /// per-row copies of the times in per-sample mode, and the JSON text of the answer
    /// (about 24 bytes per number), plus as much again for gradients when they are asked for.
    pub fn estimated_bytes(&self, with_grads: bool) -> u64 {
        let (n_t, rows, d) = (self.t.len() as u64, self.y0.len() as u64, self.dim() as u64);
        let values = n_t.saturating_mul(rows).saturating_mul(d);
        let per_value = 8 + 8 + 24;
        let mut total = values.saturating_mul(per_value);
        if self.batch_mode == BatchMode::PerSample {
            total = total.saturating_add(n_t.saturating_mul(rows).saturating_mul(8));
        }
        if with_grads {
            total = total.saturating_mul(2);
        }
        total
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
        let base = SolveOptions::new(&nodal_solve::tableau::DOPRI5);
        let mut o =
            base.clone().with_method_name(&self.solver).unwrap_or(base).with_tol(self.rtol.unwrap_or(1e-6), self.atol.unwrap_or(1e-8));
        if let Some(h) = self.step_size {
            o = o.with_fixed_step(h);
        }
        if let Some(m) = self.max_steps {
            o = o.with_max_steps(m);
        }
        o
    }
}
