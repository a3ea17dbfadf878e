//! The accept loop. warp's own server waits forever for open SSE responses on graceful
//! shutdown (OBS never closes its sources), so connections are driven here with hyper:
//! on shutdown the listener closes, every connection is asked to finish its current
//! response, and whatever is still open after `DRAIN` is dropped.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::web::Peer;

/// How long open connections get to finish once shutdown starts. Streams end at once (the
/// bus closes); this only bounds a client that stopped reading with a full socket buffer.
const DRAIN: Duration = Duration::from_millis(500);

type Routes = BoxedFilter<(Response,)>;

/// Serves `routes` on `listener` until `shutdown`; returns once every connection is closed.
pub async fn serve(listener: TcpListener, routes: Routes, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = Service {
            inner: warp::service(routes.clone()),
            peer,
        };
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .writev(true)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn).await;
                }
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// warp's service with the peer address attached to each request.
#[derive(Clone)]
struct Service<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for Service<S>
where
    S: tower_service::Service<http::Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(Peer(self.peer));
        let mut inner = self.inner.clone();
        Box::pin(tower_service::Service::call(&mut inner, req))
    }
}
