# Jazari - hand-written build. `make` builds build/jazarid and build/jz.
# `make help` lists the targets.

CC        ?= cc
BUILD     ?= build
SAN       ?=
PKGS      := libuv libprotobuf-c hwloc raft openssl
PROTOC_C  ?= protoc-c

VERSION   := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wpointer-arith -Wformat=2 -Wvla -Wundef -Wcast-align \
             -Wnull-dereference -Wdouble-promotion -Wno-unused-parameter \
             -Wno-format-truncation
ifeq ($(CI),true)
WARN      += -Werror
endif
OPT       ?= -O2
ifneq ($(SAN),)
OPT       := -O1
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# h2o (Debian's libh2o, built for libuv) serves jazarid's HTTP listener:
# only what links the daemon's objects needs it, not jz or the simulator.
H2O_CFLAGS := $(shell pkg-config --cflags libh2o 2>/dev/null)
H2O_LIBS   := $(shell pkg-config --libs libh2o 2>/dev/null || echo -lh2o)

CPPFLAGS  += -D_GNU_SOURCE -DJZ_VERSION='"$(VERSION)"' -DJZ_GIT_REV='"$(GIT_REV)"' \
             -I$(BUILD)/gen -I. $(PKG_CFLAGS) $(H2O_CFLAGS)
CFLAGS    += -std=c11 -g $(OPT) $(SANFLAGS) -fPIC -MMD -MP
LDFLAGS   += $(SANFLAGS)
LDLIBS    += $(PKG_LIBS) -ldl -lm

# --- sources ---------------------------------------------------------------
PROTO      := proto/jazari.proto
GEN_C      := $(BUILD)/gen/jazari.pb-c.c
GEN_H      := $(BUILD)/gen/jazari.pb-c.h
GEN_O      := $(BUILD)/obj/gen/jazari.pb-c.o

COMMON_SRC := $(wildcard common/*.c)
# lib/: what jz, jazari-sim and jazarid share (hardware discovery, the
# scheduler's pure core); daemon/: jazarid's alone (execution included).
LIB_SRC    := $(wildcard lib/*/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c daemon/*/*.c)) $(LIB_SRC)
CLIENT_SRC := $(filter-out client/main.c,$(wildcard client/*.c))
UNIT_SRC   := $(wildcard tests/unit/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
COMMON_O   := $(call obj,$(COMMON_SRC)) $(GEN_O)
# The dashboard's files, embedded in jazarid as C arrays (embed.sh).
WEB_FILES  := $(sort $(wildcard daemon/http/web/*.html daemon/http/web/*.css daemon/http/web/*.js daemon/http/web/*.svg))
WEB_C      := $(BUILD)/gen/web_assets.c
WEB_O      := $(BUILD)/obj/gen/web_assets.o
DAEMON_O   := $(call obj,$(DAEMON_SRC)) $(WEB_O)
CLIENT_O   := $(call obj,$(CLIENT_SRC))
UNIT_O     := $(call obj,$(filter-out tests/unit/fake_%.c,$(UNIT_SRC)))
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))

JAZARID    := $(BUILD)/jazarid
SIM        := $(BUILD)/jazari-sim
SIM_SRC    := $(wildcard sim/*.c)
# Hardware discovery (hwloc; CUDA and NVML by dlopen), shared by all three
# programs; execution (exec, step, cgroup) is jazarid's alone.
HW_SRC     := $(wildcard lib/hw/*.c)
NODE_O     = $(call obj,$(HW_SRC))
JZ         := $(BUILD)/jz
SLURM_CMDS := $(addprefix $(BUILD)/slurm/,jz srun salloc sattach sbatch squeue scancel sacct sinfo scontrol)
UNIT       := $(BUILD)/tests/unit
FAKE_NVML  := $(BUILD)/tests/fake/libnvidia-ml.so.1
FAKE_CUDA  := $(BUILD)/tests/fake/libcuda.so.1
REPLAY     := $(patsubst %,$(BUILD)/tests/replay-%,$(FUZZ_NAMES))

.PHONY: all test check lint format fuzz deps demo bench deb clean help
# Keep intermediate objects (and keep make quiet about them).
.SECONDARY:
all: $(JAZARID) $(JZ) $(SIM) $(SLURM_CMDS)

help:
	@echo "make            build build/jazarid and build/jz"
	@echo "make deps       install the Debian packages (as root)"
	@echo "make demo       show the main thing working"
	@echo "make test       run every test; last line 'N passed, N failed'"
	@echo "make check      the same tests under ASan and UBSan (build/san)"
	@echo "make lint       cppcheck and clang-tidy"
	@echo "make format     clang-format the sources"
	@echo "make fuzz       run the libFuzzer drivers (FUZZ_SECONDS=60 each)"
	@echo "make bench      the benchmarks, as ratios"
	@echo "make deb        the Debian package build/jazari_<version>_<arch>.deb"

# --- generated protobuf code --------------------------------------------------
$(GEN_C) $(GEN_H) &: $(PROTO)
	@mkdir -p $(BUILD)/gen
	$(PROTOC_C) --proto_path=proto --c_out=$(BUILD)/gen $(PROTO)

# The generated code is not ours: compile it without our extra warnings.
$(GEN_O): $(GEN_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -w -c $< -o $@

$(WEB_C): $(WEB_FILES) daemon/http/embed.sh
	@mkdir -p $(dir $@)
	sh daemon/http/embed.sh $(WEB_FILES) > $@.tmp && mv $@.tmp $@

$(WEB_O): $(WEB_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -w -c $< -o $@

# Every object may include the generated header: make it first.
$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

# --- programs ------------------------------------------------------------------
# What links daemon/ links h2o.
$(JAZARID) $(UNIT) $(REPLAY) $(BUILD)/tests/bench-leader $(BUILD)/tests/bench-state: LDLIBS += $(H2O_LIBS)
$(JAZARID) $(UNIT) $(REPLAY) $(BUILD)/tests/bench-leader $(BUILD)/tests/bench-state: LDLIBS += -lsqlite3
$(BUILD)/fuzz-%: LDLIBS += $(H2O_LIBS) -lsqlite3

$(JAZARID): $(call obj,daemon/main.c) $(DAEMON_O) $(COMMON_O)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The scheduler's pure core: placement (plan), the pass with its policy
# (pass, prio, policy), GPU sets. The simulator runs it on traces.
SCHED_CORE := $(wildcard lib/sched/*.c)
$(SIM): $(call obj,$(SIM_SRC) $(SCHED_CORE)) $(NODE_O) $(COMMON_O)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# jz shows topologies with the daemon's own code (no hwloc calls at run time).
$(JZ): $(call obj,client/main.c) $(CLIENT_O) $(NODE_O) $(COMMON_O)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The Slurm commands: jz under their names, with jz itself, in the directory
# jobs find first on their PATH (the daemon looks for <its dir>/slurm).
$(BUILD)/slurm/%: | $(JZ)
	@mkdir -p $(BUILD)/slurm
	ln -sf ../jz $@

# --- the burn-in (CUDA) ---------------------------------------------------------
# jazari-burnin (tools/burnin), beside jazarid, where jz node check finds it:
# built with nvcc when the CUDA toolkit is here, else skipped with one line.
# The lowest GPU architecture this nvcc knows, as PTX: the driver compiles
# it for the GPU it finds (set NVCC_ARCH for SASS, e.g. -arch=sm_90).
NVCC       ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })
BURNIN     := $(BUILD)/jazari-burnin
ifneq ($(NVCC),)
NVCC_ARCH  ?= $(addprefix -arch=,$(shell $(NVCC) --list-gpu-arch 2>/dev/null | head -1))
all: $(BURNIN)
# A toolkit that cannot build it (a host compiler too new for this nvcc)
# costs the burn-in only, not the build: said in one line.
$(BURNIN): tools/burnin/jazari-burnin.cu
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 $(NVCC_ARCH) -Xcompiler -Wall,-Wextra -o $@ $< || \
	  { rm -f $@; echo "note: $(NVCC) could not build $@ (above): jz node check will say there is no burn-in program"; }
else
.PHONY: burnin-skipped
all: burnin-skipped
burnin-skipped:
	@echo "note: no nvcc (the CUDA toolkit): $(BURNIN) is not built, and jz node check will say so (set NVCC=PATH)"
endif

# --- tests ---------------------------------------------------------------------
$(UNIT): $(UNIT_O) $(DAEMON_O) $(CLIENT_O) $(COMMON_O) | $(FAKE_NVML) $(FAKE_CUDA)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Stand-ins for the NVIDIA driver libraries, to test the dlopen paths here.
$(BUILD)/tests/fake/lib%.so.1: tests/unit/fake_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -shared -Wl,-soname,$(notdir $@) $< -o $@

# Each fuzz driver also links with a plain main that replays its corpus.
$(BUILD)/tests/replay-%: $(call obj,tests/fuzz/fuzz_%.c tests/fuzz/replay.c) $(DAEMON_O) $(COMMON_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Google's Python protobuf reads our frames in the integration tests.
PY_PB      := $(BUILD)/py/jazari_pb2.py
$(PY_PB): $(PROTO)
	@mkdir -p $(dir $@)
	protoc --proto_path=proto --python_out=$(dir $@) $(PROTO)

TEST_BINS := $(JAZARID) $(JZ) $(SLURM_CMDS) $(SIM) $(UNIT) $(REPLAY) $(FAKE_NVML) $(FAKE_CUDA) $(PY_PB)

test: $(TEST_BINS)
	@tests/run $(BUILD)

check:
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 test

# --- fuzzing (clang's libFuzzer) --------------------------------------------------
FUZZ_SECONDS ?= 60
fuzz:
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang \
	  SANFLAGS='-fsanitize=fuzzer-no-link,address,undefined' $(patsubst %,build/fuzz/fuzz-%,$(FUZZ_NAMES))
	@set -e; for f in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/corpus-$$f; \
	  build/fuzz/fuzz-$$f -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus-$$f tests/fuzz/corpus/$$f; \
	done

$(BUILD)/fuzz-%: $(call obj,tests/fuzz/fuzz_%.c) $(DAEMON_O) $(COMMON_O)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer $^ $(LDLIBS) -o $@

# --- tooling -------------------------------------------------------------------------
LINT_SRC := $(COMMON_SRC) $(DAEMON_SRC) daemon/main.c $(CLIENT_SRC) client/main.c $(SIM_SRC)
lint: $(GEN_H)
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -I. -I$(BUILD)/gen $(LINT_SRC)
	clang-tidy --quiet $(LINT_SRC) -- $(CPPFLAGS) -std=c11

format:
	clang-format -i $(LINT_SRC) $(wildcard common/*.h lib/*/*.h daemon/*.h daemon/*/*.h client/*.h sim/*.h tests/unit/*.[ch] tests/fuzz/*.c)

deps:
	@deploy/deps.sh

demo: all $(FAKE_NVML)
	@deploy/demo.sh $(BUILD)

$(BUILD)/tests/bench-%: $(call obj,tests/bench/bench_%.c) $(COMMON_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The scheduler's pass links its core.
$(BUILD)/tests/bench-sched: $(call obj,tests/bench/bench_sched.c lib/sched/plan.c) $(COMMON_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The leader's whole pass, from the replicated state.
$(BUILD)/tests/bench-leader: $(call obj,tests/bench/bench_leader.c) $(DAEMON_O) $(COMMON_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# What finished jobs cost the replicated state.
$(BUILD)/tests/bench-state: $(call obj,tests/bench/bench_state.c) $(DAEMON_O) $(COMMON_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# What jz admin backup costs the leader, at 100,000 jobs.
$(BUILD)/tests/bench-backup: LDLIBS += $(H2O_LIBS) -lsqlite3
$(BUILD)/tests/bench-backup: $(call obj,tests/bench/bench_backup.c) $(DAEMON_O) $(COMMON_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# The job history (issue 14) over SQLite, alone.
$(BUILD)/tests/bench-hist: LDLIBS += -lsqlite3
$(BUILD)/tests/bench-hist: $(call obj,tests/bench/bench_hist.c daemon/raft/hist.c) $(COMMON_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

bench: all $(FAKE_NVML) $(BUILD)/tests/bench-wire $(BUILD)/tests/bench-submit $(BUILD)/tests/bench-sched $(BUILD)/tests/bench-leader \
       $(BUILD)/tests/bench-state $(BUILD)/tests/bench-hist $(BUILD)/tests/bench-backup
	@tests/bench/run $(BUILD)

# --- the Debian package -------------------------------------------------------------
# build/jazari_<version>_<arch>.deb with dpkg-deb alone (deploy/deb/build.sh
# says what goes where; docs/admin.md, "The Debian package").
DEB_ARCH   := $(shell dpkg --print-architecture 2>/dev/null || echo unknown)
DEB        := $(BUILD)/jazari_$(VERSION)_$(DEB_ARCH).deb
DEB_IN     := $(wildcard deploy/deb/*) deploy/completion/jz.bash deploy/jazarid.conf.example \
              deploy/policy.conf.example $(wildcard man/man1/*.1 man/man8/*.8 docs/*.md) README.md CHANGELOG.md VERSION
deb: $(DEB)
$(DEB): $(JAZARID) $(JZ) $(SLURM_CMDS) $(if $(NVCC),$(BURNIN)) $(DEB_IN)
	deploy/deb/build.sh $(BUILD) $(VERSION)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
