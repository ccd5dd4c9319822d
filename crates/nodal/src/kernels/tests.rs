//! The fused kernels against burn's generic modules: outputs and every gradient (input and
//! parameters) on random inputs, for several shapes, group counts, convolution geometries and
//! layouts.

use super::conv2d::conv2d_always as conv2d;
use super::group_norm::group_norm;
use crate::testing::{Cast, values};
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::tensor::{DType, Device, Tensor, TensorData};

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

/// Uniform(−1, 1) values scaled by `scale` and shifted by `offset` (an offset makes the
/// statistics non-trivial: the mean must be removed accurately).
fn random<const D: usize>(shape: [usize; D], seed: u64, scale: f64, offset: f64, dev: &Device) -> Tensor<D> {
    let mut s = seed;
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| (offset + scale * lcg(&mut s)) as f32).collect();
    Tensor::<D>::from_data(TensorData::new(v, shape), (dev, DType::F32))
}

/// A group norm with random `γ` and `β` (or none when `affine` is false).
fn norm(groups: usize, channels: usize, affine: bool, dev: &Device) -> GroupNorm {
    let mut gn = GroupNormConfig::new(groups, channels).with_affine(affine).init(dev);
    if affine {
        gn.gamma = Some(Param::from_tensor(random([channels], 5, 0.5, 1.0, dev)));
        gn.beta = Some(Param::from_tensor(random([channels], 7, 0.5, 0.0, dev)));
    }
    gn
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Forward values agree with `GroupNorm::forward` to 2e-5 absolute: outputs are O(1) after
/// normalisation (γ ≤ 1.5, β ≤ 0.5), and both sides round in f32 (a few ulps of values up to 4,
/// plus the mean of inputs offset by 3 to 5, removed in f32 by burn).
fn check_forward<const D: usize>(shape: [usize; D], groups: usize, affine: bool, offset: f64) {
    let dev = Device::flex();
    let gn = norm(groups, shape[1], affine, &dev);
    let x = random(shape, 11, 2.0, offset, &dev);
    let fused = values(group_norm(&gn, x.clone()));
    let generic = values(gn.forward(x));
    let d = max_abs_diff(&fused, &generic);
    assert!(d <= 2e-5, "{shape:?} groups {groups} affine {affine}: max |fused - generic| = {d:e}");
    assert!(max_abs(&generic) > 0.5, "a non-trivial output");
}

#[test]
fn forward_matches_burns_group_norm() {
    check_forward([4, 6, 5, 3], 2, true, 3.0);
    check_forward([4, 6, 5, 3], 3, true, 0.0);
    check_forward([4, 6, 5, 3], 6, false, -5.0);
    check_forward([4, 6, 5, 3], 1, true, 0.0);
    check_forward([3, 8, 7], 4, true, 1.0);
    check_forward([2, 4, 3, 2, 2], 2, true, 0.0);
    // 40 values per channel: exercises the 16-lane sums and their remainders.
    check_forward([3, 4, 5, 8], 2, true, 4.0);
    check_forward([2, 64, 26, 26], 32, true, 0.0);
}

#[test]
fn strided_input_is_read_in_its_logical_order() {
    let dev = Device::flex();
    let gn = norm(2, 4, true, &dev);
    let x = random([3, 4, 5, 6], 3, 1.0, 0.5, &dev).swap_dims(2, 3);
    let d = max_abs_diff(&values(group_norm(&gn, x.clone())), &values(gn.forward(x)));
    assert!(d <= 2e-5, "max |fused - generic| = {d:e}");
}

/// Gradients of `L = Σ y · w` (random `w`) for `x`, `γ` and `β`, fused against burn's autodiff
/// of the generic module, to 1e-4 of the largest entry of each gradient (both are f32 sums of
/// up to 676 · 128 terms for `γ`, `β`).
fn check_gradients<const D: usize>(shape: [usize; D], groups: usize, offset: f64) {
    let dev = Device::flex().autodiff();
    let grads_of = |fused: bool| {
        let gn = norm(groups, shape[1], true, &dev);
        let x = random(shape, 13, 1.5, offset, &dev).require_grad();
        let w = random(shape, 17, 1.0, 0.0, &dev);
        let y = if fused { group_norm(&gn, x.clone()) } else { gn.forward(x.clone()) };
        let grads = (y * w).sum().backward();
        let gx = values(x.grad(&grads).expect("dL/dx"));
        let gg = values(gn.gamma.as_ref().unwrap().val().grad(&grads).expect("dL/dgamma"));
        let gb = values(gn.beta.as_ref().unwrap().val().grad(&grads).expect("dL/dbeta"));
        (gx, gg, gb)
    };
    let (fx, fg, fb) = grads_of(true);
    let (rx, rg, rb) = grads_of(false);
    for (name, f, r) in [("x", &fx, &rx), ("gamma", &fg, &rg), ("beta", &fb, &rb)] {
        let scale = max_abs(r);
        assert!(scale > 1e-3, "{name}: a non-trivial gradient");
        let d = max_abs_diff(f, r);
        assert!(d <= 1e-4 * scale, "{shape:?} groups {groups}: d{name} differs by {d:e} (scale {scale:e})");
    }
}

#[test]
fn gradients_match_burns_autodiff() {
    check_gradients([4, 6, 5, 3], 2, 2.0);
    check_gradients([4, 6, 5, 3], 6, 0.0);
    check_gradients([3, 8, 7], 1, -1.0);
    check_gradients([3, 4, 5, 8], 2, 0.0);
    check_gradients([4, 64, 13, 13], 32, 0.0);
}

/// The input gradient of a group norm sums to zero over each group (the output is invariant
/// under adding a constant to a group), and is orthogonal to the group's centred input (scale
/// invariance): two identities the closed form must keep, checked in f64 from the f32 result.
#[test]
fn input_gradient_is_shift_and_scale_invariant() {
    let dev = Device::flex().autodiff();
    let (n, c, s, groups) = (3, 6, 20, 3);
    let gn = norm(groups, c, true, &dev);
    let x = random([n, c, s], 19, 1.0, 2.0, &dev).require_grad();
    let w = random([n, c, s], 23, 1.0, 0.0, &dev);
    let grads = (group_norm(&gn, x.clone()) * w).sum().backward();
    let gx = values(x.grad(&grads).expect("dL/dx"));
    let xs = values(x);
    let block = c / groups * s;
    for b in 0..n * groups {
        let (gb, xb) = (&gx[b * block..(b + 1) * block], &xs[b * block..(b + 1) * block]);
        let mean = xb.iter().sum::<f64>() / block as f64;
        let shift: f64 = gb.iter().sum();
        let scale: f64 = gb.iter().zip(xb).map(|(g, x)| g * (x - mean)).sum();
        let size = gb.iter().map(|g| g.abs()).sum::<f64>();
        assert!(size > 1e-2, "a non-trivial gradient");
        assert!(shift.abs() <= 1e-5 * size && scale.abs() <= 1e-5 * size, "block {b}: Σ dx = {shift:e}, Σ dx (x - μ) = {scale:e}");
    }
}

#[test]
fn other_dtypes_fall_back_to_the_module() {
    let dev = Device::flex();
    let gn = norm(2, 4, true, &dev).map(&mut Cast(DType::F64));
    let x = random([2, 4, 3], 29, 1.0, 0.0, &dev).cast(DType::F64);
    let y = group_norm(&gn, x.clone());
    assert_eq!(y.dtype(), DType::F64);
    assert_eq!(values(y), values(gn.forward(x)));
}

/// A convolution with random weights and bias (`bias` false: none).
fn conv(
    cin: usize,
    cout: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: PaddingConfig2d,
    dilation: [usize; 2],
    bias: bool,
    dev: &Device,
) -> Conv2d {
    let mut c =
        Conv2dConfig::new([cin, cout], k).with_stride(stride).with_padding(padding).with_dilation(dilation).with_bias(bias).init(dev);
    c.weight = Param::from_tensor(random([cout, cin, k[0], k[1]], 31, 0.3, 0.0, dev));
    if bias {
        c.bias = Some(Param::from_tensor(random([cout], 37, 0.5, 0.0, dev)));
    }
    c
}

/// The geometries the models use (3x3 padded, 4x4 stride 2, a stem without padding) and a few
/// others: asymmetric padding, stride 3 with a wide kernel, dilation, valid padding, 1x1, and a
/// map large enough for the per-image forward.
fn conv_cases(dev: &Device) -> Vec<(Conv2d, [usize; 4])> {
    use PaddingConfig2d::{Explicit, Valid};
    vec![
        (conv(3, 8, [3, 3], [1, 1], Explicit(1, 1, 1, 1), [1, 1], false, dev), [2, 3, 6, 6]),
        (conv(4, 16, [4, 4], [2, 2], Explicit(1, 1, 1, 1), [1, 1], true, dev), [3, 4, 13, 13]),
        (conv(1, 8, [3, 3], [1, 1], Explicit(0, 0, 0, 0), [1, 1], true, dev), [2, 1, 9, 7]),
        (conv(5, 4, [3, 2], [1, 1], Explicit(2, 0, 1, 1), [1, 1], true, dev), [2, 5, 7, 8]),
        (conv(2, 3, [5, 5], [3, 2], Explicit(2, 1, 2, 1), [1, 1], true, dev), [2, 2, 11, 9]),
        (conv(3, 4, [3, 3], [1, 1], Explicit(2, 2, 2, 2), [2, 2], true, dev), [2, 3, 8, 8]),
        (conv(3, 4, [2, 2], [2, 2], Valid, [1, 1], true, dev), [2, 3, 7, 6]),
        (conv(6, 5, [1, 1], [1, 1], Valid, [1, 1], true, dev), [2, 6, 4, 5]),
        // 165 output pixels per image: the forward's one-product-per-image path.
        (conv(2, 3, [3, 3], [1, 1], Explicit(1, 0, 2, 1), [1, 1], true, dev), [2, 2, 14, 12]),
        // The direct kernel (stride 1, at least 8 input channels): the ODE block's 65 → 64 channels,
        // 70 output channels (a block of 64 and a padded one of 16), a single output channel,
        // and a 5x3 kernel with uneven padding.
        (conv(65, 64, [3, 3], [1, 1], Explicit(1, 1, 1, 1), [1, 1], true, dev), [3, 65, 6, 6]),
        (conv(8, 70, [3, 3], [1, 1], Explicit(1, 1, 1, 1), [1, 1], true, dev), [2, 8, 5, 4]),
        (conv(9, 1, [3, 3], [1, 1], Explicit(1, 1, 1, 1), [1, 1], true, dev), [2, 9, 5, 5]),
        (conv(10, 17, [5, 3], [1, 1], Explicit(4, 0, 1, 2), [1, 1], true, dev), [2, 10, 7, 6]),
        // Strided, through the direct kernel (the input gradient by classes of pixels).
        (conv(8, 16, [4, 4], [2, 2], Explicit(1, 1, 1, 1), [1, 1], true, dev), [3, 8, 13, 13]),
        (conv(9, 5, [5, 5], [3, 2], Explicit(2, 1, 2, 1), [1, 1], true, dev), [2, 9, 11, 9]),
        // A kernel smaller than the stride (input pixels no output reads) and a 3x3 stride 2
        // on an even map.
        (conv(8, 4, [1, 1], [2, 2], Valid, [1, 1], true, dev), [2, 8, 5, 6]),
        (conv(12, 20, [3, 3], [2, 2], Explicit(1, 1, 1, 1), [1, 1], true, dev), [2, 12, 6, 6]),
    ]
}

#[test]
fn conv_forward_matches_burns_conv2d() {
    let dev = Device::flex();
    for (i, (c, shape)) in conv_cases(&dev).into_iter().enumerate() {
        let x = random(shape, 41 + i as u64, 1.0, 0.2, &dev);
        let generic = values(c.forward(x.clone()));
        let fused = values(conv2d(&c, x));
        let d = max_abs_diff(&fused, &generic);
        // Sums of at most 75 products of O(1) terms in f32, in different orders: ~1e-6.
        assert!(d <= 1e-5 * max_abs(&generic).max(1.0), "case {i}: max |im2col - burn| = {d:e}");
    }
}

#[test]
fn conv_gradients_match_burns_autodiff() {
    let dev = Device::flex().autodiff();
    for (i, (c, shape)) in conv_cases(&dev).into_iter().enumerate() {
        let grads_of = |fused: bool| {
            let c = c.clone();
            let x = random(shape, 43 + i as u64, 1.0, 0.2, &dev).require_grad();
            let y = if fused { conv2d(&c, x.clone()) } else { c.forward(x.clone()) };
            let w = random::<4>(y.dims(), 47, 1.0, 0.0, &dev);
            let grads = (y * w).sum().backward();
            let gx = values(x.grad(&grads).expect("dL/dx"));
            let gw = values(c.weight.val().grad(&grads).expect("dL/dW"));
            let gb = c.bias.as_ref().map(|b| values(b.val().grad(&grads).expect("dL/db")));
            (gx, gw, gb)
        };
        let (fx, fw, fb) = grads_of(true);
        let (rx, rw, rb) = grads_of(false);
        assert_eq!(fb.is_some(), rb.is_some());
        let mut pairs = vec![("x", fx, rx), ("weight", fw, rw)];
        if let (Some(f), Some(r)) = (fb, rb) {
            pairs.push(("bias", f, r));
        }
        for (name, f, r) in pairs {
            let scale = max_abs(&r);
            assert!(scale > 1e-3, "case {i}: a non-trivial d{name}");
            let d = max_abs_diff(&f, &r);
            assert!(d <= 1e-5 * scale.max(1.0), "case {i}: d{name} differs by {d:e} (scale {scale:e})");
        }
    }
}

/// Batches larger than one chunk of the unfolded input (the weight gradient accumulates over
/// chunks; the input gradient is scattered per chunk), strided (im2col) and stride 1 (the direct
/// kernel, whose weight gradient sums partials over chunks of pixels).
#[test]
fn conv_over_several_chunks_matches() {
    // Four input channels (im2col throughout): K · P = 36 · 256 values per image, 455 images
    // per chunk, so 500 images make two chunks.
    conv_chunks_match(2, [500, 4, 32, 32]);
    // Eight channels, strided: the direct kernel throughout.
    conv_chunks_match(2, [300, 8, 32, 32]);
    // Stride 1, direct throughout: 120 · 1024 output pixels, 480 partial sums of the weight
    // gradient.
    conv_chunks_match(1, [120, 8, 32, 32]);
}

fn conv_chunks_match(stride: usize, shape: [usize; 4]) {
    let dev = Device::flex().autodiff();
    let c = conv(shape[1], 8, [3, 3], [stride, stride], PaddingConfig2d::Explicit(1, 1, 1, 1), [1, 1], true, &dev);
    let grads_of = |fused: bool| {
        let x = random(shape, 53, 1.0, 0.0, &dev).require_grad();
        let y = if fused { conv2d(&c, x.clone()) } else { c.forward(x.clone()) };
        let w = random::<4>(y.dims(), 59, 1.0, 0.0, &dev);
        let out = values(y.clone());
        let grads = (y * w).sum().backward();
        (out, values(x.grad(&grads).unwrap()), values(c.weight.val().grad(&grads).unwrap()))
    };
    let (fy, fx, fw) = grads_of(true);
    let (ry, rx, rw) = grads_of(false);
    for (name, f, r) in [("y", fy, ry), ("x", fx, rx), ("weight", fw, rw)] {
        let d = max_abs_diff(&f, &r);
        assert!(d <= 1e-5 * max_abs(&r).max(1.0), "d{name} differs by {d:e}");
    }
}
