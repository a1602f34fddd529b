"""Artifacts through the proxied ``mlflow-artifacts:/`` store, using the stock client."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from helpers import raises_mlflow


@pytest.fixture
def run_id(client, exp_id):
    return client.create_run(exp_id).info.run_id


def _listing(client, run_id, path=None):
    return [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, path)]


def _tree(root: Path) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_log_artifact_file(client, run_id, tmp_path):
    f = tmp_path / "hello.txt"
    f.write_text("hello world\n")
    client.log_artifact(run_id, str(f))
    client.log_artifact(run_id, str(f), artifact_path="copies/one")
    assert _listing(client, run_id) == [("copies", True, None), ("hello.txt", False, 12)]
    assert _listing(client, run_id, "copies") == [("copies/one", True, None)]
    assert _listing(client, run_id, "copies/one") == [("copies/one/hello.txt", False, 12)]


def test_log_artifacts_nested_dir_and_list(client, run_id, tmp_path):
    src = tmp_path / "src"
    (src / "sub" / "deep").mkdir(parents=True)
    (src / "a.txt").write_text("hello")
    (src / "sub" / "b.txt").write_text("bb")
    (src / "sub" / "deep" / "c.bin").write_bytes(bytes(range(10)))
    client.log_artifacts(run_id, str(src), artifact_path="dir")
    assert _listing(client, run_id) == [("dir", True, None)]
    # paths are relative to the run's artifact root, as the client returns them
    assert _listing(client, run_id, "dir") == [("dir/a.txt", False, 5), ("dir/sub", True, None)]
    assert _listing(client, run_id, "dir/") == [("dir/a.txt", False, 5), ("dir/sub", True, None)]
    assert _listing(client, run_id, "dir/sub") == [("dir/sub/b.txt", False, 2), ("dir/sub/deep", True, None)]
    assert _listing(client, run_id, "dir/sub/deep") == [("dir/sub/deep/c.bin", False, 10)]
    # listing a file or a missing path gives an empty list
    assert _listing(client, run_id, "dir/a.txt") == []
    assert _listing(client, run_id, "does/not/exist") == []
    # log_artifacts without artifact_path puts the directory *contents* at the root
    client.log_artifacts(run_id, str(src / "sub"))
    assert _listing(client, run_id) == [("b.txt", False, 2), ("deep", True, None), ("dir", True, None)]


def test_empty_run_has_no_artifacts(client, run_id):
    assert client.list_artifacts(run_id) == []


def test_download_file_and_directory(client, run_id, tmp_path):
    src = tmp_path / "src"
    (src / "nested" / "more").mkdir(parents=True)
    (src / "x.txt").write_text("x" * 100)
    (src / "nested" / "y.json").write_text('{"y": 1}')
    (src / "nested" / "more" / "z.bin").write_bytes(os.urandom(3000))
    client.log_artifacts(run_id, str(src), artifact_path="data")

    dst = tmp_path / "dl-file"
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data/x.txt", dst_path=str(dst))
    assert Path(local).read_text() == "x" * 100
    assert Path(local).name == "x.txt"

    dst = tmp_path / "dl-dir"
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data", dst_path=str(dst))
    assert Path(local).is_dir()
    assert _tree(Path(local)) == _tree(src)

    # whole run, through MlflowClient
    dst = tmp_path / "dl-all"
    dst.mkdir()
    local = client.download_artifacts(run_id, "", str(dst))
    assert _tree(Path(local) / "data") == _tree(src)

    # runs:/ URI form
    dst = tmp_path / "dl-uri"
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{run_id}/data/nested", dst_path=str(dst))
    assert _tree(Path(local)) == _tree(src / "nested")


def test_download_missing_artifact(client, run_id, tmp_path):
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="missing.txt", dst_path=str(tmp_path)
        )


def test_log_text_and_load_text(client, exp_id):
    text = "line one\nline two — ünïcödé ✓\n"
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_text(text, "notes/readme.txt")
    rid = run.info.run_id
    assert mlflow.artifacts.load_text(f"runs:/{rid}/notes/readme.txt") == text
    assert _listing(client, rid, "notes") == [("notes/readme.txt", False, len(text.encode("utf-8")))]


def test_log_dict_and_load_dict(client, exp_id):
    d = {"a": 1, "b": [1, 2, 3], "c": {"nested": "yes"}, "f": 0.5}
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_dict(d, "config/params.json")
        mlflow.log_dict(d, "config/params.yaml")
    rid = run.info.run_id
    assert mlflow.artifacts.load_dict(f"runs:/{rid}/config/params.json") == d
    assert yaml.safe_load(mlflow.artifacts.load_text(f"runs:/{rid}/config/params.yaml")) == d
    listed = _listing(client, rid, "config")
    assert [p for p, _, _ in listed] == ["config/params.json", "config/params.yaml"]
    assert json.loads(mlflow.artifacts.load_text(f"runs:/{rid}/config/params.json")) == d


def test_log_image_numpy(client, exp_id, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_image(img, artifact_file="images/noise.png")
    rid = run.info.run_id
    listed = _listing(client, rid, "images")
    assert [(p, d) for p, d, _ in listed] == [("images/noise.png", False)]
    assert listed[0][2] > 0
    local = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="images/noise.png", dst_path=str(tmp_path))
    back = np.asarray(Image.open(local))
    assert back.shape == img.shape
    assert np.array_equal(back, img)


def test_binary_file_round_trip_byte_identical(client, run_id, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 123)
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    client.log_artifact(run_id, str(f), artifact_path="bin")
    assert _listing(client, run_id, "bin") == [("bin/blob.bin", False, len(data))]
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="bin/blob.bin", dst_path=str(tmp_path / "dl"))
    back = Path(local).read_bytes()
    assert len(back) == len(data)
    assert hashlib.sha256(back).hexdigest() == hashlib.sha256(data).hexdigest()


def test_empty_file_round_trip(client, run_id, tmp_path):
    f = tmp_path / "empty.txt"
    f.write_bytes(b"")
    client.log_artifact(run_id, str(f))
    # stock server omits file_size for a 0-byte file, so the client reports None
    assert _listing(client, run_id) == [("empty.txt", False, None)]
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="empty.txt", dst_path=str(tmp_path / "dl"))
    assert Path(local).read_bytes() == b""


def test_artifact_names_with_spaces_and_unicode(client, run_id, tmp_path):
    src = tmp_path / "src"
    (src / "sub dir").mkdir(parents=True)
    (src / "sub dir" / "my file ü+%.txt").write_text("odd name")
    client.log_artifacts(run_id, str(src), artifact_path="odd")
    assert _listing(client, run_id, "odd") == [("odd/sub dir", True, None)]
    assert _listing(client, run_id, "odd/sub dir") == [("odd/sub dir/my file ü+%.txt", False, 8)]
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="odd/sub dir/my file ü+%.txt", dst_path=str(tmp_path / "dl")
    )
    assert Path(local).read_text() == "odd name"


def test_overwrite_artifact(client, run_id, tmp_path):
    f = tmp_path / "v.txt"
    f.write_text("first version")
    client.log_artifact(run_id, str(f))
    f.write_text("second")
    client.log_artifact(run_id, str(f))
    assert _listing(client, run_id) == [("v.txt", False, 6)]
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/v.txt") == "second"


def test_artifacts_isolated_per_run(client, exp_id, tmp_path):
    a = client.create_run(exp_id).info.run_id
    b = client.create_run(exp_id).info.run_id
    client.log_text(a, "from a", "same.txt")
    client.log_text(b, "from b", "same.txt")
    assert mlflow.artifacts.load_text(f"runs:/{a}/same.txt") == "from a"
    assert mlflow.artifacts.load_text(f"runs:/{b}/same.txt") == "from b"
    run = client.get_run(a)
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{a}/artifacts"


def test_fluent_log_artifact_in_active_run(client, exp_id, tmp_path):
    f = tmp_path / "model.txt"
    f.write_text("weights")
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_artifact(str(f), artifact_path="model")
        uri = mlflow.get_artifact_uri("model/model.txt")
    assert uri == f"mlflow-artifacts:/{exp_id}/{run.info.run_id}/artifacts/model/model.txt"
    assert mlflow.artifacts.load_text(uri) == "weights"
