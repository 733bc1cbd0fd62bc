#ifndef STSQ_CNCURSESW_SHIM_H
#define STSQ_CNCURSESW_SHIM_H
// SwiftPM drops -D_XOPEN_SOURCE from pkg-config's flags; without this the wide API is hidden.
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <wchar.h>
#include <curses.h>
#include <stdio.h>
#include <term.h>

// Macros and globals that the Swift importer cannot see.
static inline attr_t stsq_a_bold(void) { return A_BOLD; }
static inline attr_t stsq_a_underline(void) { return A_UNDERLINE; }
static inline attr_t stsq_a_reverse(void) { return A_REVERSE; }
static inline attr_t stsq_a_normal(void) { return A_NORMAL; }
static inline int stsq_colors(void) { return COLORS; }
static inline int stsq_color_pairs(void) { return COLOR_PAIRS; }
static inline mmask_t stsq_mouse_mask(void) {
    return BUTTON1_PRESSED | BUTTON1_CLICKED | BUTTON4_PRESSED | BUTTON5_PRESSED;
}
static inline mmask_t stsq_button1(void) { return BUTTON1_PRESSED | BUTTON1_CLICKED; }
static inline mmask_t stsq_button4(void) { return BUTTON4_PRESSED; }
static inline mmask_t stsq_button5(void) { return BUTTON5_PRESSED; }
static inline WINDOW *stsq_stdscr(void) { return stdscr; }
static inline FILE *stsq_stdout(void) { return stdout; }
static inline FILE *stsq_stdin(void) { return stdin; }
// A terminfo string capability, or NULL when absent (tigetstr returns (char*)-1 for "not a string").
static inline const char *stsq_tigetstr(const char *name) {
    char *s = tigetstr(name);
    return (s == (char *)-1) ? 0 : s;
}
#endif
