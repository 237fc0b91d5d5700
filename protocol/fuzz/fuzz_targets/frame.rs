//! Arbitrary bytes, in arbitrary chunks, into the frame decoder.
#![no_main]

use godwit_protocol::frame::FrameDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let mut d = FrameDecoder::new(64 * 1024);
    for part in rest.chunks(usize::from(chunk.max(1))) {
        d.push(part);
        loop {
            match d.next_frame() {
                Ok(Some(frame)) => assert!(!frame.is_empty() && frame.len() <= 64 * 1024),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = d.finish();
});
