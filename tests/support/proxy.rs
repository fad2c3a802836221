//! A TCP proxy in front of Postgres that can break the connections it
//! carries in the two ways a frozen Lambda container meets:
//! - [`Proxy::sever_all`]: connections stay open on the client's side until
//!   the client next writes, and are then reset (the server side died);
//! - [`Proxy::black_hole`]: from now on nothing is forwarded either way, on
//!   open connections and new ones (a firewall or NAT that drops traffic).

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Forward,
    Sever(u64),
    BlackHole,
}

pub struct Proxy {
    port: u16,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, watcher) = watch::channel(Mode::Forward);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut watcher = watcher.clone();
                let current = *watcher.borrow_and_update();
                tokio::spawn(async move {
                    if current == Mode::BlackHole {
                        hold(client).await;
                        return;
                    }
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        return;
                    };
                    carry(client, server, watcher).await;
                });
            }
        });
        Proxy { port, mode, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Severs every connection open now; new connections work as before.
    pub fn sever_all(&self) {
        self.mode.send_modify(|m| {
            *m = match *m {
                Mode::Sever(n) => Mode::Sever(n + 1),
                _ => Mode::Sever(0),
            }
        });
    }

    /// Drops all traffic from now on, keeping every socket open.
    pub fn black_hole(&self) {
        self.mode.send_replace(Mode::BlackHole);
    }
}

/// Keeps a connection open and silent until the peer closes it.
async fn hold(mut client: TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
}

async fn carry(mut client: TcpStream, mut server: TcpStream, mut mode: watch::Receiver<Mode>) {
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        _ = mode.changed() => {}
    }
    let black_hole = *mode.borrow() == Mode::BlackHole;
    drop(server);
    if black_hole {
        hold(client).await;
        return;
    }
    // The server side is gone; the client learns it only when it next writes.
    let mut byte = [0u8; 1];
    let _ = client.read(&mut byte).await;
    let _ = client.set_zero_linger();
    drop(client);
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
