//! The SDE reference vectors (float64, stored Brownian increments): every scheme's outputs and
//! discretise-then-optimise gradients against the reference to the agreed tolerances (ys 1e-12
//! absolute, gradients 1e-10 relative to each array's largest entry), by backprop, by
//! checkpointing and (reversible Heun) by the O(1)-memory reversible adjoint; the continuous
//! adjoint's distance from discretise-then-optimise next to torchsde's on the same path.

use nodal_formats::sde_problem::SdeProblem;
use nodal_solve::sde::{Diffusion, NeuralSde, Scheme, SdeGradMethod, SdeGrid, StoredIncrements, sde_gradient, sde_solve};
use serde_json::Value;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/sde_vectors_seed0.json");
const NAMES: [&str; 9] = [
    "euler_maruyama",
    "milstein_ito",
    "milstein_ito_diag",
    "milstein_ito_commutative",
    "milstein_strat",
    "euler_heun",
    "heun",
    "midpoint",
    "reversible_heun",
];
const GRADS: [&str; 7] = ["y0", "W1", "b1", "W2", "b2", "V", "c"];

fn load() -> (SdeProblem, Value) {
    let text = std::fs::read_to_string(FILE).unwrap();
    (SdeProblem::from_json_str(&text, FILE).unwrap(), serde_json::from_str(&text).unwrap())
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        _ => panic!("not numeric: {v}"),
    }
}

fn setup(p: &SdeProblem) -> (NeuralSde<f64>, StoredIncrements<f64>, SdeGrid, Vec<f64>) {
    let terms = NeuralSde::new(p.dim(), p.hidden(), p.drift_params(), Diffusion::DiagonalSigmoid, p.diffusion_params()).unwrap();
    let path = StoredIncrements::new(p.t0, p.dt, p.batch(), p.dim(), p.flat_dw().unwrap()).unwrap();
    (terms, path, SdeGrid { t0: p.t0, dt: p.dt, steps: p.n_steps }, p.flat_y0())
}

/// Split nodal's `[dL/dy0, dL/dtheta]` into the reference's named arrays.
fn named(p: &SdeProblem, y0: &[f64], params: &[f64]) -> Vec<(&'static str, Vec<f64>)> {
    let (d, h) = (p.dim(), p.hidden());
    let sizes = [h * d, h, d * h, d, d * d, d];
    let mut out = vec![("y0", y0.to_vec())];
    let mut off = 0;
    for (name, n) in GRADS[1..].iter().zip(sizes) {
        out.push((name, params[off..off + n].to_vec()));
        off += n;
    }
    out
}

/// Largest per-array distance relative to the array's largest reference entry.
fn rel_distance(ours: &[(&str, Vec<f64>)], reference: &Value) -> f64 {
    ours.iter()
        .map(|(name, v)| {
            let r = flat(&reference[*name]);
            let scale = r.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            v.iter().zip(&r).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
        })
        .fold(0.0, f64::max)
}

fn squares(ys: &[Vec<f64>]) -> Vec<Vec<f64>> {
    ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect()
}

#[test]
fn every_scheme_reproduces_the_reference_outputs_and_gradients() {
    let (p, file) = load();
    for name in NAMES {
        let scheme = Scheme::by_name(name).unwrap();
        let reference = &file["reference"][name];
        let (mut terms, mut path, grid, y0) = setup(&p);
        let sol = sde_solve(&mut terms, &mut path, scheme, &grid, &y0, &p.out_steps).unwrap();
        let want = flat(&reference["ys"]);
        let got: Vec<f64> = sol.ys.iter().flatten().copied().collect();
        let err = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-12, "{name}: ys differ by {err:e}");
        let loss: f64 = got.iter().map(|v| v * v).sum();
        assert!((loss - reference["loss"].as_f64().unwrap()).abs() < 1e-10, "{name}: loss {loss}");

        let mut methods = vec![SdeGradMethod::Backprop, SdeGradMethod::Checkpoint { every: 5 }, SdeGradMethod::Checkpoint { every: 0 }];
        if scheme == Scheme::ReversibleHeun {
            methods.push(SdeGradMethod::ReversibleAdjoint);
        }
        for method in methods {
            let (mut terms, mut path, grid, y0) = setup(&p);
            let g = sde_gradient(&mut terms, &mut path, scheme, &grid, &y0, &p.out_steps, method, 1 << 30, &mut |ys| squares(ys)).unwrap();
            let d = rel_distance(&named(&p, &g.y0, &g.params), &reference["grads"]);
            assert!(d < 1e-10, "{name} {method:?}: gradients differ by {d:e} (relative to each array's largest entry)");
        }
    }
}

#[test]
fn continuous_adjoint_distance_from_discretise_then_optimise_next_to_torchsde() {
    // torchsde's continuous adjoint on the same path (in the file), against the same forward
    // scheme's discretise-then-optimise gradients: midpoint 1.7e-3, Euler-Heun 1.7e-2, Ito
    // Euler 0.18 (its Ito adjoint assumes g_i depends on y_i only). nodal's distances are
    // printed beside them; the bounds below are the O(dt) discretisation gap at dt = 1/64
    // (torchsde's figure for the Stratonovich schemes, and 5% for Ito Euler, whose
    // continuous adjoint is solved on the equivalent Stratonovich SDE).
    let (p, file) = load();
    let cases = [
        ("midpoint", "strat_midpoint_default", 3e-3),
        ("euler_heun", "strat_euler_heun_default", 2e-2),
        ("heun", "", 1e-3),
        ("euler_maruyama", "ito_euler_default", 5e-2),
    ];
    for (name, torchsde_key, bound) in cases {
        let scheme = Scheme::by_name(name).unwrap();
        let (mut terms, mut path, grid, y0) = setup(&p);
        let g =
            sde_gradient(&mut terms, &mut path, scheme, &grid, &y0, &p.out_steps, SdeGradMethod::ContinuousAdjoint, 1 << 30, &mut |ys| {
                squares(ys)
            })
            .unwrap();
        let ours = rel_distance(&named(&p, &g.y0, &g.params), &file["reference"][name]["grads"]);
        let theirs = file["torchsde_sdeint_adjoint"].get(torchsde_key).map(|v| v["agreement_vs_dto"]["grad_max_rel"].as_f64().unwrap());
        println!("continuous adjoint vs discretise-then-optimise, {name}: nodal {ours:.3e}, torchsde {theirs:?}");
        assert!(ours < bound, "{name}: continuous adjoint {ours:e} from discretise-then-optimise (bound {bound:e})");
        // The continuous adjoint's outputs are the forward solve's.
        let want = flat(&file["reference"][name]["ys"]);
        let got: Vec<f64> = g.ys.iter().flatten().copied().collect();
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12));
    }
}

#[test]
fn an_sde_problem_file_with_wrong_shapes_names_the_field() {
    let text = std::fs::read_to_string(FILE).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["problem"]["dW"].as_array_mut().unwrap().pop();
    let e = SdeProblem::from_json_str(&v.to_string(), "x.json").unwrap_err().to_string();
    assert!(e.contains("x.json") && e.contains("dW") && e.contains("n_steps = 64"), "{e}");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["problem"]["weights"]["V"][1] = serde_json::json!([1.0]);
    let e = SdeProblem::from_json_str(&v.to_string(), "x.json").unwrap_err().to_string();
    assert!(e.contains("weights.V"), "{e}");
}
