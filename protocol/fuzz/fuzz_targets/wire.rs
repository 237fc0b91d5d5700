//! Arbitrary bytes into the link-frame decoder: it never panics, and whatever it accepts
//! encodes back to exactly the bytes it came from (decoding is strict).
#![no_main]

use godwit_protocol::wire::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        assert_eq!(frame.encode(), data, "a decoded frame re-encodes to its bytes");
    }
});
