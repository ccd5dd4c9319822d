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

/// Data-parallel training on 2 and 3 ranks (threads) follows the single process: every rank
/// holds the same weights after each step, and the losses and weights stay within the solver's
/// tolerance of one process's. Each shard is its own adaptive solve, so its steps may differ:
/// an error of order `tol` = 1e-5 relative in each gradient, not round-off, which after 5 Adam
/// steps of lr 1e-3 bounds the weights' difference well below 1e-3 of the distance travelled
/// (seen: 3e-8 against 5e-3 travelled).
#[test]
fn data_parallel_ranks_follow_the_single_process() {
    let mut cfg = CnfConfig::new(Toy::Moons);
    cfg.batch = 64;
    cfg.trace = Trace::hutchinson();
    cfg.kinetic = 0.1;
    cfg.jacobian = 0.1;
    let steps = 5;
    let run = |ranks: usize| -> Vec<(Vec<f64>, Vec<f32>)> {
        let hs: Vec<_> = nodal_distributed::LocalGroup::new(ranks)
            .into_iter()
            .map(|c| {
                let cfg = cfg.clone();
                std::thread::spawn(move || {
                    let mut t = CnfTrainer::new(cfg).with_communicator(Arc::new(c)).unwrap();
                    let losses = (0..steps).map(|_| t.step().unwrap().loss).collect();
                    (losses, t.params())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    };
    let one = run(1);
    let (l1, p1) = &one[0];
    let p0 = init_params(&TOY_WIDTHS, cfg.seed);
    let travelled = p1.iter().zip(&p0).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    for ranks in [2, 3] {
        let runs = run(ranks);
        for (losses, p) in &runs {
            assert!(p == &runs[0].1, "{ranks} ranks hold different weights");
            for (a, b) in losses.iter().zip(l1) {
                assert!((a - b).abs() < 1e-4 * b.abs(), "{ranks} ranks: loss {a} vs {b}");
            }
            let d = p.iter().zip(p1).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            eprintln!("{ranks} ranks: weights within {d} of one process (travelled {travelled})");
            assert!(d < 1e-3 * travelled, "{ranks} ranks: weights differ by {d}, travelled {travelled}");
        }
    }
}
