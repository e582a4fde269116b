//! The access control model as configured in running's `/nacm` (RFC 8341
//! §3.2): global switches and defaults, groups, and rule-lists of rules.

use std::collections::HashMap;

use yang5::data::{Data, DataNodeRef, DataTree};

use super::path::RulePath;

/// Access operations (RFC 8341 `access-operations-type`), as bits.
pub mod ops {
    pub const CREATE: u8 = 1;
    pub const READ: u8 = 2;
    pub const UPDATE: u8 = 4;
    pub const DELETE: u8 = 8;
    pub const EXEC: u8 = 16;
    pub const ALL: u8 = 31;
}

/// What a rule applies to (the `rule-type` choice; `Any` when absent).
#[derive(Clone, Debug)]
pub enum RuleKind {
    Any,
    /// `rpc-name`; `None` is `*`.
    Rpc(Option<String>),
    /// `notification-name`; `None` is `*`.
    Notification(Option<String>),
    Data(RulePath),
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    /// `module-name`; `None` is `*`.
    pub module: Option<String>,
    pub kind: RuleKind,
    pub access: u8,
    pub permit: bool,
}

#[derive(Clone, Debug)]
pub struct RuleList {
    pub name: String,
    /// Group names; `*` matches every user.
    pub groups: Vec<String>,
    pub rules: Vec<Rule>,
}

/// `/nacm` as running holds it; defaults as RFC 8341 gives them.
#[derive(Clone, Debug)]
pub struct Policy {
    pub enabled: bool,
    pub read_permit: bool,
    pub write_permit: bool,
    pub exec_permit: bool,
    pub external_groups: bool,
    /// user → groups named in `/nacm/groups`.
    pub members: HashMap<String, Vec<String>>,
    pub rule_lists: Vec<RuleList>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enabled: true,
            read_permit: true,
            write_permit: false,
            exec_permit: true,
            external_groups: true,
            members: HashMap::new(),
            rule_lists: Vec::new(),
        }
    }
}

fn text(n: &DataNodeRef<'_>) -> String {
    n.value_canonical().unwrap_or_default()
}

fn child<'a>(n: &DataNodeRef<'a>, name: &str) -> Option<DataNodeRef<'a>> {
    n.children().find(|c| c.schema().name() == name)
}

fn star(s: String) -> Option<String> {
    (s != "*").then_some(s)
}

impl Policy {
    /// The policy configured in `running` (defaults where it has none).
    pub fn from_running(running: &DataTree<'static>) -> Policy {
        let mut p = Policy::default();
        let Ok(nacm) = running.find_path("/ietf-netconf-acm:nacm") else {
            return p;
        };
        for n in nacm.children() {
            match n.schema().name() {
                "enable-nacm" => p.enabled = text(&n) == "true",
                "read-default" => p.read_permit = text(&n) == "permit",
                "write-default" => p.write_permit = text(&n) == "permit",
                "exec-default" => p.exec_permit = text(&n) == "permit",
                "enable-external-groups" => p.external_groups = text(&n) == "true",
                "groups" => {
                    for g in n.children().filter(|g| g.schema().name() == "group") {
                        let name = child(&g, "name").map(|x| text(&x)).unwrap_or_default();
                        for u in g.children().filter(|u| u.schema().name() == "user-name") {
                            p.members.entry(text(&u)).or_default().push(name.clone());
                        }
                    }
                }
                "rule-list" => p.rule_lists.push(rule_list(&n)),
                _ => {}
            }
        }
        p
    }
}

fn rule_list(n: &DataNodeRef<'_>) -> RuleList {
    let mut rl = RuleList {
        name: String::new(),
        groups: Vec::new(),
        rules: Vec::new(),
    };
    for c in n.children() {
        match c.schema().name() {
            "name" => rl.name = text(&c),
            "group" => rl.groups.push(text(&c)),
            "rule" => rl.rules.push(rule(&c)),
            _ => {}
        }
    }
    rl
}

fn rule(n: &DataNodeRef<'_>) -> Rule {
    let mut r = Rule {
        name: String::new(),
        module: None,
        kind: RuleKind::Any,
        access: ops::ALL,
        permit: false,
    };
    for c in n.children() {
        match c.schema().name() {
            "name" => r.name = text(&c),
            "module-name" => r.module = star(text(&c)),
            "rpc-name" => r.kind = RuleKind::Rpc(star(text(&c))),
            "notification-name" => r.kind = RuleKind::Notification(star(text(&c))),
            "path" => {
                // A path that does not parse matches nothing rather than
                // everything: a deny meant for one node must not become
                // a deny (or permit) of all.
                r.kind = RuleKind::Data(RulePath::parse(&text(&c)).unwrap_or_else(RulePath::never))
            }
            "access-operations" => r.access = access_bits(&text(&c)),
            "action" => r.permit = text(&c) == "permit",
            _ => {}
        }
    }
    r
}

/// `access-operations`: `*` or a space-separated set of bits.
fn access_bits(s: &str) -> u8 {
    if s.trim() == "*" {
        return ops::ALL;
    }
    s.split_whitespace()
        .map(|w| match w {
            "create" => ops::CREATE,
            "read" => ops::READ,
            "update" => ops::UPDATE,
            "delete" => ops::DELETE,
            "exec" => ops::EXEC,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}
