//! Reader for the IDX files of MNIST (LeCun et al.): images (magic 2051, `u8` pixels) and labels
//! (magic 2049, `u8` classes 0..=9), gzipped or not (detected by the gzip magic bytes `1f 8b`).
//!
//! The format: a big-endian `u32` magic (`0x0000_08NN`, `08` = unsigned byte, `NN` = number of
//! dimensions), one big-endian `u32` per dimension, then the data, row-major. The reader trusts
//! nothing in a header: every declared size is checked (with overflow-checked arithmetic) against
//! the bytes actually present before anything is allocated from it, decompression is capped at
//! [`MAX_DECOMPRESSED`] bytes, and trailing bytes after the declared data are an error.

use std::io::Read;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Magic number of an IDX image file (`u8` data, 3 dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX label file (`u8` data, 1 dimension).
pub const LABELS_MAGIC: u32 = 2049;
/// Largest decompressed file accepted (1 GiB; MNIST's largest file is 47 MB).
pub const MAX_DECOMPRESSED: u64 = 1 << 30;
/// Largest image side accepted (pixels).
pub const MAX_SIDE: u32 = 4096;
/// Number of classes: labels must be below this.
pub const NUM_CLASSES: u8 = 10;

/// What went wrong reading an IDX file; every variant names the file.
#[derive(Debug, Error)]
pub enum IdxError {
    /// The file could not be opened or read, or its gzip stream is corrupt.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file ends before the header or the data it declares.
    #[error("{path}: truncated: {what} needs {expected} bytes, the file has {actual}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Which part is short (`header` or `data`).
        what: &'static str,
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The magic number is not the expected one.
    #[error("{path}: wrong magic number {found} (0x{found:08x}), expected {expected} ({kind} file)")]
    WrongMagic {
        /// The file.
        path: PathBuf,
        /// Magic found.
        found: u32,
        /// Magic expected.
        expected: u32,
        /// `images` or `labels`.
        kind: &'static str,
    },
    /// A header field is impossible (zero or oversized dimensions, a size over the limits).
    #[error("{path}: bad header: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// More bytes follow the declared data.
    #[error("{path}: {extra} unexpected bytes after the {declared} bytes the header declares")]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Declared file size (header and data).
        declared: u64,
        /// Bytes beyond it.
        extra: u64,
    },
    /// A label is not a digit 0..=9.
    #[error("{path}: label {value} at index {index} is not a class 0..=9")]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Position of the label.
        index: usize,
        /// Its value.
        value: u8,
    },
    /// An image file and its label file disagree on the number of items.
    #[error("{images} has {n_images} images but {labels} has {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Items in it.
        n_images: usize,
        /// The label file.
        labels: PathBuf,
        /// Items in it.
        n_labels: usize,
    },
    /// None of the usual names of a file exists in the folder.
    #[error("{dir}: no {what} file (looked for {tried})")]
    Missing {
        /// The folder searched.
        dir: PathBuf,
        /// What was looked for.
        what: String,
        /// The names tried, comma-separated.
        tried: String,
    },
}

/// Images of one IDX file: `count` images of `rows x cols` `u8` pixels, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Pixels per image.
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }
    /// Pixels of image `i` (`None` past the end).
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let n = self.image_len();
        self.pixels.get(i.checked_mul(n)?..(i + 1).checked_mul(n)?)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks the fixed-size header is present and the magic matches; returns the dimensions.
fn header<'a>(bytes: &'a [u8], path: &Path, magic: u32, kind: &'static str, ndims: usize) -> Result<(Vec<u32>, &'a [u8]), IdxError> {
    let hlen = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(IdxError::Truncated { path: path.into(), what: "header", expected: hlen as u64, actual: bytes.len() as u64 });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(IdxError::WrongMagic { path: path.into(), found, expected: magic, kind });
    }
    if bytes.len() < hlen {
        return Err(IdxError::Truncated { path: path.into(), what: "header", expected: hlen as u64, actual: bytes.len() as u64 });
    }
    let dims = (0..ndims).map(|i| be_u32(bytes, 4 + 4 * i)).collect();
    Ok((dims, &bytes[hlen..]))
}

/// Checks the data part holds exactly `declared` bytes (no allocation before this check).
fn check_len(path: &Path, hlen: usize, data: &[u8], declared: Option<u64>) -> Result<usize, IdxError> {
    let declared = match declared {
        Some(d) if d <= MAX_DECOMPRESSED => d,
        _ => {
            return Err(IdxError::BadHeader {
                path: path.into(),
                reason: format!("declared data size exceeds the {MAX_DECOMPRESSED}-byte limit"),
            });
        }
    };
    let actual = data.len() as u64;
    if actual < declared {
        return Err(IdxError::Truncated {
            path: path.into(),
            what: "data",
            expected: declared + hlen as u64,
            actual: actual + hlen as u64,
        });
    }
    if actual > declared {
        return Err(IdxError::TrailingBytes { path: path.into(), declared: declared + hlen as u64, extra: actual - declared });
    }
    Ok(declared as usize)
}

/// Parses the bytes of an (uncompressed) IDX image file. `path` only names the file in errors.
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<Images, IdxError> {
    let (d, data) = header(bytes, path, IMAGES_MAGIC, "images", 3)?;
    let (count, rows, cols) = (d[0], d[1], d[2]);
    for (name, v) in [("rows", rows), ("columns", cols)] {
        if v == 0 || v > MAX_SIDE {
            return Err(IdxError::BadHeader { path: path.into(), reason: format!("{name} = {v}, expected 1..={MAX_SIDE}") });
        }
    }
    let declared = (count as u64).checked_mul(rows as u64).and_then(|x| x.checked_mul(cols as u64));
    let n = check_len(path, 16, data, declared)?;
    Ok(Images { count: count as usize, rows: rows as usize, cols: cols as usize, pixels: data[..n].to_vec() })
}

/// Parses the bytes of an (uncompressed) IDX label file; every label must be 0..=9.
pub fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, IdxError> {
    let (d, data) = header(bytes, path, LABELS_MAGIC, "labels", 1)?;
    let n = check_len(path, 8, data, Some(d[0] as u64))?;
    if let Some((index, &value)) = data[..n].iter().enumerate().find(|(_, v)| **v >= NUM_CLASSES) {
        return Err(IdxError::LabelOutOfRange { path: path.into(), index, value });
    }
    Ok(data[..n].to_vec())
}

/// The bytes of a file, gunzipped when it starts with the gzip magic (`1f 8b`); the
/// decompressed size is capped at [`MAX_DECOMPRESSED`].
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, IdxError> {
    let io = |source| IdxError::Io { path: path.into(), source };
    let raw = crate::io::read_capped(path, MAX_DECOMPRESSED, "an IDX file").map_err(|e| match e {
        crate::io::FileError::Io { source, .. } => io(source),
        _ => IdxError::BadHeader { path: path.into(), reason: format!("the file is larger than the {MAX_DECOMPRESSED} bytes accepted") },
    })?;
    if raw.len() < 2 || raw[..2] != [0x1f, 0x8b] {
        return Ok(raw);
    }
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(raw.as_slice()).take(MAX_DECOMPRESSED + 1);
    dec.read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err(IdxError::BadHeader { path: path.into(), reason: format!("decompresses to more than {MAX_DECOMPRESSED} bytes") });
    }
    Ok(out)
}

/// Reads an IDX image file (gzipped or not).
pub fn load_images(path: &Path) -> Result<Images, IdxError> {
    parse_images(&read_maybe_gzip(path)?, path)
}

/// Reads an IDX label file (gzipped or not).
pub fn load_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    parse_labels(&read_maybe_gzip(path)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [IMAGES_MAGIC, count, rows, cols] {
            b.extend(v.to_be_bytes());
        }
        b.extend(pixels);
        b
    }

    fn idx_labels(count: u32, labels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [LABELS_MAGIC, count] {
            b.extend(v.to_be_bytes());
        }
        b.extend(labels);
        b
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn p() -> &'static Path {
        Path::new("x.idx")
    }

    #[test]
    fn good_images_and_labels_parse() {
        let px: Vec<u8> = (0..2 * 3 * 2).collect();
        let im = parse_images(&idx_images(2, 3, 2, &px), p()).unwrap();
        assert_eq!((im.count, im.rows, im.cols), (2, 3, 2));
        assert_eq!(im.image(1).unwrap(), &px[6..12]);
        assert!(im.image(2).is_none());
        assert_eq!(parse_labels(&idx_labels(3, &[0, 9, 4]), p()).unwrap(), vec![0, 9, 4]);
        // Zero items is a valid (empty) file.
        assert_eq!(parse_labels(&idx_labels(0, &[]), p()).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn gzipped_and_plain_files_read_the_same() {
        let dir = std::env::temp_dir().join(format!("nodal-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = idx_images(1, 2, 2, &[1, 2, 3, 4]);
        std::fs::write(dir.join("a"), &bytes).unwrap();
        std::fs::write(dir.join("a.gz"), gzip(&bytes)).unwrap();
        let a = load_images(&dir.join("a")).unwrap();
        let b = load_images(&dir.join("a.gz")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.pixels, vec![1, 2, 3, 4]);
        // A corrupt gzip stream is an I/O error naming the file.
        let mut bad = gzip(&bytes);
        let n = bad.len();
        bad.truncate(n - 12);
        std::fs::write(dir.join("bad.gz"), &bad).unwrap();
        let e = load_images(&dir.join("bad.gz")).unwrap_err();
        assert!(matches!(e, IdxError::Io { .. }), "{e}");
        assert!(e.to_string().contains("bad.gz"));
        let e = load_labels(&dir.join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_files_are_errors() {
        let full = idx_images(2, 2, 2, &[0; 8]);
        for cut in [0, 3, 4, 15, 16, 23] {
            let e = parse_images(&full[..cut], p()).unwrap_err();
            assert!(matches!(e, IdxError::Truncated { .. }), "cut {cut}: {e}");
            assert!(e.to_string().contains("x.idx"));
        }
        let e = parse_labels(&idx_labels(5, &[1, 2]), p()).unwrap_err();
        assert!(matches!(e, IdxError::Truncated { expected: 13, actual: 10, .. }), "{e}");
    }

    #[test]
    fn wrong_magic_is_an_error() {
        // A label file read as images and vice versa.
        let e = parse_images(&idx_labels(1, &[3]), p()).unwrap_err();
        assert!(matches!(e, IdxError::WrongMagic { found: LABELS_MAGIC, expected: IMAGES_MAGIC, .. }), "{e}");
        let e = parse_labels(&idx_images(1, 1, 1, &[3]), p()).unwrap_err();
        assert!(matches!(e, IdxError::WrongMagic { found: IMAGES_MAGIC, .. }), "{e}");
        let e = parse_images(b"GIF89a..........", p()).unwrap_err();
        assert!(matches!(e, IdxError::WrongMagic { .. }), "{e}");
    }

    #[test]
    fn huge_declared_sizes_are_refused_from_the_header_alone() {
        // u32::MAX images of 4096 x 4096: 2^56 bytes declared, 16 present.
        let e = parse_images(&idx_images(u32::MAX, MAX_SIDE, MAX_SIDE, &[]), p()).unwrap_err();
        assert!(matches!(e, IdxError::BadHeader { .. }), "{e}");
        // Within the limit but far beyond the file.
        let e = parse_images(&idx_images(1_000_000, 28, 28, &[0; 10]), p()).unwrap_err();
        assert!(matches!(e, IdxError::Truncated { expected: 784_000_016, actual: 26, .. }), "{e}");
        let e = parse_labels(&idx_labels(u32::MAX, &[1]), p()).unwrap_err();
        assert!(matches!(e, IdxError::BadHeader { .. } | IdxError::Truncated { .. }), "{e}");
        // Absurd image sides.
        let e = parse_images(&idx_images(1, 0, 28, &[]), p()).unwrap_err();
        assert!(matches!(e, IdxError::BadHeader { .. }), "{e}");
        let e = parse_images(&idx_images(1, 28, MAX_SIDE + 1, &[]), p()).unwrap_err();
        assert!(matches!(e, IdxError::BadHeader { .. }), "{e}");
    }

    #[test]
    fn trailing_bytes_and_bad_labels_are_errors() {
        let e = parse_labels(&idx_labels(2, &[1, 2, 3]), p()).unwrap_err();
        assert!(matches!(e, IdxError::TrailingBytes { extra: 1, .. }), "{e}");
        let e = parse_labels(&idx_labels(3, &[1, 10, 3]), p()).unwrap_err();
        assert!(matches!(e, IdxError::LabelOutOfRange { index: 1, value: 10, .. }), "{e}");
    }
}
