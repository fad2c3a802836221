//! A TCP proxy in front of Postgres that can silently sever the connections
//! it carries: they stay open on the client's side until the client next
//! writes, and are then reset. That is what a pooled connection looks like
//! after its server side died while a Lambda container was frozen.

use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    port: u16,
    sever: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sever, watcher) = watch::channel(0u64);
        let watcher = Arc::new(watcher);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut severed = (*watcher).clone();
                severed.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        return;
                    };
                    carry(client, server, severed).await;
                });
            }
        });
        Proxy { port, sever, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Severs every connection open now; new connections work as before.
    pub fn sever_all(&self) {
        self.sever.send_modify(|n| *n += 1);
    }
}

async fn carry(mut client: TcpStream, mut server: TcpStream, mut severed: watch::Receiver<u64>) {
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
        _ = severed.changed() => {}
    }
    // The server side is gone; the client learns it only when it next writes.
    drop(server);
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
