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
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// A client must send its request headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is closed after this long, whatever it is doing (a hung or very slow reader
/// cannot keep a socket and a task forever).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);
/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 32;

/// The running metrics endpoint.
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl MetricsServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, closes every connection and ends the event task.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

pub(super) async fn serve(
    exporter: Arc<Exporter>,
    addr: SocketAddr,
) -> Result<MetricsServer, MetricsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(events::feed(
        exporter.handle.clone(),
        exporter.handle.events(),
        exporter.events.clone(),
        stopped.clone(),
    ));
    tasks.spawn(accept_loop(listener, exporter, stopped));
    tracing::info!(%local_addr, "serving metrics");
    Ok(MetricsServer {
        local_addr,
        stop,
        tasks,
    })
}

async fn accept_loop(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
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
        connections.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| answer(exporter.clone(), req));
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
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
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
            // Rendering reads process statistics and the store size from disk: keep it off
            // the executor threads the control loop may share.
            match tokio::task::spawn_blocking(move || exporter.render()).await {
                Ok(Ok(body)) => text(StatusCode::OK, CONTENT_TYPE, body),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot render metrics");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain; charset=utf-8",
                        format!("cannot render metrics: {e}\n"),
                    )
                }
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    format!("metrics task failed: {e}\n"),
                ),
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
