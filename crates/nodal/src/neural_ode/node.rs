//! The ODE solve as one node of burn's autodiff graph.
//!
//! The forward solve runs on the host before the node is created (so a failed solve is a typed
//! error, not a panic); the node's forward returns its outputs, and its backward runs nodal's
//! gradient engine (discrete adjoint from the tape, or the continuous adjoint) and registers
//! `dL/dy0` and `dL/dtheta` on the parents: the initial state and the flattened parameters
//! of the dynamics, which burn then routes to every parameter and to the layers before.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients as AdGrads;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};
use std::sync::{Arc, Mutex};

/// The host side of one ODE node: outputs already computed, and the backward pass.
pub trait HostBackward: Send {
    /// Outputs of the forward solve, flattened `[times * batch * dim]`.
    fn outputs(&self) -> TensorData;
    /// Given `dL/dys` (flattened like the outputs), return `(dL/dy0, dL/dtheta)`; on failure
    /// the gradients are NaN and the error is kept for the caller.
    fn backward(&mut self, gys: TensorData) -> (TensorData, TensorData);
}

/// An ordinary (non-tensor) argument of the node: the host side, shared.
#[derive(Clone)]
pub struct OdeCall(pub Arc<Mutex<dyn HostBackward>>);

impl std::fmt::Debug for OdeCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OdeCall")
    }
}

/// The extension op: `ys = solve(y0, theta)`. Implemented for flex (the CPU) and, with the
/// cargo feature `wgpu`, for burn's CubeCL backend (wgpu), each also under autodiff; the host
/// side is the same for every backend, only where the outputs and gradients are put differs.
#[backend_extension(Flex, Cube: cfg(feature = "wgpu"), Autodiff)]
pub trait OdeNodeBackend: Backend {
    /// Outputs of the solve from `y0` with parameters `theta` (flattened), as one flat tensor.
    fn ode_node(y0: FloatTensor<Self>, theta: FloatTensor<Self>, call: OdeCall) -> FloatTensor<Self>;
}

/// The solve's outputs as a tensor of backend `B` on `device` (the device of `y0`).
fn outputs_tensor<B: Backend>(call: &OdeCall, device: &burn::backend::tensor::Device<B>) -> FloatTensor<B> {
    let data = call.0.lock().expect("ODE node lock").outputs();
    B::float_from_data(data, device)
}

impl OdeNodeBackend for Flex {
    fn ode_node(y0: FloatTensor<Self>, _theta: FloatTensor<Self>, call: OdeCall) -> FloatTensor<Self> {
        outputs_tensor::<Self>(&call, &y0.device())
    }
}

#[cfg(feature = "wgpu")]
impl OdeNodeBackend for burn::backend::Cube {
    fn ode_node(y0: FloatTensor<Self>, _theta: FloatTensor<Self>, call: OdeCall) -> FloatTensor<Self> {
        outputs_tensor::<Self>(&call, &y0.device())
    }
}

/// The node's backward on backend `B`: `dL/dys` to the host, nodal's gradient engine there,
/// `dL/dy0` and `dL/dtheta` back onto the device of the outputs.
#[derive(Debug)]
struct OdeBackward;

impl<B: Backend> Backward<B, 2> for OdeBackward {
    type State = OdeCall;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut AdGrads, _checkpointer: &mut Checkpointer) {
        let [node_y0, node_theta] = ops.parents;
        let gys = grads.consume::<B>(&ops.node);
        let device = gys.device();
        let gys = burn::tensor::read_sync(B::float_into_data(gys)).expect("gradient readable on the host");
        let (gy0, gtheta) = ops.state.0.lock().expect("ODE node lock").backward(gys);
        if let Some(n) = node_y0 {
            grads.register::<B>(n.id, B::float_from_data(gy0, &device));
        }
        if let Some(n) = node_theta {
            grads.register::<B>(n.id, B::float_from_data(gtheta, &device));
        }
    }
}

impl<B: Backend, C: CheckpointStrategy> OdeNodeBackend for Autodiff<B, C> {
    fn ode_node(y0: FloatTensor<Self>, theta: FloatTensor<Self>, call: OdeCall) -> FloatTensor<Self> {
        let device = y0.primitive().device();
        match OdeBackward.prepare::<C>([y0.node(), theta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = outputs_tensor::<B>(&call, &device);
                prep.finish(call, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(outputs_tensor::<B>(&call, &device)),
        }
    }
}

/// Tensor-level entry: a flat `[times * batch * dim]` tensor of outputs, tracked when `y0` or
/// `theta` is.
pub fn ode_node(y0: Tensor<2>, theta: Tensor<1>, call: OdeCall) -> Tensor<1> {
    Tensor::from_dispatch(<Dispatch as OdeNodeBackend>::ode_node(y0.into_dispatch(), theta.into_dispatch(), call))
}
