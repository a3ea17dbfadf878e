//! Watches the themes and overlays folders and reloads what changed (debounced; editor
//! temporary files ignored; a poll watcher for network drives where native events do not
//! arrive).

use std::path::Path;

/// Files an editor writes beside the real one while saving (Vim, Emacs, JetBrains, Kate,
/// macOS Finder): a change to one of these is not a change to the theme.
pub fn ignored(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.ends_with(".kate-swp")
        || name.ends_with("___jb_old___")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_bak___")
        || name == "4913"
}

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_mini::{DebounceEventResult, new_debouncer, new_debouncer_opt};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Watcher;

/// Quiet time after the last change before reloading: editors write a file in several steps
/// (truncate, write, rename); 40 ms joins those and keeps save-to-screen well under 150 ms.
const DEBOUNCE: Duration = Duration::from_millis(40);
/// How often the poll watcher scans, for drives where change events do not arrive.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Starts watching the themes and overlays folders; the returned task applies changes until
/// shutdown. Changed paths collect in a set (bounded by the number of files), so a burst of
/// saves never queues more than one reload per theme.
pub fn spawn(
    app: Arc<App>,
    shutdown: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, notify::Error> {
    let changed: Arc<Mutex<BTreeSet<PathBuf>>> = Arc::default();
    let wake = Arc::new(Notify::new());
    let handler = {
        let changed = changed.clone();
        let wake = wake.clone();
        move |res: DebounceEventResult| match res {
            Ok(events) => {
                let mut set = changed.lock();
                for e in events {
                    if !ignored(&e.path) {
                        set.insert(e.path);
                    }
                }
                drop(set);
                wake.notify_one();
            }
            Err(e) => tracing::warn!("file watcher: {e}"),
        }
    };
    let themes_dir = app.config.themes_dir.clone();
    let overlays_dir = app.config.overlays_dir.clone();
    for dir in [&themes_dir, &overlays_dir] {
        // Watch folders that do not exist yet too: a theme author's first save creates them.
        let _ = std::fs::create_dir_all(dir);
    }
    let mut watcher: Box<dyn WatchDirs> = match app.config.watcher {
        Watcher::Native => Box::new(new_debouncer(DEBOUNCE, handler)?),
        Watcher::Poll => {
            let config = notify_debouncer_mini::Config::default()
                .with_timeout(DEBOUNCE)
                .with_notify_config(notify::Config::default().with_poll_interval(POLL_EVERY));
            Box::new(new_debouncer_opt::<_, notify::PollWatcher>(
                config, handler,
            )?)
        }
    };
    for dir in [&themes_dir, &overlays_dir] {
        if let Err(e) = watcher.watch_dir(dir) {
            tracing::warn!("cannot watch {}: {e}", dir.display());
        }
    }
    let themes_root = themes_dir.canonicalize().unwrap_or(themes_dir);
    let overlays_root = overlays_dir.canonicalize().unwrap_or(overlays_dir);
    Ok(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
            }
            let paths = std::mem::take(&mut *changed.lock());
            let mut themes = BTreeSet::new();
            let mut overlays_changed = false;
            for path in paths {
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
                    app.reload_theme(&theme);
                }
            }
            if overlays_changed {
                app.apply_overlay_changes();
            }
        }
    })
}

/// The two debouncer kinds behind one face.
trait WatchDirs: Send {
    fn watch_dir(&mut self, dir: &Path) -> notify::Result<()>;
}

impl<W: notify::Watcher + Send> WatchDirs for notify_debouncer_mini::Debouncer<W> {
    fn watch_dir(&mut self, dir: &Path) -> notify::Result<()> {
        self.watcher().watch(dir, notify::RecursiveMode::Recursive)
    }
}
