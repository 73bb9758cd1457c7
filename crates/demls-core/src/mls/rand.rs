//! Seeded, labelled randomness: the secret [`EntropyState`], the streams derived from it, and
//! [`DemlsRand`], the [`OpenMlsRand`] openmls draws from.
//!
//! Everything here is a pure function of the construction seed and the entropy mixed in since,
//! so two runs fed the same inputs draw the same bytes.
//!
//! ## Why a `RefCell` is enough for [`DemlsRand`]
//!
//! openmls 0.9.2 parallelises with rayon in exactly two places, both on the commit path:
//! `ParentNode::derive_path` (`src/treesync/node/parent_node.rs`, `into_par_iter` over the path
//! secrets) and `TreeSyncDiff::encrypt_path` / `PlainUpdatePathNode::encrypt`
//! (`src/treesync/treekem.rs` and `parent_node.rs`, `par_iter` over the path and the copath
//! resolutions). Their closures capture only `crypto: &impl OpenMlsCrypto` (which is
//! `Send + Sync`), the ciphersuite and the group context; no `provider.rand()` call site in the
//! non-test sources sits inside a parallel closure. The compiler enforces this
//! too: `OpenMlsRand` has no `Sync` bound and openmls puts none on its generic parameters, so a
//! rayon closure could not capture a `&impl OpenMlsRand` at all. Randomness is therefore drawn
//! sequentially on the caller's thread, in program order, and a single stream behind a
//! `RefCell` is deterministic. (HPKE encryption, which *does* run on rayon workers, draws no
//! stream randomness at all; see [`super::crypto`].)

use core::cell::RefCell;
use core::fmt;

use hkdf::HkdfExtract;
use openmls_traits::random::OpenMlsRand;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::Sha256;

/// Length of the secret entropy state, in bytes.
pub const ENTROPY_STATE_LEN: usize = 32;

/// Length of [`DemlsRand::to_bytes`]: the 32-byte ChaCha20 seed and the 16-byte word position.
pub const RAND_STATE_LEN: usize = 48;

/// HKDF salts and infos: one per use, so no two derivations can collide.
const INIT_SALT: &[u8] = b"demls/v1/entropy/init";
const MIX_SALT: &[u8] = b"demls/v1/entropy/mix";
const RATCHET_SALT: &[u8] = b"demls/v1/entropy/ratchet";
const STATE_INFO: &[u8] = b"demls/v1/entropy/state";
const STREAM_SALT: &[u8] = b"demls/v1/entropy/stream";
const STREAM_INFO: &[u8] = b"demls/v1/stream";

/// ChaCha20's counter is 64 bits over 16-word blocks: word positions are below 2^68.
const WORD_POS_LIMIT: u128 = 1 << 68;

/// HKDF-SHA256 with the input keying material given in parts and the info in parts,
/// expanded to 32 bytes.
fn hkdf32(salt: &[u8], ikm: &[&[u8]], info: &[&[u8]]) -> [u8; 32] {
    let mut extract = HkdfExtract::<Sha256>::new(Some(salt));
    for part in ikm {
        extract.input_ikm(part);
    }
    let (_, hkdf) = extract.finalize();
    let mut out = [0u8; 32];
    hkdf.expand_multi_info(info, &mut out)
        .expect("32 bytes is within HKDF-SHA256's output limit of 8160");
    out
}

/// The secret 32-byte state every random draw derives from.
///
/// It starts as a key derived from the caller's construction seed; [`mix`](Self::mix) folds
/// fresh entropy in (so a stolen snapshot stops predicting future draws once unknown entropy is
/// mixed); [`stream`](Self::stream) derives an independent ChaCha20 stream per label.
///
/// The state is a secret: it is never logged (`Debug` redacts it) and only leaves the process
/// inside a provider snapshot, which the host must treat as a secret too.
#[derive(Clone, PartialEq, Eq)]
pub struct EntropyState {
    state: [u8; ENTROPY_STATE_LEN],
}

impl EntropyState {
    /// The state for a construction seed:
    /// `HKDF-SHA256(salt = "demls/v1/entropy/init", ikm = seed, info = "demls/v1/entropy/state")`.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            state: hkdf32(INIT_SALT, &[&seed], &[STATE_INFO]),
        }
    }

    /// Folds `entropy` into the state:
    /// `state = HKDF-SHA256(salt = "demls/v1/entropy/mix", ikm = state ‖ u64be(len) ‖ entropy,
    /// info = "demls/v1/entropy/state")`. Any length is accepted, including zero (which still
    /// ratchets the state forward).
    pub fn mix(&mut self, entropy: &[u8]) {
        let len = (entropy.len() as u64).to_be_bytes();
        self.state = hkdf32(MIX_SALT, &[&self.state, &len, entropy], &[STATE_INFO]);
    }

    /// Moves the state one way forward without new entropy:
    /// `state = HKDF-SHA256(salt = "demls/v1/entropy/ratchet", ikm = state,
    /// info = "demls/v1/entropy/state")`. After it, the streams derived before can no longer be
    /// recomputed from the state (forward secrecy against a later snapshot).
    pub fn ratchet(&mut self) {
        self.state = hkdf32(RATCHET_SALT, &[&self.state], &[STATE_INFO]);
    }

    /// The ChaCha20 stream for `label`, seeded with
    /// `HKDF-SHA256(salt = "demls/v1/entropy/stream", ikm = state,
    /// info = "demls/v1/stream" ‖ u64be(len(label)) ‖ label)`.
    ///
    /// Different labels give independent streams; the same label on the same state gives the
    /// same stream again, so a caller that needs fresh bytes for a repeated purpose must either
    /// keep the stream it got or [`mix`](Self::mix) in between.
    pub fn stream(&self, label: &str) -> ChaCha20Rng {
        let len = (label.len() as u64).to_be_bytes();
        let seed = hkdf32(
            STREAM_SALT,
            &[&self.state],
            &[STREAM_INFO, &len, label.as_bytes()],
        );
        ChaCha20Rng::from_seed(seed)
    }

    /// The raw state, for snapshots. Secret.
    pub fn to_bytes(&self) -> [u8; ENTROPY_STATE_LEN] {
        self.state
    }

    /// Restores a state taken with [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(state: [u8; ENTROPY_STATE_LEN]) -> Self {
        Self { state }
    }
}

impl fmt::Debug for EntropyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EntropyState(<redacted>)")
    }
}

/// Why [`DemlsRand`] could not produce bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RandError {
    /// The stream was already borrowed: a draw re-entered another draw. openmls never does
    /// this; the error exists so that misuse is reported instead of panicking.
    #[error("the random stream is already in use")]
    Reentrant,
}

/// The randomness openmls draws from: one ChaCha20 stream behind a `RefCell`.
///
/// Not `Sync` on purpose (see the module docs for why openmls never needs it to be). Its
/// position ([`to_bytes`](Self::to_bytes)) is part of the provider snapshot, so a restored
/// provider continues the very same stream.
pub struct DemlsRand {
    rng: RefCell<ChaCha20Rng>,
}

impl DemlsRand {
    /// A randomness provider drawing from `rng` (normally an [`EntropyState::stream`]).
    pub fn new(rng: ChaCha20Rng) -> Self {
        Self {
            rng: RefCell::new(rng),
        }
    }

    /// Fills `out` from the stream.
    pub fn fill(&self, out: &mut [u8]) -> Result<(), RandError> {
        let mut rng = self
            .rng
            .try_borrow_mut()
            .map_err(|_| RandError::Reentrant)?;
        rng.fill_bytes(out);
        Ok(())
    }

    /// Replaces the stream (after entropy was mixed in, or for key erasure).
    pub fn reseed(&mut self, rng: ChaCha20Rng) {
        *self.rng.get_mut() = rng;
    }

    /// The stream's position: its 32-byte seed, then its word position as a big-endian u128.
    /// Secret: it determines every past and future output of the stream.
    pub fn to_bytes(&self) -> [u8; RAND_STATE_LEN] {
        // A draw holds the borrow only while copying bytes and calls nothing back, so no
        // borrow can be outstanding here.
        let rng = self.rng.borrow();
        let mut out = [0u8; RAND_STATE_LEN];
        out[..32].copy_from_slice(&rng.get_seed());
        out[32..].copy_from_slice(&rng.get_word_pos().to_be_bytes());
        out
    }

    /// The provider continuing the stream saved by [`to_bytes`](Self::to_bytes). Returns `None`
    /// for a word position no ChaCha20 stream can reach (≥ 2^68), so every accepted encoding
    /// is one that `to_bytes` produces.
    pub fn from_bytes(bytes: &[u8; RAND_STATE_LEN]) -> Option<Self> {
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[..32]);
        let mut pos = [0u8; 16];
        pos.copy_from_slice(&bytes[32..]);
        let word_pos = u128::from_be_bytes(pos);
        if word_pos >= WORD_POS_LIMIT {
            return None;
        }
        let mut rng = ChaCha20Rng::from_seed(seed);
        rng.set_word_pos(word_pos);
        Some(Self::new(rng))
    }
}

impl fmt::Debug for DemlsRand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DemlsRand(<redacted>)")
    }
}

impl OpenMlsRand for DemlsRand {
    type Error = RandError;

    fn random_array<const N: usize>(&self) -> Result<[u8; N], Self::Error> {
        let mut out = [0u8; N];
        self.fill(&mut out)?;
        Ok(out)
    }

    fn random_vec(&self, len: usize) -> Result<Vec<u8>, Self::Error> {
        let mut out = vec![0u8; len];
        self.fill(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_labelled_and_mixing_changes_them() {
        let state = EntropyState::new([1; 32]);
        let a = state.stream("a").get_seed();
        assert_eq!(a, EntropyState::new([1; 32]).stream("a").get_seed());
        assert_ne!(a, state.stream("b").get_seed());
        assert_ne!(a, EntropyState::new([2; 32]).stream("a").get_seed());
        let mut mixed = state.clone();
        mixed.mix(b"");
        assert_ne!(a, mixed.stream("a").get_seed());
        let mut other = state.clone();
        other.mix(b"x");
        assert_ne!(mixed, other);
        let mut ratcheted = state.clone();
        ratcheted.ratchet();
        assert_ne!(ratcheted, mixed);
        assert_ne!(ratcheted, state);
    }

    #[test]
    fn position_round_trips_mid_word() {
        let rand = DemlsRand::new(EntropyState::new([3; 32]).stream("r"));
        // Odd sizes leave the stream mid-word and mid-block.
        rand.random_vec(3).unwrap();
        rand.random_vec(61).unwrap();
        let saved = rand.to_bytes();
        let restored = DemlsRand::from_bytes(&saved).unwrap();
        assert_eq!(
            rand.random_vec(200).unwrap(),
            restored.random_vec(200).unwrap()
        );
    }

    #[test]
    fn unreachable_word_positions_are_refused() {
        let mut bytes = [0u8; RAND_STATE_LEN];
        bytes[32..].copy_from_slice(&WORD_POS_LIMIT.to_be_bytes());
        assert!(DemlsRand::from_bytes(&bytes).is_none());
        bytes[32..].copy_from_slice(&(WORD_POS_LIMIT - 1).to_be_bytes());
        assert!(DemlsRand::from_bytes(&bytes).is_some());
    }

    #[test]
    fn debug_redacts() {
        let state = EntropyState::new([9; 32]);
        assert_eq!(format!("{state:?}"), "EntropyState(<redacted>)");
    }
}
