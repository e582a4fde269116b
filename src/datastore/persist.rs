//! Crash-safe files: [`write_atomic`] (shared with the plugins, so it lives
//! in the plugin API) and its durable removal.

use std::fs::{self, File};
use std::path::Path;

pub use wgnetconf_plugin_api::persist::write_atomic;

/// Removes `path` durably (no error if it is already gone).
pub fn remove_durable(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
