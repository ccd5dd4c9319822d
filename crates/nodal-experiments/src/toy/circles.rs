//! Dupont, Doucet & Teh (2019), sec. 4 and Figure 6: concentric circles in the plane. Points with
//! `||x|| < 0.5` have label `-1`, points with `1 < ||x|| < 1.5` label `+1`; the model is an ODE
//! block followed by a linear layer to a scalar, trained on the mean squared error. A plain NODE
//! (state in `R^2`) must deform the plane continuously without tearing, so it cannot make the
//! classes linearly separable and its flow grows stiff as it tries (more function evaluations); an
//! ANODE (`R^(2 + p)`, zeros appended) can lift the inner disc out of the plane.

use super::ToyError;
use super::model::{HeadKind, ModelConfig, OdeModel};
use super::train::{ModelRun, train};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Settings of the experiment (NODE and ANODE share all of them but `augment`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CirclesConfig {
    /// Adam iterations (full batch).
    pub iters: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Hidden width of both models' dynamics.
    pub hidden: usize,
    /// Augmented dimensions of the ANODE (`p >= 1`).
    pub augment: usize,
    /// Points in the inner disc (label `-1`).
    pub inner: usize,
    /// Points in the outer annulus (label `+1`).
    pub outer: usize,
    /// Solver tolerance (rtol = atol), Dupont et al.'s `1e-3`.
    pub tol: f64,
    /// Seed of data and weights (both models get the same seed).
    pub seed: u64,
}

impl Default for CirclesConfig {
    fn default() -> Self {
        Self { iters: 600, lr: 1e-2, hidden: 32, augment: 1, inner: 300, outer: 600, tol: 1e-3, seed: 0 }
    }
}

/// Inputs `[batch][2]` and labels: radii uniform in `[0, 0.5)` (label `-1`) and `[1, 1.5)`
/// (label `+1`), angles uniform, as in Dupont et al.'s `ConcentricSphere` data set.
pub fn data(cfg: &CirclesConfig) -> (Vec<f64>, Vec<f64>) {
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ 0xc1c1e5);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (n, lo, hi, label) in [(cfg.inner, 0.0, 0.5, -1.0), (cfg.outer, 1.0, 1.5, 1.0)] {
        for _ in 0..n {
            let r: f64 = rng.gen_range(lo..hi);
            let a: f64 = rng.gen_range(0.0..std::f64::consts::TAU);
            x.extend([r * a.cos(), r * a.sin()]);
            y.push(label);
        }
    }
    (x, y)
}

/// A model of the experiment: `augment = 0` for the NODE.
pub fn model(cfg: &CirclesConfig, augment: usize) -> Result<OdeModel, ToyError> {
    OdeModel::new(ModelConfig {
        in_dim: 2,
        augment,
        hidden: cfg.hidden,
        head: HeadKind::Linear,
        rtol: cfg.tol,
        atol: cfg.tol,
        seed: cfg.seed,
    })
}

/// Both trained models.
#[derive(Debug, Clone)]
pub struct CirclesResult {
    /// The neural ODE on `R^2`.
    pub node: ModelRun,
    /// The augmented neural ODE on `R^(2 + p)`.
    pub anode: ModelRun,
}

/// Train the NODE and the ANODE with identical settings.
pub fn run(cfg: &CirclesConfig) -> Result<CirclesResult, ToyError> {
    if cfg.augment == 0 {
        return Err(ToyError::Config("the ANODE needs at least one augmented dimension".into()));
    }
    if cfg.inner == 0 || cfg.outer == 0 {
        return Err(ToyError::Config("need points in both classes".into()));
    }
    let (x, y) = data(cfg);
    let node = train(model(cfg, 0)?, &x, &y, cfg.iters, cfg.lr)?;
    let anode = train(model(cfg, cfg.augment)?, &x, &y, cfg.iters, cfg.lr)?;
    Ok(CirclesResult { node, anode })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lie_in_their_rings() {
        let cfg = CirclesConfig::default();
        let (x, y) = data(&cfg);
        assert_eq!(y.len(), cfg.inner + cfg.outer);
        for (p, l) in x.chunks(2).zip(&y) {
            let r = p[0].hypot(p[1]);
            assert!(if *l < 0.0 { r < 0.5 } else { (1.0..1.5).contains(&r) }, "r {r} label {l}");
        }
    }

    /// With the same seed, iterations and optimiser (a smaller data set, to stay fast), the ANODE ends with a lower loss than the
    /// NODE (Dupont et al., Figure 6 and Table 1 report the same ordering).
    #[test]
    fn anode_beats_node_on_circles() {
        let cfg = CirclesConfig { iters: 150, inner: 64, outer: 128, ..Default::default() };
        let r = run(&cfg).unwrap();
        let (n, a) = (r.node.history.final_loss, r.anode.history.final_loss);
        assert!(a < 0.5 * n, "ANODE loss {a} vs NODE loss {n}");
    }
}
