"""Run an exported mixnas package (.mxr) from Python: detections of images, latency, model info.

    # build (python3-dev, pybind11-dev, python3-numpy; scripts/bootstrap.sh installs them)
    cmake --preset default && cmake --build --preset default --target mixnas_python
    PYTHONPATH=build/python /usr/bin/python3 examples/python/predict.py MODEL.mxr IMAGE...

Only mixnas' runtime is needed (no LibTorch): the module also builds in MIXNAS_RUNTIME_ONLY builds.
"""
import sys

import numpy as np

import mixnas


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model = mixnas.Model(sys.argv[1], threads=1)
    info = model.info
    print("%s: %dx%d input, %d classes, %s head, runtime %s"
          % (info["path"], info["imgsz"][1], info["imgsz"][0], len(info["names"]), info["head"],
             info["runtime_version"]))
    for path in sys.argv[2:]:
        # Any [H, W, 3] uint8 RGB array works: PIL's np.asarray(Image.open(p).convert("RGB")),
        # or OpenCV's cv2.imread(p)[:, :, ::-1] (BGR -> RGB).
        image = mixnas.imread(path)
        det = model.predict(image, conf=0.25)
        print("%s: %d detections" % (path, len(det)))
        for (x1, y1, x2, y2), score, cls in zip(det.boxes, det.scores, det.classes):
            print("  %-12s %.3f  [%.1f, %.1f, %.1f, %.1f]" % (model.names[cls], score, x1, y1, x2, y2))
        # The arrays are plain numpy: e.g. the boxes of one class.
        if len(det):
            best = det.classes[np.argmax(det.scores)]
            print("  best class %s holds %d boxes" % (model.names[best], int((det.classes == best).sum())))
    bench = model.benchmark(runs=30, warmup=5)
    print("latency median %.3f ms (p90 %.3f), peak memory %d bytes, 1 thread"
          % (bench["median_ms"], bench["p90_ms"], bench["peak_bytes"]))


if __name__ == "__main__":
    main()
