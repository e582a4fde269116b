//! A small NETCONF client: SSH (russh) or the agent's Unix socket, hello,
//! base:1.1 chunked framing, and rpcs. Used by `wgnetconf show` and by the
//! benchmark; the tests use independent clients (libssh2, OpenSSH, ncclient).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::client;
use russh::keys::{load_secret_key, PrivateKeyWithHashAlg};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::protocol::framing::{FrameReader, FrameWriter, Framing};
use crate::protocol::hello::{BASE_1_0, BASE_1_1};
use crate::protocol::xml::{self, Elem};
use crate::protocol::NC_NS;

type BoxRead = Box<dyn AsyncRead + Unpin + Send>;
type BoxWrite = Box<dyn AsyncWrite + Unpin + Send>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect: {0}")]
    Connect(String),
    #[error("authentication failed for {0}")]
    Auth(String),
    #[error("i/o: {0}")]
    Io(String),
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server answered with rpc-error(s); the reply XML.
    #[error("rpc-error: {0}")]
    Rpc(String),
}

/// How to reach and log in to an agent.
#[derive(Clone, Debug)]
pub enum Target {
    Ssh {
        host: String,
        port: u16,
        user: String,
        password: Option<String>,
        key: Option<PathBuf>,
    },
    Unix(PathBuf),
}

struct AcceptAnyHostKey;

impl client::Handler for AcceptAnyHostKey {
    type Error = russh::Error;

    // The client is for our own agent (show, bench); host-key pinning is the
    // SSH clients' job (OpenSSH known_hosts) for operators.
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub struct Client {
    reader: FrameReader<BoxRead>,
    writer: FrameWriter<BoxWrite>,
    next_id: u64,
    pub session_id: u32,
    pub capabilities: Vec<String>,
    // Keeps the SSH connection alive as long as the client.
    _ssh: Option<client::Handle<AcceptAnyHostKey>>,
}

impl Client {
    pub async fn connect(target: &Target) -> Result<Client, ClientError> {
        match target {
            Target::Unix(path) => Self::connect_unix(path).await,
            Target::Ssh {
                host,
                port,
                user,
                password,
                key,
            } => Self::connect_ssh(host, *port, user, password.as_deref(), key.as_deref()).await,
        }
    }

    async fn connect_unix(path: &Path) -> Result<Client, ClientError> {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| ClientError::Connect(format!("{}: {e}", path.display())))?;
        let (r, w) = s.into_split();
        Self::start(Box::new(r), Box::new(w), None).await
    }

    async fn connect_ssh(
        host: &str,
        port: u16,
        user: &str,
        password: Option<&str>,
        key: Option<&Path>,
    ) -> Result<Client, ClientError> {
        let config = Arc::new(client::Config {
            inactivity_timeout: None,
            // Small request/reply messages: no Nagle delay.
            nodelay: true,
            ..Default::default()
        });
        let mut handle = client::connect(config, (host, port), AcceptAnyHostKey)
            .await
            .map_err(|e| ClientError::Connect(format!("{host}:{port}: {e}")))?;
        let mut ok = false;
        if let Some(k) = key {
            let kp = load_secret_key(k, None)
                .map_err(|e| ClientError::Connect(format!("{}: {e}", k.display())))?;
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?
                .flatten();
            ok = handle
                .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(kp), hash))
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?
                .success();
        }
        if !ok {
            if let Some(p) = password {
                ok = handle
                    .authenticate_password(user, p)
                    .await
                    .map_err(|e| ClientError::Connect(e.to_string()))?
                    .success();
            }
        }
        if !ok {
            return Err(ClientError::Auth(user.to_string()));
        }
        let channel = handle
            .channel_open_session()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        channel
            .request_subsystem(true, "netconf")
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let (r, w) = tokio::io::split(channel.into_stream());
        Self::start(Box::new(r), Box::new(w), Some(handle)).await
    }

    async fn start(
        r: BoxRead,
        w: BoxWrite,
        ssh: Option<client::Handle<AcceptAnyHostKey>>,
    ) -> Result<Client, ClientError> {
        let mut reader = FrameReader::new(r, 1 << 30);
        let mut writer = FrameWriter::new(w);
        let hello = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NC_NS}\"><capabilities><capability>{BASE_1_0}</capability><capability>{BASE_1_1}</capability></capabilities></hello>"
        );
        writer
            .write_message(hello.as_bytes())
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let msg = tokio::time::timeout(Duration::from_secs(30), reader.next_message())
            .await
            .map_err(|_| ClientError::Protocol("no server hello within 30 s".into()))?
            .map_err(|e| ClientError::Io(e.to_string()))?
            .ok_or_else(|| ClientError::Protocol("closed before hello".into()))?;
        let root = xml::parse(&msg).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let capabilities: Vec<String> = root
            .child(NC_NS, "capabilities")
            .map(|c| c.elems().map(Elem::text).collect())
            .unwrap_or_default();
        let session_id = root
            .child(NC_NS, "session-id")
            .and_then(|e| e.text().parse().ok())
            .unwrap_or(0);
        if capabilities.iter().any(|c| c == BASE_1_1) {
            reader.framing = Framing::Chunked;
            writer.framing = Framing::Chunked;
        }
        Ok(Client {
            reader,
            writer,
            next_id: 1,
            session_id,
            capabilities,
            _ssh: ssh,
        })
    }

    /// Sends `<rpc>` with `body` (the operation element) and returns the raw
    /// reply; rpc-errors become [`ClientError::Rpc`].
    pub async fn rpc(&mut self, body: &str) -> Result<String, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = format!("<rpc xmlns=\"{NC_NS}\" message-id=\"{id}\">{body}</rpc>");
        self.writer
            .write_message(msg.as_bytes())
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?;
        let reply = self
            .reader
            .next_message()
            .await
            .map_err(|e| ClientError::Io(e.to_string()))?
            .ok_or_else(|| ClientError::Io("session closed".into()))?;
        let text = String::from_utf8(reply)
            .map_err(|_| ClientError::Protocol("reply is not UTF-8".into()))?;
        if text.contains("<rpc-error>") {
            return Err(ClientError::Rpc(text));
        }
        Ok(text)
    }

    /// The `<data>` element of a get/get-config reply, parsed.
    pub async fn get_data(&mut self, body: &str) -> Result<Elem, ClientError> {
        let text = self.rpc(body).await?;
        let root = xml::parse(text.as_bytes()).map_err(|e| ClientError::Protocol(e.to_string()))?;
        root.child(NC_NS, "data")
            .cloned()
            .ok_or_else(|| ClientError::Protocol("reply has no <data>".into()))
    }

    pub async fn close(mut self) {
        let _ = self.rpc("<close-session/>").await;
        self.writer.shutdown().await;
    }
}
pub mod show;
