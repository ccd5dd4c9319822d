//! The neural ODE of the toy experiments: inputs `x` in `R^n` are lifted to `[x, 0, ..., 0]` in
//! `R^(n + p)` (`p = 0`: a plain neural ODE, NODE; `p > 0`: an augmented neural ODE, ANODE,
//! Dupont, Doucet & Teh 2019), flowed by `dz/dt = f(z)` from `t = 0` to `t = 1` with dopri5 and
//! `f` the fused two-layer MLP of [`nodal_solve::mlp`], and read out by a [`Head`]. The loss is
//! the mean squared error; gradients are exact for the discrete solve (backpropagation through
//! the solver's recorded steps, [`nodal_solve::grad::backprop_tape`]).

use super::ToyError;
use nodal_solve::grad::{AdjointOptions, GradMethod, solve_for_gradients};
use nodal_solve::mlp::Mlp;
use nodal_solve::regularise::{Penalty, Regularised};
use nodal_solve::tableau::DOPRI5;
use nodal_solve::{RmsNorm, SolveOptions, solve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the final state `z(1)` becomes the scalar output.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// The first coordinate of `z(1)` itself, no trainable map (so a 1-D NODE cannot "cheat"
    /// by flipping the sign after the flow).
    First,
    /// A trainable linear map `w . z(1) + b` (Dupont et al.'s `ODENet` output layer).
    Linear {
        /// Weights, one per state coordinate.
        w: Vec<f64>,
        /// Bias.
        b: f64,
    },
}

/// Which [`Head`] to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// [`Head::First`].
    First,
    /// [`Head::Linear`], initialised like PyTorch's `Linear`.
    Linear,
}

/// Sizes, tolerances and seed of an [`OdeModel`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    /// Input width `n`.
    pub in_dim: usize,
    /// Augmented (zero-initialised) dimensions `p`; 0 for a plain NODE.
    pub augment: usize,
    /// Hidden width of the MLP dynamics.
    pub hidden: usize,
    /// Output map.
    pub head: HeadKind,
    /// Relative tolerance of the dopri5 solves.
    pub rtol: f64,
    /// Absolute tolerance of the dopri5 solves.
    pub atol: f64,
    /// Seed of the initial weights.
    pub seed: u64,
}

/// A (possibly augmented) neural ODE with a scalar output. See the module docs.
#[derive(Debug, Clone)]
pub struct OdeModel {
    /// The dynamics `f(z) = W2 tanh(W1 z + b1) + b2` on `R^(n + p)`.
    pub mlp: Mlp<f64>,
    /// The output map.
    pub head: Head,
    /// Penalties added to the training loss with their weights (`loss = MSE + Σ λ r`,
    /// [`nodal_solve::regularise`]); empty by default.
    pub penalties: Vec<(Penalty, f64)>,
    cfg: ModelConfig,
    /// Calls of [`OdeModel::loss_and_grad`] so far (fresh Hutchinson probes each call).
    calls: u64,
}

/// The loss of one batch and its gradient.
#[derive(Debug, Clone)]
pub struct LossGrad {
    /// Mean squared error over the batch.
    pub loss: f64,
    /// Gradient with respect to the MLP's flat parameters.
    pub mlp: Vec<f64>,
    /// Gradient with respect to the head's parameters (`[w, b]`; empty for [`Head::First`]).
    pub head: Vec<f64>,
    /// Evaluations of `f` by the forward solve.
    pub nfe_forward: usize,
    /// Evaluations of `f` plus vector-Jacobian products by the backward pass.
    pub nfe_backward: usize,
    /// Values of [`OdeModel::penalties`] (unweighted integrals over `[0, 1]`).
    pub penalties: Vec<f64>,
}

/// PyTorch's `Linear` initialisation: uniform in `+-1/sqrt(fan_in)` for weights and biases.
pub(crate) fn uniform(rng: &mut StdRng, n: usize, fan_in: usize) -> impl Iterator<Item = f64> + '_ {
    let k = 1.0 / (fan_in as f64).sqrt();
    (0..n).map(move |_| rng.gen_range(-k..k))
}

/// A [`Mlp`] of the given widths with PyTorch-style initial weights.
pub(crate) fn init_mlp(rng: &mut StdRng, dim: usize, hidden: usize) -> Mlp<f64> {
    let mut p = Vec::with_capacity(Mlp::<f64>::num_params_for(dim, hidden));
    p.extend(uniform(rng, hidden * dim + hidden, dim));
    p.extend(uniform(rng, dim * hidden + dim, hidden));
    let mut mlp = Mlp::new(dim, hidden, p).expect("parameter count matches by construction");
    mlp.set_threads(1); // toy batches are small: no threading
    mlp
}

/// `head` applied to final states `[batch][d]`.
fn readout(head: &Head, d: usize, z: &[f64]) -> Vec<f64> {
    match head {
        Head::First => z.chunks(d).map(|r| r[0]).collect(),
        Head::Linear { w, b } => z.chunks(d).map(|r| b + r.iter().zip(w).map(|(a, c)| a * c).sum::<f64>()).collect(),
    }
}

impl OdeModel {
    /// A freshly initialised model.
    pub fn new(cfg: ModelConfig) -> Result<Self, ToyError> {
        if cfg.in_dim == 0 || cfg.hidden == 0 {
            return Err(ToyError::Config(format!("need in_dim >= 1 and hidden >= 1, got {} and {}", cfg.in_dim, cfg.hidden)));
        }
        if cfg.augment > 64 {
            return Err(ToyError::Config(format!("augment = {} is more than the 64 dimensions these toys allow", cfg.augment)));
        }
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let d = cfg.in_dim + cfg.augment;
        let mlp = init_mlp(&mut rng, d, cfg.hidden);
        let head = match cfg.head {
            HeadKind::First => Head::First,
            HeadKind::Linear => Head::Linear { w: uniform(&mut rng, d, d).collect(), b: 0.0 },
        };
        Ok(Self { mlp, head, penalties: Vec::new(), cfg, calls: 0 })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// State width `n + p`.
    pub fn state_dim(&self) -> usize {
        self.cfg.in_dim + self.cfg.augment
    }

    /// Options of every solve: dopri5 at the configured tolerances.
    pub fn options(&self) -> SolveOptions {
        SolveOptions::new(&DOPRI5).with_tol(self.cfg.rtol, self.cfg.atol).with_max_steps(20_000)
    }

    /// Lift a row-major batch `[batch][n]` to `[batch][n + p]` by appending zeros.
    pub fn lift(&self, x: &[f64]) -> Vec<f64> {
        let (n, d) = (self.cfg.in_dim, self.state_dim());
        x.chunks(n).flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(0.0, d - n))).collect()
    }

    /// The final states `z(1)` (`[batch][n + p]`) of a batch of inputs and the evaluations used.
    pub fn flow(&mut self, x: &[f64]) -> Result<(Vec<f64>, usize), ToyError> {
        let z0 = self.lift(x);
        let opts = self.options();
        let sol = solve(&mut self.mlp, &z0, &[0.0, 1.0], &opts, &RmsNorm).map_err(|f| ToyError::Solve(f.error))?;
        let nfe = sol.stats.nfe;
        let z1 = sol.ys.into_iter().nth(1).expect("two output times give two states");
        Ok((z1, nfe))
    }

    /// The states at every time of `ts` (starting at 0): `[time][batch * (n + p)]`, solved at
    /// the model's own tolerances.
    pub fn trajectories(&mut self, x: &[f64], ts: &[f64]) -> Result<Vec<Vec<f64>>, ToyError> {
        let opts = self.options();
        self.trajectories_with(x, ts, &opts)
    }

    /// Evaluations one solve of the batch `x` over `[0, 1]` needs at rtol = atol = `tol` (no
    /// penalties integrated: the cost of using the learned dynamics).
    pub fn flow_nfe_at(&mut self, x: &[f64], tol: f64) -> Result<usize, ToyError> {
        let z0 = self.lift(x);
        let opts = SolveOptions::new(&DOPRI5).with_tol(tol, tol).with_max_steps(200_000);
        Ok(solve(&mut self.mlp, &z0, &[0.0, 1.0], &opts, &RmsNorm).map_err(|f| ToyError::Solve(f.error))?.stats.nfe)
    }

    /// [`OdeModel::trajectories`] solved to `tol` (rtol = atol) instead: for figures and order
    /// checks that should show the exact flow of the learned field rather than a loose solve's
    /// error (at tolerance 1e-3 two inputs 1e-3 apart may swap places numerically).
    pub fn trajectories_at(&mut self, x: &[f64], ts: &[f64], tol: f64) -> Result<Vec<Vec<f64>>, ToyError> {
        let opts = SolveOptions::new(&DOPRI5).with_tol(tol, tol).with_max_steps(200_000);
        self.trajectories_with(x, ts, &opts)
    }

    fn trajectories_with(&mut self, x: &[f64], ts: &[f64], opts: &SolveOptions) -> Result<Vec<Vec<f64>>, ToyError> {
        let z0 = self.lift(x);
        Ok(solve(&mut self.mlp, &z0, ts, opts, &RmsNorm).map_err(|f| ToyError::Solve(f.error))?.ys)
    }

    /// The head applied to final states `[batch][n + p]`.
    pub fn readout(&self, z: &[f64]) -> Vec<f64> {
        readout(&self.head, self.state_dim(), z)
    }

    /// Outputs of a batch of inputs.
    pub fn predict(&mut self, x: &[f64]) -> Result<Vec<f64>, ToyError> {
        let (z, _) = self.flow(x)?;
        Ok(self.readout(&z))
    }

    /// Mean squared error on `(x, y)` and its exact gradient (for the discrete dopri5 solve).
    pub fn loss_and_grad(&mut self, x: &[f64], y: &[f64]) -> Result<LossGrad, ToyError> {
        let d = self.state_dim();
        if x.len() != y.len() * self.cfg.in_dim || y.is_empty() {
            return Err(ToyError::Config(format!("{} inputs of width {} do not match {} targets", x.len(), self.cfg.in_dim, y.len())));
        }
        let z0 = self.lift(x);
        let opts = self.options();
        let ts = [0.0, 1.0];
        let pens: Vec<Penalty> = self.penalties.iter().map(|p| p.0).collect();
        let weights: Vec<f64> = self.penalties.iter().map(|p| p.1).collect();
        self.calls += 1;
        let seed = self.cfg.seed.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(self.calls);
        let mut f = Regularised::new(&mut self.mlp, d, &pens, seed).map_err(|e| ToyError::Config(e.to_string()))?;
        let z0 = f.augment(&z0);
        let (sol, backward) =
            solve_for_gradients(&mut f, &z0, &ts, &opts, &RmsNorm, GradMethod::Backprop).map_err(|f| ToyError::Solve(f.error))?;
        let penalties = f.values(&sol.ys[1]);
        let nz = sol.ys[1].len() - pens.len();
        let z1 = &sol.ys[1][..nz];
        let out = readout(&self.head, d, z1);
        let n = y.len() as f64;
        let mut loss = 0.0;
        let dout: Vec<f64> = out
            .iter()
            .zip(y)
            .map(|(o, t)| {
                loss += (o - t) * (o - t);
                2.0 * (o - t) / n
            })
            .collect();
        loss /= n;
        let mut zbar = vec![0.0; z1.len()];
        let head_out = &self.head;
        let mut head = Vec::new();
        match head_out {
            Head::First => {
                for (i, g) in dout.iter().enumerate() {
                    zbar[i * d] = *g;
                }
            }
            Head::Linear { w, .. } => {
                head = vec![0.0; d + 1];
                for (i, g) in dout.iter().enumerate() {
                    for j in 0..d {
                        zbar[i * d + j] = g * w[j];
                        head[j] += g * z1[i * d + j];
                    }
                    head[d] += g;
                }
            }
        }
        zbar.extend(&weights);
        let ybar = vec![vec![0.0; zbar.len()], zbar];
        let no_adjoint = AdjointOptions { solve: opts.clone(), seminorm: false };
        let g = backward.gradients(&mut f, &ts, &sol.ys, &ybar, &no_adjoint, false).map_err(ToyError::Solve)?;
        Ok(LossGrad { loss, mlp: g.params, head, nfe_forward: sol.stats.nfe, nfe_backward: g.stats.nfe + g.stats.nvjp, penalties })
    }

    /// A copy of the head's parameters as `[w, b]` (empty for [`Head::First`]); write them back
    /// with [`OdeModel::set_head_params`].
    pub fn head_params(&self) -> Vec<f64> {
        match &self.head {
            Head::First => Vec::new(),
            Head::Linear { w, b } => w.iter().copied().chain([*b]).collect(),
        }
    }

    /// Set the head's parameters from `[w, b]` (ignored for [`Head::First`]).
    pub fn set_head_params(&mut self, p: &[f64]) {
        if let Head::Linear { w, b } = &mut self.head {
            let d = w.len();
            if p.len() == d + 1 {
                w.copy_from_slice(&p[..d]);
                *b = p[d];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(head: HeadKind, augment: usize) -> OdeModel {
        OdeModel::new(ModelConfig { in_dim: 2, augment, hidden: 3, head, rtol: 1e-11, atol: 1e-11, seed: 7 }).unwrap()
    }

    /// The gradient used in training matches central finite differences of the loss for every
    /// parameter of a tiny augmented model with a linear head (tight tolerances, so that both are
    /// close to the exact gradient of the flow).
    #[test]
    fn gradient_matches_central_differences() {
        for (head, aug) in [(HeadKind::Linear, 1), (HeadKind::First, 0)] {
            let mut m = tiny(head, aug);
            let x = [0.3, -0.7, 1.1, 0.4, -0.2, -0.9];
            let y = [1.0, -1.0, 0.5];
            let g = m.loss_and_grad(&x, &y).unwrap();
            let eps = 1e-6;
            for i in 0..m.mlp.params.len() {
                let (mut mp, mut mm) = (m.clone(), m.clone());
                mp.mlp.params[i] += eps;
                mm.mlp.params[i] -= eps;
                let fd = (mp.loss_and_grad(&x, &y).unwrap().loss - mm.loss_and_grad(&x, &y).unwrap().loss) / (2.0 * eps);
                assert!((fd - g.mlp[i]).abs() < 1e-5 * (1.0 + fd.abs()), "mlp param {i}: fd {fd} vs {}", g.mlp[i]);
            }
            let hp = m.head_params();
            for i in 0..hp.len() {
                let (mut mp, mut mm) = (m.clone(), m.clone());
                let (mut a, mut b) = (hp.clone(), hp.clone());
                a[i] += eps;
                b[i] -= eps;
                mp.set_head_params(&a);
                mm.set_head_params(&b);
                let fd = (mp.loss_and_grad(&x, &y).unwrap().loss - mm.loss_and_grad(&x, &y).unwrap().loss) / (2.0 * eps);
                assert!((fd - g.head[i]).abs() < 1e-6 * (1.0 + fd.abs()), "head param {i}: fd {fd} vs {}", g.head[i]);
            }
        }
    }

    #[test]
    fn lift_appends_zeros_and_bad_shapes_are_errors() {
        let mut m = tiny(HeadKind::Linear, 2);
        assert_eq!(m.lift(&[1.0, 2.0, 3.0, 4.0]), vec![1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0]);
        assert!(matches!(m.loss_and_grad(&[1.0, 2.0, 3.0], &[1.0]), Err(ToyError::Config(_))));
        assert!(OdeModel::new(ModelConfig { in_dim: 0, ..*m.config() }).is_err());
    }
}
