//! # nodal-experiments
//!
//! The experiments behind nodal's command line, built on the `nodal` library: torchdiffeq's
//! spiral demo ([`spiral`]), the MNIST models of Chen et al. 2018 ([`mnist`]), the toy flows of
//! Dupont et al. 2019 ([`toy`]), shape morphing by homeomorphisms ([`shapes`]), a latent SDE on stochastic Lorenz paths
//! ([`latent_sde`]), latent ODEs on irregularly sampled series ([`latent_ode`]), PDE layers trained through stiff solves ([`pde`]), interacting particles learned by a Transformer field ([`particles`]), a bouncing ball's gravity and restitution learned through events ([`bouncing_ball`]) and the shared reference problem files ([`problem`]). burn's
//! optimisers update the fused MLP's flat parameters through [`flat_optim`].

#![deny(missing_docs)]

pub use nodal;
pub use nodal::solve;

pub mod bouncing_ball;
pub mod cnf;
pub mod flat_optim;
pub mod flow_matching;
pub mod latent_ode;
pub mod latent_sde;
pub mod mnist;
pub mod particles;
pub mod pde;
pub mod problem;
pub mod reconstruction;
pub mod seeded_init;
pub mod shapes;
pub mod spiral;
pub mod spiral_on_device;
pub mod toy;
