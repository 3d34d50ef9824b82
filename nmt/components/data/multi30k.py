"""Multi30k task 1 raw files: their languages and splits, where they are (a local dir or a
checksummed download). prepare reads them as any local files (:mod:`nmt.components.data.sources`).

Elliott et al. 2016, "Multi30K: Multilingual English-German Image Descriptions".
"""

from __future__ import annotations

import os
from pathlib import Path

from nmt.components.data.sources import DataError, sha256_file
from nmt.components.system.paths import local_path

LANGUAGES = ("en", "de", "fr", "cs")
SPLIT_LANGUAGES = {
    "train": LANGUAGES,
    "val": LANGUAGES,
    "test_2016_flickr": LANGUAGES,
    "test_2017_flickr": ("en", "de", "fr"),
    "test_2017_mscoco": ("en", "de", "fr"),
}
BASE_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/"
ENV_DIR = "MULTI30K_DIR"

# sha256 of the public files (multi30k/dataset, data/task1/raw/), checked after download
SHA256 = {
    "test_2016_flickr.cs.gz": "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "test_2017_flickr.de.gz": "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee",
    "test_2017_flickr.en.gz": "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074",
    "test_2017_flickr.fr.gz": "3ba671ceb2299f3304ffafefea7a833d08632fbaf0ba18546f8a2ec2391af496",
    "test_2017_mscoco.de.gz": "799e4854c25d601cb6cb6be29eabe5667734c61ace2f495e03e429031a0bc338",
    "test_2017_mscoco.en.gz": "aab300bfb4427697987e02cd0aacd44bfe8aa50456231b6474c08038bbed2b58",
    "test_2017_mscoco.fr.gz": "754f3072ba9f124569ba5258b32730fc1d214bbf8e0c6dfb2b74401676220db0",
    "train.cs.gz": "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.cs.gz": "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}


def check_pair(src: str, tgt: str) -> None:
    for role, lang in (("data.src_lang", src), ("data.tgt_lang", tgt)):
        if lang not in LANGUAGES:
            raise DataError(f"{role}: unknown language code {lang!r}; valid: {', '.join(LANGUAGES)}")
    if src == tgt:
        raise DataError(f"data.src_lang and data.tgt_lang are both {src!r}; choose two languages")


def splits_for_pair(src: str, tgt: str) -> list[str]:
    """The splits that have both sides of the pair (cs lacks the 2017 test sets)."""
    return [s for s, langs in SPLIT_LANGUAGES.items() if src in langs and tgt in langs]


def resolve_data_dir(configured: str | None, cache_dir: Path) -> Path:
    """The configured dir, else ``$MULTI30K_DIR``, else ``cache_dir`` (filled by :func:`download`)."""
    raw = configured or os.environ.get(ENV_DIR)
    if raw:
        path = local_path(raw)
        if not path.is_dir():
            source = "data.dir" if configured else f"${ENV_DIR}"
            raise DataError(f"Multi30k directory not found: {path} (from {source})")
        return path
    return cache_dir


def download(files: list[str], dest: Path, base_url: str = BASE_URL) -> None:
    """Fetch missing raw files from the public repository, verifying each sha256."""
    import urllib.request  # here: every command's config reads LANGUAGES, and http.client costs start-up
    dest.mkdir(parents=True, exist_ok=True)
    for name in files:
        target = dest / name
        if target.exists() and sha256_file(target) == SHA256[name]:
            continue
        tmp = target.with_suffix(target.suffix + ".part")
        try:
            with urllib.request.urlopen(base_url + name, timeout=60) as resp, open(tmp, "wb") as out:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
        except BaseException as err:  # a failed or interrupted download leaves no .part behind
            tmp.unlink(missing_ok=True)
            if isinstance(err, OSError):  # no network, refused, timed out, 404 (urllib's errors are OSErrors)
                code = getattr(err, "code", None)  # an HTTP error's status
                why = f"HTTP {code}" if code else getattr(err, "reason", None) or err.strerror or type(err).__name__
                raise DataError(f"could not download {base_url + name} ({why}); without a network, give the "
                                f"Multi30k files ({name} and the rest): {ENV_DIR}=<folder> or data.dir=<folder>") from None
            raise
        got = sha256_file(tmp)
        if got != SHA256[name]:
            tmp.unlink()
            raise DataError(f"checksum mismatch for {base_url + name}: {got} != {SHA256[name]}")
        tmp.replace(target)
