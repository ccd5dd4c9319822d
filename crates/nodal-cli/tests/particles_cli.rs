//! `nodal train particles` as a user runs it: a short run writes every output with errors for
//! each particle count (none for the MLP at counts it cannot take), and bad settings are refused
//! with exit code 2.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-particles-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn nodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodal")).args(args).output().expect("the binary runs")
}

#[test]
fn a_short_particles_run_writes_every_output() {
    let dir = temp_dir("short");
    let out = nodal(&[
        "train",
        "particles",
        "--iters",
        "12",
        "--trajectories",
        "8",
        "--test-trajectories",
        "2",
        "--quiet",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(printed, summary["rollout_error"]);
    for n in ["5", "8", "12"] {
        let e = summary["rollout_error"]["transformer"][n].as_f64().unwrap();
        assert!(e.is_finite() && e > 0.0, "{n}: {e}");
    }
    assert!(summary["rollout_error"]["mlp"]["5"].as_f64().unwrap() > 0.0);
    assert!(summary["rollout_error"]["mlp"]["12"].is_null() && summary["rollout_error"]["mlp"]["8"].is_null());
    assert!(summary["rollout_error"]["mlp_trained_on_12"]["12"].as_f64().unwrap() > 0.0);
    for f in ["metrics.jsonl", "particles.png", "transformer.safetensors", "mlp.safetensors"] {
        assert!(dir.join(f).metadata().unwrap().len() > 0, "{f}");
    }
    assert_eq!(std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap().lines().count(), 36);
}

#[test]
fn bad_particle_settings_are_refused() {
    let dir = temp_dir("refused");
    for args in [&["--lr=-1"][..], &["--trajectories", "0"], &["--iters", "x"]] {
        let mut all = vec!["train", "particles", "--quiet", "--no-fig", "--out", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = nodal(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    }
}
