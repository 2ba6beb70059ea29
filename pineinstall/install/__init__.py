"""``pineinstall [install] DEST CONFIG [options]``: write a Pine image (or a root filesystem) to a
block device or a disk-image file, then provision it with an Ignition config.

Order (DESIGN.md, safety rules):

1. **preflight** -- nothing is written: the config is read (YAML transpiled), checked, its references
   rendered, every file's data fetched and verified, the storage plan for *other* disks computed; DEST
   is not the running root, not mounted, swap or held, and large enough; the tools exist; the image is
   opened, sniffed and (when it fits) verified (``pineinstall.image.preflight``). Any failure: exit 1,
   DEST untouched.
2. ``--dry-run`` prints the plan here and stops. Otherwise the user confirms (``--yes``; a prompt on a
   terminal; refused when stdin is not a terminal).
3. **write**: the image layer streams the image but holds back its first MiB (boot code, protective
   MBR, primary GPT): until the very end DEST has no partition table and cannot boot
   (docs/safety.md). Rootfs mode partitions, formats and unpacks instead.
4. **provision**: the held tables are edited in a scratch file (backup GPT moved to the end, root
   partition grown); the root filesystem is grown, mounted (an OSTree sysroot is recognised: files go
   into the deployment) and provisioned through loop devices at the partitions' offsets: the
   config's disks stage for other disks, the files stage, kernel arguments and console on the
   image's bootloader, the stashed config, the host's network; unmount, sync.
5. **commit**: the first MiB, then the backup GPT, each synced. A failure before it leaves DEST
   without tables (``--preserve-on-error``: the tables are written anyway, for a look).

Mounts and scratch files live in ``/run/pineinstall/<pid>/`` (:mod:`.rundir`); a run releases what
killed runs left there. SIGTERM and SIGHUP clean up as SIGINT does (exit 128 + the signal).

Exit status: 0 installed (or planned, with ``--dry-run``), 1 failed, 2 usage error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from pineinstall import configsrc
from pineinstall.errors import PineError
from pineinstall.image.progress import sized
from pineinstall.install import dest, options
from pineinstall.stages import Log, StageError

REQUIRED_TOOLS = ("mount", "umount", "blkid", "sfdisk", "sgdisk", "partx")


class PreflightError(PineError):
    """Something found before writing: DEST is untouched."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so that it cleans up as after SIGINT."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def checkpoint(name: str) -> None:
    """Test hook of the kill-safety tests: with ``PINE_TEST_KILL_AT=<name>`` in the environment the
    process kills itself (SIGKILL) here. Without that variable (production) it does nothing."""
    if os.environ.get("PINE_TEST_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Interrupted` (SIGINT raises KeyboardInterrupt already):
    staging files, mounts and loop devices are released on the way out, and DEST is wiped."""

    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(signum)

    import threading

    previous = {}
    if threading.current_thread() is threading.main_thread():  # only it may set handlers
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _storage_devices(config: Any) -> list[tuple[str, str]]:
    """(JSON path, device) of every device the config's storage names directly."""
    st = config.storage
    out = [(f"$.storage.disks.{i}.device", d.device) for i, d in enumerate(st.disks)]
    out += [
        (f"$.storage.raid.{i}.devices.{j}", dev)
        for i, r in enumerate(st.raid)
        for j, dev in enumerate(r.devices)
    ]
    out += [(f"$.storage.luks.{i}.device", lk.device) for i, lk in enumerate(st.luks) if lk.device]
    out += [(f"$.storage.filesystems.{i}.device", f.device) for i, f in enumerate(st.filesystems)]
    return out


class Installer:
    def __init__(self, opts: options.Options, log: Log, progress: Any, stdin: Any, stdout: Any) -> None:
        self.opts = opts
        self.log = log
        self.progress = progress
        self.stdin = stdin
        self.stdout = stdout
        self.config: Any = None
        self.ign: bytes = b""
        self.dest: dest.Dest | None = None
        self.engine: Any = None  # pineinstall.engine.Engine, once the config is loaded
        self.image_plan: Any = None
        self.rootfs_kind: str | None = None
        self.layout: Any = None
        self.config_layout = False  # rootfs mode, DEST laid out by the config's storage
        self.rundir: Any = None  # pineinstall.install.rundir.RunDir, while writing
        self.summary: dict[str, Any] = {"dest": opts.dest}
        self.t0 = time.monotonic()

    @property
    def storage_plan(self) -> Any:
        """The disks stage's plan for the config's storage (None: none, or not planned yet)."""
        return self.engine.storage if self.engine is not None else None

    # --- preflight ---------------------------------------------------------------------------------

    def preflight(self) -> None:
        opts, log = self.opts, self.log
        with log.stage("preflight"):
            try:
                self.ign, self.config = configsrc.load(opts.config, log, self.stdin, opts.files_dir)
            except configsrc.ConfigError as exc:
                raise PreflightError(str(exc)) from exc
            self._offer_root_password()
            try:
                self.dest = d = dest.inspect(opts.dest)
            except dest.DestRefusedError as exc:
                raise PreflightError(str(exc)) from exc
            if d.is_block and opts.size is not None:
                raise PreflightError(f"--size is for disk-image files; {d.path} is a block device")
            log.info(
                f"DEST {d.path}: {d.kind}"
                + (f", {sized(d.size)}" if d.size is not None else ", to be created")
            )
            self._preflight_tools()
            self._preflight_config()
            if opts.rootfs:
                self._preflight_rootfs()
            else:
                self._preflight_image()
                self._preflight_target()

    def _offer_root_password(self) -> None:
        from pineinstall.engine import LoadError, load
        from pineinstall.install import rootpw
        from pineinstall.passwd import PasswdError

        opts, stdin = self.opts, self.stdin or sys.stdin
        skip = opts.no_root_password or opts.dry_run or opts.json
        if not rootpw.should_offer(self.config, stdin, skip=skip):
            return
        try:
            hashed = rootpw.ask(stdin)
        except (PasswdError, EOFError) as exc:
            raise PreflightError(f"root password: {exc or 'no answer'}") from exc
        if hashed is None:
            return
        try:
            self.ign = rootpw.merged_under(self.ign, hashed)
            self.config = load(self.ign, self.log)
        except LoadError as exc:
            raise PreflightError(str(exc)) from exc
        self.log.info("root password: set from the prompt (yescrypt), under the config")

    def _preflight_tools(self) -> None:
        from pineinstall.install import grow, rootfs
        from pineinstall.run import DEFAULT_PATH

        need = list(REQUIRED_TOOLS)
        if self.dest is not None and not self.dest.is_block:
            need.append("losetup")
        if self.opts.rootfs:
            self.rootfs_kind = rootfs.sniff(self.opts.rootfs)
            need += rootfs.tools(self.rootfs_kind)
        elif not self.opts.no_grow:
            need += grow.tools()
        path = os.environ.get("PINE_TOOLS_PATH", DEFAULT_PATH)
        missing = sorted({t for t in need if shutil.which(t, path=path) is None})
        if missing:
            raise PreflightError(f"required tools are missing: {', '.join(missing)}")

    def _preflight_config(self) -> None:
        from pineinstall import engine
        from pineinstall.block import discover

        config = self.config
        assert self.dest is not None
        retries = self.opts.fetch_retries
        self.engine = engine.Engine(config, self.log, fetch_attempts=None if retries is None else retries + 1)
        if engine.has_storage(config):
            mine = os.path.realpath(self.dest.path)
            named = []
            for where, device in _storage_devices(config):
                resolved = discover.resolve(device) or device
                whole = discover.whole_disk(resolved) if os.path.exists(resolved) else None
                if os.path.realpath(resolved) == mine or (whole and os.path.realpath(whole) == mine):
                    named.append((where, device))
            # Rootfs mode: a config that partitions DEST itself (storage.disks) gives the layout.
            self.config_layout = bool(self.opts.rootfs) and any(
                w.startswith("$.storage.disks.") for w, _ in named
            )
            if named and not self.config_layout:
                where, device = named[0]
                raise PreflightError(
                    f"error at {where}: {device} is DEST; the installer lays out DEST itself (the "
                    "config's storage may only name other disks, or, with --rootfs, lay out DEST in storage.disks)"
                )
            try:
                self.engine.plan_storage(dry_run=self.opts.dry_run)
            except StageError as exc:
                raise PreflightError(str(exc)) from exc
            if self.config_layout:
                from pineinstall.install import rootfs

                try:
                    rootfs.config_root(self.storage_plan)
                except StageError as exc:
                    raise PreflightError(str(exc)) from exc
            for m in [] if self.config_layout else self.storage_plan.mounts:
                if m.path.rstrip("/") in ("", "/boot"):
                    raise PreflightError(
                        f"the config mounts a filesystem at {m.path}, which the image provides"
                    )
        try:
            self.engine.fetch()
        except PineError as exc:
            raise PreflightError(str(exc)) from exc
        self._preflight_kargs()

    def _preflight_kargs(self) -> None:
        from pineinstall.boot import KargsError, parse_console
        from pineinstall.boot.kargs import check_arg

        try:
            for arg in (*self.opts.append_karg, *self.opts.delete_karg):
                check_arg(arg)
            for c in self.opts.console:
                parse_console(c)
        except KargsError as exc:
            raise PreflightError(str(exc)) from exc

    def _preflight_image(self) -> None:
        from pineinstall import image

        opts = self.opts
        assert opts.image is not None
        source: Any = opts.image_file
        if opts.image_url:
            source = image.HttpSource(opts.image_url, total_timeout=opts.fetch_timeout, log=self.log.info)
            if opts.fetch_retries is not None:
                source.retries = opts.fetch_retries
        elif opts.image_file and not os.path.exists(opts.image_file):
            raise PreflightError(f"--image-file {opts.image_file}: no such file")
        signature = None
        if opts.keyring or opts.image_sig:
            assert opts.keyring is not None
            signature = image.Signature(opts.keyring, opts.image_sig)
        try:
            self.image_plan = image.preflight(
                source,
                opts.dest,
                sha256=opts.image_sha256,
                signature=signature,
                insecure=opts.insecure,
                size=opts.size,
                tmpdir=opts.tmpdir,
                progress=self.progress,
            )
        except image.ImageError as exc:
            raise PreflightError(str(exc)) from exc
        self.log.info(f"image: {self.image_plan.describe()}")

    def _preflight_target(self) -> None:
        """The config's account names against the image's own /etc, read-only (imageroot)."""
        from pineinstall.install.imageroot import check_image
        from pineinstall.target.preflight import TargetCheckError

        try:
            check_image(self.image_plan, self.config, self.opts.tmpdir, self.log)
        except TargetCheckError as exc:
            raise PreflightError(str(exc)) from exc

    def _preflight_rootfs(self) -> None:
        from pineinstall.install import rootfs

        opts, d = self.opts, self.dest
        assert d is not None and opts.rootfs is not None and self.rootfs_kind is not None
        capacity = d.size if d.is_block else max(opts.size or 0, d.size or 0) or None
        if capacity is None:
            raise PreflightError(f"{d.path} does not exist: give its size with --size")
        self.layout = None if self.config_layout else rootfs.default_layout(opts.swap_size)
        try:
            rootfs.preflight(opts.rootfs, self.rootfs_kind, capacity, self.layout)
        except StageError as exc:
            raise PreflightError(str(exc)) from exc
        self.capacity = capacity

    def cleanup(self) -> None:
        if self.image_plan is not None:
            self.image_plan.cleanup()
        if self.engine is not None:
            self.engine.close()
        if self.rundir is not None:
            self.rundir.close()
            self.rundir = None

    # --- plan, confirmation ------------------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        from pineinstall.install import plan

        return plan.describe(self)

    def confirm(self) -> bool:
        opts, d = self.opts, self.dest
        assert d is not None
        if opts.yes or not d.exists or (not d.is_block and not d.size):
            return True  # nothing there to lose
        stdin = self.stdin or sys.stdin
        if not stdin.isatty():
            self.log.error(f"{d.path} would be overwritten; stdin is not a terminal to ask: pass --yes")
            return False
        sys.stderr.write(
            f"Everything on {d.path} ({d.kind}, {sized(d.size or 0)}) will be overwritten. Continue? [y/N] "
        )
        sys.stderr.flush()
        answer = stdin.readline()
        if isinstance(answer, bytes):
            answer = answer.decode("utf-8", "replace")
        return answer.strip().lower() in ("y", "yes")

    # --- writing -----------------------------------------------------------------------------------

    def install(self) -> None:
        """Everything after preflight; raises on failure (the caller wipes DEST)."""
        assert self.rundir is not None
        if self.opts.rootfs:
            from pineinstall.install import rootfsflow

            rootfsflow.install(self)
        else:
            self._install_image()
        os.sync()
        checkpoint("synced")

    @contextlib.contextmanager
    def _holding(self, head: bytes, image_size: int) -> Iterator[Any]:
        """DEST's tables held back in a scratch file (:class:`.tables.HeldTables`) while the body
        runs, committed after it: the first MiB (boot code, primary GPT), then the backup GPT. A
        failure leaves DEST without tables (``--preserve-on-error``: committed anyway, for a look)."""
        from pineinstall.install import tables

        assert self.rundir is not None
        opts = self.opts
        with tables.HeldTables(opts.dest, head, image_size, self.rundir.path) as held:
            try:
                yield held
            except BaseException:
                if opts.preserve_on_error:  # kept for a look: the tables too
                    with contextlib.suppress(Exception):
                        held.commit()
                raise
            with self.log.op(f"writing the partition tables and boot code of {opts.dest}"):
                held.commit()
        checkpoint("committed")

    def _install_image(self) -> None:
        """The image without its first MiB, so DEST cannot boot until the end (docs/safety.md); the
        tables grown in a scratch copy, the root grown, mounted and provisioned through loop devices
        at the partitions' offsets; the tables and boot code written last, once all of it is synced."""
        from pineinstall import image
        from pineinstall.install import grow

        opts, log = self.opts, self.log
        result = image.execute(
            self.image_plan, preserve_on_error=opts.preserve_on_error, progress=self.progress, hold_head=True
        )
        self.image_plan = None  # executed (its temporary files are gone)
        self.summary["image"] = result.to_dict()
        checkpoint("image-written")
        with self._holding(result.head or b"", result.image_size) as held:
            dev = held.dev
            with log.stage("grow"):
                if not opts.no_grow:
                    grow.move_backup_header(dev, log)
                    checkpoint("backup-gpt-moved")
                root = grow.find_root(dev, fstype_of=held.fstype)
                if not opts.no_grow:
                    grow.grow_partition(dev, root, log)
                    checkpoint("partition-grown")
                root.node = held.partition(root.number)
                if not opts.no_grow:
                    grow.grow_filesystem_offline(root, log)
                    checkpoint("filesystem-grown")
            self.summary["root"] = {"partition": root.number, "fstype": root.fstype,
                                    "sectors_before": root.size_before, "sectors": root.size}  # fmt: skip
            boot = self._boot_partition(dev, root.number)
            with self._mounted(root.node, root.fstype or None) as mnt:
                checkpoint("root-mounted")
                if not opts.no_grow:
                    grow.grow_filesystem_online(root, mnt, log)
                if boot is not None:
                    self._mount(held.partition(boot), os.path.join(mnt, "boot"), None)
                self.provision(mnt)
                checkpoint("provisioned")
            checkpoint("unmounted")

    @contextlib.contextmanager
    def _mounted(self, node: str, fstype: str | None) -> Iterator[str]:
        """``node`` mounted at the run directory's ``root``; everything under it unmounted after."""
        from pineinstall.install import rundir

        assert self.rundir is not None
        mnt = self.rundir.subdir("root")
        try:
            self._mount(node, mnt, fstype)
            yield mnt
        finally:
            from pineinstall.run import run

            for point in rundir.mounts_under(mnt):
                run(["umount", point], check=False)

    def _mount(self, node: str, where: str, fstype: str | None) -> None:
        from pineinstall.run import run

        with self.log.op(f"mounting {node} at {where}"):
            os.makedirs(where, exist_ok=True)
            run(["mount", *(["-t", fstype] if fstype else []), node, where])

    def _boot_partition(self, dev: str, root_number: int) -> int | None:
        """A separate partition labelled ``boot`` (Fedora CoreOS layout) is mounted at /boot."""
        from pineinstall.block import sfdisk

        for p in sfdisk.dump(dev).partitions:
            if p.label == "boot" and p.number != root_number:
                return p.number
        return None

    def provision(self, mnt: str) -> None:
        """The engine's stages on the installed root: the config's disks and mounts for other disks
        (unless the config laid out DEST), files (then the host's network), kargs on the image's
        bootloader (with --append-karg, --delete-karg, --console), umount; then the stash."""
        from pineinstall.install import stash
        from pineinstall.stages.kargs import Kargs
        from pineinstall.target import open_target

        opts, log = self.opts, self.log
        target = open_target(mnt)
        self.summary["target"] = {"kind": target.kind, "root": os.path.relpath(target.root, mnt)}
        self.engine.kargs = Kargs(
            boot_root=lambda _target: mnt,
            append=tuple(opts.append_karg),
            delete=tuple(opts.delete_karg),
            console=tuple(opts.console),
        )

        def copy_network(target: Any) -> None:
            checkpoint("files-done")
            if opts.copy_network:
                with log.stage("network"):
                    self.summary["network"] = stash.copy_network(opts.network_source, target, log)

        done = self.engine.run(target, after_files=copy_network, storage_done=self.config_layout)
        self.summary["files"] = {"created": done.files.created, "unchanged": done.files.unchanged}
        bootloader = self._bootloader(mnt, done.kargs)
        if bootloader is not None:
            self.summary["bootloader"] = bootloader
        if opts.stash_config:
            stash.stash_config(mnt, self.ign, log)
            self.summary["stashed"] = "/boot/ignition/config.ign"
            self.summary["firstboot"] = stash.enable_firstboot(target, log)

    @staticmethod
    def _bootloader(mnt: str, change: Any) -> dict[str, Any] | None:
        """The summary's ``bootloader``: what the kargs stage changed, or (nothing asked) what is there."""
        from pineinstall.boot import detect

        if change is None:
            with contextlib.suppress(Exception):
                loader = detect(mnt)
                return {"name": loader.name, "kargs": loader.kargs()}
            return None
        return {
            "name": change.bootloader,
            "kargs_before": change.before,
            "kargs": change.after,
            "files": [os.path.relpath(f, mnt) for f in change.files],
        }

    # --- the whole run -----------------------------------------------------------------------------

    def run(self) -> int:
        from pineinstall import staging
        from pineinstall.image import ImageError
        from pineinstall.install import rundir

        opts, log = self.opts, self.log
        try:
            if not opts.dry_run:  # what killed runs left: mounts, loop devices, staged files
                rundir.release_dead(log)
                staging.sweep(opts.tmpdir, log=log)
            checkpoint("start")
            try:
                self.preflight()
            except (PineError, OSError) as exc:
                log.error(f"preflight failed, {opts.dest} untouched: {exc}")
                return 1
            if opts.dry_run:
                self._print_plan()
                return 0
            if not self.confirm():
                log.error(f"{opts.dest} untouched")
                return 1
            checkpoint("preflight-done")
            try:
                self.rundir = rundir.RunDir(opts.dest)
            except OSError as exc:
                log.error(f"{opts.dest} untouched: cannot make the run directory: {exc}")
                return 1
            began = True
            try:
                self.install()
            except BaseException as exc:
                written = not isinstance(exc, ImageError)  # the image layer wiped after its own failures
                if began and written and not opts.preserve_on_error and os.path.exists(opts.dest):
                    with contextlib.suppress(OSError):
                        dest.wipe_tables(opts.dest)
                        log.error(f"{opts.dest}: partition tables wiped after the failure")
                if isinstance(exc, (PineError, OSError)):
                    log.error(f"install failed: {exc}")
                    return 1
                raise
        finally:
            self.cleanup()
        self.summary["seconds"] = round(time.monotonic() - self.t0, 2)
        log.info(f"installed {opts.dest} in {self.summary['seconds']} s")
        if opts.json:
            self.stdout.write(
                json.dumps({"event": "installed", **self.summary}, sort_keys=True, default=str) + "\n"
            )
            self.stdout.flush()
        return 0

    def _print_plan(self) -> None:
        from pineinstall.install import plan

        described = plan.describe(self)
        if self.opts.json:
            self.stdout.write(json.dumps({"event": "plan", **described}, sort_keys=True, default=str) + "\n")
        else:
            self.stdout.write(plan.render(described))
        self.stdout.flush()


def main(argv: list[str], *, stdin: Any = None, stdout: Any = None, stderr: Any = None) -> int:
    from pineinstall.image import make_progress

    try:
        opts = options.parse(argv)
    except options.UsageError as exc:
        print(f"pineinstall install: {exc}", file=stderr or sys.stderr)
        return 2
    stdout = stdout or sys.stdout
    err = stderr or sys.stderr
    log = Log(err, quiet=opts.quiet)
    progress = (
        make_progress("json", stdout) if opts.json else make_progress("none" if opts.quiet else "auto", err)
    )
    progress.start(None, f"pineinstall install {opts.dest}")
    from pineinstall.install import qcow2out

    def into_raw(raw_opts: options.Options) -> int:
        installer = Installer(raw_opts, log, progress, stdin, stdout)
        installer.summary.update(dest=opts.dest, format="qcow2")  # what the caller asked for
        return installer.run()

    try:
        with signals_interrupt():
            if qcow2out.wanted(opts):
                return qcow2out.install(opts, log, stdin, into_raw)
            return Installer(opts, log, progress, stdin, stdout).run()
    except KeyboardInterrupt as exc:  # SIGINT, or Interrupted: cleaned up on the way here
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        log.error(f"stopped by {signal.Signals(signum).name}")
        return 128 + signum
