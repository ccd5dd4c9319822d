//! Flow matching as a user runs it: a short `nodal train flow-matching` writes every output,
//! `nodal sample` draws a grid with the stated work, `nodal eval flow-matching` prints the
//! quality object, and bad settings or files are refused with exit code 2. When the committed
//! weights are present, their samples are scored by the committed classifier.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/mnist");
const CLASSIFIER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-resnet.safetensors");
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-flow-matching.safetensors");

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-flow-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn nodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodal")).args(args).output().expect("the binary runs")
}

fn have_data() -> bool {
    let ok = std::path::Path::new(DATA).join("t10k-labels-idx1-ubyte.gz").is_file();
    if !ok {
        eprintln!("note: {DATA} not found, skipping");
    }
    ok
}

#[test]
fn train_sample_and_eval_write_their_outputs() {
    if !have_data() {
        return;
    }
    let dir = temp_dir("short");
    let d = dir.to_str().unwrap();
    let out = nodal(&[
        "train",
        "flow-matching",
        "--iters",
        "3",
        "--batch",
        "4",
        "--channels",
        "8",
        "--limit-train",
        "20",
        "--grid",
        "4",
        "--save-every",
        "2",
        "--quiet",
        "--data",
        DATA,
        "--out",
        d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(printed, summary);
    assert_eq!(summary["iters"], 3);
    assert_eq!(summary["config"]["unet"]["channels"], 8);
    assert!(summary["ms_per_step"].as_f64().unwrap() > 0.0);
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 3);
    assert!(std::fs::metadata(dir.join("samples.png")).unwrap().len() > 100);
    assert!(dir.join("checkpoint.json").is_file());
    // The same command with more steps resumes from the checkpoint and appends to the metrics.
    let out = nodal(&[
        "train",
        "flow-matching",
        "--iters",
        "4",
        "--batch",
        "4",
        "--channels",
        "8",
        "--limit-train",
        "20",
        "--grid",
        "0",
        "--save-every",
        "2",
        "--quiet",
        "--data",
        DATA,
        "--out",
        d,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming"));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["iters"], 4);
    assert_eq!(std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap().lines().count(), 4);
    // Other settings on the same folder are refused, naming the checkpoint.
    let out = nodal(&[
        "train",
        "flow-matching",
        "--iters",
        "5",
        "--batch",
        "4",
        "--channels",
        "16",
        "--limit-train",
        "20",
        "--quiet",
        "--data",
        DATA,
        "--out",
        d,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checkpoint"));
    let weights = dir.join("model.safetensors");
    let w = weights.to_str().unwrap();

    // Euler with 3 steps: exactly 3 evaluations per chunk.
    let png = dir.join("grid.png");
    let out = nodal(&["sample", "--weights", w, "--n", "5", "--method", "euler", "--steps", "3", "--out", png.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((s["n"].as_u64(), s["nfe"].as_f64()), (Some(5), Some(3.0)));
    assert!(std::fs::metadata(&png).unwrap().len() > 100);

    let out = nodal(&[
        "eval",
        "flow-matching",
        "--weights",
        w,
        "--n",
        "12",
        "--method",
        "rk4",
        "--steps",
        "2",
        "--chunk",
        "5",
        "--classifier",
        CLASSIFIER,
        "--data",
        DATA,
        "--limit-test",
        "200",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts: u64 = e["class_counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum();
    assert_eq!(counts, 12);
    assert_eq!(e["nfe"].as_f64(), Some(8.0));
    let share = e["confident_share"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share));
    assert!(e["frechet_distance"].as_f64().unwrap() > 0.0);

    // A new run can start from these weights: it records the steps behind them; another width
    // is refused before any training.
    let more = dir.join("more");
    let args = |channels: &'static str, out: &Path| -> Vec<String> {
        ["train", "flow-matching", "--iters", "2", "--batch", "4", "--channels", channels, "--limit-train", "20", "--grid", "0", "--quiet"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--init".into(), w.into(), "--data".into(), DATA.into(), "--out".into(), out.display().to_string()])
            .collect()
    };
    let run = |v: Vec<String>| nodal(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let out = run(args("8", &more));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(more.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        (summary["iters"].as_u64(), summary["init"]["iters"].as_u64(), summary["total_iters"].as_u64()),
        (Some(2), Some(4), Some(6))
    );
    let plain_params = summary["parameters"].as_u64().unwrap();
    let out = run(args("16", &dir.join("wide")));
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--init"));
    assert!(!dir.join("wide").join("metrics.jsonl").exists());
    // It can also grow: --middle-attention adds the attention and second middle block (heads
    // must divide 2C = 16), and the grown weights sample.
    let grown = dir.join("grown");
    let out = run(args("8", &grown).into_iter().chain(["--middle-attention".into(), "2".into()]).collect());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("adding the middle attention"));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(grown.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["unet"]["middle_attention"].as_u64(), Some(2));
    assert!(summary["parameters"].as_u64().unwrap() > plain_params);
    let png = dir.join("grown.png");
    let weights = grown.join("model.safetensors");
    let out = nodal(&[
        "sample",
        "--weights",
        weights.to_str().unwrap(),
        "--n",
        "2",
        "--method",
        "rk4",
        "--steps",
        "2",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(png.is_file());
    let out = run(args("8", &dir.join("odd")).into_iter().chain(["--middle-attention".into(), "3".into()]).collect());
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("middle_attention 3"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn real_digits_are_read_confidently() {
    // The scoring pipeline on real training images: the classifier (99.05% test accuracy) must
    // be confident on nearly all of them, and their features must sit close to the test set's.
    if !have_data() {
        return;
    }
    let out = nodal(&[
        "eval",
        "flow-matching",
        "--real-images",
        "--n",
        "200",
        "--seed",
        "3",
        "--classifier",
        CLASSIFIER,
        "--data",
        DATA,
        "--limit-test",
        "1000",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{e}");
    assert!(e["confident_share"].as_f64().unwrap() >= 0.9, "{e}");
    assert_eq!(e["nfe"].as_f64(), Some(0.0));
    assert_eq!(e["classes_within_2x_uniform"], true);
}

#[test]
fn bad_settings_and_files_are_refused() {
    let dir = temp_dir("bad");
    let missing = dir.join("none.safetensors");
    let png = dir.join("x.png");
    let (m, p) = (missing.to_str().unwrap(), png.to_str().unwrap());
    for args in [
        vec!["sample", "--weights", m, "--out", p],
        vec!["sample", "--weights", CLASSIFIER, "--out", p],
        vec!["sample", "--weights", CLASSIFIER, "--method", "euler", "--out", p],
        vec!["sample", "--weights", CLASSIFIER, "--method", "kvaerno5", "--out", p],
        vec!["sample", "--weights", CLASSIFIER, "--rtol=-1", "--out", p],
        vec!["sample", "--weights", CLASSIFIER, "--n", "0", "--out", p],
        vec!["train", "flow-matching", "--channels", "0", "--out", dir.to_str().unwrap()],
        vec!["train", "flow-matching", "--lr", "0", "--out", dir.to_str().unwrap()],
        vec!["eval", "flow-matching", "--weights", m],
    ] {
        let out = nodal(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // The classifier's weights are not a flow-matching model: the reason is named.
    let out = nodal(&["sample", "--weights", CLASSIFIER, "--out", p]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("flow_matching_config"));
    assert!(!png.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_committed_model_draws_digits_the_classifier_reads() {
    if !have_data() || !std::path::Path::new(COMMITTED).is_file() {
        eprintln!("note: committed flow-matching weights or data missing, skipping");
        return;
    }
    // 100 samples (seed 1, not the seed of the documented figures) with RK4 in 10 steps.
    let out = nodal(&[
        "eval",
        "flow-matching",
        "--weights",
        COMMITTED,
        "--n",
        "100",
        "--seed",
        "1",
        "--method",
        "rk4",
        "--steps",
        "10",
        "--classifier",
        CLASSIFIER,
        "--data",
        DATA,
        "--limit-test",
        "2000",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{e}");
    let share = e["confident_share"].as_f64().unwrap();
    let counts: Vec<u64> = e["class_counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).collect();
    assert!(share >= THRESHOLD_SHARE, "confident share {share}");
    assert!(counts.iter().all(|&c| c > 0), "a digit is missing: {counts:?}");
}

/// The committed model's confident share is about 0.8 (1,000 samples, docs/any_layer.md); 100
/// samples carry a binomial standard error of 0.04 there, so the check sits more than five of
/// them below: it catches a broken sampler, classifier path or weight file, not small drifts.
const THRESHOLD_SHARE: f64 = 0.55;
