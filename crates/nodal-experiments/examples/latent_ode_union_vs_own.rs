//! Union grid with masks against each series on its own times: the latent ODE encoder's
//! forward and backward pass over one batch of 50 periodic series, timed both ways.
//!
//! `cargo run --release -p nodal-experiments --example latent_ode_union_vs_own [-- KEEP REPEATS]`

use burn::tensor::{Device, Tensor};
use nodal_experiments::latent_ode::{Sizes, data, make_batch, model::LatentOde};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let keep: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.3);
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let dev = Device::flex().autodiff();
    let sizes = Sizes::default();
    let model = LatentOde::new(sizes, &dev);
    let set = data::generate(data::SeriesKind::Periodic, 50, keep, 0).expect("data");
    let idx: Vec<usize> = (0..50).collect();
    let h_max = set.ts[1] - set.ts[0];
    let (mut union, mut own) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let start = Instant::now();
        let b = make_batch(&set, &idx, false, &dev);
        let h = model.encoder.encode_backwards(&b, sizes.hidden, &dev);
        let _ = h.sum().backward();
        union.push(start.elapsed().as_secs_f64());

        let start = Instant::now();
        let mut total: Option<Tensor<1>> = None;
        for r in 0..50 {
            let obs: Vec<(f64, f32)> = (0..data::POINTS)
                .filter(|&i| set.mask[r * data::POINTS + i] > 0.0)
                .map(|i| (set.ts[i], set.values[r * data::POINTS + i]))
                .collect();
            let h = model.encoder.encode_own_times(&obs, set.ts[0], h_max, sizes.hidden, &dev).sum();
            total = Some(match total {
                Some(t) => t + h,
                None => h,
            });
        }
        let _ = total.expect("50 series").backward();
        own.push(start.elapsed().as_secs_f64());
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (u, o) = (med(&mut union), med(&mut own));
    println!(
        "{{\"keep\": {keep}, \"union_grid_ms\": {:.2}, \"own_times_ms\": {:.2}, \"own_over_union\": {:.2}, \"repeats\": {repeats}}}",
        u * 1e3,
        o * 1e3,
        o / u
    );
}
