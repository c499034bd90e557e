"""Build PolicyRule values from the YAML shape the conformance tables use."""

from __future__ import annotations

from typing import Any

from lab.engines.audit.policy import GroupResources, PolicyRule


def rule_from(d: dict[str, Any]) -> PolicyRule:
    return PolicyRule(
        level=d.get("level", ""),
        users=tuple(d.get("users", ())),
        user_groups=tuple(d.get("userGroups", ())),
        verbs=tuple(d.get("verbs", ())),
        resources=tuple(GroupResources(g.get("group", ""), tuple(g.get("resources", ())),
                                       tuple(g.get("resourceNames", ())))
                        for g in d.get("resources", ())),
        namespaces=tuple(d.get("namespaces", ())),
        non_resource_urls=tuple(d.get("nonResourceURLs", ())),
        omit_stages=tuple(d.get("omitStages", ())),
        omit_managed_fields=d.get("omitManagedFields"),
    )
