"""Config providers: the kernel command line, QEMU fw_cfg (a fake sysfs directory: this host's kernel
has no fw_cfg), the /boot stash and plain files. No process runs here except where a test says so."""

from __future__ import annotations

import base64
import io
import os
import threading
from pathlib import Path

import pytest

from pineinstall import providers
from pineinstall import run as run_module
from pineinstall.providers import ProviderError, cmdline, file, fwcfg, stash

CONFIG = b'{"ignition":{"version":"3.4.0"}}'


# --- kernel command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("BOOT_IMAGE=/vmlinuz root=UUID=x rw", None),
        ("quiet ignition.config.url=http://a/x.ign", ("ignition.config.url", "http://a/x.ign")),
        ("pine.config.url=http://p/x ignition.config.url=http://i/x", ("pine.config.url", "http://p/x")),
        # Pine's key wins wherever it stands
        ("ignition.config.url=http://i/x pine.config.url=http://p/x", ("pine.config.url", "http://p/x")),
        # the last of one key counts
        ("pine.config.url=http://a pine.config.url=http://b", ("pine.config.url", "http://b")),
        # an empty value is no URL: the other key is used
        ("pine.config.url= ignition.config.url=tftp://t/c", ("ignition.config.url", "tftp://t/c")),
        ('x="a b" pine.config.url="data:,%7B%7D"', ("pine.config.url", "data:,%7B%7D")),
        ("mypine.config.url=http://no", None),
    ],
)
def test_config_url_precedence(line: str, expected: tuple[str, str] | None) -> None:
    assert cmdline.config_url(line) == expected


def test_cmdline_data_url_is_fetched(tmp_path: Path) -> None:
    line = tmp_path / "cmdline"
    encoded = base64.b64encode(CONFIG).decode()
    line.write_text(f"root=/dev/vda3 pine.config.url=data:;base64,{encoded} console=ttyS0\n")
    source, data = cmdline.fetch(str(line))
    assert data == CONFIG
    assert source == "pine.config.url=data: URL (" + str(len("data:;base64," + encoded)) + " characters)"


def test_cmdline_without_url_is_no_config(tmp_path: Path) -> None:
    line = tmp_path / "cmdline"
    line.write_text("root=/dev/vda3 rw\n")
    assert cmdline.fetch(str(line)) is None
    assert cmdline.fetch(str(tmp_path / "absent")) is None


def test_cmdline_unsupported_scheme_is_an_error_naming_the_key(tmp_path: Path) -> None:
    line = tmp_path / "cmdline"
    line.write_text("ignition.config.url=s3://bucket/secret.ign?token=abc\n")
    with pytest.raises(ProviderError) as err:
        cmdline.fetch(str(line))
    text = str(err.value)
    assert text.startswith("ignition.config.url: s3 sources are not supported")
    assert "token=abc" not in text


# --- fw_cfg ------------------------------------------------------------------------------------------


def fake_fwcfg(tmp_path: Path, data: bytes | None) -> Path:
    sysfs = tmp_path / "qemu_fw_cfg"
    entry = sysfs / "by_name" / "opt" / "com.coreos" / "config"
    entry.mkdir(parents=True)
    (entry / "size").write_text(f"{len(data or b'')}\n")
    if data is not None:
        (entry / "raw").write_bytes(data)
    return sysfs


def test_fwcfg_entry_is_read(tmp_path: Path) -> None:
    sysfs = fake_fwcfg(tmp_path, CONFIG)
    assert fwcfg.fetch(str(sysfs)) == ("fw_cfg opt/com.coreos/config", CONFIG)


def test_fwcfg_large_entry_is_read_whole(tmp_path: Path) -> None:
    big = b'{"ignition":{"version":"3.4.0"},"x":"' + b"a" * 300_000 + b'"}'
    sysfs = fake_fwcfg(tmp_path, big)
    assert fwcfg.fetch(str(sysfs))[1] == big


def test_fwcfg_raw_is_read_to_eof_whatever_its_size_says(tmp_path: Path) -> None:
    # sysfs reports 4096 or 0 for the raw file: a FIFO (size 0, data arriving in pieces) must still
    # be read to its end.
    fifo = tmp_path / "raw"
    os.mkfifo(fifo)
    payload = b"x" * 200_000

    def writer() -> None:
        with open(fifo, "wb") as f:
            for i in range(0, len(payload), 5000):
                f.write(payload[i : i + 5000])
                f.flush()

    t = threading.Thread(target=writer)
    t.start()
    assert os.stat(fifo).st_size == 0
    assert fwcfg.read_raw(str(fifo)) == payload
    t.join()


def test_fwcfg_without_the_entry_is_no_config(tmp_path: Path) -> None:
    sysfs = fake_fwcfg(tmp_path, None)  # other entries exist, not ours
    said: list[str] = []
    assert fwcfg.fetch(str(sysfs), log=said.append) is None
    assert said == ["fw_cfg: no entry opt/com.coreos/config"]


def test_fwcfg_missing_directory_elsewhere_is_no_config_without_modprobe(tmp_path: Path) -> None:
    # not the real sysfs path: the module is not loaded (the autouse guard would fail on a process)
    assert fwcfg.fetch(str(tmp_path / "none")) is None


def test_fwcfg_loads_the_module_when_sysfs_lacks_the_directory(monkeypatch, tmp_path: Path) -> None:
    calls = []
    sysfs = tmp_path / "qemu_fw_cfg"

    def modprobe(argv, **kwargs):
        calls.append(argv)
        fake_fwcfg(tmp_path, CONFIG)  # what loading the module does: the directory appears

    monkeypatch.setattr(run_module, "run", modprobe)
    assert fwcfg.fetch(str(sysfs), modprobe=True) == ("fw_cfg opt/com.coreos/config", CONFIG)
    assert calls == [["modprobe", "qemu_fw_cfg"]]


def test_fwcfg_module_that_fails_to_load_means_no_config(monkeypatch, tmp_path: Path) -> None:
    def modprobe(argv, **kwargs):
        raise run_module.CommandError(argv, 1, "modprobe: FATAL: Module qemu_fw_cfg not found")

    monkeypatch.setattr(run_module, "run", modprobe)
    said: list[str] = []
    assert fwcfg.fetch(str(tmp_path / "qemu_fw_cfg"), modprobe=True, log=said.append) is None
    # the console says why: the module's error, the machine's missing directory
    assert len(said) == 1 and said[0].startswith(f"fw_cfg: no {tmp_path / 'qemu_fw_cfg'} (modprobe ")
    assert said[0].endswith("Module qemu_fw_cfg not found)")


def test_fwcfg_unreadable_entry_is_an_error(tmp_path: Path) -> None:
    sysfs = fake_fwcfg(tmp_path, None)
    (sysfs / "by_name" / "opt" / "com.coreos" / "config" / "raw").mkdir()  # EISDIR on read
    with pytest.raises(ProviderError, match=r"cannot read fw_cfg entry opt/com\.coreos/config"):
        fwcfg.fetch(str(sysfs))


# --- the stash ----------------------------------------------------------------------------------------


def test_stash_found_read_and_removed_with_its_empty_directory(tmp_path: Path) -> None:
    d = tmp_path / "boot" / "ignition"
    d.mkdir(parents=True)
    (d / "config.ign").write_bytes(CONFIG)
    assert stash.fetch(tmp_path) == (str(d / "config.ign"), CONFIG)
    assert stash.remove(tmp_path) == [str(d / "config.ign")]
    assert not d.exists() and (tmp_path / "boot").is_dir()
    assert stash.fetch(tmp_path) is None


def test_stash_directory_with_other_files_is_kept(tmp_path: Path) -> None:
    d = tmp_path / "boot" / "ignition"
    d.mkdir(parents=True)
    (d / "config.ign").write_bytes(CONFIG)
    (d / "base.ign").write_bytes(CONFIG)
    stash.remove(tmp_path)
    assert sorted(p.name for p in d.iterdir()) == ["base.ign"]


def test_stash_of_a_booted_ostree_system_is_under_sysroot(tmp_path: Path) -> None:
    d = tmp_path / "sysroot" / "boot" / "ignition"
    d.mkdir(parents=True)
    (d / "config.ign").write_bytes(CONFIG)
    assert stash.fetch(tmp_path) == (str(d / "config.ign"), CONFIG)
    assert stash.remove(tmp_path) == [str(d / "config.ign")]


# --- files, and the order of providers ---------------------------------------------------------------


def test_file_provider(tmp_path: Path) -> None:
    p = tmp_path / "c.ign"
    p.write_bytes(CONFIG)
    assert file.read(str(p)) == CONFIG
    assert file.read("-", stdin=io.BytesIO(CONFIG)) == CONFIG
    with pytest.raises(ProviderError, match=r"cannot read .*absent\.ign: No such file or directory"):
        file.read(str(tmp_path / "absent.ign"))


def test_first_provider_with_a_config_wins_and_later_ones_are_not_asked() -> None:
    asked = []

    def ask(name: str, result):
        def f():
            asked.append(name)
            return result

        return (name, f)

    found = providers.first([ask("a", None), ask("b", ("src", b"B")), ask("c", ("x", b"C"))])
    assert found == providers.Found("b", "src", b"B")
    assert asked == ["a", "b"]
    assert providers.first([ask("d", None)]) is None
