# How jobs are run. `$train_cmd LOG COMMAND ...` runs COMMAND with its output
# in LOG (and the log's last lines shown on failure).
#
# Default: local jobs (this machine).  On a Slurm cluster use, for example:
#   export train_cmd="local/slurm.sh --gres=gpu:1 --time=24:00:00"
#   export cpu_cmd="local/slurm.sh --cpus-per-task=4"
# local/slurm.sh wraps `srun` with the same LOG COMMAND interface.
export train_cmd="${train_cmd:-local/run_local.sh}"
export cpu_cmd="${cpu_cmd:-local/run_local.sh}"
