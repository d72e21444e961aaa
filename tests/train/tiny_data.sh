# Sourced by the pretraining shell tests: makes a small corpus, tokenizer,
# data folder and a 2-layer GPT config in the current folder, with the
# `ember` binary in $ember.
"$ember" data builtin --out corpus.txt --megabytes 0.3 --seed 5 >/dev/null
"$ember" tokenizer train --input corpus.txt --vocab-size 400 --out tok >/dev/null 2>&1
"$ember" data prepare --tokenizer tok --input corpus.txt --out data --val-fraction 0.1 --paragraphs >/dev/null 2>&1
cat > config.json <<'JSON'
{"n_layer": 2, "n_head": 2, "n_kv_head": 2, "n_embd": 64, "vocab_size": 400, "block_size": 64,
 "norm": "layernorm", "position": "learned", "mlp": "gelu", "bias": true, "tied_embeddings": true,
 "dropout": 0.0, "batch_size": 4, "rope_theta": 10000.0, "norm_eps": 1e-5}
JSON
