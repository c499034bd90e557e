"""The syscall-source field table of Falco 0.44 (libs 0.25 + the bundled container plugin).

One line per field: `name TYPE FLAGS description`. Names, types and flags are
upstream facts (libs' filterchecks and the container plugin's field list); the
descriptions are our own short ones. FLAGS letters ("-" for none):

    F filter only (not in outputs)    P print only       H hidden (table only)
    R argument required               A argument allowed
    I argument is an index            K argument is a key (also `field.KEY`)
    L list-valued                     D deprecated
    T no transformers                 N cannot be compared with another field
"""

from __future__ import annotations

from typing import NamedTuple


class FieldClass(NamedTuple):
    name: str  # as `falco --list` titles it
    shortdesc: str
    desc: str
    table: str


CLASSES: tuple[FieldClass, ...] = (
    FieldClass("evt", "All event types", "Fields every event has, whatever its source.", """
evt.num UINT64 - Event number.
evt.time CHARBUF - Event time with nanoseconds.
evt.time.s CHARBUF - Event time without nanoseconds.
evt.time.iso8601 CHARBUF - Event time in ISO 8601 with nanoseconds and UTC offset.
evt.datetime CHARBUF - Event date and time.
evt.datetime.s CHARBUF - Event date and time without nanoseconds.
evt.rawtime ABSTIME - Event time, nanoseconds since the epoch.
evt.rawtime.s ABSTIME - Seconds part of evt.rawtime.
evt.rawtime.ns ABSTIME - Nanoseconds part of evt.rawtime.
evt.reltime RELTIME - Nanoseconds since the capture started.
evt.reltime.s RELTIME - Seconds part of evt.reltime.
evt.reltime.ns RELTIME - Nanoseconds part of evt.reltime.
evt.pluginname CHARBUF - Plugin that generated the event, for plugin events.
evt.plugininfo CHARBUF - Summary of a plugin event.
evt.source CHARBUF - Event source that produced the event.
evt.is_async BOOL - true for asynchronous events.
evt.asynctype CHARBUF - Type of an asynchronous event.
evt.hostname CHARBUF - Host name (FALCO_HOSTNAME overrides it).
"""),
    FieldClass("evt", "Syscall events only", "Fields of syscall events; single syscall "
               "arguments are reachable with evt.arg.NAME.", """
evt.latency RELTIME D Nanoseconds between the enter and exit events.
evt.latency.s RELTIME D Seconds part of evt.latency.
evt.latency.ns RELTIME D Nanoseconds part of evt.latency.
evt.latency.quantized UINT64 HD Log10 of evt.latency.
evt.latency.human CHARBUF D evt.latency in human form (10.3ms).
evt.deltatime RELTIME - Nanoseconds since the previous event.
evt.deltatime.s RELTIME - Seconds part of evt.deltatime.
evt.deltatime.ns RELTIME - Nanoseconds part of evt.deltatime.
evt.outputtime CHARBUF P Time as selected for outputs.
evt.dir CHARBUF D Direction: '>' enter, '<' exit.
evt.type CHARBUF - Event name, e.g. open.
evt.type.is UINT32 R 1 when the event is of the named type (evt.type.is.open).
syscall.type CHARBUF - Syscall name; unset for non-syscall events.
evt.category CHARBUF - Event category: file, net, memory, process ...
evt.cpu INT16 - CPU that saw the event.
evt.args CHARBUF - All event arguments as one string.
evt.arg CHARBUF R One argument by name (evt.arg.fd) or position (evt.arg[0]), as text.
evt.rawarg DYNAMIC RTN One argument by name, with its raw type (evt.rawarg.res).
evt.info CHARBUF - Event arguments, or a decoded summary for some events.
evt.buffer BYTEBUF - Data buffer of I/O events.
evt.buflen UINT64 - Length of evt.buffer.
evt.res CHARBUF - Return value: SUCCESS or the error code (ENOENT).
evt.rawres INT64 - Return value as a number.
evt.failed BOOL - true when the event returned an error.
evt.is_io BOOL - true for reads and writes on file descriptors.
evt.is_io_read BOOL - true for reads from file descriptors.
evt.is_io_write BOOL - true for writes to file descriptors.
evt.io_dir CHARBUF - r for reads, w for writes.
evt.is_wait BOOL - true for events that make the thread wait.
evt.wait_latency RELTIME D Time spent waiting, in nanoseconds.
evt.is_syslog BOOL - true for writes to /dev/log.
evt.count UINT32 - Always 1.
evt.count.error UINT32 - 1 for events that failed.
evt.count.error.file UINT32 - 1 for failed file events.
evt.count.error.net UINT32 - 1 for failed network events.
evt.count.error.memory UINT32 - 1 for failed memory events.
evt.count.error.other UINT32 - 1 for other failed events.
evt.count.exit UINT32 - 1 for exit events.
evt.count.procinfo UINT32 H 1 for procinfo events of main threads.
evt.count.threadinfo UINT32 H 1 for procinfo events.
evt.around UINT64 FRTN Events within D ms of time T: evt.around[T]=D.
evt.abspath CHARBUF - Absolute path from a dirfd and a name (also evt.abspath.src/.dst).
evt.buflen.in UINT64 H evt.buflen of input events.
evt.buflen.out UINT64 H evt.buflen of output events.
evt.buflen.file UINT64 H evt.buflen of file events.
evt.buflen.file.in UINT64 H evt.buflen of file input events.
evt.buflen.file.out UINT64 H evt.buflen of file output events.
evt.buflen.net UINT64 H evt.buflen of network events.
evt.buflen.net.in UINT64 H evt.buflen of network input events.
evt.buflen.net.out UINT64 H evt.buflen of network output events.
evt.is_open_read BOOL - true for opens for reading.
evt.is_open_write BOOL - true for opens for writing.
evt.infra.docker.name CHARBUF H Docker infrastructure event name.
evt.infra.docker.container.id CHARBUF H Docker infrastructure event container id.
evt.infra.docker.container.name CHARBUF H Docker infrastructure event container name.
evt.infra.docker.container.image CHARBUF H Docker infrastructure event container image.
evt.is_open_exec BOOL - true for opens or creats of files with execute permission.
evt.is_open_create BOOL - true for opens that create a file.
"""),
    FieldClass("process", "", "The process and thread behind the event.", """
proc.exe CHARBUF - First command line argument (argv[0]).
proc.pexe CHARBUF - proc.exe of the parent.
proc.aexe CHARBUF AITN proc.exe of an ancestor: proc.aexe[N], or any ancestor without N.
proc.exepath CHARBUF - Full path of the executable.
proc.pexepath CHARBUF - proc.exepath of the parent.
proc.aexepath CHARBUF AITN proc.exepath of an ancestor: proc.aexepath[N], or any ancestor.
proc.name CHARBUF - Process name (comm, up to 16 characters).
proc.pname CHARBUF - proc.name of the parent.
proc.aname CHARBUF AITN proc.name of an ancestor: proc.aname[N], or any ancestor without N.
proc.args CHARBUF AI Command line arguments after argv[0]; proc.args[N] for one.
proc.aargs CHARBUF AITN proc.args of an ancestor: proc.aargs[N], or any ancestor.
proc.cmdline CHARBUF - proc.name followed by proc.args.
proc.pcmdline CHARBUF - proc.cmdline of the parent.
proc.acmdline CHARBUF AITN proc.cmdline of an ancestor: proc.acmdline[N], or any ancestor.
proc.cmdnargs UINT64 - Number of command line arguments.
proc.cmdlenargs UINT64 - Total length of the command line arguments.
proc.exeline CHARBUF - proc.exe followed by proc.args.
proc.env CHARBUF AK Environment ('A=1 B=2'); proc.env[NAME] for one variable.
proc.aenv CHARBUF AKTN Environment of ancestors: any, proc.aenv[N] or proc.aenv[NAME].
proc.cwd CHARBUF - Current working directory.
proc.loginshellid INT64 - Pid of the oldest shell among the ancestors.
proc.tty UINT32 - Controlling terminal; 0 when there is none.
proc.pid INT64 - Process id.
proc.ppid INT64 - Parent process id.
proc.apid INT64 AITN Pid of an ancestor: proc.apid[N], or any ancestor without N.
proc.vpid INT64 - Process id in its pid namespace.
proc.pvpid INT64 - Parent process id in its pid namespace.
proc.sid INT64 - Session id.
proc.sname CHARBUF - Name of the session leader.
proc.sid.exe CHARBUF - argv[0] of the session leader.
proc.sid.exepath CHARBUF - Executable path of the session leader.
proc.vpgid INT64 - Process group id in the pid namespace.
proc.vpgid.name CHARBUF - Name of the process group leader.
proc.vpgid.exe CHARBUF - argv[0] of the process group leader.
proc.vpgid.exepath CHARBUF - Executable path of the process group leader.
proc.pgid INT64 - Process group id.
proc.pgid.name CHARBUF - Name of the process group leader (host pid namespace).
proc.pgid.exe CHARBUF - argv[0] of the process group leader (host pid namespace).
proc.pgid.exepath CHARBUF - Executable path of the process group leader.
proc.duration RELTIME - Nanoseconds since the process started.
proc.ppid.duration RELTIME - Nanoseconds since the parent started.
proc.pid.ts RELTIME - Process start time, nanoseconds since the epoch.
proc.ppid.ts RELTIME - Parent start time, nanoseconds since the epoch.
proc.is_exe_writable BOOL - true when the executable is writable by its user.
proc.is_exe_upper_layer BOOL - true when the executable is in an overlayfs upper layer.
proc.is_exe_lower_layer BOOL - true when the executable is in an overlayfs lower layer.
proc.is_exe_from_memfd BOOL - true when the executable is a memfd (fileless).
proc.is_sid_leader BOOL - true for the session leader.
proc.is_vpgid_leader BOOL - true for the process group leader (pid namespace).
proc.is_pgid_leader BOOL - true for the process group leader.
proc.exe_ino INT64 - Inode of the executable.
proc.exe_ino.ctime ABSTIME - Change time of the executable.
proc.exe_ino.mtime ABSTIME - Modification time of the executable.
proc.exe_ino.ctime_duration_proc_start ABSTIME - Nanoseconds from executable change to start.
proc.exe_ino.ctime_duration_pidns_start ABSTIME - Nanoseconds from pid namespace start to change.
proc.pidns_init_start_ts UINT64 - Start time of the pid namespace.
thread.cap_permitted CHARBUF - Permitted capabilities.
thread.cap_inheritable CHARBUF - Inheritable capabilities.
thread.cap_effective CHARBUF - Effective capabilities.
proc.fdopencount UINT64 - Open file descriptors.
proc.fdlimit INT64 - Maximum file descriptors.
proc.fdusage DOUBLE - Open over maximum file descriptors.
proc.vmsize UINT64 - Virtual memory, kB.
proc.vmrss UINT64 - Resident memory, kB.
proc.vmswap UINT64 - Swapped memory, kB.
thread.pfmajor UINT64 - Major page faults.
thread.pfminor UINT64 - Minor page faults.
thread.tid INT64 - Thread id.
thread.ismain BOOL - true for the main thread.
thread.vtid INT64 - Thread id in its pid namespace.
thread.nametid CHARBUF H Process name and thread id.
thread.exectime RELTIME - CPU time of the last scheduled thread (switch events).
thread.totexectime RELTIME - Total CPU time of the thread (switch events).
thread.cgroups CHARBUF - All cgroups of the thread.
thread.cgroup CHARBUF R Cgroup of one subsystem: thread.cgroup.cpuacct.
proc.nthreads UINT64 - Alive threads.
proc.nchilds UINT64 - Alive threads other than the leader.
thread.cpu DOUBLE - CPU used in the last second.
thread.cpu.user DOUBLE - User CPU used in the last second.
thread.cpu.system DOUBLE - System CPU used in the last second.
thread.vmsize UINT64 - Virtual memory of the main thread, kB.
thread.vmrss UINT64 - Resident memory of the main thread, kB.
thread.vmsize.b UINT64 H Virtual memory of the main thread, bytes.
thread.vmrss.b UINT64 H Resident memory of the main thread, bytes.
proc.stdin.type CHARBUF - Type of fd 0.
proc.stdout.type CHARBUF - Type of fd 1.
proc.stderr.type CHARBUF - Type of fd 2.
proc.stdin.name CHARBUF - Name of fd 0.
proc.stdout.name CHARBUF - Name of fd 1.
proc.stderr.name CHARBUF - Name of fd 2.
"""),
    FieldClass("user", "", "The user running the process.", """
user.uid UINT32 - User id.
user.name CHARBUF - User name.
user.homedir CHARBUF - Home directory.
user.shell CHARBUF - Login shell.
user.loginuid INT64 - Audit login uid (-1 when unset).
user.loginname CHARBUF - Name of the audit login user.
"""),
    FieldClass("group", "", "The group of the process.", """
group.gid UINT32 - Group id.
group.name CHARBUF - Group name.
"""),
    FieldClass("fd", "", "The file descriptor an event uses.", """
fd.num INT64 - File descriptor number.
fd.type CHARBUF - Type: file, directory, ipv4, ipv6, unix, pipe, event, memfd ...
fd.typechar CHARBUF - Type as one character: f, 4, 6, u, p ...
fd.name CHARBUF - Full name: a file path or a connection tuple.
fd.directory CHARBUF - Directory of a file.
fd.filename CHARBUF - File name without the directory.
fd.ip IPADDR FTN Client or server IP address.
fd.cip IPADDR - Client IP address.
fd.sip IPADDR - Server IP address.
fd.lip IPADDR - Local IP address.
fd.rip IPADDR - Remote IP address.
fd.port PORT FTN Client or server port.
fd.cport PORT - Client port.
fd.sport PORT - Server port.
fd.lport PORT - Local port.
fd.rport PORT - Remote port.
fd.l4proto CHARBUF - IP protocol: tcp, udp, icmp or raw.
fd.sockfamily CHARBUF - Socket family: ip or unix.
fd.is_server BOOL - true when the process is the server end.
fd.uid CHARBUF - File descriptor number and thread id.
fd.containername CHARBUF - Container id and fd name.
fd.containerdirectory CHARBUF - Container id and directory.
fd.proto PORT FTN Client or server protocol (port).
fd.cproto CHARBUF - Client protocol.
fd.sproto CHARBUF - Server protocol.
fd.lproto CHARBUF - Local protocol.
fd.rproto CHARBUF - Remote protocol.
fd.net IPNET FTN Client or server IP network.
fd.cnet IPNET FTN Client IP network.
fd.snet IPNET FTN Server IP network.
fd.lnet IPNET FTN Local IP network.
fd.rnet IPNET FTN Remote IP network.
fd.connected BOOL - true for connected sockets.
fd.name_changed BOOL - true when the event changed the fd name.
fd.cip.name CHARBUF TN Domain name of the client IP.
fd.sip.name CHARBUF TN Domain name of the server IP.
fd.lip.name CHARBUF TN Domain name of the local IP.
fd.rip.name CHARBUF TN Domain name of the remote IP.
fd.dev INT32 - Device number of the file.
fd.dev.major INT32 - Major device number.
fd.dev.minor INT32 - Minor device number.
fd.ino INT64 - Inode of the file.
fd.nameraw CHARBUF - File path as passed to the syscall.
fd.types CHARBUF LAIN Types of the open fds; fd.types[N] for one fd.
fd.is_upper_layer BOOL - true when the file is in an overlayfs upper layer.
fd.is_lower_layer BOOL - true when the file is in an overlayfs lower layer.
"""),
    FieldClass("fs.path", "", "Paths of filesystem syscalls, with or without fds.", """
fs.path.name CHARBUF - Resolved path the syscall works on.
fs.path.nameraw CHARBUF - Path as passed to the syscall.
fs.path.source CHARBUF - Resolved source path of two-path syscalls.
fs.path.sourceraw CHARBUF - Source path as passed.
fs.path.target CHARBUF - Resolved target path of two-path syscalls.
fs.path.targetraw CHARBUF - Target path as passed.
"""),
    FieldClass("util", "", "Utility fields.", """
util.cnt UINT64 H Incremental counter.
"""),
    FieldClass("fdlist", "", "The fd list of poll events.", """
fdlist.nums CHARBUF - Comma-separated fd numbers.
fdlist.names CHARBUF - Comma-separated fd names.
fdlist.cips CHARBUF - Comma-separated client IPs.
fdlist.sips CHARBUF - Comma-separated server IPs.
fdlist.cports CHARBUF - Comma-separated client ports.
fdlist.sports CHARBUF - Comma-separated server ports.
"""),
    FieldClass("container", "plugin", "Container and pod metadata (the container plugin).", """
container.id CHARBUF - Container id (12 characters), or 'host'.
container.full_id CHARBUF - Full container id.
container.name CHARBUF - Container name, or 'host'.
container.image CHARBUF - Image name with tag.
container.image.id CHARBUF - Image id.
container.type CHARBUF - Container type: docker, containerd, cri-o ...
container.privileged BOOL - true for privileged containers.
container.mounts CHARBUF - Mounts as 'source:dest:mode:rdwr:propagation' items.
container.mount CHARBUF RIK One mount, by index or source path.
container.mount.source CHARBUF RIK Source of a mount, by index or destination.
container.mount.dest CHARBUF RIK Destination of a mount, by index or source.
container.mount.mode CHARBUF RIK Mode of a mount.
container.mount.rdwr CHARBUF RIK Read/write flag of a mount.
container.mount.propagation CHARBUF RIK Propagation of a mount.
container.image.repository CHARBUF - Image repository.
container.image.tag CHARBUF - Image tag.
container.image.digest CHARBUF - Image digest.
container.healthcheck CHARBUF D Health check command.
container.liveness_probe CHARBUF D Liveness probe command.
container.readiness_probe CHARBUF D Readiness probe command.
container.start_ts ABSTIME - Container start time.
container.duration RELTIME - Nanoseconds since the container started.
container.ip CHARBUF - Primary IP address.
container.cni.json CHARBUF - CNI result as JSON.
container.host_pid BOOL - true when in the host pid namespace.
container.host_network BOOL - true when in the host network namespace.
container.host_ipc BOOL - true when in the host IPC namespace.
container.label CHARBUF RK One container label: container.label[KEY] or container.label.KEY.
container.labels CHARBUF - All labels, 'k1:v1,k2:v2'.
proc.is_container_healthcheck BOOL D true when the process is a health check.
proc.is_container_liveness_probe BOOL D true when the process is a liveness probe.
proc.is_container_readiness_probe BOOL D true when the process is a readiness probe.
k8s.pod.name CHARBUF - Pod name.
k8s.ns.name CHARBUF - Namespace name.
k8s.pod.id CHARBUF - Pod UID (legacy name).
k8s.pod.uid CHARBUF - Pod UID.
k8s.pod.sandbox_id CHARBUF - Pod sandbox id (12 characters).
k8s.pod.full_sandbox_id CHARBUF - Full pod sandbox id.
k8s.pod.label CHARBUF RK One pod label: k8s.pod.label[KEY] or k8s.pod.label.KEY.
k8s.pod.labels CHARBUF - All pod labels, 'k1:v1,k2:v2'.
k8s.pod.ip CHARBUF - Pod IP address.
k8s.pod.cni.json CHARBUF - Pod CNI result as JSON.
k8s.rc.name CHARBUF D Replication controller name.
k8s.rc.id CHARBUF D Replication controller id.
k8s.rc.label CHARBUF RKD One replication controller label.
k8s.rc.labels CHARBUF D Replication controller labels.
k8s.svc.name CHARBUF D Service name.
k8s.svc.id CHARBUF D Service id.
k8s.svc.label CHARBUF RKD One service label.
k8s.svc.labels CHARBUF D Service labels.
k8s.ns.id CHARBUF D Namespace id.
k8s.ns.label CHARBUF RKD One namespace label.
k8s.ns.labels CHARBUF D Namespace labels.
k8s.rs.name CHARBUF D Replica set name.
k8s.rs.id CHARBUF D Replica set id.
k8s.rs.label CHARBUF RKD One replica set label.
k8s.rs.labels CHARBUF D Replica set labels.
k8s.deployment.name CHARBUF D Deployment name.
k8s.deployment.id CHARBUF D Deployment id.
k8s.deployment.label CHARBUF RKD One deployment label.
k8s.deployment.labels CHARBUF D Deployment labels.
"""),
)
