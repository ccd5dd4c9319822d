//! Augmentation for augmented neural ODEs (Dupont, Doucet, Teh 2019, "Augmented Neural ODEs"):
//! the state is lifted from `dim` to `dim + extra` by appending zeros, so that trajectories may
//! pass each other in the extra dimensions (a plain neural ODE's flow is a homeomorphism of the
//! input space and cannot, e.g., map 1 -> -1 and -1 -> 1 in one dimension).

use burn::module::Module;
use burn::tensor::Tensor;

/// Appends `extra` zero features to each row: `[batch, dim] -> [batch, dim + extra]`.
#[derive(Module, Debug)]
pub struct Augment {
    /// Number of zero features appended.
    pub extra: usize,
}

impl Augment {
    /// A layer appending `extra` zeros (0 is the identity).
    pub fn new(extra: usize) -> Self {
        Self { extra }
    }

    /// `[batch, dim] -> [batch, dim + extra]`, the new features zero.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        if self.extra == 0 {
            return x;
        }
        let [b, _] = x.dims();
        let zeros = Tensor::<2>::zeros([b, self.extra], (&x.device(), x.dtype()));
        Tensor::cat(vec![x, zeros], 1)
    }

    /// The first `dim` features of an augmented state: `[batch, dim + extra] -> [batch, dim]`.
    pub fn project(&self, z: Tensor<2>, dim: usize) -> Tensor<2> {
        let [b, _] = z.dims();
        z.slice([0..b, 0..dim])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn appends_zeros_and_projects_back() {
        let dev = Device::flex();
        let x = Tensor::<2>::from_data([[1.0f32, 2.0], [3.0, 4.0]], &dev);
        let a = Augment::new(3);
        let z = a.forward(x.clone());
        assert_eq!(z.dims(), [2, 5]);
        let v: Vec<f32> = z.clone().into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        assert_eq!(v, vec![1.0, 2.0, 0.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0]);
        let back: Vec<f32> = a.project(z, 2).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
        assert_eq!(back, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(Augment::new(0).forward(x).dims(), [2, 2]);
    }
}
