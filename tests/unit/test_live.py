"""The pure parts of ``pineinstall live-install``: the kernel command line, path rules, the partition
table probe on plain files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pineinstall.live import Kargs, LiveError, is_url, parse_cmdline, resolve_path, table_signatures


def test_parse_cmdline_collects_pine_inst_and_consoles() -> None:
    k = parse_cmdline(
        "BOOT_IMAGE=/live/vmlinuz boot=live console=tty0 pine.inst.dest=/dev/vda console=ttyS0,115200n8 "
        'pine.inst.config="https://h/x.ign?a=1" pine.inst.image=/images/p.raw.xz pine.inst.yes '
        "pine.inst.poweroff=1 quiet\n"
    )
    assert k == Kargs(
        {
            "dest": "/dev/vda",
            "config": "https://h/x.ign?a=1",
            "image": "/images/p.raw.xz",
            "yes": True,
            "poweroff": True,
        },
        ["tty0", "ttyS0,115200n8"],
    )


def test_parse_cmdline_last_value_wins_and_unknown_keys_warn(capsys: pytest.CaptureFixture[str]) -> None:
    k = parse_cmdline("pine.inst.dest=/dev/sda pine.inst.dest=/dev/sdb pine.inst.nope=1 pine.instdest=x")
    assert k.inst == {"dest": "/dev/sdb"}
    err = capsys.readouterr().err
    assert "pine.inst.dest given twice; the last one (/dev/sdb) counts" in err
    assert "unknown kernel argument pine.inst.nope ignored" in err
    assert "pine.instdest" not in err  # not in our namespace at all


@pytest.mark.parametrize(
    ("cmdline", "message"),
    [
        ("pine.inst.dest", "pine.inst.dest needs a value"),
        ("pine.inst.image=", "pine.inst.image needs a value"),
        ("pine.inst.reboot=no", "pine.inst.reboot is a flag"),
        ('pine.inst.config="unbalanced', "unbalanced double quote"),
    ],
)
def test_parse_cmdline_refuses(cmdline: str, message: str) -> None:
    with pytest.raises(LiveError, match=message):
        parse_cmdline(cmdline)


def test_is_url() -> None:
    assert is_url("https://x/y") and is_url("HTTP://x/y")
    assert not is_url("/http://x") and not is_url("tftp://x/y") and not is_url("images/x")


def test_resolve_path_rules(tmp_path: Path) -> None:
    medium = tmp_path / "medium"
    (medium / "cfg").mkdir(parents=True)
    (medium / "cfg" / "a.ign").write_text("{}")
    live_file = tmp_path / "live" / "b.ign"
    live_file.parent.mkdir()
    live_file.write_text("{}")
    m = str(medium)
    assert resolve_path("cfg/a.ign", m, "x") == f"{m}/cfg/a.ign"
    assert resolve_path("/cfg/a.ign", m, "x") == f"{m}/cfg/a.ign"  # absolute: inside the medium first
    assert resolve_path(str(live_file), m, "x") == str(live_file)  # then the live system
    with pytest.raises(LiveError, match="not found on the medium"):
        resolve_path("cfg/b.ign", m, "x")
    with pytest.raises(LiveError, match="not a usable path"):
        resolve_path("cfg/../../live/b.ign", m, "x")
    # A relative path never falls back to the live system's current directory.
    with pytest.raises(LiveError, match=r"not found on the medium \(.*\)$"):
        resolve_path(str(live_file).lstrip("/") + ".missing", m, "x")


def _file(tmp_path: Path, size: int, writes: dict[int, bytes]) -> str:
    p = tmp_path / "d.img"
    with open(p, "wb") as f:
        f.truncate(size)
        for off, data in writes.items():
            f.seek(off)
            f.write(data)
    return str(p)


def test_table_signatures(tmp_path: Path) -> None:
    size = 8 << 20
    assert table_signatures(_file(tmp_path, size, {})) == []
    assert table_signatures(_file(tmp_path, size, {510: b"\x55\xaa"})) == [
        "an MBR (boot signature 55aa at byte 510)"
    ]
    # 4096-byte sectors: the GPT header is at 4096 and the backup in the last 4096-byte sector.
    found = table_signatures(_file(tmp_path, size, {4096: b"EFI PART", size - 4096: b"EFI PART"}))
    assert found == ["a GPT header at byte 4096", f"a backup GPT header at byte {size - 4096}"]
    assert table_signatures(_file(tmp_path, size, {size - 512: b"EFI PART"})) == [
        f"a backup GPT header at byte {size - 512}"
    ]
    # A small disk (less than the 1 MiB spans) is read once, whole.
    assert table_signatures(_file(tmp_path, 4096, {512: b"EFI PART"})) == ["a GPT header at byte 512"]
