//! The durable event log on SQLite, a file in the data dir (`events.sqlite3`): the default.
//! History is kept per channel by count and by age.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};
use rusqlite::{Connection, OptionalExtension, params};

use super::log::{EventLog, StoreError, page_after};
use crate::blocking::off_the_runtime;
use crate::event::{Event, Kind};

/// Appends between two pruning passes: pruning is a DELETE per channel, cheap but not free.
/// A channel also gets a pass of its own once it holds this many over its limit.
const PRUNE_EVERY: u64 = 256;
/// How often the write-ahead log is copied back into the file, at most (and sooner after
/// CHECKPOINT_AFTER appends). The commit that starts the log over syncs what was written since
/// the last checkpoint ([`Checkpoints`]): under a steady chat a checkpoint every 512 appends (a
/// second at 500 lines/s) made that sync 5-15 ms and chat's p99 2.1-13 ms; every 64, 0.8-2.5 ms,
/// for a few per cent of a burst's rate. The time bound stays a second: at a few events a
/// second every checkpoint lets the next publish start the log over and pay that sync (every
/// 200 ms, 5 events/s to 10,000 streams were delivered about 4 ms later at the median).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const CHECKPOINT_AFTER: u64 = 64;
/// Channels whose count of events is held at most; past it the counts are forgotten and read
/// again as each channel is next pruned (a bound, not a cache size anyone should meet).
const COUNTED_CHANNELS: usize = 100_000;
/// The oldest events of a channel one pass checks for their age.
const AGE_WINDOW: i64 = 1024;

/// An event id as SQLite stores it (a signed 64-bit integer): ids from 2^63 up, which no event
/// has, are taken as the largest, so `since` beyond every event replays nothing (cast, they
/// would turn negative and replay everything).
fn id_column(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// The events table, laid out by channel: its rows are kept in `(channel, id)` order, so a
/// channel's history is a run of neighbouring pages, read in a few reads when it is not in the
/// OS page cache (a table in id order spreads it over one page per event, since every channel
/// writes between). `events_id` finds the newest and oldest ids at start. Pruning by count
/// deletes from a channel's oldest end by how many it holds over its limit, which is counted
/// once and then kept in memory: finding the `keep`th newest instead walked every kept row
/// (50,000 of them every 256 appends made a chat burst three times slower), and a narrow
/// `(channel, id)` index for that walk made the cold reads' tails long.
const EVENTS: &str = "(
    channel TEXT NOT NULL,
    id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    platform TEXT NOT NULL,
    at INTEGER NOT NULL,
    history INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (channel, id)
) WITHOUT ROWID";

/// Rewrites a log from before the layout by channel (a table in id order with an index on
/// `(channel, id)`) into it, once, in one transaction: a failure leaves the file as it was.
fn by_channel(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    let events: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    tracing::info!(
        "reorganizing the event log {} by channel, once: {events} events (about 15 s a million)",
        path.display()
    );
    // Dropped without a commit, the transaction rolls back.
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(&format!(
        "CREATE TABLE events_by_channel {EVENTS};
         INSERT INTO events_by_channel (channel, id, kind, platform, at, history, data)
             SELECT channel, id, kind, platform, at, history, data FROM events
             ORDER BY channel, id;
         DROP TABLE events;
         ALTER TABLE events_by_channel RENAME TO events;"
    ))?;
    tx.commit()?;
    // The copy went through the write-ahead log: give its space back now.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    tracing::info!(
        "the event log is laid out by channel ({events} events in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A row of the events table: id, channel, kind, platform, at, flags, data (JSON text).
type Row = (i64, String, Kind, String, i64, i64, String);

pub struct Sqlite {
    path: PathBuf,
    /// Shared with the checkpoints' thread, which holds it for the last few pages of a
    /// checkpoint.
    conn: Arc<Mutex<Connection>>,
    /// How many events each channel holds, for the channels pruned since the log was opened
    /// (the others are counted at their first pruning). Locked after `conn`, never before.
    counts: Mutex<HashMap<String, u64>>,
    keep: usize,
    max_age_ms: u64,
    appends: AtomicU64,
    checkpoints: Checkpoints,
}

/// Copies the write-ahead log back into the file on a thread of its own, with a connection of
/// its own. SQLite would otherwise do it in the commit that fills the log (1,000 pages), fsync
/// included: a publish every few hundred waited milliseconds for the disk (chat's p99 at 500
/// lines/s: 5.5-6 ms). Only a checkpoint that copied every page lets the log start over, and
/// one made beside a busy writer never does, so the last few pages are copied with the
/// writer held (a fraction of a millisecond, the fsync included): without that, a long burst
/// grew the log to 190 MB (a start after a crash reads it back). A commit still checkpoints a
/// log that reached 4,000 pages (16 MB, the size it is cut back to), should this thread fall
/// behind; at SQLite's 1,000 a burst of chat still met it, and chat's p99 was 2.4-2.7 ms.
/// Ended, and its connection closed, with the log.
///
/// A checkpoint that copied every page lets the next commit start the log over, and that
/// commit syncs the log's new header to disk (SQLite does, so that a power cut cannot mix old
/// pages with new): 5-15 ms on the build machine's disk with a second's pages behind it,
/// measured with `strace -f -e fsync`. The thread says so (`restart_due`), and that commit runs
/// [`off_the_runtime`], as does a wait for the writer while this thread holds it: the runtime
/// worker's other tasks (streams, requests) carry on meanwhile.
struct Checkpoints {
    ask: Option<std::sync::mpsc::SyncSender<()>>,
    /// Set when a checkpoint copied every page: the next commit starts the log over.
    restart_due: Arc<AtomicBool>,
    /// Set while the thread holds the writer (its last pages, and a sync).
    holding_writer: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpoints {
    fn start(path: &Path, writer: Arc<Mutex<Connection>>) -> Checkpoints {
        let (ask, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let path = path.to_path_buf();
        let restart_due = Arc::new(AtomicBool::new(false));
        let restart = restart_due.clone();
        let holding_writer = Arc::new(AtomicBool::new(false));
        let holding = holding_writer.clone();
        let thread = std::thread::Builder::new()
            .name("overlayd-log-checkpoint".into())
            .spawn(move || {
                let conn = match Connection::open(&path) {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!("{}: the log's checkpoints: {e}", path.display());
                        return;
                    }
                };
                // (pages in the log, pages copied); PASSIVE: as many as can be copied without
                // waiting for the writer.
                let checkpoint = || {
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    })
                };
                loop {
                    match asked.recv_timeout(CHECKPOINT_EVERY) {
                        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                    let done = checkpoint()
                        .and_then(|(log, copied)| match copied < log {
                            // What the writer added meanwhile, with the writer held.
                            true => {
                                let _writer = writer.lock();
                                holding.store(true, Ordering::Release);
                                let done = checkpoint();
                                holding.store(false, Ordering::Release);
                                done
                            }
                            false => Ok((log, copied)),
                        })
                        .map(|(log, copied)| {
                            if log > 0 && copied >= log {
                                restart.store(true, Ordering::Release);
                            }
                        });
                    if let Err(e) = done {
                        tracing::warn!("{}: checkpoint: {e}", path.display());
                    }
                }
            });
        match thread {
            Ok(thread) => Checkpoints {
                ask: Some(ask),
                restart_due,
                holding_writer,
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!("the log's checkpoints are made in its commits (no thread: {e})");
                Checkpoints {
                    ask: None,
                    restart_due: Arc::default(),
                    holding_writer: Arc::default(),
                    thread: None,
                }
            }
        }
    }

    /// Asks for a checkpoint soon (never waits: one already asked for will do).
    fn ask(&self) {
        if let Some(ask) = &self.ask {
            let _ = ask.try_send(());
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.ask = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Sqlite {
    /// Opens (or creates) the log, and proves it can be written: a read-only or corrupt file
    /// is reported here, at start, not when the first event would be lost.
    pub fn open(path: &Path, keep: usize, max_age_days: u64) -> Result<Sqlite, StoreError> {
        let err = |message: String| StoreError {
            place: path.display().to_string(),
            message,
        };
        // A file marked read-only is refused here, even for an administrator whom the system
        // would let write: someone made it read-only on purpose.
        if std::fs::metadata(path).is_ok_and(|m| m.permissions().readonly()) {
            return Err(err(
                "it is read-only: make it writable (e.g. chmod u+w), or point [server] data_dir at a writable folder"
                    .into(),
            ));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                err(format!(
                    "cannot create its folder: {e}; set [server] data_dir to a writable folder"
                ))
            })?;
        }
        let conn = Connection::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let setup = conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA wal_autocheckpoint = 4000;
                 PRAGMA journal_size_limit = 16777216;",
            )
            .and_then(|()| {
                conn.query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
                    [],
                    |r| r.get::<_, String>(0),
                )
                .optional()
            })
            .and_then(|layout| match layout {
                Some(sql) if !sql.to_ascii_uppercase().contains("WITHOUT ROWID") => {
                    by_channel(&conn, path)
                }
                _ => conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS events {EVENTS};")),
            })
            .and_then(|()| {
                conn.execute_batch(
                    "CREATE UNIQUE INDEX IF NOT EXISTS events_id ON events (id);
                     DROP INDEX IF EXISTS events_channel_id;
                     CREATE TABLE IF NOT EXISTS pruned (
                         channel TEXT PRIMARY KEY,
                         upto INTEGER NOT NULL
                     );
                     CREATE TABLE IF NOT EXISTS deliveries (
                         id TEXT PRIMARY KEY,
                         at INTEGER NOT NULL
                     );
                     BEGIN IMMEDIATE; COMMIT;",
                )
            });
        if let Err(e) = setup {
            let text = e.to_string();
            let hint = if text.contains("readonly") || text.contains("read-only") {
                "it is read-only: make it writable (e.g. chmod u+w), or point [server] data_dir at a writable folder"
            } else if text.contains("not a database")
                || text.contains("malformed")
                || text.contains("corrupt")
            {
                "it is not a valid database (corrupt?): move it aside and restart; a new log will be started"
            } else if text.contains("full") {
                "the disk is full: free some space (reorganizing an older log needs about its size once)"
            } else {
                "check the file and its folder's permissions"
            };
            return Err(err(format!("{text}: {hint}")));
        }
        // Without a thread for them, SQLite makes the checkpoints itself, as it would by default.
        let conn = Arc::new(Mutex::new(conn));
        let checkpoints = Checkpoints::start(path, conn.clone());
        if checkpoints.thread.is_none() {
            let _ = conn
                .lock()
                .execute_batch("PRAGMA wal_autocheckpoint = 1000;");
        }
        Ok(Sqlite {
            path: path.to_path_buf(),
            conn,
            checkpoints,
            counts: Mutex::new(HashMap::new()),
            keep: keep.max(1),
            max_age_ms: max_age_days.saturating_mul(86_400_000),
            appends: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, waited for off the runtime when the checkpoints' thread holds it (it
    /// may be syncing the disk). Held by another task instead, it is waited for here: handing
    /// the worker's tasks to another thread costs a thread, and ten thousand clients
    /// subscribing at once made hundreds (6.5 KB more per idle chat client).
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.try_lock().unwrap_or_else(|| {
            match self.checkpoints.holding_writer.load(Ordering::Acquire) {
                true => off_the_runtime(|| self.conn.lock()),
                false => self.conn.lock(),
            }
        })
    }

    /// Keeps the newest `keep` events of `channel`, none older than the age limit, and notes
    /// the newest id pruned (a client resuming from before it has a gap).
    pub fn prune(&self, channel: &str) {
        let conn = self.conn();
        if let Err(e) = self.prune_locked(&conn, channel) {
            // Counted again at the next pass, whatever this one had deleted.
            self.counts.lock().remove(channel);
            tracing::warn!("pruning the event store: {e}");
        }
    }

    fn prune_locked(&self, conn: &Connection, channel: &str) -> rusqlite::Result<()> {
        let known = self.counts.lock().get(channel).copied();
        let held = match known {
            Some(held) => held,
            None => conn
                .prepare_cached("SELECT COUNT(*) FROM events WHERE channel = ?1")?
                .query_row([channel], |r| r.get::<_, i64>(0))? as u64,
        };
        // By count: the oldest events over the limit, read from that end and no further.
        let over = held.saturating_sub(self.keep as u64);
        let (by_count, counted) = match over {
            0 => (0, None),
            _ => conn
                .prepare_cached(
                    "DELETE FROM events WHERE channel = ?1 AND id <= (
                         SELECT id FROM events WHERE channel = ?1 ORDER BY id LIMIT 1 OFFSET ?2)
                     RETURNING id",
                )
                .and_then(|mut s| highest(&mut s, params![channel, over as i64 - 1]))?,
        };
        // By age: events come in roughly in time order, so the expired ones are the oldest:
        // when the oldest has not expired nothing is read further; else at most AGE_WINDOW of
        // them are looked at per pass, and every pass takes more if there are.
        let oldest = crate::event::now_ms().saturating_sub(self.max_age_ms) as i64;
        let expired = || {
            conn.prepare_cached(
                "SELECT at < ?2 FROM events WHERE channel = ?1 ORDER BY id LIMIT 1",
            )?
            .query_row(params![channel, oldest], |r| r.get::<_, bool>(0))
            .optional()
            .map(|e| e == Some(true))
        };
        let (by_age, aged) = match self.max_age_ms > 0 && expired()? {
            false => (0, None),
            true => conn
                .prepare_cached(
                    "DELETE FROM events WHERE channel = ?1 AND id IN (
                         SELECT id FROM events WHERE channel = ?1 ORDER BY id LIMIT ?3)
                         AND at < ?2
                     RETURNING id",
                )
                .and_then(|mut s| highest(&mut s, params![channel, oldest, AGE_WINDOW]))?,
        };
        let mut counts = self.counts.lock();
        if counts.len() >= COUNTED_CHANNELS && known.is_none() {
            counts.clear();
        }
        counts.insert(channel.to_string(), held.saturating_sub(by_count + by_age));
        drop(counts);
        if let Some(upto) = counted.max(aged) {
            conn.prepare_cached(
                "INSERT INTO pruned (channel, upto) VALUES (?1, ?2)
                 ON CONFLICT (channel) DO UPDATE SET upto = MAX(upto, excluded.upto)",
            )?
            .execute(params![channel, upto])?;
        }
        Ok(())
    }

    /// The rows of `sql` (id, channel, kind, platform, at, flags, data), unknown kinds left out.
    fn raw_rows(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Row>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, channel, kind, platform, at, flags, data) = row.map_err(|e| self.error(e))?;
            if let Ok(kind) = kind.parse::<Kind>() {
                out.push((id, channel, kind, platform, at, flags, data));
            }
        }
        Ok(out)
    }

    fn rows(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for (id, channel, kind, platform, at, history, data) in self.raw_rows(sql, params)? {
            out.push(Event {
                id: id as u64,
                kind,
                channel,
                platform,
                at: at as u64,
                data: serde_json::from_str(&data).unwrap_or_default(),
                // The column holds flags: 1 seeded from history, 2 replayed from a recording.
                history: history & 1 != 0,
                replay: history & 2 != 0,
            });
        }
        Ok(out)
    }

    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            place: self.path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// How long a delivery id is remembered: Twitch's replay window (older messages are refused
/// as stale anyway).
const DELIVERY_MS: u64 = 10 * 60 * 1000;

/// Runs a `DELETE … RETURNING id` and answers how many it deleted and the highest id.
fn highest(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> rusqlite::Result<(u64, Option<i64>)> {
    statement
        .query_map(params, |r| r.get::<_, i64>(0))?
        .try_fold((0, None), |(n, max), id| Ok((n + 1, max.max(Some(id?)))))
}

impl EventLog for Sqlite {
    fn first_delivery(&self, id: &str) -> Result<bool, StoreError> {
        let now = crate::event::now_ms();
        let conn = self.conn();
        let err = |e: rusqlite::Error| StoreError {
            place: self.path.display().to_string(),
            message: e.to_string(),
        };
        conn.execute(
            "DELETE FROM deliveries WHERE at < ?1",
            [id_column(now.saturating_sub(DELIVERY_MS))],
        )
        .map_err(err)?;
        let added = conn
            .execute(
                "INSERT OR IGNORE INTO deliveries (id, at) VALUES (?1, ?2)",
                rusqlite::params![id, id_column(now)],
            )
            .map_err(err)?;
        Ok(added == 1)
    }

    fn forget_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.conn
            .lock()
            .execute("DELETE FROM deliveries WHERE id = ?1", [id])
            .map_err(|e| StoreError {
                place: self.path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(())
    }

    /// The highest id stored, and the lowest.
    fn bounds(&self) -> Result<(Option<u64>, Option<u64>), StoreError> {
        let conn = self.conn();
        // Two subqueries: SQLite reads one end of the key for a lone MAX() or MIN(), but scans
        // the whole table for both in one query (800 ms on 10 million events, at start).
        conn.query_row(
            "SELECT (SELECT MAX(id) FROM events), (SELECT MIN(id) FROM events)",
            [],
            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
        )
        .map(|(max, min)| (max.map(|v| v as u64), min.map(|v| v as u64)))
        .map_err(|e| self.error(e))
    }

    /// Writes one event (its id already stamped). An error here means the event is refused,
    /// never silently dropped.
    fn append(&self, event: &mut Event) -> Result<(), StoreError> {
        self.append_all(std::slice::from_mut(event))
    }

    /// Writes `events` in one transaction: a burst of chat costs one commit, not one per line.
    /// All or none: an error refuses every one of them.
    fn append_all(&self, events: &mut [Event]) -> Result<(), StoreError> {
        let rows = events
            .iter()
            .map(|e| serde_json::to_string(&e.data))
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| self.error(e))?;
        let mut due: Vec<&str> = Vec::new();
        {
            let conn = self.conn();
            let tx = conn.unchecked_transaction().map_err(|e| self.error(e))?;
            {
                // Compiled once per connection rather than on every insert.
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO events (id, channel, kind, platform, at, history, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .map_err(|e| self.error(e))?;
                for (event, data) in events.iter().zip(&rows) {
                    let flags = i64::from(event.history) | i64::from(event.replay) << 1;
                    insert
                        .execute(params![
                            id_column(event.id),
                            event.channel,
                            event.kind.as_str(),
                            event.platform,
                            event.at as i64,
                            flags,
                            data
                        ])
                        .map_err(|e| self.error(e))?;
                }
            }
            // The commit that starts the log over syncs the disk ([`Checkpoints`]).
            match self.checkpoints.restart_due.swap(false, Ordering::AcqRel) {
                true => off_the_runtime(|| tx.commit()),
                false => tx.commit(),
            }
            .map_err(|e| self.error(e))?;
            // Counted while the log is still held, so that no pruning pass comes between the
            // rows and their count. A channel well over its limit is pruned now, and every
            // PRUNE_EVERY appends the channel of the last is (which counts it).
            let mut counts = self.counts.lock();
            for event in events.iter() {
                let n = self.appends.fetch_add(1, Ordering::Relaxed);
                let over = counts.get_mut(&event.channel).is_some_and(|held| {
                    *held += 1;
                    *held >= self.keep as u64 + PRUNE_EVERY
                });
                if (over || n % PRUNE_EVERY == PRUNE_EVERY - 1) && !due.contains(&&*event.channel) {
                    due.push(&event.channel);
                }
                if n % CHECKPOINT_AFTER == CHECKPOINT_AFTER - 1 {
                    self.checkpoints.ask();
                }
            }
        }
        for channel in due {
            self.prune(channel);
        }
        Ok(())
    }

    /// Events of `channel`, newest first, before id `before`.
    fn recent(
        &self,
        channel: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<Event>, StoreError> {
        let before = before.map_or(i64::MAX, id_column);
        self.rows(
            "SELECT id, channel, kind, platform, at, history, data FROM events
             WHERE channel = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            &[&channel, &before, &(limit as i64)],
        )
    }

    /// Each event's JSON made from its row's text: the data column is JSON already, so no
    /// tree is parsed (reading a cold channel back costs no more memory than it keeps).
    fn recent_json(&self, channel: &str, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows = self.raw_rows(
            "SELECT id, channel, kind, platform, at, history, data FROM events
             WHERE channel = ?1 ORDER BY id DESC LIMIT ?2",
            &[&channel, &(limit as i64)],
        )?;
        let text = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        Ok(rows
            .into_iter()
            .map(|(id, channel, kind, platform, at, flags, data)| {
                let mut json = String::with_capacity(data.len() + channel.len() + 120);
                json.push_str(&format!(
                    "{{\"id\":{id},\"kind\":\"{}\",\"channel\":{},\"platform\":{},\"at\":{at},\"data\":",
                    kind.as_str(),
                    text(&channel),
                    text(&platform),
                ));
                json.push_str(&data);
                if flags & 1 != 0 {
                    json.push_str(",\"history\":true");
                }
                if flags & 2 != 0 {
                    json.push_str(",\"replay\":true");
                }
                json.push('}');
                (id as u64, json.into_bytes())
            })
            .collect())
    }

    /// Events of `channel` after `after`, oldest first, at most `limit` (the newest of them).
    /// `true` with them when older ones were left out.
    fn after(
        &self,
        channel: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, bool), StoreError> {
        let rows = self.rows(
            "SELECT id, channel, kind, platform, at, history, data FROM events
             WHERE channel = ?1 AND id > ?2 ORDER BY id DESC LIMIT ?3",
            &[&channel, &id_column(after), &(limit as i64 + 1)],
        )?;
        Ok(page_after(rows, limit))
    }

    /// Whether an event of `channel` after `id` was pruned (a gap for a client resuming from
    /// `id`): exact from the noted newest pruned id, else guessed from the first id kept.
    fn pruned_after(&self, channel: &str, id: u64) -> bool {
        if id == 0 {
            return false;
        }
        let conn = self.conn();
        // The one integer `sql` answers for `channel`, if any.
        let one = |sql: &str| {
            conn.query_row(sql, [channel], |r| r.get::<_, Option<i64>>(0))
                .optional()
                .ok()
                .flatten()
                .flatten()
        };
        if let Some(upto) = one("SELECT upto FROM pruned WHERE channel = ?1") {
            return upto as u64 > id;
        }
        // A log from before pruning was noted: a first event past `id` is the best sign.
        let oldest = one("SELECT MIN(id) FROM events WHERE channel = ?1");
        oldest.is_some_and(|o| (o as u64) > id + 1)
    }

    /// Every channel with events.
    fn channels(&self) -> Vec<String> {
        let conn = self.conn();
        let Ok(mut stmt) = conn.prepare("SELECT DISTINCT channel FROM events") else {
            return Vec::new();
        };
        stmt.query_map([], |r| r.get::<_, String>(0))
            .map(|rows| rows.flatten().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(id: u64, channel: &str) -> Event {
        let mut e = Event::new(
            crate::event::Platform::Twitch,
            channel,
            Kind::Follow,
            json!({"n": id}),
        );
        e.id = id;
        e
    }

    #[test]
    fn appends_read_back_and_keep_by_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("e.sqlite3"), 100, 30).unwrap();
        for id in 1..=600 {
            store
                .append(&mut ev(id, if id % 2 == 0 { "a" } else { "b" }))
                .unwrap();
        }
        store.prune("a");
        let recent = store.recent("a", 5, None).unwrap();
        assert_eq!(
            recent.iter().map(|e| e.id).collect::<Vec<_>>(),
            [600, 598, 596, 594, 592]
        );
        assert_eq!(store.recent("a", 1000, None).unwrap().len(), 100);
        let (after, cut) = store.after("a", 590, 100).unwrap();
        assert_eq!(
            after.iter().map(|e| e.id).collect::<Vec<_>>(),
            [592, 594, 596, 598, 600]
        );
        assert!(!cut);
        assert_eq!(store.bounds().unwrap().0, Some(600));
        assert!(store.pruned_after("a", 2));
        assert!(!store.pruned_after("a", 590));
        let page = store.recent("a", 2, Some(596)).unwrap();
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [594, 592]);
    }

    /// Ids and count of `channel`'s rows, read from the table itself.
    fn held(store: &Sqlite, channel: &str) -> (usize, Option<i64>, Option<i64>) {
        store
            .conn
            .lock()
            .query_row(
                "SELECT COUNT(*), MIN(id), MAX(id) FROM events WHERE channel = ?1",
                [channel],
                |r| Ok((r.get::<_, i64>(0)? as usize, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    #[test]
    fn a_busy_channel_is_pruned_from_its_oldest_end_by_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sqlite3");
        let keep = 300;
        {
            let store = Sqlite::open(&path, keep, 30).unwrap();
            // "b" gets one event in ten, so the passes every PRUNE_EVERY appends fall on "a"
            // and on "b" both; "a" is also pruned whenever it is well over.
            let mut most = 0;
            for id in 1..=5_000u64 {
                let channel = if id % 10 == 0 { "b" } else { "a" };
                store.append(&mut ev(id, channel)).unwrap();
                most = most.max(held(&store, "a").0);
            }
            assert!(
                most <= keep + PRUNE_EVERY as usize,
                "'a' never held more than its limit and one pass's worth: {most}"
            );
            let (n, first, last) = held(&store, "a");
            assert!((keep..keep + PRUNE_EVERY as usize).contains(&n), "{n}");
            assert_eq!(last, Some(4999));
            // The rows kept are the newest: every id of "a" from the first kept on.
            let ids: Vec<u64> = store
                .recent("a", 10_000, None)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect();
            let expected: Vec<u64> = (first.unwrap() as u64..=4999)
                .rev()
                .filter(|id| id % 10 != 0)
                .collect();
            assert_eq!(ids, expected);
            assert!(store.pruned_after("a", first.unwrap() as u64 - 2));
            assert!(!store.pruned_after("a", first.unwrap() as u64));
            store.prune("a");
            assert_eq!(
                held(&store, "a").0,
                keep,
                "an explicit pass keeps exactly the limit"
            );
            // "b" (500 events) was pruned in its passes too.
            assert!(held(&store, "b").0 < keep + PRUNE_EVERY as usize);
        }
        // Opened again, nothing is counted yet: the first pass counts, then prunes exactly.
        let store = Sqlite::open(&path, 100, 30).unwrap();
        store.prune("a");
        let (n, first, last) = held(&store, "a");
        assert_eq!((n, last), (100, Some(4999)));
        assert!(store.pruned_after("a", first.unwrap() as u64 - 2));
        for id in 5_001..=5_600u64 {
            store.append(&mut ev(id, "a")).unwrap();
        }
        assert!(held(&store, "a").0 < 100 + PRUNE_EVERY as usize);
        assert_eq!(held(&store, "a").2, Some(5600));
    }

    #[test]
    fn the_write_ahead_log_is_copied_back_off_the_commits_and_closed_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sqlite3");
        let store = Sqlite::open(&path, 10_000, 30).unwrap();
        let autocheckpoint: i64 = store
            .conn
            .lock()
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 4000, "commits checkpoint only a long log");
        let size = || std::fs::metadata(&path).map_or(0, |m| m.len());
        let before = size();
        // Fewer pages than a commit checkpoints at: what reaches the file, the thread copied.
        for id in 1..=250 {
            store.append(&mut ev(id, "a")).unwrap();
        }
        // The rows reach the file itself, not only the write-ahead log, within a few seconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while size() < before + 8_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(size() >= before + 8_000, "{before} -> {}", size());
        drop(store);
        // Both connections are closed: the last one folded the write-ahead log in and removed it.
        assert!(!dir.path().join("e.sqlite3-wal").exists());
        let store = Sqlite::open(&path, 10_000, 30).unwrap();
        assert_eq!(store.bounds().unwrap(), (Some(250), Some(1)));
    }

    #[test]
    fn the_commit_that_starts_the_log_over_is_known_before_it_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("e.sqlite3"), 10_000, 30).unwrap();
        for id in 1..=100 {
            store.append(&mut ev(id, "a")).unwrap();
        }
        store.checkpoints.ask();
        let due = || store.checkpoints.restart_due.load(Ordering::Acquire);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !due() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(due(), "a checkpoint that copied every page says so");
        store.append(&mut ev(101, "a")).unwrap();
        assert!(!due(), "the next commit took it");
        // That commit started the log over: it holds that commit's pages only, not 101 commits'.
        let (log, _): (i64, i64) = store
            .conn()
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert!((1..10).contains(&log), "{log} pages in the log");
    }

    #[test]
    fn a_commit_waiting_for_the_checkpoints_thread_lets_the_worker_run_other_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Sqlite::open(&dir.path().join("e.sqlite3"), 10_000, 30).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // The checkpoints' thread holding the writer for 300 ms, as it does while it syncs.
        let held = store.conn.lock();
        store
            .checkpoints
            .holding_writer
            .store(true, Ordering::Release);
        let writer = store.clone();
        let commit = runtime.spawn(async move {
            writer.append(&mut ev(1, "a")).unwrap();
            std::time::Instant::now()
        });
        let ticker = runtime.spawn(async move {
            let mut at = Vec::new();
            for _ in 0..40 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                at.push(std::time::Instant::now());
            }
            at
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        store
            .checkpoints
            .holding_writer
            .store(false, Ordering::Release);
        drop(held);
        let committed = runtime.block_on(commit).unwrap();
        let ticks = runtime.block_on(ticker).unwrap();
        let meanwhile = ticks.iter().filter(|t| **t < committed).count();
        assert!(meanwhile >= 10, "{meanwhile} ticks while the commit waited");
        assert_eq!(store.bounds().unwrap(), (Some(1), Some(1)));
    }

    #[test]
    fn the_index_pruning_once_walked_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sqlite3");
        drop(Sqlite::open(&path, 10, 30).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE INDEX events_channel_id ON events (channel, id);")
            .unwrap();
        let store = Sqlite::open(&path, 10, 30).unwrap();
        let indexes: Vec<String> = store
            .conn
            .lock()
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            !indexes.iter().any(|i| i == "events_channel_id"),
            "{indexes:?}"
        );
    }

    #[test]
    fn events_past_the_age_are_pruned_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("e.sqlite3"), 10_000, 30).unwrap();
        let day_ms = 24 * 3600 * 1000;
        let now = crate::event::now_ms();
        for id in 1..=3000 {
            let mut e = ev(id, "a");
            // The first 2,500 are 40 days old, more than one pass looks at.
            e.at = if id <= 2500 { now - 40 * day_ms } else { now };
            store.append(&mut e).unwrap();
        }
        for _ in 0..3 {
            store.prune("a");
        }
        let kept = store.recent("a", 10_000, None).unwrap();
        assert_eq!(kept.len(), 500);
        assert_eq!(kept.last().map(|e| e.id), Some(2501));
        assert!(store.pruned_after("a", 100));
        assert!(
            !store.pruned_after("a", 2500),
            "nothing after 2500 was pruned"
        );
        // A channel whose every event expired still tells a client resuming in it of the gap.
        for id in 3001..=3010 {
            let mut e = ev(id, "b");
            e.at = now - 40 * day_ms;
            store.append(&mut e).unwrap();
        }
        store.prune("b");
        assert!(store.recent("b", 100, None).unwrap().is_empty());
        assert!(store.pruned_after("b", 3005));
        assert!(!store.pruned_after("b", 3010));
    }

    #[test]
    fn json_made_from_rows_reads_back_as_the_same_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("e.sqlite3"), 100, 30).unwrap();
        let mut odd = ev(1, "a");
        odd.history = true;
        odd.platform = "tiktok".into();
        odd.data = json!({"text": "quote \" and \\ and ünïcode", "n": [1, 2]});
        store.append(&mut odd).unwrap();
        let mut replayed = ev(2, "a");
        replayed.replay = true;
        store.append(&mut replayed).unwrap();
        let parsed: Vec<Event> = store
            .recent_json("a", 10)
            .unwrap()
            .into_iter()
            .map(|(id, json)| {
                let e: Event = serde_json::from_slice(&json).unwrap();
                assert_eq!(e.id, id);
                e
            })
            .collect();
        assert_eq!(parsed, store.recent("a", 10, None).unwrap());
        assert_eq!(parsed[1], odd);
    }

    #[test]
    fn a_log_in_id_order_is_laid_out_by_channel_and_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sqlite3");
        {
            // The layout every log had before: rows in id order, an index by channel.
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, channel TEXT NOT NULL,
                     kind TEXT NOT NULL, platform TEXT NOT NULL, at INTEGER NOT NULL,
                     history INTEGER NOT NULL, data TEXT NOT NULL);
                 CREATE INDEX events_channel_id ON events (channel, id);",
            )
            .unwrap();
            let now = crate::event::now_ms() as i64;
            for id in 1..=300i64 {
                old.execute(
                    "INSERT INTO events VALUES (?1, ?2, 'chat.message', 'twitch', ?3, ?4, ?5)",
                    params![
                        id,
                        ["a", "b", "c"][id as usize % 3],
                        now,
                        id % 4,
                        format!("{{\"text\":\"line {id}\"}}")
                    ],
                )
                .unwrap();
            }
        }
        let before = Connection::open(&path).unwrap();
        let expected = |sql: &str| -> Vec<(i64, String, String)> {
            let mut st = before.prepare(sql).unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let rows = expected("SELECT id, channel, data FROM events ORDER BY id");
        drop(before);

        let store = Sqlite::open(&path, 1000, 30).unwrap();
        let layout: String = store
            .conn
            .lock()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(layout.contains("WITHOUT ROWID"), "{layout}");
        assert_eq!(store.bounds().unwrap(), (Some(300), Some(1)));
        for channel in ["a", "b", "c"] {
            let mut kept: Vec<(i64, String, String)> = rows
                .iter()
                .filter(|(_, c, _)| c == channel)
                .cloned()
                .collect();
            kept.reverse();
            let read: Vec<(i64, String, String)> = store
                .recent(channel, 1000, None)
                .unwrap()
                .into_iter()
                .map(|e| (e.id as i64, e.channel, e.data.to_string()))
                .collect();
            assert_eq!(read, kept, "channel {channel}");
        }
        let flags: Vec<(bool, bool)> = store
            .recent("a", 4, None)
            .unwrap()
            .iter()
            .map(|e| (e.history, e.replay))
            .collect();
        // Ids 300, 297, 294, 291: flags 0, 1, 2, 3.
        assert_eq!(
            flags,
            [(false, false), (true, false), (false, true), (true, true)]
        );
        drop(store);
        // Opened again, it is already laid out: nothing is rewritten, and it takes new events.
        let store = Sqlite::open(&path, 1000, 30).unwrap();
        store.append(&mut ev(301, "a")).unwrap();
        assert_eq!(store.after("a", 297, 10).unwrap().0.len(), 2);
        assert!(
            store.append(&mut ev(301, "b")).is_err(),
            "an id is one event, whatever its channel"
        );
    }

    #[test]
    fn a_corrupt_file_is_reported_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.sqlite3");
        std::fs::write(&path, b"this is not sqlite, just text that is long enough to be a header....................................").unwrap();
        let e = Sqlite::open(&path, 10, 30).err().expect("refused");
        assert!(e.to_string().contains("move it aside"), "{e}");
    }
}
