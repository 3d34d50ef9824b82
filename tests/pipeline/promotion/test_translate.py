"""``nmt translate``: lines in (stdin or a file), one translation per line out, with the
registry's champion by default. The store holds one tiny model (a single optimizer step)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.pipeline.cli import main
from tests.conftest import TINY_RUN, module_home

pytestmark = pytest.mark.slow

NMT = Path(sys.executable).parent / "nmt"
LINES = ["Ein Hund läuft im Park.", "Zwei Männer spielen Fußball.", "", "Eine Frau liest ein Buch.",
         "Kinder spielen im Schnee."]


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory, multi30k_dir):
    """A store whose nmt-de-en@champion is one tiny model."""
    with module_home(tmp_path_factory, multi30k_dir, "translate") as (_, uri):
        assert main(["run", *TINY_RUN]) == 0
    return uri


def test_stdin_five_lines_in_five_lines_out(store_uri, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(line + "\n" for line in LINES)))
    capsys.readouterr()
    assert main(["translate", "--beam", "1"]) == 0
    out = capsys.readouterr().out.split("\n")
    assert out[-1] == "" and len(out[:-1]) == 5
    assert out[2] == ""  # an empty line stays an empty line, in place


def test_file_and_explicit_version(store_uri, tmp_path, capsys):
    src = tmp_path / "in.de"
    src.write_text("\n".join(LINES[:2]) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", "--file", str(src), "--model", "models:/nmt-de-en/1", "--beam", "2",
                 "--tracking-uri", store_uri]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_nmt_command_reads_stdin(store_uri):
    """The installed ``nmt`` script, as a user runs it."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    proc = subprocess.run([str(NMT), "translate", "--beam", "1"], input="".join(line + "\n" for line in LINES),
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(proc.stdout.split("\n")[:-1]) == 5


@pytest.mark.parametrize("argv, message", [
    (["--model", "models:/nope@champion"], "--model models:/nope@champion: registered model 'nope' does not exist "
                                           "in sqlite:"),
    (["--model", "models:/nmt-de-en@nope"], "--model models:/nmt-de-en@nope: cannot load it from"),
    (["--file", "/nonexistent"], "--file /nonexistent: no such file; give a text file with one sentence per line"),
    # a --model that is not one of the forms MLflow resolves, nor a folder: said before the store opens
    (["--model", "nope"], "--model nope: no such folder; give models:/<name>@<alias>, models:/<name>/<version>"),
    (["--model", "models:/nmt-de-en@"], "--model models:/nmt-de-en@: not a model URI; give models:/<name>@<alias>"),
    (["--model", "models:/nmt-de-en"], "--model models:/nmt-de-en: not a model URI"),
    (["--model", "runs:/0123abcd"], "--model runs:/0123abcd: not a model URI"),
])
def test_bad_model_or_file_is_one_line_that_says_what_to_do(store_uri, monkeypatch, capsys, argv, message):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Ein Hund.\n"))
    assert main(["translate", *argv]) == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("nmt: error")]
    assert message in line and "Traceback" not in err


def test_a_line_too_long_to_decode_is_named_with_its_file(store_uri, tmp_path, monkeypatch, capsys):
    """Over the decoding memory budget: one line naming the file, the line and the flag."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setenv("NMT_DECODE_MEMORY_MB", "1")
    src = tmp_path / "in.de"
    src.write_text("Ein Hund.\n" + "Ein Hund läuft im Park. " * 60 + "\n", encoding="utf-8")
    assert main(["translate", "--file", str(src), "--beam", "5"]) == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("nmt: error")]
    assert line.startswith(f"nmt: error: --file {src}: params.beam_size=5 with the ") and "source of line 2 " in line
    assert line.endswith("(here: --beam, evaluate.*)")


def test_a_plain_translate_follows_the_store_s_language_pair(store_uri, monkeypatch, capsys):
    """No --model: models:/nmt-<pair of the newest train run>@champion; naming another pair
    that has no model is a one-line error."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setattr(sys, "stdin", io.StringIO("Ein Hund.\n"))
    assert main(["translate", "data.src_lang=fr"]) == 2
    err = capsys.readouterr().err
    assert "--model models:/nmt-fr-en@champion: registered model 'nmt-fr-en' does not exist" in err
    assert "registered models: nmt-de-en (--model-name NAME)" in err


def test_a_registered_version_is_downloaded_once_and_a_moved_alias_is_seen(store_uri, tmp_path, monkeypatch):
    """``nmt translate`` keeps each version's files under <home>/.nmt/models; the alias is
    resolved on every call, so moving @champion loads the other version at once."""
    from nmt.components.tracking.store import RunStore
    from nmt.pipeline.promotion.loading import load_translator, local_copy

    monkeypatch.setenv("NMT_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    import mlflow
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", store_uri)  # MLflow's in-process
    store = RunStore.open(store_uri, "nmt")  # URI: create_model_version resolves the version's source with it
    first = local_copy(store, "models:/nmt-de-en@champion", tmp_path)
    assert first.is_relative_to(tmp_path / ".nmt" / "models") and (first / "MLmodel").is_file()
    (first / "marker").write_text("")  # the next call serves this very folder, not a new download
    assert local_copy(store, "models:/nmt-de-en@champion", tmp_path) == first and (first / "marker").is_file()
    one = store.version_by_alias("nmt-de-en", "champion")
    two = store.client.create_model_version("nmt-de-en", one.source, one.run_id)
    try:
        store.set_alias("nmt-de-en", "champion", two.version)
        moved = local_copy(store, "models:/nmt-de-en@champion", tmp_path)
        assert moved != first and not (moved / "marker").exists()
        assert load_translator(store, "models:/nmt-de-en@champion").predict(["Ein Hund."])[0] is not None
    finally:
        store.set_alias("nmt-de-en", "champion", one.version)
    assert local_copy(store, "models:/nmt-de-en@champion", tmp_path) == first


def test_a_download_cut_short_leaves_nothing_and_a_killed_ones_copy_is_swept(store_uri, tmp_path, monkeypatch):
    """A version whose files cannot be downloaded fails without leaving its partial copy; a
    copy left by a process killed mid-download is removed by the next call, a live one's kept."""
    import mlflow

    from nmt.components.system.procs import owner
    from nmt.components.tracking.store import RunStore
    from nmt.pipeline.promotion.loading import local_copy

    monkeypatch.setenv("NMT_HOME", str(tmp_path))
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", store_uri)
    store = RunStore.open(store_uri, "nmt")
    models = tmp_path / ".nmt" / "models"
    one = store.version_by_alias("nmt-de-en", "champion")
    gone = store.client.create_model_version("nmt-de-en", str(tmp_path / "no-such-model"), one.run_id)
    with pytest.raises(Exception):
        local_copy(store, f"models:/nmt-de-en/{gone.version}", tmp_path)
    assert models.is_dir() and list(models.iterdir()) == []

    killed, live = models / "0123456789abcdef0123.killed", models / "0123456789abcdef0123.live"
    for d in (killed, live):
        d.mkdir()
    (live / "owner").write_text(owner())  # this test's own process: alive
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                              "from nmt.components.system.procs import owner\n"
                              "open(sys.argv[1], 'w').write(owner()); print(flush=True); time.sleep(600)",
                              str(killed / "owner")], stdout=subprocess.PIPE, text=True)
    child.stdout.readline()  # its owner file is written
    child.kill()
    child.wait()
    child.stdout.close()
    first = local_copy(store, "models:/nmt-de-en@champion", tmp_path)
    assert not killed.exists() and live.is_dir() and (first / "MLmodel").is_file()


def test_a_second_translate_skips_the_store_until_the_store_changes(store_uri, tmp_path, monkeypatch):
    """What a request resolved to is remembered with the SQLite store's state: the next
    ``nmt translate`` opens no store (no registry or run read, so no log of the language pair
    it chose); a moved alias changes the store, and the call after resolves again."""
    import json
    import time

    from nmt.components.tracking.store import RunStore

    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "NMT_HOME": str(tmp_path)}

    def translate() -> str:
        proc = subprocess.run([str(NMT), "translate", "--beam", "1"], input="Ein Hund.\n", env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1, proc.stderr[-2000:]
        return proc.stderr

    def resolved() -> dict:
        (entry,) = [json.loads(f.read_text()) for f in (tmp_path / ".nmt" / "models" / "resolved").glob("*.json")]
        return entry["value"]

    time.sleep(1.1)  # a store written in the last second is never remembered
    assert "the language pair of the newest train run" in translate()
    first = resolved()
    assert first["uri"] == "models:/nmt-de-en@champion" and Path(first["files"]).is_relative_to(tmp_path)
    assert "the language pair of the newest train run" not in translate()  # from what it remembered
    import mlflow
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", store_uri)  # MLflow's in-process
    store = RunStore.open(store_uri, "nmt")
    one = store.version_by_alias("nmt-de-en", "champion")
    two = store.client.create_model_version("nmt-de-en", one.source, one.run_id)
    try:
        store.set_alias("nmt-de-en", "champion", two.version)
        time.sleep(1.1)
        assert "the language pair of the newest train run" in translate()  # the store changed: resolved again
        assert resolved()["files"] != first["files"]  # the moved alias's version
    finally:
        store.set_alias("nmt-de-en", "champion", one.version)


# run as `python -c`: the CLI, then the heavy packages this process imported (stderr's last line)
_IMPORTED = ("import sys; from nmt.pipeline.cli import main; code = main(['translate', '--beam', '1']); "
             "print('imported:', *sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'pytorch_lightning', "
             "'lightning_fabric', 'datasets', 'ray', 'sqlalchemy', 'hydra'}), file=sys.stderr); sys.exit(code)")


def test_a_translate_from_the_local_copy_imports_no_mlflow(store_uri, tmp_path):
    """Issue 35's goal of a one-sentence ``nmt translate`` in <= 2 s: the call answered from
    what the last one resolved (store unchanged) builds the model from its local files with
    plain torch; MLflow (~1 s of imports), Lightning, datasets and Ray stay out, and Hydra:
    the same command line's config is remembered (nmt.pipeline.compose)."""
    import time

    env = {**os.environ, "MLFLOW_TRACKING_URI": store_uri, "NMT_HOME": str(tmp_path)}

    def translate() -> tuple[str, str]:
        proc = subprocess.run([sys.executable, "-c", _IMPORTED], input="Ein Hund läuft im Park.\n", env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1, proc.stderr[-2000:]
        return proc.stdout, proc.stderr.splitlines()[-1]

    time.sleep(1.1)  # a store written in the last second is never remembered
    first, imported = translate()
    assert "mlflow" in imported and "hydra" in imported  # resolved, composed: the test would see both
    second, imported = translate()
    assert imported == "imported:" and second == first
