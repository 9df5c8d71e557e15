"""Downloading, verifying and extracting: hashes, atomicity, truncation and hostile archives.

No network: a file server on 127.0.0.1 and file:// URLs (tests/fixtures_real.py).
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from fixtures_real import build_evil_tar, closed_port_url, files_under, md5, serve
from lesionbench.data import download
from lesionbench.data.sources import SourceError

PAYLOAD = bytes(range(256)) * 400  # 102400 bytes


def test_md5_and_check_file(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(PAYLOAD)
    assert download.md5_of(p) == md5(PAYLOAD)
    assert download.check_file(p, md5(PAYLOAD), len(PAYLOAD)) == p
    with pytest.raises(SourceError, match=r"a\.bin: MD5 .* does not match the expected 0{32}"):
        download.check_file(p, "0" * 32)
    with pytest.raises(SourceError, match=r"a\.bin: size 102400 bytes, expected 5 bytes"):
        download.check_file(p, None, 5)
    with pytest.raises(SourceError, match=r"nothere\.bin: file missing"):
        download.check_file(tmp_path / "nothere.bin", md5(PAYLOAD))


def test_fetch_over_http_verifies_and_caches(tmp_path):
    with serve({"/files/a.bin": PAYLOAD}) as server:
        target = tmp_path / "data" / "sub dir" / "a.bin"
        got = download.fetch(server.url + "/files/a.bin", target, md5(PAYLOAD), size=len(PAYLOAD), retries=0)
        assert got == target and target.read_bytes() == PAYLOAD
        assert server.hits == ["/files/a.bin"]
        download.fetch(server.url + "/files/a.bin", target, md5(PAYLOAD), retries=0)
        assert server.hits == ["/files/a.bin"]  # right MD5 on disk: not fetched again
        target.write_bytes(b"stale")  # a wrong file on disk is replaced by the verified download
        download.fetch(server.url + "/files/a.bin", target, md5(PAYLOAD), retries=0)
        assert target.read_bytes() == PAYLOAD and len(server.hits) == 2
    assert files_under(tmp_path / "data") == ["sub dir", "sub dir/a.bin"]


def test_fetch_file_url(tmp_path):
    source = tmp_path / "mirror" / "with space.bin"
    source.parent.mkdir()
    source.write_bytes(PAYLOAD)
    target = download.fetch(source.as_uri(), tmp_path / "out" / "b.bin", md5(PAYLOAD), retries=0)
    assert target.read_bytes() == PAYLOAD


def test_fetch_wrong_md5_leaves_nothing(tmp_path):
    with serve({"/a.bin": PAYLOAD}) as server:
        target = tmp_path / "data" / "a.bin"
        with pytest.raises(download.DownloadError) as err:
            download.fetch(server.url + "/a.bin", target, "f" * 32, retries=0)
    msg = str(err.value)
    assert str(target) in msg and "/a.bin" in msg and "MD5" in msg and "nothing was written" in msg
    assert not err.value.unreachable
    assert files_under(tmp_path / "data") == []  # no target, no temporary file


def test_fetch_wrong_md5_keeps_previous_file_untouched(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old version")
    with (
        serve({"/a.bin": PAYLOAD}) as server,
        pytest.raises(download.DownloadError, match="previous file was left untouched"),
    ):
        download.fetch(server.url + "/a.bin", target, "f" * 32, retries=0)
    assert target.read_bytes() == b"old version"
    assert files_under(tmp_path) == ["a.bin"]


def test_fetch_truncated_transfer_leaves_nothing(tmp_path):
    with serve({"/big.bin": PAYLOAD}) as server:
        server.truncate.add("/big.bin")
        with pytest.raises(download.DownloadError) as err:
            download.fetch(server.url + "/big.bin", tmp_path / "big.bin", md5(PAYLOAD), retries=0)
    assert "big.bin" in str(err.value)
    assert files_under(tmp_path) == []


def test_fetch_size_mismatch_without_md5_leaves_nothing(tmp_path):
    with (
        serve({"/a.bin": PAYLOAD}) as server,
        pytest.raises(download.DownloadError, match=r"a\.bin has 102400 bytes, expected 99 bytes"),
    ):
        download.fetch(server.url + "/a.bin", tmp_path / "a.bin", None, size=99, retries=0)
    assert files_under(tmp_path) == []


def test_fetch_http_error_and_unreachable(tmp_path):
    with serve({}) as server, pytest.raises(download.DownloadError) as err:
        download.fetch(server.url + "/missing.bin", tmp_path / "m.bin", None, retries=0)
    assert "404" in str(err.value) and not err.value.unreachable
    with pytest.raises(download.DownloadError) as err:
        download.fetch(closed_port_url() + "/x.bin", tmp_path / "x.bin", None, retries=0, timeout=5)
    assert err.value.unreachable and "could not reach" in str(err.value)
    with pytest.raises(download.DownloadError) as err:
        download.fetch((tmp_path / "no-such-file").as_uri(), tmp_path / "y.bin", None, retries=0)
    assert err.value.unreachable
    assert files_under(tmp_path) == []


def test_fetch_json_caches(tmp_path):
    with serve({"/meta?x=1": b'{"a": [1, 2]}'}) as server:
        cache = tmp_path / "meta.json"
        assert download.fetch_json(server.url + "/meta?x=1", cache, retries=0) == {"a": [1, 2]}
        assert download.fetch_json(server.url + "/meta?x=1", cache, retries=0) == {"a": [1, 2]}
        assert server.hits == ["/meta?x=1"]
    cache.write_text("{not json")
    with pytest.raises(SourceError, match=r"meta\.json: cached metadata is not valid JSON"):
        download.fetch_json("http://127.0.0.1:9/none", cache)


# -- extraction ---------------------------------------------------------------------------------------


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


MEMBERS = {
    "Top/dataset.json": b"{}",
    "Top/imagesTr/a.nii.gz": b"A" * 3000,
    "Top/imagesTr/._a.nii.gz": b"junk",
    "Top/imagesTs/t.nii.gz": b"T" * 10,
    "Top/.DS_Store": b"junk",
    "Other/x.txt": b"x",
}


def test_extract_tar_root_include_junk_and_stamp(tmp_path):
    archive = _tar(tmp_path / "a.tar", MEMBERS)
    out = download.extract(
        archive,
        tmp_path / "out" / "Top",
        root="Top",
        include=lambda rel: not rel.startswith("imagesTs/"),
        stamp={"md5": "abc"},
    )
    assert files_under(out) == [download.EXTRACTED_STAMP, "dataset.json", "imagesTr", "imagesTr/a.nii.gz"]
    assert (out / "imagesTr" / "a.nii.gz").read_bytes() == b"A" * 3000
    assert download.is_extracted(out)
    stamp = (out / download.EXTRACTED_STAMP).read_text()
    assert '"files": 2' in stamp and '"md5": "abc"' in stamp and '"archive": "a.tar"' in stamp


def test_extract_replaces_previous_folder(tmp_path):
    target = tmp_path / "Top"
    (target / "stale").mkdir(parents=True)
    download.extract(_tar(tmp_path / "a.tar", MEMBERS), target, root="Top")
    assert not (target / "stale").exists() and (target / "dataset.json").is_file()
    assert files_under(tmp_path) == sorted(["Top", "a.tar"] + [f"Top/{p}" for p in files_under(target)])


def test_extract_truncated_tar_leaves_nothing(tmp_path):
    full = _tar(tmp_path / "full.tar", {"Top/a.bin": b"a" * 5000, "Top/b.bin": b"b" * 200000}).read_bytes()
    archive = tmp_path / "Task.tar"
    archive.write_bytes(full[: len(full) // 2])
    with pytest.raises(SourceError, match=r"Task\.tar: truncated or corrupt archive at member 'Top/b\.bin'"):
        download.extract(archive, tmp_path / "dest" / "Top", root="Top")
    assert files_under(tmp_path / "dest") == []  # no half-extracted folder, no temporary folder


def test_extract_tar_cut_at_a_member_boundary(tmp_path):
    full = _tar(tmp_path / "full.tar", {"Top/a.bin": b"a" * 1024, "Top/b.bin": b"b" * 1024}).read_bytes()
    archive = tmp_path / "cut.tar"
    archive.write_bytes(full[: 512 + 1024])  # header and data of a.bin, then nothing
    with pytest.raises(
        SourceError,
        match=r"cut\.tar: truncated archive: it ends after member 'Top/a\.bin' "
        r"without the end-of-archive block",
    ):
        download.extract(archive, tmp_path / "dest" / "Top", root="Top")
    assert files_under(tmp_path / "dest") == []


def test_extract_check_hook_rejects_before_the_rename(tmp_path):
    def check(folder):
        raise SourceError(f"{folder}: dataset.json lists files that are absent")

    with pytest.raises(SourceError, match=r"a\.tar: extracted files are incomplete or unexpected: .*absent"):
        download.extract(_tar(tmp_path / "a.tar", MEMBERS), tmp_path / "dest" / "Top", root="Top", check=check)
    assert files_under(tmp_path / "dest") == []


@pytest.mark.parametrize(
    "member,kind,linkname",
    [
        ("../evil.txt", tarfile.REGTYPE, ""),
        ("Top/../../evil.txt", tarfile.REGTYPE, ""),
        ("/tmp/evil-absolute.txt", tarfile.REGTYPE, ""),
        ("Top/link", tarfile.SYMTYPE, "../../evil.txt"),
        ("Top/hard", tarfile.LNKTYPE, "/etc/passwd"),
    ],
)
def test_extract_rejects_traversal_and_links(tmp_path, member, kind, linkname):
    archive = tmp_path / "in" / "evil.tar"
    archive.parent.mkdir()
    build_evil_tar(archive, member.replace("Top/", "Task03_Liver/"), kind=kind, linkname=linkname)
    with pytest.raises(SourceError, match=r"evil\.tar: member .* (points outside|link)"):
        download.extract(archive, tmp_path / "out" / "Task03_Liver", root="Task03_Liver")
    assert files_under(tmp_path / "out") == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil-absolute.txt").exists()


def test_extract_zip_with_junk(tmp_path):
    archive = tmp_path / "A. Segmentation.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("A. Segmentation/1. Original Images/x.jpg", b"jpg")
        zf.writestr("__MACOSX/A. Segmentation/._x.jpg", b"junk")
        zf.writestr("A. Segmentation/._y.jpg", b"junk")
    out = download.extract(archive, tmp_path / "A. Segmentation", root="A. Segmentation")
    assert files_under(out) == [download.EXTRACTED_STAMP, "1. Original Images", "1. Original Images/x.jpg"]


def test_extract_zip_traversal_and_truncation(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("A/ok.txt", b"ok")
        zf.writestr("A/../../evil.txt", b"evil")
    with pytest.raises(SourceError, match=r"evil\.zip: member 'A/\.\./\.\./evil\.txt' points outside"):
        download.extract(evil, tmp_path / "out" / "A", root="A")
    assert files_under(tmp_path / "out") == [] and not (tmp_path / "evil.txt").exists()

    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("A/ok.txt", b"ok" * 1000)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(SourceError, match=r"cut\.zip: truncated or corrupt archive"):
        download.extract(cut, tmp_path / "out2" / "A", root="A")
    assert files_under(tmp_path / "out2") == []


def test_extract_empty_selection_fails(tmp_path):
    archive = _tar(tmp_path / "a.tar", {"Elsewhere/x": b"x"})
    with pytest.raises(SourceError, match=r"a\.tar: no files extracted under 'Top'"):
        download.extract(archive, tmp_path / "Top", root="Top")
    assert not (tmp_path / "Top").exists()
