//! The standard data dictionary (generated from pydicom's, see python/tools/gen_dictionary.py):
//! the VR of implicit-VR elements and whether a public tag is known at all.

#[rustfmt::skip]
mod generated;
#[rustfmt::skip]
mod private_generated;

use std::sync::OnceLock;

use crate::fasthash::FastMap;
use crate::tag::Tag;
use crate::vr::VR;

pub use generated::DICOM_EDITION;

pub struct DictEntry {
    pub tag: u32,
    pub vr: VR,
    pub vm: &'static str,
    pub keyword: &'static str,
    pub retired: bool,
}

pub struct MaskEntry {
    pub mask: u32,
    pub value: u32,
    pub vr: VR,
    pub vm: &'static str,
    pub keyword: &'static str,
    pub retired: bool,
}

/// Tag -> position in `ENTRIES`: every kept element of every file asks whether its tag is known
/// (a binary search was 5 % of an in-memory rewrite).
fn index() -> &'static FastMap<u32, u16> {
    static INDEX: OnceLock<FastMap<u32, u16>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut m = FastMap::with_capacity_and_hasher(generated::ENTRIES.len(), Default::default());
        for (i, e) in generated::ENTRIES.iter().enumerate() {
            m.insert(e.tag, i as u16);
        }
        m
    })
}

/// Keyword and VR of a public tag, exact entries first, then repeating groups (50xx, 60xx...).
pub fn lookup(tag: Tag) -> Option<(VR, &'static str)> {
    if let Some(&i) = index().get(&tag.0) {
        let e = &generated::ENTRIES[i as usize];
        return Some((e.vr, e.keyword));
    }
    generated::MASKS
        .iter()
        .find(|m| tag.0 & m.mask == m.value)
        .map(|m| (m.vr, m.keyword))
}

/// The VR pydicom's private dictionary gives a private data element of a known creator: the
/// exact tag, then `ggggxxee` (any block), then `ggxxxxee`, as pydicom looks it up.
pub fn private_vr(tag: Tag, creator: &str) -> Option<VR> {
    let table = private_generated::PRIVATE;
    let start = table.partition_point(|e| e.0 < creator);
    let rows = &table[start..start + table[start..].partition_point(|e| e.0 == creator)];
    if rows.is_empty() {
        return None;
    }
    let (g, e) = (tag.group(), tag.element());
    let keys = [
        format!("{g:04X}{e:04X}"),
        format!("{g:04X}xx{:02X}", e & 0xFF),
        format!("{:02X}xxxx{:02X}", g >> 8, e & 0xFF),
    ];
    keys.iter().find_map(|k| {
        rows.binary_search_by(|r| r.1.cmp(k.as_str()))
            .ok()
            .map(|i| rows[i].2)
    })
}

/// The VR an implicit-VR element is read with.
pub fn implicit_vr(tag: Tag) -> VR {
    if tag.is_group_length() {
        return VR::UL;
    }
    if tag.is_private() {
        return if tag.is_private_creator() {
            VR::LO
        } else {
            VR::UN
        };
    }
    lookup(tag).map_or(VR::UN, |(vr, _)| vr)
}

/// Whether a public tag is in the dictionary (exact entries and repeating groups; group
/// lengths are not entries, as in pydicom).
pub fn is_known(tag: Tag) -> bool {
    lookup(tag).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(lookup(Tag(0x0010_0010)), Some((VR::PN, "PatientName")));
        assert_eq!(lookup(Tag(0x6002_3000)).map(|e| e.1), Some("OverlayData"));
        assert_eq!(implicit_vr(Tag(0x0009_0010)), VR::LO);
        assert_eq!(implicit_vr(Tag(0x0009_1010)), VR::UN);
        assert_eq!(implicit_vr(Tag(0x0008_0000)), VR::UL);
        assert!(!is_known(Tag(0x0010_9999)));
        assert!(generated::ENTRIES.windows(2).all(|w| w[0].tag < w[1].tag));
        let p = private_generated::PRIVATE;
        assert!(p.windows(2).all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1)));
        assert_eq!(
            private_vr(Tag(0x2001_103C), "Philips Imaging DD 002"),
            Some(VR::SQ)
        );
        assert_eq!(private_vr(Tag(0x2001_103C), "nobody"), None);
    }
}
