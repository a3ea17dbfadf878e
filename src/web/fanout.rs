//! Direct fan-out for streams served on their own socket: overlays' event streams and chat
//! sockets.
//!
//! A stream with nothing left to write is parked: its feed (whatever turns bus messages into
//! the bytes its socket speaks, a [`Feed`]) and socket are handed to one of a few writers (one
//! per core). On every bus message the writers read each of their parked feeds and write what
//! it has straight to the socket, so an event reaches ten thousand clients without waking ten
//! thousand tasks. Anything that is not a complete write of a batch (a full socket buffer, an
//! error, the end of the stream, a burst larger than one batch) hands the feed back to the
//! stream's own task, with the bytes still to write, and that task carries on as an unparked
//! stream does; the task may also take it back at any time ([`Parking::take_back`]).
//!
//! Nothing is lost or repeated in the handover: the feed, with its subscription and position,
//! belongs to exactly one side at a time, under its [`Parked`] lock. Nothing waits forever
//! either: parking wakes the writer, which reads the new feed once, so a message sent while the
//! stream was deciding to park is written all the same.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::bus::{Listener, Pulse};

thread_local! {
    /// Which writer this thread is, on a writer's thread.
    static WRITER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// How many streams a writer serves before letting other tasks on its thread run.
const SLICE: usize = 64;
/// A writer's batch stops gathering at this many bytes, so one slow client cannot make a huge
/// buffer.
pub const MAX_BATCH: usize = 64 * 1024;
/// A stream's own task gathers at most this much: it has the stream because the socket filled,
/// so its client reads slower than events come, and what a batch holds beyond what the socket
/// takes waits in memory, per client, until it does. 1,000 events at full rate to 10,000
/// clients peaked at 277-533 MB with 64 KB here and 148-187 MB with 16 KB; 16 KB for the
/// writers' batches too cost a third more CPU per delivery in a short full-rate burst.
pub const TASK_BATCH: usize = 16 * 1024;

/// What a parked stream's writer reads: the bytes a stream has ready to write, in the form
/// its socket speaks.
pub trait Feed: Send + 'static {
    /// Everything ready now, up to `limit` bytes (a batch may pass it by its last frame),
    /// reading at most `budget` more messages of the bus (see
    /// [`crate::bus::Subscription::try_next_within`]).
    fn ready_within(&mut self, budget: &mut u64, limit: usize) -> Ready;

    /// Everything ready now, up to a stream's own task's batch ([`TASK_BATCH`]).
    fn ready(&mut self) -> Ready {
        let mut unlimited = u64::MAX;
        self.ready_within(&mut unlimited, TASK_BATCH)
    }
}

/// A feed kept on the heap: a task that holds it across its waits holds a pointer.
impl<F: Feed> Feed for Box<F> {
    fn ready_within(&mut self, budget: &mut u64, limit: usize) -> Ready {
        (**self).ready_within(budget, limit)
    }
}

/// What a feed has ready without waiting.
pub enum Ready {
    /// Nothing to write now.
    Idle,
    /// Bytes to write; `more` when the batch filled up and more may be ready.
    Frames { bytes: Bytes, more: bool },
    /// The stream ends after these last bytes (the bus closed, or what it shows is gone).
    End(Option<Bytes>),
}

/// Why a feed stopped gathering a batch.
pub enum Drained {
    /// Nothing more is ready.
    Empty,
    /// The batch is full; more may be ready.
    Full,
    /// The stream ends.
    End,
}

/// Frames gathered for one write: a single frame is passed on as the shared bytes; several
/// are copied into one buffer (a copy is far cheaper than a system call per frame).
pub struct Batch {
    first: Option<Bytes>,
    rest: Option<BytesMut>,
    len: usize,
    limit: usize,
}

impl Batch {
    /// A batch that is full at `limit` bytes.
    pub fn up_to(limit: usize) -> Batch {
        Batch {
            first: None,
            rest: None,
            len: 0,
            limit,
        }
    }

    pub fn push(&mut self, frame: Bytes) {
        self.len += frame.len();
        match (&mut self.first, &mut self.rest) {
            (None, _) => self.first = Some(frame),
            (Some(first), None) => {
                let mut buf = BytesMut::with_capacity(first.len() + frame.len() * 4);
                buf.extend_from_slice(first);
                buf.extend_from_slice(&frame);
                self.rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&frame),
        }
    }

    /// Whether the batch holds enough for one write.
    pub fn is_full(&self) -> bool {
        self.len >= self.limit
    }

    /// What a feed that gathered this batch has ready, `drained` telling why it stopped.
    pub fn ready(mut self, drained: Drained) -> Ready {
        match drained {
            Drained::Empty => self
                .take()
                .map_or(Ready::Idle, |bytes| Ready::Frames { bytes, more: false }),
            Drained::Full => Ready::Frames {
                bytes: self.take().unwrap_or_default(),
                more: true,
            },
            Drained::End => Ready::End(self.take()),
        }
    }

    pub fn take(&mut self) -> Option<Bytes> {
        self.len = 0;
        match self.rest.take() {
            Some(buf) => {
                self.first = None;
                Some(buf.freeze())
            }
            None => self.first.take(),
        }
    }
}

/// The writers of one server, started by the first stream that parks.
pub struct Fanout {
    /// Beats once per message the bus sends: a writer's cue to read its parked feeds.
    pulse: Arc<Pulse>,
    shards: OnceLock<Vec<Arc<Shard>>>,
    next: AtomicUsize,
    /// Set at shutdown: the writers' threads end.
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

struct Shard {
    /// The writer's own runtime, where its streams' tasks run too (unset: the writer runs on
    /// the shared runtime).
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Woken by the bus's beats while the shard has streams, and by each park.
    wake: Arc<Listener>,
    /// Parked since the writer last looked.
    fresh: Mutex<Vec<Arc<dyn Serve>>>,
}

/// A parked stream, shared by its task and a writer.
struct Parked<F> {
    hand: Mutex<Hand<F>>,
    /// Woken when the writer hands the feed back.
    back: Notify,
}

/// What a writer does with a parked stream of any kind.
trait Serve: Send + Sync {
    /// Writes what the feed has ready after `beats` beats of the bus; `false` once the feed is
    /// no longer parked here.
    fn serve(&self, beats: u64) -> bool;
}

struct Hand<F> {
    /// Both `None` once the stream's task took them back or left.
    feed: Option<F>,
    socket: Option<Arc<TcpStream>>,
    /// Set by the writer: the feed is waiting for its task.
    returned: bool,
    /// Bytes of the last batch the writer could not write.
    pending: Option<Bytes>,
    /// The stream ends once `pending` is written.
    end: bool,
    /// The bus's beat count when the feed was last found empty: the messages sent since are
    /// exactly the beats since.
    drained: u64,
}

/// What a writer hands back to a stream's task.
pub struct Returned<F> {
    pub feed: F,
    pub pending: Option<Bytes>,
    pub end: bool,
}

impl Fanout {
    /// Writers woken by `pulse`, the bus's.
    pub fn new(pulse: Arc<Pulse>) -> Fanout {
        Fanout {
            pulse,
            shards: OnceLock::new(),
            next: AtomicUsize::new(0),
            stopped: Arc::default(),
        }
    }

    /// Ends the writers (at shutdown, once every stream has ended).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        for shard in self.shards.get().into_iter().flatten() {
            shard.wake.wake();
        }
    }

    fn shards(&self) -> &[Arc<Shard>] {
        self.shards
            .get_or_init(|| start(&self.pulse, &self.stopped))
    }

    /// Runs a stream's task on the thread of one of the writers (the next in turn), where it
    /// parks: the runtime that answers requests (a publish) then never has a queue of streams
    /// to work through first, and the kernel shares the cores between the two. Without a
    /// writer thread it runs on the shared runtime. `stream` is made there from `socket`, so
    /// that its readiness is that runtime's to watch.
    pub fn spawn<F, Fut>(&self, socket: std::net::TcpStream, stream: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let shards = self.shards();
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let run = async move {
            match TcpStream::from_std(socket) {
                Ok(socket) => stream(socket).await,
                Err(e) => tracing::warn!("a stream's socket could not be registered: {e}"),
            }
        };
        match shards[n % shards.len()].runtime.get() {
            Some(runtime) => drop(runtime.spawn(run)),
            None => drop(tokio::spawn(run)),
        }
    }

    /// The bus's beat count: read it before finding a feed empty, and park with it.
    pub fn beats(&self) -> u64 {
        self.pulse.beats()
    }

    /// Hands `feed` and its socket to a writer. `drained` is [`Fanout::beats`] read before the
    /// feed was last found empty.
    pub fn park<F: Feed>(&self, drained: u64, socket: Arc<TcpStream>, feed: F) -> Parking<F> {
        let shards = self.shards();
        // A stream's task on a writer's thread parks with that writer.
        let n = WRITER
            .get()
            .unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed));
        let shard = &shards[n % shards.len()];
        let parked = Arc::new(Parked {
            hand: Mutex::new(Hand {
                feed: Some(feed),
                socket: Some(socket),
                returned: false,
                pending: None,
                end: false,
                drained,
            }),
            back: Notify::new(),
        });
        shard.fresh.lock().push(parked.clone());
        shard.wake.wake();
        Parking(parked)
    }
}

/// The stream task's side of a parked stream. Dropping it (the client left, shutdown, the task
/// cancelled) drops the feed and the socket at once: a writer never keeps a stream open.
pub struct Parking<F>(Arc<Parked<F>>);

impl<F> Parking<F> {
    /// Waits until the writer hands the feed back, and takes it.
    pub async fn returned(&self) -> Returned<F> {
        self.0.returned().await
    }

    /// Takes the feed back now, whether or not the writer was done with it (the stream's task
    /// has something else to write, or a client message to read first). The writer is not
    /// writing while this holds the lock, and never touches the feed or the socket after.
    pub fn take_back(self) -> Returned<F> {
        let mut hand = self.0.hand.lock();
        hand.returned = true;
        hand.socket = None;
        Returned {
            feed: hand
                .feed
                .take()
                .expect("a parked feed is the task's to take until it leaves"),
            pending: hand.pending.take(),
            end: hand.end,
        }
    }
}

impl<F> Drop for Parking<F> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

impl<F> Parked<F> {
    async fn returned(&self) -> Returned<F> {
        loop {
            self.back.notified().await;
            let mut hand = self.hand.lock();
            if hand.returned
                && let Some(feed) = hand.feed.take()
            {
                hand.socket = None;
                return Returned {
                    feed,
                    pending: hand.pending.take(),
                    end: hand.end,
                };
            }
        }
    }

    /// The stream is over: drops the feed here, not in a writer.
    fn leave(&self) {
        let (feed, socket) = {
            let mut hand = self.hand.lock();
            (hand.feed.take(), hand.socket.take())
        };
        drop((feed, socket));
    }
}

impl<F: Feed> Serve for Parked<F> {
    fn serve(&self, beats: u64) -> bool {
        let mut hand = self.hand.lock();
        let hand = &mut *hand;
        if hand.returned {
            return false;
        }
        let (Some(feed), Some(socket)) = (hand.feed.as_mut(), hand.socket.as_ref()) else {
            return false;
        };
        let mut budget = beats.saturating_sub(hand.drained);
        if budget == 0 {
            return true;
        }
        hand.drained = beats;
        let (bytes, keep) = match feed.ready_within(&mut budget, MAX_BATCH) {
            Ready::Idle => return true,
            Ready::Frames { bytes, more } => (Some(bytes), !more),
            Ready::End(bytes) => {
                hand.end = true;
                (bytes, false)
            }
        };
        if let Some(bytes) = bytes {
            match socket.try_write(&bytes) {
                Ok(n) if n == bytes.len() && keep => return true,
                Ok(n) if n < bytes.len() => hand.pending = Some(bytes.slice(n..)),
                Ok(_) => {}
                // A full socket buffer, or an error the task meets again on its own write.
                Err(_) => hand.pending = Some(bytes),
            }
        }
        hand.returned = true;
        self.back.notify_one();
        false
    }
}

/// Starts one writer per core, each on a thread of its own: the kernel then shares the cores
/// between writing to thousands of sockets and answering requests (a publish), instead of a
/// request waiting in a runtime queue behind the writers.
fn start(pulse: &Arc<Pulse>, stopped: &Arc<std::sync::atomic::AtomicBool>) -> Vec<Arc<Shard>> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let shards: Vec<Arc<Shard>> = (0..workers.clamp(1, 16))
        .map(|_| {
            Arc::new(Shard {
                runtime: OnceLock::new(),
                wake: Arc::default(),
                fresh: Mutex::new(Vec::new()),
            })
        })
        .collect();
    pulse.listen(shards.iter().map(|s| s.wake.clone()).collect());
    for (n, shard) in shards.iter().enumerate() {
        let writer = write(shard.clone(), pulse.clone(), stopped.clone());
        let threaded = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|runtime| {
                let handle = runtime.handle().clone();
                let on = shard.clone();
                std::thread::Builder::new()
                    .name(format!("overlayd-writer-{n}"))
                    .spawn(move || {
                        WRITER.set(Some(n));
                        runtime.block_on(writer)
                    })
                    .map(|_| {
                        let _ = on.runtime.set(handle);
                    })
                    .map_err(|e| e.to_string())
            });
        // Without a thread of its own, the writer still runs: on the runtime, as it used to.
        if let Err(e) = threaded {
            tracing::warn!("writer {n} runs on the shared runtime (no thread of its own: {e})");
            tokio::spawn(write(shard.clone(), pulse.clone(), stopped.clone()));
        }
    }
    shards
}

/// A writer: on each beat of the bus, serves every feed parked with it; on each park, the new
/// feeds. Runs until [`Fanout::stop`].
async fn write(shard: Arc<Shard>, pulse: Arc<Pulse>, stopped: Arc<std::sync::atomic::AtomicBool>) {
    let mut parked: Vec<Arc<dyn Serve>> = Vec::new();
    let mut seen = pulse.beats();
    loop {
        shard.wake.woken().await;
        if stopped.load(Ordering::Acquire) {
            return;
        }
        let beats = pulse.beats();
        if beats != seen {
            seen = beats;
            serve_all(&mut parked, beats).await;
        }
        let mut fresh = std::mem::take(&mut *shard.fresh.lock());
        if !fresh.is_empty() {
            // Before the beats are read for them: a beat from here on wakes this writer, and
            // one before is counted in what they are served.
            shard.wake.listen();
        }
        serve_all(&mut fresh, pulse.beats()).await;
        parked.append(&mut fresh);
        if parked.is_empty() {
            // A stream parked from here on wakes the writer, which listens again as it takes it.
            shard.wake.rest();
        }
    }
}

/// Writes all of `buf` to `socket`, waiting while it is full: a stream's task writing what a
/// writer could not, or what it found ready itself.
pub async fn write_all(socket: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        socket.writable().await?;
        match socket.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Serves each feed, keeping those still parked, a slice at a time.
async fn serve_all(parked: &mut Vec<Arc<dyn Serve>>, beats: u64) {
    let mut kept = 0;
    for i in 0..parked.len() {
        if parked[i].serve(beats) {
            parked.swap(kept, i);
            kept += 1;
        }
        if (i + 1) % SLICE == 0 {
            tokio::task::yield_now().await;
        }
    }
    parked.truncate(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spawned_stream_runs_on_a_writers_thread_with_its_socket_and_parks_there() {
        let fanout = Arc::new(Fanout::new(Arc::new(Pulse::default())));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        fanout.spawn(server, move |socket| async move {
            let thread = std::thread::current().name().map(str::to_string);
            // Readiness is watched by the writer's runtime: a write goes through.
            let wrote = write_all(&socket, b"hello").await.is_ok();
            let _ = tx.send((thread, wrote, WRITER.get()));
        });
        let (thread, wrote, writer) = tokio::time::timeout(std::time::Duration::from_secs(5), rx)
            .await
            .expect("the stream ran")
            .unwrap();
        let thread = thread.unwrap_or_default();
        assert!(thread.starts_with("overlayd-writer-"), "{thread}");
        assert!(wrote);
        // The writer it runs on is the one it parks with.
        assert_eq!(writer.map(|n| format!("overlayd-writer-{n}")), Some(thread));
        let mut got = [0u8; 5];
        std::io::Read::read_exact(&mut &client, &mut got).unwrap();
        assert_eq!(&got, b"hello");
    }
}
