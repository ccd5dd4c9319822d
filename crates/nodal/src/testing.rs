//! Helpers for checking derivatives of burn modules (used by nodal's own tests, and useful to
//! anyone checking a field of their own): casting a module's parameters to another precision,
//! nudging one parameter entry for central differences, and collecting gradients in visiting
//! order.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData};

/// A tensor's values as f64.
pub fn values<const R: usize>(t: Tensor<R>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().expect("converted to f64")
}

/// Casts every parameter to `dtype` as a fresh leaf (tracked when the device is autodiff).
pub struct Cast(pub DType);
impl ModuleMapper for Cast {
    fn map_float<const R: usize>(&mut self, p: Param<Tensor<R>>) -> Param<Tensor<R>> {
        let dt = self.0;
        p.map(|t| {
            let t = t.cast(dt).detach();
            if t.is_autodiff() { t.require_grad() } else { t }
        })
    }
}

/// Adds `by` to the `index`-th parameter entry (visiting order); f64 parameters.
pub struct Shift {
    /// Entry to nudge, counted over all float parameters in visiting order.
    pub index: usize,
    /// Amount added.
    pub by: f64,
    /// Entries visited so far.
    pub seen: usize,
}
impl Shift {
    /// Add `by` to entry `index`.
    pub fn new(index: usize, by: f64) -> Self {
        Self { index, by, seen: 0 }
    }
}
impl ModuleMapper for Shift {
    fn map_float<const R: usize>(&mut self, p: Param<Tensor<R>>) -> Param<Tensor<R>> {
        let n = p.lazy_shape().num_elements();
        let (start, idx, by) = (self.seen, self.index, self.by);
        self.seen += n;
        if idx < start || idx >= start + n {
            return p;
        }
        p.map(|t| {
            let shape = t.shape();
            let mut v = values(t.clone());
            v[idx - start] += by;
            let t2 = Tensor::from_data(TensorData::new(v, shape), (&t.device(), DType::F64));
            if t2.is_autodiff() { t2.require_grad() } else { t2 }
        })
    }
}

/// Every parameter's gradient, flattened in visiting order (zeros where there is none).
pub struct Collect<'a>(pub &'a GradientsParams, pub &'a mut Vec<f64>);
impl ModuleVisitor for Collect<'_> {
    fn visit_float<const R: usize>(&mut self, p: &Param<Tensor<R>>) {
        let n = p.lazy_shape().num_elements();
        match self.0.get::<R>(p.id) {
            Some(g) => self.1.extend(values(g)),
            None => self.1.extend(std::iter::repeat_n(0.0, n)),
        }
    }
}
