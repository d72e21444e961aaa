# Sourced by the shell tests that stop a training run part-way: latest_step DIR
# prints the step of run folder DIR's latest checkpoint (0 while it has none).
# Older checkpoints are pruned as a run goes (the last 3 are kept), so a test
# waits on `latest`, not on one checkpoint's folder, which may come and go
# between two looks.
latest_step() {
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['step'])" "$1/latest/trainer.json" 2>/dev/null || echo 0
}
