"""A researcher's multi-node job, as one would write it for Slurm or
torchrun: join the process group from the environment the scheduler sets
(MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, and LOCAL_RANK,
LOCAL_WORLD_SIZE, NODE_RANK), all_reduce one number across every rank,
check the sum, and say so on one line. Exit 0 when every check holds,
1 when one fails (with what was wrong), 2 when the environment is
missing a variable.

Run by tests/integration/test_torch.py under jazarid; runs standalone too:
    MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 \\
    NODE_RANK=0 RANK=0 LOCAL_RANK=0 python3 torch_allreduce.py & (and RANK=1 ...)"""
import datetime
import os
import sys

import torch
import torch.distributed as dist

NEEDED = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK")


def say(msg):
    # One write per line: the node's tasks share the output file (as under
    # Slurm), and print() may write the text and its newline apart.
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def main():
    missing = [k for k in NEEDED if k not in os.environ]
    if missing:
        say("rank ?: the environment lacks %s (JAZARI_JOB_ID=%s JAZARI_NODE_RANK=%s)"
            % (" ".join(missing), os.environ.get("JAZARI_JOB_ID"), os.environ.get("JAZARI_NODE_RANK")))
        return 2
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local, nlocal = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
    node = int(os.environ["NODE_RANK"])
    who = "rank %d/%d local %d/%d node %d" % (rank, world, local, nlocal, node)

    errors = []
    if not 0 <= local < nlocal:
        errors.append("LOCAL_RANK %d is not in [0, LOCAL_WORLD_SIZE %d)" % (local, nlocal))
    if rank != node * nlocal + local:
        errors.append("RANK %d != NODE_RANK %d * LOCAL_WORLD_SIZE %d + LOCAL_RANK %d" % (rank, node, nlocal, local))
    if not 0 <= rank < world:
        errors.append("RANK %d is not in [0, WORLD_SIZE %d)" % (rank, world))
    if world % nlocal:
        errors.append("WORLD_SIZE %d is not a multiple of LOCAL_WORLD_SIZE %d" % (world, nlocal))
    # Under jazarid the node's own view must agree with torch's.
    if "JAZARI_NODE_RANK" in os.environ and int(os.environ["JAZARI_NODE_RANK"]) != node:
        errors.append("NODE_RANK %d != JAZARI_NODE_RANK %s" % (node, os.environ["JAZARI_NODE_RANK"]))
    if "JAZARI_NNODES" in os.environ and int(os.environ["JAZARI_NNODES"]) * nlocal != world:
        errors.append("WORLD_SIZE %d != JAZARI_NNODES %s * LOCAL_WORLD_SIZE %d"
                      % (world, os.environ["JAZARI_NNODES"], nlocal))
    if errors:
        say("%s: bad environment: %s" % (who, "; ".join(errors)))
        return 1

    # Every rank waits here for the others; a rank that never comes makes
    # this raise after the timeout instead of hanging the job forever.
    timeout = datetime.timedelta(seconds=float(os.environ.get("TORCH_INIT_TIMEOUT", "60")))
    try:
        dist.init_process_group("gloo", init_method="env://", timeout=timeout)
    except Exception as e:  # noqa: BLE001 (torch raises RuntimeError or its own kinds)
        say("%s: init_process_group failed: %s: %s" % (who, type(e).__name__, e))
        return 1
    try:
        if dist.get_rank() != rank or dist.get_world_size() != world:
            say("%s: torch sees rank %d/%d" % (who, dist.get_rank(), dist.get_world_size()))
            return 1
        t = torch.tensor([float(rank + 1)])
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        want = world * (world + 1) / 2
        got = t.item()
        dist.barrier()
        if got != want:
            say("%s: all_reduce mismatch: got %s, want %s" % (who, got, want))
            return 1
        say("%s: all_reduce ok (%s)" % (who, got))
        return 0
    except Exception as e:  # noqa: BLE001
        say("%s: collective failed: %s: %s" % (who, type(e).__name__, e))
        return 1
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
