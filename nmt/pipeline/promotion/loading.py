"""A registered translator loaded into this installation's own code.

``nmt translate``, ``nmt promote`` and the demo never run code from the artifact store
(neither a pickle nor the ``nmt`` copy a version shipped): they read the version's files
(``weights.pt`` with ``weights_only=True``, ``model_config.json``, the tokenizers) and build
the model with today's :class:`~nmt.components.serving.inference.TranslatorCore`
(:mod:`nmt.pipeline.promotion.local_models`). A version whose files today's code cannot read
fails in one line. ``mlflow models serve`` and ``mlflow.pyfunc.load_model`` run the code the
version shipped (models from code).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from nmt.components.system.procs import owner
from nmt.components.system.scratch import OWNER, remove_dead, scratch
from nmt.components.tracking.registry import model_uri_name
from nmt.components.system.errors import ConfigError
from nmt.pipeline.promotion.aliases import require_model
from nmt.pipeline.promotion.local_models import COMPLETE, LocalTranslator, from_files

if TYPE_CHECKING:
    from nmt.components.tracking.store import RunStore

REGISTERED = re.compile(r"models:/([^/@]+)(?:@([\w-]+)|/(\d+))")  # models:/<name>@<alias>, models:/<name>/<n>


def load_translator(store: RunStore, uri: str) -> LocalTranslator:
    """``models:/<name>@<alias>`` (or any model URI) of ``store`` -> a translator built by
    today's code from that model's files; ConfigError when it is not an nmt translator, or
    names a registered model that does not exist (listing those that do)."""
    with scratch("model") as tmp:  # any other URI's files are copied here: gone once the model is in memory
        try:
            local = local_copy(store, uri, tmp)
        except Exception:
            name = model_uri_name(uri) if uri.startswith("models:/") else None
            if name:  # asked only on failure: a successful load makes no extra registry read
                try:
                    require_model(store, name)
                except ConfigError as err:
                    raise ConfigError(f"--model {uri}: {err}") from None
            raise
        return from_files(local, uri, keep=bool(REGISTERED.fullmatch(uri)))


def local_copy(store: RunStore, uri: str, scratch_dir: Path) -> Path:
    """The files of ``uri`` on local disk. A registered version (``models:/<name>@<alias>`` or
    ``/<version>``) is downloaded once into ``<home>/.nmt/models/``: its files never change. The
    alias is resolved again on every call (one registry read), so a moved alias is seen at once.
    Any other URI is downloaded into ``scratch_dir``."""
    from nmt.components.tracking.uri import project_home
    m = REGISTERED.fullmatch(uri)
    if not m:
        return store.download_uri(uri, scratch_dir)
    name, alias, number = m.groups()
    mv = store.version_by_alias(name, alias) if alias else store.version(name, number)
    # the source and run id too: a model deleted and registered again gets the same numbers
    key = hashlib.sha256("\n".join((store.uri, name, str(mv.version), str(mv.source), str(mv.run_id))).encode())
    dst = project_home() / ".nmt" / "models" / key.hexdigest()[:20]
    if (dst / COMPLETE).is_file():  # it holds the files' folder, relative to dst
        return dst / (dst / COMPLETE).read_text().strip()
    dst.parent.mkdir(parents=True, exist_ok=True)
    # only <key>.<random> (copies being downloaded, or used while another's was being written):
    # a finished <key> holds its maker's owner file too, and stays after its maker exits
    remove_dead(dst.parent.glob("*.*"))
    tmp = Path(tempfile.mkdtemp(prefix=f"{dst.name}.", dir=dst.parent))  # this call's alone
    try:
        (tmp / OWNER).write_text(owner())  # a copy cut short by kill -9 is the next call's to sweep
        # the version's artifact location, asked of our own client: MLflow's models:/ resolver
        # reads the process's default registry, not this store's
        source = store.client.get_model_version_download_uri(name, str(mv.version))
        files = store.download_uri(source, tmp).resolve()
        (tmp / COMPLETE).write_text(str(files.relative_to(tmp.resolve())) + "\n")
    except BaseException:  # a failed or interrupted download leaves nothing behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, dst)
    except OSError:  # dst is there: another process's copy, never ours to remove
        if not (dst / COMPLETE).is_file():  # still being written: use our own copy
            return tmp / (tmp / COMPLETE).read_text().strip()
        shutil.rmtree(tmp, ignore_errors=True)  # finished first: the same files
    return dst / (dst / COMPLETE).read_text().strip()

