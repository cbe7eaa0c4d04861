"""What a pull request's reconcile.yaml changes, setting by setting, for its reviewer
(DESIGN "What a reviewer approves is true")."""

from __future__ import annotations

import json
import os
from typing import Any

from reconciler.config.schema import ConfigDoc
from reconciler.config.value import RepoConfig


def review_changes(base: RepoConfig | None, head: RepoConfig | None) -> list[str]:
    """What a pull request changes in reconcile.yaml that changes what the merge does, for
    a reviewer to see first: where credentials are sent (gateways, credential variable
    names), where the ledger is kept, and every other setting, compared field by field over
    the whole file (apply, ledger, notify, pipelines and any section added later), so no
    new setting can change the merge unseen. Empty when nothing in them changes."""
    out: list[str] = []
    b_gw = {g.org_id: g for g in base.gateways} if base else {}
    h_gw = {g.org_id: g for g in head.gateways} if head else {}
    for org in sorted(set(b_gw) | set(h_gw), key=lambda o: o or ""):
        who = f"org {org}" if org else "the default gateway"
        old, new = b_gw.get(org), h_gw.get(org)
        if old != new:
            unset = "none in reconcile.yaml ($ENOS_API_GATEWAY with $ENOS_APP_KEY/$ENOS_APP_SECRET)"
            was = f"{old.url} with ${old.app_key_env}/${old.app_secret_env}" if old else unset
            now = f"{new.url} with ${new.app_key_env}/${new.app_secret_env}" if new else unset
            out.append(f"where credentials are sent for {who}: {was} -> {now}")
    if _ledger_settings(base) != _ledger_settings(head):
        line = f"where the ledger is kept: {_ledger_text(base)} -> {_ledger_text(head)}"
        if base is not None and base.git is not None and (head is None or head.git is None):
            line += " (once merged, every apply is refused: the ledger is anchored in git)"
        out.append(line)
    before, after = _leaves(base), _leaves(head)
    changed: dict[str, list[str]] = {}
    for key in sorted(set(before) | set(after), key=_leaf_order):
        if key in _SAID_ABOVE or before.get(key, _UNSET) == after.get(key, _UNSET):
            continue
        was, now = _shown(before.get(key, _UNSET)), _shown(after.get(key, _UNSET))
        changed.setdefault(key.split(".")[0].split("[")[0], []).append(f"{key} {was} -> {now}")
    for section, lines in changed.items():
        out.append(f"{_SECTIONS.get(section, f'the {section} settings')}: " + ", ".join(lines))
    return out


_UNSET = object()
# Said by the lines above (gateways; the ledger's place), so not repeated field by field.
_SAID_ABOVE = {"ledger.path", "ledger.git.enabled", "ledger.git.remote", "ledger.git.branch"}
_SECTIONS = {
    "apply": "what apply does",
    "ledger": "the ledger's settings",
    "notify": "who is notified",
    "pipelines": "how pipelines are started again",
}
_TOP_ORDER = ("ledger", "apply", "notify", "pipelines")


def _leaves(c: RepoConfig | None) -> dict[str, object]:
    """Every setting of the file as `dotted.path[i]` -> value, defaults filled in, the
    gateways left out (said by their own line). No file: every default, git off."""
    if c is None:
        tree: dict[str, Any] = ConfigDoc.model_construct().model_dump(mode="json")
        tree["ledger"] = {"path": None, "git": {"enabled": False}}
    elif c.doc is not None:
        tree = c.doc.model_dump(mode="json", by_alias=True)  # as written: `from`, not `from_`
    else:
        return {}
    for key in ("apiVersion", "kind", "gateways"):
        tree.pop(key, None)
    out: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict) and (value or not prefix):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif (value == [] or value is None) and prefix:  # no entries, null: as unset, so a
            return  # first entry (or a first key of a new section) is one line
        else:
            out[prefix] = value

    walk("", tree)
    return out


def _leaf_order(key: str) -> tuple[int, str]:
    top = key.split(".")[0].split("[")[0]
    return (_TOP_ORDER.index(top) if top in _TOP_ORDER else len(_TOP_ORDER), key)


def _shown(value: object) -> str:
    if value is _UNSET:
        return "unset"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _ledger_settings(c: RepoConfig | None) -> tuple[object, ...]:
    if c is None:
        return (None,)
    where = os.path.relpath(c.ledger_path.resolve(), c.path.resolve().parent)
    return (where, c.git.remote, c.git.branch) if c.git else (where, "git off")


def _ledger_text(c: RepoConfig | None) -> str:
    if c is None:
        return "no reconcile.yaml"
    where = os.path.relpath(c.ledger_path.resolve(), c.path.resolve().parent)
    if c.git is None:
        return f"{where}, not in git"
    return f"{where} on {c.git.remote}/{c.git.branch} (lease {c.git.lease_seconds}s)"
