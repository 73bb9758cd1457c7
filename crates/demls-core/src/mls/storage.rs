//! [`MemoryStorage`]: openmls's in-memory key/value store, without locks, with ordered
//! iteration and versioned snapshots.
//!
//! (Longer than the crate's other files because it ports one trait implementation of ~50
//! methods whole; the bodies are one-liners over the helpers below.)
//!
//! This is a port of `openmls_memory_storage` 0.6.0 (`src/lib.rs`), © the OpenMLS authors,
//! MIT license. Storage keys are the original's — `label ‖ json(key) ‖ u16be(version)` — and
//! list entries are JSON lists of blobs as there. The changes:
//!
//! * Values are MessagePack (`rmp_serde`, with field names) instead of JSON: openmls
//!   rewrites a group's message secrets after every decrypted message, and serializing their
//!   byte arrays as JSON numbers was most of a member's CPU in large groups.
//!
//! * `RwLock<HashMap>` becomes `RefCell<BTreeMap>`: no lock (the sans-IO core owns none; openmls
//!   never touches storage from its rayon workers, which only see the crypto provider), and
//!   iteration — hence [`MemoryStorage::snapshot`] — is in key order.
//! * Every `unwrap()` on (de)serialization becomes a [`MemoryStorageError`], so corrupt stored
//!   bytes are an error, never a panic.
//! * `clear_proposal_queue` deletes the queued proposals under their real storage keys; the
//!   original removed the bare `json((group_id, proposal_ref))`, which never matches, leaving
//!   the proposals behind.
//! * The methods behind openmls's `extensions-draft` and `virtual-clients-draft` features are
//!   not ported (demls enables neither), nor are the `test-utils`/`persistence` helpers.
//!
//! The bytes of stored values are not guaranteed to be deterministic across runs (openmls may
//! serialize hash maps); snapshots are faithful, not canonical in content.

use core::cell::RefCell;
use core::fmt;
use std::collections::BTreeMap;

use openmls_traits::storage::{traits, StorageProvider, CURRENT_VERSION};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version byte leading a [`MemoryStorage::snapshot`].
pub const STORAGE_SNAPSHOT_VERSION: u8 = 1;

/// Errors of the key store (the original's, unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemoryStorageError {
    /// Kept from the original; never returned.
    #[error("The key store does not allow storing serialized values.")]
    UnsupportedValueTypeBytes,
    /// Kept from the original; never returned.
    #[error("Updating is not supported by this key store.")]
    UnsupportedMethod,
    /// A key or value failed to serialize, or stored bytes failed to deserialize.
    #[error("Error serializing value.")]
    SerializationError,
}

impl From<serde_json::Error> for MemoryStorageError {
    fn from(_: serde_json::Error) -> Self {
        Self::SerializationError
    }
}

/// Why snapshot bytes were refused. Restoring never panics and never allocates more than the
/// input's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The input ended before the structure it announced.
    #[error("snapshot truncated")]
    Truncated,
    /// The leading version byte is not one this build reads.
    #[error("unsupported snapshot version {0}")]
    UnsupportedVersion(u8),
    /// Bytes remain after the last announced field.
    #[error("trailing bytes after the snapshot")]
    TrailingBytes,
    /// Storage keys are not strictly ascending (duplicated or out of order).
    #[error("storage keys not strictly ascending")]
    UnorderedKeys,
    /// The saved random-stream position is beyond what a ChaCha20 stream can reach.
    #[error("invalid random stream position")]
    InvalidRandPosition,
}

/// A cursor over snapshot bytes whose every read is bounds-checked.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if n > self.bytes.len() {
            return Err(SnapshotError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A `u64be` length followed by that many bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], SnapshotError> {
        let len = self.u64()?;
        let len = usize::try_from(len).map_err(|_| SnapshotError::Truncated)?;
        self.take(len)
    }

    pub(crate) fn finish(self) -> Result<(), SnapshotError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(SnapshotError::TrailingBytes)
        }
    }
}

/// Appends `u64be(len) ‖ bytes`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// openmls's key store, held in memory. See the module docs for what changed from
/// `openmls_memory_storage`.
///
/// Not `Sync` (it is a `RefCell`); openmls does not require it to be.
#[derive(Default)]
pub struct MemoryStorage {
    values: RefCell<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl fmt::Debug for MemoryStorage {
    /// Shows the entry count only: stored values include private keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("entries", &self.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of stored entries.
    pub fn len(&self) -> usize {
        self.values.borrow().len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.values.borrow().is_empty()
    }

    /// Every entry, in key order:
    /// `version (1 byte) ‖ u64be(count) ‖ (u64be(len) ‖ key ‖ u64be(len) ‖ value)*`.
    /// Secret: the store holds private keys and epoch secrets.
    pub fn snapshot(&self) -> Vec<u8> {
        let values = self.values.borrow();
        let size: usize = values.iter().map(|(k, v)| 16 + k.len() + v.len()).sum();
        let mut out = Vec::with_capacity(9 + size);
        out.push(STORAGE_SNAPSHOT_VERSION);
        out.extend_from_slice(&(values.len() as u64).to_be_bytes());
        for (key, value) in values.iter() {
            put_bytes(&mut out, key);
            put_bytes(&mut out, value);
        }
        out
    }

    /// The store saved by [`snapshot`](Self::snapshot). Keys must be strictly ascending, so
    /// every accepted input is exactly what `snapshot` produces for the restored store.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut reader = Reader::new(bytes);
        let store = Self::read_from(&mut reader)?;
        reader.finish()?;
        Ok(store)
    }

    pub(crate) fn read_from(reader: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let version = reader.u8()?;
        if version != STORAGE_SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let count = reader.u64()?;
        let mut values = BTreeMap::new();
        let mut previous: Option<&[u8]> = None;
        // Each entry consumes at least 16 bytes, so a forged count runs out of input quickly.
        for _ in 0..count {
            let key = reader.bytes()?;
            let value = reader.bytes()?;
            if previous.is_some_and(|p| p >= key) {
                return Err(SnapshotError::UnorderedKeys);
            }
            previous = Some(key);
            values.insert(key.to_vec(), value.to_vec());
        }
        Ok(Self {
            values: RefCell::new(values),
        })
    }

    fn write(&self, label: &[u8], key: &[u8], value: Vec<u8>) -> Result<(), MemoryStorageError> {
        let storage_key = build_key_from_vec::<CURRENT_VERSION>(label, key.to_vec());
        self.values.borrow_mut().insert(storage_key, value);
        Ok(())
    }

    /// Appends `value` to the JSON list stored under `(label, key)`.
    fn append(&self, label: &[u8], key: &[u8], value: Vec<u8>) -> Result<(), MemoryStorageError> {
        let storage_key = build_key_from_vec::<CURRENT_VERSION>(label, key.to_vec());
        let mut values = self.values.borrow_mut();
        let list_bytes = values.entry(storage_key).or_insert_with(|| b"[]".to_vec());
        let mut list: Vec<Vec<u8>> = serde_json::from_slice(list_bytes)?;
        list.push(value);
        list_bytes.clear();
        serde_json::to_writer(list_bytes, &list)?;
        Ok(())
    }

    /// Removes the first occurrence of `value` from the JSON list under `(label, key)`.
    fn remove_item(
        &self,
        label: &[u8],
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<(), MemoryStorageError> {
        let storage_key = build_key_from_vec::<CURRENT_VERSION>(label, key.to_vec());
        let mut values = self.values.borrow_mut();
        let list_bytes = values.entry(storage_key).or_insert_with(|| b"[]".to_vec());
        let mut list: Vec<Vec<u8>> = serde_json::from_slice(list_bytes)?;
        if let Some(pos) = list.iter().position(|stored| stored == &value) {
            list.remove(pos);
        }
        list_bytes.clear();
        serde_json::to_writer(list_bytes, &list)?;
        Ok(())
    }

    fn read<V: DeserializeOwned>(
        &self,
        label: &[u8],
        key: &[u8],
    ) -> Result<Option<V>, MemoryStorageError> {
        let storage_key = build_key_from_vec::<CURRENT_VERSION>(label, key.to_vec());
        match self.values.borrow().get(&storage_key) {
            Some(value) => Ok(Some(decode(value)?)),
            None => Ok(None),
        }
    }

    fn read_list<V: DeserializeOwned>(
        &self,
        label: &[u8],
        key: &[u8],
    ) -> Result<Vec<V>, MemoryStorageError> {
        let storage_key = build_key_from_vec::<CURRENT_VERSION>(label, key.to_vec());
        let list: Vec<Vec<u8>> = match self.values.borrow().get(&storage_key) {
            Some(list_bytes) => serde_json::from_slice(list_bytes)?,
            None => Vec::new(),
        };
        list.iter().map(|bytes| decode(bytes)).collect()
    }

    fn delete(&self, label: &[u8], key: &[u8]) -> Result<(), MemoryStorageError> {
        let storage_key = build_key_from_vec::<CURRENT_VERSION>(label, key.to_vec());
        self.values.borrow_mut().remove(&storage_key);
        Ok(())
    }

    /// `write` with the key and value given as serializable values.
    fn put(&self, label: &[u8], key: &impl Serialize, value: &impl Serialize) -> Result<(), E> {
        self.write(label, &json(key)?, encode(value)?)
    }
}

type E = MemoryStorageError;

fn json(value: &impl Serialize) -> Result<Vec<u8>, E> {
    Ok(serde_json::to_vec(value)?)
}

/// A stored value: MessagePack with field names (self-describing, as openmls's serde
/// implementations need, and several times faster than JSON for the byte arrays of secrets
/// that openmls rewrites after every decrypted message).
fn encode(value: &impl Serialize) -> Result<Vec<u8>, E> {
    rmp_serde::to_vec_named(value).map_err(|_| MemoryStorageError::SerializationError)
}

fn decode<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, E> {
    rmp_serde::from_slice(bytes).map_err(|_| MemoryStorageError::SerializationError)
}

/// `label ‖ key ‖ u16be(version)`, as in the original.
fn build_key_from_vec<const V: u16>(label: &[u8], key: Vec<u8>) -> Vec<u8> {
    let mut key_out = label.to_vec();
    key_out.extend_from_slice(&key);
    key_out.extend_from_slice(&u16::to_be_bytes(V));
    key_out
}

fn epoch_key_pairs_id(
    group_id: &impl traits::GroupId<CURRENT_VERSION>,
    epoch: &impl traits::EpochKey<CURRENT_VERSION>,
    leaf_index: u32,
) -> Result<Vec<u8>, E> {
    let mut key = json(group_id)?;
    key.extend_from_slice(&json(epoch)?);
    key.extend_from_slice(&json(&leaf_index)?);
    Ok(key)
}

const KEY_PACKAGE_LABEL: &[u8] = b"KeyPackage";
const PSK_LABEL: &[u8] = b"Psk";
const ENCRYPTION_KEY_PAIR_LABEL: &[u8] = b"EncryptionKeyPair";
const SIGNATURE_KEY_PAIR_LABEL: &[u8] = b"SignatureKeyPair";
const EPOCH_KEY_PAIRS_LABEL: &[u8] = b"EpochKeyPairs";

// related to PublicGroup
const TREE_LABEL: &[u8] = b"Tree";
const GROUP_CONTEXT_LABEL: &[u8] = b"GroupContext";
const INTERIM_TRANSCRIPT_HASH_LABEL: &[u8] = b"InterimTranscriptHash";
const CONFIRMATION_TAG_LABEL: &[u8] = b"ConfirmationTag";

// related to MlsGroup
const JOIN_CONFIG_LABEL: &[u8] = b"MlsGroupJoinConfig";
const OWN_LEAF_NODES_LABEL: &[u8] = b"OwnLeafNodes";
const GROUP_STATE_LABEL: &[u8] = b"GroupState";
const QUEUED_PROPOSAL_LABEL: &[u8] = b"QueuedProposal";
const PROPOSAL_QUEUE_REFS_LABEL: &[u8] = b"ProposalQueueRefs";
const OWN_LEAF_NODE_INDEX_LABEL: &[u8] = b"OwnLeafNodeIndex";
const EPOCH_SECRETS_LABEL: &[u8] = b"EpochSecrets";
const RESUMPTION_PSK_STORE_LABEL: &[u8] = b"ResumptionPsk";
const MESSAGE_SECRETS_LABEL: &[u8] = b"MessageSecrets";

impl StorageProvider<CURRENT_VERSION> for MemoryStorage {
    type Error = MemoryStorageError;

    fn write_mls_join_config<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        config: &MlsGroupJoinConfig,
    ) -> Result<(), E> {
        self.put(JOIN_CONFIG_LABEL, group_id, config)
    }

    fn append_own_leaf_node<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        leaf_node: &LeafNode,
    ) -> Result<(), E> {
        self.append(OWN_LEAF_NODES_LABEL, &json(group_id)?, encode(leaf_node)?)
    }

    fn queue_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
        proposal: &QueuedProposal,
    ) -> Result<(), E> {
        // The proposal under (group_id, proposal_ref), and its ref in the group's list.
        self.put(QUEUED_PROPOSAL_LABEL, &(group_id, proposal_ref), proposal)?;
        self.append(
            PROPOSAL_QUEUE_REFS_LABEL,
            &json(group_id)?,
            encode(proposal_ref)?,
        )
    }

    fn write_tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        tree: &TreeSync,
    ) -> Result<(), E> {
        self.put(TREE_LABEL, group_id, tree)
    }

    fn write_interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        interim_transcript_hash: &InterimTranscriptHash,
    ) -> Result<(), E> {
        self.put(
            INTERIM_TRANSCRIPT_HASH_LABEL,
            group_id,
            interim_transcript_hash,
        )
    }

    fn write_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_context: &GroupContext,
    ) -> Result<(), E> {
        self.put(GROUP_CONTEXT_LABEL, group_id, group_context)
    }

    fn write_confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        confirmation_tag: &ConfirmationTag,
    ) -> Result<(), E> {
        self.put(CONFIRMATION_TAG_LABEL, group_id, confirmation_tag)
    }

    fn write_group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_state: &GroupState,
    ) -> Result<(), E> {
        self.put(GROUP_STATE_LABEL, group_id, group_state)
    }

    fn write_message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        message_secrets: &MessageSecrets,
    ) -> Result<(), E> {
        self.put(MESSAGE_SECRETS_LABEL, group_id, message_secrets)
    }

    fn write_resumption_psk_store<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ResumptionPskStore: traits::ResumptionPskStore<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        resumption_psk_store: &ResumptionPskStore,
    ) -> Result<(), E> {
        self.put(RESUMPTION_PSK_STORE_LABEL, group_id, resumption_psk_store)
    }

    fn write_own_leaf_index<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNodeIndex: traits::LeafNodeIndex<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        own_leaf_index: &LeafNodeIndex,
    ) -> Result<(), E> {
        self.put(OWN_LEAF_NODE_INDEX_LABEL, group_id, own_leaf_index)
    }

    fn write_group_epoch_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupEpochSecrets: traits::GroupEpochSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        group_epoch_secrets: &GroupEpochSecrets,
    ) -> Result<(), E> {
        self.put(EPOCH_SECRETS_LABEL, group_id, group_epoch_secrets)
    }

    fn write_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
        signature_key_pair: &SignatureKeyPair,
    ) -> Result<(), E> {
        self.put(SIGNATURE_KEY_PAIR_LABEL, public_key, signature_key_pair)
    }

    fn write_encryption_key_pair<
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
        key_pair: &HpkeKeyPair,
    ) -> Result<(), E> {
        self.put(ENCRYPTION_KEY_PAIR_LABEL, public_key, key_pair)
    }

    fn write_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
        key_pairs: &[HpkeKeyPair],
    ) -> Result<(), E> {
        let key = epoch_key_pairs_id(group_id, epoch, leaf_index)?;
        self.write(EPOCH_KEY_PAIRS_LABEL, &key, encode(&key_pairs)?)
    }

    fn write_key_package<
        HashReference: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &HashReference,
        key_package: &KeyPackage,
    ) -> Result<(), E> {
        self.put(KEY_PACKAGE_LABEL, hash_ref, key_package)
    }

    fn write_psk<
        PskId: traits::PskId<CURRENT_VERSION>,
        PskBundle: traits::PskBundle<CURRENT_VERSION>,
    >(
        &self,
        psk_id: &PskId,
        psk: &PskBundle,
    ) -> Result<(), E> {
        self.put(PSK_LABEL, psk_id, psk)
    }

    fn mls_group_join_config<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MlsGroupJoinConfig: traits::MlsGroupJoinConfig<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MlsGroupJoinConfig>, E> {
        self.read(JOIN_CONFIG_LABEL, &json(group_id)?)
    }

    fn own_leaf_nodes<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNode: traits::LeafNode<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<LeafNode>, E> {
        self.read_list(OWN_LEAF_NODES_LABEL, &json(group_id)?)
    }

    fn queued_proposal_refs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<ProposalRef>, E> {
        self.read_list(PROPOSAL_QUEUE_REFS_LABEL, &json(group_id)?)
    }

    fn queued_proposals<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
        QueuedProposal: traits::QueuedProposal<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Vec<(ProposalRef, QueuedProposal)>, E> {
        let refs: Vec<ProposalRef> = self.read_list(PROPOSAL_QUEUE_REFS_LABEL, &json(group_id)?)?;
        refs.into_iter()
            .map(|proposal_ref| {
                let key = json(&(group_id, &proposal_ref))?;
                // The original unwraps here; a listed but missing proposal is corrupt state.
                let proposal = self
                    .read(QUEUED_PROPOSAL_LABEL, &key)?
                    .ok_or(MemoryStorageError::SerializationError)?;
                Ok((proposal_ref, proposal))
            })
            .collect()
    }

    fn tree<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        TreeSync: traits::TreeSync<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<TreeSync>, E> {
        self.read(TREE_LABEL, &json(group_id)?)
    }

    fn group_context<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupContext: traits::GroupContext<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupContext>, E> {
        self.read(GROUP_CONTEXT_LABEL, &json(group_id)?)
    }

    fn interim_transcript_hash<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        InterimTranscriptHash: traits::InterimTranscriptHash<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<InterimTranscriptHash>, E> {
        self.read(INTERIM_TRANSCRIPT_HASH_LABEL, &json(group_id)?)
    }

    fn confirmation_tag<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ConfirmationTag: traits::ConfirmationTag<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ConfirmationTag>, E> {
        self.read(CONFIRMATION_TAG_LABEL, &json(group_id)?)
    }

    fn group_state<
        GroupState: traits::GroupState<CURRENT_VERSION>,
        GroupId: traits::GroupId<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupState>, E> {
        self.read(GROUP_STATE_LABEL, &json(group_id)?)
    }

    fn message_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        MessageSecrets: traits::MessageSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<MessageSecrets>, E> {
        self.read(MESSAGE_SECRETS_LABEL, &json(group_id)?)
    }

    fn resumption_psk_store<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ResumptionPskStore: traits::ResumptionPskStore<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<ResumptionPskStore>, E> {
        self.read(RESUMPTION_PSK_STORE_LABEL, &json(group_id)?)
    }

    fn own_leaf_index<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        LeafNodeIndex: traits::LeafNodeIndex<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<LeafNodeIndex>, E> {
        self.read(OWN_LEAF_NODE_INDEX_LABEL, &json(group_id)?)
    }

    fn group_epoch_secrets<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        GroupEpochSecrets: traits::GroupEpochSecrets<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<Option<GroupEpochSecrets>, E> {
        self.read(EPOCH_SECRETS_LABEL, &json(group_id)?)
    }

    fn signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
        SignatureKeyPair: traits::SignatureKeyPair<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<Option<SignatureKeyPair>, E> {
        self.read(SIGNATURE_KEY_PAIR_LABEL, &json(public_key)?)
    }

    fn encryption_key_pair<
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
        EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<Option<HpkeKeyPair>, E> {
        self.read(ENCRYPTION_KEY_PAIR_LABEL, &json(public_key)?)
    }

    fn encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
        HpkeKeyPair: traits::HpkeKeyPair<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<Vec<HpkeKeyPair>, E> {
        let key = epoch_key_pairs_id(group_id, epoch, leaf_index)?;
        Ok(self.read(EPOCH_KEY_PAIRS_LABEL, &key)?.unwrap_or_default())
    }

    fn key_package<
        KeyPackageRef: traits::HashReference<CURRENT_VERSION>,
        KeyPackage: traits::KeyPackage<CURRENT_VERSION>,
    >(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<Option<KeyPackage>, E> {
        self.read(KEY_PACKAGE_LABEL, &json(hash_ref)?)
    }

    fn psk<PskBundle: traits::PskBundle<CURRENT_VERSION>, PskId: traits::PskId<CURRENT_VERSION>>(
        &self,
        psk_id: &PskId,
    ) -> Result<Option<PskBundle>, E> {
        self.read(PSK_LABEL, &json(psk_id)?)
    }

    fn remove_proposal<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        proposal_ref: &ProposalRef,
    ) -> Result<(), E> {
        self.remove_item(
            PROPOSAL_QUEUE_REFS_LABEL,
            &json(group_id)?,
            encode(proposal_ref)?,
        )?;
        self.delete(QUEUED_PROPOSAL_LABEL, &json(&(group_id, proposal_ref))?)
    }

    fn delete_own_leaf_nodes<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(OWN_LEAF_NODES_LABEL, &json(group_id)?)
    }

    fn delete_group_config<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(JOIN_CONFIG_LABEL, &json(group_id)?)
    }

    fn delete_tree<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(TREE_LABEL, &json(group_id)?)
    }

    fn delete_confirmation_tag<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(CONFIRMATION_TAG_LABEL, &json(group_id)?)
    }

    fn delete_group_state<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(GROUP_STATE_LABEL, &json(group_id)?)
    }

    fn delete_context<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(GROUP_CONTEXT_LABEL, &json(group_id)?)
    }

    fn delete_interim_transcript_hash<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(INTERIM_TRANSCRIPT_HASH_LABEL, &json(group_id)?)
    }

    fn delete_message_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(MESSAGE_SECRETS_LABEL, &json(group_id)?)
    }

    fn delete_all_resumption_psk_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(RESUMPTION_PSK_STORE_LABEL, &json(group_id)?)
    }

    fn delete_own_leaf_index<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(OWN_LEAF_NODE_INDEX_LABEL, &json(group_id)?)
    }

    fn delete_group_epoch_secrets<GroupId: traits::GroupId<CURRENT_VERSION>>(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        self.delete(EPOCH_SECRETS_LABEL, &json(group_id)?)
    }

    fn clear_proposal_queue<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        ProposalRef: traits::ProposalRef<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
    ) -> Result<(), E> {
        let refs: Vec<ProposalRef> = self.read_list(PROPOSAL_QUEUE_REFS_LABEL, &json(group_id)?)?;
        for proposal_ref in refs {
            // Fixed: the original removed the bare key here (see the module docs).
            self.delete(QUEUED_PROPOSAL_LABEL, &json(&(group_id, proposal_ref))?)?;
        }
        self.delete(PROPOSAL_QUEUE_REFS_LABEL, &json(group_id)?)
    }

    fn delete_signature_key_pair<
        SignaturePublicKey: traits::SignaturePublicKey<CURRENT_VERSION>,
    >(
        &self,
        public_key: &SignaturePublicKey,
    ) -> Result<(), E> {
        self.delete(SIGNATURE_KEY_PAIR_LABEL, &json(public_key)?)
    }

    fn delete_encryption_key_pair<EncryptionKey: traits::EncryptionKey<CURRENT_VERSION>>(
        &self,
        public_key: &EncryptionKey,
    ) -> Result<(), E> {
        self.delete(ENCRYPTION_KEY_PAIR_LABEL, &json(public_key)?)
    }

    fn delete_encryption_epoch_key_pairs<
        GroupId: traits::GroupId<CURRENT_VERSION>,
        EpochKey: traits::EpochKey<CURRENT_VERSION>,
    >(
        &self,
        group_id: &GroupId,
        epoch: &EpochKey,
        leaf_index: u32,
    ) -> Result<(), E> {
        let key = epoch_key_pairs_id(group_id, epoch, leaf_index)?;
        self.delete(EPOCH_KEY_PAIRS_LABEL, &key)
    }

    fn delete_key_package<KeyPackageRef: traits::HashReference<CURRENT_VERSION>>(
        &self,
        hash_ref: &KeyPackageRef,
    ) -> Result<(), E> {
        self.delete(KEY_PACKAGE_LABEL, &json(hash_ref)?)
    }

    fn delete_psk<PskKey: traits::PskId<CURRENT_VERSION>>(&self, psk_id: &PskKey) -> Result<(), E> {
        self.delete(PSK_LABEL, &json(psk_id)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MemoryStorage {
        let store = MemoryStorage::new();
        store.write(b"B", b"k2", b"v2".to_vec()).unwrap();
        store.write(b"A", b"k1", b"v1".to_vec()).unwrap();
        store.append(b"L", b"k", encode(&"one").unwrap()).unwrap();
        store.append(b"L", b"k", encode(&"two").unwrap()).unwrap();
        store
    }

    #[test]
    fn snapshot_round_trips_and_is_ordered() {
        let store = sample();
        let bytes = store.snapshot();
        let restored = MemoryStorage::restore(&bytes).unwrap();
        assert_eq!(restored.snapshot(), bytes);
        assert_eq!(restored.len(), 3);
        let keys: Vec<_> = restored.values.borrow().keys().cloned().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let list: Vec<String> = restored.read_list(b"L", b"k").unwrap();
        assert_eq!(list, ["one", "two"]);
        restored
            .remove_item(b"L", b"k", encode(&"one").unwrap())
            .unwrap();
        let list: Vec<String> = restored.read_list(b"L", b"k").unwrap();
        assert_eq!(list, ["two"]);
    }

    #[test]
    fn bad_snapshots_are_typed_errors() {
        let bytes = sample().snapshot();
        for cut in 0..bytes.len() {
            assert!(MemoryStorage::restore(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(
            MemoryStorage::restore(&extra).unwrap_err(),
            SnapshotError::TrailingBytes
        );
        let mut version = bytes.clone();
        version[0] = 9;
        assert_eq!(
            MemoryStorage::restore(&version).unwrap_err(),
            SnapshotError::UnsupportedVersion(9)
        );
        // A huge announced count or length fails on the input's end, without allocating.
        let mut huge = vec![STORAGE_SNAPSHOT_VERSION];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            MemoryStorage::restore(&huge).unwrap_err(),
            SnapshotError::Truncated
        );
        // Duplicate keys are refused.
        let mut dup = vec![STORAGE_SNAPSHOT_VERSION];
        dup.extend_from_slice(&2u64.to_be_bytes());
        for _ in 0..2 {
            put_bytes(&mut dup, b"k");
            put_bytes(&mut dup, b"v");
        }
        assert_eq!(
            MemoryStorage::restore(&dup).unwrap_err(),
            SnapshotError::UnorderedKeys
        );
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        let store = MemoryStorage::new();
        store.write(b"L", b"k", b"not json".to_vec()).unwrap();
        assert_eq!(
            store.read_list::<Vec<u8>>(b"L", b"k").unwrap_err(),
            MemoryStorageError::SerializationError
        );
        assert!(store.read::<Vec<u8>>(b"L", b"k").is_err());
    }
}
