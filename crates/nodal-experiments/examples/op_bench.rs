//! Per-op timings of the layers the MNIST models are made of, on burn's flex backend: each
//! convolution and group norm of the stem, the residual block and the ODE block at batch 128,
//! forward alone (plain device) and forward + backward (autodiff device, gradients to the input
//! and the weights). `bench/op_side_by_side.sh` runs it beside `bench/op_bench_torch.py` (the
//! same shapes in PyTorch) and prints the ratios.
//!
//! `cargo run --release -p nodal-experiments --example op_bench -- [--batch B] [--repeats R]`
//! prints one JSON object per (op, mode): `{"op", "mode", "ms", "gflops", "shape"}` with the
//! median over `R` timed calls after 3 warm-up calls.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::{DType, Device, Distribution, Tensor};
use std::time::Instant;

/// One layer under test.
enum Layer {
    Conv(Conv2d),
    Norm(GroupNorm),
}

impl Layer {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Layer::Conv(c) => c.forward(x),
            Layer::Norm(n) => n.forward(x),
        }
    }
    fn weight(&self) -> Tensor<4> {
        match self {
            Layer::Conv(c) => weight_of(&c.weight),
            Layer::Norm(_) => Tensor::<4>::zeros([1, 1, 1, 1], (&Device::flex(), DType::F32)),
        }
    }
}

fn weight_of(p: &Param<Tensor<4>>) -> Tensor<4> {
    p.val()
}

/// An op: name, input shape, layer builder, multiply-adds per example (0 for norms).
struct Op {
    name: &'static str,
    input: [usize; 4],
    build: fn(&Device) -> Layer,
    macs_per_example: usize,
}

fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, bias: bool, d: &Device) -> Layer {
    Layer::Conv(
        Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(bias)
            .init(d),
    )
}

fn ops() -> Vec<Op> {
    vec![
        Op {
            name: "conv_stem_1to64_k3_28",
            input: [0, 1, 28, 28],
            build: |d| conv(1, 64, 3, 1, 0, true, d),
            macs_per_example: 26 * 26 * 64 * 9,
        },
        Op {
            name: "conv_down_64_k4s2_26",
            input: [0, 64, 26, 26],
            build: |d| conv(64, 64, 4, 2, 1, true, d),
            macs_per_example: 13 * 13 * 64 * 64 * 16,
        },
        Op {
            name: "conv_down_64_k4s2_13",
            input: [0, 64, 13, 13],
            build: |d| conv(64, 64, 4, 2, 1, true, d),
            macs_per_example: 6 * 6 * 64 * 64 * 16,
        },
        Op {
            name: "conv_block_64_k3_6",
            input: [0, 64, 6, 6],
            build: |d| conv(64, 64, 3, 1, 1, false, d),
            macs_per_example: 6 * 6 * 64 * 64 * 9,
        },
        Op {
            name: "conv_ode_65to64_k3_6",
            input: [0, 65, 6, 6],
            build: |d| conv(65, 64, 3, 1, 1, true, d),
            macs_per_example: 6 * 6 * 65 * 64 * 9,
        },
        Op {
            name: "group_norm_64_26",
            input: [0, 64, 26, 26],
            build: |d| Layer::Norm(GroupNormConfig::new(32, 64).init(d)),
            macs_per_example: 0,
        },
        Op {
            name: "group_norm_64_6",
            input: [0, 64, 6, 6],
            build: |d| Layer::Norm(GroupNormConfig::new(32, 64).init(d)),
            macs_per_example: 0,
        },
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of `f` over `repeats` calls after 3 warm-up calls.
fn time(repeats: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    median(
        (0..repeats)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: usize| {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let batch = value("--batch", 128);
    let repeats = value("--repeats", 30);
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    // Run inside the rayon pool as the CLI does (fork-join from a warm worker).
    rayon::scope(|_| {
        for op in ops().into_iter().filter(|o| only.as_deref().is_none_or(|n| o.name.contains(n))) {
            let shape = [batch, op.input[1], op.input[2], op.input[3]];
            let flops_fwd = 2.0 * (op.macs_per_example * batch) as f64;
            let plain = Device::flex();
            plain.seed(1);
            let layer = (op.build)(&plain);
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), (&plain, DType::F32));
            let ms = time(repeats, || {
                let y = layer.forward(x.clone());
                std::hint::black_box(y.into_data());
            });
            report(op.name, "fwd", ms, flops_fwd, shape);

            let ad = Device::flex().autodiff();
            ad.seed(1);
            let layer = (op.build)(&ad);
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), (&ad, DType::F32)).require_grad();
            let out_shape = layer.forward(x.clone()).dims();
            let g = Tensor::<4>::random(out_shape, Distribution::Normal(0.0, 1.0), (&ad, DType::F32));
            let ms = time(repeats, || {
                let y = layer.forward(x.clone());
                let grads = (y * g.clone()).sum().backward();
                let gx = x.grad(&grads).expect("input gradient");
                std::hint::black_box(gx.into_data());
                if let Some(gw) = layer.weight().grad(&grads) {
                    std::hint::black_box(gw.into_data());
                }
            });
            // Forward, input gradient and weight gradient: three products of the forward's size.
            report(op.name, "fwd_bwd", ms, 3.0 * flops_fwd, shape);
        }
    });
}

fn report(op: &str, mode: &str, ms: f64, flops: f64, shape: [usize; 4]) {
    let gflops = if flops > 0.0 { flops / ms / 1e6 } else { 0.0 };
    println!("{}", serde_json::json!({"side": "nodal", "op": op, "mode": mode, "ms": ms, "gflops": gflops, "shape": shape}));
}
