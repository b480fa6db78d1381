# tern - build, run, test.  See README.md.
#
#   make            build build/tern
#   make run        build and start tern on the embedded defaults
#   make test       everything CI checks: unit, integration, the sanitizer
#                   build's suites, short fuzz runs
#   make fuzz       longer fuzz runs (FUZZ_SECONDS each, default 300;
#                   FUZZ_TARGETS="fuzz_addr ..." for some targets only)
#   make fuzz-merge what those runs found that adds coverage, into the
#                   seed corpora fuzz/corpus/NAME
#   make test-fault the long power-cut run (FAULT_ROUNDS rounds, as root)
#   make format     clang-format the sources

CC      ?= cc
# libsystemd: sd_notify (Type=notify); gmime-3.0: `tern send` and `tern
# trace`; libcurl, libmagic: only `tern send` (submission, attachment
# types); none of the last three is called by the server processes;
# libseccomp: the syscall filter of the children (src/sandbox.c)
PKGS    := libevent libevent_pthreads libevent_openssl openssl libunbound \
	libcrypt libsystemd gmime-3.0 libcurl libmagic libseccomp
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN    := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wvla
HARDEN  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c17 -D_GNU_SOURCE $(WARN) $(HARDEN) $(CFLAGS) $(PKG_CFLAGS) -iquote src
LIBS    := $(PKG_LIBS) -lpthread

BUILD   ?= build
PY      := /usr/bin/python3

SRCS    := $(filter-out src/tern.c src/tern_drop.c,$(wildcard src/*.c))
OBJS    := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build-fuzz/%)
# sources fuzzers link: no libevent; pure but for auth.c (libcrypt, OpenSSL)
PURE_SRCS := src/util.c src/smtp_parse.c src/smtp_data.c src/envelope.c \
	src/bounce.c src/auth.c src/smtp_reply.c src/dns_rr.c \
	src/mailbox.c src/deliver_proto.c src/deliver_pipe_argv.c src/aliases.c \
	src/conf.c src/route.c src/drop.c src/received.c src/trace_path.c \
	src/control_proto.c src/proxy.c src/client_key.c
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= $(FUZZ_SRCS:fuzz/%.c=%)
FUZZ_SHORT_SECONDS ?= 10

.PHONY: all run test deps unit integ e2e asan-test fuzz fuzz-short \
	fuzz-merge format \
	install install-sendmail clean check-tools bench fault test-fault

all: $(BUILD)/tern $(BUILD)/tern-drop

deps:
	@sh scripts/deps.sh

# pkg-config's own words when a library (or one it requires) is missing,
# rather than a compiler error about a header far from the cause
$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h)
	@pkg-config --exists --print-errors $(PKGS) || { echo "tern: a library \
	is missing: make deps installs debian-packages.txt (as root)"; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/libtern.a: $(OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tern: src/tern.c $(BUILD)/libtern.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libtern.a $(LIBS)

# the setgid drop program: its own few lines and no library (tern_drop.c)
$(BUILD)/tern-drop: src/tern_drop.c src/drop.h src/util.h
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_GNU_SOURCE $(WARN) $(HARDEN) $(CFLAGS) -iquote src \
		-o $@ src/tern_drop.c

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libtern.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libtern.a $(LIBS) -lcmocka

# deps first, then a new make that reads the libraries' flags from
# pkg-config once the -dev packages are there (this one read them at start)
run: deps
	@$(MAKE) --no-print-directory all
	@echo "tern: starting on the embedded defaults (home $${TERN_HOME:-./var}); Ctrl-C stops it"
	./$(BUILD)/tern serve

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integ: all fault
	@sh scripts/ensure-user.sh
	TERN_BIN=$(abspath $(BUILD)/tern) $(PY) -m pytest -q tests/integ

# End to end (tests/e2e/README.md): hosts in network namespaces, a DNS
# server, tern on each host.  Needs root; as another user every test skips.
e2e: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/ensure-user.sh
	TERN_BIN=$(abspath $(BUILD)/tern) $(PY) -m pytest -q tests/e2e

# The power-cut tests' helpers (tests/fault/README.md): blkcache, a FUSE
# disk whose unflushed writes a test can drop, and nofsync.so, the
# LD_PRELOAD control that makes tern's fsyncs no-ops.  Built only where
# libfuse3's headers are (make deps installs them); without them the
# power-cut tests skip and say so.
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS   := $(shell pkg-config --libs fuse3 2>/dev/null)
FAULT_BINS  := $(BUILD)/fault/nofsync.so \
	$(if $(FUSE_LIBS),$(BUILD)/fault/blkcache)
FAULT_ROUNDS ?= 150

fault: $(FAULT_BINS)

$(BUILD)/fault/blkcache: tests/fault/blkcache.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_GNU_SOURCE $(WARN) $(HARDEN) $(CFLAGS) \
		$(FUSE_CFLAGS) -o $@ $< $(FUSE_LIBS)

$(BUILD)/fault/nofsync.so: tests/fault/nofsync.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 $(WARN) $(CFLAGS) -shared -fPIC -o $@ $<

# The long power-cut run: FAULT_ROUNDS cuts under load, then the
# no-fsync control; as root (loop devices, FUSE).  make test runs the
# short version inside `make integ` (tests/integ/test_powercut.py).
test-fault: all fault
	@sh scripts/ensure-user.sh
	TERN_BIN=$(abspath $(BUILD)/tern) TERN_FAULT_ROUNDS=$(FAULT_ROUNDS) \
		$(PY) -m pytest -q -s tests/integ/test_powercut.py

# The sanitizer build: clang, ASan + UBSan, every suite run on it.
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
asan-test: deps
	@sh scripts/ensure-user.sh
	$(MAKE) BUILD=build-asan CC=clang CFLAGS="$(ASAN_FLAGS)" \
		LDFLAGS="$(ASAN_FLAGS)" build-asan/tern build-asan/tern-drop unit-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TERN_BIN=$(abspath build-asan/tern) TERN_ASAN=1 \
		$(PY) -m pytest -q tests/integ

unit-asan: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; \
		ASAN_OPTIONS=detect_leaks=1 $$t; done

# libFuzzer targets link only the pure sources.
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -iquote src \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
build-fuzz/%: fuzz/%.c fuzz/fuzz.h $(PURE_SRCS) $(wildcard src/*.h)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(PURE_SRCS) -lcrypto -lcrypt

fuzz: deps $(FUZZ_TARGETS:%=build-fuzz/%)
	@sh fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS:%=build-fuzz/%)

fuzz-merge: $(FUZZ_TARGETS:%=build-fuzz/%)
	@sh fuzz/merge.sh $(FUZZ_TARGETS:%=build-fuzz/%)

fuzz-short: deps $(FUZZ_BINS)
	@sh fuzz/run.sh $(FUZZ_SHORT_SECONDS) $(FUZZ_BINS)

test: deps
	@sh scripts/ensure-user.sh
	$(MAKE) all unit
	$(MAKE) integ
	@if [ "$$(id -u)" -eq 0 ]; then $(MAKE) e2e; else echo "tern: skipping the end-to-end suite (tests/e2e): it needs root for network namespaces and port 25"; fi
	$(MAKE) asan-test
	$(MAKE) fuzz-short

# The benchmark (docs/BENCHMARKS.md): tern and a private Postfix side by
# side on loopback, about 5 minutes, as root; never part of `make test`.
# BENCH_ARGS passes options to bench/bench.py (--rounds 1, --big 0, ...).
bench:
	@sh scripts/deps.sh
	@sh scripts/ensure-user.sh
	$(MAKE) all
	$(PY) bench/bench.py --tern $(abspath $(BUILD)/tern) $(BENCH_ARGS)

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c fuzz/*.c

# Installation: PREFIX (default /usr/local), DESTDIR for staging (a
# package build).  The unit file names the installed binary, the
# configuration and the spool; the tern user is made only when installing
# for real (with DESTDIR set, the package's own scripts must create it: see
# tern(8)).  $(SYSCONFDIR)/tern/tern.conf is installed from the example
# only when missing, never replaced.
PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
SPOOLDIR ?= /var/spool/tern

install: all
	@if [ -z "$(DESTDIR)" ]; then sh scripts/ensure-user.sh; \
	else echo "tern: staged in $(DESTDIR): create the tern user on the target (scripts/ensure-user.sh)"; fi
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/tern
	install -d -m 755 $(DESTDIR)$(SPOOLDIR)
	install -m 755 $(BUILD)/tern $(DESTDIR)$(SBINDIR)/tern
	@# tern-drop is setgid terndrop (tern(8), SENDMAIL: local submission);
	@# where that group does not exist (a staging build) it is the package's
	if [ "$$(id -u)" -eq 0 ] && getent group terndrop >/dev/null; then \
		install -m 2755 -g terndrop $(BUILD)/tern-drop \
			$(DESTDIR)$(SBINDIR)/tern-drop; \
	else \
		install -m 755 $(BUILD)/tern-drop $(DESTDIR)$(SBINDIR)/; \
		echo "tern: $(SBINDIR)/tern-drop must be setgid terndrop (left as is)"; \
	fi
	install -m 644 docs/tern.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 644 docs/tern.8 $(DESTDIR)$(MANDIR)/man8/
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		-e 's|@SPOOLDIR@|$(SPOOLDIR)|g' systemd/tern.service.in \
		>$(DESTDIR)$(UNITDIR)/tern.service
	chmod 644 $(DESTDIR)$(UNITDIR)/tern.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/tern/tern.conf ]; then \
		echo "tern: keeping $(DESTDIR)$(SYSCONFDIR)/tern/tern.conf"; \
	else \
		sed 's|@SPOOLDIR@|$(SPOOLDIR)|g' systemd/tern.conf.example \
			>$(DESTDIR)$(SYSCONFDIR)/tern/tern.conf; \
		chmod 644 $(DESTDIR)$(SYSCONFDIR)/tern/tern.conf; \
	fi

# /usr/sbin/sendmail, /usr/bin/mailq, /usr/bin/newaliases as links to
# tern, only when asked; another MTA's are refused unless FORCE=1
install-sendmail: install
	@sh scripts/install-sendmail.sh "$(DESTDIR)" $(SBINDIR) "$(FORCE)"

clean:
	rm -rf build build-asan build-fuzz
