//! Issue 12: a corpus of malformed, oversized and adversarial inputs, each
//! with the outcome the RFCs prescribe (written from the RFCs, not
//! recorded from the agent), run against the real agent over SSH.
//!
//! - Framing (RFC 6242): in either framing, a message the receiver cannot
//!   delimit cannot be skipped, so the session ends (§4.2: a chunked
//!   message is `1*chunk end-of-chunks`, chunk-size `[1-9][0-9]*` up to
//!   4294967295); a message over the agent's size limit also ends it.
//! - XML: a message that is not well-formed XML 1.0 is answered with
//!   `malformed-message` (RFC 6241 Appendix A, error-type rpc) on base:1.1
//!   sessions, and with `operation-failed` (type rpc) on base:1.0 sessions,
//!   to which malformed-message "MUST NOT be sent" (Appendix A); the
//!   session goes on. DOCTYPEs (entity definitions: billion laughs, XXE),
//!   messages past the depth and attribute limits are refused the same
//!   way: the agent cannot parse them.
//! - NETCONF (RFC 6241 §4.1, §7, Appendix A): envelope errors are type
//!   rpc; parameter errors are type protocol; data errors application.
//! - SSH: garbage instead of SSH ends the connection.
//!
//! After every case a fresh session is served (each case opens its own,
//! and the last check opens one more); a case whose outcome is an
//! rpc-error must leave its own session usable too. Cases are batched on
//! one agent; failures are collected and reported together.

#[path = "common/netconf.rs"]
mod netconf;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};

use netconf::*;

/// The agent's message size limit in this test (small, so oversized cases
/// stay cheap).
const MAX_MESSAGE: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    V10,
    V11,
}

#[derive(Clone, Debug)]
enum Expect {
    /// One rpc-error of this (error-type, error-tag); the session goes on.
    Error(&'static str, &'static str),
    /// Not parseable: malformed-message on base:1.1, operation-failed on
    /// base:1.0 (both error-type rpc); the session goes on.
    Malformed,
    /// The session ends (a last rpc-error before it is allowed).
    Closed,
    /// A well-formed, valid request: an rpc-reply without rpc-error.
    Ok,
    /// Refused with an rpc-error of this error-type, where the RFCs name
    /// no particular tag; the session goes on.
    AnyError(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The bytes are sent after a completed hello exchange.
    Rpc,
    /// The bytes are sent instead of the client's hello.
    Hello,
}

struct Case {
    name: String,
    base: Base,
    phase: Phase,
    /// Exactly what goes on the wire (framing included).
    bytes: Vec<u8>,
    /// Close our side after sending (a truncated message).
    eof: bool,
    expect: Expect,
}

fn frame(base: Base, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match base {
        Base::V10 => {
            out.extend_from_slice(msg);
            out.extend_from_slice(EOM);
        }
        Base::V11 => {
            out.extend_from_slice(format!("\n#{}\n", msg.len()).as_bytes());
            out.extend_from_slice(msg);
            out.extend_from_slice(b"\n##\n");
        }
    }
    out
}

fn rpc(body: &str) -> String {
    format!("<rpc xmlns=\"{NC_NS}\" message-id=\"1\">{body}</rpc>")
}

const GET_CONFIG: &str = "<get-config><source><running/></source></get-config>";

struct Corpus(Vec<Case>);

impl Corpus {
    fn add(&mut self, name: &str, base: Base, bytes: Vec<u8>, expect: Expect) {
        self.0.push(Case {
            name: format!("{name} [{base:?}]"),
            base,
            phase: Phase::Rpc,
            bytes,
            eof: false,
            expect,
        });
    }

    /// A framed message, on both framings.
    fn both(&mut self, name: &str, msg: &[u8], expect: Expect) {
        for base in [Base::V10, Base::V11] {
            self.add(name, base, frame(base, msg), expect.clone());
        }
    }

    fn raw(&mut self, name: &str, base: Base, bytes: &[u8], eof: bool, expect: Expect) {
        self.0.push(Case {
            name: format!("{name} [{base:?}]"),
            base,
            phase: Phase::Rpc,
            bytes: bytes.to_vec(),
            eof,
            expect,
        });
    }

    fn hello(&mut self, name: &str, msg: &str, expect: Expect) {
        self.0.push(Case {
            name: format!("hello: {name}"),
            base: Base::V10,
            phase: Phase::Hello,
            bytes: frame(Base::V10, msg.as_bytes()),
            eof: false,
            expect,
        });
    }
}

fn framing_cases(c: &mut Corpus) {
    let ok = rpc(GET_CONFIG);
    // Positive controls: the decoder must not refuse what RFC 6242 allows.
    c.raw(
        "one byte per chunk",
        Base::V11,
        &{
            let mut v = Vec::new();
            for b in ok.bytes() {
                v.extend_from_slice(b"\n#1\n");
                v.push(b);
            }
            v.extend_from_slice(b"\n##\n");
            v
        },
        false,
        Expect::Ok,
    );
    c.raw(
        "two chunks",
        Base::V11,
        &{
            let (a, b) = ok.split_at(10);
            format!("\n#{}\n{a}\n#{}\n{b}\n##\n", a.len(), b.len()).into_bytes()
        },
        false,
        Expect::Ok,
    );
    c.raw(
        "whitespace before the message",
        Base::V10,
        &[b"\n\n  ".as_ref(), &frame(Base::V10, ok.as_bytes())].concat(),
        false,
        Expect::Ok,
    );

    // Chunked framing errors (RFC 6242 §4.2): the session ends.
    let body = ok.as_bytes();
    let bad_headers: &[(&str, Vec<u8>)] = &[
        ("chunk size 0", b"\n#0\n".to_vec()),
        (
            "chunk size with a leading zero",
            [format!("\n#0{}\n", body.len()).as_bytes(), body, b"\n##\n"].concat(),
        ),
        ("chunk size not digits", b"\n#abc\n<rpc/>\n##\n".to_vec()),
        ("chunk size empty", b"\n#\n<rpc/>\n##\n".to_vec()),
        ("chunk size negative", b"\n#-5\n<rpc/>\n##\n".to_vec()),
        ("chunk size with a plus", b"\n#+5\n<rpc/>\n##\n".to_vec()),
        ("chunk size 11 digits", b"\n#12345678901\n".to_vec()),
        ("chunk size over 4294967295", b"\n#4294967296\n".to_vec()),
        ("chunk size hex", b"\n#0x10\n".to_vec()),
        ("chunk size with spaces", b"\n# 5\n<rpc/>\n##\n".to_vec()),
        (
            "CRLF chunk header",
            [
                format!("\r\n#{}\r\n", body.len()).as_bytes(),
                body,
                b"\r\n##\r\n",
            ]
            .concat(),
        ),
        (
            "no LF before #",
            [format!("#{}\n", body.len()).as_bytes(), body, b"\n##\n"].concat(),
        ),
        ("end-of-chunks with no chunk", b"\n##\n".to_vec()),
        (
            "end-of-chunks without LF",
            [format!("\n#{}\n", body.len()).as_bytes(), body, b"\n##X"].concat(),
        ),
        ("EOM instead of chunks", frame(Base::V10, body)),
        (
            "garbage between chunks",
            [
                format!("\n#{}\n", body.len()).as_bytes(),
                body,
                b"junk\n##\n",
            ]
            .concat(),
        ),
        ("three hashes", b"\n###\n".to_vec()),
        ("NUL in chunk header", b"\n#\x005\n<rpc/>\n##\n".to_vec()),
        (
            "chunk size past the message limit",
            format!("\n#{}\n", MAX_MESSAGE + 1).into_bytes(),
        ),
        ("chunk size 4294967295", b"\n#4294967295\n".to_vec()),
    ];
    for (name, bytes) in bad_headers {
        c.raw(name, Base::V11, bytes, false, Expect::Closed);
    }
    // Chunks adding up past the limit.
    c.raw(
        "chunks adding up past the limit",
        Base::V11,
        &{
            let part = vec![b' '; MAX_MESSAGE / 2 + 1];
            [
                format!("\n#{}\n", part.len()).as_bytes(),
                &part,
                format!("\n#{}\n", part.len()).as_bytes(),
                &part,
                b"\n##\n",
            ]
            .concat()
        },
        false,
        Expect::Closed,
    );
    // Truncated: the peer goes away inside a message.
    c.raw(
        "EOF inside a chunk",
        Base::V11,
        b"\n#100\n<rpc",
        true,
        Expect::Closed,
    );
    c.raw(
        "EOF inside a chunk header",
        Base::V11,
        b"\n#10",
        true,
        Expect::Closed,
    );
    c.raw(
        "EOF before end-of-chunks",
        Base::V11,
        &[format!("\n#{}\n", body.len()).as_bytes(), body].concat(),
        true,
        Expect::Closed,
    );
    c.raw(
        "EOF inside an EOM message",
        Base::V10,
        b"<rpc xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\" message-id=\"1\">",
        true,
        Expect::Closed,
    );
    c.raw(
        "EOF after half an EOM marker",
        Base::V10,
        &[body, b"]]>]]".as_ref()].concat(),
        true,
        Expect::Closed,
    );
    // Over the size limit without an end-of-message.
    c.raw(
        "EOM message past the limit",
        Base::V10,
        &vec![b'x'; MAX_MESSAGE + 10],
        false,
        Expect::Closed,
    );
    c.raw(
        "EOM message past the limit, terminated",
        Base::V10,
        &frame(Base::V10, &vec![b' '; MAX_MESSAGE + 10]),
        false,
        Expect::Closed,
    );
    // The end-of-message marker inside a chunk is just data, here inside
    // a text node where XML forbids "]]>" (XML 1.0 §2.4): not well-formed.
    c.raw(
        "EOM inside a chunk, in text",
        Base::V11,
        &frame(
            Base::V11,
            rpc("<get-config><source><running/></source>]]>]]></get-config>").as_bytes(),
        ),
        false,
        Expect::Malformed,
    );
    c.raw(
        "EOM inside a chunk, between elements",
        Base::V11,
        &frame(Base::V11, format!("{ok}]]>]]>").as_bytes()),
        false,
        Expect::Malformed,
    );
    // An empty message is not an XML document.
    c.raw(
        "empty EOM message",
        Base::V10,
        EOM,
        false,
        Expect::Malformed,
    );
    c.raw(
        "whitespace-only chunk",
        Base::V11,
        b"\n#3\n   \n##\n",
        false,
        Expect::Malformed,
    );
}

fn xml_cases(c: &mut Corpus) {
    let m = Expect::Malformed;
    let nc = NC_NS;
    let not_well_formed: Vec<(&str, String)> = vec![
        ("unclosed root", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><get-config><source><running/></source></get-config>")),
        ("mismatched end tag", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><get></got></rpc>")),
        ("two roots", format!("{}{}", rpc(GET_CONFIG), rpc(GET_CONFIG))),
        ("text before the root", format!("hello{}", rpc(GET_CONFIG))),
        ("text after the root", format!("{}trailing", rpc(GET_CONFIG))),
        ("unquoted attribute", format!("<rpc xmlns=\"{nc}\" message-id=1><get/></rpc>")),
        ("attribute without value", format!("<rpc xmlns=\"{nc}\" message-id><get/></rpc>")),
        ("< in attribute value", format!("<rpc xmlns=\"{nc}\" message-id=\"<\"><get/></rpc>")),
        ("unterminated comment", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><!-- <get/></rpc>")),
        ("unterminated CDATA", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><![CDATA[<get/></rpc>")),
        ("unterminated PI", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><?pi <get/></rpc>")),
        ("lone <", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><get/> < </rpc>")),
        ("bad element name", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><1get/></rpc>")),
        ("end tag only", "</rpc>".into()),
        ("not XML at all", "GET / HTTP/1.1\r\nHost: x\r\n\r\n".into()),
        ("JSON", "{\"rpc\": {\"get\": {}}}".into()),
        ("duplicate attribute", format!("<rpc xmlns=\"{nc}\" message-id=\"1\" message-id=\"2\"><get/></rpc>")),
        ("duplicate namespace declaration", format!("<rpc xmlns=\"{nc}\" xmlns:a=\"urn:a\" xmlns:a=\"urn:b\" message-id=\"1\"><get/></rpc>")),
        ("duplicate attribute on a data node", rpc("<edit-config><target><candidate/></target><config><system xmlns=\"urn:wgnetconf:test\" a=\"1\" a=\"1\"/></config></edit-config>")),
        ("unbound element prefix", "<x:rpc message-id=\"1\"><get/></x:rpc>".into()),
        ("unbound prefix on the operation", rpc("<x:get/>")),
        ("unbound attribute prefix", format!("<rpc xmlns=\"{nc}\" message-id=\"1\" x:a=\"1\"><get/></rpc>")),
        ("unbound prefix in edit data", rpc("<edit-config><target><candidate/></target><config><x:system/></config></edit-config>")),
        ("xmlns:xmlns declared", format!("<rpc xmlns=\"{nc}\" xmlns:xmlns=\"urn:x\" message-id=\"1\"><get/></rpc>")),
        ("undefined entity", rpc("<get-config><source><running/></source>&foo;</get-config>")),
        ("entity without semicolon", rpc("<get-config><source><running/></source>&amp</get-config>")),
        ("bare ampersand", rpc("<get-config><source><running/></source> & </get-config>")),
        ("char reference to NUL", rpc("<get-config><source><running/></source>&#0;</get-config>")),
        ("char reference to a surrogate", rpc("<get-config><source><running/></source>&#xD800;</get-config>")),
        ("char reference past Unicode", rpc("<get-config><source><running/></source>&#x110000;</get-config>")),
        ("char reference not a number", rpc("<get-config><source><running/></source>&#xZZ;</get-config>")),
        ("undefined entity in an attribute", format!("<rpc xmlns=\"{nc}\" message-id=\"&foo;\"><get/></rpc>")),
        ("undefined entity in edit data", rpc("<edit-config><target><candidate/></target><config><system xmlns=\"urn:wgnetconf:test\"><hostname>&foo;</hostname></system></config></edit-config>")),
        ("DOCTYPE", format!("<!DOCTYPE rpc>{}", rpc(GET_CONFIG))),
        ("billion laughs", format!("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]><rpc xmlns=\"{nc}\" message-id=\"1\"><get-config><source><running/></source><filter>&lol3;</filter></get-config></rpc>")),
        ("external entity (XXE)", format!("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><rpc xmlns=\"{nc}\" message-id=\"&x;\"><get/></rpc>")),
        ("parameter entity", format!("<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x\"> %p;]>{}", rpc(GET_CONFIG))),
        ("DOCTYPE inside edit data", rpc("<edit-config><target><candidate/></target><config><!DOCTYPE x><system xmlns=\"urn:wgnetconf:test\"/></config></edit-config>")),
        ("XML declaration in the middle", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><?xml version=\"1.0\"?><get/></rpc>")),
        ("]]> in text", rpc("<get-config><source><running/></source>]]></get-config>")),
    ];
    for (name, msg) in &not_well_formed {
        c.both(name, msg.as_bytes(), m.clone());
    }
    // Bytes that are not UTF-8, or NUL (not an XML character).
    let bad_bytes: &[(&str, &[u8])] = &[
        ("invalid UTF-8 in text", b"\xff\xfe"),
        ("overlong UTF-8", b"\xc0\xaf"),
        ("lone continuation byte", b"\x80"),
        ("truncated UTF-8 sequence", b"\xe2\x82"),
        ("UTF-8 encoded surrogate", b"\xed\xa0\x80"),
        ("NUL in text", b"\0"),
    ];
    for (name, bytes) in bad_bytes {
        let head = format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><get-config><source><running/></source><filter type=\"subtree\"><a>");
        let msg = [head.as_bytes(), bytes, b"</a></filter></get-config></rpc>"].concat();
        c.both(name, &msg, m.clone());
        let in_attr = [
            format!("<rpc xmlns=\"{nc}\" message-id=\"").as_bytes(),
            bytes,
            b"\"><get/></rpc>",
        ]
        .concat();
        c.both(&format!("{name}, in an attribute"), &in_attr, m.clone());
    }
    c.both(
        "invalid UTF-8 in an element name",
        &[
            format!("<rpc xmlns=\"{nc}\" message-id=\"1\"><g").as_bytes(),
            b"\xff",
            b"t/></rpc>",
        ]
        .concat(),
        m.clone(),
    );
    c.both(
        "UTF-16 byte order mark",
        &[b"\xfe\xff".as_ref(), rpc(GET_CONFIG).as_bytes()].concat(),
        m.clone(),
    );
    c.both("NUL in edit data", &[rpc("<edit-config><target><candidate/></target><config><system xmlns=\"urn:wgnetconf:test\"><hostname>a").as_bytes(), b"\0".as_ref(), b"</hostname></system></config></edit-config></rpc>"].concat(), m.clone());

    // Depth: the limit is 128 (default); deeper is refused unparsed.
    for depth in [129usize, 1000, 20_000] {
        let inner = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        c.both(
            &format!("{depth} nested elements in a filter"),
            rpc(&format!(
                "<get><filter type=\"subtree\">{inner}</filter></get>"
            ))
            .as_bytes(),
            m.clone(),
        );
    }
    let inner = format!("{}{}", "<a>".repeat(200), "</a>".repeat(200));
    c.both("200 nested elements in edit data", rpc(&format!("<edit-config><target><candidate/></target><config><system xmlns=\"urn:wgnetconf:test\">{inner}</system></config></edit-config>")).as_bytes(), m.clone());
    c.both(
        "200 nested unclosed elements",
        format!("<rpc xmlns=\"{nc}\" message-id=\"1\">{}", "<a>".repeat(200)).as_bytes(),
        m.clone(),
    );
    // Attribute floods.
    for n in [65usize, 1000, 20_000] {
        let attrs: String = (0..n).map(|i| format!(" a{i}=\"1\"")).collect();
        c.both(
            &format!("{n} attributes on the rpc"),
            format!("<rpc xmlns=\"{nc}\" message-id=\"1\"{attrs}>{GET_CONFIG}</rpc>").as_bytes(),
            m.clone(),
        );
        c.both(&format!("{n} attributes on a data node"), rpc(&format!("<edit-config><target><candidate/></target><config><system xmlns=\"urn:wgnetconf:test\"{attrs}/></config></edit-config>")).as_bytes(), m.clone());
    }
    let decls: String = (0..1000)
        .map(|i| format!(" xmlns:p{i}=\"urn:p{i}\""))
        .collect();
    c.both(
        "1000 namespace declarations",
        format!("<rpc xmlns=\"{nc}\" message-id=\"1\"{decls}>{GET_CONFIG}</rpc>").as_bytes(),
        m.clone(),
    );
    let nested_decls: String = (0..40)
        .map(|i| {
            format!(
                "<a{}>",
                (0..10)
                    .map(|j| format!(" xmlns:q{i}x{j}=\"urn:q\""))
                    .collect::<String>()
            )
        })
        .collect();
    c.both(
        "400 namespace declarations in scope",
        rpc(&format!(
            "<get><filter type=\"subtree\">{nested_decls}{}</filter></get>",
            (0..40).map(|_| "</a>").collect::<String>()
        ))
        .as_bytes(),
        m.clone(),
    );
    let dup_flood: String = (0..5000).map(|_| " a=\"1\"").collect();
    c.both(
        "5000 copies of one attribute",
        format!("<rpc xmlns=\"{nc}\" message-id=\"1\"{dup_flood}><get/></rpc>").as_bytes(),
        m.clone(),
    );
}

fn netconf_cases(c: &mut Corpus) {
    let nc = NC_NS;
    let (rpc_t, proto) = ("rpc", "protocol");
    let e = Expect::Error;
    let cases: Vec<(&str, String, Expect)> = vec![
        // RFC 6241 §4.1: a missing message-id is missing-attribute.
        ("missing message-id", format!("<rpc xmlns=\"{nc}\">{GET_CONFIG}</rpc>"), e(rpc_t, "missing-attribute")),
        ("message-id in another namespace only", format!("<rpc xmlns=\"{nc}\" xmlns:x=\"urn:x\" x:message-id=\"1\">{GET_CONFIG}</rpc>"), e(rpc_t, "missing-attribute")),
        ("root is not rpc", format!("<get xmlns=\"{nc}\" message-id=\"1\"/>"), e(rpc_t, "unknown-element")),
        ("root is rpc-reply", format!("<rpc-reply xmlns=\"{nc}\" message-id=\"1\"><ok/></rpc-reply>"), e(rpc_t, "unknown-element")),
        ("root is a hello after the hello", format!("<hello xmlns=\"{nc}\"><capabilities><capability>{BASE_1_0}</capability></capabilities></hello>"), e(rpc_t, "unknown-element")),
        ("rpc without namespace", format!("<rpc message-id=\"1\">{GET_CONFIG}</rpc>"), e(rpc_t, "unknown-element")),
        ("rpc in a wrong namespace", format!("<rpc xmlns=\"urn:wrong\" message-id=\"1\">{GET_CONFIG}</rpc>"), e(rpc_t, "unknown-element")),
        ("rpc with no operation", format!("<rpc xmlns=\"{nc}\" message-id=\"1\"/>"), e(rpc_t, "missing-element")),
        ("rpc with only text", format!("<rpc xmlns=\"{nc}\" message-id=\"1\">get-config</rpc>"), e(rpc_t, "missing-element")),
        ("rpc with two operations", rpc(&format!("{GET_CONFIG}{GET_CONFIG}")), e(rpc_t, "unknown-element")),
        // Appendix A operation-not-supported.
        ("unknown operation", rpc("<frobnicate/>"), e(proto, "operation-not-supported")),
        ("operation in an unknown namespace", rpc("<get xmlns=\"urn:nope\"/>"), e(proto, "operation-not-supported")),
        ("operation named like a datastore", rpc("<running/>"), e(proto, "operation-not-supported")),
        ("operation with a 100 kB name", rpc(&format!("<{0}/>", "o".repeat(100_000))), e(proto, "operation-not-supported")),
        ("operation without namespace", format!("<nc:rpc xmlns:nc=\"{nc}\" message-id=\"1\"><get/></nc:rpc>"), e(proto, "unknown-namespace")),
        // §7.1: get-config needs a source.
        ("get-config without source", rpc("<get-config/>"), e(proto, "missing-element")),
        ("get-config empty source", rpc("<get-config><source/></get-config>"), e(proto, "missing-element")),
        ("get-config unknown datastore", rpc("<get-config><source><nowhere/></source></get-config>"), e(proto, "invalid-value")),
        ("get-config two datastores", rpc("<get-config><source><running/><candidate/></source></get-config>"), e(proto, "unknown-element")),
        ("get-config unknown parameter", rpc("<get-config><source><running/></source><bogus/></get-config>"), e(proto, "unknown-element")),
        ("get-config parameter in another namespace", rpc("<get-config><source xmlns=\"urn:x\"><running/></source></get-config>"), e(proto, "unknown-namespace")),
        ("lock without target", rpc("<lock/>"), e(proto, "missing-element")),
        ("unlock of a datastore not locked", rpc("<unlock><target><running/></target></unlock>"), e(proto, "operation-failed")),
        ("delete-config of running", rpc("<delete-config><target><running/></target></delete-config>"), e(proto, "invalid-value")),
        // §7.9: kill-session of a bad or own id is invalid-value.
        ("kill-session 0", rpc("<kill-session><session-id>0</session-id></kill-session>"), e(proto, "invalid-value")),
        ("kill-session not a number", rpc("<kill-session><session-id>abc</session-id></kill-session>"), e(proto, "invalid-value")),
        ("kill-session negative", rpc("<kill-session><session-id>-1</session-id></kill-session>"), e(proto, "invalid-value")),
        ("kill-session past u32", rpc("<kill-session><session-id>99999999999</session-id></kill-session>"), e(proto, "invalid-value")),
        ("kill-session unknown", rpc("<kill-session><session-id>4000000000</session-id></kill-session>"), e(proto, "invalid-value")),
        ("kill-session without id", rpc("<kill-session/>"), e(proto, "missing-element")),
        // §6 and §8.9: filters.
        ("filter of unknown type", rpc("<get><filter type=\"regex\">.*</filter></get>"), e(proto, "bad-attribute")),
        ("xpath filter without select", rpc("<get><filter type=\"xpath\"/></get>"), e(proto, "missing-attribute")),
        ("xpath filter not an expression", rpc("<get><filter type=\"xpath\" select=\"///\"/></get>"), e(proto, "invalid-value")),
        ("xpath filter with an undeclared prefix", rpc("<get><filter type=\"xpath\" select=\"/nope:system\"/></get>"), e(proto, "invalid-value")),
        ("xpath filter unbalanced", rpc("<get><filter type=\"xpath\" select=\"/wt:system[\" xmlns:wt=\"urn:wgnetconf:test\"/></get>"), e(proto, "invalid-value")),
        ("xpath filter past the length limit", rpc(&format!("<get><filter type=\"xpath\" select=\"/wt:system{}\" xmlns:wt=\"urn:wgnetconf:test\"/></get>", "[1]".repeat(2000))), e(proto, "too-big")),
        ("xpath filter of 100 kB", rpc(&format!("<get-config><source><running/></source><filter type=\"xpath\" select=\"{}\"/></get-config>", "/a".repeat(50_000))), e(proto, "too-big")),
        ("xpath bomb: 1000 nested parentheses", rpc(&format!("<get><filter type=\"xpath\" select=\"{}/wt:system{}\" xmlns:wt=\"urn:wgnetconf:test\"/></get>", "(".repeat(1000), ")".repeat(1000))), e(proto, "too-big")),
        ("xpath bomb: repeated predicates over all nodes", rpc(&format!("<get-config><source><running/></source><filter type=\"xpath\" select=\"//*{}\"/></get-config>", "[count(//*) &gt;= 0]".repeat(100))), e(proto, "too-big")),
        ("xpath bomb: nested predicates", rpc(&format!("<get-config><source><running/></source><filter type=\"xpath\" select=\"//*{}{}\"/></get-config>", "[//*".repeat(60), "]".repeat(60))), e(proto, "too-big")),
        ("xpath bomb: union of everything", rpc(&format!("<get-config><source><running/></source><filter type=\"xpath\" select=\"{}\"/></get-config>", vec!["//*"; 500].join("|"))), Expect::Ok),
        ("xpath bomb: absolute path in a predicate", rpc("<get><filter type=\"xpath\" select=\"//*[/wt:system]\" xmlns:wt=\"urn:wgnetconf:test\"/></get>"), e(proto, "too-big")),
        ("xpath bomb: parent steps in a predicate", rpc("<get><filter type=\"xpath\" select=\"//*[../../*]\"/></get>"), e(proto, "too-big")),
        ("xpath bomb: current() in a predicate", rpc("<get><filter type=\"xpath\" select=\"//*[current()//*]\"/></get>"), e(proto, "too-big")),
        ("xpath bomb: descendant axis in a predicate", rpc("<get><filter type=\"xpath\" select=\"//*[descendant::*]\"/></get>"), e(proto, "too-big")),
        ("xpath: nested relative predicates", rpc("<get-config><source><running/></source><filter type=\"xpath\" select=\"/wt:servers/wt:server[wt:port[. &gt; 1]][wt:name]\" xmlns:wt=\"urn:wgnetconf:test\"/></get-config>"), Expect::Ok),
        ("get-data xpath bomb", rpc("<get-data xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-nmda\" xmlns:ds=\"urn:ietf:params:xml:ns:yang:ietf-datastores\"><datastore>ds:operational</datastore><xpath-filter>//*[//*[//*]]</xpath-filter></get-data>"), e(proto, "too-big")),
        ("xpath select is a number", rpc("<get-config><source><running/></source><filter type=\"xpath\" select=\"1+1\"/></get-config>"), e(proto, "invalid-value")),
        ("subtree filter in an unknown namespace", rpc("<get-config><source><running/></source><filter type=\"subtree\"><nothing xmlns=\"urn:nothing\"/></filter></get-config>"), Expect::Ok),
        ("subtree filter 100 deep", rpc(&format!("<get-config><source><running/></source><filter type=\"subtree\">{}{}</filter></get-config>", "<a>".repeat(100), "</a>".repeat(100))), Expect::Ok),
        ("subtree filter with 5000 siblings", rpc(&format!("<get-config><source><running/></source><filter type=\"subtree\"><system xmlns=\"urn:wgnetconf:test\">{}</system></filter></get-config>", "<hostname/>".repeat(5000))), Expect::Ok),
        // RFC 6243 §4.5.1 / §3: an unknown with-defaults mode.
        ("with-defaults bogus", rpc("<get-config><source><running/></source><with-defaults xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults\">everything</with-defaults></get-config>"), e(proto, "invalid-value")),
        ("message-id of 100 kB", format!("<rpc xmlns=\"{nc}\" message-id=\"{}\">{GET_CONFIG}</rpc>", "9".repeat(100_000)), Expect::Ok),
        ("200 kB of whitespace inside the rpc", rpc(&format!("{}{GET_CONFIG}", " ".repeat(200_000))), Expect::Ok),
        ("200 kB text in a subtree filter content match", rpc(&format!("<get-config><source><running/></source><filter type=\"subtree\"><system xmlns=\"urn:wgnetconf:test\"><hostname>{}</hostname></system></filter></get-config>", "h".repeat(200_000))), Expect::Ok),
        ("comment flood", rpc(&format!("{}{GET_CONFIG}", "<!-- c -->".repeat(20_000))), Expect::Ok),
    ];
    for (name, msg, expect) in cases {
        c.both(name, msg.as_bytes(), expect);
    }
    edit_config_cases(c);
    hello_cases(c);
}

/// edit-config payloads of every wrong shape (RFC 6241 §7.2, Appendix A).
fn edit_config_cases(c: &mut Corpus) {
    let (proto, app) = ("protocol", "application");
    let e = Expect::Error;
    let t = TEST_NS;
    let edit = |params: &str, config: &str| {
        rpc(&format!("<edit-config><target><candidate/></target>{params}<config>{config}</config></edit-config>"))
    };
    let cases: Vec<(&str, String, Expect)> = vec![
        ("edit-config without target", rpc(&format!("<edit-config><config><system xmlns=\"{t}\"/></config></edit-config>")), e(proto, "missing-element")),
        ("edit-config without config", rpc("<edit-config><target><candidate/></target></edit-config>"), e(proto, "missing-element")),
        ("edit-config to an unknown datastore", rpc(&format!("<edit-config><target><elsewhere/></target><config><system xmlns=\"{t}\"/></config></edit-config>")), e(proto, "invalid-value")),
        ("edit-config default-operation bogus", edit("<default-operation>smash</default-operation>", ""), e(proto, "invalid-value")),
        ("edit-config test-option bogus", edit("<test-option>maybe</test-option>", ""), e(proto, "invalid-value")),
        ("edit-config error-option bogus", edit("<error-option>ignore-everything</error-option>", ""), e(proto, "invalid-value")),
        ("edit-config unknown parameter", edit("<bogus/>", ""), e(proto, "unknown-element")),
        ("edit-config operation attribute bogus", edit("", &format!("<system xmlns=\"{t}\" xmlns:nc=\"{NC_NS}\" nc:operation=\"smash\"/>")), e(proto, "bad-attribute")),
        ("edit-config operation attribute bogus, deep", edit("", &format!("<system xmlns=\"{t}\" xmlns:nc=\"{NC_NS}\"><hostname nc:operation=\"zap\">a</hostname></system>")), e(proto, "bad-attribute")),
        ("edit-config data in an unknown namespace", edit("", "<system xmlns=\"urn:nope\"/>"), e(app, "unknown-namespace")),
        // Unprefixed, it is in the default namespace: NETCONF's own.
        ("edit-config data in the NETCONF namespace", edit("", "<system/>"), e(app, "unknown-element")),
        ("edit-config unknown element", edit("", &format!("<system xmlns=\"{t}\"><colour>red</colour></system>")), e(app, "unknown-element")),
        ("edit-config value of the wrong type", edit("", &format!("<system xmlns=\"{t}\"><mtu>big</mtu></system>")), e(app, "invalid-value")),
        ("edit-config value out of range", edit("", &format!("<system xmlns=\"{t}\"><mtu>99999999</mtu></system>")), e(app, "invalid-value")),
        ("edit-config value against the pattern", edit("", &format!("<system xmlns=\"{t}\"><hostname>UPPER</hostname></system>")), e(app, "invalid-value")),
        ("edit-config value too long", edit("", &format!("<system xmlns=\"{t}\"><hostname>{}</hostname></system>", "a".repeat(100_000))), e(app, "invalid-value")),
        ("edit-config state data", edit("", &format!("<system xmlns=\"{t}\"><counter>1</counter></system>")), Expect::AnyError(app)),
        ("edit-config list entry without key", edit("", &format!("<servers xmlns=\"{t}\"><server><address>1</address></server></servers>")), e(app, "missing-element")),
        ("edit-config delete of missing data", edit("", &format!("<system xmlns=\"{t}\" xmlns:nc=\"{NC_NS}\"><hostname nc:operation=\"delete\"/></system>")), e(app, "data-missing")),
        ("edit-config text where a container is", edit("", &format!("<system xmlns=\"{t}\">just text</system>")), Expect::AnyError(app)),
        ("edit-config element inside a leaf", edit("", &format!("<system xmlns=\"{t}\"><hostname><x/></hostname></system>")), e(app, "invalid-value")),
        // max-elements is enforced at the end of an edit of running (the
        // candidate defers it to validate/commit, RFC 7950 §8.3.3).
        ("edit-config too many leaf-list entries", rpc(&format!("<edit-config><target><running/></target><config><system xmlns=\"{t}\">{}</system></config></edit-config>", (0..10).map(|i| format!("<dns>10.0.0.{i}</dns>")).collect::<String>())), e(app, "operation-failed")),
        ("edit-config 3000 list entries, test-only", edit("<test-option>test-only</test-option>", &format!("<servers xmlns=\"{t}\">{}</servers>", (0..3000).map(|i| format!("<server><name>s{i}</name><address>x</address><port>{}</port></server>", 1000 + i)).collect::<String>())), Expect::Ok),
        ("edit-config empty config", edit("", ""), Expect::Ok),
        ("edit-config whitespace config", edit("", "   \n  "), Expect::Ok),
        ("edit-config test-only of valid data", edit("<test-option>test-only</test-option>", &format!("<system xmlns=\"{t}\"><hostname>ok</hostname></system>")), Expect::Ok),
    ];
    for (name, msg, expect) in cases {
        c.both(name, msg.as_bytes(), expect);
    }
}

/// RFC 6241 §8.1: a hello with a session-id, or one sharing no base
/// version, ends the session; so does anything that is not a hello.
fn hello_cases(c: &mut Corpus) {
    let nc = NC_NS;
    let caps =
        |inner: &str| format!("<hello xmlns=\"{nc}\"><capabilities>{inner}</capabilities></hello>");
    let cases: Vec<(&str, String)> = vec![
        ("with a session-id", format!("<hello xmlns=\"{nc}\"><capabilities><capability>{BASE_1_0}</capability></capabilities><session-id>1</session-id></hello>")),
        ("no base capability", caps("<capability>urn:ietf:params:netconf:capability:candidate:1.0</capability>")),
        ("no capabilities", format!("<hello xmlns=\"{nc}\"/>")),
        ("empty capabilities", caps("")),
        ("an rpc instead", rpc(GET_CONFIG)),
        ("not XML", "hello".into()),
        ("wrong namespace", format!("<hello xmlns=\"urn:wrong\"><capabilities><capability>{BASE_1_0}</capability></capabilities></hello>")),
        ("DOCTYPE", format!("<!DOCTYPE hello>{}", caps(&format!("<capability>{BASE_1_0}</capability>")))),
        ("attribute flood", format!("<hello xmlns=\"{nc}\"{}><capabilities><capability>{BASE_1_0}</capability></capabilities></hello>", (0..10_000).map(|i| format!(" a{i}=\"\"")).collect::<String>())),
        ("10000 capabilities, none base", caps(&"<capability>urn:x</capability>".repeat(10_000))),
    ];
    for (name, msg) in cases {
        c.hello(name, &msg, Expect::Closed);
    }
}

/// Runs one case on a fresh session; panics (caught by the caller) when
/// the outcome is not the expected one.
fn run_case(agent: &Agent, env: &Env, case: &Case) {
    let mut c = agent.ssh2(env);
    match case.phase {
        Phase::Hello => {
            c.read_server_hello();
        }
        Phase::Rpc => {
            let caps: &[&str] = match case.base {
                Base::V10 => &[BASE_1_0],
                Base::V11 => &[BASE_1_0, BASE_1_1],
            };
            c.hello(caps);
            assert_eq!(c.chunked, case.base == Base::V11, "framing negotiated");
        }
    }
    // The agent may hang up before reading it all: that is an outcome too.
    let _ = c.try_send_raw(&case.bytes);
    if case.eof {
        c.send_eof();
    }
    let check_error = |text: &str, ty: &str, tag: &str| {
        let r = Reply::new(text.to_string());
        assert!(r.root.is(NC_NS, "rpc-reply"), "not an rpc-reply: {text}");
        r.expect_error(ty, tag);
    };
    match &case.expect {
        Expect::Closed => {
            for m in c.expect_closed() {
                // Only a last word is allowed: an rpc-error, no data.
                let r = Reply::new(m.clone());
                assert!(
                    !r.errors().is_empty(),
                    "a reply other than an error before the close: {m}"
                );
            }
        }
        Expect::Error(ty, tag) => {
            check_error(&c.recv(), ty, tag);
            c.get_config("running");
        }
        Expect::Malformed => {
            let tag = match case.base {
                Base::V11 => "malformed-message",
                Base::V10 => "operation-failed",
            };
            check_error(&c.recv(), "rpc", tag);
            c.get_config("running");
        }
        Expect::AnyError(ty) => {
            let text = c.recv();
            let r = Reply::new(text.clone());
            let e = r.error();
            assert_eq!(e.error_type, *ty, "wrong error-type in {text}");
            c.get_config("running");
        }
        Expect::Ok => {
            let text = c.recv();
            let r = Reply::new(text.clone());
            assert!(
                r.root.is(NC_NS, "rpc-reply") && r.errors().is_empty(),
                "expected success: {text}"
            );
            c.get_config("running");
        }
    }
}

fn run_corpus(env: &Env, agent: &Agent, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let r = catch_unwind(AssertUnwindSafe(|| run_case(agent, env, case)));
        if let Err(p) = r {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!(
                "{} (expected {:?}): {}",
                case.name,
                case.expect,
                msg.chars().take(600).collect::<String>()
            ));
        }
    }
    // A fresh session after the last case, too.
    let mut c = agent.session(env);
    c.get_config("running");
    c.close();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn corpus_env() -> Env {
    Env::with_netconf(&format!(
        "max_message_bytes = {MAX_MESSAGE}\nhello_timeout_secs = 20"
    ))
}

#[test]
fn framing_and_xml_corpus() {
    let mut corpus = Corpus(Vec::new());
    framing_cases(&mut corpus);
    xml_cases(&mut corpus);
    let env = corpus_env();
    let agent = env.start();
    run_corpus(&env, &agent, &corpus.0);
}

#[test]
fn netconf_corpus() {
    let mut corpus = Corpus(Vec::new());
    netconf_cases(&mut corpus);
    let env = corpus_env();
    let agent = env.start();
    run_corpus(&env, &agent, &corpus.0);
}

#[test]
fn corpus_is_large_enough() {
    let mut corpus = Corpus(Vec::new());
    framing_cases(&mut corpus);
    xml_cases(&mut corpus);
    netconf_cases(&mut corpus);
    eprintln!("{} cases", corpus.0.len());
    assert!(corpus.0.len() >= 200, "only {} cases", corpus.0.len());
}

/// Garbage on the SSH port: the agent ends the connection (RFC 4253 §4.2:
/// the version exchange comes first; anything else cannot be an SSH peer)
/// and serves the next client. Each case comes from its own loopback
/// address so their penalties do not add up on one source.
#[test]
fn ssh_garbage_corpus() {
    let mut env = Env::new();
    // Whatever russh makes of a case, the pre-auth timeout bounds it.
    env.ssh = "auth_timeout_secs = 5".into();
    let agent = env.start();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("SSH-1.5 version", b"SSH-1.5-old\r\n".to_vec()),
        (
            "version line then garbage",
            [b"SSH-2.0-x\r\n".as_ref(), &[0xffu8; 4096]].concat(),
        ),
        (
            "version line then a huge packet length",
            [b"SSH-2.0-x\r\n".as_ref(), &[0x7f, 0xff, 0xff, 0xff, 0x00]].concat(),
        ),
        ("256 kB without a newline", vec![b'A'; 256 * 1024]),
        ("NUL bytes", vec![0u8; 1024]),
        (
            "TLS client hello",
            vec![
                0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
            ],
        ),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut failures = Vec::new();
    for (i, (name, bytes)) in cases.iter().enumerate() {
        let src = [127, 0, 3, 1 + i as u8];
        let mut tcp = rt
            .block_on(async {
                let s = tokio::net::TcpSocket::new_v4()?;
                s.bind(SocketAddr::from((src, 0)))?;
                let t = s.connect(agent.addr).await?.into_std()?;
                t.set_nonblocking(false)?;
                Ok::<TcpStream, std::io::Error>(t)
            })
            .expect("connect");
        tcp.set_read_timeout(Some(WAIT)).expect("timeout");
        let _ = tcp.write_all(bytes);
        // Read until the agent hangs up; its version line may come first.
        let mut buf = [0u8; 4096];
        let closed = loop {
            match tcp.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        if !closed {
            failures.push(format!("{name}: connection still open after {WAIT:?}"));
        }
        let mut c = agent.session(&env);
        c.get_config("running");
        c.close();
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Issue 12's freeze: one `<rpc>` with 100,000 attributes (about 1 MB)
/// cost tens of seconds of CPU in a quadratic duplicate check. It must be
/// refused unparsed, and a second session must be served meanwhile: B's
/// get-config is answered while A's reply is still unread, and A's reply
/// is the error.
#[test]
fn attribute_flood_is_refused_and_others_are_served() {
    let env = Env::new();
    let agent = env.start();
    let mut a = agent.session(&env);
    let mut b = agent.session(&env);
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"{i}\"")).collect();
    let flood = format!("<rpc xmlns=\"{NC_NS}\" message-id=\"1\"{attrs}>{GET_CONFIG}</rpc>");
    assert!(flood.len() > 1_000_000);
    a.send(&flood);
    b.get_config("running");
    let reply = Reply::new(a.recv());
    reply.expect_error("rpc", "malformed-message");
    // Both sessions go on.
    a.get_config("running");
    b.close();
    a.close();
}
