//! Files: reads with a size cap (no input, not even `/dev/zero`, makes a reader allocate
//! without bound), atomic writes (a crash, a full disk or Ctrl-C never leaves a half-written
//! output, nor a temporary file), and model weights as safetensors.

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

/// Largest weights or optimiser-state file read (256 MiB; the largest model nodal trains is
/// 2.3 MB).
pub const MAX_WEIGHTS_BYTES: u64 = 256 << 20;
/// Largest JSON file read: problem files, checkpoints, reference vectors (32 MiB; the shared
/// reference files are at most 1.4 MB). A parsed file takes at most about 16 times its size.
pub const MAX_JSON_BYTES: u64 = 32 << 20;

/// A file operation that failed, with the file.
#[derive(Debug, Error)]
pub enum FileError {
    /// Reading, writing or renaming failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is malformed or lacks a tensor.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file is larger than the reader accepts.
    #[error("{path}: larger than the {limit} bytes accepted for {what}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What kind of file was expected.
        what: &'static str,
        /// The cap in bytes.
        limit: u64,
    },
}

/// The bytes of `path`, refusing files over `limit` bytes (`what` names the kind of file in the
/// error). Reads at most `limit + 1` bytes whatever the file is (a pipe, a device).
pub fn read_capped(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(io(std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a folder, not a file")));
    }
    let too_large = || FileError::TooLarge { path: path.to_path_buf(), what, limit };
    if meta.is_file() && meta.len() > limit {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(if meta.is_file() { meta.len() as usize } else { 0 });
    file.take(limit + 1).read_to_end(&mut out).map_err(io)?;
    if out.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(out)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_text_capped(path: &Path, limit: u64, what: &'static str) -> Result<String, FileError> {
    let bytes = read_capped(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| FileError::Format { path: path.to_path_buf(), reason: format!("not UTF-8 text: {e}") })
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically: a temporary file in the same folder, synced, then renamed
/// over the target, so readers see the old file or the new one, never a torn one. On any
/// failure the temporary file is removed and the old file is left as it was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let io = |source| FileError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// Save named f32 tensors (`name`, shape, values) as a safetensors file, atomically.
pub fn save_f32_tensors(path: &Path, tensors: &[(&str, Vec<usize>, &[f32])]) -> Result<(), FileError> {
    let fmt = |reason: String| FileError::Format { path: path.to_path_buf(), reason };
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            TensorView::new(Dtype::F32, shape.clone(), b).map(|v| (name.to_string(), v)).map_err(|e| fmt(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let data = safetensors::serialize(views, &None).map_err(|e| fmt(e.to_string()))?;
    write_atomic(path, &data)
}

/// Load f32 tensors by name, checking each shape (the file is read with
/// [`MAX_WEIGHTS_BYTES`] as its cap).
pub fn load_f32_tensors(path: &Path, wanted: &[(&str, Vec<usize>)]) -> Result<Vec<Vec<f32>>, FileError> {
    let bytes = read_capped(path, MAX_WEIGHTS_BYTES, "a weights file")?;
    parse_f32_tensors(&bytes, path, wanted)
}

/// [`load_f32_tensors`] on bytes already read; `path` names the file in errors. Every value
/// must be finite: weights with NaN or infinity are refused, naming the tensor.
pub fn parse_f32_tensors(bytes: &[u8], path: &Path, wanted: &[(&str, Vec<usize>)]) -> Result<Vec<Vec<f32>>, FileError> {
    let fmt = |reason: String| FileError::Format { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
    wanted
        .iter()
        .map(|(name, shape)| {
            let t = st.tensor(name).map_err(|_| fmt(format!("missing tensor `{name}`")))?;
            if t.dtype() != Dtype::F32 {
                return Err(fmt(format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
            }
            if t.shape() != shape.as_slice() {
                return Err(fmt(format!("tensor `{name}` has shape {:?}, expected {:?}", t.shape(), shape)));
            }
            let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(fmt(format!("tensor `{name}` holds a non-finite value ({}) at flat index {i}", v[i])));
            }
            Ok(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nodal-formats-io-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn capped_reads_refuse_large_files_and_endless_devices() {
        let d = tmp("cap");
        let f = d.join("big");
        std::fs::write(&f, vec![b'x'; 100]).unwrap();
        assert_eq!(read_capped(&f, 100, "x").unwrap().len(), 100);
        assert!(matches!(read_capped(&f, 99, "x"), Err(FileError::TooLarge { limit: 99, .. })));
        // An endless device stops at the cap instead of filling memory.
        if Path::new("/dev/zero").exists() {
            assert!(matches!(read_capped(Path::new("/dev/zero"), 1 << 20, "x"), Err(FileError::TooLarge { .. })));
        }
        assert!(matches!(read_capped(&d, 10, "x"), Err(FileError::Io { .. })));
    }

    #[test]
    fn a_failed_atomic_write_keeps_the_old_occupant_and_leaves_no_temporary() {
        let d = tmp("atomic");
        // A successful write over an existing file replaces it whole.
        let f = d.join("out.json");
        write_atomic(&f, b"old, and longer than the new content").unwrap();
        write_atomic(&f, b"new").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        // The temporary is written in full, then the rename over a non-empty folder fails: what
        // occupied the target must survive unchanged and the temporary must be gone.
        let target = d.join("sub");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("x"), b"kept").unwrap();
        let e = write_atomic(&target, b"new").unwrap_err();
        assert!(e.to_string().contains("sub"), "{e}");
        assert!(target.is_dir());
        assert_eq!(std::fs::read(target.join("x")).unwrap(), b"kept");
        // A target in a folder that does not exist fails before anything is written.
        assert!(write_atomic(&d.join("missing").join("out.json"), b"new").is_err());
        assert!(!d.join("missing").exists());
        let left: Vec<_> =
            std::fs::read_dir(&d).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 2, "only out.json and sub remain");
    }

    #[test]
    fn weights_round_trip_and_non_finite_values_are_refused() {
        let d = tmp("weights");
        let f = d.join("w.safetensors");
        save_f32_tensors(&f, &[("a", vec![2], &[1.0, 2.0]), ("b", vec![1], &[f32::NAN])]).unwrap();
        assert_eq!(load_f32_tensors(&f, &[("a", vec![2])]).unwrap(), vec![vec![1.0, 2.0]]);
        let e = load_f32_tensors(&f, &[("b", vec![1])]).unwrap_err().to_string();
        assert!(e.contains("tensor `b` holds a non-finite value"), "{e}");
        let e = load_f32_tensors(&f, &[("a", vec![3])]).unwrap_err().to_string();
        assert!(e.contains("shape [2], expected [3]"), "{e}");
    }
}
