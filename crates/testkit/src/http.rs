//! A scripted HTTP receiver on `127.0.0.1:0`: answers each request with the next status of
//! its script and records what it was sent (for webhooks, downloads, any outgoing call).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A receiver serving one request per entry of its script, then stopping.
pub struct Receiver {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    task: tokio::task::JoinHandle<Vec<Received>>,
}

impl Receiver {
    /// Answers the n-th request with `script[n]` (status, body), one connection each.
    pub async fn start(script: Vec<(u16, Vec<u8>)>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            for (status, body) in script {
                let (mut conn, _) = listener.accept().await.expect("accept");
                got.push(read_request(&mut conn).await);
                let head = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
            }
            got
        });
        Receiver { base, task }
    }

    /// Answers with these statuses and an empty body.
    pub async fn statuses(statuses: &[u16]) -> Receiver {
        Receiver::start(statuses.iter().map(|s| (*s, Vec::new())).collect()).await
    }

    /// Waits until the script is done; the requests, in order.
    pub async fn requests(self) -> Vec<Received> {
        self.task.await.expect("receiver task")
    }
}

async fn read_request(conn: &mut tokio::net::TcpStream) -> Received {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        conn.read_exact(&mut byte).await.expect("request head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let (method, path) = (first.next().unwrap_or_default().to_string(), first.next().unwrap_or_default().to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.expect("request body");
    Received { method, path, headers, body }
}
