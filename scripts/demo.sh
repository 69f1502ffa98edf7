#!/usr/bin/env bash
# Set up (if needed), then the main job: create a store, mount it, copy the dev set in, show the savings.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
DEVSET="${1:-../shared/data/devset}"
WORK="${SIMFS_DEMO_DIR:-$(mktemp -d /tmp/simfs-demo-XXXXXX)}"
STORE="$WORK/store"; MNT="$WORK/photos"
mkdir -p "$MNT"
SIMFS=.venv/bin/simfs
$SIMFS mount "$STORE" "$MNT"
trap '$SIMFS umount "$MNT" >/dev/null 2>&1 || true' EXIT
echo "copying $DEVSET into the mount at $MNT ..."
time cp -r "$DEVSET/." "$MNT/"
echo "verifying every byte reads back ..."
diff -r "$DEVSET" "$MNT" && echo "all $(find "$MNT" -type f | wc -l) files identical"
df -h "$MNT"
echo "waiting for background ingest to describe the images and code each against its most similar one ..."
START=$(date +%s)
for i in $(seq 1 3600); do
  PENDING=$($SIMFS status "$MNT" --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["backlog"]["total"])')
  [ "$PENDING" = 0 ] && break
  if [ $((i % 10)) = 1 ]; then  # what the daemon is doing (simfs status), every 10 s
    echo "  after $((  $(date +%s) - START )) s:"
    $SIMFS status "$MNT" | sed -n '2,5p' | sed 's/^/    /'
  fi
  sleep 1
done
$SIMFS status "$MNT"
ORIG=$(ls "$MNT"/edit-ukbench/*.png 2>/dev/null | grep -v _ | head -1 || true)
if [ -n "$ORIG" ]; then
  echo "simfs similar $ORIG:"
  $SIMFS similar "$ORIG" -k 6
fi
echo "every group of similar images (simfs similar --groups; page and contact sheet in $WORK):"
$SIMFS similar --groups --html "$WORK/groups.html" --sheet "$WORK/groups.png" "$MNT" > "$WORK/groups.txt"
head -n 30 "$WORK/groups.txt"
$SIMFS umount "$MNT"
echo "remounting: every file now read back from its stored (encoded) form ..."
$SIMFS mount "$STORE" "$MNT"
diff -r "$DEVSET" "$MNT" && echo "all $(find "$MNT" -type f | wc -l) files still identical"
$SIMFS umount "$MNT"
trap - EXIT
$SIMFS stats "$STORE" --plot "$WORK/stats.png"
$SIMFS fsck --verify-data "$STORE"
echo "store kept at $STORE (mount it again with: $SIMFS mount $STORE $MNT)"
