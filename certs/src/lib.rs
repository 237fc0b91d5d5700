//! # godwit-certs
//!
//! What `godwitd` and the `godwit` tool share about identities on disk and in TLS: the network
//! CA, node certificates whose key *is* the node's Ed25519 identity, revocation lists
//! ([`x509`], re-exported here), identity key files ([`keyfile`]) and private, atomically
//! replaced files ([`files`]). No networking, no storage: the offline `godwit ca …` commands
//! link this crate, not the node.

pub mod ca;
pub mod files;
pub mod keyfile;
pub mod x509;

pub use x509::*;
