//! A seccomp filter like Flatpak's, generated as classic BPF.
//!
//! Flatpak builds its filter with libseccomp (`setup_seccomp` in
//! `flatpak-run.c`): default *allow*, and a blocklist answered with an errno
//! so that programs probing for a feature fall back gracefully. kiln emits
//! the same policy directly as BPF instructions, in the layout the kernel
//! reads (`struct sock_filter`, 8 bytes each), for `bwrap --seccomp FD`:
//!
//! 1. the architecture must be x86_64 (anything else, i.e. i386 `int 0x80`,
//!    is killed), and x32 system calls (`nr & 0x40000000`) get `ENOSYS`;
//! 2. plain blocked calls: `EPERM` (`mount`, `unshare`, `setns`, `kexec_*`,
//!    `bpf`, keyrings, NUMA calls, `chroot`, …) or `ENOSYS` (`clone3` and
//!    the new mount API, so libc falls back to `clone`, which is checked);
//! 3. calls blocked by argument: `clone` with `CLONE_NEWUSER`, `ioctl`
//!    `TIOCSTI`/`TIOCLINUX` (only the low 32 bits of the request count, as
//!    in the kernel), `personality` other than `PER_LINUX`, `socket` of a
//!    family other than `AF_UNSPEC`, `AF_UNIX`, `AF_INET`, `AF_INET6`,
//!    `AF_NETLINK` (+ `AF_CAN`, `AF_BLUETOOTH` when granted):
//!    `EAFNOSUPPORT`;
//! 4. `ptrace`, `perf_event_open` and `personality` changes are allowed
//!    only with the `devel` feature, as in Flatpak.

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// What the app's `features=` allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeccompOptions {
    /// `features=devel`: allow `ptrace`, `perf_event_open`, `personality`.
    pub devel: bool,
    /// `features=multiarch`: allow `modify_ldt` (32-bit code segments).
    pub multiarch: bool,
    /// `features=bluetooth`: allow `AF_BLUETOOTH` sockets.
    pub bluetooth: bool,
    /// `features=canbus`: allow `AF_CAN` sockets.
    pub canbus: bool,
}

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K

// seccomp return values (linux/seccomp.h).
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

/// `AUDIT_ARCH_X86_64` = `EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Offsets in `struct seccomp_data` (little-endian).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn off_arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const EAFNOSUPPORT: u32 = 97;
const CLONE_NEWUSER: u32 = 0x1000_0000;
const TIOCSTI: u32 = 0x5412;
const TIOCLINUX: u32 = 0x541C;
const PER_LINUX: u32 = 0;
const AF_UNSPEC: u32 = 0;
const AF_UNIX: u32 = 1;
const AF_INET: u32 = 2;
const AF_INET6: u32 = 10;
const AF_NETLINK: u32 = 16;
const AF_CAN: u32 = 29;
const AF_BLUETOOTH: u32 = 31;

/// x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl).
pub mod nr {
    pub const IOCTL: u32 = 16;
    pub const SOCKET: u32 = 41;
    pub const CLONE: u32 = 56;
    pub const PTRACE: u32 = 101;
    pub const SYSLOG: u32 = 103;
    pub const USELIB: u32 = 134;
    pub const PERSONALITY: u32 = 135;
    pub const MODIFY_LDT: u32 = 154;
    pub const PIVOT_ROOT: u32 = 155;
    pub const CHROOT: u32 = 161;
    pub const ACCT: u32 = 163;
    pub const MOUNT: u32 = 165;
    pub const UMOUNT2: u32 = 166;
    pub const INIT_MODULE: u32 = 175;
    pub const DELETE_MODULE: u32 = 176;
    pub const QUOTACTL: u32 = 179;
    pub const ADD_KEY: u32 = 248;
    pub const REQUEST_KEY: u32 = 249;
    pub const KEYCTL: u32 = 250;
    pub const MBIND: u32 = 237;
    pub const SET_MEMPOLICY: u32 = 238;
    pub const GET_MEMPOLICY: u32 = 239;
    pub const KEXEC_LOAD: u32 = 246;
    pub const MIGRATE_PAGES: u32 = 256;
    pub const UNSHARE: u32 = 272;
    pub const MOVE_PAGES: u32 = 279;
    pub const PERF_EVENT_OPEN: u32 = 298;
    pub const SETNS: u32 = 308;
    pub const FINIT_MODULE: u32 = 313;
    pub const KEXEC_FILE_LOAD: u32 = 320;
    pub const BPF: u32 = 321;
    pub const USERFAULTFD: u32 = 323;
    pub const OPEN_TREE: u32 = 428;
    pub const MOVE_MOUNT: u32 = 429;
    pub const FSOPEN: u32 = 430;
    pub const FSCONFIG: u32 = 431;
    pub const FSMOUNT: u32 = 432;
    pub const FSPICK: u32 = 433;
    pub const CLONE3: u32 = 435;
    pub const MOUNT_SETATTR: u32 = 442;
}

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

fn ret(k: u32) -> SockFilter {
    stmt(BPF_RET_K, k)
}

fn errno(e: u32) -> u32 {
    RET_ERRNO | (e & 0xffff)
}

/// The system calls refused outright, with their errno.
pub fn blocked_syscalls(opts: &SeccompOptions) -> Vec<(u32, u32)> {
    use nr::*;
    let mut v = vec![
        (SYSLOG, EPERM),
        (USELIB, EPERM),
        (ACCT, EPERM),
        (QUOTACTL, EPERM),
        (ADD_KEY, EPERM),
        (KEYCTL, EPERM),
        (REQUEST_KEY, EPERM),
        (MOVE_PAGES, EPERM),
        (MBIND, EPERM),
        (GET_MEMPOLICY, EPERM),
        (SET_MEMPOLICY, EPERM),
        (MIGRATE_PAGES, EPERM),
        (UNSHARE, EPERM),
        (SETNS, EPERM),
        (MOUNT, EPERM),
        (UMOUNT2, EPERM),
        (PIVOT_ROOT, EPERM),
        (CHROOT, EPERM),
        // Not in Flatpak's list (there, missing capabilities refuse them);
        // kiln refuses them in the filter too, as the issue asks.
        (KEXEC_LOAD, EPERM),
        (KEXEC_FILE_LOAD, EPERM),
        (BPF, EPERM),
        (INIT_MODULE, EPERM),
        (FINIT_MODULE, EPERM),
        (DELETE_MODULE, EPERM),
        // The new mount API and clone3 (whose flags a filter cannot read):
        // ENOSYS so that libc falls back to clone(2).
        (CLONE3, ENOSYS),
        (OPEN_TREE, ENOSYS),
        (MOVE_MOUNT, ENOSYS),
        (FSOPEN, ENOSYS),
        (FSCONFIG, ENOSYS),
        (FSMOUNT, ENOSYS),
        (FSPICK, ENOSYS),
        (MOUNT_SETATTR, ENOSYS),
    ];
    if !opts.multiarch {
        v.push((MODIFY_LDT, EPERM));
    }
    if !opts.devel {
        v.push((PTRACE, EPERM));
        v.push((PERF_EVENT_OPEN, EPERM));
    }
    v
}

/// The socket families an app may open.
pub fn allowed_families(opts: &SeccompOptions) -> Vec<u32> {
    let mut v = vec![AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK];
    if opts.canbus {
        v.push(AF_CAN);
    }
    if opts.bluetooth {
        v.push(AF_BLUETOOTH);
    }
    v
}

/// Build the filter program.
pub fn build_filter(opts: &SeccompOptions) -> Vec<SockFilter> {
    // 1. Architecture.
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        ret(RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, OFF_NR),
        jump(BPF_JMP_JSET_K, X32_SYSCALL_BIT, 0, 1),
        ret(errno(ENOSYS)),
    ];

    // 2. Plain blocklist: `jeq NR; ret ERRNO` pairs.
    for (n, e) in blocked_syscalls(opts) {
        p.push(jump(BPF_JMP_JEQ_K, n, 0, 1));
        p.push(ret(errno(e)));
    }

    // 3. Argument checks. Each block starts with `jeq NR, 0, LEN` and ends
    // in returns only, since it overwrites the accumulator.
    let block = |p: &mut Vec<SockFilter>, n: u32, body: Vec<SockFilter>| {
        p.push(jump(BPF_JMP_JEQ_K, n, 0, body.len() as u8));
        p.extend(body);
    };

    // clone(flags, …): refuse CLONE_NEWUSER (flags are arg 0 on x86_64).
    block(
        &mut p,
        nr::CLONE,
        vec![
            stmt(BPF_LD_W_ABS, off_arg_lo(0)),
            jump(BPF_JMP_JSET_K, CLONE_NEWUSER, 0, 1),
            ret(errno(EPERM)),
            ret(RET_ALLOW),
        ],
    );
    // ioctl(fd, request, …): the kernel takes `unsigned int cmd`, so the
    // high half of the register is ignored by it and by us.
    block(
        &mut p,
        nr::IOCTL,
        vec![
            stmt(BPF_LD_W_ABS, off_arg_lo(1)),
            jump(BPF_JMP_JEQ_K, TIOCSTI, 2, 0),
            jump(BPF_JMP_JEQ_K, TIOCLINUX, 1, 0),
            ret(RET_ALLOW),
            ret(errno(EPERM)),
        ],
    );
    // personality(persona): only PER_LINUX (all 64 bits zero).
    if !opts.devel {
        block(
            &mut p,
            nr::PERSONALITY,
            vec![
                stmt(BPF_LD_W_ABS, off_arg_hi(0)),
                jump(BPF_JMP_JEQ_K, 0, 0, 3),
                stmt(BPF_LD_W_ABS, off_arg_lo(0)),
                jump(BPF_JMP_JEQ_K, PER_LINUX, 0, 1),
                ret(RET_ALLOW),
                ret(errno(EPERM)),
            ],
        );
    }
    // socket(domain, …): `int domain`, low half only.
    let fams = allowed_families(opts);
    let mut body = vec![stmt(BPF_LD_W_ABS, off_arg_lo(0))];
    let n = fams.len();
    for (i, f) in fams.iter().enumerate() {
        // Jump to `ret ALLOW`, which follows the last compare + the errno.
        let to_allow = (n - i) as u8;
        body.push(jump(BPF_JMP_JEQ_K, *f, to_allow, 0));
    }
    body.push(ret(errno(EAFNOSUPPORT)));
    body.push(ret(RET_ALLOW));
    block(&mut p, nr::SOCKET, body);

    p.push(ret(RET_ALLOW));
    p
}

/// The program as the kernel (and `bwrap --seccomp`) reads it.
pub fn to_bytes(prog: &[SockFilter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for i in prog {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// The filter for `opts`, ready for `bwrap --seccomp`.
pub fn filter_bytes(opts: &SeccompOptions) -> Vec<u8> {
    to_bytes(&build_filter(opts))
}

/// A tiny interpreter for the subset of classic BPF the generator emits;
/// used by tests to check the policy without loading it into a kernel.
pub fn evaluate(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> Option<u32> {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        let o = 16 + 8 * i;
        data[o..o + 8].copy_from_slice(&a.to_le_bytes());
    }
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    // Classic BPF only jumps forward: the loop ends.
    while let Some(ins) = prog.get(pc) {
        match ins.code {
            BPF_LD_W_ABS => {
                let o = ins.k as usize;
                let b = data.get(o..o + 4)?;
                acc = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                pc += 1;
            }
            BPF_JMP_JEQ_K | BPF_JMP_JGE_K | BPF_JMP_JSET_K => {
                let taken = match ins.code {
                    BPF_JMP_JEQ_K => acc == ins.k,
                    BPF_JMP_JGE_K => acc >= ins.k,
                    _ => acc & ins.k != 0,
                };
                pc += 1 + usize::from(if taken { ins.jt } else { ins.jf });
            }
            BPF_RET_K => return Some(ins.k),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: u32 = AUDIT_ARCH_X86_64;

    fn eval(opts: &SeccompOptions, n: u32, args: [u64; 6]) -> u32 {
        evaluate(&build_filter(opts), X86_64, n, args).expect("program returns")
    }

    #[test]
    fn plain_calls_are_allowed() {
        let o = SeccompOptions::default();
        for n in [0, 1, 2, 3, 9, 39, 57, 59, 60, 231, 257] {
            assert_eq!(eval(&o, n, [0; 6]), RET_ALLOW, "syscall {n}");
        }
    }

    #[test]
    fn blocklist() {
        let o = SeccompOptions::default();
        for (n, e) in [
            (nr::MOUNT, EPERM),
            (nr::UNSHARE, EPERM),
            (nr::SETNS, EPERM),
            (nr::KEXEC_LOAD, EPERM),
            (nr::BPF, EPERM),
            (nr::PTRACE, EPERM),
            (nr::PERF_EVENT_OPEN, EPERM),
            (nr::CLONE3, ENOSYS),
            (nr::FSOPEN, ENOSYS),
        ] {
            assert_eq!(eval(&o, n, [0; 6]), RET_ERRNO | e, "syscall {n}");
        }
        let devel = SeccompOptions {
            devel: true,
            ..Default::default()
        };
        assert_eq!(eval(&devel, nr::PTRACE, [0; 6]), RET_ALLOW);
        assert_eq!(eval(&devel, nr::PERSONALITY, [8, 0, 0, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn argument_checks() {
        let o = SeccompOptions::default();
        let flags = 0x0100_0000 | 17; // CLONE_CHILD_SETTID | SIGCHLD
        assert_eq!(eval(&o, nr::CLONE, [flags, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            eval(&o, nr::CLONE, [flags | CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]),
            RET_ERRNO | EPERM
        );
        assert_eq!(
            eval(&o, nr::IOCTL, [0, TIOCSTI as u64, 0, 0, 0, 0]),
            RET_ERRNO | EPERM
        );
        // High bits set (CVE-2019-10063 style): still refused.
        assert_eq!(
            eval(&o, nr::IOCTL, [0, (1 << 32) | TIOCSTI as u64, 0, 0, 0, 0]),
            RET_ERRNO | EPERM
        );
        assert_eq!(
            eval(&o, nr::IOCTL, [0, TIOCLINUX as u64, 0, 0, 0, 0]),
            RET_ERRNO | EPERM
        );
        assert_eq!(eval(&o, nr::IOCTL, [0, 0x5401, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&o, nr::PERSONALITY, [0, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(
            eval(&o, nr::PERSONALITY, [0x0040000, 0, 0, 0, 0, 0]),
            RET_ERRNO | EPERM
        );
        assert_eq!(
            eval(&o, nr::PERSONALITY, [1 << 32, 0, 0, 0, 0, 0]),
            RET_ERRNO | EPERM
        );
        for f in [AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_UNSPEC] {
            assert_eq!(eval(&o, nr::SOCKET, [f as u64, 1, 0, 0, 0, 0]), RET_ALLOW);
        }
        for f in [
            3u64,
            4,
            5,
            9,
            17,
            AF_CAN as u64,
            AF_BLUETOOTH as u64,
            40,
            1000,
        ] {
            assert_eq!(
                eval(&o, nr::SOCKET, [f, 1, 0, 0, 0, 0]),
                RET_ERRNO | EAFNOSUPPORT,
                "family {f}"
            );
        }
        let can = SeccompOptions {
            canbus: true,
            bluetooth: true,
            ..Default::default()
        };
        assert_eq!(
            eval(&can, nr::SOCKET, [AF_CAN as u64, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(
            eval(&can, nr::SOCKET, [AF_BLUETOOTH as u64, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
    }

    #[test]
    fn foreign_arch_and_x32() {
        let p = build_filter(&SeccompOptions::default());
        assert_eq!(evaluate(&p, 0x4000_0003, 1, [0; 6]), Some(RET_KILL_PROCESS));
        assert_eq!(
            evaluate(&p, X86_64, X32_SYSCALL_BIT | 1, [0; 6]),
            Some(RET_ERRNO | ENOSYS)
        );
    }

    #[test]
    fn serialises_as_sock_filter() {
        let b = filter_bytes(&SeccompOptions::default());
        assert_eq!(b.len() % 8, 0);
        assert!(b.len() / 8 < 4096, "BPF_MAXINSNS");
        assert_eq!(&b[0..2], &BPF_LD_W_ABS.to_ne_bytes());
        assert_eq!(&b[4..8], &OFF_ARCH.to_ne_bytes());
    }

    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn numbers_match_libc() {
        assert_eq!(i64::from(nr::IOCTL), libc::SYS_ioctl, "IOCTL");
        assert_eq!(i64::from(nr::SOCKET), libc::SYS_socket, "SOCKET");
        assert_eq!(i64::from(nr::CLONE), libc::SYS_clone, "CLONE");
        assert_eq!(i64::from(nr::PTRACE), libc::SYS_ptrace, "PTRACE");
        assert_eq!(i64::from(nr::SYSLOG), libc::SYS_syslog, "SYSLOG");
        assert_eq!(i64::from(nr::USELIB), libc::SYS_uselib, "USELIB");
        assert_eq!(
            i64::from(nr::PERSONALITY),
            libc::SYS_personality,
            "PERSONALITY"
        );
        assert_eq!(
            i64::from(nr::MODIFY_LDT),
            libc::SYS_modify_ldt,
            "MODIFY_LDT"
        );
        assert_eq!(
            i64::from(nr::PIVOT_ROOT),
            libc::SYS_pivot_root,
            "PIVOT_ROOT"
        );
        assert_eq!(i64::from(nr::CHROOT), libc::SYS_chroot, "CHROOT");
        assert_eq!(i64::from(nr::ACCT), libc::SYS_acct, "ACCT");
        assert_eq!(i64::from(nr::MOUNT), libc::SYS_mount, "MOUNT");
        assert_eq!(i64::from(nr::UMOUNT2), libc::SYS_umount2, "UMOUNT2");
        assert_eq!(
            i64::from(nr::INIT_MODULE),
            libc::SYS_init_module,
            "INIT_MODULE"
        );
        assert_eq!(
            i64::from(nr::DELETE_MODULE),
            libc::SYS_delete_module,
            "DELETE_MODULE"
        );
        assert_eq!(i64::from(nr::QUOTACTL), libc::SYS_quotactl, "QUOTACTL");
        assert_eq!(i64::from(nr::ADD_KEY), libc::SYS_add_key, "ADD_KEY");
        assert_eq!(
            i64::from(nr::REQUEST_KEY),
            libc::SYS_request_key,
            "REQUEST_KEY"
        );
        assert_eq!(i64::from(nr::KEYCTL), libc::SYS_keyctl, "KEYCTL");
        assert_eq!(i64::from(nr::MBIND), libc::SYS_mbind, "MBIND");
        assert_eq!(
            i64::from(nr::SET_MEMPOLICY),
            libc::SYS_set_mempolicy,
            "SET_MEMPOLICY"
        );
        assert_eq!(
            i64::from(nr::GET_MEMPOLICY),
            libc::SYS_get_mempolicy,
            "GET_MEMPOLICY"
        );
        assert_eq!(
            i64::from(nr::KEXEC_LOAD),
            libc::SYS_kexec_load,
            "KEXEC_LOAD"
        );
        assert_eq!(
            i64::from(nr::MIGRATE_PAGES),
            libc::SYS_migrate_pages,
            "MIGRATE_PAGES"
        );
        assert_eq!(i64::from(nr::UNSHARE), libc::SYS_unshare, "UNSHARE");
        assert_eq!(
            i64::from(nr::MOVE_PAGES),
            libc::SYS_move_pages,
            "MOVE_PAGES"
        );
        assert_eq!(
            i64::from(nr::PERF_EVENT_OPEN),
            libc::SYS_perf_event_open,
            "PERF_EVENT_OPEN"
        );
        assert_eq!(i64::from(nr::SETNS), libc::SYS_setns, "SETNS");
        assert_eq!(
            i64::from(nr::FINIT_MODULE),
            libc::SYS_finit_module,
            "FINIT_MODULE"
        );
        assert_eq!(
            i64::from(nr::KEXEC_FILE_LOAD),
            libc::SYS_kexec_file_load,
            "KEXEC_FILE_LOAD"
        );
        assert_eq!(i64::from(nr::BPF), libc::SYS_bpf, "BPF");
        assert_eq!(
            i64::from(nr::USERFAULTFD),
            libc::SYS_userfaultfd,
            "USERFAULTFD"
        );
        assert_eq!(i64::from(nr::OPEN_TREE), libc::SYS_open_tree, "OPEN_TREE");
        assert_eq!(
            i64::from(nr::MOVE_MOUNT),
            libc::SYS_move_mount,
            "MOVE_MOUNT"
        );
        assert_eq!(i64::from(nr::FSOPEN), libc::SYS_fsopen, "FSOPEN");
        assert_eq!(i64::from(nr::FSCONFIG), libc::SYS_fsconfig, "FSCONFIG");
        assert_eq!(i64::from(nr::FSMOUNT), libc::SYS_fsmount, "FSMOUNT");
        assert_eq!(i64::from(nr::FSPICK), libc::SYS_fspick, "FSPICK");
        assert_eq!(i64::from(nr::CLONE3), libc::SYS_clone3, "CLONE3");
        assert_eq!(
            i64::from(nr::MOUNT_SETATTR),
            libc::SYS_mount_setattr,
            "MOUNT_SETATTR"
        );
    }
}
