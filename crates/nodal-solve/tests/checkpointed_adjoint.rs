//! The checkpointed continuous adjoint: the same gradients as exact backpropagation where the
//! plain (backsolve) adjoint is right, and still right where reconstructing `y` backwards fails.

mod common;
use common::weights;

use nodal_solve::grad::{AdjointOptions, Backward, GradMethod, Gradients, solve_for_gradients};
use nodal_solve::mlp::Mlp;
use nodal_solve::tableau::{DOPRI5, RK4};
use nodal_solve::{RmsNorm, SolveOptions};

/// Gradients of `L = sum of squares of all outputs` by `method`, and the forward record.
fn grads(
    f: &mut Mlp<f64>,
    y0: &[f64],
    ts: &[f64],
    o: &SolveOptions,
    method: GradMethod,
) -> (Gradients<Vec<f64>, Vec<f64>>, Backward<Vec<f64>>) {
    let (sol, back) = solve_for_gradients(f, &y0.to_vec(), ts, o, &RmsNorm, method).unwrap();
    let ybar: Vec<Vec<f64>> = sol.ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
    let g = back.gradients(f, ts, &sol.ys, &ybar, &AdjointOptions { solve: o.clone(), seminorm: false }, true).unwrap();
    (g, back)
}

/// Largest difference relative to the largest entry of `want`.
fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
    got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max) / scale
}

/// On a smooth, non-dissipative problem, with outputs inside segments, on segment ends and in
/// reverse time, the checkpointed adjoint gives backprop's gradients (y0, parameters, times) to
/// the solve's accuracy, whatever the checkpoint interval (1: one step per segment; 1000: one
/// segment).
#[test]
fn checkpointed_adjoint_agrees_with_backprop_on_a_smooth_problem() {
    let mut f = Mlp::new(2, 16, weights(2, 16, 3)).unwrap();
    let y0 = [0.5, -0.3, 1.5, 0.2];
    let o = SolveOptions::new(&DOPRI5).with_tol(1e-10, 1e-12);
    for ts in [vec![0.0, 0.4, 1.1, 2.0], vec![2.0, 1.3, 0.0]] {
        let (want, _) = grads(&mut f, &y0, &ts, &o, GradMethod::Backprop);
        for m in [1, 3, 1000] {
            let (got, back) = grads(&mut f, &y0, &ts, &o, GradMethod::AdjointCheckpointed(Some(m)));
            let e = [
                rel_err(&got.y0, &want.y0),
                rel_err(&got.params, &want.params),
                rel_err(got.ts.as_ref().unwrap(), want.ts.as_ref().unwrap()),
            ];
            assert!(e.iter().all(|e| *e < 1e-7), "ts {ts:?}, every {m}: errors (y0, params, t) {e:?}");
            let tape = back.tape.unwrap();
            assert!(tape.steps.is_empty() && tape.outputs.is_empty(), "no per-step records");
            assert!(got.stats.nfe > 0 && got.stats.nvjp > 0);
        }
    }
    // Fixed steps: checkpoints every 3 steps of 0.01 fall on the output times 0.03 and 0.6.
    let o = SolveOptions::new(&RK4).with_fixed_step(0.01);
    let ts = [0.0, 0.03, 0.25, 0.6, 1.0];
    let (want, _) = grads(&mut f, &y0, &ts, &o, GradMethod::Backprop);
    let (got, back) = grads(&mut f, &y0, &ts, &o, GradMethod::AdjointCheckpointed(Some(3)));
    let tape = back.tape.unwrap();
    assert_eq!(tape.checkpoints.len(), 34, "100 steps, a checkpoint every 3");
    assert!(
        tape.checkpoint_times.iter().any(|t| (t - 0.03).abs() < 1e-12) && tape.checkpoint_times.iter().any(|t| (t - 0.6).abs() < 1e-12)
    );
    // RK4 at h = 0.01: the continuous and discrete gradients differ by O(h^4).
    let e = [rel_err(&got.y0, &want.y0), rel_err(&got.params, &want.params), rel_err(got.ts.as_ref().unwrap(), want.ts.as_ref().unwrap())];
    assert!(e.iter().all(|e| *e < 1e-7), "fixed steps: errors (y0, params, t) {e:?}");
}

/// The MLP `f(y) = W2 tanh(W1 y + b1) + b2` with `W1 = 0.1 I`, `W2 = diag(-10k, 0, -10k)`,
/// `b2 = (k, 1, 0.7k)`: dimensions 0 and 2 contract at rate about `k`, dimension 1 is neutral.
fn mixed_rate(k: f64) -> Mlp<f64> {
    let (d, h) = (3, 3);
    let mut p = vec![0.0; Mlp::<f64>::num_params_for(d, h)];
    // Flat layout [W1, b1, W2, b2]; b1 stays 0.
    let (w1, w2) = (0, d * h + h);
    let b2 = w2 + h * d;
    for i in 0..3 {
        p[w1 + i * h + i] = 0.1;
    }
    p[w2] = -10.0 * k;
    p[w2 + 2 * d + 2] = -10.0 * k;
    p[b2] = k;
    p[b2 + 1] = 1.0;
    p[b2 + 2] = 0.7 * k;
    Mlp::new(d, h, p).unwrap()
}

/// Where reverse-time reconstruction fails: the backsolve adjoint's gradient error grows with
/// the contraction rate `k` until it is of the order of the gradient itself, while the
/// checkpointed adjoint stays within the tolerance's reach of backprop at every `k`.
#[test]
fn checkpointed_adjoint_stays_right_where_reconstruction_fails() {
    // The four rows of the shared reference problem's y0.
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/reference/grad_vectors_seed0.json");
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
    let y0: Vec<f64> =
        file["problem"]["y0"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap())).collect();
    assert_eq!(y0.len(), 12);
    let ts = [0.0, 1.0];
    let o = SolveOptions::new(&DOPRI5).with_tol(1e-6, 1e-8);
    let (mut backsolve, mut drifts) = (Vec::new(), Vec::new());
    for k in [5.0, 10.0, 20.0, 40.0, 80.0] {
        let mut f = mixed_rate(k);
        let (want, _) = grads(&mut f, &y0, &ts, &o, GradMethod::Backprop);
        let (plain, _) = grads(&mut f, &y0, &ts, &o, GradMethod::Adjoint);
        let (ck, _) = grads(&mut f, &y0, &ts, &o, GradMethod::AdjointCheckpointed(None));
        // The W2 block of the parameter gradient, relative to its largest entry.
        let w2 = 12..21;
        let (e_plain, e_ck) =
            (rel_err(&plain.params[w2.clone()], &want.params[w2.clone()]), rel_err(&ck.params[w2.clone()], &want.params[w2]));
        eprintln!("k {k}: backsolve {e_plain:.2e}, checkpointed {e_ck:.2e}");
        // Continuous and discrete gradients differ by O(tolerance): allow 10 x rtol.
        assert!(e_ck < 1e-5, "k = {k}: checkpointed adjoint off by {e_ck:e}");
        backsolve.push(e_plain);
        drifts.push(plain.reconstruction_error.expect("the backsolve adjoint reports its drift"));
        assert_eq!(ck.reconstruction_error, None, "nothing is reconstructed");
    }
    // The drift the backsolve adjoint reports tracks its failure: tiny while its gradient is
    // right, large once it is not.
    eprintln!("reconstruction drift: {drifts:?}");
    assert!(drifts[0] < 1e-3 && drifts[3] > 1e-2, "{drifts:?}");
    assert!(backsolve.windows(2).all(|w| w[1] > w[0]), "the backsolve error should grow with k: {backsolve:?}");
    assert!(backsolve[3] > 0.1, "at k = 40 reconstruction should have failed: {backsolve:?}");
}
