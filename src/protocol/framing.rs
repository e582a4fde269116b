//! RFC 6242 message framing: end-of-message (`]]>]]>`, base:1.0) until both
//! hellos name base:1.1, then chunked framing (§4.2).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const EOM: &[u8] = b"]]>]]>";
/// RFC 6242 §4.2: chunk-size is 1..4294967295.
const MAX_CHUNK: u64 = 4_294_967_295;
/// Largest chunk we write; keeps memory per write bounded for huge replies.
const WRITE_CHUNK: usize = 1 << 20;
/// A read buffer above this size is dropped once emptied (`shed`).
const SHED_CAPACITY: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    EndOfMessage,
    Chunked,
}

#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    #[error("connection closed in the middle of a message")]
    Truncated,
    #[error("broken chunked framing: {0}")]
    Broken(&'static str),
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("messages being received by all sessions would exceed {0} bytes")]
    OverBudget(usize),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The bytes every session's reader holds of messages not yet whole,
/// against one cap: `max_message_bytes` bounds one message, this bounds
/// them all (64 sessions could otherwise hold 64 × 64 MiB).
pub struct InputBudget {
    cap: AtomicUsize,
    used: AtomicUsize,
}

impl InputBudget {
    pub fn new(cap: usize) -> Arc<InputBudget> {
        Arc::new(InputBudget {
            cap: AtomicUsize::new(cap),
            used: AtomicUsize::new(0),
        })
    }

    /// A new cap (a reload): what is held stays; growth is checked
    /// against it.
    pub fn set_cap(&self, cap: usize) {
        self.cap.store(cap, Ordering::Relaxed);
    }

    pub fn cap(&self) -> usize {
        self.cap.load(Ordering::Relaxed)
    }

    /// Bytes held now, by all readers.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn grow(&self, n: usize) -> bool {
        let cap = self.cap();
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= cap)
            })
            .is_ok()
    }

    fn shrink(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Reads whole messages from a byte stream.
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Start of unconsumed bytes in `buf`.
    pos: usize,
    eof: bool,
    pub framing: Framing,
    pub max_message: usize,
    /// Shared with the other sessions' readers, if any.
    budget: Option<Arc<InputBudget>>,
    /// What this reader counts in `budget`: unconsumed bytes plus a
    /// chunked message's assembled part.
    held: usize,
    /// Length of the chunked message being assembled.
    assembling: usize,
    /// The buffer went past [`SHED_CAPACITY`] at some point.
    grew: bool,
}

impl<R> Drop for FrameReader<R> {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.shrink(self.held);
        }
    }
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max_message: usize) -> Self {
        FrameReader {
            inner,
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
            eof: false,
            framing: Framing::EndOfMessage,
            max_message,
            budget: None,
            held: 0,
            assembling: 0,
            grew: false,
        }
    }

    /// Counts what this reader buffers in `budget`; a read that would take
    /// it past the cap fails with [`FramingError::OverBudget`].
    pub fn with_budget(mut self, budget: Arc<InputBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Brings this reader's share of the budget to what it holds now.
    fn account(&mut self) -> Result<(), FramingError> {
        let Some(b) = &self.budget else {
            return Ok(());
        };
        let want = self.buf.len() - self.pos + self.assembling;
        if want > self.held {
            if !b.grow(want - self.held) {
                // The session ends over this: what it holds goes back now,
                // not after its error reply is written, so others fit.
                let cap = b.cap();
                b.shrink(self.held);
                self.held = 0;
                self.buf = Vec::new();
                self.pos = 0;
                self.assembling = 0;
                self.eof = true;
                return Err(FramingError::OverBudget(cap));
            }
        } else {
            b.shrink(self.held - want);
        }
        self.held = want;
        Ok(())
    }

    /// Reads more bytes; false on end of stream.
    async fn fill(&mut self) -> Result<bool, FramingError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 1 << 20 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + 64 * 1024, 0);
        let n = self.inner.read(&mut self.buf[old..]).await;
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.buf.truncate(old);
                return Err(e.into());
            }
        };
        self.buf.truncate(old + n);
        if n == 0 {
            self.eof = true;
        }
        self.grew |= self.buf.capacity() > SHED_CAPACITY;
        self.account()?;
        Ok(n > 0)
    }

    /// After a message is taken: a buffer grown for a big message goes
    /// back to the allocator once nothing of the next one is in it, so an
    /// idle session does not keep its largest message's size.
    fn shed(&mut self) {
        if self.pos == self.buf.len() && self.buf.capacity() > SHED_CAPACITY {
            self.buf = Vec::new();
            self.pos = 0;
        }
    }

    /// Whether this reader's buffer ever outgrew its usual size (the
    /// session then asks for the freed heap to be returned at its end).
    pub fn grew(&self) -> bool {
        self.grew
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The next message, or `None` when the peer closed cleanly between
    /// messages.
    pub async fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        match self.framing {
            Framing::EndOfMessage => self.next_eom().await,
            Framing::Chunked => self.next_chunked().await,
        }
    }

    async fn next_eom(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let mut searched: usize = 0;
        loop {
            let avail = self.avail();
            let from = searched.saturating_sub(EOM.len() - 1);
            if let Some(i) = find(&avail[from..], EOM) {
                let end = from + i;
                // The limit holds however the bytes arrived: a whole
                // oversized message in one read is still too large.
                if end > self.max_message {
                    return Err(FramingError::TooLarge(self.max_message));
                }
                let msg = avail[..end].to_vec();
                self.pos += end + EOM.len();
                self.shed();
                self.account()?;
                return Ok(Some(msg));
            }
            searched = avail.len();
            if searched > self.max_message {
                return Err(FramingError::TooLarge(self.max_message));
            }
            if !self.fill().await? {
                return if self.avail().iter().all(u8::is_ascii_whitespace) {
                    Ok(None)
                } else {
                    Err(FramingError::Truncated)
                };
            }
        }
    }

    async fn need(&mut self, n: usize) -> Result<bool, FramingError> {
        while self.avail().len() < n {
            if !self.fill().await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn next_chunked(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let mut msg = Vec::new();
        self.assembling = 0;
        let mut first = true;
        loop {
            // Each chunk header is LF '#' then digits or '#', then LF.
            if !self.need(2).await? {
                return if first && self.avail().is_empty() {
                    Ok(None)
                } else {
                    Err(FramingError::Truncated)
                };
            }
            if &self.avail()[..2] != b"\n#" {
                return Err(FramingError::Broken("expected LF # at chunk start"));
            }
            self.pos += 2;
            if !self.need(1).await? {
                return Err(FramingError::Truncated);
            }
            if self.avail()[0] == b'#' {
                if !self.need(2).await? {
                    return Err(FramingError::Truncated);
                }
                if self.avail()[1] != b'\n' {
                    return Err(FramingError::Broken("expected LF after ##"));
                }
                self.pos += 2;
                if first {
                    return Err(FramingError::Broken("end-of-chunks with no chunk"));
                }
                self.assembling = 0;
                self.shed();
                self.account()?;
                return Ok(Some(msg));
            }
            // chunk-size = [1-9][0-9]* up to 10 digits.
            let mut size: u64 = 0;
            let mut digits = 0;
            loop {
                if !self.need(1).await? {
                    return Err(FramingError::Truncated);
                }
                let c = self.avail()[0];
                self.pos += 1;
                match c {
                    b'\n' if digits > 0 => break,
                    b'0' if digits == 0 => {
                        return Err(FramingError::Broken("chunk size has a leading zero"))
                    }
                    b'0'..=b'9' if digits < 10 => {
                        size = size * 10 + u64::from(c - b'0');
                        digits += 1;
                    }
                    _ => return Err(FramingError::Broken("bad chunk size")),
                }
            }
            if size > MAX_CHUNK {
                return Err(FramingError::Broken("chunk size too large"));
            }
            let size = size as usize;
            if msg.len() + size > self.max_message {
                return Err(FramingError::TooLarge(self.max_message));
            }
            if !self.need(size).await? {
                return Err(FramingError::Truncated);
            }
            msg.extend_from_slice(&self.avail()[..size]);
            self.pos += size;
            self.assembling = msg.len();
            first = false;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes whole messages in the current framing.
pub struct FrameWriter<W> {
    inner: W,
    pub framing: Framing,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        FrameWriter {
            inner,
            framing: Framing::EndOfMessage,
        }
    }

    pub async fn write_message(&mut self, msg: &[u8]) -> std::io::Result<()> {
        match self.framing {
            Framing::EndOfMessage => {
                self.inner.write_all(msg).await?;
                self.inner.write_all(EOM).await?;
            }
            Framing::Chunked => {
                for chunk in msg.chunks(WRITE_CHUNK) {
                    let header = format!("\n#{}\n", chunk.len());
                    self.inner.write_all(header.as_bytes()).await?;
                    self.inner.write_all(chunk).await?;
                }
                self.inner.write_all(b"\n##\n").await?;
            }
        }
        self.inner.flush().await
    }

    pub async fn shutdown(&mut self) {
        let _ = self.inner.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader keeps no big buffer once a big message is taken.
    #[tokio::test]
    async fn a_big_message_leaves_no_big_buffer() {
        let msg = [&vec![b'z'; 3 << 20][..], EOM].concat();
        let mut r = FrameReader::new(&msg[..], 4 << 20);
        assert_eq!(
            r.next_message().await.expect("read").map(|m| m.len()),
            Some(3 << 20)
        );
        assert!(r.grew());
        assert!(r.buf.capacity() <= SHED_CAPACITY, "{}", r.buf.capacity());
    }

    /// Readers share one cap: one that would take the total past it fails;
    /// what a reader held comes back when it is dropped or its message is
    /// taken.
    #[tokio::test]
    async fn readers_share_one_budget() {
        let budget = InputBudget::new(150);
        let (mut feed, pipe) = tokio::io::duplex(1024);
        feed.write_all(&[b'x'; 80]).await.expect("feed");
        let mut held = FrameReader::new(pipe, 1000).with_budget(budget.clone());
        // Reads the 80 bytes, then waits for more: polled once, dropped.
        let _ = tokio::time::timeout(std::time::Duration::ZERO, held.next_message()).await;
        assert_eq!(budget.used(), 80);
        let msg = [&[b'y'; 100][..], EOM].concat();
        let mut over = FrameReader::new(&msg[..], 1000).with_budget(budget.clone());
        assert!(matches!(
            over.next_message().await,
            Err(FramingError::OverBudget(150))
        ));
        // Released at once, before the reader is dropped.
        assert_eq!(budget.used(), 80);
        drop(over);
        drop(held);
        assert_eq!(budget.used(), 0);
        let mut ok = FrameReader::new(&msg[..], 1000).with_budget(budget.clone());
        assert_eq!(
            ok.next_message().await.expect("read"),
            Some(vec![b'y'; 100])
        );
        assert_eq!(budget.used(), 0);
        drop(feed);
    }

    async fn read_all(input: &[u8], framing: Framing) -> Vec<Result<Option<Vec<u8>>, String>> {
        let mut r = FrameReader::new(input, 1000);
        r.framing = framing;
        let mut out = Vec::new();
        loop {
            let m = r.next_message().await.map_err(|e| e.to_string());
            let stop = !matches!(m, Ok(Some(_)));
            out.push(m);
            if stop {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn eom_messages() {
        let got = read_all(b"<a/>]]>]]><b/>]]>]]>\n", Framing::EndOfMessage).await;
        assert_eq!(got[0].as_ref().unwrap().as_deref(), Some(&b"<a/>"[..]));
        assert_eq!(got[1].as_ref().unwrap().as_deref(), Some(&b"<b/>"[..]));
        assert_eq!(got[2].as_ref().unwrap(), &None);
        let got = read_all(b"<a/>", Framing::EndOfMessage).await;
        assert!(got[0].is_err());
    }

    #[tokio::test]
    async fn chunked_messages() {
        let got = read_all(b"\n#4\n<rpc\n#2\n/>\n##\n\n#1\nx\n##\n", Framing::Chunked).await;
        assert_eq!(got[0].as_ref().unwrap().as_deref(), Some(&b"<rpc/>"[..]));
        assert_eq!(got[1].as_ref().unwrap().as_deref(), Some(&b"x"[..]));
        assert_eq!(got[2].as_ref().unwrap(), &None);
        for bad in [
            &b"\n#0\n\n##\n"[..],
            b"\n#x\n",
            b"#4\nabcd\n##\n",
            b"\n##\n",
            b"\n#4\nab",
        ] {
            let got = read_all(bad, Framing::Chunked).await;
            assert!(got[0].is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn size_limit() {
        let big = vec![b'a'; 2000];
        let got = read_all(&big, Framing::EndOfMessage).await;
        assert!(got[0].as_ref().unwrap_err().contains("larger"));
        let mut whole = vec![b'a'; 1500];
        whole.extend_from_slice(EOM);
        let got = read_all(&whole, Framing::EndOfMessage).await;
        assert!(got[0].as_ref().unwrap_err().contains("larger"));
    }
}
