//! Length-prefixed frames: a 4-byte big-endian length, then that many bytes of body. The length
//! is checked against the limit before a single byte of body is buffered.

use crate::limits::LIMITS;

/// Bytes of the length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The declared length exceeds the limit; the peer is misbehaving.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    Oversize {
        /// The declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame of length zero; nothing valid is empty.
    #[error("empty frame")]
    Empty,
    /// The stream ended inside a frame.
    #[error("stream ended {missing} bytes short of a complete frame")]
    Truncated {
        /// Bytes still missing.
        missing: usize,
    },
}

/// Checks a length prefix against `max` (which may be at most `LIMITS.max_frame_len`).
///
/// # Errors
/// [`FrameError::Empty`] or [`FrameError::Oversize`].
pub fn frame_len(prefix: [u8; FRAME_HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    let max = max.min(LIMITS.max_frame_len);
    match len {
        0 => Err(FrameError::Empty),
        n if n > max => Err(FrameError::Oversize { len: n, max }),
        n => Ok(n),
    }
}

/// Prefixes `body` with its length.
///
/// # Errors
/// [`FrameError::Empty`] or [`FrameError::Oversize`].
pub fn encode_frame(body: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    let max = max.min(LIMITS.max_frame_len);
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    if body.len() > max {
        return Err(FrameError::Oversize { len: body.len(), max });
    }
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

/// A sans-IO frame decoder: push bytes as they arrive, pull complete frames.
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    buf: Vec<u8>,
    /// Length of the frame being read, once its prefix has been checked.
    want: Option<usize>,
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max` bytes (capped at `LIMITS.max_frame_len`).
    pub fn new(max: usize) -> Self {
        FrameDecoder { max: max.min(LIMITS.max_frame_len), buf: Vec::new(), want: None }
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame body, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError::Oversize`] or [`FrameError::Empty`] as soon as a bad prefix is seen; the
    /// decoder should then be dropped together with the stream.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let want = match self.want {
            Some(n) => n,
            None if self.buf.len() >= FRAME_HEADER_LEN => {
                let prefix = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
                let n = frame_len(prefix, self.max)?;
                self.buf.drain(..FRAME_HEADER_LEN);
                self.want = Some(n);
                n
            }
            None => return Ok(None),
        };
        if self.buf.len() < want {
            return Ok(None);
        }
        let rest = self.buf.split_off(want);
        self.want = None;
        Ok(Some(std::mem::replace(&mut self.buf, rest)))
    }

    /// Called at end of stream: an error if a frame was left incomplete.
    ///
    /// # Errors
    /// [`FrameError::Truncated`].
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() && self.want.is_none() {
            return Ok(());
        }
        // Call after `next_frame` returned `Ok(None)`; otherwise "missing" may read 0.
        let missing = match self.want {
            Some(n) => n.saturating_sub(self.buf.len()),
            None => FRAME_HEADER_LEN.saturating_sub(self.buf.len()),
        };
        Err(FrameError::Truncated { missing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_arbitrary_splits() {
        let mut wire = encode_frame(b"hello", 100).unwrap();
        wire.extend(encode_frame(b"world!", 100).unwrap());
        for split in 0..wire.len() {
            let mut d = FrameDecoder::new(100);
            d.push(&wire[..split]);
            let mut got = Vec::new();
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
            d.push(&wire[split..]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
            assert_eq!(got, vec![b"hello".to_vec(), b"world!".to_vec()]);
            assert_eq!(d.finish(), Ok(()));
        }
    }

    #[test]
    fn refuses_oversize_frame_from_its_prefix_alone() {
        let mut d = FrameDecoder::new(1024);
        d.push(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_frame(), Err(FrameError::Oversize { len: 0xffff_ffff, max: 1024 }));
        assert_eq!(encode_frame(&[0; 11], 10), Err(FrameError::Oversize { len: 11, max: 10 }));
        assert_eq!(frame_len([0, 0, 0, 11], 10), Err(FrameError::Oversize { len: 11, max: 10 }));
    }

    #[test]
    fn limit_is_capped_at_the_protocol_maximum() {
        let too_big = (LIMITS.max_frame_len + 1) as u32;
        assert_eq!(
            frame_len(too_big.to_be_bytes(), usize::MAX),
            Err(FrameError::Oversize { len: LIMITS.max_frame_len + 1, max: LIMITS.max_frame_len })
        );
    }

    #[test]
    fn refuses_empty_frames() {
        assert_eq!(encode_frame(&[], 10), Err(FrameError::Empty));
        let mut d = FrameDecoder::new(10);
        d.push(&[0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::Empty));
    }

    #[test]
    fn reports_truncated_stream() {
        let mut d = FrameDecoder::new(10);
        d.push(&[0, 0, 0, 5, 1, 2]);
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.finish(), Err(FrameError::Truncated { missing: 3 }));
        let mut d = FrameDecoder::new(10);
        d.push(&[0, 0]);
        assert_eq!(d.finish(), Err(FrameError::Truncated { missing: 2 }));
    }
}
