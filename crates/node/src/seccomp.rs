//! The runtime-default seccomp profile (`linux.seccomp` of the OCI runtime spec): the syscall
//! allowlist Docker and containerd apply to every container that is not privileged and does not
//! ask for `seccompProfile: Unconfined`. Everything not listed fails with EPERM.
//!
//! The profile is data: the names below, grouped by what they need, and [`profile`] turns
//! them into the document runc reads. Syscalls libseccomp does not know on this machine are
//! skipped by runc, so the list may name newer ones.
//!
//! One deliberate difference: containerd allows `ptrace` to every container on kernels from
//! 4.8 on; Baton allows it only with `CAP_SYS_PTRACE` (as Docker did before 19.03), so a
//! container cannot attach to its neighbours' processes unless its spec adds that capability.

use serde_json::{Value, json};

/// Allowed to every container.
const ALLOWED: &str = "
    accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32
    clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
    clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range connect
    copy_file_range creat dup dup2 dup3
    epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait
    epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
    faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat
    fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
    fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate
    ftruncate64 futex futex_time64 futex_waitv futimesat
    get_robust_list get_thread_area getcpu getcwd getdents getdents64 getegid getegid32
    geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid
    getpgrp getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32
    getrlimit getrusage getsid getsockname getsockopt gettid gettimeofday getuid getuid32
    getxattr
    inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
    io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup io_submit
    io_uring_enter io_uring_register io_uring_setup ioctl ioprio_get ioprio_set ipc
    kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
    lchown lchown32 lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr
    lseek lsetxattr lstat lstat64
    madvise membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock
    mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
    mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap msgctl msgget
    msgrcv msgsnd msync munlock munlockall munmap
    nanosleep newfstatat _newselect open openat openat2
    pause pidfd_open pidfd_send_signal pipe pipe2 poll ppoll ppoll_time64 prctl pread64
    preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev
    pwritev2
    read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
    remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq
    rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
    rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
    sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
    sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
    sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp
    select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg
    sendmsg sendto set_robust_list set_thread_area set_tid_address setfsgid setfsgid32
    setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority
    setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
    setrlimit setsid setsockopt setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown
    sigaltstack signalfd signalfd4 sigprocmask sigreturn socket socketcall socketpair splice
    stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo
    tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
    timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
    timerfd_settime timerfd_settime64 times tkill truncate truncate64
    ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes
    vfork vmsplice wait4 waitid waitpid write writev
";

/// Allowed on one architecture only.
const BY_ARCH: &[(&str, &str)] = &[
    ("x86_64", "arch_prctl modify_ldt"),
    ("x86", "modify_ldt"),
    (
        "aarch64",
        "arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls",
    ),
    ("powerpc64", "sync_file_range2 swapcontext"),
    (
        "s390x",
        "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
    ),
    ("riscv64", "riscv_flush_icache"),
];

/// Allowed when the capability is in the container's bounding set.
const BY_CAPABILITY: &[(&str, &str)] = &[
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    (
        "CAP_SYS_ADMIN",
        "bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
         mount_setattr move_mount name_to_handle_at open_tree perf_event_open quotactl
         quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare",
    ),
    ("CAP_SYS_BOOT", "reboot"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module init_module finit_module"),
    ("CAP_SYS_PACCT", "acct"),
    (
        "CAP_SYS_PTRACE",
        "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    ),
    ("CAP_SYS_RAWIO", "iopl ioperm"),
    (
        "CAP_SYS_TIME",
        "settimeofday stime clock_settime clock_settime64",
    ),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
    ("CAP_SYSLOG", "syslog"),
    ("CAP_BPF", "bpf"),
    ("CAP_PERFMON", "perf_event_open"),
];

/// The `personality` domains a container may switch to: PER_LINUX, PER_LINUX32,
/// UNAME26, UNAME26|PER_LINUX32, and the query (0xffffffff).
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The namespace flags of clone(2) (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET): without CAP_SYS_ADMIN, `clone` may set none of them.
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// ENOSYS: what `clone3` answers without CAP_SYS_ADMIN, so that C libraries fall back to
/// `clone` (whose flags the filter can see) instead of failing.
const ENOSYS: u32 = 38;

/// The seccomp architectures of this machine's kind (the native one and its compat ABIs).
fn architectures(arch: &str) -> Vec<&'static str> {
    match arch {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => vec!["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
        "s390x" => vec!["SCMP_ARCH_S390", "SCMP_ARCH_S390X"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        _ => Vec::new(),
    }
}

fn names(list: &str) -> Vec<&str> {
    list.split_whitespace().collect()
}

/// The runtime-default profile for a container with `capabilities` in its bounding set, on
/// `arch` (`std::env::consts::ARCH`).
pub fn profile(capabilities: &[String], arch: &str) -> Value {
    let has = |cap: &str| capabilities.iter().any(|c| c == cap);
    let mut syscalls = vec![json!({"names": names(ALLOWED), "action": "SCMP_ACT_ALLOW"})];
    for value in PERSONALITIES {
        syscalls.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]
        }));
    }
    for (a, list) in BY_ARCH {
        if *a == arch {
            syscalls.push(json!({"names": names(list), "action": "SCMP_ACT_ALLOW"}));
        }
    }
    for (cap, list) in BY_CAPABILITY {
        if has(cap) {
            syscalls.push(json!({"names": names(list), "action": "SCMP_ACT_ALLOW"}));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        // s390 passes the flags as clone's second argument.
        let index = if arch == "s390x" { 1 } else { 0 };
        syscalls.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": index, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                      "op": "SCMP_CMP_MASKED_EQ"}]
        }));
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": architectures(arch),
        "syscalls": syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `profile` lets `name` through with no argument condition.
    fn allows(profile: &Value, name: &str) -> bool {
        profile["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| {
                r["action"] == "SCMP_ACT_ALLOW"
                    && r.get("args").is_none()
                    && r["names"]
                        .as_array()
                        .is_some_and(|n| n.iter().any(|n| n == name))
            })
    }

    #[test]
    fn the_default_blocks_what_escapes_a_container() {
        let default: Vec<String> = crate::security::DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .collect();
        let p = profile(&default, "x86_64");
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["architectures"][0], "SCMP_ARCH_X86_64");
        for blocked in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "init_module",
            "finit_module",
            "ptrace",
            "process_vm_readv",
            "bpf",
            "reboot",
            "keyctl",
            "add_key",
            "kexec_load",
            "open_by_handle_at",
            "swapon",
        ] {
            assert!(!allows(&p, blocked), "{blocked} is allowed");
        }
        for allowed in [
            "read",
            "write",
            "execve",
            "futex",
            "socket",
            "chroot",
            "arch_prctl",
        ] {
            assert!(allows(&p, allowed), "{allowed} is blocked");
        }
        // clone only without namespace flags; clone3 answers ENOSYS.
        let rules = p["syscalls"].as_array().expect("rules");
        assert!(rules.iter().any(|r| r["names"][0] == "clone"
            && r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
            && r["args"][0]["value"] == 0x7E02_0000u64));
        assert!(
            rules
                .iter()
                .any(|r| r["names"][0] == "clone3" && r["errnoRet"] == 38)
        );
    }

    #[test]
    fn capabilities_open_their_syscalls() {
        let caps = ["CAP_SYS_ADMIN".to_string(), "CAP_SYS_PTRACE".to_string()];
        let p = profile(&caps, "x86_64");
        for name in ["mount", "unshare", "clone", "clone3", "ptrace"] {
            assert!(allows(&p, name), "{name} is blocked with its capability");
        }
        assert!(
            !p["syscalls"]
                .as_array()
                .expect("rules")
                .iter()
                .any(|r| r["action"] == "SCMP_ACT_ERRNO")
        );
        assert!(!allows(&p, "init_module"));
    }
}
