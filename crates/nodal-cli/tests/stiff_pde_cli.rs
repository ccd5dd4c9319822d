//! `nodal stiff` and `nodal train pde` as a user runs them: one JSON object per stiff solve (its
//! error against the reference, its work), an explicit method's failure reported as data with
//! exit code 1, bad options refused with exit code 2, and a short PDE training run writing every
//! output.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn nodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodal")).args(args).output().expect("the binary runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn stiff_solves_report_error_and_work() {
    for (problem, method) in [("robertson", "kvaerno5"), ("hires", "rodas5"), ("orego", "kvaerno3"), ("vdp1000", "kvaerno5")] {
        let out = nodal(&["stiff", "--problem", problem, "--method", method, "--repeats", "1"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let j = json(&out);
        assert_eq!(j["problem"], problem);
        assert_eq!(j["method"], method);
        assert!(j["error"].as_f64().unwrap() < 1e-3, "{j}");
        let s = &j["stats"];
        assert!(s["steps"].as_u64().unwrap() > 10 && s["jacobians"].as_u64().unwrap() > 0 && s["lu"].as_u64().unwrap() > 0, "{j}");
        assert_eq!(j["y_final"].as_array().unwrap().len(), j["y_reference"].as_array().unwrap().len());
    }
    // Matrix-free linear algebra: no Jacobians, Krylov iterations instead.
    let out = nodal(&["stiff", "--problem", "hires", "--linear", "krylov", "--repeats", "1"]);
    let j = json(&out);
    assert_eq!((j["stats"]["jacobians"].as_u64(), j["error"].as_f64().map(|e| e < 1e-3)), (Some(0), Some(true)), "{j}");
    assert!(j["stats"]["linear_iterations"].as_u64().unwrap() > 0);
}

#[test]
fn an_explicit_method_runs_out_of_steps_and_says_how_far_it_got() {
    let out = nodal(&["stiff", "--problem", "robertson", "--method", "dopri5", "--max-steps", "5000", "--repeats", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    assert_eq!(j["failed"], true);
    let reached = j["t_reached"].as_f64().unwrap();
    assert!(reached > 0.0 && reached < 1e11, "{j}");
    assert!(j["error"].as_str().unwrap().contains("maximum number of steps"), "{j}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("robertson with dopri5"));
}

#[test]
fn bad_stiff_options_are_refused() {
    for (args, what) in [
        (vec!["stiff", "--problem", "brusselator"], "unknown problem"),
        (vec!["stiff", "--method", "radau"], "unknown method"),
        (vec!["stiff", "--rtol=-1"], "tolerances"),
        (vec!["stiff", "--linear", "lu"], "invalid value"),
        (vec!["train", "pde", "--system", "navier-stokes"], "unknown system"),
        (vec!["train", "pde", "--lr", "0"], "--lr"),
    ] {
        let out = nodal(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(what), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_short_pde_run_writes_every_output() {
    for system in ["reaction-diffusion", "burgers"] {
        let out_dir: PathBuf = std::env::temp_dir().join(format!("nodal-cli-pde-{system}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out_dir);
        let o = out_dir.to_str().unwrap();
        let out = nodal(&[
            "train",
            "pde",
            "--system",
            system,
            "--iters",
            "2",
            "--train-fields",
            "2",
            "--test-fields",
            "2",
            "--quiet",
            "--out",
            o,
        ]);
        assert_eq!(out.status.code(), Some(0), "{system}: {}", String::from_utf8_lossy(&out.stderr));
        for f in ["metrics.jsonl", "summary.json", "model.safetensors", "heatmap.png", "rollout.png"] {
            assert!(out_dir.join(f).is_file(), "{system}: {f} missing");
        }
        let s: Value = serde_json::from_slice(&std::fs::read(out_dir.join("summary.json")).unwrap()).unwrap();
        let errs = s["rollout_error"]["learned"].as_array().unwrap();
        assert_eq!(errs.len(), s["rollout_times"].as_array().unwrap().len());
        assert!(errs.iter().all(|e| e.as_f64().is_some_and(f64::is_finite)), "{s}");
        assert_eq!(std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap().lines().count(), 2);
        let _ = std::fs::remove_dir_all(&out_dir);
    }
}
