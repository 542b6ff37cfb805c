import json
import math

import numpy as np
import pandas as pd
import pytest

from nsm_sim.files import dumps, to_jsonable, write_file, write_files


def test_to_jsonable_makes_plain_types():
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan]})
    out = to_jsonable(
        {
            "x": np.int64(3),
            "y": np.array([1.0, np.inf]),
            "f": frame,
            "t": pd.Timestamp("2025-01-06"),
        }
    )
    assert out == {
        "x": 3,
        "y": [1.0, None],
        "f": [{"a": 1, "b": 0.5}, {"a": 2, "b": None}],
        "t": "2025-01-06T00:00:00",
    }
    assert json.loads(dumps({"v": math.nan})) == {"v": None}


def test_write_files_creates_a_new_folder_whole(tmp_path):
    out = tmp_path / "out"
    written = write_files(out, {"a.json": {"k": 1}, "sub/b.csv": pd.DataFrame({"c": [1]})})
    assert sorted(p.name for p in written) == ["a.json", "b.csv"]
    assert json.loads((out / "a.json").read_text()) == {"k": 1}
    assert (out / "sub" / "b.csv").read_text().splitlines() == ["c", "1"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def test_a_failed_write_leaves_the_old_files(tmp_path):
    out = tmp_path / "out"
    write_files(out, {"a.txt": "old", "b.txt": "old"})

    def explode(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_files(out, {"a.txt": "new", "b.txt": explode})
    assert (out / "a.txt").read_text() == "old"
    assert (out / "b.txt").read_text() == "old"
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "b.txt"]


def test_write_file_replaces_one_file(tmp_path):
    write_file(tmp_path / "x.txt", "1")
    write_file(tmp_path / "x.txt", "2")
    assert (tmp_path / "x.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
