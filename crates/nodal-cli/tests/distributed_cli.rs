//! Data-parallel runs under `mpirun` on loopback: 2 and 3 processes make the single process's
//! updates, per-sample solves split across ranks and come back in order, and a worker that is
//! killed or hangs ends the job with an error and an intact checkpoint that resumes.
//!
//! Needs a build with `--features mpi` and Open MPI's `mpirun` (`.ci/run` installs it when it
//! can): `cargo test --release -p nodal-cli --features mpi --test distributed_cli`. Without the
//! feature this file is empty; without `mpirun` each test prints why it is skipped.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const NODAL: &str = env!("CARGO_BIN_EXE_nodal");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/mnist");

fn have_mpirun() -> bool {
    let ok = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)");
    }
    ok
}

fn have_data() -> bool {
    let ok = Path::new(DATA).join("train-images-idx3-ubyte.gz").is_file();
    if !ok {
        eprintln!("skipped: no MNIST files in {DATA}");
    }
    ok
}

/// `mpirun -np n nodal args...` on this machine (root allowed, more ranks than cores allowed).
fn mpirun(n: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-np", &n.to_string(), "--oversubscribe", "--bind-to", "none", NODAL])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    c
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("nodal-dist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

fn text(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every tensor of a safetensors file, flattened in name order.
fn weights(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<_> = st.names().into_iter().cloned().collect();
    names.sort();
    names
        .iter()
        .flat_map(|n| st.tensor(n).unwrap().data().chunks(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<_>>())
        .collect()
}

fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "mnist", "--data", DATA, "--out", out, "--seed", "3", "--optimizer", "sgd", "--lr", "0.05", "--quiet"];
    a.extend_from_slice(extra);
    a
}

/// Two SGD steps on a global batch of 32 (shards of 16+16 and 11+11+10): the weights of 2 and 3
/// processes equal one process's within 1e-5 (f32 sums in another order; seen: one ulp of the
/// largest weights, ~1e-7), where one step moves them by ~1e-2; a run that skipped the
/// all-reduce would differ by ~1e-3. Models: the RK-Net (an ODE block by RK4, backprop through
/// the steps) and the ResNet.
#[test]
fn two_and_three_processes_make_the_single_process_updates() {
    if !(have_mpirun() && have_data()) {
        return;
    }
    for model in ["rknet", "resnet"] {
        let common = ["--model", model, "--limit-train", "64", "--limit-test", "40", "--batch-size", "32", "--epochs", "1"];
        let one = tmp(&format!("one-{model}"));
        let o = Command::new(NODAL).args(train_args(one.to_str().unwrap(), &common)).output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let w1 = weights(&one.join("model.safetensors"));
        for n in [2, 3] {
            let out = tmp(&format!("{n}-{model}"));
            let o = mpirun(n, &train_args(out.to_str().unwrap(), &common)).output().unwrap();
            assert!(o.status.success(), "{}", text(&o));
            let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
            assert_eq!(summary["ranks"], n, "only rank 0 prints, once");
            let wn = weights(&out.join("model.safetensors"));
            assert_eq!(wn.len(), w1.len());
            let d = w1.iter().zip(&wn).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(d < 1e-5, "{model}, {n} processes: weights differ from one process by {d}");
            std::fs::remove_dir_all(&out).unwrap();
        }
        std::fs::remove_dir_all(&one).unwrap();
    }
}

/// A per-sample problem of 7 rows solved by 3 processes (rows 0-2, 3-4, 5-6) prints the single
/// process's solution exactly (rows are solved alone either way) and its gradients to 1e-12
/// relative (parameter gradients are sums over rows, added in another order).
#[test]
fn per_sample_rows_split_across_processes_come_back_in_order() {
    if !have_mpirun() {
        return;
    }
    let dir = tmp("solve");
    std::fs::create_dir_all(&dir).unwrap();
    let problem = serde_json::json!({
        "t": [0.0, 0.5, 1.0], "solver": "dopri5", "rtol": 1e-8, "atol": 1e-10, "batch_mode": "per_sample",
        "weights": { "W1": [[0.5, -0.3], [0.2, 0.8], [-0.7, 0.1]], "b1": [0.1, -0.2, 0.05],
                     "W2": [[0.3, -0.6, 0.2], [0.9, 0.1, -0.4]], "b2": [0.01, -0.02] },
        "y0": [[1.0, 0.0], [0.0, 1.0], [0.5, -0.5], [2.0, 1.0], [-1.0, 0.3], [0.1, 0.1], [3.0, -2.0]]
    });
    let path = dir.join("p.json");
    std::fs::write(&path, problem.to_string()).unwrap();
    let p = path.to_str().unwrap();
    let one = Command::new(NODAL).args(["solve", p, "--grad", "adjoint"]).output().unwrap();
    assert!(one.status.success(), "{}", text(&one));
    let three = mpirun(3, &["solve", p, "--grad", "adjoint"]).output().unwrap();
    assert!(three.status.success(), "{}", text(&three));
    let (a, b): (serde_json::Value, serde_json::Value) =
        (serde_json::from_slice(&one.stdout).unwrap(), serde_json::from_slice(&three.stdout).unwrap());
    assert_eq!(b["ranks"], 3);
    assert_eq!(a["ys"], b["ys"], "solutions differ");
    assert_eq!(a["row_status"], b["row_status"]);
    assert_eq!(a["stats"]["row_nfe"], b["stats"]["row_nfe"]);
    assert_eq!(a["grads"]["y0"], b["grads"]["y0"]);
    for k in ["W1", "b1", "W2", "b2"] {
        let flat = |v: &serde_json::Value| -> Vec<f64> {
            let s = v.to_string();
            s.split(|c: char| !(c.is_ascii_digit() || "-.eE+".contains(c))).filter(|x| !x.is_empty()).map(|x| x.parse().unwrap()).collect()
        };
        let (x, y) = (flat(&a["grads"][k]), flat(&b["grads"][k]));
        assert_eq!(x.len(), y.len());
        for (u, v) in x.iter().zip(&y) {
            assert!((u - v).abs() <= 1e-12 * u.abs().max(1.0), "{k}: {u} vs {v}");
        }
    }
    // A joint problem cannot be split: refused with a reason, exit 2.
    let mut joint = problem.clone();
    joint["batch_mode"] = "joint".into();
    std::fs::write(&path, joint.to_string()).unwrap();
    let o = mpirun(2, &["solve", p]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("per_sample"), "{}", text(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The pid of the process that mpirun `launcher` started as rank `rank`.
fn rank_pid(launcher: u32, rank: usize) -> Option<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        if !env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            continue;
        }
        // Its parent chain must lead to our launcher.
        let mut p = pid;
        for _ in 0..5 {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat.rsplit(')').next().and_then(|s| s.split_whitespace().nth(1)).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
            if ppid == launcher {
                return Some(pid);
            }
            if ppid <= 1 {
                break;
            }
            p = ppid;
        }
    }
    None
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Starts a 2-rank run that checkpoints after every batch, waits for its second checkpoint,
/// then does `act` to rank 1. The job must end with an error within `limit`; the checkpoint it
/// leaves must be complete, and the same command must resume from it and finish.
fn break_a_worker(name: &str, signal: i32, limit: Duration, extra: &[&str]) -> String {
    let out = tmp(name);
    let o = out.to_str().unwrap().to_string();
    let mut args = vec![
        "--model",
        "resnet",
        "--limit-train",
        "1600",
        "--limit-test",
        "20",
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--checkpoint-every",
        "1",
    ];
    args.extend_from_slice(extra);
    let mut child = mpirun(2, &train_args(&o, &args)).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    let ck = out.join("checkpoint.json");
    while !std::fs::read_to_string(&ck).is_ok_and(|s| s.contains("\"batch\": 2")) {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint after 120 s");
        assert!(child.try_wait().unwrap().is_none(), "the job ended before it could be broken");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rank_pid(child.id(), 1).expect("rank 1's process");
    let broken = Instant::now();
    unsafe { libc::kill(pid as i32, signal) };
    let status = wait_for(&mut child, limit);
    let _ = unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let Some(status) = status else {
        let _ = child.kill();
        panic!("the job did not end within {limit:?} after rank 1 was broken");
    };
    let waited = broken.elapsed();
    let o2 = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o2.stderr).to_string();
    assert!(!status.success(), "the job reported success:\n{stderr}");
    eprintln!("{name}: job ended {waited:?} after rank 1 was broken, status {status:?}");
    // The checkpoint is whole: the JSON parses and names files that exist.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ck).unwrap()).unwrap();
    for k in ["weights", "optim"] {
        assert!(out.join(v[k].as_str().unwrap()).is_file(), "{k} file of the checkpoint is missing");
    }
    // Rerunning the same command resumes and finishes.
    let again = mpirun(2, &train_args(&o, &args)).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("resuming resnet"), "{}", text(&again));
    assert!(out.join("model.safetensors").is_file());
    std::fs::remove_dir_all(&out).unwrap();
    stderr
}

/// A worker killed mid-run (SIGKILL) ends the job: mpirun sees it die and stops the others.
#[test]
fn a_killed_worker_ends_the_job_and_the_checkpoint_resumes() {
    if !(have_mpirun() && have_data()) {
        return;
    }
    let stderr = break_a_worker("killed", libc::SIGKILL, Duration::from_secs(60), &[]);
    assert!(stderr.contains("rank 1") || stderr.contains("signal 9") || stderr.contains("Killed"), "{stderr}");
}

/// A worker that hangs (SIGSTOP) leaves rank 0 waiting in the all-reduce: its watchdog ends the
/// job after --distributed-timeout (3 s here) with a message saying so.
#[test]
fn a_hung_worker_ends_the_job_within_the_timeout() {
    if !(have_mpirun() && have_data()) {
        return;
    }
    let stderr = break_a_worker("hung", libc::SIGSTOP, Duration::from_secs(60), &["--distributed-timeout", "3"]);
    assert!(stderr.contains("a worker died or hangs"), "{stderr}");
}

/// `nodal train cnf` on 2 processes: rank 0 alone prints and writes, and the held-out NLL after
/// 20 iterations is within 0.01 nats of one process's (each shard's adaptive solve takes its own
/// steps, so the runs agree to the solver's tolerance, not bit for bit).
#[test]
fn the_cnf_trains_on_two_processes_like_one() {
    if !have_mpirun() {
        return;
    }
    let common =
        ["train", "cnf", "--data", "moons", "--iters", "20", "--batch", "128", "--threads", "1", "--n-test", "2000", "--no-fig", "--quiet"];
    let (one, two) = (tmp("cnf-one"), tmp("cnf-two"));
    let o1 = Command::new(NODAL).args(common).args(["--out", one.to_str().unwrap()]).output().unwrap();
    assert!(o1.status.success(), "{}", text(&o1));
    let o2 = mpirun(2, &common).args(["--out", two.to_str().unwrap()]).output().unwrap();
    assert!(o2.status.success(), "{}", text(&o2));
    let (s1, s2): (serde_json::Value, serde_json::Value) =
        (serde_json::from_slice(&o1.stdout).unwrap(), serde_json::from_slice(&o2.stdout).unwrap());
    assert_eq!(s2["ranks"], 2);
    let (a, b) = (s1["test_nll"].as_f64().unwrap(), s2["test_nll"].as_f64().unwrap());
    assert!((a - b).abs() < 0.01, "test NLL: one process {a}, two {b}");
    assert!(two.join("model.safetensors").is_file() && two.join("summary.json").is_file());
    for d in [one, two] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// A rank that fails alone before any collective (here rank 0, whose output folder lies under a
/// file) ends the job at once with its error: it exits without finalising MPI, so mpirun stops
/// the rank that waits for it (a finalise would wait for that rank; the job would then hang
/// until the watchdog's timeout, 300 s by default).
#[test]
fn a_rank_that_fails_alone_ends_the_job_at_once() {
    if !(have_mpirun() && have_data()) {
        return;
    }
    let dir = tmp("alone");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("run");
    let start = Instant::now();
    let mut child = mpirun(2, &train_args(out.to_str().unwrap(), &["--model", "resnet", "--limit-train", "64", "--limit-test", "20"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    let took = start.elapsed();
    assert!(status.is_some(), "the job hung: {}", text(&o));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a-file"), "the error names the output folder: {}", text(&o));
    assert!(took < Duration::from_secs(30), "the job took {took:?} to end");
    eprintln!("a lone failure ended the job in {took:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
