/* philly.h - the Microsoft Philly GPU trace as tabulated by AdaptDL:
 * `timestamp,duration,num_gpus,gpu_time,cluster` per job, the timestamp as
 * "YYYY-MM-DD HH:MM:SS" (UTC), duration in seconds, cluster the virtual
 * cluster's id. Read into the simulator's job records (swf.h). */
#ifndef JZ_PHILLY_H
#define JZ_PHILLY_H

#include <stddef.h>

#include "swf.h"

/* Reads the jobs of virtual cluster vc (NULL: the one with the most jobs,
 * whose name goes to vc_out) from path, sorted by submit time (then line),
 * submit times from 0. Returns 0, or -1 with one line in err naming the
 * file, the line and what is wrong. */
int philly_load(const char *path, const char *vc, swf *out, char *vc_out, size_t vc_len, char *err,
                size_t errlen);

#endif
