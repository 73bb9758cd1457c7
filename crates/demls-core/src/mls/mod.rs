//! The deterministic MLS provider: openmls 0.9.2 driven entirely by caller-supplied randomness.
//!
//! [`DemlsProvider`] implements [`OpenMlsProvider`](openmls_traits::OpenMlsProvider) with
//! [`DemlsCrypto`], [`DemlsRand`] and [`MemoryStorage`]. Same seed + same entropy inputs + same
//! calls ⇒ byte-identical MLS messages (key packages, commits, welcomes, application messages),
//! whatever the machine and however rayon schedules openmls's worker threads.
//!
//! # Design
//!
//! * **One secret state, labelled streams.** An [`EntropyState`] (32 bytes) starts as
//!   HKDF-SHA256 of the construction seed; [`EntropyState::mix`] folds caller entropy in
//!   (HKDF over `state ‖ len ‖ entropy`, domain-labelled), and [`EntropyState::stream`] derives a
//!   ChaCha20 stream per label. The provider ratchets the state after every derivation, so a
//!   later snapshot cannot recompute earlier streams; mixing unknown entropy makes later streams
//!   unpredictable to whoever stole an earlier snapshot (post-compromise security).
//! * **openmls's randomness is one stream** ([`DemlsRand`], a `ChaCha20Rng` in a `RefCell`).
//!   openmls draws from it only on the caller's thread, in program order (verified below), so a
//!   single stream is deterministic. [`DemlsProvider::prepare_operation`] rekeys it from its own
//!   output before each operation (key erasure).
//! * **HPKE randomness is derived per call, not drawn.** openmls seals update-path secrets from
//!   rayon workers, so a shared stream would hand out bytes in scheduling order. [`DemlsCrypto`]
//!   instead keys a fresh ChaCha20 per `hpke_seal` / `hpke_setup_sender_and_export` call with
//!   HMAC-SHA256(`hpke_key`, label ‖ config ‖ length-prefixed inputs) — a function of the call's
//!   arguments only. `hpke_key` is a plain field the owner refreshes from the stream through
//!   `&mut self` before each operation.
//! * **No locks.** The crypto provider has no interior mutability at all, so it is
//!   `Send + Sync` as openmls requires without a `Mutex`; the stream and the store are
//!   `RefCell`s, which is sound because openmls never reaches them from its workers.
//! * **Storage** is a lock-free port of `openmls_memory_storage` over a `BTreeMap` (ordered
//!   snapshots); its value bytes are faithful but not promised canonical (openmls may serialize
//!   hash maps), which only matters for comparing snapshots, not MLS messages.
//! * **Snapshots** are versioned, length-prefixed bytes; restoring is total (typed
//!   [`SnapshotError`], no panic) and resumes every stream at its exact position.
//!
//! # What was verified in the openmls 0.9.2 sources
//!
//! * **Parallelism**: rayon is used in `ParentNode::derive_path` (`into_par_iter` over path
//!   secrets, calling `derive_key_pair` → `crypto.derive_hpke_keypair`, deterministic) and in
//!   `TreeSyncDiff::encrypt_path` / `PlainUpdatePathNode::encrypt` (`par_iter`, calling
//!   `crypto.hpke_seal`). Those closures capture only the crypto provider, the ciphersuite and
//!   the group context. No `provider.rand()` call in non-test code is inside a parallel closure,
//!   and none could be: `OpenMlsRand` is not `Sync` and openmls adds no `Sync` bound anywhere.
//! * **HPKE sender calls**: `hpke_seal` (path secrets, welcome group secrets) and
//!   `hpke_setup_sender_and_export` (external-commit init secret) are the only ones.
//! * **OS randomness**: `OpenMlsRustCrypto` seeds its ChaCha20 from the OS behind an `RwLock`,
//!   `hpke-rs` draws OS entropy on every HPKE call, and `SignatureKeyPair::new` uses `OsRng`;
//!   `SignatureKeyPair::from_raw` does not. openmls itself never calls `signature_key_gen`.
//! * **Wall clock**: `Lifetime::new` and `Lifetime::default()` (used by `KeyPackageBuilder`
//!   and `MlsGroupCreateConfig` when no lifetime is given) read `SystemTime::now`.
//!   `Lifetime::init(not_before, not_after)` exists and is public in 0.9.2, and
//!   `KeyPackageBuilder::key_package_lifetime` / `MlsGroupBuilder::lifetime` accept it, so the
//!   bytes we emit need not depend on the clock. Validation still does: `Lifetime::validate`
//!   (reading `SystemTime::now`) runs in `KeyPackageIn::validate` and on leaf nodes of added
//!   members, so a lifetime must bracket the real time at which peers validate it.
//!   `Lifetime::has_acceptable_range` (≈ 84 days) is defined but never called, so a long explicit
//!   lifetime is accepted. Message secrets are stamped with `SystemTime::now` (`past_secrets.rs`,
//!   for the optional age-based deletion policy): that reaches storage values, not messages.
//! * **Capabilities**: `Capabilities::default()` advertises a fixed list including P-256
//!   (0x0002), which this provider does not implement; `Capabilities::for_provider(crypto)`
//!   advertises exactly [`SUPPORTED_CIPHERSUITES`].

mod crypto;
mod provider;
mod rand;
mod storage;

pub use self::crypto::{DemlsCrypto, HPKE_KEY_LEN, SUPPORTED_CIPHERSUITES};
pub use self::provider::{DemlsProvider, PROVIDER_SNAPSHOT_VERSION};
pub use self::rand::{DemlsRand, EntropyState, RandError, ENTROPY_STATE_LEN, RAND_STATE_LEN};
pub use self::storage::{
    MemoryStorage, MemoryStorageError, SnapshotError, STORAGE_SNAPSHOT_VERSION,
};
