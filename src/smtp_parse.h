/*
 * smtp_parse.h - pure parsing of SMTP command lines, paths and ESMTP
 * parameters (RFC 5321 4.1, RFC 6531 for UTF-8, RFC 1870/6152/3461 params).
 *
 * No I/O.  Every function works on a NUL-terminated line without its CRLF
 * and may modify it in place; results point into that line.
 */
#ifndef TERN_SMTP_PARSE_H
#define TERN_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with CRLF */
#define SMTP_LINE_MAX 512
/* MAIL/RCPT with ESMTP parameters: RFC 5321 4.5.3.1.4 lets extensions
 * raise the limit; we accept up to this much, which fits a 256-octet path,
 * ORCPT with a full xtext address, ENVID and several small parameters */
#define SMTP_PARAM_LINE_MAX 2048
/* RFC 4954 4: an AUTH line may be up to 12288 octets */
#define SMTP_AUTH_LINE_MAX 12288
/* RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
#define SMTP_PARAMS_MAX 16

enum smtp_verb {
	SMTP_V_UNKNOWN = 0,
	SMTP_V_HELO,
	SMTP_V_EHLO,
	SMTP_V_MAIL,
	SMTP_V_RCPT,
	SMTP_V_DATA,
	SMTP_V_BDAT,
	SMTP_V_RSET,
	SMTP_V_NOOP,
	SMTP_V_QUIT,
	SMTP_V_VRFY,
	SMTP_V_EXPN,
	SMTP_V_HELP,
	SMTP_V_STARTTLS,
	SMTP_V_AUTH,
	SMTP_V_COUNT
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *name; /* canonical upper-case verb name, "" if unknown */
	char *arg;        /* text after the verb and one SP; "" when none */
};

/*
 * smtp_cmd_split - recognise the verb (case-insensitive) of a command line.
 * A verb must be followed by SP or end of line ("MAILX" is unknown).
 * Returns 0; cmd->verb is SMTP_V_UNKNOWN for an unknown verb.
 */
int smtp_cmd_split(char *line, struct smtp_cmd *cmd);

/* smtp_verb_name - "MAIL" for SMTP_V_MAIL */
const char *smtp_verb_name(enum smtp_verb v);

enum smtp_perr {
	SMTP_P_OK = 0,
	SMTP_P_SYNTAX,       /* 501 5.5.4 / 5.1.7 */
	SMTP_P_TOO_LONG,     /* path, local part or domain over its limit */
	SMTP_P_BAD_UTF8,     /* malformed UTF-8 */
	SMTP_P_BAD_PARAM,    /* malformed ESMTP parameter */
	SMTP_P_TOO_MANY_PARAMS
};

/*
 * struct smtp_addr - a parsed mailbox.  local is as sent (a quoted local
 * part keeps its quotes and escapes); domain is as sent (an address literal
 * keeps its brackets).  A null path <> has is_null set and both empty.  A
 * bare "postmaster" (RCPT only) has an empty domain.
 */
struct smtp_addr {
	char local[SMTP_LOCAL_MAX + 1];
	char domain[SMTP_DOMAIN_MAX + 1];
	unsigned is_null : 1;
	unsigned quoted : 1;      /* local part was a quoted-string */
	unsigned utf8 : 1;        /* non-ASCII octets in local part or domain */
	unsigned literal : 1;     /* domain is an address literal [..] */
	unsigned source_route : 1; /* an obsolete @a,@b: route was given */
};

struct smtp_param {
	char *key;   /* as sent; compare case-insensitively */
	char *value; /* NULL when the parameter has no "=value" */
};

struct smtp_pathcmd {
	struct smtp_addr addr;
	struct smtp_param params[SMTP_PARAMS_MAX];
	size_t nparams;
};

/*
 * smtp_parse_mail - parse the argument of MAIL: "FROM:<path> [params]".
 * smtp_parse_rcpt - parse the argument of RCPT: "TO:<path> [params]"; also
 * accepts <postmaster> without a domain (RFC 5321 4.5.1).  The null path is
 * refused for RCPT.  Both accept, as RFC 5321 4.1.2 demands, an obsolete
 * source route and mark it; they accept no spaces around ':' except the
 * common "FROM: <a@b>" form, and require the angle brackets.
 */
enum smtp_perr smtp_parse_mail(char *arg, struct smtp_pathcmd *out);
enum smtp_perr smtp_parse_rcpt(char *arg, struct smtp_pathcmd *out);

/*
 * smtp_parse_addr - parse a bare mailbox "local@domain" (no brackets, no
 * route) from s[0..len).  Used for configuration and unit tests too.
 */
enum smtp_perr smtp_parse_addr(const char *s, size_t len,
    struct smtp_addr *out);

/* smtp_param_get - the parameter named key (case-insensitive), or NULL */
const struct smtp_param *smtp_param_get(const struct smtp_pathcmd *pc,
    const char *key);

/* smtp_parse_size_param - decimal SIZE= value; -1 on syntax or overflow */
int smtp_parse_size_param(const char *s, uint64_t *out);

/* smtp_addr_format - "local@domain", "" for <>; returns length or -1 when
 * out is too small */
int smtp_addr_format(const struct smtp_addr *a, char *out, size_t outlen);

/*
 * smtp_addr_relay_trick - 1 when a recipient uses a routing trick that
 * older MTAs interpret as "forward elsewhere": '%', '!' or '@' in the local
 * part (quoted or not) or a source route.
 */
int smtp_addr_relay_trick(const struct smtp_addr *a);

/*
 * smtp_domain_valid - 1 when s is a syntactically valid domain (LDH labels
 * of 1..63 octets, total <= 255; UTF-8 U-labels allowed when utf8_ok) or an
 * address literal ([IPv4] or [IPv6:...]).  Used for HELO/EHLO arguments.
 */
int smtp_domain_valid(const char *s, int utf8_ok);

/* smtp_perr_str - short text for an error, for replies */
const char *smtp_perr_str(enum smtp_perr e);

#endif
