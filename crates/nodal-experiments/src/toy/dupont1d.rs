//! Dupont, Doucet & Teh (2019), "Augmented Neural ODEs", sec. 3: the 1-D map `g(-1) = 1`,
//! `g(1) = -1`. A neural ODE on `R` whose output is its final state cannot represent it: the flow
//! of `dx/dt = f(x)` is a homeomorphism of `R`, hence increasing, so `x(1)` from `-1` stays below
//! `x(1)` from `+1` and the mean squared error is at least 1 (reached when both meet at 0). An
//! augmented neural ODE on `R^(1 + p)`, started at `[x, 0, ..., 0]` and read out by the first
//! coordinate, can route the two trajectories around each other through the extra dimensions.

use super::ToyError;
use super::model::{HeadKind, ModelConfig, OdeModel};
use super::train::{ModelRun, train};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Settings of the experiment (NODE and ANODE share all of them but `augment`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dupont1dConfig {
    /// Adam iterations (full batch).
    pub iters: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Hidden width of both models' dynamics.
    pub hidden: usize,
    /// Augmented dimensions of the ANODE (`p >= 1`).
    pub augment: usize,
    /// Inputs per side: `-1` and `+1`, plus uniform noise in `+-noise` when more than one.
    pub points_per_side: usize,
    /// Half-width of the input noise (0: every input exactly `+-1`).
    pub noise: f64,
    /// Solver tolerance (rtol = atol), Dupont et al.'s `1e-3`.
    pub tol: f64,
    /// Seed of data and weights (both models get the same seed).
    pub seed: u64,
}

impl Default for Dupont1dConfig {
    fn default() -> Self {
        Self { iters: 300, lr: 1e-2, hidden: 16, augment: 1, points_per_side: 1, noise: 0.0, tol: 1e-3, seed: 0 }
    }
}

/// Inputs and targets: `x` near `-1` has target `+1`, `x` near `+1` has target `-1`.
pub fn data(cfg: &Dupont1dConfig) -> (Vec<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0xd1);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (centre, target) in [(-1.0, 1.0), (1.0, -1.0)] {
        for _ in 0..cfg.points_per_side.max(1) {
            let e = if cfg.noise > 0.0 { rng.gen_range(-cfg.noise..cfg.noise) } else { 0.0 };
            x.push(centre + e);
            y.push(target);
        }
    }
    (x, y)
}

/// A model of the experiment: `augment = 0` for the NODE.
pub fn model(cfg: &Dupont1dConfig, augment: usize) -> Result<OdeModel, ToyError> {
    OdeModel::new(ModelConfig {
        in_dim: 1,
        augment,
        hidden: cfg.hidden,
        head: HeadKind::First,
        rtol: cfg.tol,
        atol: cfg.tol,
        seed: cfg.seed,
    })
}

/// Both trained models.
#[derive(Debug, Clone)]
pub struct Dupont1dResult {
    /// The neural ODE on `R`.
    pub node: ModelRun,
    /// The augmented neural ODE on `R^(1 + p)`.
    pub anode: ModelRun,
}

/// Train the NODE and the ANODE with identical settings.
pub fn run(cfg: &Dupont1dConfig) -> Result<Dupont1dResult, ToyError> {
    if cfg.augment == 0 {
        return Err(ToyError::Config("the ANODE needs at least one augmented dimension".into()));
    }
    let (x, y) = data(cfg);
    let node = train(model(cfg, 0)?, &x, &y, cfg.iters, cfg.lr)?;
    let anode = train(model(cfg, cfg.augment)?, &x, &y, cfg.iters, cfg.lr)?;
    Ok(Dupont1dResult { node, anode })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// For any weights (including large ones), the NODE's flow on `R` preserves the order of
        /// its inputs at the final time: the property that makes `g` unrepresentable.
        #[test]
        fn node_flow_on_r_is_monotone(seed in 0u64..1_000_000, scale in 0.1f64..4.0) {
            let cfg = Dupont1dConfig { seed, hidden: 8, tol: 1e-8, ..Default::default() };
            let mut m = model(&cfg, 0).unwrap();
            for p in m.mlp.params.iter_mut() {
                *p *= scale;
            }
            let x: Vec<f64> = (0..25).map(|i| -3.0 + 0.25 * i as f64).collect();
            let (z, _) = m.flow(&x).unwrap();
            for w in z.windows(2) {
                prop_assert!(w[0] < w[1], "order lost: {} >= {}", w[0], w[1]);
            }
        }
    }

    /// After 300 iterations, the ANODE fits `g` (loss below 0.05, far below the NODE's bound of
    /// 1), while the NODE stays at or above about 1 (0.95 leaves room for solver error: the bound
    /// holds for the exact flow, and the training solves use tolerance 1e-3).
    #[test]
    fn anode_fits_what_node_cannot() {
        let r = run(&Dupont1dConfig::default()).unwrap();
        let (n, a) = (r.node.history.final_loss, r.anode.history.final_loss);
        assert!(n >= 0.95, "NODE loss {n} is below the bound 1 of any order-preserving map");
        assert!(a < 0.05, "ANODE loss {a}");
    }
}
