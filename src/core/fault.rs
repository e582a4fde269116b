//! Test-only fault points, compiled in debug builds only (release builds
//! compile them to nothing): with `WGNETCONF_FAULT=panic-in-edit` (or
//! `panic-in-commit`; several separated by commas) in the agent's
//! environment, read once, that point panics, so tests prove that a panic in
//! one rpc is answered and leaves the agent serving (`core/panics.rs`).
//! `hang-in-edit` blocks that edit forever instead, holding the core lock:
//! a wedged core, which must stop the systemd watchdog pings.
//! `hold-in-read` holds the first read to reach it (outside the core lock,
//! `core/read.rs`), `hold-in-parse` the first edit-config's parse (before
//! the lock, `core/body.rs`), until the test lets it go: the point creates
//! `$WGNETCONF_FAULT_HOLD.held`, then waits for
//! `$WGNETCONF_FAULT_HOLD.release` to exist; later calls pass (one hold
//! per agent: name one `hold-` point at a time).

/// Panics (or, for a `hang-` point, blocks forever; for a `hold-` point,
/// holds the first caller) if `WGNETCONF_FAULT` names `name` (debug builds).
pub(super) fn point(name: &str) {
    #[cfg(debug_assertions)]
    {
        static FAULTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let faults = FAULTS.get_or_init(|| {
            std::env::var("WGNETCONF_FAULT")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default()
        });
        if faults.iter().any(|f| f == name) {
            if name.starts_with("hang-") {
                tracing::warn!("fault point {name}: blocking forever (WGNETCONF_FAULT, test only)");
                loop {
                    std::thread::park();
                }
            }
            if name.starts_with("hold-") {
                hold(name);
                return;
            }
            panic!("fault point {name} (WGNETCONF_FAULT, test only)");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

/// The first call of a `hold-` point waits for the test's release file.
#[cfg(debug_assertions)]
fn hold(name: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static HELD: AtomicBool = AtomicBool::new(false);
    if HELD.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(base) = std::env::var("WGNETCONF_FAULT_HOLD") else {
        return;
    };
    tracing::warn!("fault point {name}: holding until {base}.release exists (test only)");
    if let Err(e) = std::fs::write(format!("{base}.held"), name) {
        tracing::warn!("fault point {name}: cannot write {base}.held: {e}");
    }
    let release = std::path::PathBuf::from(format!("{base}.release"));
    // Polling a file: the test and the agent are separate processes.
    while !release.exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
