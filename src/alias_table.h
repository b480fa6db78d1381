/*
 * alias_table.h - the aliases file as tern's processes hold it, and the
 * target lists of .forward files: loaded at start (and so on SIGHUP, which
 * starts new processes), asked by the queue process to expand a local
 * recipient and by the delivery process to check that a pipe or file it
 * is asked to run is one an alias names.
 */
#ifndef TERN_ALIAS_TABLE_H
#define TERN_ALIAS_TABLE_H

#include <stddef.h>

#include "aliases.h"

struct conf;

/* alias_table_load - read the configuration's aliases file (none: an
 * empty table); errors are logged and the table stays empty */
void alias_table_load(const struct conf *c);
/* alias_table_has - 1 when name (a folded local part) is an alias */
int alias_table_has(const char *name);
/*
 * alias_table_expand - expand a local name (folded, without subaddress)
 * through the table (aliases_expand: local domains folded, :include:
 * files read here); free out with aliases_expansion_free
 */
enum aliases_status alias_table_expand(const char *name,
    struct aliases_expansion *out);
/* alias_dest_method - 1 when a pipe or file of an expansion is method
 * ("pipe:CMD", "file:/PATH") */
int alias_dest_method(const struct aliases_dest *d, const char *method);
/* alias_table_allows - 1 when the alias names method ("pipe:CMD" or
 * "file:/PATH") among its targets, directly or through :include: */
int alias_table_allows(const char *alias, const char *method);

/*
 * alias_forward_parse - the targets of a .forward file, as written
 * ("|command", "/path", "\user", "user@domain", "user").  Returns 0 with
 * the list (freed by the caller, each string and the array), -1 on a
 * syntax error.
 */
int alias_forward_parse(const char *text, size_t len, char ***targets,
    size_t *n);
/* alias_target_matches - 1 when a target as written ("|cmd", "/path")
 * is method ("pipe:cmd", "file:/path") */
int alias_target_matches(const char *raw, const char *method);

#endif
