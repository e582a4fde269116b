//! One NETCONF session over an authenticated byte stream.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::agent::Agent;

/// Who is on the other end of a session, as the transport authenticated it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The authenticated user name (NACM will key on it).
    pub user: String,
    /// Where the session came from, for logs and monitoring
    /// (`ssh 127.0.0.1:40022`, `unix uid 1000`).
    pub source: String,
}

/// Runs one session to its end. Transports spawn this on the stream of an
/// accepted `netconf` subsystem.
pub async fn run<S>(_agent: Arc<Agent>, mut stream: S, _peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Placeholder until the protocol layer lands: greet and close.
    let _ = stream
        .write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities><capability>urn:ietf:params:netconf:base:1.0</capability></capabilities><session-id>1</session-id></hello>]]>]]>")
        .await;
    let _ = stream.shutdown().await;
}
