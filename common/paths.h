/* paths.h - default locations shared by jazarid and jz. */
#ifndef JZ_PATHS_H
#define JZ_PATHS_H

/* The default state directory: /var/lib/jazari as root, else
 * $XDG_STATE_HOME/jazari or ~/.local/state/jazari. Caller frees. */
char *paths_default_state_dir(void);
/* <default state dir>/jazarid.sock. Caller frees. */
char *paths_default_socket(void);

#endif
