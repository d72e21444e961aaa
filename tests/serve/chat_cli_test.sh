#!/bin/sh
# `ember chat` with stdin a pipe: a scripted conversation (the model's reply is
# always "OK <script>", see scripted_model.h) and the exact transcript; a bad
# checkpoint is one error line and exit 1.
# usage: chat_cli_test.sh EMBER MAKE_SCRIPTED_CHECKPOINT WORK_DIR
set -eu
ember="$1"; tool="$2"; work="$3"
rm -rf "$work"; mkdir -p "$work"
"$tool" "$work/ckpt" "OK <script>" --block 64 > /dev/null
out="$(printf 'hello\n/max 3\nagain\n/top-p 2\n/reset\n/quit\n' | "$ember" chat --checkpoint "$work/ckpt" --threads 1)"
expected="$(printf 'OK <script>\n* max tokens 3\nOK \n* (reply cut at the token limit; /max N raises it)\n* error: /top-p needs a number in (0, 1], got '"'"'2'"'"'\n* new conversation')"
if [ "$out" != "$expected" ]; then
  echo "FAIL: transcript differs"; echo "--- got:"; echo "$out"; echo "--- expected:"; echo "$expected"; exit 1
fi
if err="$("$ember" chat --checkpoint "$work/missing" 2>&1 < /dev/null)"; then
  echo "FAIL: a missing checkpoint did not fail"; exit 1
fi
case "$err" in
  "ember: error: "*) ;;
  *) echo "FAIL: unexpected error output: $err"; exit 1 ;;
esac
echo "chat cli: ok"
