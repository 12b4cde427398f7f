//! A network namespace of the test's own (`ip netns add`, Debian's iproute2), with its loopback up
//! and extra addresses on it, so a lab can give each site an IPv6 address of its own (the host's
//! loopback has only `::1`). A test's async body runs inside it on a thread that joined it, and so
//! does every socket, server and client it makes; nothing it sends can leave the namespace, which
//! has no other interface. Creating one needs root (as the lab's port 80 does); it is deleted when
//! dropped.

use std::future::Future;
use std::os::fd::AsFd;
use std::process::Command;

/// A running network namespace; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

fn ip(args: &[&str]) {
    crate::process::succeeded(
        Command::new("ip").args(args),
        &format!("`ip {}` (Debian iproute2)", args.join(" ")),
    );
}

impl Netns {
    /// A fresh namespace with its loopback up (127.0.0.0/8 and ::1, as on any host).
    pub fn create() -> Self {
        let name = format!(
            "vantage-test-{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        ip(&["netns", "add", &name]);
        let netns = Self { name };
        ip(&["-n", &netns.name, "link", "set", "lo", "up"]);
        netns
    }

    /// Adds `cidr` (e.g. `fd00:7661:6e74::1/128`) to the namespace's loopback, usable at once.
    pub fn add_address(&self, cidr: &str) {
        let mut args = vec!["-n", &self.name, "address", "add", cidr, "dev", "lo"];
        if cidr.contains(':') {
            args.push("nodad");
        }
        ip(&args);
    }

    /// `program` to run inside the namespace (`ip netns exec`).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `body` to completion on a thread that joined the namespace, in a runtime of its own
    /// whose threads are started from there (so they are in it too).
    pub fn run<T: Send>(&self, body: impl Future<Output = T> + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let handle = std::fs::File::open(&path).expect("the namespace's handle");
                    // setns(2) moves this thread only; nothing else in the process is affected.
                    rustix::thread::move_into_link_name_space(
                        handle.as_fd(),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )
                    .expect("setns into the test's network namespace");
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a runtime")
                        .block_on(body)
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
