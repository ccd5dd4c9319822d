//! Files: atomic writes (a crash or Ctrl-C never leaves a half-written output) and model
//! weights as safetensors.

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

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
    /// The weights file is malformed or lacks a tensor.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder, synced, then renamed
/// over the target, so readers see the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let io = |source| FileError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// Save named f32 tensors (`name`, shape, values) as a safetensors file, atomically.
pub fn save_f32_tensors(path: &Path, tensors: &[(&str, Vec<usize>, &[f32])]) -> Result<(), FileError> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| (name.to_string(), TensorView::new(Dtype::F32, shape.clone(), b).expect("shape matches data")))
        .collect();
    let data = safetensors::serialize(views, &None).map_err(|e| FileError::Format { path: path.to_path_buf(), reason: e.to_string() })?;
    write_atomic(path, &data)
}

/// Load f32 tensors by name, checking each shape.
pub fn load_f32_tensors(path: &Path, wanted: &[(&str, Vec<usize>)]) -> Result<Vec<Vec<f32>>, FileError> {
    let bytes = std::fs::read(path).map_err(|source| FileError::Io { path: path.to_path_buf(), source })?;
    let fmt = |reason: String| FileError::Format { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
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
            Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        })
        .collect()
}
