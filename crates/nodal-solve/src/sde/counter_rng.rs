//! Counter-based random numbers: Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers:
//! as easy as 1, 2, 3") and standard normals by the ziggurat method (Marsaglia and Tsang 2000).
//!
//! A counter-based generator is a keyed bijection of a 128-bit counter: the same (key, counter)
//! always gives the same bits, no state is carried between draws, and any draw can be made
//! first. That is what a Brownian path queried in any order needs (see [`super::brownian`]).
//! Philox4x32 with ten rounds passes the BigCrush battery for every key (the paper's Table 2).

/// Philox multipliers and Weyl key increments (the published constants).
const M0: u64 = 0xD251_1F53;
const M1: u64 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Philox4x32 with ten rounds: four 32-bit words out for a 128-bit `counter` under a 64-bit key.
#[inline]
pub fn philox4x32(counter: [u32; 4], key: u64) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let (mut k0, mut k1) = (key as u32, (key >> 32) as u32);
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = M0 * c0 as u64;
        let p1 = M1 * c2 as u64;
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        let n0 = hi1 ^ c1 ^ k0;
        let n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    [c0, c1, c2, c3]
}

/// Two 64-bit words from one Philox call.
#[inline]
fn two_words(counter: [u32; 4], key: u64) -> [u64; 2] {
    let w = philox4x32(counter, key);
    [(w[0] as u64) | ((w[1] as u64) << 32), (w[2] as u64) | ((w[3] as u64) << 32)]
}

/// Number of ziggurat layers.
const LAYERS: usize = 256;
/// Right edge of the base layer for 256 layers.
const ZIG_R: f64 = 3.654_152_885_361_009;
/// Area of each layer (and of the base strip with its tail), for 256 layers.
const ZIG_V: f64 = 0.004_928_673_233_99;

/// The ziggurat's layer edges `x[i]` (decreasing, `x[LAYERS] = 0`) and densities
/// `f[i] = exp(-x[i]^2 / 2)`, computed once.
struct Ziggurat {
    x: [f64; LAYERS + 1],
    f: [f64; LAYERS + 1],
}

fn ziggurat() -> &'static Ziggurat {
    static TABLE: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut x = [0.0; LAYERS + 1];
        let mut f = [0.0; LAYERS + 1];
        let density = |v: f64| (-0.5 * v * v).exp();
        // Layer 0 is the base strip plus the tail, of width V / f(R).
        x[0] = ZIG_V / density(ZIG_R);
        x[1] = ZIG_R;
        for i in 2..LAYERS {
            x[i] = (-2.0 * (ZIG_V / x[i - 1] + density(x[i - 1])).ln()).sqrt();
        }
        x[LAYERS] = 0.0;
        for i in 0..=LAYERS {
            f[i] = density(x[i]);
        }
        Ziggurat { x, f }
    })
}

/// A uniform in (0, 1) from the top 53 bits of `w` (never exactly 0 or 1).
#[inline]
fn open_uniform(w: u64) -> f64 {
    ((w >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// One ziggurat attempt on 64 random bits: the normal, or `None` (rejected; try fresh bits).
///
/// Bits: 8 pick the layer, 1 the sign, 53 the position in the layer. `extra` supplies the
/// uniforms of the wedge and tail tests when they are needed (rare).
#[inline]
fn ziggurat_try(w: u64, extra: &mut impl FnMut() -> u64) -> Option<f64> {
    let z = ziggurat();
    let layer = (w & 0xff) as usize;
    let negative = (w >> 8) & 1 == 1;
    let u = ((w >> 11) as f64) * (1.0 / (1u64 << 53) as f64);
    let x = u * z.x[layer];
    let signed = |v: f64| if negative { -v } else { v };
    if x < z.x[layer + 1] {
        return Some(signed(x));
    }
    if layer == 0 {
        // Tail beyond R (Marsaglia 1964): x = -ln(u1) / R, accept if -2 ln(u2) > x^2.
        loop {
            let xt = -open_uniform(extra()).ln() / ZIG_R;
            let yt = -open_uniform(extra()).ln();
            if 2.0 * yt > xt * xt {
                return Some(signed(ZIG_R + xt));
            }
        }
    }
    // Wedge between the layer's rectangle and the density.
    let fy = z.f[layer + 1] + open_uniform(extra()) * (z.f[layer] - z.f[layer + 1]);
    if fy < (-0.5 * x * x).exp() { Some(signed(x)) } else { None }
}

/// Standard normals addressed by `(key, stream, entry)`: the value for a given address never
/// changes, whatever else was drawn before. `stream` is two 32-bit words chosen by the caller
/// (for a Brownian path: the cell and the tree node).
///
/// Entries `2p` and `2p + 1` share one Philox call; a rejected ziggurat attempt draws again
/// from the same address with the attempt number in the counter's last word.
#[inline]
pub fn normal_at(key: u64, stream: [u32; 2], entry: u64) -> f64 {
    let pair = entry >> 1;
    let half = (entry & 1) as usize;
    let counter = |attempt: u32| [pair as u32, ((pair >> 32) as u32) ^ stream[0].rotate_left(16), stream[1], attempt];
    let mut attempt = 0u32;
    loop {
        let words = two_words(counter(attempt), key);
        // The other word of the pair feeds the rare wedge and tail tests of this attempt.
        let mut spare_attempt = attempt | 0x8000_0000;
        let mut spare = words[1 - half];
        let mut spare_used = false;
        let mut extra = || {
            if !spare_used {
                spare_used = true;
                spare = spare.rotate_left(29) ^ words[half].rotate_left(7);
                return spare;
            }
            spare_attempt = spare_attempt.wrapping_add(1);
            two_words(counter(spare_attempt), key)[half]
        };
        if let Some(v) = ziggurat_try(words[half], &mut extra) {
            return v;
        }
        attempt += 1;
    }
}

/// Lanes of the vectorised Philox in [`fill_normals`].
const LANES: usize = 8;

/// [`philox4x32`] on `LANES` counters at once (the same rounds, written lane-wise so that the
/// compiler maps the 32x32->64-bit products onto vector multiplies).
#[inline(always)]
fn philox_lanes(c: &mut [[u32; LANES]; 4], key: u64) {
    let (mut k0, mut k1) = (key as u32, (key >> 32) as u32);
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        for l in 0..LANES {
            let p0 = M0 * c[0][l] as u64;
            let p1 = M1 * c[2][l] as u64;
            let n0 = ((p1 >> 32) as u32) ^ c[1][l] ^ k0;
            let n2 = ((p0 >> 32) as u32) ^ c[3][l] ^ k1;
            c[1][l] = p1 as u32;
            c[3][l] = p0 as u32;
            c[0][l] = n0;
            c[2][l] = n2;
        }
    }
}

/// Fill `out[i]` with `scale * normal_at(key, stream, first + i)`: Philox on eight counters at
/// a time (two normals each), the ziggurat's common path inline, rare rejections through
/// [`normal_at`]. The values equal [`normal_at`]'s exactly.
pub fn fill_normals<T: crate::scalar::Scalar>(key: u64, stream: [u32; 2], first: u64, scale: f64, out: &mut [T]) {
    let mut i = 0;
    // Align to an even entry so each Philox call serves two outputs.
    if first & 1 == 1 && !out.is_empty() {
        out[0] = T::from_f64(scale * normal_at(key, stream, first));
        i = 1;
    }
    let z = ziggurat();
    let block = 2 * LANES;
    while i + block <= out.len() {
        let pair0 = (first + i as u64) >> 1;
        let mut c = [[0u32; LANES]; 4];
        for l in 0..LANES {
            let pair = pair0 + l as u64;
            c[0][l] = pair as u32;
            c[1][l] = ((pair >> 32) as u32) ^ stream[0].rotate_left(16);
            c[2][l] = stream[1];
            c[3][l] = 0;
        }
        philox_lanes(&mut c, key);
        for l in 0..LANES {
            let words = [(c[0][l] as u64) | ((c[1][l] as u64) << 32), (c[2][l] as u64) | ((c[3][l] as u64) << 32)];
            for (h, w) in words.into_iter().enumerate() {
                let layer = (w & 0xff) as usize;
                let x = ((w >> 11) as f64) * (1.0 / (1u64 << 53) as f64) * z.x[layer];
                let v = if x < z.x[layer + 1] {
                    if (w >> 8) & 1 == 1 { -x } else { x }
                } else {
                    normal_at(key, stream, first + (i + 2 * l + h) as u64)
                };
                out[i + 2 * l + h] = T::from_f64(scale * v);
            }
        }
        i += block;
    }
    while i < out.len() {
        out[i] = T::from_f64(scale * normal_at(key, stream, first + i as u64));
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_the_published_known_answers() {
        // Known-answer vectors of the Random123 distribution (kat_vectors, philox4x32 10 rounds).
        assert_eq!(philox4x32([0, 0, 0, 0], 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(philox4x32([u32::MAX; 4], u64::MAX), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        assert_eq!(
            philox4x32([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], 0x299f_31d0_a409_3822),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn the_same_address_gives_the_same_normal_in_any_order() {
        let forward: Vec<f64> = (0..1000).map(|e| normal_at(7, [3, 4], e)).collect();
        let backward: Vec<f64> = (0..1000).rev().map(|e| normal_at(7, [3, 4], e)).collect();
        assert!(forward.iter().eq(backward.iter().rev()));
        let mut filled = vec![0.0f64; 999];
        fill_normals(7, [3, 4], 1, 1.0, &mut filled);
        assert_eq!(&forward[1..], &filled[..]);
    }

    #[test]
    fn normals_have_the_moments_and_tails_of_a_standard_normal() {
        // 2^20 draws: the standard error of the mean is 1e-3, of the variance 1.4e-3; bounds at
        // five standard errors. Tail shares against the normal CDF at 1, 2 and 3 sigma.
        let n = 1 << 20;
        let mut v = vec![0.0f64; n];
        fill_normals(11, [0, 1], 0, 1.0, &mut v);
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let kurt = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / (var * var);
        assert!(mean.abs() < 5e-3, "mean {mean}");
        assert!((var - 1.0).abs() < 7e-3, "variance {var}");
        assert!((kurt - 3.0).abs() < 0.03, "kurtosis {kurt}");
        for (k, expected) in [(1.0, 0.317_310_507_862_914), (2.0, 0.045_500_263_896_358), (3.0, 0.002_699_796_063_26)] {
            let share = v.iter().filter(|x| x.abs() > k).count() as f64 / n as f64;
            let se = (expected * (1.0 - expected) / n as f64).sqrt();
            assert!((share - expected).abs() < 5.0 * se, "P(|x| > {k}) = {share}, expected {expected}");
        }
    }
}
