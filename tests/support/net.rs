//! Misbehaving network peers on loopback.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

/// A port whose SYNs are dropped: a listener with a zero backlog whose
/// single queue slot is taken, so the kernel ignores further connects —
/// the loopback twin of a firewall that black-holes traffic.
pub struct BlackHole {
    _listener: Socket,
    _filler: TcpStream,
    pub port: u16,
}

impl BlackHole {
    pub fn new() -> BlackHole {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        listener.listen(0).unwrap();
        let port = listener.local_addr().unwrap().as_socket().unwrap().port();
        let filler = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(1),
        )
        .unwrap();
        // Prove it: the next connect must not complete.
        let probe = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(100),
        );
        assert!(probe.is_err(), "the black hole answered");
        BlackHole {
            _listener: listener,
            _filler: filler,
            port,
        }
    }
}

/// What a [`RawPeer`] does with each connection.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Accept and then neither read nor answer.
    Silent,
    /// Accept, then reset the connection at once.
    Reset,
    /// Speak the Postgres protocol as far as a login, then refuse it with
    /// a FATAL error of this SQLSTATE and message, as a pooler does
    /// (Supavisor: `XX000` "Tenant or user not found").
    RefuseLogin {
        code: &'static str,
        message: &'static str,
    },
}

/// A TCP server that misbehaves below HTTP.
pub struct RawPeer {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl RawPeer {
    pub async fn start(behaviour: Behaviour) -> RawPeer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                match behaviour {
                    Behaviour::Silent => held.push(stream),
                    Behaviour::Reset => {
                        let _ = stream.set_zero_linger();
                        drop(stream);
                    }
                    Behaviour::RefuseLogin { code, message } => {
                        tokio::spawn(refuse_login(stream, code, message));
                    }
                }
            }
        });
        RawPeer { port, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the startup message (declining TLS first if asked), then answers
/// an ErrorResponse with severity FATAL and closes, as a pooler that
/// refuses the login does.
async fn refuse_login(mut stream: tokio::net::TcpStream, code: &str, message: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SSL_REQUEST: u32 = 80_877_103;
    loop {
        let Ok(length) = stream.read_u32().await else {
            return;
        };
        let mut body = vec![0; (length as usize).saturating_sub(4)];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        if body.len() >= 4
            && u32::from_be_bytes([body[0], body[1], body[2], body[3]]) == SSL_REQUEST
        {
            if stream.write_all(b"N").await.is_err() {
                return;
            }
            continue;
        }
        break;
    }
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut frame = vec![b'E'];
    frame.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    frame.extend_from_slice(&fields);
    let _ = stream.write_all(&frame).await;
    let _ = stream.shutdown().await;
}
