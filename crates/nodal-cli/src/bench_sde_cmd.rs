//! `nodal bench-sde`: fixed-step neural-SDE solve and gradient timings on the configurations
//! of the anchors' `sde_bench.py`: drift `W2 tanh(W1 y + b1) + b2` (mlp_d{D}_h{H}.json),
//! diagonal diffusion `sigmoid(V y + c)` (sde_diffusion_d{D}.json), the first B rows of
//! mlp_y0_d{D}.json, 1000 steps of dt = 2^-10, float32, loss = sum y(T)^2; a fresh seeded
//! Brownian path per call (its cost is part of the time). One JSON line per configuration, in
//! the anchors' field names.

use crate::failure::{CliResult, Failure};
use crate::output::emit;
use clap::Args;
use nodal::solve::sde::{Diffusion, NeuralSde, Scheme, SdeGradMethod, SdeGrid, SeededBrownian, sde_gradient, sde_solve};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `nodal bench-sde`.
#[derive(Args)]
pub struct BenchSdeArgs {
    /// Folder with mlp_d{dim}_h{hidden}.json, mlp_y0_d{dim}.json and sde_diffusion_d{dim}.json.
    #[arg(long, default_value = "../shared/reference")]
    reference: PathBuf,
    /// Dims (hidden 64 for dim 2, 256 for dim 64, as the anchors).
    #[arg(long, value_delimiter = ',', default_values_t = vec![2usize, 64])]
    dims: Vec<usize>,
    /// Batch sizes.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 64, 1024])]
    batches: Vec<usize>,
    /// Methods in the anchors' names: euler (Ito Euler-Maruyama), midpoint, euler_heun.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["euler".to_string(), "midpoint".to_string(), "euler_heun".to_string()])]
    methods: Vec<String>,
    /// Modes: solve, direct (backprop through the steps), adjoint (continuous adjoint).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["solve".to_string(), "direct".to_string(), "adjoint".to_string()])]
    modes: Vec<String>,
    /// Timed repeats per configuration after one warm-up (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    repeats: u64,
}

const N_STEPS: usize = 1000;

fn load(path: &Path) -> Result<Value, Failure> {
    let text = nodal::io::read_text_capped(path, nodal::io::MAX_JSON_BYTES, "a reference file").map_err(Failure::input)?;
    serde_json::from_str(&text).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))
}

fn flat(v: &Value, key: &str, file: &Path) -> Result<Vec<f32>, Failure> {
    fn walk(v: &Value, out: &mut Vec<f32>) -> bool {
        match v {
            Value::Array(a) => a.iter().all(|x| walk(x, out)),
            Value::Number(n) => {
                out.push(n.as_f64().unwrap_or(f64::NAN) as f32);
                true
            }
            _ => false,
        }
    }
    let mut out = Vec::new();
    match v.get(key) {
        Some(f) if walk(f, &mut out) => Ok(out),
        _ => Err(Failure::Input(format!("{}: field {key} is missing or not numeric", file.display()))),
    }
}

/// Run the benchmark; exit codes: 0 done, 1 a solve failed, 2 unusable options or files.
pub fn run(a: BenchSdeArgs, memory_limit: u64) -> CliResult {
    for m in &a.methods {
        if !["euler", "midpoint", "euler_heun"].contains(&m.as_str()) {
            return Err(Failure::Input(format!("--methods: unknown method {m:?} (euler, midpoint, euler_heun)")));
        }
    }
    for m in &a.modes {
        if !["solve", "direct", "adjoint"].contains(&m.as_str()) {
            return Err(Failure::Input(format!("--modes: unknown mode {m:?} (solve, direct, adjoint)")));
        }
    }
    let grid = SdeGrid { t0: 0.0, dt: 2f64.powi(-10), steps: N_STEPS };
    let mut seed = 0u64;
    for &dim in &a.dims {
        let hidden = match dim {
            2 => 64,
            64 => 256,
            _ => {
                return Err(Failure::Input(format!(
                    "--dims: the anchors' configurations are dim 2 (hidden 64) and dim 64 (hidden 256), not {dim}"
                )));
            }
        };
        let wf = a.reference.join(format!("mlp_d{dim}_h{hidden}.json"));
        let w = load(&wf)?;
        let drift: Vec<f32> = ["W1", "b1", "W2", "b2"].iter().map(|k| flat(&w, k, &wf)).collect::<Result<Vec<_>, _>>()?.concat();
        let df = a.reference.join(format!("sde_diffusion_d{dim}.json"));
        let dv = load(&df)?;
        let diff: Vec<f32> = [flat(&dv, "V", &df)?, flat(&dv, "c", &df)?].concat();
        let yf = a.reference.join(format!("mlp_y0_d{dim}.json"));
        let y0_all = flat(&load(&yf)?, "y0", &yf)?;
        for &batch in &a.batches {
            if batch == 0 || batch * dim > y0_all.len() {
                return Err(Failure::Input(format!("--batches {batch}: {} holds {} initial states", yf.display(), y0_all.len() / dim)));
            }
            let y0 = &y0_all[..batch * dim];
            for method in &a.methods {
                let scheme = Scheme::by_name(if method == "euler" { "euler_maruyama" } else { method }).expect("checked above");
                let mut terms =
                    NeuralSde::new(dim, hidden, drift.clone(), Diffusion::DiagonalSigmoid, diff.clone()).map_err(Failure::input)?;
                for mode in &a.modes {
                    let mut call = || -> Result<(), Failure> {
                        seed += 1;
                        let mut path = SeededBrownian::new(seed, 0.0, grid.t1(), batch, dim, grid.dt).map_err(Failure::input)?;
                        let r = if mode == "solve" {
                            sde_solve(&mut terms, &mut path, scheme, &grid, y0, &[N_STEPS]).map(|_| ())
                        } else {
                            let m = if mode == "direct" { SdeGradMethod::Backprop } else { SdeGradMethod::ContinuousAdjoint };
                            let mut cot = |ys: &[Vec<f32>]| ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
                            sde_gradient(&mut terms, &mut path, scheme, &grid, y0, &[N_STEPS], m, memory_limit as usize, &mut cot)
                                .map(|_| ())
                        };
                        r.map_err(|e| Failure::Compute(format!("{method} {mode} dim {dim} batch {batch}: {e}")))
                    };
                    call()?;
                    let mut times = Vec::new();
                    for _ in 0..a.repeats {
                        let s = Instant::now();
                        call()?;
                        times.push(s.elapsed().as_secs_f64() * 1e3);
                    }
                    let mut sorted = times.clone();
                    sorted.sort_by(f64::total_cmp);
                    let line = json!({
                        "kind": "result", "backend": "nodal", "method": method, "mode": mode,
                        "brownian": "SeededBrownian (cells of dt)", "dim": dim, "hidden": hidden, "batch": batch,
                        "n_steps": N_STEPS, "dtype": "f32", "median_ms": sorted[sorted.len() / 2], "min_ms": sorted[0],
                        "reps": times.len(), "all_ms": times,
                        "grad": match mode.as_str() { "direct" => "backprop", "adjoint" => "continuous adjoint", _ => "-" },
                        "threads": rayon::current_num_threads(),
                    });
                    emit(&line.to_string())?;
                }
            }
        }
    }
    Ok(())
}
