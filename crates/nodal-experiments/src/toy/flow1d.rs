//! A 1-D input flow in the spirit of Chen et al. (2018), Figure 1: an ODE-Net and a ResNet
//! trained on the same monotone regression `y = h(x) = 2 tanh(2x)` on `x in [-2, 2]`, so that the
//! ODE's continuous trajectories `x(t)`, `t in [0, 1]`, can be set beside the ResNet's
//! activations layer by layer. The ODE's trajectories never cross (uniqueness of solutions); the
//! ResNet's may, since nothing stops a layer from overshooting.

use super::model::{HeadKind, ModelConfig, OdeModel};
use super::resnet::{ResNet1d, ResNetRun};
use super::train::{ModelRun, train};
use super::{ToyError, count_crossings};

/// The target map `h(x) = 2 tanh(2x)`, increasing: it spreads inputs near 0 apart and gathers
/// large ones towards `+-2`.
pub fn target(x: f64) -> f64 {
    2.0 * (2.0 * x).tanh()
}

/// [`target`] as text for figures.
pub const TARGET_NAME: &str = "2 tanh(2x)";

/// Settings of the experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flow1dConfig {
    /// Adam iterations (full batch) for each model.
    pub iters: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Hidden width of the ODE's dynamics and of every residual map.
    pub hidden: usize,
    /// Residual layers.
    pub layers: usize,
    /// Training inputs, evenly spaced on `[-2, 2]`.
    pub points: usize,
    /// Solver tolerance (rtol = atol).
    pub tol: f64,
    /// Seed of the weights.
    pub seed: u64,
}

impl Default for Flow1dConfig {
    fn default() -> Self {
        Self { iters: 1000, lr: 1e-2, hidden: 16, layers: 8, points: 33, tol: 1e-3, seed: 0 }
    }
}

/// Evenly spaced points on `[-2, 2]`.
pub fn grid(n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n).map(|i| -2.0 + 4.0 * i as f64 / (n - 1) as f64).collect()
}

/// Both trained models.
#[derive(Debug, Clone)]
pub struct Flow1dResult {
    /// The ODE-Net (state in `R`, output = final state).
    pub ode: ModelRun,
    /// The ResNet.
    pub resnet: ResNetRun,
}

/// Train the ODE-Net and the ResNet on the same data.
pub fn run(cfg: &Flow1dConfig) -> Result<Flow1dResult, ToyError> {
    let x = grid(cfg.points);
    let y: Vec<f64> = x.iter().map(|&v| target(v)).collect();
    let mcfg =
        ModelConfig { in_dim: 1, augment: 0, hidden: cfg.hidden, head: HeadKind::First, rtol: cfg.tol, atol: cfg.tol, seed: cfg.seed };
    let ode = train(OdeModel::new(mcfg)?, &x, &y, cfg.iters, cfg.lr)?;
    let resnet = ResNet1d::new(cfg.layers, cfg.hidden, cfg.seed)?.train(&x, &y, cfg.iters, cfg.lr);
    Ok(Flow1dResult { ode, resnet })
}

/// Trajectories for plotting: the ODE's states at `times` (`[time][input]`) and the ResNet's
/// activations (`[layer][input]`) for the given inputs, with the crossings counted in each.
#[derive(Debug, Clone)]
pub struct Flow1dPaths {
    /// Output times of the ODE, `0..=1`.
    pub times: Vec<f64>,
    /// ODE states, `[time][input]`.
    pub ode: Vec<Vec<f64>>,
    /// ResNet activations, `[layer][input]` (layer 0 = the inputs).
    pub resnet: Vec<Vec<f64>>,
    /// Order changes between consecutive ODE times ([`count_crossings`]).
    pub ode_crossings: usize,
    /// Order changes between consecutive ResNet layers.
    pub resnet_crossings: usize,
}

/// Tolerance of the ODE solves behind [`paths`] (the exact flow, not the training solve's error).
pub const PATH_TOL: f64 = 1e-8;

/// Evaluate both trained models along their depth for `inputs`, ODE at `n_times` times (solved
/// to [`PATH_TOL`]).
pub fn paths(r: &mut Flow1dResult, inputs: &[f64], n_times: usize) -> Result<Flow1dPaths, ToyError> {
    let n_times = n_times.max(2);
    let times: Vec<f64> = (0..n_times).map(|i| i as f64 / (n_times - 1) as f64).collect();
    let ode = r.ode.model.trajectories_at(inputs, &times, PATH_TOL)?;
    let resnet = r.resnet.net.activations(inputs);
    let (ode_crossings, resnet_crossings) = (count_crossings(&ode), count_crossings(&resnet));
    Ok(Flow1dPaths { times, ode, resnet, ode_crossings, resnet_crossings })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both models learn the map (MSE below 0.01, against a target variance of about 1.7), and
    /// the ODE's trajectories, sampled at 101 times for 41 inputs, never change order.
    #[test]
    fn both_fit_and_ode_paths_never_cross() {
        let mut r = run(&Flow1dConfig::default()).unwrap();
        assert!(r.ode.history.final_loss < 0.01, "ODE loss {}", r.ode.history.final_loss);
        assert!(r.resnet.final_loss < 0.01, "ResNet loss {}", r.resnet.final_loss);
        let p = paths(&mut r, &grid(41), 101).unwrap();
        assert_eq!(p.ode.len(), 101, "one row per output time");
        assert!(p.ode.iter().all(|row| row.len() == 41 && row.iter().all(|x| x.is_finite())), "41 finite states per time");
        assert_eq!(p.ode_crossings, 0);
        assert_eq!(p.resnet.len(), 9);
    }
}
