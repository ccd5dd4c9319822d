//! Solves with events: the joint mode (one lane over a [`State`]) and the per-sample mode (each
//! row its own lane, stopping or jumping alone).

use super::{EventHit, Events};
use crate::error::{SolveError, SolveFailure};
use crate::integrate::{Record, diffeqsolve_with_events, finish_joint};
use crate::lanes::{Joint, RowDynamics, RowNorm, Rows};
use crate::norm::ErrorNorm;
use crate::options::SolveOptions;
use crate::save_at::SaveAt;
use crate::scalar::Scalar;
use crate::solution::{Solution, Tape};
use crate::state::State;
use crate::stats::Stats;
use crate::{Dynamics, per_sample::RowSolution};

/// A joint solve with events.
#[derive(Debug, Clone)]
pub struct EventSolution<S> {
    /// The outputs reached: all of them, or those up to a terminal event.
    pub solution: Solution<S>,
    /// Every event that fired, in order.
    pub hits: Vec<EventHit>,
    /// The tape `record` asked for (for [`crate::grad::events::event_gradients`]).
    pub tape: Option<Tape<S>>,
}

impl<S> EventSolution<S> {
    /// The terminal event that ended the solve, if one did.
    pub fn stopped(&self) -> Option<&EventHit> {
        self.hits.last().filter(|h| h.action == super::Action::Stop)
    }
}

/// Solve `dy/dt = f(t, y)` from `y0` at `ts[0]` through `ts`, as one lane, with `events`
/// checked after every accepted step (see [`crate::events`]). `record` keeps a tape for
/// gradients ([`Record::Every`]`(1)` for [`crate::grad::events::event_gradients`]).
pub fn solve_with_events<S: State, D: Dynamics<S>, N: ErrorNorm<S>, E: Events>(
    f: &mut D,
    y0: &S,
    ts: &[f64],
    opts: &SolveOptions,
    norm: &N,
    events: &mut E,
    record: Record,
) -> Result<EventSolution<S>, Box<SolveFailure<S>>> {
    let mut lanes = Joint::new(f, norm, y0, None);
    let out = diffeqsolve_with_events(&mut lanes, &opts.stepper(), &opts.control(), &SaveAt::times(ts), &opts.limits(), record, events);
    let (mut solution, lane) = finish_joint(lanes.ys, ts, out)?;
    solution.ts.truncate(solution.ys.len());
    Ok(EventSolution { solution, hits: lane.hits, tape: lane.tape })
}

/// A per-sample solve with events.
#[derive(Debug, Clone)]
pub struct RowEventSolution<T> {
    /// Outputs, statuses, statistics and tapes per row; outputs after a row's terminal event
    /// are NaN.
    pub rows: RowSolution<T>,
    /// The events each row hit, in order.
    pub hits: Vec<Vec<EventHit>>,
    /// Outputs each row reached (all of them unless it stopped at an event or failed).
    pub reached: Vec<usize>,
}

/// Solve every row of `y0` (`[batch][dim]`) on its own grid `ts[r]` with its own steps and its
/// own events (`events` sees the row index as the lane), under the row norm `norm`.
#[allow(clippy::too_many_arguments)]
pub fn solve_per_sample_with_events<T: Scalar, D: RowDynamics<T>, N: RowNorm<T>, E: Events>(
    f: &mut D,
    norm: N,
    y0: &[T],
    dim: usize,
    ts: &[Vec<f64>],
    opts: &SolveOptions,
    events: &mut E,
    record: Record,
) -> Result<RowEventSolution<T>, SolveError> {
    if dim == 0 || !y0.len().is_multiple_of(dim) {
        return Err(SolveError::Shape(format!("state of length {} is not a whole number of rows of width {dim}", y0.len())));
    }
    let batch = y0.len() / dim;
    if ts.len() != batch {
        return Err(SolveError::Shape(format!("{} output grids for {batch} rows", ts.len())));
    }
    let n_out = ts.first().map_or(0, |g| g.len());
    let mut lanes = Rows::new(f, norm, y0, dim, n_out);
    let lanes_out =
        diffeqsolve_with_events(&mut lanes, &opts.stepper(), &opts.control(), &SaveAt::per_lane(ts), &opts.limits(), record, events)?;
    let mut row_status = Vec::with_capacity(batch);
    let mut row_stats: Vec<Stats> = Vec::with_capacity(batch);
    let mut tapes = (record != Record::None).then(|| Vec::with_capacity(batch));
    let mut hits = Vec::with_capacity(batch);
    let mut reached = Vec::with_capacity(batch);
    for (r, lane) in lanes_out.into_iter().enumerate() {
        if lane.status.is_some() {
            lanes.poison(r, lane.reached);
        }
        row_status.push(lane.status);
        row_stats.push(lane.stats);
        reached.push(lane.reached);
        hits.push(lane.hits);
        if let (Some(t), Some(tape)) = (tapes.as_mut(), lane.tape) {
            t.push(tape);
        }
    }
    let rows = RowSolution { ys: lanes.ys, row_status, row_stats, calls: lanes.calls, row_evaluations: lanes.row_evaluations, tapes };
    Ok(RowEventSolution { rows, hits, reached })
}
