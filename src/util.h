/*
 * util.h - small safe primitives every tern file uses.
 *
 * Allocation failure ends the process (a process can always be restarted and
 * the spool makes that safe), so callers never check for NULL.  struct buf
 * is the one growable byte buffer: all growth is overflow-checked.
 * Logging has levels; a line about a message starts with its queue id.
 */
#ifndef TERN_UTIL_H
#define TERN_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TERN_PRINTF(a, b) __attribute__((format(printf, a, b)))

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) TERN_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) TERN_PRINTF(1, 0);

/* struct buf - growable bytes; data is always NUL-terminated (not counted) */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, int c);
void buf_printf(struct buf *b, const char *fmt, ...) TERN_PRINTF(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* buf_consume - drop the first n bytes */
void buf_consume(struct buf *b, size_t n);

/*
 * util_sanitise - copy network text for a header or a log line: CR, LF, NUL,
 * other control characters and DEL become '?', output is cut to at most
 * maxlen bytes (never splitting a UTF-8 sequence).  dst needs maxlen + 1.
 * Returns the length written.
 */
size_t util_sanitise(char *dst, size_t maxlen, const char *src, size_t srclen);
/* util_sanitise_dup - the same into a new string */
char *util_sanitise_dup(const char *src, size_t maxlen);
/* util_wipe_registers - overwrite the vector registers a copy of a
 * secret left it in (see util.c) */
void util_wipe_registers(void);

/* util_has_8bit - 1 when an octet of p[0..len) is >= 0x80 */
int util_has_8bit(const void *p, size_t len);
/* util_write_all - write everything, retrying short writes and EINTR;
 * -1 with errno on failure */
int util_write_all(int fd, const void *p, size_t len);
/*
 * util_dgram_bind - a non-blocking AF_UNIX datagram socket bound at path
 * (a socket left there by an earlier run replaced); -1 with errno
 */
int util_dgram_bind(const char *path);

/* util_lower - ASCII case fold in place */
void util_lower(char *s);
/* util_utf8_valid - 1 when the bytes are well-formed UTF-8 (RFC 3629) */
int util_utf8_valid(const unsigned char *s, size_t len);

/* util_parse_duration - "30", "30s", "5m", "1h", "5d" to milliseconds */
int util_parse_duration(const char *s, int64_t *ms);
/* util_parse_size - "1000", "10K", "35M", "1G" (powers of 1024) to bytes */
int util_parse_size(const char *s, uint64_t *bytes);

/* util_now_ms - wall clock in milliseconds; util_mono_ms - monotonic */
int64_t util_now_ms(void);
int64_t util_mono_ms(void);
/* util_rfc5322_date - "Sat, 28 Nov 2026 11:41:21 +0000" for time t */
void util_rfc5322_date(int64_t t, char *out, size_t outlen);

/* log */
enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* log_init - name is the process role ("master", "smtpd", "queue") */
void log_init(const char *name, int use_syslog, int verbose);
void log_set_name(const char *name);
/* util_pid - getpid(), remembered (and forgotten across fork) */
pid_t util_pid(void);
void log_msg(enum log_level lvl, const char *fmt, ...) TERN_PRINTF(2, 3);
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)

/* fatal - the environment failed (cannot open the spool...): log, exit 1 */
_Noreturn void fatal(const char *fmt, ...) TERN_PRINTF(1, 2);
/* panic - a broken invariant, a bug: log, abort */
_Noreturn void panic(const char *fmt, ...) TERN_PRINTF(1, 2);

#endif
