//! Value Representations (PS3.5 §6.2), with the properties the reader and writer need.

use std::fmt;

#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum VR {
    AE,
    AS,
    AT,
    CS,
    DA,
    DS,
    DT,
    FD,
    FL,
    IS,
    LO,
    LT,
    OB,
    OD,
    OF,
    OL,
    OV,
    OW,
    PN,
    SH,
    SL,
    SQ,
    SS,
    ST,
    SV,
    TM,
    UC,
    UI,
    UL,
    UN,
    UR,
    US,
    UT,
    UV,
}

impl VR {
    pub const ALL: [VR; 34] = [
        VR::AE,
        VR::AS,
        VR::AT,
        VR::CS,
        VR::DA,
        VR::DS,
        VR::DT,
        VR::FD,
        VR::FL,
        VR::IS,
        VR::LO,
        VR::LT,
        VR::OB,
        VR::OD,
        VR::OF,
        VR::OL,
        VR::OV,
        VR::OW,
        VR::PN,
        VR::SH,
        VR::SL,
        VR::SQ,
        VR::SS,
        VR::ST,
        VR::SV,
        VR::TM,
        VR::UC,
        VR::UI,
        VR::UL,
        VR::UN,
        VR::UR,
        VR::US,
        VR::UT,
        VR::UV,
    ];

    /// The VR of an explicit header's two bytes: a table indexed by the two letters (every
    /// element of every file goes through here; a scan of the 34 VRs was a tenth of an
    /// in-memory rewrite).
    pub fn from_bytes(b: [u8; 2]) -> Option<VR> {
        let (x, y) = (b[0].wrapping_sub(b'A'), b[1].wrapping_sub(b'A'));
        if x >= 26 || y >= 26 {
            return None;
        }
        VR_BY_LETTERS[usize::from(x) * 26 + usize::from(y)]
    }

    pub fn parse(s: &str) -> Option<VR> {
        let b = s.as_bytes();
        if b.len() == 2 {
            VR::from_bytes([b[0], b[1]])
        } else {
            None
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            VR::AE => "AE",
            VR::AS => "AS",
            VR::AT => "AT",
            VR::CS => "CS",
            VR::DA => "DA",
            VR::DS => "DS",
            VR::DT => "DT",
            VR::FD => "FD",
            VR::FL => "FL",
            VR::IS => "IS",
            VR::LO => "LO",
            VR::LT => "LT",
            VR::OB => "OB",
            VR::OD => "OD",
            VR::OF => "OF",
            VR::OL => "OL",
            VR::OV => "OV",
            VR::OW => "OW",
            VR::PN => "PN",
            VR::SH => "SH",
            VR::SL => "SL",
            VR::SQ => "SQ",
            VR::SS => "SS",
            VR::ST => "ST",
            VR::SV => "SV",
            VR::TM => "TM",
            VR::UC => "UC",
            VR::UI => "UI",
            VR::UL => "UL",
            VR::UN => "UN",
            VR::UR => "UR",
            VR::US => "US",
            VR::UT => "UT",
            VR::UV => "UV",
        }
    }

    pub fn as_bytes(self) -> [u8; 2] {
        let b = self.as_str().as_bytes();
        [b[0], b[1]]
    }

    /// Explicit VR elements of these VRs have 2 reserved bytes and a 4-byte length.
    pub fn has_long_length(self) -> bool {
        matches!(
            self,
            VR::OB
                | VR::OD
                | VR::OF
                | VR::OL
                | VR::OV
                | VR::OW
                | VR::SQ
                | VR::SV
                | VR::UC
                | VR::UN
                | VR::UR
                | VR::UT
                | VR::UV
        )
    }

    /// Character string VRs: their values are text, padded with a space (UI with NUL).
    pub fn is_string(self) -> bool {
        matches!(
            self,
            VR::AE
                | VR::AS
                | VR::CS
                | VR::DA
                | VR::DS
                | VR::DT
                | VR::IS
                | VR::LO
                | VR::LT
                | VR::PN
                | VR::SH
                | VR::ST
                | VR::TM
                | VR::UC
                | VR::UI
                | VR::UR
                | VR::UT
        )
    }

    /// Text VRs whose values are decoded with the Specific Character Set (the others are ASCII).
    pub fn uses_charset(self) -> bool {
        matches!(
            self,
            VR::LO | VR::LT | VR::PN | VR::SH | VR::ST | VR::UC | VR::UT
        )
    }

    /// Free-text VRs a `clean` action works on.
    pub fn is_cleanable_text(self) -> bool {
        self.uses_charset()
    }

    pub fn pad_byte(self) -> u8 {
        match self {
            VR::UI | VR::OB | VR::UN => 0,
            _ => b' ',
        }
    }

    /// Maximum value length in characters (per value), where the standard sets one.
    pub fn max_len(self) -> Option<usize> {
        Some(match self {
            VR::AE | VR::CS | VR::DS | VR::SH => 16,
            VR::AS => 4,
            VR::DA => 8,
            VR::DT => 26,
            VR::IS => 12,
            VR::LO | VR::PN | VR::UI => 64,
            VR::TM => 14,
            _ => return None,
        })
    }

    /// Values that are not multi-valued with `\` (free text).
    pub fn is_single_text(self) -> bool {
        matches!(self, VR::LT | VR::ST | VR::UT | VR::UR)
    }
}

impl fmt::Display for VR {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `VR_BY_LETTERS[(first - 'A') * 26 + (second - 'A')]`.
static VR_BY_LETTERS: [Option<VR>; 26 * 26] = {
    let mut t = [None; 26 * 26];
    let mut i = 0;
    while i < VR::ALL.len() {
        let vr = VR::ALL[i];
        let b = vr.as_str().as_bytes();
        t[(b[0] - b'A') as usize * 26 + (b[1] - b'A') as usize] = Some(vr);
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all() {
        for vr in VR::ALL {
            assert_eq!(VR::from_bytes(vr.as_bytes()), Some(vr));
            assert_eq!(VR::parse(vr.as_str()), Some(vr));
        }
        for b in [
            *b"XX",
            *b"ZZ",
            *b"ae",
            *b"A ",
            [0, 0],
            [0xFF, 0xFF],
            *b"@A",
            *b"A[",
        ] {
            assert_eq!(VR::from_bytes(b), None, "{b:?}");
        }
        let valid = (0..=255u8)
            .flat_map(|x| (0..=255u8).map(move |y| [x, y]))
            .filter(|&b| VR::from_bytes(b).is_some())
            .count();
        assert_eq!(valid, VR::ALL.len());
        assert!(VR::SQ.has_long_length() && !VR::US.has_long_length());
    }
}
