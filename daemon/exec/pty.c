/* pty.c - srun --pty on the node: the task's terminal in its supervisor,
 * and the FIFO of frames through which the daemon hands it keys and window
 * sizes (pty.h says how the two meet).
 *
 * A frame: one byte of kind ('d' keys, 'w' a window size), two of length
 * (big-endian), then the payload: the keys, or rows and columns (two bytes
 * each, big-endian). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <utmp.h>

#include "pty.h"
#include "step.h"

_Static_assert(SPTY_FRAME_MAX <= PIPE_BUF, "a frame must be written whole");

static void spty__path(char *out, size_t len, const char *dir)
{
    snprintf(out, len, "%s/%s", dir, STEP_INPUT);
}

int spty_open(spty *p, const char *dir, const char *out_path, uid_t uid, gid_t gid, uint32_t rows,
              uint32_t cols, int *slave, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->master = p->in = p->out = -1;
    *slave = -1;
    char path[PATH_MAX];
    spty__path(path, sizeof path, dir);
    struct winsize ws = {.ws_row = (unsigned short)(rows ? rows : SPTY_ROWS_DEFAULT),
                         .ws_col = (unsigned short)(cols ? cols : SPTY_COLS_DEFAULT)};
    if (openpty(&p->master, slave, NULL, NULL, &ws) != 0) {
        snprintf(err, errlen, "cannot open a pseudo-terminal: %s", strerror(errno));
        goto fail;
    }
    if (fcntl(p->master, F_SETFD, FD_CLOEXEC) != 0 || fcntl(p->master, F_SETFL, O_NONBLOCK) != 0 ||
        fcntl(*slave, F_SETFD, FD_CLOEXEC) != 0 || (geteuid() == 0 && fchown(*slave, uid, gid) != 0)) {
        snprintf(err, errlen, "cannot set up the pseudo-terminal: %s", strerror(errno));
        goto fail;
    }
    unlink(path);
    if (mkfifo(path, 0600) != 0 || (geteuid() == 0 && chown(path, uid, gid) != 0)) {
        snprintf(err, errlen, "cannot make %s: %s", path, strerror(errno));
        goto fail;
    }
    /* Read and write: the FIFO never reads as ended between two writers. */
    p->in = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    if (p->in < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    p->out = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (p->out < 0 || (geteuid() == 0 && fchown(p->out, uid, gid) != 0)) {
        snprintf(err, errlen, "cannot write the terminal's output %s: %s", out_path, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    if (*slave >= 0)
        close(*slave);
    *slave = -1;
    spty_close(p, dir);
    return -1;
}

int spty_child(int slave)
{
    /* login_tty: a new session (the task's is one already), the terminal
     * its controlling one, and its standard streams. */
    int fd = dup(slave); /* login_tty closes it; the original closes on exec */
    if (fd < 0)
        return -1;
    return login_tty(fd);
}

/* Writes all of data to fd (the output file); what cannot be written is lost. */
static void spty__out(spty *p, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(p->out, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

/* Whole frames out of p->frames: keys to pending, sizes to the terminal. */
static void spty__frames(spty *p)
{
    size_t at = 0;
    while (p->n_frames - at >= 3) {
        const uint8_t *f = p->frames + at;
        size_t len = (size_t)f[1] << 8 | f[2];
        if (len > SPTY_DATA_MAX) { /* not ours: drop everything */
            at = p->n_frames;
            break;
        }
        if (p->n_frames - at < 3 + len)
            break;
        if (f[0] == 'd') {
            if (p->n_pending + len > sizeof p->pending)
                break; /* the terminal is behind: later */
            memcpy(p->pending + p->n_pending, f + 3, len);
            p->n_pending += len;
        } else if (f[0] == 'w' && len == 4 && p->master >= 0) {
            struct winsize ws = {.ws_row = (unsigned short)(f[3] << 8 | f[4]),
                                 .ws_col = (unsigned short)(f[5] << 8 | f[6])};
            ioctl(p->master, TIOCSWINSZ, &ws); /* the task's group gets SIGWINCH */
        }
        at += 3 + len;
    }
    memmove(p->frames, p->frames + at, p->n_frames - at);
    p->n_frames -= at;
}

void spty_pump(spty *p)
{
    if (p->master < 0)
        return;
    /* Keys: from the FIFO while there is room, then to the terminal. */
    for (int round = 0; round < 16; round++) {
        if (p->n_frames < sizeof p->frames && p->n_pending + SPTY_DATA_MAX <= sizeof p->pending) {
            ssize_t n = read(p->in, p->frames + p->n_frames, sizeof p->frames - p->n_frames);
            if (n > 0)
                p->n_frames += (size_t)n;
        }
        spty__frames(p);
        if (p->n_pending > 0) {
            ssize_t n = write(p->master, p->pending, p->n_pending);
            if (n > 0) {
                memmove(p->pending, p->pending + n, p->n_pending - (size_t)n);
                p->n_pending -= (size_t)n;
            }
        }
        /* What the terminal wrote: to the output file. */
        uint8_t buf[8192];
        ssize_t n = read(p->master, buf, sizeof buf);
        if (n > 0)
            spty__out(p, buf, (size_t)n);
        if (n <= 0 && p->n_frames < 3)
            break;
    }
}

void spty_close(spty *p, const char *dir)
{
    if (p->master >= 0) {
        uint8_t buf[8192];
        ssize_t n;
        /* What the task left in the terminal (EIO once its side is closed). */
        for (int i = 0; i < 1024 && (n = read(p->master, buf, sizeof buf)) > 0; i++)
            if (p->out >= 0)
                spty__out(p, buf, (size_t)n);
        close(p->master);
    }
    if (p->in >= 0) {
        close(p->in);
        char path[PATH_MAX];
        spty__path(path, sizeof path, dir);
        unlink(path);
    }
    if (p->out >= 0)
        close(p->out);
    p->master = p->in = p->out = -1;
}

int spty_input_open(const char *dir, uid_t *owner, char *err, size_t errlen)
{
    char path[PATH_MAX];
    spty__path(path, sizeof path, dir);
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
        snprintf(err, errlen, "%s",
                 fd < 0 && errno != ENOENT && errno != ENXIO
                     ? strerror(errno)
                     : "the step has no terminal (not srun --pty), or its task is gone");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *owner = st.st_uid;
    return fd;
}

static int spty__frame(int fd, char kind, const uint8_t *data, size_t len)
{
    uint8_t f[SPTY_FRAME_MAX];
    f[0] = (uint8_t)kind;
    f[1] = (uint8_t)(len >> 8);
    f[2] = (uint8_t)len;
    memcpy(f + 3, data, len);
    ssize_t n;
    while ((n = write(fd, f, 3 + len)) < 0 && errno == EINTR)
        ;
    if (n < 0 && errno == EAGAIN)
        return 0;
    return n == (ssize_t)(3 + len) ? 1 : -1;
}

long spty_input_write(int fd, const uint8_t *data, size_t len, uint32_t rows, uint32_t cols)
{
    if (len > SPTY_DATA_MAX || rows > 0xffff || cols > 0xffff) {
        errno = EINVAL;
        return -1;
    }
    if (rows && cols) {
        uint8_t ws[4] = {(uint8_t)(rows >> 8), (uint8_t)rows, (uint8_t)(cols >> 8), (uint8_t)cols};
        if (spty__frame(fd, 'w', ws, sizeof ws) < 0)
            return -1;
    }
    if (len == 0)
        return 0;
    int r = spty__frame(fd, 'd', data, len);
    return r < 0 ? -1 : r ? (long)len : 0;
}
