#!/usr/bin/env bash
# ncu-gemv.sh: on the GPU machine (carry bin/gz), Nsight Compute metrics of the 4-bit decode GEMV
# kernels named by the regexes given (default: gemv4s_r8_u1 and gemv4t), each in its own ncu run, while TestQuantGEMVSpeed runs
# them on the Llama-3.1-8B shapes: occupancy, throughputs, stall reasons, L1 wavefronts. Output in
# $OUT/ncu.txt, a digest printed.
set -u
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT" /tmp/finlora-bin
gunzip -c bin/gz/cuda.test.gz >/tmp/finlora-bin/cuda.test && chmod +x /tmp/finlora-bin/cuda.test
NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
M=smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_lg_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_mio_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_short_scoreboard_per_issue_active.ratio,smsp__average_warps_issue_stalled_wait_per_issue_active.ratio,smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio,smsp__average_warps_issue_stalled_not_selected_per_issue_active.ratio,smsp__average_warps_issue_stalled_tex_throttle_per_issue_active.ratio,smsp__average_warps_issue_stalled_no_instruction_per_issue_active.ratio,smsp__average_warps_issue_stalled_dispatch_stall_per_issue_active.ratio,l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,smsp__inst_executed.sum,dram__bytes_read.sum,gpu__time_duration.sum,sm__warps_active.avg.pct_of_peak_sustained_active,launch__registers_per_thread,l1tex__throughput.avg.pct_of_peak_sustained_active,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__inst_executed_pipe_lsu.avg.pct_of_peak_sustained_active,sm__pipe_alu_cycles_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active
cd runtime/cuda
[ $# -gt 0 ] || set -- 'gemv4s_r8_u1$' 'gemv4t$'
: >"$OUT/ncu.txt"
for RE in "$@"; do
	FINLORA_GEMV_SHAPES=${NCU_SHAPE:-gate/up} FINLORA_GEMV_BENCH=1 FINLORA_CACHE=/tmp/fc timeout 300 "$NCU" --kernel-name "regex:$RE" \
		--launch-skip ${NCU_SKIP:-10} --launch-count ${NCU_COUNT:-2} --metrics "$M" /tmp/finlora-bin/cuda.test -test.run 'TestQuantGEMVSpeed$' >>"$OUT/ncu.txt" 2>&1
done
grep -E '^  [a-z0-9_]+ \(|stalled|l1tex__|smsp__inst|dram__|gpu__time|warps_active|registers|issue_active|pipe_|^gemv speed' "$OUT/ncu.txt" | sed -E 's/smsp__average_warps_issue_stalled_//; s/_per_issue_active.ratio//; s/ +/ /g'
