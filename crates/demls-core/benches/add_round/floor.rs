//! The floor: the same round in raw openmls.

use demls_core::mls::DemlsProvider;
use demls_core::{CIPHERSUITE, GROUP_PARAMS_EXTENSION};
use openmls::prelude::{
    BasicCredential, Capabilities, CredentialWithKey, Extension, ExtensionType, Extensions,
    GroupId, KeyPackage, KeyPackageIn, Lifetime, MlsGroup, MlsGroupJoinConfig, MlsMessageBodyIn,
    MlsMessageIn, MlsMessageOut, ProcessedMessageContent, ProtocolVersion, StagedWelcome,
    UnknownExtension, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::signatures::Signer;
use openmls_traits::types::SignatureScheme;
use openmls_traits::OpenMlsProvider;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tls_codec::{Deserialize as _, Serialize as _};

use crate::measure::{timed, Roles};
use crate::{name, representative, seed, Round, LIFETIME, START_UNIX_MS};

/// A provider the floor can run on.
pub(crate) trait FloorProvider: OpenMlsProvider + Send + Sized {
    fn fresh(seed: [u8; 32]) -> Self;
    /// What the provider needs before an operation that sends (ours rekeys its streams).
    fn prepare(&mut self) {}
}

impl FloorProvider for OpenMlsRustCrypto {
    fn fresh(_: [u8; 32]) -> Self {
        OpenMlsRustCrypto::default()
    }
}

impl FloorProvider for DemlsProvider {
    fn fresh(seed: [u8; 32]) -> Self {
        DemlsProvider::new(seed)
    }
    fn prepare(&mut self) {
        self.prepare_operation();
    }
}

pub(crate) struct RawMember<P> {
    provider: P,
    signer: SignatureKeyPair,
    group: Option<MlsGroup>,
}

fn signer_of(seed: [u8; 32]) -> SignatureKeyPair {
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    SignatureKeyPair::from_raw(
        SignatureScheme::ED25519,
        key.to_bytes().to_vec(),
        key.verifying_key().to_bytes().to_vec(),
    )
}

fn lifetime() -> Lifetime {
    let now = START_UNIX_MS / 1000;
    Lifetime::init(now - 3600, now + LIFETIME.as_secs())
}

fn capabilities() -> Capabilities {
    Capabilities::builder()
        .ciphersuites(vec![CIPHERSUITE])
        .extensions(vec![ExtensionType::Unknown(GROUP_PARAMS_EXTENSION)])
        .build()
}

fn credential(i: usize, signer: &SignatureKeyPair) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(name(i).as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    }
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .build()
}

fn ser(m: MlsMessageOut) -> Vec<u8> {
    m.tls_serialize_detached().unwrap()
}

fn welcome_into<P: FloorProvider>(p: &P, bytes: &[u8]) -> MlsGroup {
    let MlsMessageBodyIn::Welcome(w) = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .extract()
    else {
        panic!("not a welcome")
    };
    StagedWelcome::new_from_welcome(p, &join_config(), w, None)
        .unwrap()
        .into_group(p)
        .unwrap()
}

/// A commit adding `key_packages`, as the steward builds it; returns (commit, welcome).
fn commit_adds<P: FloorProvider>(
    m: &mut RawMember<P>,
    key_packages: Vec<KeyPackage>,
) -> (Vec<u8>, Vec<u8>) {
    m.provider.prepare();
    let group = m.group.as_mut().unwrap();
    let bundle = group
        .commit_builder()
        .propose_adds(key_packages)
        .load_psks(m.provider.storage())
        .unwrap()
        .build(m.provider.rand(), m.provider.crypto(), &m.signer, |_| true)
        .unwrap()
        .stage_commit(&m.provider)
        .unwrap();
    let (commit, welcome, _) = bundle.into_messages();
    let out = (ser(commit), ser(welcome.unwrap()));
    group.merge_pending_commit(&m.provider).unwrap();
    out
}

fn key_package_of<P: FloorProvider>(m: &mut RawMember<P>, i: usize) -> Vec<u8> {
    m.provider.prepare();
    let bundle = KeyPackage::builder()
        .key_package_lifetime(lifetime())
        .leaf_node_capabilities(capabilities())
        .build(
            CIPHERSUITE,
            &m.provider,
            &m.signer,
            credential(i, &m.signer),
        )
        .unwrap();
    ser(MlsMessageOut::from(bundle.key_package().clone()))
}

fn validate_key_package<P: FloorProvider>(p: &P, bytes: &[u8]) -> KeyPackage {
    let MlsMessageBodyIn::KeyPackage(kp) = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .extract()
    else {
        panic!("not a key package")
    };
    KeyPackageIn::validate(kp, p.crypto(), ProtocolVersion::Mls10).unwrap()
}

fn send<P: FloorProvider>(m: &mut RawMember<P>, payload: &[u8]) -> Vec<u8> {
    m.provider.prepare();
    let msg = m
        .group
        .as_mut()
        .unwrap()
        .create_message(&m.provider, &m.signer, payload)
        .unwrap();
    ser(msg)
}

fn receive<P: FloorProvider>(m: &mut RawMember<P>, bytes: &[u8]) {
    let protocol = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .try_into_protocol_message()
        .unwrap();
    let group = m.group.as_mut().unwrap();
    let processed = group.process_message(&m.provider, protocol).unwrap();
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(_) => {}
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            group.merge_staged_commit(&m.provider, *staged).unwrap();
        }
        _ => panic!("unexpected message"),
    }
}

/// Signed vote-like transcripts: one per member, verified through the provider's crypto.
pub(crate) struct Signatures {
    transcript: Vec<u8>,
    keys: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Signatures {
    fn new(n: usize, run: u64) -> Self {
        // The size of a vote transcript (label, conversation, epoch, proposal, voter, choice,
        // time).
        let transcript = vec![0x5a; 110];
        let keys = (0..n)
            .into_par_iter()
            .map(|i| {
                let s = signer_of(Sha256::digest(format!("floor vote key {run} {i}")).into());
                (s.to_public_vec(), s.sign(&transcript).unwrap())
            })
            .collect();
        Self { transcript, keys }
    }

    fn verify(&self, crypto: &impl OpenMlsCrypto, from: usize) {
        let (pk, sig) = &self.keys[from];
        crypto
            .verify_signature(SignatureScheme::ED25519, &self.transcript, pk, sig)
            .unwrap();
    }
}

pub(crate) struct FloorGroup<P> {
    pub(crate) n: usize,
    pub(crate) run: u64,
    pub(crate) members: Vec<RawMember<P>>,
    pub(crate) signatures: Signatures,
    /// `arrival[k]` is the member whose vote arrives k-th (a seeded permutation of 1..N).
    pub(crate) arrival: Vec<usize>,
}

/// A seeded permutation of `0..n` that keeps 0 in place.
fn arrival_order(n: usize, run: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (2..n).rev() {
        let h = Sha256::digest(format!("add-round arrival {run} {i}"));
        let j = 1 + (u64::from_be_bytes(h[..8].try_into().unwrap()) % i as u64) as usize;
        order.swap(i, j);
    }
    order
}

/// The proposal's application message carries an add proposal (key package + signed header);
/// a vote's carries a signed vote. Payload sizes as ours.
const PROPOSAL_PAYLOAD_LEN: usize = 700;
const VOTE_PAYLOAD_LEN: usize = 190;

impl<P: FloorProvider> FloorGroup<P> {
    fn member(i: usize, run: u64) -> RawMember<P> {
        let s = seed(run, i);
        RawMember {
            provider: P::fresh(s),
            signer: signer_of(Sha256::digest(s).into()),
            group: None,
        }
    }

    pub(crate) fn setup(n: usize, run: u64) -> Self {
        let mut steward = Self::member(0, run);
        steward.provider.prepare();
        let extensions = Extensions::single(Extension::Unknown(
            GROUP_PARAMS_EXTENSION,
            UnknownExtension(vec![0x11; 16]),
        ))
        .unwrap();
        steward.group = Some(
            MlsGroup::builder()
                .with_group_id(GroupId::from_slice(b"bench-conversation"))
                .ciphersuite(CIPHERSUITE)
                .with_wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
                .use_ratchet_tree_extension(true)
                .with_capabilities(capabilities())
                .with_group_context_extensions(extensions)
                .lifetime(lifetime())
                .build(
                    &steward.provider,
                    &steward.signer,
                    credential(0, &steward.signer),
                )
                .unwrap(),
        );
        let (mut joiners, kps): (Vec<RawMember<P>>, Vec<Vec<u8>>) = (1..n)
            .into_par_iter()
            .map(|i| {
                let mut m = Self::member(i, run);
                let kp = key_package_of(&mut m, i);
                (m, kp)
            })
            .unzip();
        let kps = kps
            .iter()
            .map(|b| validate_key_package(&steward.provider, b))
            .collect();
        let (_, welcome) = commit_adds(&mut steward, kps);
        joiners.par_iter_mut().for_each(|m| {
            m.group = Some(welcome_into(&m.provider, &welcome));
        });
        let mut members = vec![steward];
        members.extend(joiners);
        Self {
            n,
            run,
            members,
            signatures: Signatures::new(n, run),
            arrival: arrival_order(n, run),
        }
    }
}

/// The state of a floor between the stages of a round.
pub(crate) struct FloorRound<P> {
    cpu: Roles,
    joiner: Option<RawMember<P>>,
    key_package: Option<KeyPackage>,
    votes: Vec<Vec<u8>>,
}

impl<P> Default for FloorRound<P> {
    fn default() -> Self {
        Self {
            cpu: Roles::default(),
            joiner: None,
            key_package: None,
            votes: Vec::new(),
        }
    }
}

impl<P: FloorProvider> Round for (FloorGroup<P>, FloorRound<P>) {
    fn begin(&mut self) {
        let (g, round) = self;
        let n = g.n;
        let r = representative(n);
        let (run, sigs, cpu) = (g.run, &g.signatures, &mut round.cpu);

        let (joiner, key_package) = timed(&mut cpu.joiner, || {
            let mut joiner = FloorGroup::<P>::member(n, run);
            let kp = key_package_of(&mut joiner, n);
            (joiner, kp)
        });

        let steward = &mut g.members[0];
        let (kp, proposal) = timed(&mut cpu.steward, || {
            let kp = validate_key_package(&steward.provider, &key_package);
            (kp, send(steward, &[0x42; PROPOSAL_PAYLOAD_LEN]))
        });

        round.votes = vec![Vec::new(); n];
        for (i, m) in g.members.iter_mut().enumerate().skip(1) {
            if i == r {
                timed(&mut cpu.phases[0], || {
                    receive(m, &proposal);
                    sigs.verify(m.provider.crypto(), 0);
                });
                round.votes[i] = timed(&mut cpu.phases[1], || send(m, &[0x56; VOTE_PAYLOAD_LEN]));
            } else {
                round.votes[i] = send(m, &[0x56; VOTE_PAYLOAD_LEN]);
            }
        }
        round.joiner = Some(joiner);
        round.key_package = Some(kp);
    }

    fn ingest(&mut self, from: usize) {
        let (g, round) = self;
        let r = representative(g.n);
        // Ours receives votes in an order unrelated to the senders' leaves (its leaves follow
        // the digest order of the add proposals), as on a real network; the floor's member i
        // is leaf i, so it takes the votes in a random order too. (In leaf order, openmls's
        // secret tree stays smaller and every later message is cheaper to process.)
        let from = g.arrival[from];
        let (sigs, cpu, vote) = (&g.signatures, &mut round.cpu, &round.votes[from]);
        let steward = &mut g.members[0];
        timed(&mut cpu.steward, || {
            receive(steward, vote);
            sigs.verify(steward.provider.crypto(), from);
        });
        if from != r {
            let m = &mut g.members[r];
            timed(&mut cpu.phases[2], || {
                receive(m, vote);
                sigs.verify(m.provider.crypto(), from);
            });
        }
    }

    fn finish(&mut self) {
        let (g, round) = self;
        let r = representative(g.n);
        let cpu = &mut round.cpu;
        let joiner = round.joiner.as_mut().unwrap();
        let kp = round.key_package.take().unwrap();

        let steward = &mut g.members[0];
        let (commit, welcome) = timed(&mut cpu.steward, || commit_adds(steward, vec![kp]));
        let m = &mut g.members[r];
        timed(&mut cpu.phases[3], || receive(m, &commit));
        timed(&mut cpu.joiner, || {
            joiner.group = Some(welcome_into(&joiner.provider, &welcome));
        });

        let auth = |m: &RawMember<P>| {
            let g = m.group.as_ref().unwrap();
            assert_eq!(g.epoch().as_u64(), 2);
            g.epoch_authenticator().as_slice().to_vec()
        };
        assert_eq!(auth(&g.members[0]), auth(&g.members[r]));
        assert_eq!(auth(&g.members[0]), auth(joiner));
    }

    fn cpu(&self) -> Roles {
        self.1.cpu.finish()
    }
}
