//! Negative-test builders (feature `test-utils`) for what an honest member never sends: a
//! commit tampered with after its batch was chosen (other adds or removals, an unvoted
//! proposal, other group parameters), a proposal with an arbitrary kind and payload, a leave
//! for another member, and another member's signed proposal or vote sent as one's own. They
//! reuse the honest paths (`changes_of`, `next_state`, `params_extensions`, `send_app`) and
//! depart from them at exactly one point each. The rules they break are rows of
//! docs/conformance.md (DM-26, DM-31, DM-82, DM-87, DM-88).

#![cfg(feature = "test-utils")]

use std::time::Instant;

use demls_consensus::{MemberId, ProposalDigest, ProposalKind};
use demls_wire::v1;
use openmls_traits::OpenMlsProvider;
use prost::Message;
use tls_codec::Serialize as _;

use super::round::roster_after;
use super::{mls_error, Conversation};
use crate::error::Error;
use crate::governance::{self, ParsedAction};
use crate::transmit::TrafficClass;

/// The one point where a tampered commit departs from the honest commit of its batch.
enum Tamper {
    /// Adds this member's buffered key package instead of the batch's adds.
    AddInstead(MemberId),
    /// Removes this member instead of the batch's removals.
    RemoveInstead(MemberId),
    /// Also carries a group-context-extensions proposal when the parameters do not change.
    UnchangedParams,
    /// Adds `delta` to `member`'s score in the group parameters it installs.
    Score(MemberId, i64),
}

impl Conversation {
    /// A commit of `batch` (its authority lists exactly `batch`) whose adds are `member`'s
    /// buffered key package instead of the batch's ("Broken MLS proposal"). Returns the
    /// packet; nothing is sent and this member keeps no candidate.
    #[doc(hidden)]
    pub fn test_commit_adding_instead(
        &mut self,
        now: Instant,
        batch: &[ProposalDigest],
        member: &MemberId,
    ) -> Result<Vec<u8>, Error> {
        self.clock.advance(now);
        self.tampered_commit(batch, Tamper::AddInstead(member.clone()))
    }

    /// A commit of `batch` that removes `member` instead of the batch's removals. Returns
    /// the packet; nothing is sent.
    #[doc(hidden)]
    pub fn test_commit_removing_instead(
        &mut self,
        now: Instant,
        batch: &[ProposalDigest],
        member: &MemberId,
    ) -> Result<Vec<u8>, Error> {
        self.clock.advance(now);
        self.tampered_commit(batch, Tamper::RemoveInstead(member.clone()))
    }

    /// A commit of `batch` that also carries a group-context-extensions proposal although
    /// the group parameters do not change: an MLS proposal nobody voted on. Returns the
    /// packet; nothing is sent.
    #[doc(hidden)]
    pub fn test_commit_with_unvoted_proposal(
        &mut self,
        now: Instant,
        batch: &[ProposalDigest],
    ) -> Result<Vec<u8>, Error> {
        self.clock.advance(now);
        self.tampered_commit(batch, Tamper::UnchangedParams)
    }

    /// A commit of `batch` whose group parameters give `member` `delta` more score than the
    /// batch implies. Returns the packet; nothing is sent.
    #[doc(hidden)]
    pub fn test_commit_with_score(
        &mut self,
        now: Instant,
        batch: &[ProposalDigest],
        member: &MemberId,
        delta: i64,
    ) -> Result<Vec<u8>, Error> {
        self.clock.advance(now);
        self.tampered_commit(batch, Tamper::Score(member.clone(), delta))
    }

    /// Builds the commit of `batch` as `try_build` does, tampered with at one point, and
    /// returns its packet. The pending commit is cleared, so this member's own round is
    /// untouched.
    fn tampered_commit(
        &mut self,
        batch: &[ProposalDigest],
        tamper: Tamper,
    ) -> Result<Vec<u8>, Error> {
        let mut batch = batch.to_vec();
        batch.sort();
        batch.dedup();
        let (mut adds, mut removals, added, removed) = self.changes_of(&batch)?;
        let roster_after = roster_after(&self.roster(), &added, &removed);
        let mut next = self.next_state(&self.me.clone(), &batch, &roster_after)?;
        let mut changed = Some(&next) != self.gov.as_ref();
        match tamper {
            Tamper::AddInstead(member) => {
                let kp = self
                    .key_packages
                    .get(&member)
                    .ok_or_else(|| Error::UnknownMember(member.clone()))?;
                adds = vec![kp.key_package.clone()];
            }
            Tamper::RemoveInstead(member) => removals = vec![self.leaf_of(&member)?],
            Tamper::UnchangedParams => changed = true,
            Tamper::Score(member, delta) => {
                next.adjust(&member, delta);
                changed = true;
            }
        }
        let bundle = self.stage_commit(&batch, adds, removals, changed.then_some(&next), false)?;
        let (commit, _, _) = bundle.into_messages();
        let commit = commit.tls_serialize_detached().map_err(mls_error)?;
        let group = self.group.as_mut().ok_or(Error::NotAMember)?;
        group
            .clear_pending_commit(self.provider.storage())
            .map_err(mls_error)?;
        Ok(self
            .packet(v1::packet::Body::MlsMessage(commit))
            .encode_to_vec())
    }

    /// Opens and sends a proposal of `kind` with `payload` as is, unchecked (neither decoded
    /// nor matched against the kind). Returns its digest.
    #[doc(hidden)]
    pub fn test_propose_raw(
        &mut self,
        now: Instant,
        kind: ProposalKind,
        payload: Vec<u8>,
    ) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        self.publish_raw(now, kind, payload, None)
    }

    /// Opens and sends a removal of `member` signed with `kind` (a kind other than the
    /// payload's, unless `kind` is [`ProposalKind::Commit`]). Returns its digest.
    #[doc(hidden)]
    pub fn test_propose_removal_as(
        &mut self,
        now: Instant,
        member: &MemberId,
        kind: ProposalKind,
    ) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        let action = ParsedAction::Remove {
            member: member.clone(),
        };
        self.publish_raw(now, kind, governance::encode(&action), Some(action))
    }

    /// Opens and sends a leave ("Self-Removal") whose target is `member`, not this member:
    /// a proposal claiming auto-YES status that honest members refuse. Returns its digest.
    #[doc(hidden)]
    pub fn test_propose_leave_of(
        &mut self,
        now: Instant,
        member: &MemberId,
    ) -> Result<ProposalDigest, Error> {
        let now = self.clock.advance(now);
        let action = ParsedAction::Leave {
            member: member.clone(),
        };
        let kind = action.kind();
        self.publish_raw(now, kind, governance::encode(&action), Some(action))
    }

    /// Sends the signed proposal `proposal` (another member's, held here) as this member's
    /// own direct proposal message: its signer is not its MLS sender.
    #[doc(hidden)]
    pub fn test_send_proposal_as_own(
        &mut self,
        now: Instant,
        proposal: &ProposalDigest,
    ) -> Result<(), Error> {
        self.clock.advance(now);
        let p = self.signed_proposal(proposal).ok_or(Error::Voting(
            demls_consensus::Error::UnknownProposal(*proposal),
        ))?;
        self.send_app(
            v1::app_content::Body::Voting(demls_consensus::VotingMessage::Proposal(p).encode()),
            TrafficClass::Governance,
        )
    }

    /// Sends `voter`'s signed vote on `proposal` (held here) as this member's own direct
    /// vote message: its signer is not its MLS sender.
    #[doc(hidden)]
    pub fn test_send_vote_as_own(
        &mut self,
        now: Instant,
        proposal: &ProposalDigest,
        voter: &MemberId,
    ) -> Result<(), Error> {
        self.clock.advance(now);
        let vote = self
            .voting
            .iter()
            .chain(self.retired.values())
            .filter_map(|v| v.evidence(proposal))
            .flat_map(|e| e.votes)
            .find(|v| v.voter == *voter)
            .ok_or(Error::UnknownMember(voter.clone()))?;
        self.send_app(
            v1::app_content::Body::Voting(demls_consensus::VotingMessage::Vote(vote).encode()),
            TrafficClass::Governance,
        )
    }
}
