"""`sonotag batch` end to end on generated files through the real model code: every file
once, a corrupt one in errors/, a rerun skips what is done, a killed driver loses
nothing and duplicates nothing, changed labels are refused."""

from __future__ import annotations

import io
import json
import math
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from audiogen import make_audio

from sonotag_core.archive.parts import read_events

SONOTAG = str(Path(sys.executable).with_name("sonotag"))


@pytest.fixture
def archive(tmp_path):
    folder = tmp_path / "archive"
    (folder / "b").mkdir(parents=True)
    for i in range(3):
        make_audio(folder / f"a{i}.wav", 6.0 + i, kind="mix", freq=300 + 100 * i)
    make_audio(folder / "b" / "deep.flac", 5.0, kind="sine")
    (folder / "broken.wav").write_bytes(b"RIFF....not audio at all")
    (folder / "notes.txt").write_text("not audio: not in the manifest")
    return folder


@pytest.fixture
def cli(cli_here):
    return cli_here


def batch(cli, *args: str) -> int:
    return cli("batch", *args)


def test_batch_tags_every_file_once_and_resumes(cli, archive, tmp_path, capsys):
    out = tmp_path / "out"
    rc = batch(cli, str(archive), "-o", str(out), "--labels", "a tone; noise")
    err = capsys.readouterr().err
    assert rc == 1  # one file failed: the run says so
    assert "4 analysed, 0 already done, 1 failed" in err
    parts = sorted(p.name for p in (out / "parts").glob("*.parquet"))
    assert len(parts) == 4
    [error] = list((out / "errors").glob("*.json"))
    assert "broken.wav" in json.loads(error.read_text())["source"]
    events = read_events(out)
    assert set(events["key"]) <= {p.removesuffix(".parquet") for p in parts}
    assert not events.duplicated().any()
    spec = json.loads((out / "_batch.json").read_text())
    assert spec["labels"] == ["a tone", "noise"] and spec["hop_s"] == 10.0

    rc = batch(cli, str(archive), "-o", str(out), "--labels", "a tone; noise")
    assert "0 analysed, 4 already done, 1 failed" in capsys.readouterr().err
    assert read_events(out).equals(events) or len(read_events(out)) == len(events)

    rc = batch(cli, str(archive), "-o", str(out), "--labels", "siren")
    assert rc == 1 and "labels" in capsys.readouterr().err  # a changed spec is refused

    assert batch(cli, str(archive), "-o", str(out), "--labels", "a tone; noise", "--dry-run") == 0
    listed = capsys.readouterr()
    assert listed.out.count("done\t") == 4 and listed.out.count("todo\t") == 1

    # one table across files: CSV, a DCASE tsv, and SQL over the parts
    combined = tmp_path / "all.csv"
    assert batch(cli, "events", str(out), "-o", str(combined)) == 0
    table = pd.read_csv(combined)
    assert len(table) == len(events) and set(table["key"]) == set(events["key"])
    assert batch(cli, "events", str(out), "--format", "dcase") == 0
    tsv = capsys.readouterr().out.splitlines()
    assert tsv[0] == "filename\tonset\toffset\tevent_label" and len(tsv) == len(events) + 1
    names = {line.split("\t")[0] for line in tsv[1:]}
    assert names <= {"a0.wav", "a1.wav", "a2.wav", "deep.flac"}
    sql = "SELECT key, count(*) AS n FROM frames GROUP BY key ORDER BY key"
    assert batch(cli, "query", str(out), sql) == 0
    counts = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(counts) == 4
    # frames per file: labels x ceil(duration / 0.3125 s) (6, 7, 8 and 5 s of audio)
    assert sorted(counts["n"]) == sorted(2 * math.ceil(d / 0.3125) for d in (6, 7, 8, 5))
    assert batch(cli, "query", str(out), "SELECT nope FROM events") == 1
    assert "The query failed" in capsys.readouterr().err


def _parts(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / "parts").glob("*.parquet"))


def test_a_driver_killed_mid_run_loses_and_duplicates_nothing(cli, cli_env, tmp_path, capsys):
    """SIGKILL the `sonotag batch` process once its first part is committed, then rerun:
    every file has exactly one part and the events table has no duplicate rows."""
    import os
    import signal
    import subprocess

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        make_audio(folder / f"f{i}.wav", 12.0, kind="mix", freq=250 + 50 * i)
    out = tmp_path / "out"
    env = {**os.environ, **cli_env, "SONOTAG_DATA_DIR": str(tmp_path / "data")}
    args = [SONOTAG, "batch", str(folder), "-o", str(out), "--labels", "a tone; hum"]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)
    try:
        while not _parts(out) and proc.poll() is None:  # wait for the first commit
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = _parts(out)
    assert 1 <= len(before) < 6  # killed mid-run: some files done, some not
    assert batch(cli, str(folder), "-o", str(out), "--labels", "a tone; hum") == 0
    err = capsys.readouterr().err
    assert f"{len(before)} already done" in err
    after = _parts(out)
    assert len(after) == 6 and set(before) <= set(after)
    events = read_events(out)
    assert not events.duplicated().any()
    assert not list(out.rglob("*.tmp"))  # a killed writer's temporary was swept


def test_the_dask_engine_gives_the_same_rows_as_the_local_loop(cli, archive, tmp_path, capsys):
    """A 2-worker LocalCluster on 127.0.0.1 (each worker loads the model once): the same
    parts and the same event rows as the local engine on the same files."""
    pytest.importorskip("distributed")
    local, dask_out = tmp_path / "local", tmp_path / "dask"
    labels = ("--labels", "a tone; noise")
    batch(cli, str(archive), "-o", str(local), *labels)
    rc = batch(
        cli, str(archive), "-o", str(dask_out), *labels, "--engine", "dask", "--workers", "2"
    )
    err = capsys.readouterr().err
    assert rc == 1 and "4 analysed, 0 already done, 1 failed" in err, err
    assert _parts(local) == _parts(dask_out)
    a = read_events(local).sort_values(["key", "label", "onset_s"]).reset_index(drop=True)
    b = read_events(dask_out).sort_values(["key", "label", "onset_s"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert not (dask_out / ".dask").exists()  # the workers' scratch space is gone


def _killer(markers: dict[str, str]):
    """A WorkerPlugin that SIGKILLs its worker process once per marker: when a task of
    ``run_dask`` starts executing (``executing``: mid-task) and when one has finished, its
    part committed but its result not yet sent (``memory``). Built here so cloudpickle
    ships it by value; the marker files make each kill happen once across respawns."""
    from distributed import WorkerPlugin

    class Killer(WorkerPlugin):
        name = "test-killer"

        def transition(self, key, start, finish, **kwargs):
            import os
            import signal
            from pathlib import Path

            marker = markers.get(finish)
            name = key[0] if isinstance(key, tuple) else key
            if marker and str(name).startswith("_task") and not Path(marker).exists():
                Path(marker).write_text(str(name))
                os.kill(os.getpid(), signal.SIGKILL)

    return Killer()


def test_a_worker_killed_mid_task_is_retried_exactly_once(cli, tmp_path, capsys):
    """Dask's at-least-once retries: a worker SIGKILLed as a task starts, and another as a
    task finishes (its part already committed, so the retry runs it again): every file
    still ends with one part, the run succeeds and no event row is doubled."""
    pytest.importorskip("distributed")
    import dask
    from distributed import Client, LocalCluster

    from sonotag_core.batch.dask_engine import WORKER_ENVIRON

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(5):
        make_audio(folder / f"f{i}.wav", 6.0, kind="mix", freq=250 + 50 * i)
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    markers = {phase: str(tmp_path / f"killed-{phase}") for phase in ("executing", "memory")}
    config = {"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON}
    with dask.config.set({**config, "temporary-directory": str(scratch)}):
        with (
            LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                local_directory=str(scratch),
            ) as cluster,
            Client(cluster) as client,
        ):
            client.register_plugin(_killer(markers))
            rc = batch(
                cli, str(folder), "-o", str(out), "--labels", "a tone; hum",
                "--engine", "dask", "--address", cluster.scheduler_address,
            )  # fmt: skip
    err = capsys.readouterr().err
    assert all(Path(m).exists() for m in markers.values())  # both kills happened
    assert rc == 0 and "5 analysed, 0 already done, 0 failed" in err, err
    assert len(_parts(out)) == 5
    events = read_events(out)
    assert sorted(events["key"].unique()) == _parts(out)
    assert not events.duplicated().any()
    assert not list(out.rglob("*.tmp"))
