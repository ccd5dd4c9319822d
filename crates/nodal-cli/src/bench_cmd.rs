//! `nodal bench solve`: forward-solve throughput on the configurations of the anchors'
//! `solve_bench.py` (dims 2 and 64, hidden 64 and 256, batch 1, 64, 1024, f32 and f64,
//! t in [0, 10], dopri5, rtol 1e-6, atol 1e-8 unless changed), printing one JSON line per configuration with the
//! median over repeats.

use clap::Args;
use nodal::solve::mlp::Mlp;
use nodal::solve::{RmsNorm, Scalar, SolveOptions, method_by_name, solve};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Arguments of `nodal bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Folder with mlp_d{dim}_h{hidden}.json and mlp_y0_d{dim}.json.
    #[arg(long, default_value = "../shared/reference")]
    reference: PathBuf,
    /// Repeats per configuration (the median is reported).
    #[arg(long, default_value_t = 20)]
    repeats: usize,
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
    #[arg(long, value_delimiter = ',', default_values_t = vec!["float32".to_string(), "float64".to_string()])]
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
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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

fn bench_one<T: Scalar>(params: &[f64], y0: &[f64], dim: usize, hidden: usize, repeats: usize, opts: &SolveOptions) -> (f64, usize) {
    let p: Vec<T> = params.iter().map(|&x| T::from_f64(x)).collect();
    let y: Vec<T> = y0.iter().map(|&x| T::from_f64(x)).collect();
    let mut mlp = Mlp::<T>::new(dim, hidden, p).expect("sizes");
    let mut times = Vec::with_capacity(repeats);
    let mut nfe = 0;
    for _ in 0..repeats.max(1) {
        let s = Instant::now();
        let sol = solve(&mut mlp, &y, &[0.0, 10.0], opts, &RmsNorm).expect("benchmark solve");
        times.push(s.elapsed().as_secs_f64());
        nfe = sol.stats.nfe;
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[times.len() / 2], nfe)
}

/// Run the benchmark; one JSON line per configuration on stdout.
pub fn run(a: BenchArgs) -> ExitCode {
    let Some(method) = method_by_name(&a.method) else {
        eprintln!("error: unknown method {:?}", a.method);
        return ExitCode::from(2);
    };
    let opts = SolveOptions::new(method).with_tol(a.rtol, a.atol);
    for &dim in &a.dims {
        let y0s = match load(&a.reference.join(format!("mlp_y0_d{dim}.json"))).and_then(|v| flat(&v, "y0")) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        for &hidden in &a.hidden {
            let w = match load(&a.reference.join(format!("mlp_d{dim}_h{hidden}.json"))) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let params: Result<Vec<f64>, String> =
                ["W1", "b1", "W2", "b2"].iter().map(|k| flat(&w, k)).collect::<Result<Vec<_>, _>>().map(|v| v.concat());
            let params = match params {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            for &batch in &a.batch {
                let y0 = &y0s[..batch * dim];
                for dt in &a.dtype {
                    let (sec, nfe) = if dt == "float32" {
                        bench_one::<f32>(&params, y0, dim, hidden, a.repeats, &opts)
                    } else {
                        bench_one::<f64>(&params, y0, dim, hidden, a.repeats, &opts)
                    };
                    let line = json!({"tool": "nodal", "method": a.method, "rtol": a.rtol, "atol": a.atol, "dtype": dt, "dim": dim, "hidden": hidden, "batch": batch, "median_ms": sec * 1e3, "nfe": nfe});
                    println!("{line}");
                }
            }
        }
    }
    ExitCode::SUCCESS
}
