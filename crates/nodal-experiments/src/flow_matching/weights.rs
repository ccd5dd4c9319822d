//! Flow-matching weight files: the U-Net's (averaged) parameters as safetensors, with the run's
//! [`FlowMatchingConfig`] as JSON metadata so that a file alone rebuilds its architecture.

use super::{FlowMatchingConfig, MODEL_NAME};
use burn::tensor::Device;
use nodal::blocks::unet::UNet;
use nodal::io::FileError;
use nodal::module_weights::{load_module, read_metadata, save_module};
use std::path::Path;

/// Metadata key of the run's settings (JSON).
pub const META_CONFIG: &str = "flow_matching_config";

/// Save `model` with `cfg` and `extra` metadata, atomically.
pub fn save_unet(model: &UNet, cfg: &FlowMatchingConfig, path: &Path, extra: &[(&str, String)]) -> Result<(), FileError> {
    let mut meta: Vec<(&str, String)> = vec![(META_CONFIG, serde_json::to_string(cfg).unwrap_or_default())];
    meta.extend(extra.iter().cloned());
    save_module(model, MODEL_NAME, path, &meta, false)
}

/// The U-Net stored in `path` (on `device`) and the settings it was trained with.
pub fn load_unet(path: &Path, device: &Device) -> Result<(UNet, FlowMatchingConfig), String> {
    let meta = read_metadata(path).map_err(|e| e.to_string())?;
    let text = meta
        .get(META_CONFIG)
        .ok_or_else(|| format!("{}: no {META_CONFIG} metadata (not written by nodal train flow-matching)", path.display()))?;
    let cfg: FlowMatchingConfig = serde_json::from_str(text).map_err(|e| format!("{}: metadata {META_CONFIG}: {e}", path.display()))?;
    cfg.validate().map_err(|e| format!("{}: metadata {META_CONFIG}: {e}", path.display()))?;
    let model = load_module(cfg.unet.init(device), MODEL_NAME, path).map_err(|e| e.to_string())?;
    Ok((model, cfg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodal::blocks::unet::UNetConfig;

    #[test]
    fn weights_round_trip_with_their_settings() {
        let dev = Device::flex();
        let cfg = FlowMatchingConfig {
            unet: UNetConfig { image_channels: 1, channels: 8, time_features: 8, time_width: 16, middle_attention: 0 },
            ..Default::default()
        };
        let model = cfg.unet.init(&dev);
        let dir = std::env::temp_dir().join(format!("nodal-fm-weights-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        save_unet(&model, &cfg, &path, &[("iters", "3".into())]).unwrap();
        let (back, cfg2) = load_unet(&path, &dev).unwrap();
        assert_eq!(cfg2, cfg);
        assert_eq!(nodal::module_weights::flat_params(&back), nodal::module_weights::flat_params(&model));
        // A file without the settings is refused with a reason.
        save_module(&model, MODEL_NAME, &path, &[], false).unwrap();
        assert!(load_unet(&path, &dev).unwrap_err().contains(META_CONFIG));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
