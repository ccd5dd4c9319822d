//! Test helpers shared by the library's unit tests: casting a module's parameters, nudging one
//! parameter entry for central differences, and collecting gradients in visiting order.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData};

/// A tensor's values as f64.
pub(crate) fn values<const R: usize>(t: Tensor<R>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().expect("converted to f64")
}

/// Casts every parameter to `dtype` as a fresh leaf (tracked when the device is autodiff).
pub(crate) struct Cast(pub(crate) DType);
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
pub(crate) struct Shift {
    pub(crate) index: usize,
    pub(crate) by: f64,
    pub(crate) seen: usize,
}
impl Shift {
    pub(crate) fn new(index: usize, by: f64) -> Self {
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
pub(crate) struct Collect<'a>(pub(crate) &'a GradientsParams, pub(crate) &'a mut Vec<f64>);
impl ModuleVisitor for Collect<'_> {
    fn visit_float<const R: usize>(&mut self, p: &Param<Tensor<R>>) {
        let n = p.lazy_shape().num_elements();
        match self.0.get::<R>(p.id) {
            Some(g) => self.1.extend(values(g)),
            None => self.1.extend(std::iter::repeat_n(0.0, n)),
        }
    }
}
