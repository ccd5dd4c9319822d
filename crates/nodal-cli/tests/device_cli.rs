//! `--device` as a user meets it. Every build refuses an unknown or missing backend with exit
//! code 2 and the reason. A build with `--features wgpu` trains the spiral and the toy CNF and
//! evaluates the committed MNIST ResNet on wgpu (Mesa's software Vulkan driver where there is no
//! GPU), with the CPU's numbers: the same first loss to f32 round-off, the same accuracy. When no
//! adapter is found those tests print why and pass, unless `NODAL_REQUIRE_WGPU=1` (set by .ci/run
//! once the driver is installed).

use std::path::PathBuf;
use std::process::{Command, Output};

fn nodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodal")).args(args).output().expect("the binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-device-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_and_missing_backends_are_refused_with_the_reason() {
    let dir = temp_dir("refused");
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    let r = nodal(&["train", "spiral", "--iters", "1", "--quiet", "--out", o, "--device", "tpu"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("unknown device \"tpu\""), "{}", stderr(&r));
    let r = nodal(&["train", "cnf", "--data", "moons", "--iters", "1", "--quiet", "--no-fig", "--out", o, "--device", "cuda"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("no cuda backend"), "{}", stderr(&r));
    if !cfg!(feature = "wgpu") {
        let r = nodal(&["train", "spiral", "--iters", "1", "--quiet", "--out", o, "--device", "wgpu"]);
        assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
        assert!(stderr(&r).contains("--features wgpu"), "{}", stderr(&r));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "wgpu")]
mod on_wgpu {
    use super::*;
    use serde_json::Value;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/mnist");
    const RESNET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-resnet.safetensors");

    /// Whether wgpu starts here; a failure to start is fatal only under `NODAL_REQUIRE_WGPU=1`.
    /// `caller` names the probe's folder: the tests run in parallel threads of one process.
    fn wgpu_starts(caller: &str) -> bool {
        let dir = temp_dir(&format!("probe-{caller}"));
        let o = dir.join("run");
        let r = nodal(&["train", "spiral", "--iters", "1", "--quiet", "--out", o.to_str().unwrap(), "--device", "wgpu"]);
        let _ = std::fs::remove_dir_all(&dir);
        if r.status.success() {
            return true;
        }
        let why = stderr(&r);
        assert!(std::env::var("NODAL_REQUIRE_WGPU").as_deref() != Ok("1"), "NODAL_REQUIRE_WGPU=1 but: {why}");
        eprintln!("SKIPPED: wgpu did not start: {why}");
        false
    }

    fn losses(metrics: &std::path::Path) -> Vec<f64> {
        std::fs::read_to_string(metrics)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["loss"].as_f64().unwrap())
            .collect()
    }

    /// Five spiral iterations on wgpu and on the CPU (fused MLP) from the same seed and windows:
    /// the first loss agrees to f32 round-off (1e-4 relative, the solutions differing by
    /// round-off over a few dozen dopri5 steps). The next four stay within 1e-2: RMSprop's first
    /// steps move each weight by about `10 lr sign(g)`, so a gradient entry near zero may step
    /// the other way on the other backend. (The gradients themselves are compared, tightly, by
    /// `spiral_on_device`'s unit test on flex and `crates/nodal/tests/wgpu_backend.rs` on wgpu.)
    #[test]
    fn the_spiral_trains_on_wgpu_as_on_the_cpu() {
        if !wgpu_starts("spiral") {
            return;
        }
        let dir = temp_dir("spiral");
        let mut runs = Vec::new();
        for device in ["cpu", "wgpu"] {
            let out = dir.join(device);
            let r = nodal(&["train", "spiral", "--iters", "5", "--quiet", "--out", out.to_str().unwrap(), "--device", device]);
            assert!(r.status.success(), "{device}: {}", stderr(&r));
            let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
            assert_eq!(summary["device"], device);
            runs.push(losses(&out.join("metrics.jsonl")));
        }
        let (cpu, gpu) = (&runs[0], &runs[1]);
        assert_eq!(cpu.len(), 5);
        assert_eq!(gpu.len(), 5);
        for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
            let tol = if i == 0 { 1e-4 } else { 1e-2 };
            assert!((c - g).abs() <= tol * c.abs(), "iteration {}: cpu {c} wgpu {g}", i + 1);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The committed ResNet classifies the first 200 test images on wgpu as on the CPU (within
    /// one image: burn's convolutions on wgpu and nodal's kernels on the CPU sum in different
    /// orders, which could tip an image whose two best logits tie to f32 round-off).
    #[test]
    fn the_committed_resnet_scores_the_same_on_wgpu() {
        if !std::path::Path::new(DATA).join("t10k-labels-idx1-ubyte.gz").is_file() || !std::path::Path::new(RESNET).is_file() {
            eprintln!("note: MNIST or the committed ResNet not found, skipping");
            return;
        }
        if !wgpu_starts("resnet") {
            return;
        }
        let acc = |device: &str| {
            let r = nodal(&["eval", "mnist", "--weights", RESNET, "--data", DATA, "--limit-test", "200", "--quiet", "--device", device]);
            assert!(r.status.success(), "{device}: {}", stderr(&r));
            serde_json::from_slice::<Value>(&r.stdout).unwrap()["accuracy"].as_f64().unwrap()
        };
        let (cpu, gpu) = (acc("cpu"), acc("wgpu"));
        assert!(cpu > 0.95, "cpu accuracy {cpu}");
        eprintln!("accuracy on 200 images: cpu {cpu}, wgpu {gpu}");
        assert!((cpu - gpu).abs() <= 1.0 / 200.0 + 1e-12, "accuracy on cpu {cpu} and wgpu {gpu}");
    }

    /// The toy CNF trains on wgpu with the module engine (chosen for it, with a note), and its
    /// first loss is the CPU module engine's.
    #[test]
    fn the_toy_cnf_trains_on_wgpu_with_the_module_engine() {
        if !wgpu_starts("cnf") {
            return;
        }
        let dir = temp_dir("cnf");
        let mut firsts = Vec::new();
        for (device, engine) in [("cpu", "module"), ("wgpu", "fused")] {
            let out = dir.join(device);
            let r = nodal(&[
                "train",
                "cnf",
                "--data",
                "moons",
                "--iters",
                "2",
                "--batch",
                "64",
                "--n-test",
                "256",
                "--quiet",
                "--no-fig",
                "--out",
                out.to_str().unwrap(),
                "--engine",
                engine,
                "--device",
                device,
            ]);
            assert!(r.status.success(), "{device}: {}", stderr(&r));
            let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
            assert_eq!(summary["engine"], "module", "{device}");
            assert_eq!(summary["device"], device);
            if device == "wgpu" {
                assert!(stderr(&r).contains("module engine"), "{}", stderr(&r));
            }
            firsts.push(losses(&out.join("metrics.jsonl"))[0]);
        }
        assert!((firsts[0] - firsts[1]).abs() <= 1e-4 * firsts[0].abs(), "first loss cpu {} wgpu {}", firsts[0], firsts[1]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
