//! DICOM tags: `(GGGG,EEEE)` as one `u32`, displayed the way the standard and pydicom print them.

use std::fmt;

/// A data element tag, group in the high 16 bits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tag(pub u32);

impl Tag {
    pub const fn new(group: u16, element: u16) -> Self {
        Tag(((group as u32) << 16) | element as u32)
    }
    pub const fn group(self) -> u16 {
        (self.0 >> 16) as u16
    }
    pub const fn element(self) -> u16 {
        self.0 as u16
    }
    /// Odd groups are private, except the ones PS3.5 §7.8.1 forbids.
    pub const fn is_private(self) -> bool {
        let g = self.group();
        g % 2 == 1 && !matches!(g, 0x0001 | 0x0003 | 0x0005 | 0x0007 | 0xFFFF)
    }
    /// `(gggg,0010)`–`(gggg,00FF)` in a private group: the creator that reserves block `xx`.
    pub const fn is_private_creator(self) -> bool {
        self.is_private() && self.element() >= 0x0010 && self.element() <= 0x00FF
    }
    /// For a private data element `(gggg,xxee)`, the creator tag `(gggg,00xx)`.
    pub const fn private_creator_tag(self) -> Option<Tag> {
        let block = self.element() >> 8;
        if self.is_private() && block >= 0x10 {
            Some(Tag::new(self.group(), block))
        } else {
            None
        }
    }
    pub const fn is_group_length(self) -> bool {
        self.element() == 0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:04X},{:04X})", self.group(), self.element())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub const ITEM: Tag = Tag(0xFFFE_E000);
pub const ITEM_DELIMITATION: Tag = Tag(0xFFFE_E00D);
pub const SEQUENCE_DELIMITATION: Tag = Tag(0xFFFE_E0DD);

pub const FILE_META_GROUP_LENGTH: Tag = Tag(0x0002_0000);
pub const FILE_META_VERSION: Tag = Tag(0x0002_0001);
pub const MEDIA_STORAGE_SOP_CLASS_UID: Tag = Tag(0x0002_0002);
pub const MEDIA_STORAGE_SOP_INSTANCE_UID: Tag = Tag(0x0002_0003);
pub const TRANSFER_SYNTAX_UID: Tag = Tag(0x0002_0010);
pub const IMPLEMENTATION_CLASS_UID: Tag = Tag(0x0002_0012);
pub const IMPLEMENTATION_VERSION_NAME: Tag = Tag(0x0002_0013);
pub const SPECIFIC_CHARACTER_SET: Tag = Tag(0x0008_0005);
pub const SOP_CLASS_UID: Tag = Tag(0x0008_0016);
pub const SOP_INSTANCE_UID: Tag = Tag(0x0008_0018);
pub const PATIENT_ID: Tag = Tag(0x0010_0020);
pub const STUDY_INSTANCE_UID: Tag = Tag(0x0020_000D);
pub const SERIES_INSTANCE_UID: Tag = Tag(0x0020_000E);
pub const PIXEL_DATA: Tag = Tag(0x7FE0_0010);
pub const FLOAT_PIXEL_DATA: Tag = Tag(0x7FE0_0008);
pub const DOUBLE_FLOAT_PIXEL_DATA: Tag = Tag(0x7FE0_0009);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parts() {
        let t = Tag::new(0x0010, 0x0010);
        assert_eq!(t.to_string(), "(0010,0010)");
        assert_eq!(t.group(), 0x10);
        assert!(!t.is_private());
        assert!(Tag(0x0009_0010).is_private_creator());
        assert_eq!(
            Tag(0x0029_1008).private_creator_tag(),
            Some(Tag(0x0029_0010))
        );
        assert_eq!(Tag(0x0029_0008).private_creator_tag(), None);
        assert!(!Tag(0xFFFF_0010).is_private());
    }
}
