//! Locks (RFC 6241 §7.5, §7.6, §8.3.5) and kill-session (§7.9).

#[path = "common/netconf.rs"]
mod netconf;

use netconf::*;

#[test]
fn lock_denied_names_the_holder() {
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    for ds in ["running", "candidate", "startup"] {
        a.lock(ds).assert_ok();
        // RFC 6241 §7.5: "If the lock is already held, the <error-tag>
        // element will be "lock-denied" and the <error-info> element will
        // include the <session-id> of the lock owner."
        let e = b.lock(ds).expect_error("protocol", "lock-denied");
        assert_eq!(
            e.info("session-id"),
            Some(a.session_id.to_string().as_str()),
            "{e:?}"
        );
        // Even the holder cannot take it twice.
        a.lock(ds).expect_error("protocol", "lock-denied");
        // Unlock by another session is refused, the lock stays.
        b.unlock(ds).error();
        b.lock(ds).expect_error("protocol", "lock-denied");
        a.unlock(ds).assert_ok();
        b.lock(ds).assert_ok();
        b.unlock(ds).assert_ok();
    }
    // Unlocking what is not locked is an error.
    a.unlock("running").error();
}

#[test]
fn candidate_with_uncommitted_changes_cannot_be_locked() {
    // RFC 6241 §7.5: a lock "MUST fail if ... the target parameter is
    // <candidate>, and the candidate configuration datastore has already
    // been modified and these changes have not been committed or rolled
    // back."
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    a.edit("candidate", &system("<hostname>dirty</hostname>"))
        .assert_ok();
    for s in [&mut a, &mut b] {
        let e = s.lock("candidate").expect_error("protocol", "lock-denied");
        assert!(e.info("session-id").is_some(), "{e:?}");
    }
    a.rpc("<discard-changes/>").assert_ok();
    b.lock("candidate").assert_ok();
}

#[test]
fn writes_to_a_locked_datastore_are_in_use() {
    let env = Env::new();
    let agent = env.start();
    let mut holder = agent.session(&env);
    let mut other = agent.session(&env);
    seed(&mut holder);
    holder.lock("running").assert_ok();
    holder.lock("candidate").assert_ok();
    holder.lock("startup").assert_ok();

    let edit = system("<hostname>intruder</hostname>");
    other
        .edit("running", &edit)
        .expect_error("protocol", "in-use");
    other
        .edit("candidate", &edit)
        .expect_error("protocol", "in-use");
    other.commit().expect_error("protocol", "in-use");
    other
        .rpc("<discard-changes/>")
        .expect_error("protocol", "in-use");
    other
        .copy("running", "startup")
        .expect_error("protocol", "in-use");
    other
        .copy("candidate", "running")
        .expect_error("protocol", "in-use");
    other
        .rpc(&format!(
            "<copy-config><target><candidate/></target><source><config>{edit}</config></source></copy-config>"
        ))
        .expect_error("protocol", "in-use");
    other
        .rpc("<delete-config><target><startup/></target></delete-config>")
        .expect_error("protocol", "in-use");
    // Reads are fine, and nothing changed.
    for ds in ["running", "candidate"] {
        assert_eq!(
            other.get_config(ds).get("system/hostname").as_deref(),
            Some("alpha")
        );
    }
    // The holder writes freely.
    holder.edit("candidate", &edit).assert_ok();
    holder.commit().assert_ok();
    holder
        .edit("running", &system("<mtu>1600</mtu>"))
        .assert_ok();
    holder.copy("running", "startup").assert_ok();
    assert_eq!(
        other
            .get_config("running")
            .get("system/hostname")
            .as_deref(),
        Some("intruder")
    );
}

#[test]
fn commit_needs_running_unlocked_by_others() {
    // RFC 6241 §8.3.4.1 (commit) with running locked by another session.
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    a.lock("running").assert_ok();
    b.edit("candidate", &system("<hostname>pending</hostname>"))
        .assert_ok();
    b.commit().expect_error("protocol", "in-use");
    assert!(b.get_config("running").find("system/hostname").is_none());
    a.unlock("running").assert_ok();
    b.commit().assert_ok();
    assert_eq!(
        a.get_config("running").get("system/hostname").as_deref(),
        Some("pending")
    );
}

#[test]
fn unlocking_the_candidate_discards_its_changes() {
    // RFC 6241 §8.3.5.2: "If ... the candidate configuration has been
    // modified ... and the lock is released without committing, the
    // changes are discarded" (unlock behaves as discard-changes).
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    seed(&mut a);
    a.lock("candidate").assert_ok();
    a.edit("candidate", &system("<hostname>uncommitted</hostname>"))
        .assert_ok();
    a.unlock("candidate").assert_ok();
    assert_eq!(
        a.get_config("candidate").get("system/hostname").as_deref(),
        Some("alpha")
    );
    // The candidate is clean again: lockable.
    let mut b = agent.session(&env);
    b.lock("candidate").assert_ok();
}

#[test]
fn candidate_changes_of_a_closed_or_dropped_session_are_discarded() {
    let env = Env::new();
    let agent = env.start();
    let mut watcher = agent.session(&env);
    seed(&mut watcher);
    for how in ["close-session", "tcp-drop", "openssh-kill"] {
        let mut a = if how == "openssh-kill" {
            let mut c = agent.openssh(&env);
            c.hello(&[BASE_1_0, BASE_1_1]);
            c
        } else {
            agent.session(&env)
        };
        a.lock("candidate").assert_ok();
        a.lock("running").assert_ok();
        a.edit(
            "candidate",
            &system(&format!("<hostname>{}</hostname>", how.replace('-', ""))),
        )
        .assert_ok();
        match how {
            "close-session" => a.close(),
            _ => a.abort(),
        }
        // The lock goes with the session: poll until the watcher can take
        // it (a dropped TCP connection is noticed asynchronously).
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let r = watcher.lock("candidate");
            if r.is_ok() {
                break;
            }
            let e = r.expect_error("protocol", "lock-denied");
            assert!(
                std::time::Instant::now() < deadline,
                "{how}: lock never released: {e:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            watcher
                .get_config("candidate")
                .get("system/hostname")
                .as_deref(),
            Some("alpha"),
            "{how}: candidate changes survived the session"
        );
        watcher.lock("running").assert_ok();
        watcher.unlock("running").assert_ok();
        watcher.unlock("candidate").assert_ok();
    }
}

#[test]
fn kill_session_releases_locks_and_ends_the_victim() {
    let env = Env::new();
    let agent = env.start();
    let mut victim = agent.session(&env);
    let mut killer = agent.session(&env);
    seed(&mut killer);
    victim.lock("running").assert_ok();
    victim.lock("candidate").assert_ok();
    victim
        .edit("candidate", &system("<hostname>victim</hostname>"))
        .assert_ok();
    killer
        .rpc(&format!(
            "<kill-session><session-id>{}</session-id></kill-session>",
            victim.session_id
        ))
        .assert_ok();
    // RFC 6241 §7.9: locks are released and the session is ended; the ok
    // reply means they are gone, no polling needed.
    killer.lock("running").assert_ok();
    killer.lock("candidate").assert_ok();
    assert_eq!(
        killer
            .get_config("candidate")
            .get("system/hostname")
            .as_deref(),
        Some("alpha")
    );
    let rest = victim.expect_closed();
    assert!(rest.is_empty(), "{rest:?}");
    // Unknown session and own session are refused.
    killer
        .rpc("<kill-session><session-id>99999</session-id></kill-session>")
        .expect_error("protocol", "invalid-value");
    killer
        .rpc(&format!(
            "<kill-session><session-id>{}</session-id></kill-session>",
            killer.session_id
        ))
        .expect_error("protocol", "invalid-value");
}

#[test]
fn running_lock_blocks_edit_from_openssh_session() {
    let env = Env::new();
    let agent = env.start();
    let mut holder = agent.openssh(&env);
    holder.hello(&[BASE_1_0, BASE_1_1]);
    holder.lock("running").assert_ok();
    let mut other = agent.session(&env);
    let e = other
        .edit("running", &system("<hostname>x</hostname>"))
        .expect_error("protocol", "in-use");
    assert!(e.message.is_some());
    holder.close();
    other
        .edit("running", &system("<hostname>x</hostname>"))
        .assert_ok();
}

#[test]
fn unlocked_candidate_changes_outlive_their_session() {
    // The candidate is shared (RFC 6241 §8.3.1); only a lock holder's
    // changes go with it (§8.3.5.2). Changes made without the lock stay
    // for anyone to commit or discard.
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    a.edit("candidate", &system("<hostname>shared</hostname>"))
        .assert_ok();
    a.close();
    let mut b = agent.session(&env);
    assert_eq!(
        b.get_config("candidate").get("system/hostname").as_deref(),
        Some("shared")
    );
    b.commit().assert_ok();
    assert_eq!(
        b.get_config("running").get("system/hostname").as_deref(),
        Some("shared")
    );
}

#[test]
fn locked_edit_commit_unlock_workflow_keeps_the_commit() {
    // RFC 6241 Appendix E.1: lock running, lock candidate, edit, commit,
    // unlock. Unlocking after the commit discards nothing: the candidate
    // equals running.
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    a.lock("running").assert_ok();
    a.lock("candidate").assert_ok();
    a.edit("candidate", &system("<hostname>wf</hostname>"))
        .assert_ok();
    a.rpc("<validate><source><candidate/></source></validate>")
        .assert_ok();
    a.commit().assert_ok();
    a.unlock("candidate").assert_ok();
    a.unlock("running").assert_ok();
    for ds in ["running", "candidate"] {
        assert_eq!(
            b.get_config(ds).get("system/hostname").as_deref(),
            Some("wf"),
            "{ds}"
        );
    }
    // discard-changes by the lock holder works on its own changes.
    b.lock("candidate").assert_ok();
    b.edit("candidate", &system("<hostname>tmp</hostname>"))
        .assert_ok();
    b.rpc("<discard-changes/>").assert_ok();
    assert_eq!(
        b.get_config("candidate").get("system/hostname").as_deref(),
        Some("wf")
    );
    b.unlock("candidate").assert_ok();
}
