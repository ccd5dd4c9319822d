//! Fused kernels for the flex CPU backend, behind burn's backend-extension mechanism.
//!
//! Each kernel is a burn backend extension with an implementation for flex and one for
//! autodiff over flex (a hand-written backward), and a tensor-level entry that falls back to
//! burn's generic module when the tensor is on another backend or in a dtype the kernel does not
//! cover. Models call the entry ([`group_norm::group_norm`] in place of `GroupNorm::forward`,
//! [`conv2d::conv2d`] in place of `Conv2d::forward`) and keep burn's modules, parameters and records unchanged.
//! The convolution has two CPU kernels: a direct one on channels-last maps (`direct_conv`,
//! AVX-512, most layers) and im2col with packed products (few input channels, or no AVX-512).
//!
//! Setting the environment variable `NODAL_KERNELS=off` (read once per process) sends every
//! entry to burn's generic module instead: the same results up to `f32` round-off, for
//! comparing the two paths or ruling the kernels out when something looks wrong.

pub mod conv2d;
mod direct_conv;
mod flex_host;
pub mod group_norm;

pub use conv2d::conv2d;
pub use group_norm::group_norm;

#[cfg(test)]
mod tests;

/// Whether the kernels are on: true unless `NODAL_KERNELS` is `off` (or `0`, `false`) when
/// first asked.
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| !matches!(std::env::var("NODAL_KERNELS").as_deref(), Ok("off" | "0" | "false")))
}
