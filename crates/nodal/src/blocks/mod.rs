//! Time-conditioned building blocks for dynamics: reusable burn modules that implement
//! [`crate::neural_ode::shaped::FieldNd`] on states of their natural rank, ready to be wrapped in
//! [`crate::neural_ode::shaped::Shaped`] and solved by [`crate::neural_ode::NeuralOde`].
//!
//! - [`time_embedding`]: sinusoidal features of `t` and a small MLP (Vaswani et al. 2017;
//!   Ho et al. 2020), shared by the blocks below.
//! - [`conv_field`]: the ConvNet block of the MNIST ODE-Net (Chen et al. 2018): group norms,
//!   ReLU, 3x3 convolutions that see `t` as an extra channel; `[batch, c, h, w]`.
//! - [`unet`]: a U-Net (Ronneberger et al. 2015) with residual blocks, group norms, skip
//!   connections and the time embedding added in every block; `[batch, c, h, w]`, the vector
//!   field of flow matching (Lipman et al. 2023).
//! - [`spatial_attention`]: residual multi-head self-attention over the positions of a
//!   feature map (the U-Net's optional middle attention); `[batch, c, h, w]`.
//! - [`transformer`]: a pre-norm Transformer (Vaswani et al. 2017) over a set of tokens
//!   `[batch, n, d]`, time embedding added to every token, no positional encoding, so the field
//!   is permutation-equivariant and takes any number of tokens.
//!
//! Every block keeps samples independent (group and layer norms are per sample), so per-sample
//! solves and per-row gradients are meaningful. Their tests (shapes, time conditioning,
//! equivariance, gradients against central differences) are in `tests/blocks.rs`.

pub mod conv_field;
pub mod spatial_attention;
pub mod time_embedding;
pub mod transformer;
pub mod unet;
