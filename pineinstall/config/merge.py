"""Merging two configs the way Ignition does (``ignition.config.merge``), as pure functions.

Both configs are 3.6.0-shaped dicts (already checked and up-translated). The rules:

- objects merge field by field; a scalar of the child replaces the parent's when the child gives it
  (not absent, not null);
- a list of keyed entries merges entries with the same key and appends the child's new ones after
  the parent's; ``files``, ``directories`` and ``links`` share one key space (``path``): a child
  entry of another kind at the same path removes the parent's entry;
- lists of plain values (SSH keys, supplementary groups, RAID devices, kernel arguments) are sets:
  the union, parent order first;
- ``append`` and option lists concatenate;
- an HTTP header in the child without a value deletes the parent's header of that name.

``replace`` needs no function: the referenced config is used instead, as it is.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs start-up time (pine-transpile merges its sugar with this module)
    from collections.abc import Callable
    from typing import Any

    Key = Callable[[Any], Any]
    # on_merged(result, parent, child): see ``merge``
    Merged = Callable[[Any, Any, Any], None]


def _field(name: str) -> Key:
    return lambda entry: entry.get(name) if isinstance(entry, dict) else entry


def _partition_key(entry: dict[str, Any]) -> Any:
    number = entry.get("number") or 0
    return ("number", number) if number else ("label", entry.get("label"))


def _value(entry: Any) -> Any:
    return entry


# How each list is merged, by the name of the list and the object holding it:
# (owner, list) -> ("keyed", key, handle) | ("append",)
# The handle names a key space shared by several lists of the same owner.
_LISTS: dict[tuple[str, str], tuple[Any, ...]] = {
    ("config", "merge"): ("keyed", _field("source"), "merge"),
    ("resource", "httpHeaders"): ("keyed", _field("name"), "httpHeaders"),
    ("tls", "certificateAuthorities"): ("keyed", _field("source"), "ca"),
    ("proxy", "noProxy"): ("keyed", _value, "noProxy"),
    ("passwd", "users"): ("keyed", _field("name"), "users"),
    ("passwd", "groups"): ("keyed", _field("name"), "groups"),
    ("user", "sshAuthorizedKeys"): ("keyed", _value, "keys"),
    ("user", "groups"): ("keyed", _value, "groups"),
    ("storage", "disks"): ("keyed", _field("device"), "disks"),
    ("storage", "raid"): ("keyed", _field("name"), "raid"),
    ("storage", "filesystems"): ("keyed", _field("device"), "filesystems"),
    ("storage", "luks"): ("keyed", _field("name"), "luks"),
    ("storage", "files"): ("keyed", _field("path"), "node"),
    ("storage", "directories"): ("keyed", _field("path"), "node"),
    ("storage", "links"): ("keyed", _field("path"), "node"),
    ("disk", "partitions"): ("keyed", _partition_key, "partitions"),
    ("raid", "devices"): ("keyed", _value, "devices"),
    ("raid", "options"): ("append",),
    ("filesystem", "options"): ("append",),
    ("filesystem", "mountOptions"): ("append",),
    ("file", "append"): ("append",),
    ("luks", "options"): ("append",),
    ("luks", "openOptions"): ("append",),
    ("clevis", "tang"): ("keyed", _field("url"), "tang"),
    ("systemd", "units"): ("keyed", _field("name"), "units"),
    ("unit", "dropins"): ("keyed", _field("name"), "dropins"),
    ("kernelArguments", "shouldExist"): ("keyed", _value, "karg"),
    ("kernelArguments", "shouldNotExist"): ("keyed", _value, "karg"),
}

# What kind of object a field holds, so nested lists find their rule: (owner, field) -> kind.
_KINDS: dict[tuple[str, str], str] = {
    ("root", "ignition"): "ignition",
    ("root", "passwd"): "passwd",
    ("root", "storage"): "storage",
    ("root", "systemd"): "systemd",
    ("root", "kernelArguments"): "kernelArguments",
    ("ignition", "config"): "config",
    ("ignition", "security"): "security",
    ("ignition", "proxy"): "proxy",
    ("security", "tls"): "tls",
    ("config", "merge"): "resource",
    ("config", "replace"): "resource",
    ("tls", "certificateAuthorities"): "resource",
    ("passwd", "users"): "user",
    ("storage", "disks"): "disk",
    ("storage", "raid"): "raid",
    ("storage", "filesystems"): "filesystem",
    ("storage", "luks"): "luks",
    ("storage", "files"): "file",
    ("file", "contents"): "resource",
    ("file", "append"): "resource",
    ("luks", "keyFile"): "resource",
    ("luks", "clevis"): "clevis",
    ("systemd", "units"): "unit",
}


def merge(parent: dict[str, Any], child: dict[str, Any], on_merged: Merged | None = None) -> dict[str, Any]:
    """The config that results from applying ``child`` on top of ``parent``; neither is modified.

    ``on_merged(result, parent, child)``, when given, is called for every object and list the merge
    makes from a parent's and a child's (either of which may be None for the lists of a shared key
    space), after it is complete: the hook for callers that track where each value came from
    (``butane_like`` maps output paths back to YAML lines). Values taken whole from one side are
    not new and are not reported.
    """
    return _Merger(on_merged).object(parent, child, "root")


class _Merger:
    __slots__ = ("on_merged",)

    def __init__(self, on_merged: Merged | None) -> None:
        self.on_merged = on_merged

    def made(self, result: Any, parent: Any, child: Any) -> Any:
        if self.on_merged is not None:
            self.on_merged(result, parent, child)
        return result

    def object(self, parent: dict[str, Any], child: dict[str, Any], kind: str) -> dict[str, Any]:
        result = dict(parent)
        handled: set[str] = set()
        for name, child_value in child.items():
            if name in handled:
                continue
            rule = _LISTS.get((kind, name))
            if rule is not None and rule[0] == "keyed":
                shared = [n for (owner, n), r in _LISTS.items() if owner == kind and r[2:] == rule[2:]]
                if len(shared) > 1:
                    result.update(self.shared(parent, child, kind, shared, rule[1]))
                    handled.update(shared)
                    continue
            result[name] = self.value(parent.get(name), child_value, kind, name)
        return self.made(result, parent, child)

    def value(self, parent: Any, child: Any, owner: str, name: str) -> Any:
        if child is None:
            return parent
        if parent is None:
            return child
        if isinstance(parent, dict) and isinstance(child, dict):
            return self.object(parent, child, _KINDS.get((owner, name), name))
        if isinstance(parent, list) and isinstance(child, list):
            rule = _LISTS.get((owner, name), ("append",))
            if rule[0] == "append":
                return self.made(parent + child, parent, child)
            merged = self.keyed(parent, child, rule[1], _KINDS.get((owner, name), name), name)
            return self.made(merged, parent, child)
        return child

    def keyed(self, parent: list[Any], child: list[Any], key: Key, kind: str, name: str) -> list[Any]:
        by_key = {key(entry): entry for entry in child}
        parent_keys = set()
        result = []
        for entry in parent:
            k = key(entry)
            parent_keys.add(k)
            if k not in by_key:
                result.append(entry)
                continue
            other = by_key[k]
            if name == "httpHeaders" and other.get("value") is None:
                continue  # a header without a value deletes the parent's header
            result.append(self.object(entry, other, kind) if isinstance(entry, dict) else other)
        result.extend(entry for entry in child if key(entry) not in parent_keys)
        return result

    def shared(
        self, parent: dict[str, Any], child: dict[str, Any], owner: str, names: list[str], key: Key
    ) -> dict[str, Any]:
        """Lists of one key space (files, directories, links): a key lives in one list only."""
        child_home = {key(entry): name for name in names for entry in child.get(name) or ()}
        merged: dict[str, Any] = {}
        for name in names:
            parent_list = [e for e in parent.get(name) or () if child_home.get(key(e), name) == name]
            child_list = child.get(name) or []
            if name not in parent and name not in child:
                continue
            kind = _KINDS.get((owner, name), name)
            result = self.keyed(parent_list, child_list, key, kind, name)
            merged[name] = self.made(result, parent.get(name), child.get(name))
        return merged
