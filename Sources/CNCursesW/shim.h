#ifndef STSQ_CNCURSESW_SHIM_H
#define STSQ_CNCURSESW_SHIM_H
// SwiftPM drops -D_XOPEN_SOURCE from pkg-config's flags; without this the wide API is hidden.
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <wchar.h>
#include <curses.h>
#endif
