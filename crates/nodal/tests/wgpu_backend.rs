//! The wgpu backend (cargo feature `wgpu`) gives the CPU backend's solutions and gradients.
//!
//! The same neural ODE (an MLP field with a time input, the same weights) is solved on burn's
//! `flex` backend and on `wgpu`, and differentiated with backprop through the solver and with
//! the continuous adjoint. With fixed RK4 steps both backends take the same steps, so the only
//! difference is `f32` round-off in the field's matmuls and `tanh` (different summation orders
//! and a shader `tanh`): relative 1e-4 of each result's largest entry bounds it with margin
//! (30 evaluations of a field with 16 hidden units, each good to a few `f32` ulps).
//!
//! Without a GPU this runs on Mesa's software Vulkan driver (lavapipe; .ci/run installs it where
//! it can). When no adapter is found the tests print why and pass, unless
//! `NODAL_REQUIRE_WGPU=1` (set by .ci/run when the driver is installed) makes that a failure.
#![cfg(feature = "wgpu")]

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use nodal::backend::Backend;
use nodal::neural_ode::{NeuralOde, OdeFunc, OdeSettings};
use nodal::solve::SolveOptions;
use nodal::solve::grad::GradMethod;
use nodal::solve::tableau::RK4;

#[derive(Module, Debug)]
struct Field {
    l1: Linear,
    l2: Linear,
}

impl OdeFunc for Field {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        self.l2.forward((self.l1.forward(y) + t).tanh())
    }
}

/// The wgpu device, or `None` (with the reason printed) when it cannot start and is not required.
fn gpu() -> Option<Device> {
    match Backend::Wgpu.device() {
        Ok(d) => Some(d),
        Err(e) => {
            assert!(std::env::var("NODAL_REQUIRE_WGPU").as_deref() != Ok("1"), "NODAL_REQUIRE_WGPU=1 but {e}");
            eprintln!("SKIPPED: {e}");
            None
        }
    }
}

fn flat(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

fn close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(1e-6);
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    eprintln!("{what}: max |wgpu - cpu| = {worst:.2e} (scale {scale:.2e})");
    assert!(worst <= tol * scale, "{what}: wgpu and cpu differ by {worst} (scale {scale})");
}

/// The same field with fresh parameters on `dev` (tracked there when `dev` is an autodiff device).
fn on_device(field: &Field, dev: &Device) -> Field {
    let linear = |l: &Linear| {
        let w = Tensor::<2>::from_data(l.weight.val().into_data(), dev);
        let b = Tensor::<1>::from_data(l.bias.as_ref().unwrap().val().into_data(), dev);
        Linear { weight: Param::from_tensor(w), bias: Some(Param::from_tensor(b)) }
    };
    Field { l1: linear(&field.l1), l2: linear(&field.l2) }
}

/// Solution at t = 1 and the gradients of `sum y(1)^2` for `y0`, `l1.weight` and `l2.bias`.
fn solve_and_grads(dev: &Device, field: &Field, y0: &TensorData, grad: GradMethod) -> [Vec<f32>; 4] {
    let f = on_device(field, dev);
    let settings = OdeSettings::new(SolveOptions::new(&RK4).with_fixed_step(1.0 / 30.0)).with_grad(grad);
    let ode = NeuralOde::new(f.clone(), settings.clone(), settings);
    let y0 = Tensor::<2>::from_data(y0.clone(), dev).require_grad();
    let [_, b, d] = [2, y0.dims()[0], y0.dims()[1]];
    let out = ode.forward(y0.clone(), &[0.0, 1.0]).unwrap();
    let y1: Tensor<2> = out.ys.slice([1..2, 0..b, 0..d]).reshape([b, d]);
    let g = y1.clone().square().sum().backward();
    let dw1 = ode.func.l1.weight.grad(&g).unwrap();
    let db2 = ode.func.l2.bias.as_ref().unwrap().grad(&g).unwrap().unsqueeze::<2>();
    [flat(y1.inner()), flat(y0.grad(&g).unwrap()), flat(dw1), flat(db2)]
}

#[test]
fn wgpu_solutions_and_gradients_equal_the_cpu_backends() {
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    cpu.seed(3);
    let field = Field { l1: LinearConfig::new(4, 16).init(&cpu), l2: LinearConfig::new(16, 4).init(&cpu) };
    let y0 = Tensor::<2>::random([8, 4], Distribution::Normal(0.0, 1.0), &cpu).into_data();
    for grad in [GradMethod::Backprop, GradMethod::Adjoint] {
        let on_cpu = solve_and_grads(&cpu.clone().autodiff(), &field, &y0, grad);
        let on_gpu = solve_and_grads(&gpu.clone().autodiff(), &field, &y0, grad);
        for (name, (g, c)) in ["y(1)", "dL/dy0", "dL/dW1", "dL/db2"].iter().zip(on_gpu.iter().zip(&on_cpu)) {
            close(&format!("{grad:?} {name}"), g, c, 1e-4);
        }
    }
}

#[test]
fn an_adaptive_solve_on_wgpu_takes_the_cpu_backends_steps() {
    // dopri5 at rtol 1e-5: the step-size controller sees the same error estimates up to
    // round-off, so both backends accept the same number of steps and agree to about the
    // tolerance.
    let Some(gpu) = gpu() else { return };
    let cpu = Device::flex();
    cpu.seed(4);
    let field = Field { l1: LinearConfig::new(4, 16).init(&cpu), l2: LinearConfig::new(16, 4).init(&cpu) };
    let y0 = Tensor::<2>::random([8, 4], Distribution::Normal(0.0, 1.0), &cpu).into_data();
    let run = |dev: &Device| {
        let s = OdeSettings::dopri5(1e-5, 1e-7);
        let ode = NeuralOde::new(on_device(&field, dev), s.clone(), s);
        let out = ode.forward(Tensor::<2>::from_data(y0.clone(), dev), &[0.0, 0.5, 1.0]).unwrap();
        (flat(out.ys.reshape([3 * 8, 4])), out.stats.nfe)
    };
    let ((yc, nc), (yg, ng)) = (run(&cpu), run(&gpu));
    assert_eq!(nc, ng, "evaluations on cpu and wgpu");
    close("dopri5 y(0, 0.5, 1)", &yg, &yc, 1e-4);
}
