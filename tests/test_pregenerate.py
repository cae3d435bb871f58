"""`critic critique --all` on a small real collection (a copy of the session's build, cut to 40 artworks): it fills
the critiques table, a rerun skips what is current and rewrites only what went stale, the API and `critic
critique ID` serve a current stored critique as stored and never a stale one; the process pool and Ray (a local
Ray, two actors) write the same critiques as this process."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from dataclasses import replace

import pytest

from api import create_app
from api.ratelimit import GenerationSlots
from api.testing import NO_LIMITS, copy_home
from critic.cli import main
from critic.critiques import CritiqueStore, open_critiques
from critic.home import Home
from critic.pregenerate import LocalEngine, RayEngine, pregenerate
from critic.service import Service
from critic.sql import open_database
from critic.store import ArtworkStore

ARTWORKS = 40
TONE = "label"  # the quickest tone: the table and its stamps are the same for every tone


@pytest.fixture(scope="module")
def home(built_home, tmp_path_factory) -> Home:
    home = copy_home(built_home, tmp_path_factory.mktemp("pregenerate") / "home")
    with sqlite3.connect(home.store_path) as db:  # the services loaded below drop the rest from their index
        db.execute("DELETE FROM artworks WHERE rowid > ?", (ARTWORKS,))
    return home


@pytest.fixture(scope="module")
def table(home) -> CritiqueStore:
    return open_critiques(home, ArtworkStore(home.store_location))


@pytest.fixture(scope="module")
def service(home, first_run) -> Service:
    return Service.load(home, log=lambda _: None)


@pytest.fixture(scope="module")
def client(service):
    return create_app({**NO_LIMITS, "LOG_REQUESTS": False}, service=service).test_client()


def run_all(capsys, home: Home, *extra: str) -> dict:
    code = main(["critique", "--all", "--home", str(home.root), "--tone", TONE, "--json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def first_run(home) -> dict:
    began = time.perf_counter()
    report = pregenerate(home, [TONE], 0, LocalEngine(), progress=False).to_json()
    print(f"first run {time.perf_counter() - began:.1f} s: {report}")
    return report


def served(client, artwork_id: str, seed: int = 0) -> dict:
    response = client.get(f"/api/v1/artworks/{artwork_id}/critique?tone={TONE}&seed={seed}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def mark(table: CritiqueStore, artwork_id: str, **stamp) -> None:
    """Put a marker in a stored critique's text (and change its stamp): a response with it was read, not written."""
    stored = table.get(artwork_id, TONE, 0)
    marked = {**stored.critique, "text": "MARK", "sections": [{"title": "Mark", "text": "MARK"}]}
    table.put_many([replace(stored, critique=marked, stamp=replace(stored.stamp, **stamp))])


def test_all_fills_the_table_and_a_second_run_skips_everything(capsys, home, table, first_run):
    assert (first_run["artworks"], first_run["written"], first_run["current"], first_run["failed"]) == (40, 40, 0, 0)
    assert table.count() == ARTWORKS
    again = run_all(capsys, home)
    assert (again["written"], again["current"], again["removed"]) == (0, ARTWORKS, 0)
    assert table.count() == ARTWORKS


def test_the_api_and_the_cli_serve_a_current_critique_as_stored(capsys, home, table, service, client):
    records = service.store.all()
    described = next(r for r in records if r.description.strip())
    drafted = next(r for r in records if not r.description.strip())
    for record in (described, drafted):
        stored = table.get(record.id, TONE, 0)
        assert stored.critique == service.writing.pregenerate(record, TONE, 0).critique  # the writer's own output
        assert stored.stamp.record == record.version() and stored.stamp.writer == service.writing.writer_version
        assert served(client, record.id) == stored.critique
    stored_s = min(_timed(lambda: served(client, described.id)) for _ in range(3))
    written_s = min(_timed(lambda seed=seed: served(client, described.id, seed)) for seed in (7, 8, 9))
    assert stored_s < written_s, (stored_s, written_s)
    mark(table, described.id)
    assert served(client, described.id)["text"] == "MARK"
    assert main(["critique", described.id, "--tone", TONE, "--home", str(home.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "MARK"


def test_a_stored_critique_costs_a_read_and_waits_for_no_generation_slot(service):
    run_dir = tempfile.mkdtemp(prefix="critic-run-")
    settings = {**NO_LIMITS, "LOG_REQUESTS": False, "RUN_DIR": run_dir, "MAX_GENERATIONS": 1,
                "GENERATION_RATE_LIMIT": "1/hour"}
    client = create_app(settings, service=service).test_client()
    held = GenerationSlots(run_dir, 1).acquire()  # as another worker writing a critique
    assert held is not None
    url = f"/api/v1/artworks/{service.store.ids()[1]}/critique?tone={TONE}"
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]  # stored: within a 1/hour budget
    assert client.get(f"{url}&seed=11").status_code == 503  # to be written: it needs the slot


def _timed(call) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def test_a_stale_critique_is_never_served_and_a_rerun_rewrites_only_the_stale(capsys, home, table, service, client):
    stamps = table.stamps(0)
    cited_by = {i: {j for (j, _), stamp in stamps.items() if i in stamp.cited} for i, _ in stamps}
    ids = sorted(cited_by, key=lambda i: (len(cited_by[i]), i))
    edited, neighbour = ids[0], ids[1]  # the least cited: their edits leave most critiques current
    citer = sorted(cited_by[neighbour] - {edited})[0]
    rewritten_writer = next(i for i in ids[::-1] if i not in {edited, neighbour, citer} | cited_by[edited]
                            | cited_by[neighbour])
    untouched = next(i for i in ids[::-1] if i not in {edited, neighbour, citer, rewritten_writer} | cited_by[edited]
                     | cited_by[neighbour])
    for artwork_id in (edited, citer, untouched):
        mark(table, artwork_id)
    mark(table, rewritten_writer, writer="an older writer")
    for artwork_id in (edited, neighbour):
        record = service.store.get(artwork_id)
        service.upsert([replace(record, title=f"{record.title} (restored)")])
    for artwork_id in (edited, citer, rewritten_writer):  # its record, a neighbour it drew on, its writer changed
        assert served(client, artwork_id)["text"] != "MARK"
    assert served(client, untouched)["text"] == "MARK"

    stale = {edited, neighbour, rewritten_writer} | cited_by[edited] | cited_by[neighbour]
    rerun = run_all(capsys, home)
    assert (rerun["written"], rerun["current"]) == (len(stale), ARTWORKS - len(stale))
    assert table.count() == ARTWORKS  # rewritten in place
    assert table.get(edited, TONE, 0).stamp.record == service.store.get(edited).version()
    assert served(client, citer)["text"] != "MARK" and served(client, untouched)["text"] == "MARK"

    citers = {j for (j, _), stamp in table.stamps(0).items() if untouched in stamp.cited}
    service.delete(untouched)
    after = run_all(capsys, home)
    assert (after["removed"], after["written"]) == (1, len(citers))
    assert table.count() == ARTWORKS - 1 and table.get(untouched, TONE, 0) is None


BAD = [
    ["--all", "153"],
    ["153", "--workers", "2"],
    ["153", "--tone", "label", "--tone", "critique"],
    ["--all", "--address", "head:6379"],
    ["--all", "--workers", "0"],
    ["--all", "--seed", "-1"],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(argv) for argv in BAD])
def test_bad_combinations_are_one_line_errors(capsys, home, argv):
    try:
        code = main(["critique", *argv, "--home", str(home.root)])
    except SystemExit as exc:  # refused by argparse itself
        code = exc.code
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("critic")


@pytest.mark.slow
def test_on_postgresql_the_critiques_sit_beside_the_artworks(capsys, monkeypatch, home, postgres):
    url = postgres.database("pregenerate")
    records = ArtworkStore(str(home.store_path)).all()
    ArtworkStore(url).upsert_many(records)
    monkeypatch.setenv("CRITIC_DATABASE_URL", url)
    first = run_all(capsys, home, "--seed", "5")
    assert (first["written"], first["failed"]) == (len(records), 0)
    shared = CritiqueStore(open_database(url))
    assert shared.count() == len(records) and open_critiques(home, ArtworkStore(url)).db.location == url
    assert run_all(capsys, home, "--seed", "5")["current"] == len(records)
    node = Service.load(home, log=lambda _: None)  # another node: it serves what the run stored
    assert node.writing.stored(records[0], TONE, 5).to_json() == shared.get(records[0].id, TONE, 5).critique


@pytest.mark.slow
@pytest.mark.parametrize("engine", [LocalEngine(workers=2), RayEngine(workers=2)], ids=["processes", "ray"])
def test_other_engines_write_what_this_process_writes(home, table, service, engine):
    seed = 3 if engine.name == "local" else 4
    report = pregenerate(home, [TONE], seed, engine, progress=False)
    assert (report.workers, report.written, report.failed) == (2, service.store.count(), 0)
    service.writing.refresh(wait=True)
    for record in service.store.all()[:3]:
        assert table.get(record.id, TONE, seed).critique == service.writing.pregenerate(record, TONE, seed).critique
