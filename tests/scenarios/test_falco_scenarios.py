"""The bundled Falco scenarios against learners' answers.

`cks-lab scenario test` proves that the reference solutions pass and the untouched
workspaces fail. This file holds what a learner would really write instead: each
row is one answer (the node files it writes or edits, on top of the untouched
workspace) and exactly the checks it fails, with words the explanation must hold
so the learner can act on it. Every check not listed must pass, so a row also
proves that a mistake is not blamed on the wrong check; right answers other than
the reference have an empty `fails`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from learner_answers import assert_fails_as_listed, case_param, edit_files, write_files

from lab.backends.sim import SimBackend
from lab.grading.grader import grade
from lab.grading.report_text import render_text
from lab.grading.results import ScenarioResult
from lab.paths import bundled_scenarios_dir
from lab.scenarios.loader import LoadedScenario, load_scenario
from lab.workspace import Workspace, create_workspace

# Rows: name, scenario, write {node: {path: text}}, edit {node: {path: [[regex, new]]}},
# fails [{check: {type, params...}, says: [...]}], and xfail (a known lab gap, by reason).
CASES: list[dict[str, Any]] = yaml.safe_load(r"""
# --- falco-shell-alert ------------------------------------------------------------
- name: shell rule alone is shadowed by the default rule (rule_matching first)
  scenario: falco-shell-alert
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Shell in payments pod
          desc: a shell in payments
          condition: spawned_process and container and shell_procs and k8s.ns.name = payments
          output: "%evt.time,%user.name,%proc.name,%container.id"
          priority: WARNING
  fails:
    - check: {type: falco_alert, step: interactive-shell}
      says: ["Falco raised 'Terminal shell in container' (Notice)",
             "rule 'Terminal shell in container' matched the same event first",
             "rule_matching: first"]
    - check: {type: falco_output_format, step: interactive-shell}
      says: ["no alert from rule 'Shell in payments pod'", "'Terminal shell in container'"]

- name: shell rule that knows only sh misses bash
  scenario: falco-shell-alert
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Shell in payments pod
          desc: a shell in payments
          condition: spawned_process and container and proc.name = sh and k8s.ns.name = payments
          output: "%evt.time,%user.name,%proc.name,%container.id"
          priority: WARNING
        - rule: Terminal shell in container
          condition: and not k8s.ns.name = payments
          override: {condition: append}
  fails:
    - check: {type: falco_alert, step: scripted-shell}
      says: ["its condition did not match the step's events", "execve `bash -c cat"]

- name: every program in payments alerts, not only shells
  scenario: falco-shell-alert
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Shell in payments pod
          desc: a shell in payments
          condition: spawned_process and container and k8s.ns.name = payments
          output: "%evt.time,%user.name,%proc.name,%container.id"
          priority: WARNING
        - rule: Terminal shell in container
          condition: and not k8s.ns.name = payments
          override: {condition: append}
  fails:
    - check: {type: falco_no_alert, step: liveness-probe}
      says: ["rule 'Shell in payments pod' fired", "liveness probe", ",root,python3,",
             "make the rule's condition exclude it"]

- name: an output starting with % is not quoted, so Falco does not restart
  scenario: falco-shell-alert
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Shell in payments pod
          desc: a shell in payments
          condition: spawned_process and container and shell_procs and k8s.ns.name = payments
          output: %evt.time,%user.name,%proc.name,%container.id
          priority: WARNING
  fails:
    - check: {type: falco_rules_load}
      says: ["/etc/falco/falco_rules.local.yaml:4", "LOAD_ERR_YAML_PARSE",
             "would not (re)start"]
    - check: {type: falco_alert, step: interactive-shell}
      says: ["Falco did not start", "Falco is not running on node worker"]
    - check: {type: falco_output_format, step: interactive-shell}
      says: ["Falco did not start"]
    - check: {type: falco_alert, step: scripted-shell}
      says: ["Falco did not start"]
    - check: {type: falco_no_alert, step: liveness-probe}
      says: ["cannot tell whether"]
    - check: {type: falco_no_alert, step: ledger-sync-round}
      says: ["cannot tell whether"]
    - check: {type: falco_no_alert, step: debug-shell}
      says: ["cannot tell whether"]
    - check: {type: falco_alert, step: debug-shell}
      says: ["Falco did not start"]

- name: the default rule switched off instead of making way
  scenario: falco-shell-alert
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Shell in payments pod
          desc: a shell in payments
          condition: spawned_process and container and shell_procs and k8s.ns.name = payments
          output: "%evt.time,%user.name,%proc.name,%container.id"
          priority: WARNING
        - rule: Terminal shell in container
          enabled: false
          override: {enabled: replace}
  fails:
    - check: {type: falco_alert, step: debug-shell, rule: Terminal shell in container}
      says: ["rule 'Terminal shell in container' is disabled (enabled: false)"]

- name: right too - rule_matching all in falco.yaml lets both rules alert
  scenario: falco-shell-alert
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Shell in payments pod
          desc: a shell in payments
          condition: >
            evt.type in (execve, execveat) and container.id != host
            and proc.name in (shell_binaries) and k8s.ns.name = "payments"
          output: '%evt.time,%user.name,%proc.name,%container.id'
          priority: warning
  edit:
    worker:
      /etc/falco/falco.yaml: [["rule_matching: first", "rule_matching: all"]]
  fails: []

# Without spawned_process the rule matches every syscall of a shell, not its start.
- name: a shell rule without spawned_process fires on what a running shell does
  scenario: falco-shell-alert
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Shell in payments pod
          desc: a shell in payments
          condition: shell_procs and k8s.ns.name = payments
          output: "%evt.time,%user.name,%proc.name,%container.id"
          priority: WARNING
        - rule: Terminal shell in container
          condition: and not k8s.ns.name = payments
          override: {condition: append}
  fails:
    - check: {type: falco_no_alert, step: ledger-sync-round, rule: Shell in payments pod}
      says: ["rule 'Shell in payments pod' fired", "a shell running since its pod started",
             "it starts no new program", ",root,sh,", "make the rule's condition exclude it"]

# --- falco-find-devmem-reader -----------------------------------------------------
- name: fd.name contains mem also catches meminfo and memory.max
  scenario: falco-find-devmem-reader
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Read dev mem
          desc: memory read
          condition: open_read and container and fd.name contains mem
          output: "%evt.time,%k8s.ns.name,%k8s.pod.name,%proc.cmdline"
          priority: CRITICAL
    controlplane:
      /opt/course/falco/devmem-deployment.txt: "shop/cache-warmer\n"
  fails:
    - check: {type: falco_no_alert, step: memory-stats-read}
      says: ["rule 'Read dev mem' fired", "node-exporter", "make the rule's condition exclude it"]
    - check: {type: falco_no_alert, step: memory-limit-read}
      says: ["rule 'Read dev mem' fired", "memory.max"]

- name: spaces instead of commas in the output, and the pod instead of its Deployment
  scenario: falco-find-devmem-reader
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Read dev mem
          desc: memory read
          condition: open_read and container and fd.name = /dev/mem
          output: "%evt.time %k8s.ns.name %k8s.pod.name %proc.cmdline"
          priority: CRITICAL
    controlplane:
      /opt/course/falco/devmem-deployment.txt: "cache-warmer-5f7d8c9b6-tq8wz\n"
  fails:
    - check: {type: falco_output_format, step: devmem-read}
      says: ["the order of the fields or the text between them differs",
             "would write '"]
    - check: {type: answer_file}
      says: ["holds 'cache-warmer-5f7d8c9b6-tq8wz', which is not the right answer"]

# --- falco-override-output --------------------------------------------------------
- name: the rule repeated without override is a new rule, and has no condition
  scenario: falco-override-output
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Terminal shell in container
          output: "%evt.time,%container.id,%container.name,%user.name"
  fails:
    - check: {type: falco_rules_load}
      says: ["/etc/falco/falco_rules.local.yaml:1", "rule 'Terminal shell in container'",
             "no mapping for key 'condition'"]
    - check: {type: falco_output_format, step: frontend-shell}
      says: ["Falco did not start"]
    - check: {type: falco_output_format, step: toolbox-shell}
      says: ["Falco did not start"]
    - check: {type: falco_alert, step: frontend-shell}
      says: ["Falco did not start"]
    - check: {type: falco_no_alert, step: config-test}
      says: ["cannot tell whether"]
    - check: {type: falco_output_format, step: frontend-shell-after-upgrade}
      says: ["Falco did not start"]
    - check: {type: falco_alert, step: frontend-shell-after-upgrade}
      says: ["Falco did not start"]

- name: the deprecated append key cannot change an output
  scenario: falco-override-output
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Terminal shell in container
          output: "%evt.time,%container.id,%container.name,%user.name"
          append: true
  fails:
    - check: {type: falco_rules_load}
      says: ["Appended rule must have exceptions or condition property"]
    - check: {type: falco_output_format, step: frontend-shell}
      says: ["Falco did not start"]
    - check: {type: falco_output_format, step: toolbox-shell}
      says: ["Falco did not start"]
    - check: {type: falco_alert, step: frontend-shell}
      says: ["Falco did not start"]
    - check: {type: falco_no_alert, step: config-test}
      says: ["cannot tell whether"]
    - check: {type: falco_output_format, step: frontend-shell-after-upgrade}
      says: ["Falco did not start"]
    - check: {type: falco_alert, step: frontend-shell-after-upgrade}
      says: ["Falco did not start"]

- name: a full redefinition changes the priority and the condition too
  scenario: falco-override-output
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Terminal shell in container
          desc: a shell in a container
          condition: spawned_process and container and shell_procs
          output: "%evt.time,%container.id,%container.name,%user.name"
          priority: WARNING
  fails:
    - check: {type: falco_alert, step: frontend-shell}
      says: ["its priority is Warning; the task wants Notice"]
    - check: {type: falco_alert, step: frontend-shell-after-upgrade}
      says: ["its priority is Warning; the task wants Notice"]
    - check: {type: falco_no_alert, step: config-test}
      says: ["rule 'Terminal shell in container' fired",
             "`kubectl exec frontend-7c9d8f6b5-2xk4m -n prod -c nginx -- sh -c 'nginx -t'`"]

- name: output appended to instead of replaced keeps the old sentence in front
  scenario: falco-override-output
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Terminal shell in container
          output: "%evt.time,%container.id,%container.name,%user.name"
          override: {output: append}
  fails:
    - check: {type: falco_output_format, step: frontend-shell}
      says: ["writes 'A shell was spawned in a container with an attached terminal (user=root",
             "before what the format writes", "override: {output: append}", "`replace` replaces it",
             "it also prints %container.image.repository"]
    - check: {type: falco_output_format, step: toolbox-shell}
      says: ["A shell was spawned"]
    - check: {type: falco_output_format, step: frontend-shell-after-upgrade}
      says: ["A shell was spawned"]

# A Falco upgrade (attack step falco-upgrade) puts the package's falco_rules.yaml back:
# the change is gone for the shell after it.
- name: falco_rules.yaml edited in place instead of overridden
  scenario: falco-override-output
  edit:
    worker:
      /etc/falco/falco_rules.yaml:
        - ["output: >\\n    A shell was spawned .*?k8s_pod=%k8s.pod.name\\)",
           "output: '%evt.time,%container.id,%container.name,%user.name'"]
  fails:
    - check: {type: falco_output_format, step: frontend-shell-after-upgrade}
      says: ["after the falco package upgrade (attack step 'falco-upgrade') restored",
             "/etc/falco/falco_rules.yaml, the alert", "writes 'A shell was spawned in a container",
             "your change was made in /etc/falco/falco_rules.yaml, which upgrades overwrite:",
             "put it in /etc/falco/falco_rules.local.yaml, with `override`"]

- name: a macro added to falco_rules.yaml is gone after the upgrade, and Falco with it
  scenario: falco-override-output
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Terminal shell in container
          output: "%evt.time,%container.id,%container.name,%user.name"
          override: {output: replace}

        - rule: Terminal shell in container
          condition: and not lab_probe
          override: {condition: append}
  edit:
    worker:
      /etc/falco/falco_rules.yaml:
        - ["\\Z", "\n- macro: lab_probe\n  condition: (proc.name = healthcheck)\n"]
  fails:
    - check: {type: falco_output_format, step: frontend-shell-after-upgrade}
      says: ["Falco did not restart after the falco package upgrade (attack step 'falco-upgrade')",
             "restored /etc/falco/falco_rules.yaml, so it saw nothing",
             "your change was made in /etc/falco/falco_rules.yaml, which upgrades overwrite",
             "Undefined macro 'lab_probe'",
             "(the rule was changed in /etc/falco/falco_rules.local.yaml line 5)"]
    - check: {type: falco_alert, step: frontend-shell-after-upgrade}
      says: ["Falco did not restart"]

# --- falco-etc-writes -------------------------------------------------------------
- name: the default rule only switched on alerts on the reloader and other namespaces
  scenario: falco-etc-writes
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Write below etc
          enabled: true
          override: {enabled: replace}
  fails:
    - check: {type: falco_no_alert, step: reloader-renders-conf}
      says: ["rule 'Write below etc' fired", "process=config-reloader",
             "file=/etc/nginx/conf.d/upstreams.conf", "make the rule's condition exclude it"]
    - check: {type: falco_no_alert, step: inventory-writes-config}
      says: ["rule 'Write below etc' fired", "k8s_ns=warehouse"]

- name: the whole of /etc/nginx excluded hides the attacker's server block
  scenario: falco-etc-writes
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Write below etc
          enabled: true
          condition: and k8s.ns.name = shop and not fd.name startswith /etc/nginx/
          override: {enabled: replace, condition: append}
  fails:
    - check: {type: falco_alert, step: proxy-conf-drop}
      says: ["Falco raised no alert for `kubectl exec storefront-6b8f9c7d5-h4j2k -n shop",
             "openat /etc/nginx/conf.d/zz-proxy.conf O_TRUNC|O_CREAT|O_WRONLY by curl"]

- name: an appended condition without a leading and does not compile
  scenario: falco-etc-writes
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Write below etc
          enabled: true
          condition: k8s.ns.name = shop
          exceptions:
            - name: proc_writer
              values: [[config-reloader, /etc/nginx/conf.d]]
          override: {enabled: replace, condition: append, exceptions: append}
  fails:
    - check: {type: falco_rules_load}
      # As in Falco, a compile error is located where the rule was first defined.
      says: ["/etc/falco/falco_rules.local.yaml is invalid", "rule 'Write below etc'",
             "LOAD_ERR_COMPILE_CONDITION",
             "(the rule was changed in /etc/falco/falco_rules.local.yaml line 1)"]
    - check: {type: falco_alert, step: cron-backdoor}
      says: ["Falco did not start",
             "(the rule was changed in /etc/falco/falco_rules.local.yaml line 1)"]
    - check: {type: falco_alert, step: proxy-conf-drop}
      says: ["Falco did not start"]
    - check: {type: falco_alert, step: reloader-writes-passwd}
      says: ["Falco did not start"]
    - check: {type: falco_no_alert, step: reloader-renders-conf}
      says: ["cannot tell whether"]
    - check: {type: falco_no_alert, step: nginx-reads-conf}
      says: ["cannot tell whether"]
    - check: {type: falco_no_alert, step: cart-store-writes-data}
      says: ["cannot tell whether"]
    - check: {type: falco_no_alert, step: inventory-writes-config}
      says: ["cannot tell whether"]

- name: a new rule that watches every open, at the wrong priority, sparing all config-reloader
  scenario: falco-etc-writes
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Etc opened in shop
          desc: a file below /etc opened in namespace shop
          condition: >
            evt.type in (open, openat, openat2) and container and k8s.ns.name = shop
            and fd.name startswith /etc/ and not proc.name = config-reloader
          output: "file=%fd.name pod=%k8s.pod.name"
          priority: WARNING
  fails:
    - check: {type: falco_alert, step: cron-backdoor}
      says: ["Falco raised 'Etc opened in shop'", "its priority is Warning; the task wants Error"]
    - check: {type: falco_alert, step: proxy-conf-drop}
      says: ["its priority is Warning; the task wants Error"]
    - check: {type: falco_alert, step: reloader-writes-passwd}
      says: ["Falco raised no alert",
             "openat /etc/passwd O_TRUNC|O_CREAT|O_WRONLY by config-reloader"]
    - check: {type: falco_no_alert, step: nginx-reads-conf}
      says: ["rule 'Etc opened in shop' fired", "file=/etc/nginx/nginx.conf"]

- name: config-reloader exempted everywhere, and /etc without its slash
  scenario: falco-etc-writes
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: shop etc
          desc: d
          condition: >
            open_write and k8s.ns.name = shop and fd.name startswith /etc
            and not proc.name = config-reloader
          output: "%fd.name %k8s.pod.name"
          priority: ERROR
  fails:
    - check: {type: falco_alert, step: reloader-writes-passwd}
      says: ["Falco raised no alert", "makes config-reloader write outside its folder",
             "openat /etc/passwd O_TRUNC|O_CREAT|O_WRONLY by config-reloader"]
    - check: {type: falco_no_alert, step: cart-store-writes-data}
      says: ["rule 'shop etc' fired", "(its data folder, not /etc)",
             "/etcd-data/member/snap/db cart-store-0", "make the rule's condition exclude it"]

- name: right too - a new rule with an exception of its own
  scenario: falco-etc-writes
  write:
    worker:
      /etc/falco/falco_rules.local.yaml: |
        - rule: Write below etc in shop
          desc: A file below /etc was opened for writing in namespace shop.
          condition: >
            open_write and container and k8s.ns.name = shop and fd.name startswith /etc/
          exceptions:
            - name: reloader
              fields: [container.name, fd.directory]
              values: [[config-reloader, /etc/nginx/conf.d]]
          output: "Write below /etc (file=%fd.name pod=%k8s.pod.name cmd=%proc.cmdline)"
          priority: ERROR
  fails: []
""")


def _learner_workspace(sc: LoadedScenario, root: Path, case: dict[str, Any]) -> Workspace:
    ws = create_workspace(root, sc, "sim")
    SimBackend().prepare(sc, ws)
    write_files(ws, case.get("write") or {})
    edit_files(ws, case.get("edit") or {})
    return ws


def _run(case: dict[str, Any], tmp_path: Path) -> tuple[LoadedScenario, ScenarioResult]:
    sc = load_scenario(bundled_scenarios_dir() / case["scenario"])
    ws = _learner_workspace(sc, tmp_path / "ws", case)
    return sc, grade(sc.model, SimBackend().run_attack(sc, ws))


@pytest.mark.parametrize("case", [case_param(c) for c in CASES])
def test_learner_answer(case: dict[str, Any], tmp_path: Path) -> None:
    sc, result = _run(case, tmp_path)
    assert_fails_as_listed(sc, result, case["fails"])


def test_every_falco_scenario_has_rows() -> None:
    bundled = {p.name for p in bundled_scenarios_dir().glob("falco-*") if p.is_dir()}
    assert bundled == {c["scenario"] for c in CASES}


def test_untouched_check_does_not_give_the_devmem_answer_away(tmp_path: Path) -> None:
    """Which workload reads /dev/mem is the task: no check names a pod of the scenario,
    in its title or its explanation, passed or failed (the benign steps' pods would
    tell it by elimination)."""
    sc, result = _run({"scenario": "falco-find-devmem-reader"}, tmp_path)
    shown = render_text(result) + json.dumps(result.to_dict())
    names = [p.name for p in sc.model.setup.pods] + ["cache-warmer", "node-exporter"]
    names += [p.name.rsplit("-", 1)[0] for p in sc.model.setup.pods]  # ReplicaSets, Jobs
    assert not [n for n in names if n in shown], shown
