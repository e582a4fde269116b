//! Test-only fault points, compiled in debug builds only (release builds
//! compile them to nothing): with `WGNETCONF_FAULT=panic-in-edit` (or
//! `panic-in-commit`; several separated by commas) in the agent's
//! environment, read once, that point panics, so tests prove that a panic in
//! one rpc is answered and leaves the agent serving (`core/panics.rs`).
//! `hang-in-edit` blocks that edit forever instead, holding the core lock:
//! a wedged core, which must stop the systemd watchdog pings.

/// Panics (or, for a `hang-` point, blocks forever) if `WGNETCONF_FAULT`
/// names `name` (debug builds).
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
            panic!("fault point {name} (WGNETCONF_FAULT, test only)");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
