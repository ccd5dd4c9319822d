//! Typed options of a solve (no string registries, no keyword bags).

use crate::controller::PidController;
use crate::implicit::{Implicit, ImplicitMethod, ImplicitSettings};
use crate::stepper::MethodStepper;
use crate::tableau::{self, Tableau};

/// How steps are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepMode {
    /// Error-controlled steps (needs a tableau with an error estimator).
    Adaptive,
    /// Steps of this size from `t0` (the last one shortened to end on the final time).
    Fixed(f64),
}

/// Options of one solve. Build with [`SolveOptions::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// The explicit Runge-Kutta method (unused when [`SolveOptions::implicit`] is set).
    pub method: &'static Tableau,
    /// An implicit method for stiff systems, which replaces `method` (see [`crate::implicit`]).
    pub implicit: Option<Implicit>,
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Adaptive or fixed steps.
    pub step: StepMode,
    /// Step-size controller (adaptive mode).
    pub controller: PidController,
    /// First step; `None` selects it by Hairer's algorithm (two evaluations).
    pub first_step: Option<f64>,
    /// Smallest admissible step magnitude (adaptive mode); below it the solve fails.
    pub dt_min: f64,
    /// Largest admissible step magnitude.
    pub dt_max: f64,
    /// Most steps (accepted plus rejected) before the solve fails.
    pub max_steps: usize,
    /// Times that steps must land on rather than cross (known discontinuities of `f`).
    pub tstops: Vec<f64>,
    /// Most bytes a solve may store for gradients and dense output (see
    /// [`crate::Limits::max_memory`]); default [`DEFAULT_MAX_MEMORY`].
    pub max_memory: usize,
}

/// Default cap on what one solve stores (tape, dense steps): 4 GiB.
pub const DEFAULT_MAX_MEMORY: usize = 4 << 30;

impl SolveOptions {
    /// Defaults: the given method, rtol 1e-6, atol 1e-8 (adaptive when the method has an error
    /// estimator), I controller, automatic first step, at most 10 000 steps.
    pub fn new(method: &'static Tableau) -> Self {
        Self {
            method,
            implicit: None,
            rtol: 1e-6,
            atol: 1e-8,
            step: StepMode::Adaptive,
            controller: PidController::default(),
            first_step: None,
            dt_min: 0.0,
            dt_max: f64::INFINITY,
            max_steps: 10_000,
            tstops: Vec::new(),
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
    /// Set the cap on stored bytes (0 = none).
    pub fn with_max_memory(mut self, bytes: usize) -> Self {
        self.max_memory = bytes;
        self
    }
    /// Check these options without solving: tolerances, the step size or error estimator, and
    /// `max_steps` (what a solve would refuse before its first step).
    pub fn validate(&self) -> Result<(), crate::SolveError> {
        crate::integrate::check_setup(&self.stepper(), &self.control(), &self.limits())
    }
    /// Solve with the implicit `method` (default Newton and linear-solver settings).
    pub fn with_implicit(mut self, method: ImplicitMethod) -> Self {
        self.implicit = Some(Implicit { method, settings: ImplicitSettings::default() });
        self
    }
    /// Set the Newton and linear-solver settings of the implicit method (no effect without one).
    pub fn with_implicit_settings(mut self, settings: ImplicitSettings) -> Self {
        if let Some(im) = self.implicit.as_mut() {
            im.settings = settings;
        }
        self
    }
    /// Use the method called `name`: an explicit tableau (`"dopri5"`) or an implicit method
    /// (`"kvaerno5"`); `None` if there is no such method.
    pub fn with_method_name(mut self, name: &str) -> Option<Self> {
        if let Some(tab) = method_by_name(name) {
            self.method = tab;
            self.implicit = None;
            Some(self)
        } else {
            ImplicitMethod::by_name(name).map(|m| self.with_implicit(m))
        }
    }
    /// Name of the method in use.
    pub fn method_name(&self) -> &'static str {
        match self.implicit {
            Some(im) => im.method.name(),
            None => self.method.name,
        }
    }
    /// The stepper of these options: the implicit method if set, else the explicit tableau.
    pub fn stepper(&self) -> MethodStepper {
        use crate::implicit::{Esdirk, Rosenbrock, tableaus};
        let (rtol, atol) = (self.rtol, self.atol);
        match self.implicit {
            None => MethodStepper::Explicit(crate::ExplicitRk::new(self.method)),
            Some(Implicit { method, settings }) => match method {
                ImplicitMethod::Kvaerno3 => MethodStepper::Esdirk(Esdirk { tableau: &tableaus::KVAERNO3, settings, rtol, atol }),
                ImplicitMethod::Kvaerno5 => MethodStepper::Esdirk(Esdirk { tableau: &tableaus::KVAERNO5, settings, rtol, atol }),
                ImplicitMethod::Rodas5 => MethodStepper::Rosenbrock(Rosenbrock { tableau: &tableaus::RODAS5, settings, rtol, atol }),
            },
        }
    }
    /// Set both tolerances.
    pub fn with_tol(mut self, rtol: f64, atol: f64) -> Self {
        self.rtol = rtol;
        self.atol = atol;
        self
    }
    /// Use fixed steps of size `h`.
    pub fn with_fixed_step(mut self, h: f64) -> Self {
        self.step = StepMode::Fixed(h);
        self
    }
    /// Set the controller.
    pub fn with_controller(mut self, c: PidController) -> Self {
        self.controller = c;
        self
    }
    /// Set the step limit.
    pub fn with_max_steps(mut self, n: usize) -> Self {
        self.max_steps = n;
        self
    }
    /// Set the first step.
    pub fn with_first_step(mut self, h: f64) -> Self {
        self.first_step = Some(h);
        self
    }
    /// Set the times steps must not cross.
    pub fn with_tstops(mut self, t: Vec<f64>) -> Self {
        self.tstops = t;
        self
    }
}

/// Every built-in method, for lookup by name.
pub const METHODS: [&Tableau; 8] = [
    &tableau::EULER,
    &tableau::MIDPOINT,
    &tableau::HEUN,
    &tableau::RK4,
    &tableau::BOSH3,
    &tableau::DOPRI5,
    &tableau::TSIT5,
    &tableau::DOPRI8,
];

/// The built-in method called `name` (`"dopri5"`, `"tsit5"`, ...).
pub fn method_by_name(name: &str) -> Option<&'static Tableau> {
    METHODS.iter().copied().find(|t| t.name == name)
}
