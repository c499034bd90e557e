"""The bundled AppArmor scenarios against learners' answers.

`cks-lab scenario test` proves that the reference solutions pass and the untouched
workspaces fail. This file holds what a learner would really do instead: each row
is one answer -- the node files it writes or edits on top of the untouched
workspace (or on top of the reference solution, with `base: solved`), then the
node commands it runs (`apparmor_parser ...`) -- and exactly the checks it fails,
with words the explanation must hold so the learner can act on it. Every check not
listed must pass, so a row also proves that a mistake is not blamed on the wrong
check; right answers other than the reference have an empty `fails`.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from learner_answers import assert_fails_as_listed, case_param, edit_files, write_files

from lab import service
from lab.backends.sim import SimBackend
from lab.grading.grader import grade
from lab.grading.results import ScenarioResult
from lab.paths import bundled_scenarios_dir
from lab.scenarios.loader import LoadedScenario, load_scenario
from lab.service import Opened
from lab.workspace import Workspace, create_workspace

# A profile several rows write.
DENY_WRITE = """\
#include <tunables/global>
profile k8s-deny-write flags=(attach_disconnected) {
  #include <abstractions/base>
  file,
  deny /** w,
}
"""
PROFILES = {"@deny_write": DENY_WRITE}

# Rows: name, scenario, base (untouched, or solved: the reference solution's files,
# nothing loaded), then in this order: write {node: {path: text or @profile}},
# edit {node: {path: [[regex, new text or "@pod_profile NAME"]]}}, run [[node, command]
# or [node, command, exit status]], then_write (files written after the commands);
# fails [{check: {type, params...}, says: [...]}], and xfail (a known lab gap, by reason).
CASES: list[dict[str, Any]] = yaml.safe_load(
    r"""
# --- apparmor-deny-write ---------------------------------------------------------
- name: profile written and pod changed, but the profile never loaded
  scenario: apparmor-deny-write
  write:
    worker: {/etc/apparmor.d/k8s-deny-write: "@deny_write"}
  edit: &hello_confined
    controlplane:
      /root/hello-apparmor.yaml:
        - ["spec:\n", "@pod_profile k8s-deny-write"]
  fails:
    - check: {type: apparmor_profile_loaded}
      says: ["written in /etc/apparmor.d/k8s-deny-write on node worker but was never loaded",
             "apparmor_parser -r /etc/apparmor.d/k8s-deny-write"]
    - check: {type: apparmor_pod_confined}
      says: ["CreateContainerError", "apparmor profile not found k8s-deny-write",
             "was never loaded"]
    - check: {type: apparmor_denied, step: touch-tmp}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: backdoor-user}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: plant-ssh-key}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: read-profile}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: container-sleeps}
      says: ["could not run"]

- name: deny /** w without file, denies reading and running programs too
  scenario: apparmor-deny-write
  write:
    worker:
      /etc/apparmor.d/k8s-deny-write: |
        #include <tunables/global>
        profile k8s-deny-write flags=(attach_disconnected) {
          #include <abstractions/base>
          deny /** w,
        }
  edit: *hello_confined
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  fails:
    - check: {type: apparmor_allowed, step: read-profile}
      says: ["read of /proc/1/attr/current was DENIED", "no rule allows read",
             "the workload needs it"]
    - check: {type: apparmor_allowed, step: container-sleeps}
      says: ["exec of /bin/sleep was DENIED", "no rule allows exec"]

- name: only /tmp denied, the tutorial's test and nothing more
  scenario: apparmor-deny-write
  write:
    worker:
      /etc/apparmor.d/k8s-deny-write: |
        #include <tunables/global>
        profile k8s-deny-write flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          deny /tmp/** w,
        }
  edit: *hello_confined
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  fails:
    - check: {type: apparmor_denied, step: backdoor-user}
      says: ["write of /etc/passwd was ALLOWED", "`file,` allows write",
             "the task wants it denied"]
    - check: {type: apparmor_denied, step: plant-ssh-key}
      says: ["write of /root/.ssh/authorized_keys was ALLOWED", "`file,` allows write",
             "the task wants it denied"]

- name: writes denied in /tmp and /etc only, the two places the attack was seen writing
  scenario: apparmor-deny-write
  write:
    worker:
      /etc/apparmor.d/k8s-deny-write: |
        #include <tunables/global>
        profile k8s-deny-write flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          deny /tmp/** w,
          deny /etc/** w,
        }
  edit: *hello_confined
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  fails:
    - check: {type: apparmor_denied, step: plant-ssh-key}
      says: ["write of /root/.ssh/authorized_keys was ALLOWED", "`file,` allows write"]

- name: loaded in complain mode with -C (its deny rule still denies)
  scenario: apparmor-deny-write
  write:
    worker: {/etc/apparmor.d/k8s-deny-write: "@deny_write"}
  edit: *hello_confined
  run: [[worker, apparmor_parser -C -r /etc/apparmor.d/k8s-deny-write]]
  fails:
    - check: {type: apparmor_profile_loaded}
      says: ["in complain mode; the task wants enforce mode", "load it again without -C"]
    - check: {type: apparmor_pod_confined}
      says: ["complain mode only logs what the profile would deny, it blocks nothing"]

- name: flags=(complain) left in the profile
  scenario: apparmor-deny-write
  write:
    worker:
      /etc/apparmor.d/k8s-deny-write: |
        #include <tunables/global>
        profile k8s-deny-write flags=(attach_disconnected,complain) {
          #include <abstractions/base>
          file,
          deny /** w,
        }
  edit: *hello_confined
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  fails:
    - check: {type: apparmor_profile_loaded}
      says: ["remove `complain` from the profile's flags=(...)"]
    - check: {type: apparmor_pod_confined}
      says: ["in complain mode"]

- name: profile loaded on controlplane, where the pod does not run
  scenario: apparmor-deny-write
  write:
    controlplane: {/etc/apparmor.d/k8s-deny-write: "@deny_write"}
  edit: *hello_confined
  run: [[controlplane, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  fails:
    - check: {type: apparmor_profile_loaded}
      says: ["it is loaded on node controlplane, not on node worker",
             "a profile must be loaded on the node where the pod runs"]
    - check: {type: apparmor_pod_confined}
      says: ["apparmor profile not found k8s-deny-write", "loaded on node controlplane"]
    - check: {type: apparmor_denied, step: touch-tmp}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: backdoor-user}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: plant-ssh-key}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: read-profile}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: container-sleeps}
      says: ["could not run"]

- name: the profile file's path as localhostProfile
  scenario: apparmor-deny-write
  write:
    worker: {/etc/apparmor.d/k8s-deny-write: "@deny_write"}
  edit:
    controlplane:
      /root/hello-apparmor.yaml:
        - ["spec:\n", "@pod_profile /etc/apparmor.d/k8s-deny-write"]
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  fails:
    - check: {type: apparmor_pod_confined}
      says: ["apparmor profile not found /etc/apparmor.d/k8s-deny-write",
             "the profile it defines is named k8s-deny-write",
             "containerd looks for a loaded profile named exactly /etc/apparmor.d/k8s-deny-write",
             "set localhostProfile: k8s-deny-write"]
    - check: {type: apparmor_denied, step: touch-tmp}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: backdoor-user}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: plant-ssh-key}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: read-profile}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: container-sleeps}
      says: ["could not run"]

- name: RuntimeDefault instead of the profile
  scenario: apparmor-deny-write
  write:
    worker: {/etc/apparmor.d/k8s-deny-write: "@deny_write"}
  edit:
    controlplane:
      /root/hello-apparmor.yaml:
        - - "spec:\n"
          - |
            spec:
              securityContext:
                appArmorProfile: {type: RuntimeDefault}
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  fails:
    - check: {type: apparmor_pod_confined}
      says: ["containerd's default profile cri-containerd.apparmor.d",
             "the task wants profile k8s-deny-write: set securityContext.appArmorProfile",
             "to type Localhost, localhostProfile k8s-deny-write"]
    - check: {type: apparmor_denied, step: touch-tmp}
      says: ["write of /tmp/test was ALLOWED", "containerd's default profile"]
    - check: {type: apparmor_denied, step: backdoor-user}
      says: ["write of /etc/passwd was ALLOWED"]
    - check: {type: apparmor_denied, step: plant-ssh-key}
      says: ["write of /root/.ssh/authorized_keys was ALLOWED"]

- name: the profile fixed after loading, but not loaded again
  scenario: apparmor-deny-write
  write:
    worker:
      /etc/apparmor.d/k8s-deny-write: |
        #include <tunables/global>
        profile k8s-deny-write flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          deny /tmp/** w,
        }
  edit: *hello_confined
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  then_write:
    worker: {/etc/apparmor.d/k8s-deny-write: "@deny_write"}
  fails:
    - check: {type: apparmor_denied, step: backdoor-user}
      says: ["write of /etc/passwd was ALLOWED: line 4 `file,` allows write",
             "`file,` allows write — in the profile as you loaded it;",
             "/etc/apparmor.d/k8s-deny-write has changed since: reload it",
             "apparmor_parser -r /etc/apparmor.d/k8s-deny-write"]
    - check: {type: apparmor_denied, step: plant-ssh-key}
      says: ["write of /root/.ssh/authorized_keys was ALLOWED: line 4 `file,` allows write",
             "`file,` allows write — in the profile as you loaded it;",
             "/etc/apparmor.d/k8s-deny-write has changed since: reload it",
             "apparmor_parser -r /etc/apparmor.d/k8s-deny-write"]

- name: right too - the deprecated annotation instead of the field
  scenario: apparmor-deny-write
  write:
    worker: {/etc/apparmor.d/k8s-deny-write: "@deny_write"}
  edit:
    controlplane:
      /root/hello-apparmor.yaml:
        - - "  namespace: default\n"
          - |2
              namespace: default
              annotations:
                container.apparmor.security.beta.kubernetes.io/hello: localhost/k8s-deny-write
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-write]]
  fails: []

- name: right too - the field on the container, loaded with -a
  scenario: apparmor-deny-write
  write:
    worker: {/etc/apparmor.d/k8s-deny-write: "@deny_write"}
  edit:
    controlplane:
      /root/hello-apparmor.yaml:
        - - "      image: busybox:1.28\n"
          - |2
                  image: busybox:1.28
                  securityContext:
                    appArmorProfile: {type: Localhost, localhostProfile: k8s-deny-write}
  run: [[worker, apparmor_parser -a /etc/apparmor.d/k8s-deny-write]]
  fails: []

# --- apparmor-load-profile -------------------------------------------------------
- name: profile loaded, but the Deployment still names the file
  scenario: apparmor-load-profile
  run: [[worker, apparmor_parser -r /etc/apparmor.d/usr.sbin.nginx]]
  fails:
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-4xk2p}
      says: ["apparmor profile not found usr.sbin.nginx",
             "/etc/apparmor.d/usr.sbin.nginx is a file",
             "the profile it defines is named restricted-nginx"]
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-9wz7m}
      says: ["the profile it defines is named restricted-nginx"]
    - check: {type: apparmor_denied, step: deface}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: read-shadow}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: nginx-starts}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: nginx-serves}
      says: ["could not run"]

- name: Deployment fixed, but the profile not loaded
  scenario: apparmor-load-profile
  edit: &frontend_fixed
    controlplane:
      /root/frontend.yaml: [["Profile: usr.sbin.nginx", "Profile: restricted-nginx"]]
  fails:
    - check: {type: apparmor_profile_loaded}
      says: ["written in /etc/apparmor.d/usr.sbin.nginx on node worker but was never loaded"]
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-4xk2p}
      says: ["apparmor profile not found restricted-nginx", "was never loaded",
             "apparmor_parser -r /etc/apparmor.d/usr.sbin.nginx"]
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-9wz7m}
      says: ["was never loaded"]
    - check: {type: apparmor_denied, step: deface}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: read-shadow}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: nginx-starts}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: nginx-serves}
      says: ["could not run"]

- name: the profile renamed after its file instead of fixing the Deployment
  scenario: apparmor-load-profile
  edit:
    worker:
      /etc/apparmor.d/usr.sbin.nginx: [["profile restricted-nginx ", "profile usr.sbin.nginx "]]
  run: [[worker, apparmor_parser -r /etc/apparmor.d/usr.sbin.nginx]]
  fails:
    - check: {type: apparmor_profile_loaded}
      says: ["profile restricted-nginx is not loaded on node worker"]
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-4xk2p}
      says: ["confined by profile usr.sbin.nginx", "the task wants profile restricted-nginx"]
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-9wz7m}
      says: ["the task wants profile restricted-nginx"]

- name: the annotation with the right name next to the field with the wrong one
  scenario: apparmor-load-profile
  edit:
    controlplane:
      /root/frontend.yaml:
        - - "      labels: {app: frontend}\n    spec:"
          - |2-
                  labels: {app: frontend}
                  annotations:
                    container.apparmor.security.beta.kubernetes.io/nginx: localhost/restricted-nginx
                spec:
  run: [[worker, apparmor_parser -r /etc/apparmor.d/usr.sbin.nginx]]
  fails:
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-4xk2p}
      says: ["FailedCreate", 'Pod "frontend-6c9f8d7b5d-4xk2p" is invalid', "must match"]
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-9wz7m}
      says: ["was never created"]
    - check: {type: apparmor_denied, step: deface}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: read-shadow}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: nginx-starts}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: nginx-serves}
      says: ["could not run"]

- name: loaded in complain mode
  scenario: apparmor-load-profile
  edit: *frontend_fixed
  run: [[worker, apparmor_parser -C -r /etc/apparmor.d/usr.sbin.nginx]]
  fails:
    - check: {type: apparmor_profile_loaded}
      says: ["in complain mode; the task wants enforce mode"]
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-4xk2p}
      says: ["complain mode only logs"]
    - check: {type: apparmor_pod_confined, pod: frontend-6c9f8d7b5d-9wz7m}
      says: ["complain mode only logs"]
    - check: {type: apparmor_denied, step: deface}
      says: ["write of /usr/share/nginx/html/index.html was COMPLAIN"]
    - check: {type: apparmor_denied, step: read-shadow}
      says: ["read of /etc/shadow was COMPLAIN"]

- name: right too - the annotation, with the field removed
  scenario: apparmor-load-profile
  edit:
    controlplane:
      /root/frontend.yaml:
        - - "      labels: {app: frontend}\n    spec:"
          - |2-
                  labels: {app: frontend}
                  annotations:
                    container.apparmor.security.beta.kubernetes.io/nginx: localhost/restricted-nginx
                spec:
        - ["          securityContext:\n            appArmorProfile:\n.*?usr.sbin.nginx\n", ""]
  run: [[worker, apparmor_parser -r /etc/apparmor.d/usr.sbin.nginx]]
  fails: []

- name: right too - the field moved to the pod, the whole folder loaded
  scenario: apparmor-load-profile
  edit:
    controlplane:
      /root/frontend.yaml:
        - ["          securityContext:\n            appArmorProfile:\n.*?usr.sbin.nginx\n", ""]
        - - "    spec:\n      containers:"
          - |2-
                spec:
                  securityContext:
                    appArmorProfile: {type: Localhost, localhostProfile: restricted-nginx}
                  containers:
  run: [[worker, apparmor_parser -r /etc/apparmor.d/]]
  fails: []

# --- apparmor-nginx-hardening ----------------------------------------------------
- name: file, with deny /** w and the shells denied by their /bin paths
  scenario: apparmor-nginx-hardening
  base: solved
  write:
    worker:
      /etc/apparmor.d/nginx-hardened: |
        #include <tunables/global>
        profile nginx-hardened flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network,
          capability,
          deny /bin/sh x,
          deny /bin/bash x,
          deny /bin/dash x,
          deny /** w,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/nginx-hardened]]
  fails:
    - check: {type: apparmor_denied, step: rce-sh}
      says: ["exec of /usr/bin/dash (the step ran /bin/sh;",
             "(the step ran /bin/sh; in this image AppArmor sees /usr/bin/dash)",
             "was ALLOWED", "`file,` allows exec", "exec of /usr/bin/curl was ALLOWED"]
    - check: {type: apparmor_denied, step: rce-bash}
      says: ["exec of /usr/bin/bash (the step ran /bin/bash;",
             "(the step ran /bin/bash; in this image AppArmor sees /usr/bin/bash)",
             "was ALLOWED"]
    - check: {type: apparmor_allowed, step: nginx-starts}
      says: ["write of /run/nginx.pid", "was DENIED", "`deny /** w,` denies write",
             "deny rules always win"]
    - check: {type: apparmor_allowed, step: nginx-serves}
      says: ["write of /var/cache/nginx/client_temp/0000000001 was DENIED", "deny /** w,"]

- name: an allow list without capability rules
  scenario: apparmor-nginx-hardening
  base: solved
  edit:
    worker:
      /etc/apparmor.d/nginx-hardened: [["  capability net_bind_service,\n.*?setuid,\n", ""]]
  run: [[worker, apparmor_parser -r /etc/apparmor.d/nginx-hardened]]
  fails:
    - check: {type: apparmor_allowed, step: nginx-starts}
      says: ["capability net_bind_service was DENIED", "no rule allows capability"]

- name: an allow list that names /var/run instead of the resolved /run
  scenario: apparmor-nginx-hardening
  base: solved
  edit:
    worker:
      /etc/apparmor.d/nginx-hardened: [["@\\{run\\}/nginx.pid rw,", "/var/run/nginx.pid rw,"]]
  run: [[worker, apparmor_parser -r /etc/apparmor.d/nginx-hardened]]
  fails:
    - check: {type: apparmor_allowed, step: nginx-starts}
      says: ["write of /run/nginx.pid (the step wrote /var/run/nginx.pid;",
             "(the step wrote /var/run/nginx.pid; in this image AppArmor sees /run/nginx.pid)",
             "/run/nginx.pid) was DENIED"]

- name: a deny list that forgets /tmp
  scenario: apparmor-nginx-hardening
  base: solved
  write:
    worker:
      /etc/apparmor.d/nginx-hardened: |
        #include <tunables/global>
        profile nginx-hardened flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network,
          capability,
          deny /{,usr/}bin/{sh,bash,dash} x,
          deny /etc/** w,
          deny /usr/** w,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/nginx-hardened]]
  fails:
    - check: {type: apparmor_denied, step: miner-drop}
      says: ["write of /tmp/xmrig was ALLOWED", "`file,` allows write"]

- name: only IPv6 listed in the network rules
  scenario: apparmor-nginx-hardening
  base: solved
  edit:
    worker:
      /etc/apparmor.d/nginx-hardened: [["network inet tcp,", "network inet6 tcp,"]]
  run: [[worker, apparmor_parser -r /etc/apparmor.d/nginx-hardened]]
  fails:
    - check: {type: apparmor_allowed, step: nginx-starts}
      says: ["a network inet stream socket was DENIED"]

- name: a missing comma, so apparmor_parser loads nothing
  scenario: apparmor-nginx-hardening
  base: solved
  write:
    worker:
      /etc/apparmor.d/nginx-hardened: |
        #include <tunables/global>
        profile nginx-hardened flags=(attach_disconnected) {
          #include <abstractions/base>
          network inet tcp,
          capability net_bind_service,
          capability chown,
          capability setgid,
          capability setuid,
          /** r,
          @{run}/nginx.pid rw,
          /var/cache/nginx/** rw
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/nginx-hardened, 1]]
  fails:
    - check: {type: apparmor_profile_loaded}
      says: ["profile nginx-hardened is not loaded on node worker",
             "/etc/apparmor.d/nginx-hardened on node worker would define it,",
             "would define it, but it does not compile",
             "at line 12: syntax error, unexpected TOK_CLOSE, expecting TOK_END_OF_RULE"]
    - check: {type: apparmor_pod_confined}
      says: ["apparmor profile not found nginx-hardened", "does not compile"]
    - check: {type: apparmor_denied, step: rce-sh}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: rce-bash}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: deface}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: proxy-conf-drop}
      says: ["could not run"]
    - check: {type: apparmor_denied, step: miner-drop}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: nginx-starts}
      says: ["could not run"]
    - check: {type: apparmor_allowed, step: nginx-serves}
      says: ["could not run"]

- name: right too - explicit reads with the nameservice abstraction
  scenario: apparmor-nginx-hardening
  base: solved
  write:
    worker:
      /etc/apparmor.d/nginx-hardened: |
        include <tunables/global>
        profile nginx-hardened flags=(attach_disconnected,mediate_deleted) {
          include <abstractions/base>
          include <abstractions/nameservice>
          capability net_bind_service,
          capability chown,
          capability dac_override,
          capability setgid,
          capability setuid,
          /etc/nginx/** r,
          /usr/share/nginx/html/** r,
          /run/nginx.pid rw,
          owner /var/cache/nginx/** rw,
          deny /{,usr/}bin/** x,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/nginx-hardened]]
  fails: []

# --- apparmor-raw-sockets --------------------------------------------------------
- name: raw sockets denied, but not the capability
  scenario: apparmor-raw-sockets
  base: solved
  write:
    worker:
      /etc/apparmor.d/k8s-deny-raw: |
        #include <tunables/global>
        profile k8s-deny-raw flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network,
          capability,
          deny network raw,
          deny network packet,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-raw]]
  fails:
    - check: {type: apparmor_denied, step: icmp-sweep, access: capability net_raw}
      says: ["capability net_raw was ALLOWED", "`capability,` allows"]

- name: only the capability denied
  scenario: apparmor-raw-sockets
  base: solved
  write:
    worker:
      /etc/apparmor.d/k8s-deny-raw: |
        #include <tunables/global>
        profile k8s-deny-raw flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network,
          capability,
          deny capability net_raw,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-raw]]
  fails:
    - check: {type: apparmor_denied, step: icmp-sweep, access: network inet raw}
      says: ["a network inet raw socket was ALLOWED", "`network,` allows"]
    - check: {type: apparmor_denied, step: ra-spoof}
      says: ["a network inet6 raw socket was ALLOWED"]
    - check: {type: apparmor_denied, step: arp-spoof}
      says: ["a network packet raw socket was ALLOWED"]

- name: IPv4 raw sockets only
  scenario: apparmor-raw-sockets
  base: solved
  write:
    worker:
      /etc/apparmor.d/k8s-deny-raw: |
        #include <tunables/global>
        profile k8s-deny-raw flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network,
          capability,
          deny network inet raw,
          deny capability net_raw,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-raw]]
  fails:
    - check: {type: apparmor_denied, step: ra-spoof}
      says: ["a network inet6 raw socket was ALLOWED"]
    - check: {type: apparmor_denied, step: arp-spoof}
      says: ["a network packet raw socket was ALLOWED"]

- name: every socket denied takes TCP and DNS away too
  scenario: apparmor-raw-sockets
  base: solved
  write:
    worker:
      /etc/apparmor.d/k8s-deny-raw: |
        #include <tunables/global>
        profile k8s-deny-raw flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          capability,
          deny network,
          deny capability net_raw,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-raw]]
  fails:
    - check: {type: apparmor_allowed, step: api-starts}
      says: ["a network inet stream socket was DENIED", "`deny network,`",
             "the workload needs it"]
    - check: {type: apparmor_allowed, step: api-queries-db}
      says: ["a network inet dgram socket was DENIED", "a network inet stream socket was DENIED"]

- name: every capability denied stops gunicorn's switch to user app
  scenario: apparmor-raw-sockets
  base: solved
  write:
    worker:
      /etc/apparmor.d/k8s-deny-raw: |
        #include <tunables/global>
        profile k8s-deny-raw flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network,
          deny network raw,
          deny network packet,
          deny capability,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-raw]]
  fails:
    - check: {type: apparmor_allowed, step: api-starts}
      says: ["capability chown was DENIED", "capability setuid was DENIED"]

- name: an allow list that forgets gunicorn's capabilities
  scenario: apparmor-raw-sockets
  base: solved
  write:
    worker:
      /etc/apparmor.d/k8s-deny-raw: |
        #include <tunables/global>
        profile k8s-deny-raw flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network inet stream,
          network inet dgram,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-raw]]
  fails:
    - check: {type: apparmor_allowed, step: api-starts}
      says: ["capability setgid was DENIED", "no rule allows capability setgid"]

- name: right too - deny network raw for every family
  scenario: apparmor-raw-sockets
  base: solved
  write:
    worker:
      /etc/apparmor.d/k8s-deny-raw: |
        #include <tunables/global>
        profile k8s-deny-raw flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network,
          capability,
          deny network raw,
          deny network packet,
          deny capability net_raw,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-raw]]
  fails: []

- name: right too - an allow list of what the API needs
  scenario: apparmor-raw-sockets
  base: solved
  write:
    worker:
      /etc/apparmor.d/k8s-deny-raw: |
        #include <tunables/global>
        profile k8s-deny-raw flags=(attach_disconnected) {
          #include <abstractions/base>
          file,
          network inet tcp,
          network inet udp,
          capability chown setgid setuid,
        }
  run: [[worker, apparmor_parser -r /etc/apparmor.d/k8s-deny-raw]]
  fails: []
"""
)


def _profile_text(text: str) -> str:
    return PROFILES.get(text, text)


def _edit_text(new: str) -> str:
    return _pod_profile(new.split(" ", 1)[1]) if new.startswith("@pod_profile ") else new


def _pod_profile(name: str) -> str:
    """`spec:` of a Pod with the pod-level AppArmor field for a Localhost profile."""
    return ("spec:\n  securityContext:\n    appArmorProfile:\n      type: Localhost\n"
            f"      localhostProfile: {name}\n")


def _run(op: Opened, commands: list[list[Any]]) -> None:
    """Node commands, as `cks-lab node exec NODE -- COMMAND` runs them."""
    for node, command, *code in commands:
        res = service.node_exec(op, node, shlex.split(command))
        if res.code != (code[0] if code else 0):  # not an AssertionError: xfail must not hide it
            raise LookupError(f"case is stale: `{command}` on {node} exited {res.code}: "
                              f"{res.stderr.strip()}")


def _learner_workspace(sc: LoadedScenario, root: Path, case: dict[str, Any]) -> Workspace:
    ws = create_workspace(root, sc, "sim")
    SimBackend().prepare(sc, ws)
    op = Opened(ws, sc)
    if case.get("base", "untouched") == "solved":
        # the reference's files only: each row loads its profile itself, as a learner would
        for task in sc.model.tasks:
            for f in task.solution.files:
                ws.write_node_file(sc, f)
    write_files(ws, case.get("write") or {}, _profile_text)
    edit_files(ws, case.get("edit") or {}, _edit_text)
    _run(op, case.get("run") or [])
    write_files(ws, case.get("then_write") or {}, _profile_text)  # e.g. a fix made after loading
    return ws


@functools.cache
def _scenario(name: str) -> LoadedScenario:
    return load_scenario(bundled_scenarios_dir() / name)


def _grade(case: dict[str, Any], tmp_path: Path) -> tuple[LoadedScenario, ScenarioResult]:
    sc = _scenario(case["scenario"])
    ws = _learner_workspace(sc, tmp_path / "ws", case)
    return sc, grade(sc.model, SimBackend().run_attack(sc, ws))


@pytest.mark.parametrize("case", [case_param(c) for c in CASES])
def test_learner_answer(case: dict[str, Any], tmp_path: Path) -> None:
    sc, result = _grade(case, tmp_path)
    assert_fails_as_listed(sc, result, case["fails"])


def test_every_apparmor_scenario_has_rows() -> None:
    bundled = {p.name for p in bundled_scenarios_dir().glob("apparmor-*") if p.is_dir()}
    assert bundled == {c["scenario"] for c in CASES}


def test_apparmor_checks_on_a_step_in_no_pod_are_refused(tmp_path: Path) -> None:
    """An api step runs no process in a container: nothing there for AppArmor to decide."""
    import shutil

    from lab.grading.validate import validate_checks

    fixture = Path(__file__).parent / "fixtures" / "apparmor-lab"
    folder = tmp_path / "apparmor-lab"
    shutil.copytree(fixture, folder)
    text = (folder / "scenario.yaml").read_text()
    api_step = ("attack:\n  - id: list-secrets\n    description: a user lists Secrets\n"
                "    api: {user: jane, verb: list, resource: secrets, namespace: default}\n")
    text = text.replace("attack:\n", api_step, 1)
    text = text.replace("        step: read-hostname\n", "        step: list-secrets\n", 1)
    (folder / "scenario.yaml").write_text(text)
    errors = validate_checks(load_scenario(folder))
    assert [(e.item, e.message) for e in errors] == [(
        "tasks[0].checks[3].step",
        "attack step 'list-secrets' happens in no pod: AppArmor confines the processes of a "
        "container, and this step runs none (use an exec or workload step)")]
    lines = text.splitlines()
    assert errors[0].file == str(folder / "scenario.yaml")
    assert errors[0].line is not None and "step: list-secrets" in lines[errors[0].line - 1]
