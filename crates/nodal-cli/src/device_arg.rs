//! `--device cpu|wgpu|cuda`: where a command's tensors live (see `nodal::backend`).

use crate::failure::Failure;
use clap::Args;
use nodal::backend::Backend;
use nodal::burn::tensor::Device;

/// The device option shared by the commands that train or evaluate burn modules.
#[derive(Args, Debug, Clone)]
pub struct DeviceArg {
    /// Where tensors live: cpu (burn's flex backend, always built), wgpu (a build with
    /// `--features wgpu`: Vulkan, Metal or DirectX 12, or Mesa's software Vulkan driver where
    /// there is no GPU) or cuda (not in this build).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl DeviceArg {
    /// Whether the option names the CPU (`cpu`, or its alias `flex`), where the host-only fused
    /// paths run.
    pub fn is_cpu(&self) -> bool {
        matches!(Backend::parse(&self.device), Ok(Backend::Cpu))
    }

    /// The backend's device, after a first operation on it worked; a backend this binary lacks
    /// or one that cannot start is an input failure (exit 2) naming the reason.
    pub fn device(&self) -> Result<Device, Failure> {
        let backend = Backend::parse(&self.device).map_err(|e| Failure::Input(format!("--device: {e}")))?;
        backend.device().map_err(|e| Failure::Input(format!("--device {}: {e}", backend.name())))
    }
}
