//! Regularised against plain training on Dupont et al.'s concentric circles (Finlay et al. 2020,
//! "How to train your neural ODE"; Kelly et al. 2020, "Learning differential equations that are
//! easy to solve"): the same model, data, seed and optimiser, trained once without a penalty and
//! once with each penalty of [`nodal_solve::regularise`], compared on loss, accuracy and the
//! function evaluations a solve of the learned dynamics needs.
//!
//! A classification task leaves the flow under-determined (many flows separate the classes), which
//! is where the penalties can pick a cheap one; on the spiral the data pin the dynamics down.

use super::ToyError;
use super::circles::{self, CirclesConfig};
use super::train::{History, train};
use nodal_solve::regularise::Penalty;

/// One configuration's outcome.
#[derive(Debug, Clone)]
pub struct RegularisedRun {
    /// `none`, or the penalty's name.
    pub name: String,
    /// The penalties and weights used.
    pub penalties: Vec<(Penalty, f64)>,
    /// Training record (loss is the MSE alone; forward NFE per iteration).
    pub history: History,
    /// Fraction of points on the right side of the decision threshold after training.
    pub accuracy: f64,
    /// Evaluations of one forward solve of the trained model over all points at each test
    /// tolerance (rtol = atol), in the order given.
    pub test_nfe: Vec<(f64, usize)>,
}

/// Train the circles model (`augment` extra dimensions, 0 = NODE) once per entry of `settings`
/// (each a name and its penalties; an empty list is the plain model) and measure each.
pub fn run(
    cfg: &CirclesConfig,
    augment: usize,
    settings: &[(String, Vec<(Penalty, f64)>)],
    test_tols: &[f64],
) -> Result<Vec<RegularisedRun>, ToyError> {
    let (x, y) = circles::data(cfg);
    let mut out = Vec::new();
    for (name, pens) in settings {
        let mut m = circles::model(cfg, augment)?;
        m.penalties = pens.clone();
        let r = train(m, &x, &y, cfg.iters, cfg.lr)?;
        let mut model = r.model;
        let pred = model.predict(&x)?;
        let accuracy = pred.iter().zip(&y).filter(|(p, t)| p.signum() == t.signum()).count() as f64 / y.len().max(1) as f64;
        let mut test_nfe = Vec::new();
        for &tol in test_tols {
            test_nfe.push((tol, model.flow_nfe_at(&x, tol)?));
        }
        out.push(RegularisedRun { name: name.clone(), penalties: pens.clone(), history: r.history, accuracy, test_nfe });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strong kinetic penalty gives a flow that is cheaper to solve at a tight tolerance while
    /// still separating the classes (small configuration to stay fast; the full comparison is
    /// `nodal regularise`).
    #[test]
    fn kinetic_penalty_cuts_evaluations_on_circles() {
        let cfg = CirclesConfig { iters: 150, inner: 64, outer: 128, ..CirclesConfig::default() };
        let settings = vec![("none".to_string(), vec![]), ("kinetic".to_string(), vec![(Penalty::Kinetic, 0.5)])];
        let r = run(&cfg, 0, &settings, &[1e-7]).unwrap();
        let (plain, reg) = (&r[0], &r[1]);
        eprintln!("plain {:?} {}, kinetic {:?} {}", plain.test_nfe, plain.accuracy, reg.test_nfe, reg.accuracy);
        assert!(reg.test_nfe[0].1 < plain.test_nfe[0].1, "kinetic {:?} vs plain {:?}", reg.test_nfe, plain.test_nfe);
        assert!(reg.accuracy >= 0.9, "the regularised model still classifies: {}", reg.accuracy);
    }
}
