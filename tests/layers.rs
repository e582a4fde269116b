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

/// Every `.name` field access in the code of `text` (`x.name` not
/// followed by `(` nor by more of an identifier; comments skipped): the
/// line numbers.
fn field_accesses(text: &str, name: &str) -> Vec<usize> {
    let needle = format!(".{name}");
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let hit = code.match_indices(&needle).any(|(i, m)| {
            let next = code[i + m.len()..].chars().next();
            !next.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '(')
        });
        if hit {
            out.push(n + 1);
        }
    }
    out
}

/// Running has one owner (`src/datastore/running.rs`): its tree,
/// generation, `unique` index and journal are private fields there, the
/// datastores hold it in a private field, and nothing else reaches into
/// either (reads go through `Datastores::running()`, changes through the
/// owner's methods).
#[test]
fn running_is_owned_by_one_type() {
    let src = Path::new(ROOT).join("src");
    let owner = src.join("datastore/running.rs");
    let holder = src.join("datastore/mod.rs");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offenders = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("source file");
        if text.contains("pub running") || text.contains("pub(crate) running") {
            offenders.push(format!("{}: a public running field", f.display()));
        }
        if *f == owner {
            continue;
        }
        // Running's own fields.
        for name in ["journal", "unique", "running_gen"] {
            for line in field_accesses(&text, name) {
                offenders.push(format!("{}:{line}: .{name}", f.display()));
            }
        }
        if *f != holder {
            for line in field_accesses(&text, "running") {
                offenders.push(format!("{}:{line}: .running", f.display()));
            }
        }
    }
    let text = std::fs::read_to_string(&owner).expect("running.rs");
    let start = text.find("pub struct Running {").expect("the owner type");
    let body = &text[start..start + text[start..].find('}').expect("its end")];
    if body
        .lines()
        .skip(1)
        .any(|l| l.trim_start().starts_with("pub"))
    {
        offenders.push("Running has a public field".to_string());
    }
    assert!(offenders.is_empty(), "running reached into: {offenders:?}");
}

#[test]
fn the_ownership_check_sees_a_field_access() {
    assert_eq!(
        field_accesses("x\nlet t = &ds.running;", "running"),
        vec![2]
    );
    assert_eq!(field_accesses("ds.running.tree()", "running"), vec![1]);
    assert!(field_accesses("ds.running()", "running").is_empty());
    assert!(field_accesses("ds.running_for_commit(s)", "running").is_empty());
    assert_eq!(field_accesses("self.ds.journal = j;", "journal"), vec![1]);
    assert!(field_accesses("/// `running.journal`", "journal").is_empty());
}
