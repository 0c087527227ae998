//! A webhook receiver for tests: a real HTTP/1.1 listener on `127.0.0.1:0` that answers every POST with 204 and
//! keeps the JSON bodies it received, so tests can wait for the events a job or a tenant announces. It understands
//! just enough HTTP for a client that sends `Content-Length` (reqwest does), one request per connection or
//! several in a row.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::sync::wait_for;

/// A running receiver; stops when dropped.
pub struct WebhookSink {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
    task: JoinHandle<()>,
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free local port for the webhook");
        let url = format!("http://{}/hook", listener.local_addr().expect("a bound listener has an address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    while let Some(body) = read_request(&mut socket).await {
                        if let Ok(value) = serde_json::from_slice::<Value>(&body) {
                            sink.lock().expect("webhook lock is never poisoned").push(value);
                        }
                        let reply = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
                        if socket.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        WebhookSink { url, received, task }
    }

    /// The URL to configure.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every JSON body received so far, in order.
    pub fn received(&self) -> Vec<Value> {
        self.received.lock().expect("webhook lock is never poisoned").clone()
    }

    /// Waits for a body whose `field` is `value`, and returns it.
    pub async fn wait_event(&self, field: &str, value: &str) -> Value {
        wait_for(&format!("a webhook body with {field} = {value}"), || async {
            self.received().into_iter().find(|body| body[field] == value)
        })
        .await
    }
}

/// Reads one request from `socket` and returns its body; None at the end of the connection.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        let n_read = socket.read(&mut chunk).await.ok()?;
        if n_read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n_read]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n_read = socket.read(&mut chunk).await.ok()?;
        if n_read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n_read]);
    }
    Some(buffer[header_end..header_end + length].to_vec())
}
