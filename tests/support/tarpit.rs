//! A loopback port where connecting hangs: a listener that never accepts, with its accept queue full,
//! so the kernel drops further connection attempts (what a filtering firewall looks like).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Keeps the listener and the queue-filling connections alive.
#[derive(Debug)]
pub struct Tarpit {
    pub address: SocketAddr,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl Tarpit {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        // Fill the accept queue until a connection attempt stops completing.
        for _ in 0..10_000 {
            match TcpStream::connect_timeout(&address, Duration::from_millis(100)) {
                Ok(stream) => queued.push(stream),
                Err(_) => {
                    return Self {
                        address,
                        _listener: listener,
                        _queued: queued,
                    };
                }
            }
        }
        panic!("the accept queue of {address} never filled");
    }
}
