"""Downloading pretrained files on request: resumable, checksummed, atomic.

`fetch` gets one entry of `sovits.features.pretrained.KNOWN_FILES` from its direct
downloads (or a mirror URL the caller gives) into the place `resolve_weights` looks
(the user cache by default). Only the standard library talks to the network:

- bytes stream into `<file>.part`; a later call resumes it with an HTTP Range request
  (a server that ignores Range and answers 200 makes it start again from byte 0);
- the SHA-256 of the bytes is checked when the registry (or the caller) knows it;
  a mismatch removes the `.part` file and raises, so no unverified file is left behind;
- the finished file is renamed into place in one step;
- a zip source (rmvpe.zip, nsf_hifigan_20221211.zip) is downloaded beside the file,
  checked, unpacked (the member that becomes the file, and its siblings when the entry
  asks) and removed.

Nothing here runs unless a user asks for it (`sovits pretrained fetch NAME`).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from sovits import __version__
from sovits.errors import SovitsError
from sovits.features import pretrained
from sovits.features.pretrained import Download, PretrainedFile

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]
"""Called as progress(bytes_done, bytes_total) while downloading; total None if unknown."""

CHUNK_BYTES = 1 << 20
"""Bytes read from the network per step (1 MiB)."""


class DownloadError(SovitsError):
    """A download failed: network trouble, an HTTP error, or bytes that fail their checksum."""


class ChecksumError(DownloadError):
    """Downloaded (or present) bytes do not have the expected SHA-256."""


@dataclass(frozen=True)
class FetchResult:
    """What `fetch` did.

    path: the file, ready for `resolve_weights`.
    sha256: hex SHA-256 of the bytes that were checked: the downloaded file, the zip it
        came from, or the file that was already present.
    verified: True when `sha256` equals the expected value (registry or caller).
    downloaded: False when the file was already present and nothing was downloaded.
    url: where it came from; None when nothing was downloaded.
    """

    path: Path
    sha256: str
    verified: bool
    downloaded: bool
    url: str | None


def default_destination(entry: PretrainedFile) -> Path:
    """Where `fetch` puts `entry` by default: `<user cache>/<relative path>`."""
    return pretrained.user_cache_dir() / Path(*entry.relative_path.split("/"))


def installed_path(entry: PretrainedFile) -> Path | None:
    """The existing file `resolve_weights` would return for `entry`, or None."""
    if pretrained.KNOWN_FILES.get(entry.name) == entry:
        locations = pretrained.search_locations(entry.name)
    else:
        locations = [default_destination(entry)]
    return next((path for path in locations if path.is_file()), None)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    name_or_file: str | PretrainedFile,
    *,
    destination: Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    timeout: float = 60.0,
) -> FetchResult:
    """Download a pretrained file unless it is already there.

    name_or_file: a key of KNOWN_FILES, or a PretrainedFile.
    destination: the file to write (an existing folder gets the entry's file name);
        default `default_destination(entry)`. Without it, a file that `resolve_weights`
        already finds anywhere counts as present.
    url: a mirror to use instead of the registry's preferred download; it is expected to
        serve the same bytes (same checksum, same zip layout) unless `sha256` says
        otherwise.
    sha256: the expected hex SHA-256, overriding the registry's.
    force: download again even when the file is present.
    progress: called with (bytes done, bytes total or None) as bytes arrive.
    timeout: seconds to wait for the server to connect or send more bytes.

    A present file whose checksum is known is checked and refused (ChecksumError) when
    it differs; one without a known checksum is kept and reported unverified.
    Registry downloads are tried in order when the network fails. Raises DownloadError
    (URL and a hint where to put the file by hand) or ChecksumError.
    """
    entry = pretrained.known_file(name_or_file) if isinstance(name_or_file, str) else name_or_file
    target = _target_path(entry, destination)
    sources = _sources(entry, url, sha256)
    if not force:
        present = installed_path(entry) if destination is None else _existing(target)
        if present is not None:
            return _check_present(entry, present, sources)
    if not sources:
        raise DownloadError(
            f"{entry.description} ({entry.name}) has no direct download",
            hint=_manual_hint(entry, target) + "; or pass a direct URL (--url)",
        )
    failures: list[DownloadError] = []
    for source in sources:
        try:
            return _fetch_from(entry, source, target, force, progress, timeout)
        except ChecksumError:
            raise
        except DownloadError as error:
            failures.append(error)
            if source is not sources[-1]:
                logger.warning("%s; trying the next source", error.message)
    if len(failures) == 1:
        raise failures[0]
    raise DownloadError(
        f"every download of {entry.name} failed: " + "; ".join(f.message for f in failures),
        where=target,
        hint=_manual_hint(entry, target),
    )


def download_url(
    url: str,
    target: Path,
    *,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = 60.0,
    hint: str | None = None,
    label: str | None = None,
) -> str:
    """Download `url` to `target` through `<target>.part`; return the bytes' hex SHA-256.

    An existing `.part` file is resumed with a Range request. With `sha256`, bytes that
    differ raise ChecksumError and the `.part` file is removed; otherwise `.part` is renamed
    to `target` in one step. Network failures keep `.part` for the next call and raise
    DownloadError naming `url`, with `hint` (default: put the file there by hand). `label`
    names the file in messages (default: the target's file name).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    hint = hint or f"download {url} by hand and put it at {target}"
    try:
        actual = _download_to_part(url, part, progress, timeout)
    except urllib.error.HTTPError as error:
        raise DownloadError(
            f"download of {url} failed: HTTP {error.code} {error.reason}", where=target, hint=hint
        ) from None
    except urllib.error.URLError as error:
        raise DownloadError(
            f"download of {url} failed: {error.reason}", where=target, hint=hint
        ) from None
    except (OSError, http.client.HTTPException) as error:
        kept = f"; {part.name} is kept, run again to resume" if part.is_file() else ""
        raise DownloadError(
            f"download of {url} failed: {str(error) or type(error).__name__}{kept}",
            where=target,
            hint=hint,
        ) from None
    if sha256 is not None and actual != sha256.lower():
        part.unlink()
        raise ChecksumError(
            f"sha256 mismatch for {label or target.name} from {url}: expected "
            f"{sha256.lower()}, got {actual}; the download was removed",
            where=target,
            hint="if it persists, this URL serves other bytes than expected; pass "
            "--sha256 (sha256=) only for a different file you trust",
        )
    os.replace(part, target)
    return actual


class _IncompleteError(OSError):
    """The server closed the connection before sending every byte it announced."""


def _download_to_part(
    url: str, part: Path, progress: ProgressCallback | None, timeout: float
) -> str:
    """Fill `part` with the bytes of `url` (resuming it); return their hex SHA-256."""
    offset = part.stat().st_size if part.is_file() else 0
    response, offset, total = _open(url, offset, timeout)
    digest = hashlib.sha256()
    if offset:
        with open(part, "rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
    if response is None:  # the .part file already holds every byte
        return digest.hexdigest()
    done = offset
    with response, open(part, "ab" if offset else "wb") as out:
        if progress is not None:
            progress(done, total)
        while chunk := response.read(CHUNK_BYTES):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    if total is not None and done < total:
        raise _IncompleteError(f"connection closed after {done} of {total} bytes")
    return digest.hexdigest()


def _request(url: str, offset: int) -> urllib.request.Request:
    headers = {"User-Agent": f"sovits/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.Request(url, headers=headers)


def _open(
    url: str, offset: int, timeout: float
) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """Open `url` from byte `offset`: (response or None if nothing is left, start, total).

    The start is 0 again when the server ignores the Range request or cannot honour it.
    """
    try:
        response = urllib.request.urlopen(_request(url, offset), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        error.close()
        size = _content_range(error.headers.get("Content-Range"))[2]
        if size == offset:
            return None, offset, size
        logger.info("%s: cannot resume at byte %d; starting again", url, offset)
        return _open(url, 0, timeout)
    length = response.headers.get("Content-Length")
    length_bytes = int(length) if length and length.isdigit() else None
    if offset and response.status == 206:
        start, _, size = _content_range(response.headers.get("Content-Range"))
        if start == offset:
            logger.info("%s: resuming at byte %d", url, offset)
            if size is None and length_bytes is not None:
                size = offset + length_bytes
            return response, offset, size
        response.close()
        logger.info("%s: server resumed at the wrong byte; starting again", url)
        return _open(url, 0, timeout)
    if offset:
        logger.info("%s: server ignored the Range request; starting again", url)
    return response, 0, length_bytes


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """(first, last, size) of a Content-Range header such as "bytes 10-99/100" or "bytes */100"."""
    if not value or not value.startswith("bytes "):
        return None, None, None
    span, _, size_text = value[len("bytes ") :].partition("/")
    size = int(size_text) if size_text.isdigit() else None
    first_text, _, last_text = span.partition("-")
    if first_text.isdigit() and last_text.isdigit():
        return int(first_text), int(last_text), size
    return None, None, size


def _target_path(entry: PretrainedFile, destination: Path | None) -> Path:
    if destination is None:
        return default_destination(entry)
    destination = Path(destination).expanduser()
    if destination.is_dir():
        return destination / PurePosixPath(entry.relative_path).name
    return destination


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _sources(entry: PretrainedFile, url: str | None, sha256: str | None) -> list[Download]:
    """The downloads to try in order; a mirror `url` inherits the preferred download's layout."""
    if url is None:
        chosen = list(entry.downloads)
    else:
        like = next((d for d in entry.downloads if d.url == url), None)
        like = like or (entry.downloads[0] if entry.downloads else Download(url))
        chosen = [Download(url, like.sha256, like.member, like.siblings)]
    return [
        Download(d.url, (sha256 or d.sha256 or "").lower() or None, d.member, d.siblings)
        for d in chosen
    ]


def _check_present(entry: PretrainedFile, path: Path, sources: list[Download]) -> FetchResult:
    """Report a file that is already there; refuse one that contradicts a known checksum."""
    actual = file_sha256(path)
    expected = sorted({s.sha256 for s in sources if s.sha256 and s.member is None})
    if expected and actual not in expected:
        raise ChecksumError(
            f"{entry.name} is already present but its sha256 is {actual}, "
            f"not the expected {' or '.join(expected)}",
            where=path,
            hint="pass --force (force=True) to download it again, or keep it if you put "
            "that file there on purpose",
        )
    logger.info("%s is already present at %s", entry.name, path)
    return FetchResult(path, actual, verified=bool(expected), downloaded=False, url=None)


def _fetch_from(
    entry: PretrainedFile,
    source: Download,
    target: Path,
    force: bool,
    progress: ProgressCallback | None,
    timeout: float,
) -> FetchResult:
    hint = _manual_hint(entry, target)
    if source.member is None:
        actual = download_url(
            source.url,
            target,
            sha256=source.sha256,
            progress=progress,
            timeout=timeout,
            hint=hint,
            label=entry.name,
        )
        return FetchResult(target, actual, source.sha256 is not None, True, source.url)
    archive = target.parent / _archive_name(source.url, target)
    actual = file_sha256(archive) if archive.is_file() else ""
    if actual and (force or (source.sha256 is not None and actual != source.sha256)):
        archive.unlink()
        actual = ""
    if not actual:
        actual = download_url(
            source.url,
            archive,
            sha256=source.sha256,
            progress=progress,
            timeout=timeout,
            hint=hint,
            label=f"{archive.name} (for {entry.name})",
        )
    _unpack(archive, source.member, source.siblings, target)
    archive.unlink()
    return FetchResult(target, actual, source.sha256 is not None, True, source.url)


def _archive_name(url: str, target: Path) -> str:
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    if not name or name == target.name:
        name = f"{target.name}.zip"
    return name


def _unpack(archive: Path, member: str, siblings: bool, target: Path) -> None:
    """Extract the zip member named `member` (any folder) to `target`, and its siblings."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            files = {
                PurePosixPath(info.filename.replace("\\", "/")): info
                for info in bundle.infolist()
                if not info.is_dir()
            }
            matches = [name for name in files if name.name == member]
            if len(matches) != 1:
                held = ", ".join(str(name) for name in list(files)[:20])
                count = "no" if not matches else "more than one"
                raise DownloadError(
                    f"{archive.name} has {count} file named {member!r}; it holds: {held}",
                    where=archive,
                )
            chosen = matches[0]
            _extract(bundle, files[chosen], target)
            if siblings:
                for name, info in files.items():
                    beside = name.parent == chosen.parent and name != chosen
                    if beside and name.name not in ("", ".", ".."):
                        _extract(bundle, info, target.parent / name.name)
    except zipfile.BadZipFile as error:
        raise DownloadError(
            f"{archive.name} is not a readable zip archive: {error}",
            where=archive,
            hint="delete it and run again",
        ) from None


def _extract(bundle: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> None:
    part = path.with_name(path.name + ".part")
    with bundle.open(info) as source, open(part, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK_BYTES)
    os.replace(part, path)


def _manual_hint(entry: PretrainedFile, target: Path) -> str:
    urls = " or ".join(entry.urls) if entry.urls else "its publisher"
    text = f"get it from {urls} and put it at {target}"
    if entry.instructions:
        text += f" ({entry.instructions})"
    return text
