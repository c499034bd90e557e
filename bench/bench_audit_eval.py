"""Audit policy evaluation throughput: 100k requests against a 15-rule policy.

Run: python bench/bench_audit_eval.py   (target: >= 100k requests/s on one core)
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.engines.audit.checker import RequestAttributes, UserInfo, compile_policy
from lab.engines.audit.policy import load_policy
from lab.engines.audit.tools import eval_jsonl

# A realistic CKS-style policy: noisy system traffic first, secrets guarded, catch-all last.
POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources: [{group: "", resources: ["endpoints", "services", "services/status"]}]
  - level: None
    userGroups: ["system:nodes"]
    verbs: ["get"]
    resources: [{group: "", resources: ["nodes", "nodes/status"]}]
  - level: None
    users: ["system:kube-controller-manager", "system:kube-scheduler"]
    verbs: ["get", "update"]
    namespaces: ["kube-system"]
    resources: [{group: "", resources: ["endpoints"]}]
  - level: None
    nonResourceURLs: ["/healthz*", "/version", "/swagger*", "/readyz", "/livez"]
  - level: None
    resources: [{group: "", resources: ["events"]}]
  - level: Request
    users: ["kubelet", "system:node-problem-detector", "system:serviceaccount:kube-system:npd"]
    verbs: ["update", "patch"]
    resources: [{group: "", resources: ["nodes/status", "pods/status"]}]
  - level: Metadata
    resources: [{group: "", resources: ["secrets", "configmaps"]},
                {group: authentication.k8s.io, resources: ["tokenreviews"]}]
  - level: RequestResponse
    resources: [{group: "", resources: ["pods/exec", "pods/attach", "pods/portforward"]}]
  - level: Request
    verbs: ["get", "list", "watch"]
    resources: [{group: ""}, {group: apps}, {group: batch}, {group: networking.k8s.io}]
  - level: RequestResponse
    resources: [{group: rbac.authorization.k8s.io, resources: ["*"]}]
  - level: Metadata
    namespaces: [""]
  - level: RequestResponse
    resources: [{group: "", resources: ["pods/*"], resourceNames: ["web-0", "web-1"]}]
  - level: Request
    userGroups: ["system:serviceaccounts"]
  - level: RequestResponse
    namespaces: ["prod", "payments"]
  - level: Metadata
"""

USERS = [
    UserInfo("system:kube-proxy", ("system:authenticated",)),
    UserInfo("system:node:w1", ("system:nodes", "system:authenticated")),
    UserInfo("kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated")),
    UserInfo("system:serviceaccount:prod:api", ("system:serviceaccounts", "system:authenticated")),
    UserInfo("system:kube-scheduler", ("system:authenticated",)),
    None,
]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
RESOURCES = [("", "pods", ""), ("", "pods", "log"), ("", "pods", "exec"), ("", "secrets", ""),
             ("", "configmaps", ""), ("apps", "deployments", ""), ("", "nodes", "status"),
             ("rbac.authorization.k8s.io", "roles", ""), ("", "endpoints", ""),
             ("batch", "jobs", ""), ("", "namespaces", "")]
PATHS = ["/healthz", "/healthz/etcd", "/metrics", "/version", "/apis", "/openapi/v2"]
NAMESPACES = ["default", "kube-system", "prod", "payments", ""]


def make_requests(n: int, seed: int = 7) -> list[RequestAttributes]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        user, verb = rnd.choice(USERS), rnd.choice(VERBS)
        if rnd.random() < 0.15:
            out.append(RequestAttributes(user, "get", rnd.choice(PATHS), False))
            continue
        group, resource, sub = rnd.choice(RESOURCES)
        ns = "" if resource in ("nodes", "namespaces") else rnd.choice(NAMESPACES)
        out.append(RequestAttributes(user, verb, f"/api/v1/{resource}", True, group, "v1",
                                     resource, sub, ns, rnd.choice(["web-0", "busybox", ""])))
    return out


def as_event(a: RequestAttributes) -> str:
    event: dict[str, object] = {"verb": a.verb, "requestURI": a.path + "?limit=500"}
    if a.user is not None:
        event["user"] = {"username": a.user.username, "groups": list(a.user.groups)}
    if a.is_resource_request:
        event["objectRef"] = {"apiGroup": a.api_group, "apiVersion": a.api_version,
                              "resource": a.resource, "subresource": a.subresource,
                              "namespace": a.namespace, "name": a.name}
    return json.dumps(event)


def main() -> None:
    policy = load_policy(POLICY, "bench-policy.yaml")
    compiled = compile_policy(policy)
    requests = make_requests(100_000)
    evaluate = compiled.evaluate
    for a in requests[:1000]:  # warm up
        evaluate(a)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for a in requests:
            evaluate(a)
        best = min(best, time.perf_counter() - start)
    print(f"rules: {len(policy.rules)}  requests: {len(requests)}")
    print(f"evaluate(): {len(requests) / best:,.0f} requests/s (best of 3)")
    lines = [as_event(a) for a in requests]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        count = sum(c.count("\n") for c in eval_jsonl(compiled, lines, "bench"))
        best = min(best, time.perf_counter() - start)
    print(f"eval_jsonl() incl. JSON in and out: {count / best:,.0f} lines/s (best of 3)")
    # Worst case for the memo: every request distinct (a unique object name each).
    unique = [line.replace('"name": "', f'"name": "u{i}-', 1) for i, line in enumerate(lines)]
    start = time.perf_counter()
    count = sum(c.count("\n") for c in eval_jsonl(compiled, unique, "bench"))
    print(f"eval_jsonl(), every request distinct: {count / (time.perf_counter() - start):,.0f}"
          " lines/s")
    command_throughput(lines)


def command_throughput(lines: list[str]) -> None:
    """The learner's command end to end: start-up, reading, evaluating, writing."""
    exe = shutil.which("cks-lab")
    if exe is None:
        print("cks-lab not on PATH: skipped the command measurement")
        return
    with tempfile.TemporaryDirectory() as tmp:
        policy, reqs = Path(tmp) / "policy.yaml", Path(tmp) / "requests.jsonl"
        policy.write_text(POLICY)
        reqs.write_text("\n".join(lines) + "\n")
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([exe, "audit", "eval", "--policy", str(policy), str(reqs)],
                           stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - start)
    wall = sorted(times)[1]
    print(f"cks-lab audit eval, {len(lines):,} lines: {wall:.2f} s wall (median of 3) = "
          f"{len(lines) / wall:,.0f} requests/s  [goal >= 100,000]  ({sys.executable})")


if __name__ == "__main__":
    main()
