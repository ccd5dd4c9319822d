//! `nodal memory`: peak memory of one MNIST training step (forward, loss, backward) in
//! isolation, for memory-vs-depth studies (bench/mnist_memory.sh).

use crate::mnist_cmd::ModelArg;
use clap::Args;
use nodal::solve::grad::GradMethod;
use nodal_experiments::mnist::memory::measure_step;
use nodal_experiments::mnist::models::{ModelConfig, ModelKind};
use serde_json::json;
use std::process::ExitCode;

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
    /// The ODE-Net's gradient method: adjoint, backprop, checkpoint or checkpoint:M.
    #[arg(long, value_parser = crate::solve_cmd::parse_grad, default_value = "adjoint")]
    grad: GradMethod,
    /// Unmeasured steps first (allocator and caches warm up).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Seed of the weights and images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Measure and print one JSON object.
pub fn run(a: MemoryArgs) -> ExitCode {
    let kind: ModelKind = a.model.into();
    if a.batch_size == 0 || !(a.rk4_step > 0.0 && a.rk4_step <= 1.0) {
        eprintln!("error: --batch-size must be positive and --rk4-step in (0, 1]");
        return ExitCode::from(2);
    }
    let config = ModelConfig::new(kind).with_tol(a.rtol, a.atol).with_grad(a.grad).with_step(a.rk4_step).with_blocks(a.blocks);
    match measure_step(&config, a.batch_size, a.seed, a.warmup) {
        Ok(m) => {
            let o = json!({
                "model": kind.name(),
                "blocks": if kind == ModelKind::ResNet { Some(a.blocks) } else { None },
                "rk4_step": if kind == ModelKind::RkNet { Some(a.rk4_step) } else { None },
                "rtol": if kind == ModelKind::OdeNet { Some(a.rtol) } else { None },
                "grad": match kind { ModelKind::ResNet => "burn autodiff".to_string(), ModelKind::RkNet => "backprop".to_string(), ModelKind::OdeNet => format!("{:?}", a.grad).to_lowercase() },
                "batch_size": a.batch_size,
                "rss_before_mib": m.before_mib,
                "peak_mib": m.peak_mib,
                "step_mib": m.peak_mib - m.before_mib,
                "nfe_forward": m.nfe_forward,
                "nfe_backward": m.nfe_backward,
                "seconds": m.seconds,
            });
            println!("{o}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
