//! A 1-D residual network `x_{k+1} = x_k + f_k(x_k)`, `k = 0..L`, each `f_k` its own two-layer
//! tanh MLP: the discrete counterpart of an ODE-Net (one explicit Euler step of size 1 per layer,
//! with weights that change from layer to layer), as contrasted in Chen et al. (2018), Figure 1.
//! Unlike an ODE's flow, a layer may map two inputs past each other whenever `f_k' < -1`.

use super::ToyError;
use super::model::init_mlp;
use crate::flat_optim::FlatOptimizer;
use nodal_solve::mlp::Mlp;
use nodal_solve::{Dynamics, VjpDynamics};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The network. See the module docs.
#[derive(Debug, Clone)]
pub struct ResNet1d {
    /// The residual maps `f_k`, one per layer.
    pub layers: Vec<Mlp<f64>>,
}

/// A trained network and its losses.
#[derive(Debug, Clone)]
pub struct ResNetRun {
    /// The network after training.
    pub net: ResNet1d,
    /// Training loss (MSE) before each update.
    pub loss: Vec<f64>,
    /// Loss after the last update.
    pub final_loss: f64,
    /// Wall time, seconds.
    pub seconds: f64,
}

impl ResNet1d {
    /// `layers` residual layers of hidden width `hidden`, PyTorch-style initial weights.
    pub fn new(layers: usize, hidden: usize, seed: u64) -> Result<Self, ToyError> {
        if layers == 0 || hidden == 0 {
            return Err(ToyError::Config(format!("need layers >= 1 and hidden >= 1, got {layers} and {hidden}")));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        Ok(Self { layers: (0..layers).map(|_| init_mlp(&mut rng, 1, hidden)).collect() })
    }

    /// Activations of a batch of scalar inputs after every layer: `[L + 1][batch]`, the inputs
    /// first.
    pub fn activations(&mut self, x: &[f64]) -> Vec<Vec<f64>> {
        let mut acts = vec![x.to_vec()];
        let mut dy = vec![0.0; x.len()];
        for f in self.layers.iter_mut() {
            let cur = acts.last().expect("starts non-empty").clone();
            f.eval(0.0, &cur, &mut dy);
            acts.push(cur.iter().zip(&dy).map(|(a, b)| a + b).collect());
        }
        acts
    }

    /// Mean squared error of the outputs against `y` and its gradient, one vector per layer.
    pub fn loss_and_grad(&mut self, x: &[f64], y: &[f64]) -> (f64, Vec<Vec<f64>>) {
        let acts = self.activations(x);
        let out = acts.last().expect("L + 1 snapshots");
        let n = y.len().max(1) as f64;
        let loss = out.iter().zip(y).map(|(o, t)| (o - t) * (o - t)).sum::<f64>() / n;
        let mut a: Vec<f64> = out.iter().zip(y).map(|(o, t)| 2.0 * (o - t) / n).collect();
        let mut grads: Vec<Vec<f64>> = self.layers.iter().map(|f| f.param_zeros()).collect();
        let mut adj = vec![0.0; x.len()];
        for k in (0..self.layers.len()).rev() {
            self.layers[k].vjp(0.0, &acts[k], &a, &mut adj, &mut grads[k]);
            for (ai, g) in a.iter_mut().zip(&adj) {
                *ai += g;
            }
        }
        (loss, grads)
    }

    /// Train on the full batch `(x, y)` with Adam.
    pub fn train(mut self, x: &[f64], y: &[f64], iters: usize, lr: f64) -> ResNetRun {
        let start = std::time::Instant::now();
        let mut opts: Vec<FlatOptimizer> = self.layers.iter().map(|f| FlatOptimizer::adam(f.params.len(), lr)).collect();
        let mut loss = Vec::with_capacity(iters);
        for _ in 0..iters {
            let (l, g) = self.loss_and_grad(x, y);
            loss.push(l);
            for ((f, o), g) in self.layers.iter_mut().zip(opts.iter_mut()).zip(&g) {
                o.step(&mut f.params, g);
            }
        }
        let (final_loss, _) = self.loss_and_grad(x, y);
        ResNetRun { net: self, loss, final_loss, seconds: start.elapsed().as_secs_f64() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet_gradient_matches_central_differences() {
        let mut net = ResNet1d::new(3, 4, 5).unwrap();
        let (x, y) = ([-0.5, 0.2, 1.3], [0.1, -0.4, 0.9]);
        let (_, g) = net.loss_and_grad(&x, &y);
        let eps = 1e-6;
        for (k, gk) in g.iter().enumerate() {
            for (i, gi) in gk.iter().enumerate() {
                let (mut p, mut m) = (net.clone(), net.clone());
                p.layers[k].params[i] += eps;
                m.layers[k].params[i] -= eps;
                let fd = (p.loss_and_grad(&x, &y).0 - m.loss_and_grad(&x, &y).0) / (2.0 * eps);
                assert!((fd - gi).abs() < 1e-7 * (1.0 + fd.abs()), "layer {k} param {i}: fd {fd} vs {gi}");
            }
        }
    }
}
