/* pty.h - srun --pty on the node: the step's one task on a pseudo-terminal
 * held by its supervisor (step.c), and the way keys reach it.
 *
 * The supervisor makes DIR/input (STEP_INPUT), a FIFO owned by the job's
 * user, mode 0600: the daemon writes the keys it is sent (PtyInputRequest,
 * pty.c of the daemon) there as frames, each at most PIPE_BUF bytes and so
 * written whole or not at all; the supervisor moves them to the terminal.
 * What the terminal writes goes, as it comes, to the task's output file in
 * the job's private directory, which srun reads back as it reads any
 * step's output. Every buffer is bounded: when the task does not read its
 * keys, the FIFO fills and the daemon answers that fewer were taken. */
#ifndef JZ_EXEC_PTY_H
#define JZ_EXEC_PTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPTY_DATA_MAX 1024u /* bytes of keys in one frame (and one request) */
#define SPTY_FRAME_MAX (3u + SPTY_DATA_MAX)
#define SPTY_PENDING_MAX 8192u /* keys the terminal has not taken yet */
#define SPTY_ROWS_DEFAULT 24
#define SPTY_COLS_DEFAULT 80

typedef struct spty {
    int master;                         /* the terminal's master side; -1: none */
    int in;                             /* DIR/input, read side */
    int out;                            /* the task's output file */
    uint8_t frames[2 * SPTY_FRAME_MAX]; /* read from the FIFO, not yet whole */
    size_t n_frames;
    uint8_t pending[SPTY_PENDING_MAX]; /* keys not yet taken by the terminal */
    size_t n_pending;
} spty;

/* The supervisor, before the task starts: a terminal of rows x cols (0:
 * the default), DIR/input for keys, out_path (created, the user's) for what
 * it writes. The slave side in *slave, for the task (spty_child). 0, or -1
 * with the reason in err (nothing left open). */
int spty_open(spty *p, const char *dir, const char *out_path, uid_t uid, gid_t gid, uint32_t rows,
              uint32_t cols, int *slave, char *err, size_t errlen);
/* The task's child: the slave becomes its controlling terminal and its
 * standard input, output and error. 0, or -1 with errno. */
int spty_child(int slave);
/* Moves what is ready, both ways, without blocking. */
void spty_pump(spty *p);
/* Once the task is gone: what the terminal still holds goes to the
 * output file; everything is closed and DIR/input removed. */
void spty_close(spty *p, const char *dir);

/* The daemon: DIR/input of the part in dir, opened to write without
 * blocking; its owner (the job's user) in *owner, for the caller to check.
 * The fd, or -1 with the reason in err and errno: ENOENT when there is no
 * terminal (yet: the supervisor makes it before the task starts). */
int spty_input_open(const char *dir, uid_t *owner, char *err, size_t errlen);
/* Writes keys (len at most SPTY_DATA_MAX) and, when rows and cols are both
 * set, a new window size to fd. The keys taken: len, or 0 when the
 * terminal is busy (send them again). -1 with errno on a failure. */
long spty_input_write(int fd, const uint8_t *data, size_t len, uint32_t rows, uint32_t cols);

#endif
