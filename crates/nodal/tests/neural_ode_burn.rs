//! `NeuralOde` as one node of burn's autodiff graph: its gradients equal those of burn's own
//! autodiff through the same RK4 steps written with burn ops (an independent computation), the
//! three gradient methods agree, and a model with layers before and after the block trains with
//! a burn optimiser.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, RmsPropConfig};
use burn::tensor::{Device, Distribution, Tensor};
use nodal::neural_ode::{NeuralOde, OdeFunc, OdeSettings};
use nodal::solve::SolveOptions;
use nodal::solve::grad::GradMethod;
use nodal::solve::tableau::{DOPRI5, RK4};

#[derive(Module, Debug)]
struct Field {
    l1: Linear,
    l2: Linear,
}

impl OdeFunc for Field {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        // Time-conditioned: the hidden layer is shifted by t.
        self.l2.forward((self.l1.forward(y) + t).tanh())
    }
}

fn device() -> Device {
    Device::flex().autodiff()
}

fn field(dev: &Device, seed: u64) -> Field {
    dev.seed(seed);
    Field { l1: LinearConfig::new(3, 16).init(dev), l2: LinearConfig::new(16, 3).init(dev) }
}

fn flat(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

/// RK4 with burn ops: burn's own autodiff differentiates it.
fn rk4_burn(f: &Field, y0: Tensor<2>, t0: f64, h: f64, n: usize) -> Tensor<2> {
    let mut y = y0;
    let mut t = t0;
    for _ in 0..n {
        let k1 = f.forward(t, y.clone());
        let k2 = f.forward(t + h / 2.0, y.clone() + k1.clone() * (h / 2.0));
        let k3 = f.forward(t + h / 2.0, y.clone() + k2.clone() * (h / 2.0));
        let k4 = f.forward(t + h, y.clone() + k3.clone() * h);
        y = y + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
        t += h;
    }
    y
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let m = b.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-6);
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * m, "{x} vs {y} (scale {m})");
    }
}

#[test]
fn node_gradients_equal_burn_autodiff_through_the_same_rk4_steps() {
    let dev = device();
    let f = field(&dev, 1);
    let y0 = Tensor::<2>::random([5, 3], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    // Reference: burn autodiff through 8 RK4 steps of 0.125 on [0, 1].
    let yr = rk4_burn(&f, y0.clone(), 0.0, 0.125, 8);
    let gr = yr.clone().square().sum().backward();
    let ref_y0 = flat(y0.grad(&gr).unwrap());
    let ref_w1 = flat(f.l1.weight.grad(&gr).unwrap());
    let ref_w2 = flat(f.l2.weight.grad(&gr).unwrap());
    for grad in [GradMethod::Backprop, GradMethod::Checkpoint(Some(3))] {
        let settings = OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(0.125)).with_grad(grad);
        let ode = NeuralOde::new(f.clone(), settings.clone(), settings);
        let y0b = Tensor::<2>::from_data(y0.clone().inner().into_data(), &dev).require_grad();
        let out = ode.forward(y0b.clone(), &[0.0, 1.0]).unwrap();
        let yn: Tensor<2> = out.ys.clone().slice([1..2, 0..5, 0..3]).reshape([5, 3]);
        close(&flat(yn.clone().inner()), &flat(yr.clone().inner()), 1e-5);
        let g = yn.square().sum().backward();
        close(&flat(y0b.grad(&g).unwrap()), &ref_y0, 1e-4);
        close(&flat(ode.func.l1.weight.grad(&g).unwrap()), &ref_w1, 1e-4);
        close(&flat(ode.func.l2.weight.grad(&g).unwrap()), &ref_w2, 1e-4);
        let stats = out.backward_stats().expect("backward ran").unwrap();
        // One VJP per RK4 stage: 8 steps x 4 stages, whether the states were stored or recomputed.
        assert_eq!(stats.nvjp, 32, "{grad:?}");
    }
}

#[test]
fn both_adjoints_agree_with_backprop_at_tight_tolerance() {
    let dev = device();
    let f = field(&dev, 2);
    let y0 = Tensor::<2>::random([4, 3], Distribution::Normal(0.0, 1.0), &dev);
    let mut grads = Vec::new();
    for grad in [GradMethod::Backprop, GradMethod::Adjoint, GradMethod::AdjointCheckpointed(None), GradMethod::AdjointCheckpointed(Some(2))]
    {
        let s = OdeSettings::new(SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-6)).with_grad(grad);
        let ode = NeuralOde::new(f.clone(), s.clone(), s);
        let out = ode.forward(y0.clone(), &[0.0, 0.5, 1.0]).unwrap();
        let g = out.ys.square().sum().backward();
        grads.push(flat(ode.func.l1.weight.grad(&g).unwrap()));
    }
    for (g, name) in grads[1..].iter().zip(["adjoint", "adjoint-checkpointed", "adjoint-checkpointed:2"]) {
        let worst = g.iter().zip(&grads[0]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 2e-3 * grads[0].iter().fold(0.0f32, |m, x| m.max(x.abs())), "{name}: off by {worst}");
    }
}

#[derive(Module, Debug)]
struct Model {
    enc: Linear,
    ode: NeuralOde<Field>,
    dec: Linear,
}

#[test]
fn layers_before_and_after_the_block_train_with_a_burn_optimiser() {
    let dev = device();
    dev.seed(7);
    let s = OdeSettings::dopri5(1e-4, 1e-6).with_grad(GradMethod::Adjoint);
    let mut model = Model {
        enc: LinearConfig::new(2, 3).init(&dev),
        // Evaluation: fixed RK4 steps of 0.125, whose work (8 steps x 4 stages) tells them apart.
        ode: NeuralOde::new(field(&dev, 3), s.clone(), OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(0.125))),
        dec: LinearConfig::new(3, 1).init(&dev),
    };
    let x = Tensor::<2>::random([32, 2], Distribution::Uniform(-1.0, 1.0), &dev);
    // Target: a smooth function of the input.
    let target = (x.clone().slice([0..32, 0..1]) * 2.0).sin() * 0.5;
    let mut opt = RmsPropConfig::new().with_momentum(0.0).with_epsilon(1e-8).init();
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..60 {
        let h = model.enc.forward(x.clone());
        let out = model.ode.forward(h, &[0.0, 1.0]).unwrap();
        let z: Tensor<2> = out.ys.slice([1..2, 0..32, 0..3]).reshape([32, 3]);
        let loss = (model.dec.forward(z) - target.clone()).square().mean();
        last = loss.clone().into_scalar::<f32>();
        first.get_or_insert(last);
        let grads = loss.backward();
        // The encoder receives (non-zero) gradients through the ODE node.
        let g_enc = flat(model.enc.weight.grad(&grads).expect("the encoder has a gradient"));
        assert!(g_enc.iter().any(|g| *g != 0.0), "the encoder's gradient is zero");
        let gp = GradientsParams::from_grads(grads, &model);
        model = opt.step(1e-2, model, gp);
    }
    let first = first.unwrap();
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    // Inference on plain tensors uses the evaluation settings and builds no graph.
    // Inference uses the evaluation settings (RK4, 32 evaluations), training the adaptive ones.
    let valid = model.valid();
    let out = valid.ode.forward(valid.enc.forward(x.clone().inner()), &[0.0, 1.0]).unwrap();
    assert!(!out.ys.is_autodiff());
    assert_eq!((out.stats.nfe, out.stats.accepted), (32, 8), "evaluation settings");
    let train = model.ode.forward(model.enc.forward(x), &[0.0, 1.0]).unwrap();
    assert_eq!(train.stats.nfe, 2 + 6 * train.stats.steps(), "training settings (dopri5 accounting)");
}

#[test]
/// Per-sample mode gives every row its own step sequence: each row takes exactly the steps it takes
/// when solved alone, so rows of very different scale do different amounts of work.
fn per_sample_mode_matches_rows_solved_alone_step_for_step() {
    let dev = device();
    let f = field(&dev, 5);
    let s = OdeSettings::dopri5(1e-6, 1e-8).with_per_sample(true);
    let ode = NeuralOde::new(f.clone(), s.clone(), s);
    let data = Tensor::<2>::random([3, 3], Distribution::Normal(0.0, 1.0), &dev).inner();
    let scales = Tensor::<2>::from_data([[0.01f32], [1.0], [5.0]], &data.device());
    let y0 = Tensor::from_inner(data * scales).require_grad();
    let out = ode.forward(y0.clone(), &[0.0, 0.5, 1.0]).unwrap();
    assert!(out.row_status.iter().all(|s| s.is_none()));
    assert_eq!(out.row_stats.len(), 3);
    let g = out.ys.clone().square().sum().backward();
    let gy0 = flat(y0.grad(&g).unwrap());
    let gw = flat(ode.func.l1.weight.grad(&g).unwrap());
    // Each row alone, joint mode (one row: the same steps).
    let joint = NeuralOde::new(f.clone(), OdeSettings::dopri5(1e-6, 1e-8), OdeSettings::dopri5(1e-6, 1e-8));
    let mut gw_sum = vec![0.0f32; gw.len()];
    for r in 0..3 {
        let yr = Tensor::<2>::from_data(y0.clone().inner().slice([r..r + 1, 0..3]).into_data(), &dev).require_grad();
        let o = joint.forward(yr.clone(), &[0.0, 0.5, 1.0]).unwrap();
        let row_ys: Tensor<2> = out.ys.clone().inner().slice([0..3, r..r + 1, 0..3]).reshape([3, 3]);
        close(&flat(row_ys), &flat(o.ys.clone().inner().reshape([3, 3])), 1e-6);
        let (mine, alone) = (&out.row_stats[r], &o.stats);
        assert_eq!(
            (mine.accepted, mine.rejected, mine.nfe),
            (alone.accepted, alone.rejected, alone.nfe),
            "row {r}: steps differ from its own solve"
        );
        let gr = o.ys.square().sum().backward();
        close(&gy0[r * 3..r * 3 + 3], &flat(yr.grad(&gr).unwrap()), 1e-4);
        for (a, b) in gw_sum.iter_mut().zip(flat(joint.func.l1.weight.grad(&gr).unwrap())) {
            *a += b;
        }
    }
    close(&gw, &gw_sum, 1e-4);
    let nfe: Vec<usize> = out.row_stats.iter().map(|s| s.nfe).collect();
    // Near zero the absolute tolerance dominates, so the row of scale 0.01 needs more steps.
    assert!(nfe[0] > nfe[2], "rows of scale 0.01 and 5 should do different work: {nfe:?}");
}

#[test]
fn per_sample_nan_row_fails_alone() {
    let dev = device().inner();
    let f = field(&device(), 6).valid();
    let s = OdeSettings::dopri5(1e-5, 1e-7).with_per_sample(true);
    let ode = NeuralOde::new(f, s.clone(), s);
    let y0 = Tensor::<2>::from_data([[0.1f32, 0.2, 0.3], [f32::NAN, 0.0, 0.0], [1.0, -1.0, 0.5]], &dev);
    let out = ode.forward(y0, &[0.0, 1.0]).unwrap();
    assert!(out.row_status[1].is_some());
    assert!(out.row_status[0].is_none() && out.row_status[2].is_none());
    // ys is [times, batch, dim]: row 1 is NaN at both times, rows 0 and 2 are finite.
    let ys = flat(out.ys.reshape([6, 3]));
    for (k, v) in ys.iter().enumerate() {
        let row = (k / 3) % 3;
        assert_eq!(v.is_nan(), row == 1, "entry {k}");
    }
}

/// RK4 with burn ops on the kinetic-energy-augmented system `[y, r]`, `r' = Σ‖f‖² / rows`.
fn rk4_burn_kinetic(f: &Field, y0: Tensor<2>, t0: f64, h: f64, n: usize) -> (Tensor<2>, Tensor<1>) {
    let rows = y0.dims()[0] as f64;
    let q = |k: &Tensor<2>| k.clone().square().sum() / rows;
    let mut y = y0;
    let mut r: Option<Tensor<1>> = None;
    let mut t = t0;
    for _ in 0..n {
        let k1 = f.forward(t, y.clone());
        let k2 = f.forward(t + h / 2.0, y.clone() + k1.clone() * (h / 2.0));
        let k3 = f.forward(t + h / 2.0, y.clone() + k2.clone() * (h / 2.0));
        let k4 = f.forward(t + h, y.clone() + k3.clone() * h);
        let dr = (q(&k1) + q(&k2) * 2.0 + q(&k3) * 2.0 + q(&k4)) * (h / 6.0);
        r = Some(match r {
            Some(r) => r + dr,
            None => dr,
        });
        y = y + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
        t += h;
    }
    (y, r.expect("at least one step"))
}

#[test]
fn kinetic_penalty_value_and_gradients_equal_burn_autodiff() {
    use nodal::solve::regularise::Penalty;
    let dev = device();
    let f = field(&dev, 4);
    let y0 = Tensor::<2>::random([5, 3], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let lambda = 0.7;
    let (yr, rr) = rk4_burn_kinetic(&f, y0.clone(), 0.0, 0.125, 8);
    let gr = (yr.clone().square().sum() + rr.clone() * lambda).backward();
    let (ref_y0, ref_w1, ref_b1) =
        (flat(y0.grad(&gr).unwrap()), flat(f.l1.weight.grad(&gr).unwrap()), f.l1.bias.as_ref().unwrap().grad(&gr).unwrap());
    for grad in [GradMethod::Backprop, GradMethod::Checkpoint(Some(3))] {
        let settings = OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(0.125)).with_grad(grad).with_penalties(&[Penalty::Kinetic]);
        let ode = NeuralOde::new(f.clone(), settings.clone(), settings);
        let y0b = Tensor::<2>::from_data(y0.clone().inner().into_data(), &dev).require_grad();
        let out = ode.forward(y0b.clone(), &[0.0, 1.0]).unwrap();
        let pen = out.penalties.clone().expect("penalty values");
        let rv = flat(rr.clone().inner().reshape([1, 1]));
        close(&flat(pen.clone().inner().reshape([1, 1])), &rv, 1e-5);
        assert!(rv[0] > 1e-3, "a non-trivial penalty: {}", rv[0]);
        let yn: Tensor<2> = out.ys.clone().slice([1..2, 0..5, 0..3]).reshape([5, 3]);
        close(&flat(yn.clone().inner()), &flat(yr.clone().inner()), 1e-5);
        let g = (yn.square().sum() + pen * lambda).backward();
        close(&flat(y0b.grad(&g).unwrap()), &ref_y0, 1e-4);
        close(&flat(ode.func.l1.weight.grad(&g).unwrap()), &ref_w1, 1e-4);
        let b1 = ode.func.l1.bias.as_ref().unwrap().grad(&g).unwrap();
        close(&flat(b1.reshape([1, 16])), &flat(ref_b1.clone().reshape([1, 16])), 1e-4);
    }
    // The adjoint differentiates the same integral (continuous adjoint, tight tolerances).
    let s = OdeSettings::new(SolveOptions::new(&DOPRI5).with_tol(1e-7, 1e-7)).with_penalties(&[Penalty::Kinetic]);
    let mut gw = Vec::new();
    for grad in [GradMethod::Backprop, GradMethod::Adjoint] {
        let ode = NeuralOde::new(f.clone(), s.clone().with_grad(grad), s.clone());
        let y0b = Tensor::<2>::from_data(y0.clone().inner().into_data(), &dev);
        let out = ode.forward(y0b, &[0.0, 1.0]).unwrap();
        let g = (out.penalties.unwrap() * lambda).sum().backward();
        gw.push(flat(ode.func.l1.weight.grad(&g).unwrap()));
    }
    close(&gw[0], &gw[1], 2e-3);
    // Jacobian penalties need forward-mode products burn modules do not provide: a typed error.
    let s = OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(0.5)).with_penalties(&[Penalty::Order2]);
    let ode = NeuralOde::new(f.clone(), s.clone(), s);
    let e = ode.forward(y0.clone(), &[0.0, 1.0]).err().expect("refused");
    assert!(e.to_string().contains("order2"), "{e}");
    // Evaluation mode (no autodiff) reports the penalty too.
    let s = OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(0.125)).with_penalties(&[Penalty::Kinetic]);
    let ode = NeuralOde::new(f.clone(), s.clone(), s).valid();
    let out = ode.forward(y0.clone().inner(), &[0.0, 1.0]).unwrap();
    let v = out.penalties.unwrap().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    close(&v, &flat(rr.inner().reshape([1, 1])), 1e-5);
}

/// Per-sample mode with a penalty: every row integrates its own kinetic energy and the block
/// reports their mean (the joint definition). On a fixed RK4 grid every row takes the joint
/// steps, so value and gradients equal burn's autodiff through the joint RK4 steps.
#[test]
fn per_sample_kinetic_penalty_equals_burn_autodiff() {
    use nodal::solve::regularise::Penalty;
    let dev = device();
    let f = field(&dev, 8);
    let y0 = Tensor::<2>::random([4, 3], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let lambda = 0.3;
    let (yr, rr) = rk4_burn_kinetic(&f, y0.clone(), 0.0, 0.125, 8);
    let gr = (yr.clone().square().sum() + rr.clone() * lambda).backward();
    let (ref_y0, ref_w1) = (flat(y0.grad(&gr).unwrap()), flat(f.l1.weight.grad(&gr).unwrap()));
    for grad in [GradMethod::Backprop, GradMethod::Checkpoint(Some(3))] {
        let settings = OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(0.125))
            .with_grad(grad)
            .with_penalties(&[Penalty::Kinetic])
            .with_per_sample(true);
        let ode = NeuralOde::new(f.clone(), settings.clone(), settings);
        let y0b = Tensor::<2>::from_data(y0.clone().inner().into_data(), &dev).require_grad();
        let out = ode.forward(y0b.clone(), &[0.0, 1.0]).unwrap();
        assert_eq!(out.row_stats.len(), 4);
        let pen = out.penalties.clone().expect("penalty values");
        close(&flat(pen.clone().inner().reshape([1, 1])), &flat(rr.clone().inner().reshape([1, 1])), 1e-5);
        let yn: Tensor<2> = out.ys.clone().slice([1..2, 0..4, 0..3]).reshape([4, 3]);
        close(&flat(yn.clone().inner()), &flat(yr.clone().inner()), 1e-5);
        let g = (yn.square().sum() + pen * lambda).backward();
        close(&flat(y0b.grad(&g).unwrap()), &ref_y0, 1e-4);
        close(&flat(ode.func.l1.weight.grad(&g).unwrap()), &ref_w1, 1e-4);
    }
}

/// The one-pass `eval_and_vjp` of a burn module (what the continuous adjoint calls at every
/// backward evaluation) gives the same `f`, `aᵀ ∂f/∂y` and `aᵀ ∂f/∂θ` as `eval` and `vjp`
/// called apart: the same kernels on the same inputs, so equal to f32 round-off of op order.
#[test]
fn module_eval_and_vjp_in_one_pass_equals_eval_then_vjp() {
    use nodal::neural_ode::module_dynamics::ModuleDynamics;
    use nodal::solve::{Dynamics, VjpDynamics};
    let dev = device();
    let f = field(&dev, 7);
    let mut dynamics = ModuleDynamics::new(&f, &dev, 3);
    let y: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin()).collect();
    let a: Vec<f32> = (0..12).map(|i| (i as f32 * 0.91).cos()).collect();
    let (mut dy1, mut ay1, mut ap1) = (vec![0.0f32; 12], vec![0.0f32; 12], dynamics.param_zeros());
    dynamics.eval(0.3, &y, &mut dy1);
    dynamics.vjp(0.3, &y, &a, &mut ay1, &mut ap1);
    let (mut dy2, mut ay2, mut ap2) = (vec![9.0f32; 12], vec![9.0f32; 12], dynamics.param_zeros());
    dynamics.eval_and_vjp(0.3, &y, &a, &mut dy2, &mut ay2, &mut ap2);
    close(&dy2, &dy1, 1e-6);
    close(&ay2, &ay1, 1e-6);
    close(&ap2, &ap1, 1e-6);
    assert!(ap1.iter().any(|v| *v != 0.0), "the parameter gradient is not trivially zero");
}

/// Backprop through RK4 with remembered evaluations: the reverse pass's stage replays are
/// served from memory (hits counted), every stage's VJP reverses the graph kept from the forward
/// solve, and the gradients are bitwise those of the run without the memo.
#[test]
fn remembered_evaluations_serve_the_replay_and_leave_gradients_unchanged() {
    use nodal::neural_ode::module_dynamics::ModuleDynamics;
    use nodal::solve::RmsNorm;
    use nodal::solve::grad::{AdjointOptions, solve_for_gradients};
    let dev = device();
    let f = field(&dev, 11);
    let y0: Vec<f32> = (0..15).map(|i| (i as f32 * 0.53).sin()).collect();
    let ts = [0.0, 1.0];
    let opts = SolveOptions::new(&RK4).with_fixed_step(0.25);
    let run = |memo: usize| {
        let mut dynamics = ModuleDynamics::new(&f, &dev, 3);
        dynamics.remember_evaluations(memo);
        let (sol, backward) =
            solve_for_gradients(&mut dynamics, &y0, &ts, &opts, &RmsNorm, GradMethod::Backprop).map_err(|e| e.error).unwrap();
        let ybar: Vec<f32> = sol.ys[1].iter().map(|v| 2.0 * v).collect();
        let adj = AdjointOptions { solve: opts.clone(), seminorm: false };
        let g = backward.gradients(&mut dynamics, &ts, &sol.ys, &[vec![0.0; 15], ybar], &adj, false).unwrap();
        (g.y0, g.params, dynamics.remembered_hits(), dynamics.remembered_graphs_used())
    };
    let (y_off, p_off, hits_off, graphs_off) = run(0);
    let (y_on, p_on, hits_on, graphs_on) = run(1 << 20);
    assert_eq!((hits_off, graphs_off), (0, 0));
    // Four steps, three stage replays each (the last stage's value is not needed).
    assert_eq!(hits_on, 12);
    // Every stage's VJP (four per step) reversed the graph of the solve's own forward pass.
    assert_eq!(graphs_on, 16);
    assert_eq!(y_on, y_off);
    assert_eq!(p_on, p_off);
}
