//! The layering rule, checked on the sources: the agent (`agent.rs`, the
//! composition root) and the command line above it build and hand down
//! what the lower layers use; no layer below imports them back. And the
//! README's layer table names every module under `src/`, so a new module
//! gets a place in it.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Files at or above the agent layer: they may name the agent.
const TOP: &[&str] = &["agent.rs", "cli.rs", "main.rs", "lib.rs", "bin"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Does `text` name the agent module (`crate::agent`, `wgnetconf::agent`)?
fn names_agent(text: &str) -> bool {
    ["crate::agent", "wgnetconf::agent"].iter().any(|needle| {
        text.match_indices(needle).any(|(i, m)| {
            let next = text[i + m.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

#[test]
fn no_layer_below_the_agent_imports_it() {
    let src = Path::new(ROOT).join("src");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src/") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if TOP.contains(&name) {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else if name.ends_with(".rs") {
            files.push(path);
        }
    }
    assert!(files.len() > 20, "found only {} source files", files.len());
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| names_agent(&std::fs::read_to_string(f).expect("source file")))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "below the agent layer, these name crate::agent: {offenders:?}"
    );
}

#[test]
fn the_check_sees_an_import() {
    assert!(names_agent("use crate::agent::Agent;"));
    assert!(names_agent("crate::agent::release_free_memory_soon();"));
    assert!(!names_agent("let agent = crate::agents_of(x);"));
}

#[test]
fn readme_layer_table_names_every_module() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let start = readme.find("## Layers").expect("a Layers section");
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + 1 + i);
    let table = &readme[start..end];
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("src")).expect("src/") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == "main.rs" || name == "lib.rs" {
            continue;
        }
        let cell = if path.is_dir() {
            format!("`src/{name}/`")
        } else {
            format!("`src/{name}`")
        };
        if !table.contains(&cell) {
            missing.push(cell);
        }
    }
    assert!(missing.is_empty(), "README's layer table lacks {missing:?}");
}
