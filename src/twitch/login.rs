//! `overlayd login` / `overlayd logout`: the device-code login in a terminal.

use anyhow::{Context as _, bail};

use super::oauth::{Error, OAuth, Store};
use crate::config::Config;

fn oauth(config: &Config) -> anyhow::Result<OAuth> {
    let Some(client_id) = config.twitch.client_id.as_deref().filter(|c| !c.is_empty()) else {
        bail!(
            "set [twitch] client_id in {} first: register an application at https://dev.twitch.tv/console/apps (category: Broadcaster Suite, client type: Public) and copy its Client ID",
            config
                .path
                .as_deref()
                .map_or("overlay.toml".into(), |p| p.display().to_string())
        );
    };
    Ok(OAuth::new(
        &config.twitch.endpoints.id,
        client_id,
        config.twitch.client_secret.as_deref(),
    ))
}

/// Shows the code, waits for approval, saves the token.
pub async fn terminal(config: &Config) -> anyhow::Result<()> {
    let oauth = oauth(config)?;
    let code = oauth
        .device_start()
        .await
        .context("starting the Twitch login")?;
    println!(
        "To log in, open {} and enter the code {}",
        code.verification_uri, code.user_code
    );
    println!("(waiting up to {} minutes)", code.expires_in / 60);
    let mut token = oauth
        .device_wait(&code, |state| {
            if matches!(state, Error::SlowDown) {
                eprintln!("Twitch asked to wait longer between checks");
            }
        })
        .await
        .context("Twitch login")?;
    let who = oauth
        .validate(&token.access_token)
        .await
        .context("checking the new token")?;
    token.login = who.login.clone();
    token.user_id = who.user_id.clone();
    let store = Store::new(&config.data_dir);
    store.save(&token)?;
    println!(
        "Logged in as {}. The token is saved in {} (readable only by you).",
        who.login.as_deref().unwrap_or("?"),
        store.path().display()
    );
    Ok(())
}

/// Revokes and deletes the saved token.
pub async fn logout(config: &Config) -> anyhow::Result<()> {
    let store = Store::new(&config.data_dir);
    match store.load()? {
        Some(token) => {
            if let Err(e) = oauth(config)?.revoke(&token.access_token).await {
                eprintln!("Twitch did not confirm the revocation ({e}); deleting the token anyway");
            }
            store.delete()?;
            println!("Logged out; {} deleted.", store.path().display());
        }
        None => println!("Not logged in."),
    }
    Ok(())
}
