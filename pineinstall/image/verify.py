"""Verification of the image as stored (the compressed bytes, as published): sha256 and GPG.

Both run *while* the bytes stream past (:class:`Verifier.update`), whether that stream is the
write itself or a pass before writing. GPG uses the ``gpg`` tool (through :mod:`pineinstall.run`)
with a throwaway home directory and only the given keyring: ``gpg --verify SIG FIFO`` runs in a
thread while the stream is fed into the named pipe, so nothing is held in memory.

Outcomes of a signature check: ``good``; ``bad`` (wrong signature, or made by a key that is not in
the keyring); ``missing`` (no signature to check). ``insecure`` allows ``missing``, never ``bad``.
"""

from __future__ import annotations

import enum
import errno
import os
import threading
import time
from dataclasses import dataclass

from pineinstall.image.errors import VerificationError


class SigStatus(enum.StrEnum):
    GOOD = "good"
    BAD = "bad"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Signature:
    """A detached signature (a path, or the bytes already fetched) and the keyring to check it with."""

    keyring: str
    path: str | None = None
    data: bytes | None = None


def parse_sha256(text: str) -> bytes:
    """``HEX`` or ``sha256-HEX`` (as Ignition writes it) -> 32 bytes."""
    digest = text.strip().lower().removeprefix("sha256-").removeprefix("sha256:")
    try:
        raw = bytes.fromhex(digest)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise VerificationError(f"{text!r} is not a sha256 digest (64 hexadecimal digits)")
    return raw


class GpgCheck:
    """``gpg --verify`` of a stream fed chunk by chunk."""

    def __init__(self, sig: Signature) -> None:
        self.sig = sig
        from pineinstall import staging

        self.staged = staging.new_dir(None, "gpg")  # 0700; left by a kill -9: swept by the next run
        self.workdir = self.staged.path
        self.home = os.path.join(self.workdir, "home")
        os.mkdir(self.home, 0o700)
        if sig.data is not None:
            self.sig_path = os.path.join(self.workdir, "image.sig")
            with open(self.sig_path, "wb") as f:
                f.write(sig.data)
        elif sig.path is not None:
            self.sig_path = os.path.abspath(sig.path)
        else:
            raise ValueError("a Signature needs a path or data")
        self.keyring = os.path.abspath(sig.keyring)
        if not os.path.isfile(self.keyring):
            raise VerificationError(f"keyring {sig.keyring}: not found")
        self.fifo = os.path.join(self.workdir, "data")
        os.mkfifo(self.fifo, 0o600)
        self.fd: int | None = None
        self.status: SigStatus | None = None
        self.detail = ""
        self.broken = False
        self.thread = threading.Thread(target=self._run, name="gpg-verify", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from pineinstall import run

        argv = [
            "gpg", "--batch", "--no-tty", "--homedir", self.home, "--no-default-keyring",
            "--keyring", self.keyring, "--trust-model", "always", "--status-fd", "1",
            "--verify", self.sig_path, self.fifo,
        ]  # fmt: skip
        try:
            proc = run.run(argv, check=False)
            out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
            lines = [
                ln.split()[1] for ln in out.splitlines() if ln.startswith("[GNUPG:] ") and len(ln.split()) > 1
            ]
            if proc.returncode == 0 and "GOODSIG" in lines and "VALIDSIG" in lines:
                self.status = SigStatus.GOOD
            else:
                self.status = SigStatus.BAD
                reason = "no key in the keyring made it" if "NO_PUBKEY" in lines else "it does not match"
                if "BADSIG" in lines:
                    reason = "it does not match the image"
                last = err.strip().splitlines()[-1] if err.strip() else f"gpg exited with {proc.returncode}"
                self.detail = f"{reason} ({last})"
        except Exception as exc:  # gpg missing or failing to start: report, never hang the writer
            self.status = SigStatus.BAD
            self.detail = str(exc)

    def _open(self) -> int:
        # Non-blocking open fails with ENXIO until gpg opens the pipe; gpg may also die first.
        while True:
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                if not self.thread.is_alive():
                    self.broken = True
                    return -1
                time.sleep(0.005)
                continue
            os.set_blocking(fd, True)
            return fd

    def update(self, data: bytes | memoryview) -> None:
        if self.broken:
            return
        if self.fd is None:
            self.fd = self._open()
            if self.broken:
                return
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except BrokenPipeError:
            self.broken = True  # gpg gave up (bad signature file): its status says why

    def finish(self) -> tuple[SigStatus, str]:
        if self.fd is None and not self.broken:
            self.fd = self._open()
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
            self.fd = None
        self.thread.join()
        self.staged.remove()
        assert self.status is not None
        return self.status, self.detail

    def abort(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
            self.fd = None
        elif self.thread.is_alive():
            # Unblock gpg waiting for a writer, then let it fail.
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
        self.thread.join(timeout=30)
        self.staged.remove()


@dataclass(slots=True)
class Outcome:
    sha256: str  # hex digest of what streamed past ("" when no sha256 was asked for)
    sha256_checked: bool
    signature: SigStatus


class Verifier:
    """Feeds the sha256 and (when given) gpg; :meth:`finish` raises VerificationError on a mismatch."""

    def __init__(
        self, name: str, *, sha256: str | None, signature: Signature | None, insecure: bool, require: bool
    ) -> None:
        self.name = name
        self.expected = parse_sha256(sha256) if sha256 else None
        self.signature = signature
        self.insecure = insecure
        self.require = require
        import hashlib

        self.hash = hashlib.sha256() if self.expected is not None else None  # slow here: only when asked
        has_sig = signature is not None and (signature.path is not None or signature.data is not None)
        self.gpg = GpgCheck(signature) if has_sig else None  # type: ignore[arg-type]
        self.sig_missing = signature is not None and not has_sig
        self.count = 0

    def update(self, data: bytes | memoryview) -> None:
        if self.hash is not None:
            self.hash.update(data)
        if self.gpg is not None:
            self.gpg.update(data)
        self.count += len(data)

    def abort(self) -> None:
        if self.gpg is not None:
            self.gpg.abort()
            self.gpg = None

    def finish(self) -> Outcome:
        digest = self.hash.digest() if self.hash is not None else b""
        status = SigStatus.MISSING
        if self.gpg is not None:
            status, detail = self.gpg.finish()
            self.gpg = None
            if status is SigStatus.BAD:
                raise VerificationError(f"{self.name}: bad GPG signature: {detail}")
        if self.sig_missing and not self.insecure:
            raise VerificationError(
                f"{self.name}: no GPG signature found (--insecure accepts an unsigned image)"
            )
        import hmac

        if self.expected is not None and not hmac.compare_digest(digest, self.expected):
            raise VerificationError(
                f"{self.name}: sha256 mismatch: expected {self.expected.hex()}, got {digest.hex()} "
                f"over {self.count} bytes"
            )
        if status is SigStatus.MISSING and self.require and self.expected is None and not self.insecure:
            raise VerificationError(unverified(self.name))
        return Outcome(digest.hex(), self.expected is not None, status)


def unverified(name: str) -> str:
    """The refusal of an image with nothing to verify it with, saying exactly how to give a sha256."""
    return (
        f"{name}: no signature or sha256 to verify it with: give --image-sha256 HEX, HEX being the "
        "first field of 'sha256sum' over the image file as served (or --image-sig), or pass --insecure "
        "to accept that"
    )


def check_policy(
    name: str, *, sha256: str | None, signature: Signature | None, insecure: bool, require: bool
) -> None:
    """Refuse, before anything is read, a combination that can only fail."""
    if sha256:
        parse_sha256(sha256)
    if signature is not None:
        if not os.path.isfile(signature.keyring):
            raise VerificationError(f"keyring {signature.keyring}: not found")
        if signature.path is not None and not os.path.isfile(signature.path):
            raise VerificationError(f"signature {signature.path}: not found")
        if signature.path is None and signature.data is None and not insecure:
            raise VerificationError(f"{name}: no GPG signature found (--insecure accepts an unsigned image)")
    if require and not insecure and not sha256 and signature is None:
        raise VerificationError(unverified(name))
