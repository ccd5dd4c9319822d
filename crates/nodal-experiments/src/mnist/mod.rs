//! MNIST with the models of Chen et al. 2018 ("Neural Ordinary Differential Equations",
//! Table 1): the IDX reader ([`idx`]), the data set in memory ([`Split`]), the ResNet, RK-Net and
//! ODE-Net ([`models`]) and their training loop with checkpoints ([`train`]).

pub use nodal_formats::idx;
pub mod memory;
pub mod models;
pub mod states;
pub mod train;

use idx::{IdxError, Images};
use models::IMAGE_SIDE;
use std::path::{Path, PathBuf};

/// Which half of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

impl Part {
    fn prefix(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Test => "t10k",
        }
    }
}

/// One part of MNIST in memory: images with their labels.
#[derive(Debug, Clone)]
pub struct Split {
    /// The images (`count x rows x cols` bytes).
    pub images: Images,
    /// One label 0..=9 per image.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// The first `n` examples (all of them when `n` exceeds the size).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.pixels.truncate(n * self.images.image_len());
        self.images.count = n;
        self
    }
}

/// The first existing file among the usual names of an MNIST file (`train-images-idx3-ubyte.gz`,
/// the same without `.gz`, and the `train-images.idx3-ubyte` spelling).
fn find(dir: &Path, prefix: &str, kind: &str, ndim: u8) -> Result<PathBuf, IdxError> {
    let names = [
        format!("{prefix}-{kind}-idx{ndim}-ubyte.gz"),
        format!("{prefix}-{kind}-idx{ndim}-ubyte"),
        format!("{prefix}-{kind}.idx{ndim}-ubyte.gz"),
        format!("{prefix}-{kind}.idx{ndim}-ubyte"),
    ];
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file()).ok_or_else(|| IdxError::Missing {
        dir: dir.to_path_buf(),
        what: format!("{prefix} {kind}"),
        tried: names.join(", "),
    })
}

/// Loads one part of MNIST from `dir` (gzipped or plain IDX files), checking that images and
/// labels agree in number.
pub fn load(dir: &Path, part: Part) -> Result<Split, IdxError> {
    let ip = find(dir, part.prefix(), "images", 3)?;
    let lp = find(dir, part.prefix(), "labels", 1)?;
    let images = idx::load_images(&ip)?;
    let labels = idx::load_labels(&lp)?;
    if images.count != labels.len() {
        return Err(IdxError::CountMismatch { images: ip, n_images: images.count, labels: lp, n_labels: labels.len() });
    }
    if (images.rows, images.cols) != (IMAGE_SIDE, IMAGE_SIDE) {
        let reason = format!("images are {}x{} pixels; the MNIST models take {IMAGE_SIDE}x{IMAGE_SIDE}", images.rows, images.cols);
        return Err(IdxError::BadHeader { path: ip, reason });
    }
    Ok(Split { images, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project's data folder (`../shared/data/mnist` from the workspace root).
    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist")
    }

    #[test]
    fn real_test_set_loads_when_present() {
        let dir = data_dir();
        if !dir.join("t10k-labels-idx1-ubyte.gz").is_file() {
            eprintln!("note: {} not found, skipping the real-MNIST test", dir.display());
            return;
        }
        let t = load(&dir, Part::Test).unwrap();
        assert_eq!((t.images.count, t.images.rows, t.images.cols), (10_000, 28, 28));
        assert_eq!(t.len(), 10_000);
        // Known facts of the official file: the first test labels, and every class present.
        assert_eq!(&t.labels[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
        let mut counts = [0usize; 10];
        t.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
        // Corner pixels are background.
        assert_eq!(t.images.image(0).unwrap()[0], 0);
        let small = t.truncate(5);
        assert_eq!((small.len(), small.images.pixels.len()), (5, 5 * 784));
    }

    #[test]
    fn missing_folder_and_mismatched_counts_are_errors() {
        let dir = std::env::temp_dir().join(format!("nodal-mnist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = load(&dir, Part::Test).unwrap_err();
        assert!(matches!(e, IdxError::Missing { .. }), "{e}");
        let mut im = Vec::new();
        for v in [idx::IMAGES_MAGIC, 2, 1, 1] {
            im.extend(v.to_be_bytes());
        }
        im.extend([0, 0]);
        let mut lb = Vec::new();
        for v in [idx::LABELS_MAGIC, 1] {
            lb.extend(v.to_be_bytes());
        }
        lb.push(3);
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), im).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), lb).unwrap();
        let e = load(&dir, Part::Test).unwrap_err();
        assert!(matches!(e, IdxError::CountMismatch { n_images: 2, n_labels: 1, .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
