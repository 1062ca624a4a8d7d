#!/usr/bin/env bash
# gpu-check.sh: runs on the GPU machine (no Go there). Build first, here:
#   CGO_ENABLED=0 go test -c -o bin/cuda.test ./runtime/cuda
#   CGO_ENABLED=0 go test -c -o bin/model.test ./runtime/model
#   CGO_ENABLED=0 go test -c -o bin/train.test ./runtime/train
#   CGO_ENABLED=0 go build -o bin/finlora ./cmd/finlora
# (scripts/build-gpu-bins.sh does all four and gzips them into bin/gz), then run this through the
# device tool with carry [bin/gz]. Logs go to $OUT (or ./out); a summary
# table is printed last. Extra steps: GPU_CHECK_BENCH="args" runs `finlora bench args` and
# scripts/bench_peft.py with the same shape; GPU_CHECK_DECODE=N adds `-decode N` to finlora bench;
# GPU_CHECK_QUANT="nf4 int8" runs `finlora bench args -quant q` for each (QLoRA; PEFT's side
# needs bitsandbytes, absent there). GPU_CHECK_TESTS lists the test steps (default: doctor cuda
# model train generate); GPU_CHECK_GEMV_BENCH=1 times the 4-bit decode GEMVs (TestQuantGEMVSpeed). The train device tests run with FINLORA_POISON_UNINIT=1
# (uninitialised activations are NaN: a read before a write fails the parity checks).
set -u
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
BIN=/tmp/finlora-bin
mkdir -p $BIN
for f in bin/gz/*.gz; do gunzip -c "$f" >"$BIN/$(basename "$f" .gz)" && chmod +x "$BIN/$(basename "$f" .gz)"; done
export FINLORA_REQUIRE_GPU=1 FINLORA_DEVICE=${FINLORA_DEVICE:-cuda} FINLORA_CACHE=$OUT/cache
declare -a SUMMARY
step() { # name, log, dir, command...
	local name=$1 log=$2 dir=$3
	shift 3
	local t0=$(date +%s%N)
	(cd "$dir" && "$@") >"$OUT/$log" 2>&1
	local rc=$?
	local ms=$((($(date +%s%N) - t0) / 1000000))
	SUMMARY+=("$(printf '%-34s rc=%-3s %6d ms  %s' "$name" "$rc" "$ms" "$log")")
	return $rc
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv >"$OUT/nvidia-smi.txt" 2>&1
T="-test.v -test.count=1 -test.timeout=${GPU_CHECK_TIMEOUT:-240s}"
TESTS=${GPU_CHECK_TESTS:-doctor cuda model train generate}
for t in $TESTS; do
	case $t in
	doctor) step "finlora doctor -compile" doctor.log . "$BIN/finlora" doctor -compile ;;
	cuda) step "cuda tests" cuda.log runtime/cuda "$BIN/cuda.test" $T ${GPU_CHECK_CUDA_RUN:+-test.run $GPU_CHECK_CUDA_RUN} ;;
	model) step "model device parity" model.log runtime/model "$BIN/model.test" $T -test.run Device ;;
	train) step "train device parity" train.log runtime/train env FINLORA_POISON_UNINIT=1 "$BIN/train.test" $T -test.run Device ;;
	generate) step "generate device parity" generate.log runtime/generate "$BIN/generate.test" $T -test.run Device ;;
	esac
done
if [ -n "${GPU_CHECK_GEMV_BENCH:-}" ]; then # 4-bit decode GEMV kernels on the 8B shapes
	step "gemv speed" gemv-speed.log runtime/cuda env FINLORA_GEMV_BENCH=1 "$BIN/cuda.test" -test.count=1 -test.run 'TestQuantGEMVSpeed$'
fi
if [ -n "${GPU_CHECK_BENCH:-}" ]; then
	step "finlora bench" bench.log . "$BIN/finlora" bench $GPU_CHECK_BENCH ${GPU_CHECK_DECODE:+-decode $GPU_CHECK_DECODE}
	step "peft bench" peft.log . env PYTHONUNBUFFERED=1 python3 scripts/bench_peft.py $GPU_CHECK_BENCH
	for q in ${GPU_CHECK_QUANT:-}; do
		step "finlora bench -quant $q" bench-$q.log . "$BIN/finlora" bench $GPU_CHECK_BENCH -gemm 0 -quant $q ${GPU_CHECK_DECODE:+-decode $GPU_CHECK_DECODE}
	done
fi
# GPU_CHECK_NSYS="args": `finlora bench args` under Nsight Systems (when nsys is installed): the
# per-kernel device times and the CUDA API calls of the host, without the profiler's events.
if [ -n "${GPU_CHECK_NSYS:-}" ]; then
	NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
	if [ -n "$NSYS" ]; then
		step "nsys finlora bench" nsys.log . "$NSYS" profile -t cuda -o "$OUT/decode" --force-overwrite true --stats=true "$BIN/finlora" bench $GPU_CHECK_NSYS
		rm -f "$OUT"/decode.nsys-rep "$OUT"/decode.sqlite
	else
		echo "no nsys" >"$OUT/nsys.log"
	fi
fi
# GPU_CHECK_VARIANTS="ENV=v ENV2=w;ENV=u|args": `finlora bench` once per ';'-separated set of
# environment assignments (comparisons against the defaults), with the arguments after '|' or else
# $GPU_CHECK_VARIANT_ARGS.
if [ -n "${GPU_CHECK_VARIANTS:-}" ]; then
	i=0
	IFS=';' read -ra VARS <<<"$GPU_CHECK_VARIANTS"
	for v in "${VARS[@]}"; do
		i=$((i + 1))
		envs=${v%%|*}
		args=${GPU_CHECK_VARIANT_ARGS:-}
		[ "$envs" != "$v" ] && args=${v#*|}
		step "bench variant $i ($v)" bench-variant$i.log . env $envs "$BIN/finlora" bench $args
	done
fi
if [ -n "${GPU_CHECK_BENCH_SIMPLE:-}" ]; then # the same bench with the simple attention kernels
	step "finlora bench (simple attention)" bench-simple.log . env FINLORA_ATTN=simple "$BIN/finlora" bench $GPU_CHECK_BENCH_SIMPLE
fi
rm -rf "$OUT/cache"
echo "==== tails"
for f in doctor cuda model train generate bench bench-simple peft bench-nf4 bench-fp4 bench-int8 gemv-speed; do
	[ -f "$OUT/$f.log" ] || continue
	echo "---- $f.log"
	grep -a -E -- '^(--- FAIL|FAIL|panic|ok|PASS)|Error|error|GiB|MFU|TFLOP|group|finlora  |peft  |equal|adapter_end|vs transformers' "$OUT/$f.log" | grep -v -- '--- PASS' | tail -30
done
echo "==== summary"
cat "$OUT/nvidia-smi.txt"
printf '%s\n' "${SUMMARY[@]}"
if [ -n "${GPU_CHECK_BENCH:-}${GPU_CHECK_VARIANTS:-}${GPU_CHECK_GEMV_BENCH:-}" ]; then
	echo "==== table (GEMM rate, training rows, decode rows; variants; GEMV kernels)"
	for f in "$OUT"/bench*.log "$OUT"/peft.log "$OUT"/gemv-speed.log; do
		[ -f "$f" ] || continue
		n=${f##*bench-variant}
		n=${n%.log}
		case $n in
		[0-9]*) echo "-- $(basename "$f"): ${VARS[$((n - 1))]}" ;;
		*) echo "-- $(basename "$f")" ;;
		esac
		grep -a -E '^measured bf16 GEMM|^(finlora|peft) +(bf16|nf4|fp4|int8|true|false)|^decode \(batch|^  (bytes read|bandwidth limit)|^gemv speed|^    (gemv|dequant|attn|rope|rmsnorm)' "$f"
	done
fi
# the device tool brings back at most 8 files: the logs travel as one archive
(cd "$OUT" && tar czf logs.tgz ./*.log ./*.txt 2>/dev/null && rm -f ./*.log ./*.txt)
