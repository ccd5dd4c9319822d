//! Jacobian-vector products of the fused MLP and their exact reverse ([`JvpDynamics`]).
//!
//! Per row, with `x` the input, `z = W1 x + b1`, `a = tanh z`, `s1 = 1 - a^2 = tanh'(z)` and
//! `s2 = -2 a s1 = tanh''(z)`:
//!
//! ```text
//! f    = W2 a + b2
//! J w  = W2 (s1 * (W1 w))                     (forward mode along w)
//! ```
//!
//! and for a cotangent `c` of `J w` (with `h = W1 w`, `sbar = W2^T c`):
//!
//! ```text
//! dW2   += c (s1 * h)^T
//! hbar   = s1 * sbar            -> dW1 += hbar w^T,   adj_w = W1^T hbar   (= J^T c)
//! zbar   = s2 * h * sbar        -> dW1 += zbar x^T,   db1 += zbar,   adj_x = W1^T zbar
//! ```
//!
//! Plain loops: these products serve the regularisers of small models (the spiral, 2-D flows);
//! large models take the matrix-product path of [`crate::mlp`] for `f` and its VJP.

use crate::jvp::JvpDynamics;
use crate::mlp::Mlp;
use crate::scalar::Scalar;

impl<T: Scalar> Mlp<T> {
    /// Per-row hidden quantities `(z, a = tanh z)` for one row `x`.
    fn hidden_row(&self, x: &[T], z: &mut [T], act: &mut [T]) {
        let (d, h) = (self.dim(), self.hidden());
        let p = &self.params;
        for j in 0..h {
            let mut s = p[h * d + j];
            for k in 0..d {
                s += p[j * d + k] * x[k];
            }
            z[j] = s;
            act[j] = s.tanh_fast();
        }
    }
}

impl<T: Scalar> JvpDynamics<Vec<T>> for Mlp<T> {
    fn eval_and_jvp(&mut self, _t: f64, y: &Vec<T>, v: &Vec<T>, dy: &mut Vec<T>, jv: &mut Vec<T>) {
        let (d, h) = (self.dim(), self.hidden());
        let (o_w2, o_b2) = (h * d + h, 2 * h * d + h);
        let mut buf = std::mem::take(&mut self.jvp_buf);
        buf.resize(5 * h, T::ZERO);
        let (z, rest) = buf.split_at_mut(h);
        let (act, rest) = rest.split_at_mut(h);
        let s = &mut rest[..h];
        for ((x, w), (fr, jr)) in y.chunks(d).zip(v.chunks(d)).zip(dy.chunks_mut(d).zip(jv.chunks_mut(d))) {
            self.hidden_row(x, z, act);
            let p = &self.params;
            for j in 0..h {
                let mut hw = T::ZERO;
                for k in 0..d {
                    hw += p[j * d + k] * w[k];
                }
                s[j] = (T::ONE - act[j] * act[j]) * hw;
            }
            for i in 0..d {
                let (mut fi, mut ji) = (p[o_b2 + i], T::ZERO);
                for j in 0..h {
                    fi += p[o_w2 + i * h + j] * act[j];
                    ji += p[o_w2 + i * h + j] * s[j];
                }
                fr[i] = fi;
                jr[i] = ji;
            }
        }
        self.jvp_buf = buf;
    }

    fn jvp_vjp(&mut self, _t: f64, y: &Vec<T>, v: &Vec<T>, c: &Vec<T>, adj_y: &mut Vec<T>, adj_v: &mut Vec<T>, adj_p: &mut Vec<T>) {
        let (d, h) = (self.dim(), self.hidden());
        let (o_b1, o_w2) = (h * d, h * d + h);
        let mut buf = std::mem::take(&mut self.jvp_buf);
        buf.resize(5 * h, T::ZERO);
        let (z, rest) = buf.split_at_mut(h);
        let (act, rest) = rest.split_at_mut(h);
        let (hw, rest) = rest.split_at_mut(h);
        let (hbar, zbar) = rest.split_at_mut(h);
        let two = T::from_f64(2.0);
        for (r, ((x, w), cr)) in y.chunks(d).zip(v.chunks(d)).zip(c.chunks(d)).enumerate() {
            self.hidden_row(x, z, act);
            let p = &self.params;
            for j in 0..h {
                let mut s = T::ZERO;
                for k in 0..d {
                    s += p[j * d + k] * w[k];
                }
                hw[j] = s;
                let s1 = T::ONE - act[j] * act[j];
                let s2 = T::ZERO - two * act[j] * s1;
                let mut sbar = T::ZERO;
                for i in 0..d {
                    sbar += p[o_w2 + i * h + j] * cr[i];
                }
                hbar[j] = s1 * sbar;
                zbar[j] = s2 * hw[j] * sbar;
                // dW2[i][j] += c_i * s1_j * h_j
                let sj = s1 * hw[j];
                for i in 0..d {
                    adj_p[o_w2 + i * h + j] += cr[i] * sj;
                }
                adj_p[o_b1 + j] += zbar[j];
                for k in 0..d {
                    adj_p[j * d + k] += hbar[j] * w[k] + zbar[j] * x[k];
                }
            }
            for k in 0..d {
                let (mut av, mut ay) = (T::ZERO, T::ZERO);
                for j in 0..h {
                    av += p[j * d + k] * hbar[j];
                    ay += p[j * d + k] * zbar[j];
                }
                adj_v[r * d + k] = av;
                adj_y[r * d + k] = ay;
            }
        }
        self.jvp_buf = buf;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Dynamics, VjpDynamics};
    use crate::mlp::tests::seeded;

    #[test]
    fn jvp_matches_directional_differences_and_vjp_duality() {
        let (d, h, b) = (3, 6, 4);
        let mut m = Mlp::new(d, h, seeded(Mlp::<f64>::num_params_for(d, h), 7).iter().map(|x| 2.0 * x).collect()).unwrap();
        let y = seeded(b * d, 8);
        let v = seeded(b * d, 9);
        let (mut f, mut jv) = (vec![0.0; b * d], vec![0.0; b * d]);
        m.eval_and_jvp(0.0, &y, &v, &mut f, &mut jv);
        let mut f_ref = vec![0.0; b * d];
        m.eval(0.0, &y, &mut f_ref);
        assert!(f.iter().zip(&f_ref).all(|(a, b)| (a - b).abs() < 1e-14));
        let eps = 1e-6;
        let shifted = |s: f64, m: &mut Mlp<f64>| {
            let yp: Vec<f64> = y.iter().zip(&v).map(|(y, v)| y + s * v).collect();
            let mut out = vec![0.0; b * d];
            m.eval(0.0, &yp, &mut out);
            out
        };
        let (fp, fm) = (shifted(eps, &mut m), shifted(-eps, &mut m));
        for i in 0..b * d {
            let fd = (fp[i] - fm[i]) / (2.0 * eps);
            assert!((fd - jv[i]).abs() < 1e-8, "component {i}: fd {fd} vs jvp {}", jv[i]);
        }
        // <c, J v> = <J^T c, v>: the adj_v of jvp_vjp against the first-order VJP.
        let c = seeded(b * d, 10);
        // (adj_y and the parameter adjoint of jvp_vjp are checked in the next test.)
        let (mut ay, mut av, mut ap) = (vec![0.0; b * d], vec![0.0; b * d], m.param_zeros());
        m.jvp_vjp(0.0, &y, &v, &c, &mut ay, &mut av, &mut ap);
        let (mut vjp_y, mut vjp_p) = (vec![0.0; b * d], m.param_zeros());
        m.vjp(0.0, &y, &c, &mut vjp_y, &mut vjp_p);
        assert!(av.iter().zip(&vjp_y).all(|(a, b)| (a - b).abs() < 1e-13));
        // The first-order parameter VJP, against central differences of <c, f> in each parameter.
        for k in 0..vjp_p.len() {
            let c_dot_f = |m: &mut Mlp<f64>| {
                let mut out = vec![0.0; b * d];
                m.eval(0.0, &y, &mut out);
                out.iter().zip(&c).map(|(a, b)| a * b).sum::<f64>()
            };
            let p0 = m.params[k];
            m.params[k] = p0 + eps;
            let up = c_dot_f(&mut m);
            m.params[k] = p0 - eps;
            let down = c_dot_f(&mut m);
            m.params[k] = p0;
            let fd = (up - down) / (2.0 * eps);
            assert!((fd - vjp_p[k]).abs() < 1e-8, "parameter {k}: fd {fd} vs vjp {}", vjp_p[k]);
        }
    }

    #[test]
    fn reverse_of_jvp_matches_central_differences() {
        let (d, h, b) = (2, 5, 3);
        let mut m = Mlp::new(d, h, seeded(Mlp::<f64>::num_params_for(d, h), 11).iter().map(|x| 3.0 * x).collect()).unwrap();
        let y = seeded(b * d, 12);
        let v = seeded(b * d, 13);
        let c = seeded(b * d, 14);
        let (mut ay, mut av, mut ap) = (vec![0.0; b * d], vec![0.0; b * d], m.param_zeros());
        m.jvp_vjp(0.0, &y, &v, &c, &mut ay, &mut av, &mut ap);
        // phi(y, theta) = <c, J(y; theta) v>
        let phi = |m: &mut Mlp<f64>, y: &Vec<f64>| {
            let (mut f, mut jv) = (vec![0.0; b * d], vec![0.0; b * d]);
            m.eval_and_jvp(0.0, y, &v, &mut f, &mut jv);
            jv.iter().zip(&c).map(|(a, b)| a * b).sum::<f64>()
        };
        let eps = 1e-6;
        for i in 0..b * d {
            let (mut yp, mut ym) = (y.clone(), y.clone());
            yp[i] += eps;
            ym[i] -= eps;
            let fd = (phi(&mut m, &yp) - phi(&mut m, &ym)) / (2.0 * eps);
            assert!((fd - ay[i]).abs() < 1e-8, "y[{i}]: fd {fd} vs {}", ay[i]);
        }
        for i in 0..m.params.len() {
            let (mut mp, mut mm) = (m.clone(), m.clone());
            mp.params[i] += eps;
            mm.params[i] -= eps;
            let fd = (phi(&mut mp, &y) - phi(&mut mm, &y)) / (2.0 * eps);
            assert!((fd - ap[i]).abs() < 1e-8, "p[{i}]: fd {fd} vs {}", ap[i]);
        }
    }
}
