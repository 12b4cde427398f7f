//! A real DNS server for tests: answers UDP queries on a loopback port from a fixed zone, so the
//! scanner's resolver and DNS probes can be exercised without any traffic leaving the machine.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{Name, RData, Record};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// A running test DNS server; it stops when dropped.
#[derive(Debug)]
pub struct TestDns {
    pub address: SocketAddr,
    zone: Zone,
    task: JoinHandle<()>,
}

type Zone = std::sync::Arc<std::sync::Mutex<Vec<(Name, RData)>>>;

fn name(text: &str) -> Name {
    Name::from_ascii(format!("{}.", text.trim_end_matches('.'))).unwrap()
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestDns {
    /// Serves `records` (name, data). Names not in the zone get NXDOMAIN; known names without a
    /// record of the asked type get an empty NOERROR answer.
    pub async fn start(records: Vec<(&str, RData)>) -> Self {
        let zone: Zone = std::sync::Arc::new(std::sync::Mutex::new(
            records
                .into_iter()
                .map(|(text, data)| (name(text), data))
                .collect(),
        ));
        let served = zone.clone();
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buffer[..len]) else {
                    continue;
                };
                let mut response = Message::new(
                    query.metadata.id,
                    MessageType::Response,
                    query.metadata.op_code,
                );
                response.metadata.authoritative = true;
                response.metadata.recursion_desired = query.metadata.recursion_desired;
                response.metadata.recursion_available = true;
                let mut known = false;
                let zone = served.lock().unwrap().clone();
                for question in &query.queries {
                    response.add_query(question.clone());
                    for (name, data) in &zone {
                        if name.eq_case(question.name()) || name == question.name() {
                            known = true;
                            if data.record_type() == question.query_type() {
                                response.add_answer(Record::from_rdata(
                                    name.clone(),
                                    // Not cached: a test may change the answer.
                                    0,
                                    data.clone(),
                                ));
                            }
                        }
                    }
                }
                if !known {
                    response.metadata.response_code = ResponseCode::NXDomain;
                }
                if let Ok(bytes) = response.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        Self {
            address,
            zone,
            task,
        }
    }

    /// Answers `text` with `data` from now on, instead of what it answered before.
    pub fn set(&self, text: &str, data: RData) {
        let name = name(text);
        let mut zone = self.zone.lock().unwrap();
        zone.retain(|(n, _)| *n != name);
        zone.push((name, data));
    }
}
