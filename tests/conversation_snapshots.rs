//! Persistence (BRIEF §3): restoring at every step of a scenario and continuing produces exactly
//! what the uninterrupted run produces; bad snapshot bytes are refused.

mod support;

use std::time::Duration;

use demls::core::{Conversation, Error};
use support::net::{name, Net};

/// A scenario with joins (one, then a batch), messages, a removal and a leave. With
/// `restore_every_step`, every member is snapshotted and restored between any two steps.
fn scenario(restore_every_step: bool) -> Net {
    let mut net = Net::new(77);
    let step = |net: &mut Net| {
        let progressed = net.step();
        if restore_every_step {
            net.snapshot_and_restore_all();
        }
        progressed
    };
    net.create();
    net.join();
    while step(&mut net) {}
    for _ in 0..3 {
        net.join();
    }
    while step(&mut net) {}
    net.members[2]
        .send_message(net.now, b"between epochs")
        .unwrap();
    net.drain(2);
    net.members[1].propose_remove(net.now, &name(4)).unwrap();
    net.drain(1);
    while step(&mut net) {}
    net.members[3].leave(net.now).unwrap();
    net.drain(3);
    while step(&mut net) {}
    net
}

#[test]
fn restoring_at_every_step_continues_exactly_like_the_uninterrupted_run() {
    let plain = scenario(false);
    let restored = scenario(true);
    assert_eq!(plain.records.len(), restored.records.len());
    for (k, (a, b)) in plain.records.iter().zip(&restored.records).enumerate() {
        assert_eq!(a, b, "record {k} differs");
    }
    for (a, b) in plain.members.iter().zip(&restored.members) {
        assert_eq!(a.state_digest(), b.state_digest());
    }
    assert_eq!(plain.members[0].roster(), vec![name(0), name(1), name(2)]);
    plain.assert_agreement();
}

#[test]
fn snapshots_need_drained_outputs_and_bad_bytes_are_refused() {
    let mut net = Net::new(78);
    net.create();
    net.join();
    net.run_for(Duration::from_millis(1));
    net.members[0].send_message(net.now, b"undrained").unwrap();
    assert!(matches!(net.members[0].snapshot(), Err(Error::Snapshot(_))));
    net.drain(0);
    let bytes = net.members[0].snapshot().unwrap();
    assert!(Conversation::restore(&bytes, net.now, support::net::START_UNIX_MS).is_ok());
    // Truncations and bit flips give typed errors, never a panic.
    for n in (0..bytes.len()).step_by(97) {
        assert!(Conversation::restore(&bytes[..n], net.now, support::net::START_UNIX_MS).is_err());
    }
    let mut flipped = bytes.clone();
    flipped[0] ^= 0xff;
    assert!(matches!(
        Conversation::restore(&flipped, net.now, support::net::START_UNIX_MS),
        Err(Error::Snapshot(_))
    ));
}
