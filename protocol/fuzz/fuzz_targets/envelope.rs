//! Arbitrary bytes into the envelope verifier and, when they verify, into every opener.
#![no_main]

use godwit_protocol::crypto::EpochKey;
use godwit_protocol::envelope::Envelope;
use godwit_protocol::identity::{EncryptionKey, IdentityKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::verify(data) {
        let me = IdentityKey::from_seed(&[3; 32]).node_id();
        let enc = EncryptionKey::from_secret(&[4; 32]);
        let _ = env.open_channel(&EpochKey::from_bytes([7; 32]));
        let _ = env.open_direct(&me, &enc);
        let _ = env.open_personal(&me, &enc);
    }
});
