//! `overlayd`: argv → Config → app::run. No logic.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use overlayd::config::Config;

#[derive(Parser)]
#[command(
    version,
    about = "Stream overlays for OBS, fed by Twitch, served over server-sent events"
)]
struct Args {
    /// The settings file (its folder is where themes/, overlays/ and data/ are found).
    #[arg(long, global = true, default_value = "overlay.toml")]
    config: PathBuf,
    /// Listen address, overriding [server] bind (default 127.0.0.1:7878).
    #[arg(long, global = true)]
    bind: Option<std::net::SocketAddr>,
    /// Run the demo source: synthetic chat and alerts, no Twitch account needed.
    #[arg(long, global = true)]
    demo: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve overlays (the default).
    Serve,
    /// Validate overlay.toml, overlays/ and themes/; exits non-zero with file:line errors.
    Check,
    /// Log in to Twitch in the terminal (device code: no browser on this machine needed).
    Login,
    /// Revoke the saved Twitch token and delete it.
    Logout,
    /// Keep a TikTok session cookie for 18+ rooms: paste the value of your browser's
    /// `sessionid` cookie for tiktok.com on standard input. Kept in the data dir, readable by
    /// you only, and sent to TikTok only.
    TiktokSession {
        /// Forget the saved cookie instead.
        #[arg(long)]
        clear: bool,
    },
    /// Print a stretch of a channel's events from a running overlayd, one JSON object a line.
    Export {
        #[arg(long)]
        channel: String,
        /// From this event id, time (2026-12-01T20:00:00Z) or milliseconds since 1970.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// The overlayd to ask (default: this config's bind address).
        #[arg(long)]
        server: Option<String>,
    },
    /// Play a recording (an export) into a running overlayd, keeping its gaps.
    Replay {
        file: PathBuf,
        /// The channel to play into (default: each event's own).
        #[arg(long)]
        channel: Option<String>,
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Start again at the end, until Ctrl-C.
        #[arg(long = "loop")]
        repeat: bool,
        /// Count the replayed events in stats and goals.
        #[arg(long)]
        count: bool,
        #[arg(long)]
        server: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "overlayd=info,warn".into()),
        )
        .init();
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let explicit = std::env::args().any(|a| a == "--config" || a.starts_with("--config="));
    let mut config = Config::load(&args.config, explicit)?;
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    config.demo |= args.demo;
    match args.command.unwrap_or(Command::Serve) {
        Command::Check => {
            let problems = overlayd::app::check(&config);
            for p in &problems {
                eprintln!("{p}");
            }
            if problems.is_empty() {
                println!("configuration, overlays and themes are valid");
                Ok(ExitCode::SUCCESS)
            } else {
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Login => {
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(overlayd::twitch::login::terminal(&config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Logout => {
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(overlayd::twitch::login::logout(&config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::TiktokSession { clear } => {
            let path = config
                .data_dir
                .join(overlayd::platforms::TIKTOK_SESSION_FILE);
            if clear {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", path.display()));
                    }
                    _ => println!("TikTok session cookie forgotten"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            eprintln!("Paste the value of the sessionid cookie for tiktok.com, then Enter:");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading standard input")?;
            let Some(value) = overlayd::platforms::settings::session_value(&line) else {
                anyhow::bail!(
                    "that is not a cookie value: paste only what follows sessionid= (letters and digits, no spaces or ;)"
                );
            };
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating {}", config.data_dir.display()))?;
            overlayd::files::write_private(&path, value.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            println!(
                "kept in {} (readable by you only); TikTok sources use it from their next connection",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            channel,
            from,
            to,
            server,
        } => {
            let server = server.unwrap_or_else(|| local_url(&config));
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let lines = runtime.block_on(overlayd::replay::export_from(
                &server,
                config.admin_token.as_deref(),
                &channel,
                from.as_deref(),
                to.as_deref(),
            ))?;
            print!("{lines}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            file,
            channel,
            speed,
            repeat,
            count,
            server,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let server = server.unwrap_or_else(|| local_url(&config));
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let sent = runtime.block_on(overlayd::replay::replay_to(
                &server,
                config.admin_token.as_deref(),
                &text,
                channel.as_deref(),
                speed,
                repeat,
                count,
            ))?;
            eprintln!("sent {sent} events");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// This config's server as a URL a client on this machine can reach.
fn local_url(config: &Config) -> String {
    let mut addr = config.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another overlayd running? pick another with --bind",
                config.bind
            )
        })?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        signal.cancel();
    });
    #[cfg(unix)]
    {
        let signal = shutdown.clone();
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
                signal.cancel();
            }
        });
    }
    overlayd::app::run(config, listener, shutdown).await
}
