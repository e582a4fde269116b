//! Network Configuration Access Control (RFC 8341).
//!
//! The policy lives in running's `/nacm` ([`rules`]); groups come from
//! `/nacm/groups` and from the agent's `[[users]] groups` (external groups).
//! [`Nacm::view`] resolves, for one user, the rules that apply to them in
//! the order §3.4 evaluates them (rule-lists in order, rules in order,
//! first match wins); a [`View`] then decides protocol operations,
//! notifications and data node access ([`data`]), falling back to
//! `nacm:default-deny-all` / `default-deny-write` and the global defaults.
//!
//! A recovery session (§3.3.3: uid 0 over the local socket, also when
//! relayed by sshd) and `enable-nacm false` bypass it all.

pub mod bootstrap;
pub mod data;
pub mod path;
pub mod rules;

use std::collections::{HashMap, HashSet};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use libyang5_sys as ffi;
use yang5::data::DataTree;

use crate::datastore::raw::{self, Node};
use crate::schema::Schema;
use path::RulePath;
use rules::{ops, Policy, Rule, RuleKind};

pub const NACM_MODULE: &str = "ietf-netconf-acm";

/// Who asks.
#[derive(Clone, Debug)]
pub struct Actor {
    pub user: String,
    /// The recovery session of RFC 8341 §3.3.3.
    pub recovery: bool,
}

/// The `/nacm` state counters (RFC 8341 §3.2).
#[derive(Default)]
pub struct Counters {
    pub denied_operations: AtomicU64,
    pub denied_data_writes: AtomicU64,
    pub denied_notifications: AtomicU64,
}

/// The default-deny extension in effect on a schema node (its own or an
/// ancestor's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DefaultDeny {
    Write,
    All,
}

pub struct Nacm {
    policy: RwLock<Arc<Policy>>,
    /// Schema nodes under `nacm:default-deny-write` / `-all`, by address.
    defaults: HashMap<usize, DefaultDeny>,
    /// Operations under `nacm:default-deny-all`: (module, name).
    denied_rpcs: HashSet<(String, String)>,
    /// `[[users]] groups` of the agent's configuration.
    external: RwLock<HashMap<String, Vec<String>>>,
    /// Module names by namespace (a notification names its module so).
    modules_by_ns: HashMap<String, String>,
    pub counters: Counters,
}

/// Protocol operations RFC 8341 §3.2 protects with default-deny-all,
/// which the system's `ietf-netconf` module does not declare.
const BUILTIN_DENIED_RPCS: &[(&str, &str)] = &[
    ("ietf-netconf", "kill-session"),
    ("ietf-netconf", "delete-config"),
];

impl Nacm {
    pub fn new(schema: &Schema) -> Nacm {
        let mut defaults = HashMap::new();
        let mut modules_by_ns = HashMap::new();
        let mut denied_rpcs: HashSet<(String, String)> = BUILTIN_DENIED_RPCS
            .iter()
            .map(|(m, n)| (m.to_string(), n.to_string()))
            .collect();
        for m in schema.ctx.modules(true) {
            modules_by_ns.insert(m.namespace().to_string(), m.name().to_string());
            if !m.is_implemented() {
                continue;
            }
            // SAFETY: modules and compiled nodes of the agent's context,
            // which lives for the whole process.
            unsafe {
                let compiled = (*m.as_raw()).compiled;
                if compiled.is_null() {
                    continue;
                }
                let mut n = (*compiled).data;
                while !n.is_null() {
                    mark(n, None, &mut defaults);
                    n = (*n).next;
                }
                let mut r = (*compiled).rpcs as *const ffi::lysc_node;
                while !r.is_null() {
                    if extension(r) == Some(DefaultDeny::All) {
                        denied_rpcs.insert((m.name().to_string(), cstr((*r).name)));
                    }
                    r = (*r).next;
                }
            }
        }
        Nacm {
            policy: RwLock::new(Arc::new(Policy::default())),
            defaults,
            denied_rpcs,
            external: RwLock::new(HashMap::new()),
            modules_by_ns,
            counters: Counters::default(),
        }
    }

    /// Running changed: its `/nacm` is the policy from now on.
    pub fn update(&self, running: &DataTree<'static>) {
        let p = Arc::new(Policy::from_running(running));
        if let Ok(mut g) = self.policy.write() {
            *g = p;
        }
    }

    /// The agent's `[[users]] groups` (replaced whole).
    pub fn set_external_groups(&self, groups: HashMap<String, Vec<String>>) {
        if let Ok(mut g) = self.external.write() {
            *g = groups;
        }
    }

    /// The policy in force now: a read served outside the core lock takes
    /// it with its snapshot and judges by it ([`Nacm::view_under`]), not
    /// by a policy a later commit put in.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The rules that apply to `actor`, in evaluation order.
    pub fn view(&self, actor: &Actor) -> View<'_> {
        self.view_under(actor, self.policy())
    }

    /// [`Nacm::view`] under a policy taken earlier ([`Nacm::policy`]).
    pub fn view_under(&self, actor: &Actor, policy: Arc<Policy>) -> View<'_> {
        if actor.recovery || !policy.enabled {
            return View {
                nacm: self,
                policy,
                rules: Vec::new(),
                unrestricted: true,
            };
        }
        let mut groups: Vec<String> = policy.members.get(&actor.user).cloned().unwrap_or_default();
        if policy.external_groups {
            if let Ok(ext) = self.external.read() {
                groups.extend(ext.get(&actor.user).cloned().unwrap_or_default());
            }
        }
        let rules: Vec<Rule> = policy
            .rule_lists
            .iter()
            .filter(|rl| rl.groups.iter().any(|g| g == "*" || groups.contains(g)))
            .flat_map(|rl| rl.rules.iter().cloned())
            .collect();
        // A first rule permitting everything (the bootstrap `admin`
        // rule-list): nothing below can change a decision.
        let unrestricted = rules.first().is_some_and(|r| {
            r.permit
                && r.module.is_none()
                && r.access == ops::ALL
                && matches!(r.kind, RuleKind::Any)
        });
        View {
            nacm: self,
            policy,
            rules,
            unrestricted,
        }
    }

    pub fn denied_operation(&self) {
        self.counters
            .denied_operations
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn denied_data_write(&self) {
        self.counters
            .denied_data_writes
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn denied_notification(&self) {
        self.counters
            .denied_notifications
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Whether `actor` may receive the notification whose content is
    /// `body` (`<event-name xmlns="...">...`); counts refusals.
    pub fn notification_allowed(&self, actor: &Actor, body: &str) -> bool {
        let (name, ns) = event_name(body);
        let module = self.modules_by_ns.get(ns).map(String::as_str).unwrap_or("");
        if self.view(actor).notification(module, name) {
            return true;
        }
        self.denied_notification();
        false
    }

    /// `/nacm`'s state leaves, as XML children of `<nacm>`.
    pub fn state_xml(&self) -> String {
        let c = &self.counters;
        format!(
            "<denied-operations>{}</denied-operations>\
             <denied-data-writes>{}</denied-data-writes>\
             <denied-notifications>{}</denied-notifications>",
            c.denied_operations.load(Ordering::Relaxed),
            c.denied_data_writes.load(Ordering::Relaxed),
            c.denied_notifications.load(Ordering::Relaxed),
        )
    }
}

/// The element name and namespace a notification body starts with
/// (`<name xmlns="ns"`, as the agent writes them).
fn event_name(body: &str) -> (&str, &str) {
    let start = body.trim_start().trim_start_matches('<');
    let name = start
        .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .next()
        .unwrap_or("");
    let ns = start
        .split_once("xmlns=\"")
        .and_then(|(_, r)| r.split_once('"'))
        .map(|(ns, _)| ns)
        .unwrap_or("");
    (name, ns)
}

/// # Safety
/// `p` is NULL or a NUL-terminated string.
unsafe fn cstr(p: *const std::os::raw::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    CStr::from_ptr(p).to_string_lossy().into_owned()
}

/// The default-deny extension a schema node carries itself.
///
/// # Safety
/// `n` is a compiled schema node of a live context.
unsafe fn extension(n: *const ffi::lysc_node) -> Option<DefaultDeny> {
    let mut found = None;
    for e in raw::sized_array((*n).exts) {
        if e.def.is_null() || (*e.def).module.is_null() {
            continue;
        }
        if cstr((*(*e.def).module).name) != NACM_MODULE {
            continue;
        }
        match cstr((*e.def).name).as_str() {
            "default-deny-all" => found = Some(DefaultDeny::All),
            "default-deny-write" if found.is_none() => found = Some(DefaultDeny::Write),
            _ => {}
        }
    }
    found
}

/// Records the default-deny in effect on `n` and its descendants.
///
/// # Safety
/// `n` is a compiled schema node of a live context.
unsafe fn mark(
    n: *const ffi::lysc_node,
    inherited: Option<DefaultDeny>,
    out: &mut HashMap<usize, DefaultDeny>,
) {
    let own = extension(n);
    let eff = match (inherited, own) {
        (Some(DefaultDeny::All), _) | (_, Some(DefaultDeny::All)) => Some(DefaultDeny::All),
        (a, b) => a.or(b),
    };
    if let Some(d) = eff {
        out.insert(n as usize, d);
    }
    let mut c = ffi::lysc_node_child(n);
    while !c.is_null() {
        mark(c, eff, out);
        c = (*c).next;
    }
}

/// The rules for one user (see [`Nacm::view`]).
pub struct View<'a> {
    nacm: &'a Nacm,
    policy: Arc<Policy>,
    rules: Vec<Rule>,
    /// Everything is permitted (NACM off, recovery session, or a first
    /// rule permitting all): callers skip their checks.
    pub unrestricted: bool,
}

fn module_ok(r: &Rule, module: &str) -> bool {
    r.module.as_deref().is_none_or(|m| m == module)
}

impl View<'_> {
    /// Exec access to a protocol operation (§3.4.4).
    pub fn rpc(&self, module: &str, name: &str) -> bool {
        if self.unrestricted || (module == "ietf-netconf" && name == "close-session") {
            return true;
        }
        for r in &self.rules {
            if r.access & ops::EXEC == 0 || !module_ok(r, module) {
                continue;
            }
            match &r.kind {
                RuleKind::Any | RuleKind::Rpc(None) => return r.permit,
                RuleKind::Rpc(Some(n)) if n == name => return r.permit,
                _ => {}
            }
        }
        if self
            .nacm
            .denied_rpcs
            .contains(&(module.to_string(), name.to_string()))
        {
            return false;
        }
        self.policy.exec_permit
    }

    /// Whether a notification may be sent (§3.4.6).
    pub fn notification(&self, module: &str, name: &str) -> bool {
        if self.unrestricted
            || (module == "nc-notifications"
                && matches!(name, "replayComplete" | "notificationComplete"))
        {
            return true;
        }
        for r in &self.rules {
            if r.access & ops::READ == 0 || !module_ok(r, module) {
                continue;
            }
            match &r.kind {
                RuleKind::Any | RuleKind::Notification(None) => return r.permit,
                RuleKind::Notification(Some(n)) if n == name => return r.permit,
                _ => {}
            }
        }
        self.policy.read_permit
    }

    /// The path rules' state at the top level.
    pub fn root_state(&self) -> PathState {
        PathState(
            self.rules
                .iter()
                .map(|r| match r.kind {
                    RuleKind::Data(_) => PENDING,
                    _ => DEAD,
                })
                .collect(),
        )
    }

    /// The path rules' state at `node` (depth `depth`), from its parent's.
    ///
    /// # Safety
    /// `node` is a live node (see the `datastore::raw` module).
    pub unsafe fn child_state(&self, parent: &PathState, depth: usize, node: Node) -> PathState {
        PathState(
            self.rules
                .iter()
                .zip(&parent.0)
                .map(|(r, s)| match (&r.kind, *s) {
                    (_, MATCHED) => MATCHED,
                    (RuleKind::Data(p), PENDING) => step(p, depth, node),
                    _ => DEAD,
                })
                .collect(),
        )
    }

    /// The path rules' state at `node`, computed from the top.
    ///
    /// # Safety
    /// `node` is a live node (see the `datastore::raw` module).
    pub unsafe fn state_of(&self, node: Node) -> PathState {
        let mut chain = Vec::new();
        let mut n = node;
        while !n.is_null() {
            chain.push(n);
            n = raw::parent(n);
        }
        let mut s = self.root_state();
        for (depth, n) in chain.into_iter().rev().enumerate() {
            s = self.child_state(&s, depth, n);
        }
        s
    }

    /// Access `access` (one of [`ops`]) to data node `node` whose path
    /// rules are in `state` (§3.4.5).
    ///
    /// # Safety
    /// `node` is a live node (see the `datastore::raw` module).
    pub unsafe fn data(&self, node: Node, state: &PathState, access: u8) -> bool {
        if self.unrestricted {
            return true;
        }
        let (module, _) = path::names(node);
        for (r, s) in self.rules.iter().zip(&state.0) {
            if r.access & access == 0 || !module_ok(r, module) {
                continue;
            }
            match r.kind {
                RuleKind::Any => return r.permit,
                RuleKind::Data(_) if *s == MATCHED => return r.permit,
                _ => {}
            }
        }
        match self.nacm.defaults.get(&(raw::schema_of(node) as usize)) {
            Some(DefaultDeny::All) => return false,
            Some(DefaultDeny::Write) if access != ops::READ => return false,
            _ => {}
        }
        if access == ops::READ {
            self.policy.read_permit
        } else {
            self.policy.write_permit
        }
    }
}

const DEAD: u8 = 0;
const PENDING: u8 = 1;
const MATCHED: u8 = 2;

/// Per rule of a [`View`]: whether its path identifies the node or an
/// ancestor (matched), may still identify a descendant (pending), or
/// neither (dead; also every rule without a path).
#[derive(Clone, Debug)]
pub struct PathState(Vec<u8>);

/// # Safety
/// `node` is a live node (see the `datastore::raw` module).
unsafe fn step(p: &RulePath, depth: usize, node: Node) -> u8 {
    if !p.step_matches(depth, node) {
        DEAD
    } else if depth + 1 == p.steps.len() {
        MATCHED
    } else {
        PENDING
    }
}
