//! Untrusted bytes through both decoders.
//!
//! * `demls_wire::decode_voting_message` must never panic; whatever it accepts must re-encode
//!   and decode again to an equal value (prost's encoding is canonical, and never longer than
//!   the accepted input, so the size limit cannot refuse the re-encoding).
//! * `demls_consensus::VotingMessage::decode` likewise, through the typed conversion: accepted
//!   input must survive `encode()` + `decode` unchanged.
//! * The two agree: the typed decoder refuses exactly with the wire decoder's error when the
//!   wire decoder refuses, and when both accept, the typed value encodes to the same bytes as
//!   the wire value (the conversion is lossless, which signature transcripts rely on).
#![no_main]

use demls_consensus::VotingMessage;
use demls_wire::Limits;
use libfuzzer_sys::fuzz_target;

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
});
