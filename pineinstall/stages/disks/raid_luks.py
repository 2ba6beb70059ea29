"""The disks stage's RAID arrays (``mdadm --create``) and LUKS volumes (``cryptsetup``: an existing
volume is reused when Ignition would, else formatted; key files fetched and verified, or a key
generated; clevis bindings)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import secrets
import shutil
import urllib.parse
from typing import Any

from pineinstall.block import blkid, cryptsetup, mdadm, wipefs
from pineinstall.run import DEFAULT_PATH, run
from pineinstall.stages import StageError
from pineinstall.stages.disks.devices import (
    DeviceNames,
    DeviceRef,
    Env,
    kernel_partition,
    probe,
    refuse_busy_ref,
)
from pineinstall.stages.plan import Command, LuksPlan, RaidPlan

GENERATED_KEY_BYTES = 4096  # hex-encoded, as Ignition generates them


def plan_raid(index: int, raid: Any, names: DeviceNames) -> RaidPlan:
    where = f"$.storage.raid.{index}"
    level = str(raid.level) if raid.level is not None else ""
    if level not in mdadm.LEVELS:
        raise StageError(f"{where}.level: unsupported RAID level {level!r}")
    spares = raid.spares or 0
    active = len(raid.devices) - spares
    minimum = mdadm.MIN_ACTIVE[mdadm.LEVELS[level]]
    if active < minimum:
        raise StageError(
            f"{where}: {level} needs at least {minimum} active devices, got {active} "
            f"({len(raid.devices)} devices, {spares} spares)"
        )
    nodes = []
    for j, dev in enumerate(raid.devices):
        ref = names.resolve(dev, f"{where}.devices.{j}")
        refuse_busy_ref(ref, f"{where}.devices.{j}", f"use {dev} in array {raid.name}")
        nodes.append(ref.node)
    path = mdadm.device_path(raid.name)
    argv = mdadm.create_argv(raid.name, level, nodes, spares=spares, options=tuple(raid.options))
    return RaidPlan(
        name=raid.name,
        path=path,
        level=level,
        devices=list(raid.devices),
        nodes=nodes,
        spares=spares,
        options=list(raid.options),
        commands=[Command(argv, f"create RAID array {raid.name}")],
    )


def _wants_clevis(luks: Any) -> bool:
    c = luks.clevis
    return bool(c.tang) or bool(c.tpm2) or c.custom is not None


def fetch_data_url(source: str) -> bytes:
    """The bytes of a ``data:`` URL (RFC 2397)."""
    head, sep, data = source[len("data:") :].partition(",")
    if not sep:
        raise ValueError("malformed data URL")
    if head.endswith(";base64"):
        return base64.b64decode(urllib.parse.unquote(data))
    return urllib.parse.unquote_to_bytes(data)


def fetch_key(resource: Any, env: Env, where: str) -> bytes:
    source = resource.source
    if env.dry_run and env.fetch is None and not source.startswith("data:"):
        return b""
    try:
        if env.fetch is not None:
            data = env.fetch(resource)
        elif source.startswith("data:"):
            data = fetch_data_url(source)
        else:
            raise StageError(f"{where}: cannot fetch {source!r} here (no resource fetcher was given)")
        if resource.compression is not None and str(resource.compression) == "gzip":
            data = gzip.decompress(data)
    except StageError:
        raise
    except Exception as exc:
        raise StageError(f"{where}: cannot read the key file: {exc}") from exc
    want = resource.verification.hash if resource.verification else None
    if want:
        algo, _, digest = want.partition("-")
        if hashlib.new(algo, data).hexdigest() != digest.lower():
            raise StageError(f"{where}: the key file does not match its verification hash")
    return data


def _luks_matches(ref: DeviceRef, sig: blkid.Signature, luks: Any, key: bytes) -> bool:
    """Ignition's "volume exists": a LUKS2 header, the same label and UUID when given, and the key
    opens it. The header is read by blkid (it works on a partition's byte range before the kernel
    has a node for it); the key is tested without device-mapper (``--test-passphrase``) when the
    volume has a node now, otherwise by the open in :func:`apply`."""
    if sig.type != "crypto_LUKS" or sig.get("VERSION") != "2":
        return False
    if luks.label is not None and sig.label != luks.label:
        return False
    if luks.uuid is not None and sig.uuid.lower() != luks.uuid.lower():
        return False
    node: str | None = ref.node if ref.kind == "block" else None
    if ref.kind == "partition" and ref.disk is not None and ref.row is not None and ref.row.action == "keep":
        kernel = kernel_partition(ref.disk.path, ref.row.number)
        node = f"/dev/{kernel}" if kernel else None
    if node is None or not key:
        return True  # tested by the open in apply (or not at all: a dry run without the key)
    return run(cryptsetup.test_key_argv(node), input=key, check=False).returncode == 0


def plan_luks(index: int, luks: Any, names: DeviceNames, env: Env) -> LuksPlan:
    where = f"$.storage.luks.{index}"
    if luks.cex.enabled:
        raise StageError(f"{where}.cex: IBM CEX secure keys are not supported here")
    clevis = _wants_clevis(luks)
    if clevis and shutil.which("clevis", path=DEFAULT_PATH) is None:
        raise StageError(f"{where}.clevis: clevis is not supported here (the clevis tools are not installed)")
    if luks.device is None:
        raise StageError(f"{where}.device: no device given")
    ref = names.resolve(luks.device, f"{where}.device")
    generated = not luks.key_file.source
    key = (
        secrets.token_hex(GENERATED_KEY_BYTES).encode()
        if generated
        else fetch_key(luks.key_file, env, f"{where}.keyFile")
    )
    wipe = bool(luks.wipe_volume)
    path = f"/dev/mapper/{luks.name}"
    found = "?" if ref.fresh else ""
    action = "create"
    if not ref.fresh:
        sig = probe(ref)
        found = sig.type
        if wipe:
            action = "wipe+create" if sig.type else "create"
        elif sig.type:
            reusable = not generated and not clevis and _luks_matches(ref, sig, luks, key)
            if not reusable:
                raise StageError(
                    f"{where}: volume at {luks.device} is not of the correct type, label, or UUID "
                    f"(found {sig.type}, {sig.label!r}, {sig.uuid}) and a volume wipe was not requested"
                )
            action = "reuse"
    if action != "reuse":
        refuse_busy_ref(ref, where, f"format {luks.device} as LUKS")
    commands: list[Command] = []
    if action == "wipe+create" or (action == "create" and ref.fresh and wipe):
        commands.append(Command(wipefs.wipe_all_argv(ref.node), f"wipe signatures from {ref.node}"))
    if action != "reuse":
        commands.append(
            Command(
                cryptsetup.format_argv(
                    ref.node, label=luks.label, uuid=luks.uuid, options=tuple(luks.options)
                ),
                f"format LUKS volume {luks.name}",
                key,
            )
        )
    commands.append(
        Command(
            cryptsetup.open_argv(
                ref.node, luks.name, discard=bool(luks.discard), open_options=tuple(luks.open_options)
            ),
            f"open LUKS volume {luks.name}",
            key,
        )
    )
    if clevis:
        pin, config = clevis_pin(luks)
        commands.append(Command(cryptsetup.clevis_bind_argv(ref.node, pin, config), "bind clevis", key))
    return LuksPlan(
        name=luks.name,
        device=luks.device,
        node=ref.node,
        path=path,
        action=action,
        key_source="generated" if generated else "resource",
        label=luks.label,
        uuid=luks.uuid,
        discard=bool(luks.discard),
        open_options=list(luks.open_options),
        clevis=clevis,
        found=found,
        commands=commands,
        key=key,
    )


def clevis_pin(luks: Any) -> tuple[str, str]:
    import json

    c = luks.clevis
    if c.custom is not None and c.custom.pin:
        return c.custom.pin, c.custom.config or ""
    pins: dict[str, Any] = {}
    if c.tang:
        pins["tang"] = [
            {
                "url": t.url,
                **({"thp": t.thumbprint} if t.thumbprint else {}),
                **({"adv": t.advertisement} if t.advertisement else {}),
            }
            for t in c.tang
        ]
    if c.tpm2:
        pins["tpm2"] = {}
    return "sss", json.dumps({"t": c.threshold or 1, "pins": pins})
