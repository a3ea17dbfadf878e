//! Where the widgets' state lives between runs: `widgets.sqlite3` in the data dir, a row per
//! channel. One save pass is one transaction, whatever the number of channels that changed: a
//! file per channel, replaced whole, cost a new file (and its directory entry) per channel per
//! pass, which at thousands of channels was more than the rest of a publish. Channels saved by
//! an earlier version as `widgets/<channel>.json` are taken in once, and that folder is renamed
//! `widgets.imported`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

/// The saved state of every channel, as JSON: the caller reads it into its own types.
pub type Rows = BTreeMap<String, Vec<u8>>;

pub struct Saved {
    path: PathBuf,
    conn: Connection,
}

impl Saved {
    /// Opens (or makes) the file in `data_dir`, taking in the files of an earlier version.
    pub fn open(data_dir: &Path) -> Result<Saved, String> {
        let path = data_dir.join("widgets.sqlite3");
        let fail = |e: rusqlite::Error| format!("{}: {e}", path.display());
        std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        let conn = Connection::open(&path).map_err(fail)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS channels (
                 channel TEXT PRIMARY KEY,
                 state BLOB NOT NULL
             );",
        )
        .map_err(fail)?;
        let saved = Saved { path, conn };
        saved.import(&data_dir.join("widgets"));
        Ok(saved)
    }

    /// Every channel's saved state.
    pub fn load(&self) -> Rows {
        let read = || -> rusqlite::Result<Rows> {
            let mut stmt = self.conn.prepare("SELECT channel, state FROM channels")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        };
        read().unwrap_or_else(|e| {
            tracing::warn!(
                "{}: {e}; every session is recomputed from the event log",
                self.path.display()
            );
            Rows::new()
        })
    }

    /// Writes `rows` (channel, state), all or none.
    pub fn save(&self, rows: &[(String, Vec<u8>)]) -> Result<(), String> {
        let write = || -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO channels (channel, state) VALUES (?1, ?2)
                     ON CONFLICT (channel) DO UPDATE SET state = excluded.state",
                )?;
                for (channel, state) in rows {
                    upsert.execute(params![channel, state])?;
                }
            }
            tx.commit()
        };
        write().map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Takes in the `<channel>.json` files of `dir` (an earlier version's), for the channels
    /// not saved here yet, then renames `dir` so that this happens once.
    fn import(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut rows = Vec::new();
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let Some(channel) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|_| path.extension().is_some_and(|e| e == "json"))
                .filter(|c| crate::event::valid_channel(c))
            else {
                continue;
            };
            match std::fs::read(&path) {
                Ok(bytes) => rows.push((channel.to_string(), bytes)),
                Err(e) => tracing::warn!("{}: {e}", path.display()),
            }
        }
        let imported = || -> rusqlite::Result<()> {
            let tx = self.conn.unchecked_transaction()?;
            for (channel, state) in &rows {
                tx.execute(
                    "INSERT OR IGNORE INTO channels (channel, state) VALUES (?1, ?2)",
                    params![channel, state],
                )?;
            }
            tx.commit()
        };
        let done = imported().map_err(|e| e.to_string()).and_then(|()| {
            std::fs::rename(dir, dir.with_file_name("widgets.imported")).map_err(|e| e.to_string())
        });
        match done {
            Ok(()) => tracing::info!(
                "the sessions of {} channels were moved from {} into {}",
                rows.len(),
                dir.display(),
                self.path.display()
            ),
            // Left as they were: tried again at the next start.
            Err(e) => tracing::warn!(
                "taking in the sessions of {}: {e}; they are read again at the next start",
                dir.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_read_back_and_an_earlier_versions_files_are_taken_in_once() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("widgets");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("alpha.json"), br#"{"last_id":7}"#).unwrap();
        std::fs::write(old.join("not a channel!.json"), b"{}").unwrap();
        std::fs::write(old.join("notes.txt"), b"kept").unwrap();

        let saved = Saved::open(dir.path()).unwrap();
        let rows = saved.load();
        assert_eq!(rows.keys().collect::<Vec<_>>(), ["alpha"]);
        assert_eq!(rows["alpha"], br#"{"last_id":7}"#);
        assert!(!old.exists(), "the old folder is renamed");
        assert!(dir.path().join("widgets.imported/notes.txt").exists());

        saved
            .save(&[
                ("alpha".into(), b"{\"last_id\":9}".to_vec()),
                ("beta".into(), b"{}".to_vec()),
            ])
            .unwrap();
        drop(saved);
        let saved = Saved::open(dir.path()).unwrap();
        let rows = saved.load();
        assert_eq!(rows["alpha"], b"{\"last_id\":9}");
        assert_eq!(rows.len(), 2);
    }
}
