/* paths.c - default locations shared by jazarid and jz. */
#include "paths.h"

#include <stdlib.h>
#include <unistd.h>

#include "buf.h"

char *paths_default_state_dir(void)
{
    buf b = BUF_INIT;
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (geteuid() == 0)
        buf_puts(&b, "/var/lib/jazari");
    else if (xdg && *xdg == '/')
        buf_printf(&b, "%s/jazari", xdg);
    else
        buf_printf(&b, "%s/.local/state/jazari", home && *home ? home : "/tmp");
    return b.data;
}

char *paths_default_socket(void)
{
    char *dir = paths_default_state_dir();
    buf b = BUF_INIT;
    buf_printf(&b, "%s/jazarid.sock", dir);
    free(dir);
    return b.data;
}
