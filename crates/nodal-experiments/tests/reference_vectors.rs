//! The three gradient methods against the float64 reference vectors of torchdiffeq and diffrax
//! (`data/reference/grad_vectors_seed0.json`: dopri5, rtol = atol = 1e-10, loss = sum of squares
//! of y at all output times), against central finite differences, and against each other.
//! Tolerances are the file's own: `ys` within 1e-8 absolute, each gradient within 1e-6 of the
//! reference relative to its largest entry.

use nodal::solve::grad::GradMethod;
use nodal_experiments::problem::{BatchMode, Dtype, Problem, run_problem};
use nodal_experiments::solve::DEFAULT_MAX_MEMORY;
use serde_json::Value;

const REF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/grad_vectors_seed0.json");

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        _ => panic!("not numeric: {v}"),
    }
}

fn reference() -> (Problem, Value) {
    let text = std::fs::read_to_string(REF).unwrap();
    let p = Problem::from_json_str(&text, REF).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    (p, v["reference"].clone())
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let m = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).fold(0.0f64, |e, (x, y)| e.max((x - y).abs())) / m
}

const KEYS: [&str; 5] = ["y0", "W1", "b1", "W2", "b2"];

#[test]
fn all_three_methods_match_the_reference_vectors() {
    let (p, r) = reference();
    for method in [GradMethod::Backprop, GradMethod::Checkpoint(None), GradMethod::Checkpoint(Some(3)), GradMethod::Adjoint] {
        let out = run_problem(&p, Some(method), false, DEFAULT_MAX_MEMORY).unwrap();
        assert!(out.error.is_none());
        let j = out.json;
        let ys_err = flat(&j["ys"]).iter().zip(flat(&r["ys"])).fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
        assert!(ys_err < 1e-8, "{method:?}: ys error {ys_err}");
        assert!((j["loss"].as_f64().unwrap() - r["loss"].as_f64().unwrap()).abs() < 1e-6);
        for k in KEYS {
            let e = rel_err(&flat(&j["grads"][k]), &flat(&r["grads"][k]));
            assert!(e < 1e-6, "{method:?}: grad {k} relative error {e}");
        }
    }
}

/// The reference files that record other libraries' work on their problem: every JSON file in
/// the committed `data/reference/` and, when present beside the checkout, the shared reference
/// folder, whose `methods` hold a torchdiffeq `nfe_forward` or a diffrax `num_steps`.
fn files_with_recorded_counts() -> Vec<(String, Value)> {
    let dirs =
        [concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference"), concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/reference")];
    let mut seen = std::collections::BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".json") || seen.contains_key(&name) {
                continue;
            }
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let has_counts =
                v["methods"].as_object().is_some_and(|m| m.values().any(|r| r["nfe_forward"].is_u64() || r["num_steps"].is_u64()));
            // SDE files record fixed-step counts of another kind of problem.
            if has_counts && v["problem"]["solver"].is_string() {
                seen.insert(name, v);
            }
        }
    }
    seen.into_iter().collect()
}

/// torchdiffeq's dopri5 evaluates f twice to pick the first step and six times per step (FSAL);
/// diffrax counts steps. nodal, with the same tableau, norm and I controller, must take no more
/// forward evaluations than torchdiffeq recorded, and within two steps of diffrax's count.
#[test]
fn dopri5_uses_no_more_evaluations_than_torchdiffeq() {
    let files = files_with_recorded_counts();
    assert!(files.iter().any(|(n, _)| n == "grad_vectors_seed0.json"), "the committed reference file records counts");
    for (name, v) in files {
        let p = Problem::from_json_str(&v.to_string(), &name).unwrap();
        let out = run_problem(&p, None, false, DEFAULT_MAX_MEMORY).unwrap();
        let s = &out.json["stats"];
        let nfe = s["nfe"].as_u64().unwrap();
        let steps = s["accepted"].as_u64().unwrap() + s["rejected"].as_u64().unwrap();
        let mut compared = 0;
        for (method, rec) in v["methods"].as_object().unwrap() {
            if let Some(theirs) = rec["nfe_forward"].as_u64() {
                eprintln!("{name} {method}: nodal nfe {nfe} ({steps} steps), torchdiffeq {theirs}");
                assert!(nfe <= theirs, "{name}: nodal {nfe} forward evaluations, {method} {theirs}");
                compared += 1;
            }
            if let Some(theirs) = rec["num_steps"].as_u64() {
                eprintln!("{name} {method}: nodal {steps} steps, diffrax {theirs}");
                assert!(steps.abs_diff(theirs) <= 2, "{name}: nodal {steps} steps, {method} {theirs}");
                compared += 1;
            }
        }
        assert!(compared > 0, "{name}");
    }
}

/// Central differences of the loss with respect to single entries of y0 and the weights.
#[test]
fn gradients_match_central_differences() {
    let (p, _) = reference();
    let base = run_problem(&p, Some(GradMethod::Backprop), true, DEFAULT_MAX_MEMORY).unwrap().json;
    let adj = run_problem(&p, Some(GradMethod::Adjoint), true, DEFAULT_MAX_MEMORY).unwrap().json;
    let loss = |q: &Problem| run_problem(q, None, false, DEFAULT_MAX_MEMORY).unwrap().json["loss"].as_f64().unwrap();
    let eps = 1e-5;
    let check = |name: &str, analytic: f64, plus: Problem, minus: Problem| {
        let fd = (loss(&plus) - loss(&minus)) / (2.0 * eps);
        // FD error ~ eps^2 |L'''| + solver tolerance / eps ~ 1e-5 relative here.
        assert!((fd - analytic).abs() < 1e-4 * (1.0 + fd.abs()), "{name}: fd {fd} vs {analytic}");
    };
    for (r, c) in [(0, 0), (2, 1), (3, 2)] {
        let (mut a, mut b) = (p.clone(), p.clone());
        a.y0[r][c] += eps;
        b.y0[r][c] -= eps;
        check("y0", base["grads"]["y0"][r][c].as_f64().unwrap(), a, b);
    }
    for (r, c) in [(0, 0), (5, 2)] {
        let (mut a, mut b) = (p.clone(), p.clone());
        a.weights.W1[r][c] += eps;
        b.weights.W1[r][c] -= eps;
        check("W1", base["grads"]["W1"][r][c].as_f64().unwrap(), a, b);
        let (mut a, mut b) = (p.clone(), p.clone());
        a.weights.W2[c][r] += eps;
        b.weights.W2[c][r] -= eps;
        check("W2", base["grads"]["W2"][c][r].as_f64().unwrap(), a, b);
    }
    // Time gradients, every output time including t0.
    for k in 0..p.t.len() {
        let (mut a, mut b) = (p.clone(), p.clone());
        a.t[k] += eps;
        b.t[k] -= eps;
        let g = base["grads"]["t"][k].as_f64().unwrap();
        check("t", g, a, b);
        let ga = adj["grads"]["t"][k].as_f64().unwrap();
        assert!((g - ga).abs() < 1e-6 * (1.0 + g.abs()));
    }
}

#[test]
fn float32_problems_solve_close_to_float64() {
    let (mut p, r) = reference();
    p.dtype = Dtype::Float32;
    p.rtol = Some(1e-6);
    p.atol = Some(1e-6);
    let out = run_problem(&p, Some(GradMethod::Backprop), false, DEFAULT_MAX_MEMORY).unwrap().json;
    let ys_err = flat(&out["ys"]).iter().zip(flat(&r["ys"])).fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
    assert!(ys_err < 1e-3, "f32 ys error {ys_err}");
    let e = rel_err(&flat(&out["grads"]["W1"]), &flat(&r["grads"]["W1"]));
    assert!(e < 1e-3, "f32 W1 grad error {e}");
}

#[test]
fn malformed_problems_name_the_field() {
    let text = std::fs::read_to_string(REF).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["problem"]["solver"] = "dopri7".into();
    let e = Problem::from_json_str(&v.to_string(), "x.json").unwrap_err().to_string();
    assert!(e.contains("solver") && e.contains("dopri7"), "{e}");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["problem"]["y0"][1] = serde_json::json!([1.0]);
    let e = Problem::from_json_str(&v.to_string(), "x.json").unwrap_err().to_string();
    assert!(e.contains("y0"), "{e}");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["problem"]["weights"]["W1"][0] = serde_json::json!([1.0]);
    let e = Problem::from_json_str(&v.to_string(), "x.json").unwrap_err().to_string();
    assert!(e.contains("W1"), "{e}");
    let e = Problem::from_json_str("{\"t\": [0, 1]", "x.json").unwrap_err().to_string();
    assert!(e.contains("x.json"), "{e}");
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["problem"]["dtype"] = "float16".into();
    assert!(Problem::from_json_str(&v.to_string(), "x.json").unwrap_err().to_string().contains("dtype"));
}

#[test]
fn per_sample_mode_in_problem_files_reports_rows() {
    let text = std::fs::read_to_string(REF).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut prob = v["problem"].clone();
    prob["batch_mode"] = "per_sample".into();
    // Python's json.dumps writes NaN as a bare token: make row 1 start at NaN.
    let s = prob.to_string().replacen("\"y0\":[[", "\"y0\":[[NaN,NaN,NaN],[", 1);
    let mut p = Problem::from_json_str(&s, "ps.json").unwrap();
    p.y0.swap(0, 1); // rows: [original 0, NaN, original 1, 2, 3]
    p.y0.truncate(4);
    let out = run_problem(&p, Some(GradMethod::Backprop), false, DEFAULT_MAX_MEMORY).unwrap();
    assert_eq!(out.failed_rows, 1);
    let j = out.json;
    assert_eq!(j["row_status"][1].as_str().map(|s| s.contains("non-finite initial state")), Some(true), "{}", j["row_status"]);
    assert_eq!(j["row_status"][0], "ok");
    assert!(j["ys"][1][1][0].is_null(), "NaN is written as null");
    let row_nfe: Vec<u64> = j["stats"]["row_nfe"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    assert_eq!(row_nfe.iter().sum::<u64>(), j["stats"]["row_evaluations"].as_u64().unwrap());
    assert_eq!(row_nfe[1], 0);
    // A good row matches the same row solved alone in joint mode.
    let mut alone = p.clone();
    alone.batch_mode = BatchMode::Joint;
    alone.y0 = vec![p.y0[0].clone()];
    let a = run_problem(&alone, None, false, DEFAULT_MAX_MEMORY).unwrap().json;
    for k in 0..p.t.len() {
        for c in 0..3 {
            let (x, y) = (j["ys"][k][0][c].as_f64().unwrap(), a["ys"][k][0][c].as_f64().unwrap());
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }
    let e = Problem::from_json_str(
        &serde_json::to_string(&serde_json::json!({
            "t": [0, 1], "solver": "dopri5", "batch_mode": "rowwise",
            "weights": {"W1": [[1.0]], "b1": [0.0], "W2": [[1.0]], "b2": [0.0]}, "y0": [[1.0]]
        }))
        .unwrap(),
        "x.json",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("batch_mode"), "{e}");
}

#[test]
fn adjoint_has_its_own_tolerances_and_seminorm() {
    let (mut p, r) = reference();
    p.adjoint_rtol = Some(1e-6);
    p.adjoint_atol = Some(1e-6);
    let loose = run_problem(&p, Some(GradMethod::Adjoint), false, DEFAULT_MAX_MEMORY).unwrap().json;
    p.adjoint_seminorm = Some(true);
    let semi = run_problem(&p, Some(GradMethod::Adjoint), false, DEFAULT_MAX_MEMORY).unwrap().json;
    let tight = run_problem(&reference().0, Some(GradMethod::Adjoint), false, DEFAULT_MAX_MEMORY).unwrap().json;
    let nfe = |j: &Value| j["backward_stats"]["nfe"].as_u64().unwrap();
    assert!(nfe(&loose) < nfe(&tight), "looser adjoint tolerance: fewer evaluations");
    assert!(nfe(&semi) <= nfe(&loose), "seminorm: no more evaluations");
    for j in [&loose, &semi] {
        let e = rel_err(&flat(&j["grads"]["W1"]), &flat(&r["grads"]["W1"]));
        assert!(e < 1e-3, "loose adjoint still close: {e}");
    }
}
