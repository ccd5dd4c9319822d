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

#[test]
fn bad_shapes_are_refused() {
    assert!(CnfMlp::<f32>::new(&[3, 4, 3], vec![0.0; 31], CnfMode::Plain).is_none());
    assert!(CnfMlp::<f32>::new(&[3, 4, 2], vec![0.0; 3], CnfMode::Plain).is_none());
    assert!(CnfMlp::<f32>::new(&[3, 4, 2], vec![0.0; 26], CnfMode::Plain).is_some());
}
