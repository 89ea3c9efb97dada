//! Process 1 of a container: mounts `/proc`, then reaps orphans until it is
//! killed. It holds the namespaces that later `run`s and `enter`s join.

use crate::sys;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::MountFlags;
use rustix::process::WaitOptions;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// Runs in the forked child; never returns. Reports on `ready`: one byte 0
/// for success, or 1 followed by the errno (4 bytes, little endian).
pub(crate) fn main(ready: OwnedFd) -> ! {
    let setup = (|| -> Result<(), Errno> {
        rustix::process::setsid()?;
        rustix::mount::mount(
            "proc",
            "/proc",
            "proc",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            None,
        )?;
        Ok(())
    })();
    let mut msg = [0u8; 5];
    if let Err(e) = setup {
        msg[0] = 1;
        msg[1..].copy_from_slice(&e.raw_os_error().to_le_bytes());
    }
    let _ = rustix::io::write(&ready, &msg);
    drop(ready);
    if setup.is_err() {
        sys::exit_now(1);
    }
    // Let go of the caller's terminal, pipes and locks.
    if let Ok(null) = rustix::fs::open("/dev/null", OFlags::RDWR, Mode::empty()) {
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&null);
        std::mem::forget(null);
    }
    sys::close_from(3);
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(_) | Err(Errno::INTR) => {}
            // No children right now: orphans may be adopted later.
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}
