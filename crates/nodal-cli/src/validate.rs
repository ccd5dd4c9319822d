//! Checks of option values, run before any output is touched. Each error names the option.

use crate::failure::Failure;

/// `v` must be finite and > 0.
pub fn positive(name: &str, v: f64) -> Result<f64, Failure> {
    if v.is_finite() && v > 0.0 { Ok(v) } else { Err(Failure::Input(format!("--{name} must be positive and finite (got {v})"))) }
}

/// `v` must be finite and >= 0.
pub fn non_negative(name: &str, v: f64) -> Result<f64, Failure> {
    if v.is_finite() && v >= 0.0 { Ok(v) } else { Err(Failure::Input(format!("--{name} must be finite and >= 0 (got {v})"))) }
}

/// A tolerance pair: each finite and >= 0, not both 0, and not below the smallest normal
/// float32 when the solve runs in float32 (it would round to 0 there).
pub fn tolerances(rtol: f64, atol: f64, float32: bool) -> Result<(), Failure> {
    non_negative("rtol", rtol)?;
    non_negative("atol", atol)?;
    if rtol == 0.0 && atol == 0.0 {
        return Err(Failure::Input("--rtol and --atol cannot both be 0".into()));
    }
    if float32 {
        for (name, v) in [("rtol", rtol), ("atol", atol)] {
            if v > 0.0 && v < f32::MIN_POSITIVE as f64 {
                return Err(Failure::Input(format!("--{name} {v:e} underflows float32 (smallest normal {:e})", f32::MIN_POSITIVE)));
            }
        }
    }
    Ok(())
}

/// A count between `lo` and `hi` inclusive.
pub fn count(name: &str, v: usize, lo: usize, hi: usize) -> Result<usize, Failure> {
    if (lo..=hi).contains(&v) { Ok(v) } else { Err(Failure::Input(format!("--{name} must be between {lo} and {hi} (got {v})"))) }
}

/// The RK-Net's fixed step on [0, 1]: in (0, 1].
pub fn rk4_step(h: f64) -> Result<f64, Failure> {
    if h > 0.0 && h <= 1.0 { Ok(h) } else { Err(Failure::Input(format!("--rk4-step must be in (0, 1] (got {h})"))) }
}
