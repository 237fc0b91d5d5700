//! Arbitrary bytes into the content decoders (what a recipient parses after decryption) and the
//! other signed structures.
#![no_main]

use godwit_protocol::content::{Body, PersonalData};
use godwit_protocol::crypto::ChannelKey;
use godwit_protocol::identity::NodeCard;
use godwit_protocol::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = Body::decode(data) {
        // Whatever decodes must re-encode to the same bytes (deterministic CBOR).
        assert_eq!(b.encode(), data);
    }
    let _ = PersonalData::decode(data);
    let _ = NodeCard::verify(data, Timestamp(0));
    let _ = ChannelKey::verify(data);
});
