"""critic.home: where a build's files live, and build.json written whole or not at all."""

import json

from critic.home import Home


def test_paths_sit_in_the_root(tmp_path):
    home = Home.resolve(tmp_path)
    assert home.store_path == tmp_path / "artworks.sqlite"
    assert home.info_path == tmp_path / "build.json"
    assert home.index_dir.parent == tmp_path


def test_info_round_trips_and_leaves_no_temporary_file(tmp_path):
    home = Home(tmp_path)
    assert home.read_info() == {}
    home.write_info({"records": 3, "model": "m"})
    home.write_info({"records": 4, "model": "m"})
    assert home.read_info() == {"records": 4, "model": "m"}
    assert json.loads(home.info_path.read_text()) == {"model": "m", "records": 4}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build.json"]


def test_the_environment_names_the_default_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRITIC_HOME", str(tmp_path / "elsewhere"))
    assert Home.resolve().root == tmp_path / "elsewhere"
