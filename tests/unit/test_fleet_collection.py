"""The Ansible collection pine.provision (ansible/), run by the real ansible-core: the config plugin
renders per-host templates with the real transpiler and changes nothing the second time; hijack and
install report a host whose result record says provisioned unchanged; every example passes
ansible-playbook --syntax-check, ansible-doc reads every module, ansible-lint passes, and the
collection builds and installs with ansible-galaxy. Skipped when ansible-core is absent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from _fleet_helpers import BIN, COLLECTION, ansible, need_ansible, recap

pytestmark = [pytest.mark.real_processes, pytest.mark.slow]

MODULES = ("config", "hijack", "install")

TEMPLATE = """variant: pine
version: 1.0.0
storage:
  files:
    - path: {{ file_path | default('/etc/hostname') }}
      mode: 0644
      contents:
        inline: {{ name }}
"""

RECORD = {"provisioningDate": "2026-12-01T10:00:00Z", "userConfigProvided": True, "configHash": "sha512-ab"}


@pytest.fixture(autouse=True)
def _ansible() -> None:
    need_ansible()


def write_inventory(tmp: Path, hosts: dict[str, dict]) -> Path:
    for host_vars in hosts.values():
        host_vars.setdefault("ansible_connection", "local")
    path = tmp / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return path


def write_play(tmp: Path, tasks: list[dict], name: str = "play.yml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump([{"name": "test", "hosts": "all", "gather_facts": False, "tasks": tasks}]))
    return path


def config_task(tmp: Path) -> dict:
    return {"pine.provision.config": {"src": "node.bu.j2", "dest": f"{tmp}/build/{{{{ inventory_hostname }}}}.ign"}}


def test_config_renders_each_host_and_a_second_run_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "node.bu.j2").write_text(TEMPLATE)
    inventory = write_inventory(tmp_path, {"web1": {"name": "alpha"}, "web2": {"name": "beta"}})
    play = write_play(tmp_path, [config_task(tmp_path)])

    first = ansible(tmp_path, "ansible-playbook", "-i", str(inventory), str(play))
    assert {h: r["changed"] for h, r in recap(first.stdout).items()} == {"web1": 1, "web2": 1}
    for host, name in (("web1", "alpha"), ("web2", "beta")):
        ign = tmp_path / "build" / f"{host}.ign"
        config = json.loads(ign.read_bytes())
        assert config["storage"]["files"][0]["contents"]["source"] == f"data:,{name}"
        assert ign.stat().st_mode & 0o777 == 0o600

    second = ansible(tmp_path, "ansible-playbook", "-i", str(inventory), str(play))
    assert {h: r["changed"] for h, r in recap(second.stdout).items()} == {"web1": 0, "web2": 0}
    assert "ok: [web1]" in second.stdout and "ok: [web2]" in second.stdout

    # Check mode says what would change and writes nothing.
    before = (tmp_path / "build" / "web1.ign").read_bytes()
    checked = ansible(tmp_path, "ansible-playbook", "-i", str(inventory), str(play), "--check", "-e", "name=gamma")
    assert {h: r["changed"] for h, r in recap(checked.stdout).items()} == {"web1": 1, "web2": 1}
    assert (tmp_path / "build" / "web1.ign").read_bytes() == before


def test_config_error_fails_with_the_place_in_the_rendered_yaml(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "node.bu.j2").write_text(TEMPLATE)
    inventory = write_inventory(tmp_path, {"web1": {"name": "alpha", "file_path": "etc/hostname"}})
    play = write_play(tmp_path, [config_task(tmp_path)])
    proc = ansible(tmp_path, "ansible-playbook", "-i", str(inventory), str(play), check=False)
    assert proc.returncode == 2
    assert "the config of web1 (rendered from node.bu.j2) is invalid" in proc.stdout
    assert "error at $.storage.files.0.path, line 5 col 13: path not absolute" in proc.stdout
    assert not (tmp_path / "build").exists()


def test_hijack_and_install_leave_a_host_that_is_pine_already(tmp_path: Path) -> None:
    pine_root = tmp_path / "pine-root"
    (pine_root / "etc").mkdir(parents=True)
    (pine_root / "etc" / ".pine-result.json").write_text(json.dumps(RECORD))
    (tmp_path / "debian-root" / "etc").mkdir(parents=True)
    inventory = write_inventory(
        tmp_path, {"pine": {"root": str(pine_root)}, "debian": {"root": str(tmp_path / "debian-root")}}
    )
    config = '{"ignition": {"version": "3.4.0"}}'
    results = tmp_path / "results"
    results.mkdir()
    play = write_play(tmp_path, [
        {"pine.provision.hijack": {"config_content": config, "image_file": "/nonexistent.raw", "root": "{{ root }}"},
         "register": "hijack", "ignore_errors": True},
        {"pine.provision.install": {"dest": f"{tmp_path}/disk.img", "config": config,
                                    "image_file": "/nonexistent.raw", "root": "{{ root }}"},
         "register": "install", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ {'hijack': hijack, 'install': install} | to_json }}",
                                  "dest": f"{results}/{{{{ inventory_hostname }}}}.json"},
         "check_mode": False, "changed_when": False},
    ])
    proc = ansible(tmp_path, "ansible-playbook", "-i", str(inventory), str(play), "--check")
    pine = json.loads((results / "pine.json").read_text())
    for step in ("hijack", "install"):
        assert pine[step]["already_pine"] is True
        assert pine[step]["changed"] is False
        assert not pine[step].get("failed")
    assert pine["hijack"]["provisioning_date"] == RECORD["provisioningDate"]
    assert pine["hijack"]["config_hash"] == RECORD["configHash"]

    # A host without a record is taken over: check mode runs the controller's pineinstall with
    # --dry-run (the image does not exist here, so pineinstall refuses; the failure is reported).
    debian = json.loads((results / "debian.json").read_text())
    assert debian["hijack"]["already_pine"] is False
    assert debian["hijack"]["cmd"][1:3] == ["hijack", "debian"]
    assert debian["hijack"]["cmd"][-1] == "--dry-run"
    assert debian["hijack"]["failed"] and debian["hijack"]["msg"].startswith("pineinstall hijack failed")
    assert debian["install"]["failed"] and debian["install"]["msg"].startswith("pineinstall failed")
    assert debian["install"]["cmd"][-1] == "--dry-run"
    assert debian["install"]["rc"] != 0
    assert recap(proc.stdout)["pine"]["changed"] == 0


def module_examples(module: str) -> list[dict]:
    source = (COLLECTION / "plugins" / "modules" / f"{module}.py").read_text()
    namespace: dict = {}
    exec(compile(source.split("\nimport ", 1)[0], module, "exec"), namespace)  # the doc strings only
    return yaml.safe_load(namespace["EXAMPLES"])


def test_every_example_passes_syntax_check(tmp_path: Path) -> None:
    playbooks = sorted((COLLECTION / "playbooks").glob("*.yml"))
    assert playbooks
    for module in MODULES:  # each module's EXAMPLES, as the tasks of a play
        playbooks.append(write_play(tmp_path, module_examples(module), f"example-{module}.yml"))
    inventory = COLLECTION / "playbooks" / "inventory" / "example.yml"
    for playbook in playbooks:
        ansible(tmp_path, "ansible-playbook", "--syntax-check", "-i", str(inventory), str(playbook))


def test_ansible_doc_reads_every_module(tmp_path: Path) -> None:
    proc = ansible(tmp_path, "ansible-doc", "--json", *(f"pine.provision.{m}" for m in MODULES))
    docs = json.loads(proc.stdout)
    assert set(docs) == {f"pine.provision.{m}" for m in MODULES}
    for name, doc in docs.items():
        assert doc["doc"]["short_description"], name
        assert doc["examples"] and doc["return"], name
    assert "src" in docs["pine.provision.config"]["doc"]["options"]
    assert docs["pine.provision.hijack"]["doc"]["attributes"]["check_mode"]["support"] == "full"


def test_ansible_lint_passes(tmp_path: Path) -> None:
    if not (BIN / "ansible-lint").exists():
        pytest.skip("ansible-lint is not installed (pip install -e '.[test]')")
    # ansible-lint wants the collection at ansible_collections/NAMESPACE/NAME: a copy there.
    copy = tmp_path / "lint" / "ansible_collections" / "pine" / "provision"
    shutil.copytree(COLLECTION, copy, ignore=shutil.ignore_patterns("build", "*.tar.gz"))
    proc = ansible(copy, "ansible-lint", "--offline", "--nocolor", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_collection_builds_and_installs(tmp_path: Path) -> None:
    ansible(tmp_path, "ansible-galaxy", "collection", "build", str(COLLECTION), "--output-path", str(tmp_path))
    tarball = tmp_path / "pine-provision-0.1.0.tar.gz"
    assert tarball.exists()
    installed = tmp_path / "installed"
    ansible(tmp_path, "ansible-galaxy", "collection", "install", "--force", str(tarball), "-p", str(installed))
    root = installed / "ansible_collections" / "pine" / "provision"
    for module in MODULES:
        assert (root / "plugins" / "modules" / f"{module}.py").exists()
    assert (root / "playbooks" / "provision.yml").exists()
    proc = ansible(tmp_path, "ansible-doc", "--json", "pine.provision.config", collections=installed)
    assert json.loads(proc.stdout)["pine.provision.config"]["doc"]["module"] == "config"


def test_the_example_playbook_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    """Hosts that are Pine already (their record says provisioned): the first run writes their
    configs, hijacks nothing and passes the health check; the second run changes nothing."""
    hosts = {}
    for name in ("pine1", "pine2"):
        root = tmp_path / name
        (root / "etc").mkdir(parents=True)
        (root / "etc" / ".pine-result.json").write_text(json.dumps(RECORD))
        hosts[name] = {"pine_record_root": str(root)}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"pine_hosts": {
        "hosts": {name: {**v, "ansible_connection": "local"} for name, v in hosts.items()},
        "vars": {"pine_admin_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKey admin@example.org"],
                 "pine_image_file": "/nonexistent.raw", "pine_build_dir": str(tmp_path / "build")},
    }}))
    playbook = str(COLLECTION / "playbooks" / "provision.yml")
    first = ansible(tmp_path, "ansible-playbook", "-i", str(inventory), playbook)
    assert {h: (r["changed"], r["failed"]) for h, r in recap(first.stdout).items()} == {
        "pine1": (1, 0), "pine2": (1, 0)}  # the configs written
    config = json.loads((tmp_path / "build" / "pine1.ign").read_text())
    assert config["storage"]["files"][0]["contents"]["source"] == "data:,pine1"
    assert config["passwd"]["users"][0]["name"] == "root"
    second = ansible(tmp_path, "ansible-playbook", "-i", str(inventory), playbook)
    assert {h: (r["changed"], r["failed"]) for h, r in recap(second.stdout).items()} == {
        "pine1": (0, 0), "pine2": (0, 0)}
    assert second.stdout.count('"msg": "already Pine: its result record says provisioned; nothing to take over"') == 2


def test_config_content_is_rendered_once(tmp_path: Path) -> None:
    """An inline template is rendered by Ansible with the task's arguments; a value holding Jinja
    delimiters stays as it is."""
    inventory = write_inventory(tmp_path, {"web1": {"motd": "{% raw %}{{ not rendered twice }}{% endraw %}"}})
    content = TEMPLATE.replace("{{ file_path | default('/etc/hostname') }}", "/etc/motd").replace(
        "inline: {{ name }}", "inline: '{{ motd }}'")
    play = write_play(tmp_path, [{"pine.provision.config": {"content": content, "dest": f"{tmp_path}/web1.ign"}}])
    ansible(tmp_path, "ansible-playbook", "-i", str(inventory), str(play))
    config = json.loads((tmp_path / "web1.ign").read_text())
    assert config["storage"]["files"][0]["contents"]["source"] == "data:;base64,e3sgbm90IHJlbmRlcmVkIHR3aWNlIH19"  # {{ not rendered twice }}
