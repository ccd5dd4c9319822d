//! Checkpoints of a flow-matching run, so that an interrupted run resumes where it stopped:
//! the trained weights (with burn's parameter ids, so the optimiser state re-attaches), Adam's
//! state, the moving average and the step count.
//!
//! Files carry the step in their names (`ckpt-{iter}.model.safetensors`, `.ema.safetensors`,
//! `.optim`) and `checkpoint.json`, written last and atomically, names them: a run killed at any
//! moment leaves the previous whole checkpoint. Older files are removed after the new JSON.
//!
//! A resumed run draws its batches, noise and times from a stream re-seeded from `(seed, iter)`,
//! so it is statistically the same run but not bit-identical to an uninterrupted one.

use super::train::Trainer;
use super::{FlowError, FlowMatchingConfig, MODEL_NAME};
use burn::tensor::{Bytes, Device};
use nodal::io::{MAX_JSON_BYTES, MAX_WEIGHTS_BYTES, read_capped, read_text_capped, write_atomic};
use nodal::module_weights::{flat_params, load_module, save_module};
use std::path::Path;

/// Name of the checkpoint's index file.
pub const CHECKPOINT: &str = "checkpoint.json";

/// What `checkpoint.json` holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Index {
    config: FlowMatchingConfig,
    iter: usize,
    ema_updates: usize,
    model: String,
    ema: String,
    optim: String,
}

fn bad(path: &Path, reason: impl std::fmt::Display) -> FlowError {
    FlowError::Checkpoint(format!("{}: {reason}", path.display()))
}

/// Save `tr`'s state into `dir` (see the module docs).
pub fn save(tr: &mut Trainer, dir: &Path) -> Result<(), FlowError> {
    let stem = format!("ckpt-{}", tr.iter);
    let idx = Index {
        config: tr.cfg.clone(),
        iter: tr.iter,
        ema_updates: tr.ema.updates,
        model: format!("{stem}.model.safetensors"),
        ema: format!("{stem}.ema.safetensors"),
        optim: format!("{stem}.optim"),
    };
    save_module(&tr.model, MODEL_NAME, &dir.join(&idx.model), &[], true).map_err(|e| bad(&dir.join(&idx.model), e))?;
    save_module(&tr.ema_model(), MODEL_NAME, &dir.join(&idx.ema), &[], false).map_err(|e| bad(&dir.join(&idx.ema), e))?;
    let bytes = tr.optimizer_bytes().map_err(|e| bad(&dir.join(&idx.optim), e))?;
    write_atomic(&dir.join(&idx.optim), &bytes).map_err(|e| bad(&dir.join(&idx.optim), e))?;
    let previous = read_index(dir).ok().flatten();
    let json = serde_json::to_string_pretty(&idx).map_err(|e| bad(&dir.join(CHECKPOINT), e))?;
    write_atomic(&dir.join(CHECKPOINT), json.as_bytes()).map_err(|e| bad(&dir.join(CHECKPOINT), e))?;
    if let Some(old) = previous.filter(|old| old.iter != idx.iter) {
        for f in [old.model, old.ema, old.optim] {
            let _ = std::fs::remove_file(dir.join(f));
        }
    }
    Ok(())
}

fn read_index(dir: &Path) -> Result<Option<Index>, FlowError> {
    let path = dir.join(CHECKPOINT);
    if !path.is_file() {
        return Ok(None);
    }
    let text = read_text_capped(&path, MAX_JSON_BYTES, "a checkpoint").map_err(|e| bad(&path, e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| bad(&path, e))
}

/// Resume the run checkpointed in `dir`, if there is one. Every setting must match `cfg`
/// except `iters`, which may grow (the schedule then stretches from the resumed step on).
pub fn resume(cfg: &FlowMatchingConfig, dir: &Path, device: &Device) -> Result<Option<Trainer>, FlowError> {
    let Some(idx) = read_index(dir)? else { return Ok(None) };
    let path = dir.join(CHECKPOINT);
    let same = FlowMatchingConfig { iters: cfg.iters, ..idx.config.clone() };
    if &same != cfg {
        return Err(bad(
            &path,
            format!(
                "made with other settings ({}); this run has ({}): use another --out or the same options",
                serde_json::to_string(&idx.config).unwrap_or_default(),
                serde_json::to_string(cfg).unwrap_or_default()
            ),
        ));
    }
    if idx.iter > cfg.iters {
        return Err(bad(&path, format!("it is at step {}, past --iters {}", idx.iter, cfg.iters)));
    }
    let mut tr = Trainer::new(cfg.clone(), device)?;
    let template = std::mem::replace(&mut tr.model, cfg.unet.init(device));
    tr.model = load_module(template, MODEL_NAME, &dir.join(&idx.model)).map_err(|e| bad(&dir.join(&idx.model), e))?;
    let ema = load_module(cfg.unet.init(&Device::flex()), MODEL_NAME, &dir.join(&idx.ema)).map_err(|e| bad(&dir.join(&idx.ema), e))?;
    tr.ema.values = flat_params(&ema);
    tr.ema.updates = idx.ema_updates;
    let optim_path = dir.join(&idx.optim);
    let bytes = read_capped(&optim_path, MAX_WEIGHTS_BYTES, "an optimiser state").map_err(|e| bad(&optim_path, e))?;
    tr.set_optimizer_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| bad(&optim_path, e))?;
    tr.seek(idx.iter);
    Ok(Some(tr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow_matching::{PIXELS, SIDE};
    use nodal::blocks::unet::UNetConfig;

    #[test]
    fn a_resumed_run_continues_from_the_saved_state() {
        let dev = Device::flex().autodiff();
        let unet = UNetConfig { image_channels: 1, channels: 8, time_features: 8, time_width: 16, middle_attention: 0 };
        let cfg = FlowMatchingConfig { unet, iters: 6, batch: 2, lr: 1e-3, warmup: 2, ..FlowMatchingConfig::default() };
        let pixels: Vec<u8> = (0..3 * PIXELS).map(|k| ((k * 37) % 256) as u8).collect();
        assert_eq!(pixels.len() / (SIDE * SIDE), 3);
        let dir = std::env::temp_dir().join(format!("nodal-fm-ckpt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(resume(&cfg, &dir, &dev).unwrap().is_none());
        let mut tr = Trainer::new(cfg.clone(), &dev).unwrap();
        for _ in 0..2 {
            tr.step(&pixels).unwrap();
        }
        save(&mut tr, &dir).unwrap();
        tr.step(&pixels).unwrap();
        save(&mut tr, &dir).unwrap();
        // Only the newest files remain.
        assert!(!dir.join("ckpt-2.optim").exists() && dir.join("ckpt-3.optim").exists());
        let back = resume(&cfg, &dir, &dev).unwrap().unwrap();
        assert_eq!(back.iter, 3);
        assert_eq!(back.ema.updates, 3);
        assert_eq!(flat_params(&back.model), flat_params(&tr.model));
        assert_eq!(back.ema.values, tr.ema.values);
        // Another setting is refused with both named; a larger --iters is accepted.
        let other = FlowMatchingConfig { lr: 2e-3, ..cfg.clone() };
        assert!(matches!(resume(&other, &dir, &dev), Err(FlowError::Checkpoint(_))));
        let longer = FlowMatchingConfig { iters: 10, ..cfg.clone() };
        let mut more = resume(&longer, &dir, &dev).unwrap().unwrap();
        more.step(&pixels).unwrap();
        assert_eq!(more.iter, 4);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
