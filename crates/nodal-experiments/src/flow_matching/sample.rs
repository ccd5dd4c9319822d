//! Sampling: noise `x0 ~ N(0, I)` at `t = 0`, solved along `dx/dt = v(t, x)` to `t = 1`, with
//! any of nodal's methods: adaptive ones at a tolerance, or fixed steps. The state is the image
//! tensor `[n, 1, 28, 28]` itself ([`nodal::neural_ode::shaped`]); each chunk of images is one
//! joint ODE (one step size and error norm for the chunk, as in torchdiffeq).
//!
//! The noise of all `n` images is drawn from the seed first, so a sample does not depend on the
//! chunk size (only, for adaptive methods, through the chunk's shared steps).

use super::{FlowError, PIXELS, SIDE, to_unit};
use burn::tensor::{DType, Device, Tensor, TensorData};
use nodal::blocks::unet::UNet;
use nodal::neural_ode::shaped::Shaped;
use nodal::neural_ode::{NeuralOde, OdeSettings};
use nodal::solve::SolveOptions;
use nodal::solve::tableau::DOPRI5;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// How to solve from noise to images.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sampler {
    /// Method name (`dopri5`, `tsit5`, `bosh3`, `euler`, `midpoint`, `rk4`, ...).
    pub method: String,
    /// Relative tolerance (adaptive methods).
    pub rtol: f64,
    /// Absolute tolerance (adaptive methods).
    pub atol: f64,
    /// Fixed steps over `[0, 1]`; `None` for adaptive stepping.
    pub steps: Option<usize>,
}

impl Sampler {
    /// The solver options, or an error naming what is wrong.
    pub fn options(&self) -> Result<SolveOptions, FlowError> {
        let base = SolveOptions::new(&DOPRI5)
            .with_method_name(&self.method)
            .ok_or_else(|| FlowError::Settings(format!("unknown method {:?}", self.method)))?;
        if base.implicit.is_some() {
            // Implicit methods would need Jacobians of the U-Net: not offered for sampling.
            return Err(FlowError::Settings(format!("method {}: sampling takes explicit Runge-Kutta methods", self.method)));
        }
        match self.steps {
            Some(0) => Err(FlowError::Settings("steps 0: at least one step is needed".into())),
            Some(k) => Ok(base.with_fixed_step(1.0 / k as f64)),
            None if base.method.error_order.is_none() => {
                Err(FlowError::Settings(format!("method {} has no error estimate: give a number of steps", self.method)))
            }
            None => {
                if !(self.rtol > 0.0 && self.rtol.is_finite() && self.atol > 0.0 && self.atol.is_finite()) {
                    return Err(FlowError::Settings(format!("tolerances rtol {} atol {} must be positive", self.rtol, self.atol)));
                }
                Ok(base.with_tol(self.rtol, self.atol))
            }
        }
    }

    /// A short label: `dopri5 rtol 1e-3` or `euler 20 steps`.
    pub fn label(&self) -> String {
        match self.steps {
            Some(k) => format!("{} {k} steps", self.method),
            None => format!("{} rtol {:e}", self.method, self.rtol),
        }
    }
}

/// Generated images and the work they took.
#[derive(Debug, Clone)]
pub struct Samples {
    /// `n * 784` values in `[0, 1]`, image after image.
    pub pixels: Vec<f32>,
    /// Evaluations of the U-Net per chunk (each evaluation covers the whole chunk).
    pub nfe_per_chunk: Vec<usize>,
}

impl Samples {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / PIXELS
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }
    /// Mean evaluations per chunk: the NFE of one image's trajectory.
    pub fn mean_nfe(&self) -> f64 {
        if self.nfe_per_chunk.is_empty() { 0.0 } else { self.nfe_per_chunk.iter().sum::<usize>() as f64 / self.nfe_per_chunk.len() as f64 }
    }
}

/// `n` images from `model` (on a plain device), drawn from `seed`, solved in chunks of `chunk`
/// images; `on_chunk(done)` is called after each chunk.
pub fn generate(
    model: &UNet,
    n: usize,
    seed: u64,
    sampler: &Sampler,
    chunk: usize,
    device: &Device,
    mut on_chunk: impl FnMut(usize),
) -> Result<Samples, FlowError> {
    let opts = sampler.options()?;
    let settings = OdeSettings::new(opts);
    let ode = NeuralOde::new(Shaped::new(model.clone(), &[1, SIDE, SIDE]), settings.clone(), settings);
    let mut rng = StdRng::seed_from_u64(seed);
    let noise: Vec<f32> = (0..n * PIXELS).map(|_| rng.sample(StandardNormal)).collect();
    let chunk = chunk.max(1);
    let mut pixels = Vec::with_capacity(n * PIXELS);
    let mut nfe_per_chunk = Vec::new();
    let mut first = 0;
    while first < n {
        let end = (first + chunk).min(n);
        let x0 = TensorData::new(noise[first * PIXELS..end * PIXELS].to_vec(), [end - first, 1, SIDE, SIDE]);
        let x0 = Tensor::<4>::from_data(x0, (device, DType::F32));
        let out = ode.forward_shaped(x0, &[0.0, 1.0]).map_err(|source| FlowError::Solve { first, end, source })?;
        let x1 = out.states.last().cloned().expect("two output times");
        let v: Vec<f32> = x1.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| FlowError::Settings(format!("{e:?}")))?;
        pixels.extend(v.into_iter().map(to_unit));
        nfe_per_chunk.push(out.flat.stats.nfe);
        first = end;
        on_chunk(end);
    }
    Ok(Samples { pixels, nfe_per_chunk })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal::blocks::unet::UNetConfig;

    fn sampler(method: &str, steps: Option<usize>) -> Sampler {
        Sampler { method: method.into(), rtol: 1e-3, atol: 1e-3, steps }
    }

    #[test]
    fn settings_are_checked() {
        assert!(sampler("dopri5", None).options().is_ok());
        assert!(sampler("euler", Some(10)).options().is_ok());
        assert!(matches!(sampler("euler", None).options(), Err(FlowError::Settings(_))));
        assert!(matches!(sampler("nope", None).options(), Err(FlowError::Settings(_))));
        assert!(matches!(sampler("kvaerno5", None).options(), Err(FlowError::Settings(_))));
        assert!(matches!(sampler("rk4", Some(0)).options(), Err(FlowError::Settings(_))));
        let bad = Sampler { rtol: -1.0, ..sampler("dopri5", None) };
        assert!(matches!(bad.options(), Err(FlowError::Settings(_))));
    }

    #[test]
    fn the_untrained_field_returns_the_clamped_noise_and_counts_its_work() {
        // The untrained U-Net is f = 0 (zero output convolution): every method must return the
        // noise itself, and Euler with 7 steps takes exactly 7 evaluations per chunk.
        let dev = Device::flex();
        dev.seed(1);
        let unet = UNetConfig { image_channels: 1, channels: 8, time_features: 8, time_width: 16, middle_attention: 0 }.init(&dev);
        let s = generate(&unet, 5, 3, &sampler("euler", Some(7)), 2, &dev, |_| {}).unwrap();
        assert_eq!((s.len(), s.nfe_per_chunk.clone()), (5, vec![7, 7, 7]));
        let mut rng = StdRng::seed_from_u64(3);
        let noise: Vec<f32> = (0..5 * PIXELS).map(|_| rng.sample(StandardNormal)).collect();
        assert!(s.pixels.iter().zip(&noise).all(|(p, z)| (p - to_unit(*z)).abs() < 1e-6));
        // Chunking does not change the images.
        let whole = generate(&unet, 5, 3, &sampler("dopri5", None), 5, &dev, |_| {}).unwrap();
        assert_eq!(whole.pixels, s.pixels);
    }
}
