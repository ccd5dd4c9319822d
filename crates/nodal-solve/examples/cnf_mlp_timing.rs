//! Time one evaluation and one VJP of the fused CNF network at the toy flows' size
//! (widths 3-64-64-64-2, batch 512, exact trace), medians over repeats, with the evaluation
//! memo off (the VJP includes its forward pass); `NODAL_THIN_GEMM=0` compares the packed GEMM:
//! `cargo run --release -p nodal-solve --example cnf_mlp_timing`.

use nodal_solve::cnf_mlp::{CnfMlp, CnfMode};
use nodal_solve::{Dynamics, VjpDynamics};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let widths = [3, 64, 64, 64, 2];
    let n = CnfMlp::<f32>::num_params_for(&widths);
    let params: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1000) as f32 / 1000.0 - 0.5) * 0.3).collect();
    for (name, mode) in [
        ("augmented", CnfMode::Augmented { kinetic: false, jacobian: false }),
        ("augmented+penalties", CnfMode::Augmented { kinetic: true, jacobian: true }),
        ("plain", CnfMode::Plain),
    ] {
        let mut m = CnfMlp::new(&widths, params.clone(), mode).unwrap();
        // No memo: every call evaluates (a solver's new points), and the VJP runs its forward.
        m.set_cache_bytes(0);
        let w = m.row_width();
        let b = 512;
        let y: Vec<f32> = (0..b * w).map(|i| ((i * 31 % 97) as f32 / 97.0 - 0.5) * 4.0).collect();
        let a: Vec<f32> = (0..b * w).map(|i| (i * 17 % 89) as f32 / 89.0 - 0.5).collect();
        let mut dy = vec![0.0; b * w];
        let (mut ay, mut ap) = (vec![0.0; b * w], m.param_zeros());
        let (mut te, mut tv) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let s = Instant::now();
            m.eval(0.3, &y, &mut dy);
            te.push(s.elapsed().as_secs_f64() * 1e6);
            let s = Instant::now();
            m.vjp(0.3, &y, &a, &mut ay, &mut ap);
            tv.push(s.elapsed().as_secs_f64() * 1e6);
        }
        println!("{name:>20}: eval {:.0} us, vjp {:.0} us", median(te), median(tv));
    }
}
