//! Where tensors live: burn's `flex` backend on the CPU (the default, always built), or burn's
//! `wgpu` backend (the cargo feature `wgpu`: Vulkan, Metal or DirectX 12 as the machine offers,
//! and Mesa's software Vulkan driver lavapipe where there is no GPU).
//!
//! Models, solvers and gradients are written against burn's device-generic `Tensor` API, so the
//! same code runs on either; nodal's own CPU kernels ([`crate::kernels`]) serve flex only and
//! fall back to burn's modules elsewhere. A backend that this build lacks, or a GPU backend
//! that finds no adapter, is a [`BackendError`], never a panic.

use burn::tensor::Device;

/// A compute backend, by the name used on the command line (`--device cpu|wgpu|cuda`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// burn's pure-Rust `flex` backend on the CPU.
    #[default]
    Cpu,
    /// burn's `wgpu` backend (cargo feature `wgpu`).
    Wgpu,
    /// burn's CUDA backend: not offered by this build (see [`BackendError::NotBuilt`]).
    Cuda,
}

/// Why a backend cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// An unknown name.
    #[error("unknown device {0:?}: expected cpu, wgpu or cuda")]
    Unknown(String),
    /// This binary was built without the backend.
    #[error("this build of nodal has no {backend} backend: {how}")]
    NotBuilt {
        /// The backend asked for.
        backend: &'static str,
        /// How to get one.
        how: &'static str,
    },
    /// The backend is built but could not run a first operation (no adapter, driver failure).
    #[error("the {backend} backend could not start: {reason}")]
    Unavailable {
        /// The backend asked for.
        backend: &'static str,
        /// What went wrong (the driver's or the runtime's message).
        reason: String,
    },
}

impl Backend {
    /// Parse `cpu`, `wgpu` or `cuda`.
    pub fn parse(name: &str) -> Result<Self, BackendError> {
        match name {
            "cpu" | "flex" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(BackendError::Unknown(other.to_string())),
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// The backend's default device (without autodiff; call `.autodiff()` on it to train),
    /// after a first operation on it succeeded.
    pub fn device(self) -> Result<Device, BackendError> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            Self::Wgpu => wgpu_device(),
            Self::Cuda => Err(BackendError::NotBuilt {
                backend: "cuda",
                how: "burn's CUDA backend is not wired into nodal yet; use --device wgpu (cargo feature wgpu) for a GPU",
            }),
        }
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device, BackendError> {
    use burn::tensor::{DeviceKind, Tensor};
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    // burn starts the runtime lazily and panics when it finds no adapter: probe it once here so
    // that the caller gets an error instead.
    let probe = device.clone();
    let started = std::panic::catch_unwind(move || {
        let x = Tensor::<1>::from_floats([1.0, 2.0], &probe);
        x.sum().into_scalar::<f32>()
    });
    match started {
        Ok(v) if v == 3.0 => Ok(device),
        Ok(v) => Err(BackendError::Unavailable { backend: "wgpu", reason: format!("the probe 1 + 2 gave {v}") }),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the runtime panicked".into());
            Err(BackendError::Unavailable { backend: "wgpu", reason })
        }
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device, BackendError> {
    Err(BackendError::NotBuilt { backend: "wgpu", how: "rebuild with `cargo build --release --features wgpu`" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_the_cpu_is_always_there() {
        for b in [Backend::Cpu, Backend::Wgpu, Backend::Cuda] {
            assert_eq!(Backend::parse(b.name()), Ok(b));
        }
        assert!(matches!(Backend::parse("tpu"), Err(BackendError::Unknown(_))));
        assert!(Backend::Cpu.device().is_ok());
        let cuda = Backend::Cuda.device().unwrap_err().to_string();
        assert!(cuda.contains("cuda"), "{cuda}");
        #[cfg(not(feature = "wgpu"))]
        assert!(Backend::Wgpu.device().unwrap_err().to_string().contains("--features wgpu"));
    }
}
