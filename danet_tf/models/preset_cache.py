"""Catalogue presets on first use: download, check, convert, cache.

    <cache>/presets/<name>/     the converted preset (`presets.save_to_preset`)
    <cache>/downloads/          the checkpoint while it downloads and converts

`<cache>` is `$DANET_TF_CACHE`, else `~/.cache/danet_tf`. Only a name the
user asks for is fetched (the only network use of the package besides
Keras' ImageNet weights). The checkpoint streams to a temporary file
(`files.atomic_path`) while its SHA-256 is computed; a short read, a hash
that does not start with the catalogue's prefix, or a failed write (a full
disk) removes the temporary file and raises `PresetDownloadError` in one
line, so the cache holds only whole, checked presets. The checkpoint is deleted once converted.
"""

import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.request

from danet_tf.files import atomic_path
from danet_tf.models.preset_catalog import preset_spec
from danet_tf.models.presets import convert_mmseg_checkpoint, is_preset_dir, save_to_preset

CHUNK = 1 << 20
# Room a download needs: the checkpoint, and the preset written beside it.
SPACE_FACTOR = 2.2


class PresetDownloadError(ConnectionError):
    """A download that did not give the catalogue's file (one line)."""


def cache_root(cache_dir=None):
    return cache_dir or os.environ.get("DANET_TF_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "danet_tf")


def cached_preset(name, cache_dir=None):
    """The cached preset directory of catalogue entry `name`, fetched first
    if it is not there."""
    return fetch_preset(preset_spec(name), cache_dir)


def fetch_preset(spec, cache_dir=None):
    """`spec`'s preset directory in the cache: downloaded, checked against
    `spec.sha256_prefix`, converted and saved unless already there."""
    root = cache_root(cache_dir)
    target = os.path.join(root, "presets", spec.name)
    if is_preset_dir(target):
        return target
    checkpoint = os.path.join(root, "downloads", spec.file_name)
    download(spec.url, checkpoint, spec.sha256_prefix)
    try:
        model, metadata = convert_mmseg_checkpoint(checkpoint, spec.name)
        metadata["source"].update(url=spec.url, sha256_prefix=spec.sha256_prefix)
        metadata["reported_miou"] = {"val": spec.miou, "val_ms_flip": spec.miou_ms_flip}
        save_to_preset(model, target, metadata)
    finally:
        if os.path.exists(checkpoint):
            os.remove(checkpoint)
    print(f"preset {spec.name}: converted into {target}", file=sys.stderr)
    return target


def download(url, path, sha256_prefix):
    """Streams `url` to `path` (via a temporary file beside it), checking
    its length and hash before the file takes its name."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(path) as partial:
            expected = int(response.headers.get("Content-Length") or 0)
            _check_space(os.path.dirname(path), expected, url)
            print(f"downloading {url} ({expected / 1e6:.0f} MB)", file=sys.stderr)
            digest, received = _copy(response, partial)
            if expected and received != expected:
                raise PresetDownloadError(
                    f"{url}: the download stopped after {received} of {expected} bytes; "
                    "nothing was cached, try again.")
            if not digest.startswith(sha256_prefix):
                raise PresetDownloadError(
                    f"{url}: SHA-256 {digest[:16]}... does not start with {sha256_prefix}, the "
                    "catalogue's; the file is not the released checkpoint, nothing was cached.")
    except PresetDownloadError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = (getattr(error, "reason", None) or getattr(error, "strerror", None)
                  or f"{type(error).__name__}: {error}")
        raise PresetDownloadError(f"{url}: download failed ({reason}); nothing was cached."
                                  ) from error
    return path


def _copy(response, path):
    digest, received = hashlib.sha256(), 0
    with open(path, "wb") as f:
        while chunk := response.read(CHUNK):
            f.write(chunk)
            digest.update(chunk)
            received += len(chunk)
    return digest.hexdigest(), received


def _check_space(directory, size, url):
    free = shutil.disk_usage(directory).free
    if size and free < size * SPACE_FACTOR:
        raise PresetDownloadError(
            f"{url}: needs about {size * SPACE_FACTOR / 1e6:.0f} MB in {directory}, "
            f"{free / 1e6:.0f} MB free; set DANET_TF_CACHE to a larger disk.")
