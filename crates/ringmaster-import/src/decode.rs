//! Text decoding by byte-order mark: exports come as UTF-8, UTF-8 with BOM,
//! or UTF-16 (LE or BE) with BOM.

/// Decodes `bytes`, or says why it cannot.
/// Takes ownership so large UTF-8 files are not copied.
pub fn text(mut bytes: Vec<u8>) -> Result<String, String> {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
        return String::from_utf8(bytes).map_err(|e| {
            format!(
                "invalid UTF-8 after the BOM at byte {}",
                e.utf8_error().valid_up_to() + 3
            )
        });
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 (invalid byte at offset {}) and no UTF-16 byte-order mark",
            e.utf8_error().valid_up_to()
        )
    })
}

fn utf16(bytes: &[u8], f: fn([u8; 2]) -> u16) -> Result<String, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err("UTF-16 text with an odd number of bytes".into());
    }
    let units = bytes.chunks_exact(2).map(|c| f([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|e| {
            format!(
                "invalid UTF-16: unpaired surrogate {:#x}",
                e.unpaired_surrogate()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boms() {
        assert_eq!(text(b"\xEF\xBB\xBF{}".to_vec()).unwrap(), "{}");
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("{\"a\":1}\r\n".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(text(le).unwrap(), "{\"a\":1}\r\n");
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("x".encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect();
        assert_eq!(text(be).unwrap(), "x");
        assert!(
            text(b"\xFF\x00abc".to_vec())
                .unwrap_err()
                .contains("not UTF-8")
        );
    }
}
