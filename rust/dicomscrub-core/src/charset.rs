//! DICOM Specific Character Set (0008,0005): decoding and encoding of text values.
//!
//! The behaviour is that of pydicom 3.0.2 (`pydicom.charset` on top of Python's codecs), so a
//! value decodes here to the text pydicom shows for it:
//!
//! * Defined terms map to the codecs pydicom uses. Misspellings that pydicom repairs
//!   (`ISO IR 100`, `ISO_2022-IR 100`) are repaired the same way, and a term that Python's codec
//!   lookup accepts (`utf8`, `latin1`, `ISO_IR 100 ` with a stray space) selects that codec, for
//!   the codecs implemented here. Any other term falls back to the default repertoire, as in
//!   pydicom, and makes [`Charset::is_known`] false. A stand-alone term (`ISO_IR 192`, `GBK`,
//!   `GB18030`) as value 1 drops the other terms; as a later value it is dropped.
//! * The default repertoire (no value, `ISO_IR 6`, `ISO 2022 IR 6`) is ISO 8859-1, as in pydicom:
//!   bytes above 0x7F come out as Latin-1 characters. Latin-1 is exact ISO 8859-1 (not
//!   windows-1252), ISO_IR 148 is ISO 8859-9 and ISO_IR 166 is TIS-620; the CJK tables are
//!   Python's (JIS X 0208 as JIS0208.TXT, GB 18030 as its 2000 edition, and so on).
//! * Bytes that a codec cannot decode become U+FFFD where Python's `errors="replace"` puts them
//!   (pydicom warns and decodes with replacement characters); decoding never fails.
//! * Code extensions (ISO 2022): the value is cut before each ESC. A piece that starts with the
//!   escape sequence of one of the value's terms (or ESC ( B) is decoded with that term's codec;
//!   JIS X 0208 / 0212 pieces are decoded whole by the stateful ISO-2022-JP codec, the others
//!   switch back to the first term at the first delimiter (CR, LF, TAB, FF; for person names also
//!   `^`, `=` and `\`). A piece with an unknown escape sequence, or one that does not decode, is
//!   decoded whole with the first term's codec with replacement, escape bytes included.
//! * Encoding follows pydicom's `encode_string` (the first term that can encode a piece wins,
//!   else pydicom's longest-prefix split with escape sequences; JIS pieces are closed with the
//!   first term's escape sequence) applied to each piece between delimiters (`\`, `^`, `=`, CR,
//!   LF, TAB, FF), which is exactly how pydicom writes a person name.
//!
//! Deliberate differences from pydicom:
//! * `ISO 2022 IR 58` (GB 2312) is decoded and encoded like the other code extensions: its escape
//!   sequence ESC $ ) A is stripped on decoding and written on encoding (pydicom 3.0.2 keeps the
//!   escape bytes in the decoded text and writes GB 2312 bytes without any escape sequence, which
//!   it cannot read back). `ISO 2022 58` is read as `ISO 2022 IR 58` (pydicom: plain GB 2312).
//! * Encoding never loses anything: where pydicom would write `?` for a character no term can
//!   encode, or bytes that read back as other text, [`Charset::encode`] returns `None`. So
//!   U+00A5 and U+203E are not written as JIS X 0201 0x5C / 0x7E (read back as `\` and `~`,
//!   and 0x5C splits the value), nor U+3164 as EUC-KR A4 D4 (which does not decode); another
//!   term of the set may still encode them.
//! * Person names are decoded with `^`, `=` and `\` as delimiters besides the control characters
//!   (pydicom's `dcmread` decodes a PN value with the control characters only, its
//!   `PersonName` from bytes with `^` and a split at `=`); this only matters for values that
//!   omit the escape sequence after a delimiter.
//! * Text values are also cut at `\`, `^`, `=` and control characters before encoding, so a code
//!   extension is announced again after each of them (pydicom encodes a text value in one piece,
//!   which can leave a G1 set active across a line break that its own decoder then resets).
//! * Python codecs that are not DICOM character sets (`cp1252`, `koi8_r`, ...) are not
//!   implemented: such a term is unknown here (pydicom would use the Python codec).

use std::borrow::Cow;
use std::sync::OnceLock;

use encoding_rs::{
    Encoding, EUC_JP, EUC_KR, GB18030, GBK, ISO_8859_2, ISO_8859_3, ISO_8859_4, ISO_8859_5,
    ISO_8859_6, ISO_8859_7, ISO_8859_8,
};

/// A Specific Character Set as read from (0008,0005): one or more defined terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Charset {
    /// The terms as read (value padding removed); empty for the default repertoire.
    terms: Vec<String>,
    /// The encodings in use, in order (stand-alone rules applied); empty means the default.
    encs: Vec<Enc>,
    /// Some term was not recognised and stands in as the default repertoire.
    unknown: bool,
}

impl Charset {
    /// From the raw value bytes of (0008,0005) (backslash-separated terms, padded with
    /// spaces/NULs). Unknown terms fall back as pydicom does (default repertoire / ISO_IR 6) —
    /// recorded so that [`Charset::is_known`] says false.
    pub fn from_value(raw: &[u8]) -> Charset {
        // CS values are read as Latin-1 and only the end of the whole value is trimmed.
        let text: String = raw.iter().map(|&b| char::from(b)).collect();
        let text = text.trim_end_matches([' ', '\0']);
        if text.is_empty() {
            return Charset::default();
        }
        let terms: Vec<String> = text.split('\\').map(str::to_owned).collect();
        // pydicom reads an empty first value as ISO_IR 6 (an empty later value is the default too).
        let term_at = |i: usize| -> &str {
            match terms.get(i).map(String::as_str) {
                Some("") if i == 0 => "ISO_IR 6",
                Some(t) => t,
                None => "",
            }
        };
        let mut unknown = false;
        let mut encs = Vec::with_capacity(terms.len());
        for i in 0..terms.len() {
            let (enc, known) = resolve_term(term_at(i));
            unknown |= !known;
            encs.push(enc);
        }
        if terms.len() > 1 {
            if STAND_ALONE.contains(&term_at(0)) {
                encs.truncate(1);
            } else {
                let mut i = 0;
                encs.retain(|_| {
                    let keep = i == 0 || !STAND_ALONE.contains(&term_at(i));
                    i += 1;
                    keep
                });
            }
        }
        Charset {
            terms,
            encs,
            unknown,
        }
    }

    /// The default character repertoire (ISO_IR 6). Like pydicom, it decodes and encodes as
    /// ISO 8859-1, so bytes above 0x7F are read as Latin-1 rather than replaced.
    pub fn default_repertoire() -> Charset {
        Charset::default()
    }

    /// False when a term was not recognised (neither a defined term, nor a misspelling that
    /// pydicom repairs, nor a Python codec name) and the default repertoire stands in for it.
    pub fn is_known(&self) -> bool {
        !self.unknown
    }

    /// Decode a text value (the whole value: several values stay separated by `\`). The code
    /// extensions switch back to the first term at CR, LF, TAB and FF, and for a person name
    /// (`is_person_name`) also at `^`, `=` and `\`. Bytes that cannot be decoded become U+FFFD
    /// as in pydicom (which decodes with `errors="replace"` after a warning).
    pub fn decode(&self, bytes: &[u8], is_person_name: bool) -> String {
        let delims = if is_person_name {
            PN_DELIMS
        } else {
            TEXT_DELIMS
        };
        decode_bytes(bytes, self.encodings(), delims)
    }

    /// Encode text in this character set, `None` if some character cannot be encoded (no
    /// lossy output: the result always decodes back to `text`). For ISO 2022 code extensions the
    /// escape sequences are those pydicom's `encode_string` writes, for each piece of the text
    /// between delimiters (`\`, `^`, `=`, CR, LF, TAB, FF).
    pub fn encode(&self, text: &str) -> Option<Vec<u8>> {
        let encs = self.encodings();
        // ASCII text whose first encoding writes ASCII as itself (most new values: UIDs,
        // pseudonyms, dummies): the bytes are the text, and they read back as it.
        if text.is_ascii() && !text.as_bytes().contains(&ESC) && encs[0].codec.ascii_is_identity() {
            return Some(text.as_bytes().to_vec());
        }
        let mut out = Vec::with_capacity(text.len());
        let mut piece: Vec<char> = Vec::new();
        for c in text.chars() {
            if ENCODE_DELIMS.contains(&c) {
                if !piece.is_empty() {
                    out.extend(encode_string(&piece, encs)?);
                    piece.clear();
                }
                // Every delimiter is ASCII.
                out.push(u8::try_from(u32::from(c)).ok()?);
            } else {
                piece.push(c);
            }
        }
        if !piece.is_empty() {
            out.extend(encode_string(&piece, encs)?);
        }
        // Never hand out bytes that read back as other text (pydicom can write such bytes,
        // e.g. for text with ESC, or with ISO 2022 IR 87 as the first term).
        if self.decode(&out, true) != text || self.decode(&out, false) != text {
            return None;
        }
        Some(out)
    }

    fn encodings(&self) -> &[Enc] {
        if self.encs.is_empty() {
            &DEFAULT_ENCS
        } else {
            &self.encs
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Terms

/// One encoding of a character set: the codec and the Python encoding name pydicom would use
/// (the name decides which escape sequences are accepted and written, as in pydicom).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Enc {
    name: Cow<'static, str>,
    codec: Codec,
}

/// The Python codecs behind the supported character sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Ascii,
    Latin1,
    Iso8859_2,
    Iso8859_3,
    Iso8859_4,
    Iso8859_5,
    Iso8859_6,
    Iso8859_7,
    Iso8859_8,
    Iso8859_9,
    Tis620,
    ShiftJis,
    EucKr,
    Gb2312,
    Gbk,
    Gb18030,
    Utf8,
    Iso2022Jp,
    Iso2022Jp2,
}

impl Codec {
    /// Whether every ASCII character encodes as its own byte and such bytes decode back to it
    /// (not so for Shift JIS, where 0x5C and 0x7E are yen and overline, nor for ISO 2022 JP).
    fn ascii_is_identity(self) -> bool {
        !matches!(
            self,
            Codec::ShiftJis | Codec::Iso2022Jp | Codec::Iso2022Jp2 | Codec::EucKr | Codec::Gb2312
        )
    }
}

const ESC: u8 = 0x1B;
/// pydicom's `default_encoding`.
const PY_DEFAULT: &str = "iso8859";
const PY_SHIFT_JIS: &str = "shift_jis";
const PY_JP: &str = "iso2022_jp";
const PY_JP2: &str = "iso2022_jp_2";

static DEFAULT_ENCS: [Enc; 1] = [Enc {
    name: Cow::Borrowed(PY_DEFAULT),
    codec: Codec::Latin1,
}];

/// Delimiters that switch a code extension back to the first term (pydicom's TEXT_VR_DELIMS).
const TEXT_DELIMS: &[u8] = b"\r\n\t\x0c";
/// For person names, also the component, group and value separators.
const PN_DELIMS: &[u8] = b"\r\n\t\x0c^=\\";
/// Text is encoded piece by piece between these.
const ENCODE_DELIMS: [char; 7] = ['\\', '^', '=', '\r', '\n', '\t', '\x0c'];

/// Terms that do not allow code extensions.
const STAND_ALONE: [&str; 3] = ["ISO_IR 192", "GBK", "GB18030"];

/// Defined terms: (term, Python encoding name, codec), as pydicom's `python_encoding`.
const TERMS: &[(&str, &str, Codec)] = &[
    ("", PY_DEFAULT, Codec::Latin1),
    ("ISO_IR 6", PY_DEFAULT, Codec::Latin1),
    ("ISO_IR 13", PY_SHIFT_JIS, Codec::ShiftJis),
    ("ISO_IR 100", "latin_1", Codec::Latin1),
    ("ISO_IR 101", "iso8859_2", Codec::Iso8859_2),
    ("ISO_IR 109", "iso8859_3", Codec::Iso8859_3),
    ("ISO_IR 110", "iso8859_4", Codec::Iso8859_4),
    ("ISO_IR 126", "iso_ir_126", Codec::Iso8859_7),
    ("ISO_IR 127", "iso_ir_127", Codec::Iso8859_6),
    ("ISO_IR 138", "iso_ir_138", Codec::Iso8859_8),
    ("ISO_IR 144", "iso_ir_144", Codec::Iso8859_5),
    ("ISO_IR 148", "iso_ir_148", Codec::Iso8859_9),
    ("ISO_IR 166", "iso_ir_166", Codec::Tis620),
    ("ISO 2022 IR 6", PY_DEFAULT, Codec::Latin1),
    ("ISO 2022 IR 13", PY_SHIFT_JIS, Codec::ShiftJis),
    ("ISO 2022 IR 87", PY_JP, Codec::Iso2022Jp),
    ("ISO 2022 IR 100", "latin_1", Codec::Latin1),
    ("ISO 2022 IR 101", "iso8859_2", Codec::Iso8859_2),
    ("ISO 2022 IR 109", "iso8859_3", Codec::Iso8859_3),
    ("ISO 2022 IR 110", "iso8859_4", Codec::Iso8859_4),
    ("ISO 2022 IR 126", "iso_ir_126", Codec::Iso8859_7),
    ("ISO 2022 IR 127", "iso_ir_127", Codec::Iso8859_6),
    ("ISO 2022 IR 138", "iso_ir_138", Codec::Iso8859_8),
    ("ISO 2022 IR 144", "iso_ir_144", Codec::Iso8859_5),
    ("ISO 2022 IR 148", "iso_ir_148", Codec::Iso8859_9),
    ("ISO 2022 IR 149", "euc_kr", Codec::EucKr),
    ("ISO 2022 IR 159", PY_JP2, Codec::Iso2022Jp2),
    ("ISO 2022 IR 166", "iso_ir_166", Codec::Tis620),
    ("ISO 2022 IR 58", "iso_ir_58", Codec::Gb2312),
    ("ISO_IR 192", "UTF8", Codec::Utf8),
    ("GB18030", "GB18030", Codec::Gb18030),
    ("ISO 2022 GBK", "GBK", Codec::Gbk),
    // pydicom: "GB2312", i.e. plain GB 2312 without escape sequences; read as ISO 2022 IR 58.
    ("ISO 2022 58", "iso_ir_58", Codec::Gb2312),
    ("GBK", "GBK", Codec::Gbk),
];

/// Escape sequences of the code extensions: (sequence, Python encoding name, codec), as
/// pydicom's `CODES_TO_ENCODINGS`. The first entry of a name is the one written.
const ESCAPES: &[(&[u8], &str, Codec)] = &[
    (b"\x1b(B", PY_DEFAULT, Codec::Latin1),
    (b"\x1b-A", "latin_1", Codec::Latin1),
    (b"\x1b)I", PY_SHIFT_JIS, Codec::ShiftJis),
    (b"\x1b(J", PY_SHIFT_JIS, Codec::ShiftJis),
    (b"\x1b$B", PY_JP, Codec::Iso2022Jp),
    (b"\x1b-B", "iso8859_2", Codec::Iso8859_2),
    (b"\x1b-C", "iso8859_3", Codec::Iso8859_3),
    (b"\x1b-D", "iso8859_4", Codec::Iso8859_4),
    (b"\x1b-F", "iso_ir_126", Codec::Iso8859_7),
    (b"\x1b-G", "iso_ir_127", Codec::Iso8859_6),
    (b"\x1b-H", "iso_ir_138", Codec::Iso8859_8),
    (b"\x1b-L", "iso_ir_144", Codec::Iso8859_5),
    (b"\x1b-M", "iso_ir_148", Codec::Iso8859_9),
    (b"\x1b-T", "iso_ir_166", Codec::Tis620),
    (b"\x1b$)C", "euc_kr", Codec::EucKr),
    (b"\x1b$(D", PY_JP2, Codec::Iso2022Jp2),
    (b"\x1b$)A", "iso_ir_58", Codec::Gb2312),
];

/// Python codec names and aliases (as `encodings.aliases`, normalised) of the codecs
/// implemented here; a term that Python's `codecs.lookup` resolves to one of them selects it.
const PY_CODEC_NAMES: &[(&str, Codec)] = &[
    ("ascii", Codec::Ascii),
    ("646", Codec::Ascii),
    ("ansi_x3.4_1968", Codec::Ascii),
    ("ansi_x3.4_1986", Codec::Ascii),
    ("ansi_x3_4_1968", Codec::Ascii),
    ("cp367", Codec::Ascii),
    ("csascii", Codec::Ascii),
    ("ibm367", Codec::Ascii),
    ("iso646_us", Codec::Ascii),
    ("iso_646.irv_1991", Codec::Ascii),
    ("iso_ir_6", Codec::Ascii),
    ("us", Codec::Ascii),
    ("us_ascii", Codec::Ascii),
    ("latin_1", Codec::Latin1),
    ("iso8859_1", Codec::Latin1),
    ("8859", Codec::Latin1),
    ("cp819", Codec::Latin1),
    ("csisolatin1", Codec::Latin1),
    ("ibm819", Codec::Latin1),
    ("iso8859", Codec::Latin1),
    ("iso_8859_1", Codec::Latin1),
    ("iso_8859_1_1987", Codec::Latin1),
    ("iso_ir_100", Codec::Latin1),
    ("l1", Codec::Latin1),
    ("latin", Codec::Latin1),
    ("latin1", Codec::Latin1),
    ("iso8859_2", Codec::Iso8859_2),
    ("csisolatin2", Codec::Iso8859_2),
    ("iso_8859_2", Codec::Iso8859_2),
    ("iso_8859_2_1987", Codec::Iso8859_2),
    ("iso_ir_101", Codec::Iso8859_2),
    ("l2", Codec::Iso8859_2),
    ("latin2", Codec::Iso8859_2),
    ("iso8859_3", Codec::Iso8859_3),
    ("csisolatin3", Codec::Iso8859_3),
    ("iso_8859_3", Codec::Iso8859_3),
    ("iso_8859_3_1988", Codec::Iso8859_3),
    ("iso_ir_109", Codec::Iso8859_3),
    ("l3", Codec::Iso8859_3),
    ("latin3", Codec::Iso8859_3),
    ("iso8859_4", Codec::Iso8859_4),
    ("csisolatin4", Codec::Iso8859_4),
    ("iso_8859_4", Codec::Iso8859_4),
    ("iso_8859_4_1988", Codec::Iso8859_4),
    ("iso_ir_110", Codec::Iso8859_4),
    ("l4", Codec::Iso8859_4),
    ("latin4", Codec::Iso8859_4),
    ("iso8859_5", Codec::Iso8859_5),
    ("csisolatincyrillic", Codec::Iso8859_5),
    ("cyrillic", Codec::Iso8859_5),
    ("iso_8859_5", Codec::Iso8859_5),
    ("iso_8859_5_1988", Codec::Iso8859_5),
    ("iso_ir_144", Codec::Iso8859_5),
    ("iso8859_6", Codec::Iso8859_6),
    ("arabic", Codec::Iso8859_6),
    ("asmo_708", Codec::Iso8859_6),
    ("csisolatinarabic", Codec::Iso8859_6),
    ("ecma_114", Codec::Iso8859_6),
    ("iso_8859_6", Codec::Iso8859_6),
    ("iso_8859_6_1987", Codec::Iso8859_6),
    ("iso_ir_127", Codec::Iso8859_6),
    ("iso8859_7", Codec::Iso8859_7),
    ("csisolatingreek", Codec::Iso8859_7),
    ("ecma_118", Codec::Iso8859_7),
    ("elot_928", Codec::Iso8859_7),
    ("greek", Codec::Iso8859_7),
    ("greek8", Codec::Iso8859_7),
    ("iso_8859_7", Codec::Iso8859_7),
    ("iso_8859_7_1987", Codec::Iso8859_7),
    ("iso_ir_126", Codec::Iso8859_7),
    ("iso8859_8", Codec::Iso8859_8),
    ("csisolatinhebrew", Codec::Iso8859_8),
    ("hebrew", Codec::Iso8859_8),
    ("iso_8859_8", Codec::Iso8859_8),
    ("iso_8859_8_1988", Codec::Iso8859_8),
    ("iso_ir_138", Codec::Iso8859_8),
    ("iso8859_9", Codec::Iso8859_9),
    ("csisolatin5", Codec::Iso8859_9),
    ("iso_8859_9", Codec::Iso8859_9),
    ("iso_8859_9_1989", Codec::Iso8859_9),
    ("iso_ir_148", Codec::Iso8859_9),
    ("l5", Codec::Iso8859_9),
    ("latin5", Codec::Iso8859_9),
    ("tis_620", Codec::Tis620),
    ("iso_ir_166", Codec::Tis620),
    ("tis620", Codec::Tis620),
    ("tis_620_0", Codec::Tis620),
    ("tis_620_2529_0", Codec::Tis620),
    ("tis_620_2529_1", Codec::Tis620),
    ("shift_jis", Codec::ShiftJis),
    ("csshiftjis", Codec::ShiftJis),
    ("s_jis", Codec::ShiftJis),
    ("shiftjis", Codec::ShiftJis),
    ("sjis", Codec::ShiftJis),
    ("x_mac_japanese", Codec::ShiftJis),
    ("euc_kr", Codec::EucKr),
    ("euckr", Codec::EucKr),
    ("korean", Codec::EucKr),
    ("ks_c_5601", Codec::EucKr),
    ("ks_c_5601_1987", Codec::EucKr),
    ("ks_x_1001", Codec::EucKr),
    ("ksc5601", Codec::EucKr),
    ("ksx1001", Codec::EucKr),
    ("x_mac_korean", Codec::EucKr),
    ("gbk", Codec::Gbk),
    ("936", Codec::Gbk),
    ("cp936", Codec::Gbk),
    ("ms936", Codec::Gbk),
    ("gb2312", Codec::Gb2312),
    ("chinese", Codec::Gb2312),
    ("csiso58gb231280", Codec::Gb2312),
    ("euc_cn", Codec::Gb2312),
    ("euccn", Codec::Gb2312),
    ("eucgb2312_cn", Codec::Gb2312),
    ("gb2312_1980", Codec::Gb2312),
    ("gb2312_80", Codec::Gb2312),
    ("iso_ir_58", Codec::Gb2312),
    ("x_mac_simp_chinese", Codec::Gb2312),
    ("gb18030", Codec::Gb18030),
    ("gb18030_2000", Codec::Gb18030),
    ("utf_8", Codec::Utf8),
    ("cp65001", Codec::Utf8),
    ("u8", Codec::Utf8),
    ("utf", Codec::Utf8),
    ("utf8", Codec::Utf8),
    ("utf8_ucs2", Codec::Utf8),
    ("utf8_ucs4", Codec::Utf8),
    ("iso2022_jp", Codec::Iso2022Jp),
    ("csiso2022jp", Codec::Iso2022Jp),
    ("iso2022jp", Codec::Iso2022Jp),
    ("iso_2022_jp", Codec::Iso2022Jp),
    ("iso2022_jp_2", Codec::Iso2022Jp2),
    ("iso2022jp_2", Codec::Iso2022Jp2),
    ("iso_2022_jp_2", Codec::Iso2022Jp2),
];

fn defined_term(term: &str) -> Option<Enc> {
    TERMS
        .iter()
        .find(|(t, _, _)| *t == term)
        .map(|&(_, name, codec)| Enc {
            name: Cow::Borrowed(name),
            codec,
        })
}

/// The encoding for one term and whether it was recognised (pydicom's `convert_encodings`).
fn resolve_term(term: &str) -> (Enc, bool) {
    if let Some(enc) = defined_term(term) {
        return (enc, true);
    }
    if let Some(patched) = patch_misspelling(term) {
        return match defined_term(&patched) {
            Some(enc) => (enc, true),
            None => (DEFAULT_ENCS[0].clone(), false),
        };
    }
    if let Some(codec) = python_codec(term) {
        return (
            Enc {
                name: Cow::Owned(term.to_owned()),
                codec,
            },
            true,
        );
    }
    (DEFAULT_ENCS[0].clone(), false)
}

/// pydicom's repairs: `^ISO[^_]IR` becomes `ISO_IR…`, and `^ISO.2022.IR.` (other than
/// `ISO 2022 IR `) becomes `ISO 2022 IR …` (`.` not matching a line feed).
fn patch_misspelling(term: &str) -> Option<String> {
    let c: Vec<char> = term.chars().collect();
    let at = |i: usize| c.get(i).copied();
    let tail = |from: usize| c.get(from..).map(|s| s.iter().collect::<String>());
    let iso = at(0) == Some('I') && at(1) == Some('S') && at(2) == Some('O');
    if iso && at(3).is_some_and(|x| x != '_') && at(4) == Some('I') && at(5) == Some('R') {
        return Some(format!("ISO_IR{}", tail(6).unwrap_or_default()));
    }
    let any = |i: usize| at(i).is_some_and(|x| x != '\n');
    let is = |i: usize, s: &str| s.chars().enumerate().all(|(k, x)| at(i + k) == Some(x));
    if iso
        && any(3)
        && is(4, "2022")
        && any(8)
        && is(9, "IR")
        && any(11)
        && !term.starts_with("ISO 2022 IR ")
    {
        return Some(format!("ISO 2022 IR {}", tail(12).unwrap_or_default()));
    }
    None
}

/// The codec Python's `codecs.lookup(term)` finds, among those implemented here.
fn python_codec(term: &str) -> Option<Codec> {
    if term.contains('\0') {
        return None; // Python refuses the name outright
    }
    // Lower-case ASCII letters, runs of anything but ASCII letters, digits and '.' become one '_'
    // (none at either end).
    let mut norm = String::with_capacity(term.len());
    let mut punct = false;
    for ch in term.chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' {
            if punct && !norm.is_empty() {
                norm.push('_');
            }
            punct = false;
            norm.push(ch.to_ascii_lowercase());
        } else {
            punct = true;
        }
    }
    let find = |n: &str| {
        PY_CODEC_NAMES
            .iter()
            .find(|(a, _)| *a == n)
            .map(|&(_, c)| c)
    };
    find(&norm).or_else(|| find(&norm.replace('.', "_")))
}

// ---------------------------------------------------------------------------------------------
// Decoding (pydicom's decode_bytes)

fn decode_bytes(value: &[u8], encs: &[Enc], delims: &[u8]) -> String {
    let first = encs.first().map_or(Codec::Latin1, |e| e.codec);
    if !value.contains(&ESC) {
        return decode_with(first, value, false).unwrap_or_default();
    }
    // The part before the first ESC, then each ESC with the bytes up to the next ESC.
    let mut out = String::with_capacity(value.len());
    let mut start = 0;
    while start < value.len() {
        let end = value
            .get(start + 1..)
            .and_then(|rest| rest.iter().position(|&b| b == ESC))
            .map_or(value.len(), |p| start + 1 + p);
        let fragment = value.get(start..end).unwrap_or_default();
        let decoded = if fragment.first() == Some(&ESC) {
            decode_escaped(fragment, encs, delims)
        } else {
            decode_with(first, fragment, true)
        };
        match decoded {
            Some(s) => out.push_str(&s),
            None => out.push_str(&decode_with(first, fragment, false).unwrap_or_default()),
        }
        start = end;
    }
    out
}

/// A fragment that starts with ESC; `None` when its escape sequence is unknown or not one of
/// the value's encodings, or when it does not decode.
fn decode_escaped(fragment: &[u8], encs: &[Enc], delims: &[u8]) -> Option<String> {
    let seq_len = if fragment.starts_with(b"\x1b$(") || fragment.starts_with(b"\x1b$)") {
        4
    } else {
        3
    };
    let code = fragment.get(..seq_len)?;
    let &(_, name, codec) = ESCAPES.iter().find(|(c, _, _)| *c == code)?;
    if name != PY_DEFAULT && !encs.iter().any(|e| e.name == name) {
        return None;
    }
    let first = encs.first().map_or(Codec::Latin1, |e| e.codec);
    if name == PY_JP || name == PY_JP2 {
        // The stateful codec reads the escape sequence itself and ignores delimiters.
        return decode_with(codec, fragment, true);
    }
    let rest = fragment.get(seq_len..)?;
    match rest.iter().position(|b| delims.contains(b)) {
        Some(i) => {
            let (head, tail) = rest.split_at(i);
            let mut s = decode_with(codec, head, true)?;
            s.push_str(&decode_with(first, tail, true)?);
            Some(s)
        }
        None => decode_with(codec, rest, true),
    }
}

/// Decode `bytes` with one codec: `None` at the first error when `strict`, else every error
/// becomes one U+FFFD covering the bytes Python's `errors="replace"` covers.
fn decode_with(codec: Codec, bytes: &[u8], strict: bool) -> Option<String> {
    match codec {
        Codec::Latin1 => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Codec::Utf8 => {
            if strict {
                std::str::from_utf8(bytes).ok().map(str::to_owned)
            } else {
                Some(String::from_utf8_lossy(bytes).into_owned())
            }
        }
        Codec::Iso2022Jp => decode_iso2022(bytes, false, strict),
        Codec::Iso2022Jp2 => decode_iso2022(bytes, true, strict),
        _ => {
            let mut out = String::with_capacity(bytes.len());
            let mut i = 0;
            while let Some(rest) = bytes.get(i..).filter(|r| !r.is_empty()) {
                match decode_step(codec, rest) {
                    Ok((c, n)) => {
                        out.push(c);
                        i += n.max(1);
                    }
                    Err(n) => {
                        if strict {
                            return None;
                        }
                        out.push(char::REPLACEMENT_CHARACTER);
                        i += n.max(1);
                    }
                }
            }
            Some(out)
        }
    }
}

/// One character of a stateless codec from the start of `b` (not empty): the character and
/// the bytes it took, or the number of bytes of the error (all the rest when truncated).
fn decode_step(codec: Codec, b: &[u8]) -> Result<(char, usize), usize> {
    let Some(&c0) = b.first() else { return Err(1) };
    if c0 < 0x80 && codec != Codec::Latin1 {
        return Ok((char::from(c0), 1));
    }
    let ch = |u: u32| char::from_u32(u).filter(|_| u != 0);
    match codec {
        Codec::Ascii => Err(1),
        Codec::Latin1 => Ok((char::from(c0), 1)),
        Codec::Utf8 | Codec::Iso2022Jp | Codec::Iso2022Jp2 => Err(1), // handled elsewhere
        Codec::Iso8859_2
        | Codec::Iso8859_3
        | Codec::Iso8859_4
        | Codec::Iso8859_5
        | Codec::Iso8859_6
        | Codec::Iso8859_7
        | Codec::Iso8859_8
        | Codec::Iso8859_9
        | Codec::Tis620 => {
            let table = single_byte_table(codec).ok_or(1usize)?;
            let u = table.get(usize::from(c0 - 0x80)).copied().unwrap_or(0);
            ch(u32::from(u)).map(|c| (c, 1)).ok_or(1)
        }
        Codec::ShiftJis => {
            if (0xA1..=0xDF).contains(&c0) {
                return ch(0xFEC0 + u32::from(c0)).map(|c| (c, 1)).ok_or(1);
            }
            if !((0x81..=0x9F).contains(&c0) || (0xE0..=0xEA).contains(&c0)) {
                return Err(1);
            }
            let &c1 = b.get(1).ok_or(b.len())?;
            if c1 < 0x40 || c1 == 0x7F || c1 > 0xFC {
                return Err(1);
            }
            let lead = if c0 < 0xE0 { c0 - 0x81 } else { c0 - 0xC1 };
            let trail = if c1 < 0x80 { c1 - 0x40 } else { c1 - 0x41 };
            let row = 2 * lead + u8::from(trail >= 0x5E) + 0x21;
            let cell = (if trail < 0x5E { trail } else { trail - 0x5E }) + 0x21;
            jis0208_char(row, cell).map(|c| (c, 2)).ok_or(1)
        }
        Codec::EucKr => {
            let &c1 = b.get(1).ok_or(b.len())?;
            if c0 == 0xA4 && c1 == 0xD4 {
                return euc_kr_makeup(b);
            }
            ksx1001_char(c0 ^ 0x80, c1 ^ 0x80).map(|c| (c, 2)).ok_or(1)
        }
        Codec::Gb2312 => {
            let &c1 = b.get(1).ok_or(b.len())?;
            gb2312_char(c0 ^ 0x80, c1 ^ 0x80).map(|c| (c, 2)).ok_or(1)
        }
        Codec::Gbk => {
            let &c1 = b.get(1).ok_or(b.len())?;
            gbk_char(c0, c1).map(|c| (c, 2)).ok_or(1)
        }
        Codec::Gb18030 => {
            let &c1 = b.get(1).ok_or(b.len())?;
            if !(0x30..=0x39).contains(&c1) {
                return gb18030_char2(c0, c1).map(|c| (c, 2)).ok_or(1);
            }
            let (&c2, &c3) = b.get(2).zip(b.get(3)).ok_or(b.len())?;
            if !(0x81..=0xFE).contains(&c0)
                || !(0x81..=0xFE).contains(&c2)
                || !(0x30..=0x39).contains(&c3)
            {
                return Err(1);
            }
            let (l0, l1, l2, l3) = (
                u32::from(c0 - 0x81),
                u32::from(c1 - 0x30),
                u32::from(c2 - 0x81),
                u32::from(c3 - 0x30),
            );
            if l0 < 4 {
                let lseq = (l0 * 10 + l1) * 1260 + l2 * 10 + l3;
                return gb18030_char4(lseq).map(|c| (c, 4)).ok_or(1);
            }
            if l0 >= 15 {
                let u = 0x10000 + ((l0 - 15) * 10 + l1) * 1260 + l2 * 10 + l3;
                return char::from_u32(u).map(|c| (c, 4)).ok_or(1);
            }
            Err(1)
        }
    }
}

/// KS X 1001:1998 Annex 3 make-up sequence A4D4 A4xx A4xx A4xx (one Hangul syllable).
fn euc_kr_makeup(b: &[u8]) -> Result<(char, usize), usize> {
    let s = b.get(..8).ok_or(b.len())?;
    if s[2] != 0xA4 || s[4] != 0xA4 || s[6] != 0xA4 {
        return Err(1);
    }
    let cho = CHOSEONG.iter().position(|&x| x == s[3]).ok_or(1usize)?;
    let jung = if (0xBF..=0xD3).contains(&s[5]) {
        usize::from(s[5] - 0xBF)
    } else {
        return Err(1);
    };
    let jong = if s[7] == 0xD4 {
        0
    } else {
        JONGSEONG
            .iter()
            .skip(1)
            .position(|&x| x == s[7])
            .ok_or(1usize)?
            + 1
    };
    let u = 0xAC00 + cho * 588 + jung * 28 + jong;
    u32::try_from(u)
        .ok()
        .and_then(char::from_u32)
        .map(|c| (c, 8))
        .ok_or(1)
}

/// Second bytes (after A4) of the initial consonants, by index in the syllable formula.
const CHOSEONG: [u8; 19] = [
    0xA1, 0xA2, 0xA4, 0xA7, 0xA8, 0xA9, 0xB1, 0xB2, 0xB3, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB,
    0xBC, 0xBD, 0xBE,
];
/// Second bytes of the final consonants (index 0, no final consonant, is the filler D4).
const JONGSEONG: [u8; 28] = [
    0xD4, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF, 0xB0,
    0xB1, 0xB2, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE,
];

// ISO-2022-JP and ISO-2022-JP-2 (CPython's CJKCodecs iso2022 codec, decoding side).

const DBCS: u8 = 0x80;
const G_ASCII: u8 = b'B';
const JP_SETS: [u8; 3] = [DBCS | b'B', b'J', DBCS | b'@'];
const JP2_SETS: [u8; 8] = [
    DBCS | b'B',
    DBCS | b'D',
    DBCS | b'C',
    DBCS | b'A',
    b'J',
    DBCS | b'@',
    b'A',
    b'F',
];

fn decode_iso2022(bytes: &[u8], jp2: bool, strict: bool) -> Option<String> {
    let mut g = [G_ASCII; 4];
    let mut esc_through = false;
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(rest) = bytes.get(i..).filter(|r| !r.is_empty()) {
        let Some(&c) = rest.first() else { break };
        if esc_through {
            // An escape sequence that is not ISO 2022's passes through as Latin-1.
            out.push(char::from(c));
            esc_through = !is_escend(c);
            i += 1;
            continue;
        }
        let step: Result<usize, usize> = if c == ESC {
            match rest.get(1) {
                None => Err(rest.len()),
                Some(&(b'(' | b')' | b'$' | b'.' | b'&')) => iso2022_escape(rest, jp2, &mut g),
                Some(&b'N') if jp2 => match rest.get(2) {
                    None => Err(rest.len()),
                    Some(&c2) => match iso2022_single_shift(g[2], c2) {
                        Some(ch) => {
                            out.push(ch);
                            Ok(3)
                        }
                        None => Err(3),
                    },
                },
                Some(_) => {
                    out.push('\x1b');
                    esc_through = true;
                    Ok(1)
                }
            }
        } else if c < 0x20 {
            out.push(char::from(c));
            Ok(1)
        } else if c >= 0x80 {
            Err(1)
        } else if g[0] == G_ASCII {
            out.push(char::from(c));
            Ok(1)
        } else {
            let width = if g[0] & DBCS != 0 { 2 } else { 1 };
            match rest.get(..width) {
                None => Err(rest.len()),
                Some(unit) => match iso2022_char(g[0], unit) {
                    Some(ch) => {
                        out.push(ch);
                        Ok(width)
                    }
                    None => Err(width),
                },
            }
        };
        match step {
            Ok(n) => i += n.max(1),
            Err(n) => {
                if strict {
                    return None;
                }
                out.push(char::REPLACEMENT_CHARACTER);
                i += n.max(1);
            }
        }
    }
    Some(out)
}

fn is_escend(c: u8) -> bool {
    c.is_ascii_uppercase() || c == b'@'
}

/// A designation escape sequence at the start of `b`: its length, or the error length.
fn iso2022_escape(b: &[u8], jp2: bool, g: &mut [u8; 4]) -> Result<usize, usize> {
    let mut i = 1;
    let mut len = 0;
    while i < 16 {
        let &c = b.get(i).ok_or(b.len())?;
        if is_escend(c) {
            len = i + 1;
            break;
        }
        if c == b'&' && b.get(i + 1) == Some(&b'@') {
            i += 2;
        }
        i += 1;
    }
    if len == 0 {
        return Err(1);
    }
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let (set, plane) = match len {
        3 if at(1) == b'$' => (at(2) | DBCS, 0),
        3 => match at(1) {
            b'(' => (at(2), 0),
            b')' => (at(2), 1),
            b'.' if jp2 => (at(2), 2),
            _ => return Err(3),
        },
        4 if at(1) == b'$' => match at(2) {
            b'(' => (at(3) | DBCS, 0),
            b')' => (at(3) | DBCS, 1),
            _ => return Err(4),
        },
        6 if at(3) == ESC && at(4) == b'$' && at(5) == b'B' => (DBCS | b'B', 0),
        _ => return Err(len),
    };
    let sets: &[u8] = if jp2 { &JP2_SETS } else { &JP_SETS };
    if set != G_ASCII && !sets.contains(&set) {
        return Err(len);
    }
    g[plane] = set;
    Ok(len)
}

fn iso2022_char(set: u8, unit: &[u8]) -> Option<char> {
    let (a, b) = (unit.first().copied()?, unit.get(1).copied().unwrap_or(0));
    match set {
        s if s == DBCS | b'B' || s == DBCS | b'@' => jis0208_char(a, b),
        s if s == DBCS | b'D' => jis0212_char(a, b),
        s if s == DBCS | b'C' => ksx1001_char(a, b),
        s if s == DBCS | b'A' => gb2312_char(a, b),
        b'J' => Some(match a {
            0x5C => '\u{A5}',
            0x7E => '\u{203E}',
            x => char::from(x),
        }),
        _ => None,
    }
}

/// ESC N x with the G2 set `g2` (ISO-2022-JP-2).
fn iso2022_single_shift(g2: u8, c: u8) -> Option<char> {
    match g2 {
        b'A' if c < 0x80 => Some(char::from(c + 0x80)),
        b'F' => {
            let c = u32::from(c ^ 0x80);
            let u = if c < 0xA0 || (c < 0xC0 && (0x288f_3bc9_u32 >> (c - 0xA0)) & 1 != 0) {
                c
            } else if (0xB4..=0xFE).contains(&c)
                && (c >= 0xD4 || (0xbfff_fd77_u32 >> (c - 0xB4)) & 1 != 0)
            {
                0x02D0 + c
            } else {
                match c {
                    0xA1 => 0x2018,
                    0xA2 => 0x2019,
                    0xAF => 0x2015,
                    _ => return None,
                }
            };
            char::from_u32(u)
        }
        G_ASCII if c < 0x80 => Some(char::from(c)),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding (pydicom's encode_string)

fn is_handled(enc: &Enc) -> bool {
    enc.name == PY_JP || enc.name == PY_JP2
}

/// The escape sequence pydicom writes before text of `enc`.
fn escape_for(enc: &Enc, encoded: Option<&[u8]>) -> &'static [u8] {
    if enc.name == PY_SHIFT_JIS {
        return match encoded.and_then(|b| b.first()) {
            Some(&b) if b >= 0x80 => b"\x1b)I",
            _ => b"\x1b(J",
        };
    }
    ESCAPES
        .iter()
        .find(|(_, n, _)| enc.name == *n)
        .map_or(b"", |&(code, _, _)| code)
}

/// pydicom's `encode_string` without the lossy fallback.
fn encode_string(value: &[char], encs: &[Enc]) -> Option<Vec<u8>> {
    let first = encs.first()?;
    for (i, enc) in encs.iter().enumerate() {
        if let Ok(bytes) = encode_impl(value, enc) {
            let mut out = Vec::with_capacity(bytes.len() + 6);
            if i > 0 && !is_handled(enc) {
                out.extend_from_slice(escape_for(enc, Some(&bytes)));
            }
            out.extend_from_slice(&bytes);
            if is_handled(enc) {
                out.extend_from_slice(escape_for(first, None));
            }
            return Some(out);
        }
    }
    if encs.len() < 2 {
        return None;
    }
    // pydicom's _encode_string_parts: repeatedly take the encoding that encodes the longest
    // prefix of the rest (the first such one on ties).
    let mut out = Vec::new();
    let mut rest = value;
    let mut best = first;
    while !rest.is_empty() {
        let mut max = 0;
        for enc in encs {
            match encode_impl(rest, enc) {
                Ok(_) => {
                    best = enc;
                    max = rest.len();
                    break;
                }
                Err(at) if at > max => {
                    max = at;
                    best = enc;
                }
                Err(_) => {}
            }
        }
        if max == 0 {
            return None;
        }
        let (head, tail) = rest.split_at(max.min(rest.len()));
        let part = encode_impl(head, best).ok()?;
        if !is_handled(best) {
            out.extend_from_slice(escape_for(best, Some(&part)));
        }
        out.extend_from_slice(&part);
        rest = tail;
    }
    if is_handled(best) {
        out.extend_from_slice(escape_for(first, None));
    }
    Some(out)
}

/// pydicom's `_encode_string_impl` (strict): the bytes, or the index of the first character
/// that cannot be encoded.
fn encode_impl(value: &[char], enc: &Enc) -> Result<Vec<u8>, usize> {
    // pydicom's own encoders go by the Python name; other names use the plain codec.
    match enc.name.as_ref() {
        PY_SHIFT_JIS => return encode_jis_x_0201(value),
        PY_JP => return encode_jis_run(value, false),
        PY_JP2 => return encode_jis_run(value, true),
        _ => {}
    }
    match enc.codec {
        Codec::Iso2022Jp => encode_iso2022(value, false),
        Codec::Iso2022Jp2 => encode_iso2022(value, true),
        codec => {
            let mut out = Vec::with_capacity(value.len() * 2);
            for (i, &c) in value.iter().enumerate() {
                if !encode_char(codec, c, &mut out) {
                    return Err(i);
                }
            }
            Ok(out)
        }
    }
}

/// pydicom's `_encode_to_jis_x_0201`: single bytes only, all katakana (ISO IR 13) or all
/// Roman (ISO IR 14) as the first character is.
fn encode_jis_x_0201(value: &[char]) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(value.len());
    let mut msb = None;
    let mut buf = Vec::with_capacity(2);
    for (i, &c) in value.iter().enumerate() {
        buf.clear();
        if !encode_char(Codec::ShiftJis, c, &mut buf) || buf.len() != 1 {
            return Err(i);
        }
        let b = buf[0];
        match msb {
            None => msb = Some(b & 0x80),
            Some(m) if m != b & 0x80 => return Err(i),
            Some(_) => {}
        }
        out.push(b);
    }
    Ok(out)
}

/// pydicom's `_encode_to_jis_x_0208` / `_0212`: one run of JIS X 0208 (or of JIS X 0212
/// characters that are not in JIS X 0208) after its escape sequence.
fn encode_jis_run(value: &[char], x0212: bool) -> Result<Vec<u8>, usize> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(4 + value.len() * 2);
    out.extend_from_slice(if x0212 { b"\x1b$(D" } else { b"\x1b$B" });
    let tables = jis_tables();
    for (i, &c) in value.iter().enumerate() {
        let u = u32::from(c);
        if !(0x80..=0xFFFF).contains(&u) {
            return Err(i);
        }
        let in_0208 = tables.rev0208.get(u as usize).copied().unwrap_or(0);
        let code = if x0212 {
            if in_0208 != 0 {
                return Err(i);
            }
            tables.rev0212.get(u as usize).copied().unwrap_or(0)
        } else {
            in_0208
        };
        if code == 0 {
            return Err(i);
        }
        out.extend_from_slice(&code.to_be_bytes());
    }
    Ok(out)
}

/// Python's ISO-2022-JP(-2) encoder (a whole string, back to ASCII at the end).
fn encode_iso2022(value: &[char], jp2: bool) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(value.len() * 2);
    let mut g0 = G_ASCII;
    let sets: &[u8] = if jp2 { &JP2_SETS } else { &JP_SETS };
    for (i, &c) in value.iter().enumerate() {
        let u = u32::from(c);
        if u < 0x80 {
            if g0 != G_ASCII {
                out.extend_from_slice(b"\x1b(B");
                g0 = G_ASCII;
            }
            out.push(u as u8);
            continue;
        }
        let found = sets
            .iter()
            .find_map(|&set| iso2022_encode_in(set, c).map(|code| (set, code)));
        let Some((set, code)) = found else {
            return Err(i);
        };
        if g0 != set {
            if set & DBCS == 0 {
                out.extend_from_slice(&[ESC, b'(', set]);
            } else if set == DBCS | b'B' {
                out.extend_from_slice(b"\x1b$B");
            } else {
                out.extend_from_slice(&[ESC, b'$', b'(', set & 0x7F]);
            }
            g0 = set;
        }
        if set & DBCS == 0 {
            out.push(code as u8);
        } else {
            out.extend_from_slice(&code.to_be_bytes());
        }
    }
    if g0 != G_ASCII {
        out.extend_from_slice(b"\x1b(B");
    }
    Ok(out)
}

/// The code of `c` (not ASCII) in one ISO 2022 graphic set, as CPython's encoders.
fn iso2022_encode_in(set: u8, c: char) -> Option<u16> {
    let u = u32::from(c);
    let bmp = usize::try_from(u).ok().filter(|&x| x <= 0xFFFF)?;
    let nonzero = |x: u16| (x != 0).then_some(x);
    match set {
        s if s == DBCS | b'B' || s == DBCS | b'@' => nonzero(*jis_tables().rev0208.get(bmp)?),
        s if s == DBCS | b'D' => {
            let tables = jis_tables();
            if *tables.rev0208.get(bmp)? != 0 {
                return None;
            }
            nonzero(*tables.rev0212.get(bmp)?)
        }
        s if s == DBCS | b'C' => nonzero(*ksx_tables().rev.get(bmp)?).map(|x| x & 0x7F7F),
        s if s == DBCS | b'A' => nonzero(*gb_tables().rev2312.get(bmp)?).map(|x| x & 0x7F7F),
        b'J' => match u {
            0xA5 => Some(0x5C),
            0x203E => Some(0x7E),
            _ => None,
        },
        _ => None,
    }
}

/// Append the encoding of `c` with a stateless codec; false if it has none.
fn encode_char(codec: Codec, c: char, out: &mut Vec<u8>) -> bool {
    let u = u32::from(c);
    if codec == Codec::Utf8 {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        return true;
    }
    if u < 0x80 {
        out.push(u as u8);
        return true;
    }
    let two = |out: &mut Vec<u8>, code: u16| {
        out.extend_from_slice(&code.to_be_bytes());
        code != 0
    };
    let bmp = usize::try_from(u).ok().filter(|&x| x <= 0xFFFF);
    match codec {
        Codec::Ascii | Codec::Utf8 | Codec::Iso2022Jp | Codec::Iso2022Jp2 => false,
        Codec::Latin1 => match u8::try_from(u) {
            Ok(b) => {
                out.push(b);
                true
            }
            Err(_) => false,
        },
        Codec::Iso8859_2
        | Codec::Iso8859_3
        | Codec::Iso8859_4
        | Codec::Iso8859_5
        | Codec::Iso8859_6
        | Codec::Iso8859_7
        | Codec::Iso8859_8
        | Codec::Iso8859_9
        | Codec::Tis620 => {
            let Some(table) = single_byte_table(codec) else {
                return false;
            };
            match table.iter().position(|&x| u32::from(x) == u) {
                Some(p) => {
                    out.push(0x80 + p as u8);
                    true
                }
                None => false,
            }
        }
        Codec::ShiftJis => {
            // Python also writes U+00A5 and U+203E as 0x5C and 0x7E, which read back as "\\"
            // and "~" (and 0x5C splits the value): refused here.
            if (0xFF61..=0xFF9F).contains(&u) {
                out.push((u - 0xFEC0) as u8);
                return true;
            }
            let Some(code) = bmp.and_then(|x| jis_tables().rev0208.get(x).copied()) else {
                return false;
            };
            if code == 0 {
                return false;
            }
            let [row, cell] = code.to_be_bytes();
            let (r, c) = (row - 0x21, cell - 0x21);
            let c2 = if r & 1 == 1 { c + 0x5E } else { c };
            let c1 = r >> 1;
            out.push(if c1 < 0x1F { c1 + 0x81 } else { c1 + 0xC1 });
            out.push(if c2 < 0x3F { c2 + 0x40 } else { c2 + 0x41 });
            true
        }
        Codec::EucKr => {
            // Python writes U+3164 as A4 D4, which starts a make-up sequence and does not
            // decode: refused here.
            let code = bmp
                .and_then(|x| ksx_tables().rev.get(x).copied())
                .unwrap_or(0);
            if code != 0 && u != 0x3164 {
                return two(out, code | 0x8080);
            }
            if !(0xAC00..=0xD7A3).contains(&u) {
                return false;
            }
            let s = (u - 0xAC00) as usize;
            let (cho, jung, jong) = (s / 588, (s / 28) % 21, s % 28);
            let jung = 0xBF + jung as u8;
            match (CHOSEONG.get(cho), JONGSEONG.get(jong)) {
                (Some(&a), Some(&b)) => {
                    out.extend_from_slice(&[0xA4, 0xD4, 0xA4, a, 0xA4, jung, 0xA4, b]);
                    true
                }
                _ => false,
            }
        }
        Codec::Gb2312 => {
            let code = bmp
                .and_then(|x| gb_tables().rev2312.get(x).copied())
                .unwrap_or(0);
            code != 0 && two(out, code)
        }
        Codec::Gbk => {
            let code = bmp
                .and_then(|x| gb_tables().revgbk.get(x).copied())
                .unwrap_or(0);
            code != 0 && two(out, code)
        }
        Codec::Gb18030 => {
            if u >= 0x10000 {
                let t = u - 0x10000;
                out.extend_from_slice(&[
                    (0x90 + t / 12600) as u8,
                    (0x30 + t / 1260 % 10) as u8,
                    (0x81 + t / 10 % 126) as u8,
                    (0x30 + t % 10) as u8,
                ]);
                return true;
            }
            let code = bmp
                .and_then(|x| gb_tables().rev18030.get(x).copied())
                .unwrap_or(0);
            if code == 0 {
                false
            } else if code & FOUR_BYTE != 0 {
                let l = code & !FOUR_BYTE;
                out.extend_from_slice(&[
                    (0x81 + l / 12600) as u8,
                    (0x30 + l / 1260 % 10) as u8,
                    (0x81 + l / 10 % 126) as u8,
                    (0x30 + l % 10) as u8,
                ]);
                true
            } else {
                two(out, code as u16)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tables. The mappings are encoding_rs's (WHATWG), corrected where Python's codecs differ.

/// The one character `enc` decodes `bytes` to, as a BMP code point (0: none).
fn rs_char(enc: &'static Encoding, bytes: &[u8]) -> u16 {
    let Some(s) = enc.decode_without_bom_handling_and_without_replacement(bytes) else {
        return 0;
    };
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => u16::try_from(u32::from(c)).unwrap_or(0),
        _ => 0,
    }
}

/// High halves (0x80–0xFF) of the single-byte codecs, 0 where undefined.
fn single_byte_table(codec: Codec) -> Option<&'static [u16; 128]> {
    static TABLES: OnceLock<[[u16; 128]; 9]> = OnceLock::new();
    let index = match codec {
        Codec::Iso8859_2 => 0,
        Codec::Iso8859_3 => 1,
        Codec::Iso8859_4 => 2,
        Codec::Iso8859_5 => 3,
        Codec::Iso8859_6 => 4,
        Codec::Iso8859_7 => 5,
        Codec::Iso8859_8 => 6,
        Codec::Iso8859_9 => 7,
        Codec::Tis620 => 8,
        _ => return None,
    };
    let tables = TABLES.get_or_init(|| {
        let mut t = [[0u16; 128]; 9];
        // These match Python's tables (C1 controls included, same undefined positions).
        let rs = [
            ISO_8859_2, ISO_8859_3, ISO_8859_4, ISO_8859_5, ISO_8859_6, ISO_8859_7, ISO_8859_8,
        ];
        for (k, enc) in rs.iter().enumerate() {
            for b in 0x80..=0xFFu8 {
                t[k][usize::from(b - 0x80)] = rs_char(enc, &[b]);
            }
        }
        // ISO 8859-9 (encoding_rs would give windows-1254): Latin-1 with six Turkish letters.
        for b in 0x80..=0xFFu8 {
            t[7][usize::from(b - 0x80)] = u16::from(b);
        }
        for (b, u) in [
            (0xD0, 0x11E),
            (0xDD, 0x130),
            (0xDE, 0x15E),
            (0xF0, 0x11F),
            (0xFD, 0x131),
            (0xFE, 0x15F),
        ] {
            t[7][b - 0x80] = u;
        }
        // TIS-620 (encoding_rs would give windows-874).
        for b in 0x80..=0xFFu16 {
            t[8][usize::from(b - 0x80)] = match b {
                0x80..=0x9F => b,
                0xA1..=0xDA | 0xDF..=0xFB => b + 0x0D60,
                _ => 0,
            };
        }
        t
    });
    tables.get(index)
}

fn index94(row: u8, cell: u8) -> Option<usize> {
    ((0x21..=0x7E).contains(&row) && (0x21..=0x7E).contains(&cell))
        .then(|| usize::from(row - 0x21) * 94 + usize::from(cell - 0x21))
}

fn to_char(u: u16) -> Option<char> {
    (u != 0).then(|| char::from_u32(u32::from(u))).flatten()
}

/// Reverse map (BMP code point → code) of a forward table; the first code wins.
fn reverse<T: Copy + Default + PartialEq>(pairs: impl Iterator<Item = (u16, T)>) -> Vec<T> {
    let mut rev = vec![T::default(); 0x10000];
    for (u, code) in pairs {
        if u != 0 && rev[usize::from(u)] == T::default() {
            rev[usize::from(u)] = code;
        }
    }
    rev
}

fn codes94() -> impl Iterator<Item = (u8, u8)> {
    (0x21..=0x7Eu8).flat_map(|r| (0x21..=0x7Eu8).map(move |c| (r, c)))
}

struct JisTables {
    x0208: Vec<u16>,
    x0212: Vec<u16>,
    rev0208: Vec<u16>,
    rev0212: Vec<u16>,
}

fn jis_tables() -> &'static JisTables {
    static T: OnceLock<JisTables> = OnceLock::new();
    T.get_or_init(|| {
        let mut x0208 = vec![0u16; 94 * 94];
        let mut x0212 = vec![0u16; 94 * 94];
        for (i, (r, c)) in codes94().enumerate() {
            // Python's JIS X 0208 has neither the NEC row 13 nor the IBM rows 89–92.
            if r != 0x2D && r < 0x75 {
                x0208[i] = rs_char(EUC_JP, &[r | 0x80, c | 0x80]);
            }
            x0212[i] = rs_char(EUC_JP, &[0x8F, r | 0x80, c | 0x80]);
        }
        // Python maps these JIS characters as JIS0208.TXT, not as Windows-31J.
        for (code, u) in [
            (0x2141, 0x301C),
            (0x2142, 0x2016),
            (0x215D, 0x2212),
            (0x2171, 0x00A2),
            (0x2172, 0x00A3),
            (0x224C, 0x00AC),
        ] {
            set94(&mut x0208, code, u);
        }
        set94(&mut x0212, 0x2237, 0x007E);
        let code_of = |i: usize| ((0x21 + i / 94) << 8 | (0x21 + i % 94)) as u16;
        let rev0208 = reverse(x0208.iter().enumerate().map(|(i, &u)| (u, code_of(i))));
        let rev0212 = reverse(x0212.iter().enumerate().map(|(i, &u)| (u, code_of(i))));
        JisTables {
            x0208,
            x0212,
            rev0208,
            rev0212,
        }
    })
}

fn set94(table: &mut [u16], code: u16, u: u16) {
    let [r, c] = code.to_be_bytes();
    if let Some(slot) = index94(r, c).and_then(|i| table.get_mut(i)) {
        *slot = u;
    }
}

fn jis0208_char(row: u8, cell: u8) -> Option<char> {
    to_char(*jis_tables().x0208.get(index94(row, cell)?)?)
}

fn jis0212_char(row: u8, cell: u8) -> Option<char> {
    to_char(*jis_tables().x0212.get(index94(row, cell)?)?)
}

struct KsxTables {
    fwd: Vec<u16>,
    rev: Vec<u16>,
}

fn ksx_tables() -> &'static KsxTables {
    static T: OnceLock<KsxTables> = OnceLock::new();
    T.get_or_init(|| {
        let fwd: Vec<u16> = codes94()
            .map(|(r, c)| rs_char(EUC_KR, &[r | 0x80, c | 0x80]))
            .collect();
        let rev = reverse(
            codes94()
                .zip(fwd.iter())
                .map(|((r, c), &u)| (u, u16::from_be_bytes([r, c]))),
        );
        KsxTables { fwd, rev }
    })
}

fn ksx1001_char(row: u8, cell: u8) -> Option<char> {
    to_char(*ksx_tables().fwd.get(index94(row, cell)?)?)
}

/// Marks a four-byte GB 18030 code (its linear index) in `rev18030`.
const FOUR_BYTE: u32 = 0x0100_0000;

struct GbTables {
    /// Two-byte GB 18030 as Python decodes it: lead 0x81–0xFE, trail 0x40–0xFE.
    two: Vec<u16>,
    /// Four-byte GB 18030 sequences of the BMP, by linear index.
    four: Vec<u16>,
    rev2312: Vec<u16>,
    revgbk: Vec<u16>,
    rev18030: Vec<u32>,
}

fn two_index(lead: u8, trail: u8) -> Option<usize> {
    ((0x81..=0xFE).contains(&lead) && (0x40..=0xFE).contains(&trail))
        .then(|| usize::from(lead - 0x81) * 191 + usize::from(trail - 0x40))
}

fn gb_tables() -> &'static GbTables {
    static T: OnceLock<GbTables> = OnceLock::new();
    T.get_or_init(|| {
        let mut two = vec![0u16; 126 * 191];
        for lead in 0x81..=0xFEu8 {
            for trail in 0x40..=0xFEu8 {
                if let Some(i) = two_index(lead, trail) {
                    two[i] = rs_char(GBK, &[lead, trail]);
                }
            }
        }
        // Python's GB 18030 is the 2000 edition: these stay in the Private Use Area.
        for (code, u) in GB18030_PYTHON {
            let [lead, trail] = code.to_be_bytes();
            if let Some(i) = two_index(lead, trail) {
                two[i] = u;
            }
        }
        let four: Vec<u16> = (0..39420u32)
            .map(|l| {
                if l == 7457 {
                    return 0x1E3F; // 0x8135F437, the 2000 edition's place of U+1E3F
                }
                let b = [
                    (0x81 + l / 12600) as u8,
                    (0x30 + l / 1260 % 10) as u8,
                    (0x81 + l / 10 % 126) as u8,
                    (0x30 + l % 10) as u8,
                ];
                rs_char(GB18030, &b)
            })
            .collect();
        let mut t = GbTables {
            two,
            four,
            rev2312: Vec::new(),
            revgbk: Vec::new(),
            rev18030: Vec::new(),
        };
        t.rev2312 = reverse(codes94().filter_map(|(r, c)| {
            let u = gb2312_in(&t, r, c)?;
            Some((u, u16::from_be_bytes([r | 0x80, c | 0x80])))
        }));
        let pairs = || (0x81..=0xFEu8).flat_map(|l| (0x40..=0xFEu8).map(move |c| (l, c)));
        t.revgbk = reverse(
            pairs().filter_map(|(l, c)| Some((gbk_in(&t, l, c)?, u16::from_be_bytes([l, c])))),
        );
        let two18030 = pairs().filter_map(|(l, c)| {
            let u = *t.two.get(two_index(l, c)?)?;
            Some((u, u32::from(u16::from_be_bytes([l, c]))))
        });
        let four18030 = t
            .four
            .iter()
            .enumerate()
            .map(|(l, &u)| (u, FOUR_BYTE | l as u32));
        t.rev18030 = reverse(two18030.chain(four18030));
        t
    })
}

/// GB 18030 two-byte codes that Python maps differently from encoding_rs (2005/2022 changes).
const GB18030_PYTHON: [(u16, u16); 20] = [
    (0xA3A0, 0xE5E5),
    (0xA6D9, 0xE78D),
    (0xA6DA, 0xE78E),
    (0xA6DB, 0xE78F),
    (0xA6DC, 0xE790),
    (0xA6DD, 0xE791),
    (0xA6DE, 0xE792),
    (0xA6DF, 0xE793),
    (0xA6EC, 0xE794),
    (0xA6ED, 0xE795),
    (0xA6F3, 0xE796),
    (0xA8BC, 0xE7C7),
    (0xFE59, 0xE81E),
    (0xFE61, 0xE826),
    (0xFE66, 0xE82B),
    (0xFE67, 0xE82C),
    (0xFE6D, 0xE832),
    (0xFE7E, 0xE843),
    (0xFE90, 0xE854),
    (0xFEA0, 0xE864),
];

/// Two-byte codes that Python's GBK lacks although GB 18030 maps them outside the PUA.
const GBK_EXCLUDED: [(u16, u16); 14] = [
    (0xA2E3, 0xA2E3),
    (0xA3A0, 0xA3A0),
    (0xA6D9, 0xA6DF),
    (0xA6EC, 0xA6ED),
    (0xA6F3, 0xA6F3),
    (0xA8BC, 0xA8BC),
    (0xA8BF, 0xA8BF),
    (0xA989, 0xA995),
    (0xFE50, 0xFE50),
    (0xFE54, 0xFE6B),
    (0xFE6D, 0xFE75),
    (0xFE77, 0xFE7E),
    (0xFE80, 0xFE90),
    (0xFE92, 0xFEA0),
];

/// The assigned cells of GB 2312 (linear index over rows and cells 0x21–0x7E).
const GB2312_ASSIGNED: [(u16, u16); 15] = [
    (0x0, 0x5D),
    (0x6E, 0x9F),
    (0xA2, 0xAB),
    (0xAE, 0xB9),
    (0xBC, 0x16C),
    (0x178, 0x1CD),
    (0x1D6, 0x1ED),
    (0x1F6, 0x20D),
    (0x234, 0x254),
    (0x264, 0x284),
    (0x292, 0x2AB),
    (0x2B6, 0x2DA),
    (0x2F3, 0x33E),
    (0x582, 0x142C),
    (0x1432, 0x1FF1),
];

fn gbk_in(t: &GbTables, lead: u8, trail: u8) -> Option<u16> {
    let u = *t.two.get(two_index(lead, trail)?)?;
    let code = u16::from_be_bytes([lead, trail]);
    let excluded = GBK_EXCLUDED.iter().any(|&(a, b)| (a..=b).contains(&code));
    (u != 0 && !(0xE000..=0xF8FF).contains(&u) && !excluded).then_some(u)
}

fn gb2312_in(t: &GbTables, row: u8, cell: u8) -> Option<u16> {
    let i = u16::try_from(index94(row, cell)?).ok()?;
    if !GB2312_ASSIGNED.iter().any(|&(a, b)| (a..=b).contains(&i)) {
        return None;
    }
    match (row, cell) {
        (0x21, 0x24) => Some(0x30FB),
        (0x21, 0x2A) => Some(0x2015),
        _ => {
            let u = *t.two.get(two_index(row | 0x80, cell | 0x80)?)?;
            (u != 0).then_some(u)
        }
    }
}

fn gb2312_char(row: u8, cell: u8) -> Option<char> {
    to_char(gb2312_in(gb_tables(), row, cell)?)
}

fn gbk_char(lead: u8, trail: u8) -> Option<char> {
    to_char(gbk_in(gb_tables(), lead, trail)?)
}

fn gb18030_char2(lead: u8, trail: u8) -> Option<char> {
    to_char(*gb_tables().two.get(two_index(lead, trail)?)?)
}

fn gb18030_char4(linear: u32) -> Option<char> {
    to_char(*gb_tables().four.get(usize::try_from(linear).ok()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(value: &str) -> Charset {
        Charset::from_value(value.as_bytes())
    }

    #[test]
    fn ascii_fast_path_writes_the_text_and_reads_it_back() {
        let text = "2.25.1234^ANON-ABC~x";
        for value in [
            "",
            "ISO_IR 100",
            "ISO_IR 192",
            "GB18030",
            "\\ISO 2022 IR 87",
            "ISO_IR 144",
        ] {
            let c = cs(value);
            let out = c.encode(text).expect(value);
            assert_eq!(out, text.as_bytes(), "{value}");
            assert_eq!(c.decode(&out, true), text, "{value}");
        }
        // Shift JIS (ISO_IR 13) and ISO 2022 JP first terms take the full path
        assert!(!Codec::ShiftJis.ascii_is_identity());
        assert!(!Codec::Iso2022Jp.ascii_is_identity());
    }

    #[test]
    fn parses_terms() {
        assert_eq!(Charset::from_value(b""), Charset::default_repertoire());
        assert_eq!(Charset::from_value(b"  \0"), Charset::default());
        assert!(Charset::default().is_known());
        let c = cs("ISO 2022 IR 100\\ISO 2022 IR 126 ");
        assert_eq!(c.terms, ["ISO 2022 IR 100", "ISO 2022 IR 126"]);
        assert_eq!(c.encs.len(), 2);
        assert!(c.is_known());
        // empty first value = ISO_IR 6
        assert_eq!(cs("\\ISO 2022 IR 87").encs[0].name, PY_DEFAULT);
        // unknown terms fall back to the default repertoire
        for bad in [
            "UNSUPPORTED",
            "ISOIR 192",
            "ISO IR 999",
            "ISO 2022 IR 100\\ISO 2022 IR 146",
            "cp1252",
        ] {
            let c = cs(bad);
            assert!(!c.is_known(), "{bad}");
            assert_eq!(c.decode(b"\xe9", false), "é");
        }
        // misspellings pydicom repairs, Python codec names
        for (term, text) in [
            ("ISO IR 100", "é"),
            ("ISO-IR 144", "щ"),
            ("ISO\nIR 100", "é"),
            ("latin1", "é"),
            (" ISO_IR 100", "é"),
            ("l5", "é"),
        ] {
            let c = cs(term);
            assert!(c.is_known(), "{term}");
            assert_eq!(c.decode(b"\xe9", false), text, "{term}");
        }
        assert_eq!(cs("UTF-8").decode("é".as_bytes(), false), "é");
        assert_eq!(
            cs("ISO_IR 6 \\ISO 2022 IR 87").decode(b"a\xe9", false),
            "a\u{FFFD}"
        ); // Python's ascii
        assert!(cs("ISO_2022-IR 100\\ISO_2022_IR+126").is_known());
        // stand-alone terms
        assert_eq!(cs("ISO_IR 192\\ISO 2022 IR 100").encs.len(), 1);
        let c = cs("ISO_IR 126\\GBK\\ISO 2022 IR 144\\ISO_IR 192");
        let names: Vec<&str> = c.encs.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(names, ["iso_ir_126", "iso_ir_144"]);
    }

    #[test]
    fn default_repertoire_is_latin1() {
        let c = Charset::default_repertoire();
        assert_eq!(c.decode(b"Buc^J\xe9r\xf4me", true), "Buc^Jérôme");
        assert_eq!(c.decode(b"\x80\x9f", false), "\u{80}\u{9f}");
        assert_eq!(c.encode("Jérôme").as_deref(), Some(&b"J\xe9r\xf4me"[..]));
        assert_eq!(c.encode("€"), None);
        assert_eq!(c.encode(""), Some(Vec::new()));
    }

    #[test]
    fn single_byte_sets() {
        let cases: [(&str, &[u8], &str); 9] = [
            ("ISO_IR 100", b"\xc4neas^R\xfcdiger", "Äneas^Rüdiger"),
            ("ISO_IR 101", b"Wa\xb3\xeasa", "Wałęsa"),
            ("ISO_IR 109", b"anta\xfdnomo", "antaŭnomo"),
            ("ISO_IR 110", b"v\xe0rds", "vārds"),
            (
                "ISO_IR 126",
                b"\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2",
                "Διονυσιος",
            ),
            (
                "ISO_IR 127",
                b"\xe2\xc8\xc7\xe6\xea^\xe4\xe6\xd2\xc7\xd1",
                "قباني^لنزار",
            ),
            (
                "ISO_IR 138",
                b"\xf9\xf8\xe5\xef^\xe3\xe1\xe5\xf8\xe4",
                "שרון^דבורה",
            ),
            ("ISO_IR 144", b"\xbb\xee\xdace\xdc\xd1yp\xd3", "Люкceмбypг"),
            ("ISO_IR 148", b"\xc7avu\xfeo\xf0lu", "Çavuşoğlu"),
        ];
        for (term, raw, text) in cases {
            let c = cs(term);
            assert_eq!(c.decode(raw, true), text, "{term}");
            assert_eq!(c.encode(text).as_deref(), Some(raw), "{term}");
        }
        let thai = cs("ISO_IR 166");
        assert_eq!(
            thai.decode(b"\xb9\xd2\xc1\xa0\xdb", false),
            "นาม\u{FFFD}\u{FFFD}"
        );
        assert_eq!(
            thai.encode("นามสกุล").as_deref(),
            Some(&b"\xb9\xd2\xc1\xca\xa1\xd8\xc5"[..])
        );
        // ISO 8859-3 has holes, ISO_IR 148 is not windows-1254
        assert_eq!(cs("ISO_IR 109").decode(b"\xa5", false), "\u{FFFD}");
        assert_eq!(cs("ISO_IR 148").decode(b"\x80", false), "\u{80}");
        assert_eq!(cs("ISO_IR 100").decode(b"\x80", false), "\u{80}");
        assert_eq!(cs("ISO_IR 144").encode("é"), None);
    }

    #[test]
    fn multi_byte_sets() {
        let utf8 = cs("ISO_IR 192");
        assert_eq!(
            utf8.decode("Wang^XiaoDong=王^小東=".as_bytes(), true),
            "Wang^XiaoDong=王^小東="
        );
        assert_eq!(
            utf8.decode(b"Buc^J\xc3r\xf4me\xe4\xb8", true),
            "Buc^J\u{FFFD}r\u{FFFD}me\u{FFFD}"
        );
        assert_eq!(utf8.encode("😀").as_deref(), Some("😀".as_bytes()));

        let gb = cs("GB18030");
        assert_eq!(
            gb.decode(b"Wang^XiaoDong=\xcd\xf5^\xd0\xa1\xb6\xab=", true),
            "Wang^XiaoDong=王^小东="
        );
        assert_eq!(
            gb.decode(
                b"\x81\x30\x81\x30\x95\x32\x82\x36\x84\x31\xa4\x39\x81\x30",
                false
            ),
            "\u{80}\u{20000}\u{FFFF}\u{FFFD}"
        );
        assert_eq!(
            gb.encode("\u{80}\u{20000}").as_deref(),
            Some(&b"\x81\x30\x81\x30\x95\x32\x82\x36"[..])
        );
        assert_eq!(gb.decode(b"\xa8\xbc", false), "\u{E7C7}"); // Python's (2000 edition) mapping

        let gbk = cs("GBK");
        assert_eq!(
            gbk.decode(b"\xcd\xf5\x80\xa2\xe3", false),
            "王\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert_eq!(gbk.encode("王").as_deref(), Some(&b"\xcd\xf5"[..]));
        assert_eq!(gbk.encode("€"), None);

        let sjis = cs("ISO_IR 13");
        assert_eq!(
            sjis.decode(b"\xd4\xcf\xc0\xde^\x8eR\x96\xec\x81", true),
            "ﾔﾏﾀﾞ^山野\u{FFFD}"
        );
        // pydicom writes ISO_IR 13 as JIS X 0201 only, one of katakana or Roman per piece
        assert_eq!(
            sjis.encode("ﾔﾏﾀﾞ^ﾀﾛｳ").as_deref(),
            Some(&b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3"[..])
        );
        assert_eq!(sjis.encode("山"), None);
        assert_eq!(sjis.encode("¥"), None); // would read back as "\"

        let kr = cs("ISO 2022 IR 149");
        assert_eq!(
            kr.decode(b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xa2\xa4\xd4\xa4", false),
            "갂\u{FFFD}"
        );
        assert_eq!(
            kr.encode("갂").as_deref(),
            Some(&b"\xa4\xd4\xa4\xa1\xa4\xbf\xa4\xa2"[..])
        );
        assert_eq!(
            kr.encode("김희중").as_deref(),
            Some(&b"\xb1\xe8\xc8\xf1\xc1\xdf"[..])
        );
        assert_eq!(kr.encode("\u{3164}"), None);
    }

    #[test]
    fn code_extensions() {
        // chrH31 / chrH32 / chrI2 patient names
        let h31: &[u8] =
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
        let c = cs("\\ISO 2022 IR 87");
        assert_eq!(c.decode(h31, true), "Yamada^Tarou=山田^太郎=やまだ^たろう");
        assert_eq!(
            c.encode("Yamada^Tarou=山田^太郎=やまだ^たろう").as_deref(),
            Some(h31)
        );
        let h32: &[u8] = b"\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J";
        let c = cs("ISO 2022 IR 13\\ISO 2022 IR 87");
        assert_eq!(c.decode(h32, true), "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう");
        assert_eq!(
            c.encode("ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう").as_deref(),
            Some(h32)
        );
        let i2: &[u8] = b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf";
        let c = cs("\\ISO 2022 IR 149");
        assert_eq!(c.decode(i2, true), "Hong^Gildong=洪^吉洞=홍^길동");
        assert_eq!(
            c.encode("Hong^Gildong=洪^吉洞=홍^길동").as_deref(),
            Some(i2)
        );

        // pydicom's own expectations (test_charset.py)
        let c = cs("ISO 2022 IR 6\\ISO 2022 IR 87\\ISO 2022 IR 159");
        assert_eq!(
            c.encode("Mori^Ogai=森^鷗外=もり^おうがい").as_deref(),
            Some(&b"Mori^Ogai=\x1b$B?9\x1b(B^\x1b$(Dl?\x1b$B30\x1b(B=\x1b$B$b$j\x1b(B^\x1b$B$*$&$,$$\x1b(B"[..])
        );
        let c = cs("ISO 2022 IR 13\\ISO 2022 IR 87\\ISO 2022 IR 159");
        assert_eq!(
            c.encode("あaｱア齩").as_deref(),
            Some(&b"\x1b$B$\"\x1b(Ja\x1b)I\xb1\x1b$B%\"\x1b$(DmN\x1b(J"[..])
        );
        // the longest-prefix split writes ESC ( B before the ASCII part, as pydicom does
        assert_eq!(
            cs("\\ISO 2022 IR 87").encode("abc山田").as_deref(),
            Some(&b"\x1b(Babc\x1b$B;3ED\x1b(B"[..])
        );

        // single-byte extensions, several values
        let c = cs("ISO 2022 IR 100\\ISO 2022 IR 144\\ISO 2022 IR 126");
        let raw: &[u8] = b"Buc^J\xe9r\xf4me\\\x1b-F\xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2\\\x1b-L\xbb\xee\xdace\xdc\xd1yp\xd3";
        assert_eq!(c.decode(raw, true), "Buc^Jérôme\\Διονυσιος\\Люкceмбypг");
        assert_eq!(c.decode(raw, false), "Buc^Jérôme\\Διονυσιος\\Люкceмбypг");
        assert_eq!(
            c.encode("Buc^Jérôme\\Διονυσιος\\Люкceмбypг").as_deref(),
            Some(raw)
        );
        let c = cs("ISO 2022 IR 100\\ISO 2022 IR 126");
        assert_eq!(
            c.encode("Dionysios is Διονυσιος").as_deref(),
            Some(&b"\x1b-FDionysios is \xc4\xe9\xef\xed\xf5\xf3\xe9\xef\xf2"[..])
        );

        // a missing escape sequence after a delimiter: a person name goes back to the first set
        let c = cs("\\ISO 2022 IR 13");
        let raw = b"ASCII+\x1b)I\xd4\xcf\xc0\xde^\xc0\xdb\xb3";
        assert_eq!(c.decode(raw, true), "ASCII+ﾔﾏﾀﾞ^ÀÛ³");
        assert_eq!(c.decode(raw, false), "ASCII+ﾔﾏﾀﾞ^ﾀﾛｳ");
        // a line break ends a code extension; encoding announces it again
        let c = cs("\\ISO 2022 IR 144");
        assert_eq!(
            c.encode("Иван\nПетров").as_deref(),
            Some(&b"\x1b-L\xb8\xd2\xd0\xdd\n\x1b-L\xbf\xd5\xe2\xe0\xde\xd2"[..])
        );

        // unknown escape sequences and undecodable pieces: the first set, with replacement
        assert_eq!(
            cs("ISO_IR 100").decode(b"\x1b-F\xc4\xe9", true),
            "\u{1b}-FÄé"
        );
        assert_eq!(
            cs("\\ISO 2022 IR 87").decode(b"\x1b$B;3\xff\x1b(B", true),
            "\u{1b}$B;3ÿ"
        );
        assert_eq!(
            cs("ISO 2022 IR 159").decode(b"\x1b$(D\xc4\xe9", true),
            "\u{FFFD}\u{FFFD}"
        );
        // ESC ( B is always understood
        assert_eq!(cs("ISO_IR 192").decode(b"\x1b(Babc", false), "abc");
        // text with ESC cannot be written
        assert_eq!(Charset::default().encode("a\u{1b}(Bb"), None);
        // ¥ cannot be written as JIS X 0201 but can as Latin-1
        let c = cs("ISO 2022 IR 13\\ISO 2022 IR 100");
        assert_eq!(c.encode("¥").as_deref(), Some(&b"\x1b-A\xa5"[..]));
    }

    #[test]
    fn gb2312_extension() {
        // dicomscrub strips and writes ESC $ ) A (pydicom keeps it in the text and writes none)
        let c = cs("\\ISO 2022 IR 58");
        let raw: &[u8] = b"Zhang^XiaoDong=\x1b$)A\xd5\xc5^\x1b$)A\xd0\xa1\xb6\xab=";
        assert_eq!(c.decode(raw, true), "Zhang^XiaoDong=张^小东=");
        assert_eq!(c.encode("Zhang^XiaoDong=张^小东=").as_deref(), Some(raw));
        assert_eq!(
            cs("\\ISO 2022 58").decode(raw, true),
            "Zhang^XiaoDong=张^小东="
        );
    }

    #[test]
    fn round_trips() {
        let samples = [
            ("", "Doe^John"),
            ("ISO_IR 100", "Müller^Jürgen=Ä"),
            ("ISO_IR 192", "王^小東\\Ωμέγα"),
            ("GB18030", "王^小东\u{E7C7}\u{1E3F}\u{10FFFF}"),
            ("GBK", "王^小东"),
            ("ISO_IR 13", "ﾔﾏﾀﾞ^ﾀﾛｳ"),
            ("\\ISO 2022 IR 87\\ISO 2022 IR 159", "森^鷗外=abc\\＼−"),
            ("\\ISO 2022 IR 149", "홍^길동 갂"),
            ("ISO 2022 IR 100\\ISO 2022 IR 101\\ISO 2022 IR 109\\ISO 2022 IR 110\\ISO 2022 IR 148", "Wałęsa antaŭnomo vārds Çavuşoğlu"),
        ];
        for (term, text) in samples {
            let c = cs(term);
            let bytes = c.encode(text).unwrap_or_else(|| panic!("{term} {text}"));
            assert_eq!(c.decode(&bytes, true), text, "{term}");
            assert_eq!(c.decode(&bytes, false), text, "{term}");
        }
    }

    #[test]
    fn never_panics() {
        let terms = [
            "",
            "ISO_IR 13",
            "ISO_IR 192",
            "GB18030",
            "GBK",
            "ISO 2022 IR 149",
            "ISO 2022 IR 87",
            "ISO 2022 IR 159",
            "\\ISO 2022 IR 58",
            "ISO 2022 IR 13\\ISO 2022 IR 87\\ISO 2022 IR 159",
            "ISO 2022 IR 100\\ISO 2022 IR 126\\ISO 2022 IR 149",
            "iso2022_jp",
            "iso2022_jp_2",
            "ascii",
        ];
        let alphabet: &[u8] =
            b"\x1b$()-.&@BDCAJIN^=\\\r\n \x0e\x0f\x80\xa1\xa4\xd4\xfe\xff\x30\x39\x81\x21\x7e";
        let mut state: u32 = 12345;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for term in terms {
            let c = cs(term);
            for _ in 0..2000 {
                let n = (next() % 24) as usize;
                let bytes: Vec<u8> = (0..n)
                    .map(|_| {
                        let r = next();
                        if r % 3 == 0 {
                            (r >> 8) as u8
                        } else {
                            alphabet[(r >> 8) as usize % alphabet.len()]
                        }
                    })
                    .collect();
                for pn in [false, true] {
                    let text = c.decode(&bytes, pn);
                    if let Some(again) = c.encode(&text) {
                        assert_eq!(c.decode(&again, pn), text);
                    }
                }
            }
        }
        for raw in [
            &b"\xff\xfe\\\\\0"[..],
            b"ISO\xe9IR 100",
            b"ISO 2022 \xffR 1",
            b"\\\\\\",
        ] {
            let _ = Charset::from_value(raw).decode(b"abc\x1b", true);
        }
    }
}
