/*
 * util.c - allocation, the growable buffer, text sanitising, durations and
 * sizes, clocks and logging.
 *
 * Nothing here does network I/O; everything is safe to link into unit tests
 * and fuzzers.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

void *
xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p == NULL)
		fatal("out of memory (%zu bytes)", size);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatal("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *
xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);

	if (q == NULL)
		fatal("out of memory (%zu bytes)", size);
	return q;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		panic("array size overflow (%zu x %zu)", n, size);
	return xrealloc(p, n * size);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;
	size_t len = strnlen(s, n);

	p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	struct buf b;

	buf_init(&b);
	buf_vprintf(&b, fmt, ap);
	return b.data;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void
buf_init(struct buf *b)
{
	b->cap = 64;
	b->len = 0;
	b->data = xmalloc(b->cap);
	b->data[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	b->data[0] = '\0';
}

void
buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;

	if (extra > SIZE_MAX - b->len - 1)
		panic("buffer size overflow");
	need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void
buf_append(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, int c)
{
	char ch = (char)c;

	buf_append(b, &ch, 1);
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		panic("vsnprintf failed");
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

/* utf8_seqlen - length of the well-formed UTF-8 sequence at s, 0 if bad */
static size_t
utf8_seqlen(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
util_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = utf8_seqlen(s + i, len - i);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

size_t
util_sanitise(char *dst, size_t maxlen, const char *src, size_t srclen)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0, n;

	while (i < srclen && o < maxlen) {
		if (s[i] >= 0x80) {
			n = utf8_seqlen(s + i, srclen - i);
			if (n == 0) {
				dst[o++] = '?';
				i++;
				continue;
			}
			if (o + n > maxlen)
				break;
			memcpy(dst + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		dst[o++] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' : (char)s[i];
		i++;
	}
	dst[o] = '\0';
	return o;
}

char *
util_sanitise_dup(const char *src, size_t maxlen)
{
	size_t len = strlen(src);
	char *dst;

	if (maxlen > len)
		maxlen = len;
	dst = xmalloc(maxlen + 1);
	util_sanitise(dst, maxlen, src, len);
	return dst;
}

int
util_has_8bit(const void *p, size_t len)
{
	const unsigned char *s = p;
	unsigned char acc = 0;
	size_t i;

	/* an OR over the run: the compiler vectorises it */
	for (i = 0; i < len; i++)
		acc |= s[i];
	return (acc & 0x80) != 0;
}

int
util_write_all(int fd, const void *p, size_t len)
{
	const char *s = p;
	ssize_t n;

	while (len > 0) {
		n = write(fd, s, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

void
util_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* parse_number_unit - digits then an optional unit from units/mults */
static int
parse_number_unit(const char *s, const char *units, const uint64_t *mults,
    uint64_t *out)
{
	uint64_t v = 0, m = 1;
	const char *u;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s != '\0') {
		if (s[1] != '\0' || (u = strchr(units, *s)) == NULL)
			return -1;
		m = mults[u - units];
	}
	if (m != 0 && v > UINT64_MAX / m)
		return -1;
	*out = v * m;
	return 0;
}

int
util_parse_duration(const char *s, int64_t *ms)
{
	static const uint64_t mults[] = { 1000, 60000, 3600000, 86400000 };
	uint64_t v;

	if (parse_number_unit(s, "smhd", mults, &v) == -1)
		return -1;
	if (strchr("smhd", s[strlen(s) - 1]) == NULL) {
		if (v > INT64_MAX / 1000)
			return -1;
		v *= 1000;
	}
	if (v > INT64_MAX)
		return -1;
	*ms = (int64_t)v;
	return 0;
}

int
util_parse_size(const char *s, uint64_t *bytes)
{
	static const uint64_t mults[] = { 1024, 1024 * 1024,
		1024 * 1024 * 1024 };
	char tmp[64];
	size_t len = strlen(s);

	/* accept lower-case units too */
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len + 1);
	if (tmp[len - 1] == 'k' || tmp[len - 1] == 'm' || tmp[len - 1] == 'g')
		tmp[len - 1] = (char)(tmp[len - 1] - 'a' + 'A');
	return parse_number_unit(tmp, "KMG", mults, bytes);
}

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
util_rfc5322_date(int64_t t, char *out, size_t outlen)
{
	time_t tt = (time_t)t;
	struct tm tm;
	long off;
	char sign = '+';

	localtime_r(&tt, &tm);
	off = tm.tm_gmtoff / 60;
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	/* strftime's %a/%b follow the locale: RFC 5322 wants English */
	static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat" };
	static const char *mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	snprintf(out, outlen, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

static const char *log_name = "tern";
static int log_syslog;
static int log_verbose;

void
log_init(const char *name, int use_syslog, int verbose)
{
	log_name = name;
	log_syslog = use_syslog;
	log_verbose = verbose;
	if (use_syslog)
		openlog("tern", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* the process id, asked of the kernel once per process: every log line
 * and every queue id carries it */
static pid_t cached_pid;

static void
pid_forget(void)
{
	cached_pid = 0;
}

static void
pid_watch_forks(void)
{
	/* a child of fork() must ask again */
	pthread_atfork(NULL, NULL, pid_forget);
}

pid_t
util_pid(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	if (cached_pid == 0) {
		pthread_once(&once, pid_watch_forks);
		cached_pid = getpid();
	}
	return cached_pid;
}

void
log_set_name(const char *name)
{
	log_name = name;
}

static void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *names[] = { "debug", "info", "warning", "error" };
	static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
	char line[2048];
	int saved = errno;

	if (lvl == LOG_LVL_DEBUG && !log_verbose)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_syslog) {
		syslog(prio[lvl], "%s: %s", log_name, line);
	} else {
		char ts[32];
		struct tm tm;
		time_t now = time(NULL);

		localtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s tern/%s[%ld]: %s: %s\n", ts, log_name,
		    (long)util_pid(), names[lvl], line);
	}
	errno = saved;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	abort();
}

/*
 * util_wipe_registers - copy zeros through memcpy in the sizes it copies
 * with vector registers (above some 2 KiB glibc's memcpy uses rep movsb,
 * which touches none), so that the registers a copy of a secret left
 * holding its last bytes hold zeros.  A forked child inherits the
 * registers, and the kernel stores them on a thread's stack with its
 * register state (a signal frame): the master found a key's last bytes
 * that way in the smtpd's memory, long after the copy and its buffers
 * were cleansed.  The call goes through a volatile pointer so the copy
 * cannot be left out, as OPENSSL_cleanse does for memset.
 */
void
util_wipe_registers(void)
{
	static void *(*volatile copy)(void *, const void *, size_t) = memcpy;
	static const char zeros[1024];
	static char sink[1024];
	size_t n;

	for (n = 1024; n >= 16; n /= 2)
		copy(sink, zeros, n);
}

/* util_dgram_bind - a bound AF_UNIX datagram socket */
int
util_dgram_bind(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	/* a socket left by an earlier run would make bind fail */
	if ((unlink(path) == -1 && errno != ENOENT) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}
