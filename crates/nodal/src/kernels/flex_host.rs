//! What every kernel needs from the flex backend: whether a tensor lives there, and its `f32`
//! values as a slice (in and out).

use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{DispatchDevice, Flex, FlexDevice};
use burn::tensor::{Device, TensorData};

/// Whether `device` is flex's, with or without autodiff.
pub(crate) fn on_flex(device: &Device) -> bool {
    matches!(device.as_dispatch().clone().inner(), DispatchDevice::Flex(_))
}

/// `t` with a contiguous layout (a cheap clone when it already is one; a copy otherwise).
pub(crate) fn contiguous(t: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    if t.as_slice::<f32>().is_some() { t.clone() } else { t.to_contiguous() }
}

/// The values of a contiguous `f32` tensor (see [`contiguous`]).
pub(crate) fn f32s(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 flex tensor")
}

/// A flex tensor of `shape` owning `values`.
pub(crate) fn tensor_from(values: Vec<f32>, shape: Vec<usize>) -> FloatTensor<Flex> {
    Flex::float_from_data(TensorData::new(values, shape), &FlexDevice)
}
