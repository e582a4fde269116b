//! Length-prefixed fields, the encoding of what we store about running
//! (journal records, history entries): each field is a letter naming it,
//! its length in bytes in decimal, `:`, and its bytes. Lengths, not
//! separators, delimit fields, so a field may hold any text (key values
//! with newlines, both quote characters, or the letters of a separator).

/// Encodes `fields` in order.
pub fn encode(fields: &[(u8, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, data) in fields {
        out.push(*kind);
        out.extend_from_slice(data.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(data.as_bytes());
    }
    out
}

/// The fields of `payload`; `None` unless all of it is well-formed fields
/// of UTF-8 text.
pub fn decode(payload: &[u8]) -> Option<Vec<(u8, String)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let kind = payload[at];
        let rest = payload.get(at + 1..)?;
        let colon = at + 1 + rest.iter().take(20).position(|b| *b == b':')?;
        let len: usize = std::str::from_utf8(&payload[at + 1..colon])
            .ok()?
            .parse()
            .ok()?;
        let data = payload.get(colon + 1..colon.checked_add(1 + len)?)?;
        out.push((kind, std::str::from_utf8(data).ok()?.to_string()));
        at = colon + 1 + len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_text_round_trips_and_damage_is_refused() {
        let texts = ["", "a\nM\nb", "D12:x", "q'\"q", "]]>]]>", "東京"];
        let fields: Vec<(u8, &str)> = texts.iter().map(|t| (b'D', *t)).collect();
        let enc = encode(&fields);
        let dec = decode(&enc).expect("decode");
        assert_eq!(dec.len(), texts.len());
        for ((_, got), want) in dec.iter().zip(texts) {
            assert_eq!(got, want);
        }
        assert!(decode(&enc[..enc.len() - 1]).is_none(), "truncated");
        assert!(decode(b"D99999999999999999999999:x").is_none(), "overlong");
        assert!(decode(b"Dx:").is_none(), "bad length");
    }
}
