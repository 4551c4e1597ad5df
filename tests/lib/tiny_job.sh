# What the shell tests share: a throw-away working folder, a tiny fmnist-det and the head of a tiny
# config (yolov8-pico at 64 px on it, one thread). Sourced, not run; the caller sets MIXNAS (the
# mixnas binary) and SRC (the source tree) first.

# fail MESSAGE...: the test's verdict, exit status 1.
fail() {
  echo "FAIL: $*"
  exit 1
}

# tiny_workdir: a new temporary folder, made current, removed when the test exits.
tiny_workdir() {
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  cd "$WORK"
}

# tiny_dataset TRAIN VAL [SEED]: fmnist-det at 64 px in ./ds (ds/fmnist-det.yaml).
tiny_dataset() {
  "$MIXNAS" -q data make fmnist-det --out ds --train "$1" --val "$2" --imgsz 64 --seed "${3:-3}" \
    >/dev/null
}

# tiny_config FILE: writes the head of a tiny config (model, data, imgsz, threads) and then the
# caller's standard input (its own sections) to FILE.
tiny_config() {
  {
    printf 'model: %s\ndata: ds/fmnist-det.yaml\nimgsz: 64\nthreads: 1\n' \
      "$SRC/configs/models/yolov8-pico.yaml"
    cat
  } >"$1"
}

# tiny_space W_BITS A_BITS: the search tests' seed and search space (relu or silu at every site,
# the stem at 8 bits), e.g. `tiny_space "[4, 8]" "[8, 32]"`, printed for a tiny_config body.
tiny_space() {
  printf 'seed: 1\nsearch_space:\n  activations: [relu, silu]\n  w_bits: %s\n  a_bits: %s\n' "$1" "$2"
  printf '  rules:\n    - {layers: [0, 0], w_bits: [8], a_bits: [8]}\n'
}
