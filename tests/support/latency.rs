//! A TCP proxy that adds a fixed delay each way, as a network between a
//! function and its database does, without limiting throughput: bytes are
//! forwarded in order, each chunk `one_way` after it arrived, so pipelined
//! requests overlap exactly as they would on a real link.
//!
//! It runs on plain threads: a thread's sleep is accurate to tens of
//! microseconds, where the async runtime's timer rounds up to whole
//! milliseconds and would turn a 2.5 ms delay into 3–4 ms.
//!
//! With [`Latency::start_with_handshakes`] a new connection also pays the
//! round trip of TCP's handshake: the proxy accepts at once (the kernel
//! does), so the client's first bytes are held until they would have
//! arrived after a SYN and SYN-ACK (one round trip, then one way).
//!
//! It also counts the client's *flights*: the bytes a client sends between
//! two answers it received. A client that pipelines its requests sends them
//! in one flight, however many writes that takes; a flight is one round
//! trip.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub struct Latency {
    port: u16,
    flights: Arc<Flights>,
}

/// The flights of every client of the proxy.
#[derive(Default)]
struct Flights {
    count: AtomicU64,
    /// The last thing that happened was the client sending.
    client_sent_last: AtomicBool,
}

/// Which way a pump carries bytes.
#[derive(Clone, Copy)]
enum Way {
    ToServer,
    ToClient,
}

impl Latency {
    pub fn start(upstream_port: u16, one_way: Duration) -> Latency {
        Self::start_inner(upstream_port, one_way, false)
    }

    /// As [`Latency::start`], and each new connection pays TCP's handshake.
    #[allow(dead_code)] // make bench
    pub fn start_with_handshakes(upstream_port: u16, one_way: Duration) -> Latency {
        Self::start_inner(upstream_port, one_way, true)
    }

    fn start_inner(upstream_port: u16, one_way: Duration, handshakes: bool) -> Latency {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let flights = Arc::new(Flights::default());
        let counted = flights.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                for stream in [&client, &server] {
                    let _ = stream.set_nodelay(true);
                }
                let (client2, server2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                // Nothing reaches the server before a SYN, its SYN-ACK and
                // the first bytes would have crossed the line.
                let open_at = Instant::now() + if handshakes { 3 * one_way } else { one_way };
                pump(
                    client,
                    server,
                    one_way,
                    Way::ToServer,
                    counted.clone(),
                    open_at,
                );
                pump(
                    server2,
                    client2,
                    one_way,
                    Way::ToClient,
                    counted.clone(),
                    Instant::now(),
                );
            }
        });
        Latency { port, flights }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Flights the clients have sent so far.
    pub fn flights(&self) -> u64 {
        self.flights.count.load(Ordering::SeqCst)
    }
}

/// Forwards `from` → `to`, each chunk `delay` after it was read; counts a
/// flight when the client sends after having received (or first).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
    way: Way,
    flights: Arc<Flights>,
    open_at: Instant,
) {
    let (chunks, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    let reader_flights = flights.clone();
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buffer) {
            if n > 0
                && matches!(way, Way::ToServer)
                && !reader_flights.client_sent_last.swap(true, Ordering::SeqCst)
            {
                reader_flights.count.fetch_add(1, Ordering::SeqCst);
            }
            if n == 0
                || chunks
                    .send(((Instant::now() + delay).max(open_at), buffer[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((at, bytes)) = due.recv() {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            // Before the client can see the answer: whatever it sends after
            // reading it is a new flight.
            if matches!(way, Way::ToClient) {
                flights.client_sent_last.store(false, Ordering::SeqCst);
            }
            if to.write_all(&bytes).is_err() {
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
