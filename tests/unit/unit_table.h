/*
 * unit_table.h - what the table-driven unit tests share: CHECK, an
 * assertion that names the row of the table it failed on, CHECK_STR for
 * strings, S, a string literal with its length (it may hold NUL bytes),
 * and NROWS.  Include after <cmocka.h> and <string.h>.
 */
#ifndef TERN_UNIT_TABLE_H
#define TERN_UNIT_TABLE_H

#define CHECK(what, cond)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			print_error("row \"%s\": %s\n", (what), #cond);        \
			fail();                                                \
		}                                                              \
	} while (0)

/* CHECK_STR - two strings equal, both shown when not */
#define CHECK_STR(what, got, want)                                             \
	do {                                                                   \
		if (strcmp((got), (want)) != 0) {                              \
			print_error("row \"%s\":\n got: %s\nwant: %s\n",       \
			    (what), (got), (want));                            \
			fail();                                                \
		}                                                              \
	} while (0)

/* S - a string literal and its length (it may hold NUL) */
#define S(s) s, sizeof(s) - 1

/* NROWS - the rows of a table */
#define NROWS(t) (sizeof(t) / sizeof((t)[0]))

#endif
