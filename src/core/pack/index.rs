//! A pack store's index: the bytes of `<dir>/index` in, the packs it names and the row of
//! each key (which pack, where, how long, the digest of the body) out, found by binary
//! search over fixed-width rows without decoding the rest; and back, packs and rows in, the
//! index's bytes out. The index is sealed (`core::sealed`): a damaged one reads as empty.

use std::path::Path;

use crate::core::Digest;
use crate::core::sealed::{Body, read_sealed, seal};

/// The header of an index file, before the digest of its body.
pub(super) const TAG: &str = "forge-pack-index 1 ";

/// key (32) + pack (4) + offset (8) + len (4) + digest (32).
const ROW: usize = 80;

/// Where one entry's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Row {
    pub key: Digest,
    /// The pack's position in the index's pack list.
    pub pack: u32,
    pub offset: u64,
    pub len: u32,
    /// The body's digest: a body read back is used only if it matches.
    pub digest: Digest,
}

impl Row {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key.0);
        out.extend_from_slice(&self.pack.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.digest.0);
    }

    fn decode(bytes: &[u8]) -> Row {
        let digest = |at: usize| Digest(bytes[at..at + 32].try_into().expect("32 bytes"));
        Row {
            key: digest(0),
            pack: u32::from_le_bytes(bytes[32..36].try_into().expect("4 bytes")),
            offset: u64::from_le_bytes(bytes[36..44].try_into().expect("8 bytes")),
            len: u32::from_le_bytes(bytes[44..48].try_into().expect("4 bytes")),
            digest: digest(48),
        }
    }
}

/// A pack file the index names, and how many bytes it had when it was named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PackFile {
    pub name: String,
    pub size: u64,
}

/// Whether `name` is one a pack may have: `pack-` and letters or digits, nothing that could
/// leave the directory.
pub(super) fn is_pack_name(name: &str) -> bool {
    name.strip_prefix("pack-")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A read index: its packs, and its rows left in the verified bytes they were read in.
#[derive(Default)]
pub(super) struct Index {
    pub packs: Vec<PackFile>,
    body: Option<Body>,
    rows_start: usize,
    count: usize,
}

impl Index {
    /// The index at `path`; empty when it is missing, damaged or malformed.
    pub fn read(path: &Path) -> Index {
        read_sealed(path, TAG)
            .and_then(Index::parse)
            .unwrap_or_default()
    }

    fn parse(body: Body) -> Option<Index> {
        let mut at = 0usize;
        let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
            let bytes = body.get(*at..at.checked_add(n)?)?;
            *at += n;
            Some(bytes)
        };
        let pack_count = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?);
        let mut packs = Vec::new();
        for _ in 0..pack_count {
            let name_len = usize::from(take(&mut at, 1)?[0]);
            let name = std::str::from_utf8(take(&mut at, name_len)?)
                .ok()?
                .to_owned();
            let size = u64::from_le_bytes(take(&mut at, 8)?.try_into().ok()?);
            if !is_pack_name(&name) {
                return None;
            }
            packs.push(PackFile { name, size });
        }
        let count = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?) as usize;
        if body.len() - at != count.checked_mul(ROW)? {
            return None;
        }
        Some(Index {
            packs,
            body: Some(body),
            rows_start: at,
            count,
        })
    }

    fn row(&self, i: usize) -> Row {
        let body = self.body.as_ref().expect("an index with rows has a body");
        let at = self.rows_start + i * ROW;
        Row::decode(&body[at..at + ROW])
    }

    /// The row of `key`, if the index has one naming a pack it lists.
    pub fn find(&self, key: &Digest) -> Option<Row> {
        let (mut low, mut high) = (0, self.count);
        while low < high {
            let middle = low + (high - low) / 2;
            let row = self.row(middle);
            match row.key.cmp(key) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => {
                    return ((row.pack as usize) < self.packs.len()).then_some(row);
                }
            }
        }
        None
    }

    /// Every row, in key order.
    pub fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        (0..self.count)
            .map(|i| self.row(i))
            .filter(|row| (row.pack as usize) < self.packs.len())
    }

    /// The bytes of an index naming `packs`, with `rows` (sorted by key, one per key).
    pub fn encode(packs: &[PackFile], rows: &[Row]) -> Vec<u8> {
        let mut body = Vec::with_capacity(8 + packs.len() * 48 + rows.len() * ROW);
        body.extend_from_slice(&(packs.len() as u32).to_le_bytes());
        for pack in packs {
            body.push(pack.name.len() as u8);
            body.extend_from_slice(pack.name.as_bytes());
            body.extend_from_slice(&pack.size.to_le_bytes());
        }
        body.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        for row in rows {
            row.encode(&mut body);
        }
        seal(TAG, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: u8, pack: u32) -> Row {
        Row {
            key: Digest([key; 32]),
            pack,
            offset: u64::from(key) * 1000,
            len: u32::from(key) + 7,
            digest: Digest([key ^ 0xff; 32]),
        }
    }

    #[test]
    fn rows_are_found_by_key_and_a_damaged_index_reads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        let packs = vec![
            PackFile {
                name: "pack-a1".into(),
                size: 10,
            },
            PackFile {
                name: "pack-b2".into(),
                size: 20,
            },
        ];
        let rows: Vec<Row> = (0..50).map(|k| row(k * 3, u32::from(k % 2))).collect();
        let bytes = Index::encode(&packs, &rows);
        std::fs::write(&path, &bytes).unwrap();
        let index = Index::read(&path);
        assert_eq!(index.packs, packs);
        assert_eq!(index.rows().collect::<Vec<_>>(), rows);
        for k in 0..150u8 {
            let found = index.find(&Digest([k; 32]));
            assert_eq!(found, (k % 3 == 0).then(|| row(k, u32::from((k / 3) % 2))));
        }
        let mut damaged = bytes.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        std::fs::write(&path, &damaged).unwrap();
        assert!(Index::read(&path).find(&Digest([0; 32])).is_none());
        assert!(Index::read(&dir.path().join("missing")).packs.is_empty());
    }

    #[test]
    fn only_plain_pack_names_are_accepted() {
        assert!(is_pack_name("pack-Ab3"));
        for bad in ["pack-", "pack-../x", "index", "pack-a/b", "xpack-a"] {
            assert!(!is_pack_name(bad), "{bad}");
        }
    }
}
