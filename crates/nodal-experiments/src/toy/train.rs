//! Full-batch training of an [`OdeModel`] with Adam ([`FlatOptimizer`]), recording per iteration the loss and the
//! function evaluations (NFE) of the forward solve and of the backward pass.

use super::ToyError;
use super::model::OdeModel;
use crate::flat_optim::FlatOptimizer;

/// What happened during training.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Training loss (MSE) before each update.
    pub loss: Vec<f64>,
    /// Evaluations of `f` by each iteration's forward solve.
    pub nfe_forward: Vec<usize>,
    /// Evaluations plus vector-Jacobian products by each iteration's backward pass.
    pub nfe_backward: Vec<usize>,
    /// Loss after the last update (one more forward solve).
    pub final_loss: f64,
    /// Evaluations of that last forward solve.
    pub final_nfe: usize,
    /// Wall time of training and the final evaluation, seconds.
    pub seconds: f64,
}

impl History {
    /// Median forward NFE per solve over training.
    pub fn median_nfe(&self) -> f64 {
        super::median(&self.nfe_forward.iter().map(|&n| n as f64).collect::<Vec<_>>())
    }
}

/// A trained model and its record.
#[derive(Debug, Clone)]
pub struct ModelRun {
    /// The model after training.
    pub model: OdeModel,
    /// The training record.
    pub history: History,
}

/// Train `model` on the full batch `(x, y)` for `iters` Adam steps of learning rate `lr`.
pub fn train(mut model: OdeModel, x: &[f64], y: &[f64], iters: usize, lr: f64) -> Result<ModelRun, ToyError> {
    let start = std::time::Instant::now();
    let mut opt_mlp = FlatOptimizer::adam(model.mlp.params.len(), lr);
    let mut opt_head = FlatOptimizer::adam(model.head_params().len(), lr);
    let mut h = History::default();
    for _ in 0..iters {
        let g = model.loss_and_grad(x, y)?;
        h.loss.push(g.loss);
        h.nfe_forward.push(g.nfe_forward);
        h.nfe_backward.push(g.nfe_backward);
        opt_mlp.step(&mut model.mlp.params, &g.mlp);
        if !g.head.is_empty() {
            let mut p = model.head_params();
            opt_head.step(&mut p, &g.head);
            model.set_head_params(&p);
        }
    }
    let (z, nfe) = model.flow(x)?;
    let out = model.readout(&z);
    h.final_loss = out.iter().zip(y).map(|(o, t)| (o - t) * (o - t)).sum::<f64>() / y.len().max(1) as f64;
    h.final_nfe = nfe;
    h.seconds = start.elapsed().as_secs_f64();
    Ok(ModelRun { model, history: h })
}
