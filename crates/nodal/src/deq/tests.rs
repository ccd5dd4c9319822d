//! The DEQ layer's equilibria and gradients against central differences, unrolled backprop and
//! each other, in f64 on a contractive tanh cell.

use super::*;
use burn::module::Param;
use burn::tensor::Device;

/// `f(z, x) = tanh(z W + x U + b)`, `|W|_F = 0.6`: a contraction (tanh' <= 1).
#[derive(Module, Debug)]
struct Cell {
    w: Param<Tensor<2>>,
    u: Param<Tensor<2>>,
    b: Param<Tensor<1>>,
}

impl DeqFunc for Cell {
    fn forward(&self, z: Tensor<2>, x: Tensor<2>) -> Tensor<2> {
        let [n, _] = z.dims();
        let d = self.b.val().dims()[0];
        (z.matmul(self.w.val()) + x.matmul(self.u.val()) + self.b.val().reshape([1, d]).expand([n, d])).tanh()
    }
}

const DZ: usize = 4;
const DX: usize = 3;
const B: usize = 3;
const NP: usize = DZ * DZ + DX * DZ + DZ;

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

/// Seeded parameters `[W, U, b]` (W rescaled to Frobenius norm 0.6), input and loss weights.
fn problem() -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut s = 42;
    let mut p: Vec<f64> = (0..NP).map(|_| lcg(&mut s)).collect();
    let fro = p[..DZ * DZ].iter().map(|v| v * v).sum::<f64>().sqrt();
    p[..DZ * DZ].iter_mut().for_each(|v| *v *= 0.6 / fro);
    let x = (0..B * DX).map(|_| lcg(&mut s)).collect();
    let c = (0..B * DZ).map(|_| lcg(&mut s)).collect();
    (p, x, c)
}

fn t2(v: &[f64], shape: [usize; 2], dev: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), (dev, DType::F64))
}

fn cell(p: &[f64], dev: &Device) -> Cell {
    let (w, rest) = p.split_at(DZ * DZ);
    let (u, b) = rest.split_at(DX * DZ);
    Cell {
        w: Param::from_tensor(t2(w, [DZ, DZ], dev)),
        u: Param::from_tensor(t2(u, [DX, DZ], dev)),
        b: Param::from_tensor(Tensor::from_data(TensorData::new(b.to_vec(), [DZ]), (dev, DType::F64))),
    }
}

fn tight(method: FixedPointMethod) -> DeqSettings {
    DeqSettings::default().with_method(method).with_tol(1e-14, 500)
}

fn layer(p: &[f64], dev: &Device, s: DeqSettings) -> Deq<Cell> {
    Deq::new(cell(p, dev), DZ, s, s)
}

/// The loss `sum(c * z*)` without gradients.
fn loss(p: &[f64], x: &[f64], c: &[f64]) -> f64 {
    let dev = Device::flex();
    let z = layer(p, &dev, tight(FixedPointMethod::anderson())).forward(t2(x, [B, DX], &dev)).unwrap().z;
    host::<f64, 2>(z).iter().zip(c).map(|(a, b)| a * b).sum()
}

/// `(dL/dparams, dL/dx)` by the layer's backward.
fn layer_grads(p: &[f64], x: &[f64], c: &[f64], s: DeqSettings) -> (Vec<f64>, Vec<f64>, DeqOutput) {
    let dev = Device::flex().autodiff();
    let deq = layer(p, &dev, s);
    let xt = t2(x, [B, DX], &dev).require_grad();
    let out = deq.forward(xt.clone()).unwrap();
    let grads = (out.z.clone() * t2(c, [B, DZ], &dev)).sum().backward();
    (param_grads(&deq.func, &grads), host::<f64, 2>(xt.grad(&grads).unwrap()), out)
}

fn param_grads(f: &Cell, grads: &burn::tensor::Gradients) -> Vec<f64> {
    let mut g = host::<f64, 2>(f.w.grad(grads).unwrap());
    g.extend(host::<f64, 2>(f.u.grad(grads).unwrap()));
    g.extend(host::<f64, 1>(f.b.grad(grads).unwrap()));
    g
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn implicit_gradients_equal_central_differences() {
    let (p, x, c) = problem();
    let (gp, gx, out) = layer_grads(&p, &x, &c, tight(FixedPointMethod::anderson()));
    let bstats = out.backward_stats().unwrap().unwrap();
    assert_eq!(bstats.converged, B);
    // h = 1e-5: truncation ~ h^2 |L'''| ~ 1e-10, solve error 1e-14 / h ~ 1e-9.
    let h = 1e-5;
    let fd = |f: &dyn Fn(f64) -> f64| (f(h) - f(-h)) / (2.0 * h);
    let fp: Vec<f64> = (0..NP)
        .map(|i| {
            fd(&|e| {
                let mut q = p.clone();
                q[i] += e;
                loss(&q, &x, &c)
            })
        })
        .collect();
    let fx: Vec<f64> = (0..B * DX)
        .map(|i| {
            fd(&|e| {
                let mut y = x.clone();
                y[i] += e;
                loss(&p, &y, &c)
            })
        })
        .collect();
    let (ep, ex) = (max_diff(&gp, &fp) / max_abs(&fp), max_diff(&gx, &fx) / max_abs(&fx));
    eprintln!("relative error vs central differences: params {ep:.2e}, input {ex:.2e}");
    assert!(ep < 1e-7 && ex < 1e-7, "params {ep:e}, input {ex:e}");
}

#[test]
fn implicit_gradients_are_the_limit_of_unrolled_backprop() {
    let (p, x, c) = problem();
    let (gp, gx, _) = layer_grads(&p, &x, &c, tight(FixedPointMethod::anderson()));
    let mut errs = Vec::new();
    for k in [2, 5, 10, 20, 100] {
        let dev = Device::flex().autodiff();
        let deq = layer(&p, &dev, tight(FixedPointMethod::anderson()));
        let xt = t2(&x, [B, DX], &dev).require_grad();
        let grads = (deq.forward_unrolled(xt.clone(), k) * t2(&c, [B, DZ], &dev)).sum().backward();
        let (up, ux) = (param_grads(&deq.func, &grads), host::<f64, 2>(xt.grad(&grads).unwrap()));
        errs.push(max_diff(&up, &gp).max(max_diff(&ux, &gx)) / max_abs(&gp));
    }
    eprintln!("unrolled K = 2, 5, 10, 20, 100: relative gradient error {errs:?}");
    assert!(errs.windows(2).all(|w| w[1] < w[0] || w[1] < 1e-13), "{errs:?}");
    assert!(errs[4] < 1e-11, "{errs:?}");
    assert!(errs[0] > 1e-3, "two steps should be visibly off: {errs:?}");
}

#[test]
fn every_solver_gives_the_same_equilibrium_and_gradient_and_acceleration_pays() {
    let (p, x, c) = problem();
    let runs: Vec<_> = [FixedPointMethod::picard(), FixedPointMethod::anderson(), FixedPointMethod::broyden()]
        .into_iter()
        .map(|m| layer_grads(&p, &x, &c, tight(m)))
        .collect();
    let z: Vec<Vec<f64>> = runs.iter().map(|r| host::<f64, 2>(r.2.z.clone())).collect();
    for r in 1..3 {
        assert!(max_diff(&z[r], &z[0]) < 1e-12);
        assert!(max_diff(&runs[r].0, &runs[0].0) < 1e-10 * max_abs(&runs[0].0));
        assert!(max_diff(&runs[r].1, &runs[0].1) < 1e-10 * max_abs(&runs[0].1));
    }
    let fwd: Vec<usize> = runs.iter().map(|r| r.2.stats.iterations()).collect();
    let bwd: Vec<usize> = runs.iter().map(|r| r.2.backward_stats().unwrap().unwrap().iterations()).collect();
    eprintln!("picard / anderson / broyden iterations: forward {fwd:?}, backward {bwd:?}");
    assert!(fwd[1] < fwd[0] && fwd[2] < fwd[0] && bwd[1] < bwd[0] && bwd[2] < bwd[0], "{fwd:?} {bwd:?}");
}

#[test]
fn one_step_gradient_is_the_last_step_backprop_and_inexact() {
    let (p, x, c) = problem();
    let (gp, _, _) = layer_grads(&p, &x, &c, tight(FixedPointMethod::anderson()));
    let (gp1, gx1, out) = layer_grads(&p, &x, &c, tight(FixedPointMethod::anderson()).with_gradient(DeqGradient::OneStep));
    assert_eq!(out.backward_stats().unwrap().unwrap().calls, 0);
    // The same as backprop through one application of f at the (detached) equilibrium.
    let dev = Device::flex().autodiff();
    let deq = layer(&p, &dev, tight(FixedPointMethod::anderson()));
    let zstar = t2(&host::<f64, 2>(out.z.clone()), [B, DZ], &dev);
    let xt = t2(&x, [B, DX], &dev).require_grad();
    let grads = (deq.func.forward(zstar, xt.clone()) * t2(&c, [B, DZ], &dev)).sum().backward();
    assert!(max_diff(&param_grads(&deq.func, &grads), &gp1) < 1e-12);
    assert!(max_diff(&host::<f64, 2>(xt.grad(&grads).unwrap()), &gx1) < 1e-12);
    let rel = max_diff(&gp1, &gp) / max_abs(&gp);
    eprintln!("one-step gradient's relative error: {rel:.3}");
    assert!(rel > 0.01, "{rel}");
}

#[test]
fn strict_settings_return_the_last_iterate_and_lenient_ones_go_on() {
    let (p, x, c) = problem();
    let dev = Device::flex();
    let capped = tight(FixedPointMethod::picard()).with_tol(1e-14, 2);
    match layer(&p, &dev, capped).forward(t2(&x, [B, DX], &dev)) {
        Err(DeqError::NotConverged { pass: "forward", last, source }) => {
            assert_eq!(last.dims(), [B, DZ]);
            // Two Picard images from 0: f(f(0)).
            let f = cell(&p, &dev);
            let xt = t2(&x, [B, DX], &dev);
            let z2 = f.forward(f.forward(Tensor::zeros([B, DZ], (&dev, DType::F64)), xt.clone()), xt);
            assert!(max_diff(&host::<f64, 2>(last), &host::<f64, 2>(z2)) < 1e-15);
            assert!(source.to_string().contains("did not converge in 2 iterations"), "{source}");
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("two iterations cannot reach 1e-14"),
    }
    let lenient = capped.accepting_unconverged(true);
    let out = layer(&p, &dev, lenient).forward(t2(&x, [B, DX], &dev)).unwrap();
    assert_eq!((out.stats.converged, out.stats.iterations()), (0, 2));
    // A strict backward that cannot converge: the report says why, the gradients are NaN.
    let mut s = tight(FixedPointMethod::anderson());
    s.backward.max_iter = 1;
    let (gp, _, out) = layer_grads(&p, &x, &c, s);
    assert!(matches!(out.backward_stats(), Some(Err(DeqError::NotConverged { pass: "backward", .. }))));
    assert!(gp.iter().all(|v| v.is_nan()));
}

#[test]
fn rows_solved_together_equal_rows_solved_alone() {
    let (p, x, c) = problem();
    let (_, gx, out) = layer_grads(&p, &x, &c, tight(FixedPointMethod::anderson()));
    let z = host::<f64, 2>(out.z.clone());
    let dev = Device::flex().autodiff();
    for r in 0..B {
        let deq = layer(&p, &dev, tight(FixedPointMethod::anderson()));
        let xt = t2(&x[r * DX..(r + 1) * DX], [1, DX], &dev).require_grad();
        let o = deq.forward(xt.clone()).unwrap();
        let grads = (o.z.clone() * t2(&c[r * DZ..(r + 1) * DZ], [1, DZ], &dev)).sum().backward();
        assert_eq!(host::<f64, 2>(o.z), z[r * DZ..(r + 1) * DZ].to_vec(), "row {r}");
        assert_eq!(o.stats.row_iterations[0], out.stats.row_iterations[r]);
        assert!(max_diff(&host::<f64, 2>(xt.grad(&grads).unwrap()), &gx[r * DX..(r + 1) * DX]) < 1e-14);
    }
}

#[test]
fn single_precision_layers_agree_with_double_precision() {
    let (p, x, c) = problem();
    let (gp, gx, _) = layer_grads(&p, &x, &c, tight(FixedPointMethod::anderson()));
    let dev = Device::flex().autodiff();
    let f32s = |v: &[f64], shape: [usize; 2]| {
        Tensor::<2>::from_data(TensorData::new(v.iter().map(|&a| a as f32).collect::<Vec<_>>(), shape), (&dev, DType::F32))
    };
    let (w, rest) = p.split_at(DZ * DZ);
    let (u, b) = rest.split_at(DX * DZ);
    let f = Cell {
        w: Param::from_tensor(f32s(w, [DZ, DZ])),
        u: Param::from_tensor(f32s(u, [DX, DZ])),
        b: Param::from_tensor(f32s(b, [1, DZ]).reshape([DZ])),
    };
    let s = DeqSettings::default().with_tol(1e-6, 100);
    let deq = Deq::new(f, DZ, s, s);
    let xt = f32s(&x, [B, DX]).require_grad();
    let out = deq.forward(xt.clone()).unwrap();
    let grads = (out.z * f32s(&c, [B, DZ])).sum().backward();
    let gx32: Vec<f64> = host::<f32, 2>(xt.grad(&grads).unwrap()).into_iter().map(f64::from).collect();
    let gw32: Vec<f64> = host::<f32, 2>(deq.func.w.grad(&grads).unwrap()).into_iter().map(f64::from).collect();
    assert!(max_diff(&gx32, &gx) < 1e-4 * max_abs(&gx), "{gx32:?} vs {gx:?}");
    assert!(max_diff(&gw32, &gp[..DZ * DZ]) < 1e-4 * max_abs(&gp));
}
