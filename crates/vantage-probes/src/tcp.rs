//! The TCP probe: can a port be connected to, and how fast.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use vantage_observations::tcp::{PortState, TcpObservation};

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
