//! The flow against closed forms (a linear flow maps a Gaussian to a Gaussian), Hutchinson's
//! estimator against the exact trace over many seeds, gradients against central differences and
//! across gradient methods, and the typed error for dynamics without JVPs.

use super::*;
use crate::jvp::Dual;
use crate::jvp::activation::tanh;
use crate::jvp::time::{concat_time, with_time};
use crate::testing::{Cast, Collect, Shift};
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{DType, Device, TensorData};
use nodal_solve::SolveOptions;
use nodal_solve::grad::GradMethod;
use nodal_solve::tableau::{DOPRI5, RK4};

const D: usize = 3;
/// A fixed matrix with trace 0.35 and no symmetry.
const A: [[f64; D]; D] = [[0.3, -0.8, 0.2], [0.5, -0.4, 0.1], [-0.3, 0.6, 0.45]];

/// `dz/dt = A z`.
#[derive(Module, Debug)]
struct LinearFlow {
    a: Param<Tensor<2>>,
}

impl LinearFlow {
    fn new(dev: &Device) -> Self {
        let v: Vec<f64> = A.iter().flatten().copied().collect();
        Self { a: Param::from_tensor(Tensor::from_data(TensorData::new(v, [D, D]), (dev, DType::F64))) }
    }
}

impl OdeFunc for LinearFlow {
    fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
        y.matmul(self.a.val().transpose())
    }
    fn has_jvp(&self) -> bool {
        true
    }
    fn forward_jvp(&self, t: f64, y: Dual<2>) -> Result<Dual<2>, JvpError> {
        Ok(Dual { tangent: y.tangent.matmul(self.a.val().transpose()), primal: self.forward(t, y.primal) })
    }
}

/// The same dynamics without JVPs.
#[derive(Module, Debug)]
struct NoJvp {
    a: Param<Tensor<2>>,
}
impl OdeFunc for NoJvp {
    fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
        y.matmul(self.a.val().transpose())
    }
}

fn host<const R: usize>(t: Tensor<R>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()
}

/// `exp(A)` by a 40-term Taylor series (|A| < 1.5: the remainder is below 1e-30).
fn expm() -> [[f64; D]; D] {
    let mut out = [[0.0; D]; D];
    let mut term = [[0.0; D]; D];
    for i in 0..D {
        out[i][i] = 1.0;
        term[i][i] = 1.0;
    }
    for n in 1..40 {
        let mut next = [[0.0; D]; D];
        for i in 0..D {
            for j in 0..D {
                next[i][j] = (0..D).map(|k| term[i][k] * A[k][j]).sum::<f64>() / n as f64;
            }
        }
        term = next;
        for i in 0..D {
            for j in 0..D {
                out[i][j] += term[i][j];
            }
        }
    }
    out
}

fn points(dev: &Device) -> Tensor<2> {
    let v = vec![0.3, -1.2, 0.7, 1.5, 0.2, -0.4, -0.9, 0.8, 2.0, 0.0, 0.1, -0.3];
    Tensor::from_data(TensorData::new(v, [4, D]), (dev, DType::F64))
}

fn tight() -> OdeSettings {
    OdeSettings::dopri5(1e-11, 1e-13)
}

/// `log p(x) = log N(e^A x) + tr A` and `z(1) = e^A x`, to the solver's tolerance.
#[test]
fn linear_flow_matches_the_closed_form() {
    let dev = Device::flex();
    let cnf = Cnf::new(LinearFlow::new(&dev), CnfSettings::default().with_penalties(true, true), tight(), tight());
    let x = points(&dev);
    let out = cnf.log_prob(x.clone(), 0).unwrap();
    let (z, lp, pen) = (host(out.z), host(out.log_prob), host(out.penalties.unwrap()));
    let m = expm();
    let tr: f64 = (0..D).map(|i| A[i][i]).sum();
    let xs = host(x);
    for r in 0..4 {
        let mz: Vec<f64> = (0..D).map(|i| (0..D).map(|j| m[i][j] * xs[r * D + j]).sum()).collect();
        for i in 0..D {
            assert!((z[r * D + i] - mz[i]).abs() < 1e-9, "z(1)[{r},{i}] = {} vs e^A x = {}", z[r * D + i], mz[i]);
        }
        let log_n = -0.5 * mz.iter().map(|v| v * v).sum::<f64>() - 0.5 * D as f64 * (2.0 * std::f64::consts::PI).ln();
        assert!((lp[r] - (log_n + tr)).abs() < 1e-9, "log p row {r}: {} vs closed form {}", lp[r], log_n + tr);
    }
    // The Jacobian is A everywhere: ∫_0^1 ‖A‖_F² dt exactly, for the exact trace's penalty.
    let fro: f64 = A.iter().flatten().map(|v| v * v).sum();
    assert!((pen[1] - fro).abs() < 1e-10, "jacobian penalty {} vs ‖A‖_F² = {fro}", pen[1]);
    assert!(pen[0] > 0.0);
}

/// Hutchinson's `Δ(1) = -εᵀ A ε` per seed: the mean over 400 seeds (4 rows each) is `-tr A`
/// within three standard errors, for both probe distributions; so is the Jacobian penalty's
/// estimate of `‖A‖_F²`.
#[test]
fn hutchinson_is_unbiased_over_seeds() {
    let dev = Device::flex();
    let tr: f64 = (0..D).map(|i| A[i][i]).sum();
    let fro: f64 = A.iter().flatten().map(|v| v * v).sum();
    for dist in [Probe::Rademacher, Probe::Gaussian] {
        let settings = CnfSettings::default().with_trace(Trace::Hutchinson { probes: 1, distribution: dist }).with_penalties(false, true);
        let cnf = Cnf::new(LinearFlow::new(&dev), settings, OdeSettings::dopri5(1e-8, 1e-10), OdeSettings::dopri5(1e-8, 1e-10));
        let (mut deltas, mut jacs) = (Vec::new(), Vec::new());
        for seed in 0..400 {
            let out = cnf.log_prob(points(&dev), seed).unwrap();
            deltas.extend(host(out.delta_logp));
            jacs.push(host(out.penalties.unwrap())[0]);
        }
        for (name, xs, want) in [("trace", deltas.iter().map(|d| -d).collect::<Vec<_>>(), tr), ("jacobian", jacs, fro)] {
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let se = (xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
            assert!(se > 0.0, "{dist:?} {name}: the estimates vary over seeds");
            assert!((mean - want).abs() < 3.0 * se, "{dist:?} {name}: mean {mean} vs exact {want}, standard error {se}");
        }
        // Fixed seed, fixed probes: the same estimate twice.
        let a = host(cnf.log_prob(points(&dev), 7).unwrap().delta_logp);
        let b = host(cnf.log_prob(points(&dev), 7).unwrap().delta_logp);
        assert_eq!(a, b);
    }
}

#[test]
fn dynamics_without_jvps_are_a_typed_error() {
    let dev = Device::flex();
    let lf = LinearFlow::new(&dev);
    let cnf = Cnf::new(NoJvp { a: lf.a }, CnfSettings::default(), tight(), tight());
    match cnf.log_prob(points(&dev), 0) {
        Err(CnfError::Jvp(JvpError::NotProvided { feature, module })) => {
            assert_eq!(feature, "the exact trace");
            assert!(module.contains("NoJvp"));
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a flow without JVPs must be refused"),
    }
}

/// `f(t, z) = W2 tanh(W1 [z, t] + b1) + b2`.
#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    l2: Linear,
}
impl OdeFunc for Mlp {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        self.l2.forward(self.l1.forward(with_time(t, y)).tanh())
    }
    fn has_jvp(&self) -> bool {
        true
    }
    fn forward_jvp(&self, t: f64, y: Dual<2>) -> Result<Dual<2>, JvpError> {
        use crate::jvp::JvpLayer;
        Ok(self.l2.forward_jvp(tanh(self.l1.forward_jvp(concat_time(t, y)))))
    }
}

fn mlp(dev: &Device) -> Mlp {
    Mlp { l1: LinearConfig::new(D + 1, 6).init(dev), l2: LinearConfig::new(6, D).init(dev) }.map(&mut Cast(DType::F64))
}

/// Loss `-mean log p + 0.1 (kinetic + jacobian)` and its gradient with respect to every
/// parameter (flattened in visiting order).
fn loss_and_grad(cnf: &Cnf<Mlp>, dev: &Device) -> (f64, Vec<f64>) {
    let out = cnf.log_prob(points(dev), 3).unwrap();
    let loss = out.log_prob.mean().neg() + out.penalties.unwrap().sum().mul_scalar(0.1);
    let value = host(loss.clone())[0];
    let grads = loss.backward();
    let gp = burn::optim::GradientsParams::from_grads(grads, cnf);
    let mut flat = Vec::new();
    cnf.visit(&mut Collect(&gp, &mut flat));
    (value, flat)
}

/// Exact second-order gradients through the solver: backprop through fixed RK4 steps against
/// central differences of the same discretised loss (f64), with Hutchinson probes and both
/// penalties on.
#[test]
fn gradients_match_central_differences() {
    let dev = Device::flex().autodiff();
    let rk4 = SolveOptions::new(&RK4).with_fixed_step(0.125);
    let settings = OdeSettings::new(rk4);
    let cs = CnfSettings::default().with_trace(Trace::hutchinson()).with_penalties(true, true);
    let cnf = Cnf::new(mlp(&dev), cs, settings.clone(), settings);
    let (_, g) = loss_and_grad(&cnf, &dev);
    let h = 1e-5;
    let n = g.len();
    for i in (0..n).step_by(3) {
        let at = |by: f64| {
            let mut c = cnf.clone();
            c.func = c.func.map(&mut Shift::new(i, by));
            loss_and_grad(&c, &dev).0
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        assert!((g[i] - fd).abs() < 1e-7 * (1.0 + fd.abs()), "param {i}: backprop {} vs central difference {fd}", g[i]);
    }
}

/// Backprop, checkpointing and the continuous adjoint through adaptive dopri5 agree.
#[test]
fn gradient_methods_agree() {
    let dev = Device::flex().autodiff();
    let cs = CnfSettings::default().with_penalties(true, true);
    let mk = |g: GradMethod| {
        let s = OdeSettings::new(SolveOptions::new(&DOPRI5).with_tol(1e-9, 1e-11)).with_grad(g);
        Cnf::new(mlp(&dev), cs.clone(), s.clone(), s)
    };
    let base = mk(GradMethod::Backprop);
    let (_, g0) = loss_and_grad(&base, &dev);
    for method in [GradMethod::Checkpoint(None), GradMethod::Adjoint] {
        let mut c = mk(method);
        c.func = base.func.clone();
        let (_, g) = loss_and_grad(&c, &dev);
        let scale = g0.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in g0.iter().zip(&g).enumerate() {
            assert!((a - b).abs() < 1e-6 * scale, "{method:?} param {i}: {b} vs backprop {a}");
        }
    }
}

/// Sampling inverts the flow: x -> z(1) -> back to x.
#[test]
fn sampling_inverts_the_flow() {
    let dev = Device::flex();
    let cnf = Cnf::new(mlp(&dev), CnfSettings::default(), tight(), tight());
    let x = points(&dev);
    let z = cnf.log_prob(x.clone(), 0).unwrap().z;
    let (back, _) = cnf.sample(z).unwrap();
    for (a, b) in host(back).iter().zip(host(x)) {
        assert!((a - b).abs() < 1e-8, "{a} vs {b}");
    }
}
