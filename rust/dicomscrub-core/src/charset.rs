//! TEMPORARY stand-in (ASCII / Latin-1 / UTF-8 only) until the full charset module lands.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Charset {
    terms: Vec<String>,
}

impl Charset {
    pub fn from_value(raw: &[u8]) -> Charset {
        let s = String::from_utf8_lossy(raw);
        Charset {
            terms: s
                .split('\\')
                .map(|t| t.trim_matches([' ', '\0']).to_string())
                .collect(),
        }
    }
    pub fn default_repertoire() -> Charset {
        Charset::default()
    }
    pub fn is_known(&self) -> bool {
        true
    }
    fn utf8(&self) -> bool {
        self.terms.iter().any(|t| t == "ISO_IR 192")
    }
    pub fn decode(&self, bytes: &[u8], _is_person_name: bool) -> String {
        if self.utf8() {
            String::from_utf8_lossy(bytes).into_owned()
        } else {
            bytes.iter().map(|&b| b as char).collect()
        }
    }
    pub fn encode(&self, text: &str) -> Option<Vec<u8>> {
        if self.utf8() {
            return Some(text.as_bytes().to_vec());
        }
        text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
    }
}
