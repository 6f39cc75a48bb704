//! Build script: names the commit the binary is built from, for
//! `switchboard_build_info{git_sha}`. `SWITCHBOARD_GIT_SHA` set at build time wins (a
//! build from a source tarball); otherwise `git rev-parse`, and `unknown` when there is
//! no git or no repository, so a build never fails for want of one. It also makes a new
//! file in `migrations/` rebuild the crate, which embeds them.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=SWITCHBOARD_GIT_SHA");
    let sha = std::env::var("SWITCHBOARD_GIT_SHA")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SWITCHBOARD_GIT_SHA={sha}");
    // Built again when HEAD moves: HEAD itself, the branch it points at, packed refs.
    // Only files that exist (a missing one would rerun this script on every build).
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    // `sqlx::migrate!` embeds each migration with `include_str!`, so an edited one is
    // noticed, but a new file is not: without this a build after adding a migration
    // keeps the old list (sqlx's documented remedy).
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=build.rs");
}
