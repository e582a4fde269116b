//! Private-key age (issue 16): when each interface's current private key was
//! applied, its `max-private-key-age`, and the alarm when the age exceeds
//! it (operational `private-key-age`/`private-key-age-exceeded`, and the
//! `private-key-age-exceeded` notification, once per crossing).
//!
//! The set-times survive restarts and kill -9: [`KeyAges`] keeps them in
//! `<state_dir>/wireguard-key-ages`, one line per interface
//! (`<instance> <public key> <unix seconds>`), written atomically whenever
//! one changes. The *public* key says which key a time belongs to, so a
//! restart that re-applies the same private key keeps its age; no secret is
//! written. An interface with no line (an upgrade from a version without
//! key ages) is counted from when the plugin first applies it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use wgnetconf_plugin_api::yang5::context::Context;
use yang5::data::{Data, DataTree};

use crate::keys::PublicKey;
use crate::plan::Applied;
use crate::{events, model};

/// The file under `state_dir`.
pub const FILE: &str = "wireguard-key-ages";

/// Test-only, debug builds only: the file this variable names holds a
/// number of seconds added to the wall clock, read at every use, so a test
/// can age a key by hours without waiting. Never set in production.
pub const CLOCK_ENV: &str = "WGNETCONF_TEST_CLOCK_FILE";

/// The wall clock, skewed by [`CLOCK_ENV`] in debug builds.
pub fn clock() -> SystemTime {
    let now = SystemTime::now();
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os(CLOCK_ENV) {
        let skew = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        return now + std::time::Duration::from_secs(skew);
    }
    now
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// When the key `public_key` of one interface was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KeySet {
    public_key: PublicKey,
    since: u64,
}

/// An interface whose key age crossed its maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crossing {
    pub iface: u16,
    pub age: u64,
    pub max: u32,
}

/// What a commit's abort puts back.
#[derive(Clone, Debug)]
pub struct Snapshot {
    keys: BTreeMap<u16, KeySet>,
    max: BTreeMap<u16, u32>,
}

/// Set-times (persisted), maximum ages (from configuration) and which
/// alarms were already notified (in memory: a restart notifies an alarm
/// that still holds once more).
#[derive(Debug, Default)]
pub struct KeyAges {
    file: Option<PathBuf>,
    keys: BTreeMap<u16, KeySet>,
    max: BTreeMap<u16, u32>,
    raised: BTreeSet<u16>,
}

impl KeyAges {
    /// The ages kept in `dir` (`None`: in memory only). A missing file is
    /// an empty record; a line that does not parse is skipped with a
    /// warning (its interface counts from now).
    pub fn load(dir: Option<PathBuf>) -> KeyAges {
        #[cfg(debug_assertions)]
        if std::env::var_os(CLOCK_ENV).is_some() {
            tracing::warn!(
                "wireguard: {CLOCK_ENV} is set: key ages use a skewed clock (test only)"
            );
        }
        let file = dir.map(|d| d.join(FILE));
        let mut keys = BTreeMap::new();
        if let Some(text) = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                match parse_line(line) {
                    Some((i, k)) => {
                        keys.insert(i, k);
                    }
                    None => tracing::warn!("wireguard: {FILE}: skipping the line {line:?}"),
                }
            }
        }
        KeyAges {
            file,
            keys,
            ..KeyAges::default()
        }
    }

    /// Takes `max-private-key-age` of the interfaces in `touched` from the
    /// committed tree.
    pub fn read_max<'a>(
        &mut self,
        new: &DataTree<'static>,
        touched: impl IntoIterator<Item = &'a u16>,
    ) {
        for &i in touched {
            let path = format!("{}/max-private-key-age", model::iface_path(i));
            let max = new
                .find_path(&path)
                .ok()
                .and_then(|n| n.value_canonical())
                .and_then(|v| v.parse().ok());
            match max {
                Some(m) => self.max.insert(i, m),
                None => self.max.remove(&i),
            };
        }
    }

    /// After a commit applied: an interface whose public key differs from
    /// the recorded one (or has none) got its key `now`; interfaces gone
    /// are forgotten. Writes the file if anything changed.
    pub fn applied(&mut self, applied: &Applied, now: SystemTime) {
        let mut changed = false;
        let before = self.keys.len();
        self.keys.retain(|i, _| applied.ifaces.contains_key(i));
        self.max.retain(|i, _| applied.ifaces.contains_key(i));
        self.raised.retain(|i| applied.ifaces.contains_key(i));
        changed |= self.keys.len() != before;
        for (&i, a) in &applied.ifaces {
            if self.keys.get(&i).map(|k| k.public_key) != Some(a.public_key) {
                self.keys.insert(
                    i,
                    KeySet {
                        public_key: a.public_key,
                        since: unix_secs(now),
                    },
                );
                self.raised.remove(&i);
                changed = true;
            }
        }
        if changed {
            self.save();
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            keys: self.keys.clone(),
            max: self.max.clone(),
        }
    }

    /// Puts back what [`Self::snapshot`] saw (a commit's abort).
    pub fn restore(&mut self, s: Snapshot) {
        let changed = s.keys != self.keys;
        self.keys = s.keys;
        self.max = s.max;
        if changed {
            self.save();
        }
    }

    fn save(&self) {
        let Some(file) = &self.file else { return };
        let text: String = self
            .keys
            .iter()
            .map(|(i, k)| format!("{i} {} {}\n", k.public_key.to_base64(), k.since))
            .collect();
        // A failed write costs only accuracy (the age restarts after the
        // next restart), not the commit.
        if let Err(e) = wgnetconf_plugin_api::persist::write_atomic(file, text.as_bytes(), 0o600) {
            tracing::warn!("wireguard: cannot write {}: {e}", file.display());
        }
    }

    /// Seconds since interface `i`'s key was applied.
    pub fn age(&self, i: u16, now: SystemTime) -> Option<u64> {
        self.keys
            .get(&i)
            .map(|k| unix_secs(now).saturating_sub(k.since))
    }

    /// Whether `i` has a maximum and its key is older.
    pub fn exceeded(&self, i: u16, now: SystemTime) -> bool {
        match (self.age(i, now), self.max.get(&i)) {
            (Some(age), Some(&max)) => age > u64::from(max),
            _ => false,
        }
    }

    /// Interfaces whose age crossed the maximum since the last call (each
    /// once; again only after the alarm cleared: a new key, a higher or no
    /// maximum).
    pub fn crossings(&mut self, now: SystemTime) -> Vec<Crossing> {
        let mut out = Vec::new();
        for &i in self.keys.keys() {
            if !self.exceeded(i, now) {
                self.raised.remove(&i);
            } else if self.raised.insert(i) {
                out.push(Crossing {
                    iface: i,
                    age: self.age(i, now).unwrap_or(0),
                    max: self.max.get(&i).copied().unwrap_or(0),
                });
            }
        }
        out
    }

    /// The `private-key-age-exceeded` notifications of [`Self::crossings`].
    pub fn events(&mut self, ctx: &'static Context, now: SystemTime) -> Vec<DataTree<'static>> {
        self.crossings(now)
            .iter()
            .filter_map(|c| match notification(ctx, c) {
                Ok(tree) => {
                    tracing::warn!(
                        "wireguard: wg{} private key is {} s old, over its maximum {} s: rotate it",
                        c.iface,
                        c.age,
                        c.max
                    );
                    Some(tree)
                }
                Err(e) => {
                    tracing::warn!(
                        "wireguard: cannot build a private-key-age-exceeded notification: {e}"
                    );
                    None
                }
            })
            .collect()
    }

    /// `private-key-age` and `private-key-age-exceeded` of every recorded
    /// interface that `oper` holds.
    pub fn fill(&self, oper: &mut DataTree<'static>, now: SystemTime) -> Result<(), String> {
        for &i in self.keys.keys() {
            let base = model::iface_path(i);
            if oper.find_path(&base).is_err() {
                continue;
            }
            let age = self.age(i, now).unwrap_or(0).to_string();
            let exceeded = if self.exceeded(i, now) {
                "true"
            } else {
                "false"
            };
            for (leaf, value) in [
                ("private-key-age", age.as_str()),
                ("private-key-age-exceeded", exceeded),
            ] {
                oper.new_path(&format!("{base}/{leaf}"), Some(value), false)
                    .map_err(|e| format!("operational {base}/{leaf}: {e}"))?;
            }
        }
        Ok(())
    }
}

fn parse_line(line: &str) -> Option<(u16, KeySet)> {
    let mut f = line.split_whitespace();
    let i = f.next()?.parse().ok()?;
    let public_key = PublicKey::from_base64(f.next()?).ok()?;
    let since = f.next()?.parse().ok()?;
    f.next()
        .is_none()
        .then_some((i, KeySet { public_key, since }))
}

/// The notification tree of one crossing.
pub fn notification(
    ctx: &'static Context,
    c: &Crossing,
) -> Result<DataTree<'static>, yang5::Error> {
    events::tree(
        ctx,
        "private-key-age-exceeded",
        &[
            ("wireguard", Some(c.iface.to_string())),
            ("private-key-age", Some(c.age.to_string())),
            ("max-private-key-age", Some(c.max.to_string())),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{config, Harness};
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn applied(keys: &[(u16, u8)]) -> Applied {
        let mut h = Harness::new(Box::new(crate::backend::memory::MemoryBackend::new()));
        h.commit(&config("", &[])).expect("commit");
        let template = h.plugin.applied().ifaces[&1].clone();
        let mut a = Applied::default();
        for &(i, b) in keys {
            let mut t = template.clone();
            t.public_key = PublicKey([b; 32]);
            a.ifaces.insert(i, t);
        }
        a
    }

    #[test]
    fn crossing_is_reported_once_and_again_after_a_new_key() {
        let mut ages = KeyAges::load(None);
        ages.applied(&applied(&[(1, 1)]), at(1000));
        ages.max.insert(1, 60);
        assert_eq!(ages.age(1, at(1030)), Some(30));
        assert!(ages.crossings(at(1060)).is_empty(), "60 s is not over 60 s");
        let c = ages.crossings(at(1061));
        assert_eq!(
            c,
            vec![Crossing {
                iface: 1,
                age: 61,
                max: 60
            }]
        );
        assert!(ages.exceeded(1, at(1061)));
        assert!(ages.crossings(at(2000)).is_empty(), "not every poll");
        // The same key applied again (a restart's boot commit): same age.
        ages.applied(&applied(&[(1, 1)]), at(2000));
        assert_eq!(ages.age(1, at(2000)), Some(1000));
        // A new key: the age restarts, the alarm clears, and the next
        // crossing is reported again.
        ages.applied(&applied(&[(1, 2)]), at(3000));
        assert_eq!(ages.age(1, at(3000)), Some(0));
        assert!(!ages.exceeded(1, at(3000)));
        assert!(ages.crossings(at(3060)).is_empty());
        assert_eq!(ages.crossings(at(3061)).len(), 1);
    }

    #[test]
    fn ages_survive_a_reload_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ages = KeyAges::load(Some(dir.path().to_path_buf()));
        ages.applied(&applied(&[(1, 1), (2, 2)]), at(1000));
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("file");
        assert_eq!(text.lines().count(), 2, "{text}");
        std::fs::write(dir.path().join(FILE), format!("{text}garbage line\n")).expect("write");
        let again = KeyAges::load(Some(dir.path().to_path_buf()));
        assert_eq!(again.age(1, at(1500)), Some(500));
        assert_eq!(again.age(2, at(1500)), Some(500));
        // Interface 2 removed: forgotten in the file as well.
        let mut again = again;
        again.applied(&applied(&[(1, 1)]), at(1600));
        let reloaded = KeyAges::load(Some(dir.path().to_path_buf()));
        assert_eq!(reloaded.age(1, at(1600)), Some(600));
        assert_eq!(reloaded.age(2, at(1600)), None);
    }

    static NOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000);

    fn test_clock() -> SystemTime {
        at(NOW.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Through the plugin: the configured maximum, the operational leaves,
    /// one notification per crossing, and a new key clearing the alarm.
    #[test]
    fn plugin_reports_age_alarm_and_notification() {
        use std::sync::atomic::Ordering::SeqCst;
        use wgnetconf_plugin_api::Plugin;
        let mut h = Harness::new(Box::new(crate::backend::memory::MemoryBackend::new()));
        h.plugin.clock = test_clock;
        h.plugin.start(crate::tests::context()).expect("start");
        let key1 = crate::genkey();
        let cfg = |key: &str| {
            config(
                &format!(",\"private-key\":\"{key}\",\"max-private-key-age\":3600"),
                &[],
            )
        };
        h.commit(&cfg(&key1)).expect("commit");
        let base = model::iface_path(1);
        let read = |h: &mut Harness| {
            let mut oper = h.running.duplicate().expect("dup");
            h.plugin.operational(&h.running, &mut oper).expect("oper");
            let get = |l: &str| {
                oper.find_path(&format!("{base}/{l}"))
                    .ok()
                    .and_then(|n| n.value_canonical())
            };
            (get("private-key-age"), get("private-key-age-exceeded"))
        };
        NOW.fetch_add(100, SeqCst);
        assert_eq!(read(&mut h), (Some("100".into()), Some("false".into())));
        assert!(h.plugin.events().is_empty());
        NOW.fetch_add(3600, SeqCst);
        assert_eq!(read(&mut h), (Some("3700".into()), Some("true".into())));
        let ev = h.plugin.events();
        assert_eq!(ev.len(), 1);
        let xml = ev[0]
            .print_string(
                yang5::data::DataFormat::XML,
                yang5::data::DataPrinterFlags::WITH_SIBLINGS,
            )
            .expect("print");
        assert!(
            xml.contains("<private-key-age-exceeded")
                && xml.contains("<wireguard>1</wireguard>")
                && xml.contains("<private-key-age>3700</private-key-age>")
                && xml.contains("<max-private-key-age>3600</max-private-key-age>"),
            "{xml}"
        );
        assert!(h.plugin.events().is_empty(), "once per crossing");
        // A new key: age 0, alarm cleared.
        let key2 = crate::genkey();
        h.commit(&cfg(&key2)).expect("rotate");
        assert_eq!(read(&mut h), (Some("0".into()), Some("false".into())));
        // Changing only the maximum keeps the age; no maximum, no alarm.
        NOW.fetch_add(7200, SeqCst);
        h.commit(&config(&format!(",\"private-key\":\"{key2}\""), &[]))
            .expect("no maximum");
        assert_eq!(read(&mut h), (Some("7200".into()), Some("false".into())));
        assert!(h.plugin.events().is_empty());
        // A new key whose commit is aborted (a later plugin failed) keeps
        // the applied key's age.
        NOW.fetch_add(10, SeqCst);
        h.commit_then_abort(&config(
            &format!(",\"private-key\":\"{}\"", crate::genkey()),
            &[],
        ))
        .expect("apply, then abort");
        assert_eq!(read(&mut h).0.as_deref(), Some("7210"));
        let _ = key1;
    }

    #[test]
    fn abort_restores_the_previous_set_time() {
        let mut ages = KeyAges::load(None);
        ages.applied(&applied(&[(1, 1)]), at(1000));
        let snap = ages.snapshot();
        ages.applied(&applied(&[(1, 2)]), at(2000));
        ages.restore(snap);
        assert_eq!(ages.age(1, at(2000)), Some(1000));
    }
}
