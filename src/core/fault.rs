//! Test-only fault points, compiled in debug builds only (release builds
//! compile them to nothing): with `WGNETCONF_FAULT=panic-in-edit` (or
//! `panic-in-commit`; several separated by commas) in the agent's
//! environment, read once, that point panics, so tests prove that a panic in
//! one rpc is answered and leaves the agent serving (`core/panics.rs`).

/// Panics if `WGNETCONF_FAULT` names `name` (debug builds).
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
            panic!("fault point {name} (WGNETCONF_FAULT, test only)");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
