//! A Transformer vector field over sets of tokens `[batch, n, d]` (Vaswani et al. 2017, pre-norm
//! as in Xiong et al. 2020), for interacting particles and other set-valued states.
//!
//! ```text
//! h₀ = W_in y + b_in                                   (per token)
//! hₗ' = hₗ + A_l c(t)                                  (time embedding, every token)
//! hₗ₊₁ = hₗ' + MHSA(LN(hₗ')),  then  hₗ₊₁ += MLP(LN(hₗ₊₁))
//! f(t, y) = W_out LN(h_L) + b_out
//! ```
//!
//! There is no positional encoding and every map except attention acts per token, so permuting
//! the tokens permutes the output the same way, and the same weights take any number of tokens
//! `n` (the attention is a softmax-weighted mean over the set).

use super::time_embedding::TimeEmbedding;
use crate::neural_ode::shaped::FieldNd;
use burn::module::Module;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

/// Sizes of a [`SetTransformer`].
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SetTransformerConfig {
    /// Features per token of the state.
    pub token_features: usize,
    /// Model width.
    pub width: usize,
    /// Attention heads (dividing `width`).
    pub heads: usize,
    /// Layers.
    pub layers: usize,
    /// Hidden width of each MLP.
    pub mlp_width: usize,
    /// Sinusoidal features of `t`.
    pub time_features: usize,
}

impl SetTransformerConfig {
    /// The Transformer with these sizes (burn's default initialisation).
    pub fn init(&self, device: &Device) -> SetTransformer {
        let w = self.width;
        SetTransformer {
            time: TimeEmbedding::new(self.time_features, w, device),
            input: LinearConfig::new(self.token_features, w).init(device),
            layers: (0..self.layers)
                .map(|_| TransformerLayer {
                    time: LinearConfig::new(w, w).init(device),
                    norm1: LayerNormConfig::new(w).init(device),
                    attention: MultiHeadAttentionConfig::new(w, self.heads).with_dropout(0.0).init(device),
                    norm2: LayerNormConfig::new(w).init(device),
                    mlp1: LinearConfig::new(w, self.mlp_width).init(device),
                    mlp2: LinearConfig::new(self.mlp_width, w).init(device),
                })
                .collect(),
            norm_out: LayerNormConfig::new(w).init(device),
            output: LinearConfig::new(w, self.token_features).init(device),
        }
    }
}

/// One pre-norm layer with its time conditioning.
#[derive(Module, Debug)]
pub struct TransformerLayer {
    /// `c(t)` to a shift added to every token.
    pub time: Linear,
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Self-attention over the tokens.
    pub attention: MultiHeadAttention,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// MLP input layer.
    pub mlp1: Linear,
    /// MLP output layer.
    pub mlp2: Linear,
}

impl TransformerLayer {
    /// `[b, n, w]` and `c(t)` (`[1, w]`) to `[b, n, w]`.
    pub fn forward(&self, h: Tensor<3>, c: &Tensor<2>) -> Tensor<3> {
        let w = h.dims()[2];
        let h = h + self.time.forward(c.clone()).reshape([1, 1, w]);
        let h = h.clone() + self.attention.forward(MhaInput::self_attn(self.norm1.forward(h))).context;
        h.clone() + self.mlp2.forward(gelu(self.mlp1.forward(self.norm2.forward(h))))
    }
}

/// The Transformer field. Build with [`SetTransformerConfig::init`]; see the module docs.
#[derive(Module, Debug)]
pub struct SetTransformer {
    /// `c(t)`.
    pub time: TimeEmbedding,
    /// Token features to width.
    pub input: Linear,
    /// The layers.
    pub layers: Vec<TransformerLayer>,
    /// Final norm.
    pub norm_out: LayerNorm,
    /// Width to token features.
    pub output: Linear,
}

impl FieldNd<3> for SetTransformer {
    fn forward(&self, t: f64, y: Tensor<3>) -> Tensor<3> {
        let c = self.time.forward(t);
        let mut h = self.input.forward(y);
        for layer in &self.layers {
            h = layer.forward(h, &c);
        }
        self.output.forward(self.norm_out.forward(h))
    }
}
