/*
 * unit_table.h - what the table-driven unit tests share: CHECK, an
 * assertion that names the row of the table it failed on, and S, a
 * string literal with its length (it may hold NUL bytes).  Include after
 * <cmocka.h>.
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

/* S - a string literal and its length (it may hold NUL) */
#define S(s) s, sizeof(s) - 1

#endif
