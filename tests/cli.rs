//! The command line: `overlayd check` names every problem with file and line, and exits
//! non-zero; a valid setup passes.

use std::process::Command;

fn check(dir: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_overlayd"))
        .arg("--config")
        .arg(dir.join("overlay.toml"))
        .arg("check")
        .env("RUST_LOG", "off")
        .output()
        .expect("run overlayd check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_names_file_line_and_what_is_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("overlay.toml"),
        "[server]\nbind = \"127.0.0.1:7878\"\n",
    )
    .expect("write");
    std::fs::create_dir_all(dir.path().join("overlays")).expect("mkdir");
    std::fs::write(
        dir.path().join("overlays/chat.toml"),
        "kind = \"chat\"\ntheme = \"neno\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("overlays/alerts.toml"),
        "kind = \"alerts\"\n\n[options]\nmin_bitz = 5\n",
    )
    .expect("write");
    // A variation that can never match: this overlay shows only Twitch's events.
    std::fs::write(
        dir.path().join("overlays/tips.toml"),
        "kind = \"alerts\"\nplatforms = [\"twitch\"]\n\n[[options.variations]]\nkind = \"tip\"\nplatform = \"youtube\"\ntemplate = \"big\"\n",
    )
    .expect("write");
    let tpl = dir.path().join("themes/broken/templates/chat");
    std::fs::create_dir_all(&tpl).expect("mkdir");
    std::fs::write(
        tpl.join("chat.message.hbs"),
        "<p>\n{{#each data.elements}}\n</p>\n",
    )
    .expect("write");
    let (ok, stderr) = check(dir.path());
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("chat.toml:2: unknown theme \"neno\"; themes found: broken, default, neon"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "alerts.toml:4: unknown option `min_bitz` for an overlay of kind alerts; options are:"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("chat.message.hbs:"), "{stderr}");
    assert!(
        stderr.contains(
            "tips.toml:4: variations[0] can never match: this overlay does not show youtube's events"
        ),
        "{stderr}"
    );
    std::fs::remove_file(dir.path().join("overlays/tips.toml")).expect("rm");

    std::fs::remove_dir_all(dir.path().join("themes/broken")).expect("rm");
    std::fs::write(
        dir.path().join("overlays/chat.toml"),
        "kind = \"chat\"\ntheme = \"neon\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("overlays/alerts.toml"),
        "kind = \"alerts\"\n",
    )
    .expect("write");
    let (ok, stderr) = check(dir.path());
    assert!(ok, "{stderr}");
}

#[test]
fn a_bad_config_line_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("overlay.toml"),
        "[server]\nhistory = 10\nbnd = \"x\"\n",
    )
    .expect("write");
    let (ok, stderr) = check(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains("overlay.toml:3: unknown field `bnd`, allowed keys: `bind`"),
        "{stderr}"
    );
}
