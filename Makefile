# HakuRiver-C: one non-recursive build (Redis-style, -MMD dependencies).
# Targets: all, check, check-unit, check-integration, asan, bench (bench-native + bench-docker
# + bench-vps),
# install, clean, format.

PREFIX     ?= /usr/local
BUILD      ?= build
CC         ?= cc
WERROR     ?=
SANITIZE   ?=
OPT        ?= -O2 -g

PKGS       := libmicrohttpd libcurl jansson sqlite3
CFLAGS_PKG := $(shell pkg-config --cflags $(PKGS))
LIBS       := $(shell pkg-config --libs $(PKGS)) -lnuma -lpthread

WARN   := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
          -Wno-unused-parameter $(if $(WERROR),-Werror)
CFLAGS += -std=gnu11 $(OPT) $(WARN) -Isrc $(CFLAGS_PKG) -D_GNU_SOURCE \
          $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all)
LDFLAGS += $(if $(SANITIZE),-fsanitize=$(SANITIZE))

COMMON_SRC := $(wildcard src/common/*.c)
HOST_SRC   := $(wildcard src/host/*.c)
RUNNER_SRC := $(wildcard src/runner/*.c)
CLI_SRC    := $(wildcard src/cli/*.c)

obj = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(1))

COMMON_OBJ := $(call obj,$(COMMON_SRC))
HOST_OBJ   := $(call obj,$(HOST_SRC))
RUNNER_OBJ := $(call obj,$(RUNNER_SRC))
CLI_OBJ    := $(call obj,$(CLI_SRC))
MAIN_OBJ   := $(BUILD)/obj/main.o
ALL_LIB    := $(BUILD)/libhost.a $(BUILD)/librunner.a $(BUILD)/libcli.a $(BUILD)/libcommon.a

BIN   := $(BUILD)/hakuriver
# The native task shim as its own small executable (src/shim_main.c): static, so that the
# runner's posix_spawn of it loads nothing (sanitizer builds link it dynamically).
SHIM_BIN := $(BUILD)/hakuriver-shim
SHIM_OBJ := $(BUILD)/obj/shim_main.o $(call obj,src/runner/native_shim.c src/runner/cgroup.c \
            src/runner/shim.c src/runner/spawn_msg.c src/common/err.c src/common/xalloc.c \
            src/common/fileio.c)
LINKS := hakuriver.host hakuriver.runner hakuriver.client hakuriver.task hakuriver.init \
         hakuriver.docker hakuriver.docker-shell hakuriver.vps hakuriver.ssh hakurun

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all check check-unit check-integration asan bench bench-native bench-docker bench-vps install clean \
        format links

all: $(BIN) $(SHIM_BIN) links

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libhost.a: $(HOST_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/librunner.a: $(RUNNER_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libcli.a: $(CLI_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(MAIN_OBJ) $(ALL_LIB)
	$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(ALL_LIB) $(LIBS)

$(SHIM_BIN): $(SHIM_OBJ)
	$(CC) $(LDFLAGS) $(if $(SANITIZE),,-static) -o $@ $(SHIM_OBJ)

links: $(BIN)
	@for l in $(LINKS); do ln -sf hakuriver $(BUILD)/$$l; done

$(BUILD)/tests/%: tests/unit/%.c $(ALL_LIB) tests/lib/tap.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -Itests/lib -o $@ $< $(ALL_LIB) $(LIBS) $(LDFLAGS)

check-unit: $(UNIT_BIN)
	prove -v --timer -e '' $(UNIT_BIN)

INTEGRATION_TESTS ?= tests/integration/
check-integration: all
	HAKURIVER_BIN=$(abspath $(BUILD)) prove --timer -j1 $(INTEGRATION_TESTS)

check: check-unit check-integration

asan:
	$(MAKE) BUILD=build-asan SANITIZE=address,undefined OPT="-O1 -g" check

bench: all
	bench/run.sh $(abspath $(BUILD))
	bench/docker.sh $(abspath $(BUILD))
	bench/vps.sh $(abspath $(BUILD))

bench-native: all
	bench/run.sh $(abspath $(BUILD))

bench-docker: all
	bench/docker.sh $(abspath $(BUILD))

bench-vps: all
	bench/vps.sh $(abspath $(BUILD))

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/hakuriver
	install -d $(DESTDIR)$(PREFIX)/libexec/hakuriver
	install -m 0755 $(SHIM_BIN) $(DESTDIR)$(PREFIX)/libexec/hakuriver/hakuriver-shim
	@for l in $(LINKS); do ln -sf hakuriver $(DESTDIR)$(PREFIX)/bin/$$l; done

format:
	clang-format -i $(COMMON_SRC) $(HOST_SRC) $(RUNNER_SRC) $(CLI_SRC) src/main.c src/*.h src/*/*.h

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
