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
