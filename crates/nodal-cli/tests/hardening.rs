//! Adversarial use of every command, one group of cases per class of failure that used to end
//! in a panic, an abort, a kill by signal, unbounded memory, a silent substitution or a
//! misleading result. Every case asserts the exit code and the message; and no case may print a
//! panic or die by a signal.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nodal"))
}

fn run_cmd(mut c: Command) -> Output {
    let out = c.output().expect("the binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "a panic: {err}");
    assert!(out.status.code().is_some(), "killed by a signal: {:?}; stderr: {err}", out.status);
    out
}

fn nodal(args: &[&str]) -> Output {
    let mut c = bin();
    c.args(args);
    run_cmd(c)
}

/// Assert the exit code and that stderr contains `needle`.
fn expect(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
}

/// The step number in a failed solve's message ("... (at t = ..., step N)").
fn step_of_failure(out: &Output) -> u64 {
    let err = String::from_utf8_lossy(&out.stderr);
    let tail = &err[err.find(", step ").unwrap_or_else(|| panic!("no step in {err}")) + 7..];
    tail[..tail.find(')').unwrap()].parse().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn reference() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/grad_vectors_seed0.json"))
}

/// The reference problem with `edit` applied, as text written to a file of `dir`.
fn problem_text(dir: &Path, name: &str, edit: impl FnOnce(&mut Value) -> Option<String>) -> String {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(reference()).unwrap()).unwrap();
    let mut p = v["problem"].clone();
    let text = edit(&mut p).unwrap_or_else(|| p.to_string());
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

fn no_temporaries(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.contains(".tmp-") || n.starts_with(".nodal-write-test"))
        .collect();
    assert!(left.is_empty(), "temporary files left in {}: {left:?}", dir.display());
}

// ---------------------------------------------------------------------------------------------
// Output failures: a closed pipe, a full device, a file-size limit.

#[test]
fn a_closed_stdout_ends_quietly_with_141_and_a_full_one_is_exit_4() {
    let d = tmp("pipe");
    // Enough output that the pipe's buffer fills: 1001 times x 200 rows.
    let big = problem_text(&d, "big.json", |p| {
        p["t"] = json!((0..=1000).map(|i| i as f64 / 1000.0).collect::<Vec<_>>());
        p["y0"] = json!(vec![p["y0"][0].clone(); 200]);
        None
    });
    let mut child = bin().args(["solve", &big]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "a broken pipe is quiet: {}", String::from_utf8_lossy(&out.stderr));
    if Path::new("/dev/full").exists() {
        for args in [
            vec!["solve", big.as_str()],
            vec!["solve", big.as_str(), "--grad", "backprop"],
            vec![
                "bench",
                "--dims",
                "2",
                "--hidden",
                "64",
                "--batch",
                "1",
                "--repeats",
                "1",
                "--reference",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference"),
            ],
        ] {
            let mut c = bin();
            c.args(&args).stdout(std::fs::File::create("/dev/full").unwrap());
            expect(&run_cmd(c), 4, "stdout: No space left on device");
        }
    }
}

#[test]
fn a_file_size_limit_is_an_output_error_not_sigxfsz() {
    let d = tmp("fsize");
    // 4 KiB file-size limit: metrics.jsonl of 2000 iterations passes it early.
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("ulimit -f 4; exec {} train spiral --iters 2000 --quiet --out {}", env!("CARGO_BIN_EXE_nodal"), d.display()));
    let out = run_cmd(c);
    expect(&out, 4, "metrics.jsonl");
    no_temporaries(&d);
}

// ---------------------------------------------------------------------------------------------
// bench: options and reference files that used to panic or be mislabelled.

#[test]
fn bench_refuses_what_it_cannot_measure() {
    let r = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference");
    let base = ["bench", "--reference", r, "--dims", "2", "--hidden", "64", "--repeats", "1"];
    let with = |extra: &[&str]| nodal(&[&base[..], extra].concat());
    expect(&with(&["--batch", "100000"]), 2, "holds 1024 initial states");
    expect(&with(&["--method", "rk4"]), 2, "no error estimator");
    expect(&with(&["--rtol=-1"]), 2, "--rtol must be finite and >= 0");
    expect(&with(&["--rtol", "0", "--atol", "0"]), 2, "cannot both be 0");
    expect(&with(&["--dtype", "float16"]), 2, "invalid value 'float16'");
    expect(&with(&["--batch", "0"]), 2, "at least one row");
    // Weights of the wrong shape.
    let d = tmp("bench-ref");
    std::fs::copy(Path::new(r).join("mlp_y0_d2.json"), d.join("mlp_y0_d2.json")).unwrap();
    std::fs::write(d.join("mlp_d2_h64.json"), json!({"W1": [[1.0, 2.0]], "b1": [0.0], "W2": [[1.0]], "b2": [0.0, 0.0]}).to_string())
        .unwrap();
    let out = nodal(&["bench", "--reference", d.to_str().unwrap(), "--dims", "2", "--hidden", "64", "--batch", "1", "--repeats", "1"]);
    expect(&out, 2, "do not fit a 2-64-2 MLP");
}

// ---------------------------------------------------------------------------------------------
// MNIST data that is not MNIST-shaped.

/// IDX image and label files of `n` images of `rows x cols` (seeded pixels, labels i % 10).
fn write_idx(dir: &Path, prefix: &str, n: u32, rows: u32, cols: u32) {
    let mut im = Vec::new();
    for v in [2051u32, n, rows, cols] {
        im.extend(v.to_be_bytes());
    }
    let mut x: u32 = 12345;
    for i in 0..n * rows * cols {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        // A bright square whose size depends on the label, plus noise: learnable.
        let (r, c, l) = ((i / cols) % rows, i % cols, (i / (rows * cols)) % 10);
        let side = 2 + 2 * l;
        let inside = r >= 14 - side / 2 && r < 14 + side / 2 && c >= 14 - side / 2 && c < 14 + side / 2;
        im.push(if inside { 200 } else { (x >> 24) as u8 / 4 });
    }
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), im).unwrap();
    let mut lb = Vec::new();
    for v in [2049u32, n] {
        lb.extend(v.to_be_bytes());
    }
    lb.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lb).unwrap();
}

fn rknet_weights() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-rknet.safetensors")
}

#[test]
fn mnist_data_of_the_wrong_shape_or_size_is_refused() {
    let d = tmp("mnist-shape");
    write_idx(&d, "train", 16, 14, 56);
    write_idx(&d, "t10k", 8, 14, 56);
    let out =
        nodal(&["train", "mnist", "--model", "resnet", "--data", d.to_str().unwrap(), "--out", d.join("run").to_str().unwrap(), "--quiet"]);
    expect(&out, 2, "images are 14x56 pixels; the MNIST models take 28x28");
    let out = nodal(&["eval", "mnist", "--weights", rknet_weights(), "--data", d.to_str().unwrap(), "--quiet"]);
    expect(&out, 2, "14x56");
    // No test images at all.
    let e = tmp("mnist-empty");
    write_idx(&e, "train", 16, 28, 28);
    write_idx(&e, "t10k", 0, 28, 28);
    let out = nodal(&["eval", "mnist", "--weights", rknet_weights(), "--data", e.to_str().unwrap(), "--quiet"]);
    expect(&out, 2, "the test set holds no images");
    let out = nodal(&[
        "plot",
        "mnist-states",
        "--weights",
        rknet_weights(),
        "--data",
        e.to_str().unwrap(),
        "--out",
        e.join("states").to_str().unwrap(),
    ]);
    expect(&out, 2, "holds no images");
    let out =
        nodal(&["train", "mnist", "--model", "resnet", "--data", e.to_str().unwrap(), "--out", e.join("run").to_str().unwrap(), "--quiet"]);
    expect(&out, 2, "the test set holds no images");
    let out = nodal(&["eval", "mnist", "--weights", rknet_weights(), "--data", d.to_str().unwrap(), "--limit-test", "0", "--quiet"]);
    expect(&out, 2, "--limit-test 0 leaves no images");
}

// ---------------------------------------------------------------------------------------------
// Huge counts: refused before anything is allocated.

#[test]
fn huge_counts_are_refused_up_front() {
    let d = tmp("counts");
    let out_dir = d.to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "spiral", "--jacobian", "1", "--probes", "1000000000000", "--out", &out_dir], "1..=1024"),
        (vec!["train", "spiral", "--jacobian", "1", "--probes", "18446744073709551615", "--out", &out_dir], "1..=1024"),
        (vec!["regularise", "--probes", "18446744073709551615", "--out", &out_dir], "1..=1024"),
        (vec!["train", "spiral", "--iters", "18446744073709551615", "--out", &out_dir], "--iters must be between"),
        (vec!["memory", "--model", "resnet", "--batch-size", "1000000000000"], "--batch-size must be between 1 and 60000"),
        (vec!["memory", "--model", "resnet", "--blocks", "18446744073709551615"], "--blocks must be between 1 and 1000"),
        (vec!["memory", "--model", "resnet", "--blocks", "1000", "--batch-size", "60000"], "over the limit of 4.0 GiB"),
        (vec!["plot", "mnist-states", "--weights", rknet_weights(), "--times", "1000000000000", "--out", &out_dir], "--times in 2..=10000"),
        (vec!["bench", "--repeats", "18446744073709551615"], "--repeats"),
    ];
    for (args, needle) in cases {
        expect(&nodal(&args), 2, needle);
    }
    assert!(std::fs::read_dir(&d).unwrap().next().is_none(), "nothing may be written by a refused command");
}

// ---------------------------------------------------------------------------------------------
// Memory: every reader is capped, requests are estimated, tapes are bounded.

#[test]
fn memory_stays_bounded_on_endless_and_oversized_inputs() {
    if Path::new("/dev/zero").exists() {
        expect(&nodal(&["solve", "/dev/zero"]), 2, "larger than the 33554432 bytes accepted for a problem file");
        expect(&nodal(&["eval", "spiral", "--weights", "/dev/zero"]), 2, "larger than the 268435456 bytes accepted for a weights file");
        expect(&nodal(&["eval", "mnist", "--weights", "/dev/zero", "--model", "rknet"]), 2, "accepted for a weights file");
    }
    let d = tmp("memory");
    // 100,001 output times x 10,000 rows from a 1.5 MB file.
    let huge = problem_text(&d, "huge.json", |p| {
        p["t"] = json!((0..=100_000).map(|i| i as f64 / 100_000.0).collect::<Vec<_>>());
        p["y0"] = json!(vec![p["y0"][0].clone(); 10_000]);
        None
    });
    expect(&nodal(&["solve", &huge]), 2, "needs about 111.8 GiB of memory, over the limit of 4.0 GiB");
    // A tiny fixed step with backprop: the tape stops at the memory limit with a typed error.
    let tiny = problem_text(&d, "tiny.json", |p| {
        p["solver"] = json!("rk4");
        p["step_size"] = json!(1e-7);
        p["max_steps"] = json!(100_000_000u64);
        None
    });
    let tape_limit = "the gradient tape would need more than the memory limit of 16777216 bytes";
    let out = nodal(&["--memory-limit", "16M", "solve", &tiny, "--grad", "backprop"]);
    expect(&out, 1, tape_limit);
    assert!(String::from_utf8_lossy(&out.stderr).contains("checkpoint"), "the error suggests checkpointing");
    let backprop_steps = step_of_failure(&out);
    // The same solve with a checkpoint every 1000 steps stores far less per step, so it gets
    // several times further before the same limit.
    let out = nodal(&["--memory-limit", "16M", "solve", &tiny, "--grad", "checkpoint:1000"]);
    expect(&out, 1, tape_limit);
    let checkpoint_steps = step_of_failure(&out);
    assert!(checkpoint_steps > 4 * backprop_steps, "checkpoint:1000 stopped at step {checkpoint_steps}, backprop at {backprop_steps}");
    // Without gradients nothing is kept per step: the solve runs past the step where the
    // checkpointed tape stopped and ends on the step cap instead of the memory limit.
    let capped = problem_text(&d, "capped.json", |p| {
        p["solver"] = json!("rk4");
        p["step_size"] = json!(1e-7);
        p["max_steps"] = json!(checkpoint_steps + 100_000);
        None
    });
    expect(&nodal(&["--memory-limit", "16M", "solve", &capped]), 1, "maximum number of steps");
    // The checkpointed adjoint keeps one state per checkpoint and nothing per step: it too
    // reaches the step cap, past where the discrete checkpointed tape ran out of memory.
    expect(&nodal(&["--memory-limit", "16M", "solve", &capped, "--grad", "adjoint-checkpointed:1000"]), 1, "maximum number of steps");
    expect(&nodal(&["--memory-limit", "bogus", "solve", &tiny]), 2, "invalid value 'bogus' for '--memory-limit");
}

// ---------------------------------------------------------------------------------------------
// Outputs: validation before anything is touched; no temporary files; consistent folders.

#[test]
fn invalid_settings_leave_an_old_run_untouched() {
    let d = tmp("old-run");
    let dir = d.to_str().unwrap();
    assert!(nodal(&["train", "spiral", "--iters", "30", "--quiet", "--out", dir]).status.success());
    let before: Vec<(String, Vec<u8>)> = ["metrics.jsonl", "model.safetensors", "summary.json", "checkpoint.json"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(d.join(f)).unwrap()))
        .collect();
    for (bad, needle) in [
        (vec!["--rtol", "nan"], "--rtol must be finite and >= 0 (got NaN)"),
        (vec!["--atol=-1"], "--atol must be finite and >= 0 (got -1)"),
        (vec!["--rtol", "0", "--atol", "0"], "--rtol and --atol cannot both be 0"),
        (vec!["--rtol", "1e-45"], "--rtol 1e-45 underflows float32"),
        (vec!["--kinetic", "inf"], "--kinetic must be a finite weight >= 0 (got inf)"),
    ] {
        expect(&nodal(&[&["train", "spiral", "--iters", "30", "--quiet", "--out", dir][..], &bad[..]].concat()), 2, needle);
    }
    // Other settings than the checkpoint's are refused, not silently mixed.
    expect(
        &nodal(&["train", "spiral", "--iters", "30", "--seed", "7", "--quiet", "--out", dir]),
        2,
        "use another --out or delete the checkpoint",
    );
    for (f, bytes) in &before {
        assert_eq!(&std::fs::read(d.join(f)).unwrap(), bytes, "{f} changed");
    }
    no_temporaries(&d);
}

#[test]
fn an_unwritable_output_folder_fails_before_any_work() {
    let d = tmp("readonly");
    let data = tmp("readonly-data");
    write_idx(&data, "train", 16, 28, 28);
    write_idx(&data, "t10k", 8, 28, 28);
    let data = data.to_str().unwrap().to_string();
    // Workloads that would run for many minutes: failing within seconds, with nothing printed on
    // stdout, shows the output folder was checked before the first training step.
    let long_runs = |out: &str| -> Vec<Vec<String>> {
        [
            vec!["train", "mnist", "--model", "odenet", "--epochs", "100000", "--data", &data, "--out", out],
            vec!["train", "spiral", "--iters", "10000000", "--out", out],
        ]
        .iter()
        .map(|a| a.iter().map(|s| s.to_string()).collect())
        .collect()
    };
    let fails_fast = |args: &[String], needle: &str| {
        let start = std::time::Instant::now();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = nodal(&args);
        let took = start.elapsed();
        expect(&out, 4, needle);
        assert!(took.as_secs_f64() < 5.0, "{args:?} took {took:?} before failing");
        assert!(out.stdout.is_empty(), "{args:?} printed: {}", String::from_utf8_lossy(&out.stdout));
    };
    // An output "folder" under a regular file cannot be made, whoever runs the test.
    std::fs::write(d.join("file"), b"x").unwrap();
    let under_file = d.join("file").join("run");
    for args in long_runs(under_file.to_str().unwrap()) {
        fails_fast(&args, "Not a directory");
    }
    let ro = d.join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let mut perm = std::fs::metadata(&ro).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&ro, perm).unwrap();
    // Root ignores permission bits: then there is nothing to test.
    if std::fs::write(ro.join("probe"), b"x").is_ok() {
        eprintln!("skipped: running as a user that can write into read-only folders");
        return;
    }
    for args in long_runs(ro.join("x").to_str().unwrap()) {
        fails_fast(&args, "Permission denied");
    }
}

// ---------------------------------------------------------------------------------------------
// Silent substitutions: now errors that name the field or option.

#[test]
fn non_finite_and_nonsense_values_are_errors_not_defaults() {
    let d = tmp("substitutions");
    let raw = |p: &Value, field: &str, token: &str| {
        let mut q = p.clone();
        q[field] = json!("@@");
        Some(q.to_string().replace("\"@@\"", token))
    };
    for (field, token, needle) in [
        ("rtol", "NaN", "field `rtol`: must be finite and >= 0, got NaN"),
        ("rtol", "Infinity", "field `rtol`: must be finite and >= 0, got inf"),
        ("atol", "-Infinity", "field `atol`"),
        ("step_size", "NaN", "field `step_size`: must be positive and finite, got NaN"),
        ("step_size", "-1", "field `step_size`"),
        ("max_steps", "0", "field `max_steps`"),
        ("t", "[0, 1, 1]", "field `t`"),
        ("t", "[0, NaN]", "field `t`"),
        ("t", "[]", "field `t`"),
    ] {
        let f = problem_text(&d, &format!("{field}.json"), |p| raw(p, field, token));
        expect(&nodal(&["solve", &f]), 2, needle);
    }
    let f32_underflow = problem_text(&d, "f32.json", |p| {
        p["dtype"] = json!("float32");
        p["rtol"] = json!(1e-45);
        None
    });
    expect(&nodal(&["solve", &f32_underflow]), 2, "underflows float32");
    let fixed_without_step = problem_text(&d, "rk4.json", |p| {
        p["solver"] = json!("rk4");
        None
    });
    expect(&nodal(&["solve", &fixed_without_step]), 2, "no error estimator: give a fixed step_size");
    let per_sample = problem_text(&d, "ps.json", |p| {
        p["batch_mode"] = json!("per_sample");
        None
    });
    expect(&nodal(&["solve", &per_sample, "--grad", "backprop", "--t-grads"]), 2, "joint solves only");
    expect(&nodal(&["solve", &per_sample, "--t-grads"]), 2, "--t-grads needs --grad");
    let data = tmp("subst-data");
    write_idx(&data, "train", 16, 28, 28);
    write_idx(&data, "t10k", 8, 28, 28);
    let out = d.join("mnist");
    let m = |extra: &[&str]| {
        nodal(
            &[
                &["train", "mnist", "--model", "resnet", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"][..],
                extra,
            ]
            .concat(),
        )
    };
    expect(&m(&["--lr=-10"]), 2, "--lr must be positive and finite");
    expect(&m(&["--batch-size", "0"]), 2, "--batch-size must be between 1");
    expect(&m(&["--epochs", "0"]), 2, "--epochs must be between 1");
    // A run, then a resume with another learning rate: refused, with the way to go on.
    assert!(m(&["--epochs", "1", "--batch-size", "8"]).status.success());
    expect(&m(&["--epochs", "2", "--batch-size", "8", "--lr", "0.01"]), 2, "made with learning rate 0.001");
}

// ---------------------------------------------------------------------------------------------
// Misleading results: now errors.

#[test]
fn results_on_broken_weights_or_unsolvable_problems_are_errors() {
    let d = tmp("misleading");
    // NaN weights.
    let nan_w = d.join("nan.safetensors");
    let layout = [("net.0.weight", vec![50usize, 2]), ("net.0.bias", vec![50]), ("net.2.weight", vec![2, 50]), ("net.2.bias", vec![2])];
    let mk = |path: &Path, value: f32| {
        let bufs: Vec<Vec<u8>> =
            layout.iter().map(|(_, s)| vec![value; s.iter().product()].iter().flat_map(|x: &f32| x.to_le_bytes()).collect()).collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = layout
            .iter()
            .zip(&bufs)
            .map(|((n, s), b)| (n.to_string(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
            .collect();
        std::fs::write(path, safetensors::serialize(views, &None).unwrap()).unwrap();
    };
    mk(&nan_w, f32::NAN);
    expect(&nodal(&["eval", "spiral", "--weights", nan_w.to_str().unwrap()]), 2, "holds a non-finite value");
    // Truncated weights: the parse error, not a missing tensor.
    let good = d.join("good.safetensors");
    mk(&good, 0.1);
    let bytes = std::fs::read(&good).unwrap();
    let cut = d.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    expect(&nodal(&["eval", "spiral", "--weights", cut.to_str().unwrap()]), 2, "not a safetensors file");
    // Weights whose dynamics blow up: every sweep point fails, and so does the sweep.
    let wild = d.join("wild.safetensors");
    mk(&wild, 1e37);
    let out = nodal(&[
        "sweep",
        "--task",
        "spiral",
        "--weights",
        wild.to_str().unwrap(),
        "--rtol",
        "1e-3,1e-4",
        "--method",
        "dopri5",
        "--repeats",
        "1",
    ]);
    expect(&out, 1, "every one of the 2 points failed");
    // b2 = 1e308: the first step cannot be taken; the message says why.
    let big = problem_text(&d, "big.json", |p| {
        let n = p["weights"]["b2"].as_array().unwrap().len();
        p["weights"]["b2"] = json!(vec![1e308; n]);
        None
    });
    expect(&nodal(&["solve", &big]), 1, "no first step is possible at t = 0e0");
    let f32_big = problem_text(&d, "f32big.json", |p| {
        p["dtype"] = json!("float32");
        p["weights"]["b1"][0] = json!(1e300);
        None
    });
    expect(&nodal(&["solve", &f32_big]), 2, "outside float32's range");
}

// ---------------------------------------------------------------------------------------------
// Signals: SIGINT and SIGTERM at random points leave a folder the same command resumes from,
// and the resumed run ends with the weights of an uninterrupted one.

fn send(pid: u32, sig: i32) {
    // SAFETY: kill(2) on the child's pid.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Whether two safetensors files hold the same tensors bit for bit (their metadata maps may be
/// written in any order).
fn same_tensors(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (safetensors::SafeTensors::deserialize(a).unwrap(), safetensors::SafeTensors::deserialize(b).unwrap());
    let mut names = a.names();
    names.sort();
    let mut nb = b.names();
    nb.sort();
    names == nb && names.iter().all(|n| a.tensor(n).unwrap().data() == b.tensor(n).unwrap().data())
}

/// A small deterministic generator for the interruption times (splitmix64).
fn delays(seed: u64, n: usize, lo_ms: u64, hi_ms: u64) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            lo_ms + (z ^ (z >> 31)) % (hi_ms - lo_ms)
        })
        .collect()
}

/// Run `args` and deliver `sig` after `delay_ms`; returns the exit code. A signal that lands
/// before the process has installed its handlers (its first milliseconds) kills it by the
/// default action, which is reported as the code `128 + sig` with no message.
fn interrupt_after(args: &[&str], sig: i32, delay_ms: u64) -> (Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    let child = bin().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(delay_ms));
    send(child.id(), sig);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    if out.status.signal() == Some(sig) {
        return (None, err);
    }
    (out.status.code(), err)
}

/// What an interrupted (or finished) run folder must hold: a readable checkpoint whose progress
/// is covered by the metrics, the model, and no temporary files.
fn consistent_spiral_folder(d: &Path) {
    let ck: Value = serde_json::from_str(&std::fs::read_to_string(d.join("checkpoint.json")).unwrap()).unwrap();
    let iter = ck["iter"].as_u64().unwrap() as usize;
    let lines = std::fs::read_to_string(d.join("metrics.jsonl")).unwrap().lines().count();
    assert!(lines >= iter, "checkpoint at {iter}, metrics hold {lines}");
    assert!(d.join("model.safetensors").is_file());
    no_temporaries(d);
}

#[test]
fn spiral_interrupted_at_random_points_resumes_to_the_uninterrupted_weights() {
    let iters = "2500";
    let base = tmp("spiral-whole");
    let args = |dir: &Path| -> Vec<String> {
        ["train", "spiral", "--iters", iters, "--checkpoint-every", "50", "--quiet", "--out", dir.to_str().unwrap()]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let whole = args(&base);
    let start = std::time::Instant::now();
    assert!(nodal(&whole.iter().map(String::as_str).collect::<Vec<_>>()).status.success());
    let full_ms = (start.elapsed().as_millis() as u64).max(300);
    let want = std::fs::read(base.join("model.safetensors")).unwrap();
    let mut interrupted = 0;
    for (k, (sig, delay)) in
        [libc::SIGINT, libc::SIGTERM, libc::SIGINT, libc::SIGTERM].into_iter().zip(delays(11, 4, 30, full_ms * 3 / 4)).enumerate()
    {
        let d = tmp(&format!("spiral-int-{k}"));
        let a = args(&d);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, err) = interrupt_after(&a, sig, delay);
        match code {
            Some(c) if c == 128 + sig => {
                interrupted += 1;
                assert!(err.contains("rerun the same command to resume"), "{err}");
                consistent_spiral_folder(&d);
            }
            Some(0) | None => {}
            other => panic!("signal {sig} after {delay} ms: exit {other:?}: {err}"),
        }
        // A second interruption of the resumed run, then the resume to the end.
        if k == 0 {
            let (code, _) = interrupt_after(&a, libc::SIGINT, delay / 2 + 10);
            assert!(matches!(code, Some(0) | Some(130) | None), "{code:?}");
        }
        let out = nodal(&a);
        assert!(out.status.success(), "resume: {}", String::from_utf8_lossy(&out.stderr));
        consistent_spiral_folder(&d);
        assert!(std::fs::read(d.join("model.safetensors")).unwrap() == want, "case {k}: resumed weights differ");
        let iters: Vec<u64> = std::fs::read_to_string(d.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["iter"].as_u64().unwrap())
            .collect();
        assert!(iters.iter().copied().eq(1..=2500), "case {k}: metrics must hold iterations 1..=2500 once each, in order");
    }
    assert!(interrupted >= 2, "only {interrupted} of 4 runs were caught before they finished");
}

#[test]
fn mnist_interrupted_at_random_points_resumes_to_the_uninterrupted_weights() {
    let data = tmp("mnist-int-data");
    write_idx(&data, "train", 96, 28, 28);
    write_idx(&data, "t10k", 400, 28, 28);
    let args = |dir: &Path| -> Vec<String> {
        [
            "train",
            "mnist",
            "--model",
            "resnet",
            "--blocks",
            "1",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--checkpoint-every",
            "2",
            "--quiet",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--data".into(), data.to_string_lossy().into_owned(), "--out".into(), dir.to_string_lossy().into_owned()])
        .collect()
    };
    let base = tmp("mnist-whole");
    let whole = args(&base);
    let start = std::time::Instant::now();
    let out = nodal(&whole.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full_ms = (start.elapsed().as_millis() as u64).max(300);
    let want = std::fs::read(base.join("model.safetensors")).unwrap();
    let mut interrupted = 0;
    for (k, (sig, delay)) in [libc::SIGINT, libc::SIGTERM, libc::SIGINT].into_iter().zip(delays(5, 3, 150, full_ms * 3 / 4)).enumerate() {
        let d = tmp(&format!("mnist-int-{k}"));
        let a = args(&d);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, err) = interrupt_after(&a, sig, delay);
        match code {
            Some(c) if c == 128 + sig => {
                interrupted += 1;
                assert!(err.contains("checkpoint saved"), "{err}");
                let ck: Value = serde_json::from_str(&std::fs::read_to_string(d.join("checkpoint.json")).unwrap()).unwrap();
                assert!(d.join(ck["weights"].as_str().unwrap()).is_file() && d.join(ck["optim"].as_str().unwrap()).is_file());
                no_temporaries(&d);
            }
            Some(0) | None => {}
            other => panic!("signal {sig} after {delay} ms: exit {other:?}: {err}"),
        }
        let out = nodal(&a);
        assert!(out.status.success(), "resume: {}", String::from_utf8_lossy(&out.stderr));
        assert!(same_tensors(&std::fs::read(d.join("model.safetensors")).unwrap(), &want), "case {k}: resumed weights differ");
        let metrics = std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.lines().count(), 2, "one line per epoch");
        no_temporaries(&d);
    }
    assert!(interrupted >= 1, "no run was caught before it finished");
}
