//! Work that may block (a render of unknown length, a disk sync) run from async code without
//! holding up the other tasks of the runtime worker it is called on.

/// Runs `work` so that the runtime worker calling it hands its other tasks to another thread
/// first (`block_in_place`). Off a multi-threaded runtime (a blocking thread, a test's
/// single-threaded runtime, no runtime) it simply runs.
pub fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}
