/* jobdir.h - a job's private directory on a node, as Slurm's job_container
 * gives one: <base>/jazari.<node>.<job id>.<attempt>/, owned by the job's
 * user and no one else (mode 0700), holding
 *   tmp/  the job's TMPDIR
 *   io/   the output of steps relayed to srun: <step id>.<task rank>.out
 *         and .err, each task's own, read back through the daemons by
 *         `jz run` line by line
 * Made by the job's own part before any task starts, removed (as the user,
 * never following a link) when that part ends. The supervisor writes it,
 * the daemon serves the step outputs from it. */
#ifndef JZ_JOBDIR_H
#define JZ_JOBDIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

/* The directory's path into out (reset first). */
void jobdir_path(buf *out, const char *base, const char *node, uint64_t id, uint32_t attempt);
/* The relayed output of task `task` (its rank in the step) of a step
 * (err: its standard error). */
void jobdir_step_io(buf *out, const char *base, const char *node, uint64_t id, uint32_t attempt, uint32_t step,
                    uint32_t task, bool err);

/* Makes the directory and its tmp/ and io/ for uid:gid. Run as root, the
 * three are made while only root may enter the top one, and handed over
 * (lchown) last, so the user never has a path root later acts on. An
 * existing directory is taken when it is a real directory of uid's (a
 * restarted part); anything else there is refused. Returns 0, or -1 with
 * a line in err. */
int jobdir_make(const char *path, uid_t uid, gid_t gid, char *err, size_t errlen);

/* Waits at most wait_ms for the job's own part to have made the directory
 * (a step's part may start first on a node where both start at once):
 * ready when io/ is there and the top is a real directory of uid's.
 * Returns 0, or -1 with a line in err. */
int jobdir_wait(const char *path, uid_t uid, int wait_ms, char *err, size_t errlen);

/* Removes the directory and all in it, as uid:gid (a child process that
 * becomes the user, so nothing the job left can make root remove another's
 * file), waiting at most wait_ms for it. Returns 0 when it is gone. */
int jobdir_remove(const char *path, uid_t uid, gid_t gid, int wait_ms);

#endif
