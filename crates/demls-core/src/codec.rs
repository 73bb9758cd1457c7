//! Big-endian, length-prefixed byte encoding for snapshots (one format for every part of a
//! conversation snapshot, so a reader never panics on bad bytes).

use std::time::Duration;

use demls_consensus::{MemberId, ProposalDigest};

use crate::error::Error;

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    pub(crate) fn duration(&mut self, d: Duration) {
        self.u64(d.as_nanos().min(u128::from(u64::MAX)) as u64);
    }
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

pub(crate) fn bad(what: &str) -> Error {
    Error::Snapshot(what.to_string())
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn duration(&mut self) -> Result<Duration, Error> {
        Ok(Duration::from_nanos(self.u64()?))
    }
    pub(crate) fn digest(&mut self) -> Result<ProposalDigest, Error> {
        Ok(ProposalDigest(self.take(32)?.try_into().expect("32 bytes")))
    }
    pub(crate) fn member(&mut self) -> Result<MemberId, Error> {
        MemberId::new(self.bytes()?.to_vec()).map_err(|_| bad("invalid member id"))
    }
    pub(crate) fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad("invalid boolean")),
        }
    }
}
