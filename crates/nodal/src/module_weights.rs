//! Any burn module's parameters as an f32 safetensors file, named by dotted path
//! (`encoder.gru.update_gate.input_transform.weight`, `blocks.0.norm1.gamma`, ...), with string
//! metadata, written atomically; and loaded back with every name, shape and value checked.
//!
//! The metadata always holds the model's name under [`META_MODEL`]; loading into a model of
//! another name is a typed error rather than silently mixing weights. Checkpoints may also keep
//! burn's parameter ids (under `param_ids`) so that a saved optimiser state re-attaches to the
//! loaded parameters.

use crate::io::{FileError, MAX_WEIGHTS_BYTES, read_capped, write_atomic};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key of the model name in a weights file.
pub const META_MODEL: &str = "model";
/// Metadata key of the parameter ids (JSON map name -> id; checkpoints only).
const META_IDS: &str = "param_ids";

/// Collects parameters by dotted path.
struct Collect {
    path: Vec<String>,
    out: Vec<(String, Vec<usize>, Vec<f32>, u64)>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let t = p.val();
        let shape = t.dims().to_vec();
        let vals = t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_default();
        self.out.push((self.path.join("."), shape, vals, p.id.val()));
    }
}

fn collect<M: Module>(module: &M) -> Vec<(String, Vec<usize>, Vec<f32>, u64)> {
    let mut c = Collect { path: Vec::new(), out: Vec::new() };
    module.visit(&mut c);
    c.out
}

/// All parameters of a module as one f32 vector, in visiting order (tests and checksums).
pub fn flat_params<M: Module>(module: &M) -> Vec<f32> {
    collect(module).into_iter().flat_map(|(_, _, v, _)| v).collect()
}

/// Number of scalar parameters of a module.
pub fn param_count<M: Module>(module: &M) -> usize {
    collect(module).iter().map(|(_, s, _, _)| s.iter().product::<usize>()).sum()
}

/// Save `module`'s parameters as f32 safetensors with `meta` and `name` (under [`META_MODEL`])
/// as metadata; `keep_ids` also stores burn's parameter ids. Atomic: a reader sees the old file
/// or the new one.
pub fn save_module<M: Module>(module: &M, name: &str, path: &Path, meta: &[(&str, String)], keep_ids: bool) -> Result<(), FileError> {
    let params = collect(module);
    let bytes: Vec<Vec<u8>> = params.iter().map(|(_, _, v, _)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let fmt = |reason: String| FileError::Format { path: path.to_path_buf(), reason };
    let mut views = Vec::with_capacity(bytes.len());
    for ((name, shape, _, _), b) in params.iter().zip(&bytes) {
        views.push((name.clone(), TensorView::new(Dtype::F32, shape.clone(), b).map_err(|e| fmt(format!("{name}: {e}")))?));
    }
    let mut m: HashMap<String, String> = meta.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    m.insert(META_MODEL.into(), name.into());
    if keep_ids {
        let ids: HashMap<&str, u64> = params.iter().map(|(n, _, _, id)| (n.as_str(), *id)).collect();
        m.insert(META_IDS.into(), serde_json::to_string(&ids).map_err(|e| fmt(e.to_string()))?);
    }
    let data = safetensors::serialize(views, &Some(m)).map_err(|e| fmt(e.to_string()))?;
    write_atomic(path, &data)
}

/// The metadata of a weights file (includes [`META_MODEL`]).
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, FileError> {
    let bytes = read_capped(path, MAX_WEIGHTS_BYTES, "a weights file")?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| FileError::Format { path: path.to_path_buf(), reason: format!("not a safetensors file: {e}") })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Replaces parameters by path from a safetensors file; records the first problem.
struct Assign<'a> {
    path: Vec<String>,
    st: &'a SafeTensors<'a>,
    ids: Option<HashMap<String, u64>>,
    error: Option<String>,
    used: usize,
}

impl ModuleMapper for Assign<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let shape = p.lazy_shape();
        let view = match self.st.tensor(&name) {
            Ok(v) => v,
            Err(_) => {
                self.error.get_or_insert(format!("missing tensor `{name}`"));
                return p;
            }
        };
        if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
            self.error.get_or_insert(format!(
                "tensor `{name}` is {:?} {:?}, expected F32 {:?}",
                view.dtype(),
                view.shape(),
                shape.as_slice()
            ));
            return p;
        }
        self.used += 1;
        let vals: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(i) = vals.iter().position(|x| !x.is_finite()) {
            self.error.get_or_insert(format!("tensor `{name}` holds a non-finite value ({}) at flat index {i}", vals[i]));
            return p;
        }
        let id = self.ids.as_ref().and_then(|m| m.get(&name)).map(|&v| ParamId::from(v)).unwrap_or(p.id);
        let old = p.val();
        let (dev, dt, rg) = (old.device(), old.dtype(), old.is_require_grad());
        let t = Tensor::<D>::from_data(TensorData::new(vals, shape), (&dev, dt));
        Param::initialized(id, if rg { t.require_grad() } else { t })
    }
}

/// Load a file written by [`save_module`] into `module` (same architecture; every tensor present
/// with its shape and finite values; no extra tensors; the file's model name, when it has one,
/// equal to `name`). Parameter ids are restored when the file has them.
pub fn load_module<M: Module>(module: M, name: &str, path: &Path) -> Result<M, FileError> {
    let bytes = read_capped(path, MAX_WEIGHTS_BYTES, "a weights file")?;
    let fmt = |reason: String| FileError::Format { path: path.to_path_buf(), reason };
    let st = SafeTensors::deserialize(&bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| fmt(e.to_string()))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    if let Some(held) = meta.get(META_MODEL) {
        if held != name {
            return Err(fmt(format!("holds a `{held}` model, not `{name}`")));
        }
    }
    let ids = match meta.get(META_IDS) {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| fmt(format!("bad {META_IDS}: {e}")))?),
        None => None,
    };
    let mut a = Assign { path: Vec::new(), st: &st, ids, error: None, used: 0 };
    let module = module.map(&mut a);
    if let Some(e) = a.error {
        return Err(fmt(e));
    }
    if a.used != st.len() {
        return Err(fmt(format!("has {} tensors, the `{name}` model {}", st.len(), a.used)));
    }
    Ok(module)
}
