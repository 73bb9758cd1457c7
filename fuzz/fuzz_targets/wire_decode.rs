//! Untrusted bytes through every decoder of demls-wire.
//!
//! * `demls_wire::decode_voting_message` must never panic; whatever it accepts must re-encode
//!   and decode again to an equal value (prost's encoding is canonical, and never longer than
//!   the accepted input, so the size limit cannot refuse the re-encoding).
//! * `demls_consensus::VotingMessage::decode` likewise, through the typed conversion: accepted
//!   input must survive `encode()` + `decode` unchanged.
//! * The two agree: the typed decoder refuses exactly with the wire decoder's error when the
//!   wire decoder refuses, and when both accept, the typed value encodes to the same bytes as
//!   the wire value (the conversion is lossless, which signature transcripts rely on).
//! * The conversation-layer decoders (`decode_packet`, `decode_app_content`,
//!   `decode_governance_action`, `decode_commit_authority`, `decode_group_params`) with default
//!   limits: never panic; whatever they accept re-encodes (prost `encode_to_vec`) to bytes no
//!   longer than the input, which decode again to an equal value and re-encode identically.
#![no_main]

use std::fmt::Debug;

use demls_consensus::VotingMessage;
use demls_wire::{Limits, WireError};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// Runs one conversation-layer decoder on `data` and checks the round trip of what it accepts.
fn round_trip<M>(
    name: &str,
    data: &[u8],
    limits: &Limits,
    decode: fn(&[u8], &Limits) -> Result<M, WireError>,
) where
    M: Message + PartialEq + Debug,
{
    let Ok(message) = decode(data, limits) else {
        return;
    };
    let bytes = message.encode_to_vec();
    assert!(
        bytes.len() <= data.len(),
        "{name}: re-encoding grew the message"
    );
    let again = decode(&bytes, limits)
        .unwrap_or_else(|e| panic!("{name}: a re-encoded accepted message must decode: {e}"));
    assert_eq!(again, message, "{name}: round trip changed the message");
    assert_eq!(
        again.encode_to_vec(),
        bytes,
        "{name}: encoding is not stable"
    );
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();

    let wire = demls_wire::decode_voting_message(data, &limits);
    if let Ok(message) = &wire {
        let bytes = demls_wire::encode(message);
        assert!(bytes.len() <= data.len(), "re-encoding grew the message");
        let again = demls_wire::decode_voting_message(&bytes, &limits)
            .expect("a re-encoded accepted message must decode");
        assert_eq!(&again, message, "wire round trip changed the message");
        assert_eq!(
            demls_wire::encode(&again),
            bytes,
            "wire encoding is not stable"
        );
    }

    let typed = VotingMessage::decode(data, &limits);
    if let Ok(message) = &typed {
        let bytes = message.encode();
        let again = VotingMessage::decode(&bytes, &limits)
            .expect("a re-encoded accepted message must decode");
        assert_eq!(&again, message, "typed round trip changed the message");
        assert_eq!(again.encode(), bytes, "typed encoding is not stable");
    }

    match (&wire, &typed) {
        (Err(w), Err(t)) => assert_eq!(w, t, "the decoders refuse for different reasons"),
        (Err(w), Ok(_)) => panic!("typed decoder accepted what the wire decoder refused: {w}"),
        (Ok(w), Ok(t)) => assert_eq!(
            demls_wire::encode(w),
            t.encode(),
            "typed conversion is lossy"
        ),
        // The typed conversion may refuse more than the wire checks (it maps any remaining
        // problem to a WireError); that is allowed by the contract.
        (Ok(_), Err(_)) => {}
    }

    // The conversation layer.
    round_trip("Packet", data, &limits, demls_wire::decode_packet);
    round_trip("AppContent", data, &limits, demls_wire::decode_app_content);
    round_trip(
        "GovernanceAction",
        data,
        &limits,
        demls_wire::decode_governance_action,
    );
    round_trip(
        "CommitAuthority",
        data,
        &limits,
        demls_wire::decode_commit_authority,
    );
    round_trip(
        "GroupParams",
        data,
        &limits,
        demls_wire::decode_group_params,
    );
});
