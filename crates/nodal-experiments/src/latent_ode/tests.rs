use super::*;

#[test]
fn data_sets_have_the_stated_sampling() {
    for kind in [SeriesKind::Periodic, SeriesKind::Pendulum] {
        let set = data::generate(kind, 200, 0.3, 1).unwrap();
        assert_eq!(set.values.len(), 200 * POINTS);
        let kept = set.mask.iter().sum::<f32>() as f64 / (200 * POINTS) as f64;
        assert!((kept - 0.3).abs() < 0.02, "{kind:?}: {kept}");
        for r in 0..200 {
            assert!(set.mask[r * POINTS..(r + 1) * POINTS].iter().sum::<f32>() >= 2.0);
        }
        // Unobserved values are zero; observed ones are near the clean series.
        let noise = if kind == SeriesKind::Periodic { 0.01 } else { 0.05 };
        let mut resid = 0.0;
        let mut n = 0.0;
        for k in 0..set.values.len() {
            if set.mask[k] == 0.0 {
                assert_eq!(set.values[k], 0.0);
            } else {
                resid += ((set.values[k] - set.clean[k]) as f64).powi(2);
                n += 1.0;
            }
        }
        assert!(((resid / n).sqrt() / noise - 1.0).abs() < 0.1);
    }
    // The pendulum's clean values are sin(theta) of a damped swing: bounded by 1.
    let p = data::generate(SeriesKind::Pendulum, 20, 0.5, 2).unwrap();
    assert!(p.clean.iter().all(|v| v.abs() <= 1.0));
}

#[test]
fn the_latent_ode_learns_and_beats_predicting_zero() {
    for model in [ModelKind::LatentOde, ModelKind::OdeRnn, ModelKind::Gru] {
        let cfg = LatentOdeConfig { model, series: 200, epochs: 6, batch: 40, ..LatentOdeConfig::default() };
        let mut t = LatentOdeTrainer::new(cfg).unwrap();
        let before = t.scores();
        let first = t.epoch().unwrap().loss;
        let mut last = first;
        for _ in 1..6 {
            last = t.epoch().unwrap().loss;
        }
        let after = t.scores();
        assert!(last < first, "{model:?}: loss {first} -> {last}");
        assert!(after.interp_mse < before.interp_mse, "{model:?}: {before:?} -> {after:?}");
    }
}

#[test]
fn a_masked_point_changes_nothing_and_an_observed_one_does() {
    let dev = Device::flex();
    let cfg = LatentOdeConfig::default();
    let net = Net::new(ModelKind::LatentOde, cfg.sizes, 3, &dev);
    let set = data::generate(SeriesKind::Periodic, 10, 0.3, 5).unwrap();
    let pred = |s: &SeriesSet| per_series(net.forward(&make_batch(s, &[0, 1], false, &dev), None, cfg.sizes, &dev).pred, 2);
    let base = pred(&set);
    // Changing an unobserved value leaves the prediction unchanged.
    let mut hidden = set.clone();
    let k = (0..POINTS).find(|&i| set.mask[i] == 0.0).unwrap();
    hidden.values[k] = 3.0;
    assert_eq!(pred(&hidden), base);
    // Changing an observed one does not.
    let mut seen = set.clone();
    let k = (0..POINTS).find(|&i| set.mask[i] == 1.0).unwrap();
    seen.values[k] += 1.0;
    assert_ne!(pred(&seen)[0], base[0]);
    assert_eq!(pred(&seen)[1], base[1], "series are independent");
}
