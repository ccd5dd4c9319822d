//! Helpers shared by the integration tests.

use nodal_solve::mlp::Mlp;

/// Seeded MLP parameters in [-0.75, 0.75) (an LCG: reproducible on every platform).
pub fn weights(dim: usize, hidden: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(2862933555777941757).wrapping_add(3037000493);
    (0..Mlp::<f64>::num_params_for(dim, hidden))
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5) * 1.5
        })
        .collect()
}
