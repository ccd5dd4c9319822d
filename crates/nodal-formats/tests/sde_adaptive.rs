//! Adaptive Heun on the SDE reference network with a seeded Brownian path: rejected steps
//! re-query the same path consistently (replaying the accepted steps as a fixed list gives the
//! same numbers bit for bit), the error against a fine fixed-step solve on the same path falls
//! with the tolerance, gradients through the accepted steps equal central differences, and a
//! tolerance below reach is a typed error.

use nodal_formats::sde_problem::SdeProblem;
use nodal_solve::sde::{
    AdaptiveOptions, Diffusion, NeuralSde, Scheme, SdeError, SdeGradMethod, SdeGrid, SeededBrownian, StepTimes, sde_gradient, sde_solve,
    sde_solve_adaptive,
};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/sde_vectors_seed0.json");

fn setup() -> (NeuralSde<f64>, SeededBrownian, Vec<f64>) {
    let p = SdeProblem::from_file(std::path::Path::new(FILE)).unwrap();
    let terms = NeuralSde::new(p.dim(), p.hidden(), p.drift_params(), Diffusion::DiagonalSigmoid, p.diffusion_params()).unwrap();
    let path = SeededBrownian::new(5, 0.0, 1.0, p.batch(), p.dim(), 2f64.powi(-14)).unwrap();
    (terms, path, p.flat_y0())
}

#[test]
fn rejections_requery_the_same_path_and_the_accepted_steps_replay_exactly() {
    let (mut terms, mut path, y0) = setup();
    let opts = AdaptiveOptions::new(1e-3, 1e-3, 0.25);
    let sol = sde_solve_adaptive(&mut terms, &mut path, 0.0, &[0.5, 1.0], &y0, &opts).unwrap();
    assert!(sol.rejected > 0, "the first step of 0.25 should be rejected at 1e-3");
    assert_eq!(sol.times.0.len(), sol.accepted + 1);
    assert_eq!(*sol.out_steps.last().unwrap(), sol.accepted);
    assert_eq!(sol.times.0[sol.out_steps[0]], 0.5);
    let replay = sde_solve(&mut terms, &mut path, Scheme::Heun, &sol.times, &y0, &sol.out_steps).unwrap();
    assert_eq!(replay.ys, sol.ys);
}

#[test]
fn error_against_a_fine_solve_on_the_same_path_falls_with_the_tolerance() {
    let (mut terms, mut path, y0) = setup();
    let fine = SdeGrid { t0: 0.0, dt: 2f64.powi(-14), steps: 1 << 14 };
    let reference = sde_solve(&mut terms, &mut path, Scheme::Heun, &fine, &y0, &[1 << 14]).unwrap().ys.remove(0);
    let mut last = (f64::INFINITY, 0);
    let mut first = None;
    for tol in [1e-2, 1e-3, 1e-4] {
        let sol = sde_solve_adaptive(&mut terms, &mut path, 0.0, &[1.0], &y0, &AdaptiveOptions::new(tol, tol, 0.1)).unwrap();
        let err = sol.ys[0].iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        println!("rtol = atol = {tol:e}: {} accepted, {} rejected, max error {err:.3e}", sol.accepted, sol.rejected);
        assert!(
            err < last.0 && sol.accepted > last.1,
            "tolerance {tol}: error {err} after {}, steps {} after {}",
            last.0,
            sol.accepted,
            last.1
        );
        last = (err, sol.accepted);
        first.get_or_insert(err);
    }
    // Heun is strong order 1/2 on this non-commutative noise (error ~ h^(1/2)): two decades of
    // tolerance buy a factor of about 7 (a factor of 5 is required).
    assert!(last.0 < first.unwrap() / 5.0, "error at 1e-4 {} against {} at 1e-2", last.0, first.unwrap());
}

#[test]
fn gradients_through_the_accepted_steps_equal_central_differences() {
    let (mut terms, mut path, y0) = setup();
    let sol = sde_solve_adaptive(&mut terms, &mut path, 0.0, &[0.5, 1.0], &y0, &AdaptiveOptions::new(1e-3, 1e-3, 0.1)).unwrap();
    let g =
        sde_gradient(&mut terms, &mut path, Scheme::Heun, &sol.times, &y0, &sol.out_steps, SdeGradMethod::Backprop, 1 << 30, &mut |ys| {
            ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect()
        })
        .unwrap();
    let mut loss = |y: &[f64], times: &StepTimes| -> f64 {
        sde_solve(&mut terms, &mut path, Scheme::Heun, times, y, &sol.out_steps).unwrap().ys.iter().flatten().map(|v| v * v).sum()
    };
    let eps = 1e-6;
    for i in 0..y0.len() {
        let (mut up, mut down) = (y0.clone(), y0.clone());
        up[i] += eps;
        down[i] -= eps;
        let fd = (loss(&up, &sol.times) - loss(&down, &sol.times)) / (2.0 * eps);
        assert!((fd - g.y0[i]).abs() < 1e-6 * fd.abs().max(1.0), "dL/dy0[{i}]: {} vs central difference {fd}", g.y0[i]);
    }
}

#[test]
fn an_unreachable_tolerance_is_a_typed_error() {
    let (mut terms, mut path, y0) = setup();
    let opts = AdaptiveOptions { h_min: 1e-4, ..AdaptiveOptions::new(1e-14, 1e-14, 0.1) };
    let e = sde_solve_adaptive(&mut terms, &mut path, 0.0, &[1.0], &y0, &opts).unwrap_err();
    assert!(matches!(e, SdeError::StepSizeUnderflow { .. }), "{e}");
    assert!(e.to_string().contains("below the minimum"));
    let e = sde_solve_adaptive(&mut terms, &mut path, 0.0, &[1.0, 0.5], &y0, &AdaptiveOptions::new(1e-3, 1e-3, 0.1)).unwrap_err();
    assert!(matches!(e, SdeError::InvalidArgument(_)), "{e}");
}
