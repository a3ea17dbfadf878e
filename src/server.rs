//! The accept loop. warp's own server waits forever for open SSE responses on graceful
//! shutdown (OBS never closes its sources), so connections are driven here: on shutdown the
//! listener closes, every stream ends, and whatever is still open after `DRAIN` is dropped.
//!
//! A connection whose first request opens an event stream is served directly on the socket
//! (see [`direct`]); every other request goes to the warp routes through hyper.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::web::{Peer, State};

/// How long open connections get to finish once shutdown starts. Streams end at once (the
/// bus closes); this only bounds a client that stopped reading with a full socket buffer.
const DRAIN: Duration = Duration::from_millis(500);
/// A client has this long to send its request head (slow-loris protection).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head read before handing the connection to hyper (which enforces its own).
const MAX_HEAD: usize = 16 * 1024;

type Routes = BoxedFilter<(Response,)>;

/// Serves `routes` on `listener` until `shutdown`; returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    state: Arc<State>,
    shutdown: CancellationToken,
) {
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
        tracker.spawn(connection(
            stream,
            peer,
            routes.clone(),
            state.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    routes: Routes,
    state: Arc<State>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut head = Vec::with_capacity(1024);
    // Boxed, and freed once the head is in: the timer is large, and inline its room would
    // stay in the task of every stream for as long as it is open.
    let read = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = Box::pin(tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut head))) => r,
    };
    if !matches!(read, Ok(Ok(()))) || head.is_empty() {
        return;
    }
    if let Some(request) = direct::parse(&head, &state) {
        drop(head);
        // On a writer's thread from here on (`Fanout::spawn`), counted from now on by the
        // tracker that shutdown waits for.
        match stream.into_std() {
            Ok(socket) => {
                let (counted, writers) = (tracker.token(), state.clone());
                writers.fanout.spawn(socket, move |stream| async move {
                    direct::serve(stream, request, state, shutdown).await;
                    drop(counted);
                });
            }
            Err(e) => tracing::warn!("an event stream's socket: {e}"),
        }
        return;
    }
    // A WebSocket of ours (the chat protocol, the events socket): the handshake reads the
    // head again from the front of the stream. The socket is shared, so that a chat socket
    // with nothing else to do can be written by the fan-out writers.
    if let Some(up) = crate::web::sockets::upgrade(&head, peer.ip()) {
        let socket = Arc::new(stream);
        let io = Rewind {
            prefix: Bytes::from(head),
            inner: SharedSocket(socket.clone()),
        };
        // Boxed: inline, its state would grow every connection's task, event streams included.
        Box::pin(crate::web::sockets::serve(io, socket, up, state)).await;
        return;
    }
    // Boxed too: hyper's connection state is about 2.5 KB, and inline it would sit in every
    // connection's task, the event streams' included, for as long as they stay open.
    Box::pin(http(stream, head, peer, routes, shutdown)).await;
}

/// Any other request, and the keep-alive ones after it, through hyper and the warp routes.
async fn http(
    stream: TcpStream,
    head: Vec<u8>,
    peer: SocketAddr,
    routes: Routes,
    shutdown: CancellationToken,
) {
    let io = Rewind {
        prefix: Bytes::from(head),
        inner: stream,
    };
    let service = Service {
        inner: warp::service(routes),
        peer,
    };
    // The same head limits on every request of the connection, the keep-alive ones after the
    // first included: hyper holds them from here on.
    let conn = hyper::server::conn::http1::Builder::new()
        .writev(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(io), service)
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
}

/// Reads until the end of the request head (or EOF, or `MAX_HEAD`).
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    while buf.len() < MAX_HEAD {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(());
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(1024);
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(());
        }
    }
    Ok(())
}

/// The socket with the bytes already read in front, for hyper and tungstenite.
struct Rewind<T = TcpStream> {
    prefix: Bytes,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            if self.prefix.is_empty() {
                // Emptied is not freed: the head's buffer would stay for as long as the
                // connection does.
                self.prefix = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A socket read and written through a shared handle: by its task, and while the task waits,
/// by a fan-out writer (never both at once; see [`crate::web::fanout`]).
struct SharedSocket(Arc<TcpStream>);

impl AsyncRead for SharedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
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

pub mod direct {
    //! Event streams served straight on the socket. An OBS source holds its stream for hours,
    //! so what a connection keeps matters more than anything else per client: here that is the
    //! socket, the subscription and one small task (no HTTP buffers of 8 KiB each), and each
    //! batch of frames is one `write` of the shared bytes (no chunk framing). While a stream
    //! is idle it is parked with a writer ([`crate::web::fanout`]), which writes its events
    //! without waking its task. The answer is the same as the warp route's, with
    //! `Connection: close` delimiting the body. Anything this path does not recognise exactly
    //! goes to the warp routes instead.

    use std::sync::Arc;

    use bytes::Bytes;
    use tokio::net::TcpStream;
    use tokio_util::sync::CancellationToken;

    use crate::frame::{HEAD, preamble};
    use crate::overlay::Overlay;
    use crate::web::State;
    use crate::web::fanout::{Feed as _, Ready, write_all};

    /// What an event-stream client may send after its request before it is dropped (a
    /// browser sends nothing; a little slack for a stray keep-alive probe).
    const MAX_UPSTREAM: usize = 4096;

    pub struct Request {
        overlays: Vec<Arc<Overlay>>,
        since: Option<u64>,
    }

    /// An event-stream request this path can serve: `GET /o/<name>/events` or
    /// `GET /events?o=a,b`, with only `since` (and `o`) in the query, every overlay existing.
    pub fn parse(head: &[u8], state: &State) -> Option<Request> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(head), Ok(httparse::Status::Complete(_)))
            || req.method != Some("GET")
        {
            return None;
        }
        let target = req.path?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut since = None;
        let mut names: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=')? {
                ("since", v) => since = Some(v.parse::<u64>().ok()?),
                ("o", v) if path == "/events" => {
                    names.extend(v.split(',').filter(|n| !n.is_empty()))
                }
                _ => return None,
            }
        }
        match path
            .strip_prefix("/o/")
            .and_then(|p| p.strip_suffix("/events"))
        {
            Some(name) => names.push(name),
            None if path == "/events" => {}
            None => return None,
        }
        if names.is_empty() || names.len() > 64 {
            return None;
        }
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("last-event-id") {
                since = Some(std::str::from_utf8(h.value).ok()?.trim().parse().ok()?);
            }
        }
        let overlays = names
            .iter()
            .map(|n| state.overlays.get(n))
            .collect::<Option<Vec<_>>>()?;
        Some(Request { overlays, since })
    }

    /// Streams until the client goes away, the bus closes, or shutdown. Whenever it has
    /// nothing left to write, the stream is parked with a writer ([`crate::web::fanout`]),
    /// which writes its events from then on; it comes back here only for what a single
    /// non-blocking write could not do.
    pub async fn serve(
        stream: TcpStream,
        req: Request,
        state: Arc<State>,
        shutdown: CancellationToken,
    ) {
        // An event stream is small frames far apart: Reno's per-packet work is a fraction of
        // BBR's (often the system default) and the difference in throughput never shows.
        // Reno is always allowed; where it is not available the default stays.
        #[cfg(target_os = "linux")]
        let _ = socket2::SockRef::from(&stream).set_tcp_congestion(b"reno");
        let socket = Arc::new(stream);
        let preamble = preamble();
        let mut head = Vec::with_capacity(HEAD.len() + preamble.len());
        head.extend_from_slice(HEAD);
        head.extend_from_slice(&preamble);
        let mut feed = state.feed(req.overlays, req.since);
        // The client sends nothing after its request: the socket turning readable means it
        // left. One future for the whole stream, so each wake-up only re-polls it. A client
        // that does send is read and ignored up to `MAX_UPSTREAM` bytes, then dropped; each
        // read yields, so such clients can never hold a runtime thread.
        let left = async {
            // Small: it is part of every open stream's task, and a browser sends nothing here.
            let mut probe = [0u8; 64];
            let mut sent = 0usize;
            loop {
                if socket.readable().await.is_err() {
                    return;
                }
                match socket.try_read(&mut probe) {
                    Ok(0) => return,
                    Ok(n) => {
                        sent += n;
                        if sent > MAX_UPSTREAM {
                            tracing::debug!("an event-stream client kept sending; closed");
                            return;
                        }
                        tokio::task::yield_now().await;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        };
        tokio::pin!(left);
        let mut out = Some(Bytes::from(head));
        let mut end = false;
        loop {
            if let Some(bytes) = out.take() {
                tokio::select! {
                    r = write_all(&socket, &bytes) => if r.is_err() { break },
                    _ = shutdown.cancelled() => break,
                    _ = &mut left => break,
                }
            }
            if end {
                break;
            }
            // Read before the feed is found empty: every message sent after is a beat after.
            let drained = state.fanout.beats();
            match feed.ready() {
                Ready::Frames { bytes, .. } => {
                    out = Some(bytes);
                    continue;
                }
                Ready::End(bytes) => {
                    out = bytes;
                    end = true;
                    continue;
                }
                Ready::Idle => {}
            }
            let parked = state.fanout.park(drained, socket.clone(), feed);
            let back = tokio::select! {
                back = parked.returned() => back,
                // Dropping `parked` drops the feed and closes the socket.
                _ = shutdown.cancelled() => break,
                _ = &mut left => break,
            };
            feed = back.feed;
            out = back.pending;
            end = back.end;
        }
    }
}
