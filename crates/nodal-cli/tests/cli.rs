//! The `nodal` binary as a user runs it: output formats, exit codes, files written.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn nodal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nodal")).args(args).output().expect("the binary runs")
}

fn reference() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/grad_vectors_seed0.json").to_string()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-cli-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn problem_with(edit: impl FnOnce(&mut Value)) -> PathBuf {
    let text = std::fs::read_to_string(reference()).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let mut p = v["problem"].take();
    edit(&mut p);
    let path = tmp("problems").join(format!("p{}.json", rand_suffix()));
    std::fs::write(&path, p.to_string()).unwrap();
    path
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// Every number of a JSON value, nested arrays flattened in order.
fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("expected numbers, found {other}"),
    }
}

/// The reference file's agreed tolerances: every output value within 1e-8 absolute, every
/// gradient within 1e-6 of the largest entry of its own reference gradient.
#[test]
fn solve_prints_the_reference_solution_and_gradients() {
    let r: Value = serde_json::from_str(&std::fs::read_to_string(reference()).unwrap()).unwrap();
    let want_all = &r["reference"];
    for grad in ["backprop", "checkpoint", "adjoint", "adjoint-checkpointed", "adjoint-checkpointed:5"] {
        let out = nodal(&["solve", &reference(), "--grad", grad]);
        assert!(out.status.success(), "{grad}: {}", String::from_utf8_lossy(&out.stderr));
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (ys, want) = (numbers(&j["ys"]), numbers(&want_all["ys"]));
        assert_eq!(ys.len(), want.len(), "{grad}: number of output values");
        let worst = ys.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-8, "{grad}: ys differ from the reference by {worst:e}");
        let (loss, want_loss) = (j["loss"].as_f64().unwrap(), want_all["loss"].as_f64().unwrap());
        assert!((loss - want_loss).abs() < 1e-8 * want_loss.abs(), "{grad}: loss {loss} vs {want_loss}");
        for name in ["y0", "W1", "b1", "W2", "b2"] {
            let (g, want) = (numbers(&j["grads"][name]), numbers(&want_all["grads"][name]));
            assert_eq!(g.len(), want.len(), "{grad}: size of grads.{name}");
            let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let worst = g.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst <= 1e-6 * scale, "{grad}: grads.{name} off by {worst:e} (largest entry {scale:e})");
        }
        let (fwd, bwd) = (&j["stats"], &j["backward_stats"]);
        assert_eq!(
            fwd["nfe"].as_u64().unwrap(),
            2 + 6 * fwd["accepted"].as_u64().unwrap() + 6 * fwd["rejected"].as_u64().unwrap(),
            "{grad}: dopri5 forward accounting"
        );
        assert!(bwd["nfe"].as_u64().unwrap() > 0, "{grad}: the backward pass evaluated nothing");
    }
    // Per-sample mode (each row its own steps and its own backward pass) gives the same
    // gradients to the same tolerance, with each continuous adjoint.
    let per_sample = problem_with(|p| p["batch_mode"] = "per_sample".into());
    for grad in ["adjoint", "adjoint-checkpointed"] {
        let out = nodal(&["solve", per_sample.to_str().unwrap(), "--grad", grad]);
        assert!(out.status.success(), "per-sample {grad}: {}", String::from_utf8_lossy(&out.stderr));
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        for name in ["y0", "W1", "b1", "W2", "b2"] {
            let (g, want) = (numbers(&j["grads"][name]), numbers(&want_all["grads"][name]));
            let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let worst = g.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(g.len() == want.len() && worst <= 1e-6 * scale, "per-sample {grad}: grads.{name} off by {worst:e}");
        }
    }
}

/// The mixed-rate problem where reconstructing y backwards fails (contraction rate 40 in two
/// dimensions, none in the third): the backsolve adjoint warns and is far off; the checkpointed
/// adjoint is silent and matches backprop.
#[test]
fn the_backsolve_adjoint_warns_where_reconstruction_fails_and_the_checkpointed_one_is_right() {
    let k = 40.0;
    let p = problem_with(|p| {
        p["t"] = serde_json::json!([0.0, 1.0]);
        p["rtol"] = 1e-6.into();
        p["atol"] = 1e-8.into();
        p["weights"] = serde_json::json!({
            "W1": [[0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]],
            "b1": [0.0, 0.0, 0.0],
            "W2": [[-10.0 * k, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -10.0 * k]],
            "b2": [k, 1.0, 0.7 * k],
        });
    });
    let run = |grad: &str| {
        let out = nodal(&["solve", p.to_str().unwrap(), "--grad", grad]);
        assert!(out.status.success(), "{grad}: {}", String::from_utf8_lossy(&out.stderr));
        (serde_json::from_slice::<Value>(&out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (exact, _) = run("backprop");
    let (plain, plain_err) = run("adjoint");
    let (ck, ck_err) = run("adjoint-checkpointed");
    let w2_err = |j: &Value| {
        let (g, want) = (numbers(&j["grads"]["W2"]), numbers(&exact["grads"]["W2"]));
        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        g.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
    };
    assert!(plain_err.contains("reconstruction of y drifted") && plain_err.contains("--grad adjoint-checkpointed"), "{plain_err}");
    assert!(plain["backward_stats"]["reconstruction_error"].as_f64().unwrap() > 1.0);
    assert!(w2_err(&plain) > 0.1, "the backsolve adjoint should be far off here: {}", w2_err(&plain));
    assert!(ck_err.is_empty() && ck["backward_stats"]["reconstruction_error"].is_null(), "{ck_err}");
    assert!(w2_err(&ck) < 1e-5, "checkpointed adjoint off by {}", w2_err(&ck));
    assert_eq!(ck["grad_method"], "adjoint-checkpointed");
    let bad = nodal(&["solve", p.to_str().unwrap(), "--grad", "adjoint", "--reconstruction-warn", "nan"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn unusable_files_exit_2_with_a_one_line_reason() {
    let missing = nodal(&["solve", "/nonexistent/problem.json"]);
    assert_eq!(missing.status.code(), Some(2));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nonexistent/problem.json") && err.lines().count() == 1, "{err}");
    let bad = problem_with(|p| p["weights"]["W2"] = serde_json::json!([[1.0]]));
    let out = nodal(&["solve", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("W2"));
    let garbage = tmp("garbage").join("g.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    assert_eq!(nodal(&["solve", garbage.to_str().unwrap()]).status.code(), Some(2));
}

#[test]
fn a_failed_solve_exits_1_and_still_prints_the_partial_solution() {
    let p = problem_with(|p| p["max_steps"] = 3.into());
    let out = nodal(&["solve", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("maximum number of steps"));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(j["error"].as_str().unwrap().contains("maximum number of steps (3)"));
    // The partial solution: the first output time is reached (it is y0, bit for bit: the input
    // is parsed exactly), the later ones are not, and the work stops at the cap.
    let ys = j["ys"].as_array().unwrap();
    assert_eq!(ys.len(), 1, "only t = 0 is reached within 3 steps");
    let y0: Value = serde_json::from_str::<Value>(&std::fs::read_to_string(&p).unwrap()).unwrap()["y0"].clone();
    assert_eq!(ys[0], y0);
    assert_eq!(j["stats"]["accepted"].as_u64().unwrap() + j["stats"]["rejected"].as_u64().unwrap(), 3);
}

#[test]
fn per_sample_with_a_bad_row_exits_3() {
    let p = problem_with(|p| {
        p["batch_mode"] = "per_sample".into();
        p["y0"][2] = serde_json::json!([null, 0.0, 0.0]);
    });
    let out = nodal(&["solve", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in [0, 1, 3] {
        assert_eq!(j["row_status"][r], "ok", "row {r}");
    }
    assert!(j["row_status"][2].as_str().unwrap().contains("non-finite"));
    let row_nfe = j["stats"]["row_nfe"].as_array().unwrap();
    assert_eq!(row_nfe.len(), 4);
    assert!(row_nfe.iter().enumerate().all(|(r, n)| r == 2 || n.as_u64().unwrap() > 0), "{row_nfe:?}");
    assert!(j["stats"]["row_evaluations"].is_u64());
}

#[test]
fn train_and_eval_spiral_write_everything() {
    let dir = tmp("spiral");
    let out = nodal(&["train", "spiral", "--iters", "40", "--quiet", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["metrics.jsonl", "summary.json", "model.safetensors", "trajectories.png", "phase.png", "vector_field.png"] {
        assert!(dir.join(f).metadata().map(|m| m.len() > 0).unwrap_or(false), "{f} missing");
    }
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 40);
    let first: Value = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    for k in ["iter", "loss", "ms", "nfe_forward", "nfe_backward"] {
        assert!(!first[k].is_null(), "metrics field {k}");
    }
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for k in ["median_ms_per_iter", "test_loss", "nfe_total"] {
        assert!(summary[k].is_number(), "summary field {k}");
    }
    let eval = nodal(&["eval", "spiral", "--weights", dir.join("model.safetensors").to_str().unwrap()]);
    assert!(eval.status.success());
    let e: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!((e["test_loss"].as_f64().unwrap() - summary["test_loss"].as_f64().unwrap()).abs() < 1e-9);
    let bad = nodal(&["eval", "spiral", "--weights", dir.join("metrics.jsonl").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn sweep_reports_evaluations_falling_with_looser_tolerances() {
    let dir = tmp("sweep");
    assert!(nodal(&["train", "spiral", "--iters", "20", "--quiet", "--out", dir.to_str().unwrap()]).status.success());
    let w = dir.join("model.safetensors");
    let out = nodal(&[
        "sweep",
        "--task",
        "spiral",
        "--weights",
        w.to_str().unwrap(),
        "--rtol",
        "1e-3,1e-6",
        "--method",
        "dopri5",
        "--repeats",
        "1",
        "--json",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        for k in ["rtol", "nfe", "seconds", "loss"] {
            assert!(r[k].is_number(), "{k}");
        }
    }
    assert!(rows[0]["nfe"].as_u64().unwrap() < rows[1]["nfe"].as_u64().unwrap());
    for f in ["sweep.md", "sweep.json", "sweep.png"] {
        assert!(dir.join(f).exists(), "{f}");
    }
    assert_eq!(nodal(&["sweep", "--task", "mnist", "--weights", w.to_str().unwrap()]).status.code(), Some(2));
    assert_eq!(nodal(&["sweep", "--task", "spiral"]).status.code(), Some(2), "no weights and no study");
}

#[test]
fn training_tolerance_study_trains_one_model_per_tolerance() {
    let out = nodal(&[
        "sweep",
        "--task",
        "spiral",
        "--train-rtol",
        "1e-3,1e-6",
        "--iters",
        "30",
        "--rtol",
        "1e-3,1e-6",
        "--method",
        "dopri5",
        "--repeats",
        "1",
        "--json",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let column = |k: &str| -> Vec<f64> { rows.iter().map(|r| r[k].as_f64().unwrap()).collect() };
    assert_eq!(column("train_rtol"), vec![1e-3, 1e-3, 1e-6, 1e-6]);
    assert_eq!(column("rtol"), vec![1e-3, 1e-6, 1e-3, 1e-6]);
    // Two models were trained: at the same evaluation tolerance their losses differ.
    let loss = column("loss");
    assert!(loss.iter().all(|l| l.is_finite()) && column("nfe").iter().all(|n| *n > 0.0));
    assert_ne!(loss[0], loss[2], "the models trained at 1e-3 and 1e-6 gave the same loss");
}

/// The MNIST sweep on the committed RK-Net weights (its block evaluated by adaptive dopri5):
/// evaluations fall as the tolerance loosens.
#[test]
fn mnist_sweep_reports_accuracy_and_evaluations() {
    let Some(data) = mnist_data() else { return };
    let w = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-rknet.safetensors");
    let out = nodal(&[
        "sweep",
        "--task",
        "mnist",
        "--weights",
        w,
        "--data",
        data,
        "--limit-test",
        "100",
        "--batch-size",
        "100",
        "--rtol",
        "1e-1,1e-4",
        "--method",
        "dopri5",
        "--json",
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        let acc = r["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc) && r["seconds"].is_number());
    }
    // At 1e-4 the block is solved accurately: the model keeps its documented accuracy (99%+ on
    // the full test set; 100 images allow a few misses).
    assert!(rows[1]["accuracy"].as_f64().unwrap() >= 0.95, "{rows:?}");
    assert!(rows[0]["nfe"].as_f64().unwrap() < rows[1]["nfe"].as_f64().unwrap(), "{rows:?}");
    let resnet = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-resnet.safetensors");
    assert_eq!(
        nodal(&["sweep", "--task", "mnist", "--weights", resnet, "--data", data]).status.code(),
        Some(2),
        "a ResNet has no ODE block"
    );
}

/// The committed MNIST weights reproduce their documented accuracy (needs the shared MNIST files,
/// which sit beside the repository in CI).
#[test]
fn committed_mnist_weights_reproduce_their_accuracy() {
    let Some(data) = mnist_data() else { return };
    // (file, model, parameters, documented accuracy, tolerance): the ResNet is bit-reproducible;
    // the ODE models and the DEQ allow 5 images of slack, in case a different summation order (threads) moved
    // an adaptive step.
    for (file, model, params, acc, tol) in [
        ("mnist-resnet.safetensors", "resnet", 576778, 0.9905, 1e-9),
        ("mnist-rknet.safetensors", "rknet", 208266, RKNET_ACCURACY, 5e-4),
        ("mnist-odenet.safetensors", "odenet", 208266, 0.9933, 5e-4),
        ("mnist-deq.safetensors", "deq", 206986, 0.9912, 5e-4),
    ] {
        let weights = format!("{}/../../models/{file}", env!("CARGO_MANIFEST_DIR"));
        let out = nodal(&["eval", "mnist", "--weights", &weights, "--data", data, "--quiet"]);
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(j["model"], model);
        assert_eq!(j["params"], params);
        assert!((j["accuracy"].as_f64().unwrap() - acc).abs() <= tol, "{file}: {}", j["accuracy"]);
        assert!(j["accuracy"].as_f64().unwrap() >= 0.99, "{file} is below 99%");
    }
}

/// The RK-Net's documented test accuracy (models/README.md).
const RKNET_ACCURACY: f64 = 0.9926;

#[test]
fn plot_trajectories_writes_figures_and_summary() {
    let dir = tmp("trajectories");
    let out = nodal(&["plot", "trajectories", "--task", "dupont1d", "--iters", "40", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["dupont1d_training.png", "dupont1d_trajectories.png"] {
        let bytes = std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{f} is not a drawn PNG");
    }
    let s: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let t = &s["tasks"]["dupont1d"];
    assert_eq!(t["iters"].as_u64(), Some(40));
    assert!(s["tasks"].get("circles").is_none(), "only the asked-for task runs");
    for m in ["node", "anode"] {
        assert!(t[m]["final_loss"].as_f64().unwrap().is_finite(), "{m}");
        assert!(t[m]["median_nfe_per_solve"].as_f64().unwrap() >= 6.0, "{m}: dopri5 needs at least one step");
        assert!(t[m]["final_nfe_per_solve"].as_u64().unwrap() >= 6, "{m}");
    }
    assert_eq!(t["anode"]["state_dim"].as_u64(), Some(2));
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')), "temporary files left");
    let bad = nodal(&["plot", "trajectories", "--task", "dupont1d", "--augment", "0", "--out", dir.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--augment"));
}

/// `nodal plot mnist-states` on the committed RK-Net weights writes its figure and JSON; a ResNet
/// (no ODE block) is refused with exit code 2.
#[test]
fn mnist_states_figure_is_written() {
    let Some(data) = mnist_data() else { return };
    let dir = tmp("mnist-states");
    let w = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-rknet.safetensors");
    let out = nodal(&[
        "plot",
        "mnist-states",
        "--weights",
        w,
        "--data",
        data,
        "--per-class",
        "1",
        "--times",
        "5",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("mnist_states.json")).unwrap()).unwrap();
    assert_eq!(j["images"].as_array().unwrap().len(), 10);
    let moved = j["relative_distance_at_t1"].as_array().unwrap();
    assert!(moved.iter().all(|m| m.as_f64().unwrap() > 0.0), "every state moves");
    assert!(dir.join("mnist_states.png").exists());
    let resnet = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist-resnet.safetensors");
    let r = nodal(&["plot", "mnist-states", "--weights", resnet, "--data", data, "--out", dir.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
}

/// The shared MNIST folder beside the repository (as in CI), or `None` (and a note) without it.
/// `nodal train mnist --model deq` and `--model tied` on a few images: summaries with the DEQ's
/// settings and iterations, weights that `nodal eval` reproduces; a strict DEQ at a cap of one
/// iteration fails with exit code 1 and says why; bad DEQ options are usage errors.
#[test]
fn mnist_deq_and_tied_train_evaluate_and_fail_clearly() {
    let Some(data) = mnist_data() else { return };
    let dir = tmp("mnist-deq");
    for (model, extra) in [("deq", vec!["--solver", "broyden"]), ("tied", vec!["--depth", "3"])] {
        let out = dir.join(model);
        let mut args = vec![
            "train",
            "mnist",
            "--model",
            model,
            "--data",
            data,
            "--epochs",
            "1",
            "--limit-train",
            "64",
            "--limit-test",
            "40",
            "--batch-size",
            "32",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra.iter().copied());
        let o = nodal(&args);
        assert!(o.status.success(), "{model}: {}", String::from_utf8_lossy(&o.stderr));
        let s: Value = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(s["params"], 206986);
        let acc = s["test_accuracy"].as_f64().unwrap();
        if model == "deq" {
            assert_eq!(s["deq"]["solver"], "broyden");
            assert!(s["nfe_forward"].as_f64().unwrap() >= 2.0 && s["nvjp_backward"].as_f64().unwrap() >= 2.0, "{s}");
        } else {
            assert_eq!((s["deq"]["depth"].as_u64(), s["nfe_forward"].as_f64()), (Some(3), Some(3.0)));
        }
        let w = out.join("model.safetensors");
        let mut eval = vec!["eval", "mnist", "--weights", w.to_str().unwrap(), "--data", data, "--limit-test", "40", "--quiet"];
        eval.extend(extra.iter().copied());
        let e = nodal(&eval);
        assert!(e.status.success(), "{model}: {}", String::from_utf8_lossy(&e.stderr));
        let j: Value = serde_json::from_slice(&e.stdout).unwrap();
        assert_eq!(j["model"], model);
        assert_eq!(j["accuracy"].as_f64(), Some(acc), "{model}: eval reproduces the training run's test accuracy");
    }
    let w = dir.join("deq/model.safetensors");
    let strict = nodal(&[
        "eval",
        "mnist",
        "--weights",
        w.to_str().unwrap(),
        "--data",
        data,
        "--limit-test",
        "10",
        "--deq-max-iter",
        "1",
        "--deq-strict",
        "--quiet",
    ]);
    assert_eq!(strict.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&strict.stderr);
    assert!(msg.contains("forward solve did not converge") && msg.contains("1 iterations"), "{msg}");
    for (bad, name) in [("--deq-max-iter=0", "deq-max-iter"), ("--deq-rtol=-1", "deq-rtol"), ("--depth=0", "depth")] {
        let o = nodal(&["eval", "mnist", "--weights", w.to_str().unwrap(), "--data", data, bad, "--quiet"]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(name), "{bad}: {}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn mnist_data() -> Option<&'static str> {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/mnist");
    if std::path::Path::new(data).join("t10k-images-idx3-ubyte.gz").exists() {
        Some(data)
    } else {
        eprintln!("skipped: no MNIST files at {data}");
        None
    }
}

/// `nodal plot homeomorphism`: the figure, table and JSON of a short run, a measured row per
/// map, the neural ODE's determinant positive; bad options are usage errors.
#[test]
fn homeomorphism_writes_its_figure_table_and_rows() {
    let dir = tmp("homeomorphism");
    let out = nodal(&["plot", "homeomorphism", "--target", "letter", "--iters", "20", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["homeomorphism_letter.png", "homeomorphism.md", "homeomorphism.json"] {
        assert!(dir.join(f).metadata().map(|m| m.len() > 0).unwrap_or(false), "{f} missing");
    }
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("homeomorphism.json")).unwrap()).unwrap();
    let maps: Vec<&str> = rows.iter().map(|r| r["map"].as_str().unwrap()).collect();
    assert_eq!(maps, ["neural ODE", "MLP", "ResNet (4 blocks)"]);
    assert!(rows[0]["min_det"].as_f64().unwrap() > 0.0 && rows[0]["curve_crossings"] == 0 && rows[0]["grid_folds"] == 0);
    assert!(rows.iter().all(|r| r["loss"].as_array().unwrap().len() == 20 && r["fit_rmse"].as_f64().unwrap().is_finite()));
    let bad = nodal(&["plot", "homeomorphism", "--iters", "0", "--out", dir.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    let bad = nodal(&["plot", "homeomorphism", "--target", "square"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// `nodal plot reconstruction`: the backsolve adjoint fails on the mixed-rate problem and the
/// strongly damped pendulum while the checkpointed adjoint stays within reach of its tolerance
/// on every problem; it keeps no per-step records.
#[test]
fn reconstruction_study_shows_where_the_backsolve_adjoint_fails() {
    let dir = tmp("reconstruction");
    let out = nodal(&["plot", "reconstruction", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["reconstruction.png", "reconstruction.md", "reconstruction.json"] {
        assert!(dir.join(f).metadata().map(|m| m.len() > 0).unwrap_or(false), "{f} missing");
    }
    let rows: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("reconstruction.json")).unwrap()).unwrap();
    let err = |problem: &str, rtol: f64, method: &str| {
        let r = rows
            .iter()
            .find(|r| r["problem"] == problem && r["rtol"] == rtol && r["method"] == method)
            .unwrap_or_else(|| panic!("{problem} {rtol} {method}"));
        r["grad_error"].as_f64().unwrap()
    };
    assert!(err("mixed-rate k=40", 1e-6, "adjoint") > 1e-2);
    assert!(err("damped pendulum c=10", 1e-6, "adjoint") > 1.0);
    // The learned spiral field (span 25, a sensitive gradient): reconstruction holds, and every
    // method is as far from the reference as backprop's discretisation is.
    for rtol in [1e-4, 1e-6, 1e-8] {
        let exact = err("learned spiral field", rtol, "backprop");
        for m in ["adjoint", "adjoint-checkpointed"] {
            let e = err("learned spiral field", rtol, m);
            assert!(e < 2.0 * exact, "spiral at {rtol}: {m} {e:e} vs backprop {exact:e}");
        }
    }
    for r in rows.iter().filter(|r| r["method"] == "adjoint-checkpointed" && r["problem"] != "learned spiral field") {
        let (rtol, e) = (r["rtol"].as_f64().unwrap(), r["grad_error"].as_f64().unwrap());
        // Within 10 x rtol of the reference; at rtol 1e-4 the pendulum solve itself errs by about
        // 1e-3 (backprop is as far off there).
        assert!(e < (10.0 * rtol).max(1e-3), "{r}");
        assert_eq!(r["step_records"], 0, "{r}");
        assert!(r["reconstruction_error"].is_null());
    }
}

#[test]
fn train_and_eval_cnf_write_everything() {
    let dir = tmp("cnf");
    let d = dir.to_str().unwrap();
    let out = nodal(&["train", "cnf", "--data", "moons", "--iters", "10", "--batch", "128", "--n-test", "500", "--quiet", "--out", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["metrics.jsonl", "summary.json", "model.safetensors", "cnf.png"] {
        assert!(dir.join(f).metadata().map(|m| m.len() > 0).unwrap_or(false), "{f} missing");
    }
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 10);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for k in ["test_nll", "median_ms_per_iter", "nfe_forward", "nfe_backward", "data_entropy"] {
        assert!(summary[k].is_number(), "summary field {k}");
    }
    // Eval on train's own test set (seed 0 + 1000) gives train's number.
    let w = dir.join("model.safetensors");
    let eval = nodal(&["eval", "cnf", "--weights", w.to_str().unwrap(), "--data", "moons", "--n-test", "500"]);
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    let e: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!((e["test_nll"].as_f64().unwrap() - summary["test_nll"].as_f64().unwrap()).abs() < 1e-9);
    assert!(e["nfe"].as_u64().unwrap() > 0);
    // The burn-module engine with Hutchinson's trace and the RNODE penalties runs too.
    let dir2 = tmp("cnf-module");
    let out = nodal(&[
        "train",
        "cnf",
        "--data",
        "8gaussians",
        "--engine",
        "module",
        "--trace",
        "hutchinson",
        "--kinetic",
        "0.1",
        "--jacobian",
        "0.1",
        "--iters",
        "3",
        "--batch",
        "64",
        "--n-test",
        "200",
        "--no-fig",
        "--quiet",
        "--out",
        dir2.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = std::fs::read_to_string(dir2.join("metrics.jsonl")).unwrap();
    let first: Value = serde_json::from_str(m.lines().next().unwrap()).unwrap();
    assert!(first["kinetic"].is_number() && first["jacobian"].is_number());
    // Bad input: exit 2 with a reason.
    let bad = nodal(&["train", "cnf", "--data", "spirals", "--out", d]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = nodal(&["eval", "cnf", "--weights", dir.join("metrics.jsonl").to_str().unwrap(), "--data", "moons"]);
    assert_eq!(bad.status.code(), Some(2));
}
