//! What a solve keeps: outputs at given times (one grid for all lanes, or one per lane), every
//! accepted step with its interpolant (dense output), or every accepted step's end state.

/// Output times of the lanes.
#[derive(Debug, Clone, Copy)]
pub enum Grid<'a> {
    /// One grid for every lane.
    Shared(&'a [f64]),
    /// One grid per lane (all of equal length).
    PerLane(&'a [Vec<f64>]),
}

impl<'a> Grid<'a> {
    /// The grid of `lane`.
    pub fn of(&self, lane: usize) -> &'a [f64] {
        match self {
            Self::Shared(g) => g,
            Self::PerLane(gs) => &gs[lane],
        }
    }
}

/// What the loop records while it steps. Outputs at the grid's times are always recorded
/// (`ts[0]` is the start time).
#[derive(Debug, Clone, Copy)]
pub struct SaveAt<'a> {
    /// Output times.
    pub times: Grid<'a>,
    /// Land exactly on every output time rather than interpolating across it (where a state
    /// jumps, as the continuous adjoint's does; see [`crate::lanes::Lanes::at_output`]).
    pub land: bool,
    /// Keep every accepted step with the stages its interpolant needs
    /// ([`crate::DenseSolution`]).
    pub dense: bool,
    /// Keep the end time and state of every accepted step.
    pub steps: bool,
}

impl<'a> SaveAt<'a> {
    /// Outputs at `ts` only.
    pub fn times(ts: &'a [f64]) -> Self {
        Self { times: Grid::Shared(ts), land: false, dense: false, steps: false }
    }
    /// Outputs on one grid per lane.
    pub fn per_lane(ts: &'a [Vec<f64>]) -> Self {
        Self { times: Grid::PerLane(ts), land: false, dense: false, steps: false }
    }
    /// Also land on every output time.
    pub fn landing(mut self) -> Self {
        self.land = true;
        self
    }
    /// Also keep dense output.
    pub fn with_dense(mut self) -> Self {
        self.dense = true;
        self
    }
    /// Also keep every step.
    pub fn with_steps(mut self) -> Self {
        self.steps = true;
        self
    }
}
