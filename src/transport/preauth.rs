//! Who may hold a connection that has not authenticated yet, modelled on
//! OpenSSH 9.8's `MaxStartups`, `PerSourceMaxStartups`,
//! `PerSourceNetBlockSize` and `PerSourcePenalties`.
//!
//! Without a per-source share, one address holding idle TCP connections
//! fills the global cap and locks every operator out until the pre-auth
//! timeout; without penalties it can do so again at once. So:
//!
//! - at most `max_unauthenticated` connections in total; once half of
//!   them are in use, a source already holding
//!   `max_unauthenticated_per_source` gets no more (a source is an IPv4
//!   address, or an IPv6 /64, which one subscriber usually owns whole).
//!   So one source never takes the last half of the slots, while a burst
//!   of logins from one automation host on a quiet agent (twenty sessions
//!   at once, each password check waiting its turn) is not cut at 8 —
//!   the same idea as MaxStartups' start:rate:full, without the dice;
//! - a source accrues penalty time when its connections end badly (failed
//!   authentication, no attempt at all, the pre-auth timeout reached);
//!   once the accrued time reaches `penalty_min_secs`, new connections from
//!   it are refused until it runs out (capped at `penalty_max_secs`).
//!
//! Refused connections are closed at accept, before any SSH work.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::SshConfig;

/// The unit of fairness: an IPv4 address or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    pub fn of(addr: &SocketAddr) -> Source {
        match addr.ip() {
            IpAddr::V4(v4) => Source::V4(u32::from(v4)),
            // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d:
            // they are IPv4 sources, not one shared /64.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(u32::from(v4)),
                None => Source::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// How a connection that never authenticated ended, for its penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadEnd {
    /// It tried and failed to authenticate (OpenSSH `authfail`).
    AuthFailed,
    /// It went away without trying (OpenSSH `noauth`).
    NoAttempt,
    /// It was still there at the pre-auth timeout (OpenSSH `grace-exceeded`).
    Timeout,
}

/// Why a new connection is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Global,
    PerSource,
    Penalty(Duration),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Global => write!(f, "too many unauthenticated connections"),
            Refusal::PerSource => {
                write!(f, "too many unauthenticated connections from this source")
            }
            Refusal::Penalty(left) => write!(f, "source penalised for {} s", left.as_secs()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_total: usize,
    pub max_per_source: usize,
    pub authfail: Duration,
    pub noauth: Duration,
    pub timeout: Duration,
    pub min: Duration,
    pub max: Duration,
    pub max_sources: usize,
}

impl Limits {
    pub fn from_config(c: &SshConfig) -> Limits {
        Limits {
            max_total: c.max_unauthenticated.max(1),
            max_per_source: c.max_unauthenticated_per_source.max(1),
            authfail: Duration::from_secs(c.penalty_authfail_secs),
            noauth: Duration::from_secs(c.penalty_noauth_secs),
            timeout: Duration::from_secs(c.penalty_timeout_secs),
            min: Duration::from_secs(c.penalty_min_secs),
            max: Duration::from_secs(c.penalty_max_secs),
            max_sources: c.penalty_max_sources,
        }
    }
}

#[derive(Debug)]
struct Penalty {
    until: Instant,
    /// Set once the accrued time reached `min`; refusals start then.
    enforced: bool,
}

#[derive(Default, Debug)]
struct State {
    total: usize,
    per_source: HashMap<Source, usize>,
    penalties: HashMap<Source, Penalty>,
    last_purge: Option<Instant>,
}

/// The shared gate of every SSH listener.
pub struct Gate {
    limits: Limits,
    state: Mutex<State>,
}

/// One admitted unauthenticated connection; dropping it (at
/// authentication or at the end of the connection) frees its slots.
pub struct Ticket {
    gate: Arc<Gate>,
    source: Source,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Ok(mut s) = self.gate.state.lock() else {
            return;
        };
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                s.per_source.remove(&self.source);
            }
        }
    }
}

impl Gate {
    pub fn new(limits: Limits) -> Arc<Gate> {
        Arc::new(Gate {
            limits,
            state: Mutex::new(State::default()),
        })
    }

    /// Admits a new connection from `addr`, or says why not.
    pub fn admit(self: &Arc<Gate>, addr: &SocketAddr) -> Result<Ticket, Refusal> {
        let source = Source::of(addr);
        let now = Instant::now();
        let mut s = self.state.lock().map_err(|_| Refusal::Global)?;
        if let Some(p) = s.penalties.get(&source) {
            if p.until <= now {
                s.penalties.remove(&source);
            } else if p.enforced {
                return Err(Refusal::Penalty(p.until - now));
            }
        }
        // The per-source share applies once half the slots are taken, and
        // comes first: a source past it is told so even when all are.
        let mine = s.per_source.get(&source).copied().unwrap_or(0);
        if mine >= self.limits.max_per_source && s.total >= self.limits.max_total / 2 {
            return Err(Refusal::PerSource);
        }
        if s.total >= self.limits.max_total {
            return Err(Refusal::Global);
        }
        s.total += 1;
        *s.per_source.entry(source).or_insert(0) += 1;
        Ok(Ticket {
            gate: self.clone(),
            source,
        })
    }

    /// Adds the penalty for `end` to the source of `addr`.
    pub fn penalise(&self, addr: &SocketAddr, end: BadEnd) {
        let add = match end {
            BadEnd::AuthFailed => self.limits.authfail,
            BadEnd::NoAttempt => self.limits.noauth,
            BadEnd::Timeout => self.limits.timeout,
        };
        if add.is_zero() {
            return;
        }
        let source = Source::of(addr);
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if !s.penalties.contains_key(&source) && s.penalties.len() >= self.limits.max_sources {
            // Full: drop expired entries, at most once a second so a flood
            // of new sources does not make every failure scan the table.
            if s.last_purge
                .is_none_or(|t| now - t >= Duration::from_secs(1))
            {
                s.penalties.retain(|_, p| p.until > now);
                s.last_purge = Some(now);
            }
            if s.penalties.len() >= self.limits.max_sources {
                // Permissive overflow (OpenSSH's default): the new source
                // goes unpenalised rather than someone else being freed.
                return;
            }
        }
        let p = s.penalties.entry(source).or_insert(Penalty {
            until: now,
            enforced: false,
        });
        let base = p.until.max(now);
        let left = (base - now + add).min(self.limits.max);
        p.until = now + left;
        // Whole seconds, rounded up, as OpenSSH counts: the microseconds
        // since the last penalty must not keep a source under the minimum.
        if left.as_millis().div_ceil(1000) >= self.limits.min.as_millis().div_ceil(1000) {
            if !p.enforced {
                tracing::warn!(source = %addr.ip(), secs = left.as_secs(), "SSH source penalised");
            }
            p.enforced = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_total: 4,
            max_per_source: 2,
            authfail: Duration::from_secs(5),
            noauth: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            min: Duration::from_secs(15),
            max: Duration::from_secs(600),
            max_sources: 2,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[tokio::test]
    async fn one_source_cannot_take_the_last_slots() {
        let g = Gate::new(limits());
        let a1 = g.admit(&addr("10.0.0.1:1")).expect("first");
        let _a2 = g.admit(&addr("10.0.0.1:2")).expect("second");
        assert_eq!(g.admit(&addr("10.0.0.1:3")).err(), Some(Refusal::PerSource));
        let _b = g.admit(&addr("10.0.0.2:1")).expect("other source");
        drop(a1);
        let _a3 = g.admit(&addr("10.0.0.1:4")).expect("slot freed");
    }

    #[tokio::test]
    async fn a_source_may_exceed_its_share_only_while_half_the_slots_are_free() {
        let g = Gate::new(Limits {
            max_total: 8,
            ..limits()
        });
        let mine: Vec<Ticket> = (0..4)
            .map(|i| {
                g.admit(&addr(&format!("10.0.0.1:{i}")))
                    .expect("quiet agent")
            })
            .collect();
        assert_eq!(g.admit(&addr("10.0.0.1:9")).err(), Some(Refusal::PerSource));
        let others: Vec<Ticket> = (1..=4)
            .map(|i| {
                g.admit(&addr(&format!("10.0.2.{i}:1")))
                    .expect("other sources")
            })
            .collect();
        assert_eq!(g.admit(&addr("10.0.3.1:1")).err(), Some(Refusal::Global));
        drop((mine, others));
    }

    #[tokio::test]
    async fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let g = Gate::new(limits());
        let _x = g.admit(&addr("[2001:db8::1]:1")).expect("x");
        let _y = g.admit(&addr("[2001:db8::ffff:2]:1")).expect("y");
        assert_eq!(
            g.admit(&addr("[2001:db8::3]:1")).err(),
            Some(Refusal::PerSource)
        );
        assert_eq!(
            Source::of(&addr("[::ffff:10.0.0.1]:5")),
            Source::of(&addr("10.0.0.1:6"))
        );
    }

    #[tokio::test]
    async fn penalties_accrue_to_the_minimum_then_refuse() {
        let g = Gate::new(limits());
        let a = addr("10.0.0.9:1");
        g.penalise(&a, BadEnd::AuthFailed);
        g.penalise(&a, BadEnd::AuthFailed);
        drop(g.admit(&a).expect("10 s accrued: under the minimum"));
        g.penalise(&a, BadEnd::AuthFailed);
        assert!(matches!(g.admit(&a), Err(Refusal::Penalty(_))));
        // Others are untouched.
        drop(g.admit(&addr("10.0.0.8:1")).expect("other source"));
    }

    #[tokio::test]
    async fn penalties_are_capped() {
        let g = Gate::new(limits());
        let a = addr("10.0.0.9:1");
        for _ in 0..1000 {
            g.penalise(&a, BadEnd::Timeout);
        }
        match g.admit(&a) {
            Err(Refusal::Penalty(left)) => assert!(left <= Duration::from_secs(600), "{left:?}"),
            other => panic!("not penalised: {:?}", other.err()),
        }
    }

    #[tokio::test]
    async fn table_overflow_is_permissive() {
        let g = Gate::new(limits());
        for i in 1..=2 {
            let a = addr(&format!("10.0.1.{i}:1"));
            for _ in 0..2 {
                g.penalise(&a, BadEnd::Timeout);
            }
        }
        let c = addr("10.0.1.3:1");
        for _ in 0..2 {
            g.penalise(&c, BadEnd::Timeout);
        }
        drop(g.admit(&c).expect("not tracked: table full"));
    }
}
