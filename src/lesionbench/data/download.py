"""Fetching, verifying and extracting source files, with nothing ever left half-written.

- ``fetch`` downloads one URL to a target path through pooch: the bytes go to a temporary file in the
  target's folder, the MD5 (and size) are checked there, and only then is the file renamed onto the target.
  A failed or corrupt download is deleted; an existing target with the right MD5 is not fetched again.
  Retries (with pooch's growing wait) cover transient network errors. ``file://`` URLs are copied
  (a local mirror, or a test fixture).
- ``check_file`` verifies a file the user placed (size, MD5) and names it when it does not match.
- ``extract`` unpacks a tar or zip archive member by member (streamed, never loaded whole) into a temporary
  folder beside the target and renames it into place only when every member was read in full. Members
  with absolute paths, ``..`` components or links are rejected; macOS junk (``._*``, ``__MACOSX``,
  ``.DS_Store``) is skipped.

Every error is a ``SourceError`` (``DownloadError`` for downloads) whose message names the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from ..io.atomic import atomic_dir
from .sources import SourceError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
JUNK_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db"}
EXTRACTED_STAMP = ".lesionbench_extracted.json"


class DownloadError(SourceError):
    """A download failed. ``unreachable`` is True when the server (or mirror file) could not be reached at
    all, so the caller can explain how to obtain the files by hand."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


# -- hashes and checks -----------------------------------------------------------------------------

def md5_of(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: str | os.PathLike, md5: str | None = None, size: int | None = None) -> Path:
    """Raise SourceError naming ``path`` unless it exists with the given size and MD5 (each if given)."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: file missing")
    actual = path.stat().st_size
    if size is not None and actual != int(size):
        raise SourceError(f"{path}: size {actual} bytes, expected {int(size)} bytes; the file is incomplete "
                          f"or a different version - delete it and fetch it again")
    if md5:
        got = md5_of(path)
        if got.lower() != md5.lower():
            raise SourceError(f"{path}: MD5 {got} does not match the expected {md5.lower()} ({actual} bytes); "
                              f"the file is corrupt, incomplete or a different version - delete it and fetch "
                              f"it again")
    return path


# -- downloads ---------------------------------------------------------------------------------------

class FileDownloader:
    """pooch downloader for ``file://`` URLs (a local mirror): a streamed copy."""

    def __call__(self, url: str, output_file, pooch_obj, check_only: bool = False):
        source = Path(url2pathname(unquote(urlparse(url).path)))
        if check_only:
            return source.is_file()
        if hasattr(output_file, "write"):
            with open(source, "rb") as src:
                shutil.copyfileobj(src, output_file, CHUNK)
        else:
            with open(source, "rb") as src, open(output_file, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
        return None


class _SizeChecked:
    """Wrap a downloader so a download of the wrong size fails before it is moved onto the target
    (pooch deletes the temporary file and may retry)."""

    def __init__(self, downloader, size: int, name: str):
        self.downloader, self.size, self.name = downloader, int(size), name

    def __call__(self, url, output_file, pooch_obj, check_only: bool = False):
        result = self.downloader(url, output_file, pooch_obj, check_only=check_only)
        if not check_only and not hasattr(output_file, "write"):
            got = os.path.getsize(output_file)
            if got != self.size:
                raise ValueError(f"download of {self.name} has {got} bytes, expected {self.size} bytes")
        return result


def _is_unreachable(exc: BaseException) -> bool:
    try:
        import requests
    except ImportError:  # pragma: no cover - requests is a pooch dependency
        return isinstance(exc, (FileNotFoundError, ConnectionError, TimeoutError))
    if isinstance(exc, requests.HTTPError):
        return False
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, FileNotFoundError, ConnectionError,
                            TimeoutError))


def fetch(url: str, target: str | os.PathLike, md5: str | None = None, *, size: int | None = None,
          retries: int = 2, timeout: float = 60.0, downloader: Callable | None = None) -> Path:
    """Download ``url`` to ``target`` unless ``target`` already holds it (same MD5); return ``target``.

    The download is written to a temporary file beside ``target`` and checked (MD5, size) before the
    rename, so ``target`` is either the verified file or absent. ``retries`` extra attempts are made on
    network errors and hash mismatches. With ``md5=None`` an existing ``target`` is kept as it is
    (used for cached metadata). Raises DownloadError naming the URL and the target.
    """
    import pooch

    target = Path(target).expanduser().absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    if downloader is None:
        if urlparse(url).scheme == "file":
            downloader = FileDownloader()
        else:
            downloader = pooch.HTTPDownloader(timeout=timeout, progressbar=False)
    if size is not None:
        downloader = _SizeChecked(downloader, size, target.name)
    known_hash = f"md5:{md5.lower()}" if md5 else None
    fetcher = pooch.Pooch(path=target.parent, base_url="", registry={target.name: known_hash},
                          urls={target.name: url}, retry_if_failed=max(0, int(retries)))
    try:
        return Path(fetcher.fetch(target.name, downloader=downloader))
    except (ValueError, OSError) as exc:
        unreachable = _is_unreachable(exc)
        what = "could not reach the source" if unreachable else "download failed"
        state = "a previous file was left untouched" if target.exists() else "nothing was written there"
        raise DownloadError(f"{target}: {what} ({url}): {exc}; {state}", unreachable=unreachable) from exc


def fetch_json(url: str, cache: str | os.PathLike, *, retries: int = 2, timeout: float = 60.0,
               downloader: Callable | None = None) -> dict:
    """JSON document at ``url``, cached at ``cache`` (fetched only when the cache is absent)."""
    cache = Path(cache)
    if not cache.is_file():
        fetch(url, cache, None, retries=retries, timeout=timeout, downloader=downloader)
    try:
        return json.loads(cache.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{cache}: cached metadata is not valid JSON ({exc}); delete it to fetch it again") \
            from exc


# -- extraction --------------------------------------------------------------------------------------

def is_junk(name: str) -> bool:
    """macOS/Windows side files that are no part of a data set (AppleDouble ``._x``, ``__MACOSX``...)."""
    return any(part in JUNK_NAMES or part.startswith("._") for part in PurePosixPath(name).parts)


def safe_member_path(name: str, where: str | os.PathLike, what: str = "member") -> PurePosixPath:
    """``name`` as a clean relative path; SourceError naming ``where`` when it is absolute (or has a drive)
    or climbs out with ``..`` (an archive member or a server-supplied folder name)."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or path.is_absolute() or (path.parts and ":" in path.parts[0]) \
            or ".." in path.parts:
        raise SourceError(f"{where}: {what} {name!r} points outside the destination folder; refusing to "
                          f"use it")
    parts = [p for p in path.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _relative_to_root(member: PurePosixPath, root: str | None) -> PurePosixPath | None:
    if root is None:
        return member
    if not member.parts or member.parts[0] != root:
        return None
    rest = member.parts[1:]
    return PurePosixPath(*rest) if rest else PurePosixPath(".")


def _write_member(stream, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        shutil.copyfileobj(stream, out, CHUNK)


def _extract_tar(archive: Path, tmp: Path, root: str | None, include: Callable[[str], bool] | None) -> int:
    count = 0
    current = None
    try:
        # "r|*" streams: members are read in order, never indexed or held in memory.
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                current = member.name
                rel_member = safe_member_path(member.name, archive)
                if member.issym() or member.islnk() or not (member.isfile() or member.isdir()):
                    if is_junk(member.name):
                        continue
                    raise SourceError(f"{archive}: member {member.name!r} is a link or special file; refusing "
                                      f"to extract this archive")
                try:
                    tarfile.data_filter(member, str(tmp))
                except tarfile.FilterError as exc:
                    raise SourceError(f"{archive}: member {member.name!r} rejected ({exc})") from exc
                rel = _relative_to_root(rel_member, root)
                if rel is None or is_junk(member.name) or str(rel) == ".":
                    continue
                if include is not None and not include(str(rel)):
                    continue
                dest = tmp / rel
                if member.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                stream = tar.extractfile(member)
                _write_member(stream, dest)
                if dest.stat().st_size != member.size:
                    raise SourceError(f"{archive}: member {member.name!r} is truncated "
                                      f"({dest.stat().st_size} of {member.size} bytes)")
                count += 1
            # tarfile ends quietly where the data stops; an uncompressed archive cut at a member boundary
            # is recognized by its missing end-of-archive (zero) block. Compressed streams fail on their own.
            if getattr(tar.fileobj, "comptype", None) == "tar":
                _check_end_marker(archive, tar.offset, current)
    except SourceError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as exc:
        at = f" at member {current!r}" if current else ""
        raise SourceError(f"{archive}: truncated or corrupt archive{at} ({exc})") from exc
    return count


def _check_end_marker(archive: Path, offset: int, last: str | None) -> None:
    with open(archive, "rb") as fh:
        fh.seek(offset)
        block = fh.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        after = f" after member {last!r}" if last else ""
        raise SourceError(f"{archive}: truncated archive: it ends{after} without the end-of-archive block")


def _extract_zip(archive: Path, tmp: Path, root: str | None, include: Callable[[str], bool] | None) -> int:
    count = 0
    current = None
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                current = info.filename
                rel_member = safe_member_path(info.filename, archive)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    if is_junk(info.filename):
                        continue
                    raise SourceError(f"{archive}: member {info.filename!r} is a link; refusing to extract "
                                      f"this archive")
                rel = _relative_to_root(rel_member, root)
                if rel is None or is_junk(info.filename) or str(rel) == ".":
                    continue
                if include is not None and not include(str(rel)):
                    continue
                dest = tmp / rel
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                with zf.open(info) as stream:  # the CRC is checked when the stream ends
                    _write_member(stream, dest)
                count += 1
    except SourceError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, zlib.error) as exc:
        at = f" at member {current!r}" if current else ""
        raise SourceError(f"{archive}: truncated or corrupt archive{at} ({exc})") from exc
    return count


def extract(archive: str | os.PathLike, target: str | os.PathLike, *, root: str | None = None,
            include: Callable[[str], bool] | None = None, check: Callable[[Path], object] | None = None,
            stamp: dict | None = None) -> Path:
    """Extract ``archive`` (tar of any compression, or zip) into the folder ``target``, atomically.

    ``root``: only members under this top-level folder of the archive are extracted, with that folder
    stripped (``Task03_Liver/imagesTr/x`` -> ``target/imagesTr/x``). ``include(relative_path)`` selects
    files. ``check(folder)`` may inspect the extracted files before they are moved into place (and raise
    to reject them). ``target`` appears complete or not at all; a stamp file (``EXTRACTED_STAMP``) records
    the archive, the file count and ``stamp``. Raises SourceError naming the archive (and member).
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise SourceError(f"{archive}: archive missing")
    is_zip = zipfile.is_zipfile(archive)
    with atomic_dir(target) as tmp:
        if is_zip:
            count = _extract_zip(archive, tmp, root, include)
        else:
            count = _extract_tar(archive, tmp, root, include)
        if count == 0:
            where = f" under {root!r}" if root else ""
            raise SourceError(f"{archive}: no files extracted{where}; is this the right archive?")
        if check is not None:
            try:
                check(tmp)
            except SourceError as exc:
                raise SourceError(f"{archive}: extracted files are incomplete or unexpected: {exc}") from exc
        info = {"archive": archive.name, "archive_bytes": archive.stat().st_size, "files": count}
        info.update(stamp or {})
        (tmp / EXTRACTED_STAMP).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    log.info("extracted %d files from %s to %s", count, archive, target)
    return target


def is_extracted(target: str | os.PathLike) -> bool:
    """True when ``target`` was completely extracted by ``extract`` (its stamp file exists)."""
    return (Path(target) / EXTRACTED_STAMP).is_file()
