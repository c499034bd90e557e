"""Facts from libs' event table: event names, syscall names, event parameters.

Transcribed (names and types only) from the event list Falco prints with
`falco --list-events`, plus the newer syscalls libs knows by name. Used to
validate `evt.type` values ("unknown event type X"), to resolve `evt.arg.NAME`
("unknown event argument X") and to type `evt.rawarg.NAME`.
"""

from __future__ import annotations

# Syscalls that have their own event in the table, in table order.
_SYSCALL_EVENTS = """
open close read write socket bind connect listen send sendto recv recvfrom shutdown
getsockname getpeername socketpair setsockopt getsockopt sendmsg sendmmsg recvmsg recvmmsg
creat pipe eventfd futex stat lstat fstat stat64 lstat64 fstat64 epoll_wait poll select
lseek llseek getcwd chdir fchdir pread pwrite readv writev preadv pwritev signalfd kill
tkill tgkill nanosleep timerfd_create inotify_init getrlimit setrlimit prlimit fcntl brk
mmap mmap2 munmap splice ptrace ioctl rename renameat symlink symlinkat sendfile quotactl
setresuid setresgid setuid setgid getuid geteuid getgid getegid getresuid getresgid clone
fork vfork getdents getdents64 setns flock accept semop semctl ppoll mount semget access
chroot setsid mkdir rmdir unshare execve setpgid seccomp unlink unlinkat mkdirat openat
link linkat fchmodat chmod fchmod renameat2 userfaultfd openat2 mprotect execveat
copy_file_range clone3 open_by_handle_at io_uring_setup io_uring_enter io_uring_register
mlock munlock mlockall munlockall capset dup2 dup3 dup bpf mlock2 fsconfig epoll_create
epoll_create1 chown lchown fchown fchownat umount accept4 umount2 pipe2 inotify_init1
eventfd2 signalfd4 prctl memfd_create pidfd_getfd pidfd_open init_module finit_module
mknod mknodat newfstatat process_vm_readv process_vm_writev delete_module setreuid setregid
"""

# Syscalls libs knows by name only (they arrive as the generic "syscall" event).
_GENERIC_SYSCALLS = """
sigreturn s390_runtime_instr s390_sthyi readdir sync_file_range faccessat2 sched_getattr
rseq nfsservctl sigsuspend getpmsg set_mempolicy_home_node io_pgetevents statx
epoll_ctl_old mbind move_pages migrate_pages landlock_add_rule landlock_restrict_self
pkey_alloc close_range kexec_file_load memfd_secret fadvise64 getrandom sigaltstack
waitpid nice olduname sgetmask _newselect socketcall sigprocmask fstatat64 fstatfs64
statfs64 msgctl msgget process_mrelease msgrcv perf_event_open getcpu shmctl
set_robust_list pselect6 modify_ldt timerfd_settime getitimer sched_getscheduler kcmp
open_tree setpriority sched_setscheduler fdatasync pkey_mprotect clock_nanosleep signal
sched_yield get_robust_list set_tid_address getpgid getsid sched_getparam ioperm syslog
wait4 rt_sigaction mq_timedreceive rt_tgsigqueueinfo rt_sigprocmask _sysctl
epoll_wait_old vhangup sched_get_priority_min semtimedop rt_sigreturn rt_sigpending
io_destroy pivot_root mincore msgsnd sysinfo acct epoll_pwait sysfs clock_adjtime sync
name_to_handle_at sched_setparam stime pause timerfd msync rt_sigsuspend
landlock_create_ruleset lremovexattr remap_file_pages restart_syscall times
sched_get_priority_max fanotify_mark statfs utime getpid uname process_madvise
ioprio_get swapon readahead pkey_free time settimeofday iopl set_mempolicy ftruncate
syncfs readlink gettimeofday s390_guarded_storage sched_rr_get_interval setgroups
timer_gettime ioprio_set futimesat reboot get_kernel_syms uselib mremap truncate ustat
timer_settime quotactl_fd umask clock_settime mount_setattr getpriority get_mempolicy
move_mount alarm getxattr personality getpgrp fstatfs create_module preadv2 vmsplice
rt_sigtimedwait mq_open mq_getsetattr fspick faccessat capget setfsuid setfsgid
s390_pci_mmio_read ssetmask madvise swapoff add_key membarrier gettid query_module shmat
lsetxattr lookup_dcookie fsetxattr ipc fsync lgetxattr futex_waitv fgetxattr sigpending
shmdt listxattr setxattr mq_timedsend sigaction arch_prctl waitid llistxattr flistxattr
timer_create removexattr fremovexattr utimensat rt_sigqueueinfo sched_getaffinity
sched_setattr epoll_pwait2 fsopen fanotify_init request_key sched_setaffinity io_submit
set_thread_area get_thread_area epoll_ctl pidfd_send_signal inotify_add_watch
setdomainname io_setup s390_pci_mmio_write io_getevents io_cancel timer_getoverrun
timerfd_gettime setitimer clock_gettime fsmount exit_group getrusage sethostname
timer_delete idle shmget readlinkat utimes adjtimex mq_unlink pwritev2 mq_notify
kexec_load clock_getres keyctl bdflush tee getgroups inotify_rm_watch exit getppid
fchmodat2 cachestat map_shadow_stack futex_wake futex_wait futex_requeue statmount
listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal setxattrat getxattrat
listxattrat removexattrat uretprobe riscv_flush_icache riscv_hwprobe
"""

# Syscall names whose event carries a different name (the event's evt.type).
SYSCALL_ALIASES: dict[str, str] = {
    "pread64": "pread", "pwrite64": "pwrite", "_llseek": "llseek", "sendfile64": "sendfile",
    "fcntl64": "fcntl", "getrlimit64": "getrlimit", "ugetrlimit": "getrlimit",
}

# Tracepoint, plugin and meta events; those marked "*" have both an enter and exit code.
_OTHER_EVENTS = """
syscall* switch procexit signaldeliver page_fault pluginevent drop* scapevent procinfo
cpu_hotplug k8s tracer* mesos notification infra container useradded userdeleted
groupadded groupdeleted asyncevent
"""

SYSCALL_EVENT_NAMES: tuple[str, ...] = tuple(_SYSCALL_EVENTS.split())
GENERIC_SYSCALL_NAMES: tuple[str, ...] = tuple(_GENERIC_SYSCALLS.split())
OTHER_EVENT_NAMES: tuple[str, ...] = tuple(n.rstrip("*") for n in _OTHER_EVENTS.split())
SINGLE_CODE_EVENTS = frozenset(n for n in _OTHER_EVENTS.split() if not n.endswith("*"))

# Every name an evt.type value may take (libs accepts event names and syscall names).
EVENT_NAMES: frozenset[str] = frozenset(
    SYSCALL_EVENT_NAMES + GENERIC_SYSCALL_NAMES + OTHER_EVENT_NAMES + tuple(SYSCALL_ALIASES)
)

# Event parameters by first appearance in the table (name:TYPE); `evt.rawarg.NAME`
# takes the type of the first event that defines NAME, as libs' lookup does.
_PARAMS = """
ID:SYSCALLID nativeID:UINT16 name:FSPATH flags:FLAGS32 mode:UINT32 fd:FD dev:UINT32
ino:UINT64 res:ERRNO size:UINT32 data:BYTEBUF domain:ENUMFLAGS32 type:UINT32 proto:UINT32
addr:SOCKADDR tuple:SOCKTUPLE backlog:UINT32 how:ENUMFLAGS8 fd1:FD fd2:FD source:UINT64
peer:UINT64 level:ENUMFLAGS8 optname:ENUMFLAGS8 val:DYNAMIC optlen:UINT32 initval:UINT64
op:ENUMFLAGS16 path:FSPATH maxevents:ERRNO fds:FDLIST timeout:INT64 offset:UINT64
whence:ENUMFLAGS8 pos:UINT64 mask:UINT32 pid:PID sig:SIGTYPE tid:PID interval:RELTIME
clockid:UINT8 resource:ENUMFLAGS8 cur:INT64 max:INT64 newcur:INT64 newmax:INT64
oldcur:INT64 oldmax:INT64 cmd:ENUMFLAGS8 vm_size:UINT32 vm_rss:UINT32 vm_swap:UINT32
length:UINT64 prot:FLAGS32 pgoffset:UINT64 fd_in:FD fd_out:FD request:ENUMFLAGS16
argument:UINT64 oldpath:FSPATH newpath:FSPATH olddirfd:FD newdirfd:FD target:CHARBUF
linkpath:FSPATH linkdirfd:FD out_fd:FD in_fd:FD id:UINT32 type_:FLAGS8 quota_fmt:FLAGS8
special:CHARBUF quotafilepath:CHARBUF dqb_bhardlimit:UINT64 dqb_bsoftlimit:UINT64
dqb_curspace:UINT64 dqb_ihardlimit:UINT64 dqb_isoftlimit:UINT64 dqb_btime:RELTIME
dqb_itime:RELTIME dqi_bgrace:RELTIME dqi_igrace:RELTIME dqi_flags:FLAGS8
quota_fmt_out:FLAGS8 ruid:UID euid:UID suid:UID rgid:GID egid:GID sgid:GID uid:UID gid:GID
exe:CHARBUF args:BYTEBUF ptid:PID cwd:CHARBUF fdlimit:INT64 pgft_maj:UINT64
pgft_min:UINT64 comm:CHARBUF cgroups:BYTEBUF vtid:PID vpid:PID pidns_init_start_ts:UINT64
nstype:FLAGS32 operation:FLAGS32 queuepct:UINT8 queuelen:UINT32 queuemax:UINT32
semid:INT32 nsops:UINT32 sem_num_0:UINT16 sem_op_0:INT16 sem_flg_0:FLAGS16
sem_num_1:UINT16 sem_op_1:INT16 sem_flg_1:FLAGS16 semnum:INT32 sigmask:SIGSET dir:FSPATH
key:INT32 nsems:INT32 semflg:FLAGS32 filename:FSPATH env:BYTEBUF tty:INT32 pgid:PID
loginuid:INT32 cap_inheritable:UINT64 cap_permitted:UINT64 cap_effective:UINT64
exe_ino:UINT64 exe_ino_ctime:ABSTIME exe_ino_mtime:ABSTIME trusted_exepath:FSPATH
dirfd:FD olddir:FD newdir:FD resolve:FLAGS32 pathname:FSRELPATH fdin:FD offin:UINT64
len:UINT64 fdout:FD offout:UINT64 mountfd:FD entries:UINT32 sq_entries:UINT32
cq_entries:UINT32 sq_thread_cpu:UINT32 sq_thread_idle:UINT32 features:FLAGS32
to_submit:UINT32 min_complete:UINT32 opcode:ENUMFLAGS16 arg:UINT64 nr_args:UINT32
oldfd:FD newfd:FD value_bytebuf:BYTEBUF value_charbuf:CHARBUF aux:INT32
option:ENUMFLAGS32 arg2_str:CHARBUF arg2_int:INT64 pid_fd:FD target_fd:FD img:BYTEBUF
uargs:CHARBUF next:PID status:ERRNO ret:ERRNO core:UINT8 spid:PID dpid:PID ip:UINT64
error:FLAGS32 plugin_id:UINT32 event_data:BYTEBUF ratio:UINT32 event_type:UINT32
cpu_usr:UINT64 cpu_sys:UINT64 cpu:UINT32 action:UINT32 json:CHARBUF tags:CHARBUFARRAY
desc:CHARBUF description:CHARBUF scope:CHARBUF home:CHARBUF shell:CHARBUF
container_id:CHARBUF
"""

# name -> libs type of its first definition (the "type_" entry only keeps order readable)
PARAM_TYPES: dict[str, str] = {}
for _entry in _PARAMS.split():
    _name, _, _type = _entry.partition(":")
    PARAM_TYPES.setdefault(_name.rstrip("_"), _type)

# longest first, so a lookup finds the longest parameter name prefixing a string
PARAM_NAMES_LONGEST_FIRST: tuple[str, ...] = tuple(
    sorted(PARAM_TYPES, key=lambda n: (-len(n), n))
)


def longest_param_prefix(text: str) -> str | None:
    """The longest event parameter name that `text` starts with (libs' lookup)."""
    for name in PARAM_NAMES_LONGEST_FIRST:
        if text.startswith(name):
            return name
    return None
