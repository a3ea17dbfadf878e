//! Watches the themes and overlays folders and tells its owner what changed, through a callback
//! (debounced; editor temporary files ignored; a poll watcher for network drives where native
//! events do not arrive).

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::EventKind;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How the folders are watched (`[server] watcher`).
#[derive(Debug, Clone, Copy, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Watcher {
    /// The system's change events.
    Native,
    /// Scanning, for network drives where change events do not arrive.
    Poll,
}

/// What changed on disk, told to the watcher's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A file of this theme.
    Theme(String),
    /// Something in the overlays folder.
    Overlays,
}

/// Quiet time after the last change before reloading: editors write a file in several steps
/// (truncate, write, rename); 40 ms joins those and keeps save-to-screen well under 150 ms.
const DEBOUNCE: Duration = Duration::from_millis(40);
/// How often the poll watcher scans, for drives where change events do not arrive.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Starts watching the themes and overlays folders; the returned task calls `on_change` for
/// what changed until shutdown. Changed paths collect in a set (bounded by the number of
/// files), so a burst of saves never calls it more than once per theme.
pub fn spawn(
    themes_dir: PathBuf,
    overlays_dir: PathBuf,
    how: Watcher,
    on_change: impl Fn(Changed) + Send + 'static,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, notify::Error> {
    let changed: Arc<Mutex<BTreeSet<PathBuf>>> = Arc::default();
    let wake = Arc::new(Notify::new());
    let handler = {
        let changed = changed.clone();
        let wake = wake.clone();
        move |res: notify::Result<notify::Event>| match res {
            // Opening and reading files (our own reload does) is not a change: only creations,
            // writes, renames and removals count, or a reload would trigger the next.
            Ok(event)
                if matches!(
                    event.kind,
                    EventKind::Create(_)
                        | EventKind::Modify(_)
                        | EventKind::Remove(_)
                        | EventKind::Any
                ) =>
            {
                let mut set = changed.lock();
                for path in event.paths {
                    if !super::ignored(&path) {
                        set.insert(path);
                    }
                }
                let any = !set.is_empty();
                drop(set);
                if any {
                    wake.notify_one();
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("file watcher: {e}"),
        }
    };
    for dir in [&themes_dir, &overlays_dir] {
        // Watch folders that do not exist yet too: a theme author's first save creates them.
        let _ = std::fs::create_dir_all(dir);
    }
    let mut watcher: Box<dyn notify::Watcher + Send> = match how {
        Watcher::Native => Box::new(notify::recommended_watcher(handler)?),
        Watcher::Poll => Box::new(notify::PollWatcher::new(
            handler,
            notify::Config::default().with_poll_interval(POLL_EVERY),
        )?),
    };
    for dir in [&themes_dir, &overlays_dir] {
        if let Err(e) = watcher.watch(dir, notify::RecursiveMode::Recursive) {
            tracing::warn!("cannot watch {}: {e}", dir.display());
        }
    }
    let themes_root = themes_dir.canonicalize().unwrap_or(themes_dir);
    let overlays_root = overlays_dir.canonicalize().unwrap_or(overlays_dir);
    Ok(async move {
        let mut watcher = watcher;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
            }
            tokio::time::sleep(DEBOUNCE).await;
            let paths = std::mem::take(&mut *changed.lock());
            let mut themes = BTreeSet::new();
            let mut overlays_changed = false;
            for path in paths {
                // A folder created in one go with its subfolders (a theme copied in) can have
                // them appear before the watch on it is set: watch it again, recursively.
                if path.is_dir() {
                    let _ = watcher.watch(&path, notify::RecursiveMode::Recursive);
                }
                let path = path.canonicalize().unwrap_or(path);
                if let Ok(rel) = path.strip_prefix(&themes_root) {
                    if let Some(first) = rel.components().next() {
                        themes.insert(first.as_os_str().to_string_lossy().to_string());
                    }
                } else if path.starts_with(&overlays_root) {
                    overlays_changed = true;
                }
            }
            for theme in themes {
                if super::valid_theme_name(&theme) {
                    on_change(Changed::Theme(theme));
                }
            }
            if overlays_changed {
                on_change(Changed::Overlays);
            }
        }
    })
}
