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

use notify::EventKind;
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
                    if !ignored(&path) {
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
    let themes_dir = app.config.themes_dir.clone();
    let overlays_dir = app.config.overlays_dir.clone();
    for dir in [&themes_dir, &overlays_dir] {
        // Watch folders that do not exist yet too: a theme author's first save creates them.
        let _ = std::fs::create_dir_all(dir);
    }
    let mut watcher: Box<dyn notify::Watcher + Send> = match app.config.watcher {
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
            // Debounce: an editor's save is several events; take them together.
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
                    app.reload_theme(&theme);
                }
            }
            if overlays_changed {
                app.apply_overlay_changes();
            }
        }
    })
}
