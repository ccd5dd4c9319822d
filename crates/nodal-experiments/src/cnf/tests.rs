//! The two engines agree, and a short run learns.

use super::*;

/// The fused network and the burn module with JVP layers: same `log p`, same first update.
#[test]
fn fused_and_module_engines_agree() {
    for trace in [Trace::Exact, Trace::hutchinson()] {
        let mut cfg = CnfConfig::new(Toy::Moons);
        cfg.batch = 64;
        cfg.trace = trace;
        cfg.kinetic = 0.1;
        cfg.jacobian = 0.1;
        let x = cfg.data.sample(50, 3);
        let (mut fused, mut module) = (cfg.clone(), cfg.clone());
        fused.engine = Engine::Fused;
        module.engine = Engine::Module;
        let p = init_params(&TOY_WIDTHS, 1);
        let (a, _) = log_prob(&fused, &p, &x).unwrap();
        let (b, _) = log_prob(&module, &p, &x).unwrap();
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-4, "log p: fused {u} vs module {v}");
        }
        let mut tf = CnfTrainer::with_params(fused, p.clone());
        let mut tm = CnfTrainer::with_params(module, p.clone());
        let (rf, rm) = (tf.step().unwrap(), tm.step().unwrap());
        assert!((rf.loss - rm.loss).abs() < 1e-4 * rf.loss.abs(), "{trace:?}: loss {} vs {}", rf.loss, rm.loss);
        assert_eq!(rf.nfe_forward, rm.nfe_forward, "same steps");
        // Adam's first step moves every parameter by ~lr * sign(g): compare the moves.
        let (pf, pm) = (tf.params(), tm.params());
        let mut worst = 0.0f64;
        for ((a, b), p0) in pf.iter().zip(&pm).zip(&p) {
            worst = worst.max(((a - p0) - (b - p0)).abs() as f64);
        }
        assert!(worst < 2e-4, "{trace:?}: first updates differ by up to {worst} (lr 1e-3)");
    }
}

/// Thirty iterations on 8gaussians lower the held-out NLL.
#[test]
fn a_short_run_learns() {
    let mut cfg = CnfConfig::new(Toy::EightGaussians);
    cfg.batch = 256;
    let mut t = CnfTrainer::new(cfg);
    let test = Toy::EightGaussians.sample(2000, 1000);
    let before = -t.log_prob(&test).unwrap().0.iter().sum::<f64>() / 2000.0;
    for _ in 0..30 {
        t.step().unwrap();
    }
    let after = -t.log_prob(&test).unwrap().0.iter().sum::<f64>() / 2000.0;
    assert!(after < before - 0.1, "test NLL {before} -> {after}");
    let s = t.sample(100, 5).unwrap();
    assert!(s.iter().all(|v| v.is_finite()) && s.len() == 200);
}
