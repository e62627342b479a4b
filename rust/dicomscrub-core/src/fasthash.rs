//! A small multiplicative hasher for the per-element lookups (plan tags and VRs, counters).
//! SipHash guards maps whose keys an attacker inserts; these maps are filled from the plan only
//! (a file's tags are looked up, never inserted), so a cheap hash is safe, and it was a quarter
//! of the rewrite's time under callgrind.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // A product's low bits depend only on the key's low bits, and the map picks buckets
        // with them: tags sharing an element number ((0008,0020), (0010,0020)...) would share
        // a bucket. The well-mixed high bits go low (as rustc-hash 2 does).
        self.0.rotate_left(26)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.add(u64::from(v));
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
}

/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_and_spread() {
        let mut m: FastMap<u32, u32> = FastMap::default();
        for t in 0..5000u32 {
            m.insert(0x0010_0000 | t, t);
        }
        assert_eq!(m.get(&0x0010_0010), Some(&0x10));
        let mut s: FastMap<&str, u32> = FastMap::default();
        s.insert("uid", 1);
        s.insert("uie", 2);
        assert_eq!(s["uid"], 1);
    }
}
