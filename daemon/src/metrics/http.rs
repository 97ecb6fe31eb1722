//! The HTTP side: hyper 1 HTTP/1.1 connections on a tokio listener.

use super::{events, Exporter, MetricsError, CONTENT_TYPE};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::{AbortHandle, JoinSet};

/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed after this long, whatever it is doing (a hung or very slow reader
/// cannot keep a socket and a task forever).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// Connections kept open at once. A new connection is always accepted at once; when this many
/// are open, the oldest is closed to make room. Idle or slow clients therefore never make a
/// new scrape wait (issue 14, defect 2: with a cap that queued new connections, 40 idle ones
/// made a scrape wait 9.7 s); a real scrape lasts milliseconds, so the oldest connection is
/// one that is idle or stalled, and closing it costs a well-behaved scraper nothing.
const MAX_CONNECTIONS: usize = 64;
/// The running metrics endpoint. Dropping it stops the server too, without waiting.
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: oneshot::Receiver<()>,
}

impl MetricsServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every connection, ends the event task and waits for both
    /// tasks to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.done.await;
    }
}

/// Starts the metrics tasks on the calling runtime (the daemon's main runtime, beside the
/// D-Bus service: ARCHITECTURE.md, "Threads"): an accept loop and the event feed. Everything a
/// scrape does is asynchronous except rendering, which takes about a millisecond and runs one
/// scrape at a time; the control loop has its own thread and never waits for it.
pub(super) async fn serve(
    exporter: Arc<Exporter>,
    addr: SocketAddr,
) -> Result<MetricsServer, MetricsError> {
    // Subscribe here, before returning, so no event published after start() is missed.
    let events = exporter.handle.events();
    let (stop, stopped) = watch::channel(false);
    let (done_tx, done_rx) = oneshot::channel();
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let mut tasks = JoinSet::new();
    tasks.spawn(events::feed(
        exporter.handle.clone(),
        events,
        exporter.events.clone(),
        stopped.clone(),
    ));
    tasks.spawn(accept_loop(listener, exporter, stopped));
    tracing::info!(%local_addr, "serving metrics");
    tokio::spawn(async move {
        while tasks.join_next().await.is_some() {}
        // Nobody waits when the server was dropped without a shutdown.
        let _ = done_tx.send(());
    });
    Ok(MetricsServer {
        local_addr,
        stop,
        done: done_rx,
    })
}

async fn accept_loop(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut open = OpenConnections::default();
    // One render at a time, whatever the number of scrapers: what scrapes can cost is bounded.
    let renders = Arc::new(Semaphore::new(1));
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let exporter = exporter.clone();
        let renders = renders.clone();
        let task = connections.spawn(async move {
            let service = service_fn(move |req| answer(exporter.clone(), renders.clone(), req));
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "metrics connection ended"),
                Err(_) => tracing::debug!(%peer, "metrics connection closed after its lifetime"),
            }
        });
        if open.push(task) {
            tracing::debug!(%peer, "metrics connection limit reached: closed the oldest");
        }
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// The open connections, oldest first, so the oldest can be closed when a new one arrives
/// and [`MAX_CONNECTIONS`] are open.
#[derive(Default)]
struct OpenConnections {
    tasks: VecDeque<AbortHandle>,
}

impl OpenConnections {
    /// Adds a new connection; closes the oldest open ones beyond the limit. Returns whether
    /// one was closed.
    fn push(&mut self, task: AbortHandle) -> bool {
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push_back(task);
        let mut closed = false;
        while self.tasks.len() > MAX_CONNECTIONS {
            if let Some(oldest) = self.tasks.pop_front() {
                oldest.abort();
                closed = true;
            }
        }
        closed
    }
}

/// Renders one scrape on the blocking pool once no other render runs.
async fn render(exporter: Arc<Exporter>, renders: Arc<Semaphore>) -> Result<String, String> {
    // The semaphore is never closed.
    let permit = renders
        .acquire_owned()
        .await
        .map_err(|e| format!("render queue: {e}"))?;
    tokio::task::spawn_blocking(move || {
        let _one_at_a_time = permit;
        exporter.render().map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the render did not finish: {e}"))?
}

fn text(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(content_type));
    response
}

const LANDING: &str = "<!DOCTYPE html>\n<html><head><title>ColdSpray metrics</title></head>\n\
<body><h1>ColdSpray metrics</h1>\n<p>Prometheus metrics of this cooling unit are at \
<a href=\"metrics\">/metrics</a>.</p>\n</body></html>\n";

async fn answer(
    exporter: Arc<Exporter>,
    renders: Arc<Semaphore>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let response = match req.uri().path() {
        "/metrics" => {
            // Rendered on the runtime's blocking pool (the daemon runs it at a lowered
            // priority: `coldsprayd.rs`), one scrape at a time: rendering reads /proc and the
            // store's file size, and under a crowd of scrapers it gets only the CPU that the
            // loop, the sensors and D-Bus leave over.
            match render(exporter, renders).await {
                Ok(body) => text(StatusCode::OK, CONTENT_TYPE, body),
                Err(e) => {
                    tracing::error!(error = %e, "cannot render metrics");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain; charset=utf-8",
                        format!("cannot render metrics: {e}\n"),
                    )
                }
            }
        }
        "/" => text(StatusCode::OK, "text/html; charset=utf-8", LANDING),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; try /metrics\n",
        ),
    };
    Ok(response)
}
