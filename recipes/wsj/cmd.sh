# How jobs are run. `$train_cmd LOG COMMAND ...` runs COMMAND with its output
# in LOG (and the log's last lines shown on failure); `$cpu_cmd` likewise for
# CPU work.  Jobs that run side by side (teachers; baseline and student; the
# shard jobs of `--nj N`: stage 7 rescoring runs N `asr-kd rescore --shard i/N`
# jobs per system, then `asr-kd merge` checks that every shard is complete) are
# started by utils/jobs.sh's `spawn` and waited for by `wait_jobs`.
#
# Default: local jobs, so N shards run in parallel on this machine.
#
# On a Slurm cluster each job becomes one `srun` step (utils/slurm.sh wraps
# `srun` with the same LOG COMMAND interface), e.g.:
#   export train_cmd="../utils/slurm.sh --gres=gpu:1 --time=24:00:00"
#   export cpu_cmd="../utils/slurm.sh --cpus-per-task=4 --time=2:00:00"
#
# Multi-GPU / multi-node training goes through torchrun (see README,
# "Scaling out"); with Slurm, one `torchrun` per node, for example:
#   srun --nodes=2 --ntasks-per-node=1 --gres=gpu:4 torchrun --nnodes=2 \
#     --nproc_per_node=4 --rdzv_backend=c10d --rdzv_endpoint=$MASTER_HOST:29500 \
#     -m asr_kd.cli train-lm --config conf/teacher.yaml ...
# (batch_size in the config is then per GPU: the global batch is 8x larger).
export train_cmd="${train_cmd:-../utils/run_local.sh}"
export cpu_cmd="${cpu_cmd:-../utils/run_local.sh}"
