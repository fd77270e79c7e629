#!/bin/bash
# fmnist.t: real data, small: 2000 Fashion-MNIST training images, 1 epoch of
# simplecnn (10 classes) with fd-train and with the PyTorch twin on the same
# pack; fd's test accuracy (1000 test images) within 5 points of torch's.
. "$(dirname "$0")/lib.sh"
if [ ! -e /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then
	echo "1..0 # SKIP dataset-fashion-mnist is not installed (scripts/deps.sh)"; exit 0
fi
cd "$T" || exit 1
ok "convert to a pack" $PY "$top/bench/fashion_mnist.py" pack fm.safetensors --train 2000 --test 1000
echo '{"model":"simplecnn","num_classes":10,"epochs":1,"batch_size":64,"num_workers":2,
 "optimizer":{"type":"adamw","lr":0.001,"weight_decay":0.0001},"scheduler":{"type":"cosine_annealing","T_max":1}}' >fm.json
ok "fd-train 1 epoch" fd-train -q --pack fm.safetensors --fold 0 --config fm.json --threads 1 -o R
ok "fd-eval on the test rows" fd-eval -q --threads 1 --model R/last.safetensors --pack fm.safetensors --only fold=test --metrics m.tsv -o p.tsv
like "multi-class preds have pred" "$(head -1 p.tsv)" "	pred	score	logit$"
fd=$(awk -F'\t' 'NR==2{print $6}' m.tsv)
tor=$($PY "$top/bench/fashion_mnist.py" torch fm.safetensors --epochs 1 --threads 1 | sed -E 's/.*accuracy ([0-9.]+).*/\1/')
echo "# fd $fd, torch $tor"
ok "fd within 5 points of torch ($fd vs $tor)" $PY -c "import sys; sys.exit(not (abs($fd - $tor) <= 0.05 and $fd > 0.5))"
done_testing
