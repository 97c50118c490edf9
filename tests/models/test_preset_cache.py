"""Fetching a catalogue preset, through an HTTP server on loopback serving a
checkpoint the test writes: success, wrong hash, a cut connection, a failed
write; the cache keeps only whole, checked presets."""

import hashlib
import http.server
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from conftest import relative_error
from helpers import infer

from danet_tf import DANet, preset_metadata
from danet_tf.models.preset_cache import PresetDownloadError, fetch_preset
from danet_tf.models.preset_catalog import PresetSpec, mmseg_protocol
from danet_tf.testing.mmseg_reference import mmseg_checkpoint

pytestmark = pytest.mark.backend_independent
# A config name of the catalogue's pattern: ResNet-18, Cityscapes (19 classes).
NAME = "danet_r18-d8_1xb2-1k_cityscapes-64x64"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`(model, payload, base url, hits)`: the server sends `payload` whole
    at `/ok.pth`, half of it (with the full Content-Length) at `/cut.pth`."""
    model = DANet(19, backbone="resnet18", deep_stem=True, aux_head=True, align_corners=False)
    path = mmseg_checkpoint(model, str(tmp_path_factory.mktemp("ckpt") / "c.pth"))
    payload = open(path, "rb").read()
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload if self.path == "/ok.pth" else payload[: len(payload) // 2])

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield model, payload, f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def _spec(url, payload, prefix=None):
    prefix = prefix or hashlib.sha256(payload).hexdigest()[:8]
    return PresetSpec(NAME, url, prefix, "mmseg", *mmseg_protocol(NAME), 70.0, None)


def _cache_files(cache):
    return sorted(os.path.relpath(os.path.join(d, f), cache)
                  for d, _, files in os.walk(cache) for f in files)


def test_a_download_is_checked_converted_and_cached(served, tmp_path):
    model, payload, base, hits = served
    before = len(hits)
    directory = fetch_preset(_spec(f"{base}/ok.pth", payload), str(tmp_path))
    assert directory == str(tmp_path / "presets" / NAME)
    assert _cache_files(tmp_path) == [f"presets/{NAME}/{f}" for f in
                                      ("config.json", "metadata.json", "model.weights.h5")]
    metadata = preset_metadata(directory)
    assert metadata["source"]["sha256_prefix"] == hashlib.sha256(payload).hexdigest()[:8]
    assert metadata["evaluation"] == {"protocol": "mmseg", "scale": [2048, 1024], "crop": None,
                                      "stride": None, "align_corners": False}
    assert metadata["dataset"] == "cityscapes" and metadata["reported_miou"]["val"] == 70.0
    images = np.random.default_rng(0).normal(size=(1, 40, 56, 3)).astype("float32")
    got = infer(DANet.from_preset(directory), images)["logits"]
    assert relative_error(got, infer(model, images)["logits"]) <= 1e-6
    assert fetch_preset(_spec(f"{base}/ok.pth", payload), str(tmp_path)) == directory
    assert len(hits) == before + 1  # the second call read the cache


@pytest.mark.parametrize("case", ["wrong hash", "cut", "no server"])
def test_a_bad_download_leaves_nothing_and_says_so_in_one_line(served, tmp_path, case):
    _, payload, base, _ = served
    url = {"cut": f"{base}/cut.pth", "no server": "http://127.0.0.1:9/x.pth"}.get(
        case, f"{base}/ok.pth")
    spec = _spec(url, payload, prefix="00000000" if case == "wrong hash" else None)
    with pytest.raises(PresetDownloadError) as info:
        fetch_preset(spec, str(tmp_path))
    message = str(info.value)
    assert "\n" not in message and url in message and "nothing was cached" in message
    assert {"wrong hash": "does not start with 00000000", "cut": "stopped after",
            "no server": "download failed"}[case] in message
    assert _cache_files(tmp_path) == []


def test_a_failed_write_leaves_nothing(served, tmp_path):
    """A write that fails half way (RLIMIT_FSIZE in a child process: EFBIG,
    what a full disk's ENOSPC is to the writer) removes the partial file."""
    _, payload, base, _ = served
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    code = f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(payload) // 3}, {len(payload) // 3}))
        from danet_tf.models.preset_cache import fetch_preset, PresetDownloadError
        from danet_tf.models.preset_catalog import PresetSpec, mmseg_protocol
        spec = PresetSpec({NAME!r}, {base + "/ok.pth"!r}, {prefix!r}, "mmseg",
                          *mmseg_protocol({NAME!r}), 70.0, None)
        try:
            fetch_preset(spec, {str(tmp_path)!r})
        except PresetDownloadError as error:
            print("ERROR", error)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert "ERROR" in result.stdout and "File too large" in result.stdout, result.stderr[-2000:]
    assert result.stdout.count("\n") == 1
    assert _cache_files(tmp_path) == []
