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
