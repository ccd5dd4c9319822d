//! The blocks' shapes, time conditioning, permutation equivariance and gradients (reverse mode
//! against central differences in f64), and shaped neural ODE solves against flattened ones.

use burn::module::Module;
use burn::nn::LinearConfig;
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::blocks::conv_field::{ConvBlockField, conv3x3};
use nodal::blocks::spatial_attention::SpatialAttention;
use nodal::blocks::transformer::{SetTransformer, SetTransformerConfig};
use nodal::blocks::unet::{UNet, UNetConfig};
use nodal::neural_ode::shaped::{FieldNd, Shaped};
use nodal::neural_ode::{NeuralOde, OdeFunc, OdeSettings};
use nodal::solve::grad::GradMethod;
use nodal::testing::{Cast, Collect, Shift, values};

/// Deterministic values in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// A leaf tensor of deterministic values in precision `dt`.
fn tensor<const D: usize>(shape: [usize; D], seed: u64, dev: &Device, dt: DType) -> Tensor<D> {
    let v = noise(shape.iter().product(), seed);
    let data =
        if dt == DType::F64 { TensorData::new(v, shape) } else { TensorData::new(v.iter().map(|x| *x as f32).collect::<Vec<_>>(), shape) };
    Tensor::<D>::from_data(data, (dev, dt))
}

fn small_unet(dev: &Device) -> UNet {
    let mut net = small_unet_config().init(dev);
    // The output convolution starts at zero (f = 0): give it weights so every path is seen.
    net.conv_out = conv3x3(8, 2, dev);
    net
}

/// The small U-Net with the middle attention (2 heads over 2C = 16 channels) and second middle
/// block, every zero-initialised output given weights so that every path is seen.
fn small_unet_with_attention(dev: &Device) -> UNet {
    let cfg = UNetConfig { middle_attention: 2, ..small_unet_config() };
    let mut net = cfg.init(dev);
    net.conv_out = conv3x3(8, 2, dev);
    let attention = net.middle_attention.as_mut().expect("the middle attention");
    attention.attention.output = LinearConfig::new(16, 16).init(dev);
    net.middle2.as_mut().expect("the second middle block").conv2 = conv3x3(16, 16, dev);
    net
}

fn small_unet_config() -> UNetConfig {
    UNetConfig { image_channels: 2, channels: 8, time_features: 8, time_width: 16, middle_attention: 0 }
}

fn small_transformer(dev: &Device) -> SetTransformer {
    SetTransformerConfig { token_features: 4, width: 16, heads: 2, layers: 2, mlp_width: 32, time_features: 8 }.init(dev)
}

#[test]
fn output_shapes_follow_the_input() {
    let dev = Device::flex();
    dev.seed(1);
    let conv = ConvBlockField::new(8, &dev);
    assert_eq!(conv.forward(0.3, tensor([3, 8, 6, 5], 1, &dev, DType::F32)).dims(), [3, 8, 6, 5]);
    let unet = small_unet(&dev);
    assert_eq!(unet.forward(0.3, tensor([2, 2, 8, 12], 2, &dev, DType::F32)).dims(), [2, 2, 8, 12]);
    assert_eq!(unet.forward(0.3, tensor([1, 2, 28, 28], 2, &dev, DType::F32)).dims(), [1, 2, 28, 28]);
    let attn = small_unet_with_attention(&dev);
    assert_eq!(attn.forward(0.3, tensor([2, 2, 8, 12], 2, &dev, DType::F32)).dims(), [2, 2, 8, 12]);
    let block = SpatialAttention::new(16, 4, &dev);
    assert_eq!(block.forward(tensor([3, 16, 7, 5], 2, &dev, DType::F32)).dims(), [3, 16, 7, 5]);
    let tr = small_transformer(&dev);
    for n in [1, 5, 12] {
        assert_eq!(tr.forward(0.3, tensor([2, n, 4], 3, &dev, DType::F32)).dims(), [2, n, 4]);
    }
    // The untrained U-Net of the default config is f = 0 (zero output convolution).
    let zero = UNetConfig::default().init(&dev).forward(0.5, tensor([1, 1, 28, 28], 4, &dev, DType::F32));
    assert!(values(zero).iter().all(|v| *v == 0.0));
}

/// Largest absolute difference relative to the largest magnitude.
fn rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = a.iter().chain(b).fold(1e-12f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn time_conditioning_changes_the_output() {
    let dev = Device::flex();
    dev.seed(2);
    let x4 = tensor([2, 8, 6, 6], 5, &dev, DType::F32);
    let conv = ConvBlockField::new(8, &dev);
    let d = rel_diff(&values(conv.forward(0.1, x4.clone())), &values(conv.forward(0.7, x4)));
    assert!(d > 1e-3, "conv block: {d}");
    let unet = small_unet(&dev);
    let x = tensor([2, 2, 8, 8], 6, &dev, DType::F32);
    let d = rel_diff(&values(unet.forward(0.1, x.clone())), &values(unet.forward(0.7, x)));
    assert!(d > 1e-3, "u-net: {d}");
    let attn = small_unet_with_attention(&dev);
    let x = tensor([2, 2, 8, 8], 6, &dev, DType::F32);
    let d = rel_diff(&values(attn.forward(0.1, x.clone())), &values(attn.forward(0.7, x)));
    assert!(d > 1e-3, "u-net with attention: {d}");
    let tr = small_transformer(&dev);
    let x = tensor([2, 5, 4], 7, &dev, DType::F32);
    let d = rel_diff(&values(tr.forward(0.1, x.clone())), &values(tr.forward(0.7, x)));
    assert!(d > 1e-3, "transformer: {d}");
}

#[test]
fn the_unet_takes_one_time_per_example() {
    // Flow-matching training draws a time per example: row r of `forward_times(ts, x)` must be
    // the field at ts[r] on row r alone (GroupNorm normalises each example by itself).
    let dev = Device::flex();
    dev.seed(3);
    let unet = small_unet(&dev).map(&mut Cast(DType::F64));
    let x = tensor([2, 2, 8, 8], 8, &dev, DType::F64);
    let both = values(unet.forward_times(&[0.1, 0.7], x.clone()));
    let first = values(unet.forward(0.1, x.clone()));
    let second = values(unet.forward(0.7, x));
    let half = both.len() / 2;
    assert!(rel_diff(&both[..half], &first[..half]) < 1e-12);
    assert!(rel_diff(&both[half..], &second[half..]) < 1e-12);
    // And the two rows' times really differ in effect.
    assert!(rel_diff(&both[half..], &first[half..]) > 1e-3);
}

#[test]
fn the_transformer_is_permutation_equivariant() {
    let dev = Device::flex();
    dev.seed(3);
    let tr = small_transformer(&dev).map(&mut Cast(DType::F64));
    let (n, d) = (6, 4);
    let x = noise(2 * n * d, 8);
    let perm = [3usize, 0, 5, 1, 4, 2];
    let mut xp = x.clone();
    for b in 0..2 {
        for (i, &p) in perm.iter().enumerate() {
            xp[(b * n + i) * d..(b * n + i + 1) * d].copy_from_slice(&x[(b * n + p) * d..(b * n + p + 1) * d]);
        }
    }
    let f = |v: Vec<f64>| values(tr.forward(0.4, Tensor::<3>::from_data(TensorData::new(v, [2, n, d]), (&dev, DType::F64))));
    let (fx, fxp) = (f(x), f(xp));
    for b in 0..2 {
        for (i, &p) in perm.iter().enumerate() {
            for k in 0..d {
                let (a, c) = (fxp[(b * n + i) * d + k], fx[(b * n + p) * d + k]);
                assert!((a - c).abs() < 1e-12, "token {i} <- {p}: {a} vs {c}");
            }
        }
    }
}

/// Reverse-mode gradients of `s = Σ w · f(t, y)` with respect to `y` and to the parameters
/// against central differences in f64 (step 1e-5: truncation ~1e-10, round-off ~1e-11 relative),
/// on a sample of entries.
fn check_gradients<const D: usize, F: FieldNd<D>>(make: impl Fn(&Device) -> F, shape: [usize; D], tol: f64) {
    let ad = Device::flex().autodiff();
    ad.seed(11);
    let field = make(&ad).map(&mut Cast(DType::F64));
    let plain_dev = Device::flex();
    let t = 0.37;
    let n: usize = shape.iter().product();
    let w = tensor(shape, 21, &plain_dev, DType::F64);
    let y = tensor(shape, 22, &ad, DType::F64).require_grad();
    let s = (field.forward(t, y.clone()) * Tensor::from_inner(w.clone())).sum();
    let grads = s.backward();
    let gy = values(y.grad(&grads).expect("a gradient for y"));
    let gp = GradientsParams::from_grads(grads, &field);
    let mut gtheta = Vec::new();
    field.visit(&mut Collect(&gp, &mut gtheta));

    let plain = field.clone().valid();
    let score = |m: &F, yv: &[f64]| -> f64 {
        let yt = Tensor::<D>::from_data(TensorData::new(yv.to_vec(), shape), (&plain_dev, DType::F64));
        values(m.forward(t, yt) * w.clone()).iter().sum()
    };
    let h = 1e-5;
    let y0 = values(y.inner());
    let scale_y = gy.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for i in (0..n).step_by((n / 12).max(1)) {
        let (mut up, mut dn) = (y0.clone(), y0.clone());
        up[i] += h;
        dn[i] -= h;
        let fd = (score(&plain, &up) - score(&plain, &dn)) / (2.0 * h);
        assert!((fd - gy[i]).abs() <= tol * scale_y, "dy[{i}]: reverse {} vs central {fd}", gy[i]);
    }
    let np = gtheta.len();
    let scale_p = gtheta.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for i in (0..np).step_by((np / 16).max(1)) {
        let up = plain.clone().map(&mut Shift::new(i, h));
        let dn = plain.clone().map(&mut Shift::new(i, -h));
        let fd = (score(&up, &y0) - score(&dn, &y0)) / (2.0 * h);
        assert!((fd - gtheta[i]).abs() <= tol * scale_p, "dθ[{i}] of {np}: reverse {} vs central {fd}", gtheta[i]);
    }
}

#[test]
fn conv_block_gradients_match_central_differences() {
    check_gradients(|d| ConvBlockField::new(4, d), [2, 4, 5, 5], 1e-6);
}

#[test]
fn unet_gradients_match_central_differences() {
    check_gradients(small_unet, [2, 2, 8, 8], 1e-6);
}

#[test]
fn unet_with_middle_attention_gradients_match_central_differences() {
    check_gradients(small_unet_with_attention, [2, 2, 8, 8], 1e-6);
}

#[test]
fn a_grown_unet_computes_the_smaller_ones_field_exactly() {
    let dev = Device::flex();
    dev.seed(6);
    let small = small_unet(&dev);
    let from = small_unet_config();
    let to = UNetConfig { middle_attention: 4, ..from };
    let x = tensor([3, 2, 8, 8], 12, &dev, DType::F32);
    let before = values(small.forward_times(&[0.2, 0.5, 0.9], x.clone()));
    let grown = UNet::grown_from(small.clone(), &from, &to, &dev).unwrap();
    assert!(grown.middle_attention.is_some() && grown.middle2.is_some());
    assert!(nodal::module_weights::param_count(&grown) > nodal::module_weights::param_count(&small));
    // The added attention's output and the added block's last convolution are zero, so each adds
    // an exact 0 to its residual: bit for bit the smaller network's field.
    assert_eq!(values(grown.forward_times(&[0.2, 0.5, 0.9], x)), before);
    // Anything but adding the middle is refused with the two configurations named.
    let wider = UNetConfig { channels: 16, middle_attention: 4, ..from };
    let err = UNet::grown_from(small.clone(), &from, &wider, &dev).unwrap_err();
    assert!(err.contains("channels: 16"), "{err}");
    // Heads that do not divide 2C are refused before any work.
    let odd = UNetConfig { middle_attention: 3, ..from };
    assert!(UNet::grown_from(small, &from, &odd, &dev).unwrap_err().contains("middle_attention 3"));
}

#[test]
fn transformer_gradients_match_central_differences() {
    // burn's attention scales scores by 1/√d_k computed in f32 in the forward pass and by the
    // same rounded constant in reverse, so f64 agreement is not limited by it; 1e-6 relative.
    check_gradients(small_transformer, [2, 5, 4], 1e-6);
}

/// The same field seen as a 2-D `OdeFunc` by hand (the reshape written out).
#[derive(Module, Debug)]
struct HandFlattened {
    field: ConvBlockField,
}
impl OdeFunc for HandFlattened {
    fn forward(&self, t: f64, y: Tensor<2>) -> Tensor<2> {
        let b = y.dims()[0];
        self.field.forward(t, y.reshape([b, 4, 5, 5])).reshape([b, 100])
    }
}

#[test]
fn a_shaped_solve_equals_the_flattened_solve_exactly() {
    let ad = Device::flex().autodiff();
    ad.seed(5);
    let field = ConvBlockField::new(4, &ad);
    for (grad, per_sample) in [(GradMethod::Backprop, false), (GradMethod::Adjoint, false), (GradMethod::Backprop, true)] {
        let settings = OdeSettings::dopri5(1e-4, 1e-6).with_grad(grad).with_per_sample(per_sample);
        let shaped = NeuralOde::new(Shaped::new(field.clone(), &[4, 5, 5]), settings.clone(), settings.clone());
        let flat = NeuralOde::new(HandFlattened { field: field.clone() }, settings.clone(), settings);
        let y0 = tensor([3, 4, 5, 5], 9, &ad, DType::F32).require_grad();
        let out = shaped.forward_shaped(y0.clone(), &[0.0, 0.5, 1.0]).unwrap();
        assert_eq!(out.states.len(), 3);
        assert_eq!(out.states[2].dims(), [3, 4, 5, 5]);
        let same: Vec<f32> = y0.clone().into_data().convert::<f32>().try_into_vec().unwrap();
        let y0f = Tensor::<2>::from_data(TensorData::new(same, [3, 100]), (&ad, DType::F32)).require_grad();
        let outf = flat.forward(y0f.clone(), &[0.0, 0.5, 1.0]).unwrap();
        assert_eq!(out.flat.stats.nfe, outf.stats.nfe, "{grad:?} per-sample {per_sample}");
        for k in 0..3 {
            let a: Vec<f64> = values(out.states[k].clone());
            let nt = outf.ys.dims()[0];
            assert_eq!(nt, 3);
            let b: Vec<f64> = values(outf.ys.clone().slice([k..k + 1, 0..3, 0..100]));
            assert_eq!(a, b, "state {k} ({grad:?}, per-sample {per_sample})");
        }
        // Gradients of the same loss, to y0 and to every parameter, bit for bit.
        let g1 = out.states[2].clone().square().sum().backward();
        let g2 = outf.ys.clone().slice([2..3, 0..3, 0..100]).square().sum().backward();
        assert_eq!(values(y0.grad(&g1).unwrap()), values(y0f.grad(&g2).unwrap()), "dy0 ({grad:?}, per-sample {per_sample})");
        let (mut p1, mut p2) = (Vec::new(), Vec::new());
        shaped.visit(&mut Collect(&GradientsParams::from_grads(g1, &shaped), &mut p1));
        flat.visit(&mut Collect(&GradientsParams::from_grads(g2, &flat), &mut p2));
        assert_eq!(p1, p2, "dθ ({grad:?}, per-sample {per_sample})");
        assert!(p1.iter().any(|v| *v != 0.0));
    }
}

#[test]
fn a_state_of_the_wrong_shape_is_a_typed_error() {
    let dev = Device::flex();
    let s = OdeSettings::dopri5(1e-3, 1e-5);
    let ode = NeuralOde::new(Shaped::new(ConvBlockField::new(4, &dev), &[4, 5, 5]), s.clone(), s);
    let err = ode.forward_shaped(tensor([2, 4, 5, 6], 1, &dev, DType::F32), &[0.0, 1.0]).err().expect("a shape error");
    let msg = err.to_string();
    assert!(msg.contains("[2, 4, 5, 6]") && msg.contains("[4, 5, 5]"), "{msg}");
}
