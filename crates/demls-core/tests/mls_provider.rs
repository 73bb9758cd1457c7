//! The deterministic MLS provider (`demls_core::mls`) against openmls 0.9.2:
//!
//! * determinism: a five-member scenario run under rayon pools of 1, 2 and 8 threads gives
//!   byte-identical key packages, commits, welcomes and application messages; another seed
//!   gives different bytes;
//! * snapshot/restore: restoring every provider between any two steps and continuing gives the
//!   uninterrupted run's bytes;
//! * interop, both ways, with the stock `OpenMlsRustCrypto` provider (whole groups, and the HPKE
//!   and symmetric primitives one by one);
//! * malformed snapshots: typed errors, never a panic.

use demls_core::mls::{DemlsCrypto, DemlsProvider, SnapshotError, PROVIDER_SNAPSHOT_VERSION};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use tls_codec::{Deserialize as _, Serialize as _};

type Bytes = Vec<u8>;
type Transcript = Vec<(String, Bytes)>;

const MEMBERS: usize = 5;

/// 2023-11-14 plus 100 years: fixed bytes (no `Lifetime::new`, which reads the clock), and valid
/// for openmls's validation (which does read the clock) until 2123.
fn lifetime() -> Lifetime {
    Lifetime::init(1_700_000_000, 1_700_000_000 + 100 * 365 * 86_400)
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .build()
}

fn ser(message: &MlsMessageOut) -> Bytes {
    message.tls_serialize_detached().unwrap()
}

fn key_package<P: OpenMlsProvider>(
    provider: &P,
    signer: &SignatureKeyPair,
    credential: &CredentialWithKey,
) -> Bytes {
    KeyPackage::builder()
        .key_package_lifetime(lifetime())
        .leaf_node_capabilities(Capabilities::for_provider(provider.crypto()))
        .build(
            Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
            provider,
            signer,
            credential.clone(),
        )
        .unwrap()
        .key_package()
        .tls_serialize_detached()
        .unwrap()
}

/// What a receiver does with a key package off the wire.
fn validate_key_package(crypto: &impl OpenMlsCrypto, bytes: &[u8]) -> KeyPackage {
    KeyPackageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .validate(crypto, ProtocolVersion::Mls10)
        .unwrap()
}

fn create_group<P: OpenMlsProvider>(
    provider: &P,
    signer: &SignatureKeyPair,
    credential: &CredentialWithKey,
    ciphersuite: Ciphersuite,
) -> MlsGroup {
    MlsGroup::builder()
        .ciphersuite(ciphersuite)
        .lifetime(lifetime())
        .with_capabilities(Capabilities::for_provider(provider.crypto()))
        .use_ratchet_tree_extension(true)
        .build(provider, signer, credential.clone())
        .unwrap()
}

fn join<P: OpenMlsProvider>(provider: &P, welcome: &[u8]) -> MlsGroup {
    let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(welcome)
        .unwrap()
        .extract()
    else {
        panic!("not a welcome");
    };
    StagedWelcome::new_from_welcome(provider, &join_config(), welcome, None)
        .unwrap()
        .into_group(provider)
        .unwrap()
}

/// Processes a commit (merging it) or an application message (returning its bytes).
fn receive<P: OpenMlsProvider>(group: &mut MlsGroup, provider: &P, bytes: &[u8]) -> Option<Bytes> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .try_into_protocol_message()
        .unwrap();
    match group
        .process_message(provider, message)
        .unwrap()
        .into_content()
    {
        ProcessedMessageContent::ApplicationMessage(app) => Some(app.into_bytes()),
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            group.merge_staged_commit(provider, *staged).unwrap();
            None
        }
        _ => panic!("unexpected message content"),
    }
}

fn credential(name: &str, signer: &SignatureKeyPair) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    }
}

struct Member {
    provider: DemlsProvider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

/// Five members on deterministic providers and everything in flight between them, as bytes.
struct World {
    members: Vec<Member>,
    key_packages: Vec<Bytes>,
    welcome: Bytes,
    commit: Bytes,
    group_id: Option<GroupId>,
    transcript: Transcript,
}

impl World {
    fn new(seed: [u8; 32]) -> Self {
        let members = (0..MEMBERS)
            .map(|i| {
                let mut member_seed = seed;
                member_seed[31] ^= i as u8;
                let mut provider = DemlsProvider::new(member_seed);
                provider.mix_entropy(format!("host entropy for member {i}").as_bytes());
                provider.prepare_operation();
                let signer = provider.generate_signature_keypair();
                // Stored so a restored provider finds it again.
                signer.store(provider.storage()).unwrap();
                let credential = credential(&format!("member-{i}"), &signer);
                Member {
                    provider,
                    signer,
                    credential,
                    group: None,
                }
            })
            .collect();
        Self {
            members,
            key_packages: vec![Vec::new(); MEMBERS],
            welcome: Vec::new(),
            commit: Vec::new(),
            group_id: None,
            transcript: Vec::new(),
        }
    }

    fn record(&mut self, label: impl Into<String>, bytes: Bytes) {
        self.transcript.push((label.into(), bytes));
    }

    /// Member `from` sends an application message; everyone else decrypts it.
    fn send(&mut self, from: usize, text: &str) {
        let m = &mut self.members[from];
        m.provider.prepare_operation();
        let group = m.group.as_mut().unwrap();
        let bytes = ser(&group
            .create_message(&m.provider, &m.signer, text.as_bytes())
            .unwrap());
        self.record(format!("application from {from}"), bytes.clone());
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != from {
                let got = receive(m.group.as_mut().unwrap(), &m.provider, &bytes);
                assert_eq!(got.as_deref(), Some(text.as_bytes()));
            }
        }
    }

    /// Everyone but `from` (and members not yet in the group) processes `self.commit`.
    fn deliver_commit(&mut self, from: usize) {
        let commit = self.commit.clone();
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != from {
                if let Some(group) = m.group.as_mut() {
                    assert_eq!(receive(group, &m.provider, &commit), None);
                }
            }
        }
    }

    fn add(&mut self, new: &[usize]) {
        let key_packages: Vec<KeyPackage> = new
            .iter()
            .map(|&i| {
                validate_key_package(self.members[0].provider.crypto(), &self.key_packages[i])
            })
            .collect();
        let m = &mut self.members[0];
        m.provider.prepare_operation();
        let group = m.group.as_mut().unwrap();
        let (commit, welcome, _) = group
            .add_members(&m.provider, &m.signer, &key_packages)
            .unwrap();
        group.merge_pending_commit(&m.provider).unwrap();
        self.commit = ser(&commit);
        self.welcome = ser(&welcome);
        self.record(format!("commit adding {new:?}"), self.commit.clone());
        self.record(format!("welcome for {new:?}"), self.welcome.clone());
    }

    fn join(&mut self, who: &[usize]) {
        for &i in who {
            let m = &mut self.members[i];
            m.provider.prepare_operation();
            m.group = Some(join(&m.provider, &self.welcome));
        }
    }

    const STEPS: usize = 9;

    fn step(&mut self, step: usize) {
        match step {
            // Members 1..=4 publish key packages.
            0 => {
                for i in 1..MEMBERS {
                    let m = &mut self.members[i];
                    m.provider.prepare_operation();
                    let kp = key_package(&m.provider, &m.signer, &m.credential);
                    self.key_packages[i] = kp.clone();
                    self.record(format!("key package {i}"), kp);
                }
            }
            // Member 0 creates the group (its id is drawn from the stream).
            1 => {
                let m = &mut self.members[0];
                m.provider.prepare_operation();
                let group = create_group(
                    &m.provider,
                    &m.signer,
                    &m.credential,
                    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
                );
                self.group_id = Some(group.group_id().clone());
                m.group = Some(group);
                let id = self.group_id.as_ref().unwrap().as_slice().to_vec();
                self.record("group id", id);
            }
            // Three members in one commit. (All copath resolutions are new members, which are
            // excluded, so this commit's update path has no HPKE ciphertexts; the welcome has
            // three.)
            2 => self.add(&[1, 2, 3]),
            3 => self.join(&[1, 2, 3]),
            // Adding member 4 encrypts member 0's path to members 1, 2 and 3: several
            // `hpke_seal` calls on rayon workers.
            4 => self.add(&[4]),
            5 => {
                self.deliver_commit(0);
                self.join(&[4]);
            }
            6 => self.send(2, "hello from member 2"),
            // A member in the middle of the tree updates its path.
            7 => {
                let m = &mut self.members[3];
                m.provider.prepare_operation();
                let group = m.group.as_mut().unwrap();
                let bundle = group
                    .self_update(&m.provider, &m.signer, LeafNodeParameters::default())
                    .unwrap();
                group.merge_pending_commit(&m.provider).unwrap();
                self.commit = ser(bundle.commit());
                self.record("self-update of member 3", self.commit.clone());
                self.deliver_commit(3);
            }
            8 => {
                self.send(4, "hello from member 4");
                let authenticators: Vec<Bytes> = self
                    .members
                    .iter()
                    .map(|m| {
                        m.group
                            .as_ref()
                            .unwrap()
                            .epoch_authenticator()
                            .as_slice()
                            .to_vec()
                    })
                    .collect();
                assert!(authenticators.windows(2).all(|w| w[0] == w[1]));
                self.record("epoch authenticator", authenticators[0].clone());
            }
            _ => unreachable!(),
        }
    }

    /// Snapshots every provider, drops everything in memory, and rebuilds from the snapshots.
    fn restore_all(&mut self) {
        for m in &mut self.members {
            let snapshot = m.provider.snapshot();
            let provider = DemlsProvider::restore(&snapshot).unwrap();
            assert_eq!(provider.snapshot(), snapshot, "snapshots are exact");
            let signer = SignatureKeyPair::read(
                provider.storage(),
                m.signer.public(),
                SignatureScheme::ED25519,
            )
            .unwrap();
            let group = match &self.group_id {
                Some(id) => MlsGroup::load(provider.storage(), id).unwrap(),
                None => None,
            };
            assert_eq!(group.is_some(), m.group.is_some());
            *m = Member {
                provider,
                signer,
                credential: m.credential.clone(),
                group,
            };
        }
    }
}

fn run(seed: [u8; 32], restore_before: Option<usize>) -> Transcript {
    let mut world = World::new(seed);
    for step in 0..World::STEPS {
        if restore_before == Some(step) {
            world.restore_all();
        }
        world.step(step);
    }
    world.transcript
}

fn run_in_pool(threads: usize, seed: [u8; 32]) -> Transcript {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| run(seed, None))
}

#[test]
fn same_seed_gives_identical_bytes_under_any_scheduling() {
    let seed = [42u8; 32];
    let reference = run(seed, None);
    assert_eq!(reference.len(), 13);
    for round in 0..3 {
        for threads in [1, 2, 8] {
            let again = run_in_pool(threads, seed);
            for ((label, a), (_, b)) in reference.iter().zip(&again) {
                assert_eq!(a, b, "{label} differs (round {round}, {threads} threads)");
            }
            assert_eq!(reference, again);
        }
    }
}

#[test]
fn another_seed_gives_different_bytes() {
    let a = run([1u8; 32], None);
    let b = run([2u8; 32], None);
    assert_eq!(a.len(), b.len());
    for ((label, x), (_, y)) in a.iter().zip(&b) {
        assert_ne!(x, y, "{label} is the same under two seeds");
    }
}

#[test]
fn restoring_at_any_step_continues_identically() {
    let seed = [7u8; 32];
    let reference = run(seed, None);
    for step in 0..World::STEPS {
        assert_eq!(
            run(seed, Some(step)),
            reference,
            "restored before step {step}"
        );
    }
}

#[test]
fn a_stock_member_joins_our_group_and_talks() {
    let mut ours = DemlsProvider::new([3u8; 32]);
    ours.prepare_operation();
    let our_signer = ours.generate_signature_keypair();
    let our_credential = credential("ours", &our_signer);
    let mut other = DemlsProvider::new([4u8; 32]);
    other.prepare_operation();
    let other_signer = other.generate_signature_keypair();
    let other_credential = credential("other", &other_signer);

    let stock = OpenMlsRustCrypto::default();
    let stock_signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let stock_credential = credential("stock", &stock_signer);

    for ciphersuite in demls_core::mls::SUPPORTED_CIPHERSUITES {
        ours.prepare_operation();
        let mut group = create_group(&ours, &our_signer, &our_credential, ciphersuite);
        let stock_kp = KeyPackage::builder()
            .build(ciphersuite, &stock, &stock_signer, stock_credential.clone())
            .unwrap()
            .key_package()
            .tls_serialize_detached()
            .unwrap();
        other.prepare_operation();
        let other_kp = KeyPackage::builder()
            .key_package_lifetime(lifetime())
            .leaf_node_capabilities(Capabilities::for_provider(other.crypto()))
            .build(ciphersuite, &other, &other_signer, other_credential.clone())
            .unwrap()
            .key_package()
            .tls_serialize_detached()
            .unwrap();
        let kps = [
            validate_key_package(ours.crypto(), &stock_kp),
            validate_key_package(ours.crypto(), &other_kp),
        ];
        ours.prepare_operation();
        let (_, welcome, _) = group.add_members(&ours, &our_signer, &kps).unwrap();
        group.merge_pending_commit(&ours).unwrap();
        let mut stock_group = join(&stock, &ser(&welcome));
        other.prepare_operation();
        let mut other_group = join(&other, &ser(&welcome));

        // The stock member commits: its HPKE seals are opened by our providers.
        let bundle = stock_group
            .self_update(&stock, &stock_signer, LeafNodeParameters::default())
            .unwrap();
        stock_group.merge_pending_commit(&stock).unwrap();
        let commit = ser(bundle.commit());
        receive(&mut group, &ours, &commit);
        receive(&mut other_group, &other, &commit);

        // We commit: our seals are opened by the stock provider.
        ours.prepare_operation();
        let bundle = group
            .self_update(&ours, &our_signer, LeafNodeParameters::default())
            .unwrap();
        group.merge_pending_commit(&ours).unwrap();
        let commit = ser(bundle.commit());
        receive(&mut stock_group, &stock, &commit);
        receive(&mut other_group, &other, &commit);

        ours.prepare_operation();
        let to_stock = ser(&group
            .create_message(&ours, &our_signer, b"hi stock")
            .unwrap());
        assert_eq!(
            receive(&mut stock_group, &stock, &to_stock).as_deref(),
            Some(&b"hi stock"[..])
        );
        receive(&mut other_group, &other, &to_stock);
        let from_stock = ser(&stock_group
            .create_message(&stock, &stock_signer, b"hi demls")
            .unwrap());
        assert_eq!(
            receive(&mut group, &ours, &from_stock).as_deref(),
            Some(&b"hi demls"[..])
        );
        assert_eq!(
            group.epoch_authenticator().as_slice(),
            stock_group.epoch_authenticator().as_slice()
        );
    }
}

#[test]
fn our_member_joins_a_stock_group_and_talks() {
    let stock = OpenMlsRustCrypto::default();
    let stock_signer = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
    let stock_credential = credential("stock", &stock_signer);
    let mut stock_group = MlsGroup::builder()
        .use_ratchet_tree_extension(true)
        .build(&stock, &stock_signer, stock_credential)
        .unwrap();

    let mut ours = DemlsProvider::new([5u8; 32]);
    ours.prepare_operation();
    let our_signer = ours.generate_signature_keypair();
    let kp = key_package(&ours, &our_signer, &credential("ours", &our_signer));
    let kp = validate_key_package(stock.crypto(), &kp);
    let (_, welcome, _) = stock_group
        .add_members(&stock, &stock_signer, &[kp])
        .unwrap();
    stock_group.merge_pending_commit(&stock).unwrap();
    ours.prepare_operation();
    let mut group = join(&ours, &ser(&welcome));

    ours.prepare_operation();
    let bundle = group
        .self_update(&ours, &our_signer, LeafNodeParameters::default())
        .unwrap();
    group.merge_pending_commit(&ours).unwrap();
    receive(&mut stock_group, &stock, &ser(bundle.commit()));

    let from_stock = ser(&stock_group
        .create_message(&stock, &stock_signer, b"welcome aboard")
        .unwrap());
    assert_eq!(
        receive(&mut group, &ours, &from_stock).as_deref(),
        Some(&b"welcome aboard"[..])
    );
    ours.prepare_operation();
    let to_stock = ser(&group.create_message(&ours, &our_signer, b"thanks").unwrap());
    assert_eq!(
        receive(&mut stock_group, &stock, &to_stock).as_deref(),
        Some(&b"thanks"[..])
    );
}

#[test]
fn primitives_match_the_stock_provider() {
    let stock = OpenMlsRustCrypto::default();
    let stock = stock.crypto();
    let mut ours = DemlsProvider::new([8u8; 32]);
    ours.prepare_operation();
    let ours = ours.crypto();
    let configs = [
        Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
        Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
    ];
    for cs in configs {
        let ikm = [0x11u8; 32];
        let a = ours.derive_hpke_keypair(cs.hpke_config(), &ikm).unwrap();
        let b = stock.derive_hpke_keypair(cs.hpke_config(), &ikm).unwrap();
        assert_eq!(a.public, b.public, "derived public keys agree");
        // Large info: no length limit is hit and nothing panics.
        let info = vec![7u8; 70_000];
        for (sender, receiver, kp) in [
            (ours, stock as &dyn Open, &b),
            (ours, ours as &dyn Open, &a),
        ] {
            let ct = sender
                .hpke_seal(cs.hpke_config(), &kp.public, &info, b"aad", b"secret")
                .unwrap();
            assert_eq!(
                receiver.open(cs, &ct, &kp.private, &info),
                b"secret".to_vec()
            );
        }
        let ct = stock
            .hpke_seal(cs.hpke_config(), &a.public, b"info", b"aad", b"from stock")
            .unwrap();
        let pt = ours
            .hpke_open(cs.hpke_config(), &ct, &a.private, b"info", b"aad")
            .unwrap();
        assert_eq!(pt, b"from stock");
        let (enc, secret) = ours
            .hpke_setup_sender_and_export(cs.hpke_config(), &b.public, b"info", b"ctx", 32)
            .unwrap();
        let theirs = stock
            .hpke_setup_receiver_and_export(cs.hpke_config(), &enc, &b.private, b"info", b"ctx", 32)
            .unwrap();
        assert_eq!(&*secret, &*theirs);

        let aead = cs.aead_algorithm();
        let key = vec![3u8; cs.aead_key_length()];
        let nonce = [4u8; 12];
        let ct = ours
            .aead_encrypt(aead, &key, b"data", &nonce, b"aad")
            .unwrap();
        assert_eq!(
            ct,
            stock
                .aead_encrypt(aead, &key, b"data", &nonce, b"aad")
                .unwrap()
        );
        assert_eq!(
            ours.aead_decrypt(aead, &key, &ct, &nonce, b"aad").unwrap(),
            b"data"
        );
        assert!(ours
            .aead_encrypt(aead, &key, b"data", &nonce[..11], b"")
            .is_err());
    }
    for hash in [HashType::Sha2_256, HashType::Sha2_384, HashType::Sha2_512] {
        let prk = ours.hkdf_extract(hash, b"salt", b"ikm").unwrap();
        let stock_prk = stock.hkdf_extract(hash, b"salt", b"ikm").unwrap();
        assert_eq!(prk.as_slice(), stock_prk.as_slice());
        assert_eq!(
            ours.hkdf_expand(hash, prk.as_slice(), b"info", 77)
                .unwrap()
                .as_slice(),
            stock
                .hkdf_expand(hash, prk.as_slice(), b"info", 77)
                .unwrap()
                .as_slice()
        );
        assert!(ours
            .hkdf_expand(hash, prk.as_slice(), b"info", usize::MAX)
            .is_err());
        assert_eq!(
            ours.hash(hash, b"x").unwrap(),
            stock.hash(hash, b"x").unwrap()
        );
        assert_eq!(
            ours.hmac(hash, b"k", b"m").unwrap().as_slice(),
            stock.hmac(hash, b"k", b"m").unwrap().as_slice()
        );
    }
    // Signatures agree with the stock provider's; key generation is refused (no randomness here).
    let (sk, pk) = stock.signature_key_gen(SignatureScheme::ED25519).unwrap();
    let sig = ours.sign(SignatureScheme::ED25519, b"msg", &sk).unwrap();
    assert_eq!(
        sig,
        stock.sign(SignatureScheme::ED25519, b"msg", &sk).unwrap()
    );
    stock
        .verify_signature(SignatureScheme::ED25519, b"msg", &pk, &sig)
        .unwrap();
    ours.verify_signature(SignatureScheme::ED25519, b"msg", &pk, &sig)
        .unwrap();
    assert!(ours
        .verify_signature(SignatureScheme::ED25519, b"msh", &pk, &sig)
        .is_err());
    assert!(ours.signature_key_gen(SignatureScheme::ED25519).is_err());
    assert_eq!(ours.supported_ciphersuites(), configs.to_vec());
    assert!(ours
        .supports(Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256)
        .is_err());
}

/// `hpke_open` behind one object-safe face for both providers.
trait Open {
    fn open(&self, cs: Ciphersuite, ct: &HpkeCiphertext, sk: &[u8], info: &[u8]) -> Bytes;
}

impl<C: OpenMlsCrypto> Open for C {
    fn open(&self, cs: Ciphersuite, ct: &HpkeCiphertext, sk: &[u8], info: &[u8]) -> Bytes {
        self.hpke_open(cs.hpke_config(), ct, sk, info, b"aad")
            .unwrap()
    }
}

#[test]
fn hpke_seal_is_independent_of_threads_and_order() {
    let crypto = DemlsCrypto::new([9u8; 32]);
    let cs = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
    let keys: Vec<_> = (0..16u8)
        .map(|i| {
            crypto
                .derive_hpke_keypair(cs.hpke_config(), &[i; 32])
                .unwrap()
        })
        .collect();
    let seal = |kp: &HpkeKeyPair| {
        crypto
            .hpke_seal(
                cs.hpke_config(),
                &kp.public,
                b"info",
                b"aad",
                b"path secret",
            )
            .unwrap()
    };
    let sequential: Vec<_> = keys.iter().map(seal).collect();
    let reversed: Vec<_> = keys.iter().rev().map(seal).collect();
    assert!(sequential.iter().eq(reversed.iter().rev()));
    let parallel: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = keys.iter().map(|kp| s.spawn(move || seal(kp))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(sequential, parallel);
    // Another key, another ephemeral.
    let other = DemlsCrypto::new([10u8; 32]);
    let ct = other
        .hpke_seal(
            cs.hpke_config(),
            &keys[0].public,
            b"info",
            b"aad",
            b"path secret",
        )
        .unwrap();
    assert_ne!(ct.kem_output, sequential[0].kem_output);
}

#[test]
fn malformed_snapshots_are_typed_errors() {
    let mut world = World::new([6u8; 32]);
    for step in 0..4 {
        world.step(step);
    }
    let snapshot = world.members[0].provider.snapshot();
    assert!(DemlsProvider::restore(&snapshot).is_ok());

    assert_eq!(
        DemlsProvider::restore(&[]).unwrap_err(),
        SnapshotError::Truncated
    );
    let mut bad = snapshot.clone();
    bad[0] = PROVIDER_SNAPSHOT_VERSION + 1;
    assert_eq!(
        DemlsProvider::restore(&bad).unwrap_err(),
        SnapshotError::UnsupportedVersion(PROVIDER_SNAPSHOT_VERSION + 1)
    );
    let mut bad = snapshot.clone();
    bad.push(0);
    assert_eq!(
        DemlsProvider::restore(&bad).unwrap_err(),
        SnapshotError::TrailingBytes
    );
    // The stream's word position (bytes 65..81) beyond 2^68.
    let mut bad = snapshot.clone();
    bad[65] = 0xFF;
    assert_eq!(
        DemlsProvider::restore(&bad).unwrap_err(),
        SnapshotError::InvalidRandPosition
    );
    // Every truncation fails cleanly.
    for cut in 0..snapshot.len() {
        assert!(
            DemlsProvider::restore(&snapshot[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    // Flipped bytes anywhere in the framing either fail or restore; nothing panics.
    for i in (0..snapshot.len()).step_by(7) {
        let mut flipped = snapshot.clone();
        flipped[i] ^= 0xA5;
        let _ = DemlsProvider::restore(&flipped);
    }
    // Seeded garbage.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for len in 0..300 {
        let garbage: Bytes = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        assert!(DemlsProvider::restore(&garbage).is_err());
    }
}
