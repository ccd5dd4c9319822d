//! How a command fails: one error type for the whole tool, mapped to exit codes in one place.
//!
//! | code | meaning |
//! |---:|---|
//! | 0 | done |
//! | 1 | the computation failed (a solve, training diverged); partial output may have been written |
//! | 2 | invalid input: an option, a file or a field of it (nothing was computed or overwritten) |
//! | 3 | some rows of a per-sample solve failed (the others are in the output) |
//! | 4 | an output could not be written (disk full, file-size limit, read-only folder) |
//! | 130 | interrupted by SIGINT after saving what was done |
//! | 141 | stdout was closed by its reader (a broken pipe ends quietly, as `SIGPIPE` would) |
//! | 143 | interrupted by SIGTERM after saving what was done |

use std::fmt::Display;
use std::process::ExitCode;

/// Why a command stopped short.
#[derive(Debug)]
pub enum Failure {
    /// An option, an input file or one of its fields is unusable (exit 2).
    Input(String),
    /// The computation failed (exit 1).
    Compute(String),
    /// Some rows of a per-sample solve failed (exit 3).
    Partial(String),
    /// An output could not be written (exit 4).
    Output(String),
    /// A signal asked the command to stop; what was done is saved (exit 130 or 143).
    Interrupted {
        /// The signal number (SIGINT or SIGTERM).
        signal: i32,
        /// What was saved and how to go on.
        message: String,
    },
    /// The reader of stdout went away (exit 141, no message).
    BrokenPipe,
}

/// What every command returns.
pub type CliResult = Result<(), Failure>;

impl Failure {
    /// Invalid input.
    pub fn input(e: impl Display) -> Self {
        Self::Input(e.to_string())
    }
    /// A failed computation.
    pub fn compute(e: impl Display) -> Self {
        Self::Compute(e.to_string())
    }
    /// A failed write. A full disk or a file-size limit says so.
    pub fn output(e: impl Display) -> Self {
        Self::Output(e.to_string())
    }
    /// A write to a file that failed (`nodal::io`'s errors).
    pub fn file(e: nodal::io::FileError) -> Self {
        Self::Output(e.to_string())
    }

    /// The exit code of this failure (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Compute(_) => 1,
            Self::Input(_) => 2,
            Self::Partial(_) => 3,
            Self::Output(_) => 4,
            Self::Interrupted { signal, .. } => (128 + signal) as u8,
            Self::BrokenPipe => 141,
        }
    }

    /// Print the message (if any) on stderr and return the exit code.
    pub fn report(self) -> ExitCode {
        let code = self.exit_code();
        match &self {
            Self::Input(m) | Self::Compute(m) | Self::Partial(m) | Self::Output(m) => crate::output::note(&format!("error: {m}")),
            Self::Interrupted { message, .. } => crate::output::note(message),
            Self::BrokenPipe => {}
        }
        ExitCode::from(code)
    }
}

/// Messages of computations (training, figures) that failed.
impl From<String> for Failure {
    fn from(m: String) -> Self {
        Self::Compute(m)
    }
}
