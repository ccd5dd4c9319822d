//! Any burn module as solver dynamics: `f(t, y)` by the module's forward pass on the plain
//! (no-autodiff) device, and vector-Jacobian products by one reverse pass of burn's autodiff on
//! a separate copy of the module, so the solver engine sees only host vectors. Under backprop
//! through the solver the evaluations run on that tracked copy and keep their graphs, which the
//! stages' VJPs then reverse without a second forward pass.

use super::OdeFunc;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal_solve::per_sample::RowDynamics;
use nodal_solve::{Dynamics, Scalar, VjpDynamics};

/// Element types burn and the solver share.
pub trait Element: Scalar + burn::tensor::Element {
    /// The burn dtype.
    const BURN: DType;
}
impl Element for f32 {
    const BURN: DType = DType::F32;
}
impl Element for f64 {
    const BURN: DType = DType::F64;
}

/// Values of a tensor as a host vector of `T`.
pub(crate) fn host<T: Element, const D: usize>(t: Tensor<D>) -> Vec<T> {
    t.into_data().convert::<T>().try_into_vec::<T>().expect("converted to the requested element type")
}

/// Collects parameter gradients in the module's visiting order (zeros where a parameter has none).
pub(crate) struct FlatGrads<'a, T> {
    pub(crate) grads: &'a GradientsParams,
    pub(crate) out: &'a mut [T],
    pub(crate) offset: usize,
}

impl<T: Element> ModuleVisitor for FlatGrads<'_, T> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let n = p.lazy_shape().num_elements();
        if let Some(g) = self.grads.get::<D>(p.id) {
            for (o, v) in self.out[self.offset..self.offset + n].iter_mut().zip(host::<T, D>(g)) {
                *o += v;
            }
        }
        self.offset += n;
    }
}

/// Counts parameters in visiting order.
struct CountParams(usize);
impl ModuleVisitor for CountParams {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0 += p.lazy_shape().num_elements();
    }
}

/// Number of float parameters of a module.
pub fn num_params<M: Module>(m: &M) -> usize {
    let mut c = CountParams(0);
    m.visit(&mut c);
    c.0
}

/// A burn module as [`Dynamics`], [`VjpDynamics`] and [`RowDynamics`] on row-major
/// `[rows][dim]` host vectors (the number of rows is read from each call's length).
pub struct ModuleDynamics<M> {
    plain: M,
    tracked: Option<M>,
    device: Device,
    dim: usize,
    n_params: usize,
    memo: EvalMemo,
}

/// Evaluations kept for the reverse pass of backprop through the solver, which replays the
/// stage evaluations of every step before its VJPs: `f(t, y)` keyed by `t`'s bits and checked
/// against the whole state `y` on a hit, so a replayed stage costs a comparison instead of a
/// forward pass. Each entry also keeps the autodiff graph of the forward pass that computed it
/// (the evaluations run on the tracked copy of the module while the memo is on), so the stage's
/// VJP runs only the reverse pass instead of a second forward and a reverse, as PyTorch does
/// when it backpropagates through a solver. Off unless [`ModuleDynamics::remember_evaluations`]
/// gives it a budget; entries past the budget are not kept (the replay and the VJP then
/// evaluate them).
#[derive(Default)]
struct EvalMemo {
    /// `(t bits, Box<Kept<T>>)`, of the element type of the calls.
    entries: Vec<(u64, Box<dyn std::any::Any + Send>)>,
    bytes: usize,
    limit: usize,
    hits: usize,
    graph_hits: usize,
}

/// Bytes a kept graph is counted at, per byte of the state: the activations of the few layers
/// of a typical dynamics module (the MNIST ODE block keeps about nine state-sized tensors).
const GRAPH_BYTES_PER_STATE_BYTE: usize = 8;

/// One remembered evaluation: the state, `f(t, y)`, and, until its VJP uses it, the tracked
/// input (a leaf that requires its gradient) and output of the forward pass.
struct Kept<T> {
    y: Vec<T>,
    dy: Vec<T>,
    graph: Option<(Tensor<2>, Tensor<2>)>,
}

impl EvalMemo {
    fn find<T: Element>(&mut self, t: f64, y: &[T]) -> Option<&mut Kept<T>> {
        let tb = t.to_bits();
        self.entries.iter_mut().filter(|(k, _)| *k == tb).find_map(|(_, e)| e.downcast_mut::<Kept<T>>().filter(|k| k.y[..] == y[..]))
    }

    fn lookup<T: Element>(&mut self, t: f64, y: &[T]) -> Option<&[T]> {
        let tb = t.to_bits();
        let kept =
            self.entries.iter().filter(|(k, _)| *k == tb).find_map(|(_, e)| e.downcast_ref::<Kept<T>>().filter(|k| k.y[..] == y[..]))?;
        self.hits += 1;
        Some(&kept.dy)
    }

    /// The graph of the forward pass at `(t, y)`, once.
    fn take_graph<T: Element>(&mut self, t: f64, y: &[T]) -> Option<(Tensor<2>, Tensor<2>)> {
        let graph = self.find(t, y).and_then(|k| k.graph.take());
        if graph.is_some() {
            self.graph_hits += 1;
        }
        graph
    }

    fn keep<T: Element>(&mut self, t: f64, y: &[T], dy: &[T], graph: Option<(Tensor<2>, Tensor<2>)>) {
        let state = std::mem::size_of_val(y);
        let plain = 2 * state;
        let with_graph = plain + GRAPH_BYTES_PER_STATE_BYTE * state;
        let (bytes, graph) = match graph {
            Some(g) if self.bytes + with_graph <= self.limit => (with_graph, Some(g)),
            _ => (plain, None),
        };
        if self.limit == 0 || self.bytes + bytes > self.limit {
            return;
        }
        self.bytes += bytes;
        self.entries.push((t.to_bits(), Box::new(Kept { y: y.to_vec(), dy: dy.to_vec(), graph })));
    }
}

impl<M: OdeFunc> ModuleDynamics<M> {
    /// Wrap `module` for states with rows of width `dim` on `device` (autodiff or not).
    pub fn new(module: &M, device: &Device, dim: usize) -> Self {
        let plain = module.clone().valid();
        let n_params = num_params(&plain);
        Self { plain, tracked: None, device: device.clone().without_autodiff(), dim, n_params, memo: EvalMemo::default() }
    }

    /// Keep up to `bytes` of evaluations (states and derivatives) so that backprop's replay of
    /// stage evaluations is served from memory (see [`EvalMemo`]); 0 turns it off (the default).
    pub fn remember_evaluations(&mut self, bytes: usize) {
        self.memo = EvalMemo { limit: bytes, ..EvalMemo::default() };
    }

    /// Evaluations served from memory so far.
    pub fn remembered_hits(&self) -> usize {
        self.memo.hits
    }

    /// VJPs that ran on a remembered forward pass's graph (no forward of their own) so far.
    pub fn remembered_graphs_used(&self) -> usize {
        self.memo.graph_hits
    }

    fn tensor<T: Element>(&self, v: &[T], device: &Device) -> Tensor<2> {
        Tensor::<2>::from_data(TensorData::new(v.to_vec(), [v.len() / self.dim, self.dim]), (device, T::BURN))
    }
}

impl<M: OdeFunc, T: Element> Dynamics<Vec<T>> for ModuleDynamics<M> {
    fn eval(&mut self, t: f64, y: &Vec<T>, dy: &mut Vec<T>) {
        if let Some(kept) = self.memo.lookup(t, y) {
            dy.copy_from_slice(kept);
            return;
        }
        if self.memo.limit == 0 {
            let out = self.plain.forward(t, self.tensor(y, &self.device));
            dy.copy_from_slice(&host::<T, 2>(out));
            return;
        }
        // Remembering: the forward runs on the tracked copy, and its graph is kept for the VJP.
        let ad = self.device.clone().autodiff();
        let tracked = self.tracked.get_or_insert_with(|| self.plain.clone().train()).clone();
        let yt = self.tensor(y, &ad).require_grad();
        let out = tracked.forward(t, yt.clone());
        dy.copy_from_slice(&host::<T, 2>(out.clone().inner()));
        self.memo.keep(t, y, dy, Some((yt, out)));
    }
}

impl<M: OdeFunc, T: Element> RowDynamics<T> for ModuleDynamics<M> {
    fn eval_rows(&mut self, t: &[f64], y: &[T], dy: &mut [T]) {
        let out = self.plain.forward_per_row(t, self.tensor(y, &self.device));
        dy.copy_from_slice(&host::<T, 2>(out));
    }
}

impl<M: OdeFunc, T: Element> VjpDynamics<Vec<T>> for ModuleDynamics<M> {
    type Params = Vec<T>;
    fn param_zeros(&self) -> Vec<T> {
        vec![T::ZERO; self.n_params]
    }
    fn vjp(&mut self, t: f64, y: &Vec<T>, a: &Vec<T>, adj_y: &mut Vec<T>, adj_p: &mut Vec<T>) {
        self.reverse(t, y, a, None, adj_y, adj_p);
    }
    /// One forward pass on the tracked copy gives `f(t, y)` as well as the graph that the
    /// reverse pass runs on (the default would run the forward twice).
    fn eval_and_vjp(&mut self, t: f64, y: &Vec<T>, a: &Vec<T>, dy: &mut Vec<T>, adj_y: &mut Vec<T>, adj_p: &mut Vec<T>) {
        self.reverse(t, y, a, Some(dy), adj_y, adj_p);
    }
}

impl<M: OdeFunc> ModuleDynamics<M> {
    /// `aᵀ ∂f/∂y` into `adj_y`, `aᵀ ∂f/∂θ` added to `adj_p`, and, when asked, `f(t, y)` into
    /// `dy`, all from one forward and one reverse pass of burn's autodiff.
    fn reverse<T: Element>(&mut self, t: f64, y: &[T], a: &[T], dy: Option<&mut Vec<T>>, adj_y: &mut [T], adj_p: &mut [T]) {
        let ad = self.device.clone().autodiff();
        // A private trainable copy: its leaves belong to this inner graph only.
        let tracked = self.tracked.get_or_insert_with(|| self.plain.clone().train()).clone();
        let at = self.tensor(a, &self.device);
        // The forward pass that the solve remembered at `(t, y)`, else a new one.
        let (yt, out) = match self.memo.take_graph(t, y) {
            Some(graph) => graph,
            None => {
                let yt = self.tensor(y, &ad).require_grad();
                let out = tracked.forward(t, yt.clone());
                (yt, out)
            }
        };
        if let Some(dy) = dy {
            dy.copy_from_slice(&host::<T, 2>(out.clone().inner()));
        }
        let s = (out * Tensor::from_inner(at)).sum();
        let grads = s.backward();
        match yt.grad(&grads) {
            Some(g) => adj_y.copy_from_slice(&host::<T, 2>(g)),
            None => adj_y.iter_mut().for_each(|v| *v = T::ZERO),
        }
        let gp = GradientsParams::from_grads(grads, &tracked);
        tracked.visit(&mut FlatGrads { grads: &gp, out: adj_p, offset: 0 });
    }
}
