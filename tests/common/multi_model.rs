//! Random edits for the multi-module context of `tests/yang-multi/`
//! (`netconf_scoped.rs`): modules that constrain each other by augment,
//! deviation and submodule (which must keep them off the scoped path), an
//! eligible string-keyed store, and keys that are hard to put into XML and
//! instance paths.

use super::Rng;

pub const A: &str = "urn:wgnetconf:test:multi-a";
pub const Z: &str = "urn:wgnetconf:test:multi-z";
pub const X: &str = "urn:wgnetconf:test:multi-x";
pub const W: &str = "urn:wgnetconf:test:multi-w";
pub const M: &str = "urn:wgnetconf:test:multi-m";
pub const S: &str = "urn:wgnetconf:test:multi-s";
pub const I: &str = "urn:wgnetconf:test:multi-i";

/// A key holding both a single and a double quote, which no instance path
/// can express: such edits take the whole-datastore path.
const BOTH_QUOTES: bool = true;

/// Keys of 4 KiB and more: longer than the 4,096-byte buffer of yang5's
/// `DataNodeRef::path()`, which cut their paths short (the agent builds
/// paths with libyang's allocating form now).
const LONG_KEYS: bool = true;

/// The string keys the lists get: newlines, quotes, the NETCONF 1.0
/// end-of-message marker, non-ASCII, long.
pub fn keys() -> Vec<String> {
    let mut k: Vec<String> = [
        "k1",
        "k2",
        "line\nbreak",
        "it's",
        "say \"hi\"",
        "]]>]]>",
        "ключ-ü-🔑",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    k.push("4".repeat(if LONG_KEYS { 4096 } else { 4000 }));
    if BOTH_QUOTES {
        k.push("q'\"q".to_string());
    }
    k
}

/// XML text or attribute content.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A random `nc:operation` attribute (three times in eight none).
pub fn op_attr(r: &mut Rng) -> String {
    let ops = [
        None,
        None,
        None,
        Some("merge"),
        Some("replace"),
        Some("create"),
        Some("delete"),
        Some("remove"),
    ];
    ops[r.pick(ops.len() as u64) as usize]
        .map(|o| format!(" nc:operation=\"{o}\""))
        .unwrap_or_default()
}

/// Leaf values: the keys and a 4 KiB string.
fn values() -> Vec<String> {
    let mut v = keys();
    v.push("v".repeat(4096));
    v
}

pub struct Gen {
    keys: Vec<String>,
    values: Vec<String>,
    /// The context has multi-i (instance-identifier) loaded.
    instid: bool,
}

impl Gen {
    pub fn new(instid: bool) -> Gen {
        Gen {
            keys: keys(),
            values: values(),
            instid,
        }
    }

    fn key(&self, r: &mut Rng) -> String {
        esc(&self.keys[r.pick(self.keys.len() as u64) as usize])
    }

    fn value(&self, r: &mut Rng) -> String {
        esc(&self.values[r.pick(self.values.len() as u64) as usize])
    }

    /// One `<config>` payload touching one of the modules (the WireGuard
    /// model's edits come from `wg`, with their own `nc` declaration).
    pub fn edit(&self, r: &mut Rng, wg: impl FnOnce(&mut Rng) -> String) -> String {
        let nc = super::NC_NS;
        let n = if self.instid { 13 } else { 12 };
        let body = match r.pick(n) {
            // The eligible store: entries, unique v, descriptions.
            0..=2 => {
                let op = op_attr(r);
                let name = self.key(r);
                let inner = match r.pick(4) {
                    0 => format!("<entry{op}><name>{name}</name></entry>"),
                    1 => format!(
                        "<entry><name>{name}</name><v{op}>{}</v></entry>",
                        self.value(r)
                    ),
                    2 => format!(
                        "<entry><name>{name}</name><description{op}>{}</description></entry>",
                        self.value(r)
                    ),
                    _ => format!(
                        "<entry{op}><name>{name}</name><v>{}</v><description>{}</description></entry>",
                        self.value(r),
                        self.value(r)
                    ),
                };
                format!("<store xmlns=\"{S}\">{inner}</store>")
            }
            // multi-a's items with multi-x's augmented leaves.
            3..=4 => {
                let op = op_attr(r);
                let name = self.key(r);
                let inner = match r.pick(5) {
                    0 => format!("<item{op}><name>{name}</name></item>"),
                    1 => format!(
                        "<item><name>{name}</name><size xmlns=\"{X}\"{op}>{}</size></item>",
                        [1, 10, 60, 150][r.pick(4) as usize]
                    ),
                    2 => format!(
                        "<item><name>{name}</name><ref xmlns=\"{X}\"{op}>{}</ref></item>",
                        self.key(r)
                    ),
                    3 => {
                        let pick = if r.pick(3) == 0 {
                            "none".to_string()
                        } else {
                            self.key(r)
                        };
                        format!(
                            "<item><name>{name}</name><pick xmlns=\"{X}\"{op}>{pick}</pick></item>"
                        )
                    }
                    _ => format!(
                        "<item><name>{name}</name><note{op}>{}</note></item>",
                        "n".repeat(1 + r.pick(20) as usize)
                    ),
                };
                format!("<a xmlns=\"{A}\">{inner}</a>")
            }
            // multi-z: the limit and the targets others read.
            5..=6 => {
                let op = op_attr(r);
                let inner = match r.pick(4) {
                    0 => format!(
                        "<limit{op}>{}</limit>",
                        [5, 50, 100, 200][r.pick(4) as usize]
                    ),
                    1 => format!("<target{op}><id>{}</id></target>", self.key(r)),
                    2 => format!(
                        "<target><id>{}</id><weight{op}>{}</weight></target>",
                        self.key(r),
                        r.pick(300)
                    ),
                    _ => {
                        return format!(
                            "<a xmlns=\"{A}\" xmlns:nc=\"{}\"><extra xmlns=\"{X}\"{op}><flag>{}</flag></extra></a>",
                            super::NC_NS,
                            r.pick(2) == 0
                        )
                    }
                };
                format!("<z xmlns=\"{Z}\">{inner}</z>")
            }
            // multi-w's cap, which multi-d's deviation ties to the limit.
            7 => format!(
                "<w xmlns=\"{W}\"><cap{}>{}</cap></w>",
                op_attr(r),
                [10, 100, 150, 300][r.pick(4) as usize]
            ),
            // multi-m's choice and its when.
            8 => {
                let op = op_attr(r);
                let inner = match r.pick(3) {
                    0 => format!("<n{op}>{}</n>", r.pick(9)),
                    1 => format!("<t{op}>{}</t>", self.value(r)),
                    _ => format!("<lab{op}>{}</lab>", self.value(r)),
                };
                format!("<m xmlns=\"{M}\">{inner}</m>")
            }
            // multi-i's instance-identifier into the store.
            12 => {
                let k = &self.keys[r.pick(self.keys.len() as u64) as usize];
                let lit = if k.contains('\'') {
                    format!("\"{k}\"")
                } else {
                    format!("'{k}'")
                };
                format!(
                    "<i xmlns=\"{I}\"><point{} xmlns:s=\"{S}\">{}</point></i>",
                    op_attr(r),
                    esc(&format!("/s:store/s:entry[s:name={lit}]/s:v"))
                )
            }
            _ => return wg(r),
        };
        // The nc prefix is declared on every top element of the payload.
        body.replacen('>', &format!(" xmlns:nc=\"{nc}\">"), 1)
    }
}
