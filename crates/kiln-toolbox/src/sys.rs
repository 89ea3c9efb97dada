//! The few system calls that need `unsafe`. Everything else uses rustix.
#![allow(unsafe_code)]

use rustix::io::Errno;

/// Which namespaces [`unshare`] creates.
pub(crate) use rustix::thread::UnshareFlags;

/// `unshare(2)` for namespace flags only.
pub(crate) fn unshare(flags: UnshareFlags) -> Result<(), Errno> {
    debug_assert!(!flags.contains(UnshareFlags::FILES));
    // SAFETY: the only hazard of `unshare` is CLONE_FILES (file descriptor
    // tables diverging between threads); we never pass it, and kiln is
    // single-threaded when it enters namespaces (the kernel refuses
    // CLONE_NEWUSER otherwise).
    unsafe { rustix::thread::unshare_unsafe(flags) }
}

/// Result of [`fork`].
pub(crate) enum Fork {
    Child,
    Parent(rustix::process::Pid),
}

/// `fork(2)`. Only called while the process is single-threaded.
pub(crate) fn fork() -> Result<Fork, Errno> {
    // SAFETY: the library forks only on the paths that enter namespaces,
    // where kiln must be single-threaded anyway (the kernel refuses to move
    // a multi-threaded process into a user namespace), so the child cannot
    // inherit a lock held by another thread.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)),
        0 => Ok(Fork::Child),
        // A positive pid from fork() is a valid process id.
        p => Ok(Fork::Parent(
            rustix::process::Pid::from_raw(p).ok_or(Errno::IO)?,
        )),
    }
}

/// `_exit(2)`: leave a forked child without running the parent's exit
/// handlers or flushing buffers that belong to the parent.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Close every file descriptor from `first` up.
pub(crate) fn close_from(first: u32) {
    // SAFETY: called in a freshly forked child that owns no Rust objects
    // wrapping descriptors >= `first` that it will use afterwards.
    unsafe {
        libc::close_range(first, u32::MAX, 0);
    }
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY)`:
/// make a (detached) mount tree read-only, every mount in it.
pub(crate) fn make_tree_readonly(tree: std::os::fd::BorrowedFd<'_>) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let empty = c"";
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `tree` is an open descriptor borrowed for the call, `empty` a
    // valid NUL-terminated string and `attr` a properly laid out
    // `struct mount_attr` that lives across the call; its size is passed as
    // the kernel expects.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO))
    }
}

/// Ignore SIGINT and SIGQUIT in kiln while it waits for the command, as
/// `system(3)` does: Ctrl-C goes to the command, whose status kiln returns.
pub(crate) fn ignore_terminal_signals() {
    // SAFETY: installing SIG_IGN has no handler code to run and no
    // preconditions; the command was already spawned with default
    // dispositions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
}
