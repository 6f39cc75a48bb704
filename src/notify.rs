//! systemd's readiness protocol (`sd_notify`), for `Type=notify` units: one datagram to
//! the socket systemd names in `NOTIFY_SOCKET`. `READY=1` once the server accepts
//! connections (after migrations and the first readiness probe), `STOPPING=1` when the
//! shutdown signal arrives. Without `NOTIFY_SOCKET` (not under systemd) nothing is sent.
//!
//! No libsystemd: the protocol is a single `sendto`, and an abstract socket name
//! (`@...`) is reachable through std on Linux.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (`READY=1`, `STOPPING=1`, ...) to `socket` (`NOTIFY_SOCKET`); a
/// failure is logged and otherwise ignored (the service manager's timeout handles it).
pub fn notify(socket: Option<&str>, state: &str) {
    let Some(path) = socket.filter(|p| !p.is_empty()) else {
        return;
    };
    if let Err(e) = send(path, state) {
        tracing::warn!(error = %e, state, "could not notify systemd (NOTIFY_SOCKET)");
    }
}

fn send(path: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    match path.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        #[cfg(not(target_os = "linux"))]
        Some(_) => {
            return Err(std::io::Error::other(
                "abstract sockets exist only on Linux",
            ));
        }
        None => {
            sock.send_to(state.as_bytes(), path)?;
        }
    }
    Ok(())
}
