//! Transfer syntaxes: how the data set after the File Meta is encoded.

/// The encoding facts the reader and writer need about a transfer syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferSyntax {
    pub uid: String,
    pub explicit_vr: bool,
    pub little_endian: bool,
    pub deflated: bool,
    /// Pixel data is a sequence of fragments (JPEG, JPEG-LS, JPEG 2000, RLE, MPEG, HTJ2K...).
    pub encapsulated: bool,
}

pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
pub const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
pub const DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1.99";
pub const DEFLATED_IMAGE_FRAME_COMPRESSION: &str = "1.2.840.10008.1.2.8.1";

impl TransferSyntax {
    /// The syntax named by a UID. Every syntax other than the three native ones and deflate is
    /// explicit VR little endian (PS3.5 A.4), with encapsulated pixel data.
    pub fn from_uid(uid: &str) -> TransferSyntax {
        let uid = uid.trim_end_matches(['\0', ' ']).trim_start();
        let (explicit_vr, little_endian, deflated, encapsulated) = match uid {
            IMPLICIT_VR_LITTLE_ENDIAN => (false, true, false, false),
            EXPLICIT_VR_LITTLE_ENDIAN => (true, true, false, false),
            EXPLICIT_VR_BIG_ENDIAN => (true, false, false, false),
            DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN => (true, true, true, false),
            // Encapsulated Uncompressed Explicit VR Little Endian and the rest.
            _ => (true, true, false, true),
        };
        TransferSyntax {
            uid: uid.to_string(),
            explicit_vr,
            little_endian,
            deflated,
            encapsulated,
        }
    }

    /// The syntax a file without File Meta was detected to be in.
    pub fn detected(explicit_vr: bool, little_endian: bool) -> TransferSyntax {
        let uid = match (explicit_vr, little_endian) {
            (false, _) => IMPLICIT_VR_LITTLE_ENDIAN,
            (true, true) => EXPLICIT_VR_LITTLE_ENDIAN,
            (true, false) => EXPLICIT_VR_BIG_ENDIAN,
        };
        TransferSyntax::from_uid(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        assert!(!TransferSyntax::from_uid("1.2.840.10008.1.2\0").explicit_vr);
        assert!(!TransferSyntax::from_uid(EXPLICIT_VR_BIG_ENDIAN).little_endian);
        assert!(TransferSyntax::from_uid(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN).deflated);
        assert!(TransferSyntax::from_uid("1.2.840.10008.1.2.4.50").encapsulated);
        assert!(!TransferSyntax::from_uid(EXPLICIT_VR_LITTLE_ENDIAN).encapsulated);
    }
}
