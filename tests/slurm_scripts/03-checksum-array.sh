#!/usr/bin/env bash
#SBATCH --job-name checksums
#SBATCH --array 0-3
#SBATCH --ntasks 1
#SBATCH --time 0:05:00
#SBATCH --output %x_%A_%a.log

set -euo pipefail

# One file per array task: data/part-<index>.txt gets its checksum next to it.
cd "$SLURM_SUBMIT_DIR"
input="data/part-${SLURM_ARRAY_TASK_ID}.txt"
if [[ ! -f "$input" ]]; then
    echo "missing input $input" >&2
    exit 1
fi
sha256sum "$input" > "${input}.sha256"
echo "task ${SLURM_ARRAY_TASK_ID}: $(wc -l < "$input") lines, $(cut -c1-16 "${input}.sha256")"
