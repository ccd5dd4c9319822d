//! States of any rank: images `[batch, c, h, w]`, sequences and sets `[batch, n, d]`.
//!
//! A field over rank-`D` states implements [`FieldNd<D>`]; [`Shaped`] presents it to the solver
//! as an [`OdeFunc`] over rows `[batch, c·h·w]` (the row-major flattening of each sample), and
//! [`NeuralOde::forward_shaped`] takes and returns states of the field's own shape. Because the
//! flattening is a relabelling of the same numbers in the same order, everything the solver does
//! per row carries over unchanged: the RMS error norm is over all entries of the batch (joint
//! mode) or of one sample (per-sample mode, one solve per leading index), and gradients reach
//! every entry of `y0` and every parameter exactly as for a 2-D state. A shaped solve therefore
//! equals the flattened solve bit for bit (checked in the tests).

use super::{NeuralOde, OdeFunc, OdeOutput};
use crate::jvp::{Dual, JvpError};
use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;
use nodal_solve::SolveError;

/// Dynamics `f(t, y)` on states `y` of rank `D`, `[batch, ...]`; the result has `y`'s shape.
/// Every leading index must be independent of the others (no batch statistics), which is what
/// makes per-sample solves and per-row gradients meaningful.
pub trait FieldNd<const D: usize>: Module + ModuleDisplay + Clone + Send + 'static {
    /// `dy/dt` at time `t` for every sample of `y`.
    fn forward(&self, t: f64, y: Tensor<D>) -> Tensor<D>;

    /// Whether [`FieldNd::forward_jvp`] is implemented (see [`OdeFunc::has_jvp`]).
    fn has_jvp(&self) -> bool {
        false
    }

    /// `dy/dt` and its Jacobian applied to stacked tangents (see [`OdeFunc::forward_jvp`]).
    fn forward_jvp(&self, _t: f64, _y: Dual<D>) -> Result<Dual<D>, JvpError> {
        Err(JvpError::NotProvided { feature: "this feature", module: std::any::type_name::<Self>() })
    }
}

/// A [`FieldNd`] over samples of shape `sample_shape` (everything after the batch axis) as an
/// [`OdeFunc`] over flattened rows. Build with [`Shaped::new`].
#[derive(Module, Debug)]
pub struct Shaped<F, const D: usize> {
    /// The field.
    pub field: F,
    /// Shape of one sample: `D - 1` sizes.
    #[module(skip)]
    pub sample_shape: Vec<usize>,
}

impl<F: FieldNd<D>, const D: usize> Shaped<F, D> {
    /// `field` on samples of shape `sample_shape` (`D - 1` sizes, e.g. `[c, h, w]` for `D = 4`).
    ///
    /// # Panics
    /// If `sample_shape` does not have `D - 1` entries (a programming error, fixed at compile
    /// time by the caller's choice of `D`).
    pub fn new(field: F, sample_shape: &[usize]) -> Self {
        assert!(D >= 2 && sample_shape.len() == D - 1, "a rank-{D} state needs {} sample sizes, got {sample_shape:?}", D - 1);
        Self { field, sample_shape: sample_shape.to_vec() }
    }

    /// Entries of one sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    /// `[rows, c·h·w] -> [rows, c, h, w]` (rank `D`).
    pub fn unflatten(&self, y: Tensor<2>) -> Tensor<D> {
        let rows = y.dims()[0];
        y.reshape(self.dims(rows))
    }

    /// `[rows, ...]` for this sample shape.
    pub fn dims(&self, rows: usize) -> [usize; D] {
        let mut dims = [rows; D];
        dims[1..].copy_from_slice(&self.sample_shape);
        dims
    }

    /// Checks that `y` is `[batch, sample_shape...]` and returns the batch size.
    pub fn check(&self, y: &Tensor<D>) -> Result<usize, SolveError> {
        let dims = y.dims();
        if dims[1..] != self.sample_shape[..] {
            return Err(SolveError::Shape(format!(
                "the state is {dims:?} but the field takes samples of shape {:?} ([batch, {}])",
                self.sample_shape,
                self.sample_shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(dims[0])
    }
}

fn flatten<const D: usize>(y: Tensor<D>) -> Tensor<2> {
    let dims = y.dims();
    y.reshape([dims[0], dims[1..].iter().product()])
}

impl<F: FieldNd<D>, const D: usize> OdeFunc for Shaped<F, D> {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        flatten(self.field.forward(t, self.unflatten(y)))
    }
    fn has_jvp(&self) -> bool {
        self.field.has_jvp()
    }
    fn forward_jvp(&self, t: f64, y: Dual<2>) -> Result<Dual<2>, JvpError> {
        let out = self.field.forward_jvp(t, Dual::new(self.unflatten(y.primal), self.unflatten(y.tangent)))?;
        Ok(Dual::new(flatten(out.primal), flatten(out.tangent)))
    }
}

/// Output of [`NeuralOde::forward_shaped`].
pub struct ShapedOutput<const D: usize> {
    /// The state at each output time, `[batch, ...]` (tracked when `y0` was).
    pub states: Vec<Tensor<D>>,
    /// The solve on flattened rows (`ys` is `[times, batch, entries]`), with its work, backward
    /// report, per-row status and penalties.
    pub flat: OdeOutput,
}

impl<F: FieldNd<D>, const D: usize> NeuralOde<Shaped<F, D>> {
    /// Solve from `y0` of shape `[batch, sample_shape...]` and return the states at `ts` in the
    /// same shape; otherwise exactly [`NeuralOde::forward`] on the flattened rows (same settings,
    /// gradients, batch modes). A `y0` of another sample shape is a [`SolveError::Shape`].
    pub fn forward_shaped(&self, y0: Tensor<D>, ts: &[f64]) -> Result<ShapedOutput<D>, SolveError> {
        let batch = self.func.check(&y0)?;
        let flat = self.forward(flatten(y0), ts)?;
        let [nt, _, n] = flat.ys.dims();
        let states = (0..nt).map(|k| self.func.unflatten(flat.ys.clone().slice([k..k + 1, 0..batch, 0..n]).reshape([batch, n]))).collect();
        Ok(ShapedOutput { states, flat })
    }
}
