#!/usr/bin/env bash
# Grade the bundled example class end to end: write it, make reference statistics, grade,
# export. Uses the real MNIST digits and FID Inception weights in ../shared/data when present
# (GRADER_DATA overrides); without them the digits are drawn and FID is skipped, with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${GRADER_DATA:-../shared/data}
IMAGES=${IMAGES:-100}          # per student; the course wants 10,000 (use a GPU for that)
STATS_DIGITS=${STATS_DIGITS:-500}
OUT=${OUT:-results}

mnist=()
metrics=(--no-metrics)
if [ -d "$DATA/mnist" ]; then
  mnist=(--mnist "$DATA/mnist")
fi
if [ -d "$DATA/mnist" ] && [ -f "$DATA/inception/fid_inception_v3.pth" ]; then
  export GRADER_INCEPTION_WEIGHTS=${GRADER_INCEPTION_WEIGHTS:-$DATA/inception/fid_inception_v3.pth}
  metrics=()
fi

grader example class example --images "$IMAGES" "${mnist[@]}"
if [ ${#metrics[@]} -eq 0 ] && [ ! -f example/mnist.npz ]; then
  grader stats "$DATA/mnist" --limit "$STATS_DIGITS" -o example/mnist.npz
fi
grader run example/submissions --rubric example/rubric.yaml --times example/times.csv --out "$OUT" "${metrics[@]}"
grader export "$OUT" --format csv -o "$OUT/grades.csv"
echo
column -s, -t < "$OUT/grades.csv"
echo
echo "class page: $OUT/index.html"
