//! The tokio runtime our plugins do their I/O on (token validation, Redis, caches).
//!
//! Hive Router runs on ntex workers; our shared crates are tokio-based. Each plugin that
//! needs I/O gets this one small runtime, living as long as the process on a thread of
//! its own (so it is never dropped inside the router's async context).

use std::sync::OnceLock;

static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();

/// The process-wide plugin I/O runtime, started on first use.
pub fn runtime() -> std::io::Result<tokio::runtime::Handle> {
    if let Some(handle) = RUNTIME.get() {
        return Ok(handle.clone());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("vitrina-plugin-io")
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("vitrina-plugin-runtime".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    // A concurrent first use may have won: theirs is kept, ours idles harmlessly.
    Ok(RUNTIME.get_or_init(|| handle).clone())
}

/// Runs `future` to completion on the I/O runtime from plugin initialisation, which runs
/// inside the router's runtime where blocking on another one directly is not allowed.
pub fn block_on_io<F>(future: F) -> std::io::Result<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let io = runtime()?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| io.block_on(future))
            .join()
            .map_err(|_| std::io::Error::other("plugin initialisation thread panicked"))
    })
}
