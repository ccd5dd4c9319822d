//! The latent SDE's pieces on small settings: the data, the context intervals, exact resumption,
//! weights, the prior statistics and that training improves the held-out ELBO.

use super::model::{interval, step_times};
use super::*;
use nodal::module_weights::flat_params;
use nodal::sde::TensorSdeTerms;
use nodal::solve::sde::SdeSteps;

/// A run small enough for a unit test.
fn tiny() -> LatentSdeConfig {
    LatentSdeConfig {
        widths: Widths { latent: 2, context: 4, hidden: 8, diffusion_hidden: 4, activation: Activation::Tanh },
        n_train: 16,
        n_test: 8,
        points: 6,
        batch: 4,
        iters: 4,
        kl_anneal: 2,
        ..LatentSdeConfig::default()
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nodal-latent-sde-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn lorenz_terms_are_the_stated_equations() {
    let s = StochasticLorenz::default();
    let y = Tensor::<2>::from_data(TensorData::new(vec![1.0f64, 2.0, 3.0], [1, 3]), (&Device::flex(), DType::F64));
    let (f, g) = s.drift_diffusion(0.0, y);
    let f = f.into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
    let g = g.into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
    let want = [10.0 * (2.0 - 1.0), 1.0 * (28.0 - 3.0) - 2.0, 1.0 * 2.0 - 8.0 / 3.0 * 3.0];
    for (a, b) in f.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "drift {f:?} vs {want:?}");
    }
    for (a, b) in g.iter().zip([0.15, 0.3, 0.45]) {
        assert!((a - b).abs() < 1e-15, "diffusion {g:?}");
    }
}

#[test]
fn data_are_seeded_and_standardised_with_the_training_statistics() {
    let cfg = tiny();
    let (a, b) = (DataSet::generate(&cfg).unwrap(), DataSet::generate(&cfg).unwrap());
    assert_eq!(a.train.xs, b.train.xs, "one seed, one data set");
    let other = DataSet::generate(&LatentSdeConfig { seed: 1, ..tiny() }).unwrap();
    assert_ne!(a.train.xs, other.train.xs);
    // The clean training values have mean 0 and standard deviation 1 per coordinate (f32).
    for d in 0..OBS_DIM {
        let v: Vec<f64> = a.train.clean.iter().skip(d).step_by(OBS_DIM).map(|&x| x as f64).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(m.abs() < 1e-5 && (sd - 1.0).abs() < 1e-5, "coordinate {d}: mean {m}, std {sd}");
    }
    // Observation noise has the stated size: RMS of (noisy - clean) near 0.01 (288 draws).
    let rms = (a.train.xs.iter().zip(&a.train.clean).map(|(x, c)| ((x - c) as f64).powi(2)).sum::<f64>() / a.train.xs.len() as f64).sqrt();
    assert!((rms - cfg.noise_std).abs() < 0.2 * cfg.noise_std, "noise RMS {rms}");
    // The paths start from N(0, I) in raw units: at t = 0 the z coordinate sits near -mean/std.
    assert!(a.train.ts.len() == cfg.points && (a.train.ts[cfg.points - 1] - 1.0).abs() < 1e-15);
}

#[test]
fn context_intervals_and_step_times() {
    let ts = [0.0, 0.1, 0.2, 0.3];
    assert_eq!(interval(&ts, 0.0), 0);
    assert_eq!(interval(&ts, 0.05), 0);
    assert_eq!(interval(&ts, 0.1 - 1e-14), 1, "within rounding of t_1: the next interval");
    assert_eq!(interval(&ts, 0.25), 2);
    assert_eq!(interval(&ts, 0.3), 3);
    let st = step_times(&ts, 4);
    assert_eq!(st.steps(), 12);
    assert!((st.time(4) - 0.1).abs() < 1e-15 && (st.time(6) - 0.15).abs() < 1e-15 && st.time(12) == 0.3);
}

#[test]
fn marginal_gaps_measure_shifts_and_spreads() {
    let (n, steps) = (4, 2);
    let a: Vec<f32> = (0..n * steps * OBS_DIM).map(|k| (k % 7) as f32).collect();
    assert_eq!(marginal_gaps(&a, &a, n, steps), (0.0, 0.0));
    let shifted: Vec<f32> = a.iter().map(|v| v + 0.5).collect();
    let (m, s) = marginal_gaps(&a, &shifted, n, steps);
    assert!((m - 0.5).abs() < 1e-6 && s.abs() < 1e-6);
    let scaled: Vec<f32> = a.iter().map(|v| 2.0 * v).collect();
    let (_, s) = marginal_gaps(&a, &scaled, n, steps);
    assert!(s > 0.5, "doubling every path doubles the spreads: gap {s}");
}

#[test]
fn a_resumed_run_repeats_the_uninterrupted_one_exactly() {
    let dir = temp_dir("resume");
    let mut straight = LatentSdeTrainer::new(tiny()).unwrap();
    let recs: Vec<IterRecord> = (0..4).map(|_| straight.step().unwrap()).collect();
    let mut first = LatentSdeTrainer::new(tiny()).unwrap();
    first.step().unwrap();
    first.step().unwrap();
    first.save_checkpoint(&dir).unwrap();
    let mut resumed = LatentSdeTrainer::new(tiny()).unwrap();
    assert_eq!(resumed.resume(&dir).unwrap(), 2);
    let r3 = resumed.step().unwrap();
    let r4 = resumed.step().unwrap();
    assert_eq!((r3.loss, r4.loss), (recs[2].loss, recs[3].loss));
    assert_eq!(flat_params(&resumed.net), flat_params(&straight.net));
    // A second checkpoint replaces the first one's files.
    resumed.save_checkpoint(&dir).unwrap();
    assert!(!dir.join("ckpt-2.safetensors").exists() && dir.join("ckpt-4.safetensors").exists());
    // Other settings refuse the checkpoint.
    let mut other = LatentSdeTrainer::new(LatentSdeConfig { lr: 5e-3, ..tiny() }).unwrap();
    assert!(matches!(other.resume(&dir), Err(LatentSdeError::Checkpoint { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn weights_round_trip_and_refuse_other_widths() {
    let dir = temp_dir("weights");
    let mut tr = LatentSdeTrainer::new(tiny()).unwrap();
    tr.step().unwrap();
    let path = dir.join("model.safetensors");
    tr.save_weights(&path).unwrap();
    let back = TrainedModel::load(&path).unwrap();
    assert_eq!(flat_params(&back.net), flat_params(&tr.net));
    assert_eq!(
        (back.cfg.widths, back.cfg.setup, back.cfg.points, back.cfg.seed, back.iters),
        (tr.cfg.widths, tr.cfg.setup, tr.cfg.points, tr.cfg.seed, 1)
    );
    assert_eq!(back.norm, tr.data.norm);
    // The held-out set rebuilt from the metadata is the run's own.
    assert_eq!(back.test_set().unwrap().xs, tr.data.test.xs);
    // Weights of another model kind are refused with the file named.
    let other = dir.join("other.safetensors");
    nodal::module_weights::save_module(&tr.net, "spiral", &other, &[], false).unwrap();
    assert!(matches!(TrainedModel::load(&other), Err(LatentSdeError::File(_))));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn settings_out_of_range_are_refused() {
    let bad = [
        LatentSdeConfig { batch: 17, ..tiny() },
        LatentSdeConfig { points: 1, ..tiny() },
        LatentSdeConfig { noise_std: 0.0, ..tiny() },
        LatentSdeConfig { lr_decay: 1.5, ..tiny() },
        LatentSdeConfig { setup: SolveSetup { scheme: Scheme::ReversibleHeun, substeps: 1 }, ..tiny() },
        LatentSdeConfig { setup: SolveSetup { scheme: Scheme::EulerMaruyama, substeps: 0 }, ..tiny() },
    ];
    for cfg in bad {
        assert!(matches!(LatentSdeTrainer::new(cfg.clone()), Err(LatentSdeError::Config(_))), "{cfg:?}");
    }
}

/// Sixty iterations on a small problem lower the held-out negative ELBO of the untrained
/// networks by a wide margin (it starts near 1.5e4 per series on these 20 x 3 observations).
#[test]
fn training_lowers_the_held_out_negative_elbo() {
    let cfg = LatentSdeConfig {
        widths: Widths { latent: 3, context: 8, hidden: 16, diffusion_hidden: 4, activation: Activation::Softplus },
        n_train: 64,
        n_test: 32,
        points: 20,
        batch: 32,
        iters: 60,
        kl_anneal: 30,
        ..LatentSdeConfig::default()
    };
    let mut tr = LatentSdeTrainer::new(cfg).unwrap();
    let before = tr.evaluate_untrained().unwrap();
    for _ in 0..60 {
        tr.step().unwrap();
    }
    let after = tr.evaluate().unwrap();
    assert!(after.neg_elbo < 0.6 * before.neg_elbo, "held-out -ELBO {} -> {}", before.neg_elbo, after.neg_elbo);
    assert!(after.recon_rmse < before.recon_rmse, "reconstruction RMSE {} -> {}", before.recon_rmse, after.recon_rmse);
}
