/* emu.h - `jazarid --emulate-nodes N`: many lightweight emulated agents in
 * one process, against real controllers, to measure the control plane at
 * scale (docs/scale.md). */
#ifndef JZ_EMU_H
#define JZ_EMU_H

#include <stdbool.h>

/* The most nodes one emulator runs. */
#define EMU_NODES_MAX 100000

/* Whether argv asks for the emulator (--emulate-nodes). */
bool emu_wanted(int argc, char **argv);
/* Runs the emulator with jazarid's arguments (argv[0] is the program):
 * returns the exit status (2 for bad input, with one line on stderr). */
int emu_main(int argc, char **argv);

#endif
