//! `nodal bench solve`: forward-solve throughput on the configurations of the anchors'
//! `solve_bench.py` (dims 2 and 64, hidden 64 and 256, batch 1, 64, 1024, f32 and f64,
//! t in [0, 10], dopri5, rtol 1e-6, atol 1e-8 unless changed), printing one JSON line per configuration with the
//! median over repeats.

use crate::failure::{CliResult, Failure};
use crate::output::emit;
use clap::Args;
use nodal::solve::mlp::Mlp;
use nodal::solve::{RmsNorm, Scalar, SolveOptions, method_by_name, solve};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `nodal bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Folder with mlp_d{dim}_h{hidden}.json and mlp_y0_d{dim}.json.
    #[arg(long, default_value = "../shared/reference")]
    reference: PathBuf,
    /// Repeats per configuration (the median is reported), 1 to 100000.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    repeats: u64,
    /// Only these dims (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = vec![2usize, 64])]
    dims: Vec<usize>,
    /// Only these hidden widths.
    #[arg(long, value_delimiter = ',', default_values_t = vec![64usize, 256])]
    hidden: Vec<usize>,
    /// Only these batch sizes.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 64, 1024])]
    batch: Vec<usize>,
    /// Only these dtypes (float32, float64).
    #[arg(long, value_delimiter = ',', value_parser = ["float32", "float64"], default_values_t = vec!["float32".to_string(), "float64".to_string()])]
    dtype: Vec<String>,
    /// Solver (any adaptive method: dopri5, tsit5, bosh3, dopri8, heun).
    #[arg(long, default_value = "dopri5")]
    method: String,
    /// Relative tolerance.
    #[arg(long, default_value_t = 1e-6)]
    rtol: f64,
    /// Absolute tolerance.
    #[arg(long, default_value_t = 1e-8)]
    atol: f64,
}

fn load(path: &Path) -> Result<Value, String> {
    let text = nodal::io::read_text_capped(path, nodal::io::MAX_JSON_BYTES, "a reference file").map_err(|e| format!("cannot read {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn flat(v: &Value, key: &str) -> Result<Vec<f64>, String> {
    fn walk(v: &Value, out: &mut Vec<f64>) -> bool {
        match v {
            Value::Array(a) => a.iter().all(|x| walk(x, out)),
            Value::Number(n) => {
                out.push(n.as_f64().unwrap_or(f64::NAN));
                true
            }
            _ => false,
        }
    }
    let mut out = Vec::new();
    let field = v.get(key).ok_or_else(|| format!("missing field {key}"))?;
    if walk(field, &mut out) { Ok(out) } else { Err(format!("field {key} is not numeric")) }
}

fn bench_one<T: Scalar>(
    params: &[f64],
    y0: &[f64],
    dim: usize,
    hidden: usize,
    repeats: usize,
    opts: &SolveOptions,
) -> Result<(f64, usize), Failure> {
    let p: Vec<T> = params.iter().map(|&x| T::from_f64(x)).collect();
    let y: Vec<T> = y0.iter().map(|&x| T::from_f64(x)).collect();
    let mut mlp = Mlp::<T>::new(dim, hidden, p)
        .ok_or_else(|| Failure::Input(format!("the weights of mlp_d{dim}_h{hidden}.json do not fit a {dim}-{hidden}-{dim} MLP")))?;
    let mut times = Vec::with_capacity(repeats);
    let mut nfe = 0;
    for _ in 0..repeats.max(1) {
        let s = Instant::now();
        let sol = solve(&mut mlp, &y, &[0.0, 10.0], opts, &RmsNorm)
            .map_err(|e| Failure::Compute(format!("dim {dim}, hidden {hidden}, batch {}: solve failed: {e}", y0.len() / dim)))?;
        times.push(s.elapsed().as_secs_f64());
        nfe = sol.stats.nfe;
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], nfe))
}

/// Run the benchmark; one JSON line per configuration on stdout. Exit codes: 0 done, 1 a solve
/// failed, 2 unusable options or reference files.
pub fn run(a: BenchArgs, memory_limit: u64) -> CliResult {
    let method = method_by_name(&a.method).ok_or_else(|| Failure::Input(format!("unknown method {:?}", a.method)))?;
    if method.error_order.is_none() {
        return Err(Failure::Input(format!(
            "{:?} has no error estimator; the benchmark needs an adaptive method (dopri5, tsit5, bosh3, dopri8, heun)",
            a.method
        )));
    }
    crate::validate::tolerances(a.rtol, a.atol, a.dtype.iter().any(|d| d == "float32"))?;
    if a.dims.is_empty() || a.hidden.is_empty() || a.batch.is_empty() || a.dtype.is_empty() {
        return Err(Failure::Input("--dims, --hidden, --batch and --dtype need at least one value each".into()));
    }
    if let Some(&b) = a.batch.iter().find(|&&b| b == 0) {
        return Err(Failure::Input(format!("--batch {b}: batches must hold at least one row")));
    }
    let opts = SolveOptions::new(method).with_tol(a.rtol, a.atol).with_max_memory(memory_limit as usize);
    for &dim in &a.dims {
        let y0s = load(&a.reference.join(format!("mlp_y0_d{dim}.json"))).and_then(|v| flat(&v, "y0")).map_err(Failure::Input)?;
        let max_batch = y0s.len() / dim.max(1);
        if let Some(&b) = a.batch.iter().find(|&&b| b > max_batch) {
            return Err(Failure::Input(format!("--batch {b}: mlp_y0_d{dim}.json holds {max_batch} initial states")));
        }
        for &hidden in &a.hidden {
            let w = load(&a.reference.join(format!("mlp_d{dim}_h{hidden}.json"))).map_err(Failure::Input)?;
            let params = ["W1", "b1", "W2", "b2"]
                .iter()
                .map(|k| flat(&w, k))
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.concat())
                .map_err(|e| Failure::Input(format!("mlp_d{dim}_h{hidden}.json: {e}")))?;
            for &batch in &a.batch {
                let y0 = &y0s[..batch * dim];
                for dt in &a.dtype {
                    let (sec, nfe) = if dt == "float32" {
                        bench_one::<f32>(&params, y0, dim, hidden, a.repeats as usize, &opts)?
                    } else {
                        bench_one::<f64>(&params, y0, dim, hidden, a.repeats as usize, &opts)?
                    };
                    let line = json!({"tool": "nodal", "method": a.method, "rtol": a.rtol, "atol": a.atol, "dtype": dt, "dim": dim, "hidden": hidden, "batch": batch, "median_ms": sec * 1e3, "nfe": nfe});
                    emit(&line.to_string())?;
                }
            }
        }
    }
    Ok(())
}
