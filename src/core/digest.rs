//! Content digests: bytes or a file in, a 32-byte BLAKE3 `Digest` out, printed as 64 lowercase
//! hex characters (the form used in cache paths and cache files).
//!
//! One type for every content address in Forge (CAS keys, action keys, stat-cache entries) so
//! that they cannot be confused with arbitrary strings.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

/// A BLAKE3 hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `data`.
    pub fn of_bytes(data: &[u8]) -> Digest {
        Digest(*blake3::hash(data).as_bytes())
    }

    /// The digest of everything `reader` yields.
    pub fn of_reader(reader: &mut impl Read) -> io::Result<Digest> {
        let mut hasher = blake3::Hasher::new();
        // `update_reader` uses a 64 KiB buffer internally; fine for the small files builds
        // mostly produce and for large ones alike.
        hasher.update_reader(reader)?;
        Ok(Digest(*hasher.finalize().as_bytes()))
    }

    /// The digest of the file at `path` (following symlinks).
    pub fn of_file(path: &Path) -> io::Result<Digest> {
        let mut file = std::fs::File::open(path)?;
        Digest::of_reader(&mut file)
    }

    /// 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
        out
    }

    /// Parses exactly 64 hex characters (either case); anything else is `None`.
    pub fn from_hex(text: &str) -> Option<Digest> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Digest(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

// Serialized as the hex string so JSON cache files stay readable and float-free.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Digest::from_hex(&text).ok_or_else(|| serde::de::Error::custom("invalid digest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let d = Digest::of_bytes(b"hello");
        let hex = d.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(Digest::from_hex(&hex), Some(d));
        assert_eq!(Digest::from_hex(&hex.to_uppercase()), Some(d));
        assert_eq!(Digest::from_hex(&hex[..63]), None);
        assert_eq!(Digest::from_hex(&format!("{}g", &hex[..63])), None);
        // Known BLAKE3 test vector for the empty input.
        assert_eq!(
            Digest::of_bytes(b"").to_hex(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn file_digest_matches_bytes_digest() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("f");
        std::fs::write(&path, b"content")?;
        assert_eq!(Digest::of_file(&path)?, Digest::of_bytes(b"content"));
        Ok(())
    }

    #[test]
    fn serde_uses_hex_strings() -> Result<(), serde_json::Error> {
        let d = Digest::of_bytes(b"x");
        let json = serde_json::to_string(&d)?;
        assert_eq!(json, format!("\"{}\"", d.to_hex()));
        let back: Digest = serde_json::from_str(&json)?;
        assert_eq!(back, d);
        Ok(())
    }
}
