//! `nodal train bouncing-ball` and `nodal train latent-ode` as a user runs them: the default
//! ball's gravity and restitution recovered within 1%, a short latent ODE run writing every
//! output, impossible settings refused with exit code 2.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-continuous-time-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn nodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodal")).args(args).output().expect("the binary runs")
}

#[test]
fn the_bouncing_ball_recovers_gravity_and_restitution() {
    let out_dir = temp_dir("ball");
    let out = nodal(&["train", "bouncing-ball", "--quiet", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let learned: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(learned, summary["learned"]);
    let g = learned["gravity"].as_f64().unwrap();
    let e = learned["restitution"].as_f64().unwrap();
    assert!((g / 9.81 - 1.0).abs() < 0.01 && (e / 0.8 - 1.0).abs() < 0.01, "{learned}");
    assert_eq!(summary["within_1_percent"], true);
    // The learned impacts line up with the true ones, one for one.
    let (t_true, t_learned) = (summary["impacts"]["true"].as_array().unwrap(), summary["impacts"]["learned"].as_array().unwrap());
    assert_eq!(t_true.len(), t_learned.len());
    for (a, b) in t_true.iter().zip(t_learned) {
        assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 0.01);
    }
    for f in ["metrics.jsonl", "fit.png", "parameters.png"] {
        assert!(out_dir.join(f).metadata().unwrap().len() > 0, "{f}");
    }
    let lines = std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 400);
}

#[test]
fn impossible_balls_are_refused() {
    let dir = temp_dir("refused");
    let o = dir.to_str().unwrap();
    for args in [&["--restitution", "1.5"][..], &["--t-end", "10"], &["--gravity=-1"], &["--observations", "1"]] {
        let mut all = vec!["train", "bouncing-ball", "--quiet", "--no-fig", "--out", o];
        all.extend_from_slice(args);
        let out = nodal(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    }
}

#[test]
fn a_short_latent_ode_run_writes_every_output() {
    let out_dir = temp_dir("latent-ode");
    for model in ["latent-ode", "gru"] {
        let d = out_dir.join(model);
        let out = nodal(&[
            "train",
            "latent-ode",
            "--quiet",
            "--data",
            "pendulum",
            "--keep",
            "0.5",
            "--model",
            model,
            "--series",
            "60",
            "--batch",
            "16",
            "--epochs",
            "2",
            "--out",
            d.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let line: Value = serde_json::from_slice(&out.stdout).unwrap();
        let summary: Value = serde_json::from_str(&std::fs::read_to_string(d.join("summary.json")).unwrap()).unwrap();
        assert_eq!(line["interp_mse"], summary["interp_mse"]);
        assert!(summary["interp_mse"].as_f64().unwrap().is_finite() && summary["extrap_mse"].as_f64().unwrap().is_finite());
        assert_eq!(summary["model"], model);
        assert_eq!(summary["iterations_per_epoch"], 3);
        assert_eq!(std::fs::read_to_string(d.join("metrics.jsonl")).unwrap().lines().count(), 2);
        for f in ["model.safetensors", "series.png"] {
            assert!(d.join(f).metadata().unwrap().len() > 0, "{model}: {f}");
        }
    }
    for bad in [&["--keep", "0"][..], &["--keep", "1.5"], &["--data", "sines"], &["--model", "lstm"], &["--series", "5"], &["--batch", "0"]]
    {
        let mut all = vec!["train", "latent-ode", "--quiet", "--no-fig", "--epochs", "1", "--out", out_dir.to_str().unwrap()];
        all.extend_from_slice(bad);
        let out = nodal(&all);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
