//! The forward solve of `nodal bench` (dopri5, t in [0, 10], rtol 1e-6, atol 1e-8, the anchors'
//! seeded MLP and initial states) without the command-line crate, so that a change to the
//! solver or the fused MLP can be timed after building this crate alone:
//!
//! ```text
//! cargo run --release -p nodal-solve --example solve_timing -- ../shared/reference [REPEATS] [CONFIG...]
//! ```
//!
//! A CONFIG is `f32:2:64:1024` (dtype, dim, hidden, batch); without any, the 24 configurations
//! of `bench/solve_side_by_side.sh full`. Prints one line per configuration: median ms and NFE.

use nodal_solve::mlp::Mlp;
use nodal_solve::{RmsNorm, Scalar, SolveOptions, method_by_name, solve};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

fn flat(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
        Value::Number(n) => out.push(n.as_f64().expect("a number")),
        _ => panic!("not numeric"),
    }
}

fn field(path: &Path, key: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("JSON");
    let mut out = Vec::new();
    flat(&v[key], &mut out);
    out
}

fn time<T: Scalar>(params: &[f64], y0: &[f64], dim: usize, hidden: usize, repeats: usize) -> (f64, usize) {
    let p: Vec<T> = params.iter().map(|&x| T::from_f64(x)).collect();
    let y: Vec<T> = y0.iter().map(|&x| T::from_f64(x)).collect();
    let mut mlp = Mlp::<T>::new(dim, hidden, p).expect("weights fit");
    let opts = SolveOptions::new(method_by_name("dopri5").expect("dopri5")).with_tol(1e-6, 1e-8);
    let mut times = Vec::new();
    let mut nfe = 0;
    for _ in 0..repeats {
        let s = Instant::now();
        let sol = solve(&mut mlp, &y, &[0.0, 10.0], &opts, &RmsNorm).expect("solve");
        times.push(s.elapsed().as_secs_f64() * 1e3);
        nfe = sol.stats.nfe;
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], nfe)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reference = Path::new(args.first().map(String::as_str).unwrap_or("../shared/reference")).to_path_buf();
    let repeats: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut configs: Vec<(String, usize, usize, usize)> = args
        .iter()
        .skip(2)
        .map(|c| {
            let f: Vec<&str> = c.split(':').collect();
            (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect();
    if configs.is_empty() {
        for dt in ["f32", "f64"] {
            for dim in [2, 64] {
                for hidden in [64, 256] {
                    for batch in [1, 64, 1024] {
                        configs.push((dt.to_string(), dim, hidden, batch));
                    }
                }
            }
        }
    }
    for (dt, dim, hidden, batch) in configs {
        let y0 = field(&reference.join(format!("mlp_y0_d{dim}.json")), "y0");
        let w = reference.join(format!("mlp_d{dim}_h{hidden}.json"));
        let params: Vec<f64> = ["W1", "b1", "W2", "b2"].iter().flat_map(|k| field(&w, k)).collect();
        let y0 = &y0[..batch * dim];
        let (ms, nfe) =
            if dt == "f32" { time::<f32>(&params, y0, dim, hidden, repeats) } else { time::<f64>(&params, y0, dim, hidden, repeats) };
        println!("{dt} d{dim} h{hidden} b{batch}: {ms:.3} ms, nfe {nfe}");
    }
}
