# rustnl — top-level Makefile. `make help` lists the targets.
#
# First run on a fresh machine: `make test` (or `make demo`) installs what it
# needs (`make deps`), builds the test kernel into $(RUSTNL_CACHE) and the
# module and user tools into build/, then boots the kernel in QEMU.

SHELL := /bin/bash
.DEFAULT_GOAL := help

RUSTNL_CACHE ?= $(HOME)/.cache/rustnl
export RUSTNL_CACHE
BUILD        := $(CURDIR)/build
TARGET       := x86_64-unknown-linux-gnu
STATIC_BIN   := $(CURDIR)/target/$(TARGET)/release
# The kernel's compiler: clang/LLVM 19 (needed for KASAN with Rust).
LLVM         ?= -19
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib
export PATH := $(HOME)/.cargo/bin:$(PATH)

TOOLCHAIN_ENV := $(RUSTNL_CACHE)/toolchain.env
-include $(TOOLCHAIN_ENV)
KRUSTC ?= rustc

# KDIR: a Rust-enabled kernel build tree to build the module against.
# Default: the test kernel (build/kernel -> the cached build).
KDIR ?= $(BUILD)/kernel

.PHONY: stock-module stock-test stock-test-all stock-dkms-test dkms-src install
.PHONY: help deps kernel module user test test-host publish-check test-vm demo vm vm-run vm-cmd clean uapi check-uapi man fuzz fuzz-kernel stress load-race coverage bench bench-profile bench-modules
help:
	@echo "rustnl targets:"
	@echo "  make demo      build everything, boot the VM, show insmod / rustnl echo / rmmod"
	@echo "  make test      host unit tests + QEMU guest tests on the debug kernel and Debian's stock kernels: 7.3 and sid's 7.2 (TEST_STOCK_LINES)"
	@echo "  make vm        interactive guest shell with the module loaded (exit the shell to stop)"
	@echo "  make vm-run CMD='...'   run one command line in the guest, exit with its status"
	@echo "                 (both take VM_FILES='host/file ...' to copy files into the guest's /)"
	@echo "  make deps      install toolchain and kernel source (idempotent)"
	@echo "  make kernel    build (or reuse) the test kernel in \$$RUSTNL_CACHE ($(RUSTNL_CACHE))"
	@echo "  make module    build kmod/rustnl.ko against KDIR (default: the test kernel)"
	@echo "  make user      build the static rustnl CLI and guest tests"
	@echo "  make uapi      regenerate user/lib/src/sys/uapi.rs (bindgen over the kernel's uapi headers)"
	@echo "  make publish-check  cargo publish --dry-run of rustnl-shared, rustnl, rustnl-cli"
	@echo "  make man       write build/rustnl.1 (and shell completions) from the CLI definition"
	@echo "  make fuzz      run the message/attribute parser fuzzer for FUZZ_SECONDS (default 60)"
	@echo "  make fuzz-kernel  fuzz the module in the debug-kernel VM: FUZZ_MESSAGES (default"
	@echo "                 1000000), FUZZ_SEED (default: fresh, printed); prints the report table"
	@echo "  make stress    load, unload under load x100, allocation failures, isolation (full"
	@echo "                 size, debug kernel); prints the report table"
	@echo "  make load-race 8 namespaces hammer the unit while the module loads and unloads"
	@echo "                 500 times (the load-time BUG of issue 11; KERNEL_PATCHES=none: unpatched)"
	@echo "  make coverage  the module's basic blocks the QEMU suite (and the fuzzer) executes:"
	@echo "                 per-function table, blocks never run with their reasons (build/coverage/)"
	@echo "  make bench     Rust module vs the C reference module (tests/bench) on the bench"
	@echo "                 kernel (no debug options), wall clock and -icount; plus the userspace"
	@echo "                 codec vs netlink-packet-core; table + build/bench/bench.json"
	@echo "  make bench-profile  instructions per echo (or per BROADCAST: BENCH_PROFILE_FACES=fanout) in each module, per function (QEMU block log)"
	@echo "  make stock-module  rustnl.ko for Debian's stock kernel (build/stock/; Rust metadata"
	@echo "                 regenerated with Debian's toolchain in a chroot of its suite, cached);"
	@echo "                 STOCK=trixie-backports (7.3, default) | sid | forky (7.2: build/stock-sid/ ...)"
	@echo "  make stock-test    the guest tests on Debian's unmodified kernel (debug-only ones ignored)"
	@echo "                 (make vm / vm-run KERNEL=stock: the VM on Debian's kernel)"
	@echo "  make stock-test-all  stock-test for each of STOCK_LINES (default: trixie-backports sid)"
	@echo "  make install   the module (modules_install layout, INSTALL_MOD_PATH, depmod) and the CLI"
	@echo "                 (PREFIX, default /usr/local); KERNEL=stock for Debian's kernel"
	@echo "  make dkms-src  the DKMS tree in /usr/src/rustnl-<version> (see dkms.conf)"
	@echo "  make stock-dkms-test  dkms build/install in the suite's chroot, then load it in the stock VM"
	@echo "Variables: KDIR=<Rust-enabled kernel build>  RUSTNL_ACCEL=auto|kvm|tcg  VM_TIMEOUT=<s>"
	@echo "           STOCK=trixie-backports|sid|forky (the stock-* targets, KERNEL=stock)"

deps:
	@bash scripts/deps.sh

kernel: deps
	@kb=$$(bash scripts/kernel.sh tests/kernel.config testkernel) && \
	  mkdir -p $(BUILD) && ln -sfn "$$kb" $(BUILD)/kernel && \
	  echo "kernel: $(BUILD)/kernel -> $$kb"

# The module. With the default KDIR the test kernel is built first.
module: $(if $(filter $(BUILD)/kernel,$(KDIR)),kernel)
	@test -f "$(KDIR)/Module.symvers" -o -f "$(KDIR)/.config" || \
	  { echo "module: KDIR=$(KDIR) is not a kernel build tree"; exit 1; }
	@grep -qx 'CONFIG_RUST=y' "$(KDIR)/.config" || \
	  { echo "module: KDIR=$(KDIR) is not a Rust-enabled kernel (no CONFIG_RUST=y in its .config)"; exit 1; }
	@test -f "$(KDIR)/rust/libkernel.rmeta" || \
	  { echo "module: KDIR=$(KDIR) has no Rust metadata (rust/libkernel.rmeta): distribution headers lack it; for Debian's 7.3 kernel use make stock-module"; exit 1; }
	$(MAKE) -C "$(KDIR)" M=$(CURDIR) LLVM=$(LLVM) RUSTC=$(KRUSTC) BINDGEN=bindgen modules
	@echo "module: $(CURDIR)/kmod/rustnl.ko"

# Static binaries for the guest (glibc, crt-static).
user:
	RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target $(TARGET) \
	  -p rustnl -p rustnl-cli -p rustnl-guest-tests --bins --examples
	@mkdir -p $(BUILD)/bin && cp $(STATIC_BIN)/rustnl $(STATIC_BIN)/rustnl-guest-tests $(STATIC_BIN)/rustnl-bench $(BUILD)/bin/
	@for e in unicast multicast; do cp $(STATIC_BIN)/examples/$$e $(BUILD)/bin/example-$$e; done
	@for p in nl_send nl_recv; do \
	  cc -O2 -Wall -Wextra -Werror -static -o $(BUILD)/bin/$$p tests/compat/$$p.c || exit 1; done

VM_ENV = KBUILD=$(BUILD)/kernel KO=$(CURDIR)/kmod/rustnl.ko BINDIR=$(BUILD)/bin OUT=$(BUILD)/vm
# KERNEL=stock (vm, vm-run): Debian's stock kernel and its rustnl.ko (see
# stock-module below). STOCK: which of Debian's Rust-enabled kernel lines,
# trixie-backports (7.3, the default: build/stock/) or sid / forky (7.2:
# build/stock-sid/, build/stock-forky/); scripts/stock.sh reads it.
KERNEL       ?= test
STOCK        ?= trixie-backports
export STOCK
STOCK_OUT    := $(BUILD)/stock$(if $(filter-out trixie-backports,$(STOCK)),-$(STOCK))
STOCK_VM_OUT ?= $(BUILD)/vm-$(notdir $(STOCK_OUT))
STOCK_VM_ENV = KERNEL_IMAGE="$$(bash scripts/stock.sh vmlinuz)" GEN_CPIO="$$(bash scripts/stock.sh gen-cpio)" \
  KERNEL_NAME="Debian's stock kernel ($(STOCK))" KMEMLEAK=off KO=$(STOCK_OUT)/rustnl.ko BINDIR=$(BUILD)/bin OUT=$(STOCK_VM_OUT)
VM_DEPS  = $(if $(filter stock,$(KERNEL)),stock-module,kernel module)
VM_ENV_K = $(if $(filter stock,$(KERNEL)),$(STOCK_VM_ENV),$(VM_ENV))

test-host:
	cargo test --workspace --locked
	cargo test -p rustnl --all-features --locked
	RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked --features rustnl/serde,rustnl/tokio
	@$(MAKE) --no-print-directory publish-check
	@bash tests/harness/selftest.sh
	@python3 scripts/doccheck.py
	@bash scripts/uapi.sh check
	@bash scripts/spec.sh check

# The whole suite under TCG: the debug-kernel VM took 426 s (68 tests incl.
# the generic netlink tests, the kernel-tool checks and both fuzz slices);
# the limit leaves room for a slower machine of this kind.
SUITE_TIMEOUT ?= 3000
test-vm: kernel module user bench-modules
	@$(VM_ENV) VM_TIMEOUT=$(or $(VM_TIMEOUT),$(SUITE_TIMEOUT)) VM_FILES="$(BUILD)/bench-test/rustnl_c.ko $(CURDIR)/kmod/rustnl_kunit.ko $(VM_FILES)" bash scripts/vm.sh test

# make test: test-host, test-vm, then stock-test on each of Debian's Rust
# kernel lines in TEST_STOCK_LINES (7.3 and 7.2), whose packages and chroots
# scripts/test.sh fetches in the background while the kernel and the debug VM
# run.
TEST_STOCK_LINES ?= trixie-backports sid
test: deps
	@bash scripts/test.sh $(TEST_STOCK_LINES)

demo: kernel module user
	@$(VM_ENV) bash scripts/vm.sh demo

vm: $(VM_DEPS) user
	@$(VM_ENV_K) bash scripts/vm.sh shell

# CMD reaches the guest's sh as written: make would expand `$H` in
# `$HOME`, so the recipe gets CMD's text unexpanded through the environment
# (quotes, `$`, newlines and any byte pass unchanged; scripts/vm.sh writes it
# to the guest's /etc/rustnl/cmd). vm-cmd writes that file alone
# (VM_CMD_FILE): tests/harness/selftest.sh checks the passing with it.
vm-run vm-cmd: override export CMD := $(value CMD)
vm-run: $(VM_DEPS) user
	@[ -n "$$CMD" ] || { echo "vm-run: give the command line as CMD='...' (any shell command line)" >&2; exit 2; }
	@$(VM_ENV_K) bash scripts/vm.sh run

VM_CMD_FILE ?= $(BUILD)/vm-run.cmd
vm-cmd:
	@bash scripts/vm.sh cmd "$(VM_CMD_FILE)"

# Debian's stock kernels (issues 12, 21; STOCK=trixie-backports|sid|forky).
# stock-module regenerates the kernel's Rust metadata with Debian's toolchain
# (a chroot of the kernel's suite, cached) and builds $(STOCK_OUT)/rustnl.ko
# (+ rustnl_c.ko) for it; KERNEL=stock makes vm/vm-run boot Debian's
# unmodified vmlinuz with it; stock-test runs the guest tests that need no
# debug-kernel feature (the others are reported as ignored).
stock-module: deps
	@bash scripts/stock.sh module $(STOCK_OUT)

stock-test: stock-module user
	@$(STOCK_VM_ENV) VM_TIMEOUT=$(or $(VM_TIMEOUT),$(SUITE_TIMEOUT)) VM_FILES="$(STOCK_OUT)/rustnl_c.ko $(VM_FILES)" GUEST_ARGS="--stock $(GUEST_ARGS)" \
	  bash scripts/vm.sh test

# The stock suite on each of Debian's Rust-enabled kernel lines in turn
# (STOCK_LINES; each line's first run builds its chroot and metadata: sid
# measured 191 s chroot + 29 s packages + ~5 min metadata + 74 s module, then
# 109 s in the VM).
STOCK_LINES ?= trixie-backports sid
stock-test-all:
	@set -e; for l in $(STOCK_LINES); do echo "== stock-test STOCK=$$l"; $(MAKE) --no-print-directory stock-test STOCK=$$l; done

# DKMS (dkms.conf): dkms-src writes $(DESTDIR)/usr/src/rustnl-<version>/;
# stock-dkms-test runs dkms add/build/install in the chroot of the kernel's
# suite (trixie with trixie-backports' headers and source, or sid/forky's,
# as on a user's machine) and loads the module dkms installed in the stock VM
# (by name, and autoloaded by a client's socket()).
dkms-src:
	@bash scripts/install.sh dkms-src

stock-dkms-test: deps user
	@bash scripts/stock.sh dkms-test $(STOCK_OUT)/dkms
	@$(STOCK_VM_ENV) KO=$(STOCK_OUT)/dkms/rustnl.ko VM_FILES=tests/vm/install-check.sh CMD='sh /install-check.sh' \
	  bash scripts/vm.sh run

# make install: the module with modules_install's layout
# ($(INSTALL_MOD_PATH)/lib/modules/<release>/updates/rustnl.ko, depmod) and
# the CLI in $(DESTDIR)$(PREFIX)/bin. KERNEL=stock: the module for Debian's
# stock kernel; otherwise the one built against KDIR.
PREFIX ?= /usr/local
install: $(if $(filter stock,$(KERNEL)),stock-module,module) user
	@INSTALL_MOD_PATH="$(INSTALL_MOD_PATH)" INSTALL_MOD_DIR="$(INSTALL_MOD_DIR)" PREFIX="$(PREFIX)" DESTDIR="$(DESTDIR)" \
	  bash scripts/install.sh module $(if $(filter stock,$(KERNEL)),$(STOCK_OUT)/rustnl.ko,$(CURDIR)/kmod/rustnl.ko) $(BUILD)/bin/rustnl

uapi: deps
	@bash scripts/uapi.sh generate

check-uapi: deps
	@bash scripts/uapi.sh check

man:
	@mkdir -p $(BUILD)/completions
	cargo run -q --locked -p rustnl-cli -- man > $(BUILD)/rustnl.1
	@for sh in bash zsh fish; do cargo run -q --locked -p rustnl-cli -- completions $$sh > $(BUILD)/completions/rustnl.$$sh; done
	@echo "man: $(BUILD)/rustnl.1, completions in $(BUILD)/completions/"

# Hardening runs (issue 6): the guest tests' hardening_* cases at full size.
# `make test` runs the same cases in a bounded slice (--scale ci).
FUZZ_MESSAGES ?= 1000000
FUZZ_SEED     ?=
HARDEN_TIMEOUT ?= 14400
fuzz-kernel: kernel module user
	@$(VM_ENV) VM_TIMEOUT=$(HARDEN_TIMEOUT) \
	  GUEST_ARGS="--scale full --fuzz-messages $(FUZZ_MESSAGES) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) hardening_fuzz" \
	  bash scripts/vm.sh test

# The load-time race (issue 11): 8 namespaces hammer the unit while the
# module is loaded and unloaded 500 times (make test: a 40-cycle slice).
load-race: kernel module user
	@$(VM_ENV) VM_TIMEOUT=$(HARDEN_TIMEOUT) \
	  GUEST_ARGS="--scale full hardening_load_race" \
	  bash scripts/vm.sh test

# Module code coverage (issue 11): the suite and the fuzzer under QEMU's
# translation log; table + build/coverage/.
coverage: kernel module user
	@KBUILD=$(BUILD)/kernel KO=$(CURDIR)/kmod/rustnl.ko BINDIR=$(BUILD)/bin bash scripts/coverage.sh

stress: kernel module user
	@$(VM_ENV) VM_TIMEOUT=$(HARDEN_TIMEOUT) \
	  GUEST_ARGS="--scale full hardening_load,hardening_unload,hardening_allocation,isolated,unprivileged,spoofed" \
	  bash scripts/vm.sh test

# Benchmarks (issue 7). The bench kernel is the test kernel's fragment plus
# tests/bench/kernel.config (debug watchers off), cached like the test kernel.
bench: deps user
	@KERNEL=$(KERNEL) bash scripts/bench.sh run

# Where the module's instructions go: per-function counts for one echo.
bench-profile: deps user
	@bash scripts/bench.sh profile

# Both modules built against the test kernel, for the bench smoke test that
# `make test` runs in the guest.
bench-modules: kernel
	@bash scripts/bench.sh modules $(BUILD)/kernel $(BUILD)/bench-test

# `cargo publish --dry-run` of every published package (rustnl-shared,
# rustnl, rustnl-cli): packaged together, so the library and the CLI are
# verified against the packaged versions of their path dependencies. Its own
# target dir, with the three packages cleaned first: cargo takes a registry
# crate's build as final for its version, so the packaged copies of a
# previous run would otherwise be reused.
publish-check:
	@cargo clean -q --target-dir target/publish -p rustnl-shared -p rustnl -p rustnl-cli
	@# The packaged crates, their temporary registry, and cargo's unpacked
	@# copies of ours from it (registry/src/-HASH/, a name-less local
	@# registry, never crates.io's): cargo does not unpack a crate of the same
	@# version again, so a second run would verify against old sources.
	@rm -rf target/publish/package "$${CARGO_HOME:-$$HOME/.cargo}"/registry/src/-*/rustnl-*
	CARGO_TARGET_DIR=target/publish cargo publish --dry-run --workspace --locked --allow-dirty

FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	-$(MAKE) -C "$(KDIR)" M=$(CURDIR) LLVM=$(LLVM) clean 2>/dev/null
	rm -rf $(BUILD)
