//! `nodal memory`: peak memory of one MNIST training step (forward, loss, backward) in
//! isolation, for memory-vs-depth studies (bench/mnist_memory.sh).

use crate::failure::{CliResult, Failure};
use crate::mnist_cmd::ModelArg;
use clap::Args;
use nodal::solve::grad::GradMethod;
use nodal_experiments::mnist::memory::measure_step;
use nodal_experiments::mnist::models::{ModelConfig, ModelKind};
use serde_json::json;

/// Arguments of `nodal memory`.
#[derive(Args)]
pub struct MemoryArgs {
    /// The model.
    #[arg(long, value_enum)]
    model: ModelArg,
    /// Images per step (random pixels, seeded).
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Residual blocks (ResNet).
    #[arg(long, default_value_t = 6)]
    blocks: usize,
    /// RK4 step on [0, 1] (RK-Net).
    #[arg(long, default_value_t = 0.25)]
    rk4_step: f64,
    /// dopri5's relative tolerance (ODE-Net).
    #[arg(long, default_value_t = 1e-3)]
    rtol: f64,
    /// dopri5's absolute tolerance (ODE-Net).
    #[arg(long, default_value_t = 1e-3)]
    atol: f64,
    /// The ODE-Net's gradient method: adjoint, adjoint-checkpointed[:M], backprop, checkpoint or checkpoint:M.
    #[arg(long, value_parser = crate::solve_cmd::parse_grad, default_value = "adjoint")]
    grad: GradMethod,
    #[command(flatten)]
    deq: crate::mnist_cmd::DeqArgs,
    /// Unmeasured steps first (allocator and caches warm up).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Seed of the weights and images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Measure and print one JSON object. The request is refused up front when its activations
/// (estimated at 64 KiB per image per residual block or solver step, measured: about 9 MiB per
/// block at batch 128) exceed the memory limit.
pub fn run(a: MemoryArgs, memory_limit: u64) -> CliResult {
    let kind: ModelKind = a.model.into();
    crate::validate::count("batch-size", a.batch_size, 1, 60_000)?;
    crate::validate::count("blocks", a.blocks, 1, 1000)?;
    crate::validate::count("warmup", a.warmup, 0, 1000)?;
    crate::validate::tolerances(a.rtol, a.atol, true)?;
    crate::validate::rk4_step(a.rk4_step)?;
    let depth = match kind {
        ModelKind::ResNet => a.blocks as u64,
        ModelKind::RkNet => (1.0 / a.rk4_step).ceil() as u64 * 4,
        ModelKind::OdeNet => 8,
        ModelKind::Deq => 2,
        ModelKind::Tied => a.deq.depth as u64,
    };
    let deq = a.deq.settings()?;
    let est = (a.batch_size as u64).saturating_mul(depth + 4).saturating_mul(64 << 10);
    crate::budget::check(&format!("one training step of batch {} and depth {depth}", a.batch_size), est, memory_limit)?;
    let config = ModelConfig::new(kind)
        .with_tol(a.rtol, a.atol)
        .with_grad(a.grad)
        .with_step(a.rk4_step)
        .with_blocks(a.blocks)
        .with_deq(deq)
        .with_depth(a.deq.depth);
    match measure_step(&config, a.batch_size, a.seed, a.warmup) {
        Ok(m) => {
            let o = json!({
                "model": kind.name(),
                "blocks": if kind == ModelKind::ResNet { Some(a.blocks) } else { None },
                "rk4_step": if kind == ModelKind::RkNet { Some(a.rk4_step) } else { None },
                "rtol": if kind == ModelKind::OdeNet { Some(a.rtol) } else { None },
                "grad": crate::mnist_cmd::grad_name(kind, a.grad),
                "deq": a.deq.describe(kind),
                "batch_size": a.batch_size,
                "rss_before_mib": m.before_mib,
                "peak_mib": m.peak_mib,
                "step_mib": m.peak_mib - m.before_mib,
                "nfe_forward": m.nfe_forward,
                "nfe_backward": m.nfe_backward,
                "seconds": m.seconds,
            });
            crate::output::emit_json(&o, false)
        }
        Err(e) => Err(Failure::compute(e)),
    }
}
