//! glibc's allocator, set up for tensor workloads.
//!
//! A training step allocates and frees the same few-megabyte buffers many times (activations,
//! unfolded and channels-last maps, gradients). With glibc's defaults, blocks above the
//! dynamic mmap threshold are mapped and unmapped on every call, and the heap top is trimmed
//! after frees, so each step pays page faults and zeroing again: 5-12% of an MNIST step here
//! (docs/benchmarks.md). [`keep_freed_memory`] raises both thresholds so freed blocks are
//! reused; peak resident memory stays where it was in those measurements.

/// Raises glibc's mmap and trim thresholds to 1 GiB, unless the user set either through
/// `MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_` (theirs win). Does nothing on other C
/// libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some() {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is called before any thread
        // of ours is started.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}
