//! Sealed files: a body in, the file's bytes out — a header line naming the body's BLAKE3
//! digest, then the body; and back, a file's bytes in, its body out only if it is intact.
//! What forge reads back (the build plan, a packed store's index) uses it, so a damaged
//! file is noticed and rebuilt instead of trusted.

use std::ops::Deref;
use std::path::Path;

use super::Digest;

/// The bytes of a sealed file whose header is `tag` (e.g. `"forge-plan 1 "`).
pub fn seal(tag: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = header(tag, body).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The header line of a sealed file, for a writer that writes the body after it itself
/// (without copying a large body next to it).
pub fn header(tag: &str, body: &[u8]) -> String {
    header_for(tag, &Digest::of_bytes(body))
}

/// The header line of a sealed file whose body has `digest`, for a writer that hashes the
/// body as it writes it (the header, always the same length, written over a placeholder).
pub fn header_for(tag: &str, digest: &Digest) -> String {
    format!("{tag}{digest}\n")
}

/// The body of the sealed file at `path`, if it exists, has the header `tag` and matches
/// the digest the header names.
pub fn read_sealed(path: &Path, tag: &str) -> Option<Body> {
    let bytes = std::fs::read(path).ok()?;
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    let sum = Digest::from_hex(header.strip_prefix(tag)?)?;
    let body = Body {
        bytes,
        start: newline + 1,
    };
    (Digest::of_bytes(&body) == sum).then_some(body)
}

/// A verified body, kept in the buffer it was read into (a plan is tens of megabytes: no
/// copy on the no-op path).
pub struct Body {
    bytes: Vec<u8>,
    start: usize,
}

impl Deref for Body {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_body_reads_back_and_any_damage_or_other_tag_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        let sealed = seal("forge-test 1 ", b"the body");
        std::fs::write(&path, &sealed).unwrap();
        assert_eq!(&*read_sealed(&path, "forge-test 1 ").unwrap(), b"the body");
        assert!(read_sealed(&path, "forge-other 1 ").is_none());
        for i in 0..sealed.len() {
            let mut damaged = sealed.clone();
            damaged[i] ^= 1;
            std::fs::write(&path, &damaged).unwrap();
            assert!(read_sealed(&path, "forge-test 1 ").is_none(), "byte {i}");
        }
        assert!(read_sealed(&dir.path().join("missing"), "forge-test 1 ").is_none());
    }
}
