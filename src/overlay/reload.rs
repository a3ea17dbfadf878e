//! Live reloading: reads `overlays/` again and rebuilds themes after their files changed,
//! telling open pages through the bus. A broken file keeps the last good overlay or theme
//! live and its error is shown (on the dashboard, `/health`, and in the overlay itself).
//! The file watcher reaches it through [`Reloader::changed`], a callback; it never sees the
//! server.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::json;

use super::file::{OverlayConfig, OverlayKind, load_overlays};
use super::{Overlay, Overlays};
use crate::bus::{Bus, Message};
use crate::config::ConfigError;
use crate::theme::{self, watch::Changed};

pub struct Reloader {
    overlays_dir: PathBuf,
    default_channel: String,
    themes: Arc<theme::Registry>,
    overlays: Arc<Overlays>,
    bus: Arc<Bus>,
    /// Problems in `overlays/*.toml` right now.
    errors: RwLock<Vec<String>>,
}

impl Reloader {
    pub fn new(
        overlays_dir: PathBuf,
        default_channel: String,
        themes: Arc<theme::Registry>,
        overlays: Arc<Overlays>,
        bus: Arc<Bus>,
    ) -> Reloader {
        Reloader {
            overlays_dir,
            default_channel,
            themes,
            overlays,
            bus,
            errors: RwLock::new(Vec::new()),
        }
    }

    /// What the file watcher calls.
    pub fn changed(&self, what: Changed) {
        match what {
            Changed::Theme(name) => self.reload_theme(&name),
            Changed::Overlays => self.apply_overlay_changes(),
        }
    }

    /// Problems in `overlays/*.toml` right now, one line each with `file:line`.
    pub fn errors(&self) -> Vec<String> {
        self.errors.read().clone()
    }

    /// Reads `overlays/`, logging and keeping its errors.
    fn load(&self) -> (BTreeMap<String, OverlayConfig>, Vec<ConfigError>) {
        let (found, errors) = load_overlays(
            &self.overlays_dir,
            &self.default_channel,
            &self.themes.names(),
        );
        for e in &errors {
            tracing::error!("{e}");
        }
        *self.errors.write() = errors.iter().map(ToString::to_string).collect();
        (found, errors)
    }

    /// Reads `overlays/` again. With no overlay files at all, the built-in overlays (one of
    /// each kind) serve the default channel, so a newcomer has something to add to OBS.
    pub fn reload_overlays(&self) -> Vec<ConfigError> {
        let (mut found, errors) = self.load();
        if found.is_empty() && errors.is_empty() {
            for kind in OverlayKind::ALL {
                let mut o = OverlayConfig::builtin(kind, &self.default_channel);
                // For trying out: the dashboard's preview plays the demo's alerts at once.
                // An alert overlay of the streamer's own waits until OBS has it on air.
                if kind == OverlayKind::Alerts {
                    o.options["hold_off_air"] = serde_json::json!(false);
                }
                found.insert(o.name.clone(), o);
            }
        }
        self.overlays.set_all(found.into_values());
        errors
    }

    /// Applies edits in `overlays/`: changed overlays are rebuilt and their open pages get the
    /// new settings; a broken file keeps its overlay's last good version.
    pub fn apply_overlay_changes(&self) {
        // Viewer pages' overlays have no file: an edit in `overlays/` leaves them be.
        let before: BTreeMap<String, OverlayConfig> = self
            .overlays
            .all()
            .iter()
            .filter(|o| !o.config.is_viewer())
            .map(|o| (o.config.name.clone(), o.config.clone()))
            .collect();
        let (found, errors) = self.load();
        let broken: Vec<String> = errors
            .iter()
            .filter_map(|e| e.file.file_stem().map(|s| s.to_string_lossy().to_string()))
            .collect();
        for (name, config) in &found {
            if before.get(name) != Some(config) {
                self.overlays.upsert(config.clone());
                tracing::info!(overlay = %name, "overlay updated");
                if let Some(overlay) = self.overlays.get(name) {
                    self.bus.announce(Message::Overlay {
                        name: name.clone(),
                        frame: crate::frame::control(
                            "overlay",
                            &super::page::settings(&overlay, None),
                        ),
                    });
                }
            }
        }
        let builtin_only = found.is_empty() && errors.is_empty();
        for name in before.keys() {
            if !found.contains_key(name) && !broken.contains(name) && !builtin_only {
                self.overlays.remove(name);
                tracing::info!(overlay = %name, "overlay removed");
            }
        }
    }

    /// The overlay behind the viewer page of `channel`, created on first use. Viewer overlays
    /// of channels no longer `wanted` (their last page closed, past the grace period) are
    /// removed then, so they are bounded by the channels watched, not by every name ever typed.
    pub fn viewer_overlay(
        &self,
        channel: &str,
        wanted: &std::collections::BTreeSet<String>,
    ) -> Arc<Overlay> {
        let config = OverlayConfig::viewer(channel);
        if let Some(o) = self.overlays.get(&config.name) {
            return o;
        }
        for o in self.overlays.all() {
            if o.config.is_viewer() && !wanted.contains(&o.config.channel) {
                self.overlays.remove(&o.config.name);
            }
        }
        let name = config.name.clone();
        self.overlays.upsert(config);
        self.overlays
            .get(&name)
            .unwrap_or_else(|| panic!("overlay {name} was just added"))
    }

    /// Rebuilds theme `name` after its files changed and tells its open overlays: the new
    /// generation, or the error while the last good build stays live.
    pub fn reload_theme(&self, name: &str) {
        let frame = match self.themes.reload(name) {
            Ok(theme) => {
                self.overlays.rebind_theme(name);
                // Its fields (and so each overlay's values) may have changed too.
                for overlay in self
                    .overlays
                    .all()
                    .iter()
                    .filter(|o| o.config.theme == name)
                {
                    self.bus.announce(Message::Overlay {
                        name: overlay.config.name.clone(),
                        frame: crate::frame::control(
                            "overlay",
                            &super::page::settings(overlay, None),
                        ),
                    });
                }
                tracing::info!(
                    theme = name,
                    generation = theme.generation,
                    "theme reloaded"
                );
                let css = format!("/themes/{name}/static/style.css?g={}", theme.generation);
                crate::frame::control(
                    "theme",
                    &json!({"theme": name, "generation": theme.generation, "css": css}),
                )
            }
            Err(e) => {
                tracing::warn!(
                    theme = name,
                    "theme error, keeping the last good version: {e}"
                );
                crate::frame::control(
                    "theme-error",
                    &json!({"theme": name, "error": e.to_string(), "detail": e}),
                )
            }
        };
        self.bus.announce(Message::Theme {
            theme: name.to_string(),
            frame,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_overlays_of_channels_nobody_watches_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let themes = Arc::new(theme::Registry::new(&dir.path().join("themes")));
        themes.load_all();
        let overlays = Arc::new(Overlays::new(themes.clone()));
        let bus = Arc::new(Bus::new(10));
        let reloader = Reloader::new(
            dir.path().join("overlays"),
            "demo".into(),
            themes,
            overlays.clone(),
            bus,
        );
        reloader.reload_overlays();
        let mine = overlays.all().len();
        let wanted = |c: &[&str]| c.iter().map(|s| s.to_string()).collect();
        reloader.viewer_overlay("alpha", &wanted(&["alpha"]));
        reloader.viewer_overlay("beta", &wanted(&["alpha", "beta"]));
        assert_eq!(overlays.all().len(), mine + 2);
        // Alpha's page closed (past the grace period): its overlay goes when the next is made.
        reloader.viewer_overlay("gamma", &wanted(&["beta", "gamma"]));
        let names: Vec<String> = overlays
            .all()
            .iter()
            .map(|o| o.config.name.clone())
            .collect();
        assert!(!names.contains(&"_c_alpha".to_string()), "{names:?}");
        assert!(names.contains(&"_c_beta".to_string()) && names.contains(&"_c_gamma".to_string()));
        // An edit in overlays/ leaves viewer overlays alone.
        reloader.apply_overlay_changes();
        assert_eq!(overlays.all().len(), mine + 2);
    }
}
