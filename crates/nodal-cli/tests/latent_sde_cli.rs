//! `nodal train latent-sde` as a user runs it: a small run writes every output, a longer run in
//! the same folder resumes from its checkpoint, and bad options fail with exit code 2 before
//! anything is written.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn nodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodal")).args(args).output().expect("the binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-cli-latent-sde-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

const SMALL: [&str; 16] = [
    "--n-train",
    "32",
    "--n-test",
    "16",
    "--points",
    "12",
    "--batch",
    "16",
    "--latent",
    "2",
    "--context",
    "4",
    "--hidden",
    "8",
    "--kl-anneal",
    "2",
];

#[test]
fn a_small_run_writes_everything_and_a_longer_one_resumes() {
    let out = temp_dir("run");
    let o = out.to_str().unwrap();
    let mut args = vec!["train", "latent-sde", "--iters", "3", "--checkpoint-every", "1", "--quiet", "--out", o];
    args.extend(SMALL);
    let r = nodal(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for f in ["metrics.jsonl", "checkpoint.json", "model.safetensors", "summary.json", "samples.png", "posterior.png", "training.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let summary: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(summary["task"], "latent-sde");
    assert_eq!(summary["training"]["iters"], 3);
    for key in ["neg_elbo", "log_lik", "kl_z0", "kl_path", "recon_rmse", "prior_mean_gap", "prior_std_gap"] {
        assert!(summary["test"][key].as_f64().is_some_and(f64::is_finite), "test.{key}: {}", summary["test"]);
        assert!(summary["test_untrained"][key].as_f64().is_some_and(f64::is_finite), "test_untrained.{key}");
    }
    // Evaluating the saved weights gives the summary's held-out figures again.
    let e = nodal(&["eval", "latent-sde", "--weights", out.join("model.safetensors").to_str().unwrap()]);
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let e: Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(e["test"], summary["test"]);
    // Five iterations in the same folder: resumes at 3, metrics hold one line per iteration.
    args[3] = "5";
    let r = nodal(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("resuming at iteration 4 of 5"));
    let summary: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(summary["training"]["resumed_at"], 3);
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let iters: Vec<u64> = metrics.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["iter"].as_u64().unwrap()).collect();
    assert_eq!(iters, vec![1, 2, 3, 4, 5]);
    // Other settings in the same folder: refused, exit 2, the checkpoint named.
    let mut other = args.clone();
    other.extend(["--lr", "0.005"]);
    let r = nodal(&other);
    assert_eq!(r.status.code(), Some(2), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("checkpoint.json"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_options_fail_with_exit_code_2_and_write_nothing() {
    let out = temp_dir("bad");
    let o = out.to_str().unwrap();
    for (extra, needle) in [
        (vec!["--scheme", "milstein_ito"], "scheme"),
        (vec!["--batch", "64"], "batch"),
        (vec!["--noise=-1"], "noise"),
        (vec!["--iters", "0"], "iters"),
    ] {
        let mut args = vec!["train", "latent-sde", "--quiet", "--out", o];
        args.extend(SMALL);
        args.extend(extra.iter().copied());
        let r = nodal(&args);
        let err = String::from_utf8_lossy(&r.stderr).to_string();
        assert_eq!(r.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?}: the output folder was created");
    }
}

/// `nodal eval latent-sde` on the committed weights (2000 iterations of the default command)
/// rebuilds their run's held-out series from the metadata and reproduces the committed summary's
/// held-out figures (the same seeds give the same z0 samples and Brownian paths; the tolerance
/// allows for another summation order in a multithreaded matrix product).
#[test]
fn eval_reproduces_the_committed_latent_sde_summary() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/latent-sde-lorenz");
    let weights = format!("{dir}/model.safetensors");
    let r = nodal(&["eval", "latent-sde", "--weights", &weights]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let got: Value = serde_json::from_slice(&r.stdout).unwrap();
    let want: Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/summary.json")).unwrap()).unwrap();
    assert_eq!(got["iters"], 2000);
    for key in ["neg_elbo", "log_lik", "kl_z0", "kl_path", "recon_rmse", "prior_mean_gap", "prior_std_gap"] {
        let (g, w) = (got["test"][key].as_f64().unwrap(), want["test"][key].as_f64().unwrap());
        assert!((g - w).abs() <= 1e-3 * w.abs().max(1.0), "{key}: eval {g}, committed summary {w}");
    }
    // The trained model is far from the untrained one on every figure.
    let (t, u) = (&want["test"], &want["test_untrained"]);
    assert!(t["recon_rmse"].as_f64().unwrap() < 0.05 * u["recon_rmse"].as_f64().unwrap());
    assert!(t["prior_mean_gap"].as_f64().unwrap() < 0.1 * u["prior_mean_gap"].as_f64().unwrap());
}
