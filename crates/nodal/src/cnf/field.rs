//! The augmented right-hand side of a continuous normalising flow: rows `[z, Δ, penalties]`.

use super::{CnfSettings, Probe, Trace};
use crate::jvp::Dual;
use crate::neural_ode::OdeFunc;
use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Tensor, TensorData};

/// `d/dt [z, Δ, r_kin, r_jac] = [f, -tr(∂f/∂z), ‖f‖², ‖∂f/∂z‖_F²]` per row, with the trace and
/// the Frobenius norm from one batched JVP call along fixed tangents (the basis vectors for the
/// exact trace, seeded probes for Hutchinson's). Built per solve by [`super::Cnf::log_prob`]
/// for a fixed batch; the tangents stay the same over the solve and its backward pass.
#[derive(Module, Debug)]
pub struct CnfField<M: OdeFunc> {
    /// The flow's dynamics.
    pub func: M,
    /// Tangents `[K * batch, dim]`, probe-major.
    #[module(skip)]
    tangents: Vec<f64>,
    /// `K`.
    #[module(skip)]
    k: usize,
    /// Weight of the probe sum: 1 (exact) or `1 / K` (Hutchinson mean).
    #[module(skip)]
    weight: f64,
    #[module(skip)]
    kinetic: bool,
    #[module(skip)]
    jacobian: bool,
}

/// SplitMix64: a seeded, well-mixed 64-bit stream.
pub(crate) struct SplitMix(pub(crate) u64);
impl SplitMix {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box-Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// The Hutchinson probes a flow draws from `seed`: `[probes * batch][dim]`, probe-major
/// (exposed so that other implementations of the same flow, such as the fused network of
/// [`nodal_solve::cnf_mlp`], can use identical probes).
pub fn probe_vectors(probes: usize, distribution: Probe, batch: usize, dim: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix(seed ^ 0x00C0_FFEE);
    (0..probes * batch * dim)
        .map(|_| match distribution {
            Probe::Rademacher => {
                if rng.next_u64() >> 63 == 0 {
                    -1.0
                } else {
                    1.0
                }
            }
            Probe::Gaussian => rng.normal(),
        })
        .collect()
}

impl<M: OdeFunc> CnfField<M> {
    /// The field for `batch` rows of width `dim`.
    pub fn new(func: M, settings: &CnfSettings, batch: usize, dim: usize, seed: u64) -> Self {
        let (k, weight, tangents) = match settings.trace {
            Trace::Exact => {
                let mut t = vec![0.0; dim * batch * dim];
                for k in 0..dim {
                    for r in 0..batch {
                        t[(k * batch + r) * dim + k] = 1.0;
                    }
                }
                (dim, 1.0, t)
            }
            Trace::Hutchinson { probes, distribution } => {
                let t = probe_vectors(probes, distribution, batch, dim, seed);
                (probes, 1.0 / probes as f64, t)
            }
        };
        Self { func, tangents, k, weight, kinetic: settings.kinetic, jacobian: settings.jacobian }
    }

    /// Per-row `Σ_k weight · g(tangent_k, Jv_k)` for a rowwise reduction `[K b, d] -> [K b, 1]`.
    fn probe_sum(&self, per_probe_row: Tensor<2>, b: usize) -> Tensor<2> {
        per_probe_row.reshape([self.k, b]).sum_dim(0).reshape([b, 1]).mul_scalar(self.weight)
    }
}

impl<M: OdeFunc + ModuleDisplay> OdeFunc for CnfField<M> {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        let [b, w] = y.dims();
        let d = self.tangents.len() / (self.k * b).max(1);
        let z = y.clone().slice([0..b, 0..d]);
        let eps = Tensor::<2>::from_data(TensorData::new(self.tangents.clone(), [self.k * b, d]), (&y.device(), y.dtype()));
        let Ok(out) = self.func.forward_jvp(t, Dual::new(z, eps.clone())) else {
            // `Cnf::log_prob` checked `has_jvp`; dynamics that claim JVPs and then refuse get a
            // NaN derivative, which the solver reports as a non-finite state with its time.
            return Tensor::<2>::full([b, w], f64::NAN, (&y.device(), y.dtype()));
        };
        let (f, jv) = (out.primal, out.tangent);
        let trace = self.probe_sum((eps * jv.clone()).sum_dim(1), b);
        let mut cols = vec![f.clone(), trace.neg()];
        if self.kinetic {
            cols.push(f.square().sum_dim(1));
        }
        if self.jacobian {
            cols.push(self.probe_sum(jv.square().sum_dim(1), b));
        }
        Tensor::cat(cols, 1)
    }

    fn has_jvp(&self) -> bool {
        false
    }
}
