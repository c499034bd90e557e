"""`cks-lab scenario new`: a small, valid scenario skeleton for an instructor to fill in.

The skeleton loads and validates as it is (`cks-lab scenario validate`), so the
author starts from something the lab accepts and changes it step by step. Its
reference solution is deliberately unfinished (TODO), so `cks-lab scenario test`
fails and says what is missing until the author has written it. The texts are
written for the skeleton; no bundled scenario is copied.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from lab.errors import LabError
from lab.scenarios import SCENARIO_FILE

SKILLS = ("falco", "audit-logging", "apparmor")
TODO = "TODO"

# --- falco ------------------------------------------------------------------------

_FALCO_SCENARIO = """\
# A scenario skeleton made by `cks-lab scenario new --skill falco`.
# Reference: docs/scenario-format.md. Replace every TODO, then run
#   cks-lab scenario validate DIR    (the format and the checks' parameters)
#   cks-lab scenario test DIR        (the solution passes, the untouched state fails)
# where DIR is this folder as a path with a "/" (./__ID__).
apiVersion: cks-lab/v1
id: __ID__
title: "TODO: a one-line title, e.g. Alert on reads of the app's credentials"
skills: [falco]
domain: monitoring-logging-runtime-security
difficulty: medium
minutes: 15
weight: 5
briefing: |
  TODO: the situation as the learner meets it: which pods run where, what
  the security team wants to be alerted on, and which files may be changed.

  Falco runs on node `worker` with `/etc/falco/falco.yaml`; it loads the
  default rules `/etc/falco/falco_rules.yaml`, then
  `/etc/falco/falco_rules.local.yaml`. Here its alerts are in
  `.lab/logs/falco-worker.log` of the workspace after each `cks-lab check`.

cluster:
  kind_config: audit.yaml
  nodes:
    - name: controlplane
      role: control-plane
    - name: worker
      role: worker

setup:
  manifests: [manifests/workload.yaml]
  files:
    - {node: worker, path: /etc/falco/falco.yaml, asset: falco/falco.yaml}
    - {node: worker, path: /etc/falco/falco_rules.yaml, asset: falco/falco_rules.yaml}
    - {node: worker, path: /etc/falco/falco_rules.local.yaml, asset: falco/falco_rules.local.yaml}
  pods:
    # What the sim backend needs to know of the pods manifests/workload.yaml creates.
    - name: app
      namespace: __ID__
      node: worker
      labels: {app: app}
      containers:
        - name: app
          image: busybox:1.36
          command: [sleep, infinity]

attack:
  # TODO: the attack the learner's rule must catch.
  - id: suspicious
    description: "TODO: what the attacker does, in a few words (explanations quote it)"
    exec:
      namespace: __ID__
      pod: app
      container: app
      command: [cat, /app/credentials]
    effects:
      processes: [cat /app/credentials]
      reads: [/app/credentials]
  # TODO: what the pod does anyway; the rule must stay quiet on it.
  - id: benign
    description: "TODO: the pod's own work, which must raise no alert"
    workload:
      namespace: __ID__
      pod: app
      container: app
    effects:
      reads: [/etc/hostname]

tasks:
  - id: write-rule
    title: "TODO: what the learner does, in one line"
    statement: |
      TODO: the task as the exam would word it. On node `worker`, add a rule
      to `/etc/falco/falco_rules.local.yaml`:

      - name: `TODO rule name` (the checks below name it too);
      - priority: `WARNING`;
      - it alerts on TODO, and not on TODO.
    hints:
      - text: "TODO: a first hint; each costs `penalty` points of this task."
        penalty: 1
    solution:
      notes: |
        TODO: why the reference solution works, shown after the learner asks
        for the solution.
      files:
        - node: worker
          path: /etc/falco/falco_rules.local.yaml
          source: solution/falco_rules.local.yaml
      commands:
        - vim /etc/falco/falco_rules.local.yaml
    checks:
      - type: falco_rules_load
      - type: falco_alert
        step: suspicious
        rule: TODO rule name
        priority: warning
        points: 2
      - type: falco_no_alert
        step: benign
        rule: TODO rule name
"""

_FALCO_WORKLOAD = """\
# The pod of __ID__ as the kind backend creates it; setup.pods in scenario.yaml
# describes the same pod for the sim backend. TODO: your workload.
apiVersion: v1
kind: Namespace
metadata:
  name: __ID__
---
apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: __ID__
  labels: {app: app}
spec:
  containers:
    - name: app
      image: busybox:1.36
      command: [sleep, infinity]
"""

_FALCO_SOLUTION = """\
# TODO: the reference solution, the whole file /etc/falco/falco_rules.local.yaml
# as a learner who solved the task leaves it. Until the rule named in the
# checks is here, `cks-lab scenario test` reports that the solution fails.
#
# - rule: TODO rule name
#   desc: TODO
#   condition: TODO
#   output: TODO (user=%user.name command=%proc.cmdline pod=%k8s.pod.name)
#   priority: WARNING
"""

# --- audit-logging -----------------------------------------------------------------

_AUDIT_SCENARIO = """\
# A scenario skeleton made by `cks-lab scenario new --skill audit-logging`.
# Reference: docs/scenario-format.md. Replace every TODO, then run
#   cks-lab scenario validate DIR    (the format and the checks' parameters)
#   cks-lab scenario test DIR        (the solution passes, the untouched state fails)
# where DIR is this folder as a path with a "/" (./__ID__).
apiVersion: cks-lab/v1
id: __ID__
title: "TODO: a one-line title, e.g. Audit who reads the Secrets"
skills: [audit-logging]
domain: monitoring-logging-runtime-security
difficulty: medium
minutes: 15
weight: 5
briefing: |
  TODO: the situation as the learner meets it: what the security team wants
  to see in the audit log, and which files may be changed.

  Auditing is on: the kube-apiserver (a static pod on node `controlplane`)
  uses the policy `/etc/kubernetes/audit/policy.yaml` and writes
  `/var/log/kubernetes/audit/audit.log`. `cks-lab check` restarts it.

cluster:
  # the kind cluster starts with auditing on, as files/kube-apiserver.yaml says
  kind_config: audit-enabled.yaml
  nodes:
    - name: controlplane
      role: control-plane
    - name: worker
      role: worker

setup:
  manifests: [manifests/workload.yaml]
  files:
    - node: controlplane
      path: /etc/kubernetes/manifests/kube-apiserver.yaml
      source: files/kube-apiserver.yaml
      mode: 0600
    - node: controlplane
      path: /etc/kubernetes/audit/policy.yaml
      source: files/policy.yaml

attack:
  # TODO: the API requests of the attack; checks name them by id.
  - id: read-secret
    description: "TODO: who does what, in a few words (explanations quote it)"
    api:
      user: system:serviceaccount:__ID__:app
      groups: [system:serviceaccounts, "system:serviceaccounts:__ID__", system:authenticated]
      verb: get
      resource: secrets
      namespace: __ID__
      name: app-credentials
  - id: routine-watch
    description: "TODO: a routine request the policy must leave out of the log"
    api:
      user: system:kube-proxy
      groups: [system:authenticated]
      verb: watch
      api_group: discovery.k8s.io
      resource: endpointslices

tasks:
  - id: write-policy
    title: "TODO: what the learner does, in one line"
    statement: |
      TODO: the task as the exam would word it. Change the audit policy
      `/etc/kubernetes/audit/policy.yaml` on `controlplane` so that:

      - reads of Secrets in namespace `__ID__` are logged at `Metadata`;
      - TODO.
    hints:
      - text: "TODO: a first hint; each costs `penalty` points of this task."
        penalty: 1
    solution:
      notes: |
        TODO: why the reference solution works, shown after the learner asks
        for the solution.
      files:
        - node: controlplane
          path: /etc/kubernetes/audit/policy.yaml
          source: solution/policy.yaml
      commands:
        - vim /etc/kubernetes/audit/policy.yaml
    checks:
      - type: audit_policy_valid
      - type: audit_logged
        step: read-secret
        level: Metadata
        points: 2
      - type: audit_not_logged
        step: routine-watch
"""

_AUDIT_WORKLOAD = """\
# What the kind backend creates for __ID__. TODO: your workload.
apiVersion: v1
kind: Namespace
metadata:
  name: __ID__
---
apiVersion: v1
kind: Secret
metadata:
  name: app-credentials
  namespace: __ID__
stringData:
  password: not-a-real-password
"""

_AUDIT_POLICY = """\
# The audit policy the learner starts from. TODO: make it the starting point
# your task needs; this one logs nothing.
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
"""

_AUDIT_SOLUTION = """\
# TODO: the reference solution, the whole file /etc/kubernetes/audit/policy.yaml
# as a learner who solved the task leaves it. Until it logs what the checks
# ask for, `cks-lab scenario test` reports that the solution fails.
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
"""

# A kubeadm-style static pod with auditing on, matching kind-configs/audit-enabled.yaml.
_APISERVER = """\
# kube-apiserver as kubeadm writes it, with auditing on (kind-configs/audit-enabled.yaml).
apiVersion: v1
kind: Pod
metadata:
  labels:
    component: kube-apiserver
    tier: control-plane
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=172.18.0.2
    - --allow-privileged=true
    - --audit-policy-file=/etc/kubernetes/audit/policy.yaml
    - --audit-log-path=/var/log/kubernetes/audit/audit.log
    - --audit-log-maxage=10
    - --audit-log-maxbackup=2
    - --audit-log-maxsize=100
    - --authorization-mode=Node,RBAC
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --enable-admission-plugins=NodeRestriction
    - --etcd-servers=https://127.0.0.1:2379
    - --secure-port=6443
    - --service-account-issuer=https://kubernetes.default.svc.cluster.local
    - --service-account-key-file=/etc/kubernetes/pki/sa.pub
    - --service-account-signing-key-file=/etc/kubernetes/pki/sa.key
    - --service-cluster-ip-range=10.96.0.0/16
    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt
    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key
    image: registry.k8s.io/kube-apiserver:v1.36.0
    name: kube-apiserver
    volumeMounts:
    - mountPath: /etc/kubernetes/audit/policy.yaml
      name: audit-policy
      readOnly: true
    - mountPath: /var/log/kubernetes/audit
      name: audit-log
    - mountPath: /etc/kubernetes/pki
      name: k8s-certs
      readOnly: true
  hostNetwork: true
  priorityClassName: system-node-critical
  volumes:
  - hostPath:
      path: /etc/kubernetes/audit/policy.yaml
      type: File
    name: audit-policy
  - hostPath:
      path: /var/log/kubernetes/audit
      type: DirectoryOrCreate
    name: audit-log
  - hostPath:
      path: /etc/kubernetes/pki
      type: DirectoryOrCreate
    name: k8s-certs
"""

# --- apparmor -----------------------------------------------------------------------

_APPARMOR_SCENARIO = """\
# A scenario skeleton made by `cks-lab scenario new --skill apparmor`.
# Reference: docs/scenario-format.md. Replace every TODO, then run
#   cks-lab scenario validate DIR    (the format and the checks' parameters)
#   cks-lab scenario test DIR        (the solution passes, the untouched state fails)
# where DIR is this folder as a path with a "/" (./__ID__).
apiVersion: cks-lab/v1
id: __ID__
title: "TODO: a one-line title, e.g. Keep the app from writing outside /tmp"
skills: [apparmor]
domain: system-hardening
difficulty: medium
minutes: 15
weight: 5
briefing: |
  TODO: the situation as the learner meets it: which pod, what it must keep
  doing, what it must no longer be able to do.

  Profiles live on the node that runs the pod, `worker` (here the folder
  `nodes/worker/` of the workspace; load one with
  `cks-lab node exec worker -- apparmor_parser -r FILE`). The pod's manifest
  is `/root/app.yaml` on `controlplane`; every `cks-lab check` applies it.

cluster:
  kind_config: audit.yaml
  nodes:
    - name: controlplane
      role: control-plane
    - name: worker
      role: worker

setup:
  manifests: [manifests/app.yaml]
  files:
    - node: controlplane
      path: /root/app.yaml
      source: manifests/app.yaml
  pods:
    # What the sim backend needs to know of the pod; the learner edits its manifest.
    - name: app
      namespace: __ID__
      node: worker
      containers:
        - name: app
          image: busybox:1.36
          command: [sleep, infinity]
      manifest: {node: controlplane, path: /root/app.yaml}

attack:
  # TODO: what the profile must deny.
  - id: tamper
    description: "TODO: what the attacker does, in a few words (explanations quote it)"
    exec:
      namespace: __ID__
      pod: app
      container: app
      command: [sh, -c, "echo x >> /etc/passwd"]
    effects:
      processes: ["sh -c 'echo x >> /etc/passwd'"]
      writes: [/etc/passwd]
  # TODO: what the pod must keep doing.
  - id: keeps-working
    description: "TODO: the pod's own work, which the profile must allow"
    workload:
      namespace: __ID__
      pod: app
      container: app
    effects:
      reads: [/etc/hostname]

tasks:
  - id: confine
    title: "TODO: what the learner does, in one line"
    statement: |
      TODO: the task as the exam would word it. On node `worker`, write the
      AppArmor profile `__PROFILE__` to `/etc/apparmor.d/__PROFILE__`, load it
      in enforce mode, and run the pod `app` confined by it.
    hints:
      - text: "TODO: a first hint; each costs `penalty` points of this task."
        penalty: 1
    solution:
      notes: |
        TODO: why the reference solution works, shown after the learner asks
        for the solution.
      files:
        - node: worker
          path: /etc/apparmor.d/__PROFILE__
          source: solution/__PROFILE__
        - node: controlplane
          path: /root/app.yaml
          source: solution/app.yaml
      node_exec:
        - node: worker
          command: apparmor_parser -r /etc/apparmor.d/__PROFILE__
      commands:
        - apparmor_parser -r /etc/apparmor.d/__PROFILE__
        - kubectl replace --force -f /root/app.yaml
    checks:
      - type: apparmor_profile_loaded
        node: worker
        profile: __PROFILE__
        mode: enforce
      - type: apparmor_pod_confined
        pod: app
        namespace: __ID__
        profile: __PROFILE__
        mode: enforce
      - type: apparmor_denied
        step: tamper
        points: 2
      - type: apparmor_allowed
        step: keeps-working
"""

_APPARMOR_POD = """\
# The pod of __ID__, not confined yet. TODO: your workload.
apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: __ID__
spec:
  containers:
    - name: app
      image: busybox:1.36
      command: [sleep, infinity]
"""

_APPARMOR_POD_SOLUTION = """\
# The pod of __ID__, confined by __PROFILE__ (the reference solution).
apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: __ID__
spec:
  securityContext:
    appArmorProfile:
      type: Localhost
      localhostProfile: __PROFILE__
  containers:
    - name: app
      image: busybox:1.36
      command: [sleep, infinity]
"""

_APPARMOR_PROFILE = """\
# TODO: the reference solution's profile. It loads, but it allows every file
# access, so the attack is not denied yet and `cks-lab scenario test` reports
# that the solution fails: add the rules the task asks for.
#include <tunables/global>

profile __PROFILE__ flags=(attach_disconnected) {
  #include <abstractions/base>

  file,
}
"""


def _templates(skill: str) -> dict[str, str]:
    if skill == "falco":
        return {
            SCENARIO_FILE: _FALCO_SCENARIO,
            "manifests/workload.yaml": _FALCO_WORKLOAD,
            "solution/falco_rules.local.yaml": _FALCO_SOLUTION,
        }
    if skill == "audit-logging":
        return {
            SCENARIO_FILE: _AUDIT_SCENARIO,
            "manifests/workload.yaml": _AUDIT_WORKLOAD,
            "files/kube-apiserver.yaml": _APISERVER,
            "files/policy.yaml": _AUDIT_POLICY,
            "solution/policy.yaml": _AUDIT_SOLUTION,
        }
    if skill == "apparmor":
        return {
            SCENARIO_FILE: _APPARMOR_SCENARIO,
            "manifests/app.yaml": _APPARMOR_POD,
            "solution/app.yaml": _APPARMOR_POD_SOLUTION,
            "solution/__PROFILE__": _APPARMOR_PROFILE,
        }
    raise LabError(f"no skeleton for skill {skill!r} (skills: {', '.join(SKILLS)})")


def check_id(scenario_id: str) -> None:
    """A LabError unless `scenario_id` is a scenario id (it becomes a folder name)."""
    if "/" in scenario_id or (os.altsep is not None and os.altsep in scenario_id):
        raise LabError(
            f"{scenario_id!r} is a path; give the id alone and the folder to create it in "
            "with --dir",
            item="ID",
        )
    from lab.scenarios.model import ID_RE  # the model loads only for `scenario new`

    if not re.fullmatch(ID_RE, scenario_id):
        raise LabError(
            f"{scenario_id!r} is not a scenario id: lowercase letters, digits and '-', "
            "1-63 characters, starting and ending with a letter or digit",
            item="ID",
        )


def skeleton_files(scenario_id: str, skill: str) -> dict[str, str]:
    """The skeleton's files, by path relative to the scenario folder."""
    check_id(scenario_id)
    profile = f"k8s-{scenario_id}"[:63]  # an AppArmor profile name for the task
    return {
        rel.replace("__PROFILE__", profile): text.replace("__ID__", scenario_id).replace(
            "__PROFILE__", profile
        )
        for rel, text in _templates(skill).items()
    }


def new_scenario(parent: Path, scenario_id: str, skill: str) -> Path:
    """Create `parent/scenario_id` holding a skeleton for `skill`; its path.

    The folder appears whole or not at all: it is written beside its place and
    renamed. An existing file or folder (or symlink) of that name is refused.
    """
    files = skeleton_files(scenario_id, skill)
    if not parent.is_dir():
        raise LabError("no such folder to create the scenario in", file=str(parent))
    target = parent / scenario_id
    if os.path.lexists(target):
        raise LabError("already exists; pick another id or remove it first", file=str(target))
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{scenario_id}.", suffix=".tmp"))
    try:
        for rel, text in files.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if os.path.lexists(target):  # appeared meanwhile: never rename over it
            raise LabError("already exists; pick another id or remove it first", file=str(target))
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


# --- what is left to do -------------------------------------------------------------

_TODO_RE = re.compile(r"\bTODO\b")
_TODO_MAX_BYTES = 1024 * 1024  # scenario files are small; a bigger one is not the author's text


def todo_markers(folder: Path) -> list[tuple[str, int]]:
    """(file relative to `folder`, line) of every TODO left in its text files, sorted.

    A skeleton passes validation on purpose, so a TODO is how an unfinished one is
    told from a finished one. Binary, huge and hidden files are skipped."""
    found: list[tuple[str, int]] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            try:
                if path.stat().st_size > _TODO_MAX_BYTES:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            if b"\x00" in data[:8192]:
                continue
            text = data.decode("utf-8", errors="replace")
            rel = path.relative_to(folder).as_posix()
            found.extend(
                (rel, n) for n, line in enumerate(text.splitlines(), 1) if _TODO_RE.search(line)
            )
    return sorted(found)


def todo_summary(markers: list[tuple[str, int]], limit: int = 8) -> str:
    """`TODO markers left: scenario.yaml:35, ...` (the first `limit`, then how many more)."""
    shown = ", ".join(f"{f}:{n}" for f, n in markers[:limit])
    more = f" and {len(markers) - limit} more" if len(markers) > limit else ""
    return f"TODO markers left: {shown}{more}"
