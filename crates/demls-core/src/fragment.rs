//! Splitting payloads larger than the packet limit into fragments, and reassembling them with
//! bounded memory (a welcome carrying a 1000-member ratchet tree is ~260 KB; Waku's limit is
//! 150 KiB).

use std::collections::BTreeMap;
use std::time::Instant;

use demls_wire::{v1, FRAGMENT_ID_LEN};
use prost::Message;

use crate::error::Error;

/// Bytes a fragment packet adds around its chunk, with margin: conversation id (≤ 64), message
/// id (16), three varints and the protobuf tags and lengths.
const FRAGMENT_OVERHEAD: usize = 64 + FRAGMENT_ID_LEN + 3 * 5 + 16;

/// Splits an encoded packet into fragment packets of at most `max_packet_len` bytes each, or
/// returns it whole when it fits.
pub(crate) fn split(
    conversation_id: &[u8],
    packet: Vec<u8>,
    max_packet_len: usize,
    max_payload_len: usize,
    message_id: [u8; FRAGMENT_ID_LEN],
) -> Result<Vec<Vec<u8>>, Error> {
    if packet.len() <= max_packet_len {
        return Ok(vec![packet]);
    }
    if packet.len() > max_payload_len || max_packet_len <= FRAGMENT_OVERHEAD {
        return Err(Error::PayloadTooLarge {
            len: packet.len(),
            max: max_payload_len,
        });
    }
    let chunk_len = max_packet_len - FRAGMENT_OVERHEAD;
    let count = packet.len().div_ceil(chunk_len) as u32;
    Ok(packet
        .chunks(chunk_len)
        .enumerate()
        .map(|(index, chunk)| {
            let p = v1::Packet {
                conversation_id: conversation_id.to_vec(),
                body: Some(v1::packet::Body::Fragment(v1::Fragment {
                    message_id: message_id.to_vec(),
                    index: index as u32,
                    count,
                    total_len: packet.len() as u32,
                    chunk: chunk.to_vec(),
                })),
            };
            let bytes = p.encode_to_vec();
            debug_assert!(bytes.len() <= max_packet_len);
            bytes
        })
        .collect())
}

/// A payload being reassembled. Only received pieces are stored, so memory follows the bytes
/// that arrived, never the piece count a sender claims.
#[derive(Debug, Clone)]
struct Partial {
    count: u32,
    total_len: u32,
    chunks: BTreeMap<u32, Vec<u8>>,
    received: usize,
    started: Instant,
}

/// Reassembles fragments. Holds at most `max_reassemblies` payloads of at most
/// `max_payload_len` bytes each; incomplete ones are dropped by [`Reassembler::expire`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Reassembler {
    partials: BTreeMap<[u8; FRAGMENT_ID_LEN], Partial>,
}

impl Reassembler {
    /// Checks that `f` would be accepted by [`Reassembler::insert`], without changing anything.
    pub(crate) fn check(
        &self,
        f: &v1::Fragment,
        max_reassemblies: usize,
        max_payload_len: usize,
    ) -> Result<(), Error> {
        let id: [u8; FRAGMENT_ID_LEN] =
            f.message_id.as_slice().try_into().expect("checked by wire");
        if f.total_len as usize > max_payload_len {
            return Err(Error::PayloadTooLarge {
                len: f.total_len as usize,
                max: max_payload_len,
            });
        }
        match self.partials.get(&id) {
            Some(p) if p.count != f.count || p.total_len != f.total_len => {
                Err(Error::FragmentMismatch)
            }
            Some(p) if p.chunks.contains_key(&f.index) => Err(Error::DuplicateFragment),
            Some(p) if p.received + f.chunk.len() > p.total_len as usize => {
                Err(Error::FragmentMismatch)
            }
            Some(_) => Ok(()),
            None if self.partials.len() >= max_reassemblies => Err(Error::ReassemblyLimit {
                max: max_reassemblies,
            }),
            None => Ok(()),
        }
    }

    /// Adds a checked fragment; returns the whole payload once every piece arrived.
    pub(crate) fn insert(&mut self, f: v1::Fragment, now: Instant) -> Option<Vec<u8>> {
        let id: [u8; FRAGMENT_ID_LEN] =
            f.message_id.as_slice().try_into().expect("checked by wire");
        let p = self.partials.entry(id).or_insert_with(|| Partial {
            count: f.count,
            total_len: f.total_len,
            chunks: BTreeMap::new(),
            received: 0,
            started: now,
        });
        p.received += f.chunk.len();
        p.chunks.insert(f.index, f.chunk);
        if p.chunks.len() < p.count as usize {
            return None;
        }
        let p = self.partials.remove(&id).expect("present");
        let whole: Vec<u8> = p.chunks.into_values().flatten().collect();
        (whole.len() == p.total_len as usize).then_some(whole)
    }

    /// Drops reassemblies started at or before `cutoff`; returns how many were dropped.
    pub(crate) fn expire(&mut self, cutoff: Instant) -> usize {
        let before = self.partials.len();
        self.partials.retain(|_, p| p.started > cutoff);
        before - self.partials.len()
    }

    /// When the oldest reassembly started.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.partials.values().map(|p| p.started).min()
    }

    /// Number of reassemblies in progress.
    pub(crate) fn len(&self) -> usize {
        self.partials.len()
    }

    /// Bytes held by reassemblies in progress.
    pub(crate) fn bytes(&self) -> usize {
        self.partials.values().map(|p| p.received).sum()
    }
}

impl Reassembler {
    /// Appends the reassemblies to a snapshot; times relative to `origin`.
    pub(crate) fn write(&self, w: &mut crate::codec::Writer, origin: Instant) {
        w.u32(self.partials.len() as u32);
        for (id, p) in &self.partials {
            w.0.extend_from_slice(id);
            w.u32(p.count);
            w.u32(p.total_len);
            w.duration(p.started.saturating_duration_since(origin));
            w.u32(p.chunks.len() as u32);
            for (index, chunk) in &p.chunks {
                w.u32(*index);
                w.bytes(chunk);
            }
        }
    }

    /// Reads what [`Reassembler::write`] wrote.
    pub(crate) fn read(r: &mut crate::codec::Reader<'_>, origin: Instant) -> Result<Self, Error> {
        let mut partials = BTreeMap::new();
        for _ in 0..r.u32()? {
            let id: [u8; FRAGMENT_ID_LEN] = r.take(FRAGMENT_ID_LEN)?.try_into().expect("16 bytes");
            let count = r.u32()?;
            let total_len = r.u32()?;
            let started = origin + r.duration()?;
            if !(2..=demls_wire::MAX_FRAGMENT_COUNT).contains(&count) {
                return Err(crate::codec::bad("fragment count out of range"));
            }
            let mut chunks = BTreeMap::new();
            let mut received = 0;
            for _ in 0..r.u32()? {
                let index = r.u32()?;
                let c = r.bytes()?.to_vec();
                if index >= count || chunks.contains_key(&index) {
                    return Err(crate::codec::bad("invalid fragment index"));
                }
                received += c.len();
                chunks.insert(index, c);
            }
            partials.insert(
                id,
                Partial {
                    count,
                    total_len,
                    chunks,
                    received,
                    started,
                },
            );
        }
        Ok(Self { partials })
    }
}
