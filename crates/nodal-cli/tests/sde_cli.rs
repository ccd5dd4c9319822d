//! `nodal solve` on the SDE reference file, as a user runs it: every scheme and gradient
//! method against the reference, the error paths and their exit codes.

use serde_json::Value;
use std::process::{Command, Output};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/sde_vectors_seed0.json");

fn nodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodal")).args(args).output().expect("the binary runs")
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("expected numbers, found {other}"),
    }
}

#[test]
fn solve_reproduces_every_scheme_and_gradient_of_the_sde_reference() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let cases = [
        ("euler_maruyama", "backprop"),
        ("milstein_ito", "checkpoint"),
        ("milstein_ito_diag", "checkpoint:7"),
        ("milstein_ito_commutative", "backprop"),
        ("milstein_strat", "backprop"),
        ("euler_heun", "checkpoint"),
        ("heun", "backprop"),
        ("midpoint", "backprop"),
        ("reversible_heun", "adjoint"),
    ];
    for (scheme, grad) in cases {
        let out = nodal(&["solve", FILE, "--scheme", scheme, "--grad", grad]);
        assert!(out.status.success(), "{scheme}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let reference = &file["reference"][scheme];
        let err = numbers(&v["ys"]).iter().zip(numbers(&reference["ys"])).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(err < 1e-12, "{scheme}: ys off by {err:e}");
        assert!((v["loss"].as_f64().unwrap() - reference["loss"].as_f64().unwrap()).abs() < 1e-10);
        for key in ["y0", "W1", "b1", "W2", "b2", "V", "c"] {
            let (ours, theirs) = (numbers(&v["grads"][key]), numbers(&reference["grads"][key]));
            assert_eq!(ours.len(), theirs.len(), "{scheme} {key}");
            let scale = theirs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let d = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale;
            assert!(d < 1e-10, "{scheme} {grad} {key}: {d:e}");
        }
    }
    // The bare `problem` object works as well as the whole file.
    let bare = std::env::temp_dir().join(format!("nodal-sde-bare-{}.json", std::process::id()));
    std::fs::write(&bare, file["problem"].to_string()).unwrap();
    let out = nodal(&["solve", bare.to_str().unwrap(), "--scheme", "midpoint"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(numbers(&v["ys"]).len(), 2 * 4 * 3);
    assert!(v.get("grads").is_none());
}

#[test]
fn sde_input_errors_exit_2_with_one_line_each() {
    for (args, needle) in [
        (vec!["solve", FILE], "--scheme"),
        (vec!["solve", FILE, "--scheme", "rk4"], "unknown SDE scheme"),
        (vec!["solve", FILE, "--scheme", "heun", "--grad", "sideways"], "unknown gradient method"),
        (vec!["solve", FILE, "--scheme", "heun", "--grad", "checkpoint:0"], "unknown gradient method"),
    ] {
        let out = nodal(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle) && err.trim().lines().count() == 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
    // A step so large that the state overflows: exit 1 with the typed error (time, step).
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    v["problem"]["dt"] = serde_json::json!(1e307);
    v["problem"]["weights"]["b2"] = serde_json::json!([10.0, 10.0, 10.0]);
    let f = std::env::temp_dir().join(format!("nodal-sde-diverge-{}.json", std::process::id()));
    std::fs::write(&f, v.to_string()).unwrap();
    let out = nodal(&["solve", f.to_str().unwrap(), "--scheme", "euler_maruyama"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("non-finite state at t =") && err.contains("step"), "{err}");
}

#[test]
fn adaptive_heun_on_a_seeded_path_from_the_command_line() {
    // The reference problem without its stored increments: a seeded path drives the solve.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    v["problem"].as_object_mut().unwrap().remove("dW");
    let f = std::env::temp_dir().join(format!("nodal-sde-seeded-{}.json", std::process::id()));
    std::fs::write(&f, v["problem"].to_string()).unwrap();
    let f = f.to_str().unwrap();
    let out = nodal(&["solve", f, "--scheme", "heun", "--rtol", "1e-3", "--atol", "1e-3", "--grad", "backprop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(o["adaptive"]["accepted"].as_u64().unwrap() > 0);
    assert_eq!(numbers(&o["ys"]).len(), 24);
    assert!(numbers(&o["grads"]["V"]).iter().all(|x| x.is_finite()));
    // The same file solved twice gives the same numbers (the seeded path is deterministic).
    let again = nodal(&["solve", f, "--scheme", "heun", "--rtol", "1e-3", "--atol", "1e-3", "--grad", "backprop"]);
    let o2: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(o["ys"], o2["ys"]);
    assert_eq!(o["grads"], o2["grads"]);
    for (args, needle) in [
        (vec!["solve", f, "--scheme", "heun", "--rtol", "1e-3"], "both --rtol and --atol"),
        (vec!["solve", f, "--scheme", "midpoint", "--rtol", "1e-3", "--atol", "1e-3"], "heun"),
        (vec!["solve", FILE, "--scheme", "heun", "--rtol", "1e-3", "--atol", "1e-3"], "drop dW"),
    ] {
        let out = nodal(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
