//! Burn modules as SDE terms: a burn MLP drift and a burn sigmoid diffusion with the SDE
//! reference file's weights reproduce its outputs and discretise-then-optimise gradients
//! (every derivative-free scheme, backprop, checkpointing and reversible Heun's adjoint), and the
//! Milstein forward pass; gradients of Milstein on modules are a typed error.

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::neural_ode::OdeFunc;
use nodal::sde::{ModuleSde, module_sde};
use nodal::solve::sde::{Scheme, SdeError, SdeGradMethod, SdeGrid, StoredIncrements, sde_gradient, sde_solve};
use serde_json::Value;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/sde_vectors_seed0.json");

#[derive(Module, Debug)]
struct Drift {
    l1: Linear,
    l2: Linear,
}

impl OdeFunc for Drift {
    fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
        self.l2.forward(self.l1.forward(y).tanh())
    }
}

#[derive(Module, Debug)]
struct Diffusion {
    l: Linear,
}

impl OdeFunc for Diffusion {
    fn forward(&self, _t: f64, y: Tensor<2>) -> Tensor<2> {
        sigmoid(self.l.forward(y))
    }
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        _ => panic!(),
    }
}

/// `[out][in]` row-major into burn's `[in][out]` weight (a transpose), and back.
fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols).flat_map(|j| (0..rows).map(move |i| (i, j))).map(|(i, j)| m[i * cols + j]).collect()
}

fn linear(w: &Value, b: &Value, dev: &Device) -> Linear {
    let (wf, bf) = (flat(w), flat(b));
    let (out, inp) = (bf.len(), wf.len() / bf.len());
    let mut l = LinearConfig::new(inp, out).init(dev);
    l.weight = Param::from_tensor(Tensor::from_data(TensorData::new(transpose(&wf, out, inp), [inp, out]), (dev, DType::F64)));
    l.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(bf, [out]), (dev, DType::F64))));
    l
}

fn setup() -> (Value, ModuleSde<f64, Drift, Diffusion>, StoredIncrements<f64>, SdeGrid, Vec<f64>) {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let p = &file["problem"];
    let w = &p["weights"];
    let dev = Device::flex();
    let drift = Drift { l1: linear(&w["W1"], &w["b1"], &dev), l2: linear(&w["W2"], &w["b2"], &dev) };
    let diffusion = Diffusion { l: linear(&w["V"], &w["c"], &dev) };
    let terms = module_sde(&drift, &diffusion, &dev, 3);
    let dw: Vec<Vec<f64>> = p["dW"].as_array().unwrap().iter().map(flat).collect();
    let dt = p["dt"].as_f64().unwrap();
    let path = StoredIncrements::new(0.0, dt, 4, 3, dw).unwrap();
    let grid = SdeGrid { t0: 0.0, dt, steps: 64 };
    let y0 = flat(&p["y0"]);
    (file, terms, path, grid, y0)
}

/// Largest per-array distance relative to each reference array's largest entry, with nodal's
/// gradient in burn's layout (weights `[in][out]`).
fn distance(file: &Value, scheme: &str, y0: &[f64], params: &[f64]) -> f64 {
    let g = &file["reference"][scheme]["grads"];
    let (d, h) = (3, 8);
    let mut arrays = vec![("y0", y0.to_vec())];
    let mut off = 0;
    for (name, rows, cols) in [("W1", h, d), ("b1", 0, h), ("W2", d, h), ("b2", 0, d), ("V", d, d), ("c", 0, d)] {
        let n = if rows == 0 { cols } else { rows * cols };
        let block = &params[off..off + n];
        // burn's [in][out] block back to the reference's [out][in].
        arrays.push((name, if rows == 0 { block.to_vec() } else { transpose(block, cols, rows) }));
        off += n;
    }
    assert_eq!(off, params.len());
    arrays
        .iter()
        .map(|(name, v)| {
            let r = flat(&g[*name]);
            let scale = r.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            v.iter().zip(&r).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
        })
        .fold(0.0, f64::max)
}

#[test]
fn burn_modules_reproduce_the_sde_reference_vectors() {
    let out_steps = [32, 64];
    for name in ["euler_maruyama", "euler_heun", "heun", "midpoint", "reversible_heun", "milstein_ito", "milstein_strat"] {
        let scheme = Scheme::by_name(name).unwrap();
        let (file, mut terms, mut path, grid, y0) = setup();
        let sol = sde_solve(&mut terms, &mut path, scheme, &grid, &y0, &out_steps).unwrap();
        let want = flat(&file["reference"][name]["ys"]);
        let err = sol.ys.iter().flatten().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-12, "{name}: ys off by {err:e}");
        let mut methods = vec![SdeGradMethod::Backprop, SdeGradMethod::Checkpoint { every: 8 }];
        if scheme == Scheme::ReversibleHeun {
            methods.push(SdeGradMethod::ReversibleAdjoint);
        }
        for method in methods {
            let (file, mut terms, mut path, grid, y0) = setup();
            let r = sde_gradient(&mut terms, &mut path, scheme, &grid, &y0, &out_steps, method, 1 << 30, &mut |ys| {
                ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect()
            });
            if name.starts_with("milstein") {
                assert!(matches!(r, Err(SdeError::Unsupported(_))), "{name}: gradients of Milstein on modules must be a typed error");
                continue;
            }
            let g = r.unwrap();
            let d = distance(&file, name, &g.y0, &g.params);
            assert!(d < 1e-10, "{name} {method:?}: gradients off by {d:e}");
        }
    }
}
