//! What an independent MNIST classifier (the committed ResNet, 99.05% test accuracy) makes of
//! generated images:
//!
//! - **confident share**: the fraction of images whose top class has softmax probability above
//!   a threshold (0.9): digits the classifier reads without doubt;
//! - **class counts**: the histogram of top classes (a sampler that dropped a digit shows a
//!   hole; "within 2x of uniform" means every count lies in `[n/20, n/5]`);
//! - **Fréchet distance** between the Gaussian statistics of the classifier's 64 pooled
//!   penultimate features for the samples and for the 10,000 test images ([`super::frechet`]):
//!   FID's construction on an MNIST classifier, so its values are not comparable with
//!   Inception-based FIDs. Its noise floor at a given sample count is measured by comparing
//!   test images with training images (docs/any_layer.md).

use super::frechet::{GaussianStats, frechet_distance};
use super::{FlowError, PIXELS, SIDE};
use crate::mnist::models::{META_MODEL, MnistNet, ModelConfig, ModelKind, load_weights, read_metadata};
use burn::tensor::activation::softmax;
use burn::tensor::{DType, Device, Tensor, TensorData};
use std::path::Path;

/// Width of the classifier's pooled features.
pub const FEATURES: usize = 64;

/// Softmax probability above which a classification counts as confident.
pub const CONFIDENT: f64 = 0.9;

/// The classifier with its weights.
pub struct Classifier {
    net: MnistNet,
    device: Device,
}

/// Features and class probabilities of a set of images.
#[derive(Debug, Clone)]
pub struct Readout {
    /// `n * 64` pooled features.
    pub features: Vec<f32>,
    /// `n * 10` softmax probabilities.
    pub probs: Vec<f32>,
}

/// The quality measures of a set of samples (see the module docs).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Quality {
    /// Number of images scored.
    pub n: usize,
    /// Share with top probability above [`CONFIDENT`].
    pub confident_share: f64,
    /// Images per top class 0..=9.
    pub class_counts: [usize; 10],
    /// Every class count within a factor 2 of `n / 10`.
    pub classes_within_2x_uniform: bool,
    /// Fréchet distance of the features to the reference statistics.
    pub frechet_distance: f64,
}

impl Classifier {
    /// Load MNIST classifier weights written by `nodal train mnist` (the model kind is read
    /// from the file).
    pub fn load(path: &Path, device: &Device) -> Result<Self, String> {
        let meta = read_metadata(path).map_err(|e| e.to_string())?;
        let name = meta.get(META_MODEL).ok_or_else(|| format!("{}: the file does not name its model", path.display()))?;
        let kind = ModelKind::from_name(name).ok_or_else(|| format!("{}: unknown model {name:?}", path.display()))?;
        let net = load_weights(ModelConfig::new(kind).init_seeded(device, 0), path).map_err(|e| e.to_string())?;
        Ok(Self { net, device: device.clone() })
    }

    /// Features and probabilities of `n` images (`n * 784` values in `[0, 1]`), in batches.
    pub fn read(&self, images: &[f32], batch: usize) -> Result<Readout, FlowError> {
        let n = images.len() / PIXELS;
        let (mut features, mut probs) = (Vec::with_capacity(n * FEATURES), Vec::with_capacity(n * 10));
        for first in (0..n).step_by(batch.max(1)) {
            let end = (first + batch.max(1)).min(n);
            let x = TensorData::new(images[first * PIXELS..end * PIXELS].to_vec(), [end - first, 1, SIDE, SIDE]);
            let x = Tensor::<4>::from_data(x, (&self.device, DType::F32));
            let (f, logits) = self.net.features_and_logits(x).map_err(|e| FlowError::Classifier(e.to_string()))?;
            let values =
                |t: Tensor<2>| t.into_data().convert::<f32>().try_into_vec::<f32>().map_err(|e| FlowError::Classifier(format!("{e:?}")));
            features.extend(values(f)?);
            probs.extend(values(softmax(logits, 1))?);
        }
        Ok(Readout { features, probs })
    }
}

/// MNIST bytes to `[0, 1]` values, as the classifier was trained on them.
pub fn unit_pixels(bytes: &[u8]) -> Vec<f32> {
    bytes.iter().map(|&p| p as f32 / 255.0).collect()
}

/// The quality of `samples` against the reference feature statistics.
pub fn score(samples: &Readout, reference: &GaussianStats) -> Result<Quality, FlowError> {
    let n = samples.probs.len() / 10;
    let mut class_counts = [0usize; 10];
    let mut confident = 0usize;
    for p in samples.probs.chunks(10) {
        let (class, top) = p.iter().enumerate().fold((0, f32::MIN), |best, (k, &v)| if v > best.1 { (k, v) } else { best });
        class_counts[class] += 1;
        if top as f64 > CONFIDENT {
            confident += 1;
        }
    }
    let uniform = n as f64 / 10.0;
    let classes_within_2x_uniform = class_counts.iter().all(|&c| c as f64 >= uniform / 2.0 && c as f64 <= uniform * 2.0);
    let stats = GaussianStats::from_rows(&samples.features, FEATURES)?;
    Ok(Quality {
        n,
        confident_share: if n == 0 { 0.0 } else { confident as f64 / n as f64 },
        class_counts,
        classes_within_2x_uniform,
        frechet_distance: frechet_distance(&stats, reference)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_count_classes_and_confidence() {
        // Four images: two confident 3s, a confident 7, a doubtful 1 (0.6).
        let mut probs = vec![0.0f32; 40];
        probs[3] = 0.95;
        probs[10 + 3] = 0.99;
        probs[20 + 7] = 0.91;
        probs[30 + 1] = 0.6;
        probs[30 + 2] = 0.4;
        let features: Vec<f32> = (0..4 * FEATURES).map(|k| ((k * 7919) % 13) as f32).collect();
        let readout = Readout { features: features.clone(), probs };
        let reference = GaussianStats::from_rows(&features, FEATURES).unwrap();
        let q = score(&readout, &reference).unwrap();
        assert_eq!(q.n, 4);
        assert_eq!(q.confident_share, 0.75);
        assert_eq!(q.class_counts, [0, 1, 0, 2, 0, 0, 0, 1, 0, 0]);
        assert!(!q.classes_within_2x_uniform);
        // Same features as the reference: distance 0 up to round-off (relative to the total
        // variance; the covariance of 4 vectors has rank 3, so most eigenvalues are round-off).
        let total: f64 = (0..FEATURES).map(|i| reference.cov[i * FEATURES + i]).sum();
        assert!(q.frechet_distance < 1e-6 * total, "{} of {total}", q.frechet_distance);
    }
}
