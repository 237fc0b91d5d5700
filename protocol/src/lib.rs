//! # godwit-protocol
//!
//! The sans-IO core of Godwit, the secure message-exchange node for customs enforcement
//! networks: node identities and cards, the signed envelope (COSE_Sign1 / EdDSA), channel and
//! direct encryption (XChaCha20-Poly1305, HPKE RFC 9180), the content kinds customs analysts
//! exchange (Warning, Feedback, SeizureReport, IntelligenceBulletin, ...), feeds with gap and
//! fork detection, framing, and the limits that bound every decoder.
//!
//! What it deliberately does not do: any I/O. No sockets, files, database, async runtime or
//! clock — time is passed in as a [`Timestamp`] and randomness as a `CryptoRngCore`, so every
//! decision is deterministic and testable, and a simulator can run many nodes in one process.
//!
//! ```
//! use godwit_protocol::{content::Body, crypto::EpochKey, envelope::{Envelope, Priority},
//!     identity::IdentityKey, ids::ChannelId, message::{seal, Audience, Draft}, samples,
//!     content::{Content, Tlp}, Timestamp};
//!
//! let mut rng = rand_core::OsRng;
//! let hub = IdentityKey::generate(&mut rng);
//! let key = EpochKey::generate(&mut rng);
//! let body = Body::new(Content::SeizureReport(samples::seizure_report()));
//! let now = Timestamp::from_secs(1_795_000_000);
//! let sealed = seal(&mut rng, &hub, &Draft {
//!     audience: Audience::Channel { id: ChannelId([1; 32]), epoch: 1, key: &key },
//!     seq: 1, prev: None, created: now, expires: now.plus_hours(72),
//!     priority: Priority::Immediate, marking: Tlp::Amber, body: &body, personal: None,
//! }).unwrap();
//!
//! let env = Envelope::verify(&sealed.bytes).unwrap();   // any relay can do this
//! assert_eq!(env.id(), sealed.id);
//! assert_eq!(env.open_channel(&key).unwrap(), body);     // only members hold the key
//! ```

pub mod audit;
pub mod channel;
pub mod codec;
pub mod content;
pub mod control;
pub mod crypto;
pub mod envelope;
pub mod feed;
pub mod frame;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod message;
pub mod relay;
pub mod samples;
#[cfg(feature = "test-utils")]
pub mod sim;
mod time;
pub mod wire;

pub use limits::{LIMITS, Limits};
pub use time::Timestamp;

/// A deterministic RNG for unit tests.
#[cfg(test)]
pub(crate) fn test_rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    use rand_core::SeedableRng;
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}
