"""Build (and optionally send) a TF Serving REST request for an image file.

    python training/serving_client.py street.png > request.json
    curl -d @request.json http://localhost:8501/v1/models/danet_quickstart:predict

    python training/serving_client.py street.png \
        --url http://localhost:8501/v1/models/danet_quickstart:predict \
        --out classes.png

The request uses the `serving_bytes` signature: the file's bytes as {"b64": ...}.
With --url it POSTs the request and writes the returned class map as a PNG.
"""

import argparse
import base64
import json
import sys
import urllib.request

from danet_tf.cli import command


def build_request(paths):
    instances = []
    for path in paths:
        with open(path, "rb") as f:
            instances.append({"image_bytes": {"b64": base64.b64encode(f.read()).decode("ascii")}})
    return {"signature_name": "serving_bytes", "instances": instances}


@command
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("images", nargs="+", help="PNG/JPEG files of one size")
    parser.add_argument("--url", help="POST the request here (e.g. http://localhost:8501/v1/models/NAME:predict)")
    parser.add_argument("--out", help="with --url: write the first class map to this PNG")
    args = parser.parse_args(argv)
    request = build_request(args.images)
    if not args.url:
        json.dump(request, sys.stdout)
        return request
    data = json.dumps(request).encode()
    http_request = urllib.request.Request(args.url, data=data,
                                          headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(http_request) as response:
        predictions = json.load(response)["predictions"]
    classes = predictions[0]["classes"] if isinstance(predictions[0], dict) else predictions[0]
    if args.out:
        import numpy as np
        from PIL import Image

        Image.fromarray(np.asarray(classes, np.uint8)).save(args.out)
    print(f"{len(predictions)} predictions; first is {len(classes)}x{len(classes[0])}")
    return predictions


if __name__ == "__main__":
    main()
