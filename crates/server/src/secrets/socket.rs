//! The token socket: EdgeX's token-delivery design, built. A Unix socket (mode 0660) speaking HTTP, where
//! `POST /v1/token` answers the `auth` block of a fresh secret-store token to a process the allow-list
//! (`[[secrets.clients]]`) names, identified by the kernel rather than by anything it says:
//!
//! - `SO_PEERCRED`: pid, uid and gid, recorded by the kernel when the process connected;
//! - `/proc/<pid>/exe`: the executable's path (one shown as `(deleted)` is refused) and its SHA-256, read
//!   through that link (so the bytes hashed are the running image's file, wherever it was moved);
//! - the pid-reuse race: the process's start time (`/proc/<pid>/stat`, field 22) is read before and after
//!   the executable, and must not be later than the moment the connection was accepted. A process that
//!   exited and whose pid was taken by a newer one fails one of the two checks. (A process that `exec`s
//!   another program after connecting keeps its pid and start time; the executable checked is then the
//!   new one, which must itself be allowed.)
//!
//! Each request mints a fresh token and revokes the service's earlier ones (EdgeX services could not
//! restart once their token expired; ours can always ask again). Refusals are 403 in Vault's error form
//! and, like grants, land in the audit log.

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use hyper_util::rt::TokioIo;
use shedu_core::ProcessIdentity;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;

use super::{errors, permission_denied};
use crate::AppState;
use crate::listen::ConnectionLimits;

/// Connections the socket holds open at once.
const MAX_CONNECTIONS: usize = 64;
/// The kernel's `USER_HZ`: the unit of `/proc/<pid>/stat` start times and `/proc/uptime` × this. It is
/// 100 on every Linux architecture (the ABI fixes it, whatever the kernel's internal HZ).
const USER_HZ: f64 = 100.0;

/// Binds the socket at `path` with mode 0660: it is made under a temporary name, given its mode, then
/// renamed into place, so it is never reachable with the umask's mode. A stale socket at `path` is
/// replaced; any other file there is an error.
pub(crate) fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.file_type().is_socket()
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    let staging = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o660))?;
    std::fs::rename(&staging, path)?;
    Ok(listener)
}

/// Who connected, as the kernel said at accept time.
#[derive(Clone, Copy, Debug)]
struct Peer {
    pid: Option<i32>,
    uid: u32,
    gid: u32,
    /// `/proc/uptime` at accept, in `USER_HZ` ticks.
    accepted_at: u64,
}

/// Serves the token socket until the task is dropped.
pub(crate) async fn serve(listener: UnixListener, state: AppState, limits: Arc<ConnectionLimits>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let app = Router::new()
        .route("/v1/token", post(token))
        .fallback(|| async {
            errors(
                StatusCode::NOT_FOUND,
                &["the token socket serves POST /v1/token".to_string()],
            )
        })
        .layer(DefaultBodyLimit::max(4096))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::layer,
        ))
        .with_state(state);
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let accepted_at = uptime_ticks().unwrap_or(u64::MAX);
                let Ok(cred) = stream.peer_cred() else {
                    continue;
                };
                let peer = Peer {
                    pid: cred.pid(),
                    uid: cred.uid(),
                    gid: cred.gid(),
                    accepted_at,
                };
                let (app, limits) = (app.clone().layer(Extension(peer)), limits.clone());
                tokio::spawn(async move {
                    // A Unix peer has no IP address; the audit record names the pid and uid instead.
                    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
                    crate::listen::serve_connection(
                        TokioIo::new(stream),
                        unspecified,
                        None,
                        app,
                        &limits,
                    )
                    .await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "token socket: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn token(State(state): State<AppState>, Extension(peer): Extension<Peer>) -> Response {
    let Some(pid) = peer.pid.filter(|p| *p > 0) else {
        return permission_denied().into_response();
    };
    crate::audit::identify_as(
        &format!("pid:{pid}"),
        &format!("uid:{}", peer.uid),
        "token-socket",
    );
    let who = match tokio::task::spawn_blocking(move || identify(pid, peer)).await {
        Ok(Ok(who)) => who,
        Ok(Err(why)) => {
            return errors(StatusCode::FORBIDDEN, &[why]).into_response();
        }
        Err(_) => {
            return errors(
                StatusCode::INTERNAL_SERVER_ERROR,
                &["identifying the caller failed".to_string()],
            )
            .into_response();
        }
    };
    let actor = crate::audit::current_actor();
    match state.services.secrets.issue_for_process(&who, &actor).await {
        Ok(issued) => super::sys::auth_answer(&state, &issued),
        Err(e) => super::error(e).into_response(),
    }
}

/// The process behind `pid`, checked against the pid-reuse race (see the module documentation).
fn identify(pid: i32, peer: Peer) -> Result<ProcessIdentity, String> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let gone = || format!("process {pid} is gone or was replaced");
    let before = start_ticks(&proc_dir).ok_or_else(gone)?;
    if before > peer.accepted_at {
        return Err(gone());
    }
    let exe = std::fs::read_link(proc_dir.join("exe")).map_err(|_| gone())?;
    if exe.to_string_lossy().ends_with(" (deleted)") {
        return Err(format!(
            "the executable of process {pid} was deleted ({})",
            exe.display()
        ));
    }
    let mut file = std::fs::File::open(proc_dir.join("exe")).map_err(|_| gone())?;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|_| gone())?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    let mut exe_sha256 = [0u8; 32];
    exe_sha256.copy_from_slice(ctx.finish().as_ref());
    if start_ticks(&proc_dir) != Some(before) {
        return Err(gone());
    }
    Ok(ProcessIdentity {
        pid,
        uid: peer.uid,
        gid: peer.gid,
        exe,
        exe_sha256,
    })
}

/// Field 22 of `/proc/<pid>/stat` (start time, in ticks since boot). The command name (field 2) is in
/// parentheses and may hold spaces or parentheses, so fields are counted after the last `)`.
fn start_ticks(proc_dir: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After `)`: field 3 (state) is index 0, so field 22 is index 19.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Seconds since boot (`/proc/uptime`), in `USER_HZ` ticks, rounded up so that a process started in the
/// same tick as the accept passes.
fn uptime_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    // Truncation is intended: `secs` is a small positive number of seconds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((secs * USER_HZ).ceil() as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_identified() {
        let peer = Peer {
            pid: Some(std::process::id() as i32),
            uid: 0,
            gid: 0,
            accepted_at: uptime_ticks().unwrap(),
        };
        let who = identify(std::process::id() as i32, peer).unwrap();
        assert_eq!(who.exe, std::env::current_exe().unwrap());
        let early = Peer {
            accepted_at: 0,
            ..peer
        };
        assert!(identify(std::process::id() as i32, early).is_err());
    }
}
