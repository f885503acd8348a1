# One-command setup: `make sim` and `make test` create .venv and install the project on first use.
# The install step reruns only when the packaging files change (a stamp in .venv keyed on their content).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
EXTRAS := ros,runtime,train,cluster,video,viz,test
# Files whose content decides what gets installed: the packaging files (package.xml holds the version) and
# the data copied into .venv/share/humanoid_rl (an editable install links the Python code, but copies data).
SHARE_FILES := $(sort $(shell find config launch models urdf -type f -not -name '*.pyc' 2>/dev/null))
INSTALL_INPUTS := setup.py setup.cfg package.xml $(wildcard requirements/*.txt) $(SHARE_FILES)
INSTALL_KEY := $(shell (echo '$(INSTALL_INPUTS) $(EXTRAS)'; cat $(INSTALL_INPUTS)) | sha256sum | cut -c1-16)
INSTALL_STAMP := $(VENV)/.humanoid-rl-installed-$(INSTALL_KEY)

SIM_DURATION ?= 20
SIM_MODEL ?= models/humanoid_stand.onnx

# One DDS implementation everywhere (the PyPI ROS wheels ship Fast DDS).
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp

.PHONY: sim test test-slow lint install clean-venv

sim: $(INSTALL_STAMP)
	$(VENV)/bin/humanoid-rl sim --duration $(SIM_DURATION) --model $(SIM_MODEL)

test: $(INSTALL_STAMP)
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

# Everything, the tests marked slow included (an empty -m overrides pyproject's "not slow").
test-slow: $(INSTALL_STAMP)
	$(VENV_PYTHON) -m pytest -m "" $(PYTEST_ARGS)

lint: $(INSTALL_STAMP)
	$(VENV)/bin/ruff check .

install: $(INSTALL_STAMP)

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

$(INSTALL_STAMP): | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.humanoid-rl-installed-*
	touch $@

clean-venv:
	rm -rf $(VENV)
