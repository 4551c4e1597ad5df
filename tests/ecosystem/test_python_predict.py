"""The mixnas Python module against the command line: Model.predict on the val images of the
ecosystem fixture gives exactly the detections `mixnas predict MODEL.mxr IMAGES` prints (same
classes, scores and boxes, at the CLI's printed precision) and writes to predictions.json; info,
benchmark and bad input behave as documented.

    test_python_predict.py MIXNAS_BINARY FIXTURE_DIR    (PYTHONPATH holds the built module)
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import mixnas


def cli_detections(binary, mxr, images, conf, workdir):
    """Per image the rows `mixnas predict` prints, and its predictions.json."""
    out = subprocess.run(
        [binary, "-q", "predict", mxr, *images, "--conf", str(conf), "--save-json", "--name", "py"],
        cwd=workdir, check=True, capture_output=True, text=True).stdout
    rows, current = {}, None
    for line in out.splitlines():
        if line.endswith(" detections") and ": " in line:
            current = line.split(": ")[0]
            rows[current] = []
        elif line.startswith("  ") and current is not None:
            rows[current].append(line)
    with open(os.path.join(workdir, "runs", "predict", "py", "predictions.json")) as f:
        return rows, json.load(f)


def formatted(det, names):
    """The rows of Model.predict's result in the CLI's format."""
    return ["  %-12s %.3f  [%.1f, %.1f, %.1f, %.1f]" % (names[c], s, *b)
            for b, s, c in zip(det.boxes.tolist(), det.scores.tolist(), det.classes.tolist())]


def main():
    binary, fixture = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    mxr = os.path.join(fixture, "model.mxr")
    images = sorted(glob.glob(os.path.join(fixture, "ds", "images", "val", "*.png")))
    assert len(images) == 8, images
    conf = 0.001

    model = mixnas.Model(mxr, threads=1)
    info = model.info
    assert info["imgsz"] == (64, 64), info
    assert len(info["names"]) == 10 and info["head"] == "yolov8", info
    assert info["weight_bytes"] > 0 and info["runtime_version"] == mixnas.__version__, info

    with tempfile.TemporaryDirectory() as work:
        cli_rows, cli_json = cli_detections(binary, mxr, images, conf, work)
    total, json_rows = 0, []
    for path in images:
        image = mixnas.imread(path)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, image.shape
        det = model.predict(image, conf=conf)
        assert det.boxes.shape == (len(det), 4) and det.scores.shape == (len(det),)
        assert det.boxes.dtype == np.float32 and det.classes.dtype == np.int32
        got = formatted(det, model.names)
        assert got == cli_rows[path], "%s:\nPython %s\nCLI    %s" % (path, got, cli_rows[path])
        # The same pixels from a non-contiguous view (every other column reversed twice) agree.
        again = model.predict(np.ascontiguousarray(image[:, ::-1])[:, ::-1], conf=conf)
        assert np.array_equal(again.boxes, det.boxes) and np.array_equal(again.scores, det.scores)
        stem = int(os.path.splitext(os.path.basename(path))[0]) if os.path.basename(path)[:-4].isdigit() \
            else os.path.splitext(os.path.basename(path))[0]
        for b, s, c in zip(det.boxes.tolist(), det.scores.tolist(), det.classes.tolist()):
            json_rows.append((stem, c, round(b[0], 3), round(b[1], 3), round(s, 5)))
        total += len(det)
    assert total > 0, "the fixture model detects nothing at conf %g: the comparison would be empty" % conf
    cli_json_rows = [(r["image_id"], r["category_id"], r["bbox"][0], r["bbox"][1], r["score"])
                     for r in cli_json]
    assert len(cli_json_rows) == len(json_rows), (len(cli_json_rows), len(json_rows))
    for a, b in zip(json_rows, cli_json_rows):
        assert a[:2] == b[:2] and all(abs(x - y) <= 1.5e-3 for x, y in zip(a[2:], b[2:])), (a, b)

    bench = model.benchmark(runs=3, warmup=1)
    assert bench["runs"] == 3 and bench["median_ms"] > 0 and bench["peak_bytes"] > 0, bench

    for bad, message in ((np.zeros((4, 4), np.uint8), "[H, W, 3]"),
                         (np.zeros((4, 4, 4), np.uint8), "[4, 4, 4]")):
        try:
            model.predict(bad)
            raise AssertionError("predict accepted an image of shape %s" % (bad.shape,))
        except mixnas.Error as e:
            assert message in str(e), str(e)
    try:
        mixnas.Model(os.path.join(fixture, "no-such.mxr"))
        raise AssertionError("a missing package loaded")
    except mixnas.Error as e:
        assert "no-such.mxr" in str(e), str(e)
    print("python ok: %d detections on %d images equal to mixnas predict's; median %.3f ms"
          % (total, len(images), bench["median_ms"]))


if __name__ == "__main__":
    main()
