# The real container image: deploy/Dockerfile built and run by a Docker engine of the
# tests' own, and deploy/compose.yaml brought up for real (tests/image).
# Auto-included by the root Makefile (`-include mk/*.mk`).
.PHONY: image-deps test-image

# Engine data root, base image root filesystems and the compose plugin: kept between
# runs on one machine (a second run skips the base images), made anew on a clean one.
PEA_IMAGE_CACHE ?= $(HOME)/.cache/pea-image
export PEA_IMAGE_CACHE

# `make test` runs tests/image with the other tiers (about 4-5 min on a clean machine).
EXTRA_TEST_DIRS += tests/image
test: image-deps

image-deps:
	@bash tests/image/deps.sh $(PEA_IMAGE_CACHE)

test-image: install image-deps
	$(BIN)/pytest $(PYTEST_FLAGS) -rs tests/image
