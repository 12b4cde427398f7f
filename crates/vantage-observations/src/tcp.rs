//! What the TCP probe saw of one port.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a connection attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PortState {
    /// The handshake completed.
    Open,
    /// The host answered with a reset: nothing listens there.
    Closed,
    /// No answer within the timeout, or the network refused to route: something drops the packets.
    Filtered,
}

/// One port of one address (version 1). No payload is ever read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TcpObservation {
    pub address: SocketAddr,
    pub port: u16,
    pub state: PortState,
    /// Time to the answer (open or closed), in milliseconds.
    pub latency_ms: Option<u64>,
}
