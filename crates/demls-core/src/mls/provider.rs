//! [`DemlsProvider`]: the seeded [`OpenMlsProvider`] that owns crypto, randomness and storage.

use core::fmt;

use ed25519_dalek::SigningKey;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::types::SignatureScheme;
use openmls_traits::OpenMlsProvider;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::crypto::{DemlsCrypto, HPKE_KEY_LEN};
use super::rand::{DemlsRand, EntropyState, ENTROPY_STATE_LEN, RAND_STATE_LEN};
use super::storage::{put_bytes, MemoryStorage, Reader, SnapshotError};

/// Version byte leading a [`DemlsProvider::snapshot`].
pub const PROVIDER_SNAPSHOT_VERSION: u8 = 1;

/// Label of the stream openmls draws from ([`DemlsRand`]).
const RAND_STREAM: &str = "openmls/rand";
/// Label of the stream the first HPKE key comes from.
const HPKE_KEY_STREAM: &str = "openmls/hpke-key";

/// The deterministic MLS provider of one member: every key, nonce and HPKE ephemeral it makes
/// derives from the 32-byte construction seed and the entropy mixed in since.
///
/// # Contract
///
/// * **Seed and entropy are inputs.** [`new`](Self::new) takes the seed;
///   [`mix_entropy`](Self::mix_entropy) folds fresh entropy (OS entropy in production, seeded
///   bytes in simulation, recorded bytes on replay) into the secret state and restarts the
///   stream openmls draws from.
/// * **Call [`prepare_operation`](Self::prepare_operation) before every MLS operation** that may
///   encrypt (creating key packages or groups, committing, sending). It refreshes the HPKE
///   derivation key from the stream and rekeys the stream (key erasure), so two operations never
///   share HPKE randomness and a later snapshot cannot reproduce earlier draws.
/// * **Signature keys** come from [`generate_signature_keypair`](Self::generate_signature_keypair);
///   `SignatureKeyPair::new` would read the OS RNG and the crypto provider's `signature_key_gen`
///   refuses (it owns no randomness).
/// * **Determinism**: the same seed, the same entropy inputs and the same sequence of calls give
///   byte-identical MLS messages, on any machine and under any rayon scheduling.
/// * **Persistence**: [`snapshot`](Self::snapshot) captures the entropy state, the stream
///   position, the HPKE key and the key store; [`restore`](Self::restore) resumes exactly, so the
///   restored provider produces what the original would have.
///
/// Seeds, entropy inputs and snapshots are secrets: they determine every private key. `Debug`
/// redacts them; nothing here logs.
///
/// The provider is `Send` but not `Sync` (its stream and store are `RefCell`s); openmls needs
/// neither, and the crypto provider it hands to rayon workers is `Sync` on its own.
pub struct DemlsProvider {
    entropy: EntropyState,
    rand: DemlsRand,
    crypto: DemlsCrypto,
    storage: MemoryStorage,
}

impl DemlsProvider {
    /// A provider whose randomness derives from `seed` (a secret), with an empty key store.
    pub fn new(seed: [u8; 32]) -> Self {
        let mut entropy = EntropyState::new(seed);
        let rand = DemlsRand::new(entropy.stream(RAND_STREAM));
        let mut hpke_key = [0u8; HPKE_KEY_LEN];
        entropy.stream(HPKE_KEY_STREAM).fill_bytes(&mut hpke_key);
        // Forward secrecy: the state no longer derives the streams just taken.
        entropy.ratchet();
        Self {
            entropy,
            rand,
            crypto: DemlsCrypto::new(hpke_key),
            storage: MemoryStorage::new(),
        }
    }

    /// Folds `entropy` into the secret state and restarts openmls's stream from the new state.
    /// Feed it before operations that make key material whenever the host has fresh entropy;
    /// any length is accepted.
    pub fn mix_entropy(&mut self, entropy: &[u8]) {
        self.entropy.mix(entropy);
        self.rand.reseed(self.entropy.stream(RAND_STREAM));
        self.entropy.ratchet();
    }

    /// Readies the provider for one MLS operation: draws a new HPKE derivation key and a new
    /// stream key from the stream, and rekeys the stream with the latter (so the bytes drawn
    /// before cannot be recomputed from a later snapshot). Call it before every operation.
    pub fn prepare_operation(&mut self) {
        let mut keys = [0u8; 64];
        self.fill(&mut keys);
        let (stream_key, hpke_key) = keys.split_at(32);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(stream_key);
        let mut key = [0u8; HPKE_KEY_LEN];
        key.copy_from_slice(hpke_key);
        self.rand.reseed(ChaCha20Rng::from_seed(seed));
        self.crypto.set_hpke_key(key);
    }

    /// A fresh Ed25519 signature key pair drawn from the stream (32 secret bytes, as
    /// `SignatureKeyPair::new` would make them, but without the OS RNG). Not stored: call
    /// `SignatureKeyPair::store` with [`storage`](OpenMlsProvider::storage) to keep it in the
    /// snapshot.
    pub fn generate_signature_keypair(&mut self) -> SignatureKeyPair {
        let mut secret = [0u8; 32];
        self.fill(&mut secret);
        let key = SigningKey::from_bytes(&secret);
        SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            key.to_bytes().to_vec(),
            key.verifying_key().to_bytes().to_vec(),
        )
    }

    /// An independent ChaCha20 stream for a purpose of the caller's (ids, padding, jitter …),
    /// derived from the secret state under `label`. The state ratchets afterwards, so asking
    /// again — with any label — gives a new stream.
    pub fn derive_stream(&mut self, label: &str) -> ChaCha20Rng {
        let stream = self.entropy.stream(label);
        self.entropy.ratchet();
        stream
    }

    /// Draws from openmls's stream. `&mut self` guarantees no draw is in progress.
    fn fill(&mut self, out: &mut [u8]) {
        self.rand
            .fill(out)
            .expect("no draw is in progress while the provider is borrowed mutably");
    }

    /// The whole provider state:
    /// `version (1 byte) ‖ entropy state (32) ‖ stream seed and word position (48) ‖
    /// HPKE key (32) ‖ u64be(len) ‖ key store snapshot`. Secret.
    pub fn snapshot(&self) -> Vec<u8> {
        let storage = self.storage.snapshot();
        let mut out = Vec::with_capacity(
            1 + ENTROPY_STATE_LEN + RAND_STATE_LEN + HPKE_KEY_LEN + 8 + storage.len(),
        );
        out.push(PROVIDER_SNAPSHOT_VERSION);
        out.extend_from_slice(&self.entropy.to_bytes());
        out.extend_from_slice(&self.rand.to_bytes());
        out.extend_from_slice(&self.crypto.hpke_key());
        put_bytes(&mut out, &storage);
        out
    }

    /// The provider saved by [`snapshot`](Self::snapshot). Malformed bytes give a typed error,
    /// never a panic.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut reader = Reader::new(bytes);
        let version = reader.u8()?;
        if version != PROVIDER_SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let entropy = EntropyState::from_bytes(reader.array()?);
        let rand =
            DemlsRand::from_bytes(&reader.array()?).ok_or(SnapshotError::InvalidRandPosition)?;
        let crypto = DemlsCrypto::new(reader.array()?);
        let storage = MemoryStorage::restore(reader.bytes()?)?;
        reader.finish()?;
        Ok(Self {
            entropy,
            rand,
            crypto,
            storage,
        })
    }
}

impl fmt::Debug for DemlsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemlsProvider")
            .field("entropy", &self.entropy)
            .field("rand", &self.rand)
            .field("crypto", &self.crypto)
            .field("storage", &self.storage)
            .finish()
    }
}

impl OpenMlsProvider for DemlsProvider {
    type CryptoProvider = DemlsCrypto;
    type RandProvider = DemlsRand;
    type StorageProvider = MemoryStorage;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.rand
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openmls_traits::random::OpenMlsRand;

    #[test]
    fn same_seed_same_draws_and_keys() {
        let mut a = DemlsProvider::new([5; 32]);
        let mut b = DemlsProvider::new([5; 32]);
        for p in [&mut a, &mut b] {
            p.mix_entropy(b"entropy");
            p.prepare_operation();
        }
        assert_eq!(
            a.generate_signature_keypair().public(),
            b.generate_signature_keypair().public()
        );
        assert_eq!(
            a.rand().random_vec(40).unwrap(),
            b.rand().random_vec(40).unwrap()
        );
        assert_eq!(a.crypto().hpke_key(), b.crypto().hpke_key());
        let mut c = DemlsProvider::new([6; 32]);
        assert_ne!(
            a.generate_signature_keypair().public(),
            c.generate_signature_keypair().public()
        );
    }

    #[test]
    fn prepare_operation_changes_key_and_stream() {
        let mut p = DemlsProvider::new([1; 32]);
        let before = (p.crypto().hpke_key(), p.rand.to_bytes());
        p.prepare_operation();
        assert_ne!(before.0, p.crypto().hpke_key());
        assert_ne!(before.1[..32], p.rand.to_bytes()[..32]);
    }

    #[test]
    fn derived_streams_never_repeat() {
        let mut p = DemlsProvider::new([1; 32]);
        let first = p.derive_stream("ids").get_seed();
        assert_ne!(first, p.derive_stream("ids").get_seed());
    }

    #[test]
    fn snapshot_round_trip_continues_the_stream() {
        let mut p = DemlsProvider::new([2; 32]);
        p.prepare_operation();
        p.rand().random_vec(7).unwrap();
        let snap = p.snapshot();
        let mut q = DemlsProvider::restore(&snap).unwrap();
        assert_eq!(q.snapshot(), snap);
        assert_eq!(
            p.rand().random_vec(33).unwrap(),
            q.rand().random_vec(33).unwrap()
        );
        p.mix_entropy(b"x");
        q.mix_entropy(b"x");
        p.prepare_operation();
        q.prepare_operation();
        assert_eq!(p.snapshot(), q.snapshot());
    }

    #[test]
    fn the_provider_can_move_between_threads() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<DemlsProvider>();
        send_sync::<DemlsCrypto>();
    }

    #[test]
    fn debug_shows_no_secrets() {
        let p = DemlsProvider::new([0xAB; 32]);
        let text = format!("{p:?}");
        assert!(text.contains("redacted"));
        assert!(!text.to_lowercase().contains("ab, ab"));
    }
}
