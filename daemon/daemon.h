/* daemon.h - jazarid's process: the loop, the listeners, the node's
 * topology, and the dispatch of requests. */
#ifndef JZ_DAEMON_H
#define JZ_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Runs the daemon until SIGTERM or SIGINT. Returns the process exit status:
 * 0 after a clean shutdown, 2 for a bad input (topology XML, setting), 1 for
 * other failures (the address is taken, ...); the reason is logged.
 * restored: its log was just seeded from a backup (jazarid --restore). */
int daemon_run(const config *cfg, bool restored);

#endif
