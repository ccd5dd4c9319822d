//! Writing to stdout and stderr without panicking: `println!` panics when stdout is a closed
//! pipe or a full device. Results go through [`emit`], which reports failure as a
//! [`Failure`]; messages go through [`note`], which drops them if stderr itself is gone.

use crate::failure::Failure;
use std::io::Write;

/// Write one line of results to stdout and flush it. A closed pipe is [`Failure::BrokenPipe`]
/// (quiet, exit 141); any other error (a full device) is [`Failure::Output`].
pub fn emit(line: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let r = out.write_all(line.as_bytes()).and_then(|_| out.write_all(b"\n")).and_then(|_| out.flush());
    r.map_err(|e| if e.kind() == std::io::ErrorKind::BrokenPipe { Failure::BrokenPipe } else { Failure::Output(format!("stdout: {e}")) })
}

/// [`emit`] of a JSON value, compact or indented.
pub fn emit_json(v: &serde_json::Value, pretty: bool) -> Result<(), Failure> {
    let text = if pretty { serde_json::to_string_pretty(v) } else { serde_json::to_string(v) };
    emit(&text.map_err(Failure::output)?)
}

/// A message for the person at the terminal, on stderr; lost (not a panic) if stderr is closed.
pub fn note(msg: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
}

/// Make writes past a file-size limit (`ulimit -f`) fail with EFBIG, reported as an output
/// error, instead of killing the process with SIGXFSZ.
pub fn ignore_sigxfsz() {
    // SAFETY: setting a signal's disposition to SIG_IGN at start-up, before any thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// The progress bar of a training loop: `done` of `total` iterations, hidden with `--quiet`.
pub fn iteration_bar(total: usize, done: usize, quiet: bool) -> indicatif::ProgressBar {
    let bar = if quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(total as u64) };
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} iters  {msg}  [{elapsed} < {eta}]") {
        bar.set_style(style);
    }
    bar.set_position(done as u64);
    bar
}

/// A run's `metrics.jsonl`, opened for appending when the run resumes and emptied otherwise.
pub fn open_metrics(path: &std::path::Path, resuming: bool) -> Result<std::io::BufWriter<std::fs::File>, Failure> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(resuming)
        .write(true)
        .truncate(!resuming)
        .open(path)
        .map_err(|e| Failure::Output(format!("{}: {e}", path.display())))?;
    Ok(std::io::BufWriter::new(file))
}
