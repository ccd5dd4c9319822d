//! The Jacobian and second-order penalties ([`Penalty`]) on any burn module with JVPs
//! ([`OdeFunc::forward_jvp`]): each row of the state carries its own accumulators,
//! `[y, r_1, ..., r_P]`, with `dr_i/dt = q_i(t, y)` per row:
//!
//! | penalty | `q` per row |
//! |---|---|
//! | [`Penalty::Kinetic`] | `‖f‖²` |
//! | [`Penalty::JacobianFrobenius`] | `(1/m) Σ_k ‖J ε_k‖²`, `m` Rademacher probes fixed for the solve |
//! | [`Penalty::Order2`] | `‖J f‖²`, the JVP taken along `f` itself (so reverse mode also differentiates `f` through the tangent) |
//!
//! and the reported value is the mean over rows of `r_i(T)`, which equals the fused path's batch
//! accumulator `∫ mean_r q_r dt` ([`nodal_solve::regularise`]). As there, `d²y/dt² = J f` is exact
//! for autonomous dynamics (a time-dependent `f` adds `∂f/∂t`, left out). burn's reverse mode
//! through these JVPs gives the exact second-order gradients under every gradient method.

use super::OdeFunc;
use crate::jvp::Dual;
use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Tensor, TensorData};
use nodal_solve::regularise::Penalty;

/// Dynamics `[f, q_1, ..., q_P]` over rows `[y, r_1, ..., r_P]`. See the module docs.
#[derive(Module, Debug)]
pub struct PenaltyField<M: OdeFunc> {
    /// The wrapped dynamics.
    pub func: M,
    #[module(skip)]
    penalties: Vec<Penalty>,
    /// Rademacher probes `[m * batch, dim]` of the Jacobian penalty.
    #[module(skip)]
    probes: Vec<f64>,
    #[module(skip)]
    m: usize,
    #[module(skip)]
    dim: usize,
}

impl<M: OdeFunc + ModuleDisplay> PenaltyField<M> {
    /// The field for `batch` rows of width `dim`; `seed` draws the Jacobian penalty's probes.
    pub fn new(func: M, penalties: &[Penalty], batch: usize, dim: usize, seed: u64) -> Self {
        let m =
            penalties.iter().find_map(|p| if let Penalty::JacobianFrobenius { probes } = p { Some(*probes) } else { None }).unwrap_or(0);
        let probes = crate::cnf::probe_vectors(m, crate::cnf::Probe::Rademacher, batch, dim, seed);
        Self { func, penalties: penalties.to_vec(), probes, m, dim }
    }
}

impl<M: OdeFunc + ModuleDisplay> OdeFunc for PenaltyField<M> {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        let [b, w] = y.dims();
        let d = self.dim;
        let z = y.clone().slice([0..b, 0..d]);
        let nan = || Tensor::<2>::full([b, w], f64::NAN, (&y.device(), y.dtype()));
        let (f, jv) = if self.m > 0 {
            let eps = Tensor::<2>::from_data(TensorData::new(self.probes.clone(), [self.m * b, d]), (&y.device(), y.dtype()));
            // `NeuralOde` checked `has_jvp`; a refusal here becomes a NaN derivative, which the
            // solver reports as a non-finite state at its time.
            match self.func.forward_jvp(t, Dual::new(z.clone(), eps)) {
                Ok(o) => (o.primal, Some(o.tangent)),
                Err(_) => return nan(),
            }
        } else {
            (self.func.forward(t, z.clone()), None)
        };
        let mut cols = vec![f.clone()];
        for p in &self.penalties {
            cols.push(match p {
                Penalty::Kinetic => f.clone().square().sum_dim(1),
                Penalty::JacobianFrobenius { .. } => {
                    let jv = jv.clone().expect("probes were drawn for the Jacobian penalty");
                    jv.square().sum_dim(1).reshape([self.m, b]).mean_dim(0).reshape([b, 1])
                }
                Penalty::Order2 => match self.func.forward_jvp(t, Dual::new(z.clone(), f.clone())) {
                    Ok(o) => o.tangent.square().sum_dim(1),
                    Err(_) => return nan(),
                },
            });
        }
        Tensor::cat(cols, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jvp::activation::tanh;
    use crate::jvp::{JvpError, JvpLayer};
    use crate::neural_ode::{NeuralOde, OdeSettings};
    use burn::module::Param;
    use burn::nn::Linear;
    use burn::tensor::{DType, Device};
    use nodal_solve::grad::AdjointOptions;
    use nodal_solve::mlp::Mlp;
    use nodal_solve::regularise::Regularised;
    use nodal_solve::tableau::RK4;
    use nodal_solve::{RmsNorm, SolveOptions};

    const D: usize = 2;
    const H: usize = 6;
    const B: usize = 3;

    /// `W2 tanh(W1 y + b1) + b2` as a burn module: the fused MLP's twin.
    #[derive(Module, Debug)]
    struct Twin {
        l1: Linear,
        l2: Linear,
    }
    impl OdeFunc for Twin {
        fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
            self.l2.forward(self.l1.forward(y).tanh())
        }
        fn has_jvp(&self) -> bool {
            true
        }
        fn forward_jvp(&self, _t: f64, y: Dual<2>) -> Result<Dual<2>, JvpError> {
            Ok(self.l2.forward_jvp(tanh(self.l1.forward_jvp(y))))
        }
    }

    /// The same network without JVPs.
    #[derive(Module, Debug)]
    struct Plain {
        l1: Linear,
    }
    impl OdeFunc for Plain {
        fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
            self.l1.forward(y).tanh()
        }
    }

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn t64<const R: usize>(v: Vec<f64>, shape: [usize; R], dev: &Device) -> Tensor<R> {
        Tensor::from_data(TensorData::new(v, shape), (dev, DType::F64))
    }
    fn host<const R: usize>(t: Tensor<R>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()
    }

    /// Fused layout `[W1 (H x D), b1, W2 (D x H), b2]` -> the twin (burn weights are `[in, out]`).
    fn twin(p: &[f64], dev: &Device) -> Twin {
        let tr = |w: &[f64], rows: usize, cols: usize| (0..rows * cols).map(|j| w[(j % rows) * cols + j / rows]).collect::<Vec<_>>();
        let (w1, rest) = p.split_at(H * D);
        let (b1, rest) = rest.split_at(H);
        let (w2, b2) = rest.split_at(D * H);
        let lin = |w: Vec<f64>, b: &[f64], i: usize, o: usize| {
            let mut l = burn::nn::LinearConfig::new(i, o).init(dev);
            l.weight = Param::from_tensor(t64(w, [i, o], dev).require_grad());
            l.bias = Some(Param::from_tensor(t64(b.to_vec(), [o], dev).require_grad()));
            l
        };
        Twin { l1: lin(tr(w1, H, D), b1, D, H), l2: lin(tr(w2, D, H), b2, H, D) }
    }

    /// Kinetic and second-order penalties through the module's JVPs equal the fused MLP's
    /// hand-written ones: values and every parameter gradient (same RK4 steps, f64).
    #[test]
    fn module_penalties_match_the_fused_mlp() {
        let mut s = 3;
        let p: Vec<f64> = (0..Mlp::<f64>::num_params_for(D, H)).map(|_| lcg(&mut s)).collect();
        let y0: Vec<f64> = (0..B * D).map(|_| lcg(&mut s)).collect();
        let c: Vec<f64> = (0..B * D).map(|_| lcg(&mut s)).collect();
        let pens = [Penalty::Kinetic, Penalty::Order2];
        let lam = [0.3, 0.7];
        let rk4 = SolveOptions::new(&RK4).with_fixed_step(0.1);
        let ts = [0.0, 0.5];
        // Fused: loss = c . y(T) + Σ λ_i r_i(T).
        let mut mlp = Mlp::new(D, H, p.clone()).unwrap();
        let mut f = Regularised::new(&mut mlp, D, &pens, 0).unwrap();
        let y0a = f.augment(&y0);
        let (sol, backward) =
            nodal_solve::grad::solve_for_gradients(&mut f, &y0a, &ts, &rk4, &RmsNorm, nodal_solve::grad::GradMethod::Backprop).unwrap();
        let values = f.values(&sol.ys[1]);
        let mut ybar1 = c.clone();
        ybar1.extend_from_slice(&lam);
        let ybar = vec![vec![0.0; y0a.len()], ybar1];
        let g = backward.gradients(&mut f, &ts, &sol.ys, &ybar, &AdjointOptions { solve: rk4.clone(), seminorm: false }, false).unwrap();
        // Module.
        let dev = Device::flex().autodiff();
        let settings = OdeSettings::new(rk4).with_penalties(&pens);
        let ode = NeuralOde::new(twin(&p, &dev), settings.clone(), settings);
        let out = ode.forward(t64(y0, [B, D], &dev), &ts).unwrap();
        let pen = out.penalties.unwrap();
        let got = host(pen.clone());
        for (a, b) in got.iter().zip(&values) {
            assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "penalty {a} vs fused {b}");
        }
        let last = out.ys.slice([1..2, 0..B, 0..D]).reshape([B, D]);
        let loss = (last * t64(c, [B, D], &dev)).sum() + (pen * t64(lam.to_vec(), [2], &dev)).sum();
        let grads = loss.backward();
        let gw1 = host(ode.func.l1.weight.grad(&grads).unwrap());
        let gb1 = host(ode.func.l1.bias.as_ref().unwrap().grad(&grads).unwrap());
        let gw2 = host(ode.func.l2.weight.grad(&grads).unwrap());
        let gb2 = host(ode.func.l2.bias.as_ref().unwrap().grad(&grads).unwrap());
        let scale = g.params.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() < 1e-10 * scale, "{what}: module {a} vs fused {b}");
        for h in 0..H {
            for d in 0..D {
                close(gw1[d * H + h], g.params[h * D + d], "W1");
                close(gw2[h * D + d], g.params[H * D + H + d * H + h], "W2");
            }
            close(gb1[h], g.params[H * D + h], "b1");
        }
        for d in 0..D {
            close(gb2[d], g.params[2 * H * D + H + d], "b2");
        }
    }

    /// The Jacobian penalty's probe mean over seeds is `T ‖∂f/∂y‖_F²` for a linear module (within
    /// three standard errors), and a module without JVPs gets the typed error.
    #[test]
    fn jacobian_penalty_is_unbiased_and_needs_jvps() {
        let dev = Device::flex();
        let a = vec![0.4, -0.9, 0.3, 0.2];
        let fro: f64 = a.iter().map(|v| v * v).sum();
        let mut lin = burn::nn::LinearConfig::new(D, D).with_bias(false).init(&dev);
        lin.weight = Param::from_tensor(t64(a, [D, D], &dev));
        let twin = Twin {
            l1: lin.clone(),
            l2: {
                let mut id = burn::nn::LinearConfig::new(D, D).with_bias(false).init(&dev);
                id.weight = Param::from_tensor(t64(vec![1.0, 0.0, 0.0, 1.0], [D, D], &dev));
                id
            },
        };
        // f = tanh(y A) then the identity: J depends on y, so the reference is the exact
        // Frobenius norm from the basis vectors at y0 over a short interval (1e-3, J ~ constant).
        let y0 = t64(vec![0.01, -0.02, 0.015, 0.005, -0.01, 0.02], [B, D], &dev);
        let ts = [0.0, 1e-3];
        let exact = {
            let basis = t64(vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0], [2 * B, D], &dev);
            let jv = twin.forward_jvp(0.0, Dual::new(y0.clone(), basis)).unwrap().tangent;
            host(jv.square().sum()).iter().sum::<f64>() / B as f64 * ts[1]
        };
        let mut est = Vec::new();
        for seed in 0..300 {
            let s = OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(1e-3))
                .with_penalties(&[Penalty::JacobianFrobenius { probes: 1 }])
                .with_probe_seed(seed);
            let ode = NeuralOde::new(twin.clone(), s.clone(), s);
            est.push(host(ode.forward(y0.clone(), &ts).unwrap().penalties.unwrap())[0]);
        }
        let n = est.len() as f64;
        let mean = est.iter().sum::<f64>() / n;
        let se = (est.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
        assert!(se > 0.0 && (mean - exact).abs() < 3.0 * se, "mean {mean} vs exact {exact} (se {se})");
        assert!(exact < fro * ts[1] && exact > 0.9 * fro * ts[1], "near the origin tanh' ~ 1: {exact} vs T ‖A‖_F² = {}", fro * ts[1]);
        let s = OdeSettings::dopri5(1e-6, 1e-8).with_penalties(&[Penalty::Order2]);
        let plain = NeuralOde::new(Plain { l1: lin }, s.clone(), s);
        match plain.forward(y0, &ts) {
            Err(SolveError::Regulariser(nodal_solve::regularise::RegulariseError::NeedsJvp { penalty })) => assert_eq!(penalty, "order2"),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("order2 on a module without JVPs must be refused"),
        }
    }
    use nodal_solve::SolveError;
}
