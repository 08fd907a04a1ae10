#!/usr/bin/env bash
# Run the trials of an mlx sweep as a Slurm job array, then collect them into sweep.json.
#
#   scripts/slurm_sweep.sh FILE.mlx SWEEP_DIR [--sweep NAME] [--set KEY=VALUE ...] [MLX RUN OPTIONS]
#
# Run on a login node, it submits itself twice: a job array with one task per trial
# (`sbatch --array=0-N-1`, N from `mlx sweep list`), task I running trial I+1 (mlx numbers
# trials from 1): `mlx run FILE --trial $((I + 1)) --out SWEEP_DIR ...`, and a collecting job that
# starts when the whole array has ended (`--dependency=afterany`), running
# `mlx sweep collect SWEEP_DIR`. Extra options go to every `mlx run` (`--sweep` and `--set` also
# to `mlx sweep list`). SWEEP_DIR, FILE, its data and the mlx binary (MLX, default: mlx on
# PATH) must be on a file system every node sees. A task that was killed (preempted, timed out)
# resumes its trial from its last checkpoint when run again: `scontrol requeue`, or submit the
# script again (completed trials are left as they are). Trials use the CPUs Slurm gives them.
#
#SBATCH --job-name=mlx-sweep
#SBATCH --cpus-per-task=2
#SBATCH --output=slurm-%x-%A_%a.out
set -euo pipefail

MLX=${MLX:-mlx}
if [ "$#" -lt 2 ]; then
  echo "usage: $0 FILE.mlx SWEEP_DIR [--sweep NAME] [--set KEY=VALUE ...] [MLX RUN OPTIONS]" >&2
  exit 2
fi
file=$1
out=$2
shift 2

if [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  # One trial, with as many threads as CPUs were given to this task.
  export MLX_THREADS=${SLURM_CPUS_PER_TASK:-${MLX_THREADS:-1}}
  exec "$MLX" run "$file" --trial "$((SLURM_ARRAY_TASK_ID + 1))" --out "$out" --quiet --no-plot "$@"
fi
if [ "${MLX_SWEEP_COLLECT:-0}" = 1 ]; then
  exec "$MLX" sweep collect "$out" --quiet
fi

# Submitting: the options `mlx sweep list` understands, to count the trials.
list_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
  --sweep | --set)
    list_args+=("${args[i]}" "${args[i + 1]:-}")
    i=$((i + 1))
    ;;
  --sweep=* | --set=*) list_args+=("${args[i]}") ;;
  esac
done
trials=$("$MLX" sweep list "$file" "${list_args[@]}")
n=$(printf '%s\n' "$trials" | grep -c .)
echo "mlx sweep: $n trials" >&2
array=$(sbatch --parsable --array=0-"$((n - 1))" "$0" "$file" "$out" "$@")
array=${array%%;*}
collect=$(sbatch --parsable --dependency=afterany:"$array" --cpus-per-task=1 \
  --export=ALL,MLX_SWEEP_COLLECT=1 "$0" "$file" "$out" "$@")
echo "submitted: trials $array (array 0-$((n - 1))), collect ${collect%%;*}" >&2
