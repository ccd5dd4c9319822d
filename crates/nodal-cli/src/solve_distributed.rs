//! `nodal solve` of a per-sample problem over the ranks of an MPI launch: rows are independent,
//! so each rank solves its contiguous shard of them ([`nodal_distributed::shard_range`]) and rank
//! 0 gathers the results in row order into the one JSON object a single process prints.

use crate::failure::Failure;
use nodal::solve::grad::GradMethod;
use nodal_distributed::{Communicator, shard_range};
use nodal_experiments::problem::{Problem, ProblemRun, run_problem};
use serde_json::{Value, json};

/// Solves this rank's rows; on rank 0 returns the merged run and the first rank's solve error,
/// if any (`None` elsewhere). Every rank takes part in the gather whatever happened to its rows.
pub fn run(
    problem: &Problem,
    grad: Option<GradMethod>,
    memory_limit: usize,
    comm: &dyn Communicator,
) -> Result<Option<(ProblemRun, Option<String>)>, Failure> {
    let rows = shard_range(problem.y0.len(), comm.rank(), comm.size());
    let part = if rows.is_empty() {
        Ok(None)
    } else {
        let mut mine = problem.clone();
        mine.y0 = problem.y0[rows].to_vec();
        run_problem(&mine, grad, false, memory_limit).map(Some).map_err(|e| e.to_string())
    };
    let message = match &part {
        Ok(Some(r)) => json!({ "run": r.json, "failed_rows": r.failed_rows }),
        Ok(None) => json!({ "empty": true }),
        Err(e) => json!({ "invalid": e }),
    };
    let bytes = serde_json::to_vec(&message).map_err(Failure::output)?;
    let gathered = comm.gather_bytes(&bytes).map_err(|e| Failure::Compute(format!("distributed solve: {e}")))?;
    let Some(parts) = gathered else {
        return Ok(None);
    };
    let mut runs = Vec::new();
    for (rank, b) in parts.iter().enumerate() {
        let v: Value = serde_json::from_slice(b).map_err(|e| Failure::Compute(format!("rank {rank} sent an unreadable result: {e}")))?;
        if let Some(e) = v.get("invalid") {
            return Err(Failure::Input(format!("rank {rank}: {}", e.as_str().unwrap_or("invalid problem"))));
        }
        if v.get("run").is_some() {
            runs.push((rank, v));
        }
    }
    Ok(Some(merge(&runs, comm.size())))
}

fn concat(runs: &[(usize, Value)], path: &[&str]) -> Value {
    let mut out = Vec::new();
    for (_, v) in runs {
        let mut x = &v["run"];
        for p in path {
            x = &x[*p];
        }
        if let Some(a) = x.as_array() {
            out.extend(a.iter().cloned());
        }
    }
    Value::Array(out)
}

/// `ys` is `[time][row][dim]`: rows are concatenated at each output time.
fn concat_rows_per_time(runs: &[(usize, Value)]) -> Value {
    let times = runs.first().and_then(|(_, v)| v["run"]["ys"].as_array().map(|a| a.len())).unwrap_or(0);
    Value::Array(
        (0..times)
            .map(|k| Value::Array(runs.iter().flat_map(|(_, v)| v["run"]["ys"][k].as_array().cloned().unwrap_or_default()).collect()))
            .collect(),
    )
}

fn total(runs: &[(usize, Value)], path: &[&str]) -> f64 {
    runs.iter()
        .map(|(_, v)| {
            let mut x = &v["run"];
            for p in path {
                x = &x[*p];
            }
            x.as_f64().unwrap_or(0.0)
        })
        .sum()
}

fn largest(runs: &[(usize, Value)], path: &[&str]) -> Option<f64> {
    runs.iter()
        .filter_map(|(_, v)| {
            let mut x = &v["run"];
            for p in path {
                x = &x[*p];
            }
            x.as_f64()
        })
        .reduce(f64::max)
}

/// Elementwise sum of equally shaped nested arrays of numbers.
fn add(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => Value::Array(x.iter().zip(y).map(|(p, q)| add(p, q)).collect()),
        _ => json!(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
    }
}

/// The single-process JSON from the ranks' parts: per-row fields concatenated in rank order
/// (rank order is row order), counts and the loss summed, parameter gradients summed, times
/// the slowest rank's; `ranks` says how many took part.
fn merge(runs: &[(usize, Value)], size: usize) -> (ProblemRun, Option<String>) {
    let failed_rows: usize = runs.iter().map(|(_, v)| v["failed_rows"].as_u64().unwrap_or(0) as usize).sum();
    let first = runs.first().map(|(_, v)| v["run"].clone()).unwrap_or(json!({}));
    let mut out = json!({
        "ys": concat_rows_per_time(runs),
        "loss": total(runs, &["loss"]),
        "seconds": largest(runs, &["seconds"]).unwrap_or(0.0),
        "batch_mode": "per_sample",
        "row_status": concat(runs, &["row_status"]),
        "stats": {
            "nfe": total(runs, &["stats", "nfe"]),
            "accepted": total(runs, &["stats", "accepted"]),
            "rejected": total(runs, &["stats", "rejected"]),
            "row_nfe": concat(runs, &["stats", "row_nfe"]),
            "row_accepted": concat(runs, &["stats", "row_accepted"]),
            "row_rejected": concat(runs, &["stats", "row_rejected"]),
            "row_evaluations": total(runs, &["stats", "row_evaluations"]),
        },
        "ranks": size,
    });
    let error = runs.iter().find_map(|(rank, v)| v["run"]["error"].as_str().map(|e| format!("rank {rank}: {e}")));
    if first.get("grads").is_some() && error.is_none() {
        let mut g = json!({ "y0": concat(runs, &["grads", "y0"]) });
        for k in ["W1", "b1", "W2", "b2"] {
            let mut acc = first["grads"][k].clone();
            for (_, v) in &runs[1..] {
                acc = add(&acc, &v["run"]["grads"][k]);
            }
            g[k] = acc;
        }
        out["grads"] = g;
        out["backward_stats"] = json!({
            "nfe": total(runs, &["backward_stats", "nfe"]),
            "nvjp": total(runs, &["backward_stats", "nvjp"]),
            "accepted": total(runs, &["backward_stats", "accepted"]),
            "rejected": total(runs, &["backward_stats", "rejected"]),
            "row_nfe": concat(runs, &["backward_stats", "row_nfe"]),
        });
        if let Some(e) = largest(runs, &["backward_stats", "reconstruction_error"]) {
            out["backward_stats"]["reconstruction_error"] = json!(e);
        }
        out["backward_seconds"] = json!(largest(runs, &["backward_seconds"]).unwrap_or(0.0));
        out["grad_method"] = first["grad_method"].clone();
    }
    if let Some(e) = &error {
        out["error"] = json!(e);
    }
    (ProblemRun { json: out, error: None, failed_rows }, error)
}
