//! Keyed derivations (HMAC-SHA256 with the project key): UIDs, pseudonyms, date offsets.
//!
//! Keyed, never plain hashes: an unkeyed hash of a Patient ID is reversed by hashing the
//! hospital's ID list. Everything derives from the key alone, so runs on different machines
//! (or a cluster) agree without sharing state. See docs/plan.md for the exact definitions.

use std::fmt::Write as _;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of the UIDs of the DICOM registry, which never identify anyone and stay unchanged.
pub const REGISTRY_UID_PREFIX: &str = "1.2.840.10008.";

#[derive(Clone)]
pub struct Keys {
    mac: HmacSha256,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)") // the key never reaches a log
    }
}

impl Keys {
    pub fn new(key: &[u8]) -> Keys {
        // HMAC accepts keys of any length.
        let mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        Keys { mac }
    }

    fn h(&self, label: &str, data: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(label.as_bytes());
        m.update(&[0]);
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// `2.25.<decimal of the first 128 bits>`; empty and registry UIDs are unchanged.
    pub fn uid(&self, uid: &str) -> String {
        let u = uid.trim_end_matches(['\0', ' ']);
        if u.is_empty() || u.starts_with(REGISTRY_UID_PREFIX) {
            return u.to_string();
        }
        let d = self.h("dicomscrub/uid", u.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        // at most 5 + 39 characters: one allocation, no regrowth
        let mut out = String::with_capacity(44);
        let _ = write!(out, "2.25.{}", u128::from_be_bytes(first));
        out
    }

    /// 16 characters of base32 (RFC 4648, no padding) of the keyed hash of the trimmed value.
    pub fn pseudonym(&self, value: &str) -> String {
        let v = value.trim_matches(' ');
        if v.is_empty() {
            return String::new();
        }
        let d = self.h("dicomscrub/pseudonym", v.as_bytes());
        base32(&d[..10]) // 80 bits = 16 characters
    }

    /// Days (negative, 1..=max_days back) every date of this patient's files moves by.
    pub fn date_offset_days(&self, source: &str, max_days: u32) -> i64 {
        let d = self.h("dicomscrub/date", source.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        let max = u64::from(max_days.max(1));
        -((u64::from_be_bytes(first) % max) as i64 + 1)
    }
}

fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in data {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_rfc4648_vectors() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
    }

    #[test]
    fn uid_shape_and_stability() {
        let k = Keys::new(b"k");
        let a = k.uid("1.2.3.4");
        assert!(a.starts_with("2.25.") && a.len() <= 64);
        assert_eq!(a, k.uid("1.2.3.4\0"));
        assert_ne!(a, Keys::new(b"other").uid("1.2.3.4"));
        assert_eq!(
            k.uid("1.2.840.10008.5.1.4.1.1.2"),
            "1.2.840.10008.5.1.4.1.1.2"
        );
        assert_eq!(k.uid(""), "");
    }

    #[test]
    fn offsets_in_range() {
        let k = Keys::new(b"k");
        for p in ["", "a", "123", "PAT-9"] {
            let d = k.date_offset_days(p, 10);
            assert!((-10..=-1).contains(&d));
        }
        assert_eq!(k.pseudonym("  X "), k.pseudonym("X"));
        assert_eq!(k.pseudonym("X").len(), 16);
    }
}
