//! Request smuggling against the real server on a raw socket: every request whose length is
//! ambiguous (Content-Length beside Transfer-Encoding, two different lengths, a transfer coding
//! other than chunked, malformed chunks, folded or spaced header names) is refused with a 4xx or a
//! closed connection, the request hidden in its body is never run as a second request, and nothing
//! is appended to the log; `/health` keeps answering.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vantage_tests::TestApp;

/// What the server sent back on one connection before closing it (or going quiet for 2 s).
async fn exchange(address: &str, request: &str) -> String {
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

async fn ambiguous_lengths_are_refused_and_nothing_is_smuggled(app: TestApp) {
    let address = app.base.trim_start_matches("http://").to_owned();
    let key = app.admin_key.clone();
    // The request each shape tries to hide: if the server ever ran it, a key would be issued.
    let hidden_body = r#"{"name":"smuggled","scopes":["scan:read"]}"#;
    let hidden = format!(
        "POST /api/v1/keys HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{hidden_body}",
        hidden_body.len()
    );
    let front = |headers: &str, body: &str| {
        format!(
            "POST /api/v1/scans HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\n{headers}\r\n{body}"
        )
    };
    let chunked_end = format!("0\r\n\r\n{hidden}");
    let shapes: Vec<(&str, String)> = vec![
        (
            "Content-Length and Transfer-Encoding (CL.TE)",
            front(
                &format!(
                    "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                    chunked_end.len()
                ),
                &chunked_end,
            ),
        ),
        (
            "Transfer-Encoding and Content-Length (TE.CL)",
            front(
                "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                &format!("{:x}\r\n{hidden}\r\n0\r\n\r\n", hidden.len()),
            ),
        ),
        (
            "two different Content-Lengths",
            front("Content-Length: 0\r\nContent-Length: 5\r\n", &hidden),
        ),
        (
            "a list of Content-Lengths",
            front("Content-Length: 0, 5\r\n", &hidden),
        ),
        (
            "a signed Content-Length",
            front("Content-Length: +0\r\n", &hidden),
        ),
        (
            "a transfer coding other than chunked",
            front("Transfer-Encoding: xchunked\r\n", &hidden),
        ),
        (
            "chunked, then another coding",
            front("Transfer-Encoding: chunked, identity\r\n", &chunked_end),
        ),
        (
            "a space before the header's colon",
            front("Transfer-Encoding : chunked\r\n", &chunked_end),
        ),
        (
            "a folded Transfer-Encoding",
            front("Transfer-Encoding:\r\n chunked\r\n", &chunked_end),
        ),
        (
            "a chunk size that is not hex",
            front(
                "Transfer-Encoding: chunked\r\n",
                &format!("zz\r\n{hidden}\r\n0\r\n\r\n"),
            ),
        ),
        (
            "a negative chunk size",
            front(
                "Transfer-Encoding: chunked\r\n",
                &format!("-1\r\n{hidden}\r\n0\r\n\r\n"),
            ),
        ),
        (
            "a chunk size that overflows",
            front(
                "Transfer-Encoding: chunked\r\n",
                &format!("ffffffffffffffffff\r\n{hidden}\r\n0\r\n\r\n"),
            ),
        ),
    ];
    assert!(shapes.len() >= 11);
    app.caught_up().await;
    let head = app.services.store().head_position().await.unwrap();
    for (shape, request) in &shapes {
        let answer = exchange(&address, request).await;
        let statuses: Vec<&str> = answer
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &answer[i + 9..i + 12])
            .collect();
        assert!(
            statuses.len() <= 1,
            "{shape}: the hidden request was answered too: {answer}"
        );
        if let Some(status) = statuses.first() {
            assert!(
                status.starts_with('4'),
                "{shape}: answered {status}, not refused: {answer}"
            );
        }
        let health = app.client.get(app.url("/health")).send().await.unwrap();
        assert!(health.status().is_success(), "{shape}: /health");
    }
    app.caught_up().await;
    assert_eq!(
        app.services.store().head_position().await.unwrap(),
        head,
        "a smuggling shape appended to the log"
    );
    let keys = app.get_json("/api/v1/keys").await;
    assert!(
        !keys.to_string().contains("smuggled"),
        "a hidden request issued a key: {keys}"
    );
}

vantage_tests::app_test_per_store!(spawn_unthrottled;
    ambiguous_lengths_are_refused_and_nothing_is_smuggled,
);
