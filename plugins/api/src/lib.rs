//! The plugin API of wgnetconf.
//!
//! A plugin claims one or more YANG modules and takes part in every commit that
//! touches them. The agent owns the libyang context and the datastores; the
//! plugin only ever sees libyang data trees (never XML, never SSH).
//!
//! A commit runs in phases, in this order, and serialised with every other
//! commit (the agent holds one commit at a time):
//!
//! 1. [`Phase::Validate`]: checks libyang cannot express (a key that decodes to
//!    32 bytes, prefixes without host bits, ...). Nothing may change yet.
//! 2. [`Phase::Prepare`]: the plugin may propose server-chosen values for the
//!    new tree (a generated private key). The agent validates them (and the diff
//!    the later phases get includes them).
//! 3. [`Phase::Apply`]: program the system. If this fails, the plugin itself
//!    must leave the system as it was before the call.
//! 4. [`Phase::Abort`]: only for plugins whose apply already succeeded when a
//!    later plugin failed: undo that apply.
//!
//! Running is replaced only after every plugin applied.

use std::fmt;

pub mod diff;
pub mod persist;
pub mod time;

pub use yang5;
use yang5::context::Context;
use yang5::data::{DataDiff, DataTree};

/// The phase of a commit, as a plain enum (as holo's northbound does) so logs
/// and errors can say where a commit stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Validate,
    Prepare,
    Apply,
    Abort,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Validate => "validate",
            Phase::Prepare => "prepare",
            Phase::Apply => "apply",
            Phase::Abort => "abort",
        })
    }
}

/// Why the plugin refused or failed a commit. Becomes an RFC 6241 rpc-error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    /// RFC 6241 error-tag. `invalid-value` for a refused value,
    /// `operation-failed` when programming the system failed.
    pub tag: ErrorTag,
    /// Instance path of the offending node, JSON-prefixed as libyang prints it
    /// (`/wgnetconf-tunnel:tunnel/wireguard[instance='1']/listen-port`). The
    /// agent turns it into an XML error-path with module prefixes.
    pub path: Option<String>,
    /// A message an operator understands (what is wrong and, where possible,
    /// what to do instead).
    pub message: String,
    /// error-app-tag, if any.
    pub app_tag: Option<String>,
}

/// The subset of RFC 6241 error-tags a plugin may raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorTag {
    InvalidValue,
    OperationFailed,
    DataExists,
    DataMissing,
    ResourceDenied,
}

impl ErrorTag {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorTag::InvalidValue => "invalid-value",
            ErrorTag::OperationFailed => "operation-failed",
            ErrorTag::DataExists => "data-exists",
            ErrorTag::DataMissing => "data-missing",
            ErrorTag::ResourceDenied => "resource-denied",
        }
    }
}

impl PluginError {
    /// A refused value at `path`.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError {
            tag: ErrorTag::InvalidValue,
            path: Some(path.into()),
            message: message.into(),
            app_tag: None,
        }
    }

    /// Programming the system failed (the plugin already undid its part).
    pub fn failed(message: impl Into<String>) -> Self {
        PluginError {
            tag: ErrorTag::OperationFailed,
            path: None,
            message: message.into(),
            app_tag: None,
        }
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn with_app_tag(mut self, tag: impl Into<String>) -> Self {
        self.app_tag = Some(tag.into());
        self
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{}: {}", p, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PluginError {}

/// What one drift check found and did ([`Plugin::check_drift`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriftReport {
    /// Differences between the system and the applied configuration.
    pub found: u32,
    /// Of those, how many a repair put back.
    pub repaired: u32,
    /// Of those, how many a repair tried and failed to put back.
    pub failed: u32,
}

impl std::ops::AddAssign for DriftReport {
    fn add_assign(&mut self, o: DriftReport) {
        self.found += o.found;
        self.repaired += o.repaired;
        self.failed += o.failed;
    }
}

/// What a plugin sees of one commit.
///
/// `new` is the validated would-be running (with default nodes added),
/// `diff` the libyang diff from running to `new`, and `old` running before
/// the commit — at least the subtrees the diff touches, with their
/// ancestors: a commit that changes a few nodes gives a partial `old` rather
/// than copying the whole datastore (a plugin keeps its own model of what it
/// applied). Trees live in the agent's
/// context, which lives for the whole process.
pub struct Commit<'a> {
    pub context: &'static Context,
    pub old: &'a DataTree<'static>,
    pub new: &'a DataTree<'static>,
    pub diff: &'a DataDiff<'static>,
}

/// What a plugin may change during [`Phase::Prepare`]: it reads the commit
/// like in the other phases and proposes server-chosen values with
/// [`PrepareCommit::set`]; the agent writes them into the new configuration,
/// validates it again and brings the diff up to date (only when something was
/// set).
pub struct PrepareCommit<'a> {
    pub context: &'static Context,
    pub old: &'a DataTree<'static>,
    pub new: &'a DataTree<'static>,
    pub diff: &'a DataDiff<'static>,
    /// The proposed values: (JSON instance path of a leaf, value).
    pub sets: Vec<(String, String)>,
}

impl PrepareCommit<'_> {
    /// Proposes `value` for the leaf at `path`.
    pub fn set(&mut self, path: impl Into<String>, value: impl Into<String>) {
        self.sets.push((path.into(), value.into()));
    }
}

/// One plugin. The agent calls it from one thread at a time (commits are
/// serialised), so implementations need no locking of their own for config.
pub trait Plugin: Send {
    /// Short name for logs.
    fn name(&self) -> &str;

    /// YANG module names this plugin claims. Commits whose diff does not touch
    /// these modules are not shown to the plugin.
    fn modules(&self) -> &[&'static str];

    /// Called once at start, before the boot config (startup) is applied, with
    /// the context; a plugin can refuse to start here (e.g. a backend missing).
    fn start(&mut self, _context: &'static Context) -> Result<(), PluginError> {
        Ok(())
    }

    /// Checks libyang cannot express. Return every problem found.
    fn validate(&mut self, _commit: &Commit<'_>) -> Result<(), Vec<PluginError>> {
        Ok(())
    }

    /// Set server-chosen values in the new tree.
    fn prepare(&mut self, _commit: &mut PrepareCommit<'_>) -> Result<(), PluginError> {
        Ok(())
    }

    /// Program the system. On error the plugin has left the system as it was.
    fn apply(&mut self, commit: &Commit<'_>) -> Result<(), PluginError>;

    /// Undo a successful [`Plugin::apply`] of this same commit, because a
    /// later plugin failed. Best effort: errors are logged by the plugin.
    fn abort(&mut self, commit: &Commit<'_>);

    /// Add this plugin's config-false (operational) nodes to `oper`, a tree
    /// that already holds running. Called on `<get>`.
    fn operational(
        &mut self,
        _running: &DataTree<'static>,
        _oper: &mut DataTree<'static>,
    ) -> Result<(), PluginError> {
        Ok(())
    }

    /// Notifications the plugin has to send (RFC 5277 stream NETCONF), each
    /// a tree holding one YANG `notification` of the plugin's modules. The
    /// agent polls this every few seconds, serialised with commits.
    fn events(&mut self) -> Vec<DataTree<'static>> {
        Vec::new()
    }

    /// Compare the system with what this plugin applied (drift: changes
    /// made behind the agent's back) and repair what its policy says to
    /// repair — everything when `repair_all`. Called periodically and on
    /// the `check-drift` RPC, serialised with commits. Notifications about
    /// what was found go out through the next [`Plugin::events`], which the
    /// agent calls right after this. A repair never changes running.
    fn check_drift(&mut self, _repair_all: bool) -> DriftReport {
        DriftReport::default()
    }

    /// Called on agent shutdown.
    fn stop(&mut self) {}
}
