//! The fused CNF network against central differences (f64): the trace against the Jacobian of
//! `f`, and the reverse pass (second derivatives) against differences of `<a, F(t, y)>` in `y`
//! and in every parameter.

use super::*;

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
}

const WIDTHS: [usize; 5] = [3, 5, 4, 6, 2];
const ROWS: usize = 3;

fn net(mode: CnfMode) -> CnfMlp<f64> {
    let mut s = 9;
    let p = (0..CnfMlp::<f64>::num_params_for(&WIDTHS)).map(|_| 0.8 * lcg(&mut s)).collect();
    CnfMlp::new(&WIDTHS, p, mode).unwrap()
}

fn state(w: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..ROWS * w).map(|_| lcg(&mut s)).collect()
}

#[test]
fn exact_trace_and_frobenius_match_the_jacobian_of_f() {
    let mut m = net(CnfMode::Augmented { kinetic: true, jacobian: true });
    let mut plain = net(CnfMode::Plain);
    let y = state(5, 1);
    let mut dy = vec![0.0; y.len()];
    m.eval(0.4, &y, &mut dy);
    let h = 1e-6;
    for r in 0..ROWS {
        let z: Vec<f64> = y[r * 5..r * 5 + 2].to_vec();
        let mut f = |z: &[f64]| {
            let mut out = vec![0.0; 2];
            plain.eval(0.4, &z.to_vec(), &mut out);
            out
        };
        let (mut tr, mut fro) = (0.0, 0.0);
        for j in 0..2 {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[j] += h;
            zm[j] -= h;
            let (fp, fm) = (f(&zp), f(&zm));
            for i in 0..2 {
                let jij = (fp[i] - fm[i]) / (2.0 * h);
                fro += jij * jij;
                if i == j {
                    tr += jij;
                }
            }
        }
        let fz = f(&z);
        assert!((dy[r * 5] - fz[0]).abs() < 1e-14 && (dy[r * 5 + 1] - fz[1]).abs() < 1e-14);
        assert!((dy[r * 5 + 2] + tr).abs() < 1e-8, "row {r}: -trace {} vs {}", dy[r * 5 + 2], -tr);
        assert!((dy[r * 5 + 3] - (fz[0] * fz[0] + fz[1] * fz[1])).abs() < 1e-14);
        assert!((dy[r * 5 + 4] - fro).abs() < 1e-8, "row {r}: frobenius {} vs {fro}", dy[r * 5 + 4]);
    }
}

/// `<a, F(t, y)>` differentiated by the hand-written reverse pass vs central differences.
fn check_vjp(mut m: CnfMlp<f64>) {
    let w = m.row_width();
    let y = state(w, 2);
    let a = state(w, 3);
    let t = 0.7;
    let mut adj_y = vec![0.0; y.len()];
    let mut adj_p = m.param_zeros();
    m.vjp(t, &y, &a, &mut adj_y, &mut adj_p);
    let h = 1e-6;
    let dot = |m: &mut CnfMlp<f64>, y: &Vec<f64>| {
        let mut dy = vec![0.0; y.len()];
        m.eval(t, y, &mut dy);
        dy.iter().zip(&a).map(|(u, v)| u * v).sum::<f64>()
    };
    for i in 0..y.len() {
        let (mut yp, mut ym) = (y.clone(), y.clone());
        yp[i] += h;
        ym[i] -= h;
        let fd = (dot(&mut m, &yp) - dot(&mut m, &ym)) / (2.0 * h);
        assert!((adj_y[i] - fd).abs() < 1e-7 * (1.0 + fd.abs()), "d/dy[{i}]: {} vs {fd}", adj_y[i]);
    }
    for i in 0..m.params.len() {
        let keep = m.params[i];
        m.params[i] = keep + h;
        let up = dot(&mut m, &y);
        m.params[i] = keep - h;
        let down = dot(&mut m, &y);
        m.params[i] = keep;
        let fd = (up - down) / (2.0 * h);
        assert!((adj_p[i] - fd).abs() < 1e-7 * (1.0 + fd.abs()), "d/dtheta[{i}]: {} vs {fd}", adj_p[i]);
    }
    assert!(adj_p.iter().any(|g| g.abs() > 1e-3));
}

#[test]
fn reverse_pass_matches_central_differences() {
    check_vjp(net(CnfMode::Augmented { kinetic: true, jacobian: true }));
    check_vjp(net(CnfMode::Augmented { kinetic: false, jacobian: false }));
    check_vjp(net(CnfMode::Plain));
    let mut hutch = net(CnfMode::Augmented { kinetic: false, jacobian: true });
    let mut s = 5;
    let probes = (0..2 * ROWS * 2).map(|_| if lcg(&mut s) > 0.0 { 1.0 } else { -1.0 }).collect();
    hutch.use_probes(2, probes);
    check_vjp(hutch);
}

/// Widths that are multiples of 8 run the f64 unpacked kernels of `thin_gemm` (wide hidden
/// layers, the narrow first layer's transposed weight gradient, the narrow last layer's dot
/// products) where the CPU has AVX-512F: the same central-difference check.
#[test]
fn reverse_pass_on_the_unpacked_kernels_matches_central_differences() {
    const WIDE: [usize; 4] = [3, 16, 8, 2];
    for mode in [CnfMode::Augmented { kinetic: true, jacobian: true }, CnfMode::Plain] {
        let mut s = 13;
        let p = (0..CnfMlp::<f64>::num_params_for(&WIDE)).map(|_| 0.6 * lcg(&mut s)).collect();
        check_vjp(CnfMlp::new(&WIDE, p, mode).unwrap());
    }
}

#[test]
fn bad_shapes_are_refused() {
    assert!(CnfMlp::<f32>::new(&[3, 4, 3], vec![0.0; 31], CnfMode::Plain).is_none());
    assert!(CnfMlp::<f32>::new(&[3, 4, 2], vec![0.0; 3], CnfMode::Plain).is_none());
    assert!(CnfMlp::<f32>::new(&[3, 4, 2], vec![0.0; 26], CnfMode::Plain).is_some());
}

/// Rows split over threads give the results of one thread (300 rows: chunks of 150).
#[test]
fn threaded_chunks_match_one_thread() {
    let mut s = 4;
    let p: Vec<f64> = (0..CnfMlp::<f64>::num_params_for(&WIDTHS)).map(|_| 0.8 * lcg(&mut s)).collect();
    let rows = 300;
    let probes: Vec<f64> = (0..2 * rows * 2).map(|_| if lcg(&mut s) > 0.0 { 1.0 } else { -1.0 }).collect();
    let mut results = Vec::new();
    for threads in [1, 2] {
        let mut m = CnfMlp::new(&WIDTHS, p.clone(), CnfMode::Augmented { kinetic: true, jacobian: true }).unwrap();
        m.use_probes(2, probes.clone());
        m.set_threads(threads);
        let w = m.row_width();
        let y: Vec<f64> = (0..rows * w).map(|_| lcg(&mut 11u64.clone())).enumerate().map(|(i, v)| v + (i as f64 * 0.37).sin()).collect();
        let a: Vec<f64> = (0..rows * w).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut dy = vec![0.0; y.len()];
        m.eval(0.2, &y, &mut dy);
        let (mut ay, mut ap) = (vec![0.0; y.len()], m.param_zeros());
        m.vjp(0.2, &y, &a, &mut ay, &mut ap);
        results.push((dy, ay, ap));
    }
    let close = |u: &[f64], v: &[f64]| u.iter().zip(v).all(|(a, b)| (a - b).abs() <= 1e-12 * (1.0 + a.abs()));
    assert!(close(&results[0].0, &results[1].0) && close(&results[0].1, &results[1].1) && close(&results[0].2, &results[1].2));
}

/// A VJP at an evaluated point reuses the stored forward pass and gives the same products; a
/// parameter change empties the memo.
#[test]
fn memoised_evaluations_give_the_same_products() {
    let mut m = net(CnfMode::Augmented { kinetic: true, jacobian: true });
    let w = m.row_width();
    let (y, a) = (state(w, 7), state(w, 8));
    let run = |m: &mut CnfMlp<f64>| {
        let (mut ay, mut ap) = (vec![0.0; y.len()], m.param_zeros());
        m.vjp(0.1, &y, &a, &mut ay, &mut ap);
        (ay, ap)
    };
    m.set_cache_bytes(0);
    let cold = run(&mut m);
    m.set_cache_bytes(1 << 20);
    let mut dy = vec![0.0; y.len()];
    m.eval(0.1, &y, &mut dy);
    let hot = run(&mut m);
    assert_eq!(m.cache_hits(), 1);
    assert_eq!(cold, hot);
    let mut dy2 = vec![0.0; y.len()];
    m.eval(0.1, &y, &mut dy2);
    assert_eq!(dy, dy2);
    assert_eq!(m.cache_hits(), 2);
    m.params[0] += 0.1;
    let _ = run(&mut m);
    assert_eq!(m.cache_hits(), 2, "stale entries are not used after a parameter change");
}

/// The single-precision network (which runs on the unpacked kernels of `thin_gemm` where the
/// CPU has AVX-512F: every layer shape they cover, wide, narrow first and narrow last) gives the
/// double-precision network's values and VJPs, which the tests above check against central
/// differences, to f32 rounding: relative to the scale of each output, 1e-4 covers sums of 64
/// products at 2^-24 each through four layers.
#[test]
fn single_precision_matches_double_precision() {
    const W32: [usize; 5] = [3, 64, 48, 64, 2];
    let rows = 37;
    let mut s = 21;
    let p64: Vec<f64> = (0..CnfMlp::<f64>::num_params_for(&W32)).map(|_| 0.3 * lcg(&mut s)).collect();
    let p32: Vec<f32> = p64.iter().map(|&v| v as f32).collect();
    let probes64: Vec<f64> = (0..2 * rows * 2).map(|_| if lcg(&mut s) > 0.0 { 1.0 } else { -1.0 }).collect();
    let probes32: Vec<f32> = probes64.iter().map(|&v| v as f32).collect();
    let modes = [
        (CnfMode::Augmented { kinetic: true, jacobian: true }, false),
        (CnfMode::Augmented { kinetic: true, jacobian: true }, true),
        (CnfMode::Plain, false),
    ];
    for (mode, hutchinson) in modes {
        let p64r: Vec<f64> = p32.iter().map(|&v| v as f64).collect();
        let mut m64 = CnfMlp::new(&W32, p64r, mode).unwrap();
        let mut m32 = CnfMlp::new(&W32, p32.clone(), mode).unwrap();
        if hutchinson {
            m64.use_probes(2, probes64.clone());
            m32.use_probes(2, probes32.clone());
        }
        let w = m64.row_width();
        let y32: Vec<f32> = (0..rows * w).map(|_| lcg(&mut s) as f32).collect();
        let a32: Vec<f32> = (0..rows * w).map(|_| lcg(&mut s) as f32).collect();
        let (y64, a64): (Vec<f64>, Vec<f64>) = (y32.iter().map(|&v| v as f64).collect(), a32.iter().map(|&v| v as f64).collect());
        let (mut d32, mut d64) = (vec![0.0f32; y32.len()], vec![0.0f64; y64.len()]);
        m32.eval(0.4, &y32, &mut d32);
        m64.eval(0.4, &y64, &mut d64);
        let (mut ay32, mut ap32) = (vec![0.0f32; y32.len()], m32.param_zeros());
        let (mut ay64, mut ap64) = (vec![0.0f64; y64.len()], m64.param_zeros());
        m32.vjp(0.4, &y32, &a32, &mut ay32, &mut ap32);
        m64.vjp(0.4, &y64, &a64, &mut ay64, &mut ap64);
        for (name, got, want) in [("f", &d32, &d64), ("adj_y", &ay32, &ay64), ("adj_p", &ap32, &ap64)] {
            let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let err = got.iter().zip(want.iter()).fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
            assert!(err <= 1e-4 * scale, "{mode:?} hutchinson={hutchinson} {name}: error {err:e} at scale {scale:e}");
        }
    }
}
