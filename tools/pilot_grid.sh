#!/bin/bash
# Runs every pilot of tools/pilot_grid.json in parallel (one process per config, 1 CPU thread each, on the GPU
# when there is one) and collects their JSON lines: tools/pilot_grid.sh DATA_DIR OUT.jsonl [SECONDS]
set -u
data=$1; out=$2; limit=${3:-480}
n=$(python3 -c "import json;print(len(json.load(open('tools/pilot_grid.json'))))")
dev=$(python3 -c "import torch;print('cuda' if torch.cuda.is_available() else 'cpu')")
for i in $(seq 0 $((n - 1))); do
  cfg=$(python3 -c "import json,sys;c=json.load(open('tools/pilot_grid.json'))[$i];c['device']='$dev';print(json.dumps(c))")
  PYTHONUNBUFFERED=1 timeout "$limit" python3 tools/pilot_train.py "$data" "$cfg" >"$out.$i" 2>"$out.$i.err" &
done
wait
cat "$out".[0-9]* >"$out"
for f in "$out".*.err; do [ -s "$f" ] && { echo "== $f"; tail -5 "$f"; }; done
exit 0
