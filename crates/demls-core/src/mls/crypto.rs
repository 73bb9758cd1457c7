//! [`DemlsCrypto`]: a deterministic, lock-free [`OpenMlsCrypto`] for the X25519/Ed25519
//! ciphersuites.
//!
//! The symmetric primitives, hashing and Ed25519 follow `openmls_rust_crypto` 0.6.0
//! (`src/provider.rs`, MIT), which is already deterministic there, with the same RustCrypto
//! crates and the same error mapping; the differences are noted where they occur. HPKE uses the
//! `hpke` crate (rust-hpke, RFC 9180) instead of `hpke-rs`, because `hpke-rs` draws OS entropy
//! on every call while `hpke` takes the caller's RNG.
//!
//! ## Per-call HPKE randomness
//!
//! openmls calls [`OpenMlsCrypto::hpke_seal`] from rayon worker threads while encrypting an
//! update path, so a shared stream would hand out bytes in scheduling order. Instead each
//! sealing call derives its own ephemeral randomness:
//!
//! ```text
//! seed = HMAC-SHA256(hpke_key, "demls/v1/hpke/" ‖ purpose ‖ u16be(kem) ‖ u16be(kdf) ‖ u16be(aead)
//!                              ‖ for each input: u64be(len) ‖ input)
//! rng  = ChaCha20Rng::from_seed(seed)        // draws the ephemeral X25519 key
//! ```
//!
//! where the inputs are `pk_r, info, aad, plaintext` for `hpke_seal` and
//! `pk_r, info, exporter_context, u64be(exporter_length)` for `hpke_setup_sender_and_export`.
//! The result depends only on `hpke_key` and the call's arguments, never on which thread runs it
//! or in which order. `hpke_key` is a secret that the owner
//! ([`DemlsProvider::prepare_operation`](super::DemlsProvider::prepare_operation)) refreshes
//! from the seeded stream before every MLS operation; two calls with the same key and the same
//! arguments produce the same ciphertext, which reveals only that the arguments (including the
//! plaintext) were equal.
//!
//! The provider holds no interior mutability at all (the key is a plain field, changed through
//! `&mut self`), so it is `Send + Sync` without locks.

use core::fmt;

use aes_gcm::aead::{generic_array::typenum::Unsigned, AeadCore, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use ed25519_dalek::Signer as _;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use hpke::aead::{Aead as HpkeAead, AesGcm128 as HpkeAes128, ChaCha20Poly1305 as HpkeChaCha};
use hpke::kdf::HkdfSha256 as HpkeHkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::{
    AeadType, Ciphersuite, CryptoError, ExporterSecret, HashType, HpkeAeadType, HpkeCiphertext,
    HpkeConfig, HpkeKdfType, HpkeKemType, HpkeKeyPair, HpkePrivateKey, KemOutput, SignatureScheme,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::{Digest, Sha256, Sha384, Sha512};
use tls_codec::SecretVLBytes;

/// Length of the per-provider HPKE derivation key.
pub const HPKE_KEY_LEN: usize = 32;

/// Domain label of the per-call HPKE randomness derivation.
const HPKE_RNG_LABEL: &[u8] = b"demls/v1/hpke/";

/// The ciphersuites [`DemlsCrypto`] implements, in preference order.
pub const SUPPORTED_CIPHERSUITES: [Ciphersuite; 2] = [
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
];

/// The deterministic crypto provider. See the module docs for the HPKE design.
///
/// Implements ciphersuites 0x0001 (`MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`, the default)
/// and 0x0003 (`MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519`). Beyond what those need,
/// hashing, HMAC and HKDF also accept SHA-384/512 and the AEAD also accepts AES-256-GCM, as in
/// `openmls_rust_crypto`; signatures are Ed25519 only.
///
/// [`signature_key_gen`](OpenMlsCrypto::signature_key_gen) always fails with
/// [`CryptoError::InsufficientRandomness`]: this provider owns no randomness. Generate
/// signature keys with
/// [`DemlsProvider::generate_signature_keypair`](super::DemlsProvider::generate_signature_keypair),
/// which draws them from the seeded stream.
#[derive(Clone)]
pub struct DemlsCrypto {
    hpke_key: [u8; HPKE_KEY_LEN],
}

impl DemlsCrypto {
    /// A provider whose HPKE randomness derives from `hpke_key` (a secret).
    pub fn new(hpke_key: [u8; HPKE_KEY_LEN]) -> Self {
        Self { hpke_key }
    }

    /// Replaces the HPKE derivation key. The owner calls this before every MLS operation with
    /// fresh bytes from the seeded stream.
    pub fn set_hpke_key(&mut self, hpke_key: [u8; HPKE_KEY_LEN]) {
        self.hpke_key = hpke_key;
    }

    /// The current HPKE derivation key, for snapshots. Secret.
    pub fn hpke_key(&self) -> [u8; HPKE_KEY_LEN] {
        self.hpke_key
    }

    /// The randomness of one HPKE sender call: a ChaCha20 stream keyed by
    /// HMAC-SHA256(`hpke_key`, label ‖ purpose ‖ config ‖ length-prefixed inputs).
    fn call_rng(&self, purpose: &[u8], config: &HpkeConfig, inputs: &[&[u8]]) -> ChaCha20Rng {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hpke_key)
            .expect("HMAC accepts keys of any length");
        mac.update(HPKE_RNG_LABEL);
        mac.update(purpose);
        mac.update(&(config.0 as u16).to_be_bytes());
        mac.update(&(config.1 as u16).to_be_bytes());
        mac.update(&(config.2 as u16).to_be_bytes());
        for input in inputs {
            mac.update(&(input.len() as u64).to_be_bytes());
            mac.update(input);
        }
        ChaCha20Rng::from_seed(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for DemlsCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DemlsCrypto { hpke_key: <redacted> }")
    }
}

/// The HPKE suites of the implemented ciphersuites: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
/// and one of two AEADs.
#[derive(Clone, Copy)]
enum HpkeSuite {
    Aes128Gcm,
    ChaCha20Poly1305,
}

fn hpke_suite(config: &HpkeConfig) -> Result<HpkeSuite, CryptoError> {
    match (config.0, config.1, config.2) {
        (HpkeKemType::DhKem25519, HpkeKdfType::HkdfSha256, HpkeAeadType::AesGcm128) => {
            Ok(HpkeSuite::Aes128Gcm)
        }
        (HpkeKemType::DhKem25519, HpkeKdfType::HkdfSha256, HpkeAeadType::ChaCha20Poly1305) => {
            Ok(HpkeSuite::ChaCha20Poly1305)
        }
        (HpkeKemType::DhKem25519, HpkeKdfType::HkdfSha256, _) => {
            Err(CryptoError::UnsupportedAeadAlgorithm)
        }
        (HpkeKemType::DhKem25519, _, _) => Err(CryptoError::UnsupportedKdf),
        _ => Err(CryptoError::UnsupportedCiphersuite),
    }
}

/// Runs `$f::<A>(args)` with the hpke AEAD type of `$suite`.
macro_rules! with_hpke_aead {
    ($suite:expr, $f:ident ( $($arg:expr),* $(,)? )) => {
        match $suite {
            HpkeSuite::Aes128Gcm => $f::<HpkeAes128>($($arg),*),
            HpkeSuite::ChaCha20Poly1305 => $f::<HpkeChaCha>($($arg),*),
        }
    };
}

type Kem = X25519HkdfSha256;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

fn public_key(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
    PublicKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidPublicKey)
}

fn seal<A: HpkeAead>(
    pk_r: &[u8],
    info: &[u8],
    aad: &[u8],
    ptxt: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<HpkeCiphertext, CryptoError> {
    let pk = public_key(pk_r)?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<A, HpkeHkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        info,
        ptxt,
        aad,
        rng,
    )
    .map_err(|_| CryptoError::HpkeEncryptionError)?;
    Ok(HpkeCiphertext {
        kem_output: enc.to_bytes().as_slice().to_vec().into(),
        ciphertext: ciphertext.into(),
    })
}

fn open<A: HpkeAead>(
    input: &HpkeCiphertext,
    sk_r: &[u8],
    info: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let sk = PrivateKey::from_bytes(sk_r).map_err(|_| CryptoError::HpkeDecryptionError)?;
    let enc = EncappedKey::from_bytes(input.kem_output.as_slice())
        .map_err(|_| CryptoError::HpkeDecryptionError)?;
    hpke::single_shot_open::<A, HpkeHkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        input.ciphertext.as_slice(),
        aad,
    )
    .map_err(|_| CryptoError::HpkeDecryptionError)
}

/// The most an HKDF-SHA256-based exporter can produce (255 blocks).
const MAX_EXPORT_LEN: usize = 255 * 32;

fn sender_export<A: HpkeAead>(
    pk_r: &[u8],
    info: &[u8],
    exporter_context: &[u8],
    exporter_length: usize,
    rng: &mut ChaCha20Rng,
) -> Result<(KemOutput, ExporterSecret), CryptoError> {
    if exporter_length > MAX_EXPORT_LEN {
        return Err(CryptoError::ExporterError);
    }
    let pk = public_key(pk_r)?;
    let (enc, context) =
        hpke::setup_sender_with_rng::<A, HpkeHkdfSha256, Kem>(&OpModeS::Base, &pk, info, rng)
            .map_err(|_| CryptoError::SenderSetupError)?;
    let mut secret = vec![0u8; exporter_length];
    context
        .export(exporter_context, &mut secret)
        .map_err(|_| CryptoError::ExporterError)?;
    Ok((enc.to_bytes().as_slice().to_vec(), secret.into()))
}

fn receiver_export<A: HpkeAead>(
    enc: &[u8],
    sk_r: &[u8],
    info: &[u8],
    exporter_context: &[u8],
    exporter_length: usize,
) -> Result<ExporterSecret, CryptoError> {
    if exporter_length > MAX_EXPORT_LEN {
        return Err(CryptoError::ExporterError);
    }
    let sk = PrivateKey::from_bytes(sk_r).map_err(|_| CryptoError::ReceiverSetupError)?;
    let enc = EncappedKey::from_bytes(enc).map_err(|_| CryptoError::ReceiverSetupError)?;
    let context = hpke::setup_receiver::<A, HpkeHkdfSha256, Kem>(&OpModeR::Base, &sk, &enc, info)
        .map_err(|_| CryptoError::ReceiverSetupError)?;
    let mut secret = vec![0u8; exporter_length];
    context
        .export(exporter_context, &mut secret)
        .map_err(|_| CryptoError::ExporterError)?;
    Ok(secret.into())
}

/// AEAD encryption with a RustCrypto AEAD. Unlike `openmls_rust_crypto`, a nonce of the wrong
/// length is an error rather than a panic.
fn aead_seal<C: KeyInit + aes_gcm::aead::Aead>(
    key: &[u8],
    nonce: &[u8],
    msg: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if nonce.len() != <C as AeadCore>::NonceSize::USIZE {
        return Err(CryptoError::InvalidLength);
    }
    let cipher = C::new_from_slice(key).map_err(|_| CryptoError::CryptoLibraryError)?;
    cipher
        .encrypt(nonce.into(), Payload { msg, aad })
        .map_err(|_| CryptoError::CryptoLibraryError)
}

fn aead_open<C: KeyInit + aes_gcm::aead::Aead>(
    key: &[u8],
    nonce: &[u8],
    ct_tag: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if nonce.len() != <C as AeadCore>::NonceSize::USIZE {
        return Err(CryptoError::InvalidLength);
    }
    let cipher = C::new_from_slice(key).map_err(|_| CryptoError::CryptoLibraryError)?;
    cipher
        .decrypt(nonce.into(), Payload { msg: ct_tag, aad })
        .map_err(|_| CryptoError::AeadDecryptionError)
}

fn hmac_with<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Result<SecretVLBytes, CryptoError> {
    let mut mac = <M as Mac>::new_from_slice(key).map_err(|_| CryptoError::InvalidLength)?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().as_slice().into())
}

/// HKDF-Expand with hash `$hash`, as `openmls_rust_crypto` does it, but refusing an oversized
/// `okm_len` before allocating it.
macro_rules! hkdf_expand_with {
    ($hash:ty, $prk:expr, $info:expr, $okm_len:expr) => {{
        // HKDF produces at most 255 hash blocks.
        if $okm_len > 255 * <$hash as Digest>::output_size() {
            return Err(CryptoError::HkdfOutputLengthInvalid);
        }
        let hkdf =
            Hkdf::<$hash>::from_prk($prk).map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
        let mut okm = vec![0u8; $okm_len];
        hkdf.expand($info, &mut okm)
            .map_err(|_| CryptoError::HkdfOutputLengthInvalid)?;
        Ok(okm.into())
    }};
}

impl OpenMlsCrypto for DemlsCrypto {
    fn supports(&self, ciphersuite: Ciphersuite) -> Result<(), CryptoError> {
        if SUPPORTED_CIPHERSUITES.contains(&ciphersuite) {
            Ok(())
        } else {
            Err(CryptoError::UnsupportedCiphersuite)
        }
    }

    fn supported_ciphersuites(&self) -> Vec<Ciphersuite> {
        SUPPORTED_CIPHERSUITES.to_vec()
    }

    fn hkdf_extract(
        &self,
        hash_type: HashType,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        Ok(match hash_type {
            HashType::Sha2_256 => Hkdf::<Sha256>::extract(Some(salt), ikm).0.as_slice().into(),
            HashType::Sha2_384 => Hkdf::<Sha384>::extract(Some(salt), ikm).0.as_slice().into(),
            HashType::Sha2_512 => Hkdf::<Sha512>::extract(Some(salt), ikm).0.as_slice().into(),
        })
    }

    fn hmac(
        &self,
        hash_type: HashType,
        key: &[u8],
        message: &[u8],
    ) -> Result<SecretVLBytes, CryptoError> {
        match hash_type {
            HashType::Sha2_256 => hmac_with::<Hmac<Sha256>>(key, message),
            HashType::Sha2_384 => hmac_with::<Hmac<Sha384>>(key, message),
            HashType::Sha2_512 => hmac_with::<Hmac<Sha512>>(key, message),
        }
    }

    fn hkdf_expand(
        &self,
        hash_type: HashType,
        prk: &[u8],
        info: &[u8],
        okm_len: usize,
    ) -> Result<SecretVLBytes, CryptoError> {
        match hash_type {
            HashType::Sha2_256 => hkdf_expand_with!(Sha256, prk, info, okm_len),
            HashType::Sha2_384 => hkdf_expand_with!(Sha384, prk, info, okm_len),
            HashType::Sha2_512 => hkdf_expand_with!(Sha512, prk, info, okm_len),
        }
    }

    fn hash(&self, hash_type: HashType, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(match hash_type {
            HashType::Sha2_256 => Sha256::digest(data).to_vec(),
            HashType::Sha2_384 => Sha384::digest(data).to_vec(),
            HashType::Sha2_512 => Sha512::digest(data).to_vec(),
        })
    }

    fn aead_encrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        data: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match alg {
            AeadType::Aes128Gcm => aead_seal::<Aes128Gcm>(key, nonce, data, aad),
            AeadType::Aes256Gcm => aead_seal::<Aes256Gcm>(key, nonce, data, aad),
            AeadType::ChaCha20Poly1305 => aead_seal::<ChaCha20Poly1305>(key, nonce, data, aad),
        }
    }

    fn aead_decrypt(
        &self,
        alg: AeadType,
        key: &[u8],
        ct_tag: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match alg {
            AeadType::Aes128Gcm => aead_open::<Aes128Gcm>(key, nonce, ct_tag, aad),
            AeadType::Aes256Gcm => aead_open::<Aes256Gcm>(key, nonce, ct_tag, aad),
            AeadType::ChaCha20Poly1305 => aead_open::<ChaCha20Poly1305>(key, nonce, ct_tag, aad),
        }
    }

    /// Always an error: this provider owns no randomness (see the type docs).
    fn signature_key_gen(&self, alg: SignatureScheme) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        match alg {
            SignatureScheme::ED25519 => Err(CryptoError::InsufficientRandomness),
            _ => Err(CryptoError::UnsupportedSignatureScheme),
        }
    }

    fn verify_signature(
        &self,
        alg: SignatureScheme,
        data: &[u8],
        pk: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        // As openmls_rust_crypto: strict verification, CryptoLibraryError for malformed input.
        if alg != SignatureScheme::ED25519 {
            return Err(CryptoError::UnsupportedSignatureScheme);
        }
        let key = ed25519_dalek::VerifyingKey::try_from(pk)
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        let signature = <[u8; ed25519_dalek::SIGNATURE_LENGTH]>::try_from(signature)
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        key.verify_strict(data, &ed25519_dalek::Signature::from(signature))
            .map_err(|_| CryptoError::InvalidSignature)
    }

    fn sign(&self, alg: SignatureScheme, data: &[u8], key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if alg != SignatureScheme::ED25519 {
            return Err(CryptoError::UnsupportedSignatureScheme);
        }
        let key = ed25519_dalek::SigningKey::try_from(key)
            .map_err(|_| CryptoError::CryptoLibraryError)?;
        Ok(key.sign(data).to_bytes().to_vec())
    }

    fn hpke_seal(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        aad: &[u8],
        ptxt: &[u8],
    ) -> Result<HpkeCiphertext, CryptoError> {
        let suite = hpke_suite(&config)?;
        let mut rng = self.call_rng(b"seal", &config, &[pk_r, info, aad, ptxt]);
        with_hpke_aead!(suite, seal(pk_r, info, aad, ptxt, &mut rng))
    }

    fn hpke_open(
        &self,
        config: HpkeConfig,
        input: &HpkeCiphertext,
        sk_r: &[u8],
        info: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let suite = hpke_suite(&config)?;
        with_hpke_aead!(suite, open(input, sk_r, info, aad))
    }

    fn hpke_setup_sender_and_export(
        &self,
        config: HpkeConfig,
        pk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<(KemOutput, ExporterSecret), CryptoError> {
        let suite = hpke_suite(&config)?;
        let length = (exporter_length as u64).to_be_bytes();
        let mut rng = self.call_rng(b"export", &config, &[pk_r, info, exporter_context, &length]);
        with_hpke_aead!(
            suite,
            sender_export(pk_r, info, exporter_context, exporter_length, &mut rng)
        )
    }

    fn hpke_setup_receiver_and_export(
        &self,
        config: HpkeConfig,
        enc: &[u8],
        sk_r: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        exporter_length: usize,
    ) -> Result<ExporterSecret, CryptoError> {
        let suite = hpke_suite(&config)?;
        with_hpke_aead!(
            suite,
            receiver_export(enc, sk_r, info, exporter_context, exporter_length)
        )
    }

    /// RFC 9180 `DeriveKeyPair` for DHKEM(X25519, HKDF-SHA256). The public key is identical to
    /// `hpke-rs`'s; the private key is returned clamped (RFC 9180 §7.1.2 `SerializePrivateKey`),
    /// where `hpke-rs` returns it unclamped. Both denote the same X25519 scalar.
    fn derive_hpke_keypair(
        &self,
        config: HpkeConfig,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        if config.0 != HpkeKemType::DhKem25519 {
            return Err(CryptoError::UnsupportedCiphersuite);
        }
        let (sk, pk) = Kem::derive_keypair(ikm);
        Ok(HpkeKeyPair {
            private: HpkePrivateKey::from(sk.to_bytes().as_slice()),
            public: pk.to_bytes().as_slice().to_vec(),
        })
    }
}
