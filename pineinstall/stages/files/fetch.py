"""The files stage's fetching: every file's data (``contents`` then ``append``), fetched and verified
before anything is written; several remote files are fetched in parallel."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Any

from pineinstall.config import model
from pineinstall.resources import Fetcher, ResourceError
from pineinstall.stages import Log, StageError
from pineinstall.stages.files.nodes import data_sha256

SPOOL_MAX = 8 << 20  # fetched data above this size goes to a temporary file, not memory
FETCH_THREADS = 4


def _fetch_file_data(f: model.File, fetcher: Fetcher) -> tuple[IO[bytes] | None, bool]:
    """contents followed by the append fragments, each verified; None when there is nothing."""
    has_source = f.contents.source is not None
    if not has_source and not f.append:
        return None, False
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)  # noqa: SIM115 - owned by the plan
    try:
        if has_source:
            fetcher.fetch_to(f.contents, out)
        for frag in f.append:
            if frag.source is not None:
                out.seek(0, os.SEEK_END)
                fetcher.fetch_to(frag, out)
    except ResourceError:
        out.close()
        raise
    return out, has_source


class Fetched:
    """Every file's data (``contents`` then ``append``), fetched and verified ahead of time, e.g. by
    an installer before it writes a disk; handed to :func:`prepare`, which then fetches nothing."""

    def __init__(self) -> None:
        self.data: dict[int, tuple[IO[bytes] | None, bool, str | None]] = {}

    def take(self, index: int) -> tuple[IO[bytes] | None, bool, str | None] | None:
        return self.data.pop(index, None)

    def close(self) -> None:
        for data, _src, _sha in self.data.values():
            if data is not None:
                data.close()
        self.data.clear()


def fetch_all(config: model.Config, fetcher: Fetcher, log: Log) -> Fetched:
    """Fetch and verify the data of every ``storage.files`` entry; nothing is written anywhere."""
    fetched = Fetched()
    entries = config.storage.files
    remote = [i for i, f in enumerate(entries) if _remote(f)]
    try:
        if len(remote) > 1:
            # several servers (or one slow one): fetch up to FETCH_THREADS at a time
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(FETCH_THREADS, len(remote))) as pool:
                futures = {i: pool.submit(fetch_one, entries[i], fetcher, log) for i in remote}
            errors: list[BaseException] = []
            for i, fut in futures.items():
                if (exc := fut.exception()) is not None:
                    errors.append(exc)
                else:
                    fetched.data[i] = fut.result()
            if errors:
                raise errors[0]  # the first in config order
        for i, f in enumerate(entries):
            if i not in fetched.data:
                fetched.data[i] = fetch_one(f, fetcher, log)
    except BaseException:
        fetched.close()
        raise
    return fetched


def fetch_one(f: model.File, fetcher: Fetcher, log: Log) -> tuple[IO[bytes] | None, bool, str | None]:
    with log.op(f"fetching contents of {f.path}") if _remote(f) else _nullctx():
        try:
            data, has_source = _fetch_file_data(f, fetcher)
        except ResourceError as exc:
            raise StageError(f"failed to fetch contents of {f.path}: {exc}") from exc
    return data, has_source, (data_sha256(data) if data is not None else None)


def _remote(f: model.File) -> bool:
    sources = [f.contents.source, *(a.source for a in f.append)]
    return any(s and not s.startswith("data:") for s in sources)


@contextlib.contextmanager
def _nullctx() -> Any:
    yield
