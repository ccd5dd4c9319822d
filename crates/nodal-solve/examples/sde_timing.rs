//! Per-call timings of the fused neural SDE at the benchmark sizes (no JSON files needed:
//! seeded weights of the benchmark shapes): 1000 steps of dt = 2^-10, float32.
//!
//! `cargo run --release -p nodal-solve --example sde_timing -- [dim] [hidden] [batch] [scheme]`

use nodal_solve::sde::{
    BrownianPath, Diffusion, NeuralSde, Scheme, SdeGradMethod, SdeGrid, SdeSteps, SeededBrownian, sde_gradient, sde_solve,
};
use std::time::Instant;

fn seeded(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (((s >> 11) as f64 / (1u64 << 53) as f64) as f32 - 0.5) * scale
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dim: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(64);
    let hidden: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let batch: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let scheme = Scheme::by_name(args.get(4).map(String::as_str).unwrap_or("euler_maruyama")).expect("scheme");
    let np = 2 * hidden * dim + hidden + dim;
    let drift = seeded(np, 1, 2.0 / (dim as f32).sqrt());
    let diff = seeded(dim * dim + dim, 2, 2.0 / (dim as f32).sqrt());
    let mut terms = NeuralSde::new(dim, hidden, drift, Diffusion::DiagonalSigmoid, diff).unwrap();
    let y0 = seeded(batch * dim, 3, 2.0);
    let grid = SdeGrid { t0: 0.0, dt: 2f64.powi(-10), steps: 1000 };
    let time = |f: &mut dyn FnMut()| {
        let mut v: Vec<f64> = (0..5)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[2]
    };
    let mut seed = 0;
    use nodal_solve::sde::SdeTerms;
    let mut out = vec![0.0f32; batch * dim];
    let t_drift = time(&mut || {
        for _ in 0..1000 {
            terms.drift(0.0, &y0, &mut out);
        }
    });
    let w = y0.clone();
    let t_diff = time(&mut || {
        for _ in 0..1000 {
            terms.diffusion_times(0.0, &y0, &w, &mut out);
        }
    });
    println!("1000 drift evaluations {t_drift:.2} ms, 1000 diffusion products {t_diff:.2} ms");
    let t_path = time(&mut || {
        seed += 1;
        let mut p = SeededBrownian::new(seed, 0.0, grid.t1(), batch, dim, grid.dt).unwrap();
        let mut w = vec![0.0f32; batch * dim];
        for k in 0..1000 {
            p.increment(grid.time(k), grid.time(k + 1), &mut w).unwrap();
        }
    });
    let t_solve = time(&mut || {
        seed += 1;
        let mut p = SeededBrownian::new(seed, 0.0, grid.t1(), batch, dim, grid.dt).unwrap();
        sde_solve(&mut terms, &mut p, scheme, &grid, &y0, &[1000]).unwrap();
    });
    let mut grad = |method| {
        time(&mut || {
            seed += 1;
            let mut p = SeededBrownian::new(seed, 0.0, grid.t1(), batch, dim, grid.dt).unwrap();
            let mut cot = |ys: &[Vec<f32>]| ys.iter().map(|y| y.iter().map(|v| 2.0 * v).collect()).collect();
            sde_gradient(&mut terms, &mut p, scheme, &grid, &y0, &[1000], method, 1 << 33, &mut cot).unwrap();
        })
    };
    let t_direct = grad(SdeGradMethod::Backprop);
    let t_adjoint = grad(SdeGradMethod::ContinuousAdjoint);
    println!(
        "{} dim {dim} hidden {hidden} batch {batch}: path alone {t_path:.2} ms, solve {t_solve:.2} ms, backprop {t_direct:.2} ms, continuous adjoint {t_adjoint:.2} ms",
        scheme.name()
    );
}
