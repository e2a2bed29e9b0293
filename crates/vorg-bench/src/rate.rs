//! `rate`: a fixed-rate (open-loop) HTTP/1.1 load generator. Requests are due at a steady
//! rate whatever the answers do; each latency runs from when its request was *due*, so a
//! slow answer that delays the next ones counts against them too (no coordinated omission).
//! Prints the latency percentiles of the whole response and of its first body byte (for a
//! stream, the first chunk), in milliseconds, as JSON.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    sync::{Mutex, mpsc},
};

/// One request's timings, from its due time.
#[derive(Clone, Copy)]
struct Timing {
    first_byte: Duration,
    done: Duration,
    ok: bool,
}

type Conn = BufReader<TcpStream>;

/// Sends `request` on `conn` and reads one whole response (length-delimited or chunked).
async fn exchange(conn: &mut Conn, request: &[u8], due: Instant) -> anyhow::Result<Timing> {
    conn.get_mut().write_all(request).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    anyhow::ensure!(!line.is_empty(), "connection closed");
    let ok = line.split_whitespace().nth(1) == Some("200");
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    let mut first_byte = None;
    let mut buf = Vec::new();
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .context("chunk size")?;
            if size == 0 {
                line.clear();
                conn.read_line(&mut line).await?;
                break;
            }
            buf.resize(size + 2, 0);
            conn.read_exact(&mut buf).await?;
            first_byte.get_or_insert_with(|| due.elapsed());
        }
    } else {
        let n = length.unwrap_or(0);
        buf.resize(n, 0);
        if n > 0 {
            conn.read_exact(&mut buf[..1]).await?;
            first_byte = Some(due.elapsed());
            conn.read_exact(&mut buf[1..]).await?;
        }
    }
    let done = due.elapsed();
    Ok(Timing {
        first_byte: first_byte.unwrap_or(done),
        done,
        ok,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `rate` requests a second for `seconds` against `addr` (host:port) and prints the
/// percentiles. `connections` is the most connections opened.
pub async fn run(
    addr: &str,
    request: Vec<u8>,
    rate: u64,
    seconds: u64,
    connections: usize,
) -> anyhow::Result<()> {
    let request = Arc::new(request);
    let idle: Arc<Mutex<Vec<Conn>>> = Arc::default();
    for _ in 0..connections.min(16) {
        idle.lock()
            .await
            .push(BufReader::new(TcpStream::connect(addr).await?));
    }
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(connections.min(16)));
    let (tx, mut rx) = mpsc::unbounded_channel::<anyhow::Result<Timing>>();
    let total = rate * seconds;
    let every = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now() + Duration::from_millis(50);
    for i in 0..total {
        let due = start + every * u32::try_from(i).unwrap_or(u32::MAX);
        tokio::time::sleep_until(due.into()).await;
        let (idle, request, tx, opened) =
            (idle.clone(), request.clone(), tx.clone(), opened.clone());
        let addr = addr.to_owned();
        tokio::spawn(async move {
            let conn = idle.lock().await.pop();
            let mut conn = match conn {
                Some(c) => c,
                None => {
                    if opened.fetch_add(1, std::sync::atomic::Ordering::AcqRel) >= connections {
                        opened.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                        // Wait for one to come back.
                        loop {
                            tokio::time::sleep(Duration::from_micros(200)).await;
                            if let Some(c) = idle.lock().await.pop() {
                                break c;
                            }
                        }
                    } else {
                        match TcpStream::connect(&addr).await {
                            Ok(s) => BufReader::new(s),
                            Err(e) => {
                                let _ = tx.send(Err(e.into()));
                                return;
                            }
                        }
                    }
                }
            };
            let result = exchange(&mut conn, &request, due).await;
            if result.is_ok() {
                idle.lock().await.push(conn);
            } else {
                opened.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }
            let _ = tx.send(result);
        });
    }
    drop(tx);
    let (mut done, mut first, mut errors, mut non_200) = (Vec::new(), Vec::new(), 0u64, 0u64);
    while let Some(r) = rx.recv().await {
        match r {
            Ok(t) => {
                non_200 += u64::from(!t.ok);
                done.push(t.done.as_secs_f64() * 1000.0);
                first.push(t.first_byte.as_secs_f64() * 1000.0);
            }
            Err(_) => errors += 1,
        }
    }
    done.sort_by(f64::total_cmp);
    first.sort_by(f64::total_cmp);
    let out = serde_json::json!({
        "rate": rate, "seconds": seconds, "requests": done.len(), "errors": errors,
        "non_200": non_200,
        "p50_ms": percentile(&done, 50.0), "p99_ms": percentile(&done, 99.0),
        "p999_ms": percentile(&done, 99.9), "max_ms": done.last().copied().unwrap_or(0.0),
        "first_byte_p50_ms": percentile(&first, 50.0),
        "first_byte_p99_ms": percentile(&first, 99.0),
    });
    println!("{out}");
    Ok(())
}
