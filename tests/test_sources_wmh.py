"""WMH 2017 from a DataverseNL fixture (metadata JSON + files served by id on 127.0.0.1) to prepared cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures_real import METADATA_PATH, WMH_CASES, build_wmh, closed_port_url, files_under, serve, wmh_config
from lesionbench.data.prepare import prepare_case
from lesionbench.data.sources import SourceError, SourceMissingError, wmh
from lesionbench.io.cases import load_case, save_case
from lesionbench.io.predictions import write_prediction

IDS = [
    "test_Amsterdam_Philips_VU_PETMR_01_144",
    "test_Utrecht_1",
    "training_Amsterdam_GE3T_100",
    "training_Singapore_50",
    "training_Utrecht_0",
]


@pytest.fixture()
def dataverse(tmp_path):
    built = build_wmh(tmp_path / "store")
    with serve(built["routes"]) as server:
        yield server, built, tmp_path / "data" / "wmh"


def _downloaded(server, built) -> set[str]:
    by_id = {f"/api/access/datafile/{i}": rel for rel, i in built["ids"].items()}
    return {by_id[h] for h in server.hits if h in by_id}


def test_case_ids_are_filesystem_safe():
    assert wmh.case_id_of("training/Amsterdam/GE3T/100") == "training_Amsterdam_GE3T_100"
    assert wmh.case_id_of("test/Amsterdam/Philips_VU .PETMR_01./144") == "test_Amsterdam_Philips_VU_PETMR_01_144"


def test_acquire_fetches_only_needed_files(dataverse, tmp_path):
    server, built, root = dataverse
    manifest = wmh.acquire("wmh", wmh_config(root, server.url), tmp_path / "raw")
    assert sorted(manifest["case_id"]) == IDS
    m = manifest.set_index("case_id")
    assert m.loc["training_Utrecht_0", "official_split"] == "train"
    assert m.loc["test_Amsterdam_Philips_VU_PETMR_01_144", "official_split"] == "test"
    assert m.loc["test_Amsterdam_Philips_VU_PETMR_01_144", "scanner"] == "Philips_VU .PETMR_01."
    assert m.loc["training_Utrecht_0", "scanner"] == "" and m.loc["training_Utrecht_0", "site"] == "Utrecht"
    assert m.loc["test_Amsterdam_Philips_VU_PETMR_01_144", "image"] == str(
        root / "test/Amsterdam/Philips_VU .PETMR_01./144/pre/FLAIR.nii.gz"
    )
    assert set(m["t1"]) == {""}
    # only wmh.nii.gz and pre/FLAIR.nii.gz were requested: no T1, no orig/, no README
    assert _downloaded(server, built) == {f"{c}/{f}" for c in WMH_CASES for f in ("wmh.nii.gz", "pre/FLAIR.nii.gz")}
    assert server.hits[0] == METADATA_PATH
    assert (root / wmh.METADATA_CACHE).is_file()
    assert not any(p.endswith(("T1.nii.gz", "README.txt")) for p in files_under(root))
    provenance = json.loads((tmp_path / "raw" / "provenance.json").read_text())
    assert provenance["md5_verified"] and len(provenance["files"]) == 10


def test_second_run_works_offline_from_the_cache(dataverse, tmp_path):
    server, _built, root = dataverse
    first = wmh.acquire("wmh", wmh_config(root, server.url), tmp_path / "raw")
    offline = wmh_config(root, closed_port_url())  # nothing listens there any more
    again = wmh.acquire("wmh", offline, tmp_path / "raw")
    assert again.equals(first)


def test_t1_channel_and_read_case(dataverse, tmp_path):
    server, built, root = dataverse
    cfg = wmh_config(root, server.url, modalities=["FLAIR", "T1"])
    manifest = wmh.acquire("wmh", cfg, tmp_path / "raw").set_index("case_id")
    row = {"case_id": "training_Amsterdam_GE3T_100", **manifest.loc["training_Amsterdam_GE3T_100"].to_dict()}
    assert row["t1"].endswith("training/Amsterdam/GE3T/100/pre/T1.nii.gz")
    raw = wmh.read_case(row, cfg, tmp_path / "raw")
    vols = built["arrays"]["training/Amsterdam/GE3T/100"]
    assert raw.image.shape == (2, 5, 12, 10)  # (C, k, i, j)
    np.testing.assert_array_equal(raw.image[0], np.moveaxis(vols["pre/FLAIR.nii.gz"], -1, 0))
    np.testing.assert_array_equal(raw.image[1], np.moveaxis(vols["pre/T1.nii.gz"], -1, 0))
    np.testing.assert_array_equal(raw.mask, np.moveaxis(vols["wmh.nii.gz"] == 1, -1, 0).astype(np.uint8))
    np.testing.assert_array_equal(raw.ignore, np.moveaxis(vols["wmh.nii.gz"] == 2, -1, 0).astype(np.uint8))
    assert raw.mask.sum() == 6 and raw.ignore.sum() == 4
    assert raw.spacing == pytest.approx((3.0, 0.96, 0.98)) and raw.axis_order == (2, 0, 1)
    assert raw.affine[0, 3] == -10.0


def test_through_prepare_and_back_to_source_orientation(dataverse, tmp_path):
    server, built, root = dataverse
    cfg = wmh_config(root, server.url)
    manifest = wmh.acquire("wmh", cfg, tmp_path / "raw").set_index("case_id")
    cid = "test_Amsterdam_Philips_VU_PETMR_01_144"
    raw = wmh.read_case({"case_id": cid, **manifest.loc[cid].to_dict()}, cfg, tmp_path / "raw")
    case = prepare_case(raw, "wmh", cfg["preprocessing"])
    save_case(case, tmp_path / "prepared")
    loaded = load_case(tmp_path / "prepared", cid)
    assert loaded.image.shape == (1, 5, 12, 10) and loaded.image.dtype == np.float32
    assert loaded.ignore is not None and not (loaded.mask & loaded.ignore).any()
    labels = built["arrays"]["test/Amsterdam/Philips_VU .PETMR_01./144"]["wmh.nii.gz"]
    meta = json.loads((tmp_path / "prepared" / cid / "meta.json").read_text())
    out = write_prediction(loaded.mask, meta, tmp_path / "pred")
    import nibabel as nib

    written = nib.load(str(out))
    np.testing.assert_array_equal(np.asarray(written.dataobj), (labels == 1).astype(np.uint8))
    np.testing.assert_allclose(written.affine, raw.affine)


def test_wrong_md5_names_the_file_and_leaves_nothing(tmp_path):
    built = build_wmh(tmp_path / "store")
    entry = next(
        f
        for f in built["metadata"]["data"]["latestVersion"]["files"]
        if f.get("directoryLabel") == "training/Singapore/50/pre"
    )
    entry["dataFile"]["md5"] = "0" * 32
    built["routes"][METADATA_PATH] = json.dumps(built["metadata"]).encode()
    root = tmp_path / "wmh"
    with serve(built["routes"]) as server, pytest.raises(SourceError) as err:
        wmh.acquire("wmh", wmh_config(root, server.url), tmp_path / "raw")
    assert "training/Singapore/50/pre/FLAIR.nii.gz" in str(err.value) and "MD5" in str(err.value)
    assert not (root / "training/Singapore/50/pre/FLAIR.nii.gz").exists()
    assert files_under(root / "training/Singapore/50") == ["pre"]  # no partial or temporary file


def test_truncated_transfer_names_the_file(dataverse, tmp_path):
    server, built, root = dataverse
    server.truncate.add(f"/api/access/datafile/{built['ids']['test/Utrecht/1/wmh.nii.gz']}")
    with pytest.raises(SourceError, match=r"test/Utrecht/1/wmh\.nii\.gz"):
        wmh.acquire("wmh", wmh_config(root, server.url), tmp_path / "raw")
    assert not (root / "test/Utrecht/1/wmh.nii.gz").exists()
    assert files_under(root / "test/Utrecht/1") == ["pre", "pre/FLAIR.nii.gz"]  # fetched before, verified


def test_placed_files_checked_against_injected_metadata(tmp_path):
    built = build_wmh(tmp_path / "store")
    root = tmp_path / "store"  # the user placed the server layout and saved the metadata JSON
    (root / wmh.METADATA_CACHE).write_text(json.dumps(built["metadata"]))
    cfg = wmh_config(root, closed_port_url(), enabled=False)
    manifest = wmh.acquire("wmh", cfg, tmp_path / "raw")
    assert sorted(manifest["case_id"]) == IDS
    with open(root / "training/Utrecht/0/wmh.nii.gz", "ab") as fh:
        fh.write(b"corrupt")
    with pytest.raises(SourceError, match=r"training/Utrecht/0/wmh\.nii\.gz: size \d+ bytes, expected"):
        wmh.acquire("wmh", cfg, tmp_path / "raw")
    (root / "training/Utrecht/0/wmh.nii.gz").unlink()
    with pytest.raises(SourceMissingError, match=r"1 of 10 files absent.*training/Utrecht/0/wmh\.nii\.gz"):
        wmh.acquire("wmh", cfg, tmp_path / "raw")


def test_placed_files_without_metadata_warn(tmp_path):
    build_wmh(tmp_path / "store", cases=WMH_CASES[:2])
    cfg = wmh_config(tmp_path / "store", closed_port_url(), enabled=False)
    with pytest.warns(UserWarning, match="MD5s are not checked"):
        manifest = wmh.acquire("wmh", cfg, tmp_path / "raw")
    assert list(manifest["case_id"]) == ["training_Singapore_50", "training_Utrecht_0"]


def test_missing_says_where_to_get_and_put(tmp_path):
    root = tmp_path / "absent"
    with pytest.raises(SourceMissingError) as err:
        wmh.acquire("wmh", wmh_config(root, closed_port_url(), enabled=False), tmp_path / "raw")
    msg = str(err.value)
    assert wmh.LANDING_PAGE in msg and str(root) in msg and "MD5" in msg and "pre/FLAIR.nii.gz" in msg
    with pytest.raises(SourceMissingError, match="could not reach"):
        wmh.acquire("wmh", wmh_config(root, closed_port_url()), tmp_path / "raw")


def test_hostile_or_inconsistent_metadata(tmp_path):
    built = build_wmh(tmp_path / "store", cases=WMH_CASES[:1])
    meta = built["metadata"]
    files = meta["data"]["latestVersion"]["files"]
    root = tmp_path / "wmh"
    root.mkdir()
    cfg = wmh_config(root, closed_port_url())

    files[0]["directoryLabel"] = "../../outside"
    (root / wmh.METADATA_CACHE).write_text(json.dumps(meta))
    with pytest.raises(SourceError, match=r"file '\.\./\.\./outside/.*' points outside"):
        wmh.acquire("wmh", cfg, tmp_path / "raw")

    files[0]["directoryLabel"] = "training/Utrecht/0/orig"
    dropped = [
        f
        for f in files
        if not (f.get("directoryLabel") == "training/Utrecht/0/pre" and f["dataFile"]["filename"] == "FLAIR.nii.gz")
    ]
    meta["data"]["latestVersion"]["files"] = dropped
    (root / wmh.METADATA_CACHE).write_text(json.dumps(meta))
    with pytest.raises(SourceError, match=r"case folder 'training/Utrecht/0' has no pre/FLAIR\.nii\.gz"):
        wmh.acquire("wmh", cfg, tmp_path / "raw")

    (root / wmh.METADATA_CACHE).write_text(json.dumps({"data": {}}))
    with pytest.raises(SourceError, match=r"dataverse_metadata\.json: not a Dataverse dataset JSON"):
        wmh.acquire("wmh", cfg, tmp_path / "raw")


def test_colliding_case_ids_fail(tmp_path):
    built = build_wmh(tmp_path / "store", cases=["training/Amsterdam/GE3T/100", "training/Amsterdam/GE3T./100"])
    with (
        serve(built["routes"]) as server,
        pytest.raises(
            SourceError,
            match=r"'training/Amsterdam/GE3T\./100' and 'training/Amsterdam/GE3T/100' "
            r"give the same case id 'training_Amsterdam_GE3T_100'",
        ),
    ):
        wmh.acquire("wmh", wmh_config(tmp_path / "wmh", server.url), tmp_path / "raw")


def test_bad_options(tmp_path):
    with pytest.raises(SourceError, match=r"download\.modalities must start with FLAIR"):
        wmh.acquire("wmh", wmh_config(tmp_path, "http://127.0.0.1:9", modalities=["T1"]), tmp_path / "raw")
    with pytest.raises(SourceError, match=r"download\.splits must be"):
        wmh.acquire("wmh", wmh_config(tmp_path, "http://127.0.0.1:9", splits=["validation"]), tmp_path / "raw")


def test_through_the_data_stage_files(dataverse, tmp_path):
    """acquire -> raw_manifest.csv -> prepare, as the rules run it (extra manifest columns survive the CSV)."""
    import pandas as pd

    from lesionbench.data.steps import acquire as acquire_step
    from lesionbench.data.steps import prepare as prepare_step

    server, _built, root = dataverse
    cfg = wmh_config(root, server.url)
    results = tmp_path / "results"
    manifest = acquire_step.run("wmh", cfg, results / "raw", results / "raw_manifest.csv")
    assert list(manifest["case_id"]) == IDS
    pd.DataFrame({"case_id": IDS[:3], "split": ["test", "test", "train"]}).to_csv(results / "split.csv", index=False)
    cases = prepare_step.run(
        "wmh",
        cfg,
        results / "raw_manifest.csv",
        results / "split.csv",
        results / "raw",
        results / "prepared",
        results / "cases.csv",
    )
    assert list(cases["shape"]) == ["5x12x10"] * 3 and list(cases["channels"]) == [1] * 3
    assert list(cases["has_ignore"]) == [True] * 3 and list(cases["spacing"]) == ["3x0.96x0.98"] * 3
