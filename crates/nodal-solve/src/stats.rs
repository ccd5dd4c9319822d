//! Work counters reported by every solve, forward and backward.

/// Work done by one solve (or one backward pass).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Evaluations of the dynamics `f(t, y)`.
    pub nfe: usize,
    /// Vector-Jacobian products of the dynamics (backward passes only).
    pub nvjp: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps.
    pub rejected: usize,
    /// Jacobians of the dynamics formed (implicit methods with dense linear algebra; each
    /// costs one evaluation per state entry, counted in `nfe`).
    pub jacobians: usize,
    /// LU factorisations of the iteration matrix (implicit methods, dense linear algebra).
    pub factorisations: usize,
    /// Newton iterations (ESDIRK methods).
    pub newton_iterations: usize,
    /// Krylov (GMRES) iterations of matrix-free linear solves; each costs one evaluation.
    pub linear_iterations: usize,
}

impl Stats {
    /// Accepted plus rejected steps.
    pub fn steps(&self) -> usize {
        self.accepted + self.rejected
    }
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Self) {
        self.nfe += o.nfe;
        self.nvjp += o.nvjp;
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.jacobians += o.jacobians;
        self.factorisations += o.factorisations;
        self.newton_iterations += o.newton_iterations;
        self.linear_iterations += o.linear_iterations;
    }
}
