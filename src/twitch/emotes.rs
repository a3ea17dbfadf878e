//! Third-party emotes: BetterTTV, FrankerFaceZ and 7TV, global and per channel. Fetched with
//! reqwest from configurable base URLs, cached, refreshed periodically. A provider that fails
//! is logged and chat goes on with the others. Chat text words that match an emote code become
//! emote elements like Twitch's own.
//!
//! Response shapes (no first-party docs; from public clients): BTTV `cached/emotes/global`
//! `[{id, code}]` and `cached/users/twitch/{id}` `{channelEmotes, sharedEmotes}`; FFZ
//! `set/global` and `room/id/{id}` `{sets: {"n": {emoticons: [{id, name}]}}}`; 7TV
//! `emote-sets/global` `{emotes: [{id, name}]}` and `users/twitch/{id}` `{emote_set: {emotes}}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde_json::Value;

use crate::config::EmoteProviders;
use crate::event::Element;

/// One emote: what replaces its code in chat.
#[derive(Clone, Debug, PartialEq)]
pub struct Emote {
    pub id: String,
    pub url: String,
}

type Table = HashMap<String, Emote>;

#[derive(Clone, Copy, Debug)]
enum Provider {
    Bttv,
    Ffz,
    SevenTv,
}

impl Provider {
    const ALL: [Provider; 3] = [Provider::Bttv, Provider::Ffz, Provider::SevenTv];

    fn name(self) -> &'static str {
        match self {
            Provider::Bttv => "bttv",
            Provider::Ffz => "ffz",
            Provider::SevenTv => "7tv",
        }
    }

    fn image(self, id: &str) -> String {
        match self {
            Provider::Bttv => format!("https://cdn.betterttv.net/emote/{id}/1x"),
            Provider::Ffz => format!("https://cdn.frankerfacez.com/emote/{id}/1"),
            Provider::SevenTv => format!("https://cdn.7tv.app/emote/{id}/1x.webp"),
        }
    }
}

/// The emote tables and the client that fills them.
pub struct ThirdParty {
    http: reqwest::Client,
    config: EmoteProviders,
    global: RwLock<Arc<Table>>,
    /// By Twitch room (channel user) id.
    rooms: RwLock<HashMap<String, (Arc<Table>, Instant)>>,
}

impl ThirdParty {
    pub fn new(config: EmoteProviders) -> Arc<ThirdParty> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("overlayd/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Arc::new(ThirdParty {
            http,
            config,
            global: RwLock::new(Arc::default()),
            rooms: RwLock::new(HashMap::new()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    fn base(&self, p: Provider) -> &str {
        match p {
            Provider::Bttv => &self.config.bttv,
            Provider::Ffz => &self.config.ffz,
            Provider::SevenTv => &self.config.seventv,
        }
        .trim_end_matches('/')
    }

    /// Fetches the global emotes of every provider.
    pub async fn refresh_global(&self) {
        let mut table = Table::new();
        for p in Provider::ALL {
            let path = match p {
                Provider::Bttv => "/cached/emotes/global",
                Provider::Ffz => "/set/global",
                Provider::SevenTv => "/emote-sets/global",
            };
            if let Some(body) = self.get(p, path).await {
                add(&mut table, p, &body);
            }
        }
        tracing::info!(count = table.len(), "third-party global emotes loaded");
        *self.global.write() = Arc::new(table);
    }

    /// Whether `room` has no table yet or an old one.
    pub fn needs(&self, room: &str) -> bool {
        if !self.config.enabled || room.is_empty() {
            return false;
        }
        self.rooms
            .read()
            .get(room)
            .is_none_or(|(_, at)| at.elapsed() > Duration::from_secs(self.config.refresh_s))
    }

    /// Fetches the channel emotes of Twitch room `room` from every provider.
    pub async fn refresh_room(&self, room: &str) {
        // Marked first, so messages arriving meanwhile do not start a second fetch.
        self.rooms
            .write()
            .entry(room.to_string())
            .and_modify(|(_, at)| *at = Instant::now())
            .or_insert_with(|| (Arc::default(), Instant::now()));
        let mut table = Table::new();
        for p in Provider::ALL {
            let path = match p {
                Provider::Bttv => format!("/cached/users/twitch/{room}"),
                Provider::Ffz => format!("/room/id/{room}"),
                Provider::SevenTv => format!("/users/twitch/{room}"),
            };
            if let Some(body) = self.get(p, &path).await {
                add(&mut table, p, &body);
            }
        }
        tracing::info!(
            room,
            count = table.len(),
            "third-party channel emotes loaded"
        );
        self.rooms
            .write()
            .insert(room.to_string(), (Arc::new(table), Instant::now()));
    }

    async fn get(&self, p: Provider, path: &str) -> Option<Value> {
        let url = format!("{}{path}", self.base(p));
        let result = async {
            let res = self.http.get(&url).send().await?.error_for_status()?;
            res.json::<Value>().await
        }
        .await;
        match result {
            Ok(v) => Some(v),
            Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => None,
            Err(e) => {
                tracing::warn!(provider = p.name(), %url, "emote provider failed: {e}");
                None
            }
        }
    }

    /// Replaces words of text elements that are emote codes (channel first, then global).
    pub fn apply(&self, room: &str, elements: Vec<Element>) -> Vec<Element> {
        let global = self.global.read().clone();
        let channel = self.rooms.read().get(room).map(|(t, _)| t.clone());
        if global.is_empty() && channel.as_ref().is_none_or(|t| t.is_empty()) {
            return elements;
        }
        let find = |word: &str| {
            channel
                .as_ref()
                .and_then(|t| t.get(word))
                .or_else(|| global.get(word))
                .cloned()
        };
        let mut out = Vec::with_capacity(elements.len());
        for el in elements {
            let Element::Text { value } = el else {
                out.push(el);
                continue;
            };
            let mut text = String::new();
            // Split keeping the spaces, so the text stays exactly as sent.
            for piece in value.split_inclusive(' ') {
                let word = piece.trim_end_matches(' ');
                match find(word).filter(|_| !word.is_empty()) {
                    Some(emote) => {
                        if !text.is_empty() {
                            out.push(Element::Text {
                                value: std::mem::take(&mut text),
                            });
                        }
                        out.push(Element::Emote {
                            id: emote.id,
                            name: word.to_string(),
                            url: emote.url,
                        });
                        text.push_str(&piece[word.len()..]);
                    }
                    None => text.push_str(piece),
                }
            }
            if !text.is_empty() {
                out.push(Element::Text { value: text });
            }
        }
        out
    }
}

/// Adds every emote in a provider's response, whatever its shape.
fn add(table: &mut Table, p: Provider, body: &Value) {
    let mut put = |id: &Value, code: &Value| {
        let id = match id {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        if let Some(code) = code.as_str().filter(|c| !c.is_empty() && !c.contains(' ')) {
            table.insert(
                code.to_string(),
                Emote {
                    url: p.image(&id),
                    id,
                },
            );
        }
    };
    match p {
        Provider::Bttv => {
            let lists: Vec<&Value> = match body {
                Value::Array(_) => vec![body],
                _ => vec![&body["channelEmotes"], &body["sharedEmotes"]],
            };
            for e in lists.into_iter().filter_map(Value::as_array).flatten() {
                put(&e["id"], &e["code"]);
            }
        }
        Provider::Ffz => {
            for set in body["sets"]
                .as_object()
                .into_iter()
                .flat_map(|s| s.values())
            {
                for e in set["emoticons"].as_array().into_iter().flatten() {
                    put(&e["id"], &e["name"]);
                }
            }
        }
        Provider::SevenTv => {
            let list = if body["emotes"].is_array() {
                &body["emotes"]
            } else {
                &body["emote_set"]["emotes"]
            };
            for e in list.as_array().into_iter().flatten() {
                put(&e["id"], &e["name"]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider_tables() -> ThirdParty {
        let tp = ThirdParty {
            http: reqwest::Client::new(),
            config: EmoteProviders::default(),
            global: RwLock::new(Arc::default()),
            rooms: RwLock::new(HashMap::new()),
        };
        let mut global = Table::new();
        add(
            &mut global,
            Provider::Bttv,
            &json!([{"id": "54fa8f1401e468494b85b537", "code": "OMEGALUL"}]),
        );
        add(
            &mut global,
            Provider::SevenTv,
            &json!({"emotes": [{"id": "60ae958e229664e8667aea38", "name": "catJAM"}]}),
        );
        let mut room = Table::new();
        add(
            &mut room,
            Provider::Ffz,
            &json!({"room": {"set": 7}, "sets": {"7": {"emoticons": [{"id": 128054, "name": "OMEGALUL"}]}}}),
        );
        *tp.global.write() = Arc::new(global);
        tp.rooms
            .write()
            .insert("42".into(), (Arc::new(room), Instant::now()));
        tp
    }

    #[test]
    fn words_become_emotes_and_the_text_stays_whole() {
        let tp = provider_tables();
        let els = tp.apply(
            "1",
            vec![Element::Text {
                value: "hi catJAM  OMEGALUL!".into(),
            }],
        );
        let names: Vec<String> = els
            .iter()
            .map(|e| match e {
                Element::Text { value } => format!("t:{value}"),
                Element::Emote { name, url, .. } => format!("e:{name}:{url}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "t:hi ",
                "e:catJAM:https://cdn.7tv.app/emote/60ae958e229664e8667aea38/1x.webp",
                "t:  OMEGALUL!"
            ]
        );
    }

    #[test]
    fn channel_emotes_win_over_global_ones() {
        let tp = provider_tables();
        let els = tp.apply(
            "42",
            vec![Element::Text {
                value: "OMEGALUL".into(),
            }],
        );
        assert_eq!(
            els,
            [Element::Emote {
                id: "128054".into(),
                name: "OMEGALUL".into(),
                url: "https://cdn.frankerfacez.com/emote/128054/1".into()
            }]
        );
    }
}
