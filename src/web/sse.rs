//! The per-client event stream. A client's stream reads the bus, keeps the events its overlays
//! want, and writes each event's shared frame bytes (made in [`crate::frame`]); when several
//! frames are ready at once they go out in one write. The stream ends when the bus closes
//! (shutdown).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::bus::{Bus, Message, Next, Subscription};
use crate::channels::{Channels, Lease};
use crate::frame::{KEEP_ALIVE, RESYNC, preamble};
use crate::overlay::{Overlay, Overlays};
use crate::web::fanout::{Batch, Drained, Ready, TASK_BATCH};

/// The overlays one stream serves, cached until the overlay set changes.
struct Views {
    names: Vec<String>,
    version: u64,
    overlays: Vec<Arc<Overlay>>,
}

impl Views {
    /// Refreshes the cached overlays if any changed; `false` once none of them exist.
    fn refresh(&mut self, registry: &Overlays) -> bool {
        let version = registry.version();
        if version != self.version {
            self.version = version;
            self.overlays = self.names.iter().filter_map(|n| registry.get(n)).collect();
        }
        !self.overlays.is_empty()
    }
}

/// One client's feed: its subscription, the overlays it shows, and what keeps their channels'
/// sources running. Turns bus messages into the bytes to write.
pub struct Feed {
    bus: Arc<Bus>,
    registry: Arc<Overlays>,
    sub: Subscription,
    /// Keeps the channels' sources running while this client watches.
    _lease: Lease,
    views: Views,
    ended: bool,
}

impl Feed {
    /// Subscribes to the channels of `overlays` (taken from `registry`, whose changes the
    /// feed follows), replaying what came after `since`; `lease` keeps their sources running.
    pub fn new(
        bus: Arc<Bus>,
        registry: Arc<Overlays>,
        lease: Lease,
        overlays: Vec<Arc<Overlay>>,
        since: Option<u64>,
    ) -> Feed {
        let sub = bus.subscribe(lease.channels().to_vec(), since);
        let views = Views {
            names: overlays.iter().map(|o| o.config.name.clone()).collect(),
            version: registry.version(),
            overlays,
        };
        Feed {
            bus,
            registry,
            sub,
            _lease: lease,
            views,
            ended: false,
        }
    }

    /// The next bytes to write, waiting for them; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Bytes> {
        while !self.ended {
            let first = self.sub.next(&self.bus).await;
            let mut batch = Batch::up_to(TASK_BATCH);
            let mut unlimited = u64::MAX;
            if self.add(first, &mut batch) {
                // Whatever else is ready right now goes into the same write.
                self.drain(&mut batch, &mut unlimited);
            }
            if let Some(bytes) = batch.take() {
                return Some(bytes);
            }
        }
        None
    }

    fn drain(&mut self, batch: &mut Batch, budget: &mut u64) -> Drained {
        while !batch.is_full() {
            let next = self.sub.try_next_within(&self.bus, budget);
            if matches!(next, Next::Empty) {
                return Drained::Empty;
            }
            if !self.add(next, batch) {
                return Drained::End;
            }
        }
        Drained::Full
    }

    /// Adds what `next` means for this client to `batch`; `false` (and ended) when the stream
    /// must end.
    fn add(&mut self, next: Next, batch: &mut Batch) -> bool {
        match next {
            Next::Message(Message::Event(item)) => {
                if !self.views.refresh(&self.registry) {
                    self.ended = true;
                    return false;
                }
                for overlay in &self.views.overlays {
                    if overlay.wants(&item.event) {
                        batch.push(overlay.frame(&item, &self.registry.shared));
                    }
                }
                true
            }
            Next::Message(Message::KeepAlive) => {
                batch.push(Bytes::from_static(KEEP_ALIVE));
                true
            }
            Next::Message(Message::Theme { theme, frame }) => {
                if self.views.overlays.iter().any(|o| o.config.theme == theme) {
                    batch.push(frame);
                }
                true
            }
            Next::Message(Message::Overlay { name, frame }) => {
                if self.views.names.contains(&name) {
                    batch.push(frame);
                }
                true
            }
            // For the chat sockets.
            Next::Message(Message::ChatStats { .. }) => true,
            Next::Resync => {
                batch.push(Bytes::from_static(RESYNC));
                true
            }
            Next::Empty => true,
            Next::Closed => {
                self.ended = true;
                false
            }
        }
    }
}

impl crate::web::fanout::Feed for Feed {
    fn ready_within(&mut self, budget: &mut u64, limit: usize) -> Ready {
        if self.ended {
            return Ready::End(None);
        }
        let mut batch = Batch::up_to(limit);
        let drained = self.drain(&mut batch, budget);
        batch.ready(drained)
    }
}

/// The body of `GET /o/<name>/events` (one name) or `GET /events?o=a,b` (several), through
/// hyper: the preamble, then the feed.
pub fn stream(
    feed: Feed,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let preamble = futures_util::stream::once(async { Ok(Bytes::from(preamble())) });
    let rest = futures_util::stream::unfold(feed, |mut feed| async move {
        feed.next().await.map(|bytes| (Ok(bytes), feed))
    });
    preamble.chain(rest)
}

/// Leases the channels `overlays` show, each once.
pub fn lease(channels: &Arc<Channels>, overlays: &[Arc<Overlay>]) -> Lease {
    let mut names: Vec<String> = overlays.iter().map(|o| o.config.channel.clone()).collect();
    names.sort();
    names.dedup();
    channels.lease(&names)
}
