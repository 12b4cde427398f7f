//! The TCP probe: can a port be connected to, and how fast.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

/// What a connection attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
    /// The handshake completed.
    Open,
    /// The host answered with a reset: nothing listens there.
    Closed,
    /// No answer within the timeout, or the network refused to route: something drops the packets.
    Filtered,
}

/// One port of one address, as observed. Public-safe by construction: no payload is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpObservation {
    pub address: SocketAddr,
    pub port: u16,
    pub state: PortState,
    /// Time to the answer (open or closed), in milliseconds.
    pub latency_ms: Option<u64>,
}

/// Connects to `address` (an address the SSRF guard returned) and closes at once.
pub async fn probe_port(address: SocketAddr, timeout: Duration) -> TcpObservation {
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, TcpStream::connect(address)).await;
    let elapsed = || Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    let (state, latency_ms) = match outcome {
        Ok(Ok(_stream)) => (PortState::Open, elapsed()),
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            (PortState::Closed, elapsed())
        }
        Ok(Err(_)) | Err(_) => (PortState::Filtered, None),
    };
    TcpObservation {
        address,
        port: address.port(),
        state,
        latency_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tells_open_from_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        // A port that was just free: bind, note it, release it.
        let closed = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap()
        };
        let seen = probe_port(open, Duration::from_secs(2)).await;
        assert_eq!(seen.state, PortState::Open);
        assert!(seen.latency_ms.is_some());
        let seen = probe_port(closed, Duration::from_secs(2)).await;
        assert_eq!(seen.state, PortState::Closed);
    }
}
