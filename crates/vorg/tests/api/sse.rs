//! A minimal SSE client for the tests: reads `id`/`event`/`data` frames off a response.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub id: Option<i64>,
    pub event: String,
    pub data: String,
}

pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        assert_eq!(resp.status(), reqwest::StatusCode::OK, "stream refused");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (skipping keep-alive comments); `None` when the stream ended.
    pub async fn next(&mut self, timeout: Duration) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut frame = Frame {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        frame.id = v.trim().parse().ok();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        frame.event = v.trim().to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !frame.data.is_empty() {
                            frame.data.push('\n');
                        }
                        frame.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        any = true;
                    }
                }
                if any {
                    return Some(frame);
                }
                continue;
            }
            let chunk = tokio::time::timeout(timeout, self.resp.chunk())
                .await
                .expect("an event within the timeout")
                .expect("stream read");
            match chunk {
                Some(bytes) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                None => return None,
            }
        }
    }

    /// Every event until the stream ends.
    pub async fn rest(&mut self, timeout: Duration) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = self.next(timeout).await {
            out.push(f);
        }
        out
    }
}
