//! Summing a burn module's gradients over ranks.

use crate::communicator::{CommError, Communicator};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Tensor, TensorData};

/// Takes every float parameter's gradient out of `grads` (in the module's visiting order) into
/// one flat buffer, zeros where a parameter has none; `had[i]` is 1 where parameter `i` had one.
struct Flatten<'a> {
    grads: &'a mut GradientsParams,
    buf: Vec<f32>,
    had: Vec<f32>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let n: usize = p.val().dims().iter().product();
        match self.grads.remove::<D>(p.id) {
            Some(g) => {
                let v = g.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_else(|_| vec![0.0; n]);
                self.buf.extend_from_slice(&v);
                self.had.push(1.0);
            }
            None => {
                self.buf.resize(self.buf.len() + n, 0.0);
                self.had.push(0.0);
            }
        }
    }
}

/// Puts the summed gradients back, skipping parameters that no rank had a gradient for (an
/// optimiser must not see a zero gradient where there was none: Adam would still move them).
struct Restore<'a> {
    grads: &'a mut GradientsParams,
    buf: &'a [f32],
    had: &'a [f32],
    offset: usize,
    index: usize,
}

impl ModuleVisitor for Restore<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let t = p.val();
        let dims = t.dims();
        let n: usize = dims.iter().product();
        let slice = &self.buf[self.offset..self.offset + n];
        if self.had[self.index] > 0.0 {
            let device = t.inner().device();
            let g = Tensor::<D>::from_data(TensorData::new(slice.to_vec(), dims.to_vec()), (&device, DType::F32));
            register(self.grads, p.id, g);
        }
        self.offset += n;
        self.index += 1;
    }
}

fn register<const D: usize>(grads: &mut GradientsParams, id: ParamId, g: Tensor<D>) {
    grads.register::<D>(id, g);
}

/// Number of scalars [`all_reduce_gradients`] sends for `module` (its float parameters plus one
/// presence flag per parameter tensor), without the caller's `extra` values.
pub fn gradient_len<M: Module>(module: &M) -> usize {
    let mut empty = GradientsParams::new();
    let mut f = Flatten { grads: &mut empty, buf: Vec::new(), had: Vec::new() };
    module.visit(&mut f);
    f.buf.len() + f.had.len()
}

/// Sums `grads` (the gradients of `module`'s parameters on this rank) over all ranks, together
/// with `extra` (the caller's per-step sums: loss, correct predictions, failure flags), in one
/// all-reduce of f32. Each rank's loss must already be divided by the *global* batch size, so
/// that the sum is the gradient of the global mean. With one rank nothing is sent and `grads`
/// comes back untouched.
pub fn all_reduce_gradients<M: Module>(
    mut grads: GradientsParams,
    module: &M,
    comm: &dyn Communicator,
    extra: &mut [f32],
) -> Result<GradientsParams, CommError> {
    if comm.size() == 1 {
        return Ok(grads);
    }
    let mut f = Flatten { grads: &mut grads, buf: Vec::new(), had: Vec::new() };
    module.visit(&mut f);
    let (mut buf, had) = (f.buf, f.had);
    let (n_grad, n_had) = (buf.len(), had.len());
    buf.extend_from_slice(&had);
    buf.extend_from_slice(extra);
    comm.all_reduce_sum_f32(&mut buf)?;
    extra.copy_from_slice(&buf[n_grad + n_had..]);
    let mut r = Restore { grads: &mut grads, buf: &buf[..n_grad], had: &buf[n_grad..n_grad + n_had], offset: 0, index: 0 };
    module.visit(&mut r);
    Ok(grads)
}
