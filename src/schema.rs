//! The libyang context: every module of the YANG search path, plus the IETF
//! modules the protocol needs.
//!
//! The context is built once at start and leaked: data trees borrow it for
//! the whole life of the process (`DataTree<'static>`), which is what lets
//! datastores and plugins hold trees without self-referential structs.

use std::path::{Path, PathBuf};

use yang5::context::{Context, ContextFlags};

/// Where Debian's `libyuma-base` installs the IETF modules (ietf-netconf,
/// ietf-netconf-acm, with-defaults, monitoring, nmda, notifications...).
pub const IETF_DIR: &str = "/usr/share/yuma/modules/ietf";

/// Modules the agent itself needs, loaded before the search path's ones.
/// ietf-netconf brings the `nc:operation` annotation libyang uses to parse
/// edit-config payloads.
const PROTOCOL_MODULES: &[(&str, &[&str])] = &[
    ("ietf-netconf", &["*"]),
    ("ietf-datastores", &["*"]),
    ("ietf-netconf-nmda", &["*"]),
    ("ietf-netconf-notifications", &["*"]),
    ("ietf-netconf-with-defaults", &["*"]),
    ("ietf-netconf-monitoring", &["*"]),
    // RFC 8341: its /nacm is the access policy.
    ("ietf-netconf-acm", &["*"]),
];

/// libyang's own ietf-yang-library (RFC 8525), implemented by the context;
/// named with its revision so the older one in [`IETF_DIR`] stays unused.
const YANG_LIBRARY: (&str, &str) = ("ietf-yang-library", "2019-01-04");

/// The repository's own YANG directory (used when running from a checkout)
/// and the installed one.
pub fn default_yang_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("yang");
    if repo.is_dir() {
        dirs.push(repo);
    }
    let installed = PathBuf::from("/usr/share/wgnetconf/yang");
    if installed.is_dir() {
        dirs.push(installed);
    }
    dirs
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("libyang: {0}")]
    Libyang(String),
    #[error("cannot read YANG directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("cannot load YANG module {module} from {dir}: {reason}")]
    Module {
        module: String,
        dir: PathBuf,
        reason: String,
    },
}

/// A loaded module, for capabilities and (later) the YANG library.
#[derive(Clone, Debug)]
pub struct LoadedModule {
    pub name: String,
    pub revision: Option<String>,
    pub namespace: String,
}

pub struct Schema {
    pub ctx: &'static Context,
    /// Modules loaded from the search path and protocol modules, implemented.
    pub modules: Vec<LoadedModule>,
    /// Modules whose edits may be validated and committed in scope
    /// (`datastore::scope::eligible_modules`).
    pub scoped: std::collections::HashSet<String>,
}

impl Schema {
    /// Builds the context from `dirs` (every `*.yang` in them is loaded) and
    /// the IETF directory for imports.
    pub fn load(dirs: &[PathBuf]) -> Result<Schema, SchemaError> {
        let mut ctx = Context::new(ContextFlags::DISABLE_SEARCHDIR_CWD)
            .map_err(|e| SchemaError::Libyang(e.to_string()))?;
        for d in dirs {
            ctx.set_searchdir(d)
                .map_err(|e| SchemaError::Libyang(format!("{}: {e}", d.display())))?;
        }
        if Path::new(IETF_DIR).is_dir() {
            ctx.set_searchdir(IETF_DIR)
                .map_err(|e| SchemaError::Libyang(e.to_string()))?;
        }
        let mut names: Vec<(String, Option<String>, PathBuf)> = Vec::new();
        for (m, _) in PROTOCOL_MODULES {
            names.push((m.to_string(), None, PathBuf::from(IETF_DIR)));
        }
        names.push((
            YANG_LIBRARY.0.to_string(),
            Some(YANG_LIBRARY.1.to_string()),
            PathBuf::from(IETF_DIR),
        ));
        for d in dirs {
            let mut found = Vec::new();
            for entry in std::fs::read_dir(d).map_err(|e| SchemaError::Dir(d.clone(), e))? {
                let entry = entry.map_err(|e| SchemaError::Dir(d.clone(), e))?;
                let file = entry.file_name().to_string_lossy().to_string();
                let Some(stem) = file.strip_suffix(".yang") else {
                    continue;
                };
                let (name, rev) = match stem.split_once('@') {
                    Some((n, r)) => (n.to_string(), Some(r.to_string())),
                    None => (stem.to_string(), None),
                };
                if is_submodule(&entry.path()) {
                    continue;
                }
                found.push((name, rev, d.clone()));
            }
            found.sort();
            names.extend(found);
        }
        for (name, rev, dir) in &names {
            let features: &[&str] = &["*"];
            ctx.load_module(name, rev.as_deref(), features)
                .map_err(|e| SchemaError::Module {
                    module: name.clone(),
                    dir: dir.clone(),
                    reason: e.to_string(),
                })?;
        }
        let ctx: &'static Context = Box::leak(Box::new(ctx));
        let mut modules = Vec::new();
        for (name, _, _) in &names {
            if modules.iter().any(|m: &LoadedModule| &m.name == name) {
                continue;
            }
            if let Some(m) = ctx.get_module_implemented(name) {
                modules.push(LoadedModule {
                    name: m.name().to_string(),
                    revision: m.revision().map(str::to_string),
                    namespace: m.namespace().to_string(),
                });
            }
        }
        // WGNETCONF_SCOPED=0 commits everything through the whole-datastore
        // path (the differential tests compare the two).
        let scoped = if std::env::var("WGNETCONF_SCOPED").as_deref() == Ok("0") {
            Default::default()
        } else {
            crate::datastore::scope::eligible_modules(ctx)
        };
        tracing::debug!(?scoped, "modules committed in scope");
        Ok(Schema {
            ctx,
            modules,
            scoped,
        })
    }

    /// The `<hello>` capability URI of each loaded module (RFC 6020 §5.6.4).
    pub fn module_capabilities(&self) -> Vec<String> {
        self.modules
            .iter()
            .map(|m| match &m.revision {
                Some(r) => format!("{}?module={}&revision={}", m.namespace, m.name, r),
                None => format!("{}?module={}", m.namespace, m.name),
            })
            .collect()
    }

    /// Module name for an XML namespace.
    pub fn module_by_ns(&self, ns: &str) -> Option<yang5::schema::SchemaModule<'static>> {
        self.ctx.get_module_implemented_ns(ns)
    }
}

/// A file that starts with `submodule` is loaded through its module.
fn is_submodule(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("//"))
                .is_some_and(|l| l.starts_with("submodule"))
        })
        .unwrap_or(false)
}
