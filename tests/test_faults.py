"""Faults, for real: a download cut off mid-way, a full disk under the data dir, a damaged
checkpoint, a server killed mid-analysis and a browser session closed mid-analysis. Each
leaves a consistent store, no temp files, and one clear message."""

from __future__ import annotations

import errno
import gc
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from audiogen import make_audio
from support import ffmpeg_children, stored_rows

from sonotag_core.cli import main
from sonotag_core.domain.labels import LabelSet
from sonotag_core.errors import DecodeError, SourceError
from sonotag_core.media import sources, workdirs
from sonotag_core.service import library
from sonotag_core.store.database import Store

SONOTAG = str(Path(sys.executable).parent / "sonotag")
LABELS = LabelSet(("a tone", "siren"))
STORE_FILES = {"sonotag.db", "sonotag.db-wal", "sonotag.db-shm", "logs/sonotag.log"}


class Cancelled(BaseException):
    """What Streamlit raises in a script whose browser session went away (StopException
    derives from BaseException too), so ``except Exception`` never swallows it."""


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder`` (relative paths), temp folders' contents included."""
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*") if not p.is_dir()}


def dirs_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_dir()}


@pytest.fixture
def cli(monkeypatch, cli_env, tmp_path):
    """The in-process ``sonotag`` command with its own SONOTAG_DATA_DIR (``cli.data``)."""
    for key, value in cli_env.items():
        if key.startswith(("SONOTAG_", "HF_")):
            monkeypatch.setenv(key, value)
    data = tmp_path / "data"
    monkeypatch.setenv("SONOTAG_DATA_DIR", str(data))

    def run(*args: str) -> int:
        return main(list(args))

    run.data = data
    return run


# ---------------------------------------------------------------- a download cut off


@pytest.fixture(scope="module")
def cut_server(tmp_path_factory):
    """Serves ``/half.mp3``: announces the whole file, sends half of it, then hangs up."""
    root = tmp_path_factory.mktemp("cut")
    body = make_audio(root / "clip.mp3", 6.0, kind="mix").read_bytes()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    policy = sources.UrlPolicy(("Generic",), local_origins=(f"127.0.0.1:{port}",))
    yield f"http://127.0.0.1:{port}/half.mp3", policy, hits
    server.shutdown()


def stored_upload(data: Path, model, settings) -> Store:
    """A data dir as the dashboard leaves it: one analysed upload, its audio kept."""
    store = Store(data)
    clip = make_audio(data.parent / "kept.wav", 5.0, kind="mix").read_bytes()
    src = sources.from_upload(clip, "kept.wav", data / "uploads")
    library.run(model, src, LABELS, hop_s=10.0, settings=settings, store=store)
    return store


def test_a_download_cut_off_midway(cut_server, tmp_path, model, settings):
    url, policy, hits = cut_server
    data = tmp_path / "data"
    store = stored_upload(data, model, settings)
    before, listed = files_under(data), store.list_analyses()
    with pytest.raises(SourceError, match="cut off before the end") as err:
        sources.from_url(url, data / "media", max_duration_s=60, policy=policy)
    assert "\n" not in str(err.value) and len(hits) >= 2  # yt-dlp retried, then gave up
    assert files_under(data) == before  # no .part file, no staging folder
    assert not [d for d in dirs_under(data) if sources.STAGING_PREFIX in d]
    assert store.list_analyses() == listed and stored_rows(data) == 1


def test_a_cancelled_download_leaves_nothing(cut_server, tmp_path):
    """The progress callback raising mid-download (a closed session, Ctrl-C)."""
    url, policy, _ = cut_server

    def cancel(p) -> None:
        if p.stage == "download" and p.done > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        sources.from_url(url, tmp_path, max_duration_s=60, policy=policy, progress=cancel)
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_folders_of_killed_runs_are_swept(tmp_path):
    old, fresh = tmp_path / ".download-old", tmp_path / ".download-new"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "x.webm.part").write_bytes(b"x" * 100)
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    (tmp_path / "kept.webm").write_bytes(b"y")
    sources.sweep_stale(tmp_path, sources.STAGING_PREFIX)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".download-new", "kept.webm"]


# ---------------------------------------------------------------- a full disk


@pytest.fixture(params=["tmpfs", "simulated"])
def full_disk(request, tmp_path):
    """A data dir on a full disk: a 2 MB tmpfs (a real ENOSPC; skipped where mounting is
    not permitted), or ``None``, meaning the test simulates it (SQLite's max_page_count, a
    write raising ENOSPC)."""
    if request.param == "simulated":
        yield None
        return
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        proc = None
    if proc is None or proc.returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here; the simulated case still runs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def fill(folder: Path, leave_bytes: int) -> None:
    """Fill the file system under ``folder`` until about ``leave_bytes`` are free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / "filler", "wb") as fh:
        try:
            fh.write(b"\0" * max(free - leave_bytes, 0))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def full_store(monkeypatch) -> None:
    """Fallback without mount: every store connection may not grow the database."""
    real = Store._conn

    def conn(self):
        db = real(self)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db

    monkeypatch.setattr(Store, "_conn", conn)


def test_full_disk_cli_still_writes_the_export(tmp_path, cli, capsys, monkeypatch, full_disk):
    if full_disk is not None:
        monkeypatch.setenv("SONOTAG_DATA_DIR", str(full_disk))
        cli.data = full_disk
    Store(cli.data)  # an existing store on that disk
    if full_disk is not None:
        fill(full_disk, leave_bytes=0)
    else:
        full_store(monkeypatch)
    clip = make_audio(tmp_path / "c.wav", 15.0, kind="mix")
    out = tmp_path / "events.csv"
    assert cli("analyze", str(clip), "--labels", "a tone", "-o", str(out)) == 0
    assert out.read_text().startswith("label,onset_s,offset_s,peak,mean")
    err = capsys.readouterr().err
    [warning] = [line for line in err.splitlines() if "warning" in line]
    assert "is full" in warning and "export was written" in warning, err
    assert "Traceback" not in err and "Logging error" not in err and "analysis " not in err
    assert stored_rows(cli.data) == 0
    assert not [p for p in cli.data.iterdir() if p.name.startswith("sonotag-")]


def test_full_disk_upload_is_a_clear_error(tmp_path, monkeypatch, full_disk):
    data = make_audio(tmp_path / "u.wav", 30.0, sample_rate=48_000).read_bytes()  # 2.9 MB
    uploads = (full_disk or tmp_path) / "uploads"
    if full_disk is None:
        real = Path.write_bytes

        def enospc(self, payload):
            real(self, payload[:1000])
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Path, "write_bytes", enospc)
    with pytest.raises(SourceError, match="Free some disk space") as err:
        sources.from_upload(data, "u.wav", uploads)
    assert "No space left" in str(err.value) and "\n" not in str(err.value)
    assert list(uploads.iterdir()) == []  # no half-written .part


# ---------------------------------------------------------------- a damaged checkpoint


def test_truncated_checkpoint_through_the_cli(tmp_path, cli, capsys, model_cache, monkeypatch):
    whole = model_cache.checkpoint_path
    half = tmp_path / "open_flam_oct17.pth"
    with open(whole, "rb") as src, open(half, "wb") as dst:
        dst.write(src.read(whole.stat().st_size // 2))
    monkeypatch.setenv("SONOTAG_CHECKPOINT", str(half))
    clip = make_audio(tmp_path / "c.wav", 3.0)
    assert cli("analyze", str(clip), "--labels", "siren", "-q") == 1
    err = capsys.readouterr().err
    assert err.startswith("sonotag: error: ") and err.count("\n") == 1, err
    assert "could not be loaded" in err and "delete it and run `sonotag fetch-model`" in err
    assert str(half) in err and "Traceback" not in err
    assert not [p for p in cli.data.iterdir() if p.name.startswith("sonotag-")]


# ---------------------------------------------------------------- killed / cancelled runs


def test_server_killed_mid_encoding(tmp_path, cli_env, cli, capsys):
    """SIGKILL while the audio encoder runs (a restart, an OOM kill): the store stays
    consistent with no trace of that run, and the next run completes and is stored."""
    clip = make_audio(tmp_path / "long.wav", 300.0, kind="mix")
    env = dict(cli_env, SONOTAG_DATA_DIR=str(cli.data))
    proc = subprocess.Popen(
        [SONOTAG, "analyze", str(clip), "--labels", "a tone", "-o", str(tmp_path / "never.csv")],
        env=env,
        stderr=subprocess.PIPE,
    )
    seen = b""
    deadline = time.monotonic() + 240
    try:
        while b"encode" not in seen and time.monotonic() < deadline:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    assert b"encode" in seen, seen[-2000:]
    assert not (tmp_path / "never.csv").exists()
    assert stored_rows(cli.data) == 0  # opened before the kill, consistent, empty
    [leftover] = [p for p in cli.data.iterdir() if p.name.startswith("sonotag-")]
    # not aged by hand: its owner is dead, its lock is free, so the next run sweeps it

    short = make_audio(tmp_path / "short.wav", 12.0, kind="mix")
    assert cli("analyze", str(short), "--labels", "a tone", "-o", str(tmp_path / "ok.csv")) == 0
    assert "analysis " in capsys.readouterr().err
    assert stored_rows(cli.data) == 1
    assert not leftover.exists()  # the killed run's temp folder was swept


def test_cli_interrupted_mid_encoding_leaves_nothing(tmp_path, cli, capsys, monkeypatch):
    from sonotag_core import cli as cli_module

    real = cli_module.StderrProgress.__call__

    def interrupt(self, p) -> None:
        if p.stage == "encode" and p.done >= 1:
            raise KeyboardInterrupt
        real(self, p)

    monkeypatch.setattr(cli_module.StderrProgress, "__call__", interrupt)
    clip = make_audio(tmp_path / "c.wav", 40.0, kind="mix")
    assert cli("analyze", str(clip), "--labels", "a tone", "-o", str(tmp_path / "x.csv")) == 130
    assert capsys.readouterr().err.strip().endswith("sonotag: interrupted")
    assert files_under(cli.data) <= STORE_FILES and stored_rows(cli.data) == 0
    assert dirs_under(cli.data) <= {"media", "logs"}


def test_cli_failed_analysis_leaves_nothing(tmp_path, cli, capsys):
    whole = make_audio(tmp_path / "whole.mp3", 30.0)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert cli("analyze", str(cut), "--labels", "a tone") == 1
    assert "truncated" in capsys.readouterr().err
    assert files_under(cli.data) <= STORE_FILES and stored_rows(cli.data) == 0
    assert dirs_under(cli.data) <= {"media", "logs"}


def test_browser_closed_mid_analysis(tmp_path, model, settings):
    """A session that goes away mid-encoding: Streamlit raises StopException from the
    next progress update. Nothing partial is stored, no file is left, ffmpeg is stopped,
    and the next run of the same audio works."""
    data = tmp_path / "data"
    store = Store(data)
    bytes_ = make_audio(tmp_path / "up.wav", 45.0, kind="mix").read_bytes()
    before = files_under(data)

    def closed(p) -> None:
        if p.stage == "encode" and p.done >= 1:
            raise Cancelled

    src = sources.from_upload(bytes_, "up.wav", data / "uploads")
    with pytest.raises(Cancelled):
        library.run(model, src, LABELS, hop_s=10.0, settings=settings, store=store, progress=closed)
    gc.collect()
    assert ffmpeg_children() == []
    assert files_under(data) == before and stored_rows(data) == 0  # the upload copy went too

    again = sources.from_upload(bytes_, "up.wav", data / "uploads")
    done = library.run(model, again, LABELS, hop_s=10.0, settings=settings, store=store)
    assert done.analysis_id and done.embeddings.n_windows == 5 and stored_rows(data) == 1
    assert done.source.path.parent == data / "media" and done.source.path.is_file()


def test_a_failed_upload_run_leaves_nothing_but_kept_audio(tmp_path, model, settings):
    """A truncated upload passes the probe but fails mid-decode: its copy goes; audio kept
    for an earlier analysis stays."""
    data = tmp_path / "data"
    store = stored_upload(data, model, settings)
    before = files_under(data)
    whole = make_audio(tmp_path / "whole.mp3", 30.0)
    cut = whole.read_bytes()[: whole.stat().st_size // 2]
    src = sources.from_upload(cut, "cut.mp3", data / "uploads")
    with pytest.raises(DecodeError, match="truncated"):
        library.run(model, src, LABELS, hop_s=10.0, settings=settings, store=store)
    assert files_under(data) == before and stored_rows(data) == 1


def test_orphaned_working_copies_are_swept(tmp_path):
    """Upload and download working copies a restart left behind go after a day; fresh ones
    (a run in progress) and the store's kept audio stay."""
    import time as _time

    from sonotag_core.media.sources import sweep_working_copies

    old = _time.time() - 2 * 24 * 3600
    files = {}
    for folder, name in [
        ("uploads", "a.wav"),
        ("downloads", "b.m4a"),
        ("media", "c.wav"),
        ("uploads", "fresh.wav"),
    ]:
        path = tmp_path / folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
        if name != "fresh.wav":
            os.utime(path, (old, old))
        files[name] = path
    staging = tmp_path / "downloads" / ".download-abc"
    staging.mkdir()
    os.utime(staging, (old, old))
    assert sweep_working_copies(tmp_path) == 2
    assert not files["a.wav"].exists() and not files["b.m4a"].exists()
    assert files["c.wav"].exists() and files["fresh.wav"].exists() and not staging.exists()
    assert sweep_working_copies(tmp_path / "nowhere") == 0


def test_a_live_runs_folder_is_never_swept_and_a_dead_ones_is_at_once(tmp_path):
    """The lock, not the age, tells a live run from a dead one: a folder held by a live
    process survives a sweep however old it looks; the moment that process is killed
    (SIGKILL: no cleanup runs), the next sweep removes it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from sonotag_core.media import workdirs\n"
            f"with workdirs.run_folder(Path({str(tmp_path)!r}), 'sonotag-') as d:\n"
            "    (d / 'partial.webm').write_bytes(b'x' * 1000); print(d, flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        folder = Path(holder.stdout.readline().strip())
        assert folder.is_dir() and (folder / workdirs.LOCK_NAME).is_file()
        os.utime(folder, (time.time() - 30 * 86400,) * 2)  # old, but its owner lives
        assert workdirs.sweep(tmp_path, "sonotag-") == 0 and folder.is_dir()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert workdirs.sweep(tmp_path, "sonotag-") == 1 and not folder.exists()


def test_sweep_keeps_fresh_unlocked_folders_and_other_names(tmp_path):
    fresh = tmp_path / "sonotag-fresh"  # no lock yet (its owner is about to take it)
    fresh.mkdir()
    other = tmp_path / "media"
    other.mkdir()
    old = tmp_path / "sonotag-old"  # left by a version before the lock, a week ago
    old.mkdir()
    os.utime(old, (time.time() - 7 * 86400,) * 2)
    assert workdirs.sweep(tmp_path, "sonotag-") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["media", "sonotag-fresh"]


# ---------------------------------------------------------------- a read-only data dir


@pytest.fixture
def read_only_data(tmp_path, cli, monkeypatch):
    """A data dir holding a library, then made read-only: a tmpfs remounted ro (as root),
    or a folder without write permission (as another user). Skipped where neither works."""
    data = tmp_path / "ro"
    data.mkdir()
    mounted = False
    if os.geteuid() == 0:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(data)],
            capture_output=True,
            timeout=10,
        )
        if proc.returncode != 0:
            pytest.skip("mounting a tmpfs is not permitted here")
        mounted = True
    try:
        # an existing library, made by another process: no handle of ours keeps it busy
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"from sonotag_core.store.database import Store; Store({str(data)!r})",
            ],
            check=True,
            timeout=60,
        )
        monkeypatch.setenv("SONOTAG_DATA_DIR", str(data))
        cli.data = data
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True, timeout=10)
        else:
            data.chmod(0o555)
        yield data
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(data)], capture_output=True, timeout=10)
        else:
            data.chmod(0o755)


def test_read_only_data_dir_still_writes_the_export(tmp_path, cli, capsys, read_only_data):
    before = files_under(read_only_data)
    clip = make_audio(tmp_path / "c.wav", 12.0, kind="mix")
    out = tmp_path / "events.csv"
    assert cli("analyze", str(clip), "--labels", "a tone", "-o", str(out)) == 0
    assert out.read_text().startswith("label,onset_s,offset_s,peak,mean")
    err = capsys.readouterr().err
    [warning] = [line for line in err.splitlines() if "warning" in line]
    assert "is read-only" in warning and "export was written" in warning, err
    assert str(read_only_data) in warning and "internal error" not in err
    assert files_under(read_only_data) == before
    assert not [p for p in Path(tempfile.gettempdir()).glob("sonotag-*") if is_ours(p)]


def test_read_only_library_says_so(cli, capsys, read_only_data):
    assert cli("library", "list") == 1
    err = capsys.readouterr().err
    assert err.startswith("sonotag: error: ") and "is read-only or not writable" in err, err


def is_ours(folder: Path) -> bool:
    """A run folder of this test process (other runs on the machine may have their own)."""
    try:
        return (folder / workdirs.LOCK_NAME).read_text().strip() == str(os.getpid())
    except OSError:
        return False
