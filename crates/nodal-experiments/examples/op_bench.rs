//! Per-op timings of the layers the MNIST models are made of, on burn's flex backend: each
//! convolution and group norm of the stem, the residual block and the ODE block at batch 128,
//! forward alone (plain device) and forward + backward (autodiff device, gradients to the input
//! and the weights); each through burn's module (side `nodal`) and through nodal's kernel (side
//! `fused`: `nodal::kernels::conv2d::conv2d_always`, the kernel even where `conv2d` leaves small
//! maps to flex, and `nodal::kernels::group_norm`). `bench/op_side_by_side.sh` runs it beside `bench/op_bench_torch.py` (the
//! same shapes in PyTorch) and prints the ratios.
//!
//! `cargo run --release -p nodal-experiments --example op_bench -- [--batch B] [--repeats R]`
//! prints one JSON object per (op, mode): `{"op", "mode", "ms", "gflops", "shape"}` with the
//! median over `R` timed calls after 3 warm-up calls.

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
    /// burn's own forward (the generic path).
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Layer::Conv(c) => c.forward(x),
            Layer::Norm(n) => n.forward(x),
        }
    }

    /// nodal's kernel for the layer (`nodal::kernels`).
    fn fused(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        match self {
            Layer::Conv(c) => Some(nodal::kernels::conv2d::conv2d_always(c, x)),
            Layer::Norm(n) => Some(nodal::kernels::group_norm(n, x)),
        }
    }
    /// The convolution's kernel (norms: none timed).
    fn weight(&self) -> Option<Tensor<4>> {
        match self {
            Layer::Conv(c) => Some(c.weight.val()),
            Layer::Norm(_) => None,
        }
    }
}

/// An op: name, input shape, layer builder, multiply-adds per example (0 for norms).
struct Op {
    name: &'static str,
    input: [usize; 4],
    build: fn(&Device) -> Layer,
    macs_per_example: usize,
    /// A convolution's kernel size, stride and padding (for the im2col prototype).
    geometry: Option<[usize; 3]>,
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
            geometry: Some([3, 1, 0]),
            macs_per_example: 26 * 26 * 64 * 9,
        },
        Op {
            name: "conv_down_64_k4s2_26",
            input: [0, 64, 26, 26],
            build: |d| conv(64, 64, 4, 2, 1, true, d),
            geometry: Some([4, 2, 1]),
            macs_per_example: 13 * 13 * 64 * 64 * 16,
        },
        Op {
            name: "conv_down_64_k4s2_13",
            input: [0, 64, 13, 13],
            build: |d| conv(64, 64, 4, 2, 1, true, d),
            geometry: Some([4, 2, 1]),
            macs_per_example: 6 * 6 * 64 * 64 * 16,
        },
        Op {
            name: "conv_block_64_k3_6",
            input: [0, 64, 6, 6],
            build: |d| conv(64, 64, 3, 1, 1, false, d),
            geometry: Some([3, 1, 1]),
            macs_per_example: 6 * 6 * 64 * 64 * 9,
        },
        Op {
            name: "conv_ode_65to64_k3_6",
            input: [0, 65, 6, 6],
            build: |d| conv(65, 64, 3, 1, 1, true, d),
            geometry: Some([3, 1, 1]),
            macs_per_example: 6 * 6 * 65 * 64 * 9,
        },
        Op {
            name: "group_norm_64_26",
            input: [0, 64, 26, 26],
            build: |d| Layer::Norm(GroupNormConfig::new(32, 64).init(d)),
            geometry: None,
            macs_per_example: 0,
        },
        Op {
            name: "group_norm_64_6",
            input: [0, 64, 6, 6],
            build: |d| Layer::Norm(GroupNormConfig::new(32, 64).init(d)),
            geometry: None,
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
            let has_fused = layer.fused(x.clone()).is_some();
            let sides: &[&str] = if has_fused { &["nodal", "fused"] } else { &["nodal"] };
            let run = |side: &str, layer: &Layer, x: Tensor<4>| {
                if side == "fused" { layer.fused(x).expect("a fused kernel") } else { layer.forward(x) }
            };
            for &side in sides {
                let ms = time(repeats, || {
                    let y = run(side, &layer, x.clone());
                    std::hint::black_box(y.into_data());
                });
                report(side, op.name, "fwd", ms, flops_fwd, shape);
            }
            if let (Some(geometry), Layer::Conv(c)) = (op.geometry, &layer) {
                prototype(op.name, c, &x, geometry, repeats, flops_fwd, shape);
            }

            let ad = Device::flex().autodiff();
            ad.seed(1);
            let layer = (op.build)(&ad);
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), (&ad, DType::F32)).require_grad();
            let out_shape = layer.forward(x.clone()).dims();
            let g = Tensor::<4>::random(out_shape, Distribution::Normal(0.0, 1.0), (&ad, DType::F32));
            for &side in sides {
                let ms = time(repeats, || {
                    let y = run(side, &layer, x.clone());
                    let grads = (y * g.clone()).sum().backward();
                    let gx = x.grad(&grads).expect("input gradient");
                    std::hint::black_box(gx.into_data());
                    if let Some(gw) = layer.weight().and_then(|w| w.grad(&grads)) {
                        std::hint::black_box(gw.into_data());
                    }
                });
                // Forward, input gradient and weight gradient: three products of the forward's size.
                report(side, op.name, "fwd_bwd", ms, 3.0 * flops_fwd, shape);
            }
        }
    });
}

/// The forward of `conv` as one batched im2col and one product on nodal's unpacked AVX-512
/// kernel (`nodal_solve::thin_gemm::nn`, rows split over the pool), tensor in and tensor out:
/// how fast a convolution written for these shapes can be, before writing its backward. Reported
/// as side `im2col-prototype` with its largest difference from flex's output.
fn prototype(name: &str, conv: &Conv2d, x: &Tensor<4>, [k, stride, pad]: [usize; 3], repeats: usize, flops: f64, shape: [usize; 4]) {
    use rayon::prelude::*;
    let [b, cin, h, w] = shape;
    let weight = conv.weight.val();
    let cout = weight.dims()[0];
    if cout % 16 != 0 {
        return;
    }
    let (ho, wo) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1);
    let kk = cin * k * k;
    // Wᵀ as [cin·k·k, cout], rows in (channel, kernel row, kernel column) order.
    let wv: Vec<f32> = weight.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 weights");
    let mut wt = vec![0f32; kk * cout];
    for o in 0..cout {
        for r in 0..kk {
            wt[r * cout + o] = wv[o * kk + r];
        }
    }
    let bias: Vec<f32> =
        conv.bias.as_ref().map_or(vec![0.0; cout], |p| p.val().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 bias"));
    let device = x.device();
    let run = || -> Tensor<4> {
        let xv: Vec<f32> = x.clone().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 input");
        let rows = b * ho * wo;
        let mut c = vec![0f32; rows * cout];
        const CHUNK: usize = 96;
        c.par_chunks_mut(CHUNK * cout).enumerate().for_each(|(ci, cc)| {
            let r0 = ci * CHUNK;
            let n = cc.len() / cout;
            let mut a = vec![0f32; n * kk];
            for (ri, arow) in a.chunks_mut(kk).enumerate() {
                let r = r0 + ri;
                let (bi, p) = (r / (ho * wo), r % (ho * wo));
                let (oy, ox) = (p / wo, p % wo);
                for ch in 0..cin {
                    let plane = &xv[(bi * cin + ch) * h * w..(bi * cin + ch + 1) * h * w];
                    for i in 0..k {
                        let iy = (oy * stride + i) as isize - pad as isize;
                        for j in 0..k {
                            let ix = (ox * stride + j) as isize - pad as isize;
                            let inside = iy >= 0 && (iy as usize) < h && ix >= 0 && (ix as usize) < w;
                            arow[(ch * k + i) * k + j] = if inside { plane[iy as usize * w + ix as usize] } else { 0.0 };
                        }
                    }
                }
            }
            assert!(nodal_solve::thin_gemm::nn(&a, &wt, cc, n, kk, cout, false), "needs AVX-512F");
        });
        let mut out = vec![0f32; b * cout * ho * wo];
        out.par_chunks_mut(cout * ho * wo).enumerate().for_each(|(bi, ob)| {
            for p in 0..ho * wo {
                let crow = &c[(bi * ho * wo + p) * cout..(bi * ho * wo + p + 1) * cout];
                for o in 0..cout {
                    ob[o * ho * wo + p] = crow[o] + bias[o];
                }
            }
        });
        Tensor::<4>::from_data(burn::tensor::TensorData::new(out, [b, cout, ho, wo]), (&device, DType::F32))
    };
    if !nodal_solve::thin_gemm::nn::<f32>(&[0.0; 16], &[0.0; 16], &mut [0.0; 16], 1, 1, 16, false) {
        return;
    }
    let reference: Vec<f32> = conv.forward(x.clone()).into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
    let mine: Vec<f32> = run().into_data().convert::<f32>().try_into_vec::<f32>().expect("f32");
    let diff = reference.iter().zip(&mine).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let ms = time(repeats, || {
        std::hint::black_box(run().into_data());
    });
    let gflops = flops / ms / 1e6;
    println!(
        "{}",
        serde_json::json!({"side": "im2col-prototype", "op": name, "mode": "fwd", "ms": ms, "gflops": gflops, "shape": shape, "max_abs_diff_from_flex": diff})
    );
}

/// One JSON line; `side` is `nodal` for burn's generic path and `fused` for nodal's kernel.
fn report(side: &str, op: &str, mode: &str, ms: f64, flops: f64, shape: [usize; 4]) {
    let gflops = if flops > 0.0 { flops / ms / 1e6 } else { 0.0 };
    println!("{}", serde_json::json!({"side": side, "op": op, "mode": mode, "ms": ms, "gflops": gflops, "shape": shape}));
}
