//! Property tests of the two parsers every byte from a client goes
//! through: the RFC 6242 framing decoder and the XML reader. Bounded (a
//! few hundred cases each) so they stay within CI's time; each property
//! is one a hostile client could break if it did not hold.

use proptest::prelude::*;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use wgnetconf::protocol::framing::{FrameReader, FrameWriter, Framing, FramingError};
use wgnetconf::protocol::xml::{self, Limits};

const EOM: &[u8] = b"]]>]]>";

/// Serves `data` in reads of the given sizes (cycled), as a network would
/// split it.
struct Split {
    data: Vec<u8>,
    pos: usize,
    sizes: Vec<usize>,
    turn: usize,
}

impl AsyncRead for Split {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let size = self.sizes[self.turn % self.sizes.len()].max(1);
        self.turn += 1;
        let n = size.min(buf.remaining()).min(self.data.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Every message the decoder yields until it stops, and how it stopped.
fn decode_all(
    data: Vec<u8>,
    sizes: Vec<usize>,
    framing: Framing,
    max: usize,
) -> (Vec<Vec<u8>>, Option<FramingError>) {
    runtime().block_on(async move {
        let mut r = FrameReader::new(
            Split {
                data,
                pos: 0,
                sizes,
                turn: 0,
            },
            max,
        );
        r.framing = framing;
        let mut out = Vec::new();
        loop {
            match r.next_message().await {
                Ok(Some(m)) => out.push(m),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    })
}

fn encode_all(msgs: &[Vec<u8>], framing: Framing) -> Vec<u8> {
    runtime().block_on(async {
        let mut out: Vec<u8> = Vec::new();
        {
            let mut w = FrameWriter::new(&mut out);
            w.framing = framing;
            for m in msgs {
                w.write_message(m).await.expect("write to a Vec");
            }
        }
        out
    })
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![Just(Framing::EndOfMessage), Just(Framing::Chunked)]
}

/// A message the end-of-message framing can carry: non-empty, not all
/// whitespace, and not containing (or completing) the delimiter.
fn eom_safe(m: &[u8]) -> bool {
    let mut framed = m.to_vec();
    framed.extend_from_slice(EOM);
    !m.iter().all(u8::is_ascii_whitespace)
        && framed.windows(EOM.len()).position(|w| w == EOM) == Some(m.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// What the writer frames, the reader gives back, however the bytes
    /// are split on the way.
    #[test]
    fn framing_round_trips(
        msgs in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..3000), 1..5),
        sizes in prop::collection::vec(1usize..5000, 1..8),
        framing in framing(),
    ) {
        let msgs: Vec<Vec<u8>> = match framing {
            Framing::EndOfMessage => msgs.into_iter().filter(|m| eom_safe(m)).collect(),
            Framing::Chunked => msgs,
        };
        let data = encode_all(&msgs, framing);
        let (got, err) = decode_all(data, sizes, framing, 1 << 20);
        prop_assert!(err.is_none(), "{err:?}");
        prop_assert_eq!(got, msgs);
    }

    /// Arbitrary bytes: the decoder ends (no panic, no hang), and never
    /// yields a message over the limit.
    #[test]
    fn framing_survives_garbage(
        data in prop::collection::vec(any::<u8>(), 0..4000),
        sizes in prop::collection::vec(1usize..700, 1..4),
        framing in framing(),
        max in 1usize..2000,
    ) {
        let (got, _) = decode_all(data, sizes, framing, max);
        prop_assert!(got.iter().all(|m| m.len() <= max));
    }

    /// Chunk headers built from plausible pieces: only RFC 6242 §4.2's
    /// grammar (LF # [1-9][0-9]* LF ... LF ## LF) yields a message.
    #[test]
    fn chunk_headers_follow_the_grammar(
        size_text in "[0-9]{0,11}",
        lf1 in prop_oneof![Just("\n"), Just("\r\n"), Just("")],
        body_len in 0usize..50,
    ) {
        let body = vec![b'x'; body_len];
        let data = [
            b"\n#".as_ref(),
            size_text.as_bytes(),
            lf1.as_bytes(),
            &body,
            b"\n##\n",
        ]
        .concat();
        let (got, _) = decode_all(data, vec![7], Framing::Chunked, 1 << 20);
        let valid = lf1 == "\n"
            && !size_text.is_empty()
            && !size_text.starts_with('0')
            && size_text.parse::<u64>().ok() == Some(body_len as u64);
        prop_assert_eq!(got.len() == 1, valid, "{:?} -> {:?}", size_text, got);
    }

    /// Size limits hold whichever framing: a message over `max` is
    /// refused as too large, one within it is delivered.
    #[test]
    fn size_limit_is_exact(len in 1usize..3000, max in 1usize..3000, framing in framing()) {
        let msg = vec![b'a'; len];
        let data = encode_all(std::slice::from_ref(&msg), framing);
        let (got, err) = decode_all(data, vec![512], framing, max);
        if len > max {
            prop_assert!(matches!(err, Some(FramingError::TooLarge(_))), "{err:?}");
            prop_assert!(got.is_empty());
        } else {
            prop_assert_eq!(got, vec![msg]);
        }
    }

    /// Arbitrary bytes and XML-ish text: the reader answers (Ok or Err),
    /// never panics.
    #[test]
    fn xml_reader_survives_garbage(data in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = xml::parse_limited(&data, &Limits::default());
    }

    #[test]
    fn xml_reader_survives_xmlish(text in "[<>/=\"'a-c:&;#x0-9 !?\\[\\]-]{0,300}") {
        let _ = xml::parse_limited(text.as_bytes(), &Limits::default());
    }

    /// Attributes: accepted exactly when within the per-element limit and
    /// all distinct.
    #[test]
    fn attribute_limits_and_duplicates(n in 0usize..150, dup in any::<bool>(), limit in 1usize..100) {
        let mut names: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
        if dup && n >= 2 {
            names[n - 1] = names[0].clone();
        }
        let attrs: String = names.iter().map(|a| format!(" {a}=\"v\"")).collect();
        let doc = format!("<r{attrs}/>");
        let limits = Limits { max_attrs_per_element: limit, ..Limits::default() };
        let ok = xml::parse_limited(doc.as_bytes(), &limits).is_ok();
        prop_assert_eq!(ok, n <= limit && !(dup && n >= 2));
    }

    /// Depth: accepted exactly when within the limit, in ordinary content
    /// and inside an edit-config payload (kept raw, checked all the same).
    #[test]
    fn depth_limit_is_exact(depth in 1usize..300, max in 4usize..200, in_payload in any::<bool>()) {
        let limits = Limits { max_depth: max, ..Limits::default() };
        let inner = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let (doc, total) = if in_payload {
            (format!("<rpc xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"1\"><edit-config><config>{inner}</config></edit-config></rpc>"), depth + 3)
        } else {
            (inner, depth)
        };
        let ok = xml::parse_limited(doc.as_bytes(), &limits).is_ok();
        prop_assert_eq!(ok, total <= max, "depth {} max {}", total, max);
    }

    /// Text and attribute values survive escaping and parsing unchanged.
    #[test]
    fn escaped_values_round_trip(value in "[ -~\u{a0}-\u{2fff}]{0,200}") {
        let doc = format!(
            "<r v=\"{}\"><t>{}</t></r>",
            xml::escape(&value),
            xml::escape_text(&value)
        );
        let root = xml::parse(doc.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&root.attr("v").map(|a| a.value.clone()), &Some(value.clone()));
        let t = root.elems().next().map(|e| e.children.clone());
        let text: String = t
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| match c {
                xml::Child::Text(s) => Some(s),
                _ => None,
            })
            .collect();
        prop_assert_eq!(text, value);
    }
}
