//! Every layer's JVP against the Jacobian built row by row from reverse-mode VJPs (f32 and f64),
//! and second-order gradients (reverse mode through a JVP) against central differences (f64).

use super::activation::{gelu_jvp, relu, sigmoid_jvp, silu, softplus, tanh};
use super::time::{ConcatSquashLinear, concat_time, with_time};
use super::*;
use crate::testing::{Cast, Collect, Shift, values};
use burn::module::{Module, Param};
use burn::nn::attention::{MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::conv::{Conv1dConfig, Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::{GroupNormConfig, LayerNormConfig, LinearConfig, PaddingConfig1d, PaddingConfig2d};
use burn::tensor::{DType, Device, TensorData};

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

fn random<const D: usize>(shape: [usize; D], seed: u64, dev: &Device, dt: DType) -> Tensor<D> {
    let mut s = seed;
    let n = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| lcg(&mut s)).collect();
    Tensor::<D>::from_data(TensorData::new(v, shape), (dev, DType::F64)).cast(dt)
}

/// Checks `forward_jvp` of `layer` at a random `x` of `shape` with `k` random tangents against
/// `J` assembled from one VJP per output entry, to `tol` relative to the largest `|J v|` entry.
/// Also checks the JVP's primal against `plain`.
fn check<const D: usize>(
    shape: [usize; D],
    k: usize,
    dt: DType,
    tol: f64,
    fd_reference: bool,
    plain: impl Fn(Tensor<D>) -> Tensor<D>,
    jvp: impl Fn(Dual<D>) -> Dual<D>,
) {
    let dev = Device::flex().autodiff();
    let x = random(shape, 11, &dev, dt);
    let mut tshape = shape;
    tshape[0] *= k;
    let v = random(tshape, 23, &dev, dt);
    let out = jvp(Dual::new(x.clone(), v.clone()));
    let (prim, tang) = (values(out.primal.clone()), values(out.tangent.clone()));
    let reference = values(plain(x.clone()));
    let scale = reference.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for (a, b) in prim.iter().zip(&reference) {
        assert!((a - b).abs() <= tol * scale, "primal {a} vs the layer's forward {b}");
    }
    // Rows of J from VJPs: J[o, :] = d out[o] / d x.
    let n_in: usize = shape.iter().product();
    let n_out = reference.len();
    let mut jac = vec![0.0; n_out * n_in];
    for o in 0..n_out {
        let xt = x.clone().require_grad();
        let y = plain(xt.clone());
        let onehot = {
            let mut e = vec![0.0; n_out];
            e[o] = 1.0;
            Tensor::<1>::from_data(TensorData::new(e, [n_out]), (&dev, DType::F64)).cast(dt)
        };
        let yn = y.reshape([n_out]);
        let g = (yn * onehot).sum().backward();
        let gx = values(xt.grad(&g).unwrap());
        jac[o * n_in..(o + 1) * n_in].copy_from_slice(&gx);
    }
    let vh = values(v.clone());
    if fd_reference {
        // J v by a fourth-order central difference of the plain forward, h = 1e-3 (truncation
        // ~h^4 f^(5) ~ 1e-12, rounding ~1e-16 / h ~ 1e-13).
        let h = 1e-3;
        let b = shape[0];
        let jscale = tang.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for p in 0..k {
            let mut range: [std::ops::Range<usize>; D] = std::array::from_fn(|i| 0..shape[i]);
            range[0] = p * b..(p + 1) * b;
            let vp = v.clone().slice(range);
            let at = |s: f64| values(plain(x.clone() + vp.clone().mul_scalar(s)));
            let (p1, m1, p2, m2) = (at(h), at(-h), at(2.0 * h), at(-2.0 * h));
            for o in 0..n_out {
                let r = (8.0 * (p1[o] - m1[o]) - (p2[o] - m2[o])) / (12.0 * h);
                let got = tang[p * n_out + o];
                assert!((got - r).abs() <= tol * jscale, "tangent {p}, output {o}: jvp {got} vs central difference {r}");
            }
        }
        return;
    }
    let jscale = tang.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for p in 0..k {
        let vp = &vh[p * n_in..(p + 1) * n_in];
        for o in 0..n_out {
            let r: f64 = (0..n_in).map(|i| jac[o * n_in + i] * vp[i]).sum();
            let got = tang[p * n_out + o];
            assert!((got - r).abs() <= tol * jscale, "tangent {p}, output {o}: jvp {got} vs Jacobian {r} (scale {jscale})");
        }
    }
}

/// Runs `check` in f32 (1e-5) and f64 (1e-10) with a module built by `make` on the autodiff
/// device and cast to the precision.
fn both<M: Module, const D: usize>(
    shape: [usize; D],
    k: usize,
    make: impl Fn(&Device) -> M,
    plain: impl Fn(&M, Tensor<D>) -> Tensor<D>,
    jvp: impl Fn(&M, Dual<D>) -> Dual<D>,
) {
    for (dt, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-10)] {
        let dev = Device::flex().autodiff();
        let m = make(&dev).map(&mut Cast(dt));
        check(shape, k, dt, tol, false, |x| plain(&m, x), |x| jvp(&m, x));
    }
}

#[test]
fn linear_rank2_and_rank3() {
    both([3, 4], 2, |d| LinearConfig::new(4, 5).init(d), |m, x| m.forward(x), |m, x| m.forward_jvp(x));
    both([2, 3, 4], 3, |d| LinearConfig::new(4, 2).init(d), |m, x| m.forward(x), |m, x| m.forward_jvp(x));
}

#[test]
fn convolutions() {
    both(
        [2, 2, 7],
        2,
        |d| Conv1dConfig::new(2, 3, 3).with_padding(PaddingConfig1d::Explicit(1, 1)).init(d),
        |m, x| m.forward(x),
        |m, x| m.forward_jvp(x),
    );
    both(
        [2, 2, 5, 4],
        2,
        |d| Conv2dConfig::new([2, 3], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(d),
        |m, x| m.forward(x),
        |m, x| m.forward_jvp(x),
    );
    both(
        [2, 3, 3, 3],
        2,
        |d| ConvTranspose2dConfig::new([3, 2], [3, 3]).with_stride([2, 2]).init(d),
        |m, x| m.forward(x),
        |m, x| m.forward_jvp(x),
    );
}

#[test]
fn norms() {
    both([3, 4, 3, 2], 2, |d| GroupNormConfig::new(2, 4).init(d), |m, x| m.forward(x), |m, x| m.forward_jvp(x));
    both([3, 5], 3, |d| LayerNormConfig::new(5).init(d), |m, x| m.forward(x), |m, x| m.forward_jvp(x));
    both([2, 3, 4], 2, |d| LayerNormConfig::new(4).with_epsilon(0.1).init(d), |m, x| m.forward(x), |m, x| m.forward_jvp(x));
}

/// A trained-looking affine map before the norm, so `γ` and `β` are not the trivial 1 and 0.
#[test]
fn norms_with_nontrivial_affine() {
    let make = |d: &Device| {
        let mut ln = LayerNormConfig::new(4).init(d);
        ln.gamma = Param::from_tensor(random([4], 5, d, DType::F32));
        ln.beta = Some(Param::from_tensor(random([4], 6, d, DType::F32)));
        ln
    };
    both([3, 4], 2, make, |m, x| m.forward(x), |m, x| m.forward_jvp(x));
    let make = |d: &Device| {
        let mut gn = GroupNormConfig::new(3, 6).init(d);
        gn.gamma = Some(Param::from_tensor(random([6], 7, d, DType::F32)));
        gn.beta = Some(Param::from_tensor(random([6], 8, d, DType::F32)));
        gn
    };
    both([2, 6, 2], 2, make, |m, x| m.forward(x), |m, x| m.forward_jvp(x));
}

#[test]
fn activations() {
    use burn::tensor::activation as a;
    let none = |d: &Device| LinearConfig::new(1, 1).init(d);
    both([3, 4], 2, none, |_, x| a::tanh(x), |_, x| tanh(x));
    both([3, 4], 2, none, |_, x| a::sigmoid(x), |_, x| sigmoid_jvp(x));
    both([3, 4], 2, none, |_, x| a::softplus(x, 2.0), |_, x| softplus(x, 2.0, 20.0));
    both([3, 4], 2, none, |_, x| a::relu(x), |_, x| relu(x));
    both([3, 4], 2, none, |_, x| a::gelu(x), |_, x| gelu_jvp(x, false));
    both([3, 4], 2, none, |_, x| a::gelu_approximate(x), |_, x| gelu_jvp(x, true));
    both([3, 4], 2, none, |_, x| a::silu(x), |_, x| silu(x));
}

#[test]
fn time_conditioning() {
    let none = |d: &Device| LinearConfig::new(1, 1).init(d);
    // concat_time changes the width: check it inside a layer that maps back.
    both([3, 4], 2, |d| LinearConfig::new(5, 4).init(d), |m, x| m.forward(with_time(0.3, x)), |m, x| m.forward_jvp(concat_time(0.3, x)));
    both(
        [2, 2, 3, 3],
        2,
        none,
        |_, x| with_time(0.7, x).tanh().slice([0..2, 0..2, 0..3, 0..3]),
        |_, x| {
            let d = tanh(concat_time(0.7, x));
            let k = d.probes();
            Dual { primal: d.primal.slice([0..2, 0..2, 0..3, 0..3]), tangent: d.tangent.slice([0..2 * k, 0..2, 0..3, 0..3]) }
        },
    );
    both([3, 4], 2, |d| ConcatSquashLinear::new(4, 3, d), |m, x| m.forward(0.4, x), |m, x| m.forward_jvp(0.4, x));
}

#[test]
fn attention_matches_burn_and_its_jacobian() {
    let make = |d: &Device| -> MultiHeadAttention { MultiHeadAttentionConfig::new(4, 2).with_dropout(0.0).init(d) };
    let plain = |m: &MultiHeadAttention, x: Tensor<3>| m.forward(burn::nn::attention::MhaInput::self_attn(x)).context;
    let quiet =
        |d: &Device| -> MultiHeadAttention { MultiHeadAttentionConfig::new(4, 2).with_dropout(0.0).with_quiet_softmax(true).init(d) };
    // burn's own reverse mode through attention carries f32 rounding in f64 (its Jacobian is
    // ~6e-10 relative off a fourth-order central difference, which this JVP matches to ~1e-12):
    // f32 against burn's VJPs, f64 against the central difference.
    for build in [&make as &dyn Fn(&Device) -> MultiHeadAttention, &quiet] {
        let dev = Device::flex().autodiff();
        let m32 = build(&dev).map(&mut Cast(DType::F32));
        check([2, 3, 4], 2, DType::F32, 1e-5, false, |x| plain(&m32, x), |x| m32.forward_jvp(x));
        let m64 = build(&dev).map(&mut Cast(DType::F64));
        check([2, 3, 4], 2, DType::F64, 1e-10, true, |x| plain(&m64, x), |x| m64.forward_jvp(x));
    }
}

#[test]
fn chains_compose() {
    let make = |d: &Device| {
        (LinearConfig::new(3, 6).init(d), burn::nn::LayerNormConfig::new(6).init(d), burn::nn::Tanh::new(), LinearConfig::new(6, 3).init(d))
    };
    both([4, 3], 3, make, |m, x| m.3.forward(m.2.forward(m.1.forward(m.0.forward(x)))), |m, x| m.forward_jvp(x));
}

/// A small time-conditioned net with every kind of parameter and a second derivative in each
/// layer: `L = Σ c * (J v)` differentiated by reverse mode against central differences of `L` in
/// `x` and in every parameter entry.
#[test]
fn second_order_gradients_match_central_differences() {
    #[derive(Module, Debug)]
    struct Net {
        a: ConcatSquashLinear,
        n: burn::nn::LayerNorm,
        b: burn::nn::Linear,
    }
    impl Net {
        fn jvp(&self, x: Dual<2>) -> Dual<2> {
            let h = self.a.forward_jvp(0.3, x);
            let h = softplus(self.n.forward_jvp(h), 1.0, 20.0);
            self.b.forward_jvp(silu(h))
        }
    }
    let dev = Device::flex().autodiff();
    let mut net =
        Net { a: ConcatSquashLinear::new(3, 5, &dev), n: LayerNormConfig::new(5).init(&dev), b: LinearConfig::new(5, 3).init(&dev) }
            .map(&mut Cast(DType::F64));
    net.n.gamma = Param::from_tensor(random([5], 9, &dev, DType::F64));
    let x = random([2, 3], 1, &dev, DType::F64);
    let v = random([4, 3], 2, &dev, DType::F64);
    let c = random([4, 3], 3, &dev, DType::F64);
    let loss = |net: &Net, x: Tensor<2>| (net.jvp(Dual::new(x, v.clone())).tangent * c.clone()).sum();
    let xt = x.clone().require_grad();
    let grads = loss(&net, xt.clone()).backward();
    let gx = values(xt.grad(&grads).unwrap());
    let h = 1e-5;
    let xv = values(x.clone());
    for i in 0..xv.len() {
        let shifted = |s: f64| {
            let mut p = xv.clone();
            p[i] += s;
            values(loss(&net, Tensor::from_data(TensorData::new(p, [2, 3]), (&dev, DType::F64))))[0]
        };
        let fd = (shifted(h) - shifted(-h)) / (2.0 * h);
        assert!((gx[i] - fd).abs() <= 1e-7 * (1.0 + fd.abs()), "d/dx[{i}]: reverse {} vs central {fd}", gx[i]);
    }
    // Parameters: flatten the gradients, perturb each entry through a mapper.
    let gp = burn::optim::GradientsParams::from_grads(grads, &net);
    let mut flat = Vec::new();
    net.visit(&mut Collect(&gp, &mut flat));
    assert!(flat.iter().any(|g| g.abs() > 1e-3), "second-order parameter gradients are not all zero");
    for (i, g) in flat.iter().enumerate() {
        let at = |by: f64| {
            let moved = net.clone().map(&mut Shift::new(i, by));
            values(loss(&moved, x.clone()))[0]
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        assert!((g - fd).abs() <= 1e-7 * (1.0 + fd.abs()), "d/dtheta[{i}]: reverse {g} vs central {fd}");
    }
}
