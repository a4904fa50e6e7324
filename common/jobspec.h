/* jobspec.h - what the client and the daemons agree on about a JobSpec's
 * values beyond proto/jazari.proto's comments. */
#ifndef JZ_JOBSPEC_H
#define JZ_JOBSPEC_H

/* JobSpec.time_limit_s: as long as allowed (--time=UNLIMITED, Slurm's
 * INFINITE): the partition's max_time, else the site's maximum, else none.
 * The leader replaces it at submit. */
#define JOB_TIME_UNLIMITED 4294967295u

#endif
