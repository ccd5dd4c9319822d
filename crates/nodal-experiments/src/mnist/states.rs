//! The ODE block's hidden state over time for a few test digits, and a two-dimensional view of
//! it by principal components (the picture of activations as trajectories, Chen et al. 2018).

use super::models::{MnistNet, images_tensor};
use burn::tensor::{Device, Tensor};
use nodal_solve::SolveError;

/// Hidden states `h(t)` of the ODE block at each time of `ts` (from 0 to 1) for the images given
/// as raw pixels (`[n][28 * 28]`): `[time][image][features]`. `None` for a model without an
/// ODE block.
pub fn hidden_states(model: &MnistNet, pixels: &[u8], ts: &[f64]) -> Result<Option<Vec<Vec<Vec<f32>>>>, SolveError> {
    let Some(ode) = &model.ode else { return Ok(None) };
    let x = images_tensor(pixels, &Device::flex());
    let h = model.stem.forward(x);
    let [b, c, hh, ww] = h.dims();
    let d = c * hh * ww;
    let out = ode.forward(h.reshape([b, d]), ts)?;
    let ys: Tensor<3> = out.ys;
    let v = ys.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
    Ok(Some(v.chunks(b * d).map(|t| t.chunks(d).map(|r| r.to_vec()).collect()).collect()))
}

/// Project points (rows of equal length) on their first two principal components (centred;
/// components from the Gram matrix by power iteration with deflation, so no `features x
/// features` matrix is formed). Returns the 2-D coordinates and the fraction of variance each
/// component explains.
pub fn pca2(points: &[Vec<f32>]) -> (Vec<(f64, f64)>, [f64; 2]) {
    let n = points.len();
    if n == 0 {
        return (Vec::new(), [0.0; 2]);
    }
    let d = points[0].len();
    let mut mean = vec![0.0f64; d];
    for p in points {
        for (m, v) in mean.iter_mut().zip(p) {
            *m += *v as f64 / n as f64;
        }
    }
    let x: Vec<Vec<f64>> = points.iter().map(|p| p.iter().zip(&mean).map(|(v, m)| *v as f64 - m).collect()).collect();
    // Gram matrix G = X X^T (n x n); its eigenvectors u give the scores sqrt(lambda) u.
    let mut g = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = x[i].iter().zip(&x[j]).map(|(a, b)| a * b).sum();
            g[i * n + j] = s;
            g[j * n + i] = s;
        }
    }
    let total: f64 = (0..n).map(|i| g[i * n + i]).sum::<f64>().max(f64::MIN_POSITIVE);
    let mut comps: Vec<(f64, Vec<f64>)> = Vec::new();
    for k in 0..2 {
        let mut u: Vec<f64> = (0..n).map(|i| 1.0 + ((i * 7 + k * 13) % 11) as f64 / 11.0).collect();
        let mut lambda = 0.0;
        for _ in 0..500 {
            let mut w: Vec<f64> = (0..n).map(|i| (0..n).map(|j| g[i * n + j] * u[j]).sum()).collect();
            for (l, c) in &comps {
                let dot: f64 = c.iter().zip(&u).map(|(a, b)| a * b).sum();
                for (wi, ci) in w.iter_mut().zip(c) {
                    *wi -= l * dot * ci;
                }
            }
            let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            let new_lambda = norm;
            w.iter_mut().for_each(|v| *v /= norm);
            let converged = (new_lambda - lambda).abs() <= 1e-12 * new_lambda;
            u = w;
            lambda = new_lambda;
            if converged {
                break;
            }
        }
        comps.push((lambda, u));
    }
    let s: Vec<f64> = comps.iter().map(|(l, _)| l.max(0.0).sqrt()).collect();
    let coords = (0..n).map(|i| (s[0] * comps[0].1[i], s[1] * comps[1].1[i])).collect();
    (coords, [comps[0].0 / total, comps[1].0 / total])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a known plane in 5-D with a dominant axis: the projection recovers the
    /// coordinates along the axes up to sign, and the explained variances.
    #[test]
    fn pca_recovers_a_known_plane() {
        let a = [0.6f32, 0.8, 0.0, 0.0, 0.0];
        let b = [0.0f32, 0.0, 1.0, 0.0, 0.0];
        let mut pts = Vec::new();
        let mut coords = Vec::new();
        // A full grid: s and t uncorrelated, so the principal axes are exactly a and b.
        for i in 0..85 {
            let (s, t) = ((i / 5) as f32 - 8.0, (i % 5) as f32 - 2.0);
            pts.push((0..5).map(|k| 3.0 + s * a[k] + t * b[k]).collect::<Vec<f32>>());
            coords.push((s as f64, t as f64));
        }
        let ms = coords.iter().map(|c| c.0).sum::<f64>() / 85.0;
        let mt = coords.iter().map(|c| c.1).sum::<f64>() / 85.0;
        let (p, frac) = pca2(&pts);
        let sign0 = p.iter().zip(&coords).map(|(q, c)| q.0 * (c.0 - ms)).sum::<f64>().signum();
        let sign1 = p.iter().zip(&coords).map(|(q, c)| q.1 * (c.1 - mt)).sum::<f64>().signum();
        for (q, c) in p.iter().zip(&coords) {
            assert!((q.0 - sign0 * (c.0 - ms)).abs() < 1e-4, "{q:?} vs {c:?}");
            assert!((q.1 - sign1 * (c.1 - mt)).abs() < 1e-4, "{q:?} vs {c:?}");
        }
        assert!((frac[0] + frac[1] - 1.0).abs() < 1e-6 && frac[0] > frac[1]);
    }
}
