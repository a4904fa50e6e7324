/* slurm.h - Slurm's commands as front ends over jz's client code: jz
 * under the names srun, sbatch, squeue, scancel, sacct, sinfo and
 * scontrol (build/slurm/), each parsing its options with getopt_long as
 * the real command does, saying "PROG: error: ..." and exiting 1 on a
 * failure (srun: the step's status). */
#ifndef JZ_SLURM_H
#define JZ_SLURM_H

#include "cli.h"

/* Runs the front end named base (argv[0]'s last part) and sets *handled;
 * *handled false: base is not one of them (jz itself). The exit status. */
int slurm_main(const char *base, int argc, char **argv, bool *handled);

/* Names in Slurm's compressed form, sorted: "node[1-2]". */
void slurm_hostlist(buf *b, const char *const *names, size_t n);
/* A job's nodes, compressed ("None assigned" when it has none: none). */
void slurm_job_nodes(buf *b, const Jazari__Job *job, const char *none);
/* Seconds as Slurm shows a duration: [D-]HH:MM:SS; 0 with unlimited_zero: UNLIMITED. */
void slurm_duration(buf *b, uint64_t s, bool unlimited_zero);
/* A moment as Slurm shows it (local time, 2026-12-05T15:04:05), or none. */
void slurm_time(buf *b, int64_t ms, const char *none);
/* CPUs a job holds (or asks for). */
uint64_t slurm_job_cpus(const Jazari__Job *job);

int slurm_squeue(cli *c, int argc, char **argv);
int slurm_sacct(cli *c, int argc, char **argv);
int slurm_sinfo(cli *c, int argc, char **argv);
int slurm_scontrol(cli *c, int argc, char **argv);

#endif
